"""The demo: every step of :data:`scdecg.workspace.PIPELINE`, in order, run from the workspace.

Each step runs its script as ``python <script> <args>`` in the workspace would: as
``__main__``, with that ``sys.argv`` and the workspace as working directory. Steps share an
interpreter, so torch, pandas and matplotlib are imported once instead of once per step (a
training step's start-up: 3.3 s on a 2-core machine, 8.7 s without cached bytecode;
benchmarks/bench_startup.py). Scripts keep no state between runs: each seeds its own random
generators and passes data to the next through files.

With ``--jobs 2`` (the default where there are two cores or more) the steps of
:data:`scdecg.workspace.DEMO_LANES` run in two lanes side by side, one process each: the small
convolutions of the demo's models leave a second core mostly idle, so two lanes finish the
training steps sooner than one (docs/PERFORMANCE.md). The lanes' processes wait for work
without spinning (``OMP_WAIT_POLICY=PASSIVE``; spinning threads of two processes would take
turns on the cores); they use the same number of torch threads as one process would, so every
output is the same, value for value, whatever ``--jobs`` is. Each lane's output is echoed
with its lane number and kept in ``reports/demo_lane<k>.log``.

A step that exits non-zero (or raises) stops the demo with its exit code (a lane that fails
stops the other). Wall time per step goes to ``reports/demo_timings.csv`` (with the lane and
when the step started), rewritten after every step.

    python -m scdecg.demo --workspace demo_workspace      (what ``python3 run.py demo`` runs)
    python -m scdecg.demo --workspace demo_seed2 --data-seed 2   (another synthetic cohort)
"""
from __future__ import annotations

import argparse
import fnmatch
import gc
import io
import os
import runpy
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Sequence

import pandas as pd

from .cli import number_type
from .errors import PipelineError, script_main
from .io import write_csv
from .parallel import default_jobs
from .workspace import (DEMO_LANE_LOG, DEMO_LANE_TIMINGS, DEMO_LANES, DEMO_TIMINGS, PIPELINE,
                        REPORT_DIR, REPORT_HTML, REPORT_MD, Step)

#: the repository root of a source checkout (scripts are named relative to it)
REPOSITORY = Path(__file__).resolve().parents[2]
#: the step that draws the synthetic cohort (``--data-seed`` sets its ``--seed``)
DATA_STEP = "x00"
#: columns of reports/demo_timings.csv: lane 0 is the demo's own process, 1, 2, ... its lanes;
#: ``started`` is seconds after the demo began
TIMING_COLUMNS = ["step", "script", "seconds", "lane", "started"]


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


# --------------------------------------------------------------------------------------
# The schedule: steps before the lanes, the lanes side by side, the steps after them
# --------------------------------------------------------------------------------------
def paths_overlap(a: str, b: str) -> bool:
    """Whether workspace paths ``a`` and ``b`` (globs allowed) can name the same file, or one
    a folder holding the other."""
    parts_a, parts_b = a.split("/"), b.split("/")
    return all(fnmatch.fnmatchcase(x, y) or fnmatch.fnmatchcase(y, x)
               for x, y in zip(parts_a, parts_b))


def demo_schedule(steps: Sequence[Step], lanes: Sequence[Sequence[str]]
                  ) -> tuple[list[Step], list[list[Step]], list[Step]]:
    """Split ``steps`` into those run before the lanes, the lanes (each in ``steps``' order)
    and those run after them: the steps of no lane that come before every lane step in
    ``steps`` run first, the other steps of no lane last.

    A :class:`PipelineError` names a lane step that is unknown or in two lanes, and a lane
    step whose declared input or output another lane, or a step run after the lanes, writes.
    """
    keys = [s.key for s in steps]
    lane_of: dict[str, int] = {}
    for k, lane in enumerate(lanes):
        for key in lane:
            if key not in keys:
                raise PipelineError(f"demo lane {k + 1}: unknown step {key!r}; known: {keys}")
            if key in lane_of:
                raise PipelineError(f"demo lanes: step {key!r} is in lanes {lane_of[key] + 1} "
                                    f"and {k + 1}")
            lane_of[key] = k
    first = min((keys.index(key) for key in lane_of), default=len(steps))
    before = [s for s in steps[:first] if s.key not in lane_of]
    after = [s for s in steps[first:] if s.key not in lane_of]
    in_lanes = [[s for s in steps if lane_of.get(s.key) == k] for k in range(len(lanes))]
    for k, lane in enumerate(in_lanes):
        writers = [s for j, other in enumerate(in_lanes) if j != k for s in other] + after
        for s in lane:
            for verb, paths in (("reads", s.inputs), ("writes", s.outputs)):
                for path in paths:
                    clash = next((w for w in writers if any(paths_overlap(path, out)
                                                            for out in w.outputs)), None)
                    if clash is not None:
                        raise PipelineError(f"demo lane {k + 1}: step {s.key!r} {verb} {path}, "
                                            f"which step {clash.key!r} writes outside its lane")
    return before, [lane for lane in in_lanes if lane], after


