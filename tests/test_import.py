"""x00_import_cohort: WFDB / npy / CSV records and a labels table become the pipeline's input.

Records are written with ``wfdb.wrsamp`` from known signals (sums of sines, or simulated
ECGs), at 250, 500 and 1,000 Hz, with lead names in other orders and cases, 15 leads, only
I, II and the chest leads, NaNs, a too-short record, a missing lead and an unknown unit; the
imported arrays are compared sample by sample with the known signal.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
from scipy.signal import resample_poly

from scdecg.cohort import LABELS, CohortReport
from scdecg.constants import FS, LEAD_INDEX, LEADS, N_SAMPLES
from scdecg.errors import PipelineError
from scdecg.importing import (RawRecord, RecordRefused, SignalOptions, WindowOptions,
                              canonical_lead, cohort_rows, cut_windows, discover_records,
                              id_problem, import_record, read_labels, read_wfdb,
                              resample_to_pipeline, to_pipeline_leads, uv_per_unit)
from scdecg.synthetic import sample_ecg_params, simulate_ecg
from training_fixtures import TINY, run_main

X00 = "00_Data_Preprocessing/x00_import_cohort.py"
X04 = "00_Data_Preprocessing/x04_segment_beats.py"
X05 = "00_Data_Preprocessing/x05_create_morphing_beats.py"
X06 = "00_Data_Preprocessing/x06_create_aVL_feature.py"
X07 = "00_Data_Preprocessing/x07_run_ntuh_style_regression.py"
X08 = "00_Data_Preprocessing/x08_plot_ecg.py"
TRAIN = "01_Predictive_Model/x01_train_10s_ecg.py"
TRAIN_BEATS = "01_Predictive_Model/x02_train_beats.py"
PREDICT = "01_Predictive_Model/x03_predict.py"
EVALUATE = "01_Predictive_Model/x05_evaluate.py"
GENERATOR = "02_Morphing/s08_train_generator.py"
MORPH = "02_Morphing/s10_morph_ecgs.py"
RECORDED = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
FRANK = ("vx", "vy", "vz")


# --------------------------------------------------------------------------------------
# Known signals
# --------------------------------------------------------------------------------------
def known_ecg(t: np.ndarray) -> np.ndarray:
    """(12, len(t)) µV in LEADS order: band-limited sines on I, II, V1..V6; the other limb
    leads by the Einthoven/Goldberger identities. Exact at any time ``t`` (seconds)."""
    out = np.empty((12, t.size))
    for k, lead in enumerate(RECORDED):
        out[LEAD_INDEX[lead]] = (600 * np.sin(2 * np.pi * 1.3 * t + k)
                                 + 250 * np.sin(2 * np.pi * (7 + k) * t + 2 * k)
                                 + 80 * np.sin(2 * np.pi * (23 + 2 * k) * t))
    i, ii = out[LEAD_INDEX["I"]], out[LEAD_INDEX["II"]]
    out[LEAD_INDEX["III"]] = ii - i
    out[LEAD_INDEX["aVR"]] = -(i + ii) / 2
    out[LEAD_INDEX["aVL"]] = i - ii / 2
    out[LEAD_INDEX["aVF"]] = ii - i / 2
    return out


def write_wfdb(folder, name, fs, leads_uv: dict[str, np.ndarray], unit="mV"):
    """One WFDB record: ``leads_uv`` {channel name: µV samples}, stored in ``unit``."""
    per_unit = uv_per_unit(unit) or 1.0
    signal = np.stack(list(leads_uv.values()), axis=1) / per_unit
    wfdb.wrsamp(name, fs=fs, units=[unit] * signal.shape[1], sig_name=list(leads_uv),
                p_signal=signal, fmt=["16"] * signal.shape[1], write_dir=str(folder))


def channels(ecg_uv: np.ndarray, names: dict[str, str], order) -> dict[str, np.ndarray]:
    """Channels ``{stored name: signal}`` in ``order`` (pipeline lead names)."""
    return {names.get(lead, lead): ecg_uv[LEAD_INDEX[lead]] for lead in order}


def labels_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_id", "patient_id", "age", "sex", "days_to_event",
                                       "cardiac_cause"])


def quantum(fs_signal: np.ndarray) -> float:
    """Largest WFDB 16-bit quantisation error (µV) for a signal of this range."""
    return float(np.ptp(fs_signal)) / 2 ** 15


# --------------------------------------------------------------------------------------
# Names, units, ids
# --------------------------------------------------------------------------------------
def test_lead_names_match_case_insensitively_with_aliases():
    for name, lead in [("AVL", "aVL"), ("avl", "aVL"), ("aVL", "aVL"), ("Lead aVL", "aVL"),
                       ("v1", "V1"), ("V6", "V6"), ("ii", "II"), ("III", "III"), ("DII", "II"),
                       (" aVf ", "aVF"), ("avr", "aVR")]:
        assert canonical_lead(name) == lead, name
    for name in ("vx", "VZ", "-aVR", "V7", "MLII", ""):
        assert canonical_lead(name) is None, name


def test_units_and_ids():
    assert uv_per_unit("mV") == 1000 and uv_per_unit("MV") == 1000
    assert uv_per_unit("uV") == uv_per_unit("\u00b5V") == uv_per_unit("\u03bcV") == 1
    assert uv_per_unit("V") == 1e6 and uv_per_unit("mmHg") is None and uv_per_unit("") is None
    for bad in ("", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a\nb", None, float("nan"),
                "a:b", " a", "\u00e9" * 120):
        assert id_problem(bad), bad
    for good in ("00001_hr", "rec.v2", "A-17", "p 3"):
        assert id_problem(good) is None, good


# --------------------------------------------------------------------------------------
# Leads, resampling, windows
# --------------------------------------------------------------------------------------
def test_missing_limb_leads_follow_einthoven_and_goldberger():
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 1.0, (8, 700))  # mV
    names = ["v3", "II", "V1", "i", "V2", "v6", "V5", "V4"]
    mapped = to_pipeline_leads(RawRecord(signal, names, ["mV"] * 8, 500.0))
    ecg = mapped.ecg_uv
    i, ii = signal[3] * 1000, signal[1] * 1000
    np.testing.assert_allclose(ecg[LEAD_INDEX["I"]], i, atol=1e-6)
    np.testing.assert_allclose(ecg[LEAD_INDEX["V3"]], signal[0] * 1000, atol=1e-6)
    np.testing.assert_allclose(ecg[LEAD_INDEX["III"]], ii - i, atol=1e-6)
    np.testing.assert_allclose(ecg[LEAD_INDEX["aVR"]], -(i + ii) / 2, atol=1e-6)
    np.testing.assert_allclose(ecg[LEAD_INDEX["aVL"]], i - ii / 2, atol=1e-6)
    np.testing.assert_allclose(ecg[LEAD_INDEX["aVF"]], ii - i / 2, atol=1e-6)
    assert mapped.derived == ["III", "aVR", "aVL", "aVF"] and mapped.ignored == []


@pytest.mark.parametrize("names, units, match", [
    (["I", "II", "V1", "V2", "V3", "V5", "V6", "V7"], ["mV"] * 8, r"missing lead\(s\) V4"),
    (["I", "III", "V1", "V2", "V3", "V4", "V5", "V6"], ["mV"] * 8, r"missing lead\(s\) II"),
    (["I", "II", "V1", "V2", "V3", "V4", "V5", "v5"], ["mV"] * 8, "lead V5 appears twice"),
    (["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"], ["mV"] * 7 + ["mmHg"],
     "unknown unit 'mmHg' of lead V6"),
    (["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"], ["mV"] * 8,
     "flat lead V3: one constant value in the 100 samples read"),
])
def test_unusable_leads_are_refused_by_name(names, units, match):
    signal = np.random.default_rng(0).normal(size=(8, 100))
    if match.startswith("flat"):
        signal[4] = 0.25
    raw = RawRecord(signal, names, units, 500.0)
    with pytest.raises(RecordRefused, match=match):
        to_pipeline_leads(raw)


@pytest.mark.parametrize("fs", [250, 1000, 360])
def test_resampling_keeps_a_sine_sample_by_sample(fs):
    t = np.arange(12 * fs) / fs
    sine = 1000.0 * np.sin(2 * np.pi * 5.0 * t)  # 1 mV, 5 Hz
    out = resample_to_pipeline(sine[None], fs)
    assert out.shape == (1, 12 * FS)
    window = cut_windows(out, WindowOptions())[0][0][0]
    assert window.shape == (N_SAMPLES,)
    truth = 1000.0 * np.sin(2 * np.pi * 5.0 * np.arange(N_SAMPLES) / FS)
    inner = slice(50, N_SAMPLES)  # away from the record's start
    assert np.max(np.abs(window[inner] - truth[inner])) < 1.0  # µV, of a 1,000 µV sine
    assert abs(np.max(np.abs(window[inner])) - 1000.0) < 1.0


def test_windows_long_and_short_records():
    x = np.tile(np.arange(25 * FS, dtype=float), (12, 1))
    first, pad = cut_windows(x, WindowOptions())
    assert len(first) == 1 and pad == 0 and first[0][0, -1] == N_SAMPLES - 1
    every, _ = cut_windows(x, WindowOptions(all_windows=True))
    assert len(every) == 2 and every[1][0, 0] == N_SAMPLES  # the 5-s tail is not a window
    assert len(cut_windows(x, WindowOptions(all_windows=True, max_windows=1))[0]) == 1
    short = x[:, :8 * FS]
    with pytest.raises(RecordRefused, match=r"too short: 4000 of 5000 samples at 500 Hz \(8.000 s < 10 s"):
        cut_windows(short, WindowOptions())
    padded, pad = cut_windows(short, WindowOptions(pad_short=True))
    assert pad == 2 * FS and padded[0].shape == (12, N_SAMPLES)
    np.testing.assert_array_equal(padded[0][:, 8 * FS:], short[:, -1:].repeat(2 * FS, axis=1))


# --------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------
def derived_labels(tmp_path, rows):
    path = tmp_path / "labels.csv"
    labels_frame(rows).to_csv(path, index=False)
    table, refused = cohort_rows(read_labels(path), CohortReport())
    return table.set_index("ecg_id"), refused


def test_labels_are_derived_as_x01_derives_them(tmp_path):
    rows = [("a", "p1", 60, "male", 30, "true"), ("b", "p2", 60, "female", 150, "TRUE"),
            ("c", "p3", 60, "male", 500, "1"), ("d", "p4", 60, "male", 1000, "yes"),
            ("e", "p5", 60, "male", 1, "true"), ("f", "p6", 60, "male", 200, "false"),
            ("g", "p7", 60, "male", 800, "0"), ("h", "p8", 60, "male", 800, ""),
            ("i", "p9", 60, "male", 91.7, "true"), ("j", "p10", 60, "male", "", "")]
    table, refused = derived_labels(tmp_path, rows)
    expected = {  # scd3mo scd6mo scd1 scd2 scd | noncardiac nc1 nc2 | any any1
        "a": [1, 1, 1, 1, 1, 0, 0, 0, 1, 1], "b": [0, 1, 1, 1, 1, 0, 0, 0, 1, 1],
        "c": [0, 0, 0, 1, 1, 0, 0, 0, 1, 0], "d": [0, 0, 0, 0, 1, 0, 0, 0, 1, 0],
        "e": [0] * 10, "f": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], "g": [0, 0, 0, 0, 0, 1, 0, 0, 1, 0],
        "h": [0] * 10, "i": [1, 1, 1, 1, 1, 0, 0, 0, 1, 1],  # 91.7 days -> 91 (whole days)
    }
    for record, values in expected.items():
        assert table.loc[record, list(LABELS)].tolist() == values, record
    assert table.loc["i", "days_to_event"] == 91.0
    assert table.loc["h", "group"] == "control" and table.loc["a", "group"] == "study"
    assert table.loc["f", "cause_of_cardiac_arrest"] != "cardiac event"
    assert refused == {"j": "label row: no days_to_event (days from the ECG to the last "
                            "follow-up without an event)"}
    assert table.loc["b", "female"] == 1.0 and table.loc["a", "female"] == 0.0


def test_ready_made_labels_are_taken_as_they_are(tmp_path):
    path = tmp_path / "labels.csv"
    pd.DataFrame({"record_id": ["a", "b", "c"], "patient_id": ["1", "2", "3"],
                  "age": [50, 60, 70], "sex": ["male", "female", "male"],
                  "scd1": ["1", "0", ""], "scd2": [1, 1, 0]}).to_csv(path, index=False)
    table, refused = cohort_rows(read_labels(path), CohortReport())
    table = table.set_index("ecg_id")
    assert refused == {}
    assert table["scd1"].tolist()[:2] == [1.0, 0.0] and np.isnan(table.loc["c", "scd1"])
    assert table["scd2"].tolist() == [1.0, 1.0, 0.0]
    assert table["scd3mo"].isna().all() and table["any_arrest"].isna().all()


@pytest.mark.parametrize("frame, match", [
    (pd.DataFrame({"record_id": ["a", "a"], "patient_id": ["1", "2"], "age": [1, 2],
                   "sex": ["male"] * 2, "scd1": [0, 1]}), r"record_id 'a' appears in rows \[1, 2\]"),
    (pd.DataFrame({"record_id": ["../x"], "patient_id": ["1"], "age": [1], "sex": ["male"],
                   "scd1": [0]}),
     r"row 1, column record_id: '../x': id that cannot be a file name \(starts with '.'\)"),
    (pd.DataFrame({"record_id": ["a"], "patient_id": [""], "age": [1], "sex": ["male"],
                   "scd1": [0]}), r"row 1 \(record_id 'a'\): patient_id is empty"),
    (pd.DataFrame({"record_id": ["a"], "patient_id": ["1"], "age": [1], "sex": ["male"],
                   "scd1": [0], "cardiac_cause": ["true"], "days_to_event": [3]}), "not both"),
    (pd.DataFrame({"record_id": ["a"], "patient_id": ["1"], "age": [1], "sex": ["male"],
                   "days_to_event": [3]}), r"missing column\(s\) cardiac_cause"),
    (pd.DataFrame({"record_id": ["a"], "patient_id": ["1"], "age": [1],
                   "days_to_event": [3], "cardiac_cause": [""]}), r"missing column\(s\) sex"),
    (pd.DataFrame({"record_id": ["a"], "patient_id": ["1"], "age": [1], "sex": ["male"],
                   "days_to_event": [3], "cardiac_cause": ["maybe"]}),
     r"row 1 \(record_id 'a'\), column cardiac_cause: 'maybe' is not true/false"),
    (pd.DataFrame({"record_id": ["a"], "patient_id": ["1"], "age": [1], "sex": ["male"],
                   "days_to_event": ["soon"], "cardiac_cause": ["1"]}),
     r"column days_to_event: 'soon' is not a number"),
    (pd.DataFrame({"record_id": ["a"], "patient_id": ["1"], "age": [1], "sex": ["male"],
                   "scd1": [2]}), r"column scd1: '2' is not 0/1"),
    (pd.DataFrame({"record_id": ["a", "b"], "patient_id": ["1", "2"], "age": [1, 2],
                   "sex": ["male"] * 2, "days_to_event": ["3", "inf"], "cardiac_cause": [""] * 2}),
     r"row 2 \(record_id 'b'\), column days_to_event: 'inf' is not a finite number"),
    (pd.DataFrame({"record_id": ["a"], "patient_id": ["1"], "age": [1], "sex": ["male"],
                   "days_to_event": [3], "cardiac_cause": [""], "qt_interval": ["-Infinity"]}),
     r"column qt_interval: '-Infinity' is not a finite number"),
    (pd.DataFrame(columns=["record_id", "patient_id", "age", "sex", "scd1"]),
     r"labels.csv: no data rows"),
    (pd.DataFrame({"record_id;patient_id;age;sex;scd1": ["a;1;1;male;0"]}),
     r"missing column\(s\) record_id, patient_id, age, sex \(found: "
     r"'record_id;patient_id;age;sex;scd1'; comma-separated\)"),
])
def test_bad_labels_tables_are_refused_by_name(tmp_path, frame, match):
    path = tmp_path / "labels.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(PipelineError, match=match):
        cohort_rows(read_labels(path), CohortReport())


def test_ids_that_pandas_would_read_as_missing_are_ids(tmp_path):
    """"NA", "nan", "None", "null" are usable record and patient ids, not empty cells;
    in number columns they mean missing; in cardiac_cause, where an empty cell means a
    control, they are refused (an arrest of unknown cause must not become a control)."""
    path = tmp_path / "labels.csv"
    path.write_text("record_id,patient_id,age,sex,days_to_event,cardiac_cause\n"
                    "NA,None,NA,male,30,true\nnan,null,55,female,NA,\nNULL,x,60,male,10,\n")
    table = read_labels(path)
    assert table["record_id"].tolist() == ["NA", "nan", "NULL"]
    assert table["patient_id"].tolist() == ["None", "null", "x"]
    rows, refused = cohort_rows(table, CohortReport())
    assert rows["ecg_id"].tolist() == ["NA", "NULL"]
    assert rows["patient_ngsci_id"].tolist() == ["None", "x"]
    assert np.isnan(rows["age"].iloc[0]) and rows["scd1"].tolist() == [1.0, 0.0]
    assert rows["group"].tolist() == ["study", "control"]
    assert set(refused) == {"nan"}  # a control without days_to_event
    for unknown in ("NA", "N/A", "#N/A", "NULL"):
        path.write_text("record_id,patient_id,age,sex,days_to_event,cardiac_cause\n"
                        f"a,p,50,male,30,true\nb,q,60,male,30,{unknown}\n")
        with pytest.raises(PipelineError, match=rf"row 2 \(record_id 'b'\), column "
                           rf"cardiac_cause: '{unknown}' is not true/false .*empty for a "
                           "control"):
            cohort_rows(read_labels(path), CohortReport())
    path.write_text("record_id,patient_id,age,sex,days_to_event,cardiac_cause\n"
                    "a,,50,male,3,\n")
    with pytest.raises(PipelineError, match=r"row 1 \(record_id 'a'\): patient_id is empty"):
        read_labels(path)



def test_real_world_labels_tables_keep_every_value_in_its_column(tmp_path):
    """Spreadsheet habits: rows ending in a stray comma (pandas would take the first column as
    the index and shift every value one column left), fractional ages, M/F, a Feather
    table's boolean labels; and columns the import does not read are named, not dropped."""
    path = tmp_path / "labels.csv"
    path.write_text("record_id,patient_id,age,sex,scd1,QRS_duration\n"
                    "r0,r0,63.47,M,1,128,\nr1,r1,71.9,F,0,90,\nr2,r2,55,female,0,100,\n")
    report = CohortReport()
    rows, _ = cohort_rows(read_labels(path), report)
    assert rows["ecg_id"].tolist() == ["r0", "r1", "r2"]
    assert rows["patient_ngsci_id"].tolist() == ["r0", "r1", "r2"]
    assert rows["age"].tolist() == [63.0, 71.0, 55.0]
    assert rows["female"].tolist() == [0.0, 1.0, 1.0]
    assert rows["scd1"].tolist() == [1.0, 0.0, 0.0]
    notes = " | ".join(message for _, message in report.notes)
    assert "age with a fraction" in notes
    assert "column(s) not used" in notes and "'QRS_duration' 1" in notes
    table = pd.DataFrame({"record_id": ["a", "b"], "patient_id": ["p", "q"], "age": [60.5, 70.0],
                          "sex": ["f", "m"], "scd1": [True, False]})
    table.to_feather(tmp_path / "labels.feather")
    rows, _ = cohort_rows(read_labels(tmp_path / "labels.feather"), CohortReport())
    assert rows["scd1"].tolist() == [1.0, 0.0] and rows["age"].tolist() == [60.0, 70.0]
    assert rows["female"].tolist() == [1.0, 0.0]
    # a table that is not comma-separated: the columns found are the file's, nothing added
    path.write_text("record_id;patient_id;age;sex;scd1\nr0;r0;60;male;1\n")
    with pytest.raises(PipelineError, match=r"found: 'record_id;patient_id;age;sex;scd1'; "):
        read_labels(path, optional=("age", "sex"))


