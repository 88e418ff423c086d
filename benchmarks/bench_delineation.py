"""Morph measurements: seconds per beat of the delineation, old (neurokit2) vs new, in one run.

Delineates every lead of ``--n-old`` beats per stage with the old method (neurokit2's DWT
delineator on the beat tiled nine times, :func:`scdecg.morph_stats.delineate_lead_neurokit`)
and every beat with the new one (:func:`scdecg.delineation.delineate_beats`), one process
each, and prints seconds per beat (12 leads, one stage), the ratio, and the agreement of the
two on the beats both delineated (share of points within 2 samples = 4 ms, exactly equal,
missing in both or neither).

The beats: the raw, t0 and final stages of a morph run (``--morph-dir``, e.g.
``demo_workspace/morphing_outputs`` after ``python run.py demo``), or by default the demo beats
stored for the agreement test (``tests/data/delineation_beats.npz``).

    python benchmarks/bench_delineation.py --n-old 10
    python benchmarks/bench_delineation.py --morph-dir demo_workspace/morphing_outputs
"""
from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import numpy as np

from measure import machine_line

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "tests" / "data" / "delineation_beats.npz"


def load_stages(morph_dir: str) -> dict[str, np.ndarray]:
    if morph_dir:
        from scdecg.morphing import read_morph_outputs
        from scdecg.workspace import took_a_step

        table, stages = read_morph_outputs(Path(morph_dir))
        ok = took_a_step(table).to_numpy()
        return {name: beats[ok] for name, beats in stages.items()}
    with np.load(STORED, allow_pickle=False) as data:
        beats = data["beats_uv"].astype(np.float64) / 1000.0
        stage = data["stage"].astype(str)
    return {name: beats[stage == name] for name in dict.fromkeys(stage)}


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--morph-dir", default="", help="a morph run's folder (default: stored beats)")
    p.add_argument("--n-old", type=int, default=6, help="beats per stage for the old method")
    args = p.parse_args()

    from scdecg.delineation import POINTS, agreement, delineate_beats
    from scdecg.morph_stats import delineate_lead_neurokit

    stages = load_stages(args.morph_dir)
    print(machine_line() + f", {cpu_model()}")
    delineate_beats(next(iter(stages.values()))[:2])        # warm-up (imports)
    delineate_lead_neurokit(next(iter(stages.values()))[0, 1])
    old_s = new_s = 0.0
    n_old = n_new = 0
    refs, news = [], []
    for name, beats in stages.items():
        start = time.perf_counter()
        new = delineate_beats(beats)
        new_s += time.perf_counter() - start
        n_new += len(beats)
        some = beats[:args.n_old]
        start = time.perf_counter()
        ref = np.array([[[d[pt] for pt in POINTS] for d in map(delineate_lead_neurokit, b)]
                        for b in some])
        stage_old = time.perf_counter() - start
        old_s += stage_old
        n_old += len(some)
        refs.append(ref)
        news.append(new[:len(some)])
        a = agreement(ref, new[:len(some)])
        print(f"{name:>6}: {len(beats)} beats; old {stage_old / len(some):.2f} s per beat; "
              f"agreement on {len(some)}: within 4 ms "
              f"{a['within']:.1%}, exact {a['exact']:.1%}, missing in both or neither "
              f"{a['missing_agree']:.1%}")
    a = agreement(np.concatenate(refs), np.concatenate(news))
    old_per, new_per = old_s / n_old, new_s / n_new
    print(f"old (neurokit2 DWT, beat tiled 9x): {old_per:.3f} s per beat ({n_old} beats)")
    print(f"new (scdecg.delineation):           {new_per:.4f} s per beat ({n_new} beats)")
    print(f"speed-up: {old_per / new_per:.0f}x; all stages: within 4 ms {a['within']:.2%}, "
          f"exact {a['exact']:.2%} of {a['n']} points")
    print("within 4 ms by point: " + ", ".join(f"{pt} {a['within_' + pt]:.1%}" for pt in POINTS))


if __name__ == "__main__":
    main()
