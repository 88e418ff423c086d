"""The discriminatively regularised VAE (DR-VAE) of single beats, used for morphing.

A beat is a (12, 300) millivolt window after per-lead ``zero_mode``. The encoder maps it to a
Gaussian posterior (mean ``mu`` and variance ``var``, 512 dimensions each); the decoder maps a
latent vector back to a beat. Training adds to the usual ELBO a *discriminative* term: the
squared difference between the frozen beat model's predicted scd1 probability for the real beat
and for its reconstruction, so the decoder keeps what the risk model looks at.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from .constants import BEAT_LEN, N_LEADS
from .errors import PipelineError
from .io import load_checkpoint, save_checkpoint, write_csv
from .models.store import (load_model_state, load_state_checked, read_model_arrays,
                           read_model_config, save_model_folder)
from .morphing import load_beat_models, load_beats, morph_beat_index
from .progress import progress_bar
from .workspace import CONFIG_FILE, HISTORY_FILE, STEP_SCRIPTS, VAE_WEIGHTS

LATENT_DIM = 512
CONV_FILTERS = 12
CONV_KERNEL = 10
ENCODER_HIDDEN = 128
DECODER_HIDDEN = 100
DECODER_LAYERS = 4
VAR_EPS = 1e-8  # floor on the posterior variance inside log()

WEIGHTS_FILE = VAE_WEIGHTS
EPOCH_CHECKPOINT = "last_epoch.pt"
#: What :func:`scdecg.morphing.load_beats` applies to every beat the VAE sees (its config
#: records it; a config naming anything else is refused).
VAE_PREPROCESSING = ("zero_mode",)


class Encoder(nn.Module):
    """(B, 12, 300) -> (mu, var), each (B, latent_dim); ``var = softplus(dense)``."""

    def __init__(self, latent_dim: int = LATENT_DIM, n_leads: int = N_LEADS,
                 beat_len: int = BEAT_LEN):
        super().__init__()
        # "same" padding as Keras does it for an even kernel: one sample more on the right
        self.same = nn.ConstantPad1d(((CONV_KERNEL - 1) // 2, CONV_KERNEL // 2), 0.0)
        self.conv1 = nn.Conv1d(n_leads, CONV_FILTERS, CONV_KERNEL)
        self.conv2 = nn.Conv1d(CONV_FILTERS, CONV_FILTERS, CONV_KERNEL)
        self.pool = nn.AvgPool1d(2)
        self.hidden = nn.Linear(CONV_FILTERS * (beat_len // 4), ENCODER_HIDDEN)
        self.mu = nn.Linear(ENCODER_HIDDEN, latent_dim)
        self.var = nn.Linear(ENCODER_HIDDEN, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.pool(F.relu(self.conv1(self.same(x))))
        h = self.pool(F.relu(self.conv2(self.same(h))))
        h = F.relu(self.hidden(h.flatten(1)))
        return self.mu(h), F.softplus(self.var(h))


class Decoder(nn.Module):
    """(B, latent_dim) -> (B, 12, 300): four Dense(100)+ReLU, then Dense(3600) without bias."""

    def __init__(self, latent_dim: int = LATENT_DIM, n_leads: int = N_LEADS,
                 beat_len: int = BEAT_LEN):
        super().__init__()
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(DECODER_LAYERS):
            layers += [nn.Linear(width, DECODER_HIDDEN), nn.ReLU()]
            width = DECODER_HIDDEN
        layers.append(nn.Linear(width, n_leads * beat_len, bias=False))
        self.net = nn.Sequential(*layers)
        self.shape = (n_leads, beat_len)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


class BeatVAE(nn.Module):
    """Encoder + decoder; ``forward`` samples z = mu + sqrt(var)·eps and decodes it."""

    def __init__(self, latent_dim: int = LATENT_DIM, n_leads: int = N_LEADS,
                 beat_len: int = BEAT_LEN):
        super().__init__()
        if beat_len % 4:
            raise ValueError(f"beat_len must be divisible by 4 (two avg-pools), got {beat_len}")
        self.arch = {"latent_dim": latent_dim, "n_leads": n_leads, "beat_len": beat_len}
        self.encoder = Encoder(latent_dim, n_leads, beat_len)
        self.decoder = Decoder(latent_dim, n_leads, beat_len)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        mu, var = self.encoder(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + var.sqrt() * eps
        return self.decoder(z), mu, var

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction: decode the posterior mean."""
        return self.decoder(self.encoder(x)[0])


