"""The aVL terminal-R biomarker (pipeline step x06).

Per ECG (12, T) in millivolts:

1. a missing tail (every lead exactly zero to the end) cut off; each lead minus its own mode,
   then a zero-phase 40-Hz low-pass (``lowpass_hz=0``: none);
2. R-peaks on aVL with Hamilton's method (neurokit2's ``hamilton2002`` cleaning and detection,
   computed by :mod:`scdecg.hamilton`; only the aVL lead is processed unless the 12-lead
   median beat is asked for),
   each moved, as the published segmenter (biosppy's) did, to the peak of the polarity that
   stands out more within ±200 ms (:func:`refine_by_peak_contrast`; ``refine="qrs_centre"``
   moves it to the centre of the aVL QRS complex instead, :func:`refine_to_qrs`;
   ``refine="none"`` keeps Hamilton's own detection points);
3. ±250-sample windows around them, without the first and last peak and without windows that
   cross the record's edges (dropped, never padded); their sample-wise median is the median
   beat (12, 500), centred on the QRS;
4. on the aVL median beat, min-max normalised to [0, 1], with d1 and d2 its first and second
   differences:

   * ``R`` — the highest local maximum within ±``R_SEARCH`` samples of the centre. A local
     maximum, not the window's largest value: in a QS-shaped aVL that is the baseline at the
     window's edge, no R wave, and the ECG fails with a reason;
   * ``S`` — the first sample ``i`` in (R, R + 61) where |d1| < 0.01 for three consecutive
     samples (``i``, ``i+1``, ``i+2``); ``R + 61`` when there is none;
   * ``aVL_rs_diff`` = mean |d1[R:S]| and ``aVL_rs_diff_2`` = mean |d2[R:S-1]|. Low values
     mean a slow ("slurred") R→S downstroke.

Defaults differ from the published code in step 1 (missing tail, low-pass), in the checks that a
median beat is usable (at least 3 windows, an aVL range of 0.05 mV) and in the choice of R
(docs/DEVIATIONS.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .beats import extract_windows, recorded_length
from .constants import AVL, FS, N_LEADS
from .errors import PipelineError
from .failures import FailureLog
from .gain import unusable_ecgs
from .io import (UnreadableArray, check_ids, clear_failed_run, float_column, load_signal,
                 read_feather, refuse_failed_run, require_dir, write_csv, write_feather)
from .parallel import imap
from .signals import to_millivolts, zero_mode
from .workspace import ecg_file

HALF_WINDOW = 250        # samples either side of an aVL R-peak: windows of 500 samples
R_SEARCH = 60            # R is looked for within ±60 samples (±120 ms) of the beat centre
S_SEARCH = 61            # S is looked for in (R, R + 61)
FLAT_SLOPE = 0.01        # |d1| below this (normalised units per sample) counts as flat ...
FLAT_RUN = 3             # ... for this many consecutive samples: the S point
MIN_BEATS = 3            # fewer usable windows than this: no median beat
MIN_AVL_RANGE_MV = 0.05  # an aVL lead (or median beat) spanning less than this is flat
MIN_R_PROMINENCE = 0.05  # an R candidate must stand this far (normalised units) above its sides
#: How Hamilton detections are moved: "published" (the last step of the segmenter the
#: published code used, :func:`refine_by_peak_contrast`), "qrs_centre" (slope-energy QRS
#: centre) or "none".
RPEAK_REFINEMENTS = ("published", "qrs_centre", "none")
RPEAK_REFINEMENT = "published"
PEAK_SEARCH_S = 0.2      # "published": peaks are looked for within ±0.2 s of a detection ...
PEAK_APART_S = 0.05      # ... a polarity's second peak lies more than 0.05 s from its first ...
POLARITY_RATIO = 0.85    # ... and the positive peak wins if it stands out > 0.85 × the negative
REFINE_SEARCH = 75       # "qrs_centre": a detection moves to the aVL QRS within ±75 samples (150 ms)
REFINE_SMOOTH = 21       # samples (42 ms) of centred smoothing of the aVL slope energy
REFINE_BAND_HZ = (5.0, 30.0)
MIN_RR = 100             # refined peaks closer than this (200 ms) are one beat
MIN_QRS_ENERGY = 0.3     # ... and those with less slope energy than this × the 80th centile are not QRS
LOWPASS_HZ = 40.0        # zero-phase low-pass before everything else (0: none, as published)
LOWPASS_ORDER = 4

FEATURE_COLUMNS = ("aVL_rs_diff", "aVL_rs_diff_2")


@dataclass
class AvlFeatures:
    """What x06 finds for one ECG.

    ``status``: ``"ok"`` (both features), ``"partial"`` (``aVL_rs_diff`` only) or ``"failed"``
    (neither). Whenever a feature is missing, ``reason`` names why (a fixed phrase, for counting)
    and ``detail`` gives the record's numbers.
    """

    status: str = "failed"
    reason: str = ""
    detail: str = ""
    rs_diff: float = np.nan
    rs_diff_2: float = np.nan
    r_index: int = -1        # R in median-beat samples (0..499); centre = HALF_WINDOW
    s_index: int = -1
    n_beats: int = 0         # windows in the median beat
    rpeaks: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    used_rpeaks: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    median_beat: np.ndarray | None = None

    def row(self) -> dict:
        """The scalar fields, for a results table."""
        return {"status": self.status, "reason": self.reason, "detail": self.detail,
                "aVL_rs_diff": self.rs_diff, "aVL_rs_diff_2": self.rs_diff_2,
                "R_index": self.r_index, "S_index": self.s_index, "n_beats": self.n_beats,
                "n_rpeaks": int(len(self.rpeaks))}


def detect_rpeaks_hamilton(lead: np.ndarray, fs: int = FS) -> np.ndarray:
    """R-peak sample indices of one lead with Hamilton's (2002) cleaning and detector: the
    numbers of neurokit2's ``hamilton2002`` ``ecg_clean`` + ``ecg_peaks``, computed by
    :mod:`scdecg.hamilton` without neurokit2's per-call overhead."""
    from . import hamilton

    lead = np.asarray(lead, dtype=np.float64)
    if not np.isfinite(lead).all():
        raise ValueError("non-finite samples in the lead")
    return hamilton.detect(lead, fs)


