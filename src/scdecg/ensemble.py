"""The published stacking ensemble (01_Predictive_Model/x04_train_ensemble.py).

Three 10-s models score the validation patients: the SCD model, the conditional
(death-only) model and the low-EF model. Their validation logits, with age and sex, are the
ten inputs of a logistic regression of ``scd1``. The validation patients are split in two
halves (by patient, seeded); each half's regression is fitted with standard errors clustered
by patient and predicts the *other* half (cross-fitting), so no ECG is scored by a model
that saw its patient. The ensemble's AUC is computed over both halves together.

Coefficients that cannot be estimated are reported, not fatal: a column that is constant
within a half, or a linear combination of earlier columns, is left out of that half's fit and
listed with the reason; complete or quasi-complete separation (statsmodels'
``PerfectSeparationWarning``) and non-convergence are recorded as notes on every coefficient
of that fit. An outcome with one class only in a half cannot be fitted at all: that is an
error naming the half.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import PipelineError
from .evaluation import split_label
from .failures import FailureLog
from .io import check_values, read_feather
from .metrics import auc_with_interval, sigmoid
from .workspace import (COEFFICIENTS, METRICS_STEM, PREDICTIONS, RISK_HISTOGRAM_STEM,
                        SPLIT_NAMES, check_split_values, predictions_folder)

#: Member models: role -> {prediction column: ensemble input column}.
SCD_COLUMNS = {"scd1_hat": "scd1_hat0", "scd2_hat": "scd2_hat", "scd3mo_hat": "scd3mo_hat",
               "scd6mo_hat": "scd6mo_hat", "TROPT1_hat": "TROPT1_hat",
               "Acute_MI1_hat": "Acute_MI1_hat"}
DEATH_ONLY_COLUMNS = {"scd1_hat": "cond_scd1_hat"}
LOW_EF_COLUMNS = {"low_ef_hat": "low_ef_hat"}
#: How each member is made (named in the error when its predictions are missing).
MEMBER_RUNS = {"scd": "", "death-only": " --run death-only", "low-ef": " --run low-ef"}
COVARIATES = ("age", "female")
OUTCOME = "scd1"
INTERCEPT = "const"
ENSEMBLE_COLUMN = "scd1_hat_ensemble"          # published name: cross-fitted probability
ENSEMBLE_LOGIT = "scd1_logit_ensemble"
COEFFICIENT_COLUMNS = ["fitted_on_half", "term", "coef", "se_cluster", "z", "p", "ci_lo",
                       "ci_hi", "estimable", "note", "n", "n_pos", "n_patients"]


@dataclass
class Member:
    role: str            # scd, death-only, low-ef
    model_name: str
    columns: Mapping[str, str]

    def command(self) -> str:
        return (f"python 01_Predictive_Model/x01_train_10s_ecg.py{MEMBER_RUNS[self.role]} "
                f"(if not trained yet), then python 01_Predictive_Model/x03_predict.py "
                f"--model-name {self.model_name}")


def members(scd: str, death_only: str, low_ef: str) -> list[Member]:
    return [Member("scd", scd, SCD_COLUMNS), Member("death-only", death_only, DEATH_ONLY_COLUMNS),
            Member("low-ef", low_ef, LOW_EF_COLUMNS)]


def features(members_: Sequence[Member], covariates: Sequence[str] = COVARIATES) -> list[str]:
    """The ensemble's inputs, in the published order (members' columns, then covariates)."""
    return [c for m in members_ for c in m.columns.values()] + list(covariates)


# ----------------------------------------------------------------------------- inputs
def check_covariate_names(covariates: Sequence[str], members_: Sequence[Member],
                          outcome: str) -> None:
    """Refuse, naming ``--covariates`` and the name, a covariate given twice, or one that is
    an id column, the outcome or a member's input (each would enter the regression twice)."""
    taken = {"studyId": "an id column", "ptId": "an id column", outcome: "the outcome"}
    taken |= {c: f"an input from the {m.role} model" for m in members_ for c in m.columns.values()}
    seen: set[str] = set()
    for name in covariates:
        if name in seen:
            raise PipelineError(f"--covariates {name!r}: given more than once")
        if name in taken:
            raise PipelineError(f"--covariates {name!r}: is {taken[name]}, not a covariate")
        seen.add(name)


