"""The demo runner: each step's script as ``__main__`` in one process, stopping at a failure."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scdecg import demo
from scdecg.workspace import DEMO_TIMINGS, REPORT_DIR, REPORT_MD, Step


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
        assert timings.columns.tolist() == ["step", "script", "seconds"]
        assert timings["step"].tolist() == ["first", "second"]
        seconds = timings["seconds"].to_numpy()
        assert seconds[0] >= 0.1 and np.allclose(seconds * 10, np.round(seconds * 10))  # 0.1 s
        assert 0 < seconds[0] < 60 and 0 <= seconds[1] < 60
