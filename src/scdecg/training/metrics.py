"""Validation metrics per output: ROC AUC (classification) and R² (regression), over the
labelled rows (the statistics themselves are :mod:`scdecg.metrics`)."""
from __future__ import annotations

import numpy as np

from .. import metrics


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """AUC over the labelled rows (NaN labels ignored); NaN when one class is absent."""
    keep = ~np.isnan(y)
    return metrics.roc_auc(y[keep], score[keep])


def r_squared(y: np.ndarray, pred: np.ndarray) -> float:
    """R² over the labelled rows (NaN labels ignored); NaN with fewer than two or no spread."""
    keep = ~np.isnan(y)
    return metrics.weighted_r2(y[keep], pred[keep])


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