def read_member(predictions_dir: Path, member: Member, split: str) -> pd.DataFrame:
    """``studyId``, ``split`` and the member's renamed columns, for every predicted ECG."""
    path = predictions_folder(member.model_name, predictions_dir) / PREDICTIONS
    if not path.exists():
        raise PipelineError(f"{path}: not found (the {member.role} model's {split} predictions); "
                            f"run {member.command()}")
    table = read_feather(path)
    absent = [c for c in ["studyId", "split", *member.columns] if c not in table.columns]
    if absent:
        raise PipelineError(f"{path}: no column {absent[0]!r} (the ensemble needs "
                            f"{', '.join(member.columns)} of the {member.role} model)")
    check_values(table, path, filled=["studyId", "split"], numeric=member.columns)
    check_split_values(table["split"], path)
    table = table[["studyId", "split", *member.columns]].rename(columns=dict(member.columns))
    table = table.astype({"studyId": str, "split": str})
    repeated = table["studyId"][table["studyId"].duplicated()]
    if len(repeated):
        raise PipelineError(f"{path}: studyId {repeated.iloc[0]} appears more than once (one "
                            "row per ECG expected: is this a beat model's file?)")
    return table


def assemble(member_tables: Sequence[tuple[Member, pd.DataFrame]], covariates: pd.DataFrame,
             covariate_columns: Sequence[str], outcome: str, split: str,
             failures: FailureLog, predictions_dir: Path = Path("predictions"),
             covariate_source: str | Path = "covariate table") -> pd.DataFrame:
    """One row per ECG of the first member's ``split`` rows, with every input and the outcome.

    Every other member must have predicted each of those ECGs as part of its own ``split``:
    a row it predicted as ``train`` was in its training set (it would leak), a missing row
    means it was predicted on another split. Both are errors naming the member, as are (naming
    ``covariate_source``) a used row without ``ptId``, text or an infinite covariate and an
    outcome other than 0/1. Rows with a missing outcome or input are dropped and logged in
    ``failures``.
    """
    (first, base), *rest = member_tables
    rows = base[base["split"] == split]
    if rows.empty:
        present = ", ".join(sorted(base["split"].unique())) or "none"
        path = predictions_folder(first.model_name, predictions_dir) / PREDICTIONS
        raise PipelineError(f"{path}: no {split!r} rows (present: {present}); run "
                            f"{first.command()} for the {split} patients")
    frame = rows.drop(columns="split")
    for member, table in rest:
        path = predictions_folder(member.model_name, predictions_dir) / PREDICTIONS
        joined = frame[["studyId"]].merge(table, on="studyId", how="left")
        missing = joined["split"].isna()
        if missing.any():
            example = joined.loc[missing, "studyId"].iloc[0]
            raise PipelineError(
                f"{path}: {int(missing.sum())} of {len(frame)} {split} ECGs of "
                f"{first.model_name} not predicted (e.g. studyId {example}); "
                f"run {member.command()}")
        other = joined["split"] != split
        if other.any():
            example = joined.loc[other].iloc[0]
            raise PipelineError(
                f"{path}: studyId {example['studyId']} is in split {example['split']!r} of "
                f"{member.model_name} but in {split!r} of {first.model_name}: the members were "
                "trained on different patient splits (use the same --train-frac, --val-frac "
                "and --split-seed)")
        frame = frame.merge(joined.drop(columns="split"), on="studyId", validate="one_to_one")
    needed = ["studyId", "ptId", outcome, *covariate_columns]
    used = covariates[covariates["studyId"].astype(str).isin(frame["studyId"]).to_numpy()]
    check_values(used, covariate_source, binary=[outcome], numeric=covariate_columns,
                 filled=["ptId"])
    cov = covariates[needed].astype({"studyId": str, "ptId": str})
    unknown = ~frame["studyId"].isin(cov["studyId"])
    if unknown.any():
        raise PipelineError(f"covariate table: studyId {frame.loc[unknown, 'studyId'].iloc[0]} "
                            f"of the {first.model_name} predictions not found "
                            f"({int(unknown.sum())} ECGs); predictions from another cohort?")
    frame = frame.merge(cov, on="studyId", validate="one_to_one")
    inputs = [c for c in frame.columns if c not in ("studyId", "ptId", outcome)]
    for column in [outcome, *inputs]:
        values = frame[column].astype("Float64")
        frame[column] = pd.to_numeric(values, errors="coerce").astype(float)
    for column in [outcome, *inputs]:
        for study_id in frame.loc[frame[column].isna(), "studyId"]:
            failures.add(study_id, f"missing {column}")
    complete = frame.dropna(subset=[outcome, *inputs])
    bad = ~complete[outcome].isin((0.0, 1.0))
    if bad.any():
        raise PipelineError(f"covariate table: {outcome} = {complete.loc[bad, outcome].iloc[0]} "
                            f"(studyId {complete.loc[bad, 'studyId'].iloc[0]}) is not 0/1")
    return complete.reset_index(drop=True)


