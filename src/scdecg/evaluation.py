"""Evaluation of a risk model's held-out predictions.

Everything is computed per ECG (one row per ``studyId``; beat models are evaluated on their
per-ECG mean logits). Uncertainty comes from a patient-cluster bootstrap: each replicate draws
patients with replacement and keeps all of a drawn patient's ECGs, as the paper's analysis
clusters by patient. Replicates are represented as integer weights (how often each ECG was
drawn), so every statistic here is written for weighted data and evaluated for a whole block
of replicates at once.

Pieces (the statistics and the bootstrap are in :mod:`scdecg.metrics`, imported here):

* tables: :func:`calibration_table`, :func:`high_risk_table`, :func:`evaluate_outputs`;
* input checks: :func:`select_split`, :func:`join_predictions`, :func:`output_kinds`;
* report: :func:`plot_roc`, :func:`plot_calibration`, :func:`metrics_markdown`.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .errors import PipelineError
from .failures import FailureLog
from .metrics import (auc_with_interval, brier_score, cluster_bootstrap,  # noqa: F401
                      cluster_bootstrap_weights, percentile_interval, roc_auc, roc_curve,
                      sigmoid, weighted_auc, weighted_r2)
from .tables import markdown_table
from .workspace import split_suffix  # noqa: F401 (the file-name rule; re-exported)

HAT_SUFFIX = "_hat"
CLASSIFICATION = "classification"
REGRESSION = "regression"

METRIC_COLUMNS = ["output", "n", "n_pos", "n_patients", "prevalence", "auc", "auc_lo",
                  "auc_hi", "n_boot", "brier", "n_label_missing", "n_pred_missing"]
REGRESSION_COLUMNS = ["output", "n", "n_patients", "r2", "r2_lo", "r2_hi", "n_boot",
                      "n_label_missing", "n_pred_missing"]
CALIBRATION_COLUMNS = ["output", "bin", "n", "mean_predicted", "observed_rate",
                       "min_predicted", "max_predicted"]
HIGH_RISK_COLUMNS = ["output", "target_share", "threshold_logit", "threshold_probability",
                     "n", "n_flagged", "share_flagged", "n_patients_flagged",
                     "share_patients_flagged", "events_flagged", "rate_flagged", "n_rest",
                     "events_rest", "rate_rest", "rate_all", "lift", "rate_ratio"]


# ----------------------------------------------------------------------------- tables
def calibration_table(y: np.ndarray, probability: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability and observed event rate in ``n_bins`` equal-count bins.

    Rows are sorted by predicted probability (stable) and split into bins whose sizes differ by
    at most one; tied predictions on a bin edge may fall on either side of it.
    """
    y = np.asarray(y, dtype=np.float64)
    probability = np.asarray(probability, dtype=np.float64)
    order = np.argsort(probability, kind="stable")
    rows = []
    for i, idx in enumerate(b for b in np.array_split(order, n_bins) if b.size):
        p = probability[idx]
        rows.append({"bin": i + 1, "n": idx.size, "mean_predicted": p.mean(),
                     "observed_rate": y[idx].mean(), "min_predicted": p.min(),
                     "max_predicted": p.max()})
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS[1:])


def high_risk_table(y: np.ndarray, logit: np.ndarray, patients: Sequence,
                    shares: Sequence[float]) -> pd.DataFrame:
    """Event rate among the ECGs with the highest predicted risk versus the rest.

    For each target share q the threshold is the k-th highest logit with k = ceil(q n) (at
    least 1), and every ECG scoring at or above it is flagged: ECGs tied at the threshold are
    all flagged, so the realised ``share_flagged`` can exceed q (it is reported). ``lift`` is
    the flagged event rate over the overall rate, ``rate_ratio`` flagged over the rest.
    """
    y = np.asarray(y, dtype=np.float64)
    logit = np.asarray(logit, dtype=np.float64)
    patients = np.asarray(patients)
    n = y.size
    if n == 0:
        return pd.DataFrame(columns=HIGH_RISK_COLUMNS[1:])
    descending = np.sort(logit)[::-1]
    n_patients = len(np.unique(patients))
    rate_all = y.mean()
    rows = []
    for share in shares:
        if not 0.0 < share <= 1.0:
            raise PipelineError(f"high-risk share {share}: must be in (0, 1]")
        k = max(1, math.ceil(round(share * n, 9)))
        threshold = descending[k - 1]
        flagged = logit >= threshold
        n_flagged = int(flagged.sum())
        n_rest = n - n_flagged
        rate_flagged = y[flagged].mean()
        rate_rest = y[~flagged].mean() if n_rest else math.nan
        patients_flagged = len(np.unique(patients[flagged]))
        rows.append({
            "target_share": share, "threshold_logit": threshold,
            "threshold_probability": float(sigmoid(threshold)), "n": n,
            "n_flagged": n_flagged, "share_flagged": n_flagged / n,
            "n_patients_flagged": patients_flagged,
            "share_patients_flagged": patients_flagged / n_patients,
            "events_flagged": int(y[flagged].sum()), "rate_flagged": rate_flagged,
            "n_rest": n_rest, "events_rest": int(y[~flagged].sum()), "rate_rest": rate_rest,
            "rate_all": rate_all,
            "lift": rate_flagged / rate_all if rate_all > 0 else math.nan,
            "rate_ratio": rate_flagged / rate_rest if rate_rest > 0 else math.nan,
        })
    return pd.DataFrame(rows, columns=HIGH_RISK_COLUMNS[1:])


