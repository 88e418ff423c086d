"""Latent morphing: move beats along the gradient of the beat model's predicted risk.

A frozen beat model ``f`` (beats -> logits) and a trained VAE decoder ``Dec`` define the
morph of a latent vector ``z``: repeat ``z <- z + lr * grad_z f_scd1(Dec(z))``. Every beat of
a batch moves at once -- the gradient of the *sum* of the batch's logits with respect to the
batch of latents is, row by row, each beat's own gradient, because the frozen model (eval mode)
treats beats independently. A beat stops (freezes) once its logit reaches the stop threshold;
the loop ends when every beat has stopped, failed, or taken ``max_steps`` steps.

Also here: the beat-model protocol the morphing code relies on (:class:`BeatRiskModel`), and
the morphing-beat index of a workspace restricted to a set of patients.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .constants import BEAT_LEN, N_LEADS
from .errors import PipelineError
from .io import check_finished, check_ids, read_array, read_feather, recorded_path
from .progress import progress_bar
from .signals import zero_mode
from .workspace import (COVARIATE_DF, MORPH_BEATS_DIR, MORPH_TABLE, STAGE_ARRAYS,
                        TRAJECTORY_LOGITS, TRAJECTORY_RISK_STEPS, beat_files, beat_folder,
                        read_split)

TARGET_OUTPUT = "scd1"


# --------------------------------------------------------------------------------------
# The frozen beat model
# --------------------------------------------------------------------------------------
@dataclass
class BeatRiskModel:
    """A beat model seen through the protocol morphing needs.

    ``module`` maps zero-mode'd beats (B, 12, 300) in mV to logits (B, len(outputs)) in
    ``outputs`` order; ``output_types`` says ``classification`` or ``regression`` per output.
    The module is put in eval mode and its parameters frozen.
    """

    module: nn.Module
    outputs: list[str]
    output_types: list[str] = field(default_factory=list)
    target: str = TARGET_OUTPUT
    source: str = "beat model"

    def __post_init__(self) -> None:
        if self.target not in self.outputs:
            raise PipelineError(f"{self.source}: output {self.target!r} not among the model's "
                                f"outputs {self.outputs}")
        if not self.output_types:
            self.output_types = ["classification"] * len(self.outputs)
        if len(self.output_types) != len(self.outputs):
            raise PipelineError(f"{self.source}: {len(self.output_types)} output_types for "
                                f"{len(self.outputs)} outputs")
        self.module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.target_index = self.outputs.index(self.target)

    def check_input(self, device: torch.device | str = "cpu") -> None:
        """Run one zero beat through the model; the output width must match ``outputs``."""
        with torch.no_grad():
            out = self.module(torch.zeros(1, N_LEADS, BEAT_LEN, device=device))
        if out.ndim != 2 or out.shape[1] != len(self.outputs):
            raise PipelineError(f"{self.source}: a (1, {N_LEADS}, {BEAT_LEN}) beat gives output "
                                f"shape {tuple(out.shape)}, expected (1, {len(self.outputs)})")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def target_logit(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid ``target`` (scd1) output, shape (B,)."""
        return self.module(x)[:, self.target_index]

    def target_probability(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.target_logit(x))

    def predict_target(self, beats: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
        """Target (scd1) logits (N,) of NumPy beats."""
        return self.predict(beats, device)[:, self.target_index]

    def predict(self, beats: np.ndarray, device: torch.device | str = "cpu",
                batch_size: int = 512) -> np.ndarray:
        """Logits (N, n_outputs) of NumPy beats, in batches (full precision)."""
        from .training.distributed import Context
        from .training.loop import predict_logits

        return predict_logits(self.module, beats, Context(device=torch.device(device)),
                              batch_size, amp=False, n_outputs=len(self.outputs))


def load_beat_model(folder: Path, device: torch.device | str = "cpu") -> tuple[BeatRiskModel, dict]:
    """Load a trained beat model folder (``modelfits_beat/<name>``) as a :class:`BeatRiskModel`
    (a 10-s model's folder is refused: :func:`scdecg.training.kinds.check_model_kind`).

    The network is frozen, so its batch norms are folded into the convolutions
    (:func:`~scdecg.models.inference.fuse_for_inference`: the same function to float
    rounding): the gradients the DR-VAE and the morphs take through it cost 28% less (a
    batch of 32 demo beats, 2-core CPU).
    """
    from .models import load_trained
    from .models.inference import fuse_for_inference
    from .training.kinds import BEAT_MODEL, check_model_kind

    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"{folder}: beat-model folder not found (train it with "
                            f"01_Predictive_Model/x02_train_beats.py)")
    module, config = load_trained(folder, device)
    check_model_kind(config, folder, BEAT_MODEL)   # a 10-s model: refused, naming both kinds
    module = fuse_for_inference(module)
    outputs = list(config.get("outputs") or [])
    types = list(config.get("output_types") or [])
    model = BeatRiskModel(module, outputs, types, source=str(folder))
    model.check_input(device)
    return model, config


