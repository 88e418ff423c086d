"""Two CPU processes (gloo) train the same model as one process with the same global batch."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from scdecg.training import Context, FitSettings, SignalDataset, fit

N, B, OUTPUTS = 48, 8, ["a", "b"]


class TinyNet(nn.Module):
    """Conv + mean-pool + linear: no batch-norm, whose statistics are per process by design."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(12, 4, 5)
        self.head = nn.Linear(4 + 1, len(OUTPUTS))

    def forward(self, x, cov):
        return self.head(torch.cat([self.conv(x).relu().mean(-1), cov], 1))


def data(seed: int) -> SignalDataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, 12, 40)).astype(np.float32)
    y = np.stack([(x[:, 4].mean(1) > 0), rng.random(N) < 0.5], 1).astype(np.float32)
    index = pd.DataFrame({"studyId": [f"s{i}" for i in range(N)], "path": "", "scale": 1.0})
    return SignalDataset(index, y, rng.normal(size=(N, 1)).astype(np.float32), 40, [], x)


def train(rank: int, world: int, folder: str, port: int) -> None:
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = TinyNet()
    settings = FitSettings(lr=1e-2, batch_size=B, min_epochs=3, max_epochs=3, patience=5,
                           seed=1, progress=False)
    result = fit(model, data(0), data(1), OUTPUTS, [False, False], settings, Path(folder),
                 Context(rank, world), {"world": "any"})
    if rank == 0:
        torch.save({"weights": model.state_dict(),
                    "val_loss": torch.tensor([h["val_loss"] for h in result.history])},
                   Path(folder) / "result.pt")
    if world > 1:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    train(0, 1, str(tmp_path / "one"), 0)
    mp.spawn(train, args=(2, str(tmp_path / "two"), free_port()), nprocs=2, join=True)
    one = torch.load(tmp_path / "one/result.pt", weights_only=True)
    two = torch.load(tmp_path / "two/result.pt", weights_only=True)
    for key, value in one["weights"].items():
        torch.testing.assert_close(two["weights"][key], value, rtol=1e-4, atol=1e-5)
    # validation loss over the full (gathered) validation set, identical to one process
    torch.testing.assert_close(two["val_loss"], one["val_loss"], rtol=1e-5, atol=1e-6)
    assert (tmp_path / "two" / "checkpoint.pt").exists()  # written by rank 0 only
