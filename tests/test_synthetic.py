"""The synthetic NTUH generator: physiology, gain fault, layout, truth, faults, reproducibility."""
from __future__ import annotations

import hashlib
import importlib.util
import io
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scdecg.constants import LEAD_INDEX, LEADS, N_SAMPLES, NTUH_GAIN_FAULT
from scdecg.synthetic import (CohortDesign, EcgParams, sample_cohort, sample_ecg_params,
                              simulate_ecg, stored_waveform, write_synthetic_ntuh)

ROOT = Path(__file__).resolve().parents[1]
X00 = "00_Data_Preprocessing/x00_make_synthetic_ntuh.py"
I, II, III, AVR, AVL, AVF = (LEAD_INDEX[n] for n in ("I", "II", "III", "aVR", "aVL", "aVF"))

#: Every file and column that ntuh-data.md lists (paths relative to the data root).
METADATA = {
    "ecg-metadata/measurement-matrix-per-lead.csv": ["ecg_id", "lead", "stelev", "stdown", "dltwv"],
    "ecg-metadata/measurement-matrix-global.csv": ["ecg_id", "qtc", "avg_rr"],
    "ecg-metadata/resting-ecg-measurements.csv": ["ecg_id", "ventricular_rate", "atrial_rate",
                                                  "qrs_duration", "qt_interval", "qtc_frederica"],
    "ecg-metadata/diagnosis.csv": ["ecg_id", "stmt_text"],
}
LAYOUT = {
    "study-group/ecg.csv": ["patient_ngsci_id", "ecg_id", "acquisition_datetime_offset", "ecg_timetag"],
    "study-group/cohort.csv": ["ecg_id", "age", "sex", "rosc_datetime_offset"],
    "study-group/rosc-outcomes.csv": ["ecg_id", "cause_of_cardiac_arrest",
                                      "hospitalization_datetime_offset", "initial_rhythm"],
    "study-group/comorbidities.csv": ["ecg_id"],
    "study-group/ecg-waveforms/waveform-npy.csv": ["ecg_id", "npy_index", "ecg_timetag"],
    "control-group/ecg-cohort.csv": ["ecg_id", "patient_ngsci_id", "acquisition_datetime_offset",
                                     "ecg_timetag", "age", "sex"],
    **{f"study-group/{k}": v for k, v in METADATA.items()},
    **{f"control-group/{y}/pre/ecg-waveforms/waveform-npy.csv": ["ecg_id", "npy_index"]
       for y in range(2015, 2020)},
    **{f"control-group/{y}/pre/{k}": v for y in range(2015, 2020) for k, v in METADATA.items()},
}
DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}|\d{4}/\d{2}/\d{2} \d{2}:\d{2}"
                      r"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}|unknown)$")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A small tree with many faults (so every kind shows up)."""
    root = tmp_path_factory.mktemp("synthetic") / "arrest-ntuh-ecg" / "v1"
    truth = write_synthetic_ntuh(root, 90, seed=3, design=CohortDesign(fault_fraction=0.5),
                                 progress=False)
    return root, truth


def read(root: Path, rel: str) -> pd.DataFrame:
    return pd.read_csv(root / rel, dtype=str, keep_default_na=False)


# ------------------------------------------------------------------------------ physiology
def test_clean_ecg_obeys_einthoven_and_goldberger():
    rng = np.random.default_rng(0)
    for _ in range(5):
        ecg = simulate_ecg(sample_ecg_params(rng, slur=rng.random()), rng)
        assert ecg.shape == (12, N_SAMPLES)
        scale = np.abs(ecg[:2]).max()
        assert scale > 200  # a real signal, not zeros
        np.testing.assert_allclose(ecg[III], ecg[II] - ecg[I], atol=1e-9 * scale)
        np.testing.assert_allclose(ecg[AVR], -(ecg[I] + ecg[II]) / 2, atol=1e-9 * scale)
        np.testing.assert_allclose(ecg[AVL], ecg[I] - ecg[II] / 2, atol=1e-9 * scale)
        np.testing.assert_allclose(ecg[AVF], ecg[II] - ecg[I] / 2, atol=1e-9 * scale)


def test_stored_derived_leads_carry_the_gain_fault():
    rng = np.random.default_rng(1)
    stored = stored_waveform(sample_ecg_params(rng), np.random.default_rng(2)).astype(float)
    i, ii = stored[I], stored[II]
    implied = {III: ii - i, AVR: -(i + ii) / 2, AVL: i - ii / 2, AVF: ii - i / 2}
    for row, clean in implied.items():
        # I and II are each rounded by <= 0.5 µV; the derived lead by <= 0.5 after scaling.
        assert np.abs(stored[row] - NTUH_GAIN_FAULT * clean).max() <= 0.5 + NTUH_GAIN_FAULT * 1.0
        gain = (stored[row] @ clean) / (clean @ clean)
        assert gain == pytest.approx(NTUH_GAIN_FAULT, rel=2e-3)


def test_rpeaks_are_where_the_qrs_is():
    params = EcgParams(heart_rate=60, noise_uv=0, wander_uv=0, mains_uv=0, axis_deg=45)
    ecg, rpeaks = simulate_ecg(params, np.random.default_rng(0), return_rpeaks=True)
    assert 8 <= len(rpeaks) <= 12
    assert np.median(np.diff(rpeaks)) == pytest.approx(500, rel=0.1)
    for r in rpeaks[1:-1]:
        assert abs(int(np.argmax(ecg[II, r - 20:r + 20])) - 20) <= 2


# ------------------------------------------------------------------------------ biomarker
def avl_rs_slope(ecg: np.ndarray, rpeaks: np.ndarray) -> float:
    """Mean |first difference| from R to S on the min-max normalised aVL median beat."""
    lead = ecg[AVL]
    beats = np.stack([lead[r - 250:r + 250] for r in rpeaks if 250 <= r <= lead.size - 250])
    median = np.median(beats[1:-1], axis=0)
    norm = (median - median.min()) / (median.max() - median.min())
    d1 = np.diff(norm)
    r = 240 + int(np.argmax(norm[240:261]))
    s = next((i for i in range(r + 1, r + 61) if (np.abs(d1[i:i + 3]) < 0.01).all()), r + 61)
    return float(np.mean(np.abs(d1[r:s])))


def test_slur_lowers_the_avl_downstroke_slope_whatever_the_axis():
    rng = np.random.default_rng(5)
    slopes = {0.0: [], 0.5: [], 1.0: []}
    for axis in (-20.0, 10.0, 40.0, 60.0, 75.0, 100.0):  # +60: perpendicular to aVL
        base = replace(sample_ecg_params(rng), axis_deg=axis)
        for slur in slopes:
            ecg, rpeaks = simulate_ecg(replace(base, slur=slur), np.random.default_rng(9),
                                       return_rpeaks=True)
            slopes[slur].append(avl_rs_slope(ecg, rpeaks))
    means = [np.mean(v) for v in slopes.values()]
    assert means[0] > means[1] > means[2]
    assert (np.array(slopes[0.0]) > np.array(slopes[1.0])).all()


def test_the_slur_slows_the_avl_r_without_raising_it_whatever_the_axis():
    """Every R has an aVL R of at least SLUR_MIN_UV to slow; the slur widens its downstroke
    but leaves its peak (a slowed component larger than the R it slowed drew a taller, later
    aVL R at vertical axes, which models then learned instead of the slur)."""
    from scdecg.synthetic import LEAD_VECTORS, SLUR_MIN_UV, TEMPLATE_PRE, dipole_template

    avl = LEADS.index("aVL")
    rng = np.random.default_rng(3)
    for axis in (-20.0, 10.0, 40.0, 60.0, 75.0, 100.0):
        base = replace(sample_ecg_params(rng), axis_deg=axis, st_early=(0, 0, 0),
                       st_late=(0, 0, 0), delta_wave=False)
        leads = {s: LEAD_VECTORS @ dipole_template(replace(base, slur=s)) for s in (0.0, 0.5, 1.0)}
        qrs = slice(TEMPLATE_PRE - 40, TEMPLATE_PRE + 60)
        peaks = {s: x[avl, qrs].max() for s, x in leads.items()}
        assert peaks[0.0] >= 0.8 * SLUR_MIN_UV, axis   # the aVL lead vector is sqrt(3)/2 long
        assert peaks[1.0] == pytest.approx(peaks[0.0], rel=0.02), (axis, peaks)
        late = slice(TEMPLATE_PRE + 10, TEMPLATE_PRE + 30)      # 20-60 ms after R
        assert leads[1.0][avl, late].mean() > leads[0.0][avl, late].mean() + 100, axis


def test_cardiac_cases_carry_more_slur_and_the_oracle_is_moderate():
    ecgs = sample_cohort(1500, seed=11)
    per_patient = ecgs.drop_duplicates("patient_ngsci_id")
    cardiac = per_patient.loc[per_patient["cardiac_cause"], "slur_strength"]
    other = per_patient.loc[~per_patient["cardiac_cause"], "slur_strength"]
    assert cardiac.mean() > other.mean() + 0.15
    assert (cardiac < other.quantile(0.9)).mean() > 0.3  # distributions overlap
    sel = ecgs[ecgs["selected"]]
    y, x = sel["scd1"].to_numpy(), sel["slur_strength"].to_numpy()
    assert 150 <= y.sum() <= 400
    ranks = pd.Series(x).rank().to_numpy()
    auc = (ranks[y].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (~y).sum())
    assert 0.80 <= auc <= 0.92



def test_the_slur_is_the_only_signal_parameter_that_separates_cases():
    """Every other EcgParams field (amplitudes, axis through age, QRS width, noise, ...) is
    drawn the same way for scd1 cases and the rest: a model that finds anything but the slur
    found chance. AUC of each field for scd1 over the selected ECGs: slur high, others near
    0.5 (227 cases: the AUC's SE is about 0.02; 0.07 is over three SEs)."""
    from dataclasses import asdict

    ecgs = sample_cohort(1500, seed=0)
    sel = ecgs[ecgs["selected"] & ecgs["params"].notna()]
    params = pd.DataFrame([asdict(p) for p in sel["params"]])
    y = sel["scd1"].to_numpy()

    def auc(v):
        ranks = pd.Series(v).rank().to_numpy()
        return (ranks[y].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (~y).sum())

    aucs = {c: auc(params[c].astype(float).to_numpy()) for c in params
            if params[c].dtype != object and params[c].astype(float).std() > 0}
    assert aucs.pop("slur") > 0.8
    assert {"r_amp", "axis_deg", "qrs_ms", "noise_uv", "s_amp", "t_amp"} <= set(aucs)
    off = {c: round(a, 3) for c, a in aucs.items() if abs(a - 0.5) > 0.07}
    assert not off, f"fields that separate scd1 cases besides the slur: {off}"

# ------------------------------------------------------------------------------ files
def test_layout_has_every_file_and_column(dataset):
    root, _ = dataset
    for rel, columns in LAYOUT.items():
        assert (root / rel).exists(), rel
        header = read(root, rel).columns
        assert set(columns) <= set(header), (rel, set(columns) - set(header))
    for folder in ["study-group"] + [f"control-group/{y}/pre" for y in range(2015, 2020)]:
        assert (root / folder / "ecg-waveforms/waveform-rhythm.npy").exists()
    assert (root.parent / "synthetic_truth.csv").exists()


def test_truth_matches_the_files(dataset):
    root, truth = dataset
    on_disk = pd.read_csv(root.parent / "synthetic_truth.csv", keep_default_na=False)
    assert list(on_disk["ecg_id"]) == list(truth["ecg_id"])
    stored = truth[truth["npy_index"] >= 0]
    for npy_file, rows in stored.groupby("npy_file"):
        array = np.load(root / npy_file, mmap_mode="r")
        assert array.dtype == np.int16 and array.shape[1:] == (12, N_SAMPLES)
        index = read(root, str(Path(npy_file).parent / "waveform-npy.csv"))
        assert sorted(index["ecg_id"]) == sorted(rows["ecg_id"])
        merged = index.merge(rows, on="ecg_id")
        assert (merged["npy_index_x"].astype(int) == merged["npy_index_y"]).all()
        in_range = rows["npy_index"] < len(array)
        assert sorted(rows.loc[in_range, "npy_index"]) == list(range(len(array)))
        assert set(rows.loc[~in_range, "odd"]) <= {"npy_index out of range"}
    assert (truth["odd"] == "npy_index out of range").sum() == 1
    study = read(root, "study-group/ecg.csv")
    assert sorted(study["ecg_id"]) == sorted(truth.loc[truth["group"] == "study", "ecg_id"])
    controls = read(root, "control-group/ecg-cohort.csv")
    assert sorted(controls["ecg_id"]) == sorted(truth.loc[truth["group"] != "study", "ecg_id"])
    assert set(controls["ecg_timetag"]) == {"pre", "control"}
    assert (controls.groupby("patient_ngsci_id")["ecg_timetag"].apply(sorted)
            .map(tuple) == ("control", "pre")).all()


def test_cohort_design(dataset):
    root, truth = dataset
    study = truth[truth["group"] == "study"]
    assert {"[0]pre", "[0]post"} <= set(study["ecg_timetag"])
    assert study.groupby("patient_ngsci_id").size().max() >= 2
    causes = read(root, "study-group/rosc-outcomes.csv")
    assert "cardiac event" in set(causes["cause_of_cardiac_arrest"])
    assert len(set(causes["cause_of_cardiac_arrest"]) - {"cardiac event", ""}) >= 2
    assert set(causes["initial_rhythm"]) <= {"VT/VF", "PEA", "asystole"}
    pre = study[study["ecg_timetag"] == "[0]pre"]["days_to_event"].dropna()
    assert pre.min() >= 0 and pre.max() > 365 and (pre <= 365).any()
    for rel, column in [("study-group/ecg.csv", "acquisition_datetime_offset"),
                        ("study-group/cohort.csv", "rosc_datetime_offset"),
                        ("study-group/rosc-outcomes.csv", "hospitalization_datetime_offset"),
                        ("control-group/ecg-cohort.csv", "acquisition_datetime_offset")]:
        values = read(root, rel)[column]
        assert values.map(lambda v: bool(DATETIME.match(v))).all(), rel
    acquired = pd.concat([read(root, "study-group/ecg.csv"), read(root, "control-group/ecg-cohort.csv")])
    assert (acquired["acquisition_datetime_offset"] == "unknown").sum() == \
        (truth["odd"] == "acquisition datetime unparsable").sum() >= 1
    ages = pd.concat([read(root, "study-group/cohort.csv")["age"],
                      read(root, "control-group/ecg-cohort.csv")["age"]])
    assert ages.str.fullmatch(r"\d+|89\+|unknown|").all()
    assert set(read(root, "control-group/ecg-cohort.csv")["sex"]) <= {"male", "female", ""}


def test_duplicated_metadata_row(dataset):
    root, truth = dataset
    resting = read(root, "study-group/ecg-metadata/resting-ecg-measurements.csv")
    repeated = resting[resting.duplicated("ecg_id", keep=False)]
    noted = truth.loc[truth["odd"].str.startswith("row duplicated"), "ecg_id"]
    assert len(repeated) == 2 and set(repeated["ecg_id"]) == set(noted)


def test_metadata_matches_the_simulated_ecg(dataset):
    root, truth = dataset
    for folder in ["study-group", "control-group/2016/pre"]:
        resting = read(root, f"{folder}/ecg-metadata/resting-ecg-measurements.csv").drop_duplicates()
        merged = resting.merge(truth, on="ecg_id")
        assert len(merged) == len(resting)
        np.testing.assert_array_equal(merged["ventricular_rate"].astype(int),
                                      np.round(merged["heart_rate"]).astype(int))
        assert (np.abs(merged["qrs_duration"].astype(float) - merged["qrs_ms"]) < 10).all()
        glob = read(root, f"{folder}/ecg-metadata/measurement-matrix-global.csv").merge(truth, on="ecg_id")
        np.testing.assert_allclose(glob["avg_rr"].astype(float), 60000 / glob["heart_rate"], atol=1)
        codes = read(root, f"{folder}/ecg-metadata/measurement-matrix-per-lead.csv")
        assert set(codes["lead"]) == set(LEADS)
        values = codes[["stelev", "stdown", "dltwv"]].astype(int).to_numpy()
        assert ((values & ~(8 | 4 | 32)) == 0).all()
        diagnosis = read(root, f"{folder}/ecg-metadata/diagnosis.csv")
        assert (diagnosis["stmt_text"] == diagnosis["stmt_text"].str.lower()).all()
        stmts = diagnosis.groupby("ecg_id")["stmt_text"].apply(" | ".join)
        lbbb = truth.set_index("ecg_id").loc[stmts.index, "lbbb"].astype(bool)
        assert (stmts.str.contains("left bundle branch block") == lbbb).all()


def test_faults_are_present_as_recorded(dataset):
    root, truth = dataset
    stored = truth[(truth["fault"] != "") & truth["fault"].notna()]
    assert set(stored["fault"]) == {"flat_lead", "saturation", "missing_tail", "very_noisy",
                                    "bradycardia", "tachycardia", "paced"}
    arrays = {}
    for row in stored.itertuples():
        array = arrays.setdefault(row.npy_file, np.load(root / row.npy_file, mmap_mode="r"))
        ecg = np.asarray(array[row.npy_index], dtype=float)
        if row.fault == "flat_lead":
            assert (ecg[LEAD_INDEX[row.fault_lead]] == 0).all()
            assert (np.ptp(ecg, axis=1) > 0).sum() == 11
        elif row.fault == "missing_tail":
            assert (ecg[:, int(row.fault_start):] == 0).all()
            assert (ecg[:, int(row.fault_start) - 50:int(row.fault_start)] != 0).any()
        elif row.fault == "saturation":
            top = (ecg[II] == ecg[II].max()).sum()
            assert top >= 5  # a flat rail, not a single peak sample
        elif row.fault == "very_noisy":
            assert np.std(np.diff(ecg[I])) > 150
        elif row.fault == "bradycardia":
            assert row.heart_rate < 40
        elif row.fault == "tachycardia":
            assert row.heart_rate > 130
        elif row.fault == "paced":
            spikes = np.abs(np.diff(ecg[II])) > 1000
            assert spikes.sum() >= 8
    paced = truth.loc[truth["fault"] == "paced", "ecg_id"]
    statements = pd.concat([read(root, "study-group/ecg-metadata/diagnosis.csv")]
                           + [read(root, f"control-group/{y}/pre/ecg-metadata/diagnosis.csv")
                              for y in range(2015, 2020)])
    texts = statements[statements["ecg_id"].isin(paced)]["stmt_text"]
    assert texts.str.contains("electronic ventricular pacemaker").sum() == len(paced)


# ------------------------------------------------------------------------------ script
def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_script_is_byte_reproducible(tmp_path, script_runner):
    args = ["--n-patients", "24", "--no-progress", "--seed", "5"]
    for name in "ab":
        (tmp_path / name).mkdir()
        script_runner(X00, *args, cwd=tmp_path / name)
    write_synthetic_ntuh(tmp_path / "c" / "arrest-ntuh-ecg" / "v1", 24, seed=6, progress=False)
    a, b, c = (tree_digest(tmp_path / n) for n in "abc")
    assert "arrest-ntuh-ecg/synthetic_truth.csv" in a
    # truth, 6 groups x (index, array, 4 tables), study 4, cohort, the x00 marker
    assert len(a) == 1 + 6 * 6 + 4 + 1 + 1
    assert a == b
    npy = "arrest-ntuh-ecg/v1/study-group/ecg-waveforms/waveform-rhythm.npy"
    assert a[npy] != c[npy]


def test_waveform_files_are_plain_npy_independent_of_chunking(dataset, tmp_path):
    root, _ = dataset
    other = tmp_path / "arrest-ntuh-ecg" / "v1"
    write_synthetic_ntuh(other, 90, seed=3, design=CohortDesign(fault_fraction=0.5),
                         chunk_size=7, progress=False)
    assert tree_digest(other.parent) == tree_digest(root.parent)
    rel = "study-group/ecg-waveforms/waveform-rhythm.npy"
    buffer = io.BytesIO()
    np.save(buffer, np.load(root / rel))
    assert buffer.getvalue() == (root / rel).read_bytes()


def load_script():
    spec = importlib.util.spec_from_file_location("x00", ROOT / X00)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_rejects_bad_options(tmp_path, capsys):
    x00 = load_script()
    assert x00.main(["--n-patients", "4", "--data-root", str(tmp_path / "v1")]) == 2
    assert "--n-patients 4" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # refused by the parser (scdecg.cli)
        x00.main(["--fault-fraction", "1.5", "--data-root", str(tmp_path / "v1")])
    assert exit_info.value.code == 2
    assert "--fault-fraction" in capsys.readouterr().err
    assert not (tmp_path / "v1").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--study-fraction", "0.99", "--study-fraction 0.99: 119 of 120 patients in the study group "
     "and 1 controls; need at least 1 study patient and 5 controls (one per control year)"),
    ("--study-fraction", "1", "--study-fraction 1: 120 of 120 patients in the study group and 0 "
     "controls; need at least 1 study patient and 5 controls (one per control year)"),
    ("--study-fraction", "0", "--study-fraction 0: 0 of 120 patients in the study group and 120 "
     "controls; need at least 1 study patient and 5 controls (one per control year)"),
    ("--fault-fraction", "0.99", "1 fault-free pre-arrest ECGs, need >= 3: raise --n-patients "
     "or --study-fraction, or lower --fault-fraction"),
    ("--fault-fraction", "1", "argument --fault-fraction: '1': --fault-fraction must be a number "
     "from 0 to below 1")])
