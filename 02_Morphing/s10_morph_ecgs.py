"""Morph beats of VALIDATION patients towards higher predicted scd1 risk.

Draws ``--n-beats`` morphing beats of the beat model's validation patients (never a training
patient), encodes each to its start latent (``--start mean``: the posterior mean mu;
``--start sampled``: mu + sigma * eps with the noise of ``--start-seed`` 0, as published), skips beats whose reconstruction MSE over
the 12 x 300 samples exceeds ``--max-rec-mse`` (logged and counted), then moves every latent
at once along the gradient of the frozen beat model's pre-sigmoid scd1 output,
``z <- z + lr * grad_z logit(Dec(z))``, for up to ``--max-steps`` steps. With several
``--beat-model`` folders (default: those the VAE was trained with) the target is their mean
scd1 logit. Beat models in ``--independent-models`` do not steer the morph; the run reports
how much the morphs raise their risk (``morph_independent.csv``, ``morph_run.json``). A beat stops once its
predicted risk reaches the ``--stop-quantile`` of the predicted risk of all real morphing beats
of the validation patients; ``--no-stop`` reproduces the published code, which never stopped.

Writes to ``morphing_outputs/``: ``morphs.feather`` (one row per morphed beat: source file,
reconstruction MSE, logits raw / t0 / final, steps, status), the beats (``beats_raw.npy``,
``beats_t0.npy`` = the reconstruction, ``beats_final.npy``), latents, trajectories
(``trajectory_risk.feather``, ``trajectory_*.npy``), ``morph_gate_log.csv``,
``morph_independent.csv`` and ``morph_run.json``. Until ``morph_run.json`` is written,
``morphing_outputs/.s10-unfinished`` marks the folder: if this run is killed or stops on an
error, s11, s12 and the run report refuse (the report warns) until s10 is rerun. When no beat
passes the gate, nothing is morphed: the reasons go to ``morph_gate_log.failed.csv`` and the
earlier run is left as it was.
"""
from __future__ import annotations

from scdecg.cli import resolve_device, script_parser, seed_everything
from scdecg.errors import script_main
from scdecg.morph_run import MorphSettings, morph_validation_beats
from scdecg.workspace import MORPH_DIR

VAE = "modelfits_vae/drvae"
BEAT_MODEL: list[str] = []   # none given: the beat model(s) the VAE was trained with
INDEPENDENT_MODELS: list[str] = []  # beat models that only score the morphs
START = "mean"           # start latent: the posterior "mean" mu, or "sampled" mu + sigma*eps (published)
START_SEED = 0           # the noise of the sampled start (the published code used key 0)
OUTPUT_DIR = MORPH_DIR
N_BEATS = 1000
MAX_REC_MSE = 0.1        # mV^2, over 12 x 300 samples
LR = 0.01
MAX_STEPS = 2000
STOP = True
STOP_QUANTILE = 0.9
STOP_REFERENCE = "real"  # whose risk sets the stop level: "real" beats or their "reconstructed" t0
BATCH_SIZE = 256         # beats morphed together
RISK_STRIDE = 1          # keep the risk of every beat every this many steps
BEAT_STRIDE = 100        # keep the decoded beats every this many steps
SEED = 0

#: Limits of the numeric options (cli.MAXIMA): the morph step must move (above 0) and stay
#: within reason (--lr 1e30 threw every latent far off the beats in one step, which counted as
#: reaching the stop threshold: exit 0).
MAXIMA = {"lr": 1e3}

PROFILES = {
    "paper": {},
    # demo: fewer beats and a larger step (the published 2,000 steps, so slow starters arrive);
    # beat snapshots every 250 steps keep trajectory_beats.npy near 40 MB; all beats in one
    # batch (one loop instead of two: 12% faster, the same morphs to float tolerance)
    "demo": {"n_beats": 300, "lr": 0.05, "beat_stride": 250, "stop_reference": "reconstructed",
             "batch_size": 300},
}

HELP = {"stop": "stop each beat at the --stop-quantile of real beats' risk (--no-stop: "
                "the published behaviour, all beats take --max-steps steps)",
        "stop_reference": "real: the predicted risk of the real validation beats (the paper); "
                          "reconstructed: of their VAE reconstructions, for a VAE that shifts "
                          "predicted risk (see morph_run.json: logit_shift_reconstruction)",
        "max_rec_mse": "skip beats whose reconstruction MSE exceeds this",
        "beat_model": "beat model folder(s) steering the morph (mean scd1 logit); none: the "
                      "VAE's (its config.json)",
        "independent_models": "beat model folder(s) that do not steer the morph; the run "
                              "reports how much the morphs raise their scd1 risk",
        "start": "sampled: start (and gate) from mu + sigma*eps, eps from --start-seed (the "
                 "published code); mean: from the posterior mean mu",
        "batch_size": "beats morphed together (memory vs. speed)"}


@script_main
def main(argv=None):
    args = script_parser(__doc__, globals(), argv, profiles=PROFILES, help=HELP,
                         maxima=MAXIMA).parse_args(argv)
    settings = MorphSettings(
        n_beats=args.n_beats, start=args.start, start_seed=args.start_seed,
        max_rec_mse=args.max_rec_mse, lr=args.lr, max_steps=args.max_steps, stop=args.stop,
        stop_quantile=args.stop_quantile, stop_reference=args.stop_reference,
        batch_size=args.batch_size, risk_stride=args.risk_stride, beat_stride=args.beat_stride,
        seed=args.seed)
    seed_everything(args.seed)
    morph_validation_beats(args.vae, settings, args.beat_model, args.independent_models,
                           args.output_dir, resolve_device(args.device), record=vars(args))


if __name__ == "__main__":
    raise SystemExit(main())
