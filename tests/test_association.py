"""x07: the association analysis (scdecg.association and the script)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_script
from scdecg import association as assoc

X07 = "00_Data_Preprocessing/x07_run_ntuh_style_regression.py"


def x07_main():
    """The script's ``main``, for in-process runs (no interpreter start-up, imports shared)."""
    spec = importlib.util.spec_from_file_location("x07_run_ntuh_style_regression", ROOT / X07)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def cohort(n: int = 4000, beta: float = -0.8, seed: int = 0) -> pd.DataFrame:
    """A covariate_df-shaped table whose scd1 truly follows logit P = -2.2 + beta * z(x) + ...

    Half the rows are study-group arrests, half controls; cardiac cause is drawn from the same
    model so the truth is known for the case-control contrast too.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.03, 0.01, n)                       # the exposure, in its own units
    z = (x - 0.03) / 0.01
    age = rng.normal(60, 12, n)
    female = rng.integers(0, 2, n).astype(float)
    hr = rng.normal(72, 12, n)
    logit = -2.2 + beta * z + 0.02 * (age - 60) - 0.3 * female
    scd1 = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return pd.DataFrame({
        "studyId": [f"e{i}" for i in range(n)], "ptId": [f"p{i}" for i in range(n)],
        "group": "2016", "days_to_event": rng.integers(2, 900, n).astype(float),
        "age": age, "female": female, "heartRate": hr,
        "qrsDuration": rng.normal(95, 10, n), "qtcf": rng.normal(420, 20, n),
        "qtcb": rng.normal(430, 25, n),
        "aVL_rs_diff": x, "aVL_rs_diff_2": x + rng.normal(0, 0.01, n),
        "scd1": scd1, "scd": scd1, "any_arrest": scd1,
    })


def test_logit_and_lpm_recover_the_known_effect():
    df = cohort()
    res = assoc.association_table(df, outcomes=["scd1"], exposures=["aVL_rs_diff"],
                                  filter_mode="all")
    assert len(res) == 3 * 2 and (res["status"] == "ok").all(), res["reason"].tolist()
    adj = res[(res.model == "age_sex") & (res.estimator == "logit")].iloc[0]
    # True log-OR per SD is -0.8 (the exposure's SD is 0.01 by construction).
    assert adj.ci_lo < -0.8 < adj.ci_hi and adj.p < 1e-10
    assert adj.odds_ratio == pytest.approx(np.exp(adj.coef))
    assert adj.n == 4000 and adj.n_events == int(df.scd1.sum()) and adj.n_clusters == 4000
    # The LPM coefficient is the OLS slope on the z-scored exposure.
    lpm = res[(res.model == "unadjusted") & (res.estimator == "lpm")].iloc[0]
    z = (df.aVL_rs_diff - df.aVL_rs_diff.mean()) / df.aVL_rs_diff.std()
    assert lpm.coef == pytest.approx(np.polyfit(z, df.scd1, 1)[0], rel=1e-8)
    assert lpm.ci_lo < lpm.coef < lpm.ci_hi < 0


def test_standard_errors_are_clustered_by_patient():
    df = cohort(n=1500, seed=1)
    twice = pd.concat([df, df.assign(studyId=df.studyId + "b")], ignore_index=True)
    kw = dict(outcomes=["scd1"], exposures=["aVL_rs_diff"], filter_mode="all",
              estimators=["logit"])
    once = assoc.association_table(df, **kw).set_index("model")
    dup = assoc.association_table(twice, **kw).set_index("model")
    assert (dup.n == 3000).all() and (dup.n_clusters == 1500).all()
    # Only the exposure's z-scoring SD differs (ddof=1 over 3000 rather than 1500 rows).
    np.testing.assert_allclose(dup.coef, once.coef, rtol=1e-3)
    # Copying every patient adds no information: the clustered SE stays put (an unclustered
    # SE would shrink by 1/sqrt(2)).
    np.testing.assert_allclose(dup.se, once.se, rtol=0.01)


def test_casecontrol_keeps_each_outcomes_cases_and_the_controls():
    df = pd.DataFrame({
        "group": ["study"] * 5 + ["2015", "2019"],
        "days_to_event": [10, 500, 10, 1, 30, 100, 400],
        "scd1":       [1, 0, 0, 0, 1, 0, 0],
        "scd":        [1, 1, 0, 0, 1, 0, 0],
        "any_arrest": [1, 1, 1, 0, 1, 0, 0],
    }, index=list("abcdefg"))
    # a: cardiac <1 y; b: cardiac after 1 y; c: non-cardiac; d: ECG < 2 days before the arrest
    pick = lambda outcome, mode="casecontrol": "".join(assoc.outcome_sample(df, outcome, mode).index)
    assert pick("scd1") == "aefg"
    assert pick("scd") == "abefg"
    assert pick("any_arrest") == "abcefg"
    assert pick("scd1", "all") == "abcefg"
    with pytest.raises(ValueError, match="filter_mode"):
        pick("scd1", "some")


def test_unestimable_regressions_give_a_reason_not_a_crash():
    df = cohort(n=400, seed=2)
    rare = df.assign(scd1=0.0)
    rare.loc[rare.index[:3], "scd1"] = 1.0
    res = assoc.association_table(rare, outcomes=["scd1"], exposures=["aVL_rs_diff"],
                                  filter_mode="all")
    assert (res.status == "failed").all() and res.coef.isna().all()
    assert res.reason.str.startswith("too few events: 3 cases").all()

    separated = df.assign(scd1=(df.aVL_rs_diff > df.aVL_rs_diff.median()).astype(float))
    res = assoc.association_table(separated, outcomes=["scd1"], exposures=["aVL_rs_diff"],
                                  filter_mode="all")
    logit, lpm = res[res.estimator == "logit"], res[res.estimator == "lpm"]
    assert (logit.status == "failed").all() and logit.reason.str.contains("separation").all()
    assert (lpm.status == "ok").all()             # the LPM is still defined

    constant = df.assign(aVL_rs_diff=0.02)
    res = assoc.association_table(constant, outcomes=["scd1"], exposures=["aVL_rs_diff"])
    assert res.reason.eq("aVL_rs_diff is constant in the sample").all()


def test_an_extreme_exposure_value_is_an_outlier_not_separation():
    df = cohort(n=2000, seed=4)
    df.loc[df.index[0], ["aVL_rs_diff", "scd1"]] = [0.03 + 30 * 0.01, 0.0]  # fitted below 1e-8
    res = assoc.association_table(df, outcomes=["scd1"], exposures=["aVL_rs_diff"],
                                  filter_mode="all")
    logit = res[res.estimator == "logit"]
    assert (logit.status == "ok").all(), logit.reason.tolist()
    assert (logit.coef < 0).all()


def test_complete_case_sample_is_shared_by_the_three_models():
    df = cohort(n=1000, seed=3)
    df.loc[df.index[:100], "qtcf"] = np.nan
    df.loc[df.index[100:150], "aVL_rs_diff"] = np.nan
    res = assoc.association_table(df, outcomes=["scd1"], exposures=["aVL_rs_diff"],
                                  filter_mode="all")
    assert (res.n == 850).all()


def test_an_exposure_that_is_a_covariate_leaves_its_own_adjustment_set():
    """--exposures age: age's age_sex model adjusts for sex only (no duplicate column)."""
    df = cohort(n=1500, seed=5)
    res = assoc.association_table(df, outcomes=["scd1"], exposures=["age", "aVL_rs_diff"],
                                  filter_mode="all", estimators=["lpm"])
    age = res[res.exposure == "age"].set_index("model")
    assert (age.status == "ok").all(), age.reason.tolist()
    sample = df.dropna(subset=["scd1", "age", "female", "heartRate", "qrsDuration", "qtcf"])
    z = assoc.zscore(sample["age"])
    X = pd.DataFrame({"const": 1.0, "age": z, "female": sample["female"]})
    expected = assoc.fit_one(sample["scd1"].to_numpy(), X, np.arange(len(sample)), "lpm", "age")
    assert age.loc["age_sex", "coef"] == pytest.approx(expected.coef)
    assert age.loc["age_sex", "coef"] != pytest.approx(age.loc["unadjusted", "coef"])
    # the simulated age effect (0.02 log-odds per year, SD 12) shows up in every model
    assert (age.coef > 0).all() and (age.p < 0.05).all()


