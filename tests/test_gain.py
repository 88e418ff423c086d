"""x03: limb-lead gain estimation and correction, bad records, and the script's outputs."""
from __future__ import annotations


import re

import numpy as np
import pandas as pd
import pytest

from scdecg.constants import LEAD_INDEX, NTUH_GAIN_FAULT
from scdecg.gain import (DERIVED_INDEX, GainPolicy, correct_gain, estimate_gains,
                         extract_from_stack, finish_outputs, implied_leads, relative_residual)
from scdecg.synthetic import EcgParams, simulate_ecg

X03 = "00_Data_Preprocessing/x03_process_10sec_ecg.py"


def clean_ecg(seed: int = 0, **params) -> np.ndarray:
    """A clean synthetic ECG (µV) whose limb leads obey the identities exactly."""
    return simulate_ecg(EcgParams(**params), np.random.default_rng(seed))


def stored(ecg: np.ndarray, gain: float = NTUH_GAIN_FAULT) -> np.ndarray:
    """What NTUH stores: derived limb leads times ``gain``, rounded to int16 µV."""
    out = ecg.copy()
    out[DERIVED_INDEX] *= gain
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def test_implied_leads_follow_einthoven_and_goldberger():
    ecg = np.zeros((12, 4))
    ecg[LEAD_INDEX["I"]] = [1, 0, 2, -1]
    ecg[LEAD_INDEX["II"]] = [0, 1, 2, 3]
    iii, avr, avl, avf = implied_leads(ecg)
    np.testing.assert_allclose(iii, [-1, 1, 0, 4])
    np.testing.assert_allclose(avr, [-0.5, -0.5, -2, -1])
    np.testing.assert_allclose(avl, [1, -0.5, 1, -2.5])
    np.testing.assert_allclose(avf, [-0.5, 1, 1, 3.5])


@pytest.mark.parametrize("seed,axis", [(0, 45.0), (1, -30.0), (2, 90.0), (3, 0.0)])
def test_faulty_gain_is_estimated_and_corrected(seed, axis):
    clean = clean_ecg(seed, axis_deg=axis)
    record = stored(clean)
    gains = estimate_gains(record)
    np.testing.assert_allclose(gains, NTUH_GAIN_FAULT, rtol=0.01)
    fixed, row = correct_gain(record)
    assert row["status"] == "corrected" and row["corrected"] and not row["flagged"]
    assert row["residual_before"] > 3.5          # derived leads ~4.88x too large
    assert row["residual_after"] < 0.01          # identities hold again up to int16 rounding
    assert fixed.dtype == np.float32 and fixed.shape == (12, 5000)
    # recorded leads untouched, derived leads back at the clean values (rounding only)
    np.testing.assert_array_equal(fixed[[0, 1, *range(6, 12)]], record[[0, 1, *range(6, 12)]])
    assert np.abs(fixed[DERIVED_INDEX] - clean[DERIVED_INDEX]).max() < 1.0


def test_fixed_and_estimated_divisors():
    record = stored(clean_ecg(5), gain=4.80)   # within the 5% tolerance of 4.88
    fixed, row = correct_gain(record, GainPolicy(divisor="fixed"))
    estimated, row_est = correct_gain(record, GainPolicy(divisor="estimated"))
    np.testing.assert_allclose(fixed[DERIVED_INDEX], record[DERIVED_INDEX] / 4.88, rtol=1e-6)
    assert row_est["residual_after"] < 0.01 < row["residual_after"]
    assert row["flagged"] is False  # 1.7% off stays under the 5% residual limit


def test_estimated_divisors_are_per_lead():
    """Each derived lead is divided by its own estimate: swapping two leads' divisors fails."""
    clean = clean_ecg(11, axis_deg=40.0)
    per_lead = np.array([4.70, 4.80, 4.95, 5.05])          # III, aVR, aVL, aVF; all within 5%
    record = clean.copy()
    record[DERIVED_INDEX] *= per_lead[:, None]
    record = np.round(record).astype(np.int16)
    gains = estimate_gains(record)
    np.testing.assert_allclose(gains, per_lead, rtol=2e-3)
    fixed, row = correct_gain(record, GainPolicy(divisor="estimated"))
    assert row["status"] == "corrected"
    for k, lead in enumerate(DERIVED_INDEX):
        np.testing.assert_allclose(fixed[lead], record[lead] / gains[k], rtol=1e-5, atol=1e-3)
        assert np.abs(fixed[lead] - clean[lead]).max() < 1.5   # back to the clean µV values
    assert row["residual_after"] < 0.01


