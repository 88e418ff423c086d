"""Shared fixtures: scripts are run as a user would, from a temporary workspace."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scdecg.workspace import DEFAULT_DATA_ROOT, PIPELINE, step, steps_through

ROOT = Path(__file__).resolve().parents[1]


def run_script(script: str, *args: str, cwd: Path, check: bool = True,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``ROOT/script`` with the test interpreter in ``cwd``; return the finished process."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_DISABLE="1")
    proc = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                             f"stderr:\n{proc.stderr}")
    return proc


@pytest.fixture
def script_runner():
    return run_script


# --------------------------------------------------------------------------------------
# One small synthetic study, built once per test session and advanced step by step.
# Tests that need the pipeline's files call ``pipeline.ensure("<step>")``; steps run in
# order, each at most once. Tests must only READ from this workspace: a test that changes
# files copies what it needs into its own tmp_path first.
# --------------------------------------------------------------------------------------
TEST_N_PATIENTS = 240
TEST_SEED = 7

#: The published order up to x07 (scdecg.workspace.PIPELINE), x00 on a smaller study.
PIPELINE_STEPS: list[tuple[str, str, list[str]]] = [
    (s.key, s.script, list(s.args)) for s in steps_through("x07", [
        step("x00").with_args("--data-root", DEFAULT_DATA_ROOT, "--n-patients",
                              str(TEST_N_PATIENTS), "--seed", str(TEST_SEED)),
        *PIPELINE[1:]])]


class PipelineWorkspace:
    def __init__(self, path: Path):
        self.path = path
        self.done: list[str] = []

    def ensure(self, step: str) -> Path:
        names = [name for name, _, _ in PIPELINE_STEPS]
        if step not in names:
            raise KeyError(f"unknown pipeline step {step!r}; known: {names}")
        for name, script, args in PIPELINE_STEPS[: names.index(step) + 1]:
            if name not in self.done:
                run_script(script, *args, cwd=self.path)
                self.done.append(name)
        return self.path


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> PipelineWorkspace:
    return PipelineWorkspace(tmp_path_factory.mktemp("pipeline"))