@dataclass
class MeanRiskModel:
    """Several beat models seen as one: the target logit is the mean of the members' logits.

    Morphing towards one model's logit can follow a direction only that model responds to (a
    shortcut, or an adversarial path off the beats' manifold); the mean over independently
    trained models (e.g. seeds of x02) keeps what they agree on. One member behaves exactly
    like that :class:`BeatRiskModel`.
    """

    members: list[BeatRiskModel]

    def __post_init__(self) -> None:
        if not self.members:
            raise PipelineError("no beat model given")
        targets = {m.target for m in self.members}
        if len(targets) != 1:
            raise PipelineError(f"beat models predict different targets: {sorted(targets)}")
        self.target = self.members[0].target
        self.source = ", ".join(m.source for m in self.members)

    def target_logit(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over members of the pre-sigmoid ``target`` output, shape (B,)."""
        if len(self.members) == 1:
            return self.members[0].target_logit(x)
        return torch.stack([m.target_logit(x) for m in self.members]).mean(0)

    def target_probability(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.target_logit(x))

    def predict_target(self, beats: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
        """Mean target logit (N,) of NumPy beats."""
        return np.mean([m.predict_target(beats, device) for m in self.members], axis=0)


def load_beat_models(folders: Sequence[Path | str], device: torch.device | str = "cpu"
                     ) -> tuple[MeanRiskModel, list[dict], dict[str, set[str]]]:
    """Load beat-model folders as one :class:`MeanRiskModel`; returns it, the configs and the
    patient split they share (models split differently would let the morph set include a
    training patient of one of them: an error naming the two folders)."""
    folders = [Path(f) for f in folders]
    if not folders:
        raise PipelineError("no beat-model folder given")
    loaded = [load_beat_model(f, device) for f in folders]
    splits = [split_patients(f) for f in folders]
    for f, s in zip(folders[1:], splits[1:]):
        if s.get("train") != splits[0].get("train") or s.get("val") != splits[0].get("val"):
            raise PipelineError(f"{f}: its patient split differs from {folders[0]}'s; "
                                f"beat models morphed together must share one split")
    return MeanRiskModel([m for m, _ in loaded]), [c for _, c in loaded], splits[0]


INDEPENDENT_COLUMNS = ("model", "n_beats", "share_raised", "mean_logit_change",
                       "median_logit_change", "mean_risk_before", "mean_risk_after")


def independent_risk_change(models: Sequence[BeatRiskModel], before: np.ndarray,
                            after: np.ndarray, device: torch.device | str = "cpu") -> list[dict]:
    """How much morphs raise the risk of beat models that did NOT steer them.

    A change the steering models found in the beats themselves should raise the risk of an
    independently trained model too; a shortcut of the steering models need not. Per model:
    ``share_raised`` (its logit rose from ``before`` to ``after``), the mean and median logit
    change, and the mean probability before and after.
    """
    rows = []
    for m in models:
        l0, l1 = m.predict_target(before, device), m.predict_target(after, device)
        d = l1 - l0
        sig = lambda v: 1.0 / (1.0 + np.exp(-v.astype(np.float64)))  # noqa: E731
        rows.append({"model": m.source, "n_beats": int(len(d)),
                     "share_raised": float(np.mean(d > 0)) if len(d) else float("nan"),
                     "mean_logit_change": float(np.mean(d)) if len(d) else float("nan"),
                     "median_logit_change": float(np.median(d)) if len(d) else float("nan"),
                     "mean_risk_before": float(np.mean(sig(l0))) if len(d) else float("nan"),
                     "mean_risk_after": float(np.mean(sig(l1))) if len(d) else float("nan")})
    return rows


# --------------------------------------------------------------------------------------
# Which beats: the morphing beats of a set of patients
# --------------------------------------------------------------------------------------
def morph_beat_index(patients: Sequence[str] | None, beats_dir: Path = Path(MORPH_BEATS_DIR),
                     covariates: Path = Path(COVARIATE_DF)) -> pd.DataFrame:
    """One row per morphing-beat file of the given patients (all patients when ``None``).

    Columns ``studyId``, ``ptId``, ``beat_file`` (path relative to the workspace), sorted
    so the order never depends on the file system.
    """
    cov = read_feather(covariates, ["studyId", "ptId"])
    check_ids(cov, covariates, patients=True)
    cov = cov.astype({"ptId": str})
    if patients is not None:
        cov = cov[cov["ptId"].isin(set(map(str, patients)))]
    beats_dir = Path(beats_dir)
    if not beats_dir.is_dir():
        raise PipelineError(f"{beats_dir}: morphing-beat folder not found (run x05 first)")
    check_finished(beats_dir)   # x05 (or x04) killed or stopped midway: refused
    rows = []
    for study_id, pt_id in zip(cov["studyId"], cov["ptId"]):
        rows += [(study_id, pt_id, str(f))
                 for _, f in beat_files(beat_folder(beats_dir, study_id), study_id)]
    return pd.DataFrame(rows, columns=["studyId", "ptId", "beat_file"]).sort_values(
        "beat_file", kind="stable").reset_index(drop=True)


def load_beats(files: Sequence[str], progress: bool = True) -> np.ndarray:
    """Stack beat files into float32 (N, 12, 300) with per-lead ``zero_mode`` applied; a file
    that is unreadable, of another shape or not finite is one :class:`PipelineError` naming it
    (a NaN beat made the VAE diverge or every reconstruction error NaN)."""
    out = np.empty((len(files), N_LEADS, BEAT_LEN), dtype=np.float32)
    for i, path in enumerate(progress_bar(files, desc="load beats", disable=None if progress else True,
                                  mininterval=1.0, unit="beat")):
        beat = read_array(path, (N_LEADS, BEAT_LEN), "x05", finite=True)
        out[i] = zero_mode(beat.astype(np.float32))
    return out


# --------------------------------------------------------------------------------------
# The morphing loop
# --------------------------------------------------------------------------------------
@dataclass
class MorphResult:
    """What :func:`morph_latents` returns; arrays are NumPy, beats (12, 300) float32."""

    z_final: np.ndarray          # (B, D)
    beats_t0: np.ndarray         # (B, 12, 300): Dec(z0), the reconstruction
    beats_final: np.ndarray      # (B, 12, 300): Dec(z) when the beat stopped
    logit_t0: np.ndarray         # (B,)
    logit_final: np.ndarray      # (B,)
    steps: np.ndarray            # (B,) gradient steps taken
    stopped: np.ndarray          # (B,) bool: reached the stop threshold
    failed: np.ndarray           # (B,) bool
    reasons: list[str]           # (B,) failure reason, "" when fine
    risk_steps: np.ndarray       # (S,) step numbers of the risk snapshots
    risk_trajectory: np.ndarray  # (S, B) logits (frozen beats repeat their last value)
    beat_steps: np.ndarray       # (S',) step numbers of the beat snapshots
    beat_trajectory: np.ndarray  # (S', B, 12, 300)


def morph_latents(decoder: Callable[[torch.Tensor], torch.Tensor],
                  target_logit: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor,
                  lr: float = 0.01, max_steps: int = 2000, stop_logit: float | None = None,
                  risk_stride: int = 1, beat_stride: int = 100,
                  progress: bool = True) -> MorphResult:
    """Gradient ascent on ``target_logit(decoder(z))`` for a batch of latents ``z0`` (B, D).

    Step 0 evaluates ``z0`` (its decoded beat is the t0 snapshot). Before each step, a beat
    whose logit is >= ``stop_logit`` stops; a beat whose latent or logit is not finite fails
    (with a reason) and stops; the others take one step. Snapshots are kept every
    ``risk_stride`` / ``beat_stride`` steps and at the last step.
    """
    if risk_stride < 1 or beat_stride < 1:
        raise ValueError("strides must be >= 1")
    device = z0.device
    z = z0.detach().clone()
    n = len(z)
    active = torch.ones(n, dtype=torch.bool, device=device)
    stopped = torch.zeros(n, dtype=torch.bool, device=device)
    failed = torch.zeros(n, dtype=torch.bool, device=device)
    steps = torch.zeros(n, dtype=torch.long, device=device)
    reasons = [""] * n
    logit_now = torch.full((n,), float("nan"), device=device)
    beats_now = torch.full((n, N_LEADS, BEAT_LEN), float("nan"), device=device)
    risk_steps, risk_traj, beat_steps, beat_traj = [], [], [], []
    logit_t0 = beats_t0 = None

    bar = progress_bar(total=max_steps, desc="morph", disable=None if progress else True,
                       mininterval=1.0, unit="step")
    step = 0
    while True:
        idx = active.nonzero().squeeze(1)
        if len(idx):
            zi = z[idx].requires_grad_(True)
            with torch.enable_grad():
                x = decoder(zi)
                logit = target_logit(x)
                ok = torch.isfinite(logit) & torch.isfinite(zi).all(1) & \
                    torch.isfinite(x).flatten(1).all(1)
                grad = torch.autograd.grad(logit[ok].sum(), zi)[0] if ok.any() else None
            logit_now[idx] = logit.detach()
            beats_now[idx] = x.detach()
            for j in idx[~ok].tolist():
                failed[j], active[j] = True, False
                reasons[j] = f"non-finite latent, beat or logit at step {step}"
            reached = ok & (logit.detach() >= stop_logit) if stop_logit is not None else \
                torch.zeros_like(ok)
            stopped[idx[reached]] = True
            active[idx[reached]] = False
        if step == 0:
            logit_t0, beats_t0 = logit_now.clone(), beats_now.clone()
        last = step == max_steps or not bool(active.any())
        if step % risk_stride == 0 or last:
            risk_steps.append(step)
            risk_traj.append(logit_now.cpu().numpy().copy())
        if step % beat_stride == 0 or last:
            beat_steps.append(step)
            beat_traj.append(beats_now.cpu().numpy().copy())
        if last:
            break
        move = idx[ok & ~reached]
        if grad is not None and len(move):
            with torch.no_grad():
                z[move] += lr * grad[ok & ~reached]
            steps[move] += 1
        step += 1
        bar.update(1)
    bar.close()
    return MorphResult(
        z_final=z.detach().cpu().numpy(), beats_t0=beats_t0.cpu().numpy(),
        beats_final=beats_now.cpu().numpy(), logit_t0=logit_t0.cpu().numpy(),
        logit_final=logit_now.cpu().numpy(), steps=steps.cpu().numpy(),
        stopped=stopped.cpu().numpy(), failed=failed.cpu().numpy(), reasons=reasons,
        risk_steps=np.asarray(risk_steps), risk_trajectory=np.stack(risk_traj),
        beat_steps=np.asarray(beat_steps), beat_trajectory=np.stack(beat_traj))


def morph_in_batches(decoder, target_logit, z0: torch.Tensor, batch_size: int,
                     **kwargs) -> MorphResult:
    """:func:`morph_latents` over consecutive chunks of ``z0``; results joined beat-wise.

    Trajectories of chunks that ended at different steps are padded forward with their last
    snapshot, so every beat has a value at every recorded step.
    """
    parts = [morph_latents(decoder, target_logit, z0[s:s + batch_size], **kwargs)
             for s in range(0, len(z0), batch_size)]
    if len(parts) == 1:
        return parts[0]

    def joined_trajectory(step_name: str, traj_name: str) -> tuple[np.ndarray, np.ndarray]:
        steps = np.unique(np.concatenate([getattr(p, step_name) for p in parts]))
        cols = []
        for p in parts:
            pos = np.searchsorted(getattr(p, step_name), steps, side="right") - 1
            cols.append(getattr(p, traj_name)[pos])
        return steps, np.concatenate(cols, axis=1)

    risk_steps, risk_traj = joined_trajectory("risk_steps", "risk_trajectory")
    beat_steps, beat_traj = joined_trajectory("beat_steps", "beat_trajectory")
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    return MorphResult(
        z_final=cat("z_final"), beats_t0=cat("beats_t0"), beats_final=cat("beats_final"),
        logit_t0=cat("logit_t0"), logit_final=cat("logit_final"), steps=cat("steps"),
        stopped=cat("stopped"), failed=cat("failed"),
        reasons=[r for p in parts for r in p.reasons], risk_steps=risk_steps,
        risk_trajectory=risk_traj, beat_steps=beat_steps, beat_trajectory=beat_traj)


START_LATENTS = ("sampled", "mean")


def start_latents(mu: np.ndarray, var: np.ndarray, how: str, seed: int = 0) -> np.ndarray:
    """The latent each beat's morph starts from (and whose decoding the gate checks).

    ``sampled``: ``mu + sqrt(var) * eps`` with ``eps`` ~ N(0, 1) drawn from a generator seeded
    with ``seed`` (the published code sampled with one fixed key); ``mean``: ``mu`` itself.
    """
    if how == "mean":
        return np.asarray(mu, dtype=np.float32)
    if how != "sampled":
        raise PipelineError(f"start latent {how!r}: use one of {', '.join(START_LATENTS)}")
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(tuple(np.shape(mu)), generator=gen).numpy()
    return (mu + np.sqrt(var) * eps).astype(np.float32)


def reconstruction_mse(beats: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Mean squared error over all 12 x 300 samples, per beat."""
    return ((beats.astype(np.float64) - reconstructions) ** 2).reshape(len(beats), -1).mean(1)


def stop_threshold(logits: np.ndarray, quantile: float) -> float:
    """The logit whose probability is the ``quantile`` of the beats' predicted probabilities."""
    if len(logits) == 0:
        raise PipelineError("no real beats to set the morphing stop threshold from")
    p = float(np.quantile(1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64))), quantile))
    p = min(max(p, 1e-12), 1 - 1e-12)
    return float(np.log(p / (1 - p)))


