"""Faults that cut across steps: a script killed mid-write, and reruns."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from conftest import ROOT, run_script

X04 = "00_Data_Preprocessing/x04_segment_beats.py"


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_x04_killed_mid_write_leaves_no_torn_files_and_a_rerun_completes(pipeline, tmp_path):
    reference = pipeline.ensure("x04")
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(reference / "covariate_df.feather", ws)
    shutil.copy(reference / "x03_gain_report.csv", ws)
    shutil.copytree(reference / "10_sec_ecgs", ws / "10_sec_ecgs")

    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_DISABLE="1")
    proc = subprocess.Popen([sys.executable, str(ROOT / X04), "--n-jobs", "1"], cwd=ws, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    beats = ws / "ecg_beats"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if beats.exists() and sum(1 for _ in beats.iterdir()) >= 20:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "x04 finished before it could be killed"
    assert not (beats / "segmentation_log.csv").exists()

    # Whatever the killed run left is whole: every visible beat file loads with its shape.
    visible = [p for p in beats.rglob("*.npy") if not any(part.startswith(".") for part in
                                                          p.relative_to(beats).parts)]
    assert visible, "the run was killed before it wrote any beat"
    for path in visible:
        assert np.load(path).shape == (12, 300)

    # A rerun cleans up and gives exactly what an uninterrupted run gave.
    run_script(X04, cwd=ws)
    assert tree_digest(beats) == tree_digest(reference / "ecg_beats")


def test_rerunning_the_preprocessing_reproduces_every_output(pipeline, tmp_path):
    reference = pipeline.ensure("x06")
    ws = tmp_path / "ws"
    shutil.copytree(reference, ws, ignore=shutil.ignore_patterns("ecg_beats*", "10_sec_ecgs"))
    for script in ("x01_build_ntuh_df", "x02_generate_dummy_columns", "x03_process_10sec_ecg",
                   "x06_create_aVL_feature"):
        run_script(f"00_Data_Preprocessing/{script}.py", cwd=ws)
    for name in ("covariate_df.feather", "x03_gain_report.csv", "x06_avl_features.csv"):
        assert (ws / name).read_bytes() == (reference / name).read_bytes(), name
    assert tree_digest(ws / "10_sec_ecgs") == tree_digest(reference / "10_sec_ecgs")
