"""Can the training input pipeline keep up with the model? Loader samples/s beside training samples/s.

Writes ``--n-ecgs`` simulated 10-s ECGs (float32 µV, 12 × 5000, as x03 writes them) and
``--n-beats`` beats (float32 mV, 12 × 300, as x04 writes them) to a workspace, builds the
training datasets the way ``x01``/``x02`` do (per-lead zero-mode), and times

* the loader alone: batches of the profile's batch size in a shuffled order, each sample cut
  at a random offset as in training (the fit loop's per-sample generators, ``--cut`` samples
  shorter than the files so the random window is really taken), converted to tensors; once
  with the signals held in memory (the default up to ``--memory-limit-gb``) and once read
  from the ``.npy`` files per batch (lazy mode, for cohorts above the limit);
* the model's training step (forward, masked loss, backward, Adam) of the same profile on
  ``--device``, with ``--model-batch`` samples per step (CPU: a small batch; samples/s barely
  depends on it there).

The ratio loader / model says how many times faster the loader is; on a GPU it should be
>= 5. Example::

    python benchmarks/bench_loader.py --profiles demo paper
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from measure import fresh_workspace, machine_line

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {"ecg": ROOT / "01_Predictive_Model" / "x01_train_10s_ecg.py",
           "beat": ROOT / "01_Predictive_Model" / "x02_train_beats.py"}


def script_settings(kind: str, profile: str) -> dict:
    """The x01 / x02 constants with the profile's overrides (the scripts are the source)."""
    spec = importlib.util.spec_from_file_location(f"bench_{kind}", SCRIPTS[kind])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    keys = ("OUTPUTS", "LENGTH", "CHANNELS", "N_BLOCKS", "REP_MP", "DROPOUT", "CUMULATIVE",
            "BATCH_SIZE", "PREPROCESSING")
    settings = {k.lower(): getattr(module, k) for k in keys}
    settings["covariates"] = list(getattr(module, "COVARIATES", []))
    settings["regression"] = list(getattr(module, "REGRESSION", []))
    settings.update(module.PROFILES[profile])
    return settings