def patient_halves(pt_ids: pd.Series, seed: int) -> np.ndarray:
    """0/1 per row: sorted unique patients permuted with ``default_rng(seed)``; the first
    half (rounded down) is half 0. All ECGs of a patient share a half."""
    patients = np.sort(pt_ids.astype(str).unique())
    if len(patients) < 2:
        raise PipelineError(f"cross-fitting needs at least 2 patients, got {len(patients)}")
    order = np.random.default_rng(seed).permutation(len(patients))
    half = np.ones(len(patients), dtype=np.int64)
    half[order[: len(patients) // 2]] = 0
    return pt_ids.astype(str).map(dict(zip(patients, half))).to_numpy(dtype=np.int64)


# ----------------------------------------------------------------------------- fitting
@dataclass
class Fit:
    """One half's logistic regression: the terms it used and those it could not estimate."""
    terms: list[str]                                   # with the intercept, in design order
    params: np.ndarray
    bse: np.ndarray
    pvalues: np.ndarray
    conf_int: np.ndarray                               # (k, 2)
    dropped: dict[str, str] = field(default_factory=dict)   # term -> reason
    notes: list[str] = field(default_factory=list)          # separation, non-convergence
    n: int = 0
    n_pos: int = 0
    n_patients: int = 0

    def logit(self, frame: pd.DataFrame) -> np.ndarray:
        x = design(frame, [t for t in self.terms if t != INTERCEPT])
        return x @ self.params


def design(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Intercept followed by ``columns`` as a float design matrix."""
    x = frame[list(columns)].to_numpy(dtype=np.float64)
    return np.column_stack([np.ones(len(frame)), x])


def estimable_columns(frame: pd.DataFrame,
                      columns: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Columns kept in order, and those left out: constant ones, then any that is a linear
    combination of the intercept and the columns kept before it."""
    kept, dropped = [], {}
    for column in columns:
        values = frame[column].to_numpy(dtype=np.float64)
        if np.ptp(values) == 0:
            dropped[column] = f"constant ({values[0]:g}) in the fitting half: not estimable"
            continue
        x = design(frame, [*kept, column])
        if np.linalg.matrix_rank(x) < x.shape[1]:
            dropped[column] = "a linear combination of the columns before it: not estimable"
            continue
        kept.append(column)
    return kept, dropped


def fit_half(frame: pd.DataFrame, columns: Sequence[str], outcome: str, half: int | str) -> Fit:
    """Logistic regression (binomial GLM, logit link) of ``outcome`` on the estimable
    ``columns`` with an intercept; standard errors clustered by ``ptId``."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    y = frame[outcome].to_numpy(dtype=np.float64)
    n_pos = int(y.sum())
    if n_pos in (0, y.size):
        raise PipelineError(f"ensemble fit on {_rows(half)}: {outcome} has only one class ({n_pos} "
                            f"positives of {y.size} ECGs); the regression cannot be fitted "
                            "(too few validation patients with events)")
    kept, dropped = estimable_columns(frame, columns)
    groups = pd.factorize(frame["ptId"].astype(str), sort=True)[0]
    notes = []
    model = sm.GLM(y, design(frame, kept), family=sm.families.Binomial())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = model.fit(cov_type="cluster", cov_kwds={"groups": groups})
            robust = True
        except np.linalg.LinAlgError:
            # (near-)separation in a small half: the Hessian at the estimate is singular, so
            # the clustered sandwich cannot be formed; the coefficients still can
            result = model.fit()
            robust = False
            notes.append("the Hessian is singular at the estimate (near-separation): no "
                         "cluster-robust standard errors")
    for w in caught:
        if issubclass(w.category, PerfectSeparationWarning):
            notes.append("perfect separation: the maximum-likelihood estimate does not exist; "
                         "coefficients and SEs are those of the last iteration")
        elif issubclass(w.category, ConvergenceWarning):
            notes.append("the fit did not converge")
    params = np.asarray(result.params, dtype=np.float64)
    if not np.all(np.isfinite(params)):
        raise PipelineError(f"ensemble fit on {_rows(half)}: the fit gave non-finite "
                            "coefficients")
    def robust_or_nan(values) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        return values if robust else np.full_like(values, np.nan)

    return Fit(terms=[INTERCEPT, *kept], params=params, bse=robust_or_nan(result.bse),
               pvalues=robust_or_nan(result.pvalues),
               conf_int=robust_or_nan(result.conf_int()), dropped=dropped,
               notes=sorted(set(notes)), n=y.size, n_pos=n_pos,
               n_patients=int(frame["ptId"].nunique()))


def _rows(half: int | str) -> str:
    return f"half {half}" if isinstance(half, (int, np.integer)) else str(half)


def coefficient_table(fits: Mapping[int, Fit], columns: Sequence[str]) -> pd.DataFrame:
    """One row per (fitted half, term): estimate with its cluster-robust SE, or the reason
    it could not be estimated (coef NaN, estimable False)."""
    rows = []
    for half, fit in fits.items():
        index = {t: i for i, t in enumerate(fit.terms)}
        note = "; ".join(fit.notes)
        for term in [INTERCEPT, *columns]:
            common = {"fitted_on_half": half, "term": term, "n": fit.n, "n_pos": fit.n_pos,
                      "n_patients": fit.n_patients}
            if term in index:
                i = index[term]
                rows.append({**common, "coef": fit.params[i], "se_cluster": fit.bse[i],
                             "z": fit.params[i] / fit.bse[i] if fit.bse[i] > 0 else np.nan,
                             "p": fit.pvalues[i], "ci_lo": fit.conf_int[i, 0],
                             "ci_hi": fit.conf_int[i, 1], "estimable": True, "note": note})
            else:
                rows.append({**common, "coef": np.nan, "se_cluster": np.nan, "z": np.nan,
                             "p": np.nan, "ci_lo": np.nan, "ci_hi": np.nan, "estimable": False,
                             "note": fit.dropped.get(term, "not in the fit")})
    return pd.DataFrame(rows, columns=COEFFICIENT_COLUMNS)


@dataclass
class CrossFit:
    predictions: pd.DataFrame      # studyId, ptId, half, fitted_on_half, outcome, inputs, ensemble
    fits: dict[int, Fit]
    coefficients: pd.DataFrame


def cross_fit(frame: pd.DataFrame, columns: Sequence[str], outcome: str, seed: int) -> CrossFit:
    """Fit on each patient half, predict the other half with it."""
    frame = frame.reset_index(drop=True).copy()
    frame.insert(2, "half", patient_halves(frame["ptId"], seed))
    fits = {h: fit_half(frame[frame["half"] == h], columns, outcome, h) for h in (0, 1)}
    logit = np.full(len(frame), np.nan)
    fitted_on = np.full(len(frame), -1, dtype=np.int64)
    for h, fit in fits.items():
        other = (frame["half"] != h).to_numpy()
        logit[other] = fit.logit(frame[other])
        fitted_on[other] = h
    frame["fitted_on_half"] = fitted_on
    frame[ENSEMBLE_LOGIT] = logit
    frame[ENSEMBLE_COLUMN] = sigmoid(logit)
    return CrossFit(frame, fits, coefficient_table(fits, columns))


def member_aucs(frame: pd.DataFrame, scores: Sequence[str], outcome: str, n_boot: int,
                seed: int, level: float) -> pd.DataFrame:
    """AUC (patient-cluster bootstrap interval) of each score for ``outcome`` on the same
    rows; scores are logits or probabilities (AUC only depends on their order). Columns:
    score, output (the outcome, as in x05's metrics.csv), n, n_pos, auc, auc_lo, auc_hi."""
    y = frame[outcome].to_numpy(dtype=np.float64)
    rows = []
    for score in scores:
        rows.append({"score": score, "output": outcome, **auc_with_interval(y, frame[score].to_numpy(np.float64),
                                                         frame["ptId"].to_numpy(), n_boot,
                                                         seed, level)})
    return pd.DataFrame(rows)


def risk_histogram(predictions: pd.DataFrame, outcome: str, path: Path, split: str,
                   auc: float, cross_fitted: bool = True) -> None:
    """Histogram of the ensemble risk, cases and controls overlaid (densities)."""
    from matplotlib.figure import Figure

    from .plotting import save_figure

    p = predictions[ENSEMBLE_COLUMN].to_numpy(dtype=np.float64)
    y = predictions[outcome].to_numpy(dtype=np.float64) == 1
    fig = Figure(figsize=(6.0, 4.0), dpi=120)
    ax = fig.subplots()
    bins = np.linspace(0.0, max(float(p.max()), 1e-3), 31)
    ax.hist(p[~y], bins=bins, density=True, alpha=0.6, color="tab:blue",
            label=f"{outcome} = 0 ({int((~y).sum())} ECGs)")
    ax.hist(p[y], bins=bins, density=True, alpha=0.6, color="tab:red",
            label=f"{outcome} = 1 ({int(y.sum())} ECGs)")
    how = "cross-fitted" if cross_fitted else "fitted on the validation patients"
    ax.set(xlabel=f"Ensemble probability of {outcome} (0-1), {how}",
           ylabel="Density (per unit probability)",
           title=f"Ensemble risk, {split_label(split)} patients "
                 f"(n = {predictions['ptId'].nunique()}), AUC {auc:.3f}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


# ----------------------------------------------------------------------------- the step
def run_ensemble(predictions_dir: Path, output_name: str, members_: Sequence[Member],
                 covariate_path: str | Path, outcome: str, covariates: Sequence[str],
                 split: str, half_seed: int, n_boot: int, seed: int, level: float,
                 holdout: str = "") -> Path:
    """The stacking ensemble (the x04 step): read the members' predictions, cross-fit the
    logistic regression on patient halves, write the outputs.

    With ``holdout`` (e.g. ``lockbox``), also fit once on all ``split`` rows and score the
    members' ``holdout`` rows: a figure for patients that chose neither an epoch nor a
    coefficient (skipped, with the command to run, when the members did not predict them).

    Parameters
    ----------
    predictions_dir : pathlib.Path
        The folder holding each member's ``<model>_1/predictions.feather``.
    output_name : str
        The ensemble's folder under ``predictions_dir``.
    members_ : sequence of Member
        The members and the columns taken from each (:func:`members`).
    covariate_path : str or pathlib.Path
        The cohort table with the outcome and the covariates.
    outcome : str
        The label the ensemble predicts (``scd1``).
    covariates : sequence of str
        Covariates entering beside the members' predictions (``age``, ``female``).
    split : str
        The members' prediction rows to fit and cross-fit on (``val``).
    half_seed : int
        Seed of the patient halves.
    n_boot, seed, level : int, int, float
        Patient-cluster bootstrap replicates, their seed and the interval level of the AUCs.
    holdout : str
        Also score this split of the members' predictions ("" = skip).

    Returns
    -------
    pathlib.Path
        The ensemble folder (``predictions.feather``, ``coefficients.csv``/``.json``,
        ``metrics.csv``, ``risk_histogram.png`` and their ``_<holdout>`` files).

    Examples
    --------
    >>> run_ensemble(Path("predictions"), "scd1_ensemble_model",           # doctest: +SKIP
    ...              members("ntuh_scd_model_demo", "ntuh_scd_model_demo_death_only",
    ...                      "ntuh_scd_model_demo_low_ef"),
    ...              "covariate_df.feather", "scd1", ["age", "female"], "val", 42, 1000, 42,
    ...              0.95, "lockbox")
    PosixPath('predictions/scd1_ensemble_model')
    """
    from .io import write_csv, write_feather, write_json

    for option, value in (("--split", split), ("--holdout", holdout)):
        if value and value not in SPLIT_NAMES:   # a split name becomes part of file names
            raise PipelineError(f"{option} {value!r}: expected one of {', '.join(SPLIT_NAMES)}")
    if holdout and holdout == split:
        raise PipelineError(f"--holdout {holdout!r} is the split the ensemble is fitted on "
                            f"(--split); choose another (lockbox)")
    check_covariate_names(covariates, members_, outcome)
    predictions_dir = Path(predictions_dir)
    check_ensemble_folder(predictions_dir / output_name)
    tables = [(m, read_member(predictions_dir, m, split)) for m in members_]
    cov_table = read_feather(covariate_path, columns=["studyId", "ptId", outcome])
    unknown = [c for c in covariates if c not in cov_table.columns]
    if unknown:
        raise PipelineError(f"--covariates {unknown[0]!r}: no such column in {covariate_path}")
    failures = FailureLog("ensemble inputs")
    frame = assemble(tables, cov_table, covariates, outcome, split, failures, predictions_dir,
                     covariate_path)
    if len(failures):
        print(failures.summary(total=len(frame) + len({r["record"] for r in failures.rows})))
    columns = features(members_, covariates)
    result = cross_fit(frame, columns, outcome, half_seed)
    preds = result.predictions
    scores = [ENSEMBLE_COLUMN, *columns]
    metrics = member_aucs(preds, scores, outcome, n_boot, seed, level).assign(split=split)
    out = predictions_dir / output_name
    write_feather(preds, out / PREDICTIONS)
    write_csv(result.coefficients, out / COEFFICIENTS)
    write_csv(metrics, out / f"{METRICS_STEM}.csv")
    write_json({"outcome": outcome, "inputs": columns, "split": split, "half_seed": half_seed,
                "members": {m.role: m.model_name for m in members_},
                "standard_errors": "cluster-robust by ptId (statsmodels GLM Binomial, "
                                   "cov_type='cluster')",
                "fits": {str(h): {"terms": f.terms, "coef": f.params, "se_cluster": f.bse,
                                  "p": f.pvalues, "dropped": f.dropped, "notes": f.notes,
                                  "n": f.n, "n_pos": f.n_pos, "n_patients": f.n_patients}
                         for h, f in result.fits.items()},
                "n_excluded": len(failures)}, out / "coefficients.json")
    ensemble = metrics.iloc[0]
    risk_histogram(preds, outcome, out / f"{RISK_HISTOGRAM_STEM}.png", split, float(ensemble["auc"]))
    holdout_metrics = None
    if holdout:
        holdout_metrics = evaluate_holdout(tables, cov_table, frame, columns, covariates, outcome,
                                           split, holdout, n_boot, seed, level, out,
                                           predictions_dir, covariate_path)
    stale = remove_stale_holdout_files(out, keep={split, holdout if holdout_metrics is not None
                                                 else split})
    if stale:
        print(f"[x04] removed {len(stale)} file(s) of an earlier run that this run did not "
              f"write: {', '.join(stale)}")
    label = split_label(split)
    print(f"[x04] {label}: {len(preds)} ECGs of {preds['ptId'].nunique()} patients "
          f"({int(preds[outcome].sum())} with {outcome}); halves of "
          f"{(preds['half'] == 0).sum()} / {(preds['half'] == 1).sum()} ECGs (seed {half_seed})")
    for h, fit in result.fits.items():
        for term, reason in fit.dropped.items():
            print(f"[x04] half {h}: {term} left out: {reason}")
        for note in fit.notes:
            print(f"[x04] half {h}: {note}")
    for row in metrics.itertuples():
        print(f"  {label} AUC {outcome} {row.score:<18} {row.auc:.3f} "
              f"({row.auc_lo:.3f}-{row.auc_hi:.3f})")
    if holdout_metrics is not None:
        for row in holdout_metrics.itertuples():
            print(f"  {split_label(holdout)} AUC {outcome} {row.score:<18} {row.auc:.3f} "
                  f"({row.auc_lo:.3f}-{row.auc_hi:.3f})")
    print(f"[x04] wrote predictions.feather, coefficients.csv, coefficients.json, metrics.csv, "
          f"risk_histogram.png{'' if holdout_metrics is None else ' and the ' + holdout + ' files'}"
          f" to {out}")
    return out


#: The file that marks a folder as x04's (written last of its validation files).
ENSEMBLE_PROOF = "coefficients.json"


def check_ensemble_folder(out: Path) -> None:
    """Refuse an output folder x04 did not write (a member's predictions folder, say), before
    anything is read or written: its files would be overwritten."""
    if out.is_dir() and any(out.iterdir()) and not (out / ENSEMBLE_PROOF).exists() \
            and not _holds_ensemble_predictions(out / PREDICTIONS):
        held = ", ".join(sorted(e.name for e in out.iterdir())[:3])
        raise PipelineError(f"--output-name {out.name!r}: {out} is a folder x04 did not write "
                            f"(it holds {held}, but no {ENSEMBLE_PROOF}: another step's "
                            "outputs, which x04 would overwrite); choose another name")


def _holds_ensemble_predictions(path: Path) -> bool:
    """Whether ``path`` is x04's predictions table (a run killed before its last file)."""
    import pyarrow.feather as feather

    try:
        return "fitted_on_half" in feather.read_table(path, memory_map=True).column_names
    except (OSError, ValueError, TypeError):
        return False


def holdout_file_names(split: str) -> list[str]:
    """The files :func:`evaluate_holdout` writes for ``split``."""
    suffix = f"_{split}"
    return [f"{Path(PREDICTIONS).stem}{suffix}.feather", f"{METRICS_STEM}{suffix}.csv",
            f"coefficients{suffix}.csv", f"coefficients{suffix}.json",
            f"{RISK_HISTOGRAM_STEM}{suffix}.png"]


def remove_stale_holdout_files(out: Path, keep: set[str]) -> list[str]:
    """Delete the held-out files of splits not in ``keep`` (an earlier run's, which this run
    did not rewrite: the run report would show them as current); returns their names."""
    removed = []
    for split in SPLIT_NAMES:
        if split in keep:
            continue
        for name in holdout_file_names(split):
            if (out / name).is_file():
                (out / name).unlink()
                removed.append(name)
    return removed


def evaluate_holdout(tables, cov_table: pd.DataFrame, fit_frame: pd.DataFrame,
                     columns: Sequence[str], covariates: Sequence[str], outcome: str,
                     split: str, holdout: str, n_boot: int, seed: int, level: float, out: Path,
                     predictions_dir: Path,
                     covariate_path: str | Path = "covariate table") -> pd.DataFrame | None:
    """Fit on every ``split`` row, score the ``holdout`` rows; write ``*_<holdout>`` files."""
    from .io import write_csv, write_feather, write_json

    failures = FailureLog(f"ensemble {holdout} inputs")
    try:
        frame = assemble(tables, cov_table, covariates, outcome, holdout, failures,
                         predictions_dir, covariate_path)
    except PipelineError as exc:
        print(f"[x04] {split_label(holdout)} not evaluated: {exc} (to score the {holdout}, "
              "predict every member with x03_predict.py --part all)")
        return None
    if len(failures):
        print(failures.summary())
    fit = fit_half(fit_frame, columns, outcome, f"all {split_label(split)} patients")
    logit = fit.logit(frame)
    frame = frame.assign(**{ENSEMBLE_LOGIT: logit, ENSEMBLE_COLUMN: sigmoid(logit)})
    metrics = member_aucs(frame, [ENSEMBLE_COLUMN, *columns], outcome, n_boot, seed,
                          level).assign(split=holdout)
    predictions_name, metrics_name, table_name, json_name, histogram_name = \
        holdout_file_names(holdout)
    write_feather(frame, out / predictions_name)
    write_csv(metrics, out / metrics_name)
    write_csv(coefficient_table({"all": fit}, columns).rename(
        columns={"fitted_on_half": "fitted_on"}), out / table_name)
    write_json({"fitted_on": f"all {split} rows", "scored": holdout, "terms": fit.terms,
                "coef": fit.params, "se_cluster": fit.bse, "p": fit.pvalues,
                "dropped": fit.dropped, "notes": fit.notes, "n": fit.n, "n_pos": fit.n_pos,
                "n_patients": fit.n_patients}, out / json_name)
    risk_histogram(frame, outcome, out / histogram_name, holdout,
                   float(metrics.iloc[0]["auc"]), cross_fitted=False)
    return metrics
