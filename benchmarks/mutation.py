"""Mutation testing of the science-critical code: the kill score per module (mutmut 3).

For each target below, a scratch copy of the repository (``src/``, ``tests/``, ``benchmarks/``
and the script folders) is made under ``--workdir``, a ``setup.cfg`` restricts mutmut to the
target's file and its fast in-process tests, and ``mutmut run`` mutates only the listed
functions. A mutant is *killed* when a test fails (or times out); it *survives* when every
test still passes, and "no tests" means no selected test calls the mutated function.
Score = killed / mutants.

Not part of CI (a full run takes about 20 minutes on a 2-core machine). Requires the
development tools: ``pip install -r requirements-dev.txt``.

Examples::

    python benchmarks/mutation.py                       # every target, table at the end
    python benchmarks/mutation.py gain losses --jobs 2  # some targets
    python benchmarks/mutation.py gain --show           # print each survivor's diff
    python benchmarks/mutation.py gain --survivors      # after adding tests: retest survivors

Survivors that are equivalent (no input can tell them apart) are listed in docs/TESTING.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Copied into each workdir: the package, the tests and what the tests read (the script folders;
#: benchmarks/x06_reference.py, the plain x06 that test_features.py compares with).
COPIED = ("src", "tests", "benchmarks", "00_Data_Preprocessing", "01_Predictive_Model",
          "02_Morphing")
TARGET_SCORE = 0.85
#: mutmut's exit codes (mutmut.stats.status_by_exit_code) that count as a kill.
KILLED = {"killed", "timeout", "segfault", "caught by type check"}


@dataclass(frozen=True)
class Target:
    file: str                 # relative to src/scdecg
    functions: tuple[str, ...]  # "name" or "Class.method"
    tests: tuple[str, ...]    # pytest arguments: the fast tests that cover the functions


TARGETS: dict[str, Target] = {
    # the label and exclusion functions, with the cohort tests that build labelled cohorts
    "cohort": Target("cohort.py",
                     ("normalise_category", "in_category", "floor_days", "control_dates",
                      "control_group", "one_ecg_per_patient", "add_labels"),
                     ("tests/test_cohort.py", "-k",
                      "(labels or floored or datetime or one_ecg or control or odd_values) "
                      "and not script and not synthetic")),
    # x02's modelling selection (age < 80, >= 2 days), interval labels and seeded placeholders
    "pipeline_columns": Target("cohort.py", ("patient_order", "add_pipeline_columns"),
                               ("tests/test_cohort.py", "-k",
                                "pipeline_columns or placeholder or age_limit")),
    "beats": Target("beats.py",
                    ("recorded_length", "clipped_fraction", "check_ecg", "extract_windows",
                     "mean_autocorrelation", "window_filters", "segment_ecg", "Exclusion.excluded",
                     "morphing_exclusions", "z_distances"),
                    ("tests/test_beats.py", "-k", "not x04 and not x05")),
    "gain": Target("gain.py",
                   ("implied_leads", "estimate_gains", "relative_residual", "_near", "correct_gain"),
                   ("tests/test_gain.py", "-k", "not x03")),
    "features": Target("features.py",
                       ("refine_by_peak_contrast", "lowpass", "minmax", "find_r", "find_s",
                        "rs_slopes", "avl_features"),
                       ("tests/test_features.py", "-k", "not x06")),
    "losses": Target("training/losses.py", ("masked_loss",),
                     ("tests/test_training.py", "-k", "masked_loss or per_output or validation_loss")),
    "risk": Target("models/risk.py",
                   ("CumulativeHorizons.__init__", "CumulativeHorizons.forward",
                    "RiskModel.__init__", "RiskModel.forward"),
                   ("tests/test_models.py",)),
    "metrics": Target("metrics.py",
                      ("sigmoid", "_as_weight_block", "weighted_auc", "roc_curve", "weighted_r2",
                       "brier_score", "cluster_bootstrap_weights", "cluster_bootstrap",
                       "percentile_interval", "auc_with_interval"),
                      ("tests/test_evaluation.py", "tests/test_training.py", "-k",
                       "(test_evaluation and not script and not baselines and not lockbox) or "
                       "test_auc_matches_pairwise or test_r_squared")),
    "morphing": Target("morphing.py", ("morph_latents", "morph_in_batches", "stop_threshold"),
                       ("tests/test_morphing.py",)),
    # the demo runner: each step as __main__ in one process, exit codes, stop at a failure
    "demo": Target("demo.py", ("run_script", "run_demo", "main"), ("tests/test_demo.py",)),
    # the demo's lanes: which steps may run side by side (declared inputs and outputs)
    "demo_schedule": Target("demo.py", ("paths_overlap", "demo_schedule"),
                            ("tests/test_demo.py", "-k", "schedule or refused or overlap")),
    # the checks where data enters: ids, labels and numbers, recorded folders, .npy files
    "input_checks": Target("io.py",
                           ("unsafe_name_reason", "check_names", "check_ids", "check_values",
                            "recorded_path", "npy_problem", "_read_npy_header", "npy_header",
                            "load_npy", "read_array", "feather_problem"),
                           ("tests/test_io_checks.py",)),
    # what keeps a step from writing over its inputs or reading a half-written folder
    "output_safety": Target("io.py", ("refuse_path_clashes", "unfinished_marker",
                                      "unfinished_run", "check_finished"),
                            ("tests/test_io_checks.py", "tests/test_reliability.py", "-k",
                             "outputs or x01_refuses or refused_by")),
}


#: Prints "<status>: <mutant>" and the changed lines of each mutant named on the command line.
SHOW_DIFFS = """
import json, sys
from mutmut.configuration import config
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
config()
path, names = sys.argv[1], sys.argv[2:]
codes = json.load(open("mutants/" + path + ".meta"))["exit_code_by_key"]
for name in names:
    print(f"    {status_by_exit_code[codes[name]]}: {name}")
    for line in get_diff_for_mutant(name, path=path).splitlines()[2:]:
        if line[:1] in "+-":
            print("      " + line)