# --------------------------------------------------------------------------------------
# Loss and schedules
# --------------------------------------------------------------------------------------
def drvae_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, var: torch.Tensor,
               p_real: torch.Tensor, p_rec: torch.Tensor, kl_weight: float,
               beta: float) -> dict[str, torch.Tensor]:
    """Batch-mean DR-VAE loss and its terms.

    Per beat: ``rec`` = 0.5·Σ_t (x − x̂)² for each lead, ``kl`` = −0.5·Σ(1 + log var − mu² − var),
    ``dr`` = (p(x) − p(x̂))²; the beat's loss is the mean over leads of ``rec + w·kl + β·dr``
    (``kl`` and ``dr`` are per beat, so they enter once each).
    """
    rec = 0.5 * (x - x_hat).pow(2).sum(-1)                                   # (B, leads)
    kl = -0.5 * (1 + torch.log(var + VAR_EPS) - mu.pow(2) - var).sum(-1)     # (B,)
    dr = (p_real - p_rec).pow(2)                                             # (B,)
    per_beat = (rec + (kl_weight * kl + beta * dr)[:, None]).mean(-1)
    return {"loss": per_beat.mean(), "rec": rec.mean(-1).mean(), "kl": kl.mean(), "dr": dr.mean()}


def kl_weight_at(step: int, total_steps: int, alpha: float, ramp_fraction: float = 0.25) -> float:
    """Linear KL warm-up from 0 to ``alpha`` over the first ``ramp_fraction`` of the steps."""
    ramp = max(1, int(round(ramp_fraction * total_steps)))
    return alpha * min(1.0, step / ramp)


def lr_at(step: int, total_steps: int, lr_max: float, lr_min: float,
          warmup_fraction: float = 0.05) -> float:
    """Linear warm-up ``lr_min -> lr_max`` over ``warmup_fraction`` of the steps, then cosine to ``lr_min``."""
    warm = max(1, int(round(warmup_fraction * total_steps)))
    if step < warm:
        return lr_min + (lr_max - lr_min) * step / warm
    progress = min(1.0, (step - warm) / max(1, total_steps - warm))
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------
@dataclass
class VAETrainConfig:
    """DR-VAE training settings (the published values; s08's ``--profile demo`` sets others)."""
    epochs: int = 100
    batch_size: int = 512
    lr_max: float = 1e-4
    lr_min: float = 1e-7
    warmup_fraction: float = 0.05
    kl_alpha: float = 0.01
    kl_ramp_fraction: float = 0.25
    beta: float = 0.01
    seed: int = 0


RiskProbability = Callable[[torch.Tensor], torch.Tensor]
"""Maps beats (B, 12, 300) to the frozen beat model's scd1 probability (B,)."""


#: beats per call of the frozen risk model when scoring the real beats once before training
FROZEN_RISK_BATCH = 512


@torch.no_grad()
def frozen_risk(risk_probability: RiskProbability, beats: torch.Tensor,
                device: torch.device) -> torch.Tensor:
    """``risk_probability`` of every beat (N,), on ``device``, in batches."""
    parts = [risk_probability(beats[s:s + FROZEN_RISK_BATCH].to(device))
             for s in range(0, len(beats), FROZEN_RISK_BATCH)]
    return torch.cat(parts)


EPOCH_STATE = ("model", "optimiser", "shuffle_rng", "noise_rng")


