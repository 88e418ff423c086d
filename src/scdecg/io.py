"""Atomic file output, checked table input and pickle-free checkpoints.

Every file a script writes goes through :func:`atomic_path`: the data are written to a
temporary file in the destination folder, flushed, and renamed over the target, so a run
killed mid-write leaves either the old file or the new one, never a torn one.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
import unicodedata
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NoReturn

import numpy as np
import pandas as pd

from .workspace import IMPORT_STEP, STEP_SCRIPTS
from .errors import PipelineError

PathLike = str | os.PathLike
_UMASK = os.umask(0)
os.umask(_UMASK)


# ----------------------------------------------------------------------------- record names
#: Longest record id used as a file name, in UTF-8 bytes: file systems allow 255 bytes per
#: name, and the longest name made from an id, :func:`replace_dir`'s ``.<id>.<32 hex>.old``,
#: adds 38.
MAX_NAME_BYTES = 200
_UNSAFE_CHARACTERS = re.compile(r"[/\\\x00-\x1f\x7f:*?\"<>|]")
#: Names Windows reserves for devices, with or without an extension ("nul", "CON.npy").
_RESERVED_NAMES = re.compile(r"(?i)(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?")


def unsafe_name_reason(name: object) -> str | None:
    """Why ``name`` (an ECG id) cannot be a file or folder name of its own, or ``None``.

    Refused: empty, ``.``/``..``, a leading dot (hidden; the pipeline's temporary files start
    with one), path separators, control characters, characters and device names Windows
    refuses, a trailing dot, surrounding whitespace, and names longer than
    :data:`MAX_NAME_BYTES` bytes in UTF-8 (``é`` is two).
    So an id can never point outside the folder it is written into.
    """
    if not isinstance(name, str):
        return f"not text ({type(name).__name__})"
    if not name:
        return "empty"
    if name.startswith("."):
        return "starts with '.'"
    if name != name.strip():
        return "leading or trailing whitespace"
    bad = _UNSAFE_CHARACTERS.search(name)
    if bad:
        return f"contains {bad.group()!r}"
    if _RESERVED_NAMES.fullmatch(name):
        return "a device name Windows reserves (CON, PRN, AUX, NUL, COM1-9, LPT1-9)"
    if name.endswith("."):
        return "ends with '.' (Windows drops it: another file's name)"
    try:
        size = len(name.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return "not valid Unicode text (a lone surrogate)"
    if size > MAX_NAME_BYTES:
        return (f"{size} UTF-8 bytes in {len(name)} characters, more than the "
                f"{MAX_NAME_BYTES} a file name may take")
    return None


def file_name_key(name: str) -> str:
    """``name`` as a case-insensitive, Unicode-normalising file system (macOS, Windows) sees
    it: two ids with one key are one file there (``CaseDup``/``casedup``, ``café`` composed
    and decomposed)."""
    return unicodedata.normalize("NFC", name).casefold()


def check_names(names: Iterable[object], column: str, source: PathLike,
                hint: str = "rebuild the table with x01") -> None:
    """Raise one :class:`PipelineError` naming the first id of ``column`` unusable as a file name."""
    bad = [(n, r) for n in names if (r := unsafe_name_reason(n)) is not None]
    if bad:
        name, reason = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise PipelineError(f"{source}: {column} {name!r} cannot be used as a file name "
                            f"({reason}){more}; {hint}")


def float_column(table: pd.DataFrame, column: str, source: PathLike,
                 hint: str = "rebuild the table with x02") -> np.ndarray:
    """``table[column]`` as float64 (missing values NaN); a value that is not a number
    (``"abc"``) is refused in one :class:`PipelineError` naming ``source``, the studyId and
    the value."""
    values = table[column]
    number = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & number.isna()
    if bad.any():
        i = bad.idxmax()
        raise PipelineError(f"{source}: {column} {values[i]!r} of studyId "
                            f"{table.at[i, 'studyId']!r} is not a number ({int(bad.sum())} "
                            f"row(s)); {hint}")
    return number.to_numpy(dtype=np.float64)


def check_ids(table: pd.DataFrame, source: PathLike, column: str = "studyId",
              unique: bool = True, patients: bool = False,
              hint: str = "rebuild the table with x01") -> None:
    """Refuse (one :class:`PipelineError` naming ``source``) a table whose ``column`` holds a
    value that is not text usable as a file name (numbers too: ``118.0`` is not the id
    ``"0000118"``) or, with ``unique``, a repeated id; with ``patients``, a missing ``ptId``."""
    check_names(table[column], column, source, hint)
    repeated = table[column][table[column].duplicated()]
    if unique and len(repeated):
        raise PipelineError(f"{source}: column {column} has duplicates, e.g. "
                            f"{repeated.iloc[0]!r} ({repeated.nunique()} repeated id(s))")
    if patients and "ptId" not in table.columns:
        raise PipelineError(f"{source}: no ptId column; every ECG needs its patient")
    if patients and table["ptId"].isna().any():
        missing = table.loc[table["ptId"].isna(), column]
        raise PipelineError(f"{source}: ptId missing for {column} {missing.iloc[0]!r} "
                            f"({len(missing)} row(s)); every ECG needs its patient")


def plain_value(value: object) -> object:
    """A NumPy scalar as the Python number it holds (shown as ``2.5``, not ``np.float64(2.5)``)."""
    return value.item() if isinstance(value, np.generic) else value


def check_values(df: pd.DataFrame, source: PathLike, binary: Iterable[str] = (),
                 numeric: Iterable[str] = (), filled: Iterable[str] = (),
                 id_column: str = "studyId") -> None:
    """Refuse, in one :class:`PipelineError` naming ``source``, the column, the ECG (its
    ``id_column``, or the row when that is missing) and the value: an empty cell of a
    ``filled`` column, text or an infinite value in a ``numeric`` column, and anything but 0, 1
    or missing in a ``binary`` column (booleans count as 0/1). Missing numbers pass."""
    binary = list(binary)
    ids = df[id_column] if id_column in df.columns else pd.Series(index=df.index, dtype=object)

    def refuse(column: str, bad: pd.Series, value: object, expected: str) -> None:
        first = int(bad.to_numpy().nonzero()[0][0])
        where = (f"{id_column} {ids.iloc[first]!r}"
                 if column != id_column and pd.notna(ids.iloc[first]) else f"row {first}")
        raise PipelineError(f"{source}: column {column} is {value!r} for {where} "
                            f"({int(bad.sum())} row(s)); expected {expected}")

    for column in dict.fromkeys(filled):
        missing = df[column].isna()
        if missing.any():
            refuse(column, missing, None, "a value in every row")
    for column in dict.fromkeys([*binary, *numeric]):
        raw = df[column]
        if raw.dtype == bool:
            continue
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        bad = (values.isna() & raw.notna()) | np.isinf(values)
        expected = "a finite number"
        if column in binary:
            bad |= values.notna() & ~values.isin([0.0, 1.0])
            expected = "0, 1 or missing"
        if bad.any():
            refuse(column, bad, plain_value(raw[bad].iloc[0]), expected)


def recorded_path(value: object, source: PathLike, key: str, option: str) -> Path:
    """A folder that file ``source`` records under ``key`` (a model's ``beats_dir``, the beat
    model of a VAE or morph run), used only inside the workspace: an absolute path or one
    through ``..`` (an edited or foreign file) is refused, naming ``option`` to give it."""
    if not isinstance(value, str) or not value:
        raise PipelineError(f"{source}: {key} is {value!r}, not a folder; pass {option}")
    path = Path(value)
    if path.is_absolute() or ".." in path.parts:
        raise PipelineError(f"{source}: {key} {value!r} lies outside the workspace, so it is "
                            f"not read; pass {option} to use it")
    return path


def record_path(folder: PathLike, name: str, suffix: str = ".npy") -> Path:
    """``folder/<name><suffix>`` for a record id, refusing ids that would leave ``folder``."""
    reason = unsafe_name_reason(name)
    if reason is not None:
        raise PipelineError(f"record id {name!r} cannot be used as a file name ({reason})")
    return Path(folder) / f"{name}{suffix}"


# ----------------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_path(path: PathLike, clean: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    ``clean=True`` first removes the temporaries of ``path`` that a killed earlier write left
    (one listing of the folder: meant for tables and checkpoints, not per-record files).
    """
    path = Path(path)
    if path.is_dir():
        raise PipelineError(f"{path}: a folder is where this file should be written")
    output_dir(path.parent)
    if clean:
        remove_leftovers(path.parent, path.name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, path)
    except OSError as exc:  # name the file being written, not its hidden temporary
        if exc.filename in (None, str(tmp_path)):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def output_dir(path: PathLike) -> Path:
    """Create folder ``path`` (and parents) unless it exists; a file in its place is an error."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            raise PipelineError(f"{part}: a file is where an output folder should be "
                                "(move it away)")
        if part.exists():
            break
    path.mkdir(parents=True, exist_ok=True)
    return path


def owned_output_dir(path: PathLike, step: str, own_files: tuple[str, ...]) -> Path:
    """:func:`output_dir` for a step that deletes, in its folder, the folders it no longer
    needs: ``path`` must be new, empty (but for what a killed run of ours left), or a folder
    ``step`` wrote (one of ``own_files`` in it, its failed-run log, or its
    :func:`unfinished_marker`). Anything else is refused in one line, so a mistaken
    ``--out-dir`` never loses a user's folders."""
    path = Path(path)
    if path.is_dir() and any(not _LEFTOVER.fullmatch(e.name) for e in path.iterdir()):
        proofs = [path / name for name in own_files]
        proofs += [failed_run_path(p) for p in proofs] + [unfinished_marker(path, step)]
        if not any(p.exists() for p in proofs):
            raise PipelineError(f"{path}: a folder that {STEP_SCRIPTS[step]} did not write "
                                f"(it holds files but no {own_files[0]}); give the step a new "
                                "folder of its own (it removes beat folders it no longer needs)")
    return output_dir(path)


