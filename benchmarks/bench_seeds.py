"""Does morphing find the planted slur on every training seed? The morph targets, seed by seed.

On a demo workspace (``python3 run.py demo``, or x00-x05 of ``scdecg.workspace.PIPELINE``;
``--build`` runs them first), for each ``--seeds`` value ``s`` this runs the training and morph
steps of the demo with seed ``s``: x02 (the beat model(s), ``--seed s``), s08 (the DR-VAE,
``--seed s``) and s10 (morphing, ``--seed s``), each with the demo's arguments, into their own
folders. An extra x02 run with seed ``s + 100`` is the independent model: it never steers a
morph, it only scores them. Then it prints one row per seed:

* ``risk_rose``: share of morphed beats (those that took a step) whose steering logit rose;
* ``avl_rs_diff_fell``: share whose aVL R->S slope (``aVL_rs_diff``, the x06 definition on the
  beat) fell from the reconstruction (t0) to the morph;
* ``avl_rank``: aVL's rank among the 12 leads by mean |change| in the QRS over its amplitude
  (1 = most; the run report's check), ``avl_rank_beat`` the same over the whole beat;
* ``indep_rose`` / ``indep_dlogit``: share of morphed beats whose independent model's risk rose,
  and its mean logit change;

and the targets (risk rose >= 90 %, aVL_rs_diff fell >= 75 %, aVL rank <= 3). With
``--ten-second`` it also trains the demo's 10-s model with seed ``s`` (x01, then x03 and x05 on
the lockbox) and prints its lockbox scd1 AUC beside the median-beat probe's (``ecg_lockbox_auc``
on every lockbox ECG, ``ecg_probe_ecgs_auc`` on the ECGs the probe scores,
``probe_lockbox_auc``, the paired difference's interval and ``probe_verdict``; target, as in the
run report: not below the probe, i.e. the interval not wholly below 0). ``--ten-second-only``
runs that part alone.

    python benchmarks/bench_seeds.py --workspace /tmp/ws --build
    python benchmarks/bench_seeds.py --workspace demo_workspace --ten-second-only
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from measure import machine_line, measure
from scdecg.baselines import PROBE
from scdecg.workspace import (CONFIG_FILE, MODEL_DIRS, MORPH_INDEPENDENT,
                              MORPH_TABLE, VAE_DIR, step, steps_through, took_a_step)

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"risk_rose": 0.90, "avl_rs_diff_fell": 0.75, "avl_rank": 3}
BEAT_STEP, VAE_STEP, MORPH_STEP = "train_beat", "s08", "s10"   # keys of workspace.PIPELINE
ECG_STEP, PREDICT_STEP, EVALUATE_STEP = "train_ecg", "predict", "evaluate"
X02, S08, S10 = (step(k).script for k in (BEAT_STEP, VAE_STEP, MORPH_STEP))
X01, X03, X05 = (step(k).script for k in (ECG_STEP, PREDICT_STEP, EVALUATE_STEP))
BUILD_UNTIL = "x05"
INDEPENDENT_SEED_OFFSET = 100   # the independent model of seed s is trained with seed s + 100
STEERING_SEED_STEP = 10         # steering models of seed s: seeds s, s + 10, s + 20, ...


REUSE = False  # --reuse: keep a model folder that already has its config.json


def run_step(python: str, script: str, args: list[str], workspace: Path, log: Path,
             output: str = "") -> float:
    if REUSE and output and (workspace / output / CONFIG_FILE).exists():
        print(f"[bench] reusing {output}", flush=True)
        return float("nan")
    m = measure([python, str(ROOT / script), *args], workspace, log_path=log)
    if m.returncode:
        sys.exit(f"{script} {' '.join(args)} failed (exit {m.returncode}); see {log}")
    return m.wall_s


def morph_checks(folder: Path) -> dict:
    """The targets measured on one s10 output folder."""
    from scdecg.morph_stats import avl_slopes, lead_change
    from scdecg.morphing import read_morph_outputs

    _, stages = read_morph_outputs(folder)
    table = pd.read_feather(folder / MORPH_TABLE)
    moved = took_a_step(table).to_numpy()
    t0, final = stages["t0"][moved], stages["final"][moved]
    before = np.array([avl_slopes(b)[0] for b in t0])
    after = np.array([avl_slopes(b)[0] for b in final])
    both = np.isfinite(before) & np.isfinite(after)
    leads, _ = lead_change(t0, final)
    avl = leads.loc[leads["lead"] == "aVL"]
    indep = pd.read_csv(folder / MORPH_INDEPENDENT)
    return {"n_morphed": int(moved.sum()),
            "risk_rose": float(np.mean(table["logit_final"][moved] > table["logit_t0"][moved])),
            "avl_rs_diff_fell": float(np.mean(after[both] < before[both])),
            "avl_rank": int(avl["rank_qrs"].iloc[0]),
            "avl_rank_beat": int(avl["rank_relative"].iloc[0]),
            "indep_rose": float(indep["share_raised"].mean()) if len(indep) else np.nan,
            "indep_dlogit": float(indep["mean_logit_change"].mean()) if len(indep) else np.nan}


def ten_second_checks(ws: Path, name: str) -> dict:
    """Lockbox scd1 AUC of the 10-s model ``name`` beside the median-beat probe's, from the
    ``baselines_lockbox.csv`` that its x05 evaluation wrote (the probe fitted on the model's
    own training patients): ``ecg_lockbox_auc`` on every lockbox ECG, ``ecg_probe_ecgs_auc``
    on those the probe scores (the ECGs with x04 beats), ``probe_lockbox_auc``, the paired
    difference's interval and its verdict (above, tie or below: the run report's check)."""
    from scdecg.metrics import difference_verdict
    from scdecg.workspace import BASELINES_STEM, predictions_folder, split_file

    table = pd.read_csv(split_file(ws / predictions_folder(name), BASELINES_STEM, "lockbox")
                        ).set_index("model")
    probe = table.loc[PROBE]   # the linear baseline the 10-s model is held against
    return {"ecg_lockbox_auc": float(table.at[name, "auc"]),
            "ecg_probe_ecgs_auc": float(probe["model_auc"]),
            "probe_lockbox_auc": float(probe["auc"]),
            "difference_lo": float(probe["difference_lo"]),
            "difference_hi": float(probe["difference_hi"]),
            "probe_verdict": difference_verdict(probe["difference_lo"], probe["difference_hi"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--build", action="store_true", help="run the demo's x00-x05 there first")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--n-models", type=int, default=1,
                   help="beat models steering each morph (their mean scd1 logit)")
    p.add_argument("--extra-s10", nargs=argparse.REMAINDER, default=[],
                   help="extra s10 arguments (last on the command line)")
    p.add_argument("--ten-second", action="store_true",
                   help="also train the 10-s model with each seed and compare its lockbox scd1 "
                        "AUC with the median-beat probe's (x05 fits the probe on its split)")
    p.add_argument("--ten-second-only", action="store_true",
                   help="only the 10-s model's part (--ten-second without the beat models, "
                        "the DR-VAE and the morphs)")
    p.add_argument("--reuse", action="store_true",
                   help="skip a training step whose model folder already has a config.json")
    args = p.parse_args()
    args.ten_second = args.ten_second or args.ten_second_only
    global REUSE
    REUSE = args.reuse
    ws = args.workspace.resolve()
    ws.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    logs = ws / "bench_seeds_logs"
    logs.mkdir(exist_ok=True)
    if args.build:
        for s in steps_through(BUILD_UNTIL):
            run_step(args.python, s.script, list(s.args), ws, logs / f"{Path(s.script).stem}.log")
    rows = []
    for seed in args.seeds:
        if args.ten_second_only:
            seconds, row = {}, {"seed": seed}
        else:
            seconds, row = morph_part(args, ws, logs, seed)
        if args.ten_second:
            ecg = f"bench_ecg_s{seed}"
            a = step(ECG_STEP).with_option("--seed", str(seed)).with_option("--model-name", ecg).args
            seconds["x01"] = run_step(args.python, X01, a, ws, logs / f"{ecg}.log",
                                      f"{MODEL_DIRS['ecg']}/{ecg}")
            run_step(args.python, X03, ["--model-name", ecg, "--part", "lockbox"], ws,
                     logs / f"{ecg}_predict.log")
            run_step(args.python, X05, ["--model-name", ecg, "--part", "lockbox"], ws,
                     logs / f"{ecg}_evaluate.log")
            row.update(ten_second_checks(ws, ecg))
        rows.append({**row, **{f"{k}_s": round(v, 1) for k, v in seconds.items()}})
        print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    met = pd.Series(True, index=table.index)
    if not args.ten_second_only:
        met &= ((table["risk_rose"] >= TARGETS["risk_rose"])
                & (table["avl_rs_diff_fell"] >= TARGETS["avl_rs_diff_fell"])
                & (table["avl_rank"] <= TARGETS["avl_rank"]))
    if args.ten_second:
        met &= table["probe_verdict"] != "below"
    table["targets_met"] = np.where(met, "yes", "NO")
    print(f"\n{machine_line()}")
    morph_targets = (f"risk rose >= {TARGETS['risk_rose']:.0%}, aVL_rs_diff fell >= "
                     f"{TARGETS['avl_rs_diff_fell']:.0%}, aVL rank (QRS change over amplitude) <= "
                     f"{TARGETS['avl_rank']}")
    ten_second_target = ("10-s model's lockbox scd1 AUC on the probe's ECGs not below the "
                         "median-beat probe's (the paired interval of the difference not wholly "
                         "below 0)")
    print("targets: " + "; ".join(
        ([] if args.ten_second_only else [morph_targets])
        + ([ten_second_target] if args.ten_second else [])))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def morph_part(args, ws: Path, logs: Path, seed: int) -> tuple[dict, dict]:
    """Seed ``seed``'s beat model(s), independent model, DR-VAE and morphs: the steps'
    seconds and the morph checks."""
    seconds = {"x02": 0.0}
    steering = []
    for k in range(args.n_models):          # the steering beat model(s)
        name = f"bench_beat_s{seed}_{k}"
        a = (step(BEAT_STEP).with_option("--seed", str(seed + STEERING_SEED_STEP * k))
             .with_option("--model-name", name).args)
        seconds["x02"] += run_step(args.python, X02, a, ws, logs / f"{name}.log",
                                   f"{MODEL_DIRS['beat']}/{name}")
        steering.append(f"{MODEL_DIRS['beat']}/{name}")
    indep = f"bench_beat_s{seed}_independent"
    a = (step(BEAT_STEP).with_option("--seed", str(seed + INDEPENDENT_SEED_OFFSET))
         .with_option("--model-name", indep).args)
    run_step(args.python, X02, a, ws, logs / f"{indep}.log", f"{MODEL_DIRS['beat']}/{indep}")
    vae = f"bench_vae_s{seed}"
    s08 = (step(VAE_STEP).with_option("--seed", str(seed)).with_option("--name", vae)
           .with_option("--beat-model", *steering).args)
    seconds["s08"] = run_step(args.python, S08, s08, ws, logs / f"{vae}.log",
                              f"{VAE_DIR}/{vae}")
    out = f"bench_morph_s{seed}"
    s10 = (step(MORPH_STEP).with_option("--seed", str(seed))
           .with_option("--vae", f"{VAE_DIR}/{vae}").with_option("--output-dir", out)
           .with_option("--independent-models", f"{MODEL_DIRS['beat']}/{indep}").args)
    seconds["s10"] = run_step(args.python, S10, [*s10, *args.extra_s10], ws,
                              logs / f"{out}.log")
    return seconds, {"seed": seed, **morph_checks(ws / out)}


if __name__ == "__main__":
    main()
