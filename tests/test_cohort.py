"""Cohort table (x01) and pipeline columns (x02) on tiny hand-made NTUH trees."""
from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_script

from scdecg.cohort import (LABELS, SHARED_ID_REASON, add_pipeline_columns, build_cohort,
                           is_processed, patient_order)
from scdecg.errors import PipelineError

X01 = "00_Data_Preprocessing/x01_build_ntuh_df.py"
X02 = "00_Data_Preprocessing/x02_generate_dummy_columns.py"
ROSC = pd.Timestamp("2020-06-01 10:00:00")
YEAR = 2015


# --------------------------------------------------------------------------------------
# A tiny NTUH tree, written by hand
# --------------------------------------------------------------------------------------
@dataclass
class Ecg:
    ecg_id: str
    patient: str
    acquired: str                  # datetime string as stored
    age: str = "60"
    sex: str = "male"
    npy_index: object = None       # None: next free row
    timetag: str = "[0]pre"        # study group only
    rosc: str = "2020-06-01 10:00:00"
    hospital: str = "2020-06-01 09:00:00"
    cause: str | None = "cardiac event"
    rhythm: str | None = "VT/VF"
    control: str | None = None     # control group: datetime of the patient's control ECG
    codes: dict = field(default_factory=dict)   # lead -> {stelev, stdown, dltwv} codes
    qtc: str = "440"
    statements: tuple[str, ...] = ("sinus rhythm",)


def before_rosc(days: float, hours: float = 3.0) -> str:
    """Acquisition time ``days`` days (plus ``hours``) before ROSC, as NTUH text."""
    return str(ROSC - pd.Timedelta(days=days, hours=hours))


def study_ecg(ecg_id: str, days: float, patient: str | None = None, **kw) -> Ecg:
    return Ecg(ecg_id, patient or f"p{ecg_id}", before_rosc(days), **kw)


def control_ecg(ecg_id: str, days: int, patient: str | None = None, **kw) -> Ecg:
    pre = pd.Timestamp("2015-03-01 08:00:00")
    return Ecg(ecg_id, patient or f"c{ecg_id}", str(pre), cause=None, rhythm=None,
               control=str(pre + pd.Timedelta(days=days, hours=2)), **kw)


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)


def write_metadata(folder: Path, ecgs: list[Ecg]) -> None:
    per_lead, global_, resting, diagnosis = [], [], [], []
    for e in ecgs:
        for lead in ("I", "II", "aVL"):
            codes = e.codes.get(lead, {})
            per_lead.append({"ecg_id": e.ecg_id, "lead": lead,
                             **{k: codes.get(k, 0) for k in ("stelev", "stdown", "dltwv")}})
        global_.append({"ecg_id": e.ecg_id, "qtc": e.qtc, "avg_rr": 800})
        resting.append({"ecg_id": e.ecg_id, "ventricular_rate": 75, "atrial_rate": 75,
                        "qrs_duration": 90, "qt_interval": 380, "qtc_frederica": 420})
        diagnosis += [{"ecg_id": e.ecg_id, "stmt_text": s} for s in e.statements]
    meta = folder / "ecg-metadata"
    write_csv(meta / "measurement-matrix-per-lead.csv", per_lead,
              ["ecg_id", "lead", "stelev", "stdown", "dltwv"])
    write_csv(meta / "measurement-matrix-global.csv", global_, ["ecg_id", "qtc", "avg_rr"])
    write_csv(meta / "resting-ecg-measurements.csv", resting,
              ["ecg_id", "ventricular_rate", "atrial_rate", "qrs_duration", "qt_interval",
               "qtc_frederica"])
    write_csv(meta / "diagnosis.csv", diagnosis, ["ecg_id", "stmt_text"])


def write_waveforms(folder: Path, ecgs: list[Ecg], with_timetag: bool) -> None:
    rows = []
    for i, e in enumerate(ecgs):
        row = {"ecg_id": e.ecg_id, "npy_index": i if e.npy_index is None else e.npy_index}
        if with_timetag:
            row["ecg_timetag"] = e.timetag
        rows.append(row)
    wave = folder / "ecg-waveforms"
    write_csv(wave / "waveform-npy.csv", rows, list(rows[0]))
    np.save(wave / "waveform-rhythm.npy", np.zeros((len(ecgs), 12, 10), dtype=np.int16))


def write_tree(root: Path, study: list[Ecg], controls: dict[int, list[Ecg]] | None = None) -> Path:
    """Write the NTUH layout under ``root`` for the given ECGs; return ``root``."""
    controls = {YEAR: [control_ecg("c1", 100)]} if controls is None else controls
    sg = root / "study-group"
    write_waveforms(sg, study, with_timetag=True)
    write_csv(sg / "ecg.csv", [{"patient_ngsci_id": e.patient, "ecg_id": e.ecg_id,
                                "acquisition_datetime_offset": e.acquired,
                                "ecg_timetag": e.timetag} for e in study],
              ["patient_ngsci_id", "ecg_id", "acquisition_datetime_offset", "ecg_timetag"])
    write_csv(sg / "cohort.csv", [{"ecg_id": e.ecg_id, "age": e.age, "sex": e.sex,
                                   "rosc_datetime_offset": e.rosc} for e in study],
              ["ecg_id", "age", "sex", "rosc_datetime_offset"])
    write_csv(sg / "rosc-outcomes.csv",
              [{"ecg_id": e.ecg_id, "cause_of_cardiac_arrest": e.cause,
                "hospitalization_datetime_offset": e.hospital, "initial_rhythm": e.rhythm}
               for e in study],
              ["ecg_id", "cause_of_cardiac_arrest", "hospitalization_datetime_offset",
               "initial_rhythm"])
    write_metadata(sg, study)
    cohort_rows = []
    for year, ecgs in controls.items():
        pre = root / "control-group" / str(year) / "pre"
        write_waveforms(pre, ecgs, with_timetag=False)
        write_metadata(pre, ecgs)
        for e in ecgs:
            cohort_rows.append({"ecg_id": e.ecg_id, "patient_ngsci_id": e.patient,
                                "acquisition_datetime_offset": e.acquired,
                                "ecg_timetag": "pre", "age": e.age, "sex": e.sex})
            if e.control is not None:
                cohort_rows.append({"ecg_id": e.ecg_id + "_ctl", "patient_ngsci_id": e.patient,
                                    "acquisition_datetime_offset": e.control,
                                    "ecg_timetag": "control", "age": e.age, "sex": e.sex})
    write_csv(root / "control-group" / "ecg-cohort.csv", cohort_rows,
              ["ecg_id", "patient_ngsci_id", "acquisition_datetime_offset", "ecg_timetag",
               "age", "sex"])
    return root


