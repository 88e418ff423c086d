"""Training and inference throughput of the risk models (samples/s), against a straightforward
implementation of the same network.

The reference (``PlainResNet`` below) is the published architecture written plainly in eager
PyTorch: padded convolutions, slicing trims, batch-norm everywhere, inference under
``no_grad``. Ours is :class:`scdecg.models.RiskModel` for training and its conv+BN-fused,
trim-free copy (:func:`scdecg.models.inference.fuse_for_inference`) under
``inference_mode`` for prediction. Both start from the same weights, and the script checks
that they compute the same logits before timing. Timings are the best of ``--repeats``
rounds, alternating the two implementations so background load hits both alike.

    python benchmarks/bench_training.py                       # demo + paper profiles, CPU
    python benchmarks/bench_training.py --device cuda --batch-size 64
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.nn import functional as F

from scdecg.cli import resolve_device
from scdecg.models import Architecture, build_model
from scdecg.models.inference import fuse_for_inference

OUTPUTS = ["scd3mo", "scd6mo", "scd1", "scd2", "dead3mo", "dead6mo", "dead1", "dead2",
           "ICD_VT1", "ICD_VF1", "Phi_VT1", "TROPT1", "Acute_MI1", "scd3mo_6mo", "scd6mo_1",
           "scd1_2"]
PROFILES = {  # the 10-s model of each x01 profile
    "demo": dict(length=5000, channels=8, n_blocks=10, rep_mp=1, dropout=0.1),
    "paper": dict(length=5000, channels=128, n_blocks=32, rep_mp=4, dropout=0.4),
}


# ----------------------------------------------------------------------------- reference
class PlainBlock(nn.Module):
    def __init__(self, c, p, down):
        super().__init__()
        self.down = down
        self.bn1, self.conv1 = nn.BatchNorm1d(c), nn.Conv1d(c, c, 16, padding=8)
        self.bn2, self.conv2 = nn.BatchNorm1d(c), nn.Conv1d(c, c, 16, padding=8)
        self.bn3, self.drop = nn.BatchNorm1d(c), nn.Dropout1d(p)

    def forward(self, x):
        if self.down:
            res = nn.functional.max_pool1d(x, 2)
            x = x[:, :, 0:x.shape[2] - 1:2]
        else:
            res = x
        y = self.conv1(self.drop(torch.relu(self.bn1(x))))
        y = self.conv2(self.drop(torch.relu(self.bn2(y))))
        y = self.drop(torch.relu(self.bn3(y)))
        return y[:, :, :-2] + res


class PlainResNet(nn.Module):
    """The published network, written plainly."""

    def __init__(self, n_out, length, channels, n_blocks, rep_mp, dropout, n_cov=2):
        super().__init__()
        c = channels
        self.conv0, self.bn0 = nn.Conv1d(12, c, 16, padding=8), nn.BatchNorm1d(c)
        self.conv1a, self.bn1a = nn.Conv1d(c, c, 16, padding=8), nn.BatchNorm1d(c)
        self.conv1b, self.drop = nn.Conv1d(c, c, 16, padding=8), nn.Dropout1d(dropout)
        self.blocks = nn.ModuleList(PlainBlock(c, dropout, i % rep_mp == 0) for i in range(n_blocks))
        self.bn_out = nn.BatchNorm1d(c)
        n = (length + 1) // 2
        for i in range(n_blocks):
            n = n // 2 if i % rep_mp == 0 else n
        self.fc1, self.fc2 = nn.Linear(c * n + n_cov, 128), nn.Linear(128, n_out)
        self.hazard, self.base = nn.Linear(4, 4), nn.Linear(4, 1)

    def forward(self, x, cov):
        x = torch.relu(self.bn0(self.conv0(x)))
        res = nn.functional.max_pool1d(x, 2)
        y = x[:, :, 0:x.shape[2] - (x.shape[2] % 2):2]
        y = self.drop(torch.relu(self.bn1a(self.conv1a(y))))[:, :, :-1]
        x = self.conv1b(y)[:, :, :-1] + res
        for block in self.blocks:
            x = block(x)
        x = torch.relu(self.bn_out(x)).reshape(x.shape[0], -1)
        out = self.fc2(torch.relu(self.fc1(torch.cat([x, cov], 1))))
        u = out[:, :4]
        cum = torch.cumsum(torch.relu(self.hazard(u)), 1) + self.base(u)
        return torch.cat([cum, out[:, 4:]], 1)


def copy_weights(ours: nn.Module, plain: PlainResNet) -> None:
    """Give the reference exactly our parameters and buffers (same order of creation)."""
    src = [t for n, t in ours.state_dict().items() if "num_batches" not in n]
    dst = [t for n, t in plain.state_dict().items() if "num_batches" not in n]
    order = _plain_order(plain)
    with torch.no_grad():
        for target, source in zip(order, src):
            target.copy_(source)
    assert len(src) == len(dst)


def _plain_order(p: PlainResNet) -> list[torch.Tensor]:
    def conv(m):
        return [m.weight, m.bias]

    def bn(m):
        return [m.weight, m.bias, m.running_mean, m.running_var]
    order = conv(p.conv0) + bn(p.bn0) + conv(p.conv1a) + bn(p.bn1a) + conv(p.conv1b)
    for b in p.blocks:
        order += bn(b.bn1) + conv(b.conv1) + bn(b.bn2) + conv(b.conv2) + bn(b.bn3)
    order += bn(p.bn_out) + conv(p.fc1) + conv(p.fc2) + conv(p.hazard) + conv(p.base)
    return order


# ----------------------------------------------------------------------------- timing
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_train(model, x, cov, y, iters, device):
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    model.train()
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        loss = F.binary_cross_entropy_with_logits(model(x, cov), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return iters * len(x) / (time.perf_counter() - start)


def time_infer(model, x, cov, iters, device, mode):
    model.eval()
    with mode():
        model(x, cov)  # warm-up
        sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            model(x, cov)
        sync(device)
    return iters * len(x) / (time.perf_counter() - start)


def bench(name, cfg, device, batch, iters, repeats):
    torch.manual_seed(0)
    ours = build_model(Architecture(outputs=OUTPUTS, covariates=["age", "female"], **cfg)).to(device)
    plain = PlainResNet(len(OUTPUTS), **cfg).to(device)
    copy_weights(ours, plain)
    x = torch.randn(batch, 12, cfg["length"], device=device)
    cov = torch.randn(batch, 2, device=device)
    y = (torch.rand(batch, len(OUTPUTS), device=device) < 0.2).float()
    ours.eval(), plain.eval()
    fused = fuse_for_inference(ours)
    with torch.no_grad():
        ref = plain(x, cov)
        torch.testing.assert_close(ours(x, cov), ref, rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(fused(x, cov), ref, rtol=1e-3, atol=1e-3)
    best = {k: 0.0 for k in ("train_ours", "train_plain", "infer_ours", "infer_plain")}
    for _ in range(repeats):
        best["infer_plain"] = max(best["infer_plain"], time_infer(plain, x, cov, iters, device, torch.no_grad))
        best["infer_ours"] = max(best["infer_ours"], time_infer(fused, x, cov, iters, device, torch.inference_mode))
        best["train_plain"] = max(best["train_plain"], time_train(plain, x, cov, y, iters, device))
        best["train_ours"] = max(best["train_ours"], time_train(ours, x, cov, y, iters, device))
    print(f"{name:>6} {device.type:>4} batch {batch:>3}: "
          f"train {best['train_ours']:8.2f} vs plain {best['train_plain']:8.2f} samples/s "
          f"({best['train_ours'] / best['train_plain']:.2f}x); "
          f"inference {best['infer_ours']:8.2f} vs plain {best['infer_plain']:8.2f} samples/s "
          f"({best['infer_ours'] / best['infer_plain']:.2f}x)", flush=True)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="*", default=list(PROFILES), choices=list(PROFILES))
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=0, help="0: 16 (demo) / 4 (paper) on CPU, 64 on CUDA")
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}")
    for name in args.profiles:
        batch = args.batch_size or (64 if device.type == "cuda" else (16 if name == "demo" else 4))
        bench(name, PROFILES[name], device, batch, args.iters, args.repeats)


if __name__ == "__main__":
    main()
