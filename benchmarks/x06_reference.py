"""The plain x06 computation, as it was before the speed-up: the reference for the fast path.

Every lead zero-moded (modes by ``np.unique``) and low-passed (filter designed per call), R-peaks
by neurokit2's ``hamilton2002`` ``ecg_clean`` + ``ecg_peaks``, a 12-lead median beat. The
steps the speed-up left alone (refinement, windows, R/S and slopes) are the package's.
Used by ``tests/test_features.py`` (equal to 1e-6) and ``benchmarks/bench_features.py`` (old
against new per ECG).
"""
from __future__ import annotations

import numpy as np

from scdecg.beats import extract_windows
from scdecg.constants import AVL, FS
from scdecg.features import (HALF_WINDOW, LOWPASS_HZ, LOWPASS_ORDER, MIN_AVL_RANGE_MV, MIN_BEATS,
                             RPEAK_REFINEMENT, AvlFeatures, _fail, checked_ecg, refine_rpeaks,
                             rs_slopes)


def lead_modes(x: np.ndarray, decimals: int = 3) -> np.ndarray:
    """Each lead's most frequent rounded value (ties: the smallest), by ``np.unique``."""
    x = np.asarray(x, dtype=np.float64)
    flat = np.round(x.reshape(-1, x.shape[-1]), decimals)
    modes = np.empty(flat.shape[0])
    for i, lead in enumerate(flat):
        values, counts = np.unique(lead, return_counts=True)
        modes[i] = values[np.argmax(counts)]
    return modes.reshape(x.shape[:-1] + (1,))


def lowpass(ecg: np.ndarray, cutoff_hz: float = LOWPASS_HZ, fs: int = FS,
            order: int = LOWPASS_ORDER) -> np.ndarray:
    if cutoff_hz <= 0:
        return np.asarray(ecg)
    from scipy.signal import butter, sosfiltfilt

    sos = butter(order, cutoff_hz, fs=fs, output="sos")
    return sosfiltfilt(sos, np.asarray(ecg, dtype=np.float64), axis=-1)


def detect_rpeaks_hamilton(lead: np.ndarray, fs: int = FS) -> np.ndarray:
    """neurokit2's Hamilton cleaning and detector."""
    import neurokit2 as nk

    cleaned = nk.ecg_clean(np.asarray(lead, dtype=np.float64), sampling_rate=fs,
                           method="hamilton2002")
    _, info = nk.ecg_peaks(cleaned, sampling_rate=fs, method="hamilton2002")
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


def avl_features(ecg_mv: np.ndarray, fs: int = FS, min_beats: int = MIN_BEATS,
                 refine: str = RPEAK_REFINEMENT, lowpass_hz: float = LOWPASS_HZ,
                 min_avl_range: float = MIN_AVL_RANGE_MV) -> AvlFeatures:
    """:func:`scdecg.features.avl_features` computed the plain way."""
    out = AvlFeatures()
    ecg = checked_ecg(ecg_mv, out)
    if ecg is None:
        return out
    ecg = lowpass((ecg - lead_modes(ecg)), lowpass_hz, fs)
    avl = ecg[AVL]
    if np.ptp(avl) < min_avl_range or np.ptp(avl) == 0:
        return _fail(out, "flat aVL lead", f"range {np.ptp(avl):.4f} mV < {min_avl_range} mV")
    try:
        out.rpeaks = refine_rpeaks(avl, detect_rpeaks_hamilton(avl, fs), refine, fs)
    except Exception as exc:
        return _fail(out, "R-peak detection failed", f"{type(exc).__name__}: {exc}")
    windows, k = extract_windows(ecg, out.rpeaks, HALF_WINDOW, HALF_WINDOW)
    out.used_rpeaks = out.rpeaks[k]
    out.n_beats = len(windows)
    if out.n_beats < max(min_beats, 1):
        return _fail(out, "too few beats", f"{out.n_beats} usable windows")
    median_beat = np.median(windows, axis=0)
    out.median_beat = median_beat.astype(np.float32)
    if np.ptp(median_beat[AVL]) < min_avl_range or np.ptp(median_beat[AVL]) == 0:
        return _fail(out, "flat aVL median beat", f"range {np.ptp(median_beat[AVL]):.4f} mV")
    return rs_slopes(median_beat[AVL], out)
