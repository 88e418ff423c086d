"""The published 1-D ResNet backbone over (batch, leads, samples) ECGs.

Every convolution has kernel 16 and padding 8, so it lengthens the signal by one sample;
the blocks trim those samples back off (from the end) to keep the residual sum aligned.

* block0: Conv(leads -> C) -> BN -> ReLU.
* block1: residual = maxpool(2)(x); main = every 2nd sample -> Conv -> BN -> ReLU ->
  Dropout1d -> trim 1 -> Conv -> trim 1.
* n_blocks repeated blocks; block ``l`` halves the length when ``l % rep_mp == 0``
  (residual = maxpool(2)(x), input = every 2nd sample), then
  BN -> ReLU -> Dropout1d -> Conv -> BN -> ReLU -> Dropout1d -> Conv -> BN -> ReLU ->
  Dropout1d -> trim 2, plus the residual.
* out: BN -> ReLU -> flatten channel-major (C x L_final features).

Every ReLU follows a batch-norm whose output autograd does not keep, so it runs in place.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

KERNEL_SIZE = 16
PADDING = 8


def conv(channels_in: int, channels_out: int) -> nn.Conv1d:
    return nn.Conv1d(channels_in, channels_out, KERNEL_SIZE, padding=PADDING)


def every_second(x: torch.Tensor) -> torch.Tensor:
    """Samples 0, 2, 4, ... dropping the last one of an odd length (= maxpool(2)'s length)."""
    return x[..., 0:x.shape[-1] - 1:2] if x.shape[-1] % 2 else x[..., ::2]


def trim(x: torch.Tensor, n: int) -> torch.Tensor:
    """Drop the last ``n`` samples (the ones the padded convolutions added)."""
    return x[..., :x.shape[-1] - n]


class FirstBlock(nn.Module):
    """block1: the first residual block; it always halves the length."""

    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.conv1 = conv(channels, channels)
        self.bn1 = nn.BatchNorm1d(channels)
        self.drop1 = nn.Dropout1d(dropout)
        self.conv2 = conv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = F.max_pool1d(x, 2)
        y = self.conv1(every_second(x))
        y = trim(self.drop1(F.relu(self.bn1(y), inplace=True)), 1)
        y = trim(self.conv2(y), 1)
        return y + residual


class ResidualBlock(nn.Module):
    """A repeated pre-activation block, optionally halving the length first."""

    def __init__(self, channels: int, dropout: float, downsample: bool):
        super().__init__()
        self.downsample = downsample
        self.bn1 = nn.BatchNorm1d(channels)
        self.drop1 = nn.Dropout1d(dropout)
        self.conv1 = conv(channels, channels)
        self.bn2 = nn.BatchNorm1d(channels)
        self.drop2 = nn.Dropout1d(dropout)
        self.conv2 = conv(channels, channels)
        self.bn3 = nn.BatchNorm1d(channels)
        self.drop3 = nn.Dropout1d(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample:
            residual, x = F.max_pool1d(x, 2), every_second(x)
        else:
            residual = x
        y = self.conv1(self.drop1(F.relu(self.bn1(x), inplace=True)))
        y = self.conv2(self.drop2(F.relu(self.bn2(y), inplace=True)))
        y = self.drop3(F.relu(self.bn3(y), inplace=True))
        return trim(y, 2) + residual


class ResNet1d(nn.Module):
    """Backbone: (B, n_leads, length) -> (B, channels * final_length) features."""

    def __init__(self, n_leads: int = 12, length: int = 5000, channels: int = 128,
                 n_blocks: int = 32, rep_mp: int = 4, dropout: float = 0.4):
        super().__init__()
        if rep_mp < 1:
            raise ValueError(f"rep_mp must be >= 1, got {rep_mp}")
        self.length = length
        self.block0 = nn.Sequential(conv(n_leads, channels), nn.BatchNorm1d(channels),
                                    nn.ReLU(inplace=True))
        self.block1 = FirstBlock(channels, dropout)
        self.blocks = nn.Sequential(*(ResidualBlock(channels, dropout, l % rep_mp == 0)
                                      for l in range(n_blocks)))
        self.out_bn = nn.BatchNorm1d(channels)
        self.final_length = final_length(length, n_blocks, rep_mp)
        if self.final_length < 1:
            raise ValueError(f"input length {length} is too short for {n_blocks} blocks "
                             f"downsampling every {rep_mp}")
        self.n_features = channels * self.final_length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks(self.block1(self.block0(x)))
        return torch.flatten(F.relu(self.out_bn(y), inplace=True), 1)


def final_length(length: int, n_blocks: int, rep_mp: int) -> int:
    """Length after the backbone: block0 adds one sample, then one halving per downsampling."""
    n = (length + 1) // 2
    for block in range(n_blocks):
        if block % rep_mp == 0:
            n //= 2
    return n