def build(root: Path, years=(YEAR,)):
    df, report = build_cohort(root, list(years))
    return df.set_index("ecg_id"), report


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------
EDGE_DAYS = (1, 2, 91, 92, 182, 183, 365, 366, 730, 731)


def test_labels_at_window_edges(tmp_path):
    study = [study_ecg(f"s{d}", d) for d in EDGE_DAYS]
    study += [study_ecg(f"n{d}", d, cause="overdose") for d in (1, 2, 365, 366, 730, 731)]
    study.append(study_ecg("m10", 10, cause=None))  # missing cause counts as non-cardiac
    df, _ = build(write_tree(tmp_path, study))

    days = df["days_to_event"]
    assert days["s91"] == 91 and days["n731"] == 731
    assert df[list(LABELS)].isin([0.0, 1.0]).all().all()
    assert all(df[c].dtype == float for c in LABELS)

    def positives(label):
        return sorted(i for i in df.index[df[label] == 1])

    assert positives("scd3mo") == ["s2", "s91"]
    assert positives("scd6mo") == ["s182", "s2", "s91", "s92"]
    assert positives("scd1") == ["s182", "s183", "s2", "s365", "s91", "s92"]
    assert positives("scd2") == ["s182", "s183", "s2", "s365", "s366", "s730", "s91", "s92"]
    assert positives("scd") == sorted(f"s{d}" for d in EDGE_DAYS if d >= 2)
    assert positives("arrest_noncardiac") == ["m10", "n2", "n365", "n366", "n730", "n731"]
    assert positives("arrest_noncardiac1") == ["m10", "n2", "n365"]
    assert positives("arrest_noncardiac2") == ["m10", "n2", "n365", "n366", "n730"]
    assert positives("any_arrest") == sorted(positives("scd") + positives("arrest_noncardiac"))
    assert positives("any_arrest1") == sorted(positives("scd1") + positives("arrest_noncardiac1"))
    assert df.loc["c1", list(LABELS)].sum() == 0


def test_days_are_floored_and_hospitalisation_kept(tmp_path):
    study = [Ecg("a", "pa", before_rosc(2, hours=-1)),          # 1 day 23 h -> 1
             Ecg("b", "pb", before_rosc(2, hours=0)),           # exactly 2 days -> 2
             Ecg("c", "pc", before_rosc(30), hospital="2020-05-30 10:00:00")]
    df, _ = build(write_tree(tmp_path, study))
    assert df.loc["a", "days_to_event"] == 1 and df.loc["a", "scd"] == 0
    assert df.loc["b", "days_to_event"] == 2 and df.loc["b", "scd"] == 1
    assert df.loc["c", "days_to_event_og"] == 28   # 30 d 3 h before ROSC, 2 d before hospital


def test_mixed_datetime_formats_parse_alike(tmp_path):
    t = ROSC - pd.Timedelta(days=40)
    study = [Ecg("iso", "p1", t.strftime("%Y-%m-%d %H:%M:%S")),
             Ecg("slash", "p2", t.strftime("%Y/%m/%d %H:%M")),
             Ecg("tee", "p3", t.strftime("%Y-%m-%dT%H:%M:%S"),
                 rosc=ROSC.strftime("%Y/%m/%d %H:%M"))]
    df, _ = build(write_tree(tmp_path, study))
    assert df["days_to_event"].tolist()[:3] == [40.0, 40.0, 40.0]


def test_one_ecg_per_patient(tmp_path):
    study = [study_ecg("a1", 1, "pa"), study_ecg("a5", 5, "pa"), study_ecg("a30", 30, "pa"),
             study_ecg("b0", 0, "pb"), study_ecg("b1", 1, "pb"),         # all below 2
             study_ecg("c9", 9, "pc"), study_ecg("c8", 9, "pc"),         # tie -> smaller id
             study_ecg("d-3", -3, "pd"), study_ecg("d1", 1, "pd")]
    df, report = build(write_tree(tmp_path, study))
    chosen = df.loc[df["group"] == "study"].groupby("patient_ngsci_id").apply(
        lambda g: g.index[0], include_groups=False)
    assert chosen.to_dict() == {"pa": "a5", "pb": "b0", "pc": "c8", "pd": "d-3"}
    assert df["patient_ngsci_id"].is_unique
    assert report.notes[("study", "ECG not chosen (another ECG of the patient kept)")] == 5
    assert df.loc["b0", "scd"] == 0 and df.loc["a5", "scd3mo"] == 1


def test_control_group(tmp_path):
    controls = {2016: [control_ecg("x", 100, age="50", sex="female"),
                       control_ecg("y", 1)],
                2018: [control_ecg("z", 400, patient="pz")]}
    df, _ = build(write_tree(tmp_path, [study_ecg("s", 10)], controls), years=(2016, 2018))
    assert df.loc["x", "group"] == "2016" and df.loc["z", "group"] == "2018"
    assert df.loc["x", "days_to_event"] == 100 and df.loc["y", "days_to_event"] == 1
    assert df.loc["x", "days_to_event_og"] == 100
    assert df.loc["x", "age"] == 50 and df.loc["x", "female"] == 1
    assert df.loc[["x", "y", "z"], list(LABELS)].to_numpy().sum() == 0
    assert df.loc["z", "file_path"].endswith("control-group/2018/pre/ecg-waveforms/"
                                             "waveform-rhythm.npy")
    assert df.loc["s", "file_path"] == str(tmp_path / "study-group/ecg-waveforms/"
                                           "waveform-rhythm.npy")
    assert np.isnan(df.loc["x", "VTVF"]) and df.loc["s", "VTVF"] == 1
    assert list(df["group"]) == ["study", "2016", "2016", "2018"]


def test_an_ecg_id_shared_between_groups_or_up_to_case_is_excluded_everywhere(tmp_path):
    """One ecg_id in the study group and a control year, or two ids that one file name holds
    on macOS/Windows (case, Unicode form), would be written to one 10-s file by x03: every
    row of such an id is excluded with the reason (x03 used to stop on the duplicate)."""
    decomposed = "cafe\u0301"
    study = [study_ecg("twice", 10), study_ecg("CaseDup", 10), study_ecg("caf\u00e9", 10),
             study_ecg("s", 10)]
    controls = {YEAR: [control_ecg("twice", 50), control_ecg("casedup", 50),
                       control_ecg(decomposed, 50), control_ecg("ok", 50)]}
    df, report = build(write_tree(tmp_path, study, controls))
    assert sorted(df.index) == ["ok", "s"]
    shared = sorted(r["record"] for r in report.excluded.rows if r["reason"] == SHARED_ID_REASON)
    assert shared == sorted(["twice", "twice", "CaseDup", "casedup", "caf\u00e9", decomposed])


