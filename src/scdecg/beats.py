"""Single beats: R-peak detection, fixed windows around each peak and the published filters.

One 10-s ECG (12, T) in millivolts becomes a stack of beats (n, 12, 300), the window
``[r - 100, r + 200)`` around each detected R-peak ``r`` (lead I, neurokit2). A window is
kept when it

* lies inside the recording, and is not the first or the last of the windows that do;
* contains exactly one R-peak (a second one counts only strictly inside the window);
* has a mean (over leads) peak-to-peak range above 0.5 mV;
* has a mean per-lead standard deviation (ddof 1, rounded to 4 decimals) above 0.06 mV;
* has a mean autocorrelation above 0.75: per lead, the centred beat's
  ``r(k) = [sum_t x_t x_{t+k} / (N - k)] / [sum_t x_t^2 / N]`` averaged over lags 0..4,
  then averaged over leads.

Each lead's median is subtracted before the beats are cut, and kept beats are numbered
0..n-1 in time order (file ``<studyId>_<k>.npy``), as published.

:func:`check_ecg` first refuses ECGs that cannot be segmented (wrong shape, NaN, a flat or
clipped lead), :func:`segment_ecg` applies all of the above and says why an ECG gave no beats;
:func:`segment_file` is the per-ECG worker of ``x04`` and ``x05``, which also writes the beats.
"""
from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .constants import BEAT_POST, BEAT_PRE, FS, LEADS, N_LEADS, N_SAMPLES, SCALING_FACTOR
from .errors import PipelineError
from .failures import FailureLog
from .gain import unusable_ecgs
from .io import (UnreadableArray, check_finished, check_ids, clear_failed_run, float_column,
                 folder_lock, load_signal, owned_output_dir, read_feather, record_path,
                 refuse_failed_run, refuse_path_clashes, remove_leftovers, replace_dir,
                 require_dir, run_first, save_npy, unfinished_run, write_csv)
from .parallel import imap
from .signals import cut_tail, to_millivolts, zero_median
from .workspace import (BEAT_DISTANCES, BEATS_DIR, COVARIATE_DF, MEDIAN_BEAT, MORPH_BEATS_DIR,
                        SD_BEAT, SEGMENTATION_LOG, WATERFALL)
from .workspace import beat_file_name, beat_files, ecg_file, is_beat_folder

#: neurokit2 method used both to clean lead I and to find its R-peaks. On MIT-BIH record 100
#: it is the most accurate and the fastest of neurokit2's detectors (tests/test_rpeaks_mitbih.py).
RPEAK_METHOD = "neurokit"
DETECTION_LEAD = 0  # lead I, as published
MIN_RPEAKS = 3      # first and last are dropped, so fewer leaves nothing

MIN_MEAN_PTP_MV = 0.5
MIN_MEAN_SD_MV = 0.06
MIN_MEAN_AUTOCORR = 0.75
AUTOCORR_LAGS = 5   # lags 0..4
SD_DDOF = 1         # the mean per-lead SD is the unbiased one ...
SD_DECIMALS = 4     # ... rounded to 4 decimals before the comparison, as published

#: ECG-level sanity checks (millivolts) made before peak detection.
FLAT_PTP_MV = 0.02          # a lead with a smaller range carries no signal
SATURATION_FRACTION = 0.01  # a lead pinned at its max (or min) for this share of samples ...
SATURATION_RUNS = 3         # ... in at least this many separate runs is clipped
MIN_TAIL_ZEROS = 100        # all leads exactly 0 for the last 0.2 s or more: a missing tail

#: Window rejection reasons, in the order they are reported.
WINDOW_FILTERS = ("multiple_rpeaks", "low_amplitude", "low_sd", "low_autocorr")


@dataclass(frozen=True)
class BeatConfig:
    """Everything that defines the beat set (defaults: the published values)."""

    fs: int = FS
    pre: int = BEAT_PRE
    post: int = BEAT_POST
    method: str = RPEAK_METHOD
    correct_artifacts: bool = False
    min_mean_ptp: float = MIN_MEAN_PTP_MV
    min_mean_sd: float = MIN_MEAN_SD_MV
    min_mean_autocorr: float = MIN_MEAN_AUTOCORR
    n_samples: int = N_SAMPLES
    zero_median: bool = True   # subtract each lead's median before cutting beats (published)
    tail_cut: int = 0          # PUBLISHED_TAIL_CUT: cut and zero-pad the end, as published
    min_lead_range: float = FLAT_PTP_MV          # 0: no flat-lead check (published)
    max_clipped: float = SATURATION_FRACTION     # inf: no clipping check (published)