def test_correct_gain_leaves_unity_and_flags_unresolved():
    clean = stored(clean_ecg(6), gain=1.0)
    out, row = correct_gain(clean)
    assert row["status"] == "unity" and not row["corrected"] and not row["flagged"]
    np.testing.assert_array_equal(out, clean.astype(np.float32))
    assert row["residual_before"] == row["residual_after"] < 0.01

    odd = stored(clean_ecg(7), gain=2.5)
    out, row = correct_gain(odd)
    assert row["status"] == "unresolved" and row["flagged"] and not row["corrected"]
    assert row["reason"].startswith("unresolved gain:") and "aVL=2.5" in row["reason"]
    np.testing.assert_array_equal(out, odd.astype(np.float32))


def test_relative_residual_is_scale_free():
    clean = clean_ecg(8)
    assert relative_residual(clean) < 1e-12
    assert relative_residual(stored(clean, 2.0).astype(float)) == pytest.approx(1.0, abs=0.01)


def test_extract_from_stack_logs_bad_records(tmp_path):
    good = stored(clean_ecg(9))
    np.save(tmp_path / "stack.npy", np.stack([good, np.zeros_like(good)]))
    floats = np.stack([good.astype(np.float32)] * 2)
    floats[1, 3, 10] = np.nan
    np.save(tmp_path / "floats.npy", floats)
    np.save(tmp_path / "short.npy", np.zeros((2, 12, 4000), np.int16))
    np.save(tmp_path / "flat2d.npy", np.zeros((12, 5000), np.int16))
    out = tmp_path / "10_sec_ecgs"
    out.mkdir()
    (out / "zero.npy").write_bytes(b"stale")   # an old output of a record that now fails

    rows = extract_from_stack(str(tmp_path / "stack.npy"), [("ok", 0), ("zero", 1), ("far", 7)], str(out))
    rows += extract_from_stack(str(tmp_path / "floats.npy"), [("nan", 1)], str(out))
    rows += extract_from_stack(str(tmp_path / "short.npy"), [("short", 0)], str(out))
    rows += extract_from_stack(str(tmp_path / "flat2d.npy"), [("flat2d", 0)], str(out))
    rows += extract_from_stack(str(tmp_path / "absent.npy"), [("absent", 0)], str(out))
    (tmp_path / "text.npy").write_text("not an array")   # numpy calls it "pickled data"
    (tmp_path / "empty.npy").write_bytes(b"")            # numpy raised EOFError
    rows += extract_from_stack(str(tmp_path / "text.npy"), [("text", 0)], str(out))
    rows += extract_from_stack(str(tmp_path / "empty.npy"), [("empty", 0)], str(out))
    report = pd.DataFrame(rows).set_index("studyId")
    category = report["reason"].str.split(":").str[0]
    assert report.loc["ok", "status"] == "corrected"
    assert category.drop("ok").to_dict() == {
        "zero": "all zeros", "far": "npy_index out of range", "nan": "contains NaN",
        "short": "wrong shape", "flat2d": "wrong shape", "absent": "missing file",
        "text": "unreadable file", "empty": "unreadable file"}
    assert report.loc["text", "reason"] == (f"unreadable file: {tmp_path / 'text.npy'} "
                                            "(not a NumPy array file (no .npy header))")
    assert report.loc["empty", "reason"].endswith("(an empty file, not a NumPy array file)")
    assert (report.drop("ok")["status"] == "failed").all()
    # the stale output of a failed ECG goes once the run has produced something
    assert sorted(p.name for p in out.iterdir()) == ["ok.npy", "zero.npy"]
    assert finish_outputs(report.reset_index(), out, tmp_path / "report.csv") == 8
    assert sorted(p.name for p in out.iterdir()) == ["ok.npy"]
    saved = np.load(out / "ok.npy")
    assert saved.dtype == np.float32 and saved.shape == (12, 5000)