def _ordered(candidates: np.ndarray, lead: np.ndarray, maxima: bool) -> np.ndarray:
    """``candidates`` from the most extreme: by value, then index, descending for maxima and
    ascending for minima (equal values: the later index first for maxima)."""
    order = np.lexsort((candidates, lead[candidates]))
    return candidates[order[::-1]] if maxima else candidates[order]


def _first_two_apart(candidates: np.ndarray, apart: float) -> list[int]:
    """The first candidate and the next one more than ``apart`` samples from it."""
    if len(candidates) == 0:
        return []
    first = int(candidates[0])
    far = candidates[np.abs(candidates - first) > apart]
    return [first] if len(far) == 0 else [first, int(far[0])]


def refine_by_peak_contrast(lead: np.ndarray, rpeaks: np.ndarray, fs: int = FS) -> np.ndarray:
    """Move each detection to its R-peak as the last step of biosppy's Hamilton segmenter
    (which the published x06 ran) does; written here from that rule.

    In the window [p − L, p + L) (L = ceil(0.2 s · fs), clipped at the record's ends) the
    candidates are the local maxima (minima) where the slope's sign turns inside the window,
    plus every sample followed by an equal one (plateaus count as both). Take the two
    highest maxima at least 0.05 s apart and the two deepest minima likewise. The positive
    peak wins when it stands out from the second maximum by more than 0.85 × the amount the
    negative peak stands out from the second minimum; else the negative peak. A polarity
    without a second peak wins by default; when neither has one, the one later in the window
    wins (the segmenter compares the two peaks' positions, not their values), and a window
    with no candidate at all gives no peak. Peaks landing on one sample become one.
    """
    lead = np.asarray(lead, dtype=np.float64)
    half = int(np.ceil(PEAK_SEARCH_S * fs))
    apart = PEAK_APART_S * fs
    step = np.diff(lead)
    turn = np.diff(np.sign(step))
    turn_max = np.flatnonzero(turn < 0) + 1     # inside a window [lo, hi): lo < j < hi - 1
    turn_min = np.flatnonzero(turn > 0) + 1
    flat = np.flatnonzero(step == 0)            # inside a window: lo <= k <= hi - 2
    moved = []
    for p in np.asarray(rpeaks, dtype=np.int64):
        lo, hi = max(int(p) - half, 0), min(int(p) + half, len(lead))
        flats = flat[np.searchsorted(flat, lo):np.searchsorted(flat, hi - 1)]
        polarity = []
        for turns, maxima in ((turn_max, True), (turn_min, False)):
            inside = turns[np.searchsorted(turns, lo + 1):np.searchsorted(turns, hi - 1)]
            candidates = np.concatenate([inside, flats])
            polarity.append(_first_two_apart(_ordered(candidates, lead, maxima), apart))
        pos, neg = polarity
        if len(pos) == 2 and len(neg) == 2:
            pos_contrast = abs(lead[pos[0]] - lead[pos[1]])
            neg_contrast = abs(lead[neg[0]] - lead[neg[1]])
            chosen = pos[0] if pos_contrast > POLARITY_RATIO * neg_contrast else neg[0]
        elif len(pos) < 2 and len(neg) < 2:
            if not pos or not neg:
                continue
            chosen = pos[0] if pos[0] > neg[0] else neg[0]
        else:
            lone = pos if len(pos) < 2 else neg
            if not lone:
                continue
            chosen = lone[0]
        moved.append(chosen)
    return np.unique(np.asarray(moved, dtype=np.int64))


