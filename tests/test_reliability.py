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
import pandas as pd
import pytest

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
    assert (beats / ".x04-unfinished").is_file()     # x05 and beat training refuse the mix

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


# ------------------------------------------------------------------ unfinished-run markers
X03 = "00_Data_Preprocessing/x03_process_10sec_ecg.py"
X05 = "00_Data_Preprocessing/x05_create_morphing_beats.py"


class Killed(BaseException):
    """Stands in for SIGKILL (or an error nothing catches) in the middle of a writer."""


def stop_on_call(monkeypatch, module, name: str, after: int) -> None:
    """Make ``module.name`` run ``after`` times, then raise :class:`Killed`."""
    real, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) > after:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def refusal(call) -> str:
    """The one-line PipelineError ``call()`` raises."""
    from scdecg.errors import PipelineError

    with pytest.raises(PipelineError) as caught:
        call()
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_a_killed_x03_is_refused_by_every_reader_until_x03_is_rerun(tmp_path, monkeypatch):
    from test_gain import clean_ecg, stored
    from training_fixtures import run_main

    import scdecg.io
    from scdecg.beats import segment_cohort
    from scdecg.failures import FailureLog
    from scdecg.features import measure_cohort
    from scdecg.gain import extract_cohort
    from scdecg.plotting import plot_cohort_ecg
    from scdecg.training.kinds import ECG_MODEL

    ws = tmp_path
    monkeypatch.chdir(ws)
    ids = ["a", "b", "c"]
    np.save(ws / "w.npy", np.stack([stored(clean_ecg(i)) for i in range(3)]))
    cohort = pd.DataFrame({"studyId": ids, "ptId": ids, "file_path": ["w.npy"] * 3,
                           "npy_index": [0, 1, 2], "scaling_factor": [1000.0] * 3})
    cohort.to_feather(ws / "covariate_df.feather")
    extract_cohort("covariate_df.feather", "10_sec_ecgs", "x03_gain_report.csv", n_jobs=1)
    marker = ws / "10_sec_ecgs" / ".x03-unfinished"
    assert not marker.exists()
    report = (ws / "x03_gain_report.csv").read_bytes()

    # a run that stops after writing one ECG: the marker says which step and when
    stop_on_call(monkeypatch, scdecg.io, "save_npy", after=1)
    with pytest.raises(Killed):
        extract_cohort("covariate_df.feather", "10_sec_ecgs", "x03_gain_report.csv", n_jobs=1)
    monkeypatch.undo()
    monkeypatch.chdir(ws)
    assert marker.read_text().startswith(f"x03 ({X03}) started writing this folder at ")
    assert (ws / "x03_gain_report.csv").read_bytes() == report     # the old report stays

    expected = (f"10_sec_ecgs: x03 did not finish (killed or stopped by an error: "
                f"10_sec_ecgs/.x03-unfinished); rerun {X03}")
    code, out, err = run_main(X04, "--n-jobs", "1", cwd=ws)          # x04, as a user runs it
    assert code == 2 and err == f"error: {expected}\n"
    assert not (ws / "ecg_beats").exists()
    assert refusal(lambda: measure_cohort("covariate_df.feather", "10_sec_ecgs",
                                          "x03_gain_report.csv", "x06.csv", n_jobs=1)) == expected
    assert refusal(lambda: ECG_MODEL.build_samples(cohort, "10_sec_ecgs", FailureLog("t"),
                                                   "x03_gain_report.csv")) == expected
    assert refusal(lambda: plot_cohort_ecg("covariate_df.feather", "10_sec_ecgs", "a",
                                           "x08.png")) == expected
    # without any gain report, x04 still refuses (it no longer only warns)
    (ws / "x03_gain_report.csv").unlink()
    assert refusal(lambda: segment_cohort(
        "covariate_df.feather", "10_sec_ecgs", "ecg_beats", "x03_gain_report.csv",
        n_jobs=1)) == expected

    # a complete rerun of x03 clears the marker and the readers take the folder again
    extract_cohort("covariate_df.feather", "10_sec_ecgs", "x03_gain_report.csv", n_jobs=1)
    assert sorted(p.name for p in (ws / "10_sec_ecgs").iterdir()) == ["a.npy", "b.npy", "c.npy"]
    assert len(ECG_MODEL.build_samples(cohort, "10_sec_ecgs", FailureLog("t"),
                                       "x03_gain_report.csv")) == 3


