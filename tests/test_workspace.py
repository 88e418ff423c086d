"""The workspace contract: one home for the files between steps, their readers and the steps."""
from __future__ import annotations

import ast
import fnmatch
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path, PurePosixPath

import pandas as pd
import pytest

from scdecg import workspace as W
from scdecg.errors import PipelineError
from scdecg.io import failed_run_path, lock_file
from scdecg.workspace import drop_option, set_option, step

ROOT = Path(__file__).resolve().parents[1]


def test_the_report_imports_no_torch():
    code = "import sys, scdecg.report; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_contract_module_needs_only_the_standard_library():
    """Every script, the report and the tests import it: it must stay light."""
    tree = ast.parse((ROOT / "src/scdecg/workspace.py").read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in top if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert names <= {"__future__", "re", "dataclasses", "pathlib", "typing"}, names
    assert not [n for n in top if isinstance(n, ast.ImportFrom) and n.level > 0]


def test_the_demo_tests_and_hints_use_the_one_step_list():
    import inspect

    from scdecg import demo
    assert inspect.signature(demo.run_demo).parameters["steps"].default is W.PIPELINE
    keys = [s.key for s in W.PIPELINE]
    assert len(keys) == len(set(keys))
    assert keys.index("x01") < keys.index("x07") < keys.index("train_ecg") < keys.index("s10")
    for key, script in W.STEP_SCRIPTS.items():
        assert script.startswith("-m ") or (ROOT / script).is_file(), (key, script)
    from conftest import PIPELINE_STEPS
    assert [k for k, _, _ in PIPELINE_STEPS] == keys[: keys.index("x07") + 1]
    assert PIPELINE_STEPS[1:] == [(s.key, s.script, list(s.args))
                                  for s in W.steps_through("x07")[1:]]


def test_the_beat_file_rule_and_its_one_parser(tmp_path):
    assert W.parse_beat_file(W.beat_file_name("a_b", 12)) == ("a_b", 12)
    assert W.parse_beat_file("folder/e1_3.npy") == ("e1", 3)
    assert W.parse_beat_file("median_beat.npy") is None
    folder = tmp_path / "e1"
    folder.mkdir()
    for name in ("e1_10.npy", "e1_2.npy", "e2_1.npy", "e1_x.npy", "notes.txt"):
        (folder / name).write_bytes(b"")
    # by beat number (10 after 2), and only this ECG's beat files
    assert [(k, p.name) for k, p in W.beat_files(folder)] == [(2, "e1_2.npy"), (10, "e1_10.npy")]
    assert not W.is_beat_folder(folder)
    assert W.beat_files(tmp_path / "absent") == []


def test_read_split_names_the_file_when_missing_or_short(tmp_path):
    with pytest.raises(PipelineError, match=r"split.csv: file not found"):
        W.read_split(tmp_path)
    pd.DataFrame({"ptId": ["007"], "split": ["val"]}).to_csv(tmp_path / W.SPLIT_FILE, index=False)
    table = W.read_split(tmp_path)
    assert table["ptId"].tolist() == ["007"]            # ids stay strings
    with pytest.raises(PipelineError, match=r"split.csv: missing column\(s\) studyId"):
        W.read_split(tmp_path, ["studyId", "ptId", "split"])


def test_report_source_spells_no_file_name():
    """Every file name the report uses comes from scdecg.workspace."""
    tree = ast.parse((ROOT / "src/scdecg/report.py").read_text())
    name = re.compile(r".*\w\.(csv|feather|png|json|npy|md|pt|html)\b.*")  # not a bare ".png"
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    spelled = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
               and isinstance(n.value, str) and id(n) not in docstrings
               and name.fullmatch(n.value)]
    assert spelled == []


