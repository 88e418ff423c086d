"""Hamilton's (2002) QRS cleaning and detector, as neurokit2 0.3 runs them, without the overhead.

x06 ran ``nk.ecg_clean(method="hamilton2002")`` and ``nk.ecg_peaks(method="hamilton2002")``
once per ECG; most of that time went to designing the same filter again for every call and
to a Python loop over every sample of the slope signal that calls ``np.mean`` at each of its
local maxima. Here the filter is designed once, the loop visits only the local maxima (found
vectorised: the loop body does nothing elsewhere) and the running means of at most 8 values
are summed in the order NumPy's pairwise sum uses, so thresholds and detections are the same
numbers (``tests/test_features.py`` compares them with neurokit2 on synthetic ECGs).

The detector (neurokit2's ``_ecg_findpeaks_hamilton``, itself from py-ecg-detectors) is kept
with its quirks, e.g. the search for a missed beat slices the list of candidate peaks with
sample indices; changing them would change which beats x06 uses.
"""
from __future__ import annotations

from bisect import insort
from collections import deque
from functools import lru_cache

import numpy as np

from .constants import FS

BAND_HZ = (8.0, 16.0)   # neurokit2 "hamilton2002" cleaning: order-1 Butterworth band-pass ...
BAND_ORDER = 1          # ... run forward only, from the steady state of the signal's mean
AVERAGE_S = 0.08        # 80-ms moving average of |slope|
REFRACTORY_S = 0.3      # a QRS closer than this to the previous one is noise
MISSED_RR = 1.5         # an RR interval above 1.5 × the mean RR triggers a search back ...
MISSED_GAP_S = 0.36     # ... for a peak at least 360 ms after the previous QRS ...
MISSED_TH = 0.5         # ... above half the threshold
TH_FRACTION = 0.45      # threshold = noise mean + 0.45 × (signal mean - noise mean)
HISTORY = 8             # running means over the last 8 signal / noise peaks and RR intervals


@lru_cache(maxsize=8)
def _band(fs: int) -> tuple[np.ndarray, np.ndarray]:
    """The cleaning filter's second-order sections and their unit-step initial state."""
    from scipy.signal import butter, sosfilt_zi

    sos = butter(BAND_ORDER, list(np.sort(BAND_HZ)), btype="bandpass", output="sos", fs=fs)
    return sos, sosfilt_zi(sos)


def clean(lead: np.ndarray, fs: int = FS) -> np.ndarray:
    """``nk.ecg_clean(lead, fs, method="hamilton2002")`` for a finite lead."""
    from scipy.signal import sosfilt

    lead = np.asarray(lead, dtype=np.float64)
    sos, zi = _band(fs)
    return sosfilt(sos, lead, zi=zi * np.mean(lead))[0]


def _mean(values: deque) -> float:
    """``np.mean`` of up to 8 floats, bit for bit (NumPy sums fewer than 8 in order, and 8 as
    ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)))."""
    n = len(values)
    if n == 8:
        a = values
        total = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
    else:
        total = 0.0
        for v in values:
            total += v
    return total / n


def find_peaks(cleaned: np.ndarray, fs: int = FS) -> np.ndarray:
    """R-peaks of a cleaned lead: ``nk.ecg_peaks(cleaned, fs, method="hamilton2002")``."""
    from scipy.signal import lfilter

    width = int(AVERAGE_S * fs)
    ma = lfilter(np.ones(width) / width, [1], np.abs(np.diff(np.asarray(cleaned, np.float64))))
    ma[0:width * 2] = 0
    inner = ma[1:-1]
    candidates = (np.flatnonzero((ma[:-2] < inner) & (ma[2:] < inner)) + 1).tolist()
    heights = ma[candidates].tolist()

    n_pks: deque = deque([], maxlen=HISTORY)
    s_pks: deque = deque([], maxlen=HISTORY)
    rr: deque = deque([], maxlen=HISTORY)
    n_ave = s_ave = rr_ave = th = 0.0
    qrs, idx, peaks = [0], [], []
    refractory, gap = REFRACTORY_S * fs, int(MISSED_GAP_S * fs)
    for peak, height in zip(candidates, heights):
        peaks.append(peak)
        if height > th and peak - qrs[-1] > refractory:
            qrs.append(peak)
            idx.append(peak)
            s_pks.append(height)
            s_ave = _mean(s_pks)
            if rr_ave != 0.0 and qrs[-1] - qrs[-2] > MISSED_RR * rr_ave:
                added = False
                for missed in peaks[idx[-2] + 1:idx[-1]]:
                    if missed - peaks[idx[-2]] > gap and ma[missed] > MISSED_TH * th:
                        insort(qrs, missed)
                        added = True
                        break
                if added:
                    continue
            if len(qrs) > 2:
                rr.append(qrs[-1] - qrs[-2])
                rr_ave = int(_mean(rr))
        else:
            n_pks.append(height)
            n_ave = _mean(n_pks)
        th = n_ave + TH_FRACTION * (s_ave - n_ave)
    return np.asarray(qrs[1:], dtype=np.int64)


def detect(lead: np.ndarray, fs: int = FS) -> np.ndarray:
    """R-peak sample indices of one finite lead: Hamilton cleaning, then the detector."""
    return find_peaks(clean(lead, fs), fs)
