"""Stack three 10-s models into the published scd1 ensemble, cross-fitted on validation patients.

Reads the validation predictions (``predictions/<model>_1/predictions.feather``, written by
``x03_predict.py``) of the SCD model (scd1_hat as scd1_hat0, scd2_hat, scd3mo_hat, scd6mo_hat,
TROPT1_hat, Acute_MI1_hat), the death-only model (scd1_hat as cond_scd1_hat) and the low-EF
model (low_ef_hat), adds age and female from covariate_df.feather, splits the validation
patients in two halves (seed 42), fits on each half a logistic regression of scd1 on the ten
inputs with standard errors clustered by patient, and predicts each half with the other
half's fit. Writes ``predictions/scd1_ensemble_model/``: predictions.feather (scd1_hat_ensemble
is the cross-fitted probability), coefficients.csv and coefficients.json (clustered SEs;
terms that cannot be estimated are listed with the reason), metrics.csv (AUC of the ensemble
and of each input on the same ECGs) and risk_histogram.png. When the members also predicted
the lockbox patients (``x03_predict.py --part all``), the regression is fitted once on all
validation patients and scores the lockbox: the same files with ``_lockbox`` (an addition:
the published step stopped at the validation AUC).
"""
from __future__ import annotations

from pathlib import Path

from scdecg import ensemble as en
from scdecg.cli import add_runtime_options, build_parser
from scdecg.errors import script_main
from scdecg.workspace import COVARIATE_DF, DEFAULT_MODEL_NAMES, ENSEMBLE_DIR
from scdecg.workspace import PREDICTIONS_DIR as PRED_DIR

SCD_MODEL = DEFAULT_MODEL_NAMES["ecg"]
DEATH_ONLY_MODEL = f"{SCD_MODEL}_death_only"     # x01 --run death-only
LOW_EF_MODEL = f"{SCD_MODEL}_low_ef"             # x01 --run low-ef
PREDICTIONS_DIR = PRED_DIR
OUTPUT_NAME = ENSEMBLE_DIR
OUTCOME = en.OUTCOME
COVARIATES = list(en.COVARIATES)
SPLIT = "val"                 # the members' split the ensemble is fitted and cross-fitted on
HOLDOUT = "lockbox"           # also: fit on all of SPLIT, score this split ("" = skip)
HALF_SEED = 42                # patient halves for cross-fitting
N_BOOT = 1000
CI_LEVEL = 0.95
SEED = 42                     # bootstrap

HELP = {
    "output_name": "folder under --predictions-dir for the ensemble's outputs",
    "split": "member prediction rows to stack (the published step uses the validation patients)",
    "half_seed": "seed of the patient halves used for cross-fitting",
    "holdout": "also fit once on all validation patients and score this split of the members' "
               "predictions (needs x03_predict.py --part all); empty: skip",
    "n_boot": "patient-cluster bootstrap replicates for the AUC intervals",
}


@script_main
def main(argv=None):
    parser = build_parser(__doc__, help=HELP, scd_model=SCD_MODEL,
                          death_only_model=DEATH_ONLY_MODEL, low_ef_model=LOW_EF_MODEL,
                          predictions_dir=PREDICTIONS_DIR, output_name=OUTPUT_NAME,
                          outcome=OUTCOME, covariates=COVARIATES, split=SPLIT, holdout=HOLDOUT,
                          half_seed=HALF_SEED, n_boot=N_BOOT, ci_level=CI_LEVEL)
    add_runtime_options(parser, profile=None, device=None, seed=SEED)
    args = parser.parse_args(argv)
    en.run_ensemble(Path(args.predictions_dir), args.output_name,
                    en.members(args.scd_model, args.death_only_model, args.low_ef_model),
                    COVARIATE_DF, args.outcome, args.covariates, args.split, args.half_seed,
                    args.n_boot, args.seed, args.ci_level, args.holdout)


if __name__ == "__main__":
    raise SystemExit(main())
