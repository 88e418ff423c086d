"""Evaluate a risk model's predictions: AUC with patient-cluster bootstrap CIs, calibration, high-risk groups.

Reads ``predictions/<model-name>_1/predictions.feather`` (with ``--beat``: the per-ECG mean
logits in ``predictions_by_ecg.feather``), written by ``01_Predictive_Model/x03_predict.py``,
and the labels in ``covariate_df.feather``. Every ``<output>_hat`` column is evaluated per ECG
against the label column ``<output>`` on the rows where both are present, separately for each
part of the model's patient split found in the file (validation, lockbox, training; or only
``--part``, as in x03_predict). Validation results keep the plain names below; another split's files carry its
name (``metrics_lockbox.csv``, ``roc_scd_lockbox.png``, ...), so no split overwrites another.
Every table has a ``split`` column and every title and printed line names the split. The
validation patients chose the training epoch; the lockbox is the figure to trust. Writes beside
the predictions:

* ``metrics.csv``: classification outputs: n, n_pos, n_patients, AUC with a percentile
  interval from a patient-cluster bootstrap, Brier score of sigmoid(logit);
* ``metrics_regression.csv``: regression outputs: R^2 with the same kind of interval;
* ``high_risk.csv``: event rate among the top shares of predicted risk versus the rest;
* ``calibration.csv`` and ``calibration.png``: deciles of predicted probability;
* ``roc_scd.png``: ROC curves of the SCD horizons; ``metrics.md``: a readable summary;
* ``baselines.csv`` (10-s models, validation and lockbox): scd1 AUC of the model beside two
  linear baselines fitted on its training patients and scored on the same ECGs: logistic
  regression on age, sex and the x06 aVL features, and an L2 logistic probe on median beats.

Outputs with one class only (or no labelled rows) are skipped and listed with the reason.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from scdecg import baselines as bl
from scdecg import evaluation as ev
from scdecg.cli import add_runtime_options, build_parser
from scdecg.constants import SCD_HORIZONS
from scdecg.errors import PipelineError, script_main
from scdecg.io import read_feather, write_csv, write_text
from scdecg.training.kinds import BEAT_MODEL, ECG_MODEL, model_kind
from scdecg.workspace import (BASELINES_STEM, CONFIG_FILE, COVARIATE_DF, METRICS_STEM,
                              SPLIT_FILE, STEP_SCRIPTS, predictions_folder, read_config,
                              read_split, split_file)
from scdecg.workspace import PREDICTIONS_DIR as _PREDICTIONS_DIR

MODEL_NAME = ""                       # empty: the default model of the kind (see --beat)
BEAT = False
PREDICTIONS_DIR = _PREDICTIONS_DIR
PART = ""                             # empty: each split in the predictions file, separately
OUTPUTS: list[str] = []               # empty: every <output>_hat column of the predictions
N_BOOT = 1000
CI_LEVEL = 0.95
SEED = 42
HIGH_RISK_SHARES = [0.022, 0.10]      # 2.2%: the paper's high-risk share of the lockbox
HIGH_RISK_OUTPUTS = ["scd1", "scd2"]
ROC_OUTPUTS = list(SCD_HORIZONS)
CALIBRATION_OUTPUTS = list(SCD_HORIZONS)
CALIBRATION_BINS = 10
BASELINES = True                      # 10-s models: linear baselines on the same patients
BASELINE_OUTCOME = "scd1"

HELP = {
    "model_name": f"model to evaluate (default {ECG_MODEL.default_name}, or "
                  f"{BEAT_MODEL.default_name} with --beat)",
    "part": "evaluate only the prediction rows of this part of the split (train, val, lockbox); "
             "default: each split present, into its own files",
    "beat": "evaluate a beat model from its per-ECG mean logits (predictions_by_ecg.feather)",
    "outputs": "outputs to evaluate (default: every <output>_hat column)",
    "n_boot": "patient-cluster bootstrap replicates",
    "ci_level": "confidence level of the percentile intervals",
    "high_risk_shares": "top shares of predicted risk summarised in high_risk.csv",
    "baselines": "also fit the linear baselines (age+sex+aVL features; median-beat probe) on "
                 "the model's training patients and evaluate them on the same ECGs "
                 "(baselines.csv, baselines_lockbox.csv)",
}


def prediction_file(args) -> tuple[str, Path]:
    kind = model_kind(args.beat)
    name = args.model_name or kind.default_name
    folder = predictions_folder(name, args.predictions_dir)
    path = folder / kind.evaluated_predictions
    if not path.exists():
        make = f"python {STEP_SCRIPTS['predict']} --model-name {name}"
        raise PipelineError(f"{path}: file not found; it is written by {make}"
                            + (" --beat" if args.beat else ""))
    return name, path


def choose_outputs(requested: list[str], predictions: pd.DataFrame, covariate_columns,
                   source: Path) -> list[str]:
    available = ev.prediction_outputs(predictions)
    if not available:
        raise PipelineError(f"{source}: no <output>{ev.HAT_SUFFIX} prediction columns")
    outputs = requested or available
    absent = [o for o in outputs if o not in available]
    if absent:
        raise PipelineError(f"{source}: no column {absent[0]}{ev.HAT_SUFFIX} for requested "
                            f"output {absent[0]} (has {', '.join(available)})")
    unlabelled = [o for o in outputs if o not in covariate_columns]
    if unlabelled:
        raise PipelineError(f"{COVARIATE_DF}: no label column {unlabelled[0]!r} for "
                            f"{unlabelled[0]}{ev.HAT_SUFFIX} in {source} (choose outputs with "
                            "--outputs)")
    return outputs


def declared_kinds(name: str, beat: bool) -> dict[str, str]:
    """Output types from the model folder's config.json, when the model folder is here."""
    folder = model_kind(beat).folder(name)
    if not (folder / CONFIG_FILE).exists():
        print(f"[x05] {folder / CONFIG_FILE} not found: output types inferred from the labels "
              "(0/1 -> classification)")
        return {}
    return ev.declared_output_kinds(read_config(folder))


