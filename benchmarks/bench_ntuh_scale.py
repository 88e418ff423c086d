"""NTUH-scale run: generate a ~18,000-ECG synthetic cohort, run x01–x06 and prediction.

Prints each step's wall time and peak memory (whole process tree). Example (about 10,950
patients give about 18,000 ECGs, the size of the NTUH release)::

    python benchmarks/bench_ntuh_scale.py --n-patients 10950 --workspace /tmp/ntuh_scale

Prediction needs a model: the script first trains a demo-profile 10-s model for one epoch on
the cohort (reported separately; it is not part of the timed pipeline), then predicts every ECG.

``--compare-with DIR`` (a checkout or ``git archive`` of an older commit, with ``src/`` and the
numbered script folders) also runs that version's x06 and prediction on the same workspace,
each just before this version's, and prints old against new (wall time, peak memory, ratio)::

    git archive 0319b3b src 00_Data_Preprocessing 01_Predictive_Model | tar -x -C /tmp/old
    python benchmarks/bench_ntuh_scale.py --compare-with /tmp/old
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from measure import fresh_workspace, machine_line, measure
from scdecg.workspace import COVARIATE_DF, DEFAULT_DATA_ROOT, step, steps_through

ROOT = Path(__file__).resolve().parents[1]
#: x00-x06 of the pipeline (x00 with this benchmark's size), then a 1-epoch model and its
#: predictions of every ECG. Titles in brackets are not part of the timed pipeline.
BENCH_MODEL = "bench_scale"
STEPS = [
    *((f"{s.key} {s.title}", s.script, None if s.key == "x00" else list(s.args))
      for s in steps_through("x06")),
    ("(train 1 epoch, demo)", step("train_ecg").script,
     ["--profile", "demo", "--max-epochs", "1", "--min-epochs", "1", "--model-name", BENCH_MODEL]),
    ("predict all ECGs", step("predict").script, ["--model-name", BENCH_MODEL, "--part", "all"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-patients", type=int, default=10950)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/ntuh_scale"))
    parser.add_argument("--keep", action="store_true", help="keep the workspace afterwards")
    parser.add_argument("--compare-with", type=Path, default=None,
                        help="older version's folder: also time its x06 and prediction")
    args = parser.parse_args()
    compared = []
    ws = fresh_workspace(args.workspace)
    print(machine_line())
    rows, pipeline_total = [], 0.0
    for title, script, extra in STEPS:
        if extra is None:
            extra = ["--data-root", DEFAULT_DATA_ROOT, "--n-patients", str(args.n_patients),
                     "--seed", str(args.seed)]
        log = ws / f"log_{Path(script).stem}.txt"
        if args.compare_with and script.split("/")[-1].startswith(("x06", "x03_predict")):
            old_root = args.compare_with.resolve()
            env = dict(os.environ, PYTHONPATH=str(old_root / "src"))
            old_log = ws / f"log_{Path(script).stem}_old.txt"
            old = measure([sys.executable, str(old_root / script), *extra], cwd=ws, env=env,
                          log_path=old_log)
            if old.returncode != 0:
                print(f"old {title} failed (exit {old.returncode}); see {old_log}")
                return 1
            print(f"{'old ' + title:<24} {old.wall_s:8.1f} s  peak {old.peak_rss_mb:8.0f} MiB",
                  flush=True)
        m = measure([sys.executable, str(ROOT / script), *extra], cwd=ws, log_path=log)
        if args.compare_with and script.split("/")[-1].startswith(("x06", "x03_predict")):
            compared.append((title, old, m))
        if m.returncode != 0:
            print(f"{title} failed (exit {m.returncode}); see {log}")
            return 1
        if not title.startswith("("):
            pipeline_total += m.wall_s
        rows.append((title, m.wall_s, m.peak_rss_mb))
        print(f"{title:<44} {m.wall_s:8.1f} s  peak {m.peak_rss_mb:8.0f} MiB", flush=True)
    import pandas as pd
    n_ecgs = len(pd.read_feather(ws / COVARIATE_DF))
    print(f"\n{n_ecgs} ECGs in the cohort table")
    print(f"{'step':<44} {'wall s':>8} {'ECGs/s':>8} {'peak MiB':>9}")
    for title, wall, peak in rows:
        print(f"{title:<44} {wall:8.1f} {n_ecgs / wall:8.1f} {peak:9.0f}")
    for title, old, new in compared:
        print(f"{title}: old {old.wall_s:.1f} s / {old.peak_rss_mb:.0f} MiB, new {new.wall_s:.1f} s"
              f" / {new.peak_rss_mb:.0f} MiB: {old.wall_s / new.wall_s:.2f}x the speed, "
              f"{new.peak_rss_mb / old.peak_rss_mb:.2f}x the memory")
    x03_x06 = sum(w for t, w, _ in rows if t[:3] in ("x03", "x04", "x05", "x06"))
    print(f"x03–x06 together: {x03_x06:.0f} s; timed pipeline (all but training): {pipeline_total:.0f} s")
    if not args.keep:
        shutil.rmtree(ws, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
