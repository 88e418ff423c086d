"""Evaluate a risk model's predictions: AUC with patient-cluster bootstrap CIs, calibration, high-risk groups.

Reads ``predictions/<model-name>_1/predictions.feather`` (with ``--beat``: the per-ECG mean
logits in ``predictions_by_ecg.feather``), written by ``01_Predictive_Model/x03_predict.py``,
and the labels in ``covariate_df.feather``. Every ``<output>_hat`` column is evaluated per ECG
against the label column ``<output>`` on the rows where both are present. Writes beside the
predictions:

* ``metrics.csv``: classification outputs: n, n_pos, n_patients, AUC with a percentile
  interval from a patient-cluster bootstrap, Brier score of sigmoid(logit);
* ``metrics_regression.csv``: regression outputs: R^2 with the same kind of interval;
* ``high_risk.csv``: event rate among the top shares of predicted risk versus the rest;
* ``calibration.csv`` and ``calibration.png``: deciles of predicted probability;
* ``roc_scd.png``: ROC curves of the SCD horizons; ``metrics.md``: a readable summary.

Outputs with one class only (or no labelled rows) are skipped and listed with the reason.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from scdecg import evaluation as ev
from scdecg.cli import add_runtime_options, build_parser
from scdecg.constants import COVARIATE_DF, DEFAULT_MODEL_NAMES, MODEL_DIRS, SCD_HORIZONS
from scdecg.errors import PipelineError, script_main
from scdecg.io import read_feather, read_json, write_csv, write_text

MODEL_NAME = ""                       # empty: the default model of the kind (see --beat)
BEAT = False
PREDICTIONS_DIR = "predictions"
SPLIT = ""                            # empty: every row of the predictions file
OUTPUTS: list[str] = []               # empty: every <output>_hat column of the predictions
N_BOOT = 1000
CI_LEVEL = 0.95
SEED = 42
HIGH_RISK_SHARES = [0.022, 0.10]      # 2.2%: the paper's high-risk share of the lockbox
HIGH_RISK_OUTPUTS = ["scd1", "scd2"]
ROC_OUTPUTS = list(SCD_HORIZONS)
CALIBRATION_OUTPUTS = list(SCD_HORIZONS)
CALIBRATION_BINS = 10

HELP = {
    "model_name": f"model to evaluate (default {DEFAULT_MODEL_NAMES['ecg']}, or "
                  f"{DEFAULT_MODEL_NAMES['beat']} with --beat)",
    "split": "evaluate only the prediction rows of this split (train, val, lockbox)",
    "beat": "evaluate a beat model from its per-ECG mean logits (predictions_by_ecg.feather)",
    "outputs": "outputs to evaluate (default: every <output>_hat column)",
    "n_boot": "patient-cluster bootstrap replicates",
    "ci_level": "confidence level of the percentile intervals",
    "high_risk_shares": "top shares of predicted risk summarised in high_risk.csv",
}


def prediction_file(args) -> tuple[str, Path]:
    name = args.model_name or DEFAULT_MODEL_NAMES["beat" if args.beat else "ecg"]
    folder = Path(args.predictions_dir) / f"{name}_1"
    path = folder / ("predictions_by_ecg.feather" if args.beat else "predictions.feather")
    if not path.exists():
        make = f"python 01_Predictive_Model/x03_predict.py --model-name {name}"
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
    config = Path(MODEL_DIRS["beat" if beat else "ecg"]) / name / "config.json"
    if not config.exists():
        print(f"[x05] {config} not found: output types inferred from the labels (0/1 -> "
              "classification)")
        return {}
    return ev.declared_output_kinds(read_json(config))


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


@script_main
def main(argv=None):
    parser = build_parser(
        __doc__, help=HELP, model_name=MODEL_NAME, beat=BEAT, predictions_dir=PREDICTIONS_DIR,
        split=SPLIT, outputs=OUTPUTS, n_boot=N_BOOT, ci_level=CI_LEVEL, high_risk_shares=HIGH_RISK_SHARES,
        high_risk_outputs=HIGH_RISK_OUTPUTS, roc_outputs=ROC_OUTPUTS,
        calibration_outputs=CALIBRATION_OUTPUTS, calibration_bins=CALIBRATION_BINS)
    add_runtime_options(parser, profile=None, device=None, seed=SEED)
    args = parser.parse_args(argv)
    if args.n_boot < 1 or not 0.0 < args.ci_level < 1.0:
        raise PipelineError(f"--n-boot {args.n_boot} / --ci-level {args.ci_level}: need "
                            "n_boot >= 1 and 0 < ci_level < 1")

    name, source = prediction_file(args)
    predictions = ev.select_split(read_feather(source, columns=["studyId"]), args.split, source)
    covariates = read_feather(COVARIATE_DF, columns=["studyId", "ptId", "group"], step="x02")
    outputs = choose_outputs(args.outputs, predictions, covariates.columns, source)
    frame = ev.join_predictions(predictions, covariates, outputs, source, COVARIATE_DF)
    kinds = ev.output_kinds(frame, outputs, declared_kinds(name, args.beat))
    print(f"[x05] {source}: {len(frame)} ECGs of {frame['ptId'].nunique()} patients, "
          f"{len(outputs)} outputs; {args.n_boot} patient-cluster bootstrap replicates")
    in_sample = int(frame["in_sample"].astype(bool).sum()) if "in_sample" in frame else 0
    if in_sample:
        print(f"[x05] warning: {in_sample} of {len(frame)} ECGs are training (in-sample) "
              "predictions, so their metrics are optimistic; use --split val for held-out ones")

    metrics, regression, skipped = ev.evaluate_outputs(frame, kinds, args.n_boot, args.seed,
                                                       args.ci_level)
    evaluated = list(metrics["output"])
    high_risk, calibration = per_output_tables(frame, evaluated, args)

    folder = source.parent
    write_csv(metrics, folder / "metrics.csv")
    write_csv(regression, folder / "metrics_regression.csv")
    write_csv(high_risk, folder / "high_risk.csv")
    write_csv(calibration, folder / "calibration.csv")
    roc_outputs = [o for o in args.roc_outputs if o in evaluated]
    if roc_outputs:
        ev.plot_roc(frame, metrics, roc_outputs, folder / "roc_scd.png", title=f"ROC, {name}")
    else:  # no stale figure from an earlier run
        (folder / "roc_scd.png").unlink(missing_ok=True)
    if not calibration.empty:
        ev.plot_calibration(calibration, folder / "calibration.png", title=f"Calibration, {name}")
    else:
        (folder / "calibration.png").unlink(missing_ok=True)
    facts = {"predictions": source, "labels": COVARIATE_DF, "ECGs": len(frame),
             "patients": frame["ptId"].nunique(), "ECGs by group": count_by(frame, "group"),
             "ECGs by split": count_by(frame, "split"), "in-sample ECGs": in_sample,
             "bootstrap": f"{args.n_boot} patient-cluster replicates, seed {args.seed}, "
                          f"{args.ci_level:.0%} percentile intervals"}
    write_text(ev.metrics_markdown(f"Evaluation of {name}", facts, metrics, regression,
                                   high_risk, skipped), folder / "metrics.md")

    for row in metrics.itertuples():
        print(f"  {row.output:<12} n={row.n:<6} n_pos={row.n_pos:<5} AUC {row.auc:.3f} "
              f"({row.auc_lo:.3f}-{row.auc_hi:.3f})")
    for row in regression.itertuples():
        print(f"  {row.output:<12} n={row.n:<6} R2 {row.r2:.3f} ({row.r2_lo:.3f}-{row.r2_hi:.3f})")
    if len(skipped):
        print(skipped.summary(total=len(outputs)))
        for row in skipped.rows:
            print(f"    {row['record']}: {row['reason']}")
    print(f"[x05] wrote metrics.csv, metrics_regression.csv, high_risk.csv, calibration.csv, "
          f"metrics.md{', roc_scd.png' if roc_outputs else ''}"
          f"{', calibration.png' if not calibration.empty else ''} to {folder}")


if __name__ == "__main__":
    raise SystemExit(main())