# ----------------------------------------------------------------------------- splits
#: How each part of a model's patient split is named in titles, tables and printed lines.
SPLIT_LABELS = {"val": "validation", "lockbox": "lockbox", "train": "training (in-sample)",
                "all": "all rows", "": "split not recorded"}
#: Order in which the parts of a predictions file are evaluated and reported.
SPLIT_ORDER = ("val", "lockbox", "train")


def split_label(split: str) -> str:
    """``val`` -> ``validation``, ``lockbox`` -> ``lockbox``, ... (unknown names unchanged)."""
    return SPLIT_LABELS.get(split, split)


def present_splits(predictions: pd.DataFrame) -> list[str]:
    """The splits in a predictions file (val, lockbox, train first), or ``[""]`` without a
    ``split`` column."""
    if "split" not in predictions.columns:
        return [""]
    found = set(predictions["split"].astype(str))
    return [s for s in SPLIT_ORDER if s in found] + sorted(found - set(SPLIT_ORDER))


# ----------------------------------------------------------------------------- inputs
def prediction_outputs(predictions: pd.DataFrame) -> list[str]:
    """Output names of the ``<output>_hat`` columns, in file order."""
    return [c[: -len(HAT_SUFFIX)] for c in predictions.columns if c.endswith(HAT_SUFFIX)]


def select_split(predictions: pd.DataFrame, split: str, source: str | Path) -> pd.DataFrame:
    """Rows of ``predictions`` whose ``split`` column equals ``split`` (all rows when empty)."""
    if not split:
        return predictions
    if "split" not in predictions.columns:
        raise PipelineError(f"{source}: no split column, cannot select split {split!r}")
    chosen = predictions[predictions["split"].astype(str) == split]
    if chosen.empty:
        present = ", ".join(sorted(predictions["split"].astype(str).unique()))
        raise PipelineError(f"{source}: no rows with split {split!r} (present: {present})")
    return chosen


def join_predictions(predictions: pd.DataFrame, covariates: pd.DataFrame, outputs: Sequence[str],
                     prediction_source: str | Path, covariate_source: str | Path) -> pd.DataFrame:
    """One row per predicted ECG: ``studyId``, ``ptId``, ``group``, labels and predictions
    (plus the predictions' ``split`` and ``in_sample`` columns when present).

    Raises :class:`PipelineError` when an ECG appears twice in either table or when any
    predicted ``studyId`` is absent from the cohort table: predictions made from another
    cohort cannot be evaluated by silently dropping rows.
    """
    hats = [o + HAT_SUFFIX for o in outputs]
    for table, source in ((predictions, prediction_source), (covariates, covariate_source)):
        ids = table["studyId"].astype(str)
        repeated = ids[ids.duplicated()]
        if len(repeated):
            hint = (" (one row per ECG expected; beat predictions are evaluated from "
                    "predictions_by_ecg.feather)" if table is predictions else "")
            raise PipelineError(f"{source}: studyId {repeated.iloc[0]!r} appears more than once, "
                                f"{repeated.nunique()} repeated id(s){hint}")
    extra = [c for c in ("split", "in_sample") if c in predictions.columns]
    pred = predictions[["studyId", *hats, *extra]].assign(
        studyId=predictions["studyId"].astype(str))
    cov = covariates[["studyId", "ptId", "group", *outputs]].assign(
        studyId=covariates["studyId"].astype(str), ptId=covariates["ptId"].astype(str))
    unknown = ~pred["studyId"].isin(cov["studyId"])
    if unknown.any():
        examples = ", ".join(pred.loc[unknown, "studyId"].head(3))
        raise PipelineError(f"{prediction_source}: {int(unknown.sum())} of {len(pred)} studyId(s) "
                            f"not found in {covariate_source} (e.g. {examples}); were the "
                            "predictions made from another cohort?")
    return pred.merge(cov, on="studyId", how="left", validate="one_to_one")


