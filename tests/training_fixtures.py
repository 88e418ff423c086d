"""A tiny training workspace (covariate_df.feather, 10_sec_ecgs/, ecg_beats/) for model tests.

Cases (scd labels) carry a planted bump on aVL so a model has something to learn.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ECG_OUTPUTS = ["scd3mo", "scd6mo", "scd1", "scd2", "dead3mo", "dead6mo", "dead1", "dead2",
               "ICD_VT1", "ICD_VF1", "Phi_VT1", "TROPT1", "Acute_MI1",
               "scd3mo_6mo", "scd6mo_1", "scd1_2"]
REGRESSION = ["age", "qrsDuration", "qtInterval", "qrsFrontAxis", "qrsHorizAxis",
              "rrInterval", "pDuration", "atrialrate", "meanqtc"]
#: Options that make any training script tiny and fast.
TINY = ["--channels", "4", "--n-blocks", "2", "--rep-mp", "1", "--dropout", "0.0",
        "--batch-size", "16", "--lr", "3e-3", "--min-epochs", "1", "--max-epochs", "2"]


def make_workspace(root: Path, n_patients: int = 60, n_samples: int = 1000, beats: int = 3,
                   seed: int = 0) -> pd.DataFrame:
    """Write the files and return the covariate table (one ECG per patient)."""
    rng = np.random.default_rng(seed)
    n = n_patients
    case = rng.random(n) < 0.35
    df = pd.DataFrame({
        "studyId": [f"e{i:04d}" for i in range(n)], "ptId": [f"p{i:04d}" for i in range(n)],
        "include_modelling": True, "scaling_factor": 1000.0,
        "age": rng.uniform(30, 79, n).round(), "female": (rng.random(n) < 0.5).astype(float),
    })
    df["scd3mo"] = (case & (rng.random(n) < 0.3)).astype(float)
    df["scd6mo"] = np.maximum(df["scd3mo"], case & (rng.random(n) < 0.4))
    df["scd1"] = np.maximum(df["scd6mo"], case & (rng.random(n) < 0.7))
    df["scd2"] = case.astype(float)
    for label in ECG_OUTPUTS[4:]:
        df[label] = (rng.random(n) < 0.3).astype(float)
    df.loc[df.index[:3], "TROPT1"] = np.nan  # missing labels are masked
    for col in REGRESSION[1:]:
        df[col] = rng.normal(100, 20, n)
    t = np.arange(n_samples)
    (root / "10_sec_ecgs").mkdir(parents=True, exist_ok=True)
    for i, row in df.iterrows():
        x = rng.normal(0, 50, (12, n_samples)) + 400 * np.sin(2 * np.pi * t / 400)
        if case[i]:
            x[4] += 800 * np.exp(-((t % 400 - 200) / 15.0) ** 2)  # planted aVL bump (µV)
        np.save(root / "10_sec_ecgs" / f"{row.studyId}.npy", x.astype(np.float32))
        folder = root / "ecg_beats" / row.studyId
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(1, beats + 1):
            start = 100 + 250 * k
            np.save(folder / f"{row.studyId}_{k}.npy",
                    (x[:, start:start + 300] / 1000).astype(np.float32))
    df.to_feather(root / "covariate_df.feather")
    return df


def run_main(script: str, *args: str, cwd: Path) -> tuple[int, str, str]:
    """Run a numbered script's ``main(argv)`` in this process (no interpreter start-up) from
    ``cwd``; returns ``(exit code, stdout, stderr)`` (argparse's refusal too: exit 2)."""
    import contextlib
    import importlib.util
    import io
    import os

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location(Path(script).stem, root / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, err, before = io.StringIO(), io.StringIO(), Path.cwd()
    old_env = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = module.main(list(args))
            except SystemExit as exc:   # the parser refused an option
                code = exc.code
    finally:
        os.chdir(before)
        if old_env is None:
            os.environ.pop("TQDM_DISABLE")
        else:
            os.environ["TQDM_DISABLE"] = old_env
    return code, out.getvalue(), err.getvalue()


def refused_line(script: str, *args: str, cwd: Path) -> str:
    """In-process ``main(args)`` exits 2 with one line on stderr (argparse's usage aside), no
    traceback; returns that line."""
    code, _, err = run_main(script, *args, cwd=cwd)
    lines = [line for line in err.splitlines() if not line.startswith(("usage:", " "))]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    return lines[0]
