"""Training tables and datasets for the 10-s and beat models.

A dataset is one row per sample (an ECG, or a beat of an ECG) with the signal file, the
targets (classification 0/1 with NaN for missing, regression z-scored with the training
statistics) and the z-scored covariates. Signals are preprocessed once and held in memory
when they fit under ``memory_limit_gb``; otherwise each batch reads its files (lazy mode).
Prediction streams: :meth:`SignalDataset.read_batch` batches, read ahead by :func:`prefetch`.
Missing or unreadable signal files are excluded and counted in a :class:`FailureLog`.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import numpy as np
import pandas as pd

from ..constants import N_LEADS
from ..errors import PipelineError
from ..failures import FailureLog
from ..io import (UnreadableArray, float_column, load_signal, npy_header,
                  sample_dtype_problem)
from ..progress import progress_bar
from ..signals import preprocess
from ..workspace import (BEATS_DIR, COVARIATE_DF, TEN_SEC_DIR, beat_files, beat_folder,
                         ecg_file)

Stats = dict[str, dict[str, float]]
T = TypeVar("T")
R = TypeVar("R")


# ----------------------------------------------------------------------------- tables
def label_matrix(df: pd.DataFrame, columns: list[str], regression: list[bool],
                 source: str) -> np.ndarray:
    """(n, k) float32 targets; classification columns must hold 0/1 (NaN kept as missing)."""
    out = np.empty((len(df), len(columns)), dtype=np.float32)
    for j, (col, is_reg) in enumerate(zip(columns, regression)):
        try:
            values = df[col].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise PipelineError(f"{source}: column {col} is not numeric ({exc})") from exc
        if not is_reg:
            bad = ~np.isnan(values) & ~np.isin(values, (0.0, 1.0))
            if bad.any():
                raise PipelineError(f"{source}: classification column {col} holds "
                                    f"{float(values[bad][0])!r} (row {int(np.flatnonzero(bad)[0])}); "
                                    f"expected 0/1 or missing")
        out[:, j] = values
    return out


def fit_stats(df: pd.DataFrame, columns: list[str]) -> Stats:
    """Mean and SD of each column (SD 1 when undefined or zero), for z-scoring."""
    stats = {}
    for col in columns:
        values = df[col].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        mean = float(np.nanmean(values)) if np.isfinite(values).any() else 0.0
        sd = float(np.nanstd(values, ddof=1)) if np.isfinite(values).sum() > 1 else 1.0
        stats[col] = {"mean": mean, "sd": sd if np.isfinite(sd) and sd > 0 else 1.0}
    return stats


def zscore(values: np.ndarray, columns: list[str], stats: Stats) -> np.ndarray:
    """Z-score the columns of ``values`` that have an entry in ``stats`` (others unchanged)."""
    out = values.astype(np.float32, copy=True)
    for j, col in enumerate(columns):
        if col in stats:
            out[:, j] = (out[:, j] - stats[col]["mean"]) / stats[col]["sd"]
    return out


def unzscore(values: np.ndarray, columns: list[str], stats: Stats) -> np.ndarray:
    out = values.astype(np.float64, copy=True)
    for j, col in enumerate(columns):
        if col in stats:
            out[:, j] = out[:, j] * stats[col]["sd"] + stats[col]["mean"]
    return out


# ----------------------------------------------------------------------------- signals
class SignalFileError(Exception):
    """A signal file that cannot be used; the message is the reason."""


def unreadable(exc: Exception) -> SignalFileError:
    """The failure of a file that could not be loaded: what it is instead of an array where
    :func:`~scdecg.io.load_npy` could tell, else the exception's type."""
    if isinstance(exc, UnreadableArray):
        return SignalFileError(f"unreadable: {exc.detail}")
    return SignalFileError(f"unreadable ({type(exc).__name__})")


