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
DEMO_WORKSPACE = ROOT / "demo_workspace"



def _load_workspace_contract():
    """``src/scdecg/workspace.py`` loaded from its file (standard library only), so the step
    list is available before the environment that holds the package exists."""
    import importlib.util

    path = ROOT / "src" / "scdecg" / "workspace.py"
    spec = importlib.util.spec_from_file_location("_scdecg_workspace", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# The demo: the published order on the synthetic default, small enough for a laptop CPU
# (scdecg.workspace.PIPELINE). Each step: (title, script relative to ROOT, arguments); run
# with the workspace as cwd.
DEMO_STEPS: list[tuple[str, str, list[str]]] = [
    (s.title, s.script, list(s.args)) for s in _load_workspace_contract().PIPELINE]


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


def ensure_environment(use_venv: bool, installer: str = "uv") -> str:
    """Return the Python executable that has the project installed, installing if needed."""
    if not use_venv:
        return sys.executable
    python = VENV / "bin" / "python"
    wanted = _requirements_hash()
    if python.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return str(python)
    print(f"[setup] creating/updating {VENV.relative_to(ROOT)} with {installer} (first run "
          "installs torch, neurokit2, ...; later runs skip this)", flush=True)
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    install(str(python), [["-r", str(ROOT / "requirements.txt")], ["--no-deps", "-e", str(ROOT)]],
            installer)
    STAMP.write_text(wanted)
    return str(python)


def step_command(python: str, script: str, args: list[str]) -> list[str]:
    """``-m module`` entries run a package module; others are scripts under ROOT."""
    if script.startswith("-m "):
        return [python, "-m", script.removeprefix("-m "), *args]
    return [python, str(ROOT / script), *args]


def run_demo(python: str, workspace: Path) -> int:
    """Run DEMO_STEPS in ``workspace``; record each step's wall time in reports/demo_timings.csv."""
    workspace.mkdir(parents=True, exist_ok=True)
    timings = workspace / "reports" / "demo_timings.csv"
    timings.parent.mkdir(exist_ok=True)
    rows = ["step,script,seconds"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    for i, (title, script, args) in enumerate(DEMO_STEPS, 1):
        print(f"\n=== [{i}/{len(DEMO_STEPS)}] {title}: {script} {' '.join(args)}", flush=True)
        t0 = time.perf_counter()
        result = subprocess.run(step_command(python, script, args), cwd=workspace, env=env)
        if result.returncode != 0:
            print(f"\n[demo] step '{title}' failed (exit {result.returncode}); "
                  f"outputs so far are in {workspace}", file=sys.stderr)
            return result.returncode
        seconds = time.perf_counter() - t0
        rows.append(f'"{title}",{script},{seconds:.1f}')
        tmp = timings.with_suffix(".tmp")
        tmp.write_text("\n".join(rows) + "\n")
        os.replace(tmp, timings)
        print(f"--- {title}: {seconds:.1f} s", flush=True)
    print(f"\n[demo] pipeline finished in {time.perf_counter() - start:.0f} s; "
          f"report: {workspace / 'reports' / 'report.md'} (and report.html, figures embedded)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("demo", "test", "setup"))
    parser.add_argument("--no-venv", action="store_true", help="use the current interpreter")
    parser.add_argument("--installer", choices=("uv", "pip"), default="uv",
                        help="first set-up: uv (fast; falls back to pip) or pip only")
    parser.add_argument("--workspace", type=Path, default=DEMO_WORKSPACE,
                        help="demo: folder the pipeline writes into")
    args, rest = parser.parse_known_args(argv)
    started = time.perf_counter()
    python = ensure_environment(not args.no_venv, args.installer)
    print(f"[setup] environment ready in {time.perf_counter() - started:.0f} s", flush=True)
    if args.command == "setup":
        return 0
    if args.command == "demo":
        code = run_demo(python, args.workspace.resolve())
        print(f"[demo] total including set-up: {time.perf_counter() - started:.0f} s")
        return code
    return subprocess.run([python, "-m", "pytest", "-q", *(rest or ["tests"])], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
