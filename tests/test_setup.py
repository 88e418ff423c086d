"""run.py's installer: uv from pip's own package sources, pip when uv fails."""
from __future__ import annotations

import importlib.util
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
