"""Train the single-beat risk model (ResNet over 300-sample beats, no covariates) on ecg_beats/.

Every beat file of each selected ECG is one sample carrying its ECG's labels. Outputs, in the
published order: the 13 classification heads of the 10-s SCD model, age (regression), female
(classification) and eight ECG measurements, the regressions z-scored (statistics from the
training beats, reused for validation and prediction). Split by patient: 30% train, 20% validation, 50% untouched
(seed 42). Writes ``modelfits_beat/<model-name>/`` (best.pt, config.json, split.csv,
excluded.csv, checkpoint.pt; ``--resume`` continues it). Runs under ``torchrun`` unchanged.
"""
from __future__ import annotations

from scdecg import workspace
from scdecg.cli import script_parser
from scdecg.constants import BEAT_LEN
from scdecg.errors import script_main
from scdecg.training.runs import train_model

# Published (paper profile) values.
MODEL_NAME = "ntuh_scd_beat_model_demo"
# Head order (published): 13 classification outputs, age, female, then the ECG measurements.
OUTPUTS = ["scd3mo", "scd6mo", "scd1", "scd2", "dead3mo", "dead6mo", "dead1", "dead2",
           "ICD_VT1", "ICD_VF1", "Phi_VT1", "TROPT1", "Acute_MI1", "age", "female",
           "qrsDuration", "qtInterval", "qrsFrontAxis", "qrsHorizAxis",
           "rrInterval", "pDuration", "atrialrate", "meanqtc"]
# Which of OUTPUTS are regression targets (z-scored with training statistics, MSE loss).
REGRESSION = ["age", "qrsDuration", "qtInterval", "qrsFrontAxis", "qrsHorizAxis",
              "rrInterval", "pDuration", "atrialrate", "meanqtc"]
REGRESSION_WEIGHT = 10.0       # loss = BCE + REGRESSION_WEIGHT x MSE (published)
BCE_ON_REGRESSION = False      # True: the published BCE also ran over the regressions
BEATS_DIR = workspace.BEATS_DIR  # x04's beats
LENGTH = BEAT_LEN
CHANNELS = 64                  # explicit (the published code got 64 from a hidden default)
N_BLOCKS = 32
REP_MP = 5
DROPOUT = 0.5
CUMULATIVE = True
HAZARD = "softplus"            # its non-negative hazards; "relu" is the published layer
LR = 1e-4
BATCH_SIZE = 256
WEIGHT_DECAY = 1e-5
MIN_EPOCHS = 40
MAX_EPOCHS = 1000
PATIENCE = 10
GAMMA = 0.5
LR_REDUCE_INTERVAL = 10
ZERO_BASED_EPOCHS = True       # published epoch count: first lr step after 11 epochs, >= 41 epochs
VAL_LOSS = "pooled"            # "batch_mean": the published mean of per-batch losses (DEVIATIONS.md)
TRAIN_FRAC = 0.3
VAL_FRAC = 0.2
SPLIT_SEED = 42
SEED = 0
PREPROCESSING = ["zero_mode"]
EVAL_BATCH_SIZE = 1024
MEMORY_LIMIT_GB = 4.0
AMP = True
MONITOR = "val_loss"           # selects the best epoch: val_loss, auc_<output>, loss_<output>
RESUME = False                 # continue from the model folder's checkpoint.pt

PROFILES = {
    "paper": {},
    # demo: with ~400 training patients the 10x-weighted regressions drown the SCD heads
    "demo": {"channels": 8, "n_blocks": 6, "rep_mp": 1, "dropout": 0.1, "lr": 2e-3,
             "batch_size": 64, "weight_decay": 1e-4, "min_epochs": 10, "max_epochs": 10,
             "patience": 3, "lr_reduce_interval": 4, "regression_weight": 0.5},
}

HELP = {
    "hazard": "softplus, or relu (published: can die, making every SCD horizon one value)",
    "outputs": "output columns of covariate_df.feather, in head order",
    "regression": "outputs trained as z-scored regressions (the rest are 0/1 classification)",
    "beats_dir": "folder of <studyId>/<studyId>_<k>.npy beat files",
    "zero_based_epochs": "count epochs from 0 as the published loop did: the first lr step "
                         "comes after interval + 1 epochs and at least min-epochs + 1 epochs run",
    "val_loss": "pooled: one masked loss over the validation set; batch_mean: the published "
                "mean of per-batch losses (batches of --batch-size)",
    "bce_on_regression": "the published loss: BCE over the z-scored regression outputs too "
                         "(besides their MSE)",
    "resume": "continue from the model folder's checkpoint.pt",
}


@script_main
def main(argv=None):
    args = script_parser(__doc__, globals(), argv, profiles=PROFILES, help=HELP).parse_args(argv)
    train_model(args, "beat", regression_outputs=args.regression)


if __name__ == "__main__":
    raise SystemExit(main())
