"""Train the DR-VAE beat generator on the morphing beats of the beat model's training patients.

Reads the beat model folder(s) (weights, config.json and their shared patient split; with
several ``--beat-model`` folders the discriminative regulariser uses the sigmoid of their mean
scd1 logit), the morphing beats
``ecg_beats_morphing/<studyId>/*.npy`` of TRAINING patients (per-lead zero_mode), and writes
``modelfits_vae/<name>/``: ``vae.pt`` (tensors only), ``config.json``, the latent statistics
(``latent_mu_mean.npy``, ...), ``history.csv`` and a per-epoch ``last_epoch.pt`` for ``--resume``.
"""
from __future__ import annotations

from scdecg.cli import resolve_device, script_parser, seed_everything
from scdecg.errors import script_main
from scdecg.vae import VAETrainConfig, train_generator
from scdecg.workspace import MORPH_BEATS_DIR, VAE_DIR

BEAT_MODEL = ["modelfits_beat/ntuh_scd_beat_model_demo"]  # several: their mean scd1 logit
BEATS_DIR = MORPH_BEATS_DIR   # the morphing beats (x05), as the specification and authors' README say
OUTPUT_DIR = VAE_DIR
NAME = "drvae"
# Published (paper profile) values.
EPOCHS = 100
BATCH_SIZE = 512
LR_MAX = 1e-4       # peak of the warm-up + cosine learning-rate schedule
KL_ALPHA = 0.01     # final weight of the KL term (linear warm-up)
BETA = 0.01         # weight of the discriminative term
MAX_BEATS = 0       # 0: every training beat; otherwise a seeded subset of this size
RESUME = False
SEED = 0

PROFILES = {
    "paper": {},
    # demo: smaller batches (4x the steps), a larger step and a weaker KL term, or the VAE
    # keeps only a coarse beat and loses the planted slur (docs/DEVIATIONS.md)
    "demo": {"epochs": 30, "batch_size": 32, "lr_max": 2e-3, "kl_alpha": 1e-4},
}

HELP = {"beat_model": "frozen beat model folder(s) (weights, config.json, patient split); "
                       "several: the regulariser uses their mean scd1 logit",
        "beats_dir": "beats to train on: ecg_beats_morphing (x05, as published) or ecg_beats "
                     "(x04, every kept beat; one review's reading of the published s08, see "
                     "DEVIATIONS.md)",
        "resume": "continue from modelfits_vae/<name>/last_epoch.pt"}


@script_main
def main(argv=None):
    args = script_parser(__doc__, globals(), argv, profiles=PROFILES, help=HELP).parse_args(argv)
    seed_everything(args.seed)
    device = resolve_device(args.device)
    cfg = VAETrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr_max=args.lr_max,
                         kl_alpha=args.kl_alpha, beta=args.beta, seed=args.seed)

    folder, history = train_generator(args.beat_model, args.beats_dir, args.output_dir, args.name,
                                      cfg, device, args.profile, args.max_beats, args.resume)
    last = history[-1]
    print(f"[s08] epoch {last['epoch']}: loss {last['loss']:.4f} (rec {last['rec']:.4f}, "
          f"kl {last['kl']:.2f}, dr {last['dr']:.5f}); saved to {folder}")


if __name__ == "__main__":
    raise SystemExit(main())
