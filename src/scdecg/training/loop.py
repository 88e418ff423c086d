"""The fit loop: Adam, step-decayed learning rate, early stopping, per-epoch checkpoints.

Randomness is derived from ``(seed, epoch)`` at the start of every epoch (shuffling through
a seeded :class:`~torch.utils.data.DistributedSampler`, dropout through the torch seed,
random windows through per-sample NumPy generators), so a run resumed from its checkpoint
after epoch ``e`` repeats exactly what an uninterrupted run would have done (on CPU).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from ..cli import seed_everything
from ..errors import PipelineError
from ..io import load_checkpoint, save_checkpoint
from ..models.store import load_state_checked
from .data import SignalDataset, prefetch
from .distributed import Context, barrier, gather_rows
from .history import headline_scores, write_history
from .losses import REGRESSION_WEIGHT, masked_loss
from .metrics import output_metrics
from ..progress import progress_bar
from ..workspace import CHECKPOINT_FILE

#: On CUDA a background thread assembles the next training batches while the GPU computes
#: (the same batches in the same order: randomness is per sample); on CPU the loop loads in turn.
LOADER_THREADS = 1
LOADER_DEPTH = 2


@dataclass
class FitSettings:
    lr: float
    batch_size: int
    min_epochs: int
    max_epochs: int
    patience: int
    weight_decay: float = 0.0
    gamma: float = 0.5
    lr_reduce_interval: int = 10
    seed: int = 0
    regression_weight: float = REGRESSION_WEIGHT
    #: the published loss: BCE over the regression outputs too (DEVIATIONS.md, "Loss [4]")
    bce_on_regression: bool = False
    eval_batch_size: int = 256
    amp: bool = True          # mixed precision, CUDA only
    progress: bool = True
    #: what selects the best epoch and drives early stopping: "val_loss" (published) or a
    #: validation metric "auc_<output>", "r2_<output>" (higher is better) or
    #: "loss_<output>" (that output's masked loss, lower is better)
    monitor: str = "val_loss"
    #: count epochs from 0 as the published loop did: the first learning-rate step comes after
    #: interval + 1 epochs, and at least min_epochs + 1 epochs run (False: steps after every
    #: interval epochs, at least min_epochs epochs)
    zero_based_epochs: bool = True
    #: validation loss: "pooled" (one masked loss over every labelled validation pair) or
    #: "batch_mean" (the published mean of per-batch losses, batches of batch_size in order)
    val_loss: str = "pooled"

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 1-based ``epoch``: multiplied by gamma every interval epochs
        (after interval + 1 epochs the first time, with ``zero_based_epochs``)."""
        done = max(epoch - 1 - int(self.zero_based_epochs), 0)
        return self.lr * self.gamma ** (done // max(1, self.lr_reduce_interval))

    def may_stop(self, epoch: int, best_epoch: int) -> bool:
        """Early stop after 1-based ``epoch``: the minimum is met and patience ran out."""
        counted = epoch - 1 if self.zero_based_epochs else epoch
        return counted >= self.min_epochs and epoch >= best_epoch + self.patience


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val_loss: float
    best_metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0
    best_score: float = math.nan   # the monitored value at best_epoch


def autocast(device: torch.device, enabled: bool):
    """bf16 (or fp16 where bf16 is unsupported) autocast on CUDA; a no-op elsewhere."""
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def needs_grad_scaler(device: torch.device, enabled: bool) -> bool:
    return enabled and device.type == "cuda" and not torch.cuda.is_bf16_supported()


def monitor_sign(monitor: str, outputs: list[str], regression: list[bool]) -> int:
    """+1 when a larger ``monitor`` value is better, -1 when smaller is; checks the name."""
    if monitor == "val_loss":
        return -1
    kind, _, name = monitor.partition("_")
    kinds = {"loss": (-1, None), "auc": (1, False), "r2": (1, True)}
    if kind in kinds and name in outputs:
        sign, wants_regression = kinds[kind]
        if wants_regression is None or regression[outputs.index(name)] == wants_regression:
            return sign
    choices = ["val_loss"] + [f"{'r2' if r else 'auc'}_{o}" for o, r in zip(outputs, regression)]
    raise PipelineError(f"--monitor {monitor}: not a validation metric of this model; choose "
                        f"val_loss, loss_<output> or one of {', '.join(choices[1:4])}, ...")


def _check_monitorable(monitor: str, val: SignalDataset, outputs: list[str]) -> None:
    """An AUC needs both classes among the validation labels, an R^2 two labelled values."""
    kind, _, name = monitor.partition("_")
    if kind not in ("auc", "r2"):
        return
    y = val.targets[:, outputs.index(name)]
    y = y[~np.isnan(y)]
    if (kind == "auc" and len(np.unique(y)) < 2) or len(y) < 2:
        positives = f" with {int(np.sum(y == 1))} positive" if kind == "auc" else ""
        raise PipelineError(f"--monitor {monitor}: the validation set has {len(y)} labelled "
                            f"{name} values{positives}; monitor val_loss instead")


def per_output_losses(logits: np.ndarray, targets: np.ndarray, outputs: list[str],
                      regression: list[bool]) -> dict[str, float]:
    """``{"loss_<output>": ...}``: each output's masked BCE (classification) or MSE."""
    result = {}
    for j, (name, is_reg) in enumerate(zip(outputs, regression)):
        result[f"loss_{name}"] = masked_loss(
            torch.from_numpy(logits[:, j:j + 1]), torch.from_numpy(targets[:, j:j + 1]),
            torch.tensor([is_reg]), regression_weight=1.0).item()
    return result


VAL_LOSSES = ("pooled", "batch_mean")


def validation_loss(logits: np.ndarray, targets: np.ndarray, is_regression: torch.Tensor,
                    settings: FitSettings) -> float:
    """The validation loss ``settings.val_loss`` names (see :class:`FitSettings`).

    ``batch_mean`` weighs every batch alike, so a short last batch, or one with few labels,
    counts as much as a full one, and the value depends on the batch size.
    """
    if settings.val_loss == "pooled":
        return masked_loss(torch.from_numpy(logits), torch.from_numpy(targets), is_regression,
                           settings.regression_weight, settings.bce_on_regression).item()
    if settings.val_loss != "batch_mean":
        raise ValueError(f"unknown validation loss {settings.val_loss!r}; known: {VAL_LOSSES}")
    size = max(1, settings.batch_size)
    losses = [masked_loss(torch.from_numpy(logits[i:i + size]), torch.from_numpy(targets[i:i + size]),
                          is_regression, settings.regression_weight,
                          settings.bce_on_regression).item()
              for i in range(0, len(logits), size)]
    return float(np.mean(losses)) if losses else math.nan


def to_device(arrays, device: torch.device) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(a)).to(device, non_blocking=True) for a in arrays]