# --------------------------------------------------------------------------------------
# Running steps
# --------------------------------------------------------------------------------------
class Timings:
    """Rows of reports/demo_timings.csv, written after every change."""

    def __init__(self, path: Path, started: float):
        self.path, self.started, self.rows = path, started, []

    def add(self, step: Step, t0: float, seconds: float, lane: int = 0) -> None:
        self.rows.append({"step": step.title, "script": step.script,
                          "seconds": round(seconds, 1), "lane": lane,
                          "started": round(t0 - self.started, 1)})
        self.write()

    def merge(self, path: Path, lane: int, offset: float) -> None:
        """Add a lane's rows (its ``started`` counted from ``offset`` s after this demo began);
        remove its file."""
        if path.exists():
            rows = pd.read_csv(path).to_dict("records")
            self.rows += [{**r, "lane": lane, "started": round(r["started"] + offset, 1)}
                          for r in rows]
            self.write()
            path.unlink()

    def write(self) -> None:
        write_csv(pd.DataFrame(self.rows, columns=TIMING_COLUMNS), self.path)


def run_steps(steps: Sequence[Step], workspace: Path, root: Path, timings: Timings,
              numbers: dict[str, int], total: int) -> int:
    """Run ``steps`` one after another in this process; the first non-zero exit code, or 0."""
    for s in steps:
        print(f"\n=== [{numbers[s.key]}/{total}] {s.title}: {s.script} {' '.join(s.args)}",
              flush=True)
        t0 = time.perf_counter()
        code = run_script(s.script, s.args, workspace, root)
        sys.stdout.flush()
        if code != 0:
            print(f"\n[demo] step '{s.title}' failed (exit {code}); outputs so far are in "
                  f"{workspace}", file=sys.stderr)
            return code
        seconds = time.perf_counter() - t0
        timings.add(s, t0, seconds)
        print(f"--- {s.title}: {seconds:.1f} s", flush=True)
    return 0


def _echo(stream, log: Path, prefix: str) -> None:
    """Copy a lane's output to its log and, each line prefixed, to this process's stdout.
    A progress bar rewrites its line with carriage returns: only its last state is kept."""
    with open(log, "w", encoding="utf-8") as out:
        for line in stream:
            line = line.rstrip("\n").rsplit("\r", 1)[-1].rstrip()
            if line:
                out.write(line + "\n")
                out.flush()
                print(f"{prefix}{line}", flush=True)