# ----------------------------------------------------------------------------- checks
def recorded_length(ecg: np.ndarray) -> int:
    """Samples before a missing tail (every lead exactly zero up to the end), else all of them."""
    nonzero = np.flatnonzero(np.asarray(ecg).any(axis=0))
    end = int(nonzero[-1]) + 1 if len(nonzero) else 0
    return end if ecg.shape[-1] - end >= MIN_TAIL_ZEROS else ecg.shape[-1]


def clipped_fraction(lead: np.ndarray) -> float:
    """Share of samples pinned at the lead's max or min, counted only when they form at least
    :data:`SATURATION_RUNS` separate runs (one broad peak at the top is not clipping)."""
    worst = 0.0
    for extreme in (lead.max(), lead.min()):
        at = lead == extreme
        runs = int(at[0]) + int(np.count_nonzero(at[1:] & ~at[:-1]))
        if runs >= SATURATION_RUNS:
            worst = max(worst, float(at.mean()))
    return worst


def check_ecg(ecg: np.ndarray, n_samples: int = N_SAMPLES, min_lead_range: float = FLAT_PTP_MV,
              max_clipped: float = SATURATION_FRACTION) -> str | None:
    """Why ``ecg`` (12, n_samples) in mV cannot be segmented (``"<category>: <details>"``),
    or ``None`` when it can. Flat and clipped leads are judged before any missing tail;
    ``min_lead_range=0`` and ``max_clipped=inf`` turn those two checks off (published)."""
    ecg = np.asarray(ecg)
    if ecg.shape != (N_LEADS, n_samples):
        return f"wrong shape: {tuple(ecg.shape)}, expected {(N_LEADS, n_samples)}"
    if not np.isfinite(ecg).all():
        return "contains NaN: non-finite samples"
    if not ecg.any():
        return "flat signal: all zeros"
    recorded = ecg[:, :recorded_length(ecg)]
    ranges = np.ptp(recorded, axis=1)
    if ranges.min() < min_lead_range:
        i = int(np.argmin(ranges))
        return f"flat signal: lead {LEADS[i]} range {ranges[i]:.3g} mV"
    if not np.isfinite(max_clipped):
        return None
    clipped = [clipped_fraction(lead) for lead in recorded]
    i = int(np.argmax(clipped))
    if clipped[i] >= max_clipped:
        return f"saturated signal: lead {LEADS[i]} pinned at its extreme in {clipped[i]:.1%} of samples"
    return None


# ------------------------------------------------------------------------ R-peaks
def detect_rpeaks(lead: np.ndarray, fs: int = FS, method: str = RPEAK_METHOD,
                  correct_artifacts: bool = False) -> np.ndarray:
    """Sorted sample indices of the R-peaks of one lead: neurokit2 cleaning and peak finding.

    This is the R-peak part of ``nk.ecg_process`` (which the published code ran, delineation
    and all). ``correct_artifacts=True`` adds its Kubios artifact correction too, which
    relocates premature beats' peaks and is off by default (see docs/DEVIATIONS.md).
    """
    import neurokit2 as nk

    cleaned = nk.ecg_clean(np.asarray(lead, dtype=np.float64), sampling_rate=fs, method=method)
    if correct_artifacts:
        _, info = nk.ecg_peaks(cleaned, sampling_rate=fs, method=method, correct_artifacts=True)
        peaks = info["ECG_R_Peaks"]
    else:
        peaks = nk.ecg_findpeaks(cleaned, sampling_rate=fs, method=method)["ECG_R_Peaks"]
    return np.unique(np.asarray(peaks, dtype=np.int64))


