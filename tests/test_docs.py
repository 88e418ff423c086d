"""The documents point at things that exist."""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_test_named_in_the_reliability_record_exists():
    text = (ROOT / "docs" / "RELIABILITY.md").read_text()
    named = 0
    for row in text.splitlines():
        current = None
        for file_part, name in re.findall(r"`(test_\w+\.py)?::(test_\w+)`", row):
            current = file_part or current
            assert current, f"'::{name}' has no file before it in: {row}"
            assert name in functions_in(ROOT / "tests" / current), f"{current}::{name} not found"
            named += 1
    assert named >= 40


def test_readme_shows_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "python3 run.py demo" in readme and "python3 run.py test" in readme
    assert "python3 run.py test" in (ROOT / ".ci" / "run").read_text()


def test_docstring_examples_run():
    """The examples in the docstrings of the contract, option and model-kind modules run."""
    import doctest

    from scdecg import cli, workspace
    from scdecg.training import kinds

    for module in (cli, workspace, kinds):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
