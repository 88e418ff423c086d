#!/usr/bin/env python3
"""Set-up and entry point: ``python3 run.py demo`` or ``python3 run.py test``.

Needs only Python 3.11+. On first use it creates ``.venv/`` beside this file, installs
``requirements.txt`` and this package into it (re-done only when those files change), then

* ``demo``  runs the whole pipeline on the synthetic NTUH stand-in in ``demo_workspace/``;
* ``test``  runs the test suite (extra arguments go to pytest).

``--no-venv`` uses the current interpreter as it is (you installed the requirements yourself).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".scdecg-installed"
WARMED = VENV / ".scdecg-bytecode"     # the bytecode warm-up finished after the last install
DEMO_WORKSPACE = ROOT / "demo_workspace"


def _requirements_hash() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.txt", "setup.py"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def pip_sources(python: str) -> list[str]:
    """pip's configured package sources (``pip config list``: find-links, index URLs,
    constraints) as uv options, so that uv installs from where pip would."""
    listing = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True,
                             text=True).stdout
    return sources_as_uv_options(listing)


#: pip configuration keys that say where packages come from, and uv's option for each.
UV_SOURCE_OPTIONS = {"find-links": "--find-links", "index-url": "--index-url",
                     "extra-index-url": "--extra-index-url", "constraint": "--constraint"}


def sources_as_uv_options(listing: str) -> list[str]:
    """``pip config list`` lines (``scope.key='value'``) -> uv options, each value once.

    >>> sources_as_uv_options("global.find-links='/opt/wheels'\\n:env:.find-links='/opt/wheels'")
    ['--find-links', '/opt/wheels']
    """
    pairs: dict[tuple[str, str], None] = {}          # ordered, without repeats
    for line in listing.splitlines():
        key, sep, value = line.partition("=")
        option = UV_SOURCE_OPTIONS.get(key.rsplit(".", 1)[-1])
        if sep and option:
            items = value.strip().strip("'\"").split()
            pairs.update(dict.fromkeys((option, item) for item in items))
    return [word for pair in pairs for word in pair]


def install(python: str, package_sets: list[list[str]], installer: str) -> None:
    """``pip install`` each of ``package_sets`` in turn into the environment of ``python``.

    ``uv`` (the default): install uv with pip once, then let it install the packages from
    pip's configured sources (about 4x faster than pip: parallel downloads and unpacking); if
    that fails, say so and use pip. ``pip``: pip only.
    """
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if installer == "uv":
        try:
            # a machine without a route to the index fails fast here, then pip installs
            subprocess.run(pip + ["--retries", "1", "--timeout", "20", "uv"], check=True)
            uv = [python, "-m", "uv", "pip", "install", "--quiet", "--python", python,
                  *pip_sources(python)]
            for packages in package_sets:
                subprocess.run(uv + packages, check=True)
            return
        except subprocess.CalledProcessError as error:
            print(f"[setup] uv failed ({error}); installing with pip instead", flush=True)
    for packages in package_sets:
        subprocess.run(pip + packages, check=True)


#: What the pipeline and the tests import, some of it lazily (torch._dynamo: on the first
#: optimiser step; matplotlib's Agg backend: on the first saved figure).
WARM_IMPORTS = ("import pkgutil, importlib, scdecg\n"
                "for m in pkgutil.walk_packages(scdecg.__path__, 'scdecg.'):\n"
                "    importlib.import_module(m.name)\n"
                "import torch._dynamo, matplotlib.backends.backend_agg, neurokit2, wfdb, "
                "statsmodels.api, scipy.signal, pyarrow.feather, pytest, xdist")


def warm_bytecode(python: str) -> subprocess.Popen:
    """Start importing what the pipeline uses, letting Python write the compiled bytecode;
    returns the running process (see :func:`finish_warm_up`).

    uv, unlike pip, does not compile what it installs, and where PYTHONDONTWRITEBYTECODE is
    set (as in many containers) nothing is ever cached: every process then compiled torch's
    and pandas' sources anew (a training step's start-up took 8.7 s instead of 3.3 s on a
    2-core machine: benchmarks/bench_startup.py). Warming takes about 20 s of one core, once;
    the demo runs meanwhile, the warm-up at the lowest priority so that it only uses a core
    the demo leaves idle. The import list is :data:`WARM_IMPORTS`; a module it misses is
    compiled on each use, as before.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    lowest_priority = (lambda: os.nice(19)) if hasattr(os, "nice") else None
    return subprocess.Popen([python, "-c", WARM_IMPORTS], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=lowest_priority)


def finish_warm_up(process: subprocess.Popen | None) -> None:
    """Wait for the warm-up; a failure only means slower start-ups, so it is reported, not
    raised (the import error shows again where the module is used)."""
    if process is None:
        return
    _, errors = process.communicate()
    if process.returncode != 0:
        last = (errors.strip().splitlines() or ["no message"])[-1]
        print(f"[setup] bytecode warm-up failed ({last}); start-ups will be slower", flush=True)
    else:
        WARMED.touch()