def write_files(ws: Path, n_ecgs: int, n_beats: int, seed: int) -> dict[str, pd.DataFrame]:
    """Simulated 10-s ECGs and beats on disk; one items table per kind."""
    from scdecg import synthetic
    from scdecg.io import save_npy

    rng = np.random.default_rng(seed)
    ecgs, beats = [], []
    for i in range(n_ecgs):
        ecg_uv = synthetic.simulate_ecg(synthetic.sample_ecg_params(rng), rng).astype(np.float32)
        path = ws / "10_sec_ecgs" / f"e{i:06d}.npy"
        save_npy(ecg_uv, path)
        ecgs.append((f"e{i:06d}", str(path), 1000.0))
        for k in range(-(-n_beats // n_ecgs)):
            if len(beats) < n_beats:
                start = int(rng.integers(0, ecg_uv.shape[1] - 300))
                path = ws / "ecg_beats" / f"e{i:06d}" / f"e{i:06d}_{k}.npy"
                save_npy(ecg_uv[:, start:start + 300] / 1000.0, path)
                beats.append((f"e{i:06d}", str(path), 1.0))
    return {kind: pd.DataFrame(rows, columns=["studyId", "path", "scale"])
            for kind, rows in (("ecg", ecgs), ("beat", beats))}


def dataset(items: pd.DataFrame, s: dict, cut: int, memory_limit_gb: float):
    from scdecg.training.data import build_dataset

    items = items.copy()
    outputs = list(s["outputs"])
    rng = np.random.default_rng(0)
    for col in outputs + s["covariates"]:
        items[col] = rng.integers(0, 2, len(items)).astype(float)
    regression = [o in s["regression"] for o in outputs]
    return build_dataset(items, outputs, regression, s["covariates"], {}, {}, s["length"] - cut,
                         list(s["preprocessing"]), memory_limit_gb, name="bench", progress=False)


def loader_rate(data, batch_size: int, seconds: float) -> float:
    """Samples/s of the fit loop's batch assembly (shuffled order, per-sample random windows)."""
    from scdecg.training.loop import to_device

    device = torch.device("cpu")
    done, start, epoch = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        epoch += 1
        order = np.random.default_rng(epoch).permutation(len(data))
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            rngs = [np.random.default_rng([0, epoch, int(i)]) for i in idx]
            x, cov, y = to_device(data.batch(idx, rngs), device)
            done += len(idx)
            if time.perf_counter() - start >= seconds:
                break
    return done / (time.perf_counter() - start)


def model_rate(s: dict, batch: int, iters: int, device: torch.device) -> float:
    """Training samples/s of the profile's model (forward, masked loss, backward, Adam)."""
    from scdecg.models import Architecture, build_model
    from measure import train_step

    torch.manual_seed(0)
    outputs = list(s["outputs"])
    arch = Architecture(outputs=outputs, length=s["length"], channels=s["channels"],
                        n_blocks=s["n_blocks"], rep_mp=s["rep_mp"], dropout=s["dropout"],
                        covariates=s["covariates"], cumulative=s["cumulative"])
    model = build_model(arch).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    is_reg = torch.tensor([o in s["regression"] for o in outputs], device=device)
    x = torch.randn(batch, 12, s["length"], device=device)
    cov = torch.randn(batch, len(s["covariates"]), device=device)
    y = torch.randint(0, 2, (batch, len(outputs)), device=device).float()

    def step():
        train_step(model, opt, x, cov, y, is_reg, device)

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return iters * batch / (time.perf_counter() - start)


def main() -> int:
    from scdecg.cli import resolve_device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-ecgs", type=int, default=512)
    parser.add_argument("--n-beats", type=int, default=2048)
    parser.add_argument("--profiles", nargs="+", default=["demo", "paper"])
    parser.add_argument("--cut", type=int, default=100,
                        help="model input this many samples shorter than the files (0: no cut)")
    parser.add_argument("--seconds", type=float, default=4.0, help="loader timing per case")
    parser.add_argument("--model-batch", type=int, default=0,
                        help="samples per timed training step (0: the profile's, at most 8 on CPU)")
    parser.add_argument("--model-iters", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/bench_loader"))
    args = parser.parse_args()
    device = resolve_device(args.device)
    ws = fresh_workspace(args.workspace)
    print(machine_line(), f"torch threads {torch.get_num_threads()}, device {device}")
    items = write_files(ws, args.n_ecgs, args.n_beats, args.seed)
    print(f"{args.n_ecgs} 10-s ECG files, {args.n_beats} beat files; random cut of "
          f"{args.cut} samples; loader timed {args.seconds:g} s per case\n")
    header = (f"{'model':<5} {'profile':<7} {'batch':>5} {'loader, memory':>15} "
              f"{'loader, files':>14} {'model train':>12} {'memory/model':>13} {'files/model':>12}")
    print(header + "\n" + "-" * len(header))
    for kind in ("ecg", "beat"):
        for profile in args.profiles:
            s = script_settings(kind, profile)
            in_memory = loader_rate(dataset(items[kind], s, args.cut, 4.0), s["batch_size"],
                                    args.seconds)
            from_files = loader_rate(dataset(items[kind], s, args.cut, 0.0), s["batch_size"],
                                     args.seconds)
            batch = args.model_batch or (s["batch_size"] if device.type == "cuda"
                                         else min(s["batch_size"], 8))
            model = model_rate(s, batch, args.model_iters, device)
            print(f"{kind:<5} {profile:<7} {s['batch_size']:>5} {in_memory:>13,.0f}/s "
                  f"{from_files:>12,.0f}/s {model:>10,.1f}/s {in_memory / model:>12,.0f}x "
                  f"{from_files / model:>11,.0f}x", flush=True)
    print("\nsamples/s; the ratios say how many times faster the loader assembles training "
          "batches than the model trains on them (model batch: "
          f"{args.model_batch or 'the profile' + chr(39) + 's' + (', at most 8' if device.type != 'cuda' else '')})")
    import shutil

    shutil.rmtree(ws, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