def test_control_without_control_ecg_is_excluded(tmp_path):
    lonely = control_ecg("lonely", 50)
    lonely.control = None
    controls = {YEAR: [control_ecg("ok", 50), lonely]}
    df, report = build(write_tree(tmp_path, [study_ecg("s", 10)], controls))
    assert "lonely" not in df.index and "ok" in df.index
    assert [(r["record"], r["reason"]) for r in report.excluded.rows] == [
        ("lonely", "no days_to_event: patient has no control ECG")]


# --------------------------------------------------------------------------------------
# ECG flags from the metadata
# --------------------------------------------------------------------------------------
def test_flags_from_bit_codes_and_statements(tmp_path):
    study = [study_ecg("st", 10, codes={"aVL": {"stelev": 12}}),      # bit 8 set among others
             study_ecg("eq4", 10, codes={"I": {"stelev": 4, "stdown": 4}}),  # stelev bit unset
             study_ecg("dw", 10, codes={"II": {"dltwv": 33}}),
             study_ecg("dw16", 10, codes={"II": {"dltwv": 16}}),
             study_ecg("lb", 10, statements=("sinus rhythm", "Left bundle branch block")),
             study_ecg("pm", 10, statements=("electronic ventricular pacemaker; paced rhythm",)),
             study_ecg("qt", 10, qtc="501"),
             study_ecg("q500", 10, qtc="500"),
             study_ecg("qnan", 10, qtc=""),
             study_ecg("qtext", 10, qtc="pending", codes={"I": {"stelev": "x"}})]
    df, report = build(write_tree(tmp_path, study))
    flags = df[["stelev", "stdown", "dltwv", "lbbb", "paced", "qtc500"]]
    assert flags.dtypes.eq(bool).all()
    assert flags.loc["st"].tolist() == [True, False, False, False, False, False]
    assert flags.loc["eq4"].tolist() == [False, True, False, False, False, False]
    assert flags.loc["dw", "dltwv"] and not flags.loc["dw16"].any()
    assert flags.loc["lb", "lbbb"] and flags.loc["pm", "paced"] and not flags.loc["pm", "lbbb"]
    assert flags.loc["qt", "qtc500"] and not flags.loc["q500", "qtc500"]
    assert not flags.loc["qnan", "qtc500"] and np.isnan(df.loc["qnan", "qtc"])
    assert not flags.loc["qtext"].any() and np.isnan(df.loc["qtext", "qtc"])
    assert report.notes[("study", "qtc not a number -> NaN")] == 1
    assert report.notes[("study", "stelev not a number -> NaN")] == 1
    assert df["qtc"].dtype == float and df["ventricular_rate"].dtype == float


def test_impossible_measurements_and_codes_are_missing_and_counted(tmp_path):
    """An infinite QTc, a negative duration and per-lead codes that are no code (infinite,
    negative, fractional, beyond int32) are read as missing (no flag), each counted with its
    value; x01 used to stop on an infinite code and keep inf or negative measurements (an
    infinite QTc set qtc500)."""
    study = [study_ecg("qinf", 10, qtc="inf", codes={"I": {"stelev": "inf"}}),
             study_ecg("neg", 10, qtc="-420", codes={"I": {"stdown": "-4"}}),
             study_ecg("frac", 10, codes={"II": {"dltwv": "32.9"}}),
             study_ecg("huge", 10, codes={"aVL": {"stelev": "9223372036854775808"}}),
             study_ecg("ok", 10, qtc="510", codes={"aVL": {"stelev": "8"}})]
    df, report = build(write_tree(tmp_path, study))
    flags = df[["stelev", "stdown", "dltwv", "qtc500"]]
    assert not flags.loc[["qinf", "neg", "frac", "huge"]].any().any()
    assert flags.loc["ok"].tolist() == [True, False, False, True]
    assert np.isnan(df.loc["qinf", "qtc"]) and np.isnan(df.loc["neg", "qtc"])
    assert df.loc["ok", "qtc"] == 510
    notes = {message: n for (group, message), n in report.notes.items() if group == "study"}
    assert notes["qtc infinite -> NaN"] == 1 and notes["stelev infinite -> NaN"] == 1
    assert notes["qtc below 0 (a duration, rate or code) -> NaN: '-420' 1"] == 1
    assert notes["stdown below 0 (a duration, rate or code) -> NaN: '-4' 1"] == 1
    assert notes["dltwv not a whole-number code -> no flag: '32.9' 1"] == 1
    assert notes["stelev not a whole-number code -> no flag: '9223372036854775808' 1"] == 1


def test_flag_match_equal_gives_the_published_flags(tmp_path):
    """DEVIATIONS "Per-lead ST/delta-wave flags test bits": x01 --flag-match equal sets a flag
    only when a lead's code equals 8 / 4 / 32, as published; combined codes are missed."""
    study = [study_ecg("st", 10, codes={"aVL": {"stelev": 12}}),
             study_ecg("eq", 10, codes={"I": {"stelev": 8, "stdown": 4}, "II": {"dltwv": 32}}),
             study_ecg("dw", 10, codes={"II": {"dltwv": 33}})]
    root = write_tree(tmp_path / "arrest-ntuh-ecg/v1", study)
    columns = ["stelev", "stdown", "dltwv"]
    bit = build_cohort(root, [YEAR])[0].set_index("ecg_id")[columns]
    equal = build_cohort(root, [YEAR], flag_match="equal")[0].set_index("ecg_id")[columns]
    assert bit.loc["st"].tolist() == [True, False, False] and bit.loc["dw", "dltwv"]
    assert equal.loc["st"].tolist() == [False, False, False] and not equal.loc["dw", "dltwv"]
    assert equal.loc["eq"].tolist() == bit.loc["eq"].tolist() == [True, True, True]

    run_script(X01, "--control-years", str(YEAR), "--flag-match", "equal", cwd=tmp_path)
    table = pd.read_feather(tmp_path / "covariate_df.feather").set_index("ecg_id")
    assert table.loc[["st", "eq", "dw"], "stelev"].tolist() == [False, True, False]
    proc = run_script(X01, "--control-years", str(YEAR), "--flag-match", "same", cwd=tmp_path,
                      check=False)
    assert proc.returncode == 2 and "flag match 'same': expected one of bit, equal" in proc.stderr


def test_ecg_missing_from_metadata_gets_false_flags(tmp_path):
    root = write_tree(tmp_path, [study_ecg("a", 10, codes={"I": {"stelev": 8}}),
                                 study_ecg("b", 10)])
    meta = root / "study-group/ecg-metadata"
    for name in ("measurement-matrix-per-lead.csv", "measurement-matrix-global.csv",
                 "diagnosis.csv"):
        table = pd.read_csv(meta / name, dtype=str)
        table.loc[table["ecg_id"] != "b"].to_csv(meta / name, index=False)
    df, _ = build(root)
    assert df.loc["a", "stelev"]
    assert df.loc["b", ["stelev", "stdown", "dltwv", "lbbb", "qtc500"]].tolist() == [False] * 5
    assert np.isnan(df.loc["b", "qtc"]) and df.loc["b", "ventricular_rate"] == 75