def test_x03_script_writes_outputs_and_report(tmp_path, script_runner):
    records = [stored(clean_ecg(10 + i)) for i in range(3)]
    np.save(tmp_path / "waves.npy", np.stack(records))
    pd.DataFrame({"studyId": ["a", "b", "c", "d"], "file_path": ["waves.npy"] * 3 + ["gone.npy"],
                  "npy_index": [2, 0, 1, 0]}).to_feather(tmp_path / "covariate_df.feather")
    proc = script_runner(X03, "--n-jobs", "1", cwd=tmp_path)
    assert "1  failed: missing file" in proc.stdout
    report = pd.read_csv(tmp_path / "x03_gain_report.csv")
    assert report["studyId"].tolist() == ["a", "b", "c", "d"]          # cohort order
    assert report["status"].tolist() == ["corrected"] * 3 + ["failed"]
    for col in ("gain_III", "gain_aVR", "gain_aVL", "gain_aVF"):
        assert np.allclose(report[col][:3], NTUH_GAIN_FAULT, rtol=0.01)
    a = np.load(tmp_path / "10_sec_ecgs" / "a.npy")
    np.testing.assert_array_equal(a[:2], records[2][:2])
    assert not (tmp_path / "10_sec_ecgs" / "d.npy").exists()
    # a rerun gives identical files
    first = (tmp_path / "x03_gain_report.csv").read_bytes(), a.tobytes()
    script_runner(X03, "--n-jobs", "1", cwd=tmp_path)
    assert first == ((tmp_path / "x03_gain_report.csv").read_bytes(),
                     np.load(tmp_path / "10_sec_ecgs" / "a.npy").tobytes())


def test_x03_where_every_ecg_fails_keeps_the_earlier_run(tmp_path):
    """A wrong working folder or data root fails every ECG: x03 used to remove every earlier
    output and write a report of failures that x04 then applied."""
    from training_fixtures import run_main

    np.save(tmp_path / "waves.npy", np.stack([stored(clean_ecg(20 + i)) for i in range(2)]))
    good = pd.DataFrame({"studyId": ["a", "b"], "file_path": ["waves.npy"] * 2, "npy_index": [1, 0]})
    good.to_feather(tmp_path / "covariate_df.feather")
    assert run_main(X03, "--n-jobs", "1", cwd=tmp_path)[0] == 0
    out = tmp_path / "10_sec_ecgs"
    before = {p.name: p.read_bytes() for p in [*out.iterdir(), tmp_path / "x03_gain_report.csv"]}

    good.assign(file_path="elsewhere/waves.npy").to_feather(tmp_path / "covariate_df.feather")
    code, _, err = run_main(X03, "--n-jobs", "1", cwd=tmp_path)
    assert code == 2 and err.splitlines()[-1].startswith("error: ")
    assert ("all 2 ECGs failed (first: 'a': missing file: elsewhere/waves.npy); 10_sec_ecgs/ and "
            "x03_gain_report.csv left as they were; per-ECG reasons in "
            "x03_gain_report.failed.csv") in err.splitlines()[-1]
    after = {p.name: p.read_bytes() for p in [*out.iterdir(), tmp_path / "x03_gain_report.csv"]}
    assert after == before and sorted(after) == ["a.npy", "b.npy", "x03_gain_report.csv"]
    failed = pd.read_csv(tmp_path / "x03_gain_report.failed.csv")
    assert failed["studyId"].tolist() == ["a", "b"] and (failed["status"] == "failed").all()

    good.to_feather(tmp_path / "covariate_df.feather")  # the next good run: as the first
    assert run_main(X03, "--n-jobs", "1", cwd=tmp_path)[0] == 0
    assert {p.name: p.read_bytes() for p in [*out.iterdir(), tmp_path / "x03_gain_report.csv"]} == before
    assert not (tmp_path / "x03_gain_report.failed.csv").exists()


