"""run.py's installer: uv from pip's own package sources, pip when uv fails."""
from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("run_for_setup_test", ROOT / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pip_sources_become_uv_options_once_each(run):
    listing = "\n".join([
        "global.find-links='/opt/wheels'",
        ":env:.find-links='/opt/wheels'",              # the same value from another scope
        "global.extra-index-url='file:///a/simple file:///b/simple'",
        "global.index-url='https://mirror.example/simple'",
        "global.constraint='/etc/pip/constraints.txt'",
        "global.cert='/etc/ssl/certs/ca.crt'",          # not a package source
        ":env:.default-timeout='180'",
        "not a config line"])
    assert run.sources_as_uv_options(listing) == [
        "--find-links", "/opt/wheels",
        "--extra-index-url", "file:///a/simple", "--extra-index-url", "file:///b/simple",
        "--index-url", "https://mirror.example/simple",
        "--constraint", "/etc/pip/constraints.txt"]
    assert run.sources_as_uv_options("") == []


def _recorder(fail_on: str | None):
    calls = []

    def fake_run(cmd, check=False, **kwargs):
        calls.append(cmd)
        if cmd[-2:] == ["config", "list"]:
            return subprocess.CompletedProcess(cmd, 0, stdout="global.find-links='/w'\n")
        if fail_on and fail_on in cmd:
            raise subprocess.CalledProcessError(1, cmd)
        return subprocess.CompletedProcess(cmd, 0)
    return calls, fake_run


def test_uv_installs_from_pips_sources(run, monkeypatch):
    calls, fake = _recorder(None)
    monkeypatch.setattr(run.subprocess, "run", fake)
    run.install("/v/bin/python", [["-r", "req.txt"]], "uv")
    assert calls[0][-1] == "uv" and calls[0][1:4] == ["-m", "pip", "install"]
    assert calls[0][calls[0].index("--timeout") + 1] == "20"     # no long hang when offline
    assert calls[-1][:6] == ["/v/bin/python", "-m", "uv", "pip", "install", "--quiet"]
    assert calls[-1][-4:] == ["--find-links", "/w", "-r", "req.txt"]


def test_a_failing_uv_falls_back_to_pip(run, monkeypatch, capsys):
    calls, fake = _recorder("uv")       # installing uv itself fails (no index reachable)
    monkeypatch.setattr(run.subprocess, "run", fake)
    run.install("/v/bin/python", [["-r", "req.txt"]], "uv")
    assert calls[-1][1:4] == ["-m", "pip", "install"] and calls[-1][-2:] == ["-r", "req.txt"]
    assert "installing with pip instead" in capsys.readouterr().out


def test_pip_only_never_touches_uv(run, monkeypatch):
    calls, fake = _recorder(None)
    monkeypatch.setattr(run.subprocess, "run", fake)
    run.install("/v/bin/python", [["--no-deps", "-e", "."]], "pip")
    assert len(calls) == 1 and "uv" not in calls[0]


def test_uv_is_installed_once_for_every_package_set(run, monkeypatch):
    calls, fake = _recorder(None)
    monkeypatch.setattr(run.subprocess, "run", fake)
    run.install("/v/bin/python", [["-r", "req.txt"], ["--no-deps", "-e", "."]], "uv")
    assert sum(c[-1] == "uv" for c in calls) == 1
    assert [c[-2:] for c in calls if c[1:3] == ["-m", "uv"]] == [["-r", "req.txt"], ["-e", "."]]


def test_the_demo_runs_in_the_environment_with_its_own_or_the_given_jobs(run, monkeypatch):
    calls, fake = _recorder(None)
    monkeypatch.setattr(run.subprocess, "run", fake)
    assert run.run_demo("/v/bin/python", Path("/w")) == 0
    assert run.run_demo("/v/bin/python", Path("/w"), jobs=1) == 0
    assert run.run_demo("/v/bin/python", Path("/w"), data_seed="2") == 0
    assert calls == [["/v/bin/python", "-m", "scdecg.demo", "--workspace", "/w",
                      "--root", str(ROOT)],
                     ["/v/bin/python", "-m", "scdecg.demo", "--workspace", "/w",
                      "--root", str(ROOT), "--jobs", "1"],
                     ["/v/bin/python", "-m", "scdecg.demo", "--workspace", "/w",
                      "--root", str(ROOT), "--data-seed", "2"]]


def test_the_demo_refuses_arguments_it_does_not_know_before_setting_anything_up(run, capsys,
                                                                                  monkeypatch):
    monkeypatch.setattr(run, "ensure_environment", lambda *a: pytest.fail("set up"))
    with pytest.raises(SystemExit) as done:
        run.main(["demo", "--data-seeds", "2"])
    assert done.value.code == 2
    assert "unrecognized arguments: --data-seeds 2" in capsys.readouterr().err


def test_the_bytecode_warm_up_imports_what_the_pipeline_uses(run):
    import sys
    exec(run.WARM_IMPORTS, {})                     # every name in it exists and imports
    assert {"scdecg.demo", "scdecg.training.loop", "scdecg.morph_stats"} <= set(sys.modules)
    for lazily_imported in ("torch._dynamo", "matplotlib.backends.backend_agg"):
        assert lazily_imported in run.WARM_IMPORTS


class FakeProcess:
    def __init__(self, returncode, stderr=""):
        self.returncode, self.stderr = returncode, stderr

    def communicate(self):
        return "", self.stderr


def test_a_finished_warm_up_is_remembered_and_a_failed_one_reported(run, tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.setattr(run, "WARMED", tmp_path / "warmed")
    run.finish_warm_up(FakeProcess(1, "Traceback ...\nImportError: no module named x\n"))
    assert "warm-up failed (ImportError: no module named x)" in capsys.readouterr().out
    assert not (tmp_path / "warmed").exists()
    run.finish_warm_up(FakeProcess(0))
    assert (tmp_path / "warmed").exists()
    run.finish_warm_up(None)                       # nothing was due


def test_the_warm_up_is_due_until_one_has_finished(run, tmp_path, monkeypatch):
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.touch()
    monkeypatch.setattr(run, "VENV", tmp_path)
    monkeypatch.setattr(run, "STAMP", tmp_path / "stamp")
    monkeypatch.setattr(run, "WARMED", tmp_path / "warmed")
    (tmp_path / "stamp").write_text(run._requirements_hash())   # installed, never warmed
    started = []
    monkeypatch.setattr(run, "warm_bytecode", lambda p: started.append(p) or "process")
    monkeypatch.setattr(run, "install", lambda *a: pytest.fail("nothing to install"))
    assert run.ensure_environment(True) == (str(python), "process")
    (tmp_path / "warmed").touch()
    assert run.ensure_environment(True) == (str(python), None)
    assert started == [str(python)]
    assert run.ensure_environment(False)[1] is None              # not our environment


def test_the_warm_up_writes_bytecode_even_where_the_environment_forbids_it(run, tmp_path,
                                                                          monkeypatch):
    import sys
    (tmp_path / "warm_me.py").write_text("VALUE = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setattr(run, "WARM_IMPORTS", "import warm_me")
    monkeypatch.setattr(run, "WARMED", tmp_path / "warmed")
    run.finish_warm_up(run.warm_bytecode(sys.executable))
    assert list((tmp_path / "__pycache__").glob("warm_me.*.pyc"))
    assert (tmp_path / "warmed").exists()
    assert os.environ["PYTHONDONTWRITEBYTECODE"] == "1"       # ours only, not the caller's


def test_the_whole_suite_runs_on_one_worker_per_core_with_a_share_of_the_cores(run,
                                                                             monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    command, env = run.test_command("py", [], cores=2, has_xdist=True)
    assert command == ["py", "-m", "pytest", "-q", "-n", "2", "--dist", "loadfile", "tests"]
    assert env["OMP_NUM_THREADS"] == "1"
    command, env = run.test_command("py", [], cores=16, has_xdist=True)
    assert command[command.index("-n") + 1] == str(run.MAX_TEST_WORKERS)
    assert env["OMP_NUM_THREADS"] == str(16 // run.MAX_TEST_WORKERS)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")                  # the user's own setting stays
    assert run.test_command("py", [], cores=2, has_xdist=True)[1]["OMP_NUM_THREADS"] == "3"


def test_serial_with_one_core_without_xdist_or_with_arguments_of_ones_own(run, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    serial = ["py", "-m", "pytest", "-q", "tests"]
    for cores, has_xdist in ((1, True), (8, False)):
        command, env = run.test_command("py", [], cores=cores, has_xdist=has_xdist)
        assert command == serial and "OMP_NUM_THREADS" not in env
    command, env = run.test_command("py", ["tests/test_core.py", "-x"], cores=8, has_xdist=True)
    assert command == ["py", "-m", "pytest", "-q", "tests/test_core.py", "-x"]
    assert "OMP_NUM_THREADS" not in env


def test_xdist_is_looked_for_in_the_environment_that_runs_the_tests(run, monkeypatch):
    import sys
    monkeypatch.setattr(run, "usable_cores", lambda: 2)
    command, _ = run.test_command(sys.executable, [])
    assert ("-n" in command) == (importlib.util.find_spec("xdist") is not None)
    command, _ = run.test_command(str(ROOT / "no" / "python"), [], cores=2)
    assert "-n" not in command                          # nothing there to import xdist with
