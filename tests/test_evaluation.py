"""Evaluation: tie-aware AUC, patient-cluster bootstrap, high-risk and calibration tables, x04."""
from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scdecg import evaluation as ev
from scdecg import metrics as mt
from scdecg.errors import PipelineError
from scdecg.metrics import auc_with_interval

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "01_Predictive_Model/x05_evaluate.py"


def brute_force_auc(y, score, weights=None):
    """Pairwise count over every (positive, negative) pair, ties one half."""
    y, score = np.asarray(y), np.asarray(score, dtype=float)
    weights = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    wins = total = 0.0
    for i, j in itertools.product(np.flatnonzero(y == 1), np.flatnonzero(y == 0)):
        pair = weights[i] * weights[j]
        wins += pair * (1.0 if score[i] > score[j] else 0.5 if score[i] == score[j] else 0.0)
        total += pair
    return wins / total


# ----------------------------------------------------------------------------- AUC
def test_auc_hand_example_with_tie():
    # positives 2 and 3 vs negatives 1 and 2: 1 + 0.5 + 1 + 1 = 3.5 of 4 pairs
    assert mt.roc_auc([0, 0, 1, 1], [1, 2, 2, 3]) == pytest.approx(0.875)
    assert mt.roc_auc([0, 1], [5, 5]) == 0.5
    assert mt.roc_auc([0, 0, 1], [1, 2, 3]) == 1.0
    assert mt.roc_auc([1, 1, 0], [1, 2, 3]) == 0.0


def test_auc_matches_brute_force_with_many_ties():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n = int(rng.integers(3, 40))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        score = rng.integers(0, 4, n).astype(float)  # heavy ties
        weights = rng.integers(0, 4, n)
        weights[:2] = 1
        assert mt.roc_auc(y, score) == pytest.approx(brute_force_auc(y, score), abs=1e-12)
        assert mt.weighted_auc(y, score, weights) == pytest.approx(
            brute_force_auc(y, score, weights), abs=1e-12)


def test_weighted_auc_equals_auc_of_repeated_rows_and_block_equals_rows():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 30)
    score = rng.normal(size=30).round(1)
    block = rng.integers(0, 3, (5, 30))
    per_block = mt.weighted_auc(y, score, block)
    assert per_block.shape == (5,)
    for row, auc in zip(block, per_block):
        repeated = np.repeat(np.arange(30), row)
        assert auc == pytest.approx(mt.roc_auc(y[repeated], score[repeated]), abs=1e-12)


def test_auc_undefined_with_one_class():
    assert np.isnan(mt.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))
    assert np.isnan(mt.weighted_auc([0, 1], [0.1, 0.2], np.array([[1, 0]]))[0])
    with pytest.raises(ValueError, match="NaN"):
        mt.roc_auc([0, 1], [0.1, np.nan])


def test_roc_curve_area_is_the_auc():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    score = (rng.normal(size=200) + y).round(1)
    fpr, tpr = mt.roc_curve(y, score)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(mt.roc_auc(y, score), abs=1e-12)


def test_r2_brier_and_sigmoid():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert mt.weighted_r2(y, y) == 1.0
    assert mt.weighted_r2(y, np.full(4, 2.5)) == 0.0
    assert mt.weighted_r2(y, y + 1) == pytest.approx(1 - 4 / 5)
    assert mt.brier_score([0, 1], [0.2, 0.6]) == pytest.approx((0.04 + 0.16) / 2)
    assert mt.sigmoid(np.array([0.0, -1000.0, 1000.0])).tolist() == [0.5, 0.0, 1.0]


