"""Predict with a trained risk model: logits per ECG (10-s model) or per beat (``--beat``).

Rebuilds the model from ``modelfits_ecg/<model_name>/`` (or ``modelfits_beat/<model_name>/``
with ``--beat``), loads its best weights and predicts the validation patients of the split
stored with the model (``--in_sample``: its training patients; ``--part`` also reaches the
lockbox or every patient). Covariates and regression targets use the training statistics
stored in config.json. Writes ``predictions/<model_name>_1/predictions.feather``
(``predictions_in_sample.feather`` for the training patients): studyId (+ filename, the beat
file), one ``<output>_hat`` column per output (logits for classification outputs, values in
the original units for regression outputs), split and in_sample. Beat predictions are also
averaged per ECG (mean logit) into ``predictions_by_ecg.feather``
(``predictions_in_sample_by_ecg.feather``).

The published command lines run as written, e.g.
``x03_predict.py --model_name ntuh_scd_beat_model_demo --covariate_df_path covariate_df.feather
--ecg_dir ecg_beats --beat``. Signals stream from disk (``--read-workers`` threads read
``--prefetch`` batches ahead of the model), so memory stays fixed whatever the cohort size.
``--split TRAIN VAL`` (published: the split fractions) only checks the fractions against the
model's stored split and refuses a mismatch: the split itself is always the one saved with the
model.
"""
from __future__ import annotations

import sys

from scdecg.cli import add_runtime_options, build_parser
from scdecg.errors import script_main
from scdecg.training.runs import PARTS, predict_model
from scdecg.workspace import COVARIATE_DF, DEFAULT_MODEL_NAMES, GAIN_REPORT as _GAIN_REPORT
from scdecg.workspace import TEN_SEC_DIR

MODEL_NAME = ""                # empty: the default model of the kind (ntuh_scd_model_demo; ntuh_scd_beat_model_demo with --beat)
COVARIATE_DF_PATH = COVARIATE_DF
ECG_DIR = ""                   # empty: 10_sec_ecgs, or the beat folder the beat model was trained on
BEAT = False
IN_SAMPLE = False
PART = ""                      # empty: val (train with --in_sample)
SPLIT = None                   # published --split TRAIN VAL fractions: checked against the model
BATCH_SIZE = 256
READ_WORKERS = 2               # threads reading ECG files ahead of the model (0: none)
PREFETCH = 4                   # batches read ahead: memory is about (PREFETCH + 2) batches of signals
GAIN_REPORT = _GAIN_REPORT     # 10-s models: ECGs x03 flagged are not predicted ("": predict all)

HELP = {
    "model_name": (f"model folder name (default {DEFAULT_MODEL_NAMES['ecg']}, or "
                   f"{DEFAULT_MODEL_NAMES['beat']} with --beat)"),
    "covariate_df_path": "cohort table with the covariates (and scaling_factor)",
    "ecg_dir": (f"folder of the ECG files (default {TEN_SEC_DIR}, or with --beat the beat "
                "folder the model was trained on)"),
    "beat": "predict single beats with a modelfits_beat/ model",
    "in_sample": "predict the training patients, to predictions_in_sample.feather",
    "read_workers": "threads that read signal files while the model predicts (0: read in turn)",
    "prefetch": "batches read ahead of the model (bounds memory, whatever the cohort size)",
    "gain_report": ("10-s models: x03's report; ECGs it failed or left unresolved are not "
                    "predicted ('' to predict every ECG, as published)"),
    "part": (f"part of the model's stored split to predict: {', '.join(PARTS)} (default val; "
             "train is the same as --in_sample; all includes the in-sample training rows)"),
}
SPELLINGS = {"model_name": "--model_name", "covariate_df_path": "--covariate_df_path",
             "ecg_dir": "--ecg_dir", "in_sample": "--in_sample"}


@script_main
def main(argv=None):
    parser = build_parser(__doc__, help=HELP, spellings=SPELLINGS, model_name=MODEL_NAME,
                          covariate_df_path=COVARIATE_DF_PATH, ecg_dir=ECG_DIR, beat=BEAT,
                          in_sample=IN_SAMPLE, part=PART, batch_size=BATCH_SIZE,
                          read_workers=READ_WORKERS, prefetch=PREFETCH,
                          gain_report=GAIN_REPORT)
    parser.add_argument("--split", nargs=2, type=float, metavar=("TRAIN", "VAL"), default=SPLIT,
                        help="the split fractions the model was trained with (as published, "
                             "e.g. 0.3 0.3); a mismatch with the stored split is refused")
    add_runtime_options(parser, profile=None)
    argv = sys.argv[1:] if argv is None else list(argv)
    for before, word in zip(argv, argv[1:]):
        if before == "--split" and word in PARTS:  # this project's former spelling
            parser.error(f"--split takes the published TRAIN VAL fractions (e.g. 0.3 0.3); "
                         f"to predict the {word} part use --part {word}")
    args = parser.parse_args(argv)
    if args.part and args.part not in PARTS:
        parser.error(f"--part {args.part}: choose one of {', '.join(PARTS)}")
    if args.in_sample and args.part not in ("", "train"):
        parser.error(f"--in_sample predicts the training patients; it cannot be combined "
                     f"with --part {args.part}")
    part = args.part or ("train" if args.in_sample else "val")
    kind = "beat" if args.beat else "ecg"
    name = args.model_name or DEFAULT_MODEL_NAMES[kind]
    predict_model(kind, name, part, args.device, args.batch_size, args.read_workers, args.prefetch,
                  covariate_df=args.covariate_df_path, ecg_dir=args.ecg_dir,
                  split_fractions=args.split, gain_report=args.gain_report)


if __name__ == "__main__":
    raise SystemExit(main())
