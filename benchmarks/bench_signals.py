"""Time the signal steps x03 (extract + gain), x04 (beats), x05 (morphing beats), x06 (aVL).

Each step runs as a user runs it, in a workspace; wall time, ECGs/s, CPU seconds (all its
processes; unlike wall time, not inflated by other load on the machine) and peak memory (the
whole process tree) are printed per step, plus the total and a linear extrapolation to all
18,072 ECGs of the NTUH release (an upper bound: x01 keeps one ECG per patient, so the NTUH
cohort table holds about 10,950, which ``--n-patients 10950`` reproduces). Without ``--workspace`` a synthetic cohort is generated first
(x00-x02, not timed)::

    python benchmarks/bench_signals.py --n-patients 1000 --n-jobs 2
    python benchmarks/bench_signals.py --workspace /tmp/ntuh_scale   # an existing x02 workspace

The target at NTUH scale on 2 cores: x03-x06 together under 10 minutes and under 4 GB.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
from pathlib import Path

from measure import measure

ROOT = Path(__file__).resolve().parents[1]
PREP = ROOT / "00_Data_Preprocessing"
NTUH_ECGS = 18_072
SETUP = [("x00", "x00_make_synthetic_ntuh.py"), ("x01", "x01_build_ntuh_df.py"),
         ("x02", "x02_generate_dummy_columns.py")]
STEPS = [("x03 extract + gain", "x03_process_10sec_ecg.py", True),
         ("x04 beats", "x04_segment_beats.py", True),
         ("x05 morphing beats", "x05_create_morphing_beats.py", True),
         ("x06 aVL features", "x06_create_aVL_feature.py", True)]


def cpu_seconds() -> float:
    """User + system CPU time of all finished (waited-for) descendant processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(script: str, args: list[str], ws: Path):
    """Run one step; returns its Measurement and the CPU seconds it used (all processes)."""
    log = ws / f"bench_{Path(script).stem}.log"
    before = cpu_seconds()
    m = measure([sys.executable, str(PREP / script), *args], cwd=ws, log_path=log)
    if m.returncode != 0:
        raise SystemExit(f"{script} failed (exit {m.returncode}); see {log}")
    return m, cpu_seconds() - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=None,
                        help="existing workspace after x02 (default: generate a temporary one)")
    parser.add_argument("--n-patients", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=2, help="worker processes per step")
    parser.add_argument("--keep", action="store_true", help="keep a generated workspace")
    args = parser.parse_args()

    generated = args.workspace is None
    ws = Path(tempfile.mkdtemp(prefix="bench_signals_")) if generated else args.workspace.resolve()
    print(f"machine: {platform.node()}, {len(os.sched_getaffinity(0))} cores, "
          f"Python {platform.python_version()}; workspace {ws}")
    try:
        if generated:
            for name, script in SETUP:
                extra = (["--data-root", "arrest-ntuh-ecg/v1", "--n-patients", str(args.n_patients),
                          "--seed", str(args.seed)] if name == "x00" else [])
                m, _ = run(script, extra, ws)
                print(f"(setup) {name:<16} {m.wall_s:8.1f} s", flush=True)
        import pandas as pd
        n_ecgs = len(pd.read_feather(ws / "covariate_df.feather"))
        print(f"{n_ecgs} ECGs; steps run with --n-jobs {args.n_jobs} where they take it\n")
        print(f"{'step':<22} {'wall s':>8} {'ECGs/s':>8} {'CPU s':>8} {'peak MiB':>9} "
              f"{'s @ NTUH':>9}")
        total = total_cpu = 0.0
        for title, script, takes_jobs in STEPS:
            if not (PREP / script).exists():
                print(f"{title:<22} (script not present)")
                continue
            m, cpu = run(script, ["--n-jobs", str(args.n_jobs)] if takes_jobs else [], ws)
            total, total_cpu = total + m.wall_s, total_cpu + cpu
            print(f"{title:<22} {m.wall_s:8.1f} {n_ecgs / m.wall_s:8.1f} {cpu:8.1f} "
                  f"{m.peak_rss_mb:9.0f} {m.wall_s * NTUH_ECGS / n_ecgs:9.0f}", flush=True)
        print(f"{'x03-x06 together':<22} {total:8.1f} {n_ecgs / total:8.1f} {total_cpu:8.1f} "
              f"{'':>9} {total * NTUH_ECGS / n_ecgs:9.0f}")
        print(f"CPU s / {args.n_jobs} cores, extrapolated to NTUH (the wall time on otherwise idle "
              f"cores): {total_cpu / args.n_jobs * NTUH_ECGS / n_ecgs:.0f} s")
        print("(s @ NTUH: linear extrapolation to 18,072 ECGs, an upper bound)")
    finally:
        if generated and not args.keep:
            shutil.rmtree(ws, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
