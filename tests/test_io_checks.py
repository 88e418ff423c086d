"""The checks in scdecg.io that every step applies where data enters, each on its own and on
values: ids usable as file names, labels and numbers by column, recorded folders, and files
that should be .npy arrays. (The scripts' use of them is in test_hostile.py.)"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scdecg.errors import PipelineError
from scdecg.io import (MAX_NAME_BYTES, UnreadableArray, check_ids, check_names, check_values,
                       feather_problem, load_npy, npy_header, npy_problem, read_array,
                       read_feather, recorded_path, unsafe_name_reason)
from scdecg.workspace import STEP_SCRIPTS


# ----------------------------------------------------------------------------- ids
_DEVICE = "a device name Windows reserves (CON, PRN, AUX, NUL, COM1-9, LPT1-9)"


@pytest.mark.parametrize("name, reason", [
    ("e0001", None), ("0000118", None), ("a.b-c_d é", None), ("x" * MAX_NAME_BYTES, None),
    ("é" * (MAX_NAME_BYTES // 2), None),
    (118.0, "not text (float)"), (None, "not text (NoneType)"), ("", "empty"),
    (".hidden", "starts with '.'"), ("..", "starts with '.'"),
    (" e1", "leading or trailing whitespace"), ("e1\t", "leading or trailing whitespace"),
    ("a/b", "contains '/'"), ("a\\b", "contains '\\\\'"), ("a\x00b", "contains '\\x00'"),
    ("a\nb", "contains '\\n'"), ("a:b", "contains ':'"), ("a|b", "contains '|'"),
    ("x" * (MAX_NAME_BYTES + 1),
     f"{MAX_NAME_BYTES + 1} UTF-8 bytes in {MAX_NAME_BYTES + 1} characters, more than the "
     f"{MAX_NAME_BYTES} a file name may take"),
    ("é" * 120, f"240 UTF-8 bytes in 120 characters, more than the {MAX_NAME_BYTES} a file "
                "name may take"),
    ("a\udcffb", None), ("a\ud800b", "not valid Unicode text (a lone surrogate)"),
    ("CON", _DEVICE), ("nul", _DEVICE), ("Com1.npy", _DEVICE), ("lpt9", _DEVICE),
    ("console", None), ("LPT10", None), ("aux_1", None),
    ("trail.", "ends with '.' (Windows drops it: another file's name)")])
def test_unsafe_name_reason(name, reason):
    assert unsafe_name_reason(name) == reason


def test_the_longest_allowed_id_fits_every_temporary_name_made_from_it(tmp_path):
    """An id of MAX_NAME_BYTES bytes (two-byte characters) passes through atomic_path's
    ``.<id>.npy.XXXXXXXX.tmp`` and replace_dir's ``.<id>.<uuid>.old`` (255-byte limit)."""
    from scdecg.io import replace_dir, save_npy

    name = "é" * (MAX_NAME_BYTES // 2)
    save_npy(np.zeros(3), tmp_path / f"{name}.npy")
    for _ in range(2):  # the second time the old folder is renamed to its .old name
        replace_dir(tmp_path / name, lambda tmp: np.save(tmp / f"{name}_0.npy", np.zeros(3)))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, f"{name}.npy"]
    assert unsafe_name_reason("é" * 120) is not None   # 240 bytes: x03's temporary went past 255


def test_check_names_names_the_first_bad_id_and_counts_the_others():
    check_names(["e1", "e2"], "studyId", "t.feather")
    with pytest.raises(PipelineError) as caught:
        check_names(["e1", "../x", "a/b", "e4"], "studyId", "t.feather", hint="fix it")
    assert str(caught.value) == ("t.feather: studyId '../x' cannot be used as a file name "
                                 "(starts with '.') (and 1 more); fix it")
    with pytest.raises(PipelineError, match=r"\(contains '/'\); rebuild the table with x01$"):
        check_names(["a/b"], "studyId", "t.feather")