# --------------------------------------------------------------------------------------
# The beat model's patient split
# --------------------------------------------------------------------------------------
def split_patients(folder: Path) -> dict[str, set[str]]:
    """Patients per split (``train``, ``val``, ...) of the beat model saved in ``folder``
    (its ``split.csv``, :func:`scdecg.workspace.read_split`)."""
    table = read_split(folder)
    return {s: set(g["ptId"]) for s, g in table.groupby("split")}


def vae_training_patients(vae_folder: Path | str, vae_config: dict) -> set[str]:
    """The patients whose beats trained the VAE: the training split of the beat model its
    ``config.json`` records."""
    source = Path(vae_folder) / "config.json"
    recorded = (vae_config.get("beat_models") or [vae_config.get("beat_model")])[0]
    folder = recorded_path(recorded, source, "beat_model", "--beat-model")
    return split_patients(folder).get("train", set())


def refuse_trained_on(patients: set[str], trained: set[str], what: str,
                      held_out: str = "validation patients") -> None:
    """One :class:`PipelineError` when some of ``patients`` (held out) trained ``what``: their
    figures would not be held-out ones."""
    seen = patients & trained
    if seen:
        raise PipelineError(f"{len(seen)} of the {len(patients)} {held_out} trained {what} "
                            f"(e.g. ptId {sorted(seen)[0]!r}): models split differently; use "
                            "beat models with the patient split of the VAE's beat model")


