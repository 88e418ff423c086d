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

from scdecg import evaluation as ev
from scdecg.cli import script_parser
from scdecg.constants import SCD_HORIZONS
from scdecg.errors import script_main
from scdecg.training.kinds import BEAT_MODEL, ECG_MODEL
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


@script_main
def main(argv=None):
    args = script_parser(__doc__, globals(), argv, help=HELP, device=False).parse_args(argv)
    settings = ev.EvaluationSettings(
        n_boot=args.n_boot, ci_level=args.ci_level, seed=args.seed,
        high_risk_shares=args.high_risk_shares, high_risk_outputs=args.high_risk_outputs,
        roc_outputs=args.roc_outputs, calibration_outputs=args.calibration_outputs,
        calibration_bins=args.calibration_bins, baselines=args.baselines,
        baseline_outcome=args.baseline_outcome)
    ev.evaluate_model(args.model_name, args.beat, predictions_dir=args.predictions_dir,
                      part=args.part, outputs=args.outputs, settings=settings)


if __name__ == "__main__":
    raise SystemExit(main())
