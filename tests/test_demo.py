"""The demo runner: each step's script as ``__main__`` in one process, stopping at a failure."""
from __future__ import annotations

import io
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from scdecg import demo
from scdecg.errors import PipelineError
from scdecg.workspace import (DEMO_LANES, DEMO_TIMINGS, PIPELINE, REPORT_DIR, REPORT_MD,
                              Step, step)


def script(root: Path, name: str, body: str) -> str:
    (root / name).write_text(body)
    return name


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "repo"
    folder.mkdir()
    return folder


def test_a_step_runs_as_main_with_its_arguments_in_the_workspace(root, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    name = script(root, "step.py", "import sys, os\n"
                                   "if __name__ == '__main__':\n"
                                   "    open('seen.txt', 'w').write(repr(sys.argv[1:]))\n")
    argv, cwd = list(sys.argv), os.getcwd()
    assert demo.run_script(name, ["--n", "3"], ws, root) == 0
    assert (ws / "seen.txt").read_text() == "['--n', '3']"
    script(root, "argv0.py", "import sys\nopen('argv0.txt', 'w').write(sys.argv[0])\n")
    assert demo.run_script("argv0.py", [], ws, root) == 0
    assert (ws / "argv0.txt").read_text() == str(root / "argv0.py")     # as `python <script>`
    assert sys.argv == argv and os.getcwd() == cwd          # restored for the next step


@pytest.mark.parametrize("body, code, message", [
    ("raise SystemExit(0)", 0, ""),
    ("raise SystemExit(None)", 0, ""),
    ("raise SystemExit(2)", 2, ""),
    ("import sys; sys.exit('error: no such file')", 1, "error: no such file"),
    ("raise ValueError('boom')", 1, "ValueError: boom"),
])
def test_exit_codes_are_those_of_a_separate_interpreter(root, tmp_path, capsys, body, code,
                                                        message):
    name = script(root, "step.py", body + "\n")
    assert demo.run_script(name, [], tmp_path, root) == code
    assert message in capsys.readouterr().err


def test_a_package_module_step_runs_as_main(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "fake_demo_step.py").write_text(
        "import sys\nif __name__ == '__main__':\n    open('m.txt', 'w').write(sys.argv[1])\n")
    monkeypatch.syspath_prepend(str(package))
    assert demo.run_script("-m fake_demo_step", ["ok"], tmp_path) == 0
    assert (tmp_path / "m.txt").read_text() == "ok"
    (package / "fake_demo_argv0.py").write_text(
        "import sys\nopen('argv0.txt', 'w').write(sys.argv[0])\n")
    assert demo.run_script("-m fake_demo_argv0", [], tmp_path) == 0
    # as `python -m module`: argv[0] is the module's file
    assert (tmp_path / "argv0.txt").read_text() == str(package / "fake_demo_argv0.py")


def test_the_demo_stops_at_the_first_failing_step_and_times_the_others(root, tmp_path, capsys):
    steps = [Step("a", "first", script(root, "a.py", "open('a.txt', 'w').write('1')\n")),
             Step("b", "second, failing", script(root, "b.py", "raise SystemExit(3)\n")),
             Step("c", "third", script(root, "c.py", "open('c.txt', 'w').write('1')\n"))]
    ws = tmp_path / "ws"
    assert demo.run_demo(ws, steps, root) == 3
    assert (ws / "a.txt").exists() and not (ws / "c.txt").exists()
    timings = pd.read_csv(ws / REPORT_DIR / DEMO_TIMINGS)
    assert timings["step"].tolist() == ["first"] and timings["script"].tolist() == ["a.py"]
    assert timings["seconds"].between(0, 60).all()
    assert "step 'second, failing' failed (exit 3)" in capsys.readouterr().err


def test_the_runner_refuses_a_folder_that_is_not_the_repository(tmp_path, capsys):
    assert demo.main(["--workspace", str(tmp_path / "ws"), "--root", str(tmp_path)]) == 2
    assert "not the repository root" in capsys.readouterr().err
    assert not (tmp_path / "ws").exists()


def test_a_workspace_that_is_a_file_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "ws").write_text("not a folder")
    assert demo.main(["--workspace", str(tmp_path / "ws")]) == 2
    expected = f"error: --workspace {tmp_path / 'ws'}: a file, not a folder"
    assert capsys.readouterr().err.strip() == expected


