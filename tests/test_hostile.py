"""Hostile and messy input (issue 13): nothing escapes the workspace, nothing is silently
relabelled, every failure is one clear line. One test per fault; each names its item."""
from __future__ import annotations

import contextlib
import io as _io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_script
from test_cohort import Ecg, before_rosc, build, control_ecg, study_ecg, write_tree
from test_gain import clean_ecg, stored
from test_io_checks import NOT_ARRAYS, write_not_an_array

from scdecg.cli import build_parser
from scdecg.errors import PipelineError

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
    from scdecg.io import record_path, replace_dir

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
    ("dpi", 200, "0"), ("dpi", 200, "100000"), ("calibration_bins", 10, "0"), ("seed", 0, "-1"),
    ("split_seed", 42, "4294967296"), ("lr", 1e-5, "nan"), ("train_frac", 0.3, "1.5"),
    ("n_jobs", 0, "-2"), ("memory_limit_gb", 4.0, "-1"), ("gain_fault", 4.88, "0"),
    ("gain_fault", 4.88, "inf"), ("tolerance", 0.05, "0"), ("tolerance", 0.05, "-0.0"),
    ("max_abs_uv", 1e5, "nan")])
def test_nonsense_numeric_options_are_refused_by_name(option, default, value):
    parser = build_parser("x", **{option: default})
    flag = "--" + option.replace("_", "-")
    stderr = _io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as exit_info:
        parser.parse_args([flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}:" in stderr.getvalue() and value in stderr.getvalue()


def test_x03_refuses_a_gain_fault_of_zero_before_reading_anything(tmp_path):
    proc = run_script(X03, "--gain-fault", "0", cwd=tmp_path, check=False)
    line = one_error_line(proc)
    assert line.endswith("argument --gain-fault: '0': --gain-fault must be a finite number "
                         "above 0"), line
    assert "RuntimeWarning" not in proc.stderr and not list(tmp_path.iterdir())


def test_zero_stays_allowed_where_it_means_automatic():
    args = build_parser("x", batch_size=0, n_jobs=0, seed=0, dropout=0.4).parse_args(
        ["--batch-size", "0", "--n-jobs", "0", "--seed", "0", "--dropout", "0"])
    assert (args.batch_size, args.n_jobs, args.seed, args.dropout) == (0, 0, 0, 0.0)
    # infinity keeps meaning "match every gain" (the published x03) and "no amplitude check"
    args = build_parser("x", tolerance=0.05, max_abs_uv=1e5).parse_args(
        ["--tolerance", "inf", "--max-abs-uv", "inf"])
    assert args.tolerance == args.max_abs_uv == float("inf")


@pytest.mark.parametrize("script", [X06, "02_Morphing/s11_prepare_morph_stats.py",
                                    "02_Morphing/s12_morph_stats.py"])
def test_a_low_pass_cutoff_the_filter_cannot_take_is_refused(tmp_path, script):
    """--lowpass-hz 250 (Nyquist at 500 Hz) stopped in scipy, 1e-9 in a singular matrix."""
    from training_fixtures import refused_line

    for value in ("250", "1000", "1e-9", "0.4", "inf", "nan", "-1"):
        line = refused_line(script, "--lowpass-hz", value, cwd=tmp_path)  # argparse's line
        assert line.endswith(f"error: argument --lowpass-hz: {value!r}: --lowpass-hz must be 0 "
                             "(no filter) or from 0.5 Hz to below 250 Hz (half the 500-Hz "
                             "sampling rate)"), line
    assert list(tmp_path.iterdir()) == []
    parser = build_parser("x", lowpass_hz=40.0)
    for value in ("0", "0.5", "40", "249.5"):      # 0: no filter, as published
        assert parser.parse_args(["--lowpass-hz", value]).lowpass_hz == float(value)


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


@pytest.mark.parametrize("scaling, ecg_dtype, message", [
    (-1000.0, np.float32, "covariate_df.feather: scaling_factor -1000.0 of studyId 'a' is not a "
     "positive number"),
    (np.nan, np.float32, "covariate_df.feather: scaling_factor nan of studyId 'a' is not a "
     "positive number"),
    ("1,000", np.float32, "covariate_df.feather: scaling_factor '1,000' of studyId 'a' is not a "
     "positive number"),
    (1000.0, np.complex64, "10_sec_ecgs/a.npy: wrong type: complex64, expected signed integers "
     "or floats (rerun x03)"),
    (1000.0, np.uint16, "10_sec_ecgs/a.npy: wrong type: uint16, expected signed integers or "
     "floats (rerun x03)")],
    ids=["negative_scale", "missing_scale", "text_scale", "complex_ecg", "unsigned_ecg"])
def test_x08_names_a_scaling_factor_or_sample_type_it_cannot_use(tmp_path, scaling, ecg_dtype,
                                                                 message):
    """A negative scaling factor drew the ECG upside down (exit 0); a missing one blamed the
    ECG file for NaN samples; text was a traceback; complex samples were drawn without their
    imaginary part after a numpy warning; unsigned ones (negative voltages wrapped) were drawn,
    though x04, x06 and training refuse them (one rule now: :func:`scdecg.io.load_signal`)."""
    from training_fixtures import run_main

    (tmp_path / "10_sec_ecgs").mkdir()
    np.save(tmp_path / "10_sec_ecgs" / "a.npy", clean_ecg(3).astype(ecg_dtype))
    pd.DataFrame({"studyId": ["a"], "scaling_factor": [scaling]}).to_feather(
        tmp_path / "covariate_df.feather")
    code, _, err = run_main(X08, cwd=tmp_path)
    assert (code, err.splitlines()) == (2, [f"error: {message}"])
    assert not list(tmp_path.glob("*.png"))


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
    odd = [m for m in notes if m.startswith("age not years")]
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
    (tmp_path / "ecg_beats" / "segmentation_log.csv").write_text("studyId\nodd\n")
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

    # DEVIATIONS "Later steps honour x03's flags": --gain-report "" measures them anyway
    out = run_script(X04, "--n-jobs", "1", "--gain-report", "", cwd=tmp_path).stdout
    assert "x03's flags not applied" in out
    log = pd.read_csv(tmp_path / "ecg_beats" / "segmentation_log.csv").set_index("studyId")
    assert log.loc["odd", "status"] == "ok" and log.loc["odd", "n_kept"] > 0
    run_script(X06, "--n-jobs", "1", "--gain-report", "", cwd=tmp_path)
    table = pd.read_csv(tmp_path / "x06_avl_features.csv").set_index("studyId")
    assert not str(table.loc["odd", "reason"]).startswith("not measured")
    assert table.loc["odd", "n_beats"] > 0


# ------------------------------------------------------------------ 6, 7, 16: model folders
X01_TRAIN = "01_Predictive_Model/x01_train_10s_ecg.py"
X03_PREDICT = "01_Predictive_Model/x03_predict.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from training_fixtures import TINY, make_workspace, run_main

    ws = tmp_path_factory.mktemp("hostile_model")
    make_workspace(ws, n_patients=24, n_samples=600, beats=1)
    code, _, err = run_main(X01_TRAIN, *TINY, "--length", "500", "--max-epochs", "1", cwd=ws)
    assert code == 0, err
    return ws


def model_copy(trained, tmp_path, edit=None):
    import json
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(trained, ws, ignore=shutil.ignore_patterns("predictions"))
    folder = ws / "modelfits_ecg" / "ntuh_scd_model_demo"
    if edit is not None:
        config = json.loads((folder / "config.json").read_text())
        edit(config)
        (folder / "config.json").write_text(json.dumps(config))
    return ws, folder


def reorder_outputs(config):
    config["outputs"] = config["outputs"][::-1]
    config["architecture"]["outputs"] = config["architecture"]["outputs"][::-1]


@pytest.mark.parametrize("edit, message", [
    (reorder_outputs, "does not match what best.pt was trained for (differs in outputs)"),
    (lambda c: c["covariate_stats"]["age"].update(sd=0), "covariate_stats.age.sd is 0"),
    (lambda c: c.pop("outputs"), "no 'outputs' entry"),
    (lambda c: c.pop("covariate_stats"), "differs in covariate_stats"),
    (lambda c: c["architecture"].update(n_blocks="ten"), "architecture.n_blocks is 'ten'"),
], ids=["reordered", "sd0", "no_outputs", "no_stats", "n_blocks_text"])
def test_an_edited_model_folder_is_refused_in_one_line(trained, tmp_path, edit, message):
    from training_fixtures import run_main

    ws, _ = model_copy(trained, tmp_path, edit)
    code, _, err = run_main(X03_PREDICT, cwd=ws)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (ws / "predictions").exists()


def test_ten_second_prediction_leaves_out_what_x03_flagged_unless_told_not_to(trained,
                                                                             tmp_path):
    """DEVIATIONS "Later steps honour x03's flags": 10-s prediction (and training) skip the
    ECGs x03 failed or left unresolved; ``--gain-report ""`` predicts them, as published."""
    from training_fixtures import run_main

    ws, folder = model_copy(trained, tmp_path)
    split = pd.read_csv(folder / "split.csv", dtype={"studyId": str})
    val = sorted(split.loc[split["split"] == "val", "studyId"])
    pd.DataFrame({"studyId": val[:2], "status": ["unresolved", "failed"],
                  "reason": ["unresolved gain: III=2.5", "wrong type: uint16"]}
                 ).to_csv(ws / "x03_gain_report.csv", index=False)
    predictions = ws / "predictions" / "ntuh_scd_model_demo_1" / "predictions.feather"

    code, out, err = run_main(X03_PREDICT, cwd=ws)
    assert code == 0, err
    assert sorted(pd.read_feather(predictions)["studyId"]) == val[2:]
    assert f"2 record(s) excluded or failed of {len(val)}" in out, out
    assert "x03 could not resolve this ECG" in out
    code, out, err = run_main(X03_PREDICT, "--gain-report", "", cwd=ws)
    assert code == 0, err
    assert sorted(pd.read_feather(predictions)["studyId"]) == val


def test_ten_second_training_leaves_out_what_x03_flagged_unless_told_not_to(trained,
                                                                           tmp_path):
    from training_fixtures import TINY, run_main

    ws, folder = model_copy(trained, tmp_path)
    split = pd.read_csv(folder / "split.csv", dtype={"studyId": str})
    flagged = sorted(split.loc[split["split"] == "train", "studyId"])[0]
    pd.DataFrame({"studyId": [flagged], "status": ["unresolved"], "reason": ["unresolved gain"]}
                 ).to_csv(ws / "x03_gain_report.csv", index=False)
    for option, left_out in (((), True), (("--gain-report", ""), False)):
        code, _, err = run_main(X01_TRAIN, *TINY, "--length", "500", "--max-epochs", "1",
                                *option, cwd=ws)
        assert code == 0, err
        excluded = pd.read_csv(folder / "excluded.csv", dtype={"studyId": str})
        left_out_ids = set(excluded["studyId"]) if "studyId" in excluded else set()
        assert (flagged in left_out_ids) == left_out, excluded
        config = json.loads((folder / "config.json").read_text())
        assert config["gain_report"] == ("x03_gain_report.csv" if left_out else "")
        assert config["data"]["train"]["samples"] == (
            (split["split"] == "train").sum() - left_out), config["data"]["train"]


def test_a_model_folder_without_its_split_is_refused(trained, tmp_path):
    from training_fixtures import run_main

    ws, folder = model_copy(trained, tmp_path)
    (folder / "split.csv").unlink()
    code, _, err = run_main(X03_PREDICT, cwd=ws)
    assert code == 2 and "split.csv: file not found" in err


def test_resume_refuses_a_changed_preprocessing(trained, tmp_path):
    from training_fixtures import TINY, run_main

    ws, folder = model_copy(trained, tmp_path)
    before = (folder / "checkpoint.pt").read_bytes()
    code, _, err = run_main(X01_TRAIN, *TINY, "--length", "500", "--max-epochs", "2", "--resume",
                            "--preprocessing", "zero_median", cwd=ws)
    assert code == 2 and "differs in" in err and "preprocessing" in err, err
    assert (folder / "checkpoint.pt").read_bytes() == before


def test_a_fresh_run_leaves_no_file_of_an_earlier_run(trained, tmp_path, monkeypatch):
    """A save failing mid-run (full disk) must not leave best.pt of one run beside
    checkpoint.pt of another."""
    from training_fixtures import TINY, run_main

    from scdecg.training import loop

    ws, folder = model_copy(trained, tmp_path)
    assert (folder / "checkpoint.pt").exists()

    def disk_full(*args, **kwargs):
        raise OSError(27, "File too large", str(folder / "checkpoint.pt"))

    monkeypatch.setattr(loop, "_save", disk_full)
    code, _, err = run_main(X01_TRAIN, *TINY, "--length", "500", "--max-epochs", "1",
                            "--seed", "3", cwd=ws)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and errors == [f"error: {folder / 'checkpoint.pt'}: File too large "
                                    "(a file size limit (ulimit -f) or a full disk)"], err
    assert not (folder / "checkpoint.pt").exists()   # not the earlier run's


# ------------------------------------------------------------------ 8: interrupted x00
def test_x00_swaps_a_whole_tree_and_never_replaces_foreign_data(tmp_path):
    from scdecg.synthetic import write_synthetic_ntuh
    from scdecg.workspace import SYNTHETIC_MARKER

    root = tmp_path / "v1"
    write_synthetic_ntuh(root, 12, seed=1, progress=False)
    assert (root / SYNTHETIC_MARKER).is_file()
    leftover = tmp_path / ".v1.abcd1234.tmp"      # what a killed run leaves beside the tree
    leftover.mkdir()
    (leftover / "half.csv").write_text("x")

    from scdecg import synthetic

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    old = sorted(p.relative_to(root) for p in root.rglob("*"))
    original = synthetic.write_waveforms
    synthetic.write_waveforms = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            write_synthetic_ntuh(root, 20, seed=2, progress=False)
    finally:
        synthetic.write_waveforms = original
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == old   # the old tree, whole
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    real = tmp_path / "elsewhere" / "real"
    (real / "study-group").mkdir(parents=True)
    line = one_error_line(run_script(X00, "--n-patients", "12", "--data-root", str(real),
                                     "--no-progress", cwd=tmp_path, check=False))
    assert "was not written by x00" in line and (real / "study-group").is_dir()
    # a synthetic_truth.csv beside real data (a demo run in the same folder) proves nothing
    (real / "study-group" / "ecg.csv").write_text("REAL\n")
    (real.parent / "synthetic_truth.csv").write_text("studyId\n")
    line = one_error_line(run_script(X00, "--n-patients", "12", "--data-root", str(real),
                                     "--no-progress", cwd=tmp_path, check=False))
    assert "was not written by x00" in line
    assert (real / "study-group" / "ecg.csv").read_text() == "REAL\n"


# ------------------------------------------------------------------ 10: leftovers
def test_reruns_remove_what_killed_runs_left_and_nothing_else(tmp_path):
    np.save(tmp_path / "w.npy", np.stack([stored(clean_ecg(8))]))
    pd.DataFrame({"studyId": ["a"], "file_path": ["w.npy"], "npy_index": [0],
                  "scaling_factor": [1000.0]}).to_feather(tmp_path / "covariate_df.feather")
    ten, beats_dir = tmp_path / "10_sec_ecgs", tmp_path / "ecg_beats"
    ten.mkdir()
    beats_dir.mkdir()
    (ten / ".a.npy.k3j_x9q2.tmp").write_bytes(b"torn")
    (ten / ".keep").write_text("a user's file")
    (beats_dir / ".a.0123456789abcdef0123456789abcdef.old").mkdir()
    (beats_dir / ".segmentation_log.csv.zz99yy88.tmp").write_text("torn")
    run_script(X03, "--n-jobs", "1", cwd=tmp_path)
    run_script(X04, "--n-jobs", "1", cwd=tmp_path)
    assert sorted(p.name for p in ten.iterdir()) == [".keep", "a.npy"]
    assert not [p.name for p in beats_dir.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------ 14, 17: things in the way
@pytest.mark.parametrize("what", ["file_for_folder", "folder_for_table", "truncated_table"])
def test_things_in_the_way_give_one_line(tmp_path, what):
    np.save(tmp_path / "w.npy", np.stack([stored(clean_ecg(9))]))
    table = tmp_path / "covariate_df.feather"
    pd.DataFrame({"studyId": ["a"], "file_path": ["w.npy"], "npy_index": [0],
                  "scaling_factor": [1000.0]}).to_feather(table)
    if what == "file_for_folder":
        (tmp_path / "10_sec_ecgs").write_text("not a folder")
        expected = "10_sec_ecgs: a file is where an output folder should be"
    elif what == "folder_for_table":
        table.unlink()
        table.mkdir()
        expected = "covariate_df.feather: not a file"
    else:
        table.write_bytes(table.read_bytes()[:200])
        expected = "covariate_df.feather: not a readable Feather table"
    for script in ((X03,) if what == "file_for_folder" else (X03, X04, X06)):
        line = one_error_line(run_script(script, cwd=tmp_path, check=False))
        assert expected in line, (script, line)


# ------------------------------------------------------------------ 15: read-only workspace
def test_operating_system_errors_become_one_line_naming_the_path(capsys):
    from scdecg.errors import script_main

    @script_main
    def main():
        raise PermissionError(13, "Permission denied", "covariate_df.feather")

    assert main() == 2
    assert capsys.readouterr().err == ("error: covariate_df.feather: Permission denied "
                                       "(a read-only file or folder?)\n")


def test_a_failing_write_names_the_file_not_its_temporary(tmp_path):
    from scdecg.io import write_text

    def fails(fd):  # as a write under ``ulimit -f`` fails: no file name in the error
        raise OSError(27, "File too large")

    import scdecg.io as io_module
    original = io_module.os.fsync
    io_module.os.fsync = fails
    try:
        with pytest.raises(OSError) as err:
            write_text("x", tmp_path / "x.txt")
    finally:
        io_module.os.fsync = original
    assert err.value.filename == str(tmp_path / "x.txt")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ 18: concurrent runs
def test_a_second_run_over_a_locked_folder_stops_in_one_line(tmp_path):
    from scdecg.io import folder_lock

    pd.DataFrame({"studyId": ["a"], "scaling_factor": [1000.0]}).to_feather(
        tmp_path / "covariate_df.feather")
    (tmp_path / "10_sec_ecgs").mkdir()
    np.save(tmp_path / "10_sec_ecgs" / "a.npy", stored(clean_ecg(1)).astype(np.float32))
    with folder_lock(tmp_path / "ecg_beats", "test"):
        line = one_error_line(run_script(X04, "--n-jobs", "1", cwd=tmp_path, check=False))
    assert "ecg_beats: another run is writing this folder" in line
    run_script(X04, "--n-jobs", "1", cwd=tmp_path)   # free again once the first run is done


# ------------------------------------------------------------------ 21: unsafe checkpoints
class Payload:
    """An arbitrary pickled object, as a malicious checkpoint would carry."""


def test_an_unsafe_checkpoint_is_refused_in_one_line(tmp_path):
    import torch

    from scdecg.io import load_checkpoint

    torch.save({"config_json": "{}", "x": Payload()}, tmp_path / "best.pt")
    with pytest.raises(PipelineError) as err:
        load_checkpoint(tmp_path / "best.pt")
    message = str(err.value)
    assert message == (f"{tmp_path / 'best.pt'}: not a checkpoint of this project (it holds "
                       "objects other than tensors), so it will not be loaded")


def test_an_unknown_control_timetag_is_named(tmp_path):
    root = write_tree(tmp_path, [study_ecg("s", 10)], {2015: [control_ecg("c1", 100)]})
    path = root / "control-group/ecg-cohort.csv"
    path.write_text(path.read_text().replace(",control,", ",ctrl,"))
    df, report = build(root)
    assert "c1" not in df.index          # no control ECG any more: excluded, and the cause named
    notes = {msg: n for (group, msg), n in report.notes.items() if group == "control"}
    assert notes["ecg_timetag in control-group/ecg-cohort.csv neither 'pre' nor 'control' "
                 "(not a control ECG): 'ctrl' 1"] == 1


def test_table_writes_remove_their_own_leftovers_only(tmp_path):
    from scdecg.io import write_csv

    mine = tmp_path / ".t.csv.ab12CD_9.tmp"
    other = tmp_path / ".t.csv.npy.ab12cd34.tmp"     # another file's temporary
    hidden = tmp_path / ".t.csv.notes"
    for path in (mine, other, hidden):
        path.write_text("x")
    write_csv(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, hidden.name, "t.csv"])


# ------------------------------------------------------------------ names that are paths
@pytest.mark.parametrize("script, flag", [
    ("01_Predictive_Model/x01_train_10s_ecg.py", "--model-name"),
    ("01_Predictive_Model/x02_train_beats.py", "--model-name"),
    ("01_Predictive_Model/x03_predict.py", "--model_name"),
    ("01_Predictive_Model/x04_train_ensemble.py", "--output-name"),
    ("01_Predictive_Model/x04_train_ensemble.py", "--scd-model"),
    ("01_Predictive_Model/x05_evaluate.py", "--model-name"),
    ("02_Morphing/s08_train_generator.py", "--name"),
    ("00_Data_Preprocessing/x04_segment_beats.py", "--log-name")])
def test_a_name_option_that_is_a_path_is_refused(tmp_path, script, flag):
    """``--model-name /elsewhere/m`` used to train into (and first clear) /elsewhere/m."""
    import importlib.util
    import os

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config.json").write_text("keep")
    ws = tmp_path / "ws"
    ws.mkdir()
    before = Path.cwd()
    for value in (str(victim), "../victim", "a/b", "", "x\ny"):
        if value == "" and script.endswith(("x03_predict.py", "x05_evaluate.py")):
            continue                    # empty means the default model there
        stderr = _io.StringIO()
        os.chdir(ws)
        try:
            with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as exit_info:
                module.main([flag, value])
        finally:
            os.chdir(before)
        assert exit_info.value.code == 2
        line = stderr.getvalue().strip().splitlines()[-1]
        assert f"error: argument {flag.replace('_', '-')}" in line and (
            f": {value!r}: {flag.replace('_', '-')} must be a plain file or folder name, not a "
            "path (") in line, (value, line)
    assert [p.name for p in victim.iterdir()] == ["config.json"]
    assert (victim / "config.json").read_text() == "keep" and list(ws.iterdir()) == []


# ------------------------------------------------------------------ ids in training and later
@pytest.mark.parametrize("edit, message", [
    ("outside", "studyId '{victim}' cannot be used as a file name (contains '/')"),
    ("float", "studyId 0.0 cannot be used as a file name (not text (float)) (and 23 more)"),
    ("repeated", "column studyId has duplicates, e.g. 'e0003' (1 repeated id(s))"),
    ("no_patient", "ptId missing for studyId 'e0007' (1 row(s))")],
    ids=["outside", "float", "repeated", "no_patient"])
def test_training_refuses_ids_that_are_no_file_names(tmp_path, edit, message):
    """An id naming a file outside the workspace used to be trained on (read from there);
    float ids, a repeated ECG and a missing patient gave no error or a traceback."""
    from training_fixtures import TINY, make_workspace, run_main

    df = make_workspace(tmp_path, n_patients=24, n_samples=600, beats=1)
    victim = tmp_path.parent / f"{tmp_path.name}_victim"
    np.save(f"{victim}.npy", np.load(tmp_path / "10_sec_ecgs" / "e0000.npy"))
    if edit == "outside":
        df.loc[0, "studyId"] = str(victim)
    elif edit == "float":
        df["studyId"] = np.arange(len(df), dtype=float)
    elif edit == "repeated":
        df = pd.concat([df, df.iloc[[3]]], ignore_index=True)
    else:
        df.loc[7, "ptId"] = None
    df.to_feather(tmp_path / "covariate_df.feather")
    code, _, err = run_main(X01_TRAIN, *TINY, "--length", "500", "--max-epochs", "1",
                            cwd=tmp_path)
    assert code == 2 and err.strip() == ("error: covariate_df.feather: "
                                         + message.format(victim=victim)
                                         + ("; rebuild the table with x01"
                                            if "file name" in message else
                                            "; every ECG needs its patient"
                                            if "ptId" in message else "")), err
    assert not (tmp_path / "modelfits_ecg").exists()


def test_prediction_refuses_a_split_file_naming_files_outside(trained, tmp_path):
    from training_fixtures import run_main

    ws, folder = model_copy(trained, tmp_path)
    split = pd.read_csv(folder / "split.csv", dtype=str)
    row = split.index[split["split"] == "val"][0]
    outside = tmp_path / "outside"
    np.save(f"{outside}.npy", np.load(ws / "10_sec_ecgs" / f"{split.loc[row, 'studyId']}.npy"))
    split.loc[row, "studyId"] = str(outside)
    split.to_csv(folder / "split.csv", index=False)
    code, _, err = run_main(X03_PREDICT, cwd=ws)
    assert code == 2 and err.strip() == (
        f"error: modelfits_ecg/ntuh_scd_model_demo/split.csv: studyId '{outside}' cannot be "
        "used as a file name (contains '/'); retrain the model, or restore the folder's "
        "split.csv"), err
    assert not (ws / "predictions").exists()


def test_x05_and_x06_refuse_float_and_repeated_ids(tmp_path):
    """x06 used to stop with a pandas traceback on float ids; x05 took repeated ids."""
    ten = tmp_path / "10_sec_ecgs"
    ten.mkdir()
    np.save(ten / "0.0.npy", stored(clean_ecg(2)).astype(np.float32))
    pd.DataFrame({"studyId": [0.0], "scaling_factor": [1000.0]}).to_feather(
        tmp_path / "covariate_df.feather")
    line = one_error_line(run_script(X06, "--n-jobs", "1", cwd=tmp_path, check=False))
    assert line.endswith("covariate_df.feather: studyId 0.0 cannot be used as a file name "
                         "(not text (float)); rebuild the table with x01")
    (tmp_path / "ecg_beats").mkdir()
    (tmp_path / "ecg_beats" / "segmentation_log.csv").write_text("studyId,n_kept\na,0\n")
    from scdecg.beats import create_morphing_beats, morphing_exclusions

    columns = {s.column: [0.0, 0.0] for s in morphing_exclusions()}
    pd.DataFrame({"studyId": ["a", "a"], **columns}).to_feather(
        tmp_path / "covariate_df.feather")
    with pytest.raises(PipelineError) as err:
        create_morphing_beats(cohort=tmp_path / "covariate_df.feather",
                              beats=tmp_path / "ecg_beats", out_dir=tmp_path / "m", n_jobs=1)
    assert str(err.value).endswith("covariate_df.feather: column studyId has duplicates, "
                                   "e.g. 'a' (1 repeated id(s))")
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------ the report
def test_the_report_embeds_no_file_from_outside_its_folder(tmp_path):
    """A config.json value with line breaks became an image line of the report, and the HTML
    embedded that file (any file the user could read) as base64."""
    import base64
    import json

    from scdecg.report import build_report

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    ws = tmp_path / "ws"
    folder = ws / "modelfits_ecg" / "m"
    folder.mkdir(parents=True)
    (folder / "history.csv").write_text("epoch,lr,train_loss,val_loss,seconds\n1,0.1,1,1,2\n")
    (folder / "config.json").write_text(json.dumps(
        {"outputs": [], "best_epoch": f"1\n\n![leak]({secret})\n\nx"}))
    (ws / "reports").mkdir()
    build_report(ws)
    page = (ws / "reports" / "report.html").read_text()
    assert base64.b64encode(b"TOP SECRET").decode() not in page
    assert f"(figure refused: {secret} lies outside the report folder)" in page


# ------------------------------------------------------------------ folders named in configs
def test_a_folder_a_model_config_names_outside_the_workspace_is_not_read(trained, tmp_path):
    """An edited config.json (``beats_dir``) or morph_run.json (``beat_model``) used to make
    prediction and the morph statistics read signals and models from anywhere."""
    import shutil

    from training_fixtures import run_main

    from scdecg.morph_stats import run_beat_model

    outside = tmp_path / "elsewhere"
    shutil.copytree(trained / "10_sec_ecgs", outside)
    ws, _ = model_copy(trained, tmp_path, lambda c: c.update(beats_dir=str(outside)))
    code, _, err = run_main(X03_PREDICT, cwd=ws)
    assert code == 2 and err.strip() == (
        f"error: modelfits_ecg/ntuh_scd_model_demo/config.json: beats_dir '{outside}' lies "
        "outside the workspace, so it is not read; pass --ecg_dir to use it"), err
    assert not (ws / "predictions").exists()
    code, _, err = run_main(X03_PREDICT, "--ecg_dir", "10_sec_ecgs", cwd=ws)
    assert code == 0, err                     # the option still chooses any folder

    run = tmp_path / "morph"
    run.mkdir()
    for value, shown in (("../modelfits_beat/m", "'../modelfits_beat/m'"), ("/m", "'/m'")):
        (run / "morph_run.json").write_text(f'{{"beat_model": "{value}"}}')
        with pytest.raises(PipelineError) as err:
            run_beat_model(run)
        assert str(err.value) == (f"{run / 'morph_run.json'}: beat_model {shown} lies outside "
                                  "the workspace, so it is not read; pass --beat-model to use it")
    (run / "morph_run.json").write_text('{"beat_model": "modelfits_beat/m"}')
    assert run_beat_model(run) == "modelfits_beat/m"


# ------------------------------------------------------------------ x07 on odd values
@pytest.mark.parametrize("column, value, shown, expected", [
    ("scd1", "yes", "'yes'", "0, 1 or missing"), ("scd1", 2.0, "2.0", "0, 1 or missing"),
    ("aVL_rs_diff", np.inf, "inf", "a finite number"), ("age", "old", "'old'", "a finite number")],
    ids=["text_label", "label_2", "inf_exposure", "text_age"])
def test_x07_names_a_label_or_number_it_cannot_use(tmp_path, column, value, shown, expected):
    """Text labels used to be read as missing, so x07 reported 'too few events' for every
    scd1 regression; a label 2 counted as a non-case; an infinite exposure was a traceback."""
    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame({"studyId": [f"e{i}" for i in range(n)], "ptId": [f"p{i}" for i in range(n)],
                       "group": ["study"] * 20 + ["control"] * 20, "days_to_event": 100.0,
                       "scd1": [1.0] * 20 + [0.0] * 20, "scd": 1.0, "any_arrest": 1.0,
                       "aVL_rs_diff": rng.normal(size=n), "aVL_rs_diff_2": rng.normal(size=n),
                       "age": 60.0, "female": 0.0, "heartRate": 70.0, "qrsDuration": 100.0,
                       "qtcf": 400.0})
    if isinstance(value, str):   # a text column, as a table edited in a spreadsheet gives
        df[column] = df[column].astype(str)
    df.loc[3, column] = value
    df.to_feather(tmp_path / "covariate_df.feather")
    line = one_error_line(run_script("00_Data_Preprocessing/x07_run_ntuh_style_regression.py",
                                     cwd=tmp_path, check=False))
    assert line == (f"error: covariate_df.feather: column {column} is {shown} for studyId 'e3' "
                    f"(1 row(s)); expected {expected}")
    assert not (tmp_path / "x07_regression_results.csv").exists()


def test_check_ids_names_a_missing_patient_column():
    from scdecg.errors import PipelineError
    from scdecg.io import check_ids

    table = pd.DataFrame({"studyId": ["e1", "e2"]})
    check_ids(table, "t.feather")                       # patients not asked for: fine
    with pytest.raises(PipelineError, match=r"^t\.feather: no ptId column; every ECG needs "
                                            r"its patient$"):
        check_ids(table, "t.feather", patients=True)


# ------------------------------------------------------------------ files that are no .npy array
@pytest.mark.parametrize("kind", sorted(NOT_ARRAYS))
def test_a_ten_second_file_that_is_no_array_is_a_logged_failure_saying_what_it_is(tmp_path, kind):
    """x04, x06 and training log the file as failed with what it is instead (an empty file
    and an .npz archive used to stop x04 and x06 with a traceback; a text file was 'pickled
    data' in numpy's words)."""
    from scdecg.beats import SegmentTask, segment_file
    from scdecg.features import EcgTask, features_for_file
    from scdecg.training.data import SignalFileError, read_signal

    path = tmp_path / "e1.npy"
    write_not_an_array(path, kind)
    row = segment_file(SegmentTask("e1", str(path), 1000.0), str(tmp_path / "beats"))
    assert (row["status"], row["reason"]) == ("failed", f"unreadable file: {path}: "
                                                        f"{NOT_ARRAYS[kind]}")
    row = features_for_file(EcgTask("e1", str(path), 1000.0))
    assert (row["status"], row["reason"], row["detail"]) == (
        "failed", "unreadable 10-s ECG file", f"{path}: {NOT_ARRAYS[kind]}")
    with pytest.raises(SignalFileError, match=rf"^unreadable: {re.escape(NOT_ARRAYS[kind])}$"):
        read_signal(path, 1000.0, ["zero_mode"])


# ------------------------------------------------------------------ x05 / x04 on odd predictions
def _text(column: pd.Series) -> pd.Series:
    return column.astype(str)


def _set(frame: pd.DataFrame, column: str, value, rows=slice(0, 2)) -> pd.DataFrame:
    frame = frame.copy()
    if isinstance(value, str):   # a text column, as a table edited in a spreadsheet gives
        frame[column] = _text(frame[column])
    frame.loc[frame.index[rows], column] = value
    return frame


PRED = "predictions/demo_1/predictions.feather"


@pytest.mark.parametrize("table, column, value, message", [
    ("pred", "scd1_hat", np.inf, f"{PRED}: column scd1_hat is inf for studyId 'ecg0120' (2 row(s)); "
     "expected a finite number"),
    ("pred", "scd1_hat", "abc", f"{PRED}: column scd1_hat is 'abc' for studyId 'ecg0120' (2 row(s)); "
     "expected a finite number"),
    ("pred", "studyId", None, f"{PRED}: column studyId is None for row 0 (2 row(s)); expected a "
     "value in every row"),
    ("pred", "split", None, f"{PRED}: column split is None for studyId 'ecg0120' (2 row(s)); "
     "expected a value in every row"),
    ("pred", "in_sample", "True", f"{PRED}: column in_sample is 'True' for studyId 'ecg0120' "
     "(121 row(s)); expected 0, 1 or missing"),
    ("pred", "", None, f"{PRED}: no prediction rows; rerun 01_Predictive_Model/x03_predict.py for "
     "this model"),
    ("cov", "scd1", "yes", "covariate_df.feather: column scd1 is 'yes' for studyId 'ecg0000' "
     "(2 row(s)); expected a finite number"),
    ("cov", "ptId", None, "covariate_df.feather: column ptId is None for studyId 'ecg0000' "
     "(2 row(s)); expected a value in every row")],
    ids=["inf_logit", "text_logit", "no_id", "no_split", "text_in_sample", "empty", "text_label",
         "no_patient"])
def test_x05_names_a_prediction_or_label_it_cannot_use(tmp_path, monkeypatch, capsys, table,
                                                       column, value, message):
    """An infinite logit was evaluated (AUC and Brier changed silently); text in_sample read as
    all in-sample; a missing split was evaluated as split 'None' into metrics_None.csv; an
    empty table exited 0 writing nothing; text labels, missing ids and patients were
    tracebacks or an error naming no file."""
    from test_evaluation import load_script, write_study

    covariates, predictions = write_study(tmp_path, n_patients=60)
    if table == "pred":
        if column == "in_sample":   # the whole column as text: 'False' was read as true
            predictions = predictions.assign(in_sample=_text(predictions["in_sample"]))
        else:
            predictions = predictions.iloc[:0] if not column else _set(predictions, column, value)
        predictions.to_feather(tmp_path / PRED)
    else:
        _set(covariates, column, value).to_feather(tmp_path / "covariate_df.feather")
    monkeypatch.chdir(tmp_path)
    assert load_script().main(["--model-name", "demo", "--n-boot", "5"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: {message}"]
    assert sorted(p.name for p in (tmp_path / "predictions/demo_1").iterdir()) == [
        "predictions.feather"]


MEMBER = "predictions/ntuh_scd_model_demo_1/predictions.feather"
LOW_EF = "predictions/ntuh_scd_model_demo_low_ef_1/predictions.feather"


@pytest.mark.parametrize("path, column, value, message", [
    (MEMBER, "scd1_hat", np.inf, f"{MEMBER}: column scd1_hat is inf for studyId 'e0000' "
     "(2 row(s)); expected a finite number"),
    (LOW_EF, "low_ef_hat", "abc", f"{LOW_EF}: column low_ef_hat is 'abc' for studyId 'e0000' "
     "(2 row(s)); expected a finite number"),
    (MEMBER, "split", None, f"{MEMBER}: column split is None for studyId 'e0000' (2 row(s)); "
     "expected a value in every row"),
    ("covariate_df.feather", "age", np.inf, "covariate_df.feather: column age is inf for studyId "
     "'e0000' (2 row(s)); expected a finite number"),
    ("covariate_df.feather", "scd1", "no", "covariate_df.feather: column scd1 is 'no' for "
     "studyId 'e0000' (2 row(s)); expected 0, 1 or missing"),
    ("covariate_df.feather", "ptId", None, "covariate_df.feather: column ptId is None for "
     "studyId 'e0000' (2 row(s)); expected a value in every row"),
    (MEMBER, "", b"garbage", f"{MEMBER}: not a readable Feather table (not a Feather file: no "
     "Arrow or Feather marker at its start); rerun the step that writes it")],
    ids=["inf_member", "text_member", "no_split", "inf_age", "text_outcome", "no_patient",
         "garbage"])
def test_x04_names_a_member_prediction_or_covariate_it_cannot_use(tmp_path, path, column, value,
                                                                  message):
    """Infinite member logits or covariates were fitted (LAPACK warnings, changed AUCs, exit
    0); text, a missing split or patient and an unreadable member file were tracebacks."""
    from test_ensemble import X04 as SCRIPT, stacked_frame, write_workspace
    from training_fixtures import run_main

    write_workspace(tmp_path, stacked_frame(n_patients=60, seed=3))
    if column:
        frame = pd.read_feather(tmp_path / path)
        _set(frame, column, value).to_feather(tmp_path / path)
    else:
        (tmp_path / path).write_bytes(value)
    code, _, err = run_main(SCRIPT, "--n-boot", "5", cwd=tmp_path)
    assert (code, err.splitlines()) == (2, [f"error: {message}"])
    assert not (tmp_path / "predictions/scd1_ensemble_model").exists()


# ------------------------------------------------------------------ audit of stop 28
def _ten_second_workspace(tmp_path, ecgs: dict) -> None:
    """covariate_df.feather and 10_sec_ecgs/<id>.npy (µV) for x04 and x06."""
    from test_beats import cohort_for_x05

    (tmp_path / "10_sec_ecgs").mkdir()
    for sid, ecg in ecgs.items():
        np.save(tmp_path / "10_sec_ecgs" / f"{sid}.npy", ecg)
    cohort_for_x05(list(ecgs)).to_feather(tmp_path / "covariate_df.feather")


def test_10s_files_of_a_type_that_is_no_voltage_fail_per_record_in_x04_and_x06(tmp_path):
    """x03 refuses unsigned and complex samples; x04 and x06 computed on such 10_sec_ecgs
    files (uint16 wraps negative voltages; complex only warned). Now each fails with the
    type named, the others go on."""
    from test_beats import PEAKS, gaussian_ecg

    good = (gaussian_ecg(PEAKS, seed=0) * 1000.0).astype(np.float32)
    _ten_second_workspace(tmp_path, {"good": good, "wrapped": good.astype(np.uint16),
                                     "complex": good.astype(np.complex64)})
    run_script(X04, "--n-jobs", "1", "--gain-report", "", cwd=tmp_path)
    log = pd.read_csv(tmp_path / "ecg_beats" / "segmentation_log.csv").set_index("studyId")
    assert log.loc["good", "status"] == "ok"
    for sid, dtype in (("wrapped", "uint16"), ("complex", "complex64")):
        assert log.loc[sid, "status"] == "failed"
        assert f"wrong type: {dtype}, expected signed integers or floats" in log.loc[sid, "reason"]
    run_script(X06, "--n-jobs", "1", "--gain-report", "", cwd=tmp_path)
    table = pd.read_csv(tmp_path / "x06_avl_features.csv").set_index("studyId")
    assert table.loc["good", "status"] == "ok"
    for sid, dtype in (("wrapped", "uint16"), ("complex", "complex64")):
        assert table.loc[sid, "status"] == "failed" and dtype in table.loc[sid, "detail"]


@pytest.mark.parametrize("script", [X04, X06])
def test_a_scaling_factor_that_is_no_number_is_named(tmp_path, script):
    """A hand-edited covariate_df.feather with scaling_factor "abc" was a traceback."""
    from test_beats import PEAKS, gaussian_ecg

    _ten_second_workspace(tmp_path, {"a": gaussian_ecg(PEAKS, seed=0) * 1000.0,
                                     "b": gaussian_ecg(PEAKS, seed=1) * 1000.0})
    table = pd.read_feather(tmp_path / "covariate_df.feather")
    table["scaling_factor"] = ["1000", "abc"]
    table.to_feather(tmp_path / "covariate_df.feather")
    line = one_error_line(run_script(script, "--n-jobs", "1", "--gain-report", "",
                                     cwd=tmp_path, check=False))
    assert line == ("error: covariate_df.feather: scaling_factor 'abc' of studyId 'b' is not a "
                    "number (1 row(s)); rebuild the table with x02")


def test_a_link_in_the_beat_folder_is_never_followed(tmp_path):
    """A symbolic link among x04's beat folders (to an empty folder elsewhere) stopped x04
    after all its work ("Cannot call rmtree on a symbolic link"), leaving its unfinished
    mark; now the link and its target are left alone."""
    from test_beats import PEAKS, gaussian_ecg

    _ten_second_workspace(tmp_path, {"a": gaussian_ecg(PEAKS, seed=0) * 1000.0})
    run_script(X04, "--n-jobs", "1", "--gain-report", "", cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "ecg_beats" / "linked").symlink_to(elsewhere, target_is_directory=True)
    run_script(X04, "--n-jobs", "1", "--gain-report", "", cwd=tmp_path)
    assert (tmp_path / "ecg_beats" / "linked").is_symlink() and elsewhere.is_dir()
    assert not (tmp_path / "ecg_beats" / ".x04-unfinished").exists()


# ------------------------------------------------------------------ training and prediction inputs
X02_TRAIN = "01_Predictive_Model/x02_train_beats.py"


@pytest.mark.parametrize("script, column, value, shown", [
    (X02_TRAIN, "qtInterval", np.inf, "inf"),
    (X02_TRAIN, "qrsDuration", "abc", "'abc'"),
    (X01_TRAIN, "age", "abc", "'abc'")],
    ids=["infinite_target", "text_target", "text_covariate"])
def test_training_refuses_a_target_or_covariate_that_is_no_number(tmp_path, script, column,
                                                                  value, shown):
    """An infinite regression target trained into "training diverged" naming no column; text
    in a target or covariate was a pyarrow traceback in fit_stats. Now one line before
    anything is written."""
    from training_fixtures import TINY, make_workspace, refused_line

    df = make_workspace(tmp_path, n_patients=24, n_samples=600, beats=1)
    if isinstance(value, str):
        df[column] = df[column].astype(str)
    df.loc[5, column] = value
    df.to_feather(tmp_path / "covariate_df.feather")
    length = ["--length", "500"] if script == X01_TRAIN else []
    line = refused_line(script, *TINY, *length, "--max-epochs", "1", cwd=tmp_path)
    assert line == (f"error: covariate_df.feather: column {column} is {shown} for studyId "
                    "'e0005' (1 row(s)); expected a finite number")
    assert not (tmp_path / "modelfits_ecg").exists() and not (tmp_path / "modelfits_beat").exists()


def test_a_gain_report_that_is_not_there_is_refused_unless_it_is_the_default(trained,
                                                                             tmp_path):
    """--gain-report naming a file that is not there was taken as "no report" (nothing left
    out); only the default may be absent (no x03 run), as before."""
    from training_fixtures import TINY, refused_line, run_main

    ws, folder = model_copy(trained, tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    expected = ("error: --gain-report nowhere.csv: no such file; give x03's report, or '' to "
                "use every ECG")
    assert refused_line(X01_TRAIN, *TINY, "--length", "500", "--max-epochs", "1",
                        "--gain-report", "nowhere.csv", cwd=ws) == expected
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    assert refused_line(X03_PREDICT, "--gain-report", "nowhere.csv", cwd=ws) == expected
    assert not (ws / "predictions").exists()
    assert not (ws / "x03_gain_report.csv").exists()      # the default: absent, still fine
    assert run_main(X03_PREDICT, cwd=ws)[0] == 0


@pytest.mark.parametrize("script", [X01_TRAIN, X02_TRAIN])
def test_an_unknown_preprocessing_step_is_refused_naming_the_known_ones(tmp_path, script):
    """--preprocessing bogus was a ValueError traceback when the first signal was read."""
    from training_fixtures import TINY, make_workspace, refused_line

    make_workspace(tmp_path, n_patients=24, n_samples=600, beats=1)
    line = refused_line(script, *TINY, "--preprocessing", "zero_mode", "bogus", cwd=tmp_path)
    assert "argument --preprocessing: invalid choice: 'bogus'" in line, line
    assert all(step in line for step in ("zero_mode", "zero_median", "published_tail_cut"))
    assert not (tmp_path / "modelfits_ecg").exists() and not (tmp_path / "modelfits_beat").exists()


def test_a_scaling_factor_that_is_no_usable_number_fails_its_ecg_in_training_and_prediction(
        trained, tmp_path):
    """An infinite, missing, zero or negative scaling_factor scaled a 10-s signal silently (to
    zeros, or upside down) or failed it as "non-finite samples"; now the ECG is left out and
    named with the reason, as x04 and x06 do. Text is refused in one line."""
    from training_fixtures import TINY, run_main

    ws, folder = model_copy(trained, tmp_path)
    split = pd.read_csv(folder / "split.csv", dtype=str)
    val = list(split.loc[split["split"] == "val", "studyId"])
    train = list(split.loc[split["split"] == "train", "studyId"])
    df = pd.read_feather(ws / "covariate_df.feather")
    bad = {val[0]: np.inf, val[1]: np.nan, val[2]: -1000.0, train[0]: 0.0}
    df["scaling_factor"] = [bad.get(s, f) for s, f in zip(df["studyId"], df["scaling_factor"])]
    df.to_feather(ws / "covariate_df.feather")
    code, out, err = run_main(X03_PREDICT, cwd=ws)
    assert code == 0, err
    assert f"3 record(s) excluded or failed of {len(val)}" in out, out
    for shown in ("inf", "nan", "-1000.0"):
        assert f"invalid scaling_factor: {shown}" in out
    pred = pd.read_feather(ws / "predictions/ntuh_scd_model_demo_1/predictions.feather")
    assert list(pred["studyId"]) == val[3:]
    code, _, err = run_main(X01_TRAIN, *TINY, "--length", "500", "--max-epochs", "1", cwd=ws)
    assert code == 0, err
    excluded = pd.read_csv(folder / "excluded.csv", dtype={"studyId": str}).set_index("studyId")
    assert excluded.loc[train[0], "reason"] == "invalid scaling_factor: 0.0"
    assert excluded.loc[val[0], "reason"] == "invalid scaling_factor: inf"
    df["scaling_factor"] = "1000"
    df.loc[3, "scaling_factor"] = "abc"
    df.to_feather(ws / "covariate_df.feather")
    code, _, err = run_main(X03_PREDICT, cwd=ws)
    assert code == 2 and err.strip() == (
        "error: covariate_df.feather: scaling_factor 'abc' of studyId 'e0003' is not a number "
        "(1 row(s)); rebuild the table with x02"), err


def test_prediction_refuses_a_patient_in_two_splits_and_counts_ecgs_not_in_the_cohort(
        trained, tmp_path):
    """split.csv was not checked: a patient in both train and val was predicted as held out;
    an ECG the cohort table no longer holds stopped prediction on its missing covariates
    (or failed as "non-finite samples"). Now the first is refused, the second left out and
    counted (a cohort table holding none of the split's ECGs is refused)."""
    from training_fixtures import run_main

    ws, folder = model_copy(trained, tmp_path)
    split = pd.read_csv(folder / "split.csv", dtype=str)
    val = split.index[split["split"] == "val"]
    train_pt = split.loc[split["split"] == "train", "ptId"].iloc[0]
    edited = split.copy()
    edited.loc[val[0], "ptId"] = train_pt
    edited.to_csv(folder / "split.csv", index=False)
    code, _, err = run_main(X03_PREDICT, cwd=ws)
    assert code == 2 and err.strip() == (
        f"error: modelfits_ecg/ntuh_scd_model_demo/split.csv: ptId {train_pt!r} is in two "
        "splits (train and val; 1 patient(s)); all ECGs of a patient share one split: "
        "retrain the model or restore its split.csv"), err
    assert not (ws / "predictions").exists()

    split.to_csv(folder / "split.csv", index=False)
    df = pd.read_feather(ws / "covariate_df.feather")
    gone = split.loc[val[0], "studyId"]
    df[df["studyId"] != gone].to_feather(ws / "covariate_df.feather")
    code, out, err = run_main(X03_PREDICT, cwd=ws)
    assert code == 0, err
    assert f"1 record(s) excluded or failed of {len(val)}" in out, out
    assert "studyId of split.csv not in covariate_df.feather" in out
    pred = pd.read_feather(ws / "predictions/ntuh_scd_model_demo_1/predictions.feather")
    assert list(pred["studyId"]) == list(split.loc[val[1:], "studyId"])

    df.assign(studyId="z" + df["studyId"]).to_feather(ws / "covariate_df.feather")
    code, _, err = run_main(X03_PREDICT, cwd=ws)
    assert code == 2 and err.strip() == (
        f"error: modelfits_ecg/ntuh_scd_model_demo/split.csv: none of its {len(val)} val "
        f"ECG(s) is in covariate_df.feather (studyId {gone!r} is not); give the cohort table "
        "the model was trained on"), err


def test_prediction_warns_of_rows_with_non_finite_outputs(trained, tmp_path, monkeypatch):
    """NaN logits were only counted later, in x05's metrics.csv; x03 now says how many rows
    and in which file (the file itself is unchanged)."""
    from scdecg.training import runs
    from training_fixtures import run_main

    original = runs.stream_logits

    def spoiled(*args, **kwargs):
        logits, readable, unread = original(*args, **kwargs)
        logits[:2, 0] = np.nan
        return logits, readable, unread

    monkeypatch.setattr(runs, "stream_logits", spoiled)
    ws, _ = model_copy(trained, tmp_path)
    code, out, err = run_main(X03_PREDICT, cwd=ws)
    assert code == 0, err
    target = Path("predictions/ntuh_scd_model_demo_1/predictions.feather")
    pred = pd.read_feather(ws / target)
    assert (f"[ntuh_scd_model_demo] warning: 2 of {len(pred)} rows have non-finite outputs "
            f"(NaN or inf) in {target}") in out, out
    assert int(pred.filter(like="_hat").isna().any(axis=1).sum()) == 2
