"""Latent morphing throughput: beat-steps/s, batched vs one beat at a time, same code path.

Times :func:`scdecg.morphing.morph_latents` (no stopping, so every beat takes every step) with
an untrained beat model of the demo or paper architecture and an untrained DR-VAE decoder --
weights do not change the cost. Prints beat-steps/s for a batch of ``--n-beats`` beats and for
``--n-single`` beats morphed one at a time, and the speed-up.

    python benchmarks/bench_morphing.py                    # demo beat model, CPU
    python benchmarks/bench_morphing.py --arch paper --device cuda
"""
from __future__ import annotations

import argparse
import time

import torch

from scdecg.cli import resolve_device
from scdecg.morphing import BeatRiskModel, morph_latents
from scdecg.models import Architecture, build_model
from scdecg.vae import BeatVAE

ARCHS = {"demo": dict(channels=8, n_blocks=6, rep_mp=1, dropout=0.1),   # x02 --profile demo
         "paper": dict(channels=64, n_blocks=32, rep_mp=5, dropout=0.5)}


def rate(decoder, risk, z, steps: int, device) -> float:
    """Beat-steps per second of one morph_latents call on the latents ``z``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    morph_latents(decoder, risk.target_logit, z, lr=0.01, max_steps=steps, stop_logit=None,
                  progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(z) * steps / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=ARCHS, default="demo")
    p.add_argument("--n-beats", type=int, default=128, help="beats in the batched run")
    p.add_argument("--n-single", type=int, default=8, help="beats morphed one at a time")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    module = build_model(Architecture(outputs=["scd3mo", "scd6mo", "scd1", "scd2"], length=300,
                                      **ARCHS[args.arch])).to(device)
    risk = BeatRiskModel(module, module.outputs)
    decoder = BeatVAE().decoder.to(device).eval()
    for prm in decoder.parameters():
        prm.requires_grad_(False)
    z = torch.randn(args.n_beats, 512, device=device)
    rate(decoder, risk, z[:2], 2, device)  # warm-up
    batched = rate(decoder, risk, z, args.steps, device)
    singles = [rate(decoder, risk, z[i:i + 1], args.steps, device) for i in range(args.n_single)]
    single = args.n_single / sum(1 / r for r in singles)  # harmonic mean = total beats / time
    print(f"device {device} ({torch.get_num_threads()} threads), {args.arch} beat model, "
          f"{args.steps} steps")
    print(f"batched ({args.n_beats} beats): {batched:9.1f} beat-steps/s")
    print(f"one at a time          : {single:9.1f} beat-steps/s")
    print(f"speed-up               : {batched / single:9.1f}x")


if __name__ == "__main__":
    main()