def test_x07_takes_covariates_as_exposures(tmp_path, capsys):
    cohort(n=1200, seed=4).to_feather(tmp_path / "covariate_df.feather")
    out = tmp_path / "x07.csv"
    assert x07_main()(["--covariate-df", str(tmp_path / "covariate_df.feather"),
                       "--output-csv", str(out), "--exposures", "age", "female", "heartRate",
                       "qrsDuration", "qtcf", "--filter-mode", "all"]) == 0, \
        capsys.readouterr().err
    res = pd.read_csv(out)
    assert len(res) == 3 * 5 * 3 * 2 and (res.status == "ok").all(), res.reason.tolist()


def test_x07_script_writes_tables_and_rejects_bad_options(tmp_path, capsys):
    cohort(n=1200, seed=4).to_feather(tmp_path / "covariate_df.feather")
    run_script(X07, cwd=tmp_path)
    res = pd.read_csv(tmp_path / "x07_regression_results.csv")
    assert list(res.columns[:10]) == ["outcome", "exposure", "model", "filter_mode", "estimator",
                                      "coef", "se", "ci_lo", "ci_hi", "p"]
    assert len(res) == 3 * 2 * 3 * 2 and (res.filter_mode == "casecontrol").all()
    md = (tmp_path / "x07_regression_results.md").read_text()
    assert "### scd1 (casecontrol)" in md and "| aVL_rs_diff | age_sex_ecg |" in md
    main = x07_main()
    cov = str(tmp_path / "covariate_df.feather")
    assert main(["--covariate-df", cov, "--filter-mode", "cases"]) == 2
    assert "--filter-mode 'cases'" in capsys.readouterr().err
    assert main(["--covariate-df", cov, "--qtc-column", "qtc_nope"]) == 2
    assert "missing column(s) qtc_nope" in capsys.readouterr().err