def restore_epoch(path: Path, tensors: dict, saved: dict, model: BeatVAE,
                  optimiser: torch.optim.Optimizer,
                  generators: tuple[torch.Generator, torch.Generator]) -> list[dict]:
    """Load an epoch checkpoint's model, optimiser and RNG states; returns its history. A
    checkpoint with a state missing or misshapen is one :class:`PipelineError` naming it."""
    def refuse(what: str) -> PipelineError:
        return PipelineError(f"{path}: not a usable epoch checkpoint ({what}); remove it or "
                             "drop --resume")

    missing = [k for k in EPOCH_STATE if k not in tensors]
    if missing:
        raise refuse(f"no {', '.join(missing)}")
    history = saved.get("history")
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise refuse(f"history is {type(history).__name__}, expected a list of epochs")
    load_state_checked(model, tensors["model"], path)
    try:
        optimiser.load_state_dict(tensors["optimiser"])
        generators[0].set_state(tensors["shuffle_rng"])
        generators[1].set_state(tensors["noise_rng"].cpu())
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
        raise refuse(f"optimiser or RNG state: {type(exc).__name__}: "
                     f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc
    return history


def fit_vae(model: BeatVAE, beats: np.ndarray, risk_probability: RiskProbability,
            cfg: VAETrainConfig, device: torch.device, checkpoint_path: Path | None = None,
            resume: bool = False, progress: bool = True,
            inputs: dict[str, object] | None = None) -> list[dict]:
    """Train ``model`` on ``beats`` (N, 12, 300) float32; returns one history row per epoch.

    Every epoch the model, optimiser, RNG states and history go to ``checkpoint_path``;
    ``resume`` continues from it, but only when the checkpoint was saved with the same
    settings, beat count and ``inputs`` (what identifies the data and the frozen model, e.g.
    their SHA-256; a checkpoint saved without them is not compared on them). The loop is
    deterministic for a given seed and device.
    """
    if len(beats) == 0:
        raise PipelineError("no training beats for the VAE")
    data = torch.as_tensor(beats, dtype=torch.float32)
    n = len(data)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    model.to(device)
    # the frozen model's risk of each real beat does not change: computed once, not per epoch
    p_real_all = frozen_risk(risk_probability, data, device)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr_min, foreach=True)
    shuffle_gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    history: list[dict] = []
    start_epoch = 0
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        tensors, saved = load_checkpoint(checkpoint_path, map_location=device)
        if saved.get("train") != asdict(cfg) or saved.get("n_beats") != n:
            raise PipelineError(f"{checkpoint_path}: saved run differs from this one "
                                f"(saved {saved.get('train')}, n_beats={saved.get('n_beats')}; "
                                f"now {asdict(cfg)}, n_beats={n}); remove it or drop --resume")
        if inputs is not None and "inputs" in saved and saved["inputs"] != inputs:
            differ = sorted(k for k in set(inputs) | set(saved["inputs"])
                            if inputs.get(k) != saved["inputs"].get(k))
            raise PipelineError(f"{checkpoint_path}: saved run trained on other inputs (its "
                                f"{', '.join(differ)} differ from this run's); remove it or "
                                "drop --resume")
        history = restore_epoch(checkpoint_path, tensors, saved, model, optimiser,
                                (shuffle_gen, noise_gen))
        start_epoch = len(history)
        print(f"[vae] resumed after epoch {start_epoch} from {checkpoint_path}")

    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        order = torch.randperm(n, generator=shuffle_gen)
        sums = {"loss": 0.0, "rec": 0.0, "kl": 0.0, "dr": 0.0}
        bar = progress_bar(range(steps_per_epoch), desc=f"vae epoch {epoch + 1}/{cfg.epochs}",
                   disable=None if progress else True, leave=False, mininterval=1.0)
        for b in bar:
            step = epoch * steps_per_epoch + b
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x = data[idx].to(device)
            for group in optimiser.param_groups:
                group["lr"] = lr_at(step, total_steps, cfg.lr_max, cfg.lr_min, cfg.warmup_fraction)
            x_hat, mu, var = model(x, generator=noise_gen)
            p_real = p_real_all[idx.to(device)]
            p_rec = risk_probability(x_hat)  # gradient flows through the frozen model into x_hat
            terms = drvae_loss(x, x_hat, mu, var, p_real, p_rec,
                               kl_weight_at(step, total_steps, cfg.kl_alpha, cfg.kl_ramp_fraction),
                               cfg.beta)
            optimiser.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimiser.step()
            for key in sums:
                sums[key] += terms[key].item() * len(idx)
        row = {"epoch": epoch + 1, **{k: v / n for k, v in sums.items()},
               "lr": optimiser.param_groups[0]["lr"]}
        if not math.isfinite(row["loss"]):
            raise PipelineError(f"VAE training diverged at epoch {epoch + 1} (loss {row['loss']})")
        history.append(row)
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path,
                            {"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                             "shuffle_rng": shuffle_gen.get_state(),
                             "noise_rng": noise_gen.get_state()},
                            {"train": asdict(cfg), "n_beats": n, "history": history,
                             **({"inputs": inputs} if inputs is not None else {})})
    return history