@torch.inference_mode()
def predict_logits(model: nn.Module, data: SignalDataset | np.ndarray, ctx: Context,
                   batch_size: int, amp: bool = True, progress: bool = False,
                   desc: str = "predict", n_outputs: int | None = None,
                   covariates: np.ndarray | None = None) -> np.ndarray:
    """Logits (n, n_outputs) of a risk model for every sample, each rank predicting a strided
    shard: the one inference loop of the risk models (training, x03, :mod:`scdecg.api` and
    the morphing code).

    ``data`` is a :class:`SignalDataset` (inputs and covariates) or an array of model inputs
    (n, leads, length), fed with the rows of ``covariates`` when given; ``n_outputs`` gives
    the width of an empty result (default: the dataset's number of targets).
    """
    model.eval()
    mine = np.arange(ctx.rank, len(data), ctx.world_size)
    parts = []
    for start in progress_bar(range(0, len(mine), batch_size), desc=desc, mininterval=2.0,
                      disable=not (progress and ctx.is_main)):
        idx = mine[start:start + batch_size]
        if isinstance(data, np.ndarray):
            arrays = [data[idx].astype(np.float32, copy=False)]
            if covariates is not None:
                arrays.append(covariates[idx].astype(np.float32, copy=False))
            inputs = tuple(to_device(arrays, ctx.device))
        else:
            x, cov, _ = data.batch(idx)
            inputs = tuple(to_device((x, cov), ctx.device))
        with autocast(ctx.device, amp):
            parts.append(model(*inputs).float().cpu().numpy())
    if n_outputs is None:
        n_outputs = len(data.targets[0]) if len(data) and not isinstance(data, np.ndarray) else 0
    local = np.concatenate(parts) if parts else np.zeros((0, n_outputs), np.float32)
    return gather_rows(ctx, local, len(data))