#: Names of the temporaries :func:`atomic_path` and :func:`replace_dir` make (mkstemp and
#: mkdtemp add 8 characters, the ".old" names a uuid4 hex).
_TEMP_SUFFIX = r"(?:[A-Za-z0-9_]{8}\.tmp|[0-9a-f]{32}\.old)"
_LEFTOVER = re.compile(r"\..+\." + _TEMP_SUFFIX)


def remove_leftovers(folder: PathLike, name: str | None = None) -> int:
    """Delete the temporary files and folders a killed run of ours left directly in ``folder``
    (nothing else: the names must be the ones this module makes; with ``name``, only the
    temporaries of that file or folder). Returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    pattern = _LEFTOVER if name is None else re.compile(re.escape(f".{name}.") + _TEMP_SUFFIX)
    for entry in folder.iterdir():
        if not pattern.fullmatch(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def lock_file(folder: PathLike) -> Path:
    """``.<name>.lock`` beside ``folder``: the file :func:`folder_lock` locks (and leaves)."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


@contextlib.contextmanager
def folder_lock(folder: PathLike, step: str) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (:func:`lock_file`, beside it) while the block
    runs; a second run of a step over the same folder stops with one line instead of racing."""
    import fcntl

    folder = Path(folder)
    lock = lock_file(folder)
    output_dir(folder.parent)
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PipelineError(f"{folder}: another run is writing this folder (lock {lock} "
                                f"is held); wait for it to finish before running {step}") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- unfinished runs
#: The steps that fill a folder one record at a time (x03: ``10_sec_ecgs/``, x04:
#: ``ecg_beats/``, x05: ``ecg_beats_morphing/``) and so mark it while they write, the
#: import, whose ``10_sec_ecgs/`` carries the mark until its table is in place too, and s10,
#: whose many files in ``morphing_outputs/`` s11 and s12 measure as one run.
MARKED_STEPS = (IMPORT_STEP, "x03", "x04", "x05", "s10")


def unfinished_marker(folder: PathLike, step: str) -> Path:
    """``<folder>/.<step>-unfinished``: present while ``step`` writes ``folder`` (a dot-file,
    so no listing of records or beats takes it for one)."""
    return Path(folder) / f".{step}-unfinished"


class FailedRun(PipelineError):
    """A run that produced nothing and left its outputs as they were (:func:`refuse_failed_run`)."""


@contextlib.contextmanager
def unfinished_run(folder: PathLike, step: str) -> Iterator[None]:
    """Mark ``folder`` as being written by ``step`` while the block runs.

    The marker (:func:`unfinished_marker`, saying which step and when) is written first and
    removed only when the block completes, so a run killed or stopped by an error leaves it,
    and every reader (:func:`check_finished`) refuses the mix of old and new files until
    ``step`` is rerun. A :class:`FailedRun` (nothing written) leaves the folder as it was:
    the marker is removed unless an earlier unfinished run had left one."""
    import datetime

    if step not in MARKED_STEPS:
        raise ValueError(f"unknown marking step {step!r}; known: {MARKED_STEPS}")
    marker = unfinished_marker(folder, step)
    earlier = marker.exists()
    started = datetime.datetime.now().isoformat(timespec="seconds")
    write_text(f"{step} ({STEP_SCRIPTS[step]}) started writing this folder at "
               f"{started} (pid {os.getpid()}); it removes this file when it finishes\n", marker)
    try:
        yield
    except FailedRun:
        if not earlier:
            marker.unlink(missing_ok=True)
        raise
    marker.unlink()


def check_finished(folder: PathLike, steps: Iterable[str] = MARKED_STEPS) -> None:
    """Refuse, in one :class:`PipelineError`, a folder that a step left unfinished (killed or
    stopped by an error: its :func:`unfinished_marker` is there), naming the step to rerun;
    ``steps``: only the marks of these steps."""
    folder = Path(folder)
    for step in steps:
        marker = unfinished_marker(folder, step)
        if marker.exists():
            raise PipelineError(f"{folder}: {step} did not finish (killed or stopped by an "
                                f"error: {marker}); rerun {STEP_SCRIPTS[step]}")


def replace_dir(target: Path, fill: Callable[[Path], None] | None) -> None:
    """Replace folder ``target`` by what ``fill(tmp_dir)`` writes; ``fill=None`` removes it.

    The new content is written into a hidden sibling folder first and renamed into place,
    so a killed run leaves the old folder or the new one, never a mix, and no stale files
    survive a rerun.
    """
    target = Path(target)
    reason = unsafe_name_reason(target.name)
    if reason is not None:  # never swap a folder reached through "." or ".."
        raise PipelineError(f"{target}: refusing to replace this folder ({reason})")
    target.parent.mkdir(parents=True, exist_ok=True)
    new = None
    if fill is not None:
        new = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        os.chmod(new, 0o777 & ~_UMASK)  # mkdtemp makes 0700; give the usual mode
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


def refuse_path_clashes(outputs: dict[str, PathLike | None],
                        inputs: dict[str, PathLike | None] | None = None) -> None:
    """One :class:`PipelineError` when a step would write over what it reads or over another
    of its outputs.

    ``outputs`` and ``inputs`` map option names (``"--log"``) to paths (``None`` or ``""``:
    not used). Refused: two outputs at one path, an output at an input's path, one inside the
    other (a folder holding an input or another output, an output inside an input folder),
    and an output that is the working folder or holds it. Paths are compared after
    resolving links, so two spellings of one file clash too.
    """
    def named(table):
        return [(name, value, Path(value).resolve()) for name, value in (table or {}).items()
                if value not in (None, "")]

    outs, ins = named(outputs), named(inputs)
    here = Path.cwd().resolve()
    for i, (name, value, path) in enumerate(outs):
        if path == here or path in here.parents:
            raise PipelineError(f"{name} {value}: is the working folder or holds it; an "
                                "output needs a path of its own")
        for other, other_value, other_path in outs[i + 1:] + ins:
            role = "input" if (other, other_value, other_path) in ins else "output"
            if path == other_path:
                raise PipelineError(f"{name} {value} and {other} {other_value} name the same "
                                    f"path; the {role} would be overwritten")
            if other_path in path.parents or path in other_path.parents:
                inner, outer = ((name, value), (other, other_value)) \
                    if other_path in path.parents else ((other, other_value), (name, value))
                raise PipelineError(f"{inner[0]} {inner[1]} lies inside {outer[0]} {outer[1]}; "
                                    "give each its own place (an output must not be written "
                                    "into or over what a step reads or writes elsewhere)")


def failed_run_path(path: PathLike) -> Path:
    """Where a step whose run produced nothing writes its per-ECG log instead of ``path``, so
    the earlier good run's log stays (``x03_gain_report.csv`` -> ``x03_gain_report.failed.csv``)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.failed{path.suffix}")


