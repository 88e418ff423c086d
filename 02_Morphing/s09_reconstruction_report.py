"""How well the VAE reconstructs real beats of HELD-OUT (validation) patients.

Writes ``morphing_outputs/reconstruction_report.csv`` (MAE, MSE, RMSE per lead and overall),
``reconstruction_report.png`` (per-lead RMSE with the spread over beats, and real vs
reconstructed overlays of example beats) and ``generated_beats.png`` (beats sampled from the
latent statistics).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from scdecg.cli import add_runtime_options, build_parser, resolve_device, seed_everything
from scdecg.constants import LEADS
from scdecg.errors import PipelineError, script_main
from scdecg.io import recorded_path, write_csv
from scdecg.morph_stats import plot_beats, plot_reconstruction, short_beat_name
from scdecg.morphing import (load_beats, morph_beat_index, refuse_trained_on,
                             split_patients, vae_training_patients)
from scdecg.vae import load_vae, reconstruct, reconstruction_errors, sample_beats
from scdecg.workspace import MORPH_DIR, RECONSTRUCTION_REPORT, check_morph_output_dir

VAE = "modelfits_vae/drvae"
BEAT_MODEL = ""     # "": the beat model the VAE was trained with (its config.json)
OUTPUT_DIR = MORPH_DIR
MAX_BEATS = 5000    # validation beats evaluated (a seeded subset when there are more)
N_EXAMPLES = 3      # example overlays in the figure
N_SAMPLES = 6       # generated beats in generated_beats.png
SEED = 0


@script_main
def main(argv=None):
    # more example or sampled beats than 100 make an unreadable figure (and 100,000 a long wait)
    parser = build_parser(__doc__, vae=VAE, beat_model=BEAT_MODEL, output_dir=OUTPUT_DIR,
                          max_beats=MAX_BEATS, n_examples=N_EXAMPLES, n_samples=N_SAMPLES,
                          maxima={"n_examples": 100, "n_samples": 100})
    add_runtime_options(parser, profile=None, seed=SEED)
    args = parser.parse_args(argv)
    check_morph_output_dir(args.output_dir)
    seed_everything(args.seed)
    device = resolve_device(args.device)
    vae, vae_config, stats = load_vae(Path(args.vae), device)
    beat_folder = Path(args.beat_model or recorded_path(
        vae_config.get("beat_model"), Path(args.vae) / "config.json", "beat_model", "--beat-model"))
    splits = split_patients(beat_folder)
    refuse_trained_on(splits.get("val", set()), vae_training_patients(args.vae, vae_config),
                      f"the VAE {args.vae}")
    index = morph_beat_index(sorted(splits["val"]))
    if index.empty:
        raise PipelineError(f"ecg_beats_morphing: no morphing beats of the {len(splits['val'])} "
                            f"validation patients of {beat_folder}")
    if len(index) > args.max_beats:
        index = index.sample(n=args.max_beats, random_state=args.seed).sort_index()
    beats = load_beats(index["beat_file"].tolist())
    recs = reconstruct(vae, beats, device)
    report = reconstruction_errors(beats, recs, LEADS)
    out = Path(args.output_dir)
    write_csv(report, out / RECONSTRUCTION_REPORT)
    examples = np.random.default_rng(args.seed).choice(len(beats), min(args.n_examples, len(beats)),
                                                        replace=False)
    plot_reconstruction(report, beats[examples], recs[examples],
                        [short_beat_name(f) for f in index["beat_file"].iloc[examples]],
                        out / "reconstruction_report.png")
    if args.n_samples > 0:
        samples = sample_beats(vae, stats, args.n_samples, seed=args.seed, device=device)
        plot_beats(samples, out / "generated_beats.png",
                   title=f"{args.n_samples} beats sampled from the VAE's latent statistics")
    overall = report.iloc[-1]
    print(f"[s09] {len(beats)} validation beats of {index['ptId'].nunique()} patients: "
          f"MAE {overall['mae']:.4f} mV, RMSE {overall['rmse']:.4f} mV; wrote {out}")


if __name__ == "__main__":
    raise SystemExit(main())
