"""Progress bars honour tqdm's own TQDM_DISABLE, whatever ``disable`` the caller passed."""
from __future__ import annotations

import pytest

from scdecg.progress import progress_bar


@pytest.mark.parametrize("value, silenced", [("1", True), ("true", True), ("0", False),
                                             ("", False), ("no", False)])
def test_tqdm_disable_silences_every_bar(monkeypatch, capsys, value, silenced):
    monkeypatch.setenv("TQDM_DISABLE", value)
    for _ in progress_bar(range(3), desc="counting", disable=False):
        pass
    assert bool(progress_bar(range(1), disable=False).disable) == silenced
    err = capsys.readouterr().err
    assert ("counting" in err) != silenced


def test_without_the_variable_the_callers_choice_stands(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert progress_bar(range(1), disable=True).disable
    assert not progress_bar(range(1), disable=False).disable
