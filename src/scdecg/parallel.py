"""Process-parallel map with a progress bar, used by the per-ECG signal steps."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

from .progress import progress_bar

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    """Cores available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def imap(func: Callable[[T], R], items: Sequence[T], n_jobs: int = 0, desc: str = "",
         chunksize: int = 16, progress: bool = True, unit: str = "ecg") -> Iterator[R]:
    """Yield ``func(item)`` for every item, in input order.

    ``n_jobs`` <= 0 uses every available core; 1 runs in-process (easier to debug and
    profile); more workers than twice the cores, or than there are chunks of work, are not
    started (10,000 processes would only stall the machine). ``func`` must be a module-level
    function so worker processes can import it.
    """
    n_jobs = default_jobs() if n_jobs <= 0 else n_jobs
    n_jobs = max(1, min(n_jobs, 2 * default_jobs(), -(-len(items) // max(chunksize, 1))))
    bar = progress_bar(total=len(items), desc=desc, disable=not progress, unit=unit, mininterval=1.0)
    try:
        if n_jobs == 1:
            for item in items:
                yield func(item)
                bar.update(1)
            return
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            for result in pool.map(func, items, chunksize=chunksize):
                yield result
                bar.update(1)
    finally:
        bar.close()


def run_all(func: Callable[[T], R], items: Iterable[T], **kwargs) -> list[R]:
    return list(imap(func, list(items), **kwargs))