def test_a_design_that_leaves_a_group_empty_is_refused_before_writing(tmp_path, option, value,
                                                                     message):
    """--study-fraction 0.99 left a control year without ECGs (KeyError 'ecg_id') and an empty
    data folder; --study-fraction 0 and --fault-fraction 1 blamed --n-patients."""
    from training_fixtures import refused_line

    line = refused_line(X00, "--n-patients", "120", "--seed", "3", "--no-progress",
                        "--data-root", "arrest-ntuh-ecg/v1", option, value, cwd=tmp_path)
    assert line.endswith("error: " + message), line
    assert list(tmp_path.iterdir()) == []


def test_axis_statements_follow_the_drawn_r_vector():
    """The aVL floor turns vertical R vectors left; the cart's axis statements describe the
    waveform, not the drawing parameter."""
    from scdecg.synthetic import diagnosis_statements, frontal_axis_deg

    base = replace(sample_ecg_params(np.random.default_rng(4)), r_amp=1200.0, elevation_deg=0.0)
    codes = np.zeros(len(LEADS), dtype=np.int64)
    left = replace(base, axis_deg=-45.0)             # plenty of R on aVL: no floor
    assert frontal_axis_deg(left) == pytest.approx(-45.0)
    assert "left axis deviation" in diagnosis_statements(left, codes, 420.0)
    vertical = replace(base, axis_deg=105.0)         # drawn with the floor: turned left
    assert frontal_axis_deg(vertical) < 90.0
    assert not any("axis deviation" in s for s in diagnosis_statements(vertical, codes, 420.0))


def test_the_slur_changes_the_qrs_of_iii_and_avl_most_and_little_after_it():
    """What the morphs' lead rank is held against (s12's ``lead_change``): raising the slur
    strength by 0.3 changes III, then aVL most relative to amplitude, and 95% of the change
    lies in the QRS window that rank is taken in."""
    from scdecg.morph_stats import QRS_WINDOW_MS, lead_change, window_samples
    from scdecg.synthetic import slur_beat_pairs

    before, after = slur_beat_pairs(60, 0.3, np.random.default_rng(5))
    table = lead_change(before, after)[0].sort_values("rank_qrs")
    assert table["lead"].head(2).tolist() == ["III", "aVL"]
    change = np.abs(after - before)
    inside = change[..., window_samples(QRS_WINDOW_MS)].sum() / change.sum()
    assert inside > 0.94
    assert table.set_index("lead").loc["II", "qrs_abs_change_mv"] < 1e-12   # II ⟂ the aVL axis