def refine_rpeaks(lead: np.ndarray, rpeaks: np.ndarray, how: str = RPEAK_REFINEMENT,
                  fs: int = FS) -> np.ndarray:
    """Hamilton detections moved as ``how`` (one of :data:`RPEAK_REFINEMENTS`) says."""
    if how == "published":
        return refine_by_peak_contrast(lead, rpeaks, fs)
    if how == "qrs_centre":
        return refine_to_qrs(lead, rpeaks, fs)
    if how == "none":
        return np.asarray(rpeaks, dtype=np.int64)
    raise ValueError(f"unknown R-peak refinement {how!r}; known: {', '.join(RPEAK_REFINEMENTS)}")


def refine_to_qrs(lead: np.ndarray, rpeaks: np.ndarray, fs: int = FS,
                  search: int = REFINE_SEARCH, smooth: int = REFINE_SMOOTH,
                  min_rr: int = MIN_RR, min_energy: float = MIN_QRS_ENERGY) -> np.ndarray:
    """Move each detection to the centre of the nearby QRS complex of ``lead``.

    Hamilton's detector reports the first local maximum of a causal 80-ms moving average of
    |slope| that beats an adaptive threshold; on real-looking signals that point lands
    anywhere from a P wave to late in the QRS (±60 samples), which smears a median beat.
    Here each detection moves to the maximum, within ±``search`` samples, of the lead's
    slope energy (|gradient| of the zero-phase 5–30 Hz band-passed lead, smoothed by a
    centred ``smooth``-sample mean): a polarity-free QRS centre. Detections that land
    within ``min_rr`` samples of each other are merged (the stronger is kept), and those
    whose energy is below ``min_energy`` × the 80th centile of all (T or P waves the detector
    took for a QRS) are dropped.
    """
    from scipy.signal import butter, sosfiltfilt

    if len(rpeaks) == 0:
        return np.asarray(rpeaks, dtype=np.int64)
    sos = butter(2, REFINE_BAND_HZ, btype="band", fs=fs, output="sos")
    slope = np.abs(np.gradient(sosfiltfilt(sos, np.asarray(lead, dtype=np.float64))))
    energy = np.convolve(slope, np.ones(smooth) / smooth, mode="same")
    refined = []
    for p in np.asarray(rpeaks, dtype=np.int64):
        lo, hi = max(p - search, 0), min(p + search + 1, len(energy))
        refined.append(lo + int(np.argmax(energy[lo:hi])))
    merged: list[int] = []
    for r in sorted(set(refined)):
        if merged and r - merged[-1] < min_rr:
            if energy[r] > energy[merged[-1]]:
                merged[-1] = r
        else:
            merged.append(r)
    merged = np.asarray(merged, dtype=np.int64)
    strong = energy[merged] >= min_energy * np.percentile(energy[merged], 80)
    return merged[strong]


@lru_cache(maxsize=16)
def _lowpass_sos(cutoff_hz: float, fs: int, order: int) -> np.ndarray:
    from scipy.signal import butter

    return butter(order, cutoff_hz, fs=fs, output="sos")