def test_check_ids_refuses_bad_repeated_and_patientless_ids():
    good = pd.DataFrame({"studyId": ["e1", "e2", "e3"], "ptId": ["p1", "p1", "p2"]})
    check_ids(good, "t.feather", patients=True)
    repeated = pd.DataFrame({"studyId": ["e1", "e2", "e1", "e2", "e2"]})
    with pytest.raises(PipelineError) as caught:
        check_ids(repeated, "t.feather")
    assert str(caught.value) == ("t.feather: column studyId has duplicates, e.g. 'e1' "
                                 "(2 repeated id(s))")
    check_ids(repeated, "t.feather", unique=False)                  # allowed where asked
    with pytest.raises(PipelineError, match=r"^t\.feather: ptId missing for studyId 'e2' "
                                            r"\(1 row\(s\)\); every ECG needs its patient$"):
        check_ids(good.assign(ptId=["p1", None, "p2"]), "t.feather", patients=True)
    check_ids(good.assign(ptId=["p1", None, "p2"]), "t.feather")    # patients not asked for
    with pytest.raises(PipelineError) as caught:
        check_ids(pd.DataFrame({"x": [1.5]}), "t.feather", column="x")
    assert str(caught.value) == ("t.feather: x 1.5 cannot be used as a file name (not text "
                                 "(float)); rebuild the table with x01")
    with pytest.raises(PipelineError) as caught:
        check_ids(good.drop(columns="ptId"), "t.feather", patients=True)
    assert str(caught.value) == "t.feather: no ptId column; every ECG needs its patient"


# ----------------------------------------------------------------------------- values
def frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"studyId": [f"e{i}" for i in range(n)], **columns})


def test_check_values_accepts_binary_numbers_booleans_and_missing_values():
    check_values(frame(scd1=[0, 1, None, 1.0], age=[50.5, None, -3, 1e9],
                       female=[True, False, True, False]),
                 "t.feather", binary=["scd1", "female"], numeric=["age"], filled=["studyId"])


@pytest.mark.parametrize("columns, kind, message", [
    ({"scd1": [0, 2, 1, 2]}, "binary",
     "column scd1 is 2 for studyId 'e1' (2 row(s)); expected 0, 1 or missing"),
    ({"scd1": [0.0, 0.5, 1.0, 1.0]}, "binary",
     "column scd1 is 0.5 for studyId 'e1' (1 row(s)); expected 0, 1 or missing"),
    ({"scd1": ["0", "yes", "1", None]}, "binary",
     "column scd1 is 'yes' for studyId 'e1' (1 row(s)); expected 0, 1 or missing"),
    ({"age": [1.0, 2.0, np.inf, -np.inf]}, "numeric",
     "column age is inf for studyId 'e2' (2 row(s)); expected a finite number"),
    ({"age": [1, "old", 3, 4]}, "numeric",
     "column age is 'old' for studyId 'e1' (1 row(s)); expected a finite number"),
    ({"split": ["train", None, "val", None]}, "filled",
     "column split is None for studyId 'e1' (2 row(s)); expected a value in every row")])
def test_check_values_names_column_ecg_value_and_count(columns, kind, message):
    with pytest.raises(PipelineError) as caught:
        check_values(frame(**columns), "t.feather", **{kind: list(columns)})
    assert str(caught.value) == f"t.feather: {message}"


def test_check_values_goes_on_past_a_boolean_column():
    with pytest.raises(PipelineError, match=r"column scd1 is 2 for studyId 'e0'"):
        check_values(frame(female=[True, False], scd1=[2, 0]), "t.feather",
                     binary=["female", "scd1"])


