"""P, QRS and T waves of single beats: onsets, peaks and offsets of every lead.

A morphed beat is one heartbeat (R at ``BEAT_PRE``), so it is delineated as one period of a
periodic signal: the beat repeated end to end at a heart rate of ``60 * fs / len(beat)``. The
rules are those of the wavelet delineator of Martinez et al. (2004) with the search windows
and thresholds of neurokit2's ``ecg_delineate(method="dwt")``, which the project used before
(on the beat tiled nine times, at about 3 s a beat): the same points to within a sample or two
(``tests/test_morph_stats.py`` compares the two), about a hundred times faster, because

* the signal is upsampled to 2 kHz and wavelet-transformed once for a whole batch of beats
  (every lead at once, with periodic boundaries instead of eight extra copies);
* the searches run on one period only, with plain numpy/scipy calls instead of per-peak
  pandas look-ups (where neurokit2 spends about 80% of its time, finding Q and S).

Points are sample indices at ``fs`` relative to the beat's first sample; they may fall slightly
outside ``0 .. len - 1`` (a P onset in the previous period, a T offset in the next one).
"""
from __future__ import annotations

import numpy as np

from .constants import BEAT_PRE, FS

#: Output points, in column order (stems of ``<stem>_<lead>`` columns).
POINTS = ("P_onset", "P_peak", "P_offset", "Q_peak", "R_onset", "R_offset", "S_peak",
          "T_onset", "T_peak", "T_offset")
ANALYSIS_FS = 2000      # Hz: the wavelet analysis rate
REFERENCE_FS = 250      # Hz at which wavelet scale 2^1 matches the QRS (Martinez et al.)
QRS_WIDTH_S = 0.13      # typical QRS width; half of it is kept clear of R when seeking P and T
P_TO_R_S = 0.2          # typical P peak -> R, at 60 bpm (scaled by the RR interval)
R_TO_T_S = 0.25         # typical R -> T peak, at 60 bpm
T_PEAK_SCALE, P_PEAK_SCALE, BOUND_SCALE = 3, 2, 2   # wavelet scales 2^k (before rate scaling)
T_RMS_FRACTION, P_RMS_FRACTION = 0.25, 0.02         # slope peaks must exceed this x window RMS
AMPLITUDE_WEIGHT = 0.3  # weight of the (normalised) amplitude against latency for P/T choice
QRS_BOUND_FRACTION = 0.5                            # QRS on/offset: slope below half its peak
P_BOUNDS = dict(onset_s=0.3, offset_s=0.3, onset_fraction=0.4, offset_fraction=0.4)
T_BOUNDS = dict(onset_s=0.6, offset_s=0.3, onset_fraction=0.6, offset_fraction=0.4)
QS_PROMINENCE = 0.05    # Q and S: extrema at least this fraction of the search window's range
QS_PRE = 0.35           # Q/S search window: this fraction of the RR interval before R, rest after
#: Where the 2 kHz grid samples the beat, in input samples. neurokit2 upsamples the nine-copy
#: signal (length L) with an endpoint-aligned spline zoom: output sample j lies at input
#: j (L - 1) / (4 L - 1), which around the middle copy's R is 0.36 samples before j / 4.
#: Sampling there too makes 98% of points equal to neurokit2's, against 69% at 0.
GRID_SHIFT = -0.36


def _bspline_weights(f: np.ndarray) -> np.ndarray:
    """(len(f), 4) weights of coefficients i-1, i, i+1, i+2 for points at i + f, 0 <= f < 1."""
    d = np.stack([1 + f, f, 1 - f, 2 - f], axis=-1)
    near = 2 / 3 - d ** 2 + d ** 3 / 2
    far = (2 - d) ** 3 / 6
    return np.where(d < 1, near, far)


