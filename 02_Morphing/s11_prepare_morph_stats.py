"""Measure every morphed beat at each stage: raw (real), t0 (reconstruction), final (morph).

Per beat and stage: every beat-model output (``yhat_<output>``: the logit of a classification
output, as published, with its probability as ``p_<output>``; a regression output on its own
scale), each lead's min and max (mV), a delineation of each lead (P/Q/R/S/T onsets, peaks,
offsets as sample indices relative to the beat, 500 Hz; ``scdecg.delineation``) and the aVL
R->S slope features. Writes ``morphing_outputs/morph-stats.feather`` (one row per beat x
stage), ``morph-stats-failures.csv`` (each measurement that failed, with a reason) and
``morph-stats.json`` (settings and checksums of the morph files measured).

``s12_morph_stats.py`` runs this step itself when its output is missing or stale; run it on
its own to remeasure (another ``--beat-model``, ``--no-delineate``).
"""
from __future__ import annotations

from pathlib import Path

from scdecg.cli import add_runtime_options, build_parser, resolve_device
from scdecg.errors import script_main
from scdecg.features import LOWPASS_HZ as _LOWPASS_HZ
from scdecg.morph_stats import describe_failures, measure_morphs
from scdecg.workspace import MORPH_DIR

OUTPUT_DIR = MORPH_DIR
BEAT_MODEL = ""     # "": the beat model named in morphing_outputs/morph_run.json
DELINEATE = True    # delineate 12 leads x 3 stages of every beat (about 10 ms a beat)
N_JOBS = 1          # processes for the delineation; 0 = every core
LOWPASS_HZ = _LOWPASS_HZ  # x06's zero-phase low-pass on aVL before its slope features; 0: none


@script_main
def main(argv=None):
    parser = build_parser(__doc__, output_dir=OUTPUT_DIR, beat_model=BEAT_MODEL,
                          delineate=DELINEATE, n_jobs=N_JOBS, lowpass_hz=LOWPASS_HZ)
    add_runtime_options(parser)
    args = parser.parse_args(argv)
    long, failures = measure_morphs(Path(args.output_dir), args.beat_model,
                                    resolve_device(args.device), args.delineate, args.n_jobs,
                                    lowpass_hz=args.lowpass_hz)
    print(f"[s11] {long['beat_id'].nunique()} beats x {long['stage'].nunique()} stages, "
          f"{long.shape[1]} columns; {len(failures)} failed measurement(s)"
          + describe_failures(failures))


if __name__ == "__main__":
    raise SystemExit(main())
