"""Run a command and record its wall time and peak memory (sum over its whole process tree).

``ru_maxrss`` of the children only gives the largest single process, which understates a
step that fans out to worker processes; here the resident memory of the command and all its
descendants is sampled from ``/proc`` every ``interval`` seconds and the largest sum kept.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Measurement:
    wall_s: float
    peak_rss_mb: float
    returncode: int


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants, in MiB."""
    total_kb, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
        stack.extend(_children(pid))
    return total_kb / 1024


def measure(cmd: list[str], cwd: Path, interval: float = 0.2, env: dict | None = None,
            log_path: Path | None = None) -> Measurement:
    """Run ``cmd`` in ``cwd``; stdout/stderr go to ``log_path`` (or are inherited)."""
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    out = open(log_path, "w") if log_path else None
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_mb(proc.pid))
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    done.set()
    sampler.join()
    if out:
        out.close()
    return Measurement(time.perf_counter() - start, peak, code)


def machine_line() -> str:
    """One line naming the machine a benchmark ran on."""
    import platform

    return (f"machine: {platform.node()} {platform.machine()}, {len(os.sched_getaffinity(0))} "
            f"cores, Python {platform.python_version()}")


def fresh_workspace(path: Path) -> Path:
    """An empty folder at ``path`` (removed first if it exists); returns the resolved path."""
    import shutil

    path = Path(path).resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def train_step(model, opt, x, cov, y, is_regression, device) -> float:
    """One optimiser step of a risk model on a fixed batch, as the fit loop takes it (AMP on
    CUDA, the masked loss); returns the loss. Shared by the loader and GPU benchmarks."""
    from scdecg.training.loop import autocast
    from scdecg.training.losses import masked_loss

    with autocast(device, True):
        logits = model(x, cov)
    loss = masked_loss(logits.float(), y, is_regression)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()
