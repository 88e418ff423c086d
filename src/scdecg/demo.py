"""The demo: every step of :data:`scdecg.workspace.PIPELINE`, in order, in one Python process.

Each step runs its script as ``python <script> <args>`` in the workspace would: as
``__main__``, with that ``sys.argv`` and the workspace as working directory. Only the
interpreter is shared, so torch, pandas and matplotlib are imported once instead of once per
step (a training step's start-up: 3.3 s on a 2-core machine, 8.7 s without cached bytecode;
benchmarks/bench_startup.py). Scripts keep no state between runs:
each seeds its own random generators and passes data to the next through files.
A step that exits non-zero (or raises) stops the demo with its exit code.
Wall time per step goes to ``reports/demo_timings.csv``, rewritten after every step.

    python -m scdecg.demo --workspace demo_workspace      (what ``python3 run.py demo`` runs)
"""
from __future__ import annotations

import argparse
import gc
import os
import runpy
import sys
import time
import traceback
from pathlib import Path
from typing import Sequence

import pandas as pd

from .errors import PipelineError, script_main
from .io import write_csv
from .workspace import DEMO_TIMINGS, PIPELINE, REPORT_DIR, REPORT_HTML, REPORT_MD, Step

#: the repository root of a source checkout (scripts are named relative to it)
REPOSITORY = Path(__file__).resolve().parents[2]
TIMING_COLUMNS = ["step", "script", "seconds"]


def run_script(script: str, args: Sequence[str], cwd: Path, root: Path = REPOSITORY) -> int:
    """Run ``root/script`` (or ``-m module``) with ``args`` as ``__main__`` in this process,
    from ``cwd``; return its exit code (1 after an uncaught exception, printed)."""
    saved_argv, saved_cwd = sys.argv, Path.cwd()
    module = script.removeprefix("-m ") if script.startswith("-m ") else None
    sys.argv = [script, *args]     # runpy puts the file it runs in argv[0], as python does
    try:
        os.chdir(cwd)
        if module:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(str(root / script), run_name="__main__")
        return 0
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)      # sys.exit("message"), as the interpreter would
        return 1
    except Exception:                          # noqa: BLE001 -- reported like an uncaught error
        traceback.print_exc()
        return 1
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        gc.collect()


def run_demo(workspace: Path, steps: Sequence[Step] = PIPELINE, root: Path = REPOSITORY) -> int:
    """Run ``steps`` in ``workspace``; record each step's wall time in reports/demo_timings.csv."""
    workspace = workspace.resolve()
    timings = workspace / REPORT_DIR / DEMO_TIMINGS
    timings.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    start = time.perf_counter()
    for i, s in enumerate(steps, 1):
        print(f"\n=== [{i}/{len(steps)}] {s.title}: {s.script} {' '.join(s.args)}", flush=True)
        t0 = time.perf_counter()
        code = run_script(s.script, s.args, workspace, root)
        sys.stdout.flush()
        if code != 0:
            print(f"\n[demo] step '{s.title}' failed (exit {code}); outputs so far are in "
                  f"{workspace}", file=sys.stderr)
            return code
        seconds = time.perf_counter() - t0
        rows.append({"step": s.title, "script": s.script, "seconds": round(seconds, 1)})
        write_csv(pd.DataFrame(rows, columns=TIMING_COLUMNS), timings)
        print(f"--- {s.title}: {seconds:.1f} s", flush=True)
    print(f"\n[demo] pipeline finished in {time.perf_counter() - start:.0f} s; report: "
          f"{workspace / REPORT_DIR / REPORT_MD} (and {REPORT_HTML}, figures embedded)")
    return 0


@script_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("demo_workspace"),
                        help="folder the pipeline writes into (created if missing)")
    parser.add_argument("--root", type=Path, default=REPOSITORY,
                        help="repository root: the folder holding the numbered script folders")
    args = parser.parse_args(argv)
    missing = [s.script for s in PIPELINE
               if not s.script.startswith("-m ") and not (args.root / s.script).is_file()]
    if missing:
        raise PipelineError(f"{args.root}: not the repository root (no {missing[0]}); "
                            f"pass --root")
    if args.workspace.exists() and not args.workspace.is_dir():
        raise PipelineError(f"--workspace {args.workspace}: a file, not a folder")
    return run_demo(args.workspace, PIPELINE, args.root.resolve())


if __name__ == "__main__":
    raise SystemExit(main())
