"""The stacking ensemble (01_Predictive_Model/x04_train_ensemble.py, scdecg.ensemble)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from scdecg import ensemble as en
from scdecg.errors import PipelineError
from scdecg.metrics import roc_auc
from training_fixtures import run_main

X04 = "01_Predictive_Model/x04_train_ensemble.py"
INPUTS = ["scd1_hat0", "scd2_hat", "scd3mo_hat", "scd6mo_hat", "TROPT1_hat", "Acute_MI1_hat",
          "cond_scd1_hat", "low_ef_hat", "age", "female"]


def stacked_frame(n_patients: int = 160, seed: int = 0) -> pd.DataFrame:
    """Patients with 1-3 ECGs, a patient-level risk shared by their ECGs, ten inputs."""
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 4, n_patients)
    pt = np.repeat([f"p{i:03d}" for i in range(n_patients)], per)
    frailty = np.repeat(rng.normal(0, 1.0, n_patients), per)
    n = pt.size
    signal = rng.normal(0, 1, n) + frailty
    frame = pd.DataFrame({"studyId": [f"e{i:04d}" for i in range(n)], "ptId": pt})
    for j, column in enumerate(INPUTS[:8]):
        frame[column] = signal * (1.0 - 0.1 * j) + rng.normal(0, 0.7, n)
    frame["age"] = np.repeat(rng.normal(65, 10, n_patients), per)
    frame["female"] = np.repeat(rng.integers(0, 2, n_patients), per).astype(float)
    logit = -1.0 + 1.2 * signal + 0.02 * (frame["age"] - 65)
    frame["scd1"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return frame


def test_cross_fitting_never_predicts_a_patient_with_a_model_that_saw_it():
    frame = stacked_frame()
    result = en.cross_fit(frame, INPUTS, "scd1", seed=42)
    preds = result.predictions
    # halves are by patient, and every row is scored by the other half's fit
    assert preds.groupby("ptId")["half"].nunique().max() == 1
    assert set(preds["half"]) == {0, 1}
    assert (preds["fitted_on_half"] != preds["half"]).all()
    # changing every outcome of half 0 leaves half 0's predictions unchanged (its model never
    # saw them) and changes half 1's
    flipped = frame.copy()
    half0 = frame["ptId"].isin(preds.loc[preds["half"] == 0, "ptId"])
    flipped.loc[half0, "scd1"] = 1.0 - flipped.loc[half0, "scd1"]
    again = en.cross_fit(flipped, INPUTS, "scd1", seed=42).predictions
    same = again.set_index("studyId")[en.ENSEMBLE_COLUMN]
    before = preds.set_index("studyId")[en.ENSEMBLE_COLUMN]
    in0 = preds.set_index("studyId")["half"] == 0
    np.testing.assert_allclose(same[in0], before[in0], rtol=1e-10)
    assert np.abs(same[~in0] - before[~in0]).max() > 1e-3


def test_coefficients_match_a_direct_statsmodels_fit_with_patient_clustered_errors():
    frame = stacked_frame(seed=1)
    result = en.cross_fit(frame, INPUTS, "scd1", seed=42)
    preds = result.predictions
    for half in (0, 1):
        part = preds[preds["half"] == half]
        x = sm.add_constant(part[INPUTS].to_numpy(float), has_constant="add")
        groups = pd.factorize(part["ptId"], sort=True)[0]
        model = sm.GLM(part["scd1"].to_numpy(float), x, family=sm.families.Binomial())
        direct = model.fit(cov_type="cluster", cov_kwds={"groups": groups})
        table = result.coefficients[result.coefficients["fitted_on_half"] == half]
        np.testing.assert_allclose(table["coef"], direct.params, rtol=1e-6)
        np.testing.assert_allclose(table["se_cluster"], direct.bse, rtol=1e-6)
        # clustered, not model-based: the sandwich with per-patient score sums
        beta = direct.params
        p = 1 / (1 + np.exp(-x @ beta))
        bread = np.linalg.inv(x.T @ (x * (p * (1 - p))[:, None]))
        scores = pd.DataFrame(x * (part["scd1"].to_numpy(float) - p)[:, None]).groupby(groups).sum()
        meat = scores.to_numpy().T @ scores.to_numpy()
        g, n, k = len(np.unique(groups)), len(part), x.shape[1]
        correction = g / (g - 1) * (n - 1) / (n - k)
        sandwich = np.sqrt(np.diag(correction * bread @ meat @ bread))
        np.testing.assert_allclose(table["se_cluster"], sandwich, rtol=1e-4)
        naive = model.fit().bse
        assert np.max(np.abs(table["se_cluster"].to_numpy() / naive - 1)) > 0.05
        # the other half's predictions are this fit's
        other = preds[preds["half"] != half]
        x_other = sm.add_constant(other[INPUTS].to_numpy(float), has_constant="add")
        np.testing.assert_allclose(other[en.ENSEMBLE_COLUMN], direct.predict(x_other), rtol=1e-8)


def test_constant_and_collinear_inputs_are_reported_not_fatal():
    frame = stacked_frame(seed=2)
    frame["low_ef_hat"] = -6.0                      # a member that learnt a constant
    frame["cond_scd1_hat"] = 2 * frame["scd2_hat"] + 1
    result = en.cross_fit(frame, INPUTS, "scd1", seed=42)
    table = result.coefficients.set_index(["fitted_on_half", "term"])
    for half in (0, 1):
        row = table.loc[(half, "low_ef_hat")]
        assert not row["estimable"] and np.isnan(row["coef"]) and "constant" in row["note"]
        assert "linear combination" in table.loc[(half, "cond_scd1_hat"), "note"]
        assert table.loc[(half, "scd1_hat0"), "estimable"]
    assert np.isfinite(result.predictions[en.ENSEMBLE_COLUMN]).all()


def test_separation_is_noted_and_one_class_half_is_an_error():
    frame = stacked_frame(seed=3)
    frame["age"] = np.where(frame["scd1"] == 1, 80.0, 50.0) + frame.index % 3
    result = en.cross_fit(frame, INPUTS, "scd1", seed=42)
    assert result.coefficients["note"].str.contains("separation").all()
    frame["scd1"] = 0.0
    with pytest.raises(PipelineError, match="only one class"):
        en.cross_fit(frame, INPUTS, "scd1", seed=42)



def test_a_singular_hessian_gives_coefficients_without_standard_errors_and_a_note():
    """A small, nearly separated half (x04 on a 120-patient cohort): statsmodels cannot invert
    the Hessian for the clustered covariance; the fit keeps its coefficients, with NaN
    standard errors and the reason, instead of stopping the step."""
    frame = pd.read_csv(Path(__file__).parent / "data" / "ensemble_singular_half.csv")
    fit = en.fit_half(frame, INPUTS, "scd1", 0)
    assert np.isfinite(fit.params).all() and len(fit.params) == len(INPUTS) + 1
    assert np.isnan(fit.bse).all() and np.isnan(fit.pvalues).all()
    assert np.isnan(fit.conf_int).all()
    assert any("Hessian is singular" in note for note in fit.notes)
    direct = sm.GLM(frame["scd1"].to_numpy(float), en.design(frame, INPUTS),
                    family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(fit.params, direct.params, rtol=1e-9)


# ----------------------------------------------------------------------------- the script
def write_workspace(root, frame: pd.DataFrame, death_only_split: str = "val",
                    lockbox: pd.DataFrame | None = None) -> None:
    """Member prediction files for ``frame`` (validation) and optionally ``lockbox`` rows."""
    everything = frame if lockbox is None else pd.concat([frame, lockbox], ignore_index=True)
    cov = everything[["studyId", "ptId", "scd1", "age", "female"]].copy()
    cov.to_feather(root / "covariate_df.feather")
    members = {"ntuh_scd_model_demo": {c: c for c in ["scd2_hat", "scd3mo_hat", "scd6mo_hat",
                                                         "TROPT1_hat", "Acute_MI1_hat"]}
               | {"scd1_hat0": "scd1_hat"},
               "ntuh_scd_model_demo_death_only": {"cond_scd1_hat": "scd1_hat"},
               "ntuh_scd_model_demo_low_ef": {"low_ef_hat": "low_ef_hat"}}
    for name, columns in members.items():
        table = frame[["studyId", *columns]].rename(columns=columns)
        table["split"] = death_only_split if name.endswith("death_only") else "val"
        if lockbox is not None:
            table = pd.concat([table, lockbox[["studyId", *columns]].rename(columns=columns)
                               .assign(split="lockbox")], ignore_index=True)
        extra = pd.DataFrame({"studyId": ["t1", "t2"], "split": "train"})  # ignored rows
        table = pd.concat([table, extra], ignore_index=True)
        folder = root / "predictions" / f"{name}_1"
        folder.mkdir(parents=True)
        table.to_feather(folder / "predictions.feather")


def test_script_writes_cross_fitted_predictions_coefficients_and_aucs(tmp_path):
    frame = stacked_frame(n_patients=120, seed=4)
    write_workspace(tmp_path, frame)
    code, out, err = run_main(X04, "--n-boot", "50", cwd=tmp_path)
    assert code == 0, err
    folder = tmp_path / "predictions/scd1_ensemble_model"
    preds = pd.read_feather(folder / "predictions.feather")
    assert len(preds) == len(frame) and set(preds["studyId"]) == set(frame["studyId"])
    metrics = pd.read_csv(folder / "metrics.csv").set_index("score")
    assert metrics.loc[en.ENSEMBLE_COLUMN, "auc"] == pytest.approx(
        roc_auc(preds["scd1"], preds[en.ENSEMBLE_COLUMN]))
    assert metrics.loc["scd1_hat0", "auc"] == pytest.approx(roc_auc(frame["scd1"], frame["scd1_hat0"]))
    assert (metrics["split"] == "val").all()
    coefficients = json.loads((folder / "coefficients.json").read_text())
    assert coefficients["inputs"] == INPUTS
    assert coefficients["fits"]["0"]["terms"] == ["const", *INPUTS]
    table = pd.read_csv(folder / "coefficients.csv")
    assert len(table) == 2 * (len(INPUTS) + 1) and table["se_cluster"].gt(0).all()
    assert (folder / "risk_histogram.png").stat().st_size > 1000
    assert not list(folder.glob("*.pkl")) and not list(folder.glob("*.pickle"))
    assert "validation AUC scd1 scd1_hat_ensemble" in " ".join(out.split())
    assert "lockbox not evaluated" in out and "--part all" in out
    assert not (folder / "metrics_lockbox.csv").exists()


def test_lockbox_is_scored_by_one_fit_on_all_validation_patients(tmp_path):
    frame = stacked_frame(n_patients=120, seed=7)
    lockbox = stacked_frame(n_patients=80, seed=8)
    lockbox = lockbox.assign(studyId="L" + lockbox["studyId"], ptId="L" + lockbox["ptId"])
    write_workspace(tmp_path, frame, lockbox=lockbox)
    code, out, err = run_main(X04, "--n-boot", "20", cwd=tmp_path)
    assert code == 0, err
    folder = tmp_path / "predictions/scd1_ensemble_model"
    x = sm.add_constant(frame[INPUTS].to_numpy(float), has_constant="add")
    direct = sm.GLM(frame["scd1"].to_numpy(float), x, family=sm.families.Binomial()).fit()
    scored = pd.read_feather(folder / "predictions_lockbox.feather").set_index("studyId")
    expected = direct.predict(sm.add_constant(lockbox[INPUTS].to_numpy(float), has_constant="add"))
    np.testing.assert_allclose(scored.loc[lockbox["studyId"], en.ENSEMBLE_COLUMN], expected,
                               rtol=1e-8)
    metrics = pd.read_csv(folder / "metrics_lockbox.csv").set_index("score")
    assert metrics.loc[en.ENSEMBLE_COLUMN, "n"] == len(lockbox)
    assert metrics.loc[en.ENSEMBLE_COLUMN, "auc"] == pytest.approx(roc_auc(lockbox["scd1"], expected))
    assert (metrics["split"] == "lockbox").all() and "lockbox AUC scd1 scd1_hat_ensemble" in out
    # the cross-fitted validation results are unchanged by the lockbox
    assert len(pd.read_feather(folder / "predictions.feather")) == len(frame)
    # a later run that scores no lockbox removes the earlier run's lockbox files, which the
    # run report would otherwise show beside the new validation figures
    code, out, err = run_main(X04, "--n-boot", "20", "--holdout", "", cwd=tmp_path)
    assert code == 0, err
    assert not list(folder.glob("*_lockbox*")) and "removed 5 file(s) of an earlier run" in out
    assert (folder / "metrics.csv").is_file()


def test_an_output_name_of_another_steps_folder_is_refused_before_anything_is_written(tmp_path):
    frame = stacked_frame(n_patients=40, seed=5)
    write_workspace(tmp_path, frame)
    member = tmp_path / "predictions/ntuh_scd_model_demo_1/predictions.feather"
    before = member.read_bytes()
    code, _, err = run_main(X04, "--n-boot", "10", "--output-name", "ntuh_scd_model_demo_1",
                            cwd=tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--output-name 'ntuh_scd_model_demo_1'" in err and "x04 did not write" in err
    assert member.read_bytes() == before


def test_missing_member_names_the_command_to_run(tmp_path):
    frame = stacked_frame(n_patients=40, seed=5)
    write_workspace(tmp_path, frame)
    (tmp_path / "predictions/ntuh_scd_model_demo_low_ef_1/predictions.feather").unlink()
    code, _, err = run_main(X04, "--n-boot", "10", cwd=tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "x01_train_10s_ecg.py --run low-ef" in err
    assert "x03_predict.py --model-name ntuh_scd_model_demo_low_ef" in err


def test_member_trained_on_an_ensemble_patient_is_refused(tmp_path):
    frame = stacked_frame(n_patients=40, seed=6)
    write_workspace(tmp_path, frame, death_only_split="train")
    code, _, err = run_main(X04, "--n-boot", "10", cwd=tmp_path)
    assert code == 2 and "ntuh_scd_model_demo_death_only" in err and "'train'" in err


def test_low_ef_run_is_the_published_one_and_trains_on_an_all_false_label(tmp_path):
    from training_fixtures import TINY, make_workspace

    df = make_workspace(tmp_path, n_patients=30, n_samples=300, beats=1)
    df["low_ef"] = False                          # the x02 placeholder: no positives
    df.to_feather(tmp_path / "covariate_df.feather")
    code, out, err = run_main("01_Predictive_Model/x01_train_10s_ecg.py", *TINY, "--length",
                              "300", "--run", "low-ef", cwd=tmp_path)
    assert code == 0, err
    config = json.loads((tmp_path / "modelfits_ecg/ntuh_scd_model_demo_low_ef/config.json")
                        .read_text())
    assert config["outputs"] == ["low_ef"] and config["covariates"] == []
    assert config["training"]["lr_reduce_interval"] == 20     # TINY sets lr, blocks, epochs
    assert config["architecture"]["covariates"] == []         # plain linear head
    assert config["best_val_loss"] is not None and config["best_val_loss"] < 1.0

    # DEVIATIONS "Low-EF run": the settings the specification states alone (the SCD model's
    # age/sex head, lr halved every 10 epochs) are one command line away
    code, _, err = run_main("01_Predictive_Model/x01_train_10s_ecg.py", *TINY, "--length", "300",
                            "--run", "low-ef", "--covariates", "age", "female",
                            "--lr-reduce-interval", "10", "--model-name", "spec", cwd=tmp_path)
    assert code == 0, err
    config = json.loads((tmp_path / "modelfits_ecg/spec/config.json").read_text())
    assert config["outputs"] == ["low_ef"] and config["covariates"] == ["age", "female"]
    assert config["training"]["lr_reduce_interval"] == 10
    assert config["architecture"]["n_blocks"] == 2 and config["architecture"]["covariates"] == ["age", "female"]


@pytest.mark.parametrize("split, holdout, message", [
    ("val", "x/../../../escaped", "--holdout 'x/../../../escaped': expected one of train, val, "
                                  "lockbox"),
    ("../val", "", "--split '../val': expected one of train, val, lockbox"),
    ("val", "val", "--holdout 'val' is the split the ensemble is fitted on"),
])
def test_ensemble_split_names_are_checked_before_anything_is_read(tmp_path, split, holdout,
                                                                   message):
    """A --holdout value became part of x04's file names: one with ../ wrote the ensemble's
    files at the filesystem root. --holdout val scored the rows the regression was fitted on
    as if held out."""
    from scdecg.ensemble import run_ensemble

    with pytest.raises(PipelineError) as caught:
        run_ensemble(tmp_path / "predictions", "ens", [], tmp_path / "none.feather", "scd1",
                     [], split, 42, 10, 0, 0.95, holdout)
    assert message in str(caught.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("names, message", [
    (["age", "age"], "--covariates 'age': given more than once"),
    (["age", "scd1"], "--covariates 'scd1': is the outcome, not a covariate"),
    (["scd2_hat"], "--covariates 'scd2_hat': is an input from the scd model, not a covariate"),
    (["age", "weight"], "--covariates 'weight': no such column in covariate_df.feather"),
])
def test_a_repeated_or_unknown_covariate_is_refused_by_name(tmp_path, names, message):
    """``--covariates age age`` (or the outcome, or a member's input) was a pandas traceback
    in assemble; now one line names the option and the value, and nothing is written."""
    write_workspace(tmp_path, stacked_frame(n_patients=40, seed=5))
    code, _, err = run_main(X04, "--n-boot", "10", "--covariates", *names, cwd=tmp_path)
    assert (code, err) == (2, f"error: {message}\n")
    assert not (tmp_path / "predictions/scd1_ensemble_model").exists()