def ensure_environment(use_venv: bool, installer: str = "uv"
                       ) -> tuple[str, subprocess.Popen | None]:
    """The Python executable that has the project installed (installing if needed), and the
    bytecode warm-up started for it, if one is due (see :func:`warm_bytecode`)."""
    if not use_venv:
        return sys.executable, None
    python = VENV / "bin" / "python"
    wanted = _requirements_hash()
    if not (python.exists() and STAMP.exists() and STAMP.read_text() == wanted):
        print(f"[setup] creating/updating {VENV.relative_to(ROOT)} with {installer} (first "
              "run installs torch, neurokit2, ...; later runs skip this)", flush=True)
        if not python.exists():
            venv.EnvBuilder(with_pip=True).create(VENV)
        WARMED.unlink(missing_ok=True)
        install(str(python), [["-r", str(ROOT / "requirements.txt")],
                              ["--no-deps", "-e", str(ROOT)]], installer)
        STAMP.write_text(wanted)
    return str(python), None if WARMED.exists() else warm_bytecode(str(python))


def run_demo(python: str, workspace: Path, jobs: int | None = None,
             data_seed: str | None = None) -> int:
    """Run the pipeline in ``workspace`` with ``python -m scdecg.demo`` (timings in
    reports/demo_timings.csv); ``jobs`` and ``data_seed``: its ``--jobs`` and ``--data-seed``
    (default: its own)."""
    command = [python, "-m", "scdecg.demo", "--workspace", str(workspace), "--root", str(ROOT)]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    if data_seed is not None:
        command += ["--data-seed", data_seed]
    return subprocess.run(command, env=dict(os.environ, PYTHONUNBUFFERED="1")).returncode


#: most pytest-xdist workers for the whole suite (each builds its own copy of the shared
#: synthetic study and holds up to about 1.5 GB)
MAX_TEST_WORKERS = 4


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def test_command(python: str, rest: list[str], cores: int | None = None,
                 has_xdist: bool | None = None) -> tuple[list[str], dict[str, str]]:
    """The pytest command line and environment of ``run.py test``.

    Extra arguments go to pytest as they are. Without any, the whole suite runs on one
    pytest-xdist worker per core (at most :data:`MAX_TEST_WORKERS`), each test file on one
    worker so that its fixtures are built once, and each worker's torch limited to its share
    of the cores (``OMP_NUM_THREADS``, unless set already) so that the workers do not compete
    for them (on a 2-core machine: 212 s serially, 122 s on two workers). Serial where
    pytest-xdist is missing (``--no-venv`` with an environment of one's own) or there is one
    core.
    """
    env = dict(os.environ)
    if rest:
        return [python, "-m", "pytest", "-q", *rest], env
    cores = usable_cores() if cores is None else cores
    workers = min(cores, MAX_TEST_WORKERS)
    if has_xdist is None:
        try:
            has_xdist = subprocess.run([python, "-c", "import xdist"], capture_output=True
                                       ).returncode == 0
        except OSError:
            has_xdist = False
    if workers < 2 or not has_xdist:
        return [python, "-m", "pytest", "-q", "tests"], env
    env.setdefault("OMP_NUM_THREADS", str(max(1, cores // workers)))
    return [python, "-m", "pytest", "-q", "-n", str(workers), "--dist", "loadfile", "tests"], env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("demo", "test", "setup"))
    parser.add_argument("--no-venv", action="store_true", help="use the current interpreter")
    parser.add_argument("--installer", choices=("uv", "pip"), default="uv",
                        help="first set-up: uv (fast; falls back to pip) or pip only")
    parser.add_argument("--workspace", type=Path, default=DEMO_WORKSPACE,
                        help="demo: folder the pipeline writes into")
    parser.add_argument("--jobs", type=int, choices=(1, 2), default=None,
                        help="demo: 2 runs independent steps in two lanes side by side (the "
                             "default with two cores or more), 1 every step in order")
    parser.add_argument("--data-seed", default=None,
                        help="demo: seed of the synthetic cohort (default 0)")
    args, rest = parser.parse_known_args(argv)
    if args.command != "test" and rest:      # only the tests pass the rest on (to pytest)
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    started = time.perf_counter()
    python, warm_up = ensure_environment(not args.no_venv, args.installer)
    print(f"[setup] environment ready in {time.perf_counter() - started:.0f} s", flush=True)
    if args.command == "demo":   # the warm-up shares the machine with the demo's first steps
        code = run_demo(python, args.workspace.resolve(), args.jobs, args.data_seed)
        finish_warm_up(warm_up)
        print(f"[demo] total including set-up: {time.perf_counter() - started:.0f} s")
        return code
    finish_warm_up(warm_up)
    if args.command == "setup":
        return 0
    command, env = test_command(python, rest)
    return subprocess.run(command, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