def test_a_whole_run_times_every_step_and_can_run_again_in_the_same_workspace(root, tmp_path,
                                                                              capsys):
    steps = [Step("a", "first", script(root, "a.py", "import time; time.sleep(0.12)\n"),
                  ("--x", "1")),
             Step("b", "second", script(root, "b.py", "pass\n"))]
    ws = tmp_path / "ws"
    for _ in range(2):                                   # the reports folder exists the 2nd time
        assert demo.run_demo(ws, steps, root) == 0
        out = capsys.readouterr().out
        assert "=== [1/2] first: a.py --x 1" in out and "=== [2/2] second: b.py" in out
        assert re.search(r"--- first: \d+\.\d s\n", out)
        assert re.search(r"--- second: \d+\.\d s\n", out)
        report = re.escape(str(ws / REPORT_DIR / REPORT_MD))
        total = re.search(rf"pipeline finished in (\d+) s; report: {report}", out)
        assert total and int(total.group(1)) < 60
        timings = pd.read_csv(ws / REPORT_DIR / DEMO_TIMINGS)
        assert timings.columns.tolist() == ["step", "script", "seconds", "lane", "started"]
        assert timings["step"].tolist() == ["first", "second"]
        assert timings["lane"].tolist() == [0, 0]                   # no lanes: all in-process
        assert timings["started"].iloc[0] == 0 and timings["started"].iloc[1] >= 0.1
        seconds = timings["seconds"].to_numpy()
        assert seconds[0] >= 0.1 and np.allclose(seconds * 10, np.round(seconds * 10))  # 0.1 s
        assert 0 < seconds[0] < 60 and 0 <= seconds[1] < 60


# --------------------------------------------------------------------------------------
# Lanes: the steps of DEMO_LANES side by side, in processes of their own
# --------------------------------------------------------------------------------------
def test_the_schedule_runs_preprocessing_first_the_lanes_side_by_side_then_the_rest():
    before, lanes, after = demo.demo_schedule(PIPELINE, DEMO_LANES)
    assert [s.key for s in before] == ["x00", "x01", "x02", "x03", "x04", "x05", "x06", "x07",
                                      "x08"]
    assert [s.key for s in lanes[0]] == ["train_beat", "predict_beat", "evaluate_beat", "s08",
                                         "s09"]
    assert [s.key for s in lanes[1]][:4] == ["train_ecg", "train_death_only", "train_low_ef",
                                             "train_beat_independent"]
    # the ensemble reads every model's predictions; morphing needs both beat models
    assert [s.key for s in after] == ["ensemble", "s10", "s12", "report"]
    assert sorted(s.key for part in (before, *lanes, after) for s in part) == \
        sorted(s.key for s in PIPELINE)


def test_without_lanes_the_schedule_runs_every_step_in_order():
    before, lanes, after = demo.demo_schedule(PIPELINE, ())
    assert before == list(PIPELINE) and lanes == [] and after == []