@torch.inference_mode()
def stream_logits(model: nn.Module, data: SignalDataset, device: torch.device, batch_size: int,
                  amp: bool = True, workers: int = 2, depth: int = 4, progress: bool = False,
                  desc: str = "predict") -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """Logits of every sample, read from disk batch by batch while the model runs.

    Memory holds at most ``depth`` + 1 batches of signals whatever the number of samples.
    Returns ``(logits of the readable samples, readable mask over all samples, [(sample,
    reason)] for the others)``.
    """
    model.eval()
    batches = [np.arange(s, min(s + batch_size, len(data))) for s in range(0, len(data), batch_size)]
    parts, readable, failed = [], np.zeros(len(data), dtype=bool), []
    bar = progress_bar(total=len(data), desc=desc, mininterval=2.0, disable=not progress)
    for idx, (x, cov, read, reasons) in zip(batches, prefetch(data.read_batch, batches, workers, depth)):
        readable[idx[read]] = True
        failed += list(zip(idx[~read].tolist(), reasons))
        if len(x):
            x, cov = to_device((x, cov), device)
            with autocast(device, amp):
                parts.append(model(x, cov).float().cpu().numpy())
        bar.update(len(idx))
    bar.close()
    n_out = data.targets.shape[1]
    return (np.concatenate(parts) if parts else np.zeros((0, n_out), np.float32)), readable, failed