def refuse_failed_run(table: pd.DataFrame, path: PathLike, problem: str,
                      contents: str = "per-ECG reasons") -> NoReturn:
    """A run that produced nothing: write ``table`` to :func:`failed_run_path` of ``path``
    (``path`` keeps the earlier good run) and raise one :class:`FailedRun`: ``problem``,
    then where the ``contents`` are."""
    failed = failed_run_path(path)
    write_csv(table, failed)
    raise FailedRun(f"{problem}; {contents} in {failed}")


def clear_failed_run(path: PathLike) -> None:
    """Remove an earlier failed run's log of ``path`` once a run succeeded."""
    failed_run_path(path).unlink(missing_ok=True)


def write_feather(df: pd.DataFrame, path: PathLike) -> None:
    """Write ``df`` (index dropped) as Feather, atomically."""
    with atomic_path(path, clean=True) as tmp:
        df.reset_index(drop=True).to_feather(tmp)


def write_csv(df: pd.DataFrame, path: PathLike, **kwargs: Any) -> None:
    """Write ``df`` as CSV without its index, atomically."""
    kwargs.setdefault("index", False)
    with atomic_path(path, clean=True) as tmp:
        df.to_csv(tmp, **kwargs)


def write_text(text: str, path: PathLike) -> None:
    with atomic_path(path, clean=True) as tmp:
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