def test_x03_refuses_a_folder_an_import_left_unfinished(tmp_path):
    """An own-data import that died between its two renames leaves 10_sec_ecgs/ marked. x03
    writes only its cohort's ECGs (the import's others stay), so it cannot make the folder
    whole; it used to write its files beside the import's, leaving the import's mark (every
    reader still refused). Now it stops first, naming the import to rerun."""
    from scdecg.io import unfinished_marker
    from scdecg.workspace import IMPORT_STEP
    from training_fixtures import run_main

    np.save(tmp_path / "waves.npy", np.stack([stored(clean_ecg(40))]))
    pd.DataFrame({"studyId": ["a"], "file_path": ["waves.npy"], "npy_index": [0]}
                 ).to_feather(tmp_path / "covariate_df.feather")
    out = tmp_path / "10_sec_ecgs"
    out.mkdir()
    np.save(out / "r1.npy", clean_ecg(41).astype(np.float32))          # an imported ECG
    unfinished_marker(out, IMPORT_STEP).write_text("x00_import put this folder in place\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, err = run_main(X03, "--n-jobs", "1", cwd=tmp_path)
    assert (code, err) == (2, "error: 10_sec_ecgs: x00_import did not finish (killed or stopped "
                              "by an error: 10_sec_ecgs/.x00_import-unfinished); rerun "
                              "00_Data_Preprocessing/x00_import_cohort.py\n")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / "x03_gain_report.csv").exists()


