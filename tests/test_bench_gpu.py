"""benchmarks/bench_gpu.py runs every check on CPU with tiny sizes (the GPU run uses the same code)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT


def test_bench_gpu_passes_on_cpu_with_tiny_sizes(tmp_path):
    out = tmp_path / "gpu.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--device",
                           "cpu", "--tiny", "--ddp-steps", "2", "--json", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    checks = {r["check"]: r for r in report["results"]}
    assert list(checks) == ["training (fit loop, AMP)", "torchrun, 1 process",
                            "inference (fused, AMP)", "batched morphing"]
    assert all(r["ok"] for r in checks.values())
    assert checks["training (fit loop, AMP)"]["samples_per_s"] > 0
    assert checks["training (fit loop, AMP)"]["peak_mb"] > 0
    # on CPU the process group is gloo and batch norm is not converted (no CPU SyncBatchNorm)
    assert checks["torchrun, 1 process"]["detail"].startswith("gloo, 0 SyncBatchNorm layers")
    assert checks["torchrun, 1 process"]["samples_per_s"] > 0
    assert checks["inference (fused, AMP)"]["samples_per_s"] > 0
    assert checks["batched morphing"]["beat_steps_per_s"] > 0
    assert proc.stdout.count("PASS") == 4
