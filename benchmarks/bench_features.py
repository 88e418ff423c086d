"""x06 throughput: aVL features per second and peak memory, in-process and as the script.

Simulates ``--n-ecgs`` 10-s ECGs (scdecg.synthetic), writes them as a minimal workspace
(covariate_df.feather + 10_sec_ecgs/), then

* times the plain reference (``x06_reference.py``: every lead, neurokit2's Hamilton detector)
  against :func:`scdecg.features.avl_features` per ECG, alternately in this process, and
  checks they agree; then the fast path stage by stage;
* runs ``x06_create_aVL_feature.py`` with each ``--n-jobs`` given, measuring wall time and the peak
  resident memory of its whole process tree (benchmarks/measure.py).

Example::

    python benchmarks/bench_features.py --n-ecgs 400 --jobs 1 2
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from measure import fresh_workspace, machine_line, measure

ROOT = Path(__file__).resolve().parents[1]
X06 = ROOT / "00_Data_Preprocessing" / "x06_create_aVL_feature.py"


def make_workspace(ws: Path, n_ecgs: int, seed: int) -> list[np.ndarray]:
    """Write n simulated ECGs (µV, float32) and a covariate table; return the ECGs in mV."""
    from scdecg import synthetic
    from scdecg.io import save_npy, write_feather

    rng = np.random.default_rng(seed)
    ecgs, ids = [], []
    for i in range(n_ecgs):
        params = synthetic.sample_ecg_params(rng, slur=float(rng.uniform(0, 1)))
        ecg_uv = synthetic.simulate_ecg(params, rng).astype(np.float32)
        ids.append(f"bench{i:06d}")
        save_npy(ecg_uv, ws / "10_sec_ecgs" / f"{ids[-1]}.npy")
        ecgs.append(ecg_uv / 1000.0)
    write_feather(pd.DataFrame({"studyId": ids, "scaling_factor": 1000.0}),
                  ws / "covariate_df.feather")
    return ecgs


def time_stages(ecgs: list[np.ndarray]) -> dict[str, float]:
    """Mean milliseconds per ECG of each stage of the fast path, in this process."""
    from scdecg import features
    from scdecg.constants import AVL
    from scdecg.signals import zero_mode

    features.avl_features(ecgs[0])  # imports and first-call costs out of the timing
    totals = {"zero-mode + low-pass (aVL)": 0.0, "Hamilton R-peaks": 0.0,
              "published refinement": 0.0, "whole avl_features": 0.0}
    for ecg in ecgs:
        t0 = time.perf_counter()
        x = features.lowpass(zero_mode(ecg[AVL:AVL + 1].astype(np.float64)))[0]
        t1 = time.perf_counter()
        peaks = features.detect_rpeaks_hamilton(x)
        t2 = time.perf_counter()
        features.refine_rpeaks(x, peaks)
        t3 = time.perf_counter()
        features.avl_features(ecg)
        t4 = time.perf_counter()
        for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            totals[key] += dt
    return {key: 1000 * value / len(ecgs) for key, value in totals.items()}


def old_against_new(ecgs: list[np.ndarray]) -> tuple[float, float, float]:
    """Milliseconds per ECG of the plain reference (x06_reference.py) and the fast path, timed
    alternately in this process, and the largest feature difference between them."""
    from scdecg import features
    import x06_reference

    x06_reference.avl_features(ecgs[0])
    features.avl_features(ecgs[0])
    old = new = worst = 0.0
    for ecg in ecgs:
        t0 = time.perf_counter()
        a = x06_reference.avl_features(ecg)
        t1 = time.perf_counter()
        b = features.avl_features(ecg)
        t2 = time.perf_counter()
        old, new = old + t1 - t0, new + t2 - t1
        if a.status != b.status or not np.array_equal(a.rpeaks, b.rpeaks):
            raise SystemExit(f"fast path differs from the reference: {a.row()} vs {b.row()}")
        for u, v in ((a.rs_diff, b.rs_diff), (a.rs_diff_2, b.rs_diff_2)):
            if np.isnan(u) != np.isnan(v):
                raise SystemExit(f"fast path differs from the reference: {a.row()} vs {b.row()}")
            if not np.isnan(u):
                worst = max(worst, abs(u - v))
    return 1000 * old / len(ecgs), 1000 * new / len(ecgs), worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-ecgs", type=int, default=400)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/bench_features"))
    args = parser.parse_args()
    ws = fresh_workspace(args.workspace)
    print(machine_line())
    ecgs = make_workspace(ws, args.n_ecgs, args.seed)

    ms_old, ms_new, worst = old_against_new(ecgs)
    print(f"\nold (plain reference) against new, in-process, mean per ECG over {len(ecgs)} ECGs:")
    print(f"  old {ms_old:.2f} ms, new {ms_new:.2f} ms: {ms_old / ms_new:.1f}x faster; "
          f"largest feature difference {worst:.1e}")

    print(f"\nnew, stage by stage, mean per ECG over {len(ecgs)} ECGs:")
    for stage, ms in time_stages(ecgs).items():
        print(f"  {stage:<27} {ms:7.2f} ms")

    print(f"\nx06 script on {args.n_ecgs} ECGs (wall time includes start-up and imports):")
    print(f"  {'n_jobs':>6} {'wall s':>8} {'ECGs/s':>8} {'peak MiB':>9}")
    for jobs in args.jobs:
        m = measure([sys.executable, str(X06), "--n-jobs", str(jobs)], cwd=ws,
                    env=dict(os.environ, TQDM_DISABLE="1"), log_path=ws / f"x06_jobs{jobs}.log")
        if m.returncode != 0:
            print(f"x06 failed (exit {m.returncode}); see {ws / f'x06_jobs{jobs}.log'}")
            return 1
        print(f"  {jobs:>6} {m.wall_s:8.1f} {args.n_ecgs / m.wall_s:8.1f} {m.peak_rss_mb:9.0f}")
    shutil.rmtree(ws, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