def per_output_tables(frame: pd.DataFrame, evaluated: list[str], args):
    high_risk, calibration = [], []
    for output in evaluated:
        rows = ev.usable_rows(frame, output)
        y, logit = rows[output].astype(float), rows[output + ev.HAT_SUFFIX].astype(float)
        if output in args.high_risk_outputs:
            table = ev.high_risk_table(y, logit, rows["ptId"], args.high_risk_shares)
            high_risk.append(table.assign(output=output))
        if output in args.calibration_outputs:
            table = ev.calibration_table(y, ev.sigmoid(logit), args.calibration_bins)
            calibration.append(table.assign(output=output))

    def stack(tables, columns):
        return pd.concat(tables, ignore_index=True)[columns] if tables else pd.DataFrame(
            columns=columns)

    return stack(high_risk, ev.HIGH_RISK_COLUMNS), stack(calibration, ev.CALIBRATION_COLUMNS)


def count_by(frame: pd.DataFrame, column: str) -> str:
    if column not in frame:
        return "not recorded"
    counts = frame[column].astype(str).value_counts().sort_index()
    return ", ".join(f"{value}: {n}" for value, n in counts.items())


def fit_baselines(name: str, covariates: pd.DataFrame, args) -> bl.BaselineScores | None:
    """The baselines on the model's own split, or None (with the reason printed)."""
    folder = ECG_MODEL.folder(name)
    if not (folder / SPLIT_FILE).exists():
        print(f"[x05] baselines skipped: {folder / SPLIT_FILE} not found (the model's split is "
              "needed)")
        return None
    split_table = read_split(folder, ["studyId", "ptId", "split"])
    try:
        fitted = bl.fit_baselines(covariates, split_table, args.baseline_outcome, seed=args.seed)
    except PipelineError as exc:
        print(f"[x05] baselines skipped: {exc}")
        return None
    if len(fitted.failures):
        print(fitted.failures.summary(total=len(split_table)))
    for model, note in fitted.notes.items():
        print(f"[x05] baseline {model}: {note}")
    return fitted


