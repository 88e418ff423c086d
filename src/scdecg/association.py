"""The NTUH association analysis (pipeline step x07): arrest outcomes on the aVL biomarker.

For every outcome × exposure × model × estimator one regression on one analysed sample:

* **Sample.** Rows with ``days_to_event`` ≥ 2 (an ECG taken within two days of the event
  records the arrest rather than predicts it; the same threshold defines the labels). With
  ``filter_mode="casecontrol"`` (default) an outcome's sample is its cases (outcome = 1) and the
  control group (``group`` ≠ ``"study"``); every other study-group row is left out, because an
  arrest patient who is not a case of *this* outcome (a non-cardiac arrest for ``scd1``/``scd``,
  or a cardiac arrest more than a year after the ECG for ``scd1``) is no control either. For
  ``any_arrest`` that keeps every arrest, cardiac or not: the contrast showing whether the
  association is specific to cardiac causes. ``filter_mode="all"`` keeps every row with its label.
  Within an outcome × exposure the three models share one complete-case sample (rows with the
  outcome, the exposure and every covariate of the fullest model), so their coefficients compare.
* **Exposure** z-scored within that sample: coefficients are per standard deviation.
* **Models.** ``unadjusted``; ``age_sex`` (+ age, female); ``age_sex_ecg`` (+ heart rate, QRS
  duration, QTc — Fridericia's ``qtcf`` by default: Bazett's over-corrects at high rates and the
  model already holds heart rate). An exposure that is itself one of these covariates (``age``,
  say) is left out of its own adjustment set: its ``age_sex`` model adjusts for sex only, the
  association adjusted for the *other* covariates.
* **Estimators.** Logistic regression (``logit``: coefficient = log odds ratio, plus the odds
  ratio and its interval) and the linear probability model (``lpm``: coefficient = risk
  difference per SD). Standard errors are clustered by patient (``ptId``); intervals and p-values
  are Wald (normal).

A regression that cannot be estimated (too few events, perfect separation, no convergence,
constant exposure, singular design) gives a row with NaN estimates, ``status = "failed"`` and a
``reason``; nothing is dropped silently.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .constants import MIN_DAYS_TO_EVENT
from .workspace import X07_RESULTS_STEM

OUTCOMES = ("scd1", "scd", "any_arrest")
EXPOSURES = ("aVL_rs_diff", "aVL_rs_diff_2")
FILTER_MODES = ("casecontrol", "all")
RESULTS_STEM = X07_RESULTS_STEM


def results_file(filter_mode: str, suffix: str) -> str:
    """Where x07 writes a mode's results: ``x07_regression_results<suffix>`` for the default
    case-control analysis, ``x07_regression_results_<mode><suffix>`` for the others, so one
    mode never overwrites another."""
    if filter_mode not in FILTER_MODES:
        raise ValueError(f"filter_mode {filter_mode!r}; expected one of {FILTER_MODES}")
    mode = "" if filter_mode == FILTER_MODES[0] else f"_{filter_mode}"
    return f"{RESULTS_STEM}{mode}{suffix}"
ESTIMATORS = ("logit", "lpm")
DEFAULT_QTC = "qtcf"
MIN_EVENTS = 5           # fewer cases (or non-cases) than this: the regression is not attempted
CLUSTER = "ptId"

RESULT_COLUMNS = ("outcome", "exposure", "model", "filter_mode", "estimator", "coef", "se",
                  "ci_lo", "ci_hi", "p", "odds_ratio", "or_lo", "or_hi", "n", "n_events",
                  "n_clusters", "status", "reason")


def model_covariates(qtc: str = DEFAULT_QTC) -> dict[str, tuple[str, ...]]:
    """The three nested adjustment sets, by model name."""
    return {"unadjusted": (),
            "age_sex": ("age", "female"),
            "age_sex_ecg": ("age", "female", "heartRate", "qrsDuration", qtc)}


def is_study(df: pd.DataFrame) -> pd.Series:
    return df["group"].astype(str) == "study"


def outcome_sample(df: pd.DataFrame, outcome: str, filter_mode: str,
                   min_days: float = MIN_DAYS_TO_EVENT) -> pd.DataFrame:
    """Rows analysed for ``outcome`` (see the module docstring), ``outcome`` as 0/1 floats."""
    if filter_mode not in FILTER_MODES:
        raise ValueError(f"filter_mode {filter_mode!r}; expected one of {FILTER_MODES}")
    days = pd.to_numeric(df["days_to_event"], errors="coerce")
    out = df[days >= min_days].copy()
    out[outcome] = pd.to_numeric(out[outcome], errors="coerce").astype("float64")
    if filter_mode == "casecontrol":
        out = out[(out[outcome] == 1) | ~is_study(out)]
    return out


def zscore(x: pd.Series) -> pd.Series:
    sd = x.std(ddof=1)
    return (x - x.mean()) / sd


@dataclass(frozen=True)
class Fit:
    coef: float
    se: float
    ci_lo: float
    ci_hi: float
    p: float


def fit_one(y: np.ndarray, X: pd.DataFrame, groups: np.ndarray, estimator: str,
            term: str) -> Fit | str:
    """Fit ``y ~ X`` (X holds a ``const`` column) with patient-clustered SEs; return ``term``'s
    estimate, or a reason when the model cannot be estimated."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import (ConvergenceWarning, HessianInversionWarning,
                                                 PerfectSeparationWarning)

    cov = {"cov_type": "cluster", "cov_kwds": {"groups": groups}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if estimator == "logit":
                result = sm.Logit(y, X).fit(disp=0, maxiter=100, **cov)
            elif estimator == "lpm":
                result = sm.OLS(y, X).fit(**cov)
            else:
                raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
        except np.linalg.LinAlgError as exc:
            return f"singular design matrix ({exc})"
    warned = {w.category for w in caught}
    if estimator == "logit":
        # (quasi-)separation: the linear predictor orders every case above every control.
        # (One extreme exposure value fitted near 0 or 1 is an outlier, not separation.)
        eta = np.asarray(X, dtype=float) @ np.asarray(result.params, dtype=float)
        cases = np.asarray(y) == 1
        if PerfectSeparationWarning in warned or eta[cases].min() >= eta[~cases].max():
            return "perfect separation (fitted probabilities of 0 or 1)"
        if not result.mle_retvals.get("converged", True) or ConvergenceWarning in warned:
            return f"logit did not converge in {result.mle_retvals.get('iterations')} iterations"
    if HessianInversionWarning in warned:
        return "Hessian not invertible"
    coef, se = float(result.params[term]), float(result.bse[term])
    if not (np.isfinite(coef) and np.isfinite(se) and se > 0):
        return f"non-finite estimate (coef {coef}, se {se})"
    lo, hi = result.conf_int().loc[term]
    return Fit(coef, se, float(lo), float(hi), float(result.pvalues[term]))


def association_table(df: pd.DataFrame, outcomes=OUTCOMES, exposures=EXPOSURES,
                      filter_mode: str = "casecontrol", qtc: str = DEFAULT_QTC,
                      estimators=ESTIMATORS, min_events: int = MIN_EVENTS,
                      min_days: float = MIN_DAYS_TO_EVENT) -> pd.DataFrame:
    """Every outcome × exposure × model × estimator; one row each (see RESULT_COLUMNS)."""
    models = model_covariates(qtc)
    fullest = max(models.values(), key=len)
    rows = []
    for outcome in outcomes:
        base = outcome_sample(df, outcome, filter_mode, min_days)
        for exposure in exposures:
            needed = list(dict.fromkeys([outcome, exposure, CLUSTER, *fullest]))
            sample = base.dropna(subset=needed)
            y = sample[outcome].to_numpy(dtype=float)
            n_events = int(y.sum())
            groups = pd.factorize(sample[CLUSTER].astype(str))[0]
            head = {"outcome": outcome, "exposure": exposure, "filter_mode": filter_mode,
                    "n": len(sample), "n_events": n_events, "n_clusters": int(groups.max() + 1)
                    if len(groups) else 0}
            problem = _sample_problem(sample, y, exposure, min_events)
            z = zscore(sample[exposure].astype(float)) if problem is None else None
            for model, covariates in models.items():
                covariates = [c for c in covariates if c != exposure]  # never adjust for itself
                for estimator in estimators:
                    row = {**head, "model": model, "estimator": estimator}
                    if problem is not None:
                        rows.append(_failed(row, problem))
                        continue
                    X = pd.concat([pd.Series(1.0, index=sample.index, name="const"),
                                   z.rename(exposure),
                                   sample[covariates].astype(float)], axis=1)
                    fit = fit_one(y, X, groups, estimator, exposure)
                    rows.append(_failed(row, fit) if isinstance(fit, str) else _ok(row, fit, estimator))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def _sample_problem(sample: pd.DataFrame, y: np.ndarray, exposure: str,
                    min_events: int) -> str | None:
    n_events = int(y.sum())
    if n_events < min_events or len(y) - n_events < min_events:
        return (f"too few events: {n_events} cases and {len(y) - n_events} non-cases "
                f"(need {min_events} of each)")
    if sample[exposure].nunique() < 2:
        return f"{exposure} is constant in the sample"
    return None


def _failed(row: dict, reason: str) -> dict:
    return {**row, "status": "failed", "reason": reason}


def _ok(row: dict, fit: Fit, estimator: str) -> dict:
    out = {**row, "coef": fit.coef, "se": fit.se, "ci_lo": fit.ci_lo, "ci_hi": fit.ci_hi,
           "p": fit.p, "status": "ok", "reason": ""}
    if estimator == "logit":
        out.update(odds_ratio=np.exp(fit.coef), or_lo=np.exp(fit.ci_lo), or_hi=np.exp(fit.ci_hi))
    return out


def markdown_table(results: pd.DataFrame) -> str:
    """A readable Markdown report of :func:`association_table` output."""
    lines = []
    for (outcome, filter_mode), block in results.groupby(["outcome", "filter_mode"], sort=False):
        lines += [f"### {outcome} ({filter_mode})", "",
                  "| exposure | model | n | events | logit OR per SD (95% CI) | p | "
                  "LPM risk difference per SD (95% CI) | p |",
                  "|---|---|---:|---:|---|---:|---|---:|"]
        for (exposure, model), cell in block.groupby(["exposure", "model"], sort=False):
            by = {r.estimator: r for r in cell.itertuples(index=False)}
            logit, lpm = by.get("logit"), by.get("lpm")
            ref = logit or lpm
            lines.append(f"| {exposure} | {model} | {ref.n} | {ref.n_events} | "
                         f"{_estimate(logit, ratio=True)} | {_p(logit)} | "
                         f"{_estimate(lpm, ratio=False)} | {_p(lpm)} |")
        lines.append("")
    failed = results[results["status"] != "ok"]
    if len(failed):
        lines += ["### Not estimated", ""]
        lines += [f"- {r.outcome} / {r.exposure} / {r.model} / {r.estimator}: {r.reason}"
                  for r in failed.itertuples(index=False)]
        lines.append("")
    return "\n".join(lines)


def _estimate(row, ratio: bool) -> str:
    if row is None or row.status != "ok":
        return "n/a"
    if ratio:
        return f"{row.odds_ratio:.2f} ({row.or_lo:.2f}–{row.or_hi:.2f})"
    return f"{row.coef:+.4f} ({row.ci_lo:+.4f} to {row.ci_hi:+.4f})"


def _p(row) -> str:
    if row is None or row.status != "ok":
        return "n/a"
    return f"{row.p:.2g}" if row.p >= 1e-4 else "<1e-4"


def run_association(covariate_df: str | Path, output_csv: str | Path | None = None,
                    output_md: str | Path | None = None, filter_mode: str = "casecontrol",
                    outcomes=OUTCOMES, exposures=EXPOSURES, estimators=ESTIMATORS,
                    qtc: str = DEFAULT_QTC, min_days: float = MIN_DAYS_TO_EVENT,
                    min_events: int = MIN_EVENTS) -> tuple[pd.DataFrame, Path, Path]:
    """x07 on a workspace: every regression of :func:`association_table` on x06's
    ``covariate_df``, written as CSV and Markdown (default names from ``filter_mode``);
    returns ``(results, csv path, markdown path)``. Unknown options and unusable values (an
    outcome not 0/1, text or inf in a numeric column) are one :class:`PipelineError`."""
    from .errors import PipelineError
    from .io import (check_values, read_feather, refuse_path_clashes, write_csv,
                     write_text)

    if filter_mode not in FILTER_MODES:
        raise PipelineError(f"--filter-mode {filter_mode!r}: expected one of {FILTER_MODES}")
    unknown = sorted(set(estimators) - set(ESTIMATORS))
    if unknown:
        raise PipelineError(f"--estimators {unknown[0]!r}: expected some of {ESTIMATORS}")
    output_csv = Path(output_csv or results_file(filter_mode, ".csv"))
    output_md = Path(output_md or output_csv.with_suffix(".md"))
    refuse_path_clashes({"--output-csv": output_csv, "--output-md": output_md},
                        {"--covariate-df": covariate_df})
    covariates = max(model_covariates(qtc).values(), key=len)
    needed = list(dict.fromkeys(["studyId", CLUSTER, "group", "days_to_event", *outcomes,
                                 *exposures, *covariates]))
    df = read_feather(covariate_df, needed, step="x06")
    # outcomes 0/1 and numbers finite, or rows would drop silently or the regression stop
    check_values(df, covariate_df, binary=outcomes,
                 numeric=["days_to_event", *exposures, *covariates])
    results = association_table(df, outcomes, exposures, filter_mode, qtc, estimators,
                                min_events, min_days)
    write_csv(results, output_csv)
    title = (f"# x07 association results ({filter_mode}; days_to_event >= {min_days:g}; "
             f"exposures per SD; SEs clustered by {CLUSTER})\n\n")
    write_text(title + markdown_table(results), output_md)
    return results, output_csv, output_md