def test_x07_modes_write_their_own_files(tmp_path):
    """--filter-mode all does not overwrite the case-control results the report reads."""
    cohort(n=1200, seed=4).to_feather(tmp_path / "covariate_df.feather")
    run_script(X07, cwd=tmp_path)
    casecontrol = (tmp_path / "x07_regression_results.csv").read_text()
    run_script(X07, "--filter-mode", "all", cwd=tmp_path)
    assert (tmp_path / "x07_regression_results.csv").read_text() == casecontrol
    every = pd.read_csv(tmp_path / "x07_regression_results_all.csv")
    assert (every.filter_mode == "all").all() and len(every) == 3 * 2 * 3 * 2
    assert "(all;" in (tmp_path / "x07_regression_results_all.md").read_text()
    assert "(casecontrol;" in (tmp_path / "x07_regression_results.md").read_text()
    assert (pd.read_csv(tmp_path / "x07_regression_results.csv").filter_mode == "casecontrol").all()
    # an explicit --output-csv takes the Markdown report along
    run_script(X07, "--filter-mode", "all", "--output-csv", "mine.csv", cwd=tmp_path)
    assert (tmp_path / "mine.csv").exists() and (tmp_path / "mine.md").exists()


@pytest.fixture(scope="module")
def x06_workspace(pipeline):
    return pipeline.ensure("x06")


def test_adjusted_scd1_association_on_the_synthetic_study(x06_workspace, tmp_path):
    out = tmp_path / "x07.csv"
    assert x07_main()(["--covariate-df", str(x06_workspace / "covariate_df.feather"),
                       "--output-csv", str(out), "--output-md", str(tmp_path / "x07.md")]) == 0
    res = pd.read_csv(out)
    row = res[(res.outcome == "scd1") & (res.exposure == "aVL_rs_diff")
              & (res.model == "age_sex_ecg") & (res.estimator == "logit")].iloc[0]
    assert row.status == "ok", row.reason
    assert row.coef < 0 and row.p < 0.01, (row.coef, row.p, row.n, row.n_events)