def _fabricated_workspace(ws: Path) -> None:
    """Every kind of file the report reads beyond x07, with the contract's names."""
    name = W.DEFAULT_MODEL_NAMES["ecg"]
    folder = W.predictions_folder(name, ws / W.PREDICTIONS_DIR)
    folder.mkdir(parents=True)
    for split, auc in (("val", 0.81), ("lockbox", 0.70)):
        pd.DataFrame({"split": [split], "output": ["scd1"], "n": [100], "n_pos": [20],
                      "auc": [auc], "auc_lo": [auc - 0.05], "auc_hi": [auc + 0.05]}
                     ).to_csv(W.split_file(folder, W.METRICS_STEM, split), index=False)
        pd.DataFrame({"split": split, "model": [name, "median-beat probe"], "n": 100,
                      "n_pos": 20, "auc": [auc, 0.78], "auc_lo": 0.6, "auc_hi": 0.9,
                      "note": "x"}).to_csv(W.split_file(folder, W.BASELINES_STEM, split),
                                           index=False)
    pd.DataFrame({"studyId": ["s1", "s2"], "scd1_hat": [0.1, 0.9], "split": "lockbox"}
                 ).to_feather(folder / W.PREDICTIONS)
    model = ws / W.model_folder("ecg", name)
    model.mkdir(parents=True)
    (model / W.CONFIG_FILE).write_text('{"outputs": ["scd1"], "best_epoch": 1}')
    pd.DataFrame({"epoch": [1], "lr": [0.1], "train_loss": [1.0], "val_loss": [1.0],
                  "seconds": [2.0], "auc_scd1": [0.7]}).to_csv(model / W.HISTORY_FILE, index=False)
    ensemble = ws / W.PREDICTIONS_DIR / W.ENSEMBLE_DIR
    ensemble.mkdir()
    pd.DataFrame({"score": ["scd1_hat_ensemble"], "n": 100, "n_pos": 20, "n_patients": 90,
                  "auc": [0.83], "auc_lo": 0.7, "auc_hi": 0.9, "split": "val"}
                 ).to_csv(ensemble / f"{W.METRICS_STEM}.csv", index=False)
    morph = ws / W.MORPH_DIR
    morph.mkdir()
    pd.DataFrame({"beat_id": [0, 0], "stage": ["t0", "final"], "status": "ok", "steps": 3,
                  "yhat_scd1": [0.0, 1.0], "aVL_rs_diff": [1.0, 0.5]}
                 ).to_feather(morph / W.STATS_TABLE)
    pd.DataFrame({"lead": ["I"], "mae": [0.1]}).to_csv(morph / W.RECONSTRUCTION_REPORT,
                                                      index=False)
    (ws / W.REPORT_DIR).mkdir()
    pd.DataFrame({"step": ["x"], "script": ["y"], "seconds": [1.0]}).to_csv(
        ws / W.REPORT_DIR / W.DEMO_TIMINGS, index=False)


def test_every_file_the_report_reads_is_named_by_the_contract(pipeline, tmp_path, monkeypatch):
    from scdecg.report import build_report

    touched: list[Path] = []

    def recording(original, arg=0):
        def wrapper(*args, **kwargs):
            touched.append(Path(args[arg]))
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(pd, "read_csv", recording(pd.read_csv))
    monkeypatch.setattr(pd, "read_feather", recording(pd.read_feather))
    monkeypatch.setattr(shutil, "copyfile", recording(shutil.copyfile))
    monkeypatch.setattr(Path, "exists", recording(Path.exists))
    monkeypatch.setattr(Path, "read_text", recording(Path.read_text))

    fabricated = tmp_path / "ws"
    _fabricated_workspace(fabricated)
    workspaces = [pipeline.ensure("x07"), fabricated]
    for ws in workspaces:
        build_report(ws, out=str(tmp_path / "out" / ws.name))

    def named(relative: str) -> bool:
        for pattern in W.REPORT_INPUTS:
            parts = pattern.split("/")
            if any(fnmatch.fnmatch(relative, "/".join(parts[:k])) for k in range(1, len(parts) + 1)):
                return True
        return False

    read = set()
    for path in touched:
        for ws in workspaces:
            if path.is_relative_to(ws):
                read.add(path.relative_to(ws).as_posix())
    assert len(read) > 20, read                       # the recording itself works
    assert {W.COVARIATE_DF, W.GAIN_REPORT, f"{W.MORPH_DIR}/{W.STATS_TABLE}"} <= read
    assert sorted(r for r in read if not named(r)) == []


@pytest.mark.parametrize("args, name, values, expected", [
    (["--profile", "demo"], "--seed", ["3"], ["--profile", "demo", "--seed", "3"]),
    (["--seed", "0", "--profile", "demo"], "--seed", ["3"], ["--seed", "3", "--profile", "demo"]),
    (["--beat-model", "a", "b", "--seed", "1"], "--beat-model", ["c"],
     ["--beat-model", "c", "--seed", "1"]),
    (["--x", "1"], "--lr", ["-1e-3"], ["--x", "1", "--lr", "-1e-3"]),   # "-1e-3" is a value
])
def test_set_option_replaces_an_option_and_all_its_values_or_appends_it(args, name, values,
                                                                        expected):
    assert set_option(args, name, *values) == expected
    assert set_option(tuple(args), name, *values) == expected and args == list(args)