def test_feather_labels_read_like_csv(tmp_path):
    frame = labels_frame([("a", "p1", 70, "female", 40, True), ("b", "p2", 55.0, "male", None, None)])
    frame.to_csv(tmp_path / "l.csv", index=False)
    frame.astype({"days_to_event": float}).to_feather(tmp_path / "l.feather")
    from_csv, _ = cohort_rows(read_labels(tmp_path / "l.csv"), CohortReport())
    from_feather, _ = cohort_rows(read_labels(tmp_path / "l.feather"), CohortReport())
    pd.testing.assert_frame_equal(from_csv, from_feather)
    assert from_csv["scd3mo"].tolist() == [1.0] and from_csv["age"].tolist() == [70.0]
    cut = tmp_path / "cut.feather"
    cut.write_bytes((tmp_path / "l.feather").read_bytes()[:300])
    with pytest.raises(PipelineError, match=rf"^{re.escape(str(cut))}: cannot read the labels "
                                            r"table \(truncated: 300 bytes and no end marker\)$"):
        read_labels(cut)


# --------------------------------------------------------------------------------------
# A real-format WFDB folder, end to end through the import
# --------------------------------------------------------------------------------------
def test_wfdb_folder_imports_sample_by_sample(tmp_path):
    rec = tmp_path / "records"
    (rec / "sub").mkdir(parents=True)
    upper = {lead: lead.upper() for lead in LEADS}
    lower = {lead: lead.lower() for lead in LEADS}
    t = lambda fs, seconds: np.arange(int(seconds * fs)) / fs  # noqa: E731
    shuffled = list(np.random.default_rng(1).permutation(LEADS))
    # 250 Hz, 12 s, all 12 leads shuffled, upper-case names, mV
    write_wfdb(rec, "a250", 250, channels(known_ecg(t(250, 12)), upper, shuffled))
    # 1,000 Hz, exactly 10 s, 15 leads (12 + Frank), lower-case names, µV, in a subfolder
    ecg = known_ecg(t(1000, 10))
    frank = {name: ecg[0] * (k + 1) for k, name in enumerate(FRANK)}
    write_wfdb(rec / "sub", "b1000", 1000, {**channels(ecg, lower, LEADS[::-1]), **frank}, "uV")
    # 500 Hz, 11 s, only I, II and the chest leads: the four limb leads are derived
    write_wfdb(rec, "c_limb", 500, channels(known_ecg(t(500, 11)), lower, RECORDED[::-1]))
    nan = known_ecg(t(500, 12))
    nan[LEAD_INDEX["V2"], 100:110] = np.nan
    write_wfdb(rec, "d_nan", 500, channels(nan, {}, LEADS))
    nan = known_ecg(t(500, 14))
    nan[LEAD_INDEX["V2"], 12 * FS:] = np.nan
    write_wfdb(rec, "late_nan", 500, channels(nan, {}, LEADS))
    write_wfdb(rec, "e_short", 500, channels(known_ecg(t(500, 8)), {}, LEADS))
    write_wfdb(rec, "f_nov4", 500, channels(known_ecg(t(500, 12)), {}, [l for l in LEADS if l != "V4"]))
    write_wfdb(rec, "g_unit", 500, channels(known_ecg(t(500, 12)), {}, LEADS), unit="mmHg")
    write_wfdb(rec, "h_nolabel", 500, channels(known_ecg(t(500, 12)), {}, LEADS))
    gain = known_ecg(t(500, 12))
    gain[LEAD_INDEX["aVL"]] *= 4.88  # stored aVL off the identities: imported, but reported
    write_wfdb(rec, "i_gain", 500, channels(gain, {}, LEADS))
    # values in µV under a header saying mV: imported 1,000 times too large, and reported
    write_wfdb(rec, "j_units", 500, channels(known_ecg(t(500, 10)) * 1000, {}, LEADS))
    ids = ["a250", "b1000", "c_limb", "d_nan", "late_nan", "e_short", "f_nov4", "g_unit", "i_gain",
           "j_units", "z_orphan"]
    labels_frame([(r, f"p{k}", 60, "female", 30 + k, "true" if k % 2 else "")
                  for k, r in enumerate(ids)]).to_csv(tmp_path / "labels.csv", index=False)

    code, out, err = run_main(X00, "--input", "records", "--labels", "labels.csv",
                              "--n-jobs", "1", cwd=tmp_path)
    assert code == 0, err
    log = pd.read_csv(tmp_path / "x00_import_log.csv", dtype={"derived_leads": str}).set_index("record_id")
    status = log["status"].to_dict()
    assert status == {"a250": "imported", "b1000": "imported", "c_limb": "imported",
                      "d_nan": "refused", "e_short": "refused", "f_nov4": "refused",
                      "g_unit": "refused", "h_nolabel": "no_label", "i_gain": "imported",
                      "late_nan": "imported", "j_units": "imported", "z_orphan": "no_record"}
    # 11 s read at 500 Hz: the first 10 s and a 1-s margin for the resampling filter
    assert log.loc["d_nan", "reason"] == "NaN or infinite samples in lead V2: 10 of the 5500 read"
    assert log.loc["a250", "seconds"] == 12.0 and log.loc["b1000", "seconds"] == 10.0
    assert log.loc["late_nan", "status"] == "imported"  # NaNs after the imported 10 s
    assert log.loc["e_short", "reason"].startswith("too short: 4000 of 5000 samples")
    assert log.loc["f_nov4", "reason"].startswith("missing lead(s) V4 (found: I, II, III")
    assert log.loc["g_unit", "reason"].startswith("unknown unit 'mmHg' of lead")
    assert log.loc["c_limb", "derived_leads"] == "III;aVR;aVL;aVF"
    assert log.loc["b1000", "ignored_leads"] == "vx;vy;vz" and log.loc["b1000", "units"] == "uV"
    assert log.loc["b1000", "source"] == "sub/b1000.hea"
    assert "no_record 1" in out and "III 1" in out
    assert log.loc["i_gain", "identity_residual"] > 0.5 > 1e-3 > log.loc["a250", "identity_residual"]
    assert "lead mix-up or gain fault?): 1, e.g. i_gain" in out
    assert "(wrong units?): 1, e.g. j_units" in out
    assert 1.0 < log.loc["a250", "lead_II_range_mv"] < 3.0

    cov = pd.read_feather(tmp_path / "covariate_df.feather")
    assert sorted(cov["studyId"]) == ["a250", "b1000", "c_limb", "i_gain", "j_units", "late_nan"]
    assert (cov["scaling_factor"] == 1000.0).all()
    truth = known_ecg(np.arange(N_SAMPLES) / FS)
    for record, fs, inner in [("a250", 250, slice(50, N_SAMPLES)),
                              ("b1000", 1000, slice(50, N_SAMPLES - 50)),
                              ("c_limb", 500, slice(0, N_SAMPLES))]:
        got = np.load(tmp_path / "10_sec_ecgs" / f"{record}.npy")
        assert got.dtype == np.float32 and got.shape == (12, N_SAMPLES)
        # 16-bit storage error, plus < 1 µV from resampling (~2,000 µV peak-to-peak signals)
        tol = 4 * quantum(truth) + (1.0 if fs != FS else 0.0) + 1e-3
        err_uv = np.abs(got[:, inner] - truth[:, inner]).max(axis=1)
        assert err_uv.max() < tol, (record, dict(zip(LEADS, err_uv.round(3))))
    assert not (tmp_path / "10_sec_ecgs" / "d_nan.npy").exists()