# ------------------------------------------------------------------------ windows
def extract_windows(ecg: np.ndarray, rpeaks: np.ndarray, pre: int = BEAT_PRE,
                    post: int = BEAT_POST, edges_first: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``ecg[:, r-pre : r+post]`` inside the recording, without the two edge beats.

    ``edges_first=False``: the first and last R-peaks are dropped, then the windows that cross
    the recording's edges. ``edges_first=True`` (x04, as published): the windows that cross
    the edges are dropped first, then the first and last of those that remain.
    Returns ``(windows, k)``: windows of shape (n, leads, pre + post) and the index ``k`` of
    each window's R-peak in ``rpeaks``.
    """
    rpeaks = np.asarray(rpeaks, dtype=np.int64)
    k = np.arange(len(rpeaks)) if edges_first else np.arange(1, len(rpeaks) - 1)
    centres = rpeaks[k]
    k = k[(centres - pre >= 0) & (centres + post <= ecg.shape[-1])]
    if edges_first:
        k = k[1:-1]
    offsets = np.arange(-pre, post)
    windows = ecg[:, rpeaks[k][:, None] + offsets[None, :]]  # (leads, n, len)
    return np.ascontiguousarray(windows.transpose(1, 0, 2)), k


def mean_autocorrelation(windows: np.ndarray, lags: int = AUTOCORR_LAGS) -> np.ndarray:
    """Per window: the normalised autocorrelation averaged over lags 0..lags-1, then leads.

    A lead with zero variance has no defined autocorrelation and is left out of the mean;
    a window whose leads are all constant gets NaN (and fails the filter).
    """
    x = windows - windows.mean(axis=-1, keepdims=True)
    n = x.shape[-1]
    power = (x * x).sum(axis=-1) / n
    acf = np.stack([(x[..., : n - k] * x[..., k:]).sum(axis=-1) / (n - k) for k in range(lags)])
    with np.errstate(invalid="ignore", divide="ignore"):
        per_lead = np.where(power > 0, acf.mean(axis=0) / power, np.nan)
    valid = np.isfinite(per_lead)
    total = np.where(valid, per_lead, 0.0).sum(axis=-1)
    count = valid.sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def window_filters(windows: np.ndarray, centres: np.ndarray, rpeaks: np.ndarray,
                   config: BeatConfig = BeatConfig()) -> dict[str, np.ndarray]:
    """One boolean mask per filter in :data:`WINDOW_FILTERS`; ``True`` means rejected."""
    # R-peaks strictly inside the window: r - pre < p < r + post
    lo = np.searchsorted(rpeaks, centres - config.pre, side="right")
    hi = np.searchsorted(rpeaks, centres + config.post, side="left")
    autocorr = mean_autocorrelation(windows)
    mean_sd = np.round(windows.std(axis=-1, ddof=SD_DDOF, dtype=np.float64).mean(axis=-1),
                       SD_DECIMALS)
    return {
        "multiple_rpeaks": (hi - lo) > 1,
        "low_amplitude": np.ptp(windows, axis=-1).mean(axis=-1) <= config.min_mean_ptp,
        "low_sd": mean_sd <= config.min_mean_sd,
        "low_autocorr": ~(autocorr > config.min_mean_autocorr),
    }


# ------------------------------------------------------------------- one ECG
@dataclass
class Segmentation:
    """The outcome of segmenting one ECG.

    ``beat_index`` holds each kept beat's index in ``rpeaks``; the beat files are numbered
    0..n-1 among the kept beats instead (:attr:`file_numbers`), as published.
    """

    rpeaks: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    beat_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    beats: np.ndarray = field(default_factory=lambda: np.zeros((0, N_LEADS, BEAT_PRE + BEAT_POST),
                                                                  np.float32))
    n_windows: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WINDOW_FILTERS, 0))
    status: str = "ok"   # ok | no_beats | failed
    reason: str = ""     # "<category>: <details>"; the category is what summaries count

    @property
    def n_kept(self) -> int:
        return len(self.beat_index)

    @property
    def file_numbers(self) -> np.ndarray:
        """``k`` of the beat files ``<studyId>_<k>.npy``: 0..n-1 in time order."""
        return np.arange(self.n_kept, dtype=np.int64)

    def log_row(self, study_id: str) -> dict:
        """One row of ``segmentation_log.csv``."""
        return {"studyId": study_id, "n_rpeaks": len(self.rpeaks), "n_windows": self.n_windows,
                "n_kept": self.n_kept, "status": self.status, "reason": self.reason,
                **{f"rejected_{name}": n for name, n in self.rejected.items()}}


LOG_COLUMNS = ("studyId", "n_rpeaks", "n_windows", "n_kept", "status", "reason",
               *(f"rejected_{name}" for name in WINDOW_FILTERS))


def segment_ecg(ecg_mv: np.ndarray, config: BeatConfig = BeatConfig()) -> Segmentation:
    """Detect R-peaks on lead I, cut windows, apply the filters; never raises on bad data.

    A missing tail (every lead exactly zero to the end) counts as outside the recording: no
    window may reach into it, and the log's reason notes it. Each lead's median (over the
    recording) is then subtracted (``config.zero_median``). ``config.tail_cut`` > 0 reproduces
    the published loader instead: the last ``tail_cut`` samples are replaced by zeros and
    the median is taken with those zeros included.
    """
    problem = check_ecg(ecg_mv, config.n_samples, config.min_lead_range, config.max_clipped)
    if problem:
        return Segmentation(status="failed", reason=problem)
    ecg_mv = np.asarray(ecg_mv, dtype=np.float32)
    if config.tail_cut > 0:
        ecg_mv = cut_tail(ecg_mv, config.tail_cut)
        length = ecg_mv.shape[-1]   # as published: the padding is part of the signal
    else:
        length = recorded_length(ecg_mv)
    tail = f"missing tail: all leads zero from sample {length}" if length < ecg_mv.shape[-1] else ""
    note = f" ({tail})" if tail else ""
    ecg_mv = ecg_mv[:, :length]
    if config.zero_median:
        ecg_mv = zero_median(ecg_mv).astype(np.float32)
    try:
        rpeaks = detect_rpeaks(ecg_mv[DETECTION_LEAD], config.fs, config.method,
                               config.correct_artifacts)
    except Exception as exc:  # neurokit2 raises assorted errors on pathological input
        return Segmentation(status="failed", reason=f"R-peak detection failed: "
                                                   f"{type(exc).__name__} {exc}{note}")
    if len(rpeaks) < MIN_RPEAKS:
        return Segmentation(rpeaks=rpeaks, status="no_beats",
                            reason=f"fewer than {MIN_RPEAKS} R-peaks: {len(rpeaks)} found{note}")
    windows, k = extract_windows(ecg_mv, rpeaks, config.pre, config.post, edges_first=True)
    masks = window_filters(windows, rpeaks[k], rpeaks, config)
    keep = ~np.logical_or.reduce(list(masks.values())) if len(k) else np.zeros(0, bool)
    result = Segmentation(rpeaks=rpeaks, beat_index=k[keep], beats=windows[keep],
                          n_windows=len(k),
                          rejected={name: int(m.sum()) for name, m in masks.items()},
                          reason=tail)
    if not keep.any():
        result.status = "no_beats"
        result.reason = (f"all windows rejected: {len(k)} by the filters" if len(k)
                         else "no window fits: none inside the recording") + note
    return result


# -------------------------------------------------------------------- beat files
def write_beats(folder: Path, study_id: str, beats: np.ndarray, numbers: np.ndarray) -> None:
    """Make ``folder`` hold exactly one float32 ``<studyId>_<k>.npy`` per beat (none: no folder).

    A folder that already holds exactly these beats is left alone (a rerun costs no churn);
    otherwise it is replaced as a whole (:func:`replace_dir`).
    """
    folder = Path(folder)
    beats = [np.asarray(b, dtype=np.float32) for b in beats]
    names = [beat_file_name(study_id, int(k)) for k in numbers]
    if _holds_exactly(folder, names, beats):
        return

    def fill(tmp: Path) -> None:
        for beat, name in zip(beats, names):
            np.save(tmp / name, beat, allow_pickle=False)

    replace_dir(folder, fill if names else None)


def _holds_exactly(folder: Path, names: list[str], beats: list[np.ndarray]) -> bool:
    if not folder.is_dir():
        return not names
    if sorted(p.name for p in folder.iterdir()) != sorted(names):
        return False
    try:
        stored = [np.load(folder / name, allow_pickle=False) for name in names]
    except (OSError, ValueError):
        return False
    return all(old.dtype == new.dtype and np.array_equal(old, new)
               for old, new in zip(stored, beats))


def remove_stale_dirs(root: Path, keep: set[str]) -> int:
    """Delete beat folders under ``root`` not named in ``keep`` (studies no longer in the
    cohort) and temporary folders left by a killed run. A folder holding anything but
    ``<name>_<k>.npy`` files is never touched, so a mistaken ``root`` cannot wipe other data."""
    removed = 0
    for entry in Path(root).iterdir():
        if entry.is_symlink() or not entry.is_dir() or entry.name in keep:
            continue    # a link is never followed: what it points to is not ours
        leftover = entry.name.startswith(".") and entry.name.endswith((".tmp", ".old"))
        if leftover or is_beat_folder(entry):
            shutil.rmtree(entry)
            removed += 1
    return removed


@dataclass(frozen=True)
class SegmentTask:
    """One ECG for :func:`segment_file`."""

    study_id: str
    ecg_path: str
    scaling_factor: float


def segment_file(task: SegmentTask, beats_root: str, config: BeatConfig = BeatConfig(),
                 remove_empty: bool = True) -> dict:
    """Segment one ``10_sec_ecgs`` file (µV) and write its kept beats (mV); returns its log row.

    An ECG without beats has its earlier beat folder removed, unless ``remove_empty`` is
    False (x04 removes those folders itself once the run has given some beats)."""
    path = Path(task.ecg_path)
    if not path.exists():
        seg = Segmentation(status="failed", reason=f"missing 10_sec_ecgs file: {path}")
    elif not (np.isfinite(task.scaling_factor) and task.scaling_factor > 0):
        seg = Segmentation(status="failed", reason=f"invalid scaling_factor: {task.scaling_factor}")
    else:
        try:
            ecg_uv = load_signal(path)
        except UnreadableArray as exc:
            seg = Segmentation(status="failed", reason=f"unreadable file: {exc}")
        except OSError as exc:
            seg = Segmentation(status="failed", reason=f"unreadable file: {path} ({exc})")
        else:
            seg = segment_ecg(to_millivolts(ecg_uv, task.scaling_factor), config)
    if seg.n_kept or remove_empty:
        write_beats(record_path(beats_root, task.study_id, ""), task.study_id, seg.beats,
                    seg.file_numbers)
    return seg.log_row(task.study_id)


def finish_segmentation(log: pd.DataFrame, beats_root: str | Path, log_path: str | Path,
                        ecg_dir: str | Path) -> None:
    """After x04's segmentation (run with ``remove_empty=False``): remove the earlier beat
    folders of the ECGs without beats now. When no ECG gave a beat, nothing is removed and
    the log goes to :func:`scdecg.io.failed_run_path` (``beats_root`` keeps the earlier good run): a
    :class:`PipelineError` names how many failed, the first reason and that file."""
    empty = log["n_kept"] == 0
    if len(log) and empty.all():
        first = log.iloc[0]
        reason = " ".join(f"{first['status']}: {first['reason']}".split())
        refuse_failed_run(log, log_path,
                          f"{ecg_dir}: no ECG gave a beat (all {len(log)} failed; first: "
                          f"{first['studyId']!r}: {reason}); {beats_root}/ left as it was")
    for study_id in log.loc[empty, "studyId"]:
        write_beats(record_path(beats_root, study_id, ""), study_id, [], np.zeros(0, np.int64))
    clear_failed_run(log_path)


def segment_tasks(cohort_path: str | Path, ecg_dir: str | Path) -> list[SegmentTask]:
    """One task per cohort row (studyId, its 10-s file, its scaling factor)."""
    cohort = read_feather(cohort_path, ["studyId"], step="x02")
    check_ids(cohort, cohort_path)
    require_dir(ecg_dir, "x03")
    scaling = (float_column(cohort, "scaling_factor", cohort_path) if "scaling_factor" in cohort
               else np.full(len(cohort), SCALING_FACTOR))
    return [SegmentTask(sid, str(ecg_file(ecg_dir, sid)), float(s))
            for sid, s in zip(cohort["studyId"], scaling)]


def segment_cohort(cohort_path: str | Path, ecg_dir: str | Path, out_dir: str | Path,
                   gain_report: str | Path | None, log_name: str = SEGMENTATION_LOG,
                   config: BeatConfig = BeatConfig(), n_jobs: int = 0) -> pd.DataFrame:
    """x04 on a workspace: segment every cohort ECG (those x03's ``gain_report`` flags are
    logged as failed) into ``out_dir/<studyId>/``, under a lock on ``out_dir``; write the
    log ``out_dir/log_name``, print the summary and return the log. Until the log is
    written, ``out_dir`` carries the marker :func:`scdecg.io.unfinished_run`. When no ECG
    gives a beat, ``out_dir`` is left as it was (:func:`finish_segmentation`)."""
    if not 0 <= config.tail_cut < N_SAMPLES:
        raise PipelineError(f"--tail-cut {config.tail_cut}: must be in 0..{N_SAMPLES - 1}")
    refuse_path_clashes({"--out-dir": out_dir}, {"--cohort": cohort_path, "--ecg-dir": ecg_dir,
                                                 "--gain-report": gain_report})
    tasks = segment_tasks(cohort_path, ecg_dir)
    flagged = unusable_ecgs(gain_report)
    if flagged is None:
        print(f"[x04] no x03 gain report at {gain_report!r}: x03's flags not applied")
    refused = {t.study_id: flagged[t.study_id] for t in tasks if t.study_id in (flagged or {})}
    out = owned_output_dir(out_dir, "x04", (log_name,))
    # the lock: a second x04 over the same folder stops instead of racing; the marker: until
    # the log is written, readers refuse the folder (a killed run mixes old and new beats)
    with folder_lock(out, "x04"), unfinished_run(out, "x04"):
        remove_leftovers(out)
        work = functools.partial(segment_file, beats_root=str(out), config=config,
                                 remove_empty=False)
        todo = [t for t in tasks if t.study_id not in refused]
        rows = dict(zip([t.study_id for t in todo],
                        imap(work, todo, n_jobs=n_jobs, desc="x04 beats")))
        rows.update({sid: Segmentation(status="failed", reason=reason).log_row(sid)
                     for sid, reason in refused.items()})
        log = pd.DataFrame([rows[t.study_id] for t in tasks], columns=list(LOG_COLUMNS))
        # no beat at all: stops, leaving the earlier beats; else removes the emptied folders
        finish_segmentation(log, out, out / log_name, ecg_dir)
        stale = remove_stale_dirs(out, {t.study_id for t in todo})
        write_csv(log, out / log_name)

    failures = FailureLog("x04")
    for row in log[log["status"] != "ok"].itertuples():
        failures.add(row.studyId, f"{row.status}: {row.reason.split(':')[0]}")
    rejected = {c.removeprefix("rejected_"): int(log[c].sum())
                for c in log if c.startswith("rejected_")}
    print(f"[x04] {len(log)} ECGs: {int(log['n_rpeaks'].sum())} R-peaks, "
          f"{int(log['n_windows'].sum())} interior windows, {int(log['n_kept'].sum())} beats "
          f"kept; windows rejected per filter: {rejected}")
    if len(failures):
        print(failures.summary(total=len(log)))
    if stale:
        print(f"[x04] removed {stale} stale folder(s) from {out}/")
    return log


# ------------------------------------------------------------- the morphing beat set
@dataclass(frozen=True)
class Exclusion:
    """One ECG-level exclusion of the morphing beat set.

    ``rule`` is ``"within"`` (keep ``low <= value <= high``; a missing value is excluded when
    ``missing_excluded``), ``"above"`` (exclude ``value > low``), ``"below"`` (exclude
    ``value < low``) or ``"true"`` (exclude a true flag; missing counts as false).
    """

    step: str
    column: str
    rule: str
    low: float = np.nan
    high: float = np.nan
    missing_excluded: bool = True

    def excluded(self, values) -> np.ndarray:
        import pandas as pd

        if self.rule == "true":
            return values.where(values.notna(), False).astype(bool).to_numpy()
        x = pd.to_numeric(values, errors="coerce").to_numpy(float)
        if self.rule == "within":
            outside = (x < self.low) | (x > self.high)
            return outside | np.isnan(x) if self.missing_excluded else outside
        if self.rule == "above":
            return x > self.low
        if self.rule == "below":
            return x < self.low
        raise ValueError(f"unknown exclusion rule {self.rule!r}")


FLAG_COLUMNS = ("VTVF", "ICD_VT", "ICD_VF", "Phi_VT", "ST_elevation", "ST_depression", "qtc500",
                "LBBB", "antiarr", "deltawave", "CHF_Cardiomyopathy", "Hypertension", "CAD",
                "Diabetes", "Hyperlipidemia", "TROPT40", "Acute_MI", "Old_MI")
#: The published code filtered on these all-False placeholders; the real NTUH flags replace them.
REAL_FLAGS = {"LBBB": "lbbb", "deltawave": "dltwv"}


#: QTc and RR limits were "abnormal" flags in the published code: a missing value gave a
#: false flag and the ECG stayed. Heart rate and age were range filters: missing fails them.
MISSING_FLAGGED = ("qtcb", "qtcf", "rrInterval")


def morphing_exclusions(real_flags: bool = True,
                        exclude_missing_intervals: bool = False) -> list[Exclusion]:
    """The published ECG-level exclusions, in order (``real_flags``: lbbb/dltwv, a fix).

    ``exclude_missing_intervals`` also excludes ECGs with a missing QTcB, QTcF or RR interval
    (the published code kept them)."""
    steps = [Exclusion("heart rate outside 30-90", "heartRate", "within", 30, 90),
             Exclusion("age outside 18-80", "age", "within", 18, 80),
             Exclusion("most_recent_ef < 35", "most_recent_ef", "below", 35)]
    for flag in FLAG_COLUMNS:
        column = REAL_FLAGS.get(flag, flag) if real_flags else flag
        steps.append(Exclusion(column, column, "true"))
    steps += [Exclusion("heartRate > 120", "heartRate", "above", 120),
              Exclusion("pDuration > 120", "pDuration", "above", 120),
              Exclusion("pDuration < 20", "pDuration", "below", 20),
              Exclusion("qrsDuration > 120", "qrsDuration", "above", 120),
              Exclusion("qrsDuration < 20", "qrsDuration", "below", 20),
              Exclusion("qtcb outside 350-450", "qtcb", "within", 350, 450,
                        exclude_missing_intervals),
              Exclusion("qtcf outside 350-450", "qtcf", "within", 350, 450,
                        exclude_missing_intervals),
              Exclusion("rrInterval outside 350-1500", "rrInterval", "within", 350, 1500,
                        exclude_missing_intervals)]
    return steps


def reference_beats(paths: list[Path], n_max: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Point-wise median and SD (12, 300) over a seeded sample of at most ``n_max`` beats."""
    if not paths:
        raise ValueError("no beats to build a median beat from")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(paths), size=min(n_max, len(paths)), replace=False))
    stack = np.stack([np.load(paths[i], allow_pickle=False) for i in chosen])  # float32
    return np.median(stack, axis=0).astype(np.float64), stack.std(axis=0, dtype=np.float64)