@torch.no_grad()
def encode(model: BeatVAE, beats: np.ndarray, device: torch.device,
           batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and variances (N, latent_dim) of ``beats``."""
    model.eval().to(device)
    mus, vars_ = [], []
    for start in range(0, len(beats), batch_size):
        x = torch.as_tensor(beats[start:start + batch_size], dtype=torch.float32, device=device)
        mu, var = model.encoder(x)
        mus.append(mu.cpu().numpy())
        vars_.append(var.cpu().numpy())
    return np.concatenate(mus), np.concatenate(vars_)


@torch.no_grad()
def reconstruct(model: BeatVAE, beats: np.ndarray, device: torch.device,
                batch_size: int = 1024) -> np.ndarray:
    """Decode each beat's posterior mean; returns float32 (N, 12, 300)."""
    model.eval().to(device)
    out = [model.reconstruct(torch.as_tensor(beats[s:s + batch_size], dtype=torch.float32,
                                             device=device)).cpu().numpy()
           for s in range(0, len(beats), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, *beats.shape[1:]), np.float32)


def reconstruction_errors(beats: np.ndarray, reconstructions: np.ndarray,
                          leads: tuple[str, ...]) -> pd.DataFrame:
    """MAE, MSE and RMSE of reconstructions per lead (over beats and samples) and overall."""
    err = reconstructions.astype(np.float64) - beats
    rows = []
    for i, lead in enumerate(leads):
        e = err[:, i]
        per_beat_rmse = np.sqrt((e ** 2).mean(-1))
        rows.append({"lead": lead, "n_beats": len(e), "mae": np.abs(e).mean(), "mse": (e ** 2).mean(),
                     "rmse": np.sqrt((e ** 2).mean()), "rmse_beat_sd": per_beat_rmse.std()})
    per_beat_rmse = np.sqrt((err ** 2).reshape(len(err), -1).mean(-1))
    rows.append({"lead": "all", "n_beats": len(err), "mae": np.abs(err).mean(),
                 "mse": (err ** 2).mean(), "rmse": np.sqrt((err ** 2).mean()),
                 "rmse_beat_sd": per_beat_rmse.std()})
    return pd.DataFrame(rows)


def latent_statistics(mu: np.ndarray, var: np.ndarray) -> dict[str, np.ndarray]:
    """Per-dimension mean and SD of the posterior means and variances over training beats."""
    return {"mu_mean": mu.mean(0), "mu_sd": mu.std(0), "var_mean": var.mean(0), "var_sd": var.std(0)}


@torch.no_grad()
def sample_beats(model: BeatVAE, stats: dict[str, np.ndarray], n: int, seed: int,
                 device: torch.device = torch.device("cpu")) -> np.ndarray:
    """Draw ``n`` new beats from the aggregate posterior, approximated per dimension.

    z_d ~ Normal(mean of mu_d, sqrt(Var(mu_d) + mean(var_d))): the mixture of the training
    posteriors, moment-matched dimension by dimension.
    """
    gen = torch.Generator().manual_seed(seed)
    loc = torch.as_tensor(stats["mu_mean"], dtype=torch.float32)
    scale = torch.as_tensor(np.sqrt(stats["mu_sd"] ** 2 + stats["var_mean"]), dtype=torch.float32)
    z = loc + scale * torch.randn((n, loc.numel()), generator=gen)
    model.eval().to(device)
    return model.decoder(z.to(device)).cpu().numpy()


# --------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------
LATENT_STATS = ("mu_mean", "mu_sd", "var_mean", "var_sd")


def save_vae(folder: Path, model: BeatVAE, config: dict, stats: dict[str, np.ndarray]) -> None:
    """Write weights (tensors only), ``config.json`` and the latent statistics to ``folder``."""
    config = {**config, "architecture": model.arch}
    save_model_folder(folder, WEIGHTS_FILE, model.state_dict(), config, config,
                      arrays={f"latent_{k}": v for k, v in stats.items()})


def load_vae(folder: Path, device: torch.device | str = "cpu") -> tuple[BeatVAE, dict, dict]:
    """Rebuild a saved VAE; returns ``(model in eval mode, config, latent statistics)``."""
    folder = Path(folder)
    config = read_model_config(folder)
    tensors, _ = load_checkpoint(folder / WEIGHTS_FILE, map_location=device)
    arch = config.get("architecture")
    if not isinstance(arch, dict):
        raise PipelineError(f"{folder / CONFIG_FILE}: no 'architecture' entry; not a VAE folder")
    check_vae_architecture(arch, folder / CONFIG_FILE)
    if config.get("preprocessing", list(VAE_PREPROCESSING)) != list(VAE_PREPROCESSING):
        raise PipelineError(f"{folder / CONFIG_FILE}: preprocessing is "
                            f"{config.get('preprocessing')!r}, but the VAE's beats are always "
                            f"{list(VAE_PREPROCESSING)} (scdecg.morphing.load_beats); rerun "
                            f"{STEP_SCRIPTS['s08']} or restore the file")
    model = BeatVAE(**arch)
    load_model_state(model, tensors, folder / WEIGHTS_FILE)
    arrays = read_model_arrays(folder, tuple(f"latent_{k}" for k in LATENT_STATS), "s08",
                               (model.arch["latent_dim"],))
    stats = {k: arrays[f"latent_{k}"] for k in LATENT_STATS}
    for k in ("mu_sd", "var_mean", "var_sd"):
        if (stats[k] < 0).any():
            raise PipelineError(f"{folder / f'latent_{k}.npy'}: negative value "
                                f"{float(stats[k].min())}; a standard deviation or variance "
                                f"cannot be negative (rerun {STEP_SCRIPTS['s08']})")
    return model.to(device).eval(), config, stats


def check_vae_architecture(arch: dict, source: Path) -> None:
    """Each entry of a VAE's ``architecture`` is a known one holding a positive whole number
    (``beat_len`` a multiple of 4); else one :class:`PipelineError` naming the entry."""
    known = ("latent_dim", "n_leads", "beat_len")
    for key, value in arch.items():
        if key not in known:
            raise PipelineError(f"{source}: architecture.{key} is not an entry of the VAE "
                                f"(known: {', '.join(known)})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise PipelineError(f"{source}: architecture.{key} is {value!r}, expected a "
                                "positive whole number")
    if arch.get("beat_len", BEAT_LEN) % 4:
        raise PipelineError(f"{source}: architecture.beat_len is {arch['beat_len']}, expected "
                            "a multiple of 4 (two average pools)")


def check_generator_folder(folder: Path, beat_models: Sequence[str | Path]) -> None:
    """Refuse, before training, a generator folder that is a steering beat model, holds
    another kind of model (its ``config.json`` names a risk model's ``kind``: s08 would
    replace its config.json and history) or holds files of no s08 run (another step's folder,
    e.g. ``--output-dir . --name ecg_beats_morphing``)."""
    for beat_model in beat_models:
        if Path(beat_model).resolve() == folder.resolve():
            raise PipelineError(f"{folder}: is the beat model s08 trains against "
                                "(--beat-model); give the generator its own --name")
    config = folder / CONFIG_FILE
    if config.is_file():
        try:
            kind = read_model_config(folder).get("kind")
        except PipelineError:
            kind = None
        if kind is not None:
            raise PipelineError(f"{folder}: holds a risk model of kind {kind!r} ({config}); "
                                "give the generator its own --output-dir/--name")
    own = (CONFIG_FILE, WEIGHTS_FILE, EPOCH_CHECKPOINT, HISTORY_FILE)
    if folder.is_dir() and any(folder.iterdir()) and not any((folder / f).exists() for f in own):
        raise PipelineError(f"{folder}: a folder s08 did not write (it holds files but no "
                            f"{CONFIG_FILE} or {EPOCH_CHECKPOINT}); give the generator its own "
                            "--output-dir/--name")


def training_inputs(beats: np.ndarray, beat_models: Sequence[str | Path]) -> dict[str, object]:
    """What a resumed s08 must train on again: the SHA-256 of the training beats' samples and
    of each frozen beat model's weights (so ``--resume`` with another ``--beat-model``,
    ``--beats-dir`` or ``--max-beats`` is refused, whatever the folders are called)."""
    import hashlib

    from .io import file_digest
    from .workspace import WEIGHTS_FILE as RISK_WEIGHTS

    return {"beats": hashlib.sha256(np.ascontiguousarray(beats, np.float32).data).hexdigest(),
            "beat_models": [file_digest(Path(f) / RISK_WEIGHTS) for f in beat_models]}


def train_generator(beat_models: list[str], beats_dir: str | Path, output_dir: str | Path,
                    name: str, cfg: VAETrainConfig, device: torch.device, profile: str = "",
                    max_beats: int = 0, resume: bool = False) -> tuple[Path, list[dict]]:
    """s08 on a workspace: train the DR-VAE on the beats in ``beats_dir`` of the training
    patients of the frozen ``beat_models`` (their mean scd1 logit steers it; ``max_beats``:
    a seeded subset), then save ``output_dir/name/`` (weights, config.json, latent statistics,
    history.csv). Returns the folder and the history (one row per epoch)."""
    risk, _, splits = load_beat_models(beat_models, device)
    index = morph_beat_index(sorted(splits["train"]), beats_dir=Path(beats_dir))
    if index.empty:
        raise PipelineError(f"{beats_dir}: no beats of the {len(splits['train'])} training "
                            f"patients of {beat_models[0]}")
    if max_beats and len(index) > max_beats:
        index = index.sample(n=max_beats, random_state=cfg.seed).sort_index()
    print(f"[s08] {len(index)} training beats of {index['ptId'].nunique()} patients; "
          f"profile {profile}: {asdict(cfg)}; device {device}")
    beats = load_beats(index["beat_file"].tolist())

    folder = Path(output_dir) / name
    check_generator_folder(folder, beat_models)
    vae = BeatVAE()
    history = fit_vae(vae, beats, risk.target_probability, cfg, device,
                      checkpoint_path=folder / EPOCH_CHECKPOINT, resume=resume,
                      inputs=training_inputs(beats, beat_models))
    mu, var = encode(vae, beats, device)
    config = {"name": name, "profile": profile, "train": asdict(cfg),
              "beat_model": str(beat_models[0]), "beat_models": [str(f) for f in beat_models],
              "beats_dir": str(beats_dir), "target_output": risk.target,
              "preprocessing": list(VAE_PREPROCESSING), "n_beats": len(index),
              "n_patients": int(index["ptId"].nunique()), "final_epoch": history[-1]}
    save_vae(folder, vae.cpu(), config, latent_statistics(mu, var))
    write_csv(pd.DataFrame(history), folder / HISTORY_FILE)
    return folder, history