class UnreadableArray(PipelineError, ValueError):
    """A file that is not a plain ``.npy`` array: ``<path>: <what it is instead>``. A
    :class:`PipelineError` (one line where nothing catches it) and a ``ValueError`` (caught by
    the per-record loops that log a failed record and go on)."""

    def __init__(self, path: PathLike, detail: str):
        super().__init__(f"{path}: {detail}")
        self.path, self.detail = path, detail


def load_npy(path: PathLike, mmap: bool = False) -> np.ndarray:
    """One ``.npy`` array, never unpickled; ``mmap``: memory-mapped read-only (only the header
    is read now). A file that is not one (empty, text, ``.npz``, object array, truncated)
    raises :class:`UnreadableArray` saying what it is instead (:func:`npy_problem`); an
    operating-system error (missing file, no permission) is raised as it is."""
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        detail = npy_problem(path) or " ".join(str(exc).split()) or type(exc).__name__
        raise UnreadableArray(path, detail) from exc
    if not isinstance(array, np.ndarray):          # an .npz archive, whatever its name
        array.close()
        raise UnreadableArray(path, "a .npz archive, not a NumPy array file (.npy)")
    return array


def sample_dtype_problem(dtype: np.dtype) -> str | None:
    """Why values of ``dtype`` cannot be signal samples, or None: they must be signed
    integers or floats (an unsigned type wraps negative voltages; complex, bool and text
    are no voltages)."""
    if np.issubdtype(dtype, np.signedinteger) or np.issubdtype(dtype, np.floating):
        return None
    return f"wrong type: {dtype}, expected signed integers or floats"


