"""Which leads the planted slur changes, and which leads the morphs changed, in the QRS and
over the whole beat (the two rankings of :func:`scdecg.morph_stats.lead_change`).

The slur itself: ``--n-ecgs`` ECG parameter draws of the synthetic generator (slur strength
from the background Beta(2, 5)), each heart-dipole template with slur ``s`` against
``s + --step`` (at most 1), projected on the 12 leads and cut to the beat window. Then, for
each s10 output folder given, the morphs (reconstruction -> morph of the beats that took a
step): the ranking, the share of each lead's mean |change| outside the QRS window, and V5's
mean change 150-250 ms after R (the T wave).

    python benchmarks/bench_slur_leads.py --morph-dirs demo_workspace/morphing_outputs
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from measure import machine_line
from scdecg import synthetic
from scdecg.constants import BEAT_POST, BEAT_PRE, LEADS
from scdecg.morph_stats import QRS_WINDOW_MS, lead_change, window_samples
from scdecg.morphing import read_morph_outputs
from scdecg.workspace import MORPH_TABLE, took_a_step

SHOWN = ["lead", "qrs_relative_change", "rank_qrs", "relative_change", "rank_relative"]


def slur_templates(n_ecgs: int, step: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(before, after) beats (n, 12, 300) in mV: each draw's template with slur s and s + step."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n_ecgs):
        slur = rng.beta(2.0, 5.0)
        params = synthetic.sample_ecg_params(rng, slur=slur, age=rng.uniform(40, 85))
        slurred = dataclasses.replace(params, slur=min(slur + step, 1.0))
        pairs.append([synthetic.LEAD_VECTORS @ synthetic.dipole_template(p)[
            :, synthetic.TEMPLATE_PRE - BEAT_PRE:synthetic.TEMPLATE_PRE + BEAT_POST] / 1000.0
            for p in (params, slurred)])
    beats = np.array(pairs)
    return beats[:, 0], beats[:, 1]


def outside_share(before: np.ndarray, after: np.ndarray) -> pd.Series:
    """Each lead's share of its summed |after - before| outside the QRS window."""
    change = np.abs(after - before)
    inside = change[..., window_samples(QRS_WINDOW_MS)].sum(axis=(0, 2))
    return pd.Series(1.0 - inside / change.sum(axis=(0, 2)), index=list(LEADS))


def report(name: str, before: np.ndarray, after: np.ndarray) -> None:
    table = lead_change(before, after)[0].sort_values(["rank_qrs", "lead"])
    share = outside_share(before, after)
    late = (after - before)[:, LEADS.index("V5"), BEAT_PRE + 75:BEAT_PRE + 125].mean() * 1000
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
    report(f"the planted slur, s -> s + {args.step}", *slur_templates(args.n_ecgs, args.step,
                                                                      args.seed))
    for folder in args.morph_dirs:
        _, stages = read_morph_outputs(folder)
        moved = took_a_step(pd.read_feather(folder / MORPH_TABLE)).to_numpy()
        report(str(folder), stages["t0"][moved].astype(np.float64),
               stages["final"][moved].astype(np.float64))


if __name__ == "__main__":
    main()