def upsample_periodic(x: np.ndarray, factor: int, shift: float = 0.0) -> np.ndarray:
    """Cubic-spline interpolation of periodic signals (last axis) at ``k / factor + shift``.

    The interpolating spline of the periodic extension (``scipy.ndimage`` prefilter with
    ``grid-wrap``), evaluated at ``factor`` points per input sample, vectorised over every
    leading axis. ``shift`` (input samples) moves the sampling grid.
    """
    from scipy.ndimage import spline_filter1d

    n = x.shape[-1]
    coef = spline_filter1d(np.asarray(x, dtype=np.float64), order=3, axis=-1, mode="grid-wrap")
    t = np.arange(n * factor) / factor + shift
    base = np.floor(t).astype(np.int64)
    index = (base[:, None] + np.arange(-1, 3)) % n                        # (n * factor, 4)
    weights = _bspline_weights(t - base)                                   # (n * factor, 4)
    return np.einsum("...kj,kj->...k", coef[..., index], weights)


def wavelet_scales(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """Quadratic-spline wavelet transform at scales 2^0 .. 2^(levels-1) (algorithme à trous),
    periodic along the last axis. Row ``k`` is the smoothed signal's forward difference over
    ``2^k`` samples, times two; its zero crossings mark peaks, its extrema the steepest slopes."""
    rows = []
    a = np.asarray(x, dtype=np.float64)
    for k in range(levels):
        d = 2 ** k
        ahead = np.roll(a, -d, axis=-1)
        rows.append(2 * (ahead - a))
        a = (ahead + 3 * a + 3 * np.roll(a, d, axis=-1) + np.roll(a, 2 * d, axis=-1)) / 8
    return rows


class _Plan:
    """Windows and scales for beats of one length and R position (all in analysis samples)."""

    def __init__(self, length: int, r_index: int, fs: int):
        from math import log2

        self.length, self.factor = length, ANALYSIS_FS // fs
        if self.factor * fs != ANALYSIS_FS:
            raise ValueError(f"sampling rate {fs} Hz does not divide {ANALYSIS_FS} Hz")
        period_s = length / fs                             # the RR interval of the repeated beat
        self.scale_add = int(log2((ANALYSIS_FS / REFERENCE_FS) * period_s))
        scaled = lambda s: round(s * period_s, 3)          # noqa: E731  durations follow the rate
        samples = lambda s: int(s * ANALYSIS_FS)           # noqa: E731
        self.r = r_index * self.factor
        self.clear = int(0.5 * QRS_WIDTH_S * ANALYSIS_FS)
        self.p2r, self.rt = scaled(P_TO_R_S), scaled(R_TO_T_S)
        self.t_window = (self.clear, 2 * samples(self.rt))
        self.p_window = (-2 * samples(self.p2r), -self.clear)
        self.p_bounds = {k: (samples(scaled(v)) if k.endswith("_s") else v)
                         for k, v in P_BOUNDS.items()}
        self.t_bounds = {k: (samples(scaled(v)) if k.endswith("_s") else v)
                         for k, v in T_BOUNDS.items()}
        self.qs_pre = -int(round(QS_PRE * length))        # the Q/S window: one RR interval,
        self.qs_len = length                               # starting this far before R
        self.t_row = T_PEAK_SCALE + self.scale_add
        self.p_row = P_PEAK_SCALE + self.scale_add
        self.bound_row = BOUND_SCALE + self.scale_add


def _prominent_maxima(x: np.ndarray) -> np.ndarray:
    """Local maxima of ``x`` whose prominence is at least QS_PROMINENCE of its range."""
    from scipy.signal import find_peaks, peak_prominences

    peaks, _ = find_peaks(x)
    if len(peaks) == 0:
        return peaks
    prominence = peak_prominences(x, peaks)[0]
    return peaks[prominence >= QS_PROMINENCE * (x.max() - x.min())]


def _q_and_s(x: np.ndarray, r: int, plan: _Plan) -> tuple[float, float]:
    """Q: last prominent minimum before R; S: first prominent minimum from R on (``x`` at fs,
    three periods, R of the middle one at ``r``)."""
    start = r + plan.qs_pre
    window = x[start:start + plan.qs_len]
    before, after = window[:r - start], window[r - start:]
    q = _prominent_maxima(-before)
    s = _prominent_maxima(-after)
    return (float(start + q[-1]) if len(q) else np.nan, float(r + s[0]) if len(s) else np.nan)


def _wave_peak(row: np.ndarray, ecg: np.ndarray, start: int, end: int, rms_fraction: float,
               latency) -> float:
    """P or T peak: zero crossings (+ to -) of the wavelet row between slope peaks in the
    window, scored by normalised amplitude minus a latency penalty; NaN when none."""
    from scipy.signal import find_peaks

    w = row[start:end]
    if len(w) == 0:
        return np.nan
    peaks, _ = find_peaks(np.abs(w), height=rms_fraction * np.sqrt(np.mean(w ** 2)))
    peaks = peaks[np.abs(w[peaks]) > 0.025 * w.max()]
    if w[0] > 0:
        peaks = np.concatenate([[0], peaks])
    seg = ecg[start:end]
    dev = np.abs(seg - np.median(seg))
    top = dev.max()
    amp = AMPLITUDE_WEIGHT * dev / top if np.isfinite(top) and top > 0 else np.zeros_like(dev)
    best, best_score = np.nan, -np.inf
    for a, b in zip(peaks[:-1], peaks[1:]):
        if w[a] > 0 and w[b] < 0:
            crossings = np.flatnonzero(np.diff(np.sign(w[a:b + 1])))
            zero = int(crossings[0]) + a
            score = amp[zero] - latency(zero / ANALYSIS_FS)
            if score > best_score:
                best, best_score = zero, score
    return float(best + start) if np.isfinite(best) else np.nan


def _onset_before(row: np.ndarray, start: int, end: int, fraction: float, sign: int) -> float:
    """Last sample before the last slope peak of ``sign * row`` in [start, end) where it is
    below ``fraction`` of that peak."""
    from scipy.signal import find_peaks

    w = sign * row[start:end]
    peaks, _ = find_peaks(w)
    if len(peaks) == 0:
        return np.nan
    below = np.flatnonzero(w[:peaks[-1]] < fraction * w[peaks[-1]])
    return float(below[-1] + start) if len(below) else np.nan


def _offset_after(row: np.ndarray, start: int, end: int, fraction: float, sign: int) -> float:
    """First sample from the first slope peak of ``sign * row`` in [start, end) on where it is
    below ``fraction`` of that peak."""
    from scipy.signal import find_peaks

    w = sign * row[start:end]
    peaks, _ = find_peaks(w)
    if len(peaks) == 0:
        return np.nan
    first = peaks[0]
    below = np.flatnonzero(w[first:] < fraction * w[first])
    return float(below[0] + first + start) if len(below) else np.nan


def _bounds(row: np.ndarray, peak: float, b: dict) -> tuple[float, float]:
    if not np.isfinite(peak):
        return np.nan, np.nan
    p = int(peak)
    return (_onset_before(row, p - b["onset_s"], p, b["onset_fraction"], 1),
            _offset_after(row, p, p + b["offset_s"], b["offset_fraction"], -1))


def _one_lead(x: np.ndarray, ecg: np.ndarray, t_row: np.ndarray, p_row: np.ndarray,
              bound_row: np.ndarray, plan: _Plan) -> list[float]:
    """The ten points of one lead. ``x`` at fs and ``ecg`` / rows at the analysis rate, each
    three periods long; returns analysis-rate or fs indices in those three-period frames."""
    f = plan.factor
    r_fs = plan.length + plan.r // f
    r = plan.length * f + plan.r                # R of the middle period, analysis samples
    q, s = _q_and_s(x, r_fs, plan)
    t = _wave_peak(t_row, ecg, r + plan.t_window[0], r + plan.t_window[1], T_RMS_FRACTION,
                   lambda sec: sec - (plan.rt - 0.5 * QRS_WIDTH_S))
    p = _wave_peak(p_row, ecg, r + plan.p_window[0], r + plan.p_window[1], P_RMS_FRACTION,
                   lambda sec: abs(sec - plan.p2r))
    qrs_on = (_onset_before(bound_row, int(p), int(q) * f, QRS_BOUND_FRACTION, -1)
              if np.isfinite(p) and np.isfinite(q) else np.nan)
    qrs_off = (_offset_after(bound_row, r, int(t), QRS_BOUND_FRACTION, 1)
               if np.isfinite(t) else np.nan)
    p_on, p_off = _bounds(bound_row, p, plan.p_bounds)
    t_on, t_off = _bounds(bound_row, t, plan.t_bounds)
    to_fs = lambda v: float(int(v) // f) if np.isfinite(v) else np.nan  # noqa: E731
    return [to_fs(p_on), to_fs(p), to_fs(p_off), q, to_fs(qrs_on), to_fs(qrs_off), s,
            to_fs(t_on), to_fs(t), to_fs(t_off)]


def delineate_beats(beats: np.ndarray, r_index: int = BEAT_PRE, fs: int = FS,
                    shift: float = GRID_SHIFT) -> np.ndarray:
    """Delineate every lead of every beat: (N, leads, len) -> (N, leads, len(POINTS)).

    Values are sample indices relative to each beat's first sample (NaN where a wave is not
    found). ``shift`` moves the 2 kHz sampling grid by that many input samples
    (:data:`GRID_SHIFT`; 0 samples at exact multiples of 1/4). Leads with non-finite values give NaN throughout.
    """
    beats = np.asarray(beats, dtype=np.float64)
    if beats.ndim != 3:
        raise ValueError(f"beats must be (N, leads, samples), got shape {beats.shape}")
    n, n_leads, length = beats.shape
    plan = _Plan(length, r_index, fs)
    out = np.full((n, n_leads, len(POINTS)), np.nan)
    finite = np.isfinite(beats).all(-1)
    clean = np.where(finite[..., None], beats, 0.0)
    fast = upsample_periodic(clean, plan.factor, shift)
    rows = wavelet_scales(fast, max(plan.t_row, plan.p_row, plan.bound_row) + 1)
    three = lambda a: np.concatenate([a, a, a], axis=-1)  # noqa: E731
    offset_fs = length
    for i in range(n):
        for j in range(n_leads):
            if not finite[i, j]:
                continue
            pts = _one_lead(three(clean[i, j]), three(fast[i, j]), three(rows[plan.t_row][i, j]),
                            three(rows[plan.p_row][i, j]), three(rows[plan.bound_row][i, j]),
                            plan)
            out[i, j] = np.asarray(pts) - offset_fs
    return out


def agreement(reference: np.ndarray, points: np.ndarray, tolerance: float = 2) -> dict[str, float]:
    """How well ``points`` reproduce ``reference`` (same shape, last axis = POINTS).

    ``within``: share of points within ``tolerance`` samples, a point missing (NaN) in both
    counting as agreeing and one missing in only one as not; ``exact``: share equal (NaN to
    NaN included); ``missing_agree``: share where both or neither are NaN; plus ``within_<point>``
    for each point."""
    reference, points = np.asarray(reference, float), np.asarray(points, float)
    both_nan = np.isnan(reference) & np.isnan(points)
    with np.errstate(invalid="ignore"):
        diff = np.abs(reference - points)
    within = both_nan | (diff <= tolerance)
    out = {"n": int(reference.size), "within": float(within.mean()),
           "exact": float((both_nan | (diff == 0)).mean()),
           "missing_agree": float((np.isnan(reference) == np.isnan(points)).mean())}
    for k, name in enumerate(POINTS):
        out[f"within_{name}"] = float(within[..., k].mean())
    return out
