"""Train the 10-s ECG risk model (ResNet + age/sex head) on 10_sec_ecgs/.

Runs (``--run``): ``scd`` (default; the paper's SCD model), ``death-only`` (the conditional
model, trained only on patients with dead1 == 1: the cohort's split restricted to them, so it can
score every modelling ECG without having seen a validation or lockbox patient; its covariate
statistics come from its own training set) and ``low-ef`` (the published low-EF model: output
``low_ef`` only, no covariates, 12 blocks, lr 1e-4 halved every 20 epochs, at least 80 epochs).
The three are the members of the stacking ensemble (x04_train_ensemble.py).

Rows: ``include_modelling`` ECGs of covariate_df.feather, split by patient into 30% train,
30% validation and 40% untouched lockbox (seed 42). Writes ``modelfits_ecg/<model-name>/``:
best.pt, config.json, split.csv, excluded.csv and checkpoint.pt (``--resume`` continues it).
Runs unchanged under ``torchrun --nproc_per_node=N`` (DistributedDataParallel).
"""
from __future__ import annotations

from scdecg.cli import script_parser
from scdecg.errors import script_main
from scdecg.training.runs import train_model
from scdecg.workspace import GAIN_REPORT as _GAIN_REPORT


# Published (paper profile) values.
MODEL_NAME = "ntuh_scd_model_demo"
OUTPUTS = ["scd3mo", "scd6mo", "scd1", "scd2", "dead3mo", "dead6mo", "dead1", "dead2",
           "ICD_VT1", "ICD_VF1", "Phi_VT1", "TROPT1", "Acute_MI1",
           "scd3mo_6mo", "scd6mo_1", "scd1_2"]
COVARIATES = ["age", "female"]
SUBSET = ""                    # only rows where this column == 1 ("" = all modelling rows)
LENGTH = 5000                  # samples fed to the model (random window when longer)
CHANNELS = 128
N_BLOCKS = 32
REP_MP = 4                     # halve the length every REP_MP blocks
DROPOUT = 0.4
CUMULATIVE = True              # monotone SCD-horizon layer on the output logits
HAZARD = "softplus"            # its non-negative hazards; "relu" is the published layer
LR = 1e-5
BATCH_SIZE = 256
WEIGHT_DECAY = 0.0
MIN_EPOCHS = 40
MAX_EPOCHS = 1000
PATIENCE = 10
GAMMA = 0.5
LR_REDUCE_INTERVAL = 10
ZERO_BASED_EPOCHS = True       # published epoch count: first lr step after 11 epochs, >= 41 epochs
VAL_LOSS = "pooled"            # "batch_mean": the published mean of per-batch losses (DEVIATIONS.md)
TRAIN_FRAC = 0.3
VAL_FRAC = 0.3                 # the remaining 40% is the untouched lockbox
SPLIT_SEED = 42
SEED = 0
PREPROCESSING = ["zero_mode"]
GAIN_REPORT = _GAIN_REPORT     # ECGs x03 failed or left unresolved are left out ("": use all)
EVAL_BATCH_SIZE = 256
MEMORY_LIMIT_GB = 4.0          # hold signals in memory up to this size, else read per batch
AMP = True                     # mixed precision (CUDA only)
MONITOR = "val_loss"           # selects the best epoch: val_loss, auc_<output>, loss_<output>
RESUME = False                 # continue from the model folder's checkpoint.pt

RUNS = {
    "scd": {},
    "death-only": {"model_name": "ntuh_scd_model_demo_death_only", "subset": "dead1",
                   "outputs": ["scd3mo", "scd6mo", "scd1", "scd2", "TROPT1", "Acute_MI1",
                               "scd3mo_6mo", "scd6mo_1", "scd1_2"]},
    "low-ef": {"model_name": "ntuh_scd_model_demo_low_ef", "outputs": ["low_ef"], "covariates": [],
               "n_blocks": 12, "lr": 1e-4, "min_epochs": 80, "lr_reduce_interval": 20},
}
# Small enough for a 2-core CPU in a few minutes on the demo cohort; keeps every output.
PROFILES = {
    "paper": {},
    "demo": {"channels": 8, "n_blocks": 10, "rep_mp": 1, "dropout": 0.1, "lr": 2e-3,
             "batch_size": 32, "weight_decay": 1e-4, "min_epochs": 10, "max_epochs": 10,
             "patience": 3, "lr_reduce_interval": 4},
}

HELP = {
    "hazard": "softplus, or relu (published: can die, making every SCD horizon one value)",
    "outputs": "output columns of covariate_df.feather, in head order",
    "subset": "train only on rows where this 0/1 column is 1",
    "lr_reduce_interval": "multiply the learning rate by --gamma every this many epochs",
    "zero_based_epochs": "count epochs from 0 as the published loop did: the first lr step "
                         "comes after interval + 1 epochs and at least min-epochs + 1 epochs run",
    "val_loss": "pooled: one masked loss over the validation set; batch_mean: the published "
                "mean of per-batch losses (batches of --batch-size)",
    "preprocessing": "steps applied to each signal, in order: zero_mode, zero_median, "
                     "published_tail_cut (first: the published loader's zeroed last 500 samples)",
    "memory_limit_gb": "load all signals into memory when they fit under this size",
    "gain_report": ("x03's report: ECGs it failed or left unresolved are left out of training "
                    "('' to use every ECG, as published)"),
    "resume": "continue from the model folder's checkpoint.pt",
}


@script_main
def main(argv=None):
    args = script_parser(__doc__, globals(), argv, profiles=PROFILES, runs=RUNS,
                         help=HELP).parse_args(argv)
    train_model(args, "ecg", subset=args.subset or None)


if __name__ == "__main__":
    raise SystemExit(main())
