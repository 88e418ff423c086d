"""Benchmark the synthetic NTUH generator (x00): ECGs per minute and peak memory.

Runs x00 as a user would, in a scratch folder, then prints its wall time, simulated ECGs per
minute, peak resident memory (``getrusage`` maxrss of the child process), the size on disk and
the cohort's label counts and oracle AUC. NTUH scale::

    python benchmarks/bench_synthetic.py --n-patients 10950 --workspace /tmp/bench_x00
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from measure import fresh_workspace, machine_line
from scdecg.metrics import roc_auc

ROOT = Path(__file__).resolve().parents[1]
X00 = ROOT / "00_Data_Preprocessing" / "x00_make_synthetic_ntuh.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-patients", type=int, default=10950)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/bench_x00"))
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    ws = fresh_workspace(args.workspace)
    cmd = [sys.executable, str(X00), "--n-patients", str(args.n_patients), "--seed", str(args.seed)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ws, env=dict(os.environ, TQDM_DISABLE="1"),
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, sep="\n")
        return 1
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
    truth = pd.read_csv(ws / "arrest-ntuh-ecg" / "synthetic_truth.csv", keep_default_na=False)
    n_ecgs = int((truth["npy_index"] >= 0).sum())
    size = sum(p.stat().st_size for p in (ws / "arrest-ntuh-ecg").rglob("*") if p.is_file())
    selected = truth[truth["selected"]]
    scd1 = selected["scd1"].to_numpy(bool)
    print(proc.stdout.strip())
    print(machine_line())
    print(f"patients {args.n_patients}, ECG rows {len(truth)}, waveform ECGs {n_ecgs}")
    print(f"wall {wall:.1f} s  ->  {n_ecgs / wall * 60:,.0f} ECGs/minute (tables included)")
    print(f"peak memory (maxrss of x00) {peak_mib:,.0f} MiB; on disk {size / 2**20:,.0f} MiB")
    print(f"selected ECGs {len(selected)}, scd1 positives {scd1.sum()}, "
          f"oracle AUC (slur strength) {roc_auc(scd1, selected['slur_strength'].to_numpy()):.3f}")
    if not args.keep:
        shutil.rmtree(ws, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
