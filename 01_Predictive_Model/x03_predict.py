"""Predict with a trained risk model: logits per ECG (10-s model) or per beat (``--beat``).

Rebuilds the model from ``modelfits_ecg/<model-name>/`` (or ``modelfits_beat/<model-name>/``
with ``--beat``), loads its best weights and predicts the patients of one part of its split
(``--split val`` by default; ``train`` and ``all`` are in-sample, flagged in the output).
Covariates and regression targets use the training statistics stored in config.json.
Writes ``predictions/<model-name>_1/predictions.feather``: studyId (+ beat_file), one
``<output>_hat`` column per output (logits for classification outputs, values in the
original units for regression outputs), split and in_sample. Beat predictions are also
averaged per ECG (mean logit) into ``predictions_by_ecg.feather``.
"""
from __future__ import annotations

from scdecg.cli import add_runtime_options, build_parser
from scdecg.constants import DEFAULT_MODEL_NAMES
from scdecg.errors import script_main
from scdecg.training.runs import predict_model

MODEL_NAME = ""                # empty: the default model of the kind (ntuh_scd_model_demo; ntuh_scd_beat_model_demo with --beat)
BEAT = False
SPLIT = "val"
BATCH_SIZE = 256
MEMORY_LIMIT_GB = 4.0

HELP = {
    "model_name": (f"model folder name (default {DEFAULT_MODEL_NAMES['ecg']}, or "
                   f"{DEFAULT_MODEL_NAMES['beat']} with --beat)"),
    "beat": "predict single beats with a modelfits_beat/ model",
    "split": "train, val, lockbox or all (train and all are in-sample)",
}


@script_main
def main(argv=None):
    parser = build_parser(__doc__, help=HELP, model_name=MODEL_NAME, beat=BEAT, split=SPLIT,
                          batch_size=BATCH_SIZE, memory_limit_gb=MEMORY_LIMIT_GB)
    add_runtime_options(parser, profile=None)
    args = parser.parse_args(argv)
    if args.split not in ("train", "val", "lockbox", "all"):
        parser.error(f"--split {args.split}: choose train, val, lockbox or all")
    kind = "beat" if args.beat else "ecg"
    name = args.model_name or DEFAULT_MODEL_NAMES[kind]
    predict_model(kind, name, args.split, args.device,
                  args.batch_size, args.memory_limit_gb)


if __name__ == "__main__":
    raise SystemExit(main())