@pytest.mark.parametrize("lanes, message", [
    ((("train_beat", "s08"), ("train_ecg", "s10")),
     "demo lane 2: step 's10' reads modelfits_vae, which step 's08' writes outside its lane"),
    ((("train_beat",), ("s08",)),
     "demo lane 2: step 's08' reads modelfits_beat/ntuh_scd_beat_model_demo, which step "
     "'train_beat' writes outside its lane"),
    ((("s08",), ("train_ecg",)),          # train_beat, after the lanes, writes what s08 reads
     "demo lane 1: step 's08' reads modelfits_beat/ntuh_scd_beat_model_demo, which step "
     "'train_beat' writes outside its lane"),
    ((("predict",), ("x06",)),
     "demo lane 1: step 'predict' reads covariate_df.feather, which step 'x06' writes outside "
     "its lane"),
    ((("evaluate",), ("predict",)),
     "demo lane 1: step 'evaluate' reads predictions/ntuh_scd_model_demo_1/predictions.feather, "
     "which step 'predict' writes outside its lane"),
    ((("x01",), ("x06",)),               # x01 writes the cohort table without reading it
     "demo lane 1: step 'x01' writes covariate_df.feather, which step 'x06' writes outside its "
     "lane"),
    ((("train_beat",), ("train_beat", "train_ecg")),
     "demo lanes: step 'train_beat' is in lanes 1 and 2"),
    ((("train_beat",), ("train_ecgs",)), "demo lane 2: unknown step 'train_ecgs'"),
])
def test_lanes_that_would_read_what_another_lane_writes_are_refused(lanes, message):
    with pytest.raises(PipelineError) as error:
        demo.demo_schedule(PIPELINE, lanes)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("a, b, overlap", [
    ("modelfits_beat/m", "modelfits_beat/m/config.json", True),      # a folder and its file
    ("modelfits_vae", "modelfits_vae/*/vae.pt", True),
    ("predictions/*_run/predictions.feather", "predictions/m_run/predictions.feather", True),
    ("covariate_df.feather", "covariate_df.feather", True),
    ("modelfits_beat/m", "modelfits_beat/m_seed1/config.json", False),
    ("predictions/*_run/predictions.feather", "predictions/ensemble/metrics.csv", False),
    ("ecg_beats", "ecg_beats_morphing", False),
])
def test_paths_overlap_where_one_can_name_or_hold_the_other(a, b, overlap):
    assert demo.paths_overlap(a, b) is overlap and demo.paths_overlap(b, a) is overlap


STUB = """import json, os, sys, time
import torch
if os.path.basename(sys.argv[0]) == {fail!r}:
    raise SystemExit(3)
t0 = time.time()
time.sleep(0.05)
name = os.path.relpath(sys.argv[0], {root!r})
met = None
if {meet!r} and sys.argv[1:] == ["--profile", "demo"] and "train" in name:
    # the first steps of the two lanes wait for each other: only side by side can both go on
    open(os.path.basename(name) + ".here", "w").close()
    other = ({{"x01_train_10s_ecg.py", "x02_train_beats.py"}} - {{os.path.basename(name)}}).pop()
    deadline = time.time() + 30
    while not os.path.exists(other + ".here") and time.time() < deadline:
        time.sleep(0.02)
    met = os.path.exists(other + ".here")
record = {{"script": name, "args": sys.argv[1:], "met": met,
          "pid": os.getpid(), "t0": t0, "t1": time.time(), "threads": torch.get_num_threads(),
          "wait_policy": os.environ.get("OMP_WAIT_POLICY")}}
os.makedirs("runs", exist_ok=True)
with open(f"runs/{{os.getpid()}}_{{time.perf_counter_ns()}}.json", "w") as f:
    json.dump(record, f)
"""


def stub_repository(root: Path, fail: str = "", meet: bool = False) -> None:
    """Every script of the pipeline as a stub that records what ran it, where and when;
    ``fail``: the script (file name) that exits 3; ``meet``: the 10-s and beat models' first
    runs wait (up to 30 s) until both have started."""
    for s in PIPELINE:
        if not s.script.startswith("-m "):
            (root / s.script).parent.mkdir(parents=True, exist_ok=True)
            (root / s.script).write_text(STUB.format(root=str(root), fail=fail, meet=meet))