def _edit_header(path, edit):
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")


def test_wfdb_headers_without_length_or_with_a_micro_sign(tmp_path):
    """WFDB allows a header without the signal length (the file gives it); wfdb drops
    non-ASCII header bytes, so "µV" must not be read as "V" (10^6 too large)."""
    ecg = known_ecg(np.arange(12 * FS) / FS)
    write_wfdb(tmp_path, "nolen", 500, channels(ecg, {}, LEADS))
    _edit_header(tmp_path / "nolen.hea", lambda l: [" ".join(l[0].split()[:3])] + l[1:])
    raw = read_wfdb(tmp_path / "nolen.hea", seconds=11.0)
    assert raw.total_samples == 12 * FS and raw.signal.shape == (12, 11 * FS)
    np.testing.assert_allclose(raw.signal[0] * 1000, ecg[0, :11 * FS], atol=4 * quantum(ecg))

    write_wfdb(tmp_path, "micro", 500, channels(ecg, {}, LEADS), unit="uV")
    _edit_header(tmp_path / "micro.hea", lambda l: [l[0]] + [x.replace("/uV", "/\u00b5V")
                                                              for x in l[1:]])
    raw = read_wfdb(tmp_path / "micro.hea", seconds=11.0)
    assert raw.units == ["\u00b5V"] * 12
    mapped = to_pipeline_leads(raw)
    np.testing.assert_allclose(mapped.ecg_uv[0], ecg[0, :11 * FS], atol=4 * quantum(ecg))
    # a unit of other non-ASCII characters is refused by its full name, not read as "V"
    _edit_header(tmp_path / "micro.hea", lambda l: [l[0]] + [x.replace("/\u00b5V", "/\u00e5V")
                                                              for x in l[1:]])
    with pytest.raises(RecordRefused, match="unknown unit '\u00e5V' of lead I"):
        to_pipeline_leads(read_wfdb(tmp_path / "micro.hea", seconds=11.0))


def test_multi_segment_wfdb_records_get_the_segments_units_and_gains(tmp_path):
    """A multi-segment record describes its channels in its segment headers: a "µV" there
    must not be read as "V", and a gain of 0 there is as uncalibrated as in a single header."""
    ecg = known_ecg(np.arange(12 * FS) / FS)
    half = 6 * FS
    for k, part in enumerate((ecg[:, :half], ecg[:, half:]), 1):
        write_wfdb(tmp_path, f"rec_{k}", 500, channels(part, {}, LEADS), unit="uV")
        _edit_header(tmp_path / f"rec_{k}.hea",
                     lambda l: [l[0]] + [x.replace("/uV", "/\u00b5V") for x in l[1:]])
    (tmp_path / "rec.hea").write_text(f"rec/2 12 500 {12 * FS}\nrec_1 {half}\nrec_2 {half}\n")
    assert discover_records(tmp_path, "wfdb") == {"rec": tmp_path / "rec.hea"}  # not its parts
    raw = read_wfdb(tmp_path / "rec.hea", seconds=11.0)
    assert raw.units == ["\u00b5V"] * 12 and raw.uncalibrated == ()
    mapped = to_pipeline_leads(raw)
    np.testing.assert_allclose(mapped.ecg_uv, ecg[:, :11 * FS], atol=4 * quantum(ecg))

    def edit_channel(lines, channel, old, new):
        fields = lines[1 + channel].split()
        fields[2] = fields[2].replace(old, new)
        lines[1 + channel] = " ".join(fields)
        return lines

    gain = (tmp_path / "rec_2.hea").read_text(encoding="utf-8").splitlines()[
        1 + LEAD_INDEX["V2"]].split()[2].split("(")[0]
    _edit_header(tmp_path / "rec_2.hea",
                 lambda l: edit_channel(l, LEAD_INDEX["V2"], gain + "(", "0("))
    assert read_wfdb(tmp_path / "rec.hea", seconds=11.0).uncalibrated == (LEAD_INDEX["V2"],)
    _edit_header(tmp_path / "rec_2.hea",
                 lambda l: edit_channel(l, LEAD_INDEX["aVL"], "/\u00b5V", "/mV"))
    with pytest.raises(RecordRefused, match=r"^segments of this multi-segment record give "
                                            r"channel aVL in different units \(mV, \u00b5V\)$"):
        read_wfdb(tmp_path / "rec.hea", seconds=11.0)