"""


def module_name(target: Target) -> str:
    return "scdecg." + target.file[:-3].replace("/", ".")


def mutant_globs(target: Target) -> list[str]:
    """mutmut's mutant names: ``<module>.x_<function>__mutmut_<n>``, ``xǁClassǁmethod`` for methods."""
    out = []
    for name in target.functions:
        key = "xǁ" + "ǁ".join(name.split(".")) if "." in name else "x_" + name
        out.append(f"{module_name(target)}.{key}__mutmut_*")
    return out


def setup_cfg(target: Target) -> str:
    lines = ["[mutmut]", "source_paths = src", f"only_mutate = src/scdecg/{target.file}",
             "pytest_add_cli_args_test_selection ="]
    lines += [f"    {arg}" for arg in target.tests]
    lines += ["also_copy ="] + [f"    {name}" for name in COPIED if name not in ("src", "tests")]
    lines += ["pytest_add_cli_args = -p no:cacheprovider",
              "process_isolation = forkserver",   # torch is not fork-safe after use
              "use_git_change_detection = false", ""]
    return "\n".join(lines)


def prepare(workdir: Path, target: Target) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in COPIED:
        shutil.copytree(ROOT / name, workdir / name, ignore=ignore)
    (workdir / "setup.cfg").write_text(setup_cfg(target))


def results(workdir: Path, target: Target) -> dict[str, str]:
    """mutant name -> status, for the target's functions."""
    import fnmatch

    from mutmut.stats import status_by_exit_code

    meta = workdir / "mutants" / "src" / "scdecg" / (target.file + ".meta")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    globs = mutant_globs(target)
    return {name: status_by_exit_code[code] for name, code in codes.items()
            if any(fnmatch.fnmatch(name, g) for g in globs)}


def refresh_tests(workdir: Path, target: Target) -> None:
    """For --survivors: the repository's current tests in an earlier run's workdir, whose
    mutated file must be unchanged (a kill then still stands: tests were only added)."""
    source = f"src/scdecg/{target.file}"
    if not (workdir / source).exists() or \
            (workdir / source).read_bytes() != (ROOT / source).read_bytes():
        raise SystemExit(f"--survivors: {workdir / source} is missing or differs from {source}; "
                         "run the target in full")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for copy in (workdir / "tests", workdir / "mutants" / "tests"):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(ROOT / "tests", copy, ignore=ignore)
    (workdir / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)   # new tests: recollect


def run_target(name: str, target: Target, workdir: Path, jobs: int, show: bool,
               survivors_only: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TQDM_DISABLE="1")
    if survivors_only:
        refresh_tests(workdir, target)
        names = [n for n, s in results(workdir, target).items() if s not in KILLED]
    else:
        prepare(workdir, target)
        names = mutant_globs(target)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs),
                           *names], cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (workdir / "mutmut-run.log").write_text(proc.stdout + proc.stderr)
    try:
        status = results(workdir, target)
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"{name}: mutmut gave no results ({exc}); see {workdir / 'mutmut-run.log'}")
    if "failed to collect stats" in proc.stdout + proc.stderr or (
            status and all(s == "not checked" for s in status.values())):
        raise SystemExit(f"{name}: the unmutated tests did not pass under mutmut (no mutant "
                         f"checked); see {workdir / 'mutmut-run.log'}")
    killed = sum(s in KILLED for s in status.values())
    survivors = sorted(n for n, s in status.items() if s not in KILLED)
    row = {"module": name, "file": f"src/scdecg/{target.file}", "mutants": len(status),
           "killed": killed, "survived": sum(s == "survived" for s in status.values()),
           "no_tests": sum(s == "no tests" for s in status.values()),
           "score": killed / len(status) if status else float("nan"),
           "seconds": round(seconds), "survivors": survivors}
    print(f"[{name}] {killed}/{len(status)} killed ({row['score']:.1%}) in {seconds:.0f} s", flush=True)
    if show and survivors:   # every diff from one process (`mutmut show` starts one each)
        path = f"src/scdecg/{target.file}"
        print(subprocess.run([sys.executable, "-c", SHOW_DIFFS, path, *survivors], cwd=workdir,
                             env=env, capture_output=True, text=True).stdout, end="")
    else:
        for mutant in survivors:
            print(f"    {status[mutant]}: {mutant}")
    return row


def table(rows: list[dict]) -> str:
    out = ["| module | file | functions mutated | mutants | killed | survived | no tests | score | time (s) |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        funcs = ", ".join(TARGETS[r["module"]].functions)
        out.append(f"| {r['module']} | {r['file']} | {funcs} | {r['mutants']} | {r['killed']} | "
                   f"{r['survived']} | {r['no_tests']} | {r['score']:.1%} | {r['seconds']} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"targets to run (default: all): {', '.join(TARGETS)}")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/scdecg-mutation"),
                        help="scratch folder (one copy of the repository per target)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested in parallel")
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--survivors", action="store_true",
                        help="reuse the workdir of an earlier run and retest only its survivors "
                             "with the current tests (the mutated file must be unchanged)")
    args = parser.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    names = args.targets or list(TARGETS)
    rows = [run_target(n, TARGETS[n], args.workdir / n, args.jobs, args.show, args.survivors)
            for n in names]
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    below = [r["module"] for r in rows if not r["score"] >= TARGET_SCORE]
    if below:
        print(f"\nbelow the {TARGET_SCORE:.0%} target: {', '.join(below)}")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
