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


# ------------------------------------------------------------------ 2: unrecognised categories
def test_category_values_match_explicitly_and_unknown_ones_are_named(tmp_path):
    study = [study_ecg("a", 10, cause="Cardiac  Event ", rhythm=" vt/vf"),
             study_ecg("b", 10, cause="Cardiac Event (presumed)", rhythm="VF/VT"),
             study_ecg("c", 10, cause="trauma", rhythm="PEA")]
    df, report = build(write_tree(tmp_path, study))
    assert df.loc["a", "scd1"] == 1 and df.loc["a", "VTVF"] == 1     # case and spaces ignored
    assert df.loc["b", "scd1"] == 0 and df.loc["b", "VTVF"] == 0     # as published, but named
    assert df.loc["c", "arrest_noncardiac"] == 1
    notes = {msg: n for (group, msg), n in report.notes.items() if group == "study"}
    assert notes["cause_of_cardiac_arrest not in --cardiac-causes or --noncardiac-causes "
                 "(read as non-cardiac): 'Cardiac Event (presumed)' 1"] == 1
    assert notes["initial_rhythm not in --shockable-rhythms or --other-rhythms "
                 "(read as not shockable): 'VF/VT' 1"] == 1

    from scdecg.cohort import Categories, build_cohort
    wider = Categories(cardiac_causes=("cardiac event", "cardiac event (presumed)"),
                       shockable_rhythms=("VT/VF", "VF/VT"))
    df2, _ = build_cohort(tmp_path, [2015], wider)
    assert df2.set_index("ecg_id").loc["b", ["scd1", "VTVF"]].tolist() == [1.0, 1.0]


def test_a_study_without_any_cardiac_arrest_is_warned_about(tmp_path):
    write_tree(tmp_path / "v1", [study_ecg("a", 10, cause="Cardiac Event (presumed)")])
    proc = run_script(X01, "--data-root", "v1", "--control-years", "2015", cwd=tmp_path)
    assert "'Cardiac Event (presumed)' 1" in proc.stdout
    assert "warning: no kept study ECG has a cause in --cardiac-causes" in proc.stdout


# ------------------------------------------------------------------ 3: waveform type at x01
def test_an_unsigned_waveform_stack_is_refused_at_x01(tmp_path):
    root = write_tree(tmp_path / "v1", [study_ecg("a", 10)])
    array = root / "study-group/ecg-waveforms/waveform-rhythm.npy"
    np.save(array, np.zeros((1, 12, 10), dtype=np.uint16))
    line = one_error_line(run_script(X01, "--data-root", "v1", "--control-years", "2015",
                                     cwd=tmp_path, check=False))
    assert "waveform-rhythm.npy: values of type uint16" in line


# ------------------------------------------------------------------ 4: ages
def test_ages_are_parsed_strictly_and_implausible_ones_refused(tmp_path):
    ages = {"a": "63", "b": "89+", "c": "-5", "d": "1e2", "e": "6O", "f": "3/4", "g": "45,5",
            "h": "200", "i": "1e21", "j": "70.0"}
    df, report = build(write_tree(tmp_path, [study_ecg(k, 10, age=v) for k, v in ages.items()]))
    assert df.loc["a", "age"] == 63 and df.loc["b", "age"] == 89 and df.loc["j", "age"] == 70
    assert df.loc[list("cdefghi"), "age"].isna().all()
    notes = {msg: n for (group, msg), n in report.notes.items() if group == "study"}
    odd = [m for m in notes if m.startswith("age not whole years")]
    assert len(odd) == 1 and notes[odd[0]] == 6
    for value in ("-5", "1e2", "6O", "3/4", "45,5", "1e21"):
        assert repr(value) in odd[0]
    assert notes["age above 120 -> NaN: '200' 1"] == 1


# ------------------------------------------------------------------ 5: duplicate column names
def test_a_repeated_column_name_is_refused_by_name(tmp_path):
    root = write_tree(tmp_path, [study_ecg("a", 10)])
    path = root / "study-group/cohort.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0].replace("age", "age,age")]
                              + [line.replace(",60,", ",60,61,") for line in lines[1:]]) + "\n")
    with pytest.raises(PipelineError, match=r"cohort.csv: column name\(s\) age appear more than once"):
        build(root)


# ------------------------------------------------------------------ 11: ambiguous exclusions
def test_an_ecg_without_a_cohort_row_is_excluded_for_that_reason(tmp_path):
    root = write_tree(tmp_path, [study_ecg("0000118", 10), study_ecg("5", 10)])
    path = root / "study-group/cohort.csv"
    path.write_text(path.read_text().replace("0000118,", "118,").replace("\n5,", "\n6,"))
    _, report = build(root)
    reasons = report.exclusion_frame().set_index("ecg_id")["reason"].to_dict()
    assert reasons == {
        "0000118": "no matching row in cohort.csv (an ecg_id there differs only in leading zeros)",
        "5": "no matching row in cohort.csv"}


