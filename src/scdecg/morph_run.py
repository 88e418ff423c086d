"""The morphing step (02 s10_morph_ecgs.py): morph beats of validation patients, write the run.

:func:`morph_validation_beats` draws the morph set, gates it on the VAE's reconstruction,
moves every latent along the steering beat models' scd1 gradient (:mod:`scdecg.morphing`)
and writes ``morphing_outputs/`` (:func:`scdecg.morphing.write_morph_outputs`, the gate log,
the independent models' check and ``morph_run.json``). From its first file to its last the
folder carries ``.s10-unfinished`` (:func:`scdecg.io.unfinished_run`), so a run killed or
stopped midway is refused by s11 and s12 instead of measured as a mix of two runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .errors import PipelineError
from .failures import FailureLog
from .io import (clear_failed_run, folder_lock, recorded_path, refuse_failed_run,
                 unfinished_run, write_csv, write_json)
from .morphing import (INDEPENDENT_COLUMNS, START_LATENTS, draw_morph_set,
                       independent_risk_change, load_beat_models, load_beats, morph_beat_index,
                       morph_in_batches, reconstruction_mse, refuse_trained_on, start_latents,
                       stop_threshold, vae_training_patients, write_morph_outputs)
from .vae import encode, load_vae, reconstruct
from .workspace import (MORPH_DIR, MORPH_GATE_LOG, MORPH_INDEPENDENT, MORPH_RUN,
                        check_morph_output_dir)

STOP_REFERENCES = ("real", "reconstructed")


@dataclass(frozen=True)
class MorphSettings:
    """How s10 morphs (its options; see the script for each one's meaning)."""
    n_beats: int
    start: str
    start_seed: int
    max_rec_mse: float
    lr: float
    max_steps: int
    stop: bool
    stop_quantile: float
    stop_reference: str
    batch_size: int
    risk_stride: int
    beat_stride: int
    seed: int

    def __post_init__(self) -> None:
        if self.stop_reference not in STOP_REFERENCES:
            raise PipelineError(f"--stop-reference {self.stop_reference!r}: use real or "
                                "reconstructed")
        if self.start not in START_LATENTS:
            raise PipelineError(f"--start {self.start!r}: use {' or '.join(START_LATENTS)}")


def morph_validation_beats(vae_folder: str | Path, settings: MorphSettings,
                           beat_models: Sequence[str | Path] = (),
                           independent_models: Sequence[str | Path] = (),
                           output_dir: str | Path = MORPH_DIR,
                           device: torch.device | str = "cpu",
                           record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Morph beats of the beat models' validation patients towards higher predicted scd1 risk.

    Parameters
    ----------
    vae_folder : str or pathlib.Path
        The DR-VAE folder (``modelfits_vae/<name>``, written by s08).
    settings : MorphSettings
        Morph set size, start latent, reconstruction gate, step size and count, stop rule,
        batch size and what the trajectories keep.
    beat_models : sequence of path
        Beat-model folders steering the morph (their mean scd1 logit); empty: those the VAE
        was trained with.
    independent_models : sequence of path
        Beat-model folders that only score the morphs (``morph_independent.csv``).
    output_dir : str or pathlib.Path
        Where the run is written (``morphing_outputs``).
    device : torch.device or str
        Where the models run.
    record : mapping, optional
        The script's options, stored as ``args`` in ``morph_run.json``.

    Returns
    -------
    dict
        The run summary written to ``morph_run.json`` (counts, stop level, independent
        models' check).

    Examples
    --------
    >>> settings = MorphSettings(n_beats=300, start="mean", start_seed=0, max_rec_mse=0.1,
    ...     lr=0.05, max_steps=2000, stop=True, stop_quantile=0.9, stop_reference="real",
    ...     batch_size=256, risk_stride=1, beat_stride=250, seed=0)
    >>> morph_validation_beats("modelfits_vae/drvae", settings)["n_morphed"]  # doctest: +SKIP
    287
    """
    check_morph_output_dir(output_dir)
    # a second s10 over the same folder stops at once instead of mixing its files in
    with folder_lock(Path(output_dir), "s10"):
        return _morph_and_write(vae_folder, settings, beat_models, independent_models,
                                Path(output_dir), device, record)


def _morph_and_write(vae_folder: str | Path, settings: MorphSettings,
                     beat_models: Sequence[str | Path], independent_models: Sequence[str | Path],
                     out: Path, device: torch.device | str,
                     record: Mapping[str, Any] | None) -> dict[str, Any]:
    """The body of :func:`morph_validation_beats`, run while its folder lock is held."""
    s = settings
    vae, vae_config, _ = load_vae(Path(vae_folder), device)
    beat_folders = list(beat_models) or [
        recorded_path(f, Path(vae_folder) / "config.json", "beat_model", "--beat-model")
        for f in vae_config.get("beat_models") or [vae_config.get("beat_model")]]
    risk, _, splits = load_beat_models(beat_folders, device)
    independent, _, independent_splits = (load_beat_models(list(independent_models), device)
                                          if independent_models else (None, None, None))
    # morphs come from validation patients: none of them may have trained the VAE or the
    # independent models (a beat model of another split would let them in)
    refuse_trained_on(splits.get("val", set()), vae_training_patients(vae_folder, vae_config),
                      f"the VAE {vae_folder}")
    if independent_splits is not None:
        refuse_trained_on(splits.get("val", set()), independent_splits.get("train", set()),
                          f"the independent models ({', '.join(map(str, independent_models))})")

    pool = morph_beat_index(sorted(splits["val"]))
    drawn = draw_morph_set(pool, splits, s.n_beats, s.seed)
    print(f"[s10] morph set: {len(drawn)} of {len(pool)} beats of validation patients "
          f"({drawn['ptId'].nunique()} patients)")
    pool_beats = load_beats(pool["beat_file"].tolist())
    pool_logits = risk.predict_target(pool_beats, device)
    pool_rec_logits = risk.predict_target(reconstruct(vae, pool_beats, device), device)
    reference = pool_logits if s.stop_reference == "real" else pool_rec_logits
    stop_logit = stop_threshold(reference, s.stop_quantile) if s.stop else None
    row_of = {f: i for i, f in enumerate(pool["beat_file"])}
    raw = pool_beats[[row_of[f] for f in drawn["beat_file"]]]
    logit_raw = pool_logits[[row_of[f] for f in drawn["beat_file"]]]

    mu, var = encode(vae, raw, device)
    z_start = start_latents(mu, var, s.start, s.start_seed)
    with torch.no_grad():
        recs = vae.decoder(torch.as_tensor(z_start, device=device)).cpu().numpy()
    rec_mse = reconstruction_mse(raw, recs)
    gate = FailureLog("s10 reconstruction gate")
    passed = rec_mse <= s.max_rec_mse
    for i in np.flatnonzero(~passed):
        gate.add(drawn["beat_file"].iloc[i], f"reconstruction MSE > {s.max_rec_mse}",
                 rec_mse=float(rec_mse[i]))
    print(gate.summary(total=len(drawn)))
    if not passed.any():  # nothing to morph: the earlier run stays as it was
        refuse_failed_run(gate.frame(), out / MORPH_GATE_LOG,
                          f"{vae_folder}: no beat of the morph set passes the reconstruction "
                          f"gate (MSE <= {s.max_rec_mse}; smallest {rec_mse.min():.4g})",
                          "per-beat reconstruction errors")
    with unfinished_run(out, "s10"):  # until morph_run.json is written, s11/s12 refuse out
        write_csv(gate.frame(), out / MORPH_GATE_LOG)
        clear_failed_run(out / MORPH_GATE_LOG)
        z0 = torch.as_tensor(z_start[passed], device=device)
        result = morph_in_batches(vae.decoder, risk.target_logit, z0, s.batch_size, lr=s.lr,
                                  max_steps=s.max_steps, stop_logit=stop_logit,
                                  risk_stride=s.risk_stride, beat_stride=s.beat_stride)
        table = drawn[passed].reset_index(drop=True).rename(
            columns={"beat_file": "source_file"})
        table.insert(0, "beat_id", np.arange(len(table)))
        table = table.assign(
            rec_mse=rec_mse[passed], logit_raw=logit_raw[passed], logit_t0=result.logit_t0,
            logit_final=result.logit_final, steps=result.steps, stopped=result.stopped,
            status=np.where(result.failed, "failed", "ok"), reason=result.reasons)
        write_morph_outputs(out, table, raw[passed], z_start[passed], result)

        moved = ~result.failed & (result.steps > 0)  # the others started at the stop threshold
        scored = independent.members if independent else []
        checks = independent_risk_change(scored, result.beats_t0[moved],
                                         result.beats_final[moved], device)
        write_csv(pd.DataFrame(checks, columns=INDEPENDENT_COLUMNS), out / MORPH_INDEPENDENT)
        raised = (float(np.mean(result.logit_final[moved] > result.logit_t0[moved]))
                  if moved.any() else np.nan)
        summary = {"args": dict(record or {}), "beat_model": str(beat_folders[0]),
                   "beat_models": [str(f) for f in beat_folders], "start": s.start,
                   "independent_models": checks, "n_pool": len(pool),
                   "n_drawn": len(drawn), "n_gate_skipped": int((~passed).sum()),
                   "n_morphed": int(passed.sum()), "n_failed": int(result.failed.sum()),
                   "stop_logit": stop_logit, "stop_reference": s.stop_reference,
                   "logit_shift_reconstruction": float(np.mean(pool_rec_logits - pool_logits)),
                   "n_stopped": int(result.stopped.sum()),
                   "n_started_above_stop": int((~result.failed & (result.steps == 0)).sum()),
                   "share_risk_raised": raised,
                   "median_steps": float(np.median(result.steps))}
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
    if moved.any() and np.all(result.logit_final[moved] == result.logit_t0[moved]):
        print(f"[s10] warning: no morph changed its beat's risk at all: the VAE decodes the "
              f"same beat whatever the latent (a collapsed or undertrained generator); train "
              f"s08 longer before reading {out}")
    return summary
