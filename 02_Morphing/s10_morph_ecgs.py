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
``morph_independent.csv`` and ``morph_run.json``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from scdecg.cli import resolve_device, script_parser, seed_everything
from scdecg.errors import PipelineError, script_main
from scdecg.failures import FailureLog
from scdecg.io import write_csv, write_json
from scdecg.morphing import (INDEPENDENT_COLUMNS, START_LATENTS, draw_morph_set,
                             independent_risk_change, load_beat_models, load_beats,
                             morph_beat_index, morph_in_batches, reconstruction_mse,
                             start_latents, stop_threshold, write_morph_outputs)
from scdecg.vae import encode, load_vae, reconstruct
from scdecg.workspace import MORPH_DIR, MORPH_GATE_LOG, MORPH_INDEPENDENT, MORPH_RUN

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

PROFILES = {
    "paper": {},
    # demo: fewer beats and a larger step (the published 2,000 steps, so slow starters arrive);
    # beat snapshots every 250 steps keep trajectory_beats.npy near 40 MB
    "demo": {"n_beats": 300, "lr": 0.05, "beat_stride": 250, "stop_reference": "reconstructed"},
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
    args = script_parser(__doc__, globals(), argv, profiles=PROFILES, help=HELP).parse_args(argv)
    if args.stop_reference not in ("real", "reconstructed"):
        raise PipelineError(f"--stop-reference {args.stop_reference!r}: use real or reconstructed")
    if args.start not in START_LATENTS:
        raise PipelineError(f"--start {args.start!r}: use {' or '.join(START_LATENTS)}")
    seed_everything(args.seed)
    device = resolve_device(args.device)

    vae, vae_config, _ = load_vae(Path(args.vae), device)
    beat_folders = args.beat_model or vae_config.get("beat_models") or [vae_config["beat_model"]]
    risk, _, splits = load_beat_models(beat_folders, device)
    independent, _, _ = (load_beat_models(args.independent_models, device)
                         if args.independent_models else (None, None, None))

    pool = morph_beat_index(sorted(splits["val"]))
    drawn = draw_morph_set(pool, splits, args.n_beats, args.seed)
    print(f"[s10] morph set: {len(drawn)} of {len(pool)} beats of validation patients "
          f"({drawn['ptId'].nunique()} patients)")
    pool_beats = load_beats(pool["beat_file"].tolist())
    pool_logits = risk.predict_target(pool_beats, device)
    pool_rec_logits = risk.predict_target(reconstruct(vae, pool_beats, device), device)
    reference = pool_logits if args.stop_reference == "real" else pool_rec_logits
    stop_logit = stop_threshold(reference, args.stop_quantile) if args.stop else None
    row_of = {f: i for i, f in enumerate(pool["beat_file"])}
    raw = pool_beats[[row_of[f] for f in drawn["beat_file"]]]
    logit_raw = pool_logits[[row_of[f] for f in drawn["beat_file"]]]

    mu, var = encode(vae, raw, device)
    z_start = start_latents(mu, var, args.start, args.start_seed)
    with torch.no_grad():
        recs = vae.decoder(torch.as_tensor(z_start, device=device)).cpu().numpy()
    rec_mse = reconstruction_mse(raw, recs)
    gate = FailureLog("s10 reconstruction gate")
    passed = rec_mse <= args.max_rec_mse
    for i in np.flatnonzero(~passed):
        gate.add(drawn["beat_file"].iloc[i], f"reconstruction MSE > {args.max_rec_mse}",
                 rec_mse=float(rec_mse[i]))
    print(gate.summary(total=len(drawn)))
    out = Path(args.output_dir)
    write_csv(gate.frame(), out / MORPH_GATE_LOG)
    if not passed.any():
        raise PipelineError(f"{args.vae}: no beat of the morph set passes the reconstruction "
                            f"gate (MSE <= {args.max_rec_mse}; smallest {rec_mse.min():.4g})")

    z0 = torch.as_tensor(z_start[passed], device=device)
    result = morph_in_batches(vae.decoder, risk.target_logit, z0, args.batch_size, lr=args.lr,
                              max_steps=args.max_steps, stop_logit=stop_logit,
                              risk_stride=args.risk_stride, beat_stride=args.beat_stride)
    table = drawn[passed].reset_index(drop=True).rename(columns={"beat_file": "source_file"})
    table.insert(0, "beat_id", np.arange(len(table)))
    table = table.assign(
        rec_mse=rec_mse[passed], logit_raw=logit_raw[passed], logit_t0=result.logit_t0,
        logit_final=result.logit_final, steps=result.steps, stopped=result.stopped,
        status=np.where(result.failed, "failed", "ok"), reason=result.reasons)
    write_morph_outputs(out, table, raw[passed], z_start[passed], result)

    moved = ~result.failed & (result.steps > 0)  # the others started at the stop threshold
    scored = independent.members if independent else []
    checks = independent_risk_change(scored, result.beats_t0[moved], result.beats_final[moved],
                                     device)
    write_csv(pd.DataFrame(checks, columns=INDEPENDENT_COLUMNS), out / MORPH_INDEPENDENT)
    raised = (float(np.mean(result.logit_final[moved] > result.logit_t0[moved]))
              if moved.any() else np.nan)
    summary = {"args": vars(args), "beat_model": str(beat_folders[0]),
               "beat_models": [str(f) for f in beat_folders], "start": args.start,
               "independent_models": checks, "n_pool": len(pool),
               "n_drawn": len(drawn), "n_gate_skipped": int((~passed).sum()),
               "n_morphed": int(passed.sum()), "n_failed": int(result.failed.sum()),
               "stop_logit": stop_logit, "stop_reference": args.stop_reference,
               "logit_shift_reconstruction": float(np.mean(pool_rec_logits - pool_logits)),
               "n_stopped": int(result.stopped.sum()),
               "n_started_above_stop": int((~result.failed & (result.steps == 0)).sum()),
               "share_risk_raised": raised, "median_steps": float(np.median(result.steps))}
    write_json(summary, out / MORPH_RUN)
    for reason, n in pd.Series([r for r in result.reasons if r]).value_counts().items():
        print(f"[s10] failed: {n} x {reason}")
    print(f"[s10] morphed {summary['n_morphed']} beats ({summary['n_failed']} failed); "
          f"{summary['n_stopped']} reached the stop threshold, {summary['n_started_above_stop']} "
          f"of them before any step; risk raised for {raised:.1%} of the others; "
          f"median {summary['median_steps']:.0f} steps; wrote {out}")
    for row in checks:
        print(f"[s10] independent model {row['model']}: risk raised for "
              f"{row['share_raised']:.1%} of morphed beats (mean logit change "
              f"{row['mean_logit_change']:+.3f})")


if __name__ == "__main__":
    raise SystemExit(main())