def test_a_semicolon_csv_record_is_refused_in_one_line(tmp_path):
    ecg = known_ecg(np.arange(11 * FS) / FS) / 1000
    frame = pd.DataFrame(ecg.T, columns=list(LEADS))
    frame.to_csv(tmp_path / "semi.csv", index=False, sep=";", decimal=",")
    options = SignalOptions(format="csv", fs=500.0)
    row = import_record(("semi", str(tmp_path / "semi.csv"), str(tmp_path)), options)
    assert row["status"] == "refused" and "\n" not in row["reason"]
    assert row["reason"].startswith("unreadable CSV (comma-separated, '.' decimals expected): "
                                    "ParserError: Error tokenizing data. C error: Expected 1 "
                                    "fields in line 2, saw 13")


def test_csv_records_with_a_text_channel_that_is_no_lead_are_read(tmp_path):
    """A time-stamp or note column, as pandas' to_csv or a recorder writes it, is ignored like
    any other channel that is no lead; text in a lead is still refused."""
    ecg = known_ecg(np.arange(11 * FS) / FS) / 1000
    frame = pd.DataFrame(ecg.T, columns=list(LEADS))
    frame.insert(0, "time", pd.date_range("2024-01-01", periods=len(frame), freq="2ms")
                 .astype(str))
    frame["note"] = ""
    frame.loc[100, "note"] = "artifact"
    frame.to_csv(tmp_path / "stamped.csv", index=False)
    options = SignalOptions(format="csv", fs=500.0)
    row = import_record(("stamped", str(tmp_path / "stamped.csv"), str(tmp_path)), options)
    assert row["status"] == "imported", row["reason"]
    np.testing.assert_allclose(np.load(tmp_path / "stamped.npy"), ecg[:, :N_SAMPLES] * 1000,
                               atol=0.01)
    frame = frame.astype({"V3": object})
    frame.loc[7, "V3"] = "x"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    row = import_record(("bad", str(tmp_path / "bad.csv"), str(tmp_path)), options)
    assert row["status"] == "refused" and "non-numeric value 'x' in column V3" in row["reason"]


def test_npy_and_csv_folders(tmp_path):
    t = np.arange(10 * 1000) / 1000
    ecg = known_ecg(t)
    order = ["V6", "avl", "I", "ii", "V1", "V2", "V3", "V4", "V5"]  # aVL given, III/aVR/aVF derived
    stored = np.stack([ecg[LEAD_INDEX[canonical_lead(n)]] for n in order]) / 1000  # mV
    (tmp_path / "npy").mkdir()
    np.save(tmp_path / "npy" / "r1.npy", stored.T.astype(np.float64))  # (samples, leads)
    (tmp_path / "csv").mkdir()
    pd.DataFrame(stored.T * 1000, columns=order).to_csv(tmp_path / "csv" / "r1.csv", index=False)
    labels_frame([("r1", "p1", 50, "male", 10, "")]).to_csv(tmp_path / "labels.csv", index=False)
    truth = known_ecg(np.arange(N_SAMPLES) / FS)
    for fmt, unit, leads in (("npy", "mV", order), ("csv", "uV", order), ("csv", "uV", [])):
        ws = tmp_path / f"ws_{fmt}_{len(leads)}"
        ws.mkdir()
        lead_option = ["--leads", ",".join(leads)] if leads else []  # CSV: names from its header
        code, _, err = run_main(X00, "--input", str(tmp_path / fmt), "--format", fmt, "--fs", "1000",
                                *lead_option, "--units", unit,
                                "--labels", str(tmp_path / "labels.csv"), "--n-jobs", "1", cwd=ws)
        assert code == 0, err
        got = np.load(ws / "10_sec_ecgs" / "r1.npy")
        assert np.abs(got[:, 50:-50] - truth[:, 50:-50]).max() < 1.0, fmt
        log = pd.read_csv(ws / "x00_import_log.csv")
        assert log["derived_leads"].tolist() == ["III;aVR;aVF"]
    code, _, err = run_main(X00, "--input", str(tmp_path / "npy"), "--format", "npy",
                            "--labels", str(tmp_path / "labels.csv"), cwd=tmp_path)
    assert code == 2 and "--fs HZ" in err
    code, _, err = run_main(X00, "--input", str(tmp_path / "npy"), "--units", "uV",
                            "--labels", str(tmp_path / "labels.csv"), cwd=tmp_path)
    assert code == 2 and "--units are for --format npy/csv" in err
    code, _, err = run_main(X00, "--input", str(tmp_path / "npy"), "--format", "npy", "--fs", "500",
                            "--leads", "I,II,V1,V2,V3,V4,V5,V7", "--labels",
                            str(tmp_path / "labels.csv"), cwd=tmp_path)
    assert code == 2 and "no V6 (every record needs I, II and V1-V6)" in err


def test_windows_stay_with_their_patient(tmp_path):
    rec = tmp_path / "records"
    rec.mkdir()
    write_wfdb(rec, "long", 500, channels(known_ecg(np.arange(25 * FS) / FS), {}, LEADS))
    write_wfdb(rec, "short", 500, channels(known_ecg(np.arange(7 * FS) / FS), {}, LEADS))
    labels_frame([("long", "p1", 50, "male", 10, "true"), ("short", "p2", 50, "male", 10, "")]
                 ).to_csv(tmp_path / "labels.csv", index=False)
    code, out, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--windows",
                              "--pad-short", "--n-jobs", "1", cwd=tmp_path)
    assert code == 0, err
    cov = pd.read_feather(tmp_path / "covariate_df.feather").set_index("studyId")
    assert list(cov.index) == ["long_w0", "long_w1", "short_w0"]
    assert cov.loc[["long_w0", "long_w1"], "ptId"].tolist() == ["p1", "p1"]
    assert cov.loc[["long_w0", "long_w1"], "scd1"].tolist() == [1.0, 1.0]
    w1 = np.load(tmp_path / "10_sec_ecgs" / "long_w1.npy")
    truth = known_ecg(np.arange(N_SAMPLES, 2 * N_SAMPLES) / FS)
    assert np.abs(w1 - truth).max() < 4 * quantum(truth) + 1e-3
    log = pd.read_csv(tmp_path / "x00_import_log.csv").set_index("record_id")
    assert log.loc["long", "n_windows"] == 2 and log.loc["short", "padded_samples"] == 3 * FS
    assert "records padded to 10 s: 1" in out


def test_a_window_id_longer_than_a_file_name_may_be_refuses_its_record(tmp_path):
    """A 198-character record id is a usable id, but with --windows its "_w0" made a
    201-byte studyId that x04 then refused for the whole cohort; now the record is refused
    in the log, naming the window id, and the others are imported."""
    rec = tmp_path / "records"
    rec.mkdir()
    long_id = "r" * 198
    write_wfdb(rec, long_id, 500, channels(known_ecg(np.arange(10 * FS) / FS), {}, LEADS))
    write_wfdb(rec, "ok", 500, channels(known_ecg(np.arange(10 * FS) / FS), {}, LEADS))
    labels_frame([(long_id, "p1", 50, "male", 10, ""), ("ok", "p2", 50, "male", 10, "")]
                 ).to_csv(tmp_path / "labels.csv", index=False)
    code, _, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--windows",
                            "--n-jobs", "1", cwd=tmp_path)
    assert code == 0, err
    log = pd.read_csv(tmp_path / "x00_import_log.csv").set_index("record_id")
    assert log.loc[long_id, "status"] == "refused"
    assert log.loc[long_id, "reason"] == (f"window id {long_id + '_w0'!r} cannot be a file name "
                                          "(201 UTF-8 bytes in 201 characters, more than the "
                                          "200 a file name may take); shorten the record id")
    cov = pd.read_feather(tmp_path / "covariate_df.feather")
    assert cov["studyId"].tolist() == ["ok_w0"]
    assert sorted(p.name for p in (tmp_path / "10_sec_ecgs").iterdir()) == ["ok_w0.npy"]


def test_import_without_any_usable_record_is_an_error_and_keeps_the_log(tmp_path):
    rec = tmp_path / "records"
    rec.mkdir()
    write_wfdb(rec, "r", 500, channels(known_ecg(np.arange(4 * FS) / FS), {}, LEADS))
    labels_frame([("r", "p1", 50, "male", 10, "")]).to_csv(tmp_path / "labels.csv", index=False)
    code, _, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--n-jobs", "1",
                            cwd=tmp_path)
    assert code == 2 and "no record was imported" in err
    assert not (tmp_path / "10_sec_ecgs").exists() and not (tmp_path / "covariate_df.feather").exists()
    assert pd.read_csv(tmp_path / "x00_import_log.csv")["status"].tolist() == ["refused"]


def test_import_whose_label_rows_are_all_refused_logs_each_row(tmp_path):
    rec = tmp_path / "records"
    rec.mkdir()
    for name in ("r1", "r2"):
        write_wfdb(rec, name, 500, channels(known_ecg(np.arange(11 * FS) / FS), {}, LEADS))
    labels_frame([("r1", "p1", 50, "male", None, ""), ("r2", "p2", 60, "male", None, "true")]
                 ).to_csv(tmp_path / "labels.csv", index=False)
    code, _, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--n-jobs", "1",
                            cwd=tmp_path)
    assert code == 2 and "no record was imported" in err and "Traceback" not in err
    log = pd.read_csv(tmp_path / "x00_import_log.csv")
    assert log["status"].tolist() == ["refused", "refused"]
    assert log["reason"].tolist() == ["label row: no days_to_event (days from the ECG to the "
                                      "last follow-up without an event)",
                                      "label row: event without days_to_event"]
    assert not (tmp_path / "10_sec_ecgs").exists()


X03 = "00_Data_Preprocessing/x03_process_10sec_ecg.py"


def one_record_workspace(tmp_path, fmt="npy"):
    """``records/r1`` (11 s at 500 Hz) and ``labels.csv``; returns the import's options."""
    rec = tmp_path / "records"
    rec.mkdir()
    ecg = known_ecg(np.arange(11 * FS) / FS)
    if fmt == "wfdb":
        write_wfdb(rec, "r1", 500, channels(ecg, {}, LEADS))
        options = []
    else:
        np.save(rec / "r1.npy", ecg)
        options = ["--format", "npy", "--fs", "500", "--leads", ",".join(LEADS), "--units", "uV"]
    labels_frame([("r1", "p1", 50, "male", 10, "")]).to_csv(tmp_path / "labels.csv", index=False)
    return ["--input", "records", "--labels", "labels.csv", "--n-jobs", "1", *options]