def runs(ws: Path) -> dict[str, dict]:
    """What each stub recorded, by step key."""
    key_of = {(s.script, tuple(s.args)): s.key for s in PIPELINE}
    records = [json.loads(p.read_text()) for p in (ws / "runs").glob("*.json")]
    by_key = {key_of[(r["script"], tuple(r["args"]))]: r for r in records}
    assert len(by_key) == len(records)                      # no step ran twice
    return by_key


def test_two_jobs_run_the_lanes_side_by_side_in_their_own_processes(root, tmp_path, capsys,
                                                                    monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    stub_repository(root, meet=True)
    ws = tmp_path / "ws"
    steps = [s for s in PIPELINE if s.key != "report"]
    assert demo.run_demo(ws, steps, root, jobs=2) == 0
    ran = runs(ws)
    assert set(ran) == {s.key for s in steps}
    before, lanes, after = demo.demo_schedule(steps, DEMO_LANES)
    main_pid = {ran[s.key]["pid"] for s in before + after}
    lane_pids = [{ran[s.key]["pid"] for s in lane} for lane in lanes]
    assert main_pid == {os.getpid()} and all(len(p) == 1 for p in lane_pids)
    assert len(set.union(*lane_pids) | main_pid) == 3                  # two lanes, two processes
    # every lane step after every step before the lanes, before every step after them
    lane_runs = [ran[s.key] for lane in lanes for s in lane]
    assert max(ran[s.key]["t1"] for s in before) <= min(r["t0"] for r in lane_runs)
    assert max(r["t1"] for r in lane_runs) <= min(ran[s.key]["t0"] for s in after)
    for lane in lanes:                                                    # each lane in order
        starts = [ran[s.key]["t0"] for s in lane]
        assert starts == sorted(starts)
    # side by side: the lanes' first steps, each waiting for the other, both went on
    assert ran["train_beat"]["met"] is True and ran["train_ecg"]["met"] is True
    # the lanes wait without spinning, on as many torch threads as the demo's own process
    assert {ran[s.key]["wait_policy"] for s in before + after} == {None}
    assert {r["wait_policy"] for r in lane_runs} == {"PASSIVE"}
    assert {r["threads"] for r in ran.values()} == {torch.get_num_threads()}
    timings = pd.read_csv(ws / REPORT_DIR / DEMO_TIMINGS)
    assert timings.columns.tolist() == demo.TIMING_COLUMNS
    lane_of = dict(zip(timings["step"], timings["lane"]))
    assert {lane_of[s.title] for s in before + after} == {0}
    assert [{lane_of[s.title] for s in lane} for lane in lanes] == [{1}, {2}]
    assert sorted(timings["step"]) == sorted(s.title for s in steps)
    assert not list((ws / REPORT_DIR).glob("demo_timings_lane*"))         # merged, removed
    log = (ws / REPORT_DIR / "demo_lane1.log").read_text()
    assert "--- beat model: " in log and "--- 10-s risk model" not in log
    out = capsys.readouterr().out
    assert re.search(r"\[lane 2\] --- 10-s risk model: \d+\.\d s", out)


def test_a_failing_lane_stops_the_demo_with_its_exit_code(root, tmp_path, capsys):
    stub_repository(root, fail="x01_train_10s_ecg.py")
    ws = tmp_path / "ws"
    steps = [step(key) for key in ("x00", "train_ecg", "train_beat", "s10")]
    assert demo.run_demo(ws, steps, root, jobs=2, lanes=(("train_beat",), ("train_ecg",))) == 3
    ran = runs(ws)
    assert "x00" in ran and "train_ecg" not in ran and "s10" not in ran
    err = capsys.readouterr().err
    assert "lane 2 failed (exit 3); stopping the other lanes" in err
    assert "step '10-s risk model' failed (exit 3)" in (ws / REPORT_DIR /
                                                         "demo_lane2.log").read_text()


def test_one_job_runs_every_step_in_this_process(root, tmp_path):
    stub_repository(root)
    ws = tmp_path / "ws"
    steps = [step(key) for key in ("x00", "train_ecg", "train_beat", "s10")]
    assert demo.run_demo(ws, steps, root, jobs=1, lanes=(("train_beat",), ("train_ecg",))) == 0
    ran = runs(ws)
    assert set(ran) == {s.key for s in steps} and {r["pid"] for r in ran.values()} == {os.getpid()}
    assert list(sorted(ran, key=lambda key: ran[key]["t0"])) == [s.key for s in steps]
    assert set(pd.read_csv(ws / REPORT_DIR / DEMO_TIMINGS)["lane"]) == {0}


@pytest.mark.parametrize("args, message", [
    (["--jobs", "3"], "error: argument --jobs: invalid choice: 3 (choose from 1, 2)"),
    (["--steps", "x00,train_ecgs"], "error: --steps: unknown step 'train_ecgs'; known: ['x00'"),
])
def test_the_runner_refuses_bad_jobs_and_unknown_steps_in_one_line(tmp_path, capsys, args,
                                                                     message):
    with pytest.raises(SystemExit) as done:            # argparse's exit, or script_main's
        raise SystemExit(demo.main(["--workspace", str(tmp_path / "ws"), *args]))
    assert done.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "ws").exists()