# --------------------------------------------------------------------------------------
# Odd values: kept as missing or excluded, and counted
# --------------------------------------------------------------------------------------
def test_odd_values_are_counted(tmp_path):
    study = [study_ecg("a63", 10, age="63"), study_ecg("a89", 10, age="89+"),
             study_ecg("aempty", 10, age=""), study_ecg("aunk", 10, age="unknown"),
             study_ecg("sexF", 10, sex="Female"), study_ecg("sexU", 10, sex="U"),
             Ecg("baddate", "pbad", "2020-02-30 10:00:00"),
             Ecg("norosc", "pnorosc", before_rosc(10), rosc=""),
             study_ecg("dup", 10), study_ecg("dup", 20, npy_index=0),
             study_ecg("oob", 10, npy_index=99), study_ecg("neg", 10, npy_index=-1),
             study_ecg("frac", 10, npy_index="1.5"),
             study_ecg("post", 10, timetag="[1]post")]
    df, report = build(write_tree(tmp_path, study))
    assert df.loc["a63", "age"] == 63 and df.loc["a89", "age"] == 89
    assert np.isnan(df.loc["aempty", "age"]) and np.isnan(df.loc["aunk", "age"])
    assert df.loc["sexF", "female"] == 1 and np.isnan(df.loc["sexU", "female"])
    assert df.loc["dup", "days_to_event"] == 10      # the first of the repeated rows
    for gone in ("baddate", "norosc", "oob", "neg", "frac", "post"):
        assert gone not in df.index

    notes = {msg: n for (group, msg), n in report.notes.items() if group == "study"}
    assert notes["age missing or without digits -> NaN"] == 2
    assert notes["age with extra characters (e.g. '89+') -> its first digits"] == 1
    assert notes["sex not male/female -> female NaN"] == 1
    assert notes["acquisition datetime unparsable -> NaT"] == 1
    assert notes["ROSC datetime missing -> NaT"] == 1
    assert notes["repeated ecg_id in waveform-npy.csv: later row ignored"] == 1
    assert notes["ecg_timetag not '[0]pre': row not used"] == 1
    excluded = report.exclusion_frame().set_index("ecg_id")["reason"].to_dict()
    assert excluded == {
        "frac": "npy_index missing or not an integer",
        "oob": "npy_index outside the waveform array (rows 0..13)",
        "neg": "npy_index outside the waveform array (rows 0..13)",
        "baddate": "no days_to_event: acquisition datetime missing or unparsable",
        "norosc": "no days_to_event: ROSC datetime missing or unparsable"}
    text = report.summary(df.reset_index())
    assert "5 ECGs excluded" not in text and "ECGs excluded (group: reason): 5" in text


def test_two_ecgs_on_one_waveform_row_are_both_excluded(tmp_path):
    """Two ecg_ids whose npy_index names the same row of the stacked array: one waveform
    would be analysed twice under two ids (perhaps two patients); both are excluded, with
    the reason, instead of accepted unnoticed."""
    study = [study_ecg("first", 10, npy_index=1), study_ecg("second", 10, npy_index=1),
             study_ecg("alone", 10, npy_index=0)]
    df, report = build(write_tree(tmp_path, study))
    assert "alone" in df.index and "first" not in df.index and "second" not in df.index
    excluded = report.exclusion_frame().set_index("ecg_id")["reason"].to_dict()
    assert excluded == {"first": "npy_index shared with another ecg_id (one waveform for two "
                                 "ECGs)",
                        "second": "npy_index shared with another ecg_id (one waveform for two "
                                  "ECGs)"}


def test_ids_that_read_like_missing_values_are_ids(tmp_path):
    """pandas reads "NA", "None" and "nan" as missing: such ECG ids were counted as rows
    without an ecg_id. They are ids (text as written); in other columns the markers still
    mean missing (an age of "NA" is a missing age)."""
    study = [study_ecg("NA", 10), study_ecg("None", 10, age="NA"), study_ecg("nan", 10)]
    df, report = build(write_tree(tmp_path, study))
    assert {"NA", "None", "nan"} <= set(df.index)
    assert np.isnan(df.loc["None", "age"])
    assert not any("without ecg_id" in message for _, message in report.notes)


def test_numeric_looking_ids_stay_strings(tmp_path):
    study = [Ecg("007", "0042", before_rosc(10)), Ecg("7", "42", before_rosc(20))]
    df, _ = build(write_tree(tmp_path, study, {YEAR: [control_ecg("0100", 30, "0099")]}))
    assert sorted(df.index) == ["007", "0100", "7"]
    assert sorted(df["patient_ngsci_id"]) == ["0042", "0099", "42"]


# --------------------------------------------------------------------------------------
# Input checks: every missing file, column or folder named, exit 2
# --------------------------------------------------------------------------------------
def test_check_names_missing_file_and_column(tmp_path):
    root = write_tree(tmp_path / "v1", [study_ecg("s", 10)])
    (root / "study-group/cohort.csv").unlink()
    table = root / f"control-group/{YEAR}/pre/ecg-metadata/measurement-matrix-global.csv"
    pd.read_csv(table).drop(columns="qtc").to_csv(table, index=False)
    with pytest.raises(PipelineError) as err:
        build_cohort(root, [YEAR])
    message = str(err.value)
    assert f"{root / 'study-group/cohort.csv'}: file not found" in message
    assert f"{table}: missing column(s) qtc" in message
    assert "\n" not in message


def test_check_names_unreadable_inputs(tmp_path):
    root = write_tree(tmp_path / "v1", [study_ecg("s", 10)])
    (root / "study-group/ecg-metadata/diagnosis.csv").write_text("")
    array = root / f"control-group/{YEAR}/pre/ecg-waveforms/waveform-rhythm.npy"
    np.save(array, np.zeros((3, 8, 10), dtype=np.int16))
    with pytest.raises(PipelineError) as err:
        build_cohort(root, [YEAR])
    assert str(err.value) == (
        f"{root / 'study-group/ecg-metadata/diagnosis.csv'}: cannot read a CSV header "
        f"(EmptyDataError: no header line); {array}: expected shape (n, 12, samples), got (3, 8, 10)")
    with pytest.raises(PipelineError, match="data root not found"):
        build_cohort(tmp_path / "nowhere", [YEAR])


