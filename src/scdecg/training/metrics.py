"""Validation metrics per output: ROC AUC (classification) and R² (regression)."""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney AUC with tied scores counted half; NaN labels ignored; NaN if one class."""
    keep = ~np.isnan(y)
    y, score = y[keep], score[keep]
    n_pos = int((y == 1).sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def r_squared(y: np.ndarray, pred: np.ndarray) -> float:
    keep = ~np.isnan(y)
    y, pred = y[keep], pred[keep]
    if len(y) < 2:
        return float("nan")
    sst = float(((y - y.mean()) ** 2).sum())
    return float("nan") if sst == 0 else 1.0 - float(((y - pred) ** 2).sum()) / sst


def output_metrics(targets: np.ndarray, logits: np.ndarray, outputs: list[str],
                   regression: list[bool]) -> dict[str, float]:
    """``{"auc_<output>": ..., "r2_<output>": ...}`` over the columns of ``targets``."""
    result = {}
    for j, (name, is_reg) in enumerate(zip(outputs, regression)):
        if is_reg:
            result[f"r2_{name}"] = r_squared(targets[:, j], logits[:, j])
        else:
            result[f"auc_{name}"] = roc_auc(targets[:, j], logits[:, j])
    return result
