"""Data-parallel training under ``torchrun``: process group, sharding and gathering.

A script started by ``torchrun --nproc_per_node=N`` finds ``RANK``/``WORLD_SIZE`` in its
environment; :func:`setup` then joins the process group (NCCL on CUDA, gloo on CPU). With
no such variables everything degrades to a single process, so the same code path runs in
both cases.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and prints progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: torch.device) -> Context:
    """Join the process group when launched by torchrun; pick this rank's CUDA device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(0, 1, device)
    rank = int(os.environ["RANK"])
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Context(rank, world, device)


def teardown(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def gather_rows(ctx: Context, rows: np.ndarray, n_total: int) -> np.ndarray:
    """Reassemble per-rank rows of a strided shard (rank r holds items r, r+W, ...).

    Every rank receives the full (n_total, ...) array in the original order.
    """
    if not ctx.distributed:
        return rows
    per_rank = -(-n_total // ctx.world_size)
    padded = np.zeros((per_rank,) + rows.shape[1:], dtype=rows.dtype)
    padded[:len(rows)] = rows
    local = torch.from_numpy(padded).to(ctx.device)
    parts = [torch.empty_like(local) for _ in range(ctx.world_size)]
    dist.all_gather(parts, local)
    stacked = torch.stack(parts, dim=1).reshape((per_rank * ctx.world_size,) + rows.shape[1:])
    return stacked[:n_total].cpu().numpy()