def fit(model: nn.Module, train: SignalDataset, val: SignalDataset, outputs: list[str],
        regression: list[bool], settings: FitSettings, folder: Path, ctx: Context,
        fingerprint: dict[str, Any], resume: bool = False,
        on_best: Callable[[dict[str, torch.Tensor], FitResult], None] | None = None,
        on_start: Callable[[], None] | None = None) -> FitResult:
    """Train ``model`` with early stopping on ``settings.monitor`` (by default the validation
    loss); see the module docstring.

    After every epoch the main process writes ``folder/checkpoint.pt`` (weights, optimiser,
    best weights, history); ``on_best`` is called there whenever the monitored value improves.
    ``on_start`` is called once the settings (and, resuming, the checkpoint) are accepted,
    before the first epoch: a run refused before it writes nothing.
    Training stops early when the minimum number of epochs has run and ``epoch >= best_epoch
    + patience`` (:meth:`FitSettings.may_stop`), or after ``max_epochs`` (a run resumed with a
    larger ``max_epochs`` goes on). Non-finite validation outputs or loss (a learning rate far
    too high) stop it with a :class:`PipelineError` naming the epoch.
    """
    if settings.val_loss not in VAL_LOSSES:
        raise PipelineError(f"--val-loss {settings.val_loss}: choose one of {', '.join(VAL_LOSSES)}")
    sign = monitor_sign(settings.monitor, outputs, regression)
    _check_monitorable(settings.monitor, val, outputs)
    device = ctx.device
    model.to(device)
    is_reg = torch.tensor(regression, device=device)
    # foreach: one kernel per step for all parameters (the default on CUDA only); the same
    # updates, 11% faster per step on the demo's beat model on a 2-core CPU
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr,
                                 weight_decay=settings.weight_decay, foreach=True)
    scaler = torch.amp.GradScaler("cuda", enabled=needs_grad_scaler(device, settings.amp))
    result = FitResult({k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                       0, math.inf, {})
    # max_epochs may grow on --resume; everything else must match the checkpoint
    fingerprint = dict(fingerprint, settings={k: v for k, v in asdict(settings).items()
                                              if k not in ("progress", "eval_batch_size",
                                                           "max_epochs")})
    checkpoint = folder / CHECKPOINT_FILE
    start, finished = 1, False
    if resume and checkpoint.exists():
        start, finished = _restore(checkpoint, model, optimiser, scaler, result, fingerprint)
        result.resumed_from = start - 1
        if ctx.is_main:
            print(f"resuming after epoch {start - 1} from {checkpoint}")
    elif resume and ctx.is_main:
        print(f"--resume: no {checkpoint} yet, starting from epoch 1")
    if on_start is not None:
        on_start()

    net = model
    if ctx.distributed:
        if device.type == "cuda":  # batch statistics over the global batch (CPU: per process)
            net = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    per_rank = max(1, settings.batch_size // ctx.world_size)
    needs_windows = train.signals is None or train.signals.shape[-1] > train.length

    for epoch in range(start, settings.max_epochs + 1):
        if finished:
            break
        started = time.monotonic()
        lr = settings.lr_at(epoch)
        for group in optimiser.param_groups:
            group["lr"] = lr
        seed_everything(settings.seed * 100_003 + epoch * 1_009 + ctx.rank)
        sampler = DistributedSampler(range(len(train)), num_replicas=ctx.world_size,
                                     rank=ctx.rank, shuffle=True, seed=settings.seed)
        sampler.set_epoch(epoch)
        order = np.fromiter(iter(sampler), dtype=np.int64)
        net.train()
        losses = []
        starts = range(0, len(order), per_rank)

        def load(b: int, epoch: int = epoch):
            idx = order[b:b + per_rank]
            rngs = ([np.random.default_rng([settings.seed, epoch, int(i)]) for i in idx]
                    if needs_windows else None)
            return train.batch(idx, rngs)

        bar = progress_bar(prefetch(load, starts, LOADER_THREADS if device.type == "cuda" else 0,
                            LOADER_DEPTH), total=len(starts), desc=f"epoch {epoch}",
                   mininterval=2.0, leave=False, disable=not (settings.progress and ctx.is_main))
        for batch in bar:
            x, cov, y = to_device(batch, device)
            with autocast(device, settings.amp):
                logits = net(x, cov)
            loss = masked_loss(logits, y, is_reg, settings.regression_weight,
                               settings.bce_on_regression)
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)

        val_logits = predict_logits(model, val, ctx, settings.eval_batch_size, settings.amp)
        val_loss = validation_loss(val_logits, val.targets, is_reg.cpu(), settings)
        if len(val_logits) and not (math.isfinite(val_loss) and np.isfinite(val_logits).all()):
            # every rank holds the same validation outputs, so every rank stops here
            raise PipelineError(f"training diverged at epoch {epoch} (validation loss "
                                f"{val_loss:.4g}, {int((~np.isfinite(val_logits)).sum())} "
                                "non-finite validation outputs); lower --lr")
        metrics = {**output_metrics(val.targets, val_logits, outputs, regression),
                   **per_output_losses(val_logits, val.targets, outputs, regression)}
        record = {"epoch": epoch, "lr": lr, "train_loss": float(np.mean(losses)) if losses else math.nan,
                  "val_loss": val_loss, **metrics, "seconds": time.monotonic() - started}
        result.history.append(record)
        score = record[settings.monitor]
        improved = bool(np.isfinite(score)) and (result.best_epoch == 0
                                                 or sign * (score - result.best_score) > 0)
        if improved:
            result.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            result.best_epoch, result.best_val_loss, result.best_metrics = epoch, val_loss, metrics
            result.best_score = float(score)
        finished = settings.may_stop(epoch, result.best_epoch)
        if ctx.is_main:
            print(epoch_line(record, outputs, improved, settings.monitor), flush=True)
            if improved and on_best is not None:
                on_best(result.best_state, result)
            _save(checkpoint, model, optimiser, scaler, result, fingerprint, epoch, finished)
            write_history(folder, result.history, outputs, settings.monitor, result.best_epoch,
                          figure=finished or epoch == settings.max_epochs)
        barrier(ctx)
    return result


def epoch_line(record: dict[str, float], outputs: list[str], improved: bool,
               monitor: str = "val_loss") -> str:
    """One log line per epoch; ``*`` marks an improvement of the monitored value.

    Only the headline outputs' AUC / R² are printed (see :func:`.history.headline_outputs`;
    outputs without both classes in validation are left out); every output is in
    ``history.csv``.
    """
    scores = [f"{monitor} {record[monitor]:.4f}"] if monitor.startswith("loss_") else []
    scores += headline_scores(record, outputs, monitor)
    return (f"epoch {record['epoch']:>3}  lr {record['lr']:.2e}  train {record['train_loss']:.4f}"
            f"  val {record['val_loss']:.4f}{' *' if improved else '  '}  " + ", ".join(scores))


def _save(path: Path, model: nn.Module, optimiser, scaler, result: FitResult,
          fingerprint: dict[str, Any], epoch: int, finished: bool) -> None:
    tensors = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "best_model": result.best_state, "optimizer": optimiser.state_dict()}
    # "finished" means stopped early; a run that reached max_epochs may be extended
    state = {"epoch": epoch, "finished": finished, "best_epoch": result.best_epoch,
             "best_val_loss": result.best_val_loss, "best_score": result.best_score,
             "best_metrics": result.best_metrics,
             "history": result.history, "scaler": scaler.state_dict(), "fingerprint": fingerprint}
    save_checkpoint(path, tensors, state)