def test_check_values_names_the_row_where_the_ecg_has_no_id():
    df = pd.DataFrame({"studyId": ["e0", None, "e2"], "scd1": [0, 3, 1]})
    with pytest.raises(PipelineError, match=r"column scd1 is 3 for row 1 \(1 row"):
        check_values(df, "t.feather", binary=["scd1"])
    with pytest.raises(PipelineError, match=r"column studyId is None for row 1 \(1 row"):
        check_values(df, "t.feather", filled=["studyId"])
    with pytest.raises(PipelineError, match=r"column scd1 is 3 for row 1 \(1 row"):
        check_values(df.drop(columns="studyId"), "t.feather", binary=["scd1"])


# ----------------------------------------------------------------------------- recorded folders
def test_recorded_path_keeps_a_recorded_folder_inside_the_workspace():
    assert recorded_path("ecg_beats", "m/config.json", "beats_dir", "--ecg_dir") == \
        Path("ecg_beats")
    for value in ("/data/ecg_beats", "../ecg_beats", "a/../../b"):
        with pytest.raises(PipelineError) as caught:
            recorded_path(value, "m/config.json", "beats_dir", "--ecg_dir")
        assert str(caught.value) == (f"m/config.json: beats_dir {value!r} lies outside the "
                                     "workspace, so it is not read; pass --ecg_dir to use it")
    for value in (None, "", 3):
        with pytest.raises(PipelineError, match=rf"^m/config\.json: beats_dir is "
                                                rf"{re.escape(repr(value))}, not a folder; "
                                                rf"pass --ecg_dir$"):
            recorded_path(value, "m/config.json", "beats_dir", "--ecg_dir")


# ----------------------------------------------------------------------------- .npy files
NOT_ARRAYS = {"empty": "an empty file, not a NumPy array file",
              "text": "not a NumPy array file (no .npy header)",
              "npz": "a .npz archive, not a NumPy array file (.npy)",
              "objects": "an object array (pickles are never loaded)"}


def write_not_an_array(path, kind: str) -> None:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("studyId,aVL\n")
    elif kind == "npz":
        with open(path, "wb") as fh:
            np.savez(fh, ecg=np.zeros((12, 5000), np.float32))
    else:
        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


@pytest.mark.parametrize("kind", sorted(NOT_ARRAYS))
def test_load_npy_says_what_a_file_is_instead_of_an_array(tmp_path, kind):
    path = tmp_path / "e1.npy"
    write_not_an_array(path, kind)
    assert npy_problem(path) == NOT_ARRAYS[kind]
    with pytest.raises(UnreadableArray) as caught:
        load_npy(path)
    assert (str(caught.value), caught.value.path, caught.value.detail) == (
        f"{path}: {NOT_ARRAYS[kind]}", path, NOT_ARRAYS[kind])
    assert isinstance(caught.value, ValueError)               # per-record loops catch it


def test_npy_problem_tells_a_sound_array_from_what_is_not_one(tmp_path):
    sound = tmp_path / "sound.npy"
    np.save(sound, np.arange(12.0).reshape(3, 4))
    assert npy_problem(sound) is None
    data = sound.read_bytes()
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(data[:-8])
    assert npy_problem(truncated) == f"a truncated NumPy array file ({len(data) - 8} of " \
                                     f"{len(data)} bytes)"
    version = tmp_path / "version.npy"
    version.write_bytes(b"\x93NUMPY\x07\x00" + data[8:])
    assert npy_problem(version) == "a NumPy array file with a broken header (format version (7, 0))"
    header = tmp_path / "header.npy"
    header.write_bytes(data[:20])
    assert re.fullmatch(r"a NumPy array file with a broken header \(EOF: reading array header, "
                        r"expected \d+ bytes got \d+\)", npy_problem(header))
    assert re.fullmatch(r"a NumPy array file with a broken header \(\[Errno 21\] Is a directory: .+\)",
                        npy_problem(tmp_path))                  # cannot even be opened
    for version in ((2, 0), (3, 0)):
        other = tmp_path / f"v{version[0]}.npy"
        with open(other, "wb") as fh:
            np.lib.format.write_array(fh, np.zeros(5), version=version)
        assert npy_problem(other) is None and load_npy(other).tolist() == [0.0] * 5


