"""Preprocessing primitives for (leads, samples) ECG arrays.

All functions work on arrays whose last axis is time and return new arrays.
"""
from __future__ import annotations

import numpy as np

from .constants import SCALING_FACTOR


def to_millivolts(ecg_uv: np.ndarray, scaling_factor: float = SCALING_FACTOR) -> np.ndarray:
    """Raw NTUH microvolts -> float32 millivolts."""
    return (np.asarray(ecg_uv, dtype=np.float64) / scaling_factor).astype(np.float32)


def zero_median(x: np.ndarray) -> np.ndarray:
    """Subtract each lead's median."""
    x = np.asarray(x)
    return x - np.median(x, axis=-1, keepdims=True)


MAX_MODE_LEVELS = 1 << 20  # lead_modes counts up to this many levels with bincount


def lead_modes(x: np.ndarray, decimals: int = 3) -> np.ndarray:
    """Most frequent value of each lead after rounding to ``decimals`` (ties: the smallest).

    Rounding makes the mode meaningful for continuous signals: with ``decimals=3`` on
    millivolt data the mode is the most common microvolt level, i.e. the isoelectric line.
    Counted with one ``bincount`` over the rounded levels (``np.round`` is ``rint(x * 10**d)
    / 10**d``, so the integer levels ``rint(x * 10**d)`` map one to one onto the rounded
    values); a lead spanning more than :data:`MAX_MODE_LEVELS` levels is counted by sorting.
    """
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(-1, x.shape[-1])
    scale = 10.0 ** decimals
    levels = np.rint(flat * scale)
    modes = np.empty(flat.shape[0])
    if flat.shape[-1] == 0:
        raise ValueError("lead_modes: a lead with no samples has no mode")
    low, high = levels.min(axis=1), levels.max(axis=1)
    for i in range(flat.shape[0]):
        span = high[i] - low[i]
        if np.isfinite(span) and span < MAX_MODE_LEVELS:
            counts = np.bincount((levels[i] - low[i]).astype(np.int64))
            modes[i] = (low[i] + np.argmax(counts)) / scale  # argmax: the smallest of ties
        else:
            values, counts = np.unique(np.round(flat[i], decimals), return_counts=True)
            modes[i] = values[np.argmax(counts)]
    return modes.reshape(x.shape[:-1] + (1,))


def zero_mode(x: np.ndarray, decimals: int = 3) -> np.ndarray:
    """Subtract each lead's own mode (the published code used lead 0's mode for all leads)."""
    x = np.asarray(x)
    return (x - lead_modes(x, decimals)).astype(x.dtype, copy=False)


def cut(x: np.ndarray, length: int, start: int = 0) -> np.ndarray:
    """``x[..., start:start+length]``; the input must be long enough."""
    if x.shape[-1] < start + length:
        raise ValueError(f"cannot cut {length} samples from {start}: only {x.shape[-1]} samples")
    return x[..., start:start + length]


def random_cut(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of ``length`` samples (the whole array when it is not longer)."""
    extra = x.shape[-1] - length
    if extra <= 0:
        return x
    return cut(x, length, int(rng.integers(0, extra + 1)))


def right_pad(x: np.ndarray, length: int, value: float = 0.0) -> np.ndarray:
    """Pad the time axis on the right to ``length`` samples (no-op when already long enough)."""
    missing = length - x.shape[-1]
    if missing <= 0:
        return x
    pad = [(0, 0)] * (x.ndim - 1) + [(0, missing)]
    return np.pad(x, pad, constant_values=value)


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
    """Cut the first ``length`` samples or right-pad with zeros, whichever applies."""
    return right_pad(x[..., :length], length)


#: The published 10-s loader cut this many samples off the end and zero-padded back (an
#: artefact of 9-s Swedish records; off by default, see docs/DEVIATIONS.md).
PUBLISHED_TAIL_CUT = 500


def cut_tail(x: np.ndarray, n: int) -> np.ndarray:
    """The last ``n`` samples replaced by zeros (the length kept)."""
    x = np.asarray(x)
    return right_pad(x[..., :max(x.shape[-1] - n, 0)], x.shape[-1])


def published_tail_cut(x: np.ndarray) -> np.ndarray:
    """The published 10-s loader: drop the last 500 samples, then zero-pad back to the length."""
    return cut_tail(x, PUBLISHED_TAIL_CUT)


PREPROCESSORS = {"zero_mode": zero_mode, "zero_median": zero_median,
                 "published_tail_cut": published_tail_cut}


def preprocess(x: np.ndarray, steps: list[str] | tuple[str, ...]) -> np.ndarray:
    """Apply named preprocessing steps in order (names from :data:`PREPROCESSORS`)."""
    for name in steps:
        try:
            x = PREPROCESSORS[name](x)
        except KeyError:
            raise ValueError(f"unknown preprocessing step {name!r}; "
                             f"known: {sorted(PREPROCESSORS)}") from None
    return x
