"""Evaluation of a risk model's held-out predictions.

Everything is computed per ECG (one row per ``studyId``; beat models are evaluated on their
per-ECG mean logits). Uncertainty comes from a patient-cluster bootstrap: each replicate draws
patients with replacement and keeps all of a drawn patient's ECGs, as the paper's analysis
clusters by patient. Replicates are represented as integer weights (how often each ECG was
drawn), so every statistic here is written for weighted data and evaluated for a whole block
of replicates at once.

Pieces (the statistics and the bootstrap are in :mod:`scdecg.metrics`, imported here):

* tables: :func:`calibration_table`, :func:`high_risk_table`, :func:`evaluate_outputs`;
* input checks: :func:`check_predictions`, :func:`select_split`, :func:`join_predictions`, :func:`output_kinds`;
* report: :func:`plot_roc`, :func:`plot_calibration`, :func:`metrics_markdown`;
* the step (01 x05_evaluate.py): :func:`evaluate_model`, one split at a time
  (:func:`evaluate_split`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import PipelineError
from .failures import FailureLog
from .metrics import (auc_with_interval, brier_score, cluster_bootstrap, percentile_interval,
                      roc_curve, sigmoid, weighted_r2)
from .io import check_values, read_feather, write_csv, write_text
from .progress import progress_bar
from .tables import markdown_table
from .workspace import (BASELINES_STEM, CONFIG_FILE, COVARIATE_DF, METRICS_STEM, PREDICTIONS_DIR,
                        SPLIT_FILE, STEP_SCRIPTS, check_split_values, predictions_folder,
                        read_config, read_split, split_file, split_suffix)

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


def check_predictions(predictions: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """``predictions`` when it has rows, every ``studyId`` and ``split`` filled in and a 0/1
    ``in_sample``; else one :class:`PipelineError` naming ``source``, the column and the row."""
    if predictions.empty:
        raise PipelineError(f"{source}: no prediction rows; rerun "
                            f"{STEP_SCRIPTS['predict']} for this model")
    filled = [c for c in ("studyId", "split") if c in predictions.columns]
    binary = [c for c in ("in_sample",) if c in predictions.columns]
    check_values(predictions, source, filled=filled, binary=binary)
    if "split" in predictions.columns:
        check_split_values(predictions["split"], source)
    return predictions


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
    used = covariates[cov["studyId"].isin(pred["studyId"]).to_numpy()]
    check_values(used, covariate_source, numeric=outputs, filled=["ptId"])
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
    for output, kind in progress_bar(kinds.items(), desc="outputs", unit="output"):
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


# --------------------------------------------------------------------------------------
# The evaluation step (01 x05_evaluate.py)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluationSettings:
    """What :func:`evaluate_model` computes besides the AUC/R² table (x05's options)."""
    n_boot: int
    ci_level: float
    seed: int
    high_risk_shares: Sequence[float]
    high_risk_outputs: Sequence[str]
    roc_outputs: Sequence[str]
    calibration_outputs: Sequence[str]
    calibration_bins: int
    baselines: bool
    baseline_outcome: str


def _predictions_file(kind, name: str, predictions_dir: str | Path) -> Path:
    path = predictions_folder(name, predictions_dir) / kind.evaluated_predictions
    if not path.exists():
        make = f"python {STEP_SCRIPTS['predict']} --model-name {name}"
        raise PipelineError(f"{path}: file not found; it is written by {make}"
                            + (" --beat" if kind.per_beat else ""))
    return path


def choose_outputs(requested: Sequence[str], predictions: pd.DataFrame, covariate_columns,
                   source: Path, covariate_df: str | Path = COVARIATE_DF) -> list[str]:
    """The outputs to evaluate: ``requested`` (default every ``<output>_hat`` column), each
    with a prediction column and a label column (one line naming what is missing)."""
    available = prediction_outputs(predictions)
    if not available:
        raise PipelineError(f"{source}: no <output>{HAT_SUFFIX} prediction columns")
    outputs = list(requested) or available
    absent = [o for o in outputs if o not in available]
    if absent:
        raise PipelineError(f"{source}: no column {absent[0]}{HAT_SUFFIX} for requested "
                            f"output {absent[0]} (has {', '.join(available)})")
    unlabelled = [o for o in outputs if o not in covariate_columns]
    if unlabelled:
        raise PipelineError(f"{covariate_df}: no label column {unlabelled[0]!r} for "
                            f"{unlabelled[0]}{HAT_SUFFIX} in {source} (choose outputs with "
                            "--outputs)")
    return outputs


def _declared_kinds(folder: Path) -> dict[str, str]:
    """Output types from the model folder's config.json, when the model folder is here."""
    if not (folder / CONFIG_FILE).exists():
        print(f"[x05] {folder / CONFIG_FILE} not found: output types inferred from the labels "
              "(0/1 -> classification)")
        return {}
    return declared_output_kinds(read_config(folder))


def _per_output_tables(frame: pd.DataFrame, evaluated: list[str], settings: EvaluationSettings):
    high_risk, calibration = [], []
    for output in evaluated:
        rows = usable_rows(frame, output)
        y, logit = rows[output].astype(float), rows[output + HAT_SUFFIX].astype(float)
        if output in settings.high_risk_outputs:
            table = high_risk_table(y, logit, rows["ptId"], settings.high_risk_shares)
            high_risk.append(table.assign(output=output))
        if output in settings.calibration_outputs:
            table = calibration_table(y, sigmoid(logit), settings.calibration_bins)
            calibration.append(table.assign(output=output))

    def stack(tables, columns):
        return pd.concat(tables, ignore_index=True)[columns] if tables else pd.DataFrame(
            columns=columns)

    return stack(high_risk, HIGH_RISK_COLUMNS), stack(calibration, CALIBRATION_COLUMNS)


def _count_by(frame: pd.DataFrame, column: str) -> str:
    if column not in frame:
        return "not recorded"
    counts = frame[column].astype(str).value_counts().sort_index()
    return ", ".join(f"{value}: {n}" for value, n in counts.items())


def check_prediction_splits(predictions: pd.DataFrame, model_folder: Path, source: Path) -> None:
    """Each prediction row's ``split`` must be the one the model's ``split.csv`` gives its
    ECG (an edited or concatenated file could pass training ECGs off as validation); ECGs
    the model's split does not list (another cohort) are not checked. A split's ECGs without
    a prediction are counted."""
    if "split" not in predictions.columns or not (model_folder / SPLIT_FILE).is_file():
        return
    stored = read_split(model_folder, ["studyId", "split"]).drop_duplicates("studyId")
    both = predictions[["studyId", "split"]].merge(stored, on="studyId", how="inner",
                                                   suffixes=("", "_model"))
    differ = both["split"].astype(str) != both["split_model"].astype(str)
    if differ.any():
        row = both.loc[differ].iloc[0]
        raise PipelineError(f"{source}: studyId {row['studyId']!r} is predicted as "
                            f"{row['split']!r}, but the model's {model_folder / SPLIT_FILE} puts "
                            f"it in {row['split_model']!r} ({int(differ.sum())} such row(s)); "
                            "predict again with x03_predict.py")
    for split in sorted(set(predictions["split"].astype(str)) & {"val", "lockbox"}):
        expected = set(stored.loc[stored["split"] == split, "studyId"])
        absent = len(expected - set(predictions["studyId"]))
        if absent:
            print(f"[x05] {absent} of {len(expected)} {split_label(split)} ECGs of the model's "
                  f"split have no prediction in {source} (not evaluated; x03_predict.py "
                  "printed why)")


def _fit_baselines(folder: Path, covariates: pd.DataFrame, settings: EvaluationSettings,
                   covariate_df: str | Path = COVARIATE_DF):
    """The linear baselines on the model's own split, or None (with the reason printed); text
    or an infinite value in a column they read stops the step (nothing written yet)."""
    from . import baselines as bl

    if not (folder / SPLIT_FILE).exists():
        print(f"[x05] baselines skipped: {folder / SPLIT_FILE} not found (the model's split is "
              "needed)")
        return None
    split_table = read_split(folder, ["studyId", "ptId", "split"])
    bl.check_outcome(covariates, settings.baseline_outcome, covariate_df)
    bl.check_covariates(covariates, split_table, settings.baseline_outcome, covariate_df)
    try:
        fitted = bl.fit_baselines(covariates, split_table, settings.baseline_outcome,
                                  seed=settings.seed, source=covariate_df)
    except PipelineError as exc:
        print(f"[x05] baselines skipped: {exc}")
        return None
    if len(fitted.failures):
        print(fitted.failures.summary(total=len(split_table)))
    for model, note in fitted.notes.items():
        print(f"[x05] baseline {model}: {note}")
    return fitted


def evaluate_split(frame: pd.DataFrame, split: str, kinds: dict[str, str], name: str,
                   source: Path, settings: EvaluationSettings, baselines=None,
                   covariate_df: str | Path = COVARIATE_DF) -> list[str]:
    """Evaluate the rows of one split and write its files beside ``source`` (named by the
    split: ``metrics.csv`` for validation, ``metrics_lockbox.csv``, ...); returns their names."""
    label, suffix = split_label(split), split_suffix(split)
    folder = source.parent
    print(f"[x05] {label}: {source}: {len(frame)} ECGs of {frame['ptId'].nunique()} patients, "
          f"{len(kinds)} outputs; {settings.n_boot} patient-cluster bootstrap replicates")
    in_sample = int(frame["in_sample"].astype(bool).sum()) if "in_sample" in frame else 0
    if in_sample:
        print(f"[x05] warning: {in_sample} of {len(frame)} ECGs are training (in-sample) "
              "predictions, so their metrics are optimistic; use --part val for held-out ones")
    if split == "val":
        print("[x05] the validation patients chose the training epoch: their AUC is optimistic; "
              "the lockbox (x03_predict.py --part lockbox) is the figure to trust")

    metrics, regression, skipped = evaluate_outputs(frame, kinds, settings.n_boot, settings.seed,
                                                    settings.ci_level)
    evaluated = list(metrics["output"])
    high_risk, calibration = _per_output_tables(frame, evaluated, settings)
    tables = {"metrics": metrics, "metrics_regression": regression, "high_risk": high_risk,
              "calibration": calibration}
    for stem, table in tables.items():
        table.insert(0, "split", split)
        write_csv(table, split_file(folder, stem, split))
    written = [f"{stem}{suffix}.csv" for stem in tables] + [f"metrics{suffix}.md"]
    roc_outputs = [o for o in settings.roc_outputs if o in evaluated]
    roc = split_file(folder, "roc_scd", split, ".png")
    cal = split_file(folder, "calibration", split, ".png")
    patients = f"{label} patients ({frame['ptId'].nunique()})"
    if roc_outputs:
        plot_roc(frame, metrics, roc_outputs, roc, title=f"ROC, {name}\n{patients}")
        written.append(roc.name)
    else:  # no stale figure from an earlier run
        roc.unlink(missing_ok=True)
    if not calibration.empty:
        plot_calibration(calibration, cal, title=f"Calibration, {name}, {patients}")
        written.append(cal.name)
    else:
        cal.unlink(missing_ok=True)
    facts = {"split": label, "predictions": source, "labels": covariate_df, "ECGs": len(frame),
             "patients": frame["ptId"].nunique(), "ECGs by group": _count_by(frame, "group"),
             "ECGs by split": _count_by(frame, "split"), "in-sample ECGs": in_sample,
             "bootstrap": f"{settings.n_boot} patient-cluster replicates, seed {settings.seed}, "
                          f"{settings.ci_level:.0%} percentile intervals"}
    write_text(metrics_markdown(f"Evaluation of {name} on the {label} patients", facts,
                                metrics, regression, high_risk, skipped),
               split_file(folder, METRICS_STEM, split, ".md"))

    for row in metrics.itertuples():
        print(f"  {label} AUC {row.output:<12} n={row.n:<6} n_pos={row.n_pos:<5} {row.auc:.3f} "
              f"({row.auc_lo:.3f}-{row.auc_hi:.3f})")
    for row in regression.itertuples():
        print(f"  {label} R2 {row.output:<12} n={row.n:<6} {row.r2:.3f} "
              f"({row.r2_lo:.3f}-{row.r2_hi:.3f})")
    outcome = settings.baseline_outcome
    if baselines is not None and split in ("val", "lockbox") and outcome in evaluated:
        from .baselines import baseline_table

        table = baseline_table(frame, baselines, outcome, name, split, settings.n_boot,
                               settings.seed, settings.ci_level)
        write_csv(table, split_file(folder, BASELINES_STEM, split))
        written.append(f"baselines{suffix}.csv")
        for row in table.itertuples():
            print(f"  {label} AUC {outcome} {row.model:<24} {row.auc:.3f} "
                  f"({row.auc_lo:.3f}-{row.auc_hi:.3f})")
    else:  # no stale table of an earlier run beside this run's metrics
        split_file(folder, BASELINES_STEM, split).unlink(missing_ok=True)
    if len(skipped):
        print(skipped.summary(total=len(kinds)))
        for row in skipped.rows:
            print(f"    {row['record']}: {row['reason']}")
    print(f"[x05] {label}: wrote {', '.join(written)} to {folder}")
    return written


def evaluate_model(model_name: str = "", beat: bool = False, *,
                   predictions_dir: str | Path = PREDICTIONS_DIR, part: str = "",
                   outputs: Sequence[str] = (), settings: EvaluationSettings,
                   covariate_df: str | Path = COVARIATE_DF) -> Path:
    """Evaluate a model's predictions against the labels, each split into its own files.

    Reads ``predictions/<model_name>_1/predictions.feather`` (a beat model: the per-ECG mean
    logits, ``predictions_by_ecg.feather``) and the labels of ``covariate_df``, and writes
    beside the predictions, per split present (or only ``part``): ``metrics.csv`` (AUC with
    patient-cluster bootstrap intervals, Brier), ``metrics_regression.csv``,
    ``high_risk.csv``, ``calibration.csv``, ``metrics.md``, ``roc_scd.png``,
    ``calibration.png`` and, for a 10-s model with ``settings.baselines``, ``baselines.csv``.

    Parameters
    ----------
    model_name : str
        The model (default: the default model of its kind).
    beat : bool
        A beat model (``modelfits_beat/``) rather than a 10-s model.
    predictions_dir : str or pathlib.Path
        The folder holding ``<model_name>_1/``.
    part : str
        ``"val"``, ``"lockbox"`` or ``"train"``: evaluate only those rows; ``""``: each split
        of the file separately.
    outputs : sequence of str
        Outputs to evaluate (default: every ``<output>_hat`` column).
    settings : EvaluationSettings
        Bootstrap, high-risk, calibration, ROC and baseline settings.
    covariate_df : str or pathlib.Path
        The cohort table with the labels.

    Returns
    -------
    pathlib.Path
        The predictions folder the files were written to.

    Raises
    ------
    scdecg.errors.PipelineError
        When the predictions or labels are missing or do not fit together.

    Examples
    --------
    >>> settings = EvaluationSettings(n_boot=1000, ci_level=0.95, seed=42,
    ...     high_risk_shares=[0.022], high_risk_outputs=["scd1"], roc_outputs=["scd1"],
    ...     calibration_outputs=["scd1"], calibration_bins=10, baselines=False,
    ...     baseline_outcome="scd1")
    >>> evaluate_model("ntuh_scd_model_demo", part="lockbox", settings=settings)  # doctest: +SKIP
    PosixPath('predictions/ntuh_scd_model_demo_1')
    """
    from .training.kinds import model_kind

    if settings.n_boot < 1 or not 0.0 < settings.ci_level < 1.0:
        raise PipelineError(f"--n-boot {settings.n_boot} / --ci-level {settings.ci_level}: need "
                            "n_boot >= 1 and 0 < ci_level < 1")
    kind = model_kind(beat)
    name = model_name or kind.default_name
    source = _predictions_file(kind, name, predictions_dir)
    predictions = check_predictions(read_feather(source, columns=["studyId"]), source)
    check_prediction_splits(predictions, kind.folder(name), source)
    predictions = select_split(predictions, part, source)
    covariates = read_feather(covariate_df, columns=["studyId", "ptId", "group"], step="x02")
    chosen = choose_outputs(outputs, predictions, covariates.columns, source, covariate_df)
    check_values(predictions, source, numeric=[o + HAT_SUFFIX for o in chosen])
    frame = join_predictions(predictions, covariates, chosen, source, covariate_df)
    kinds = output_kinds(frame, chosen, _declared_kinds(kind.folder(name)))
    for option, names, what in (("--roc-outputs", settings.roc_outputs, "ROC curve"),
                                ("--high-risk-outputs", settings.high_risk_outputs,
                                 "high-risk table"),
                                ("--calibration-outputs", settings.calibration_outputs,
                                 "calibration table")):
        unknown = [n for n in names if n not in kinds]
        if unknown:
            print(f"[x05] {option}: {', '.join(unknown)} not among the evaluated outputs of "
                  f"{name} ({', '.join(kinds)}): no {what} for them")
    splits = [part] if part else present_splits(frame)
    baselines = None
    if settings.baselines and not kind.per_beat and set(splits) & {"val", "lockbox"}:
        baselines = _fit_baselines(kind.folder(name), covariates, settings, covariate_df)
    for split in splits:
        rows = frame if split == "" else frame[frame["split"].astype(str) == split]
        evaluate_split(rows.reset_index(drop=True), split, kinds, name, source, settings,
                       baselines, covariate_df)
    return source.parent