def read_signal(path: Path, scale: float, steps: list[str]) -> np.ndarray:
    """Load a (12, T) array, divide by ``scale`` and preprocess; float32."""
    if not path.exists():
        raise SignalFileError("file missing")
    try:
        x = load_signal(path)
    except Exception as exc:  # numpy raises several types for truncated/corrupt files
        raise unreadable(exc) from exc
    if x.ndim != 2 or x.shape[0] != N_LEADS or x.shape[1] < 1:
        raise SignalFileError(f"shape {x.shape}, expected ({N_LEADS}, samples)")
    x = x.astype(np.float32) / np.float32(scale)
    if not np.isfinite(x).all():
        raise SignalFileError("non-finite samples")
    return preprocess(x, steps).astype(np.float32, copy=False)


def fit_to(x: np.ndarray, length: int, rng: np.random.Generator | None) -> np.ndarray:
    """Random window of ``length`` samples when ``rng`` is given and ``x`` is longer, else the
    first ``length`` samples; right-padded with zeros when shorter."""
    extra = x.shape[-1] - length
    if extra < 0:
        return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, -extra)])
    start = int(rng.integers(0, extra + 1)) if rng is not None and extra else 0
    return x[..., start:start + length]


@dataclass
class SignalDataset:
    """Samples with signals (held in memory, or read per batch), targets and covariates."""

    index: pd.DataFrame          # one row per sample: studyId (+ filename), path, scale
    targets: np.ndarray          # (n, n_outputs) float32, NaN = missing
    covariates: np.ndarray       # (n, n_covariates) float32, z-scored
    length: int                  # model input length
    preprocessing: list[str]
    signals: np.ndarray | None = None   # (n, 12, T) when in memory
    failures: FailureLog = field(default_factory=lambda: FailureLog("dataset"))
    cov_stats: Stats = field(default_factory=dict)      # what z-scored the covariates ...
    target_stats: Stats = field(default_factory=dict)   # ... and the regression targets

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, idx: np.ndarray, train_rngs: list[np.random.Generator] | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inputs (b, 12, length), covariates and targets of the samples ``idx``.

        ``train_rngs`` (one per sample) selects random windows of longer signals.
        """
        if self.signals is not None and (train_rngs is None or self.signals.shape[-1] <= self.length):
            x = fit_to(self.signals[idx], self.length, None)  # one gather, no per-sample copies
            return x, self.covariates[idx], self.targets[idx]
        rngs = train_rngs or [None] * len(idx)
        if self.signals is not None:
            raw = [self.signals[i] for i in idx]
        else:
            raw = []
            for i in idx:
                row = self.index.iloc[int(i)]
                try:
                    raw.append(read_signal(Path(row["path"]), row["scale"], self.preprocessing))
                except SignalFileError as exc:
                    raise PipelineError(f"{row['path']}: {exc} (file changed during training)") from exc
        x = np.stack([fit_to(r, self.length, g) for r, g in zip(raw, rngs)])
        return x, self.covariates[idx], self.targets[idx]

    def read_batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """Inputs of the samples ``idx`` read from their files (first ``length`` samples), for
        streaming prediction: ``(x, covariates, read, reasons)`` where ``read`` is a boolean
        mask over ``idx`` and ``reasons`` says why each unread sample's file could not be used
        (x and covariates hold the read samples only)."""
        idx = np.asarray(idx, dtype=np.int64)
        read = np.ones(len(idx), dtype=bool)
        x = np.zeros((len(idx), N_LEADS, self.length), dtype=np.float32)
        paths, scales = self.index["path"].to_numpy(), self.index["scale"].to_numpy()
        reasons = []
        for j, i in enumerate(idx):
            try:
                signal = read_signal(Path(paths[i]), scales[i], self.preprocessing)
            except SignalFileError as exc:
                read[j] = False
                reasons.append(str(exc))
                continue
            n = min(signal.shape[-1], self.length)
            x[j, :, :n] = signal[:, :n]
        return x[read], self.covariates[idx[read]], read, reasons


def build_dataset(items: pd.DataFrame, outputs: list[str], regression: list[bool],
                  covariates: list[str], cov_stats: Stats | None, target_stats: Stats | None,
                  length: int,
                  preprocessing: list[str], memory_limit_gb: float, name: str,
                  progress: bool = True, check_files: bool = True) -> SignalDataset:
    """Check and (when small enough) load every sample's signal; exclude bad files, counted.

    ``items`` has one row per sample with ``path``, ``scale``, ``studyId`` and the output and
    covariate columns. ``cov_stats`` / ``target_stats`` ``None`` (the training set): fitted
    (:func:`fit_stats`) on the samples kept, so a file that cannot be used does not count;
    they are on the returned dataset, for validation and prediction to reuse.
    ``memory_limit_gb=0`` never loads: each batch reads its files (and
    only the files' headers are checked here). ``check_files=False`` (streaming prediction,
    whose :meth:`SignalDataset.read_batch` reports every unusable file as it reads) skips
    that check (12.0-12.5 s -> 10.1-10.2 s to predict the 22,694 demo beats, in one run).
    """
    failures = FailureLog(name)
    keep = np.ones(len(items), dtype=bool)
    if not check_files and memory_limit_gb > 0:
        raise ValueError("check_files=False is for streaming (memory_limit_gb=0) only")
    # per file: its length, or the reason it cannot be used (0: not checked)
    lengths = _probe_lengths(items) if check_files else [0] * len(items)
    n_samples = max([n for n in lengths if isinstance(n, int)], default=1)
    in_memory = (memory_limit_gb > 0
                 and len(items) * N_LEADS * n_samples * 4 <= memory_limit_gb * 1e9)
    loaded: list[np.ndarray] = []
    for i, row in enumerate(progress_bar(items.itertuples(index=False), total=len(items),
                                 desc=f"load {name}", disable=not (progress and in_memory),
                                 mininterval=2.0)):
        try:
            if isinstance(lengths[i], SignalFileError):
                raise lengths[i]
            if in_memory:
                loaded.append(fit_to(read_signal(Path(row.path), row.scale, preprocessing),
                                     n_samples, None))
        except SignalFileError as exc:
            keep[i] = False
            failures.add(row.path, str(exc), studyId=row.studyId)
    items = items[keep].reset_index(drop=True)
    if items.empty:
        raise PipelineError(f"{name}: no usable signal files "
                            f"({failures.summary().splitlines()[0]}; first: "
                            f"{failures.rows[0]['record'] if failures.rows else 'none'})")
    if target_stats is None:
        target_stats = fit_stats(items, [o for o, r in zip(outputs, regression) if r])
    if cov_stats is None:
        cov_stats = fit_stats(items, covariates)
    targets = zscore(label_matrix(items, outputs, regression, name), outputs, target_stats)
    cov = zscore(label_matrix(items, covariates, [True] * len(covariates), name),
                 covariates, cov_stats)
    unusable = ~np.isfinite(cov).all(axis=1)
    if unusable.any():
        row = items.loc[unusable].iloc[0]
        values = ", ".join(f"{c}={row[c]}" for c in covariates)
        raise PipelineError(f"{name}: covariate missing or not finite for studyId "
                            f"{row['studyId']!r} ({values}; {int(unusable.sum())} ECG(s))")
    signals = np.stack(loaded) if in_memory else None
    return SignalDataset(items, targets, cov, length, list(preprocessing), signals, failures,
                         cov_stats, target_stats)


def prefetch(func: Callable[[T], R], items: Iterable[T], workers: int = 2,
             depth: int = 4) -> Iterator[R]:
    """``func(item)`` for every item, in order, computed up to ``depth`` items ahead by
    ``workers`` background threads (file reads and NumPy release the GIL, so reading overlaps
    the model). At most ``depth`` results wait in memory; ``workers=0`` runs in this thread."""
    if workers <= 0:
        yield from map(func, items)
        return
    items = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prefetch") as pool:
        pending = deque(pool.submit(func, item) for item in islice(items, max(depth, 1)))
        try:
            while pending:
                result = pending.popleft().result()
                for item in islice(items, 1):
                    pending.append(pool.submit(func, item))
                yield result
        finally:
            for future in pending:
                future.cancel()


def _probe_lengths(items: pd.DataFrame) -> list[int | SignalFileError]:
    """Each file's number of samples (header only), or why it cannot be used."""
    out: list[int | SignalFileError] = []
    for path in items["path"]:
        try:
            out.append(_check_header(Path(path)))
        except SignalFileError as exc:
            out.append(exc)
    return out