def lowpass(ecg: np.ndarray, cutoff_hz: float = LOWPASS_HZ, fs: int = FS,
            order: int = LOWPASS_ORDER) -> np.ndarray:
    """Zero-phase Butterworth low-pass along the last axis (``cutoff_hz`` <= 0: unchanged).

    The S point is where the normalised slope stays below 0.01 per sample; on an unfiltered
    500-Hz median beat, broadband noise alone exceeds that, so S lands at random. A 40-Hz
    filter (the usual ECG display filter) leaves the QRS slopes and removes that noise.
    """
    if cutoff_hz <= 0:
        return np.asarray(ecg)
    from scipy.signal import sosfiltfilt

    return sosfiltfilt(_lowpass_sos(float(cutoff_hz), int(fs), int(order)),
                       np.asarray(ecg, dtype=np.float64), axis=-1)


def minmax(x: np.ndarray) -> np.ndarray:
    """Rescale to [0, 1] (the caller makes sure ``x`` is not constant)."""
    x = np.asarray(x, dtype=np.float64)
    return (x - x.min()) / (x.max() - x.min())


def find_r(beat: np.ndarray, centre: int = HALF_WINDOW, search: int = R_SEARCH,
           min_prominence: float = MIN_R_PROMINENCE) -> int | None:
    """Index of the highest local maximum of ``beat`` within ``centre ± search``, or None."""
    from scipy.signal import find_peaks

    lo, hi = max(centre - search, 1), min(centre + search + 1, len(beat) - 1)
    peaks, _ = find_peaks(beat, prominence=min_prominence)
    peaks = peaks[(peaks >= lo) & (peaks < hi)]
    if len(peaks) == 0:
        return None
    return int(peaks[np.argmax(beat[peaks])])


def find_s(d1: np.ndarray, r: int, search: int = S_SEARCH, flat: float = FLAT_SLOPE,
           run: int = FLAT_RUN) -> int:
    """First ``i`` in (r, r + search) with ``|d1[i:i+run]| < flat`` throughout, else r + search."""
    small = np.abs(d1) < flat
    for i in range(r + 1, min(r + search, len(d1) - run + 1)):
        if small[i:i + run].all():
            return i
    return r + search


def rs_slopes(beat: np.ndarray, out: AvlFeatures, centre: int = HALF_WINDOW) -> AvlFeatures:
    """Fill ``out`` with R, S and the two slope features of one aVL median beat.

    When S follows R at once (a flat-topped R) only the first difference has a sample there:
    ``aVL_rs_diff_2`` stays NaN (status ``partial``). Without an R wave both stay NaN.
    """
    norm = minmax(beat)
    r = find_r(norm, centre)
    if r is None:
        return _fail(out, "no R wave near the median beat centre",
                     f"no local maximum within ±{R_SEARCH} samples of sample {centre}")
    d1 = np.diff(norm)
    d2 = np.diff(norm, n=2)
    s = find_s(d1, r)
    out.r_index, out.s_index = r, s
    if s > len(d1):
        return _fail(out, "S search runs past the median beat", f"R {r}, S {s}")
    out.rs_diff = float(np.mean(np.abs(d1[r:s])))
    if s - 1 <= r:
        out.status = "partial"
        return _fail(out, "S directly after R", f"R {r}, S {s}: no second difference")
    out.rs_diff_2 = float(np.mean(np.abs(d2[r:s - 1])))
    out.status = "ok"
    return out


def _fail(out: AvlFeatures, reason: str, detail: str = "") -> AvlFeatures:
    out.reason, out.detail = reason, detail
    return out


def checked_ecg(ecg_mv: np.ndarray, out: AvlFeatures) -> np.ndarray | None:
    """The (12, T) ECG as float64 without its missing (all-zero) tail, or None with ``out``
    failed with the reason (wrong shape, non-finite or all-zero samples, too short)."""
    ecg = np.asarray(ecg_mv, dtype=np.float64)
    if ecg.ndim != 2 or ecg.shape[0] != N_LEADS or ecg.shape[1] < 2 * HALF_WINDOW:
        _fail(out, "unexpected ECG shape", f"shape {tuple(ecg.shape)}")
    elif not np.isfinite(ecg).all():
        _fail(out, "non-finite samples", f"{int((~np.isfinite(ecg)).sum())} NaN/inf samples")
    elif not ecg.any():
        _fail(out, "all-zero ECG", "every sample is 0")
    else:
        ecg = ecg[:, :recorded_length(ecg)]  # a missing (all-zero) tail is no part of the recording
        if ecg.shape[1] >= 2 * HALF_WINDOW:
            return ecg
        _fail(out, "too short before a missing tail", f"{ecg.shape[1]} samples")
    return None