# ----------------------------------------------------------------------------- bootstrap
def simulated(n, seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(float)
    return y, rng.normal(size=n) + y


def auc_interval(y, score, clusters, n_boot=300, seed=0):
    replicates = mt.cluster_bootstrap(lambda w: mt.weighted_auc(y, score, w), clusters,
                                      n_boot, seed)
    return mt.percentile_interval(replicates)


def test_percentile_interval_ignores_nan():
    values = np.r_[np.arange(101.0), np.nan]
    assert mt.percentile_interval(values, 0.95) == pytest.approx((2.5, 97.5))
    assert np.isnan(mt.percentile_interval(np.array([np.nan]))[0])


def test_bootstrap_interval_contains_estimate_narrows_and_is_seeded():
    widths = []
    for n in (200, 3000):
        y, score = simulated(n, seed=n)
        lo, hi = auc_interval(y, score, np.arange(n))
        assert lo < mt.roc_auc(y, score) < hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2.5  # ~ sqrt(15) narrower
    y, score = simulated(200, seed=3)
    assert auc_interval(y, score, np.arange(200), seed=5) == auc_interval(
        y, score, np.arange(200), seed=5)
    assert auc_interval(y, score, np.arange(200), seed=5) != auc_interval(
        y, score, np.arange(200), seed=6)


def test_cluster_weights_move_whole_patients():
    patients = np.array(["c", "a", "b", "a", "c", "c"])
    blocks = list(mt.cluster_bootstrap_weights(patients, 50, np.random.default_rng(0),
                                               max_block_cells=60))
    assert len(blocks) == 5 and all(b.shape == (10, 6) for b in blocks)
    weights = np.vstack(blocks)
    assert np.all(weights[:, 1] == weights[:, 3])                     # patient a
    assert np.all(weights[:, [0, 4, 5]] == weights[:, [0]])            # patient c
    # three patients drawn per replicate: a, b, c counts add to 3
    assert np.all(weights[:, 0] + weights[:, 1] + weights[:, 2] == 3)


def test_patient_bootstrap_wider_than_ecg_bootstrap_when_ecgs_cluster():
    # 40 patients with 10 identical ECGs each: the information is 40 patients, not 400 ECGs.
    rng = np.random.default_rng(4)
    y_patient = np.r_[np.ones(10), np.zeros(30)]
    score_patient = rng.normal(size=40) + y_patient
    y, score = np.repeat(y_patient, 10), np.repeat(score_patient, 10)
    patients = np.repeat(np.arange(40), 10)
    assert mt.roc_auc(y, score) == pytest.approx(mt.roc_auc(y_patient, score_patient))
    lo_p, hi_p = auc_interval(y, score, patients)
    lo_e, hi_e = auc_interval(y, score, np.arange(400))
    lo_1, hi_1 = auc_interval(y_patient, score_patient, np.arange(40))
    assert hi_p - lo_p > 2.0 * (hi_e - lo_e)                # ~ sqrt(10) wider
    assert hi_p - lo_p == pytest.approx(hi_1 - lo_1, rel=0.25)  # as if one ECG per patient


# ----------------------------------------------------------------------------- tables
def test_high_risk_table_hand_example():
    logit = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0], dtype=float)
    y = np.array([1, 1, 0, 1, 0, 0, 0, 1, 0, 0], dtype=float)
    patients = np.array(["p1", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"])
    table = ev.high_risk_table(y, logit, patients, [0.2, 0.5]).set_index("target_share")
    top = table.loc[0.2]
    assert (top.n_flagged, top.events_flagged, top.n_patients_flagged) == (2, 2, 1)
    assert (top.rate_flagged, top.rate_rest, top.rate_all) == (1.0, 2 / 8, 0.4)
    assert top.lift == pytest.approx(2.5) and top.rate_ratio == pytest.approx(4.0)
    assert top.share_patients_flagged == pytest.approx(1 / 9)
    assert top.threshold_logit == 8.0
    assert top.threshold_probability == pytest.approx(1 / (1 + np.exp(-8)))
    half = table.loc[0.5]
    assert (half.n_flagged, half.events_flagged, half.n_rest, half.events_rest) == (5, 3, 5, 1)
    assert half.lift == pytest.approx(0.6 / 0.4)


def test_high_risk_ties_at_threshold_are_all_flagged():
    logit = np.array([5, 3, 3, 3, 1, 0, 0, 0, 0, 0], dtype=float)
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    row = ev.high_risk_table(y, logit, np.arange(10), [0.2]).iloc[0]
    assert (row.n_flagged, row.share_flagged, row.events_flagged) == (4, 0.4, 2)
    # the smallest share still flags at least one ECG
    assert ev.high_risk_table(y, logit, np.arange(10), [0.022]).iloc[0].n_flagged == 1
    with pytest.raises(PipelineError, match="share 1.5"):
        ev.high_risk_table(y, logit, np.arange(10), [1.5])


def test_calibration_table_equal_count_bins():
    probability = np.linspace(0.05, 0.95, 10)
    y = np.array([0, 0, 0, 1, 0, 1, 1, 0, 1, 1], dtype=float)
    table = ev.calibration_table(y, probability, 5)
    assert table["n"].tolist() == [2] * 5
    assert table["mean_predicted"].to_numpy() == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9])
    assert table["observed_rate"].tolist() == [0.0, 0.5, 0.5, 0.5, 1.0]


# ----------------------------------------------------------------------------- inputs
def make_tables():
    covariates = pd.DataFrame({"studyId": ["e1", "e2", "e3", "e4"],
                               "ptId": ["p1", "p1", "p2", "p3"],
                               "group": ["study", "study", "2015", "2016"],
                               "scd1": [1.0, 0.0, 0.0, np.nan], "dead1": [0.0] * 4,
                               "age": [50.0, 51.0, 70.0, 30.0]})
    predictions = pd.DataFrame({"studyId": ["e3", "e1", "e2", "e4"],
                                "scd1_hat": [0.0, 2.0, 1.0, 5.0], "dead1_hat": [0.0] * 4,
                                "age_hat": [60.0, 50.0, 50.0, np.nan]})
    return predictions, covariates


def test_join_checks_ids():
    predictions, covariates = make_tables()
    frame = ev.join_predictions(predictions, covariates, ["scd1"], "p.feather", "c.feather")
    assert frame["ptId"].tolist() == ["p2", "p1", "p1", "p3"]
    assert frame["scd1"].tolist()[:3] == [0.0, 1.0, 0.0]
    stray = pd.concat([predictions, pd.DataFrame({"studyId": ["x9"], "scd1_hat": [0.0]})])
    with pytest.raises(PipelineError, match=r"p.feather: 1 of 5 studyId\(s\) not found in "
                                            r"c.feather \(e.g. x9\)"):
        ev.join_predictions(stray, covariates, ["scd1"], "p.feather", "c.feather")
    with pytest.raises(PipelineError, match="'e1' appears more than once"):
        ev.join_predictions(pd.concat([predictions, predictions.iloc[[1]]]), covariates,
                            ["scd1"], "p.feather", "c.feather")


def test_evaluate_outputs_kinds_skips_and_counts():
    predictions, covariates = make_tables()
    frame = ev.join_predictions(predictions, covariates, ["scd1", "dead1", "age"], "p", "c")
    kinds = ev.output_kinds(frame, ["scd1", "dead1", "age"])
    assert kinds == {"scd1": "classification", "dead1": "classification", "age": "regression"}
    assert ev.output_kinds(frame, ["age"], {"age": "classification"}) == {"age": "classification"}
    assert ev.declared_output_kinds({"outputs": ["a", "b"], "output_types": [
        "classification", "regression"]}) == {"a": "classification", "b": "regression"}
    metrics, regression, skipped = ev.evaluate_outputs(frame, kinds, n_boot=50, seed=0)
    row = metrics.set_index("output").loc["scd1"]
    assert (row.n, row.n_pos, row.n_patients, row.n_label_missing) == (3, 1, 2, 1)
    assert row.auc == 1.0
    assert [r["record"] for r in skipped.rows] == ["dead1"]
    assert "only one class" in skipped.rows[0]["reason"]
    age = regression.set_index("output").loc["age"]
    assert (age.n, age.n_pred_missing) == (3, 1)
    # rows e3, e1, e2: y = 70, 50, 51 (mean 57); predictions 60, 50, 50
    assert age.r2 == pytest.approx(1 - (100 + 0 + 1) / (169 + 49 + 36))
    frame.loc[0, "scd1"] = 2.0
    with pytest.raises(PipelineError, match=r"label column scd1: value 2.0 \(studyId e3\) is not 0/1"):
        ev.evaluate_outputs(frame, {"scd1": "classification"}, n_boot=10, seed=0)


