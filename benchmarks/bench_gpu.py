"""GPU readiness in one script: AMP training, one-GPU torchrun (NCCL + SyncBatchNorm), inference,
batched morphing.

On ``--device cuda`` (the default ``auto`` picks CUDA when present) it runs, with the paper
profile's 10-s model (128 channels, 32 blocks, 5000 samples) and beat model:

1. **training with AMP** through the project's own fit loop (:func:`scdecg.training.loop.fit`:
   bf16 autocast, the background batch loader) on an in-memory synthetic training set:
   samples/s of the epoch and peak GPU memory;
2. **torchrun**: ``torch.distributed.run --nproc_per_node 1`` starts a worker that joins an
   NCCL process group (gloo on CPU), converts batch norm to SyncBatchNorm (CUDA only, as
   the fit loop does under torchrun; PyTorch has no CPU SyncBatchNorm), wraps the model in
   DistributedDataParallel and trains ``--ddp-steps`` steps with AMP: samples/s;
3. **inference** of the conv+BN-fused model under ``inference_mode`` with AMP: samples/s;
4. **batched morphing** (:func:`scdecg.morphing.morph_latents` with the paper beat model and
   the DR-VAE decoder): beat-steps/s.

Every check verifies what it computed is finite and prints ``PASS``; the script exits 1 on a
failure. ``--tiny`` shrinks every size so that ``--device cpu --tiny`` runs in seconds
(tests/test_bench_gpu.py). Example, as one prepared run on a GPU machine::

    python benchmarks/bench_gpu.py --device cuda 2>&1 | tee bench_gpu.txt
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

OUTPUTS = ["scd3mo", "scd6mo", "scd1", "scd2", "dead3mo", "dead6mo", "dead1", "dead2",
           "ICD_VT1", "ICD_VF1", "Phi_VT1", "TROPT1", "Acute_MI1", "scd3mo_6mo", "scd6mo_1",
           "scd1_2"]
COVARIATES = ["age", "female"]
#: x01 / x02 paper profiles (the scripts' constants) and the --tiny stand-ins
SIZES = {
    "paper": {"ecg": dict(length=5000, channels=128, n_blocks=32, rep_mp=4, dropout=0.4),
              "beat": dict(length=300, channels=64, n_blocks=32, rep_mp=5, dropout=0.5),
              "train_samples": 2048, "batch": 256, "infer_samples": 2048, "ddp_batch": 64,
              "morph_beats": 256, "morph_steps": 20},
    "tiny": {"ecg": dict(length=500, channels=4, n_blocks=2, rep_mp=1, dropout=0.1),
             "beat": dict(length=300, channels=4, n_blocks=2, rep_mp=1, dropout=0.1),
             "train_samples": 32, "batch": 8, "infer_samples": 32, "ddp_batch": 4,
             "morph_beats": 4, "morph_steps": 2},
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated (CUDA) or this process's peak resident memory (CPU), MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ecg_model(size: dict, device: torch.device):
    from scdecg.models import Architecture, build_model

    torch.manual_seed(0)
    arch = Architecture(outputs=OUTPUTS, covariates=COVARIATES, cumulative=True, **size)
    return build_model(arch).to(device)


def synthetic_dataset(n: int, length: int, seed: int):
    """An in-memory training set of ``n`` noisy 12-lead signals with random 0/1 labels."""
    from scdecg.training.data import SignalDataset

    rng = np.random.default_rng(seed)
    signals = rng.normal(0, 0.3, (n, 12, length)).astype(np.float32)
    targets = rng.integers(0, 2, (n, len(OUTPUTS))).astype(np.float32)
    covariates = rng.normal(0, 1, (n, len(COVARIATES))).astype(np.float32)
    index = pd.DataFrame({"studyId": [f"s{i}" for i in range(n)], "path": "", "scale": 1.0})
    return SignalDataset(index, targets, covariates, length, ["zero_mode"], signals)


def check_training(sizes: dict, device: torch.device) -> dict:
    """One epoch of the fit loop with AMP on the paper 10-s model."""
    from scdecg.training.distributed import Context
    from scdecg.training.loop import FitSettings, fit

    model = ecg_model(sizes["ecg"], device)
    n, length = sizes["train_samples"], sizes["ecg"]["length"]
    train = synthetic_dataset(n, length, 0)
    val = synthetic_dataset(max(n // 8, 2), length, 1)
    settings = FitSettings(lr=1e-5, batch_size=sizes["batch"], min_epochs=1, max_epochs=1,
                           patience=1, amp=True, progress=False, eval_batch_size=sizes["batch"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = fit(model, train, val, OUTPUTS, [False] * len(OUTPUTS), settings, Path(folder),
                     Context(device=device), {"bench": "gpu"})
        sync(device)
        seconds = time.perf_counter() - start
    train_s = result.history[0]["seconds"]
    ok = np.isfinite(result.history[0]["train_loss"])
    return {"check": "training (fit loop, AMP)", "ok": bool(ok),
            "samples_per_s": n / train_s if train_s else float("nan"),
            "wall_s": seconds, "peak_mb": peak_memory_mb(device),
            "detail": f"{n} samples, batch {sizes['batch']}, epoch incl. validation"}


def ddp_worker(sizes: dict, steps: int, out: Path) -> int:
    """Run under torchrun: NCCL (gloo) group, SyncBatchNorm on CUDA, DDP, AMP steps."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from measure import train_step

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = os.environ.get("BENCH_DEVICE") == "cuda"
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    model = ecg_model(sizes["ecg"], device)
    if cuda:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    n_sync = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    net = DistributedDataParallel(model, device_ids=[local] if cuda else None)
    opt = torch.optim.Adam(net.parameters(), lr=1e-5)
    b, length = sizes["ddp_batch"], sizes["ecg"]["length"]
    x = torch.randn(b, 12, length, device=device)
    cov = torch.randn(b, len(COVARIATES), device=device)
    y = torch.randint(0, 2, (b, len(OUTPUTS)), device=device).float()
    is_reg = torch.zeros(len(OUTPUTS), dtype=torch.bool, device=device)
    losses = []
    for step in range(steps + 1):  # step 0 warms up
        if step == 1:
            sync(device)
            start = time.perf_counter()
        losses.append(train_step(net, opt, x, cov, y, is_reg, device))
    sync(device)
    rate = steps * b / (time.perf_counter() - start)
    record = {"backend": dist.get_backend(), "world_size": dist.get_world_size(),
              "sync_batchnorm_layers": n_sync, "samples_per_s": rate,
              "finite": bool(np.isfinite(losses).all())}
    dist.destroy_process_group()
    out.write_text(json.dumps(record))
    return 0