SD_FLOOR = 1e-6  # mV; guards the z-distance against samples where every beat is identical


def z_distances(beats: np.ndarray, median: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``||(beat - median) / sd||`` (Frobenius norm over 12 x 300) of each beat."""
    z = (np.asarray(beats, dtype=np.float64) - median) / np.maximum(sd, SD_FLOOR)
    return np.sqrt((z * z).reshape(len(z), -1).sum(axis=1))


def select_morphing_beats(study_id: str, source_root: str, target_root: str, median: np.ndarray,
                          sd: np.ndarray, max_distance: float) -> list[dict]:
    """Copy the beats of one ECG within ``max_distance`` of the median beat; one row per beat.

    An ECG without such beats writes nothing (x05 removes its earlier folder once the run has
    kept some beats)."""
    files = beat_files(record_path(source_root, study_id, ""))
    beats = [np.load(p, allow_pickle=False) for _, p in files]
    distances = z_distances(np.stack(beats), median, sd) if beats else np.zeros(0)
    keep = distances <= max_distance
    kept = [k for (k, _), ok in zip(files, keep) if ok]
    if kept:
        write_beats(record_path(target_root, study_id, ""), study_id,
                    [b for b, ok in zip(beats, keep) if ok], np.asarray(kept, dtype=np.int64))
    return [{"studyId": study_id, "beat_file": p.name, "z_distance": float(d), "kept": bool(ok)}
            for (_, p), d, ok in zip(files, distances, keep)]


# --------------------------------------------------------------------------------------
# The morphing beat set step (00 x05_create_morphing_beats.py)
# --------------------------------------------------------------------------------------
def _waterfall_row(step: str, kept, beats) -> dict:
    return {"step": step, "ecgs": int(kept.sum()), "beats": int(beats[kept].sum())}


def create_morphing_beats(cohort: str | Path = COVARIATE_DF, beats: str | Path = BEATS_DIR,
                          out_dir: str | Path = MORPH_BEATS_DIR, *,
                          segmentation_log: str = SEGMENTATION_LOG,
                          max_reference_beats: int = 10_000, max_z_distance: float = 100.0,
                          real_flags: bool = True, exclude_missing_intervals: bool = False,
                          seed: int = 42, n_jobs: int = 0):
    """Build the morphing beat set: the x04 beats of the ECGs that pass the published
    exclusions and lie within ``max_z_distance`` of the median beat.

    Writes ``<out_dir>/<studyId>/<studyId>_<k>.npy``, the median and SD beats
    (``median_beat.npy``, ``sd_beat.npy``), every beat's z-distance
    (``x05_beat_distances.csv``) and the waterfall table (``x05_waterfall_table_results.csv``);
    until they are written, ``out_dir`` carries the marker :func:`scdecg.io.unfinished_run`,
    and a second x05 over it stops (:func:`scdecg.io.folder_lock`).

    Parameters
    ----------
    cohort : str or pathlib.Path
        The cohort table after x02 (``covariate_df.feather``).
    beats : str or pathlib.Path
        x04's beat folder, holding ``segmentation_log``.
    out_dir : str or pathlib.Path
        The folder receiving the morphing beats and the tables.
    segmentation_log : str
        x04's log file name inside ``beats``.
    max_reference_beats : int
        Beats sampled (seeded) for the median and SD beats.
    max_z_distance : float
        Beats farther than this from the median beat (z-distance) are dropped.
    real_flags : bool
        Exclude on the real ``lbbb``/``dltwv`` flags (False: the published all-False
        placeholders).
    exclude_missing_intervals : bool
        Also exclude ECGs whose QTcB, QTcF or RR interval is missing (the published code
        kept them).
    seed : int
        Seed of the reference-beat sample.
    n_jobs : int
        Worker processes (0: all cores, 1: in-process).

    Returns
    -------
    pandas.DataFrame
        The waterfall table: after each step, the ECGs and beats that remain.

    Examples
    --------
    >>> create_morphing_beats(n_jobs=1)["beats"].iloc[-1]  # doctest: +SKIP
    41873
    """
    refuse_path_clashes({"--out-dir": out_dir}, {"--cohort": cohort, "--beats": beats})
    steps = morphing_exclusions(real_flags=real_flags,
                                exclude_missing_intervals=exclude_missing_intervals)
    table = read_feather(cohort, ["studyId", *dict.fromkeys(s.column for s in steps)],
                         step="x02")
    check_ids(table, cohort)
    check_finished(beats)   # x04 killed or stopped midway: refused, naming it
    log_path = Path(beats) / segmentation_log
    if not log_path.exists():
        raise PipelineError(f"{log_path}: file not found ({run_first('x04')})")
    log = pd.read_csv(log_path, dtype={"studyId": str}).set_index("studyId")
    missing = table.loc[~table["studyId"].isin(log.index), "studyId"]
    if len(missing):
        raise PipelineError(f"{log_path}: no row for studyId {missing.iloc[0]!r} "
                            f"({len(missing)} cohort ECGs missing; rerun x04)")
    n_beats = log.loc[table["studyId"], "n_kept"].reset_index(drop=True)

    kept = pd.Series(True, index=table.index)
    rows = [_waterfall_row("all ECGs (beats from x04)", kept, n_beats)]
    for step in steps:
        kept &= ~step.excluded(table[step.column])
        rows.append(_waterfall_row(f"exclude {step.step}", kept, n_beats))
    kept &= n_beats > 0
    rows.append(_waterfall_row("ECGs with at least one beat", kept, n_beats))
    selected = table.loc[kept, "studyId"].tolist()

    out = owned_output_dir(out_dir, "x05", (BEAT_DISTANCES, WATERFALL))
    paths = [p for sid in selected for _, p in beat_files(Path(beats) / sid)]
    if len(paths) != int(n_beats[kept].sum()):
        raise PipelineError(f"{beats}/: {len(paths)} beat files for the selected ECGs, but "
                            f"{log_path} lists {int(n_beats[kept].sum())} (rerun x04)")
    if not paths:
        raise PipelineError(f"{cohort}: no ECG passes the morphing exclusions with beats "
                            f"(see the waterfall above)\n" + pd.DataFrame(rows).to_string(index=False))
    median, sd = reference_beats(paths, max_reference_beats, seed)

    work = functools.partial(select_morphing_beats, source_root=str(beats), target_root=str(out),
                             median=median, sd=sd, max_distance=max_z_distance)
    # the lock: a second x05 over the same folder stops instead of racing (or removing the
    # first one's temporaries); the marker: until the tables are written, readers refuse out
    with folder_lock(out, "x05"), unfinished_run(out, "x05"):
        remove_leftovers(out)
        distances = pd.DataFrame([row for ecg_rows in imap(work, selected, n_jobs=n_jobs,
                                                            desc="x05 morphing beats")
                                  for row in ecg_rows],
                                 columns=["studyId", "beat_file", "z_distance", "kept"])
        per_ecg = distances.groupby("studyId")["kept"].sum()
        if not per_ecg.sum():  # nothing written yet: the earlier morphing beat set stays
            refuse_failed_run(distances, out / BEAT_DISTANCES,
                              f"{out}/: no beat lies within z-distance {max_z_distance:g} of "
                              f"the median beat (all {len(distances)} beats of {len(selected)} "
                              f"ECGs dropped; smallest {distances['z_distance'].min():.1f}); "
                              f"{out}/ left as it was", "every beat's distance")
        save_npy(median.astype(np.float32), out / MEDIAN_BEAT)
        save_npy(sd.astype(np.float32), out / SD_BEAT)
        rows.append({"step": f"exclude beats with z-distance > {max_z_distance:g}",
                     "ecgs": int((per_ecg > 0).sum()), "beats": int(per_ecg.sum())})
        waterfall = pd.DataFrame(rows)
        waterfall["ecgs_removed"] = (-waterfall["ecgs"].diff()).fillna(0).astype(int)
        waterfall["beats_removed"] = (-waterfall["beats"].diff()).fillna(0).astype(int)
        stale = remove_stale_dirs(out, set(per_ecg.index[per_ecg > 0]))
        write_csv(distances, out / BEAT_DISTANCES)
        write_csv(waterfall, out / WATERFALL)
        clear_failed_run(out / BEAT_DISTANCES)

    print(waterfall.to_string(index=False))
    print(f"[x05] median beat from {min(len(paths), max_reference_beats)} of {len(paths)} "
          f"beats; z-distance median {distances['z_distance'].median():.1f}, "
          f"{int((~distances['kept']).sum())} beats above {max_z_distance:g}")
    if stale:
        print(f"[x05] removed {stale} stale folder(s) from {out}/")
    print(f"[x05] wrote {int(per_ecg.sum())} beats of {int((per_ecg > 0).sum())} ECGs to {out}/")
    return waterfall
