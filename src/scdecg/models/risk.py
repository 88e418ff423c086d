"""Risk models: ResNet backbone + (covariate) head + monotone horizon layer.

The model maps an ECG (B, 12, L) -- and, for the 10-s models, the z-scored covariates
(B, n_cov) -- to logits (B, n_outputs) in ``outputs`` order (regression outputs are raw
values). When the outputs include every SCD horizon (3 mo, 6 mo, 1 y, 2 y) the
:class:`CumulativeHorizons` layer replaces those four logits by cumulative sums of
non-negative hazards, so predicted risk never falls as the horizon grows.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn

from ..constants import N_LEADS, SCD_HORIZONS
from ..errors import PipelineError
from .resnet import ResNet1d

HIDDEN = 128  # width of the covariate head


#: Non-negative maps for the horizon layer's hazards. "relu" is the published one; it can die
#: (every hazard 0 for every input), which makes all horizons one value (docs/DEVIATIONS.md).
HAZARDS = {"softplus": nn.functional.softplus, "relu": torch.relu}


class CumulativeHorizons(nn.Module):
    """h = g(Linear(k->k)(u)); base = Linear(k->1)(u); cum_j = sum_{i<=j} h_i + base.

    ``u`` are the k horizon logits, shortest horizon first; ``g`` is softplus (default) or the
    published ReLU. Because every h_i >= 0, the output is non-decreasing in j for any input
    and any weights; with softplus every h_i > 0, so no horizon collapses onto the previous one.
    """

    def __init__(self, n_horizons: int = len(SCD_HORIZONS), hazard: str = "softplus"):
        super().__init__()
        if hazard not in HAZARDS:
            raise PipelineError(f"architecture: hazard must be one of {sorted(HAZARDS)}, "
                                f"got {hazard!r}")
        self.hazard_fn = HAZARDS[hazard]
        self.hazard = nn.Linear(n_horizons, n_horizons)
        self.base = nn.Linear(n_horizons, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(self.hazard_fn(self.hazard(u)), dim=-1) + self.base(u)


@dataclass
class Architecture:
    """Everything needed to rebuild a model; stored as ``config["architecture"]``."""

    outputs: list[str]
    length: int = 5000
    channels: int = 128
    n_blocks: int = 32
    rep_mp: int = 4
    dropout: float = 0.4
    n_leads: int = N_LEADS
    covariates: list[str] = field(default_factory=list)
    hidden: int = HIDDEN
    cumulative: bool = True
    hazard: str = "softplus"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Architecture":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise PipelineError(f"architecture: unknown key(s) {', '.join(unknown)}")
        if "hazard" not in d:  # saved before the choice existed: the published ReLU
            d = {**d, "hazard": "relu"}
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RiskModel(nn.Module):
    """ResNet backbone + head; ``forward(x, covariates=None) -> logits``."""

    def __init__(self, arch: Architecture):
        super().__init__()
        if len(set(arch.outputs)) != len(arch.outputs) or not arch.outputs:
            raise PipelineError(f"architecture: outputs must be non-empty and unique, "
                                f"got {arch.outputs}")
        self.arch = arch
        self.backbone = ResNet1d(arch.n_leads, arch.length, arch.channels, arch.n_blocks,
                                 arch.rep_mp, arch.dropout)
        n_out, n_feat, n_cov = len(arch.outputs), self.backbone.n_features, len(arch.covariates)
        if n_cov:
            self.head = nn.Sequential(nn.Linear(n_feat + n_cov, arch.hidden), nn.ReLU(),
                                      nn.Linear(arch.hidden, n_out))
        else:
            self.head = nn.Linear(n_feat, n_out)
        has_horizons = all(h in arch.outputs for h in SCD_HORIZONS)
        self.cumulative = (CumulativeHorizons(hazard=arch.hazard)
                           if arch.cumulative and has_horizons else None)
        self.register_buffer("horizon_index",
                             torch.tensor([arch.outputs.index(h) for h in SCD_HORIZONS]
                                          if self.cumulative is not None else [], dtype=torch.long),
                             persistent=False)

    @property
    def outputs(self) -> list[str]:
        return self.arch.outputs

    def forward(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        features = self.backbone(x)
        if self.arch.covariates:
            if covariates is None:
                raise ValueError(f"this model needs covariates {self.arch.covariates}")
            features = torch.cat([features, covariates.to(features.dtype)], dim=1)
        logits = self.head(features)
        if self.cumulative is not None:
            idx = self.horizon_index
            logits = logits.index_copy(1, idx, self.cumulative(logits[:, idx]).to(logits.dtype))
        return logits


def build_model(arch: Architecture | dict[str, Any]) -> RiskModel:
    """A model from an :class:`Architecture` (or its dict); impossible shapes are a
    :class:`PipelineError` naming the problem."""
    if isinstance(arch, dict):
        arch = Architecture.from_dict(arch)
    try:
        return RiskModel(arch)
    except ValueError as exc:
        raise PipelineError(f"architecture: {exc}") from exc


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
