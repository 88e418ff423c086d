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

# The demo: the published order on the synthetic default, small enough for a laptop CPU.
# Each step: (title, script relative to ROOT, arguments). Run with the workspace as cwd.
DEMO_STEPS: list[tuple[str, str, list[str]]] = [
    ("synthetic NTUH dataset", "00_Data_Preprocessing/x00_make_synthetic_ntuh.py",
     ["--data-root", "arrest-ntuh-ecg/v1", "--n-patients", "1500", "--seed", "0"]),
    ("cohort table and SCD labels", "00_Data_Preprocessing/x01_build_ntuh_df.py", []),
    ("pipeline columns", "00_Data_Preprocessing/x02_generate_dummy_columns.py", []),
    ("10-s ECGs and limb-lead gain correction", "00_Data_Preprocessing/x03_process_10sec_ecg.py", []),
    ("beat segmentation", "00_Data_Preprocessing/x04_segment_beats.py", []),
    ("morphing beat set and waterfall", "00_Data_Preprocessing/x05_create_morphing_beats.py", []),
    ("aVL RS-slope biomarker", "00_Data_Preprocessing/x06_create_aVL_feature.py", []),
    ("association analysis", "00_Data_Preprocessing/x07_run_ntuh_style_regression.py", []),
    ("ECG plot", "00_Data_Preprocessing/x08_plot_ecg.py", ["--output", "reports/ecg_example.png"]),
    ("10-s risk model", "01_Predictive_Model/x01_train_10s_ecg.py", ["--profile", "demo"]),
    ("death-only model (ensemble member)", "01_Predictive_Model/x01_train_10s_ecg.py",
     ["--profile", "demo", "--run", "death-only"]),
    # low_ef is the all-False placeholder here: nothing to learn, so two epochs suffice
    ("low-EF model (ensemble member)", "01_Predictive_Model/x01_train_10s_ecg.py",
     ["--profile", "demo", "--run", "low-ef", "--min-epochs", "2", "--max-epochs", "2"]),
    ("beat model", "01_Predictive_Model/x02_train_beats.py", ["--profile", "demo"]),
    # a second beat model (another seed) that never steers the morphs, only scores them
    ("independent beat model", "01_Predictive_Model/x02_train_beats.py",
     ["--profile", "demo", "--seed", "1", "--model-name", "ntuh_scd_beat_model_demo_seed1"]),
    # validation, lockbox and (in-sample) training rows; x05 evaluates each into its own files
    ("10-s predictions", "01_Predictive_Model/x03_predict.py", ["--part", "all"]),
    ("death-only predictions", "01_Predictive_Model/x03_predict.py",
     ["--model-name", "ntuh_scd_model_demo_death_only", "--part", "all"]),
    ("low-EF predictions", "01_Predictive_Model/x03_predict.py",
     ["--model-name", "ntuh_scd_model_demo_low_ef", "--part", "all"]),
    ("beat predictions", "01_Predictive_Model/x03_predict.py", ["--beat", "--part", "all"]),
    ("10-s evaluation and baselines", "01_Predictive_Model/x05_evaluate.py", []),
    ("beat evaluation", "01_Predictive_Model/x05_evaluate.py", ["--beat"]),
    ("death-only evaluation", "01_Predictive_Model/x05_evaluate.py",
     ["--model-name", "ntuh_scd_model_demo_death_only", "--no-baselines"]),
    ("low-EF evaluation", "01_Predictive_Model/x05_evaluate.py",
     ["--model-name", "ntuh_scd_model_demo_low_ef", "--no-baselines"]),
    ("stacking ensemble", "01_Predictive_Model/x04_train_ensemble.py", []),
    ("DR-VAE generator", "02_Morphing/s08_train_generator.py", ["--profile", "demo"]),
    ("reconstruction report", "02_Morphing/s09_reconstruction_report.py", []),
    ("morphing", "02_Morphing/s10_morph_ecgs.py",
     ["--profile", "demo", "--independent-models", "modelfits_beat/ntuh_scd_beat_model_demo_seed1"]),
    ("morph measurements and summary", "02_Morphing/s12_morph_stats.py", []),
    ("run report", "-m scdecg.report", []),
]


def _requirements_hash() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.txt", "setup.py"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_environment(use_venv: bool) -> str:
    """Return the Python executable that has the project installed, installing if needed."""
    if not use_venv:
        return sys.executable
    python = VENV / "bin" / "python"
    wanted = _requirements_hash()
    if python.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return str(python)
    print(f"[setup] creating/updating {VENV.relative_to(ROOT)} (first run installs torch, "
          "neurokit2, ...; later runs skip this)", flush=True)
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["-r", str(ROOT / "requirements.txt")], check=True)
    subprocess.run(pip + ["--no-deps", "-e", str(ROOT)], check=True)
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
    parser.add_argument("--workspace", type=Path, default=DEMO_WORKSPACE,
                        help="demo: folder the pipeline writes into")
    args, rest = parser.parse_known_args(argv)
    started = time.perf_counter()
    python = ensure_environment(use_venv=not args.no_venv)
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
