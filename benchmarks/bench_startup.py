"""What a pipeline step pays before it does any work: starting Python and importing.

Each variant runs ``--repeats`` times, alternating, in one run:

* ``cold``: no bytecode cache can be read or written (an empty ``PYTHONPYCACHEPREFIX`` and
  ``PYTHONDONTWRITEBYTECODE``): what every step paid when uv had installed the environment
  without compiling it and the machine forbade writing bytecode, before run.py's warm-up;
* ``cached``: the bytecode cache as run.py's set-up leaves it.

The import is a training step's (``scdecg.training.runs``, then an Adam optimiser, whose
first use imports ``torch._dynamo``). The demo runs its 28 steps in one process
(``scdecg.demo``), so it pays this once instead of once per step.

    python benchmarks/bench_startup.py --repeats 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from measure import machine_line

STEP_IMPORTS = ("import scdecg.training.runs, torch\n"
                "torch.optim.Adam([torch.zeros(1, requires_grad=True)]).step()")


def start_up_seconds(env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", STEP_IMPORTS], env=env, check=True)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory() as empty:
        cold_env = dict(os.environ, PYTHONPYCACHEPREFIX=empty, PYTHONDONTWRITEBYTECODE="1")
        cached_env = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
        start_up_seconds(cached_env)                  # fill the OS file cache first
        times: dict[str, list[float]] = {"cold": [], "cached": []}
        for _ in range(args.repeats):
            times["cold"].append(start_up_seconds(cold_env))
            times["cached"].append(start_up_seconds(cached_env))
    cold, cached = (statistics.median(times[k]) for k in ("cold", "cached"))
    print(f"training step start-up, median of {args.repeats}: no bytecode cache {cold:.2f} s, "
          f"cached {cached:.2f} s ({cold / cached:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