def infer_output_kind(labels: pd.Series) -> str:
    """``classification`` when every present label is 0/1 (or boolean), else ``regression``."""
    values = pd.to_numeric(labels.dropna().astype(float), errors="coerce")
    return CLASSIFICATION if values.isin([0.0, 1.0]).all() else REGRESSION


def output_kinds(frame: pd.DataFrame, outputs: Sequence[str],
                 declared: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each output's kind: as ``declared`` (a model config's output types) or inferred."""
    declared = declared or {}
    kinds = {}
    for output in outputs:
        kind = declared.get(output) or infer_output_kind(frame[output])
        if kind not in (CLASSIFICATION, REGRESSION):
            raise PipelineError(f"output {output}: unknown output type {kind!r}")
        kinds[output] = kind
    return kinds


def declared_output_kinds(config: Mapping) -> dict[str, str]:
    """Output types from a model ``config.json`` (``output_types`` as a list or a mapping)."""
    types = config.get("output_types") or {}
    if isinstance(types, Mapping):
        return dict(types)
    return dict(zip(config.get("outputs", []), types))


# ----------------------------------------------------------------------------- evaluation
def _classification_row(y: np.ndarray, logit: np.ndarray, patients: np.ndarray, n_boot: int,
                        seed: int, level: float) -> dict:
    return {**auc_with_interval(y, logit, patients, n_boot, seed, level),
            "brier": brier_score(y, sigmoid(logit))}


def _regression_row(y: np.ndarray, pred: np.ndarray, patients: np.ndarray, n_boot: int,
                    seed: int, level: float) -> dict:
    replicates = cluster_bootstrap(lambda w: weighted_r2(y, pred, w), patients, n_boot, seed)
    lo, hi = percentile_interval(replicates, level)
    return {"n": y.size, "n_patients": len(np.unique(patients)), "r2": weighted_r2(y, pred),
            "r2_lo": lo, "r2_hi": hi, "n_boot": int(np.isfinite(replicates).sum())}


def _numeric_column(frame: pd.DataFrame, column: str) -> pd.Series:
    try:
        return frame[column].astype(float)
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"column {column}: not numeric ({exc})") from exc


def evaluate_outputs(frame: pd.DataFrame, kinds: Mapping[str, str], n_boot: int, seed: int,
                     level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame, FailureLog]:
    """Metrics per output on the rows where both label and prediction are present.

    Classification outputs get AUC with a patient-cluster bootstrap percentile interval and the
    Brier score of sigmoid(logit); regression outputs get R^2 with the same kind of interval.
    Every output's bootstrap starts from ``seed``. Outputs that cannot be evaluated (no
    labelled rows, one class only, constant target) are returned in the FailureLog.
    """
    skipped = FailureLog("evaluation")
    classification, regression = [], []
    for output, kind in tqdm(kinds.items(), desc="outputs", unit="output"):
        label = _numeric_column(frame, output)
        pred = _numeric_column(frame, output + HAT_SUFFIX)
        usable = label.notna() & pred.notna()
        counts = {"n_label_missing": int(label.isna().sum()),
                  "n_pred_missing": int((pred.isna() & label.notna()).sum())}
        y, p = label[usable].to_numpy(), pred[usable].to_numpy()
        patients = frame.loc[usable, "ptId"].to_numpy()
        if y.size == 0:
            skipped.add(output, "no rows with both a label and a prediction")
            continue
        if kind == CLASSIFICATION:
            bad = ~np.isin(y, (0.0, 1.0))
            if bad.any():
                study_id = frame.loc[usable, "studyId"].to_numpy()[bad][0]
                raise PipelineError(f"label column {output}: value {float(y[bad][0])} "
                                    f"(studyId {study_id}) is not 0/1 but the output is a "
                                    "classification output")
            n_pos = int(y.sum())
            if n_pos in (0, y.size):
                skipped.add(output, f"only one class (n={y.size}, n_pos={n_pos})")
                continue
            classification.append({"output": output, **counts,
                                   **_classification_row(y, p, patients, n_boot, seed, level)})
        else:
            if y.size < 2 or np.all(y == y[0]):
                skipped.add(output, f"constant or single-row regression target (n={y.size})")
                continue
            regression.append({"output": output, **counts,
                               **_regression_row(y, p, patients, n_boot, seed, level)})
    return (pd.DataFrame(classification, columns=METRIC_COLUMNS),
            pd.DataFrame(regression, columns=REGRESSION_COLUMNS), skipped)


def usable_rows(frame: pd.DataFrame, output: str) -> pd.DataFrame:
    """The rows of ``frame`` with both ``output`` and ``<output>_hat`` present."""
    return frame[frame[output].notna() & frame[output + HAT_SUFFIX].notna()]


# ----------------------------------------------------------------------------- report
def plot_roc(frame: pd.DataFrame, metrics: pd.DataFrame, outputs: Sequence[str],
             path: str | Path, title: str = "") -> None:
    """ROC curves of ``outputs`` on one set of axes, AUC (95% CI) in the legend; PNG."""
    from matplotlib.figure import Figure

    from .plotting import save_figure

    fig = Figure(figsize=(5.5, 5.0), dpi=120)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="chance")
    by_output = metrics.set_index("output")
    for output in outputs:
        rows = usable_rows(frame, output)
        fpr, tpr = roc_curve(rows[output].astype(float), rows[output + HAT_SUFFIX])
        m = by_output.loc[output]
        ax.plot(fpr, tpr, lw=1.5,
                label=f"{output}: AUC {m.auc:.3f} ({m.auc_lo:.3f}-{m.auc_hi:.3f}), "
                      f"{int(m.n_pos)}/{int(m.n)}")
    ax.set(xlabel="False-positive rate", ylabel="True-positive rate", xlim=(0, 1),
           ylim=(0, 1), title=title or "ROC, sudden cardiac death horizons")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def plot_calibration(calibration: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Observed event rate against mean predicted probability per bin, one panel per output."""
    from matplotlib.figure import Figure

    from .plotting import save_figure

    outputs = list(dict.fromkeys(calibration["output"]))
    n_cols = min(len(outputs), 2) or 1
    n_rows = max(math.ceil(len(outputs) / n_cols), 1)
    fig = Figure(figsize=(4.2 * n_cols, 4.0 * n_rows), dpi=120)
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols)).ravel()
    for ax in axes[len(outputs):]:
        ax.set_axis_off()
    for ax, output in zip(axes, outputs):
        table = calibration[calibration["output"] == output]
        top = float(max(table["mean_predicted"].max(), table["observed_rate"].max(), 1e-3)) * 1.05
        ax.plot([0, top], [0, top], color="0.6", lw=1, ls="--", label="perfect calibration")
        ax.plot(table["mean_predicted"], table["observed_rate"], "o-", lw=1.2, ms=4,
                label="deciles of prediction")
        ax.set(xlabel="Mean predicted probability", ylabel="Observed event rate",
               xlim=(0, top), ylim=(0, top), title=output)
        ax.legend(loc="upper left", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def metrics_markdown(title: str, facts: Mapping[str, object], metrics: pd.DataFrame,
                     regression: pd.DataFrame, high_risk: pd.DataFrame,
                     skipped: FailureLog) -> str:
    """The human-readable summary ``metrics.md``."""
    parts = [f"# {title}", ""]
    parts += [f"- {key}: {value}" for key, value in facts.items()]
    parts += ["", "## Discrimination (classification outputs)", "",
              markdown_table(metrics[["output", "n", "n_pos", "n_patients", "auc", "auc_lo",
                                      "auc_hi", "brier"]])]
    parts += ["", "## Regression outputs", "", markdown_table(regression[
        ["output", "n", "n_patients", "r2", "r2_lo", "r2_hi"]])]
    parts += ["", "## High-risk groups", "",
              "ECGs at or above the k-th highest logit (k = ceil(share x n)); ties at the "
              "threshold are all flagged. Event rates and calibration describe this cohort's "
              "case mix (NTUH is a case-control sample), not population risk.", "",
              markdown_table(high_risk[["output", "target_share", "n_flagged", "share_flagged",
                                        "events_flagged", "rate_flagged", "rate_rest",
                                        "lift"]])]
    parts += ["", "## Not evaluated", ""]
    parts += [f"- {row['record']}: {row['reason']}" for row in skipped.rows] or ["_(none)_"]
    return "\n".join(parts) + "\n"