@pytest.mark.parametrize("fmt", ["wfdb", "npy"])
def test_x03_after_an_import_stops_and_keeps_the_imported_ecgs(tmp_path, fmt):
    code, _, err = run_main(X00, *one_record_workspace(tmp_path, fmt), cwd=tmp_path)
    assert code == 0, err
    before = np.load(tmp_path / "10_sec_ecgs" / "r1.npy")
    code, _, err = run_main(X03, "--n-jobs", "1", cwd=tmp_path)
    assert code == 2
    suffix = ".hea" if fmt == "wfdb" else ".npy"
    assert f"file_path 'records/r1{suffix}'" in err and "run x04 next, not x03" in err
    np.testing.assert_array_equal(np.load(tmp_path / "10_sec_ecgs" / "r1.npy"), before)
    assert not (tmp_path / "x03_gain_report.csv").exists()
    if fmt == "npy":  # run from another folder, file_path 'records/r1.npy' is not found there
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        code, _, err = run_main(X03, "--cohort", str(tmp_path / "covariate_df.feather"),
                                "--out-dir", str(tmp_path / "10_sec_ecgs"), "--n-jobs", "1",
                                cwd=elsewhere)
        assert code == 2
        assert "all 1 ECG failed (first: 'r1': missing file: records/r1.npy)" in err
        np.testing.assert_array_equal(np.load(tmp_path / "10_sec_ecgs" / "r1.npy"), before)
        assert [p.name for p in elsewhere.iterdir()] == ["x03_gain_report.failed.csv"]


# --------------------------------------------------------------------------------------
# The imported cohort runs through the pipeline unchanged
# --------------------------------------------------------------------------------------
N_PATIENTS = 40


def simulated_wfdb_cohort(root, n_patients=N_PATIENTS, seed=3) -> pd.DataFrame:
    """Simulated ECGs at 250 / 1,000 Hz with lead names in other orders and cases; patient 0
    has 15 leads, patient 1 only I, II and the chest leads; every third patient an SCD case.
    The labels table gives the simulated QRS and QT (not RR). Returns the simulated RR, QRS and
    QT (ms)."""
    rng = np.random.default_rng(seed)
    rec = root / "records"
    rec.mkdir()
    rows, truth = [], []
    for k in range(n_patients):
        params = sample_ecg_params(rng)
        ecg, rpeaks = simulate_ecg(params, rng, n_samples=6000, return_rpeaks=True)  # 12 s, µV
        rr = np.median(np.diff(rpeaks[rpeaks < N_SAMPLES])) * 1000.0 / FS  # in the first 10 s
        truth.append({"studyId": f"rec{k:03d}", "rr": rr, "qrs": round(params.qrs_ms),
                      "qt": round(params.qt_ms)})
        fs = (250, 1000)[k % 2]
        stored = resample_poly(ecg, fs, FS, axis=1)
        order = list(rng.permutation(RECORDED if k == 1 else LEADS))
        names = {lead: (lead.lower() if k % 3 else lead.upper()) for lead in LEADS}
        leads = channels(stored, names, order)
        if k == 0:
            leads.update({name: stored[0] * 0.5 for name in FRANK})
        write_wfdb(rec, f"rec{k:03d}", fs, leads, unit=("mV", "uV")[k % 2])
        case = k % 3 == 0
        rows.append((f"rec{k:03d}", f"pt{k:03d}", int(rng.integers(35, 79)),
                     ("male", "female")[k % 2], int(rng.integers(20, 700)), "true" if case else ""))
    truth = pd.DataFrame(truth)
    labels_frame(rows).assign(qrs_duration=truth["qrs"], qt_interval=truth["qt"]).to_csv(
        root / "labels.csv", index=False)
    return truth.set_index("studyId")


def test_imported_cohort_runs_through_the_whole_pipeline(tmp_path, script_runner):
    """x04-x08, both models, prediction, evaluation and morphing, unchanged (tiny settings)."""
    truth = simulated_wfdb_cohort(tmp_path)
    proc = script_runner(X00, "--input", "records", "--labels", "labels.csv", cwd=tmp_path)
    assert f"imported {N_PATIENTS}," in proc.stdout
    cov = pd.read_feather(tmp_path / "covariate_df.feather").set_index("studyId")
    assert len(cov) == N_PATIENTS and cov["include_modelling"].all()
    assert int(cov["scd"].sum()) == len(range(0, N_PATIENTS, 3))
    # RR measured by the import (x04's R-peak detector), QTc from the table's QT and that RR
    rr_error = (cov["rrInterval"] - truth.loc[cov.index, "rr"]).abs()
    assert cov["rrInterval"].notna().sum() >= N_PATIENTS - 2 and rr_error.median() <= 2.0
    np.testing.assert_allclose(cov["heartRate"], 60000.0 / cov["rrInterval"])
    np.testing.assert_allclose(cov["qtcb"], cov["qtInterval"] / np.sqrt(cov["rrInterval"] / 1000))
    np.testing.assert_allclose(cov["qtcf"], cov["qtInterval"] / np.cbrt(cov["rrInterval"] / 1000))
    assert (cov["qrsDuration"] == truth.loc[cov.index, "qrs"]).all()

    def ok(script, *args):
        code, out, err = run_main(script, *args, cwd=tmp_path)
        assert code == 0, f"{script}: {err}"
        return out

    ok(X04, "--n-jobs", "1")
    seg = pd.read_csv(tmp_path / "ecg_beats" / "segmentation_log.csv").set_index("studyId")
    # rec000 has 15 leads, rec001 only I, II and the chest leads; a simulated ECG stored at
    # 250 Hz may lose its last marginal beats to x04's amplitude filter, as at 500 Hz.
    assert (seg.loc[["rec000", "rec001"], "n_kept"] >= 3).all()
    assert (seg["status"] == "ok").sum() >= N_PATIENTS - 2
    assert len(list((tmp_path / "ecg_beats").glob("*/*.npy"))) == seg["n_kept"].sum() > 300
    ok(X05, "--n-jobs", "1")
    assert len(list((tmp_path / "ecg_beats_morphing").glob("*/*.npy"))) > 100
    ok(X06, "--n-jobs", "1")
    cov = pd.read_feather(tmp_path / "covariate_df.feather").set_index("studyId")
    assert cov["aVL_rs_diff"].notna().sum() >= N_PATIENTS - 2
    assert cov.loc[["rec000", "rec001"], "aVL_rs_diff"].notna().all()
    ok(X07)
    regressions = pd.read_csv(tmp_path / "x07_regression_results.csv")
    assert (regressions["status"] == "ok").any()
    ok(X08, "--study-id", "rec001", "--output", "rec001.png")
    assert (tmp_path / "rec001.png").stat().st_size > 10_000

    ok(TRAIN, *TINY, "--length", "1000", "--max-epochs", "1", "--device", "cpu")
    ok(TRAIN_BEATS, *TINY, "--max-epochs", "1", "--device", "cpu")
    ok(PREDICT, "--device", "cpu")
    pred = pd.read_feather(tmp_path / "predictions" / "ntuh_scd_model_demo_1" / "predictions.feather")
    assert len(pred) > 0 and pred["scd1_hat"].notna().all()
    assert set(pred["studyId"]) <= set(cov.index)
    ok(EVALUATE)
    assert (tmp_path / "predictions" / "ntuh_scd_model_demo_1" / "metrics.csv").exists()
    ok(GENERATOR, "--profile", "demo", "--epochs", "1", "--batch-size", "8", "--device", "cpu")
    out = ok(MORPH, "--n-beats", "4", "--max-steps", "5", "--batch-size", "4", "--max-rec-mse", "1.0",
             "--device", "cpu")
    assert "morphed 4 beats (0 failed)" in out
    assert len(pd.read_feather(tmp_path / "morphing_outputs" / "morphs.feather")) > 0


def test_imported_table_has_the_columns_and_types_of_x02(tmp_path, pipeline):
    from scdecg.features import FEATURE_COLUMNS

    reference = pd.read_feather(pipeline.ensure("x02") / "covariate_df.feather")
    # the shared study may be further along: x06 adds its feature columns to the table
    reference = reference.drop(columns=[c for c in FEATURE_COLUMNS if c in reference.columns])
    rec = tmp_path / "records"
    rec.mkdir()
    write_wfdb(rec, "r", 500, channels(known_ecg(np.arange(10 * FS) / FS), {}, LEADS))
    labels_frame([("r", "p1", 50, "male", 10, "true")]).to_csv(tmp_path / "labels.csv", index=False)
    code, _, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--n-jobs", "1",
                            cwd=tmp_path)
    assert code == 0, err
    imported = pd.read_feather(tmp_path / "covariate_df.feather")
    assert list(imported.columns) == list(reference.columns)
    different = {c: (str(imported[c].dtype), str(reference[c].dtype)) for c in reference.columns
                 if imported[c].dtype != reference[c].dtype}
    assert different == {}


def test_one_ecg_per_patient_as_x01_among_the_records_that_import(tmp_path):
    rec = tmp_path / "records"
    rec.mkdir()
    ten = channels(known_ecg(np.arange(10 * FS) / FS), {}, LEADS)
    for name in ("day1", "day30", "day50", "day70"):
        write_wfdb(rec, name, 500, ten)
    write_wfdb(rec, "day20", 500, channels(known_ecg(np.arange(5 * FS) / FS), {}, LEADS))
    labels_frame([(name, "p1", 50, "male", int(name[3:]), "") for name in
                  ("day1", "day20", "day30", "day50")] + [("day70", "p2", 50, "male", 70, "")]
                 ).to_csv(tmp_path / "labels.csv", index=False)
    code, _, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--n-jobs", "1",
                            cwd=tmp_path)
    assert code == 0, err
    status = pd.read_csv(tmp_path / "x00_import_log.csv").set_index("record_id")["status"]
    # day20 would win (smallest days >= 2) but is too short; day1 is under 2 days
    assert status.to_dict() == {"day1": "not_chosen", "day20": "refused", "day30": "imported",
                                "day50": "not_chosen", "day70": "imported"}
    assert sorted(p.name for p in (tmp_path / "10_sec_ecgs").iterdir()) == ["day30.npy", "day70.npy"]
    code, _, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--n-jobs", "1",
                            "--no-one-per-patient", cwd=tmp_path)
    assert code == 0, err
    assert len(pd.read_feather(tmp_path / "covariate_df.feather")) == 4


def records_in_two_folders(tmp_path, first: str, second: str) -> Path:
    """records/a/<first> and records/b/<second>: the same 10-s WFDB record twice."""
    rec = tmp_path / "records"
    (rec / "a").mkdir(parents=True)
    (rec / "b").mkdir()
    ten = channels(known_ecg(np.arange(10 * FS) / FS), {}, LEADS)
    write_wfdb(rec / "a", first, 500, ten)
    write_wfdb(rec / "b", second, 500, ten)
    return rec


def test_a_record_id_found_twice_is_named(tmp_path):
    records_in_two_folders(tmp_path, "r1", "r1")
    labels_frame([("r1", "p1", 50, "male", 10, "")]).to_csv(tmp_path / "labels.csv", index=False)
    code, _, err = run_main(X00, "--input", "records", "--labels", "labels.csv", cwd=tmp_path)
    assert code == 2 and "record id 'r1' found twice" in err and "a/r1.hea" in err


