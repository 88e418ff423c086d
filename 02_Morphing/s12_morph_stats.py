"""Summarise what the morphs changed, from t0 (reconstruction) to final (morph).

Reads ``morphing_outputs/morph-stats.feather`` (s11) and the morph arrays (s10). Writes
``morph-summary.csv`` / ``.md`` (every feature's paired change, ranked by standardized change:
mean change / SD of change; paired t and Wilcoxon p; share of beats where it fell or rose),
``morph-lead-change.csv`` (mean |final - t0| per lead, ranked), and figures: example beats
(12-lead t0 vs final), change per lead with the signed mean difference waveform, and the
predicted risk along the trajectories.

Only beats that were morphed enter: those whose morph succeeded and took at least one step.
A beat whose reconstruction already reached the stop threshold took none; it is counted, not
summarised.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from scdecg.cli import build_parser
from scdecg.errors import PipelineError, script_main
from scdecg.io import load_npy, read_feather, read_json, write_csv, write_text
from scdecg.morph_stats import (feature_columns, lead_change, paired_summary,
                                plot_lead_change, plot_risk_trajectories,
                                plot_twelve_lead_overlays, short_beat_name)
from scdecg.morphing import read_morph_outputs, took_a_step
from scdecg.tables import markdown_table

OUTPUT_DIR = "morphing_outputs"
N_EXAMPLES = 4      # example beats in morph-examples.png
SEED = 0


@script_main
def main(argv=None):
    args = build_parser(__doc__, output_dir=OUTPUT_DIR, n_examples=N_EXAMPLES,
                        seed=SEED).parse_args(argv)
    out = Path(args.output_dir)
    long = read_feather(out / "morph-stats.feather", ["beat_id", "stage", "yhat_scd1",
                                                       "aVL_rs_diff"])
    table, stages = read_morph_outputs(out)
    ok = took_a_step(table).to_numpy()
    n_unmoved = int((table["status"].eq("ok") & ~ok).sum())
    if not ok.any():
        raise PipelineError(f"{out / 'morphs.feather'}: no successfully morphed beat to summarise"
                            f" ({n_unmoved} started at the stop threshold and took no step)")
    long = long[long["beat_id"].isin(table.loc[ok, "beat_id"])]
    skip = {"steps", "stopped"}
    summary = paired_summary(long, [c for c in feature_columns(long) if c not in skip])
    write_csv(summary, out / "morph-summary.csv")
    write_text(f"# What the morphs changed (t0 -> final, {int(ok.sum())} beats)\n\n"
               + markdown_table(summary) + "\n", out / "morph-summary.md")
    leads, mean_diff = lead_change(stages["t0"][ok], stages["final"][ok])
    write_csv(leads, out / "morph-lead-change.csv")

    rng = np.random.default_rng(args.seed)
    ids = np.sort(rng.choice(np.flatnonzero(ok), min(args.n_examples, int(ok.sum())), replace=False))
    risk_row = table.set_index("beat_id")
    titles = [f"{short_beat_name(risk_row.at[i, 'source_file'])}\nrisk "
              f"{1 / (1 + np.exp(-risk_row.at[i, 'logit_t0'])):.2f} -> "
              f"{1 / (1 + np.exp(-risk_row.at[i, 'logit_final'])):.2f}" for i in ids]
    plot_twelve_lead_overlays(stages["t0"][ids], stages["final"][ids], ("t0", "final"), titles,
                              out / "morph-examples.png", "reconstruction (t0) vs morph (final)")
    plot_lead_change(leads, mean_diff, out / "morph-lead-change.png")
    run = read_json(out / "morph_run.json")
    plot_risk_trajectories(load_npy(out / "trajectory_risk_steps.npy"),
                           load_npy(out / "trajectory_logits.npy")[:, ok], run.get("stop_logit"),
                           out / "morph-risk-trajectory.png")

    def row(feature):
        r = summary.set_index("feature").loc[feature]
        return f"rose {r['share_rose']:.1%}, fell {r['share_fell']:.1%}, rank {r['rank']}"

    print(f"[s12] {int(ok.sum())} morphed beats ({n_unmoved} took no step, left out): "
          f"yhat_scd1 {row('yhat_scd1')}; aVL_rs_diff "
          f"{row('aVL_rs_diff')}; most changed leads (mV): {', '.join(leads['lead'].head(4))}; "
          f"(relative to amplitude): "
          f"{', '.join(leads.sort_values('rank_relative')['lead'].head(4))}; wrote {out}")


if __name__ == "__main__":
    raise SystemExit(main())