def load_signal(path: PathLike) -> np.ndarray:
    """:func:`load_npy` for a signal file (a 10-s ECG, a beat): values of a type that
    cannot be voltages raise :class:`UnreadableArray` naming it."""
    array = load_npy(path)
    problem = sample_dtype_problem(array.dtype)
    if problem:
        raise UnreadableArray(path, problem)
    return array


def npy_header(path: PathLike) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` of a ``.npy`` file from its header alone, after the checks of
    :func:`load_npy`: a file that is not a plain, complete array raises
    :class:`UnreadableArray`; an operating-system error is raised as it is. 58 µs a demo beat
    file against 87 µs memory-mapped (``benchmarks/bench_beat_inputs.py``)."""
    header = _read_npy_header(path)
    if isinstance(header, str):
        raise UnreadableArray(path, header)
    return header


def npy_problem(path: PathLike) -> str | None:
    """What ``path`` is instead of a plain ``.npy`` array (one line), or ``None`` when its
    header is sound. Used once ``np.load`` has failed, whose messages mislead (a text file is
    reported as "pickled data")."""
    try:
        header = _read_npy_header(path)
    except OSError as exc:
        return f"a NumPy array file with a broken header ({str(exc).strip() or type(exc).__name__})"
    return header if isinstance(header, str) else None


def _read_npy_header(path: PathLike) -> tuple[tuple[int, ...], np.dtype] | str:
    """``(shape, dtype)`` from a sound ``.npy`` header, else what the file is instead;
    an error opening the file passes as it is."""
    with open(path, "rb") as fh:
        try:
            magic = fh.read(6)
            if not magic:
                return "an empty file, not a NumPy array file"
            if magic[:4] == b"PK\x03\x04":
                return "a .npz archive, not a NumPy array file (.npy)"
            if magic != b"\x93NUMPY":
                return "not a NumPy array file (no .npy header)"
            fh.seek(0)
            version = np.lib.format.read_magic(fh)
            if version not in ((1, 0), (2, 0), (3, 0)):
                return f"a NumPy array file with a broken header (format version {version})"
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(fh)
            if dtype.hasobject:
                return "an object array (pickles are never loaded)"
            need = fh.tell() + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
            size = os.fstat(fh.fileno()).st_size
        except (OSError, ValueError, EOFError) as exc:
            text = str(exc).strip().splitlines()
            return f"a NumPy array file with a broken header ({text[0] if text else type(exc).__name__})"
    if size < need:
        return f"a truncated NumPy array file ({size} of {need} bytes)"
    return tuple(shape), dtype


def read_array(path: PathLike, shape: tuple[int | None, ...], step: str | None = None,
               finite: bool = False) -> np.ndarray:
    """The numeric ``.npy`` array a step wrote to ``path``, of ``shape`` (``None``: any
    length); with ``finite``, every value finite. Otherwise one :class:`PipelineError` naming
    the file (missing, truncated or not an array, text, another shape, NaN) and the ``step``
    that writes it. For whole-run files, not per-record ones (those fail the record)."""
    path = Path(path)
    rerun = f"rerun {STEP_SCRIPTS.get(step, step)}" if step else "rerun the step that writes it"
    if not path.is_file():
        raise PipelineError(f"{path}: file not found ({run_first(step)})")
    try:
        array = load_npy(path)
    except UnreadableArray as exc:
        raise PipelineError(f"{path}: {exc.detail}; {rerun}") from exc
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise PipelineError(f"{path}: holds {array.dtype} values, not numbers; {rerun}")
    if array.ndim != len(shape) or any(want is not None and want != got
                                       for want, got in zip(shape, array.shape)):
        expected = ", ".join("any" if n is None else str(n) for n in shape)
        expected += "," if len(shape) == 1 else ""
        raise PipelineError(f"{path}: shape {array.shape}, expected ({expected}); {rerun}")
    if finite and not np.isfinite(array).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise PipelineError(f"{path}: value {array[where]} at index {where}; expected finite "
                            f"numbers; {rerun}")
    return array


def run_first(step: str | None) -> str:
    """``"run <script of step> first"`` (see ``workspace.STEP_SCRIPTS``), or a generic hint."""
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


#: The markers a complete Feather file starts and ends with: version 2 (an Arrow IPC file,
#: what pandas writes) and version 1.
FEATHER_MARKERS = ((b"ARROW1", b"ARROW1"), (b"FEA1", b"FEA1"))


def feather_problem(path: PathLike) -> str | None:
    """Why ``path`` cannot be a complete Feather file, judged from its first and last bytes,
    or ``None``. Checked before pyarrow parses a file: pyarrow 25 can abort the interpreter at
    exit (SIGABRT) after failing on a truncated one, which turned a one-line error into a crash."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(8)
        fh.seek(max(size - 6, 0))
        tail = fh.read(6)
    if size == 0:
        return "an empty file"
    for start, end in FEATHER_MARKERS:
        if head.startswith(start):
            complete = size >= len(start) + len(end) and tail.endswith(end)
            return None if complete else f"truncated: {size} bytes and no end marker"
    return "not a Feather file: no Arrow or Feather marker at its start"


def read_feather(path: PathLike, columns: Iterable[str] = (), step: str | None = None
                 ) -> pd.DataFrame:
    """Read a Feather table, checking that it exists and holds ``columns``; ``step`` is the
    pipeline step (a key of ``workspace.STEP_SCRIPTS``) that must have run for both."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: file not found ({run_first(step)})")
    if not path.is_file():
        raise PipelineError(f"{path}: not a file (a folder is in its place)")
    problem = feather_problem(path)
    if problem:
        raise PipelineError(f"{path}: not a readable Feather table ({problem}); rerun the step "
                            "that writes it")
    try:
        df = pd.read_feather(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid/ArrowIOError/OSError on bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineError(f"{path}: not a readable Feather table ({first}); rerun the step "
                            "that writes it") from exc
    require_columns(df, columns, path, step)
    return df


def require_dir(path: PathLike, step: str) -> Path:
    """The folder ``path`` that pipeline ``step`` writes; a :class:`PipelineError` naming the
    step when it is absent or was left unfinished (:func:`check_finished`)."""
    path = Path(path)
    if not path.is_dir():
        raise PipelineError(f"{path}: folder not found ({run_first(step)})")
    check_finished(path)
    return path


def save_checkpoint(path: PathLike, tensors: dict[str, Any], config: dict[str, Any]) -> None:
    """Save tensors (nested dicts of tensors/numbers allowed) plus a JSON config string.

    The config travels as a JSON string so the file loads with ``weights_only=True``.
    Written through a file object, so the archive's inner folder is torch's fixed
    ``archive/``, not the temporary file's random name: equal tensors give equal bytes.
    """
    import torch

    with atomic_path(path, clean=True) as tmp, open(tmp, "wb") as fh:
        torch.save({"config_json": json.dumps(config, sort_keys=True), **tensors}, fh)


def file_digest(path: PathLike) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digests(files: Iterable[PathLike]) -> dict[str, str]:
    """:func:`file_digest` of each file, by file name."""
    return {Path(f).name: file_digest(f) for f in files}


def load_checkpoint(path: PathLike, map_location: Any = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`; returns ``(tensors, config)``."""
    import torch

    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: checkpoint not found")
    if not path.is_file():
        raise PipelineError(f"{path}: not a file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        text = str(exc)
        if "allowed global" in text or "Unsupported global" in text:
            raise PipelineError(f"{path}: not a checkpoint of this project (it holds objects "
                                "other than tensors), so it will not be loaded") from exc
        if "Weights only load failed" in text:  # torch's multi-line advice; keep one line
            text = "corrupt or not a checkpoint file"
        first = text.strip().splitlines()[0] if text.strip() else ""
        raise PipelineError(f"{path}: cannot load checkpoint ({type(exc).__name__}: "
                            f"{first})") from exc
    if not isinstance(payload, dict) or "config_json" not in payload:
        raise PipelineError(f"{path}: not a scdecg checkpoint (no config_json entry)")
    try:
        config = json.loads(payload.pop("config_json"))
    except (TypeError, json.JSONDecodeError) as exc:
        raise PipelineError(f"{path}: not a scdecg checkpoint (config_json is not JSON)") from exc
    return payload, config