def test_a_killed_x04_or_x05_is_refused_by_their_readers_until_rerun(tmp_path, monkeypatch):
    from test_beats import PEAKS, cohort_for_x05, gaussian_ecg

    import scdecg.beats as beats
    from scdecg.baselines import median_beat_matrix
    from scdecg.errors import PipelineError
    from scdecg.failures import FailureLog
    from scdecg.morphing import morph_beat_index
    from scdecg.training.kinds import BEAT_MODEL

    ws = tmp_path
    monkeypatch.chdir(ws)
    ids = ["a", "b", "c"]
    (ws / "10_sec_ecgs").mkdir()
    for i, sid in enumerate(ids):
        np.save(ws / "10_sec_ecgs" / f"{sid}.npy", gaussian_ecg(PEAKS + 7 * i, seed=i) * 1000.0)
    rows = cohort_for_x05(ids, ptId=ids)
    rows.to_feather(ws / "covariate_df.feather")

    def x04():
        return beats.segment_cohort("covariate_df.feather", "10_sec_ecgs", "ecg_beats", "",
                                    n_jobs=1)

    def x05(**options):
        return beats.create_morphing_beats(n_jobs=1, **options)

    x04()
    x05()
    marker4 = ws / "ecg_beats" / ".x04-unfinished"
    marker5 = ws / "ecg_beats_morphing" / ".x05-unfinished"
    assert not marker4.exists() and not marker5.exists()
    # x05 finding no beat near the median writes nothing, so it leaves no marker either
    assert "left as it was" in refusal(lambda: x05(max_z_distance=1e-9))
    assert not marker5.exists()
    (ws / "ecg_beats_morphing" / "x05_beat_distances.failed.csv").unlink()

    # x04 stopped after one ECG's beats (the x03 ECGs changed: every folder is rewritten)
    for i, sid in enumerate(ids):
        np.save(ws / "10_sec_ecgs" / f"{sid}.npy", gaussian_ecg(PEAKS + 9 * i, seed=i) * 1e3)
    stop_on_call(monkeypatch, beats, "write_beats", after=1)
    with pytest.raises(Killed):
        x04()
    monkeypatch.undo()
    monkeypatch.chdir(ws)
    assert marker4.read_text().startswith(f"x04 ({X04}) started writing this folder at ")
    expected = (f"ecg_beats: x04 did not finish (killed or stopped by an error: "
                f"ecg_beats/.x04-unfinished); rerun {X04}")
    assert refusal(x05) == expected
    assert refusal(lambda: BEAT_MODEL.build_samples(rows, "ecg_beats", FailureLog("t"), ""))\
        == expected
    assert refusal(lambda: morph_beat_index(None, beats_dir=ws / "ecg_beats")) == \
        expected.replace("ecg_beats", str(ws / "ecg_beats"), 2)
    assert refusal(lambda: median_beat_matrix(ids, "ecg_beats", 10, FailureLog("t"))) == expected
    x04()                                              # the rerun clears it
    assert not marker4.exists()
    assert len(BEAT_MODEL.build_samples(rows, "ecg_beats", FailureLog("t"), "")) == 24

    # x05 stopped after one ECG's morphing beats
    stop_on_call(monkeypatch, beats, "write_beats", after=1)
    with pytest.raises(Killed):
        x05()
    monkeypatch.undo()
    monkeypatch.chdir(ws)
    assert marker5.exists()
    expected = (f"ecg_beats_morphing: x05 did not finish (killed or stopped by an error: "
                f"ecg_beats_morphing/.x05-unfinished); rerun {X05}")
    assert refusal(lambda: morph_beat_index(None)) == expected
    assert refusal(lambda: BEAT_MODEL.build_samples(rows, "ecg_beats_morphing",
                                                    FailureLog("t"), "")) == expected
    # a failed rerun that writes nothing keeps the earlier run's marker
    with pytest.raises(PipelineError, match="left as it was"):
        x05(max_z_distance=1e-9)
    assert marker5.exists()
    x05()
    assert not marker5.exists() and len(morph_beat_index(None)) > 0
    assert pd.read_csv(ws / "ecg_beats" / "segmentation_log.csv")["n_kept"].sum() == 24
