"""One exception type for input the pipeline cannot use, and the script entry guard."""
from __future__ import annotations

import errno
import functools
import sys
from typing import Callable


class PipelineError(Exception):
    """Bad or missing input. The message names the file, column, row or value at fault."""


#: A hint added to the one-line message of these operating-system errors.
OS_HINTS = {errno.EACCES: "a read-only file or folder?", errno.EPERM: "not permitted",
            errno.EROFS: "the file system is read-only", errno.ENOSPC: "the disk is full",
            errno.EFBIG: "a file size limit (ulimit -f) or a full disk",
            errno.EDQUOT: "disk quota exceeded", errno.EISDIR: "a folder is in the way",
            errno.ENOTDIR: "a file is where a folder should be",
            errno.EEXIST: "something is in the way"}


def os_error_line(exc: OSError) -> str:
    """``<path>: <what went wrong> (<hint>)`` for an operating-system error."""
    where = f"{exc.filename}: " if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{exc.filename} -> {exc.filename2}: "
    what = exc.strerror or str(exc) or type(exc).__name__
    hint = OS_HINTS.get(exc.errno)
    return f"{where}{what}" + (f" ({hint})" if hint else "")


def script_main(func: Callable[..., int | None]) -> Callable[..., int]:
    """Run a script's ``main``; a :class:`PipelineError`, or an operating-system error such as
    a read-only folder or a full disk, becomes one line on stderr and exit 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs) -> int:
        try:
            code = func(*args, **kwargs)
        except PipelineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"error: {os_error_line(exc)}", file=sys.stderr)
            return 2
        except RuntimeError as exc:
            # pathlib before Python 3.13 reports a symlink loop as a RuntimeError
            if not str(exc).startswith("Symlink loop"):
                raise
            print(f"error: {exc} (a link that points back to itself); give a real folder",
                  file=sys.stderr)
            return 2
        return 0 if code is None else int(code)

    return wrapper