def test_record_ids_differing_only_in_case_are_named(tmp_path):
    """R1.npy and r1.npy, or café composed and decomposed, are one file on macOS and
    Windows: one ECG would silently replace the other in 10_sec_ecgs/."""
    rec = records_in_two_folders(tmp_path, "r1", "R1")
    with pytest.raises(PipelineError, match=r"record ids 'r1' and 'R1' differ only in case "
                                            r"or Unicode form: .*a/r1.hea and .*b/R1.hea"):
        discover_records(rec, "wfdb")
    rec = records_in_two_folders(tmp_path / "u", "caf\u00e9", "cafe\u0301")
    with pytest.raises(PipelineError, match="differ only in case or Unicode form"):
        discover_records(rec, "wfdb")


def test_npy_records_that_are_no_arrays_say_what_they_are_not(tmp_path):
    """np.load calls a text file "pickled data"; an empty file or a .npz raised a traceback."""
    good = known_ecg(np.arange(11 * FS) / FS) / 1000
    np.save(tmp_path / "good.npy", good)
    (tmp_path / "text.npy").write_text("I,II,V1\n1,2,3\n")
    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "objects.npy", np.array([good, "x"], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "archive", a=good)
    (tmp_path / "archive.npz").rename(tmp_path / "archive.npy")
    (tmp_path / "cut.npy").write_bytes((tmp_path / "good.npy").read_bytes()[:1000])
    options = SignalOptions(format="npy", fs=500.0, leads=LEADS, unit="mV")
    reasons = {name: import_record((name, str(tmp_path / f"{name}.npy"), str(tmp_path / "out")),
                                   options)["reason"]
               for name in ("good", "text", "empty", "objects", "archive", "cut")}
    assert reasons == {
        "good": "",
        "text": "not a NumPy array file (no .npy header)",
        "empty": "an empty file, not a NumPy array file",
        "objects": "an object array (pickles are never loaded)",
        "archive": "a .npz archive, not a NumPy array file (.npy)",
        "cut": f"a truncated NumPy array file (1000 of {128 + good.size * 8} bytes)"}


def test_uncalibrated_wfdb_channels_refuse_the_record_by_name(tmp_path):
    """A WFDB gain of 0 means "uncalibrated"; wfdb reads such a channel at 200 units per mV,
    which gave millivolts that mean nothing. Only the channels used as leads count."""
    ecg = known_ecg(np.arange(11 * FS) / FS)
    rec = tmp_path / "records"
    rec.mkdir()
    for name in ("ok", "zero", "frank0"):
        write_wfdb(rec, name, 500, {**channels(ecg, {}, LEADS), "vx": ecg[0] * 0.5})

    def zero_gain(name, *channels_):
        def edit(lines):
            for channel in channels_:  # "file fmt gain(baseline)/units ...": gain -> 0
                fields = lines[1 + channel].split()
                fields[2] = "0" + fields[2][fields[2].index("("):]
                lines[1 + channel] = " ".join(fields)
            return lines
        _edit_header(rec / f"{name}.hea", edit)

    zero_gain("zero", LEAD_INDEX["V2"], LEAD_INDEX["aVL"])
    zero_gain("frank0", 12)  # an ignored channel: the record imports
    raw = read_wfdb(rec / "zero.hea", seconds=11.0)
    assert raw.uncalibrated == (LEAD_INDEX["aVL"], LEAD_INDEX["V2"])
    assert (rec / "zero.hea").read_text().count("zero.dat 16 0(") == 2
    ids = ["ok", "zero", "frank0"]
    labels_frame([(r, f"p{k}", 60, "male", 30, "") for k, r in enumerate(ids)]
                 ).to_csv(tmp_path / "labels.csv", index=False)
    code, out, err = run_main(X00, "--input", "records", "--labels", "labels.csv",
                              "--n-jobs", "1", cwd=tmp_path)
    assert code == 0, err
    log = pd.read_csv(tmp_path / "x00_import_log.csv").set_index("record_id")
    assert log["status"].to_dict() == {"frank0": "imported", "ok": "imported", "zero": "refused"}
    assert log.loc["zero", "reason"] == ("uncalibrated channel(s) aVL, V2: ADC gain 0 in the "
                                         "header, so the amplitudes have no known unit")
    assert "refused 1" in out and "1  refused: uncalibrated channel(s) aVL, V2" in out
    assert sorted(pd.read_feather(tmp_path / "covariate_df.feather")["studyId"]) == ["frank0", "ok"]
    assert not (tmp_path / "10_sec_ecgs" / "zero.npy").exists()
    np.testing.assert_array_equal(np.load(tmp_path / "10_sec_ecgs" / "frank0.npy"),
                                  np.load(tmp_path / "10_sec_ecgs" / "ok.npy"))


def test_a_failure_after_the_records_leaves_table_and_folder_in_step(tmp_path, monkeypatch):
    """10_sec_ecgs/ used to be swapped in before covariate_df.feather was built and written:
    an error in between left the new ECGs beside the old table."""
    import scdecg.importing as importing

    rec = tmp_path / "records"
    rec.mkdir()
    ecg = known_ecg(np.arange(11 * FS) / FS)
    write_wfdb(rec, "old", 500, channels(ecg, {}, LEADS))
    labels_frame([("old", "p1", 50, "male", 10, ""), ("new", "p2", 60, "female", 20, "")]
                 ).to_csv(tmp_path / "labels.csv", index=False)
    code, _, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--n-jobs", "1",
                            cwd=tmp_path)
    assert code == 0, err
    table = (tmp_path / "covariate_df.feather").read_bytes()
    (rec / "old.hea").unlink()
    (rec / "old.dat").unlink()
    write_wfdb(rec, "new", 500, channels(ecg, {}, LEADS))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "covariate_df.feather"))

    monkeypatch.setattr(importing, "add_pipeline_columns", full_disk)
    code, _, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--n-jobs", "1",
                            cwd=tmp_path)
    assert code == 2 and "No space left on device" in err
    assert (tmp_path / "covariate_df.feather").read_bytes() == table
    assert sorted(p.name for p in (tmp_path / "10_sec_ecgs").iterdir()) == ["old.npy"]
    hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert hidden == [".10_sec_ecgs.lock"]    # no leftovers; the lock file stays, as x03's does

    monkeypatch.undo()
    code, _, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--n-jobs", "1",
                            cwd=tmp_path)
    assert code == 0, err
    assert pd.read_feather(tmp_path / "covariate_df.feather")["studyId"].tolist() == ["new"]
    assert sorted(p.name for p in (tmp_path / "10_sec_ecgs").iterdir()) == ["new.npy"]


