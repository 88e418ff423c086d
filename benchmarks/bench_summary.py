"""s12's summary: the paired feature table and the example figure, against plain versions.

On the morph measurements of a morph run (``--morph-dir``, e.g.
``demo_workspace/morphing_outputs`` after ``python run.py demo``), in one process:

* the paired summary of every waveform feature (:func:`scdecg.morph_stats.paired_summary`,
  which aligns all features at once) against a plain version written here (one feature at a
  time: pair, drop missing, group by patient; the same row statistics), checking that both
  give the same table to the last bit;
* the example figure ``morph-examples.png`` (:func:`scdecg.morph_stats.plot_twelve_lead_overlays`:
  one panel per beat, its 12 leads stacked) against the grid it replaced, written here (one
  panel per lead and beat, 12 x n axes), both saved as s12 saves them.

Each is timed ``--repeats`` times after one untimed warm-up; prints the medians and ratios.

    python benchmarks/bench_summary.py --morph-dir demo_workspace/morphing_outputs
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from measure import machine_line


def plain_paired_summary(long: pd.DataFrame, features, before="t0", after="final",
                         cluster="ptId") -> pd.DataFrame:
    """One feature at a time (what paired_summary did before it aligned every feature once):
    pair, drop missing, group by patient; the same rows and ranking."""
    from scdecg.morph_stats import paired_row, ranked_summary, summary_values

    b = long[long["stage"] == before].set_index(["beat_id"])
    a = long[long["stage"] == after].set_index(["beat_id"])
    groups = b[cluster] if cluster in b.columns else pd.Series(b.index.astype(str), index=b.index)
    rows = []
    for f in features:
        pair = pd.concat([summary_values(b, f).rename("b"), summary_values(a, f).rename("a"),
                          groups.rename("g")], axis=1).dropna(subset=["a", "b"])
        per_patient = (pair["a"] - pair["b"]).groupby(pair["g"]).mean()
        rows.append(paired_row(f, pair["b"], pair["a"], per_patient.to_numpy(dtype=np.float64)))
    return ranked_summary(rows)


def grid_overlays(first, second, labels, titles, path, suptitle=""):
    """The former morph-examples.png: one panel per lead and beat, tight layout."""
    from matplotlib.figure import Figure

    from scdecg.constants import BEAT_PRE, FS, LEADS
    from scdecg.plotting import save_figure

    n = len(first)
    fig = Figure(figsize=(3.2 * n + 0.8, 15))
    axes = fig.subplots(12, n, sharex=True, sharey="row", squeeze=False)
    t = (np.arange(first.shape[-1]) - BEAT_PRE) / FS * 1000
    for j in range(n):
        for i, lead in enumerate(LEADS):
            ax = axes[i, j]
            ax.plot(t, first[j, i], color="0.4", lw=1, label=labels[0])
            ax.plot(t, second[j, i], color="tab:red", lw=1, label=labels[1])
            ax.tick_params(labelsize=6)
            ax.grid(alpha=0.3, lw=0.5)
            if j == 0:
                ax.set_ylabel(f"{lead}\n(mV)", rotation=0, ha="right", va="center", fontsize=8)
        axes[0, j].set_title(titles[j], fontsize=8)
        axes[-1, j].set_xlabel("ms from R")
    axes[0, -1].legend(fontsize=7, loc="upper right")
    fig.suptitle(suptitle)
    fig.tight_layout()
    save_figure(fig, path, dpi=110, tight=True)


def timed(fn, repeats: int) -> float:
    fn()                                                        # warm-up, not timed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--morph-dir", default="demo_workspace/morphing_outputs")
    parser.add_argument("--n-examples", type=int, default=4, help="beats in the figure (s12's)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from scdecg.morph_stats import (STATS_TABLE, paired_summary, plot_twelve_lead_overlays,
                                    waveform_features)
    from scdecg.morphing import read_morph_outputs
    from scdecg.workspace import took_a_step

    out = Path(args.morph_dir)
    table, stages = read_morph_outputs(out)
    moved = took_a_step(table).to_numpy()
    long = pd.read_feather(out / STATS_TABLE)
    long = long[long["beat_id"].isin(table.loc[moved, "beat_id"])]
    features = waveform_features(long)
    print(machine_line())
    print(f"{out}: {int(moved.sum())} morphed beats, {len(features)} waveform features")

    new, plain = paired_summary(long, features), plain_paired_summary(long, features)
    pd.testing.assert_frame_equal(new, plain, check_exact=True)
    t_new = timed(lambda: paired_summary(long, features), args.repeats)
    t_plain = timed(lambda: plain_paired_summary(long, features), args.repeats)
    print(f"paired summary: {t_new:.3f} s (all features aligned once) vs {t_plain:.3f} s "
          f"(one at a time): {t_plain / t_new:.1f}x; tables identical")

    ids = np.flatnonzero(moved)[:args.n_examples]
    first, second = stages["t0"][ids], stages["final"][ids]
    titles = [f"beat {i}\npredicted risk" for i in ids]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "morph-examples.png"
        t_stack = timed(lambda: plot_twelve_lead_overlays(
            first, second, ("reconstruction", "morph"), titles, path, "examples"), args.repeats)
        t_grid = timed(lambda: grid_overlays(
            first, second, ("reconstruction", "morph"), titles, path, "examples"), args.repeats)
    print(f"morph-examples.png, {len(ids)} beats: {t_stack:.2f} s (one stacked panel per beat) "
          f"vs {t_grid:.2f} s (12 x {len(ids)} panels): {t_grid / t_stack:.1f}x")


if __name__ == "__main__":
    main()
