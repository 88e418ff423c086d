"""Two training steps side by side: why the demo's lanes are two processes that wait passively.

Times the DR-VAE's training step at the demo's shapes (32 beats a batch; the frozen beat model
of the x02 demo architecture, folded for inference; untrained weights, which do not change the
cost) in worker processes, in four settings run one after another:

* ``alone``: one process with torch's default waiting (its threads spin between operations);
* ``alone, passive``: one process with ``OMP_WAIT_POLICY=PASSIVE``;
* ``side by side``: two processes at once, both spinning;
* ``side by side, passive``: two at once, both passive (what ``scdecg.demo``'s lanes do).

Every worker uses torch's default thread count. Prints each setting's ms a step (per process)
and the machine's training steps a second, and checks that every worker ends with the same
weights (the waiting policy does not change the arithmetic).

    python benchmarks/bench_lanes.py --steps 200
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

SETTINGS = (("alone", 1, None), ("alone, passive", 1, "PASSIVE"),
            ("side by side", 2, None), ("side by side, passive", 2, "PASSIVE"))


def worker(steps: int) -> None:
    """Train the DR-VAE for ``steps`` steps on fixed random beats; print ms a step and a hash
    of the weights as JSON."""
    import torch

    from scdecg.models import Architecture, build_model
    from scdecg.models.inference import fuse_for_inference
    from scdecg.morphing import BeatRiskModel
    from scdecg.vae import BeatVAE, drvae_loss

    torch.manual_seed(0)
    arch = Architecture(outputs=["scd1"], length=300, channels=8, n_blocks=6, rep_mp=1,
                        dropout=0.1, cumulative=False)                  # x02 --profile demo
    risk = BeatRiskModel(fuse_for_inference(build_model(arch)), ["scd1"])
    vae = BeatVAE()
    optimiser = torch.optim.Adam(vae.parameters(), lr=1e-3, foreach=True)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(32, 12, 300, generator=generator)
    p_real = torch.rand(32, generator=generator)

    def step() -> None:
        x_hat, mu, var = vae(x)
        p_rec = torch.sigmoid(risk.target_logit(x_hat))
        loss = drvae_loss(x, x_hat, mu, var, p_real, p_rec, 1e-4, 0.01)["loss"]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for _ in range(20):                                           # warm-up, not timed
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    ms = (time.perf_counter() - start) / steps * 1e3
    digest = hashlib.sha1(b"".join(p.detach().numpy().tobytes() for p in vae.parameters()))
    print(json.dumps({"ms": ms, "weights": digest.hexdigest()[:12],
                      "threads": torch.get_num_threads()}))


def run_setting(processes: int, policy: str | None, steps: int) -> list[dict]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    command = [sys.executable, __file__, "--worker", "--steps", str(steps)]
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
               for _ in range(processes)]
    results = []
    for process in running:
        out, _ = process.communicate()
        if process.returncode:
            raise SystemExit(f"worker failed (exit {process.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200, help="timed training steps a worker")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.steps)
    print(f"DR-VAE training step, demo shapes, {os.cpu_count()} cores; {args.steps} steps a "
          f"worker")
    print(f"{'setting':<24}{'ms a step (each process)':>28}{'steps/s (machine)':>20}")
    weights, threads, base = set(), set(), None
    for name, processes, policy in SETTINGS:
        results = run_setting(processes, policy, args.steps)
        rate = sum(1e3 / r["ms"] for r in results)
        base = base or rate
        each = ", ".join(f"{r['ms']:.1f}" for r in results)
        print(f"{name:<24}{each:>28}{rate:>14.1f} ({rate / base:.2f}x)")
        weights |= {r["weights"] for r in results}
        threads |= {r["threads"] for r in results}
    same = "the same in every worker" if len(weights) == 1 else f"DIFFER: {sorted(weights)}"
    print(f"weights after training: {same} (torch threads: {sorted(threads)})")


if __name__ == "__main__":
    main()
