"""Atomic file output, checked table input and pickle-free checkpoints.

Every file a script writes goes through :func:`atomic_path`: the data are written to a
temporary file in the destination folder, flushed, and renamed over the target, so a run
killed mid-write leaves either the old file or the new one, never a torn one.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from .constants import STEP_SCRIPTS
from .errors import PipelineError

PathLike = str | os.PathLike
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def replace_dir(target: Path, fill: Callable[[Path], None] | None) -> None:
    """Replace folder ``target`` by what ``fill(tmp_dir)`` writes; ``fill=None`` removes it.

    The new content is written into a hidden sibling folder first and renamed into place,
    so a killed run leaves the old folder or the new one, never a mix, and no stale files
    survive a rerun.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    new = None
    if fill is not None:
        new = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            fill(new)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
    if target.exists():
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
        os.rename(target, old)
        if new is not None:
            os.rename(new, target)
        shutil.rmtree(old, ignore_errors=True)
    elif new is not None:
        os.rename(new, target)


def write_feather(df: pd.DataFrame, path: PathLike) -> None:
    """Write ``df`` (index dropped) as Feather, atomically."""
    with atomic_path(path) as tmp:
        df.reset_index(drop=True).to_feather(tmp)


def write_csv(df: pd.DataFrame, path: PathLike, **kwargs: Any) -> None:
    """Write ``df`` as CSV without its index, atomically."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)


def write_text(text: str, path: PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(obj: Any, path: PathLike) -> None:
    """Write JSON (sorted keys, indented) atomically; NumPy scalars become Python numbers."""
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    write_text(json.dumps(obj, indent=2, sort_keys=True, default=default) + "\n", path)


def read_json(path: PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path}: not valid JSON ({exc})") from exc


def save_npy(array: np.ndarray, path: PathLike) -> None:
    """Save one array as ``.npy`` atomically (never pickled)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array), allow_pickle=False)


def load_npy(path: PathLike) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def run_first(step: str | None) -> str:
    """``"run <script of step> first"`` (see ``constants.STEP_SCRIPTS``), or a generic hint."""
    if step is None:
        return "run the earlier pipeline step first"
    return f"run {STEP_SCRIPTS.get(step, step)} first"


def require_columns(df: pd.DataFrame, columns: Iterable[str], source: PathLike,
                    step: str | None = None) -> None:
    """Raise a :class:`PipelineError` naming ``source`` and every missing column (and the
    pipeline step that adds them, when given)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        hint = f" ({run_first(step)})" if step else ""
        raise PipelineError(f"{source}: missing column(s) {', '.join(missing)}{hint}")


def read_feather(path: PathLike, columns: Iterable[str] = (), step: str | None = None
                 ) -> pd.DataFrame:
    """Read a Feather table, checking that it exists and holds ``columns``; ``step`` is the
    pipeline step (a key of ``constants.STEP_SCRIPTS``) that must have run for both."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: file not found ({run_first(step)})")
    df = pd.read_feather(path)
    require_columns(df, columns, path, step)
    return df


def require_dir(path: PathLike, step: str) -> Path:
    """The folder ``path`` that pipeline ``step`` writes; a :class:`PipelineError` naming the
    step when it is absent."""
    path = Path(path)
    if not path.is_dir():
        raise PipelineError(f"{path}: folder not found ({run_first(step)})")
    return path


def save_checkpoint(path: PathLike, tensors: dict[str, Any], config: dict[str, Any]) -> None:
    """Save tensors (nested dicts of tensors/numbers allowed) plus a JSON config string.

    The config travels as a JSON string so the file loads with ``weights_only=True``.
    """
    import torch

    with atomic_path(path) as tmp:
        torch.save({"config_json": json.dumps(config, sort_keys=True), **tensors}, tmp)


def load_checkpoint(path: PathLike, map_location: Any = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`; returns ``(tensors, config)``."""
    import torch

    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise PipelineError(f"{path}: cannot load checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or "config_json" not in payload:
        raise PipelineError(f"{path}: not a scdecg checkpoint (no config_json entry)")
    config = json.loads(payload.pop("config_json"))
    return payload, config
