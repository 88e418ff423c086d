"""Make the data of the delineation agreement test: demo beats and neurokit2's points for them.

Run once, on a morph run of the demo (``python run.py demo``, or any workspace after s10)::

    PYTHONPATH=src python tests/data/make_delineation_reference.py demo_workspace/morphing_outputs

Draws ``--n-beats`` morphed beats (seeded) and keeps each at its three stages (raw, t0, final),
rounded to whole µV. Writes, beside this script:

* ``delineation_beats.npz``: ``beats_uv`` (n, 12, 300) int16 in µV, ``stage``, ``beat_id``;
* ``delineation_reference.csv``: one row per beat and lead (``row`` = index into ``beats_uv``,
  ``stage``, ``lead``) with the ten points of the old method -- neurokit2's DWT delineator
  on the beat tiled nine times, middle copy read (``scdecg.morph_stats.delineate_lead_neurokit``)
  -- computed on the rounded beats, and the neurokit2 version.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("morph_dir", help="a morph run's folder (morphing_outputs)")
    p.add_argument("--n-beats", type=int, default=4, help="morphed beats (x 3 stages)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import neurokit2

    from scdecg.constants import LEADS
    from scdecg.delineation import POINTS
    from scdecg.morph_stats import delineate_lead_neurokit
    from scdecg.morphing import read_morph_outputs
    from scdecg.workspace import took_a_step

    table, stages = read_morph_outputs(Path(args.morph_dir))
    moved = np.flatnonzero(took_a_step(table).to_numpy())
    ids = np.sort(np.random.default_rng(args.seed).choice(moved, args.n_beats, replace=False))
    beats_uv, stage_of, beat_of = [], [], []
    for name, beats in stages.items():
        beats_uv.append(np.round(beats[ids] * 1000.0).astype(np.int16))
        stage_of += [name] * len(ids)
        beat_of += list(ids)
    beats_uv = np.concatenate(beats_uv)
    np.savez_compressed(HERE / "delineation_beats.npz", beats_uv=beats_uv,
                        stage=np.array(stage_of), beat_id=np.array(beat_of))
    rows = []
    for k, beat in enumerate(beats_uv.astype(np.float64) / 1000.0):
        for i, lead in enumerate(LEADS):
            points = delineate_lead_neurokit(beat[i])
            rows.append({"row": k, "stage": stage_of[k], "lead": lead,
                         **{pt: points[pt] for pt in POINTS}, "neurokit2": neurokit2.__version__})
        print(f"beat {k + 1} of {len(beats_uv)} done", flush=True)
    pd.DataFrame(rows).to_csv(HERE / "delineation_reference.csv", index=False)
    print(f"wrote {len(beats_uv)} beats and {len(rows)} reference rows to {HERE}")


if __name__ == "__main__":
    main()