def test_load_npy_returns_the_array_and_keeps_missing_files_missing(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.array([[1, 2], [3, 4]], np.int16))
    array = load_npy(path)
    assert array.dtype == np.int16 and array.tolist() == [[1, 2], [3, 4]]
    with pytest.raises(FileNotFoundError):
        load_npy(tmp_path / "missing.npy")
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(UnreadableArray) as caught:
        load_npy(path)
    assert caught.value.path == path and caught.value.detail.startswith("a truncated NumPy")
    assert isinstance(caught.value, PipelineError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("kind", sorted(NOT_ARRAYS))
def test_npy_header_refuses_what_load_npy_refuses(tmp_path, kind):
    path = tmp_path / "e1.npy"
    write_not_an_array(path, kind)
    with pytest.raises(UnreadableArray) as caught:
        npy_header(path)
    assert (str(caught.value), caught.value.detail) == (f"{path}: {NOT_ARRAYS[kind]}",
                                                        NOT_ARRAYS[kind])


def test_npy_header_reads_shape_and_dtype_without_the_data(tmp_path):
    path = tmp_path / "a.npy"
    for array in (np.zeros((12, 300), np.float32), np.asfortranarray(np.ones((3, 5), ">i2")),
                  np.float64(2.5)):
        np.save(path, array)
        assert npy_header(path) == (array.shape, array.dtype)
    np.save(path, np.zeros((12, 300), np.float32))
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(UnreadableArray, match=r"a truncated NumPy array file \(14524 of 14528 "):
        npy_header(path)
    with pytest.raises(FileNotFoundError):
        npy_header(tmp_path / "missing.npy")


def test_feather_problem_is_judged_from_the_markers_before_pyarrow_reads(tmp_path):
    import pyarrow as pa
    from pyarrow import feather

    table = tmp_path / "t.feather"
    pd.DataFrame({"studyId": ["a", "b"], "x": [1.0, 2.0]}).to_feather(table)
    assert feather_problem(table) is None
    v1 = tmp_path / "v1.feather"
    feather.write_feather(pa.table({"x": [1.0]}), v1, version=1)
    assert feather_problem(v1) is None and read_feather(v1)["x"].tolist() == [1.0]
    data = table.read_bytes()
    cut = tmp_path / "cut.feather"
    cut.write_bytes(data[:200])
    assert feather_problem(cut) == "truncated: 200 bytes and no end marker"
    (tmp_path / "empty.feather").write_bytes(b"")
    assert feather_problem(tmp_path / "empty.feather") == "an empty file"
    (tmp_path / "text.feather").write_text("studyId,x\na,1\n")
    assert feather_problem(tmp_path / "text.feather") == ("not a Feather file: no Arrow or "
                                                          "Feather marker at its start")
    for data, problem in ((b"FEA1FEA1", None), (b"FEA1EA1", "truncated: 7 bytes and no end marker"),
                          (b"FEA1", "truncated: 4 bytes and no end marker")):
        (tmp_path / "edge.feather").write_bytes(data)           # the smallest complete file
        assert feather_problem(tmp_path / "edge.feather") == problem, data
    with pytest.raises(PipelineError) as caught:
        read_feather(cut, ["studyId"], "x02")
    assert str(caught.value) == (f"{cut}: not a readable Feather table (truncated: 200 bytes "
                                 f"and no end marker); rerun the step that writes it")


def test_read_array_checks_presence_type_shape_and_finiteness(tmp_path):
    path = tmp_path / "mu.npy"
    rerun = f"rerun {STEP_SCRIPTS['s08']}"
    with pytest.raises(PipelineError) as caught:
        read_array(path, (4,), "s08")
    assert str(caught.value) == f"{path}: file not found (run {STEP_SCRIPTS['s08']} first)"
    np.save(path, np.array([0.5, 1.0, 2.0, 3.0], np.float32))
    assert read_array(path, (4,), "s08").tolist() == [0.5, 1.0, 2.0, 3.0]
    assert read_array(path, (None,), "s08").shape == (4,)
    for shape, expected in (((5,), "(5,)"), ((4, 1), "(4, 1)"), ((None, 4), "(any, 4)")):
        with pytest.raises(PipelineError) as caught:
            read_array(path, shape, "s08")
        assert str(caught.value) == f"{path}: shape (4,), expected {expected}; {rerun}"
    np.save(path, np.array([0.5, np.nan, 2.0, np.inf], np.float32))
    assert np.isnan(read_array(path, (4,), "s08")[1])                 # finite not asked for
    with pytest.raises(PipelineError) as caught:
        read_array(path, (4,), "s08", finite=True)
    assert str(caught.value) == f"{path}: value nan at index (1,); expected finite numbers; {rerun}"
    np.save(path, np.array(["a", "b"]))
    with pytest.raises(PipelineError) as caught:
        read_array(path, (2,), "s08")
    assert str(caught.value) == f"{path}: holds <U1 values, not numbers; {rerun}"
    with pytest.raises(PipelineError, match=r"; rerun my_step$"):
        read_array(path, (5,), "my_step")
    np.save(path, np.array([True, False]))
    assert read_array(path, (2,)).tolist() == [True, False]
    path.write_text("text")
    with pytest.raises(PipelineError) as caught:
        read_array(path, (2,))
    assert str(caught.value) == (f"{path}: not a NumPy array file (no .npy header); rerun the "
                                 "step that writes it")


def test_load_npy_maps_on_request_and_lets_operating_system_errors_through(tmp_path):
    path = tmp_path / "stack.npy"
    np.save(path, np.arange(6, dtype=np.int16).reshape(2, 3))
    plain, mapped = load_npy(path), load_npy(path, mmap=True)
    assert not isinstance(plain, np.memmap) and plain.flags.writeable
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    assert mapped.shape == (2, 3) and mapped.tolist() == plain.tolist()
    path.write_bytes(path.read_bytes()[:-4])
    for mmap in (False, True):
        with pytest.raises(UnreadableArray, match=r": a truncated NumPy array file \("):
            load_npy(path, mmap=mmap)
    with pytest.raises(IsADirectoryError):        # not a statement about the file's content
        load_npy(tmp_path)


# ----------------------------------------------------------- outputs over inputs (hostile)
def test_outputs_may_not_land_on_inputs_or_on_each_other(tmp_path, monkeypatch):
    from scdecg.io import refuse_path_clashes

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    refuse_path_clashes({"--output": "a.feather", "--log": "b.csv"},
                        {"--input": "data", "--labels": "labels.csv", "--unused": ""})
    for outputs, inputs, message in [
        ({"--output": "a.feather", "--log": "./a.feather"}, {},
         "--output a.feather and --log ./a.feather name the same path; the output would"),
        ({"--report": "covariate_df.feather"}, {"--covariate-df": "covariate_df.feather"},
         "the input would be overwritten"),
        ({"--out-dir": "link"}, {"--input": "data"}, "--out-dir link and --input data name"),
        ({"--output": "data/x.feather"}, {"--input": "data"},
         "--output data/x.feather lies inside --input data; give each its own place (an output "
         "must not be written into or over what a step reads or writes elsewhere)"),
        ({"--out-dir": "out"}, {"--labels": "out/labels.csv"},
         "--labels out/labels.csv lies inside --out-dir out"),
        ({"--out-dir": str(tmp_path.parent)}, {},
         f"--out-dir {tmp_path.parent}: is the working folder or holds it; an output needs a "
         "path of its own"),
    ]:
        with pytest.raises(PipelineError, match=re.escape(message)):
            refuse_path_clashes(outputs, inputs)


def test_x01_refuses_to_write_its_table_over_its_exclusions(tmp_path):
    from training_fixtures import run_main

    code, _, err = run_main("00_Data_Preprocessing/x01_build_ntuh_df.py", "--exclusions",
                            "covariate_df.feather", cwd=tmp_path)
    assert code == 2 and "--output covariate_df.feather and --exclusions covariate_df.feather " \
                         "name the same path" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("script, options, message", [
    ("00_Data_Preprocessing/x06_create_aVL_feature.py", ["--output-table", "covariate_df.feather"],
     "--output-table covariate_df.feather and --covariate-df covariate_df.feather name the same"),
    ("00_Data_Preprocessing/x07_run_ntuh_style_regression.py",
     ["--output-csv", "r.csv", "--output-md", "r.csv"], "--output-csv r.csv and --output-md r.csv"),
    ("00_Data_Preprocessing/x08_plot_ecg.py", ["--output", "10_sec_ecgs/ecg.png"],
     "--output 10_sec_ecgs/ecg.png lies inside --ecg-dir 10_sec_ecgs"),
    ("00_Data_Preprocessing/x03_process_10sec_ecg.py", ["--report", "covariate_df.feather"],
     "--report covariate_df.feather and --cohort covariate_df.feather name the same path"),
    ("00_Data_Preprocessing/x04_segment_beats.py", ["--out-dir", "10_sec_ecgs"],
     "--out-dir 10_sec_ecgs and --ecg-dir 10_sec_ecgs name the same path"),
    ("00_Data_Preprocessing/x04_segment_beats.py", ["--out-dir", "."],
     "--out-dir .: is the working folder or holds it"),
    ("00_Data_Preprocessing/x05_create_morphing_beats.py", ["--out-dir", "ecg_beats"],
     "--out-dir ecg_beats and --beats ecg_beats name the same path"),
    ("00_Data_Preprocessing/x05_create_morphing_beats.py", ["--out-dir", ".."],
     "--out-dir ..: is the working folder or holds it"),
], ids=["x06", "x07", "x08", "x03", "x04-input", "x04-here", "x05-input", "x05-parent"])
def test_steps_refuse_outputs_over_their_inputs(tmp_path, script, options, message):
    from training_fixtures import run_main

    code, _, err = run_main(script, *options, cwd=tmp_path)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("script", ["00_Data_Preprocessing/x04_segment_beats.py",
                                    "00_Data_Preprocessing/x05_create_morphing_beats.py"])
def test_beat_steps_leave_a_folder_they_did_not_write_alone(tmp_path, script):
    """x04 and x05 remove the beat folders they no longer need; pointed (--out-dir) at a
    user's folder that looks like beat folders, they refuse in one line and delete nothing."""
    from test_beats import PEAKS, cohort_for_x05, gaussian_ecg
    from training_fixtures import run_main

    (tmp_path / "10_sec_ecgs").mkdir()
    np.save(tmp_path / "10_sec_ecgs" / "a.npy", gaussian_ecg(PEAKS, seed=0) * 1000.0)
    cohort_for_x05(["a"]).to_feather(tmp_path / "covariate_df.feather")
    if script.endswith("x05_create_morphing_beats.py"):
        assert run_main("00_Data_Preprocessing/x04_segment_beats.py", "--n-jobs", "1",
                        cwd=tmp_path)[0] == 0
    mine = tmp_path / "mine"
    (mine / "empty").mkdir(parents=True)
    (mine / "run").mkdir()
    np.save(mine / "run" / "run_1.npy", np.zeros(3))       # looks like a beat folder
    before = sorted(str(p.relative_to(mine)) for p in mine.rglob("*"))
    code, _, err = run_main(script, "--out-dir", "mine", "--n-jobs", "1", cwd=tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "mine: a folder that" in err and "did not write" in err
    assert sorted(str(p.relative_to(mine)) for p in mine.rglob("*")) == before