def check_torchrun(sizes_name: str, device: torch.device, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "ddp.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
               "1", str(Path(__file__).resolve()), "--ddp-worker", str(out), "--sizes", sizes_name,
               "--ddp-steps", str(steps)]
        env = dict(os.environ, BENCH_DEVICE=device.type, OMP_NUM_THREADS=os.environ.get(
            "OMP_NUM_THREADS", str(torch.get_num_threads())))
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - start
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            return {"check": "torchrun, 1 process", "ok": False, "detail": " | ".join(tail)}
        record = json.loads(out.read_text())
    want_backend = "nccl" if device.type == "cuda" else "gloo"
    ok = (record["finite"] and record["backend"] == want_backend and record["world_size"] == 1
          and (record["sync_batchnorm_layers"] > 0) == (device.type == "cuda"))
    return {"check": "torchrun, 1 process", "ok": ok, "samples_per_s": record["samples_per_s"],
            "wall_s": wall,
            "detail": f"{record['backend']}, {record['sync_batchnorm_layers']} SyncBatchNorm "
                      f"layers, DDP, AMP, {steps} steps of {sizes_for(sizes_name)['ddp_batch']}"}


def check_inference(sizes: dict, device: torch.device) -> dict:
    from scdecg.models.inference import fuse_for_inference
    from scdecg.training.loop import autocast

    model = ecg_model(sizes["ecg"], device).eval()
    fused = fuse_for_inference(model).to(device)
    b, n = sizes["batch"], sizes["infer_samples"]
    x = torch.randn(b, 12, sizes["ecg"]["length"], device=device)
    cov = torch.randn(b, len(COVARIATES), device=device)
    with torch.inference_mode():
        with autocast(device, True):
            fused(x, cov)  # warm-up
        sync(device)
        start = time.perf_counter()
        done = 0
        while done < n:
            with autocast(device, True):
                logits = fused(x, cov)
            done += b
        sync(device)
        rate = done / (time.perf_counter() - start)
        reference = model(x, cov)
    close = torch.allclose(logits.float(), reference.float(), atol=0.1 if device.type == "cuda" else 1e-3)
    return {"check": "inference (fused, AMP)", "ok": bool(torch.isfinite(logits).all() and close),
            "samples_per_s": rate, "detail": f"batch {b}, fused logits match the model's"}