def test_the_data_seed_draws_another_cohort_and_changes_nothing_else(root, tmp_path):
    stub_repository(root)
    ws = tmp_path / "ws"
    assert demo.main(["--workspace", str(ws), "--root", str(root), "--jobs", "1",
                      "--steps", "x00,x01,train_ecg", "--data-seed", "7"]) == 0
    records = {r["script"]: r["args"] for r in
               (json.loads(p.read_text()) for p in (ws / "runs").glob("*.json"))}
    assert records == {step("x00").script: ["--data-root", "arrest-ntuh-ecg/v1",
                                            "--n-patients", "3000", "--seed", "7"],
                       step("x01").script: [], step("train_ecg").script: ["--profile", "demo"]}


@pytest.mark.parametrize("seed", ["-1", "4294967296", "1.5"])
def test_a_data_seed_numpy_cannot_take_is_refused_in_one_line(tmp_path, capsys, seed):
    with pytest.raises(SystemExit) as done:
        demo.main(["--workspace", str(tmp_path / "ws"), "--data-seed", seed])
    assert done.value.code == 2
    assert "--data-seed" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "ws").exists()


def test_a_lane_keeps_the_last_state_of_each_progress_bar_line(tmp_path, capsys):
    stream = io.StringIO("epoch 1:   0%|\repoch 1:  50%|\repoch 1: 100%|\nsaved\n\r   \r\n"
                         "done\n", newline="\n")
    demo._echo(stream, tmp_path / "lane.log", "[lane 1] ")
    assert (tmp_path / "lane.log").read_text() == "epoch 1: 100%|\nsaved\ndone\n"
    assert capsys.readouterr().out == "[lane 1] epoch 1: 100%|\n[lane 1] saved\n[lane 1] done\n"


def test_an_interrupted_demo_stops_its_lanes(root, tmp_path, capsys, monkeypatch):
    stub_repository(root)
    (root / step("train_ecg").script).write_text("import time\ntime.sleep(60)\n")
    real_sleep, polls = time.sleep, []

    def interrupt_once_running(seconds):        # Ctrl-C while the lanes run
        polls.append(seconds)
        if len(polls) == 15:
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(demo.time, "sleep", interrupt_once_running)
    ws = tmp_path / "ws"
    steps = [step(key) for key in ("x00", "train_ecg", "train_beat", "s10")]
    started = time.perf_counter()
    assert demo.run_demo(ws, steps, root, jobs=2, lanes=(("train_beat",), ("train_ecg",))) == 130
    assert time.perf_counter() - started < 30                  # the 60-s step did not finish
    assert "s10" not in runs(ws)
    assert "interrupted; the lanes were stopped" in capsys.readouterr().err