def test_a_crash_between_the_two_renames_leaves_a_folder_every_reader_refuses(tmp_path,
                                                                              monkeypatch):
    """The folder is renamed into place first, the table right after: a run that dies between
    the two (here the table's rename fails) must not leave the new ECGs beside the old table
    for x04 to read as if they were one import."""
    import os

    args = one_record_workspace(tmp_path)             # its record replaced by one with beats
    rng = np.random.default_rng(0)
    ecg = simulate_ecg(sample_ecg_params(rng), rng, n_samples=11 * FS)
    np.save(tmp_path / "records" / "r1.npy", ecg)
    assert run_main(X00, *args, cwd=tmp_path)[0] == 0
    table = (tmp_path / "covariate_df.feather").read_bytes()
    ecgs = tmp_path / "10_sec_ecgs"
    assert sorted(p.name for p in ecgs.iterdir()) == ["r1.npy"]    # the mark is gone
    first = np.load(ecgs / "r1.npy")

    np.save(tmp_path / "records" / "r1.npy", ecg * 2)
    rename = os.replace

    def dies_at_the_table(src, dst, *a, **k):
        if Path(dst).name == "covariate_df.feather":
            raise OSError(5, "Input/output error", str(dst))
        return rename(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", dies_at_the_table)
    code, _, err = run_main(X00, *args, cwd=tmp_path)
    monkeypatch.undo()
    assert code == 2 and "Input/output error" in err
    assert (tmp_path / "covariate_df.feather").read_bytes() == table           # the old table
    np.testing.assert_allclose(np.load(ecgs / "r1.npy"), 2 * first, rtol=1e-6)  # new ECGs
    code, _, err = run_main(X04, cwd=tmp_path)
    assert code == 2
    assert "x00_import did not finish" in err and "x00_import_cohort.py" in err
    assert not (tmp_path / "ecg_beats").exists()
    code, _, err = run_main(X03, cwd=tmp_path)      # not "run x04 next": that refuses the folder
    assert code == 2 and "x00_import did not finish" in err and "x00_import_cohort.py" in err
    np.testing.assert_allclose(np.load(ecgs / "r1.npy"), 2 * first, rtol=1e-6)

    assert run_main(X00, *args, cwd=tmp_path)[0] == 0                          # rerun: in step
    assert sorted(p.name for p in ecgs.iterdir()) == ["r1.npy"]
    assert run_main(X04, cwd=tmp_path)[0] == 0


def test_a_second_import_over_a_locked_folder_stops_in_one_line(tmp_path):
    """The import takes the lock x03 takes on ``10_sec_ecgs/``: one of two runs at once stops."""
    from scdecg.io import folder_lock

    args = one_record_workspace(tmp_path)
    with folder_lock(tmp_path / "10_sec_ecgs", "x03"):
        code, _, err = run_main(X00, *args, cwd=tmp_path)
    assert code == 2 and "10_sec_ecgs: another run is writing this folder" in err
    assert not (tmp_path / "10_sec_ecgs").exists() and not (tmp_path / "covariate_df.feather").exists()
    assert run_main(X00, *args, cwd=tmp_path)[0] == 0                # free again


# ----------------------------------------------------- hostile paths, tables and records
@pytest.mark.parametrize("options, message", [
    (["--out-dir", "records"], "--out-dir records and --input records name the same path"),
    (["--out-dir", "."], "--out-dir .: is the working folder or holds it"),
    (["--out-dir", ".."], "--out-dir ..: is the working folder or holds it"),
    (["--log", "labels.csv"], "--log labels.csv and --labels labels.csv name the same path"),
    (["--output", "records/r1.npy"], "--output records/r1.npy lies inside --input records"),
    (["--output", "x.feather", "--log", "x.feather"], "--output x.feather and --log x.feather"),
    (["--output", "ecgs/table.feather", "--out-dir", "ecgs"],
     "--output ecgs/table.feather lies inside --out-dir ecgs"),
], ids=["out_dir_is_input", "out_dir_here", "out_dir_above", "log_is_labels",
        "output_in_input", "output_is_log", "output_in_out_dir"])
def test_import_refuses_to_write_over_its_inputs_or_itself(tmp_path, options, message):
    args = one_record_workspace(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code, _, err = run_main(X00, *args, *options, cwd=tmp_path)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_import_never_replaces_a_folder_holding_files_of_the_users_own(tmp_path):
    args = one_record_workspace(tmp_path)
    victim = tmp_path / "mine"
    victim.mkdir()
    (victim / "notes.txt").write_text("keep me")
    code, _, err = run_main(X00, *args, "--out-dir", "mine", cwd=tmp_path)
    assert code == 2 and "holds 'notes.txt', which neither an import nor x03 writes" in err
    assert (victim / "notes.txt").read_text() == "keep me"
    # a folder of ECG files (an earlier import's, or x03's) is replaced as before
    (victim / "notes.txt").unlink()
    np.save(victim / "old.npy", np.zeros((12, 5000), np.float32))
    code, _, err = run_main(X00, *args, "--out-dir", "mine", cwd=tmp_path)
    assert code == 0, err
    assert sorted(p.name for p in victim.iterdir()) == ["r1.npy"]


@pytest.mark.parametrize("header, message", [
    ("record_id,patient_id,age,sex,days_to_event,cardiac_cause, record_id",
     "column 'record_id' appears 2 times (columns 1, 7)"),
    ("record_id,patient_id,age,sex,days_to_event,cardiac_cause,age",
     "column 'age' appears 2 times (columns 3, 7)"),
    ("record_id,patient_id,age,sex,days_to_event,cardiac_cause, sex ",
     "column 'sex' appears 2 times (columns 4, 7)"),
])
def test_a_labels_column_given_twice_is_named(tmp_path, header, message):
    path = tmp_path / "labels.csv"
    path.write_text(header + "\nr1,p1,50,male,10,,x\n")
    with pytest.raises(PipelineError, match=re.escape(message)):
        read_labels(path)


@pytest.mark.parametrize("fs, message", [
    ("inf", "--fs inf: sampling rate inf is not a finite number"),
    ("1e-07", "--fs 1e-07: sampling rate 1e-07 Hz is outside 50-20000 Hz"),
    ("1e9", "--fs 1000000000.0: sampling rate 1e+09 Hz is outside 50-20000 Hz"),
])
def test_import_refuses_an_impossible_sampling_rate_in_one_line(tmp_path, fs, message):
    args = one_record_workspace(tmp_path)
    args[args.index("--fs") + 1] = fs
    code, _, err = run_main(X00, *args, cwd=tmp_path)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("edit, reason, options", [
    (lambda line: line.replace(" 500 ", " inf "), "header sampling rate 'inf' is not a positive",
     []),
    (lambda line: line.replace(" 500 ", " -500 "), "header sampling rate '-500' is not a positive",
     []),
    (lambda line: line.replace(" 500 ", " 5 "), "header: sampling rate 5 Hz is outside", []),
    # written 1e9, read by wfdb as 1 Hz: the header's own value is named
    (lambda line: line.replace(" 500 ", " 1e9 "), "header: sampling rate 1e+09 Hz is outside",
     []),
    (lambda line: line.replace(" 5500", " -5"), "header length '-5' is not a whole number of "
                                                "samples", []),
    # the file ends before the header's length: named in bytes, whether every window is read
    # (wfdb said "Samples were not loaded correctly") or the first 10 s only (the log said
    # 110 s for an 11-s record)
    (lambda line: line.replace(" 5500", " 55000"), "signal file r1.dat truncated: 132000 of the "
                                                   "1320000 bytes", ["--windows"]),
    (lambda line: line.replace(" 5500", " 55000"), "signal file r1.dat truncated: 132000 of the "
                                                   "1320000 bytes", []),
    # a length of 0 (wfdb: "sampto must be greater than sampfrom")
    (lambda line: line.replace(" 5500", " 0"), "the header gives a length of 0 samples", []),
], ids=["inf", "negative", "too_low", "exponent", "negative_length",
        "longer_than_file_windows", "longer_than_file", "length_0"])
def test_a_garbled_wfdb_record_line_refuses_the_record(tmp_path, edit, reason, options):
    args = one_record_workspace(tmp_path, fmt="wfdb")
    header = tmp_path / "records" / "r1.hea"
    _edit_header(header, lambda lines: [edit(lines[0]), *lines[1:]])
    code, _, err = run_main(X00, *args, *options, cwd=tmp_path)
    assert code == 2 and "no record was imported" in err
    log = pd.read_csv(tmp_path / "x00_import_log.csv")
    assert log["status"].tolist() == ["refused"] and reason in log["reason"][0], log["reason"][0]


def test_unsigned_npy_records_and_ids_later_steps_refuse_are_refused(tmp_path):
    args = one_record_workspace(tmp_path)
    rec = tmp_path / "records"
    np.save(rec / "r1.npy", (np.load(rec / "r1.npy") + 40000).astype(np.uint16))
    (rec / "a:b.npy").write_bytes((rec / "r1.npy").read_bytes())
    labels_frame([("r1", "p1", 50, "male", 10, "")]).to_csv(tmp_path / "labels.csv", index=False)
    code, _, err = run_main(X00, *args, cwd=tmp_path)
    assert code == 2 and "record id 'a:b' unusable: id that cannot be a file name (contains " \
                         "':')" in err, err
    (rec / "a:b.npy").unlink()
    code, _, err = run_main(X00, *args, cwd=tmp_path)
    log = pd.read_csv(tmp_path / "x00_import_log.csv")
    assert code == 2 and log["reason"][0].startswith("wrong dtype: uint16, expected signed")


# --------------------------------------------------------------------------------------
# Layouts of public 12-lead datasets (PTB-XL, PhysioNet/CinC Challenge 2020/2021, INCART)
# --------------------------------------------------------------------------------------
UPPER_LEADS = [lead.upper() for lead in LEADS]  # PTB-XL, INCART: AVR, AVL, AVF


def write_gain_1000(folder, name, fs, seconds, names=UPPER_LEADS, units="mV"):
    """A PTB-XL-style record: format 16, gain 1000/mV, baseline 0, 12 leads in LEADS order
    named ``names``; the known signal from t = 0."""
    ecg = known_ecg(np.arange(int(seconds * fs)) / fs) / 1000.0
    wfdb.wrsamp(name, fs=fs, units=[units] * 12, sig_name=list(names), p_signal=ecg.T,
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                write_dir=str(folder))
    return folder / f"{name}.hea"


def write_challenge(folder, name, fs, seconds, gain=1000, fmt="16+24"):
    """A PhysioNet/CinC Challenge 2020/2021 record: ``<name>.mat``, a MATLAB v4 file holding
    ``val`` (int16, leads x samples), and a header pointing into it (``16+24``) with the
    Challenge's date on the record line and its Age/Sex/Dx comments."""
    n = int(seconds * fs)
    val = np.round(known_ecg(np.arange(n) / fs) / 1000.0 * gain).astype("<i2")
    mat4 = np.array([30, 12, n, 0, 4], "<i4").tobytes() + b"val\x00"  # int16, 12 x n, "val"
    (folder / f"{name}.mat").write_bytes(mat4 + val.T.tobytes())     # column-major
    lines = [f"{name} 12 {fs} {n} 05-Feb-2020 11:39:16"]
    lines += [f"{name}.mat {fmt} {gain}/mV 16 0 {val[k, 0]} 0 0 {lead}"
              for k, lead in enumerate(LEADS)]
    lines += ["# Age: 74", "# Sex: Male", "# Dx: 426783006", "# Rx: Unknown"]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return folder / f"{name}.hea"


def test_public_12_lead_layouts_import_sample_by_sample(tmp_path):
    """PTB-XL (500 and 100 Hz, nested folders, upper-case AVR/AVL/AVF), Challenge .mat records
    (15 s; exactly 10 s like Chapman/Georgia) and an INCART-like 257-Hz record: 12 leads in
    pipeline order, µV to within quantisation (1 µV at gain 1000) and resampling."""
    rec = tmp_path / "records"
    for sub in ("records500/00000", "records100/00000", "challenge/g1"):
        (rec / sub).mkdir(parents=True)
    write_gain_1000(rec / "records500/00000", "00001_hr", 500, 10)
    write_gain_1000(rec / "records100/00000", "00001_lr", 100, 10)
    write_challenge(rec / "challenge/g1", "A0001", 500, 15)
    write_challenge(rec / "challenge/g1", "E00001", 500, 10)
    write_gain_1000(rec, "I01", 257, 45)
    ids = ["00001_hr", "00001_lr", "A0001", "E00001", "I01"]
    labels_frame([(r, f"p{k}", 60, "male", 30, "") for k, r in enumerate(ids)]).to_csv(
        tmp_path / "labels.csv", index=False)
    code, _, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--n-jobs", "1",
                            cwd=tmp_path)
    assert code == 0, err
    log = pd.read_csv(tmp_path / "x00_import_log.csv").set_index("record_id")
    assert (log["status"] == "imported").all(), log["reason"].to_dict()
    assert log["fs"].to_dict() == {"00001_hr": 500, "00001_lr": 100, "A0001": 500,
                                   "E00001": 500, "I01": 257}
    assert log.loc["A0001", "seconds"] == 15 and log.loc["I01", "seconds"] == 45
    assert log.loc["00001_lr", "source"] == "records100/00000/00001_lr.hea"
    truth = known_ecg(np.arange(N_SAMPLES) / FS)
    for record in ids:
        got = np.load(tmp_path / "10_sec_ecgs" / f"{record}.npy")
        assert got.shape == (12, N_SAMPLES) and got.dtype == np.float32
        inner = slice(0, N_SAMPLES) if log.loc[record, "fs"] == FS else slice(50, N_SAMPLES - 50)
        err_uv = np.abs(got[:, inner] - truth[:, inner]).max(axis=1)
        assert err_uv.max() < (0.51 if log.loc[record, "fs"] == FS else 2.0), (record, err_uv)
    # INCART-like: every 10-s window of the 257-Hz record, the last one 40-50 s
    row = import_record(("I01", str(rec / "I01.hea"), str(tmp_path)),
                        SignalOptions(windows=WindowOptions(all_windows=True), measure=False))
    assert row["status"] == "imported" and row["window_ids"] == [f"I01_w{k}" for k in range(4)]
    last = np.load(tmp_path / "I01_w3.npy")
    truth = known_ecg(np.arange(3 * N_SAMPLES, 4 * N_SAMPLES) / FS)
    assert np.abs(last - truth).max() < 2.0


@pytest.mark.parametrize("damage, reason", [
    ("v5", "signal file A1.mat is a MATLAB v5/v7 file; a WFDB header can only point into a "
           "MATLAB v4 one"),
    ("v5_compressed", "signal file A1.mat is a MATLAB v5/v7 file"),
    ("double", "signal file A1.mat holds double samples; the header's format 16 reads int16"),
    ("no_offset", "signal file A1.mat: its MATLAB v4 matrix starts at byte 24, the header reads "
                  "from byte 0 (write the format as 16+24)"),
    ("transposed", "signal file A1.mat holds a 6000 x 12 matrix; the header's 12 channels of "
                   "6000 samples need 12 x 6000 (leads x samples)"),
])
def test_a_mat_signal_file_unlike_its_header_refuses_the_record(tmp_path, damage, reason):
    """wfdb reads a .mat signal file's bytes from the header's offset whatever they hold:
    a v5 file or a matrix elsewhere was imported as noise of the right size."""
    import scipy.io

    header = write_challenge(tmp_path, "A1", 500, 12, fmt="16" if damage == "no_offset"
                             else "16+24")
    val = scipy.io.loadmat(tmp_path / "A1.mat")["val"]
    if damage.startswith("v5"):
        scipy.io.savemat(tmp_path / "A1.mat", {"val": val},
                         do_compression=damage == "v5_compressed")
    elif damage in ("double", "transposed"):
        matrix = val.astype(float) if damage == "double" else val.T.copy()
        scipy.io.savemat(tmp_path / "A1.mat", {"val": matrix}, format="4")
    row = import_record(("A1", str(header), str(tmp_path)), SignalOptions(measure=False))
    assert row["status"] == "refused" and row["reason"].startswith(reason), row["reason"]
    assert not (tmp_path / "A1.npy").exists()


@pytest.mark.parametrize("edit", [
    lambda x: x.replace("/mV", "/mv"),                            # lower-case unit
    lambda x: x.replace("1000.0(0)/mV", "1.0(0)/uV"),              # µV, ASCII
    lambda x: x.replace("1000.0(0)/mV", "1.0(0)/\u00b5V"),         # µV, micro sign
    lambda x: x.replace("(0)/mV", ""),                             # no unit: mV, as WFDB says
    lambda x: x.replace(" aVL", " aVL  ").replace(" AVL", " AVL  "),  # trailing spaces
    lambda x: x.replace(" AVL", " Lead aVL"),
], ids=["mv", "uV", "micro", "no_unit", "spaces", "lead_prefix"])
def test_header_unit_spellings_and_lead_names_import_the_same_values(tmp_path, edit):
    header = write_gain_1000(tmp_path, "r", 500, 11)
    _edit_header(header, lambda lines: [lines[0], *map(edit, lines[1:])])
    row = import_record(("r", str(header), str(tmp_path)), SignalOptions(measure=False))
    assert row["status"] == "imported", row["reason"]
    truth = known_ecg(np.arange(N_SAMPLES) / FS)
    assert np.abs(np.load(tmp_path / "r.npy") - truth).max() < 0.51


def test_a_baseline_other_than_0_is_subtracted(tmp_path):
    header = write_gain_1000(tmp_path, "r", 500, 11)
    digital = wfdb.rdrecord(str(tmp_path / "r"), physical=False).d_signal.astype(np.int16)
    wfdb.wrsamp("r", fs=500, units=["mV"] * 12, sig_name=UPPER_LEADS, d_signal=digital + 200,
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[200] * 12,
                write_dir=str(tmp_path))
    assert "1000.0(200)/mV" in header.read_text()
    row = import_record(("r", str(header), str(tmp_path)), SignalOptions(measure=False))
    assert row["status"] == "imported", row["reason"]
    truth = known_ecg(np.arange(N_SAMPLES) / FS)
    assert np.abs(np.load(tmp_path / "r.npy") - truth).max() < 0.51


@pytest.mark.parametrize("names, reason", [
    (UPPER_LEADS[:11] + ["II"], "lead II appears twice (channel 2 'II' and channel 12 'II'; keep "
                                "one in the record)"),
    (["MLII", "V"] + UPPER_LEADS[2:], "missing lead(s) I, II (found: MLII, V, III, AVR"),
])
def test_a_repeated_lead_and_holter_lead_names_refuse_the_record_by_name(tmp_path, names,
                                                                         reason):
    header = write_gain_1000(tmp_path, "r", 500, 11, names=[f"x{k}" for k in range(12)])
    _edit_header(header, lambda lines: [lines[0], *[line.replace(f" x{k}", f" {names[k]}")
                                                    for k, line in enumerate(lines[1:])]])
    row = import_record(("r", str(header), str(tmp_path)), SignalOptions(measure=False))
    assert row["status"] == "refused" and row["reason"].startswith(reason), row["reason"]


def test_age_and_sex_come_from_challenge_header_comments_where_the_labels_leave_them_out(
        tmp_path):
    """Challenge 2020/2021 headers write ``# Age:`` and ``# Sex:``: a labels table without age
    and sex takes them from there ("NaN" and "Unknown" stay missing, counted); a table that
    gives them wins, each difference from the header named; npy/csv still need the columns."""
    rec = tmp_path / "records"
    rec.mkdir()
    comments = {"A1": "# Age: 74\n# Sex: Male\n", "A2": "#age:NaN\n#sex: F\n",
                "A3": "# Age: 51\n# Sex: Unknown\n", "A4": ""}
    for name, text in comments.items():
        header = write_challenge(rec, name, 500, 10)
        lines = [line for line in header.read_text().splitlines()
                 if not line.startswith(("# Age", "# Sex"))]
        header.write_text("\n".join(lines) + "\n" + text)
    frame = labels_frame([(r, f"p{k}", None, None, 30, "") for k, r in enumerate(comments)])
    frame.drop(columns=["age", "sex"]).to_csv(tmp_path / "labels.csv", index=False)
    code, out, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--n-jobs",
                              "1", cwd=tmp_path)
    assert code == 0, err
    cov = pd.read_feather(tmp_path / "covariate_df.feather").set_index("studyId")
    assert cov.loc["A1", "age"] == 74 and cov.loc["A1", "female"] == 0
    assert np.isnan(cov.loc["A2", "age"]) and cov.loc["A2", "female"] == 1
    assert cov.loc["A3", "age"] == 51 and np.isnan(cov.loc["A3", "female"])
    assert np.isnan(cov.loc["A4", "age"]) and np.isnan(cov.loc["A4", "female"])
    assert "2  age taken from the WFDB header" in out and "2  sex taken from the WFDB header" in out
    assert "2  sex not male/female -> female NaN" in out and "2  age missing" in out

    # the table's values win; an empty cell is filled; a difference is named
    frame = labels_frame([("A1", "p0", 70, "female", 30, ""), ("A2", "p1", 40, "", 30, ""),
                          ("A3", "p2", "", "male", 30, ""), ("A4", "p3", 66, "male", 30, "")])
    frame.to_csv(tmp_path / "labels.csv", index=False)
    code, out, err = run_main(X00, "--input", "records", "--labels", "labels.csv", "--n-jobs",
                              "1", cwd=tmp_path)
    assert code == 0, err
    cov = pd.read_feather(tmp_path / "covariate_df.feather").set_index("studyId")
    assert cov["age"].to_dict() == {"A1": 70, "A2": 40, "A3": 51, "A4": 66}
    assert cov["female"].to_dict() == {"A1": 1, "A2": 1, "A3": 0, "A4": 0}
    assert ("age differs between the labels table and the WFDB header; the labels table's "
            "used (record: table / header): 'A1: 70 / 74' 1") in out
    assert "'A1: female / Male' 1" in out and "/ NaN" not in out and "/ Unknown" not in out
    assert "1  age taken from the WFDB header" in out and "1  sex taken from the WFDB header" in out

    # npy and csv records have no header: the columns are still required
    np.save(tmp_path / "n1.npy", np.zeros((8, 5000), np.float32))
    (tmp_path / "npy").mkdir()
    (tmp_path / "n1.npy").rename(tmp_path / "npy" / "n1.npy")
    frame.drop(columns=["age", "sex"]).to_csv(tmp_path / "labels.csv", index=False)
    code, _, err = run_main(X00, "--input", "npy", "--format", "npy", "--fs", "500", "--leads",
                            "I,II,V1,V2,V3,V4,V5,V6", "--labels", "labels.csv",
                            "--out-dir", "npy_out", "--output", "npy_cov.feather",
                            "--log", "npy_log.csv", cwd=tmp_path)
    assert code == 2 and "missing column(s) age, sex" in err