# ------------------------------------------------------------------ 12: text encoding
def test_non_utf8_text_names_the_file_and_line(tmp_path):
    root = write_tree(tmp_path / "v1", [study_ecg("a", 10, statements=("sinus", "normal"))])
    path = root / "study-group/ecg-metadata/diagnosis.csv"
    path.write_bytes(path.read_bytes().replace(b"normal", "竇性心律".encode("big5")))
    line = one_error_line(run_script(X01, "--data-root", "v1", "--control-years", "2015",
                                     cwd=tmp_path, check=False))
    assert "diagnosis.csv: line 3 is not UTF-8 text" in line


# ------------------------------------------------------------------ 13: timezones
@pytest.mark.parametrize("every_row", [True, False])
def test_datetimes_with_a_timezone_parse_to_their_clock_time(tmp_path, every_row):
    zone = "+08:00"
    study = [study_ecg("a", 10), Ecg("b", "pb", before_rosc(20) + zone,
                                     rosc="2020-06-01 10:00:00" + (zone if every_row else ""))]
    df, report = build(write_tree(tmp_path, study))
    assert df.loc["b", "days_to_event"] == 20 and df.loc["a", "days_to_event"] == 10
    notes = {msg: n for (group, msg), n in report.notes.items() if group == "study"}
    assert notes["acquisition datetime with a timezone: offset dropped, clock time kept"] == 1


# ------------------------------------------------------------------ 3: units and type at x03
def test_x03_refuses_unsigned_and_implausible_records(tmp_path):
    good = stored(clean_ecg(4))
    np.save(tmp_path / "unsigned.npy", np.stack([good]).astype(np.uint16))
    np.save(tmp_path / "huge.npy", np.stack([good, good * 1e6]).astype(np.float64))
    pd.DataFrame({"studyId": ["u", "ok", "big"],
                  "file_path": ["unsigned.npy", "huge.npy", "huge.npy"], "npy_index": [0, 0, 1]}
                 ).to_feather(tmp_path / "covariate_df.feather")
    run_script(X03, "--n-jobs", "1", cwd=tmp_path)
    report = pd.read_csv(tmp_path / "x03_gain_report.csv").set_index("studyId")
    assert report["status"].to_dict() == {"u": "failed", "ok": "corrected", "big": "failed"}
    assert report.loc["u", "reason"].startswith("wrong type: uint16")
    assert report.loc["big", "reason"].startswith("implausible amplitude")
    assert sorted(p.name for p in (tmp_path / "10_sec_ecgs").iterdir()) == ["ok.npy"]


def test_later_steps_do_not_measure_what_x03_left_unresolved(tmp_path):
    np.save(tmp_path / "w.npy", np.stack([stored(clean_ecg(5)), stored(clean_ecg(6), gain=2.5)]))
    pd.DataFrame({"studyId": ["fine", "odd"], "file_path": ["w.npy"] * 2, "npy_index": [0, 1],
                  "scaling_factor": [1000.0] * 2}).to_feather(tmp_path / "covariate_df.feather")
    run_script(X03, "--n-jobs", "1", cwd=tmp_path)
    assert (tmp_path / "10_sec_ecgs" / "odd.npy").exists()   # written as stored, flagged
    (tmp_path / "ecg_beats" / "odd").mkdir(parents=True)     # beats of an earlier run
    np.save(tmp_path / "ecg_beats" / "odd" / "odd_3.npy", np.zeros((12, 300), np.float32))
    run_script(X04, "--n-jobs", "1", cwd=tmp_path)
    log = pd.read_csv(tmp_path / "ecg_beats" / "segmentation_log.csv").set_index("studyId")
    assert log.loc["odd", "status"] == "failed"
    assert log.loc["odd", "reason"].startswith("x03 unresolved: unresolved gain")
    assert log.loc["fine", "status"] == "ok" and not (tmp_path / "ecg_beats" / "odd").exists()
    run_script(X06, "--n-jobs", "1", cwd=tmp_path)
    table = pd.read_csv(tmp_path / "x06_avl_features.csv").set_index("studyId")
    assert table.loc["odd", "status"] == "failed" and np.isnan(table.loc["odd", "aVL_rs_diff"])
    assert table.loc["odd", "reason"] == "not measured: x03 could not resolve this ECG"
    assert table.loc["fine", "status"] in ("ok", "partial")