def check_morphing(sizes: dict, device: torch.device) -> dict:
    from scdecg.models import Architecture, build_model
    from scdecg.morphing import BeatRiskModel, morph_latents
    from scdecg.vae import BeatVAE

    torch.manual_seed(0)
    module = build_model(Architecture(outputs=["scd3mo", "scd6mo", "scd1", "scd2"],
                                      **sizes["beat"])).to(device)
    risk = BeatRiskModel(module, module.outputs)
    decoder = BeatVAE().decoder.to(device).eval()
    for p in decoder.parameters():
        p.requires_grad_(False)
    n, steps = sizes["morph_beats"], sizes["morph_steps"]
    z = torch.randn(n, 512, device=device)
    morph_latents(decoder, risk.target_logit, z[:2], lr=0.01, max_steps=1, stop_logit=None,
                  progress=False)
    sync(device)
    start = time.perf_counter()
    result = morph_latents(decoder, risk.target_logit, z, lr=0.01, max_steps=steps,
                           stop_logit=None, progress=False)
    sync(device)
    rate = n * steps / (time.perf_counter() - start)
    finite = all(torch.isfinite(t).all() for t in _tensors(result))
    return {"check": "batched morphing", "ok": bool(finite), "beat_steps_per_s": rate,
            "detail": f"{n} beats x {steps} steps"}


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)
    elif hasattr(obj, "__dict__"):
        for item in vars(obj).values():
            yield from _tensors(item)


def sizes_for(name: str) -> dict:
    return SIZES[name]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (a quick CPU check)")
    parser.add_argument("--ddp-steps", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--ddp-worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    name = args.sizes or ("tiny" if args.tiny else "paper")
    if args.ddp_worker:
        return ddp_worker(sizes_for(name), args.ddp_steps, args.ddp_worker)

    from scdecg.cli import resolve_device

    device = resolve_device(args.device)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"CPU, {torch.get_num_threads()} threads")
    print(f"device {device} ({where}), torch {torch.__version__}, sizes {name}")
    sizes = sizes_for(name)
    results = []
    checks = (("training (fit loop, AMP)", lambda: check_training(sizes, device)),
              ("torchrun, 1 process", lambda: check_torchrun(name, device, args.ddp_steps)),
              ("inference (fused, AMP)", lambda: check_inference(sizes, device)),
              ("batched morphing", lambda: check_morphing(sizes, device)))
    for title, check in checks:
        try:
            r = check()
        except Exception as exc:  # report every check, then fail
            r = {"check": title, "ok": False, "detail": f"{type(exc).__name__}: {exc}"}
        results.append(r)
        numbers = ", ".join(f"{k} {v:,.1f}" for k, v in r.items()
                            if isinstance(v, float) and k != "ok")
        print(f"{'PASS' if r['ok'] else 'FAIL'}  {r['check']:<26} {numbers}  ({r.get('detail', '')})",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"device": where, "sizes": name, "results": results},
                                        indent=1))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
