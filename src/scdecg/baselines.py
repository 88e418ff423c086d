"""Baselines beside the deep models: what simple linear models get on the same patients.

Two baselines, both fitted on the training patients of a 10-s model's own split
(``modelfits_ecg/<name>/split.csv``) and scored on every ECG of that split, so their AUCs can
be read beside the model's on exactly its validation or lockbox ECGs:

* ``age+sex+aVL``: logistic regression of the outcome on age, female and the x06 aVL
  features (``aVL_rs_diff``, ``aVL_rs_diff_2``), z-scored with training statistics; a missing
  aVL feature is replaced by its training median (counted).
* ``median-beat probe``: L2-penalised logistic regression on each ECG's median beat (the
  sample-wise median of its x04 beats, 12 leads, every ``step``-th sample), z-scored per
  feature with training statistics. The penalty is chosen among ``PROBE_CS`` by 5-fold
  cross-validated AUC with folds by patient, within the training patients only.

Both take seconds on a demo-sized cohort.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import PipelineError
from .io import check_finished, check_values
from .metrics import auc_with_interval, paired_auc_difference, roc_auc
from .failures import FailureLog
from .workspace import BEATS_DIR, beat_files, beat_folder

CLINICAL = "age+sex+aVL"
PROBE = "median-beat probe"
CLINICAL_FEATURES = ("age", "female", "aVL_rs_diff", "aVL_rs_diff_2")
PROBE_STEP = 5                                   # 300 samples -> 60 per lead
PROBE_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)          # inverse L2 penalties tried
PROBE_FOLDS = 5
#: Per baseline, also the deep model on the baseline's own ECGs (``model_auc``) and the paired
#: difference deep model - baseline with its patient-bootstrap interval.
BASELINE_COLUMNS = ["split", "model", "n", "n_pos", "n_patients", "auc", "auc_lo", "auc_hi",
                    "model_auc", "difference", "difference_lo", "difference_hi", "note"]


@dataclass
class BaselineScores:
    """Per-ECG scores (logits) of each baseline, with what was fitted."""
    scores: pd.DataFrame                          # studyId + one column per baseline
    notes: dict[str, str] = field(default_factory=dict)
    failures: FailureLog = field(default_factory=lambda: FailureLog("baselines"))


def median_beat_matrix(study_ids: Sequence[str], beats_dir: str | Path, step: int,
                       failures: FailureLog) -> tuple[list[str], np.ndarray]:
    """(ids with beats, (n, 12 * ceil(300 / step)) matrix of downsampled median beats); a
    beat folder that x04 left unfinished is refused (:func:`scdecg.io.check_finished`)."""
    check_finished(beats_dir)
    kept, rows = [], []
    for study_id in study_ids:
        files = beat_files(beat_folder(beats_dir, str(study_id)))
        if not files:
            failures.add(study_id, "median-beat probe: no x04 beat files")
            continue
        beats = np.stack([np.load(path, allow_pickle=False) for _, path in files])
        rows.append(np.median(beats, axis=0)[:, ::step].ravel())
        kept.append(str(study_id))
    if not rows:
        raise PipelineError(f"{beats_dir}: no beat files for any ECG of the split")
    return kept, np.asarray(rows, dtype=np.float64)


def _standardise(x_train: np.ndarray, x: np.ndarray) -> np.ndarray:
    mean, sd = x_train.mean(axis=0), x_train.std(axis=0)
    return (x - mean) / np.where(sd > 0, sd, 1.0)


def fit_clinical(table: pd.DataFrame, outcome: str, failures: FailureLog) -> tuple[pd.Series, str]:
    """Logistic regression on the clinical+aVL features (training rows: split == train)."""
    from sklearn.linear_model import LogisticRegression

    absent = [c for c in CLINICAL_FEATURES if c not in table.columns]
    if absent:
        raise PipelineError(f"covariate table: no column {absent[0]!r} for the {CLINICAL} "
                            "baseline (x06 writes the aVL features)")
    x = table[list(CLINICAL_FEATURES)].astype(float)
    train = (table["split"] == "train").to_numpy()
    medians = x[train].median()
    for column in CLINICAL_FEATURES:
        for study_id in table.loc[x[column].isna(), "studyId"]:
            failures.add(study_id, f"{CLINICAL}: {column} missing, training median used")
    x = x.fillna(medians).to_numpy()
    labelled = train & table[outcome].notna().to_numpy()
    y = table.loc[labelled, outcome].to_numpy(dtype=float)
    model = LogisticRegression(C=1e4, max_iter=5000)
    model.fit(_standardise(x[labelled], x[labelled]), y)
    score = model.decision_function(_standardise(x[labelled], x))
    note = f"fitted on {int(labelled.sum())} training ECGs"
    return pd.Series(score, index=table["studyId"]), note


def fit_probe(table: pd.DataFrame, outcome: str, beats_dir: str | Path, step: int,
              cs: Sequence[float], folds: int, seed: int,
              failures: FailureLog) -> tuple[pd.Series, str]:
    """L2 logistic regression on downsampled median beats; C by patient-grouped CV AUC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    ids, x = median_beat_matrix(table["studyId"], beats_dir, step, failures)
    rows = table.set_index("studyId").loc[ids]
    train = (rows["split"] == "train").to_numpy() & rows[outcome].notna().to_numpy()
    x_train, y = x[train], rows.loc[train, outcome].to_numpy(dtype=float)
    groups = rows.loc[train, "ptId"].to_numpy()
    if len(np.unique(y)) < 2:
        return (pd.Series(np.nan, index=ids),
                f"not fitted: {outcome} has one class among the {len(y)} training ECGs with beats")
    n_folds = min(folds, len(np.unique(groups)))
    order = np.random.default_rng(seed).permutation(len(y))   # GroupKFold is deterministic
    splits = [(order[a], order[b]) for a, b in
              GroupKFold(n_folds).split(x_train[order], y[order], groups[order])] if n_folds > 1 else []
    # a fold whose fitting part holds one class cannot be fitted: it scores nothing
    splits = [(a, b) for a, b in splits if len(np.unique(y[a])) == 2]
    cv_auc = {}
    for c in cs if splits else ():
        pooled = np.full(len(y), np.nan)
        for fit_idx, test_idx in splits:
            model = LogisticRegression(C=c, max_iter=5000)
            model.fit(_standardise(x_train[fit_idx], x_train[fit_idx]), y[fit_idx])
            pooled[test_idx] = model.decision_function(_standardise(x_train[fit_idx],
                                                                    x_train[test_idx]))
        scored = np.isfinite(pooled)
        cv_auc[c] = roc_auc(y[scored], pooled[scored])
    usable = {c: a for c, a in cv_auc.items() if np.isfinite(a)}
    if usable:
        best = max(usable, key=lambda c: (usable[c], -c))  # ties: the stronger penalty
        chosen = f"C = {best:g} by {len(splits)}-fold patient CV (CV AUC {usable[best]:.3f})"
    else:   # too few patients or events for a cross-validated choice
        best = sorted(cs)[len(cs) // 2]
        chosen = f"C = {best:g} (middle of the grid: too few patients or events for patient CV)"
    model = LogisticRegression(C=best, max_iter=5000)
    model.fit(_standardise(x_train, x_train), y)
    score = model.decision_function(_standardise(x_train, x))
    return (pd.Series(score, index=ids),
            f"fitted on {int(train.sum())} training ECGs, {x.shape[1]} features "
            f"(12 leads x every {step}th sample); {chosen}")


def check_outcome(covariates: pd.DataFrame, outcome: str,
                  source: str | Path = "covariate table") -> None:
    """Refuse a ``--baseline-outcome`` that is no 0/1 label of ``covariates`` (absent, one of
    the baselines' own inputs, or with other values): one :class:`PipelineError`."""
    flag = f"--baseline-outcome {outcome!r}"
    if outcome not in covariates.columns:
        raise PipelineError(f"{flag}: no such column in {source}")
    if outcome in CLINICAL_FEATURES:
        raise PipelineError(f"{flag}: an input of the baselines, not an outcome; give a 0/1 "
                            "label such as scd1")
    values = pd.to_numeric(covariates[outcome], errors="coerce")
    odd = covariates[outcome].notna() & ~values.isin([0, 1])
    if odd.any():
        raise PipelineError(f"{flag}: not a 0/1 label in {source} (e.g. "
                            f"{covariates.loc[odd, outcome].iloc[0]!r}); give one such as scd1")


def check_covariates(covariates: pd.DataFrame, split_table: pd.DataFrame, outcome: str,
                     source: str | Path = "covariate table") -> None:
    """Refuse text or an infinite value in a column the baselines read (the clinical
    features, the outcome) for an ECG of ``split_table``: one :class:`PipelineError` naming
    ``source``, the column, the ECG and the value (:func:`scdecg.io.check_values`)."""
    used = covariates[covariates["studyId"].astype(str).isin(
        split_table["studyId"].astype(str)).to_numpy()]
    check_values(used, source, numeric=[c for c in (*CLINICAL_FEATURES, outcome)
                                        if c in covariates.columns])


def fit_baselines(covariates: pd.DataFrame, split_table: pd.DataFrame, outcome: str,
                  beats_dir: str | Path = BEATS_DIR, step: int = PROBE_STEP,
                  cs: Sequence[float] = PROBE_CS, folds: int = PROBE_FOLDS,
                  seed: int = 0, source: str | Path = "covariate table") -> BaselineScores:
    """Fit both baselines on the ``train`` rows of ``split_table`` and score all its rows;
    ``covariates`` (read from ``source``) is checked first (:func:`check_covariates`)."""
    if outcome not in covariates.columns:
        raise PipelineError(f"covariate table: no label column {outcome!r}")
    check_covariates(covariates, split_table, outcome, source)
    table = split_table[["studyId", "ptId", "split"]].astype(str).merge(
        covariates.drop(columns=["ptId", "split"], errors="ignore").astype({"studyId": str}),
        on="studyId", how="left", validate="one_to_one")
    table[outcome] = table[outcome].astype("Float64").astype(float)
    train_y = table.loc[table["split"] == "train", outcome].dropna()
    if train_y.nunique() < 2:
        raise PipelineError(f"baselines: {outcome} has one class among the training ECGs")
    out = BaselineScores(pd.DataFrame({"studyId": table["studyId"]}))
    clinical, out.notes[CLINICAL] = fit_clinical(table, outcome, out.failures)
    probe, out.notes[PROBE] = fit_probe(table, outcome, beats_dir, step, cs, folds, seed,
                                        out.failures)
    out.scores[CLINICAL] = out.scores["studyId"].map(clinical)
    out.scores[PROBE] = out.scores["studyId"].map(probe)
    return out


def baseline_table(frame: pd.DataFrame, fitted: BaselineScores, outcome: str, model_name: str,
                   split: str, n_boot: int, seed: int, level: float) -> pd.DataFrame:
    """AUCs of the model (``<outcome>_hat`` in ``frame``) and of each baseline, each on the
    rows of ``frame`` (the model's evaluated ECGs of one split) where it has a score. A
    baseline that scores fewer ECGs (the probe needs x04 beats) is also compared like for
    like: the model's AUC on that baseline's ECGs and the paired difference."""
    joined = frame[["studyId", "ptId", outcome, f"{outcome}_hat"]].astype(
        {"studyId": str}).merge(fitted.scores, on="studyId", how="left")
    joined = joined[joined[outcome].notna()]
    rows = []
    for name, column, note in [(model_name, f"{outcome}_hat", "the deep model"),
                               *[(b, b, fitted.notes[b]) for b in (CLINICAL, PROBE)]]:
        part = joined[joined[column].notna()]
        y = part[outcome].to_numpy(dtype=float)
        if y.size == 0 or y.min() == y.max():
            rows.append({"split": split, "model": name, "n": int(y.size), "note":
                         f"{note}; not evaluated (one class among {y.size} ECGs)"})
            continue
        missing = len(joined) - len(part)
        row = {"split": split, "model": name,
               **auc_with_interval(y, part[column].to_numpy(float), part["ptId"].to_numpy(),
                                   n_boot, seed, level),
               "note": note + (f"; {missing} ECGs without a score" if missing else "")}
        both = part[part[f"{outcome}_hat"].notna()]
        y_both = both[outcome].to_numpy(dtype=float)
        if column != f"{outcome}_hat" and y_both.size and y_both.min() < y_both.max():
            model_score = both[f"{outcome}_hat"].to_numpy(float)
            row["model_auc"] = roc_auc(y_both, model_score)
            row.update(paired_auc_difference(y_both, model_score, both[column].to_numpy(float),
                                             both["ptId"].to_numpy(), n_boot, seed, level))
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=BASELINE_COLUMNS)