# ----------------------------------------------------------------------------- script
def write_study(folder, n_patients=300, seed=0):
    """A hand-made workspace: covariate_df.feather and predictions for model 'demo'."""
    rng = np.random.default_rng(seed)
    ecgs_per_patient = rng.integers(1, 4, n_patients)
    pt = np.repeat(np.arange(n_patients), ecgs_per_patient)
    n = pt.size
    risk = rng.normal(size=n_patients)[pt]
    covariates = pd.DataFrame({"studyId": [f"ecg{i:04d}" for i in range(n)],
                               "ptId": [f"pt{p:03d}" for p in pt],
                               "group": np.where(rng.random(n) < 0.3, "study", "2017"),
                               "age": rng.normal(60, 10, n), "dead2": np.zeros(n)})
    for output, base in (("scd3mo", -3.5), ("scd6mo", -3.0), ("scd1", -2.5), ("scd2", -2.0)):
        covariates[output] = (rng.random(n) < mt.sigmoid(base + 1.5 * risk)).astype(float)
    predictions = pd.DataFrame({"studyId": covariates["studyId"][::-1].to_numpy()})
    for output in ("scd3mo", "scd6mo", "scd1", "scd2", "dead2"):
        predictions[output + "_hat"] = (risk + rng.normal(0, 0.7, n))[::-1] - 3
    predictions["age_hat"] = (covariates["age"] + rng.normal(0, 5, n))[::-1].to_numpy()
    predictions["split"] = np.where(np.arange(n) % 4 == 0, "train", "val")
    predictions["in_sample"] = predictions["split"] == "train"
    (folder / "predictions" / "demo_1").mkdir(parents=True)
    covariates.to_feather(folder / "covariate_df.feather")
    predictions.to_feather(folder / "predictions" / "demo_1" / "predictions.feather")
    return covariates, predictions