def _check_header(path: Path) -> int:
    if not path.exists():
        raise SignalFileError("file missing")
    try:
        shape, dtype = npy_header(path)
    except Exception as exc:
        raise unreadable(exc) from exc
    problem = sample_dtype_problem(dtype)
    if problem:
        raise SignalFileError(problem)
    if len(shape) != 2 or shape[0] != N_LEADS:
        raise SignalFileError(f"shape {shape}, expected ({N_LEADS}, samples)")
    return int(shape[1])


# ----------------------------------------------------------------------------- items
def ten_second_items(rows: pd.DataFrame, workspace: Path = Path("."),
                     ecg_dir: str = TEN_SEC_DIR,
                     failures: FailureLog | None = None) -> pd.DataFrame:
    """One sample per ECG: ``<ecg_dir>/<studyId>.npy`` scaled by ``scaling_factor``.

    A ``scaling_factor`` that is missing, infinite or not above 0 leaves its ECG out, counted
    in ``failures`` (as x04 and x06 do); text is refused (:func:`~scdecg.io.float_column`).
    """
    items = rows.reset_index(drop=True)
    items["path"] = [str(ecg_file(workspace / ecg_dir, sid)) for sid in items["studyId"]]
    items["scale"] = float_column(items, "scaling_factor", COVARIATE_DF)
    usable = np.isfinite(items["scale"]) & (items["scale"] > 0)
    if failures is not None:
        for row in items[~usable].itertuples(index=False):
            failures.add(row.path, f"invalid scaling_factor: {row.scale}", studyId=row.studyId)
    return items[usable].reset_index(drop=True)