@pytest.mark.parametrize("out_dir", ["data/stacks", "data"])
def test_x03_refuses_to_write_into_the_waveform_folder(tmp_path, out_dir):
    """An --out-dir that is, or holds, the folder of the cohort's waveform stacks (the data
    release) is refused before anything is written."""
    from training_fixtures import run_main

    (tmp_path / "data" / "stacks").mkdir(parents=True)
    np.save(tmp_path / "data" / "stacks" / "waves.npy", np.stack([stored(clean_ecg(30))]))
    pd.DataFrame({"studyId": ["a"], "file_path": ["data/stacks/waves.npy"], "npy_index": [0]}
                 ).to_feather(tmp_path / "covariate_df.feather")
    code, _, err = run_main(X03, "--out-dir", out_dir, "--n-jobs", "1", cwd=tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert (f"--out-dir {out_dir}: holds the cohort's waveform files (data/stacks/, from "
            "covariate_df.feather)") in err
    assert sorted(p.name for p in (tmp_path / "data").rglob("*")) == ["stacks", "waves.npy"]
    assert not (tmp_path / "x03_gain_report.csv").exists()


def test_x03_rejects_bad_table(tmp_path, script_runner):
    pd.DataFrame({"studyId": ["a"], "npy_index": [0]}).to_feather(tmp_path / "covariate_df.feather")
    proc = script_runner(X03, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "missing column(s) file_path" in proc.stderr
    assert "--divisor" in script_runner(X03, "--help", cwd=tmp_path).stdout


def test_x03_on_synthetic_study(pipeline):
    ws = pipeline.ensure("x03")
    report = pd.read_csv(ws / "x03_gain_report.csv", dtype={"studyId": str}).set_index("studyId")
    cohort = pd.read_feather(ws / "covariate_df.feather")
    assert set(report.index) == set(cohort["studyId"].astype(str))
    truth = pd.read_csv(ws / "arrest-ntuh-ecg" / "synthetic_truth.csv", dtype={"ecg_id": str})
    fault = truth.set_index("ecg_id")["fault"].fillna("").reindex(report.index)
    damaged = fault.isin(["flat_lead", "saturation"])      # samples broken after the gain fault
    clean = report[~damaged]
    assert (clean["status"] == "corrected").all() and not clean["flagged"].any()
    gains = clean[["gain_III", "gain_aVR", "gain_aVL", "gain_aVF"]].to_numpy()
    assert np.all(np.abs(gains / NTUH_GAIN_FAULT - 1) < 0.01)
    assert (clean["residual_after"] < 0.01).all() and (clean["residual_before"] > 3).all()
    assert report.loc[damaged, "flagged"].mean() >= 0.5    # most damaged records are caught
    written = {p.stem for p in (ws / "10_sec_ecgs").glob("*.npy")}
    assert written == set(report.index[report["status"] != "failed"])


# ------------------------------------------------ edge cases found by mutation testing
def test_estimates_are_computed_in_float64_whatever_the_stored_type():
    record = stored(clean_ecg(12), gain=4.9).astype(np.float32)
    exact = record.astype(np.float64)
    np.testing.assert_array_equal(implied_leads(record), implied_leads(exact))
    np.testing.assert_allclose(estimate_gains(record), estimate_gains(exact), rtol=1e-13)
    assert relative_residual(record) == pytest.approx(relative_residual(exact), rel=1e-13)
    _, row = correct_gain(record)
    assert [row[f"gain_{n}"] for n in ("III", "aVR", "aVL", "aVF")] == \
        pytest.approx(list(estimate_gains(exact)), rel=1e-13)


def test_flat_limb_leads_give_nan_without_warnings():
    import warnings

    flat = np.zeros((12, 5000), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(estimate_gains(flat)).all()
        assert np.isnan(relative_residual(flat))


def test_gain_and_residual_do_not_depend_on_the_scale():
    record = stored(clean_ecg(13), gain=4.88).astype(np.float64)
    for scale in (1e-6, 1.0, 1e3):       # at 1e-6 the sums of squares are below 1
        np.testing.assert_allclose(estimate_gains(record * scale), estimate_gains(record), rtol=1e-9)
        assert relative_residual(record * scale) == pytest.approx(relative_residual(record), rel=1e-9)


def test_gain_tolerance_is_inclusive():
    """Gains exactly at the tolerance still match: with tolerance 0, exact identities are unity."""
    rng = np.random.default_rng(0)
    ecg = np.zeros((12, 5000))
    ecg[LEAD_INDEX["I"]] = 2 * rng.integers(-300, 300, 5000)     # even integers: every derived
    ecg[LEAD_INDEX["II"]] = 2 * rng.integers(-300, 300, 5000)    # lead is exact in float32
    ecg[DERIVED_INDEX] = implied_leads(ecg)
    assert (estimate_gains(ecg.astype(np.float32)) == 1.0).all()
    _, row = correct_gain(ecg, GainPolicy(tolerance=0.0))
    assert row["status"] == "unity" and row["reason"] == ""


def test_report_reasons_and_the_high_residual_flag():
    record = stored(clean_ecg(14))
    _, row = correct_gain(record)
    assert row["status"] == "corrected" and row["reason"] == "" and row["flagged"] is False
    _, row = correct_gain(stored(clean_ecg(7), gain=2.5))
    assert re.fullmatch(r"unresolved gain: III=[\d.]+, aVR=[\d.]+, aVL=[\d.]+, aVF=[\d.]+ match "
                        r"neither 4\.88 nor 1; stored values kept", row["reason"]), row["reason"]
    # derived leads at 4.88x plus noise: corrected, but the identities no longer hold
    noisy = record.astype(np.float64)
    noisy[DERIVED_INDEX] += np.random.default_rng(1).normal(0, 60, (4, 5000))
    _, row = correct_gain(noisy)
    assert row["status"] == "corrected" and row["corrected"]
    assert row["residual_after"] > 0.05 and row["flagged"] is True
    assert row["reason"] == f"high residual after correction: {row['residual_after']:.3g} > 0.05"
    _, at_limit = correct_gain(noisy, GainPolicy(max_residual=row["residual_after"]))
    assert at_limit["flagged"] is False and at_limit["reason"] == ""   # the limit itself passes


def test_x03_tolerance_inf_divides_every_ecg_as_published(tmp_path, script_runner):
    """DEVIATIONS "The limb-lead gain is checked": --tolerance inf divides every ECG's derived
    leads by 4.88, whatever their estimated gain (the published x03), and the default does not."""
    records = [stored(clean_ecg(20)), stored(clean_ecg(21), gain=1.0), stored(clean_ecg(22), gain=2.5)]
    np.save(tmp_path / "waves.npy", np.stack(records))
    pd.DataFrame({"studyId": ["fault", "unity", "odd"], "file_path": ["waves.npy"] * 3,
                  "npy_index": [0, 1, 2]}).to_feather(tmp_path / "covariate_df.feather")
    script_runner(X03, "--n-jobs", "1", "--tolerance", "inf", cwd=tmp_path)
    report = pd.read_csv(tmp_path / "x03_gain_report.csv").set_index("studyId")
    assert report["corrected"].all() and (report["status"] == "corrected").all()
    for sid, record in zip(report.index, records):
        out = np.load(tmp_path / "10_sec_ecgs" / f"{sid}.npy")
        np.testing.assert_allclose(out[DERIVED_INDEX], record[DERIVED_INDEX] / 4.88, rtol=1e-6)
        np.testing.assert_array_equal(out[[0, 1, *range(6, 12)]], record[[0, 1, *range(6, 12)]])
    assert report.loc["unity", "flagged"] and not report.loc["fault", "flagged"]  # residual flag

    script_runner(X03, "--n-jobs", "1", cwd=tmp_path)
    report = pd.read_csv(tmp_path / "x03_gain_report.csv").set_index("studyId")
    assert report["status"].tolist() == ["corrected", "unity", "unresolved"]


def test_a_record_stored_in_millivolts_or_with_inf_is_refused_by_name():
    from scdecg.gain import check_record

    ecg = clean_ecg(9)                                 # µV, QRS of about a millivolt
    assert check_record(ecg) is None
    millivolts = (ecg / 1000.0).astype(np.float32)
    assert check_record(millivolts).startswith("implausible amplitude: |sample| at most ")
    assert "(millivolts, not microvolts?)" in check_record(millivolts)
    with_inf = ecg.astype(np.float32)
    with_inf[0, 100] = np.inf
    assert check_record(with_inf) == ("contains NaN: non-finite samples (NaN or inf) in the "
                                      "record")


def test_an_npy_header_whose_size_overflows_int64_is_a_truncated_file(tmp_path):
    from scdecg.io import npy_problem

    path = tmp_path / "waveform-rhythm.npy"
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<i2", "fortran_order": False, "shape": (2 ** 50, 12, 5000)})
        fh.write(np.zeros((3, 12, 5000), np.int16).tobytes())
    assert "truncated" in npy_problem(path)


def test_x03_reads_a_moved_release_with_data_root(tmp_path, monkeypatch):
    """x01 stored file_path under arrest-ntuh-ecg/v1; the release now lies elsewhere."""
    from scdecg.errors import PipelineError
    from scdecg.gain import extract_cohort, rerooted

    moved = tmp_path / "elsewhere" / "ntuh"
    stack = moved / "study-group" / "ecg-waveforms" / "waveform-rhythm.npy"
    stack.parent.mkdir(parents=True)
    np.save(stack, np.stack([stored(clean_ecg(1)), stored(clean_ecg(2))]))
    stored_path = "arrest-ntuh-ecg/v1/study-group/ecg-waveforms/waveform-rhythm.npy"
    pd.DataFrame({"studyId": ["a", "b"], "file_path": [stored_path] * 2,
                  "npy_index": [0, 1]}).to_feather(tmp_path / "covariate_df.feather")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PipelineError, match="all 2 ECGs failed .*missing file"):
        extract_cohort("covariate_df.feather", "10_sec_ecgs", "x03_gain_report.csv", n_jobs=1)
    report = extract_cohort("covariate_df.feather", "10_sec_ecgs", "x03_gain_report.csv",
                            n_jobs=1, data_root=moved)
    assert report["status"].tolist() == ["corrected", "corrected"]
    assert sorted(p.name for p in (tmp_path / "10_sec_ecgs").glob("*.npy")) == ["a.npy", "b.npy"]
    with pytest.raises(PipelineError, match=r"file_path 'x/y.npy' has no study-group/"):
        rerooted(["x/y.npy"], moved)