def run_lanes(lanes: Sequence[Sequence[Step]], workspace: Path, root: Path, timings: Timings
              ) -> int:
    """Run each lane as ``python -m scdecg.demo --steps ...`` in its own process, side by side.

    The first lane to fail stops the others (their files are written atomically, so nothing
    half-written is left); its exit code is returned."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")    # a user's own setting wins
    reports = workspace / REPORT_DIR
    offset = time.perf_counter() - timings.started
    running = []
    for k, lane in enumerate(lanes, 1):
        print(f"[demo] lane {k}: {', '.join(s.title for s in lane)}", flush=True)
        command = [sys.executable, "-m", "scdecg.demo", "--workspace", str(workspace),
                   "--root", str(root), "--jobs", "1", "--steps", ",".join(s.key for s in lane),
                   "--timings", str(reports / DEMO_LANE_TIMINGS.format(k))]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=env)
        # lines end at "\n" only, so that a progress bar's "\r" updates stay on its line
        lines = io.TextIOWrapper(process.stdout, encoding="utf-8", errors="replace",
                                 newline="\n")
        echo = threading.Thread(target=_echo, args=(lines, reports / DEMO_LANE_LOG.format(k),
                                                    f"[lane {k}] "))
        echo.start()
        running.append((k, process, echo))
    code = 0
    pending = list(running)
    try:
        while pending:
            for item in list(pending):
                k, process, echo = item
                if process.poll() is None:
                    continue
                pending.remove(item)
                echo.join()
                timings.merge(reports / DEMO_LANE_TIMINGS.format(k), k, offset)
                if process.returncode != 0 and code == 0:
                    code = process.returncode
                    print(f"\n[demo] lane {k} failed (exit {code}); stopping the other lanes; "
                          f"its output is in {reports / DEMO_LANE_LOG.format(k)}",
                          file=sys.stderr)
                    for _, other, _ in pending:
                        other.terminate()
            time.sleep(0.2)
    except KeyboardInterrupt:           # Ctrl-C: no lane may go on writing into the workspace
        for _, process, echo in pending:
            process.terminate()
            process.wait()
            echo.join()
        print("\n[demo] interrupted; the lanes were stopped", file=sys.stderr)
        return 130
    return code


def run_demo(workspace: Path, steps: Sequence[Step] = PIPELINE, root: Path = REPOSITORY,
             jobs: int = 1, lanes: Sequence[Sequence[str]] = DEMO_LANES,
             timings_path: Path | None = None) -> int:
    """Run ``steps`` in ``workspace`` (with ``jobs`` ≥ 2, ``lanes`` side by side); record each
    step's wall time in reports/demo_timings.csv (or ``timings_path``)."""
    workspace = workspace.resolve()
    path = timings_path or workspace / REPORT_DIR / DEMO_TIMINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    timings = Timings(path, time.perf_counter())
    numbers = {s.key: i for i, s in enumerate(steps, 1)}
    before, in_lanes, after = list(steps), [], []
    if jobs >= 2:
        scheduled = demo_schedule(steps, lanes)
        if len(scheduled[1]) >= 2:              # otherwise nothing runs side by side
            before, in_lanes, after = scheduled
    code = run_steps(before, workspace, root, timings, numbers, len(steps))
    if code == 0 and in_lanes:
        code = run_lanes(in_lanes, workspace, root, timings)
    if code == 0:
        code = run_steps(after, workspace, root, timings, numbers, len(steps))
    if code == 0:
        print(f"\n[demo] pipeline finished in {time.perf_counter() - timings.started:.0f} s; "
              f"report: {workspace / REPORT_DIR / REPORT_MD} (and {REPORT_HTML}, figures "
              f"embedded)")
    return code


@script_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("demo_workspace"),
                        help="folder the pipeline writes into (created if missing)")
    parser.add_argument("--root", type=Path, default=REPOSITORY,
                        help="repository root: the folder holding the numbered script folders")
    parser.add_argument("--jobs", type=int, choices=(1, 2), default=min(2, default_jobs()),
                        help="2: run the steps of the two demo lanes side by side (default with "
                             "two cores or more); 1: every step in this process, in order")
    parser.add_argument("--steps", default="",
                        help="comma-separated step keys to run (default: all; a lane uses it)")
    parser.add_argument("--timings", type=Path, default=None,
                        help="timings table to write (default: reports/demo_timings.csv)")
    parser.add_argument("--data-seed", type=number_type("data_seed", 0), default=None,
                        help="seed of the synthetic cohort (x00's --seed; default: the demo's, "
                             "0): another draw of the same design, to check that the findings "
                             "are not one cohort's")
    args = parser.parse_args(argv)
    missing = [s.script for s in PIPELINE
               if not s.script.startswith("-m ") and not (args.root / s.script).is_file()]
    if missing:
        raise PipelineError(f"{args.root}: not the repository root (no {missing[0]}); "
                            f"pass --root")
    if args.workspace.exists() and not args.workspace.is_dir():
        raise PipelineError(f"--workspace {args.workspace}: a file, not a folder")
    steps = list(PIPELINE)
    if args.steps:
        wanted = args.steps.split(",")
        known = {s.key for s in PIPELINE}
        unknown = [key for key in wanted if key not in known]
        if unknown:
            raise PipelineError(f"--steps: unknown step {unknown[0]!r}; known: "
                                f"{[s.key for s in PIPELINE]}")
        steps = [s for s in PIPELINE if s.key in wanted]
    if args.data_seed is not None:
        steps = [s.with_option("--seed", str(args.data_seed)) if s.key == DATA_STEP else s
                 for s in steps]
    return run_demo(args.workspace, steps, args.root.resolve(), args.jobs,
                    timings_path=args.timings)

if __name__ == "__main__":
    raise SystemExit(main())
