"""Statistics of risk scores, shared by training, evaluation, the ensemble and the report.

Every statistic is written for weighted data (one weight per row, or a block of bootstrap
replicates, one row each) so a whole block of patient-cluster bootstrap replicates is
evaluated at once. Replicates are integer weights: how often each ECG's patient was drawn.

* statistics: :func:`weighted_auc` (Mann-Whitney with ties counted one half), :func:`roc_auc`,
  :func:`roc_curve`, :func:`weighted_r2`, :func:`brier_score`, :func:`sigmoid`;
* the patient bootstrap: :func:`cluster_bootstrap_weights`, :func:`cluster_bootstrap`,
  :func:`percentile_interval`, :func:`auc_with_interval`.

>>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
0.75
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from .errors import PipelineError

#: Largest (replicates x rows) weight block held at once (int32: 16 MB; AUC sums in int64).
MAX_BLOCK_CELLS = 4_000_000


# ----------------------------------------------------------------------------- statistics
def sigmoid(logit: np.ndarray) -> np.ndarray:
    """Logistic function, overflow-free for large negative logits."""
    logit = np.asarray(logit, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -logit))


def _as_weight_block(weights: np.ndarray | None, n: int) -> np.ndarray:
    """Weights as a (replicates, rows) block: int64 for integer weights (exact), else float64."""
    if weights is None:
        return np.ones((1, n), dtype=np.int64)
    block = np.atleast_2d(np.asarray(weights))
    if block.shape[1] != n:
        raise ValueError(f"weights have {block.shape[1]} columns for {n} rows")
    integer = np.issubdtype(block.dtype, np.integer) or block.dtype == bool
    return block.astype(np.int64 if integer else np.float64, copy=False)


def weighted_auc(y: np.ndarray, score: np.ndarray,
                 weights: np.ndarray | None = None) -> float | np.ndarray:
    """Area under the ROC curve by the rank (Mann-Whitney) formula, ties counting one half.

    AUC = sum over (positive i, negative j) of w_i w_j ([s_i > s_j] + 0.5 [s_i = s_j]),
    divided by (sum of positive weights) x (sum of negative weights). ``weights`` may be one
    row per ECG (shape (n,)) or a block of bootstrap replicates (shape (b, n)), in which case
    one AUC per replicate is returned. The negatives are sorted by score once; per replicate,
    the cumulative negative weight is read off at each positive's score (strictly below it,
    and up to and including it), so 2 x wins = sum of w_i (below_i + up_to_i). Integer
    weights are summed exactly. NaN where a class has no weight.
    """
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    if np.isnan(score).any():
        raise ValueError("score contains NaN; drop those rows first")
    block = _as_weight_block(weights, y.shape[0])
    negatives = np.flatnonzero(~y)
    negatives = negatives[np.argsort(score[negatives], kind="stable")]
    positives = np.flatnonzero(y)
    neg_scores, pos_scores = score[negatives], score[positives]
    lo = np.searchsorted(neg_scores, pos_scores, side="left")
    hi = np.searchsorted(neg_scores, pos_scores, side="right")
    cum_neg = np.zeros((block.shape[0], negatives.size + 1), dtype=block.dtype)
    np.cumsum(block[:, negatives], axis=1, out=cum_neg[:, 1:])
    pos_w = block[:, positives]
    twice_wins = np.sum(pos_w * (cum_neg[:, lo] + cum_neg[:, hi]), axis=1)
    pairs = pos_w.sum(axis=1) * cum_neg[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where(pairs > 0, twice_wins / (2.0 * pairs), np.nan)
    if weights is None or np.ndim(weights) == 1:
        return float(auc[0])
    return auc


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Unweighted AUC (see :func:`weighted_auc`)."""
    return weighted_auc(y, score)


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1).

    Tied scores form one step (a diagonal segment), so the trapezoidal area under the
    returned curve equals :func:`roc_auc`.
    """
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(-score, kind="stable")
    s, positive = score[order], y[order]
    last_of_group = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(positive)[last_of_group]
    fp = np.cumsum(~positive)[last_of_group]
    n_pos, n_neg = max(int(positive.sum()), 1), max(int((~positive).sum()), 1)
    return np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos]


def weighted_r2(y: np.ndarray, pred: np.ndarray,
                weights: np.ndarray | None = None) -> float | np.ndarray:
    """Coefficient of determination 1 - SSE/SST, per weight row as in :func:`weighted_auc`."""
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    block = _as_weight_block(weights, y.shape[0]).astype(np.float64, copy=False)
    total = block.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = block @ y / total
        sse = block @ (y - pred) ** 2
        sst = np.sum(block * (y[None, :] - mean[:, None]) ** 2, axis=1)
        r2 = np.where(sst > 0, 1.0 - sse / sst, np.nan)
    if weights is None or np.ndim(weights) == 1:
        return float(r2[0])
    return r2


def brier_score(y: np.ndarray, probability: np.ndarray) -> float:
    """Mean squared difference between predicted probability and the 0/1 outcome."""
    y = np.asarray(y, dtype=np.float64)
    return float(np.mean((np.asarray(probability, dtype=np.float64) - y) ** 2))


# ----------------------------------------------------------------------------- bootstrap
def cluster_bootstrap_weights(clusters: Sequence, n_boot: int, rng: np.random.Generator,
                              max_block_cells: int = MAX_BLOCK_CELLS) -> Iterator[np.ndarray]:
    """Yield blocks of replicate weights, shape (b, n_rows), ``n_boot`` rows in total.

    Each replicate draws as many clusters (patients) as there are, uniformly with
    replacement; a row's weight is the number of times its cluster was drawn, so all rows of
    one cluster always share a weight.
    """
    codes, uniques = pd.factorize(pd.Series(clusters), sort=True)
    if (codes < 0).any():
        raise PipelineError("cluster bootstrap: missing cluster (patient) id")
    n_clusters = len(uniques)
    per_block = max(1, max_block_cells // max(len(codes), n_clusters, 1))
    for start in range(0, n_boot, per_block):
        b = min(per_block, n_boot - start)
        draws = rng.integers(0, n_clusters, size=(b, n_clusters), dtype=np.int32)
        flat = (draws + n_clusters * np.arange(b, dtype=np.int64)[:, None]).ravel()
        counts = np.bincount(flat, minlength=b * n_clusters).astype(np.int32)
        yield counts.reshape(b, n_clusters)[:, codes]


def cluster_bootstrap(statistic: Callable[[np.ndarray], np.ndarray], clusters: Sequence,
                      n_boot: int, seed: int) -> np.ndarray:
    """``statistic(weights)`` for ``n_boot`` patient-cluster replicates (seeded)."""
    rng = np.random.default_rng(seed)
    blocks = [statistic(w) for w in cluster_bootstrap_weights(clusters, n_boot, rng)]
    return np.concatenate(blocks) if blocks else np.empty(0)


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite replicates; (NaN, NaN) when there are none."""
    finite = np.asarray(replicates, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(finite, [tail, 100.0 - tail])
    return float(lo), float(hi)


def auc_with_interval(y: np.ndarray, score: np.ndarray, patients: Sequence, n_boot: int,
                      seed: int, level: float = 0.95) -> dict:
    """AUC of ``score`` for 0/1 ``y`` with a patient-cluster bootstrap percentile interval:
    n, n_pos, n_patients, prevalence, auc, auc_lo, auc_hi, n_boot (finite replicates)."""
    y = np.asarray(y, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    patients = np.asarray(patients)
    replicates = cluster_bootstrap(lambda w: weighted_auc(y, score, w), patients, n_boot, seed)
    lo, hi = percentile_interval(replicates, level)
    return {"n": y.size, "n_pos": int(y.sum()), "n_patients": len(np.unique(patients)),
            "prevalence": y.mean(), "auc": roc_auc(y, score), "auc_lo": lo, "auc_hi": hi,
            "n_boot": int(np.isfinite(replicates).sum())}


def paired_auc_difference(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray,
                          patients: Sequence, n_boot: int, seed: int,
                          level: float = 0.95) -> dict:
    """AUC of ``score_a`` minus AUC of ``score_b`` on the same rows, with a paired
    patient-cluster bootstrap percentile interval (both scores see the same replicate
    weights): difference, difference_lo, difference_hi."""
    y = np.asarray(y, dtype=np.float64)
    a = np.asarray(score_a, dtype=np.float64)
    b = np.asarray(score_b, dtype=np.float64)
    replicates = cluster_bootstrap(lambda w: weighted_auc(y, a, w) - weighted_auc(y, b, w),
                                   np.asarray(patients), n_boot, seed)
    lo, hi = percentile_interval(replicates, level)
    return {"difference": roc_auc(y, a) - roc_auc(y, b), "difference_lo": lo,
            "difference_hi": hi}


def difference_verdict(lo: float, hi: float) -> str:
    """How a paired difference A - B reads from its interval: ``"above"`` when the whole
    interval is above 0, ``"below"`` when it is all below 0, else ``"tie"`` (the interval
    holds 0, or is not finite: no evidence either way)."""
    if np.isfinite(lo) and lo > 0:
        return "above"
    if np.isfinite(hi) and hi < 0:
        return "below"
    return "tie"