def avl_features(ecg_mv: np.ndarray, fs: int = FS, min_beats: int = MIN_BEATS,
                 refine: str = RPEAK_REFINEMENT, lowpass_hz: float = LOWPASS_HZ,
                 min_avl_range: float = MIN_AVL_RANGE_MV,
                 keep_median_beat: bool = False) -> AvlFeatures:
    """The aVL R→S slope features of one (12, T) ECG in millivolts (before zero-mode).

    ``refine`` says how Hamilton's detections are moved (:func:`refine_rpeaks`). The published
    code had ``lowpass_hz=0`` (no filter), ``min_beats=1`` and ``min_avl_range=0`` (no
    flatness check); a constant aVL lead or median beat fails whatever the settings, because
    it cannot be min-max normalised.

    Never raises for a bad record: a failure comes back with its status and reason.
    """
    if refine not in RPEAK_REFINEMENTS:
        raise ValueError(f"unknown R-peak refinement {refine!r}; known: {', '.join(RPEAK_REFINEMENTS)}")
    out = AvlFeatures()
    ecg = checked_ecg(ecg_mv, out)
    if ecg is None:
        return out
    if not keep_median_beat:  # every step is per lead: the other 11 are not needed
        ecg = ecg[AVL:AVL + 1]
    ecg = lowpass(zero_mode(ecg), lowpass_hz, fs)
    lead = AVL if keep_median_beat else 0
    avl = ecg[lead]
    if np.ptp(avl) < min_avl_range or np.ptp(avl) == 0:
        return _fail(out, "flat aVL lead", f"range {np.ptp(avl):.4f} mV < {min_avl_range} mV")
    try:
        out.rpeaks = refine_rpeaks(avl, detect_rpeaks_hamilton(avl, fs), refine, fs)
    except Exception as exc:  # a degenerate lead must fail the ECG, not the run
        return _fail(out, "R-peak detection failed", f"{type(exc).__name__}: {exc}")
    windows, k = extract_windows(ecg, out.rpeaks, HALF_WINDOW, HALF_WINDOW)
    out.used_rpeaks = out.rpeaks[k]
    out.n_beats = len(windows)
    if out.n_beats < max(min_beats, 1):
        return _fail(out, "too few beats", f"{out.n_beats} usable windows from "
                     f"{len(out.rpeaks)} R-peaks; need {max(min_beats, 1)}")
    median_beat = np.median(windows, axis=0)
    if keep_median_beat:
        out.median_beat = median_beat.astype(np.float32)
    avl_beat = median_beat[lead]
    if np.ptp(avl_beat) < min_avl_range or np.ptp(avl_beat) == 0:
        return _fail(out, "flat aVL median beat", f"range {np.ptp(avl_beat):.4f} mV")
    return rs_slopes(avl_beat, out)


# ------------------------------------------------------------------ x06 on a workspace
TABLE_COLUMNS = ("studyId", "status", "reason", "detail", "aVL_rs_diff", "aVL_rs_diff_2",
                 "R_index", "S_index", "n_beats", "n_rpeaks")


@dataclass(frozen=True)
class EcgTask:
    """One ECG for :func:`features_for_file` (picklable, for worker processes)."""

    study_id: str
    path: str
    scaling_factor: float
    refine: str = RPEAK_REFINEMENT
    lowpass_hz: float = LOWPASS_HZ
    min_beats: int = MIN_BEATS
    min_avl_range: float = MIN_AVL_RANGE_MV