def draw_morph_set(index: pd.DataFrame, splits: dict[str, set[str]], n_beats: int,
                   seed: int) -> pd.DataFrame:
    """Up to ``n_beats`` beats of validation patients, drawn without replacement (seeded).

    The morph set must not share a patient with the VAE's and beat model's training set; an
    overlap in the split itself is an error.
    """
    overlap = splits["train"] & splits["val"]
    if overlap:
        raise PipelineError(f"beat-model split: {len(overlap)} patient(s) in both train and val "
                            f"(e.g. {sorted(overlap)[0]})")
    val = index[index["ptId"].astype(str).isin(splits["val"])]
    if val.empty:
        raise PipelineError(f"{MORPH_BEATS_DIR}: no morphing beats of validation patients")
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(val), size=min(n_beats, len(val)), replace=False))
    return val.iloc[take].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Morph outputs on disk (NumPy + Feather, no pickles)
# --------------------------------------------------------------------------------------


def write_morph_outputs(folder: Path, table: pd.DataFrame, raw: np.ndarray, z0: np.ndarray,
                        result: MorphResult) -> None:
    """Save one morph run: ``morphs.feather`` (one row per morphed beat, ``beat_id`` = row of
    every array), the raw / t0 / final beats, the start and final latents, and the
    trajectories (``trajectory_risk.feather`` long, plus ``.npy`` arrays with their steps)."""
    from .io import save_npy, write_feather

    folder = Path(folder)
    for name, arr in (("raw", raw), ("t0", result.beats_t0), ("final", result.beats_final)):
        save_npy(arr.astype(np.float32), folder / STAGE_ARRAYS[name])
    save_npy(z0.astype(np.float32), folder / "latents_t0.npy")
    save_npy(result.z_final.astype(np.float32), folder / "latents_final.npy")
    save_npy(result.beat_trajectory.astype(np.float32), folder / "trajectory_beats.npy")
    save_npy(result.beat_steps, folder / "trajectory_beat_steps.npy")
    save_npy(result.risk_trajectory.astype(np.float32), folder / TRAJECTORY_LOGITS)
    save_npy(result.risk_steps, folder / TRAJECTORY_RISK_STEPS)
    n_snap, n = result.risk_trajectory.shape
    logits = result.risk_trajectory.astype(np.float64)
    write_feather(pd.DataFrame({
        "beat_id": np.tile(np.arange(n), n_snap), "step": np.repeat(result.risk_steps, n),
        "logit": logits.ravel(), "risk": 1 / (1 + np.exp(-logits.ravel()))}),
        folder / "trajectory_risk.feather")
    write_feather(table, folder / MORPH_TABLE)


