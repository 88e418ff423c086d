"""An inference-only copy of a :class:`RiskModel` with batch-norm folded into convolutions.

In eval mode every ``Conv -> BN`` pair is an affine map, so it folds into one convolution;
and because the layers between a convolution and a trim are then pointwise, a convolution
followed by "trim n samples" equals the same convolution with ``n`` fewer samples of right
padding. The fused model computes the same logits (to float rounding) with fewer passes
over memory and no trim copies. Dropout is dropped (identity in eval mode).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import fuse_conv_bn_eval

from .resnet import PADDING, FirstBlock, ResidualBlock, every_second
from .risk import RiskModel


class PaddedConv(nn.Module):
    """A convolution with explicit (left, right) zero padding."""

    def __init__(self, conv: nn.Conv1d, right: int):
        super().__init__()
        self.conv = copy.deepcopy(conv)
        self.conv.padding = (0,)
        self.pad = (PADDING, right)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


class FusedFirstBlock(nn.Module):
    def __init__(self, block: FirstBlock):
        super().__init__()
        self.conv1 = PaddedConv(fuse_conv_bn_eval(block.conv1, block.bn1), PADDING - 1)
        self.conv2 = PaddedConv(block.conv2, PADDING - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(every_second(x)))) + F.max_pool1d(x, 2)


class FusedResidualBlock(nn.Module):
    def __init__(self, block: ResidualBlock):
        super().__init__()
        self.downsample = block.downsample
        self.bn1 = copy.deepcopy(block.bn1)
        self.conv1 = fuse_conv_bn_eval(block.conv1, block.bn2)
        self.conv2 = PaddedConv(fuse_conv_bn_eval(block.conv2, block.bn3), PADDING - 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample:
            residual, x = F.max_pool1d(x, 2), every_second(x)
        else:
            residual = x
        y = self.conv1(F.relu(self.bn1(x)))
        return F.relu(self.conv2(F.relu(y))) + residual


@torch.no_grad()
def fuse_for_inference(model: RiskModel) -> RiskModel:
    """A fused eval-mode copy of ``model`` (same forward signature and outputs)."""
    fused = copy.deepcopy(model).eval()
    bb = fused.backbone
    conv0, bn0 = bb.block0[0], bb.block0[1]
    bb.block0 = nn.Sequential(fuse_conv_bn_eval(conv0, bn0), nn.ReLU())
    bb.block1 = FusedFirstBlock(bb.block1)
    bb.blocks = nn.Sequential(*(FusedResidualBlock(b) for b in bb.blocks))
    return fused