def features_for_file(task: EcgTask) -> dict:
    """x06 worker: load ``10_sec_ecgs/<studyId>.npy`` (µV), return one row of the x06 table."""
    def failed(reason: str, detail: str) -> dict:
        return {"studyId": task.study_id, **_fail(AvlFeatures(), reason, detail).row()}

    try:
        ecg_uv = load_signal(task.path)
    except FileNotFoundError:
        return failed("missing 10-s ECG file", task.path)
    except UnreadableArray as exc:
        return failed("unreadable 10-s ECG file", str(exc))
    except OSError as exc:
        return failed("unreadable 10-s ECG file", f"{task.path}: {exc}")
    if not np.isfinite(task.scaling_factor) or task.scaling_factor <= 0:
        return failed("invalid scaling_factor", str(task.scaling_factor))
    result = avl_features(to_millivolts(ecg_uv, task.scaling_factor), refine=task.refine,
                          lowpass_hz=task.lowpass_hz, min_beats=task.min_beats,
                          min_avl_range=task.min_avl_range)
    return {"studyId": task.study_id, **result.row()}


def failed_row(study_id: str, reason: str, detail: str = "") -> dict:
    """A row of the x06 table for an ECG that was not measured."""
    return {"studyId": study_id, **_fail(AvlFeatures(), reason, detail).row()}


def add_feature_columns(covariates: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """``covariates`` with :data:`FEATURE_COLUMNS` replaced by those of ``table`` (by studyId).

    Existing feature columns are dropped first, so rerunning x06 replaces rather than
    duplicates them; rows without a result get NaN.
    """
    keep = covariates.drop(columns=[c for c in FEATURE_COLUMNS if c in covariates.columns])
    values = table.set_index("studyId")[list(FEATURE_COLUMNS)]
    merged = keep.join(values, on="studyId")
    return merged.astype({c: "float64" for c in FEATURE_COLUMNS})


def measure_cohort(covariate_df: str | Path, ecg_dir: str | Path, gain_report: str | Path | None,
                   output_table: str | Path, refine: str = RPEAK_REFINEMENT,
                   lowpass_hz: float = LOWPASS_HZ, min_beats: int = MIN_BEATS,
                   min_avl_range: float = MIN_AVL_RANGE_MV, n_jobs: int = 0) -> pd.DataFrame:
    """x06 on a workspace: measure every ECG of ``covariate_df`` (those x03's
    ``gain_report`` flags are logged as not measured), write the per-ECG table to
    ``output_table`` and the feature columns back into ``covariate_df``; prints the failure
    summary and returns the table."""
    if refine not in RPEAK_REFINEMENTS:
        raise PipelineError(f"--rpeak-refinement {refine}: "
                            f"choose one of {', '.join(RPEAK_REFINEMENTS)}")
    covariates = read_feather(covariate_df, ["studyId", "scaling_factor"], step="x02")
    check_ids(covariates, covariate_df)
    require_dir(ecg_dir, "x03")
    scaling = float_column(covariates, "scaling_factor", covariate_df)
    tasks = [EcgTask(str(sid), str(ecg_file(ecg_dir, sid)), float(scale), refine,
                     lowpass_hz, min_beats, min_avl_range)
             for sid, scale in zip(covariates["studyId"], scaling)]
    flagged = unusable_ecgs(gain_report)
    if flagged is None:
        print(f"[x06] no x03 gain report at {gain_report!r}: x03's flags not applied")
    flagged = flagged or {}
    todo = [t for t in tasks if t.study_id not in flagged]
    done = dict(zip([t.study_id for t in todo],
                    imap(features_for_file, todo, n_jobs=n_jobs, desc="x06 aVL features")))
    rows = [done[t.study_id] if t.study_id in done
            else failed_row(t.study_id, "not measured: x03 could not resolve this ECG",
                            flagged[t.study_id])
            for t in tasks]
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))

    failures = FailureLog("x06")
    for row in table.itertuples(index=False):
        if row.status != "ok":
            failures.add(row.studyId, f"{row.status}: {row.reason}", detail=row.detail)
    if len(table) and table["aVL_rs_diff"].isna().all():
        # nothing measured (signals in the wrong unit, a wrong --ecg-dir): as x03 and x04 do,
        # stop and leave the earlier run's table and columns as they were
        first = table.iloc[0]
        refuse_failed_run(table, output_table,
                          f"no ECG measured: all {len(table)} failed (first: "
                          f"{first['studyId']!r}: {first['status']}: {first['reason']}); "
                          f"{output_table} and {covariate_df} left as they were")
    clear_failed_run(output_table)
    write_csv(table, output_table)
    write_feather(add_feature_columns(covariates, table), covariate_df)
    print(failures.summary(total=len(table)))
    return table