def test_script_end_to_end(tmp_path, script_runner):
    covariates, predictions = write_study(tmp_path)
    args = ("--model-name", "demo", "--n-boot", "200", "--high-risk-shares", "0.05", "0.2")
    proc = script_runner(SCRIPT, *args, cwd=tmp_path)
    out = tmp_path / "predictions" / "demo_1"
    assert "dead2: only one class" in proc.stdout
    metrics = pd.read_csv(out / "metrics.csv").set_index("output")
    calibration = pd.read_csv(out / "calibration.csv")
    assert list(metrics.index) == ["scd3mo", "scd6mo", "scd1", "scd2"]
    assert (metrics["split"] == "val").all()
    joined = covariates.merge(predictions, on="studyId")
    frame = joined[joined["split"] == "val"]         # each split is evaluated on its own
    for output, row in metrics.iterrows():
        assert row.n == len(frame) and row.n_pos == frame[output].sum()
        assert row.n_patients == frame["ptId"].nunique() and row.n_boot == 200
        assert row.auc == pytest.approx(mt.roc_auc(frame[output], frame[output + "_hat"]))
        assert row.auc_lo < row.auc < row.auc_hi
        # the interval is the patient bootstrap at x05's seed (42) and level (0.95) ...
        direct = auc_with_interval(frame[output], frame[output + "_hat"], frame["ptId"], 200,
                                   seed=42, level=0.95)
        assert (row.auc_lo, row.auc_hi) == pytest.approx((direct["auc_lo"], direct["auc_hi"]))
        # ... and the Brier score that of the predicted probabilities, computed here
        p = 1 / (1 + np.exp(-frame[output + "_hat"].to_numpy()))
        assert row.brier == pytest.approx(np.mean((p - frame[output].to_numpy()) ** 2), rel=1e-9)
        # calibration.csv: ten equal-count bins of predicted probability, computed here
        cal = calibration[calibration["output"] == output]
        bins = np.array_split(np.argsort(p), 10)
        assert cal["n"].tolist() == [len(b) for b in bins]
        np.testing.assert_allclose(cal["mean_predicted"], [p[b].mean() for b in bins], rtol=1e-9)
        np.testing.assert_allclose(cal["observed_rate"],
                                   [frame[output].to_numpy()[b].mean() for b in bins], rtol=1e-9)
        np.testing.assert_allclose(cal["min_predicted"], [p[b].min() for b in bins], rtol=1e-9)
        np.testing.assert_allclose(cal["max_predicted"], [p[b].max() for b in bins], rtol=1e-9)
    train = joined[joined["split"] == "train"]
    in_sample = pd.read_csv(out / "metrics_train.csv").set_index("output")
    assert in_sample.loc["scd1", "n"] == len(train)
    assert in_sample.loc["scd1", "auc"] == pytest.approx(mt.roc_auc(train["scd1"], train["scd1_hat"]))
    expected = ev.high_risk_table(frame["scd1"], frame["scd1_hat"], frame["ptId"], [0.05, 0.2])
    high_risk = pd.read_csv(out / "high_risk.csv")
    assert high_risk["output"].tolist() == ["scd1", "scd1", "scd2", "scd2"]
    pd.testing.assert_frame_equal(high_risk.iloc[:2, 2:].reset_index(drop=True), expected,
                                  check_dtype=False)
    regression = pd.read_csv(out / "metrics_regression.csv").set_index("output")
    assert regression.loc["age", "r2"] == pytest.approx(
        mt.weighted_r2(frame["age"], frame["age_hat"]))
    assert set(pd.read_csv(out / "calibration.csv")["output"]) == {"scd3mo", "scd6mo", "scd1",
                                                                   "scd2"}
    for png in ("roc_scd.png", "calibration.png", "roc_scd_train.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "metrics.md").read_text()
    assert "| scd1 |" in summary and "- dead2: only one class" in summary
    assert "on the validation patients" in summary and "- in-sample ECGs: 0" in summary
    train_summary = (out / "metrics_train.md").read_text()
    assert "on the training (in-sample) patients" in train_summary
    assert f"- in-sample ECGs: {int(predictions['in_sample'].sum())}" in train_summary
    assert "are training (in-sample) predictions" in proc.stdout
    assert "validation AUC scd1" in proc.stdout and "training (in-sample) AUC scd1" in proc.stdout
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    script_runner(SCRIPT, *args, cwd=tmp_path)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # reruns are identical


def test_lockbox_results_are_named_and_never_overwrite_validation(tmp_path, monkeypatch, capsys):
    covariates, predictions = write_study(tmp_path, n_patients=120)
    monkeypatch.chdir(tmp_path)
    main = load_script().main
    folder = tmp_path / "predictions" / "demo_1"
    assert main(["--model-name", "demo", "--n-boot", "20", "--part", "val"]) == 0
    validation = (folder / "metrics.csv").read_bytes()
    # the same file re-predicted for the lockbox patients (as x03_predict --part lockbox does)
    predictions.assign(split="lockbox", in_sample=False).to_feather(folder / "predictions.feather")
    capsys.readouterr()
    assert main(["--model-name", "demo", "--n-boot", "20"]) == 0
    out = capsys.readouterr().out
    assert (folder / "metrics.csv").read_bytes() == validation
    lockbox = pd.read_csv(folder / "metrics_lockbox.csv").set_index("output")
    assert (lockbox["split"] == "lockbox").all() and lockbox.loc["scd1", "n"] == len(predictions)
    assert "lockbox AUC scd1" in out and "validation AUC" not in out
    assert "on the lockbox patients" in (folder / "metrics_lockbox.md").read_text()
    assert (folder / "roc_scd_lockbox.png").exists()


def load_script():
    spec = importlib.util.spec_from_file_location("x05_evaluate", ROOT / SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_split_selects_held_out_rows(tmp_path, monkeypatch, capsys):
    covariates, predictions = write_study(tmp_path, n_patients=120)
    monkeypatch.chdir(tmp_path)
    main = load_script().main
    assert main(["--model-name", "demo", "--n-boot", "20", "--part", "val",
                 "--outputs", "scd2"]) == 0
    assert "in-sample" not in capsys.readouterr().out
    metrics = pd.read_csv(tmp_path / "predictions" / "demo_1" / "metrics.csv")
    val = covariates.merge(predictions[predictions["split"] == "val"], on="studyId")
    assert metrics["output"].tolist() == ["scd2"] and metrics["n"].tolist() == [len(val)]
    assert metrics["auc"][0] == pytest.approx(mt.roc_auc(val["scd2"], val["scd2_hat"]))
    assert main(["--model-name", "demo", "--part", "lockbox"]) == 2
    assert "no rows with split 'lockbox' (present: train, val)" in capsys.readouterr().err


def test_a_split_name_that_is_a_path_is_refused_before_anything_is_written(
        tmp_path, monkeypatch, capsys):
    """A split value becomes part of x05's file names: "x/../../escaped" wrote
    metrics files outside the workspace. Now the file, the row and the value are named."""
    covariates, predictions = write_study(tmp_path, n_patients=60)
    path = tmp_path / "predictions" / "demo_1" / "predictions.feather"
    table = pd.read_feather(path)
    table.loc[table["split"] == "val", "split"] = "x/../../escaped"
    table.to_feather(path)
    monkeypatch.chdir(tmp_path)
    assert load_script().main(["--model-name", "demo", "--n-boot", "20", "--no-baselines"]) == 2
    err = capsys.readouterr().err
    assert "split 'x/../../escaped' in row" in err and "is not a split (train, val, lockbox" in err
    assert not list(tmp_path.parent.glob("escaped*")) and not list(tmp_path.glob("escaped*"))
    from scdecg.workspace import split_suffix
    with pytest.raises(PipelineError, match="is not one of train, val, lockbox"):
        split_suffix("../x")


def test_script_beat_model_uses_per_ecg_file_and_declared_types(tmp_path, monkeypatch, capsys):
    covariates, _ = write_study(tmp_path, n_patients=60)
    covariates["female"] = (np.arange(len(covariates)) % 2).astype(float)
    covariates.to_feather(tmp_path / "covariate_df.feather")
    ids = covariates["studyId"]
    beats = pd.DataFrame({"studyId": np.repeat(ids, 3), "filename": "x.npy",
                          "scd1_hat": np.arange(3 * len(ids), dtype=float),
                          "female_hat": 0.0})
    by_ecg = beats.groupby("studyId", sort=False)[["scd1_hat", "female_hat"]].mean()
    folder = tmp_path / "predictions" / "beats_1"
    folder.mkdir(parents=True)
    beats.to_feather(folder / "predictions.feather")
    by_ecg.reset_index().to_feather(folder / "predictions_by_ecg.feather")
    config = tmp_path / "modelfits_beat" / "beats" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text('{"outputs": ["scd1", "female"], '
                      '"output_types": ["classification", "regression"]}')
    monkeypatch.chdir(tmp_path)
    main = load_script().main
    assert main(["--model-name", "beats", "--beat", "--n-boot", "20"]) == 0
    assert "inferred" not in capsys.readouterr().out
    metrics = pd.read_csv(folder / "metrics.csv")
    assert metrics["output"].tolist() == ["scd1"] and metrics["n"].tolist() == [len(ids)]
    frame = covariates.merge(by_ecg.reset_index(), on="studyId")
    assert metrics["auc"][0] == pytest.approx(mt.roc_auc(frame["scd1"], frame["scd1_hat"]))
    regression = pd.read_csv(folder / "metrics_regression.csv")
    assert regression["output"].tolist() == ["female"]  # declared, although labels are 0/1
    # the per-beat file is not one row per ECG
    assert main(["--model-name", "beats", "--n-boot", "20"]) == 2
    assert "appears more than once" in capsys.readouterr().err


def test_script_clear_errors(tmp_path, script_runner, monkeypatch, capsys):
    proc = script_runner(SCRIPT, "--model-name", "absent", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "predictions/absent_1/predictions.feather: file not found" in proc.stderr
    assert "x03_predict.py --model-name absent" in proc.stderr

    main = load_script().main  # the remaining cases in-process (same code path, faster)
    monkeypatch.chdir(tmp_path)

    def error(*argv):
        assert main(["--model-name", "demo", "--n-boot", "5", *argv]) == 2
        return capsys.readouterr().err

    assert "predictions/demo_1/predictions_by_ecg.feather: file not found" in error("--beat")
    covariates, predictions = write_study(tmp_path, n_patients=40)
    assert "no column VTVF_hat for requested output VTVF" in error("--outputs", "scd1", "VTVF")
    covariates.drop(columns="scd2").to_feather("covariate_df.feather")
    assert "covariate_df.feather: no label column 'scd2'" in error()
    covariates.iloc[3:].to_feather("covariate_df.feather")
    message = error()
    assert "3 of" in message and "not found in covariate_df.feather" in message
    Path("covariate_df.feather").unlink()
    assert "covariate_df.feather: file not found" in error()



@pytest.mark.parametrize("column, value", [("female", "F"), ("aVL_rs_diff", np.inf)])
def test_baselines_refuse_text_or_infinity_in_a_column_they_read(tmp_path, monkeypatch, capsys,
                                                                 column, value):
    """Text in female or an infinite aVL feature of a split ECG was a traceback (float
    conversion, scikit-learn) after the predictions were read; now one line names the table,
    the column, the ECG and the value, and nothing is written."""
    covariates, predictions = write_study(tmp_path, n_patients=60)
    covariates["female"] = (np.arange(len(covariates)) % 2).astype(float)
    covariates["aVL_rs_diff"] = covariates["aVL_rs_diff_2"] = 0.5
    if column == "female":
        covariates["female"] = covariates["female"].map("{:g}".format)  # text column
    covariates.loc[7, column] = value
    covariates.to_feather(tmp_path / "covariate_df.feather")
    folder = tmp_path / "modelfits_ecg" / "demo"
    folder.mkdir(parents=True)
    split = predictions[["studyId", "split"]].merge(covariates[["studyId", "ptId"]])
    split["split"] = split.groupby("ptId")["split"].transform("first")   # one split a patient
    split.to_csv(folder / "split.csv", index=False)
    source = tmp_path / "predictions" / "demo_1" / "predictions.feather"   # the same splits
    pd.read_feather(source).drop(columns="split").merge(split[["studyId", "split"]]).to_feather(
        source)
    monkeypatch.chdir(tmp_path)
    assert load_script().main(["--model-name", "demo", "--n-boot", "5"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: covariate_df.feather: column {column} is {value!r} for studyId "
                   "'ecg0007' (1 row(s)); expected a finite number\n")
    assert sorted(p.name for p in (tmp_path / "predictions" / "demo_1").iterdir()) == [
        "predictions.feather"]


# ----------------------------------------------------------------------------- baselines
def baseline_study(root, n_patients=120, seed=0):
    """Covariates, a model split and x04-style beat files whose aVL R amplitude carries scd1."""
    from scdecg import baselines as bl

    rng = np.random.default_rng(seed)
    ids = [f"ecg{i:03d}" for i in range(n_patients)]
    y = (rng.random(n_patients) < 0.3).astype(float)
    covariates = pd.DataFrame({"studyId": ids, "ptId": [f"pt{i:03d}" for i in range(n_patients)],
                               "age": rng.normal(60, 10, n_patients),
                               "female": rng.integers(0, 2, n_patients).astype(float),
                               "aVL_rs_diff": rng.normal(0, 1, n_patients) - y,
                               "aVL_rs_diff_2": rng.normal(0, 1, n_patients), "scd1": y})
    covariates.loc[3, "aVL_rs_diff_2"] = np.nan
    split = pd.DataFrame({"studyId": ids, "ptId": covariates["ptId"],
                          "split": np.array(["train", "val", "lockbox"])[np.arange(n_patients) % 3]})
    for i, sid in enumerate(ids):
        if i == 5:
            continue  # an ECG without beats
        folder = root / "ecg_beats" / sid
        folder.mkdir(parents=True)
        for k in range(3):
            beat = rng.normal(0, 0.05, (12, 300)).astype(np.float32)
            beat[4, 80:130] += 1.0 + 0.8 * y[i]
            np.save(folder / f"{sid}_{k}.npy", beat, allow_pickle=False)
    return bl, covariates, split


def test_baselines_fit_on_training_patients_only_and_score_the_same_ecgs(tmp_path):
    bl, covariates, split = baseline_study(tmp_path)
    fitted = bl.fit_baselines(covariates, split, "scd1", beats_dir=tmp_path / "ecg_beats")
    assert fitted.scores["studyId"].tolist() == split["studyId"].tolist()
    assert np.isnan(fitted.scores.loc[5, bl.PROBE]) and np.isfinite(fitted.scores.loc[5, bl.CLINICAL])
    reasons = " ".join(r["reason"] for r in fitted.failures.rows)
    assert "no x04 beat files" in reasons and "aVL_rs_diff_2 missing" in reasons
    # held-out labels never reach the fit: flipping them leaves every score unchanged
    held_out = split["split"] != "train"
    flipped = covariates.assign(scd1=np.where(held_out, 1 - covariates["scd1"], covariates["scd1"]))
    again = bl.fit_baselines(flipped, split, "scd1", beats_dir=tmp_path / "ecg_beats")
    pd.testing.assert_frame_equal(again.scores, fitted.scores)
    # the planted aVL amplitude is found by the probe on the lockbox ECGs
    lockbox = covariates[split["split"] == "lockbox"].assign(scd1_hat=0.0)
    lockbox["scd1_hat"] = np.arange(len(lockbox), dtype=float)   # an uninformative model
    table = bl.baseline_table(lockbox, fitted, "scd1", "model", "lockbox", 50, 0, 0.95)
    auc = table.set_index("model")["auc"]
    assert auc[bl.PROBE] > 0.9 and auc[bl.CLINICAL] > 0.65
    scored = lockbox.merge(fitted.scores, on="studyId").dropna(subset=[bl.PROBE])
    assert auc[bl.PROBE] == pytest.approx(mt.roc_auc(scored["scd1"], scored[bl.PROBE]))
    assert (table["split"] == "lockbox").all()


def test_each_baseline_is_also_compared_with_the_model_on_its_own_ecgs(tmp_path):
    """The probe scores no ECG without beats (ecg005); the model's AUC beside it, and the paired
    difference, are on the probe's ECGs only; the model's own row keeps every ECG."""
    bl, covariates, split = baseline_study(tmp_path)
    fitted = bl.fit_baselines(covariates, split, "scd1", beats_dir=tmp_path / "ecg_beats")
    val = covariates[split["split"] == "lockbox"].reset_index(drop=True)
    assert "ecg005" in set(val["studyId"])
    # a model that is right on ecg005 and noisy elsewhere
    val["scd1_hat"] = val["scd1"] + np.random.default_rng(1).normal(0, 0.8, len(val))
    table = bl.baseline_table(val, fitted, "scd1", "model", "lockbox", 200, 0, 0.95
                              ).set_index("model")
    probe_ecgs = val[val["studyId"] != "ecg005"]
    assert table.at["model", "n"] == len(val) and table.at[bl.PROBE, "n"] == len(probe_ecgs)
    assert table.at[bl.PROBE, "model_auc"] == pytest.approx(
        mt.roc_auc(probe_ecgs["scd1"], probe_ecgs["scd1_hat"]))
    assert table.at[bl.CLINICAL, "model_auc"] == pytest.approx(table.at["model", "auc"])
    for name in (bl.PROBE, bl.CLINICAL):
        row = table.loc[name]
        assert row["difference"] == pytest.approx(row["model_auc"] - row["auc"])
        assert row["difference_lo"] < row["difference"] < row["difference_hi"]
    assert np.isnan(table.at["model", "difference"])


def test_the_paired_difference_interval_is_narrower_than_either_auc_interval():
    """Two scores that share most of their noise: their AUCs' intervals overlap widely, yet
    the paired interval of the difference is tight around the true small gap."""
    rng = np.random.default_rng(4)
    n = 400
    y = (rng.random(n) < 0.3).astype(float)
    shared = rng.normal(0, 1.0, n)
    a, b = y + shared, 0.8 * y + shared
    patients = np.arange(n)
    out = mt.paired_auc_difference(y, a, b, patients, 300, 0)
    one = mt.auc_with_interval(y, a, patients, 300, 0)
    assert out["difference"] == pytest.approx(mt.roc_auc(y, a) - mt.roc_auc(y, b)) and \
        out["difference"] > 0
    assert 0 < out["difference_lo"] < out["difference_hi"]
    assert out["difference_hi"] - out["difference_lo"] < 0.5 * (one["auc_hi"] - one["auc_lo"])
    same = mt.paired_auc_difference(y, a, a, patients, 50, 0)
    assert same == {"difference": 0.0, "difference_lo": 0.0, "difference_hi": 0.0}
    assert mt.difference_verdict(out["difference_lo"], out["difference_hi"]) == "above"
    flipped = mt.paired_auc_difference(y, b, a, patients, 300, 0)
    assert mt.difference_verdict(flipped["difference_lo"], flipped["difference_hi"]) == "below"
    assert mt.difference_verdict(same["difference_lo"], same["difference_hi"]) == "tie"


@pytest.mark.parametrize("lo, hi, verdict", [
    (0.001, 0.05, "above"), (-0.05, -0.001, "below"), (-0.03, 0.03, "tie"),
    (0.0, 0.02, "tie"), (-0.02, 0.0, "tie"), (np.nan, np.nan, "tie"), (np.nan, -0.01, "below")])
def test_a_difference_is_a_tie_unless_its_whole_interval_is_on_one_side_of_zero(lo, hi, verdict):
    assert mt.difference_verdict(lo, hi) == verdict


def test_evaluation_bootstrap_resamples_patients_not_ecgs():
    """Three copies of every patient's ECG leave the patient bootstrap's interval unchanged
    (each patient is drawn as a whole); resampling ECGs would narrow it."""
    rng = np.random.default_rng(3)
    n = 60
    y = (rng.random(n) < 0.3).astype(float)
    logit = y + rng.normal(0.0, 1.2, n)
    one = pd.DataFrame({"studyId": [f"e{i}" for i in range(n)], "ptId": [f"p{i}" for i in range(n)],
                        "scd1": y, "scd1_hat": logit})
    three = pd.concat([one.assign(studyId=one["studyId"] + f"_{k}") for k in range(3)],
                      ignore_index=True)
    kinds = {"scd1": "classification"}
    single = ev.evaluate_outputs(one, kinds, n_boot=200, seed=0)[0].set_index("output").loc["scd1"]
    copies = ev.evaluate_outputs(three, kinds, n_boot=200, seed=0)[0].set_index("output").loc["scd1"]
    assert copies.n == 3 * single.n and copies.n_patients == single.n_patients == n
    assert copies.auc == pytest.approx(single.auc)
    assert copies.auc_lo == pytest.approx(single.auc_lo) and copies.auc_hi == pytest.approx(single.auc_hi)
    assert single.auc_hi - single.auc_lo > 0.1   # a real interval, not a degenerate one


# ----------------------------------------------------------------------------- scdecg.metrics edges
# (each found by the mutation run over scdecg.metrics; benchmarks/mutation.py metrics)
def _no_warnings():
    import warnings

    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("error")
    return context


def test_weight_blocks_are_exact_integers_or_floats_and_name_a_wrong_width():
    from scdecg.metrics import _as_weight_block

    ones = _as_weight_block(None, 3)
    assert ones.dtype == np.int64 and ones.tolist() == [[1, 1, 1]]
    assert _as_weight_block(np.array([2, 0, 1], dtype=np.int32), 3).dtype == np.int64
    assert _as_weight_block(np.array([True, False, True]), 3).tolist() == [[1, 0, 1]]
    assert _as_weight_block(np.array([True, False, True]), 3).dtype == np.int64
    floats = _as_weight_block(np.array([0.5, 1.5, 1.0]), 3)
    assert floats.dtype == np.float64 and floats.tolist() == [[0.5, 1.5, 1.0]]
    with pytest.raises(ValueError, match=r"^weights have 2 columns for 3 rows$"):
        _as_weight_block(np.ones((4, 2)), 3)


def test_fractional_weights_count_as_given():
    from scdecg.metrics import weighted_auc, weighted_r2

    y, score = np.array([0, 1, 0, 1.0]), np.array([0.1, 0.2, 0.3, 0.4])
    # halving every weight changes nothing; truncating them to integers would (0 -> NaN)
    assert weighted_auc(y, score, np.full(4, 0.5)) == pytest.approx(weighted_auc(y, score))
    # wins 0.5 (0.2 > 0.1) + 0.5 (0.4 > 0.1) + 1 (0.4 > 0.3) of 2 x 1.5 weighted pairs
    assert weighted_auc(y, score, np.array([0.5, 1, 1, 1])) == pytest.approx(2.0 / 3.0)
    pred = np.array([0.0, 1.5, 0.5, 0.5])
    assert weighted_r2(y, pred, np.full(4, 0.5)) == pytest.approx(weighted_r2(y, pred))


def test_one_row_of_weights_gives_a_number_and_a_block_one_per_replicate():
    from scdecg.metrics import weighted_auc, weighted_r2

    y, score = np.array([0, 1, 0, 1.0]), np.array([0.1, 0.2, 0.3, 0.4])
    assert isinstance(weighted_auc(y, score, np.ones(4, dtype=int)), float)
    assert isinstance(weighted_r2(y, score, np.ones(4, dtype=int)), float)
    block = np.array([[1, 1, 1, 1], [0, 1, 1, 1], [2, 0, 1, 3]])
    r2 = weighted_r2(y, score, block)
    assert r2.shape == (3,)
    for row, value in zip(block, r2):           # each replicate its own mean, SSE and SST
        yy, pp = np.repeat(y, row), np.repeat(score, row)
        assert value == pytest.approx(1 - np.sum((yy - pp) ** 2) / np.sum((yy - yy.mean()) ** 2))


def test_r2_of_small_and_constant_outcomes_without_warnings():
    from scdecg.metrics import weighted_auc, weighted_r2

    context = _no_warnings()
    try:
        y = np.array([0.1, 0.2, 0.3])                         # SST 0.02 < 1: still defined
        assert weighted_r2(y, np.array([0.1, 0.2, 0.2])) == pytest.approx(1 - 0.01 / 0.02)
        assert np.isnan(weighted_r2(np.ones(3), np.array([1.0, 2, 3])))   # SST 0, SSE > 0
        assert np.isnan(weighted_r2(np.ones(3), np.ones(3)))              # 0 / 0
        assert np.isnan(weighted_auc(np.ones(3), np.array([1.0, 2, 3])))  # one class
    finally:
        context.__exit__(None, None, None)
    with pytest.raises(ValueError, match=r"^score contains NaN; drop those rows first$"):
        weighted_auc(np.array([0, 1]), np.array([0.5, np.nan]))


def test_roc_curve_with_one_positive_or_negative_and_boolean_scores():
    from scdecg.metrics import roc_curve

    fpr, tpr = roc_curve(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.3]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0] and tpr.tolist() == [0.0, 1.0, 1.0, 1.0]
    fpr, tpr = roc_curve(np.array([1, 1, 0]), np.array([0.1, 0.2, 0.3]))
    assert fpr.tolist() == [0.0, 1.0, 1.0, 1.0] and tpr.tolist() == [0.0, 0.0, 0.5, 1.0]
    fpr, tpr = roc_curve(np.array([0, 1, 1, 0]), np.array([False, True, False, False]))
    assert fpr.tolist() == [0.0, 0.0, 1.0] and tpr.tolist() == [0.0, 0.5, 1.0]


def test_bootstrap_weights_are_seeded_int32_blocks_that_follow_the_patient_not_the_row():
    from scdecg.metrics import cluster_bootstrap_weights

    blocks = list(cluster_bootstrap_weights(["b", "a", "c", "a"], 3, np.random.default_rng(7)))
    assert len(blocks) == 1 and blocks[0].dtype == np.int32
    # the stream of a seed is fixed (results reproduce across versions): patients a, b, c
    assert blocks[0].tolist() == [[1, 0, 2, 0], [1, 0, 2, 0], [0, 2, 1, 2]]
    # rows in another order: each row keeps its patient's weight (patients drawn in id order)
    again = next(cluster_bootstrap_weights(["a", "c", "b", "a"], 3, np.random.default_rng(7)))
    assert again.tolist() == blocks[0][:, [1, 2, 0, 3]].tolist()
    # every patient can be drawn, each replicate draws as many patients as there are
    many = next(cluster_bootstrap_weights(list("abcdefgh"), 400, np.random.default_rng(0)))
    assert (many.sum(axis=1) == 8).all() and (many.max(axis=0) > 0).all()
    with pytest.raises(PipelineError, match=r"^cluster bootstrap: missing cluster \(patient\) id$"):
        next(cluster_bootstrap_weights(["a", None], 2, np.random.default_rng(0)))


def test_bootstrap_blocks_respect_the_cell_limit_and_the_replicate_count():
    from scdecg.metrics import cluster_bootstrap, cluster_bootstrap_weights

    shapes = [b.shape for b in cluster_bootstrap_weights(["b", "a", "c", "a"], 7,
                                                         np.random.default_rng(0), max_block_cells=8)]
    assert shapes == [(2, 4), (2, 4), (2, 4), (1, 4)]
    shapes = [b.shape for b in cluster_bootstrap_weights(["a", "b", "c"], 3,
                                                         np.random.default_rng(0), max_block_cells=2)]
    assert shapes == [(1, 3)] * 3                       # at least one replicate per block
    shapes = [b.shape for b in cluster_bootstrap_weights(["a"], 5, np.random.default_rng(0),
                                                         max_block_cells=3)]
    assert shapes == [(3, 1), (2, 1)]
    none = cluster_bootstrap(lambda w: w.sum(axis=1), ["a", "b"], 0, seed=0)
    assert none.shape == (0,)


def test_auc_with_interval_reports_prevalence_replicates_and_the_95_percent_default():
    from scdecg.metrics import auc_with_interval

    rng = np.random.default_rng(3)
    y = (rng.random(120) < 0.3).astype(int)
    score = y + rng.normal(0, 1, 120)
    patients = np.arange(120) // 2
    out = auc_with_interval(y, score, patients, 300, seed=1)
    assert out == auc_with_interval(y, score, patients, 300, seed=1, level=0.95)
    assert out["auc_lo"] != auc_with_interval(y, score, patients, 300, seed=1, level=0.9)["auc_lo"]
    assert out["prevalence"] == pytest.approx(y.mean()) and out["n_boot"] == 300
    assert (out["n"], out["n_pos"], out["n_patients"]) == (120, y.sum(), 60)


def test_predictions_whose_split_differs_from_the_models_are_refused(tmp_path, monkeypatch,
                                                                      capsys):
    """A predictions file edited so that training ECGs read as validation: the metrics and the
    baselines (fitted on those very training ECGs) would be reported as held-out figures."""
    covariates, predictions = write_study(tmp_path, n_patients=60)
    folder = tmp_path / "modelfits_ecg" / "demo"
    folder.mkdir(parents=True)
    split = predictions[["studyId", "split"]].merge(covariates[["studyId", "ptId"]])
    split["split"] = split.groupby("ptId")["split"].transform("first")   # one split a patient
    split.to_csv(folder / "split.csv", index=False)
    source = tmp_path / "predictions" / "demo_1" / "predictions.feather"
    edited = pd.read_feather(source).drop(columns="split").merge(split[["studyId", "split"]])
    first_train = edited.index[edited["split"] == "train"][0]
    edited.loc[first_train, "split"] = "val"
    edited.to_feather(source)
    monkeypatch.chdir(tmp_path)
    assert load_script().main(["--model-name", "demo", "--n-boot", "5"]) == 2
    err = capsys.readouterr().err
    assert f"studyId {edited.loc[first_train, 'studyId']!r} is predicted as 'val'" in err
    assert "puts it in 'train' (1 such row(s))" in err


def test_a_run_without_baselines_removes_an_earlier_runs_baselines(tmp_path, monkeypatch):
    """The run report reads baselines.csv beside metrics.csv: a table of an earlier run must
    not stay there as if it were this run's."""
    write_study(tmp_path, n_patients=60)
    folder = tmp_path / "predictions" / "demo_1"
    pd.DataFrame({"model": ["age+sex"], "auc": [0.9]}).to_csv(folder / "baselines.csv",
                                                              index=False)
    monkeypatch.chdir(tmp_path)
    assert load_script().main(["--model-name", "demo", "--n-boot", "5", "--part", "val",
                               "--no-baselines"]) == 0
    assert (folder / "metrics.csv").is_file() and not (folder / "baselines.csv").exists()


@pytest.mark.parametrize("outcome, message", [
    ("bogus", "no such column in covariate_df.feather"),
    ("age", "an input of the baselines, not an outcome"),
    ("heartRate", "not a 0/1 label in covariate_df.feather")])
def test_a_baseline_outcome_that_is_no_label_is_refused(tmp_path, monkeypatch, capsys, outcome,
                                                        message):
    """--baseline-outcome age was a pandas traceback; a missing column only skipped the
    baselines, exit 0."""
    covariates, predictions = write_study(tmp_path, n_patients=40)
    covariates["heartRate"] = 60.0 + np.arange(len(covariates))
    covariates.to_feather(tmp_path / "covariate_df.feather")
    folder = tmp_path / "modelfits_ecg" / "demo"
    folder.mkdir(parents=True)
    split = predictions[["studyId", "split"]].merge(covariates[["studyId", "ptId"]])
    split["split"] = split.groupby("ptId")["split"].transform("first")
    split.to_csv(folder / "split.csv", index=False)
    source = tmp_path / "predictions" / "demo_1" / "predictions.feather"
    pd.read_feather(source).drop(columns="split").merge(split[["studyId", "split"]]).to_feather(
        source)
    monkeypatch.chdir(tmp_path)
    assert load_script().main(["--model-name", "demo", "--n-boot", "5",
                               "--baseline-outcome", outcome]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --baseline-outcome {outcome!r}: {message}"), err


def test_figure_outputs_the_model_does_not_have_are_named(tmp_path, monkeypatch, capsys):
    """x05 --roc-outputs bogus drew nothing and said nothing."""
    write_study(tmp_path, n_patients=40)
    monkeypatch.chdir(tmp_path)
    assert load_script().main(["--model-name", "demo", "--n-boot", "5", "--part", "val",
                               "--roc-outputs", "bogus", "--high-risk-outputs", "bogus"]) == 0
    out = capsys.readouterr().out
    assert "[x05] --roc-outputs: bogus not among the evaluated outputs of demo" in out
    assert "no ROC curve for them" in out and "--high-risk-outputs: bogus" in out
