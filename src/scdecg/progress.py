"""Progress bars: tqdm's, silenced by ``TQDM_DISABLE`` wherever they are drawn.

tqdm reads ``TQDM_DISABLE`` only as the default of its ``disable`` argument, and every bar of
the package passes its own (quiet when not wanted), so without this the variable did nothing.
"""
from __future__ import annotations

import os

from tqdm.auto import tqdm

#: Values of ``TQDM_DISABLE`` that leave the bars on.
OFF_WORDS = ("", "0", "false", "no")


def progress_bar(*args, disable: bool | None = False, **kwargs) -> tqdm:
    """``tqdm(*args, disable=disable, **kwargs)``, always disabled when ``TQDM_DISABLE`` is set
    to a true value (``1``, ``true``, ...)."""
    if os.environ.get("TQDM_DISABLE", "").strip().lower() not in OFF_WORDS:
        disable = True
    return tqdm(*args, disable=disable, **kwargs)