def beat_items(rows: pd.DataFrame, workspace: Path = Path("."), beats_dir: str = BEATS_DIR,
               failures: FailureLog | None = None) -> pd.DataFrame:
    """One sample per beat file ``<beats_dir>/<studyId>/<studyId>_<k>.npy`` (mV, scale 1);
    the file's name is in column ``filename`` (the published name of the beat column).

    ECGs without any beat file are left out and counted in ``failures``.
    """
    study_ids, names, paths = [], [], []   # one table at the end (benchmarks/bench_beat_inputs.py)
    for study_id in rows["studyId"]:
        folder = beat_folder(workspace / beats_dir, study_id)
        files = [path for _, path in beat_files(folder, study_id)]
        if not files:
            if failures is not None:
                failures.add(str(folder), "no beat files", studyId=study_id)
            continue
        study_ids += [study_id] * len(files)
        names += [f.name for f in files]
        paths += [str(f) for f in files]
    if not paths:
        raise PipelineError(f"{workspace / beats_dir}: no beat files for any selected ECG")
    beats = pd.DataFrame({"studyId": pd.Series(study_ids, dtype=rows["studyId"].dtype),
                          "filename": names, "path": paths, "scale": 1.0})
    return beats.merge(rows, on="studyId", how="left", validate="many_to_one")


def describe(dataset: SignalDataset) -> dict[str, Any]:
    return {"samples": len(dataset), "ecgs": int(dataset.index["studyId"].nunique()),
            "excluded": len(dataset.failures), "in_memory": dataset.signals is not None}
