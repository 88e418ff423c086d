"""Which leads the planted slur changes, and which leads the morphs changed, in the QRS and
over the whole beat (the two rankings of :func:`scdecg.morph_stats.lead_change`).

The slur itself: ``--n-ecgs`` ECG parameter draws of the synthetic generator, each beat with
slur ``s`` against ``s + --step`` (:func:`scdecg.synthetic.slur_beat_pairs`). Then, for
each s10 output folder given, the morphs (reconstruction -> morph of the beats that took a
step): the ranking, the share of each lead's mean |change| outside the QRS window, and V5's
mean change 150-250 ms after R (the T wave).

    python benchmarks/bench_slur_leads.py --morph-dirs demo_workspace/morphing_outputs
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from measure import machine_line
from scdecg.constants import LEADS
from scdecg.morph_stats import QRS_WINDOW_MS, lead_change, window_samples
from scdecg.morphing import read_morph_outputs
from scdecg.synthetic import slur_beat_pairs
from scdecg.workspace import MORPH_TABLE, took_a_step

SHOWN = ["lead", "qrs_relative_change", "rank_qrs", "relative_change", "rank_relative"]


def outside_share(before: np.ndarray, after: np.ndarray) -> pd.Series:
    """Each lead's share of its summed |after - before| outside the QRS window."""
    change = np.abs(after - before)
    inside = change[..., window_samples(QRS_WINDOW_MS)].sum(axis=(0, 2))
    return pd.Series(1.0 - inside / change.sum(axis=(0, 2)), index=list(LEADS))


def report(name: str, before: np.ndarray, after: np.ndarray) -> None:
    table = lead_change(before, after)[0].sort_values(["rank_qrs", "lead"])
    share = outside_share(before, after)
    late = (after - before)[:, LEADS.index("V5"), window_samples((150, 250))].mean() * 1000
    print(f"\n{name}: {len(before)} beats; V5's mean change 150-250 ms after R {late:+.1f} µV; "
          f"share of |change| outside the QRS: aVL {share['aVL']:.2f}, V4 {share['V4']:.2f}, "
          f"III {share['III']:.2f}")
    print(table[SHOWN].head(5).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-ecgs", type=int, default=400)
    parser.add_argument("--step", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--morph-dirs", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    print(machine_line())
    print(f"QRS window {QRS_WINDOW_MS[0]:+d} to {QRS_WINDOW_MS[1]:+d} ms from R")
    report(f"the planted slur, s -> s + {args.step}",
           *slur_beat_pairs(args.n_ecgs, args.step, np.random.default_rng(args.seed)))
    for folder in args.morph_dirs:
        _, stages = read_morph_outputs(folder)
        moved = took_a_step(pd.read_feather(folder / MORPH_TABLE)).to_numpy()
        report(str(folder), stages["t0"][moved].astype(np.float64),
               stages["final"][moved].astype(np.float64))


if __name__ == "__main__":
    main()
