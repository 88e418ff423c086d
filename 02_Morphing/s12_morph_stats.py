"""Summarise what the morphs changed, from t0 (reconstruction) to final (morph).

Runs directly after ``s10_morph_ecgs.py``: when ``morphing_outputs/morph-stats.feather`` is
missing or stale (older than the morph run, measured on other morph files, with another beat
model or by an older version), it first measures the morphs as ``s11_prepare_morph_stats.py``
does. Then writes ``morph-summary.csv`` (waveform features -- each lead's min and max in mV,
the aVL slope features, the delineation points in ms from R -- ranked by the standardized
change of the patients' mean changes, with a Wilcoxon signed-rank test over patients),
``morph-outputs.csv`` (the beat model's outputs, apart), ``morph-summary.md`` (both, with n
beats and patients), ``morph-lead-change.csv`` (change per lead, in mV and relative to the
lead's amplitude, in the QRS and over the whole beat) and figures: example beats (12-lead
reconstruction vs morph, mV), change per lead with the signed mean difference waveform, and the
predicted risk along the trajectories.

Only beats that were morphed enter: those whose morph succeeded and took at least one step.
A beat whose reconstruction already reached the stop threshold took none; it is counted, not
summarised.
"""
from __future__ import annotations

from pathlib import Path

from scdecg.cli import add_runtime_options, build_parser, resolve_device
from scdecg.errors import script_main
from scdecg.features import LOWPASS_HZ as _LOWPASS_HZ
from scdecg.morph_stats import (describe_failures, measure_morphs, stats_out_of_date,
                                summarise_morphs)
from scdecg.workspace import MORPH_DIR

OUTPUT_DIR = MORPH_DIR
BEAT_MODEL = ""     # "": the beat model named in morphing_outputs/morph_run.json
DELINEATE = True    # when measuring (s11): delineate every lead of every beat
N_JOBS = 1          # when measuring (s11): processes for the delineation; 0 = every core
LOWPASS_HZ = _LOWPASS_HZ  # x06's zero-phase low-pass on aVL before its slope features; 0: none
N_EXAMPLES = 4      # example beats in morph-examples.png
SEED = 0


@script_main
def main(argv=None):
    parser = build_parser(__doc__, output_dir=OUTPUT_DIR, beat_model=BEAT_MODEL,
                          delineate=DELINEATE, n_jobs=N_JOBS, lowpass_hz=LOWPASS_HZ,
                          n_examples=N_EXAMPLES, seed=SEED)
    add_runtime_options(parser, profile=None)
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    stale = stats_out_of_date(out, args.beat_model, args.delineate, args.lowpass_hz)  # no morph run: names s10
    if stale:
        print(f"[s12] {stale}: measuring the morphs first (s11)")
        long, failures = measure_morphs(out, args.beat_model, resolve_device(args.device),
                                        args.delineate, args.n_jobs,
                                    lowpass_hz=args.lowpass_hz)
        print(f"[s11] {long['beat_id'].nunique()} beats x {long['stage'].nunique()} stages; "
              f"{len(failures)} failed measurement(s)" + describe_failures(failures))
    result = summarise_morphs(out, args.beat_model, args.n_examples, args.seed)
    outputs = result["outputs"].set_index("feature")
    waveform = result["summary"].set_index("feature")
    leads = result["leads"]

    def top(rank: str) -> str:
        return ", ".join(leads.sort_values([rank, "lead"])["lead"].head(4))

    def shares(r):
        return f"rose in {r['share_rose']:.1%}, fell in {r['share_fell']:.1%} of beats"

    print(f"[s12] {result['who']} ({result['n_unmoved']} took no step, left out): "
          f"yhat_scd1 {shares(outputs.loc['yhat_scd1'])}; aVL_rs_diff "
          f"{shares(waveform.loc['aVL_rs_diff'])} (rank {waveform.at['aVL_rs_diff', 'rank']} "
          f"of {len(waveform)} waveform features, patient-level Wilcoxon p "
          f"{waveform.at['aVL_rs_diff', 'wilcoxon_p']:.2g}); most changed leads relative to "
          f"amplitude, in the QRS: {top('rank_qrs')}; over the whole beat: "
          f"{top('rank_relative')}; (mV): {top('rank')}; wrote {out}")


if __name__ == "__main__":
    raise SystemExit(main())