def evaluate_split(frame: pd.DataFrame, split: str, kinds: dict[str, str], name: str,
                   source: Path, args, baselines: bl.BaselineScores | None = None) -> None:
    """Evaluate the rows of one split and write its files (named by the split)."""
    label, suffix = ev.split_label(split), ev.split_suffix(split)
    folder = source.parent
    print(f"[x05] {label}: {source}: {len(frame)} ECGs of {frame['ptId'].nunique()} patients, "
          f"{len(kinds)} outputs; {args.n_boot} patient-cluster bootstrap replicates")
    in_sample = int(frame["in_sample"].astype(bool).sum()) if "in_sample" in frame else 0
    if in_sample:
        print(f"[x05] warning: {in_sample} of {len(frame)} ECGs are training (in-sample) "
              "predictions, so their metrics are optimistic; use --part val for held-out ones")
    if split == "val":
        print("[x05] the validation patients chose the training epoch: their AUC is optimistic; "
              "the lockbox (x03_predict.py --part lockbox) is the figure to trust")

    metrics, regression, skipped = ev.evaluate_outputs(frame, kinds, args.n_boot, args.seed,
                                                       args.ci_level)
    evaluated = list(metrics["output"])
    high_risk, calibration = per_output_tables(frame, evaluated, args)
    tables = {"metrics": metrics, "metrics_regression": regression, "high_risk": high_risk,
              "calibration": calibration}
    for stem, table in tables.items():
        table.insert(0, "split", split)
        write_csv(table, split_file(folder, stem, split))
    written = [f"{stem}{suffix}.csv" for stem in tables] + [f"metrics{suffix}.md"]
    roc_outputs = [o for o in args.roc_outputs if o in evaluated]
    roc = split_file(folder, "roc_scd", split, ".png")
    cal = split_file(folder, "calibration", split, ".png")
    patients = f"{label} patients ({frame['ptId'].nunique()})"
    if roc_outputs:
        ev.plot_roc(frame, metrics, roc_outputs, roc, title=f"ROC, {name}\n{patients}")
        written.append(roc.name)
    else:  # no stale figure from an earlier run
        roc.unlink(missing_ok=True)
    if not calibration.empty:
        ev.plot_calibration(calibration, cal, title=f"Calibration, {name}, {patients}")
        written.append(cal.name)
    else:
        cal.unlink(missing_ok=True)
    facts = {"split": label, "predictions": source, "labels": COVARIATE_DF, "ECGs": len(frame),
             "patients": frame["ptId"].nunique(), "ECGs by group": count_by(frame, "group"),
             "ECGs by split": count_by(frame, "split"), "in-sample ECGs": in_sample,
             "bootstrap": f"{args.n_boot} patient-cluster replicates, seed {args.seed}, "
                          f"{args.ci_level:.0%} percentile intervals"}
    write_text(ev.metrics_markdown(f"Evaluation of {name} on the {label} patients", facts,
                                   metrics, regression, high_risk, skipped),
               split_file(folder, METRICS_STEM, split, ".md"))

    for row in metrics.itertuples():
        print(f"  {label} AUC {row.output:<12} n={row.n:<6} n_pos={row.n_pos:<5} {row.auc:.3f} "
              f"({row.auc_lo:.3f}-{row.auc_hi:.3f})")
    for row in regression.itertuples():
        print(f"  {label} R2 {row.output:<12} n={row.n:<6} {row.r2:.3f} "
              f"({row.r2_lo:.3f}-{row.r2_hi:.3f})")
    if baselines is not None and split in ("val", "lockbox") and args.baseline_outcome in evaluated:
        table = bl.baseline_table(frame, baselines, args.baseline_outcome, name, split,
                                  args.n_boot, args.seed, args.ci_level)
        write_csv(table, split_file(folder, BASELINES_STEM, split))
        written.append(f"baselines{suffix}.csv")
        for row in table.itertuples():
            print(f"  {label} AUC {args.baseline_outcome} {row.model:<24} {row.auc:.3f} "
                  f"({row.auc_lo:.3f}-{row.auc_hi:.3f})")
    if len(skipped):
        print(skipped.summary(total=len(kinds)))
        for row in skipped.rows:
            print(f"    {row['record']}: {row['reason']}")
    print(f"[x05] {label}: wrote {', '.join(written)} to {folder}")


@script_main
def main(argv=None):
    parser = build_parser(
        __doc__, help=HELP, model_name=MODEL_NAME, beat=BEAT, predictions_dir=PREDICTIONS_DIR,
        part=PART, outputs=OUTPUTS, n_boot=N_BOOT, ci_level=CI_LEVEL, high_risk_shares=HIGH_RISK_SHARES,
        high_risk_outputs=HIGH_RISK_OUTPUTS, roc_outputs=ROC_OUTPUTS,
        calibration_outputs=CALIBRATION_OUTPUTS, calibration_bins=CALIBRATION_BINS,
        baselines=BASELINES, baseline_outcome=BASELINE_OUTCOME)
    add_runtime_options(parser, profile=None, device=None, seed=SEED)
    args = parser.parse_args(argv)
    if args.n_boot < 1 or not 0.0 < args.ci_level < 1.0:
        raise PipelineError(f"--n-boot {args.n_boot} / --ci-level {args.ci_level}: need "
                            "n_boot >= 1 and 0 < ci_level < 1")

    name, source = prediction_file(args)
    predictions = ev.select_split(read_feather(source, columns=["studyId"]), args.part, source)
    covariates = read_feather(COVARIATE_DF, columns=["studyId", "ptId", "group"], step="x02")
    outputs = choose_outputs(args.outputs, predictions, covariates.columns, source)
    frame = ev.join_predictions(predictions, covariates, outputs, source, COVARIATE_DF)
    kinds = ev.output_kinds(frame, outputs, declared_kinds(name, args.beat))
    splits = [args.part] if args.part else ev.present_splits(frame)
    baselines = None
    if args.baselines and not args.beat and set(splits) & {"val", "lockbox"}:
        baselines = fit_baselines(name, covariates, args)
    for split in splits:
        rows = frame if split == "" else frame[frame["split"].astype(str) == split]
        evaluate_split(rows.reset_index(drop=True), split, kinds, name, source, args, baselines)


if __name__ == "__main__":
    raise SystemExit(main())