def test_drop_option_removes_an_option_with_its_values_only():
    args = ["--a", "1", "2", "--b", "x", "--c"]
    assert drop_option(args, "--a") == ["--b", "x", "--c"]
    assert drop_option(args, "--c") == ["--a", "1", "2", "--b", "x"]
    assert drop_option(args, "--d") == args and drop_option(args, "--d") is not args
    assert step("s10").with_option("--seed", "2").args == (
        "--profile", "demo", "--independent-models",
        "modelfits_beat/ntuh_scd_beat_model_demo_seed1", "--seed", "2")


# ------------------------------------------------------------ each step writes only its places
def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """``relative path -> (size, mtime_ns)`` of every file and folder under ``root`` (dot-files
    included; not ``root`` itself, whose listing every step that writes a table changes)."""
    return {p.relative_to(root).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in root.rglob("*")}


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def _places(s: W.Step) -> list[str]:
    """Glob patterns of what step ``s`` may create, change or remove in the workspace: each
    declared output (a folder with all it holds), the folders it lies in, and what the io
    helpers put beside it: a folder's lock file and a run-that-produced-nothing log."""
    places = list(_EXTRA_PLACES.get(s.key, ()))
    for out in s.outputs:
        path = PurePosixPath(out)
        places += [out, f"{out}/*", *(p.as_posix() for p in path.parents if p.name),
                   lock_file(path).as_posix(), failed_run_path(path).as_posix()]
    return places


#: Places a step may write beyond its declared outputs, each with its reason (none so far:
#: x01's x01_exclusions.csv in the workspace root, x03's gain report and x06's feature table
#: are declared outputs).
_EXTRA_PLACES: dict[str, tuple[str, ...]] = {}
#: What a step may leave in the home folder: matplotlib's font cache (x08's figure), which the
#: library makes when it is first imported on a machine, not the pipeline.
_HOME_PLACES = (".cache", ".cache/matplotlib", ".cache/matplotlib/*",
                ".config", ".config/matplotlib", ".config/matplotlib/*")


def test_each_step_writes_only_its_declared_outputs_first_run_and_rerun(tmp_path, monkeypatch):
    """x00-x08 on a small study, then each rerun: every file or folder a step creates, changes
    or removes lies in the places its declared outputs give it (``_places``); nothing lands in
    the temporary folder, and in the home folder only matplotlib's cache."""
    from training_fixtures import run_main

    ws, home, tmp = tmp_path / "ws", tmp_path / "home", tmp_path / "tmp"
    for folder in (ws, home, tmp):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))    # the steps run in this process
    steps = W.steps_through("x08")
    steps[0] = steps[0].with_option("--n-patients", "60")
    stray = []
    for n, s in enumerate([*steps, *steps]):               # the first run, then each rerun
        label = s.key if n < len(steps) else f"{s.key} (rerun)"
        before = [_tree(ws), _tree(home), _tree(tmp)]
        code, _, err = run_main(s.script, *s.args, cwd=ws)
        assert code == 0, (s.key, err)
        after = [_tree(ws), _tree(home), _tree(tmp)]
        for where, allowed, b, a in zip(("", "$HOME/", "$TMPDIR/"),
                                        (_places(s), _HOME_PLACES, ()), before, after):
            stray += [f"{label}: {where}{path}" for path in _changed(b, a)
                      if not any(fnmatch.fnmatchcase(path, p) for p in allowed)]
        assert n >= len(steps) or _changed(before[0], after[0]), s.key   # the snapshot works
    assert not stray, "changed outside the step's places:\n" + "\n".join(stray)


@pytest.mark.parametrize("marker", ["covariate_df.feather", "config.json", "segmentation_log.csv",
                                    "x05_waterfall_table_results.csv", "predictions.feather"])
def test_morphing_outputs_never_go_into_another_steps_folder(tmp_path, marker):
    """s09/s10 --output-dir: the workspace root, a model or VAE folder, x04's or x05's beat
    folder or a predictions folder is refused before anything is written."""
    from scdecg.errors import PipelineError
    from scdecg.workspace import check_morph_output_dir

    folder = tmp_path / "somewhere"
    folder.mkdir()
    check_morph_output_dir(folder)                 # an empty folder of its own: fine
    check_morph_output_dir(tmp_path / "new")       # a new one too
    (folder / marker).write_text("x")
    with pytest.raises(PipelineError, match=rf"--output-dir .*somewhere: .*\(it holds {marker}\)"):
        check_morph_output_dir(folder)


def test_more_workers_than_cores_or_work_are_not_started():
    from scdecg.parallel import run_all

    assert run_all(abs, [-1, -2, -3], n_jobs=10_000, progress=False) == [1, 2, 3]
