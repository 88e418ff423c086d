"""Hostile and messy input (issue 13): nothing escapes the workspace, nothing is silently
relabelled, every failure is one clear line. One test per fault; each names its item."""
from __future__ import annotations

import argparse
import contextlib
import io as _io

import numpy as np
import pandas as pd
import pytest
from conftest import run_script
from test_cohort import Ecg, before_rosc, build, control_ecg, study_ecg, write_tree
from test_gain import clean_ecg, stored

from scdecg.cli import build_parser
from scdecg.errors import PipelineError
from scdecg.io import record_path, replace_dir

X00 = "00_Data_Preprocessing/x00_make_synthetic_ntuh.py"
X01 = "00_Data_Preprocessing/x01_build_ntuh_df.py"
X03 = "00_Data_Preprocessing/x03_process_10sec_ecg.py"
X04 = "00_Data_Preprocessing/x04_segment_beats.py"
X06 = "00_Data_Preprocessing/x06_create_aVL_feature.py"
X08 = "00_Data_Preprocessing/x08_plot_ecg.py"


def one_error_line(proc) -> str:
    """The script failed with exit 2 and exactly one ``error:`` line, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, proc.stderr
    return errors[0]


# ------------------------------------------------------------------ 1: path escape
def test_ids_that_leave_the_folder_are_excluded_at_x01(tmp_path):
    study = [study_ecg("ok", 10), study_ecg("../victim", 10), study_ecg("sub/dir/ecg", 10),
             study_ecg(".", 10), study_ecg(".hidden", 10)]
    df, report = build(write_tree(tmp_path, study))
    assert "ok" in df.index
    assert not set(df.index) & {"../victim", "sub/dir/ecg", ".", ".hidden"}
    reasons = report.exclusion_frame().set_index("ecg_id")["reason"].to_dict()
    assert reasons["sub/dir/ecg"] == "ecg_id not usable as a file name: contains '/'"
    assert reasons["."] == reasons["../victim"] == "ecg_id not usable as a file name: starts with '.'"


def test_ids_that_leave_the_folder_are_refused_where_files_are_named(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep")
    ws = tmp_path / "ws"
    ws.mkdir()
    np.save(ws / "waves.npy", np.stack([stored(clean_ecg(1))] * 2))
    pd.DataFrame({"studyId": ["a", "../../victim"], "file_path": ["waves.npy"] * 2,
                  "npy_index": [0, 1], "scaling_factor": [1000.0, 1000.0]}
                 ).to_feather(ws / "covariate_df.feather")
    for script in (X03, X04, X06):
        line = one_error_line(run_script(script, "--n-jobs", "1", cwd=ws, check=False))
        assert "'../../victim' cannot be used as a file name" in line, line
    assert [p.name for p in victim.iterdir()] == ["precious.txt"]
    assert not (tmp_path / "victim.npy").exists() and not (ws / "10_sec_ecgs").exists()

    for name in ("sub/dir", ".", ".."):
        with pytest.raises(PipelineError, match="cannot be used as a file name"):
            record_path(ws, name)
    (ws / "ecg_beats" / "x").mkdir(parents=True)
    with pytest.raises(PipelineError, match="refusing to replace"):
        replace_dir(ws / "ecg_beats" / "x" / "..", None)
    assert (ws / "ecg_beats" / "x").is_dir()


# ------------------------------------------------------------------ 9, 20: nonsense settings
@pytest.mark.parametrize("option, default, value", [
    ("batch_size", 256, "0"), ("max_epochs", 1000, "0"), ("chunk_size", 256, "0"),
    ("dpi", 200, "0"), ("calibration_bins", 10, "0"), ("seed", 0, "-1"),
    ("split_seed", 42, "4294967296"), ("lr", 1e-5, "nan"), ("train_frac", 0.3, "1.5"),
    ("n_jobs", 0, "-2"), ("memory_limit_gb", 4.0, "-1")])
def test_nonsense_numeric_options_are_refused_by_name(option, default, value):
    parser = build_parser("x", **{option: default})
    flag = "--" + option.replace("_", "-")
    stderr = _io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as exit_info:
        parser.parse_args([flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}:" in stderr.getvalue() and value in stderr.getvalue()


def test_zero_stays_allowed_where_it_means_automatic():
    args = build_parser("x", batch_size=0, n_jobs=0, seed=0, dropout=0.4).parse_args(
        ["--batch-size", "0", "--n-jobs", "0", "--seed", "0", "--dropout", "0"])
    assert (args.batch_size, args.n_jobs, args.seed, args.dropout) == (0, 0, 0, 0.0)


def test_scripts_refuse_a_negative_seed_in_one_line(tmp_path):
    line = one_error_line(run_script(X00, "--seed", "-1", "--data-root", "d", cwd=tmp_path,
                                     check=False))
    assert "--seed" in line and "'-1'" in line
    assert not (tmp_path / "d").exists()


# ------------------------------------------------------------------ 19: x08 on a bad file
@pytest.mark.parametrize("content", ["transposed", "truncated"])
def test_x08_names_a_bad_ten_second_file(tmp_path, content):
    (tmp_path / "10_sec_ecgs").mkdir()
    path = tmp_path / "10_sec_ecgs" / "a.npy"
    ecg = clean_ecg(3).astype(np.float32)
    if content == "transposed":
        np.save(path, ecg.T)
    else:
        np.save(path, ecg)
        path.write_bytes(path.read_bytes()[:5000])
    pd.DataFrame({"studyId": ["a"], "scaling_factor": [1000.0]}).to_feather(
        tmp_path / "covariate_df.feather")
    line = one_error_line(run_script(X08, cwd=tmp_path, check=False))
    assert "10_sec_ecgs/a.npy" in line