def test_empty_wfdb_files_are_named_not_wfdb_errors(tmp_path):
    args = one_record_workspace(tmp_path, fmt="wfdb")
    (tmp_path / "records" / "r1.dat").write_bytes(b"")
    code, _, _ = run_main(X00, *args, cwd=tmp_path)
    log = pd.read_csv(tmp_path / "x00_import_log.csv")
    assert code == 2 and log["reason"][0] == "empty signal file r1.dat (0 bytes)"
    (tmp_path / "records" / "r1.hea").write_bytes(b"")
    code, _, _ = run_main(X00, *args, cwd=tmp_path)
    log = pd.read_csv(tmp_path / "x00_import_log.csv")
    assert code == 2 and log["reason"][0] == "empty header file (0 bytes)"


def test_upper_case_suffixes_are_found_and_a_wfdb_one_is_named(tmp_path):
    """Files copied from Windows or FAT media: r1.NPY is read; R1.HEA cannot be (the wfdb
    package appends '.hea'), so its record is refused naming the file, not 'no record file'."""
    args = one_record_workspace(tmp_path)
    (tmp_path / "records" / "r1.npy").rename(tmp_path / "records" / "r1.NPY")
    code, _, err = run_main(X00, *args, cwd=tmp_path)
    assert code == 0, err
    assert pd.read_csv(tmp_path / "x00_import_log.csv")["status"].tolist() == ["imported"]
    wfdb_dir = tmp_path / "w"
    wfdb_dir.mkdir()
    args = one_record_workspace(wfdb_dir, fmt="wfdb")
    (wfdb_dir / "records" / "r1.hea").rename(wfdb_dir / "records" / "r1.HEA")
    code, _, _ = run_main(X00, *args, cwd=wfdb_dir)
    log = pd.read_csv(wfdb_dir / "x00_import_log.csv")
    assert code == 2 and log["reason"][0].startswith("header r1.HEA: the wfdb package reads "
                                                     "only a '.hea' suffix in lower case")


def test_a_cohort_without_controls_and_negative_days_are_named(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("record_id,patient_id,age,sex,days_to_event,cardiac_cause\n"
                    "r0,p0,60,male,1500,0\nr1,p1,61,male,-5,1\n")
    report = CohortReport()
    cohort_rows(read_labels(path), report)
    notes = {message: n for (_, message), n in report.notes.items()}
    assert notes["days_to_event below 0 (an ECG after the event?): 'r1' 1"] == 1
    assert any(m.startswith("rows with a cardiac_cause, that is arrests: every row") and n == 2
               for m, n in notes.items())
