"""One exception type for input the pipeline cannot use, and the script entry guard."""
from __future__ import annotations

import functools
import sys
from typing import Callable


class PipelineError(Exception):
    """Bad or missing input. The message names the file, column, row or value at fault."""


def script_main(func: Callable[..., int | None]) -> Callable[..., int]:
    """Run a script's ``main``; a :class:`PipelineError` becomes one line on stderr and exit 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs) -> int:
        try:
            code = func(*args, **kwargs)
        except PipelineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0 if code is None else int(code)

    return wrapper