@pytest.mark.parametrize("row", [1, 2])
def test_a_row_with_more_fields_than_the_header_is_named(tmp_path, row):
    """An unquoted comma in a free-text cell ("cardiac event, VF suspected") shifted that
    row's later values one column on (the date into initial_rhythm), unnoticed; now the file
    and line are named. Row 1 is the case pandas would have read as an index column."""
    root = write_tree(tmp_path / "v1", [study_ecg("s", 10), study_ecg("t", 20)])
    rosc = root / "study-group/rosc-outcomes.csv"
    lines = rosc.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cause = header.index("cause_of_cardiac_arrest")
    cells[cause] = cells[cause] + ", VF suspected"
    lines[row] = ",".join(cells)
    rosc.write_text("\n".join(lines) + "\n")
    with pytest.raises(PipelineError) as err:
        build_cohort(root, [YEAR])
    assert str(err.value) == (f"{rosc}: line {row + 1} has {len(header) + 1} fields, the "
                              f"header {len(header)} (an unquoted comma in a cell?); quote "
                              "that cell")


def test_a_cohort_without_any_ecg_is_refused_and_says_why(tmp_path):
    """Header-only waveform indexes (or every ECG excluded) gave an empty covariate_df that
    x02-x06 processed to the end with exit 0; now x01 stops in one line, its exclusions list
    written, and the earlier table stays. --control-years with a year twice read it twice."""
    root = write_tree(tmp_path / "arrest-ntuh-ecg/v1", [study_ecg("s", 10)])
    run_script(X01, "--control-years", str(YEAR), cwd=tmp_path)
    before = (tmp_path / "covariate_df.feather").read_bytes()
    for index in root.rglob("waveform-npy.csv"):
        index.write_text(index.read_text().splitlines()[0] + "\n")
    proc = run_script(X01, "--control-years", str(YEAR), cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: no ECG left in the cohort (0 rows read, 0 excluded: reasons in "
        "x01_exclusions.csv); covariate_df.feather not written")
    assert (tmp_path / "covariate_df.feather").read_bytes() == before
    proc = run_script(X01, "--control-years", str(YEAR), str(YEAR), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: --control-years {YEAR} given more than once (its ECGs would be read twice)")


def test_script_exits_2_naming_missing_input(tmp_path):
    root = write_tree(tmp_path / "arrest-ntuh-ecg/v1", [study_ecg("s", 10)])
    (root / "study-group/ecg-waveforms/waveform-rhythm.npy").unlink()
    proc = run_script(X01, "--control-years", str(YEAR), cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: arrest-ntuh-ecg/v1/study-group/ecg-waveforms/"
                                   "waveform-rhythm.npy: file not found")
    assert not (tmp_path / "covariate_df.feather").exists()

    write_tree(root, [study_ecg("s", 10)])
    rosc = root / "study-group/rosc-outcomes.csv"
    pd.read_csv(rosc).drop(columns="cause_of_cardiac_arrest").to_csv(rosc, index=False)
    proc = run_script(X01, "--control-years", str(YEAR), cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "rosc-outcomes.csv: missing column(s) cause_of_cardiac_arrest" in proc.stderr


def test_absent_control_year_needs_control_years(tmp_path):
    root = write_tree(tmp_path / "v1", [study_ecg("s", 10)],
                      {2015: [control_ecg("a", 30)], 2017: [control_ecg("b", 30)]})
    with pytest.raises(PipelineError,
                       match=r"control-group: control year folder\(s\) not found: 2016, 2018 "):
        build_cohort(root, [2015, 2016, 2017, 2018])
    df, _ = build_cohort(root, [2015, 2017])
    assert df["group"].tolist() == ["study", "2015", "2017"]
    shutil.rmtree(root / "control-group/2017")
    df, _ = build_cohort(root, [])
    assert df["group"].tolist() == ["study"]


# --------------------------------------------------------------------------------------
# x02 and reruns
# --------------------------------------------------------------------------------------
def test_pipeline_columns(tmp_path):
    study = [study_ecg("s60", 60), study_ecg("s120", 120), study_ecg("s300", 300),
             study_ecg("s500", 500), study_ecg("old", 60, age="85"),
             study_ecg("nosex", 60, sex=""), study_ecg("d1", 1, rhythm="PEA"),
             study_ecg("norhythm", 60, rhythm=None)]
    controls = {YEAR: [control_ecg(f"c{i}", 30 + i) for i in range(400)]}
    df, _ = build_cohort(write_tree(tmp_path, study, controls), [YEAR])
    out = add_pipeline_columns(df).set_index("studyId")
    assert is_processed(out.reset_index()) and not is_processed(df)
    assert out.loc["s60", "ptId"] == "ps60" and out["scaling_factor"].eq(1000).all()
    assert out.loc[["s60", "c0"], "include_modelling"].all()
    assert not out.loc[["old", "nosex", "d1"], "include_modelling"].any()
    interval = out[["scd3mo_6mo", "scd6mo_1", "scd1_2"]]
    assert interval.loc["s60"].tolist() == [0, 0, 0]
    assert interval.loc["s120"].tolist() == [1, 0, 0]
    assert interval.loc["s300"].tolist() == [0, 1, 0]
    assert interval.loc["s500"].tolist() == [0, 0, 1]
    assert out.loc["s60", "VTVF"] and not out.loc[["d1", "norhythm", "c0"], "VTVF"].any()
    assert out["VFVT"].equals(out["VTVF"])
    for dead, scd in (("dead3mo", "scd3mo"), ("dead6mo", "scd6mo"), ("dead1", "scd1"),
                      ("dead2", "scd2")):
        assert (out[dead] >= out[scd]).all() and out[dead].isin([0, 1]).all()
    controls_out = out.loc[out["group"] == str(YEAR)]
    assert 0 < controls_out["dead2"].sum() < 0.15 * len(controls_out)
    assert out[["low_ef", "LBBB", "Old_MI", "deltawave"]].eq(False).all().all()
    assert out["most_recent_ef"].between(20, 70).all()
    assert out["pDuration"].between(0, 160).all()
    assert (out["pDuration"].between(20, 120)).mean() > 0.85
    assert out["qrsFrontAxis"].between(-90, 90).all() and out["qrsHorizAxis"].abs().max() <= 90
    assert out["heartRate"].eq(75).all() and out["meanqtc"].equals(out["qtcb"])
    again = add_pipeline_columns(df).set_index("studyId")
    pd.testing.assert_frame_equal(out, again)
    other = add_pipeline_columns(df, seed=1).set_index("studyId")
    assert not np.allclose(out["most_recent_ef"], other["most_recent_ef"])


def test_placeholder_draws_follow_patient_id_order(tmp_path):
    """Row 15: the i-th seeded draw goes to the i-th patient by id (the published groupby
    order), whatever the table's row order."""
    study = [study_ecg(f"s{i}", 60 + i, patient=f"p{9 - i}") for i in range(6)]
    df, _ = build_cohort(write_tree(tmp_path, study), [YEAR])   # + one control, patient cc1
    out = add_pipeline_columns(df)
    rng = np.random.RandomState(42)
    for _ in range(4):
        rng.uniform(size=len(df))
    ef = rng.triangular(20.0, 55.0, 70.0, size=len(df))
    by_patient = out.set_index("ptId")["most_recent_ef"].sort_index()
    np.testing.assert_allclose(by_patient.to_numpy(), ef)
    shuffled = add_pipeline_columns(df.iloc[::-1].reset_index(drop=True))
    pd.testing.assert_series_equal(shuffled.set_index("ptId")["most_recent_ef"].sort_index(),
                                   by_patient)
    assert patient_order(pd.Series(["10", "9", "011"])).tolist() == [1, 0, 2]   # 9 < 10 < 11
    assert patient_order(pd.Series(["b10", "a9", "b9"])).tolist() == [1, 0, 2]  # as text


def test_control_tagged_ecg_in_a_year_folder_is_dropped(tmp_path):
    """Row 16: only ECGs tagged "pre" in ecg-cohort.csv get dates, as published; the others
    are excluded with the reason."""
    root = write_tree(tmp_path, [study_ecg("s", 10)],
                      {YEAR: [control_ecg("keep", 50), control_ecg("anchor", 50)]})
    table = pd.read_csv(root / "control-group" / "ecg-cohort.csv", dtype=str)
    table.loc[table["ecg_id"] == "anchor", "ecg_timetag"] = "control"
    table.to_csv(root / "control-group" / "ecg-cohort.csv", index=False)
    df, report = build(root)
    assert "keep" in df.index and "anchor" not in df.index
    assert [(r["record"], r["reason"]) for r in report.excluded.rows] == [
        ("anchor", "not tagged 'pre' in control-group/ecg-cohort.csv (a control ECG)")]


def test_scripts_rerun_byte_identical(tmp_path):
    write_tree(tmp_path / "arrest-ntuh-ecg/v1",
               [study_ecg("a", 10), study_ecg("b", 500, age="89+"), study_ecg("c", 3, sex="?")])
    table = tmp_path / "covariate_df.feather"
    hashes = []
    for _ in range(2):
        first = run_script(X01, "--control-years", str(YEAR), cwd=tmp_path)
        assert "[x01] kept 4 ECGs of 4 patients" in first.stdout
        run_script(X02, cwd=tmp_path)
        hashes.append(sha256(table))
    assert hashes[0] == hashes[1]
    second = run_script(X02, cwd=tmp_path)
    assert "already has the pipeline columns" in second.stdout
    assert sha256(table) == hashes[0]
    exclusions = pd.read_csv(tmp_path / "x01_exclusions.csv")
    assert list(exclusions.columns) == ["group", "ecg_id", "reason"] and exclusions.empty
    df = pd.read_feather(table)
    assert df["studyId"].map(type).eq(str).all() and df["ptId"].map(type).eq(str).all()


# --------------------------------------------------------------------------------------
# The shared synthetic study
# --------------------------------------------------------------------------------------
CONTRACT_COLUMNS = ("studyId", "ptId", "group", "file_path", "npy_index", "days_to_event",
                    "age", "female", *LABELS, "include_modelling", "scaling_factor",
                    "dead3mo", "dead6mo", "dead1", "dead2", "scd3mo_6mo", "scd6mo_1", "scd1_2",
                    "heartRate", "qrsDuration", "qtInterval", "qtcb", "qtcf", "rrInterval",
                    "atrialrate", "ST_elevation", "ST_depression", "qtc500", "lbbb", "dltwv",
                    "VTVF", "VFVT", "pDuration", "qrsFrontAxis", "qrsHorizAxis",
                    "most_recent_ef", "meanqtc", "low_ef", "ICD_VT1", "Old_MI")


def test_synthetic_study_cohort(pipeline):
    ws = pipeline.ensure("x02")
    df = pd.read_feather(ws / "covariate_df.feather")
    assert [c for c in CONTRACT_COLUMNS if c not in df.columns] == []
    assert df["studyId"].is_unique and df["ptId"].is_unique
    assert df["studyId"].map(type).eq(str).all() and df["ptId"].map(type).eq(str).all()
    assert set(df["group"]) <= {"study", "2015", "2016", "2017", "2018", "2019"}
    assert (df["group"] == "study").any() and (df["group"] != "study").any()
    controls = df.loc[df["group"] != "study"]
    assert controls[list(LABELS)].to_numpy().sum() == 0
    assert df["scd1"].sum() > 0 and df["arrest_noncardiac"].sum() > 0
    assert ((df["scd1"] == 1) <= (df["days_to_event"] >= 2)).all()
    for path, rows in df.groupby("file_path")["npy_index"]:
        n = np.load(ws / path, mmap_mode="r").shape[0]
        assert rows.between(0, n - 1).all(), path
    assert df["include_modelling"].mean() > 0.5

    # The generator's ground truth: the same ECG chosen per patient, the same days and labels.
    truth = pd.read_csv(ws / "arrest-ntuh-ecg/synthetic_truth.csv",
                        dtype={"ecg_id": str, "patient_ngsci_id": str})
    chosen = truth.loc[truth["selected"]].set_index("ecg_id")
    assert set(df["studyId"]) == set(chosen.index)
    ours = df.set_index("studyId").loc[chosen.index]
    assert (ours["ptId"] == chosen["patient_ngsci_id"]).all()
    assert (ours["days_to_event"] == np.floor(chosen["days_to_event"])).all()
    assert (ours["scd1"] == chosen["scd1"].astype(float)).all()
    exclusions = pd.read_csv(ws / "x01_exclusions.csv", dtype=str).set_index("ecg_id")
    planted = truth.dropna(subset=["odd"]).set_index("ecg_id")["odd"]
    for ecg_id, odd in planted.items():
        if odd == "npy_index out of range":
            assert exclusions.loc[ecg_id, "reason"].startswith("npy_index outside")
        elif odd == "acquisition datetime unparsable":
            assert exclusions.loc[ecg_id, "reason"].endswith("acquisition datetime missing "
                                                             "or unparsable")


def test_several_control_ecgs_per_patient_the_earliest_is_used(tmp_path):
    root = write_tree(tmp_path, [study_ecg("s", 10)], {YEAR: [control_ecg("c", 100, patient="pc")]})
    path = root / "control-group" / "ecg-cohort.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    control = table.loc[table["ecg_timetag"] == "control"].iloc[0]
    at = pd.Timestamp(control["acquisition_datetime_offset"])
    extra = [dict(control, ecg_id=f"later{i}", acquisition_datetime_offset=str(at + pd.Timedelta(days=d)))
             for i, d in enumerate((-70, 200))]            # one earlier, one later
    pd.concat([table, pd.DataFrame(extra)]).to_csv(path, index=False)
    df, report = build(root)
    assert df.loc["c", "days_to_event"] == 30               # to the earliest control ECG
    assert report.notes[("control", "patient with several control ECGs: earliest used")] == 1


def test_modelling_age_limit_is_strictly_below_80(tmp_path):
    df, _ = build_cohort(write_tree(tmp_path, [study_ecg("a", 60), study_ecg("b", 60),
                                               study_ecg("c", 60)]), [YEAR])
    df = df.set_index("ecg_id")
    df.loc[["a", "b", "c"], "age"] = [79.99, 80.0, 80.01]
    out = add_pipeline_columns(df.reset_index()).set_index("studyId")
    assert out.loc[["a", "b", "c"], "include_modelling"].tolist() == [True, False, False]


# --------------------------------------------------------------------------------------
# Edges found by mutation testing (benchmarks/mutation.py cohort pipeline_columns)
# --------------------------------------------------------------------------------------
def test_control_dates_notes_repeats_odd_tags_bad_datetimes_and_several_control_ecgs(tmp_path):
    root = write_tree(tmp_path, [study_ecg("s", 10)],
                      {YEAR: [control_ecg("a", 100, patient="pa"), control_ecg("b", 100, patient="pb")]})
    path = root / "control-group" / "ecg-cohort.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    a_ctl = table.loc[table["ecg_id"] == "a_ctl"].iloc[0]
    extra = [dict(a_ctl, ecg_id="a_ctl2"),                               # pa: two control ECGs
             dict(a_ctl, ecg_id="a_ctl", acquisition_datetime_offset="x"),  # a repeat: ignored
             dict(a_ctl, ecg_id="odd", ecg_timetag="later"),
             dict(a_ctl, ecg_id="bad", ecg_timetag="pre", acquisition_datetime_offset="2015-02-30")]
    pd.concat([table, pd.DataFrame(extra)]).to_csv(path, index=False)
    df, report = build(root)
    notes = {msg: n for (group, msg), n in report.notes.items() if group == "control"}
    assert notes == {
        "repeated ecg_id in ecg-cohort.csv: later row ignored": 1,
        "acquisition datetime (ecg-cohort.csv) unparsable -> NaT": 1,
        "ecg_timetag in control-group/ecg-cohort.csv neither 'pre' nor 'control' "
        "(not a control ECG): 'later' 1": 1,
        "patient with several control ECGs: earliest used": 1}
    assert df.loc[["a", "b"], "days_to_event"].tolist() == [100, 100]


def test_control_group_exclusion_reasons_notes_and_missing_cause(tmp_path):
    controls = [control_ecg("ok", 50), control_ecg("odd", 60, age="unknown", sex="U"),
                control_ecg("unlisted", 50), control_ecg("notag", 50), control_ecg("nopat", 50),
                control_ecg("baddate", 50), control_ecg("badctl", 50)]
    root = write_tree(tmp_path, [study_ecg("s", 10)], {YEAR: controls})
    path = root / "control-group" / "ecg-cohort.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table = table.loc[table["ecg_id"] != "unlisted"]
    table.loc[table["ecg_id"] == "notag", "ecg_timetag"] = ""
    table.loc[table["ecg_id"] == "nopat", "patient_ngsci_id"] = ""
    table.loc[table["ecg_id"] == "baddate", "acquisition_datetime_offset"] = "soon"
    table.loc[table["ecg_id"] == "badctl_ctl", "acquisition_datetime_offset"] = "later"
    table.to_csv(path, index=False)
    df, report = build(root)
    assert sorted(df.index) == ["odd", "ok", "s"]
    reasons = report.exclusion_frame().set_index("ecg_id")
    assert reasons["group"].eq(str(YEAR)).all()
    assert reasons["reason"].to_dict() == {
        "unlisted": "not listed in control-group/ecg-cohort.csv",
        "notag": "not tagged 'pre' in control-group/ecg-cohort.csv (a control ECG)",
        "nopat": "no patient_ngsci_id",
        "baddate": "no days_to_event: acquisition datetime missing or unparsable",
        "badctl": "no days_to_event: control-ECG datetime missing or unparsable"}
    notes = {msg: n for (group, msg), n in report.notes.items() if group == str(YEAR)}
    assert notes["age missing or without digits -> NaN"] == 2        # odd, and unlisted
    assert notes["sex not male/female -> female NaN"] == 2           # (no cohort row)
    assert df["cause_of_cardiac_arrest"].dtype == "string"
    assert df.loc[["ok", "odd"], "cause_of_cardiac_arrest"].isna().all()


def test_category_labels_ignore_case_and_runs_of_inner_whitespace():
    from scdecg.cohort import in_category, normalise_category

    values = pd.Series(["Cardiac  Event", "cardiac\tevent", " CARDIAC EVENT ", "cardiac-event",
                        None], dtype=object)
    assert normalise_category(values).tolist()[:4] == ["cardiac event"] * 3 + ["cardiac-event"]
    assert in_category(values, ["Cardiac \n Event"]).tolist() == [True, True, True, False, False]


def test_one_ecg_per_patient_counts_exactly_two_days_as_eligible():
    from scdecg.cohort import one_ecg_per_patient

    df = pd.DataFrame({"ecg_id": ["a5", "a2", "b1", "b0"], "patient_ngsci_id": ["pa", "pa", "pb", "pb"],
                       "days_to_event": [5.0, 2.0, 1.0, 0.0], "group": "study"})
    assert one_ecg_per_patient(df)["ecg_id"].tolist() == ["a2", "b0"]


def test_a_patient_in_the_study_group_and_a_control_year_stays_a_case():
    """The published rule (smallest days >= 2 over all the patient's ECGs) would keep the
    control-year ECG (829 days to its control ECG) over the study ECG (1452 days to the
    arrest), turning an arrest into a non-event control."""
    from scdecg.cohort import one_ecg_per_patient, patients_in_both_groups

    df = pd.DataFrame({"ecg_id": ["s1", "c1", "c2", "s9"], "patient_ngsci_id": ["p", "p", "q", "r"],
                       "days_to_event": [1452.0, 829.0, 30.0, 1.0],
                       "group": ["study", "2015", "2016", "study"]})
    assert one_ecg_per_patient(df)["ecg_id"].tolist() == ["s1", "c2", "s9"]
    assert patients_in_both_groups(df).tolist() == ["p"]


def test_pipeline_columns_need_the_x01_columns_count_two_days_and_make_vtvf_boolean(tmp_path):
    df, _ = build_cohort(write_tree(tmp_path, [study_ecg("two", 2), study_ecg("one", 1),
                                              study_ecg("pea", 10, rhythm="PEA")]), [YEAR])
    out = add_pipeline_columns(df).set_index("studyId")
    assert out.loc[["two", "one"], "include_modelling"].tolist() == [True, False]
    assert out["VTVF"].dtype == bool and out["VFVT"].dtype == bool
    assert out.loc[["two", "one", "pea", "c1"], "VTVF"].tolist() == [True, True, False, False]
    with pytest.raises(PipelineError, match=r"^cohort table: missing column\(s\) qtc, avg_rr "
                                            r"\(run x01\)$"):
        add_pipeline_columns(df.drop(columns=["avg_rr", "qtc"]))


def test_placeholder_draws_are_the_seeded_sequence_in_patient_order(tmp_path):
    """Every placeholder is the published draw sequence of RandomState(42), in patient-id
    order: deaths, EF, pDuration (bin, then value), the two QRS axes."""
    study = [study_ecg(f"s{i}", 60 + i, patient=f"p{9 - i}") for i in range(6)]
    df, _ = build_cohort(write_tree(tmp_path, study), [YEAR])
    out = add_pipeline_columns(df).set_index("ptId").sort_index()
    n = len(df)
    rng = np.random.RandomState(42)
    deaths = [rng.uniform(size=n) for _ in range(4)]
    ef = rng.triangular(20.0, 55.0, 70.0, size=n)
    bins = rng.choice(3, size=n, p=[0.025, 0.95, 0.025])
    low, high = np.array([0.0, 20.0, 120.0])[bins], np.array([20.0, 120.0, 160.0])[bins]
    p_duration = rng.uniform(low, high)
    front, horiz = rng.uniform(-90, 90, size=n), rng.uniform(-90, 90, size=n)
    for name, draw, prob in zip(("dead3mo", "dead6mo", "dead1", "dead2"), deaths,
                                (0.02, 0.03, 0.04, 0.05)):
        label = out[{"dead3mo": "scd3mo", "dead6mo": "scd6mo", "dead1": "scd1",
                     "dead2": "scd2"}[name]]
        np.testing.assert_array_equal(out[name], ((draw < prob) | (label == 1)).astype(float))
    np.testing.assert_allclose(out["most_recent_ef"], ef)
    np.testing.assert_allclose(out["pDuration"], p_duration)
    np.testing.assert_allclose(out["qrsFrontAxis"], front)
    np.testing.assert_allclose(out["qrsHorizAxis"], horiz)
    # numeric ids in the order pandas read them: 9 < 010 < 11
    assert patient_order(pd.Series(["010", "9", "11"])).tolist() == [1, 0, 2]


def test_dates_without_a_day_odd_years_and_short_offsets():
    from scdecg.cohort import CohortReport, parse_datetime

    report = CohortReport()
    values = pd.Series(["2020-09-21 00:43", "2020-09-21 00:43+08", "2020-09", "2016",
                        "1015-03-04", "9999-12-31 23:59", "garbage", None], dtype=object)
    out = parse_datetime(values, "acquisition", "study", report)
    assert out.iloc[0] == out.iloc[1] == pd.Timestamp("2020-09-21 00:43")
    assert out.iloc[2:].isna().all()
    notes = {message: n for (_, message), n in report.notes.items()}
    assert notes["acquisition without a day (only a year or month) -> NaT: '2020-09' 1, "
                 "'2016' 1"] == 2
    assert notes["acquisition outside the years 1900-2100 -> NaT: '1015-03-04' 1, "
                 "'9999-12-31 23:59' 1"] == 2
    assert notes["acquisition unparsable -> NaT"] == 1
    assert notes["acquisition with a timezone: offset dropped, clock time kept"] == 1


def test_a_stray_quote_that_swallows_rows_stops_x01_naming_the_row(tmp_path):
    from scdecg.cohort import read_table

    path = tmp_path / "diagnosis.csv"
    path.write_text('ecg_id,stmt_text\ne1,normal\ne2,"sinus rhythm\ne3,left bundle branch '
                    'block\ne4,abnormal"\ne5,normal\n')
    with pytest.raises(PipelineError, match=r"diagnosis.csv: data row 2, column 'stmt_text': a "
                       r"quoted cell spans several lines"):
        read_table(path, ["ecg_id", "stmt_text"])


def test_timetags_in_another_case_are_read(tmp_path):
    root = write_tree(tmp_path, [study_ecg("s1", 30, timetag="[0]PRE"),
                                 study_ecg("s2", 40, timetag=" [0]Pre ")])
    cohort_csv = root / "control-group" / "ecg-cohort.csv"
    cohort_csv.write_text(cohort_csv.read_text().replace(",pre,", ",Pre,")
                          .replace(",control,", ",CONTROL,"))
    df, _ = build_cohort(root, [YEAR])
    assert sorted(df["ecg_id"]) == ["c1", "s1", "s2"]
    assert df.set_index("ecg_id").loc["c1", "days_to_event"] == 100


def test_a_control_year_folder_left_out_of_control_years_is_named(tmp_path):
    root = write_tree(tmp_path, [study_ecg("s1", 30)],
                      {YEAR: [control_ecg("c1", 100)], YEAR + 1: [control_ecg("c2", 50)]})
    df, report = build_cohort(root, [YEAR])
    assert "c2" not in set(df["ecg_id"])
    notes = [message for (_, message), n in report.notes.items()]
    assert any(m.startswith("control-year folder present but not read (not in "
                            f"--control-years): '{YEAR + 1}' 1") for m in notes), notes


def test_headers_in_another_case_are_read_and_control_bytes_named(tmp_path):
    """Exports with upper-case or spaced headers; a NUL byte (pandas cut the id there) or a bare
    carriage return (pandas split the row there) inside a row."""
    from scdecg.cohort import read_table

    path = tmp_path / "cohort.csv"
    path.write_text("ECG_ID, Age ,SEX\ne1,60,male\n")
    assert read_table(path, ["ecg_id", "age", "sex"]).to_dict("records") == [
        {"ecg_id": "e1", "age": "60", "sex": "male"}]
    path.write_bytes(b"ecg_id,age\ne1,60\ne2\x00x,61\n")
    with pytest.raises(PipelineError, match=r"cohort.csv: line 3 holds a NUL byte"):
        read_table(path, ["ecg_id", "age"])
    path.write_bytes(b"ecg_id,age\ne1,60\ne2\rx,61\n")
    with pytest.raises(PipelineError, match=r"cohort.csv: line 3 holds a carriage return"):
        read_table(path, ["ecg_id", "age"])
