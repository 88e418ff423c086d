"""NaN-masked losses for mixed classification / regression heads."""
from __future__ import annotations

import torch
from torch.nn import functional as F

#: Weight of the regression MSE relative to the classification BCE (published value).
REGRESSION_WEIGHT = 10.0


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, is_regression: torch.Tensor,
                regression_weight: float = REGRESSION_WEIGHT,
                bce_on_regression: bool = False) -> torch.Tensor:
    """Mean BCE-with-logits over labelled (sample, classification output) pairs plus
    ``regression_weight`` x mean squared error over labelled regression pairs.

    NaN targets are masked out of both terms; a term with no labelled pair contributes 0.
    ``bce_on_regression``: the published loss, whose BCE ran over every labelled pair, the
    z-scored regression targets too (not a likelihood for values outside 0..1).
    """
    logits = logits.float()
    labelled = ~torch.isnan(targets)
    safe = torch.where(labelled, targets, torch.zeros_like(targets))
    cls = labelled if bce_on_regression else labelled & ~is_regression
    reg = labelled & is_regression
    bce = F.binary_cross_entropy_with_logits(logits, safe, reduction="none")
    se = (logits - safe) ** 2
    loss = (bce * cls).sum() / cls.sum().clamp(min=1)
    if bool(is_regression.any()):
        loss = loss + regression_weight * (se * reg).sum() / reg.sum().clamp(min=1)
    return loss
