"""Measure every morphed beat at each stage: raw (real), t0 (reconstruction), final (morph).

Per beat and stage: every beat-model output (probabilities for classification outputs), each
lead's min and max, a neurokit2 delineation of each lead (P/Q/R/S/T onsets, peaks, offsets as
indices relative to the beat; the beat is tiled end to end and the middle copy read), and the
aVL R->S slope features. Writes ``morphing_outputs/morph-stats.feather`` (one row per
beat x stage) and ``morph-stats-failures.csv`` (each measurement that failed, with a reason).
"""
from __future__ import annotations

from pathlib import Path

from scdecg.cli import add_runtime_options, build_parser, resolve_device
from scdecg.errors import script_main
from scdecg.io import read_json, write_csv, write_feather
from scdecg.morph_stats import stage_features
from scdecg.morphing import load_beat_model, read_morph_outputs

OUTPUT_DIR = "morphing_outputs"
BEAT_MODEL = ""     # "": the beat model named in morphing_outputs/morph_run.json
DELINEATE = True    # neurokit2 delineation of 12 leads x 3 stages per beat (the slow part)
MAX_DELINEATE = 0   # delineate only the first this many beats (0 = all; demo profile: 40)
DEMO = {"max_delineate": 40}
N_JOBS = 0          # processes for the delineation; 0 = every core


@script_main
def main(argv=None):
    parser = build_parser(__doc__, output_dir=OUTPUT_DIR, beat_model=BEAT_MODEL,
                          delineate=DELINEATE, max_delineate=MAX_DELINEATE, n_jobs=N_JOBS)
    add_runtime_options(parser)
    args = parser.parse_args(argv)
    if args.profile == "demo":  # demo values unless given on the command line
        parser.set_defaults(**DEMO)
        args = parser.parse_args(argv)
    device = resolve_device(args.device)
    out = Path(args.output_dir)
    table, stages = read_morph_outputs(out)
    beat_folder = Path(args.beat_model or read_json(out / "morph_run.json")["beat_model"])
    risk, beat_config = load_beat_model(beat_folder, device)
    outputs = {stage: risk.predict(beats, device) for stage, beats in stages.items()}
    long, failures = stage_features(stages, outputs, risk.outputs, risk.output_types,
                                    beat_config.get("target_stats"), delineate=args.delineate,
                                    max_delineate=args.max_delineate, n_jobs=args.n_jobs)
    meta = table[["beat_id", "status", "source_file", "studyId", "ptId", "steps", "stopped"]]
    long = meta.merge(long, on="beat_id", how="right", validate="one_to_many")
    write_feather(long, out / "morph-stats.feather")
    write_csv(failures, out / "morph-stats-failures.csv")
    counts = failures.groupby(["step", "stage"]).size() if len(failures) else {}
    print(f"[s11] {len(table)} beats x {len(stages)} stages, {long.shape[1]} columns; "
          f"{len(failures)} failed measurement(s)"
          + "".join(f"\n  {n:>6}  {step} ({stage})" for (step, stage), n in dict(counts).items()))


if __name__ == "__main__":
    raise SystemExit(main())
