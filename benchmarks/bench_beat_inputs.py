"""How long the beat models' inputs take to list and check, against the plain ways, in one run.

On a workspace with ``ecg_beats/`` (x04's; default: the demo's), times

* the sample table of every cohort ECG's beats: ``training.data.beat_items`` (one table at the
  end) against one small table per ECG joined at the end (the code before issue 12's
  stop 23), and checks that both give the same table;
* the header check of every beat file: ``io.npy_header`` against a memory-mapped
  ``np.load`` (``io.load_npy(mmap=True)``, what training used before), and checks that both
  give the same shapes.

Each is run ``--repeats`` times, alternating, and the best time of each is printed with the
ratio. Example::

    python benchmarks/bench_beat_inputs.py --workspace demo_workspace
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

from measure import machine_line


def per_ecg_tables(rows: pd.DataFrame, root: Path) -> pd.DataFrame:
    """The sample table built as before: one DataFrame per ECG, concatenated."""
    from scdecg.workspace import beat_files, beat_folder

    parts = []
    for row in rows.itertuples(index=False):
        files = [path for _, path in beat_files(beat_folder(root, row.studyId), row.studyId)]
        if files:
            parts.append(pd.DataFrame({"studyId": row.studyId, "filename": [f.name for f in files],
                                       "path": [str(f) for f in files]}))
    beats = pd.concat(parts, ignore_index=True)
    beats["scale"] = 1.0
    return beats.merge(rows, on="studyId", how="left", validate="many_to_one")


def timed(func) -> tuple[float, object]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("demo_workspace"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from scdecg.io import load_npy, npy_header
    from scdecg.training.data import beat_items
    from scdecg.workspace import BEATS_DIR, COVARIATE_DF

    ws = args.workspace
    if not (ws / BEATS_DIR).is_dir():
        sys.exit(f"{ws / BEATS_DIR}: not found; run the demo (python3 run.py demo) first")
    rows = pd.read_feather(ws / COVARIATE_DF)[["studyId", "ptId"]]
    os.chdir(ws)
    print(machine_line())
    new_s, old_s = [], []
    for _ in range(args.repeats):    # alternating, so a slow spell of the machine hits both
        seconds, new = timed(lambda: beat_items(rows, Path("."), BEATS_DIR))
        new_s.append(seconds)
        seconds, old = timed(lambda: per_ecg_tables(rows, Path(BEATS_DIR)))
        old_s.append(seconds)
    same = new.astype(str).equals(old.astype(str))
    print(f"sample table of {len(rows)} ECGs ({len(new)} beats), best of {args.repeats}: "
          f"beat_items {min(new_s):.2f} s, one table per ECG {min(old_s):.2f} s "
          f"({min(old_s) / min(new_s):.1f}x); same table: {same}")
    paths = new["path"].tolist()
    head_s, mmap_s = [], []
    for _ in range(args.repeats):
        seconds, shapes = timed(lambda: [npy_header(p)[0] for p in paths])
        head_s.append(seconds)
        seconds, mapped = timed(lambda: [load_npy(p, mmap=True).shape for p in paths])
        mmap_s.append(seconds)
    head, mmap = min(head_s), min(mmap_s)
    print(f"header check of {len(paths)} beat files, best of {args.repeats}: npy_header "
          f"{head:.2f} s ({head / len(paths) * 1e6:.0f} us a file), memory-mapped np.load "
          f"{mmap:.2f} s ({mmap / len(paths) * 1e6:.0f} us a file; {mmap / head:.1f}x); "
          f"same shapes: {shapes == mapped}")
    return 0 if same and shapes == mapped else 1


if __name__ == "__main__":
    raise SystemExit(main())