def _restore(path: Path, model: nn.Module, optimiser, scaler, result: FitResult,
             fingerprint: dict[str, Any]) -> tuple[int, bool]:
    tensors, state = load_checkpoint(path)

    def refuse(what: str) -> PipelineError:
        return PipelineError(f"{path}: not a usable training checkpoint ({what}); remove it or "
                             "drop --resume")

    if not isinstance(state, dict):
        raise refuse(f"its state is {type(state).__name__}, expected a mapping")
    saved = state.get("fingerprint", {})
    differ = _differences(saved, _jsonable(fingerprint))
    if differ:
        raise PipelineError(f"{path}: checkpoint is from another configuration (differs in "
                            f"{', '.join(differ)}); remove it or drop --resume")
    missing = [k for k in ("model", "optimizer", "best_model") if k not in tensors]
    missing += [k for k in CHECKPOINT_STATE if k not in state]
    if missing:
        raise refuse(f"no {', '.join(missing)}")
    epoch, finished, history = state["epoch"], state["finished"], state["history"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise refuse(f"epoch is {epoch!r}, expected a whole number >= 0")
    if not isinstance(finished, bool):
        raise refuse(f"finished is {finished!r}, expected true or false")
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise refuse(f"history is {type(history).__name__}, expected a list of epochs")
    if not isinstance(state["best_epoch"], int) or isinstance(state["best_epoch"], bool):
        raise refuse(f"best_epoch is {state['best_epoch']!r}, expected a whole number")
    load_state_checked(model, tensors["model"], path)
    try:
        optimiser.load_state_dict(tensors["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
        raise refuse(f"optimiser state: {type(exc).__name__}: "
                     f"{(str(exc).strip().splitlines() or [''])[0]}") from exc
    result.best_state = tensors["best_model"]
    result.best_epoch, result.best_val_loss = state["best_epoch"], state["best_val_loss"]
    result.best_metrics, result.history = state["best_metrics"], history
    result.best_score = state["best_score"]
    return epoch + 1, finished


#: The entries of a training checkpoint's JSON state that resuming reads.
CHECKPOINT_STATE = ("epoch", "finished", "history", "best_epoch", "best_val_loss",
                    "best_metrics", "best_score")


def _jsonable(obj: Any) -> Any:
    import json
    return json.loads(json.dumps(obj, default=str))


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [prefix.rstrip(".")] if a != b else []