def read_morph_outputs(folder: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """``(morphs table, {stage: beats (N, 12, 300)})`` of a morph run written by s10 (refused
    while s10's unfinished mark is there: :func:`scdecg.io.check_finished`)."""
    folder = Path(folder)
    check_finished(folder)
    table = read_feather(folder / MORPH_TABLE, ["beat_id", "status", "source_file"])
    ok = table["status"].eq("ok").to_numpy()
    stages = {}
    for stage, name in STAGE_ARRAYS.items():
        path = folder / name
        if not path.exists():
            raise PipelineError(f"{path}: not found (run 02_Morphing/s10_morph_ecgs.py)")
        stages[stage] = read_array(path, (None, N_LEADS, BEAT_LEN), "s10")
        if len(stages[stage]) != len(table):
            raise PipelineError(f"{path}: shape {stages[stage].shape} does not match "
                                f"{len(table)} rows of {folder / MORPH_TABLE}")
        broken = ok & ~np.isfinite(stages[stage]).all(axis=(1, 2))
        if broken.any():
            raise PipelineError(f"{path}: beat_id {table['beat_id'].iloc[broken.argmax()]} has "
                                f"non-finite samples although its status is 'ok' "
                                f"({int(broken.sum())} beat(s)); rerun 02_Morphing/s10_morph_ecgs.py")
    return table, stages
