"""Import your own 12-lead ECGs and a labels table into the pipeline's workspace (x00 import).

Reads a folder of WFDB records (``.hea`` + signal files, searched recursively), or of
``.npy`` / ``.csv`` files with a stated sampling rate and lead order, plus a labels table,
and writes what x01–x03 write for NTUH:

* ``covariate_df.feather``: the x01 table (one ECG per patient, labels derived by
  :func:`scdecg.cohort.add_labels`) extended by :func:`scdecg.cohort.add_pipeline_columns`
  (x02), so x04–x08, training, prediction, evaluation and morphing read it unchanged;
* ``10_sec_ecgs/<studyId>.npy``: float32 ``(12, 5000)`` in microvolts, leads in
  :data:`scdecg.constants.LEADS` order, 500 Hz (x03's format; ``scaling_factor`` 1000 turns
  them into millivolts);
* an import log: one row per record and per label row without a record, with status and
  reason.

Per record: leads are matched by name (case-insensitive, usual aliases), extra leads are
ignored, missing III/aVR/aVL/aVF are derived from I and II (Einthoven/Goldberger), the signal
is converted to µV from its unit, resampled to 500 Hz with :func:`scipy.signal.resample_poly`
and cut to the first 10 s (or to consecutive 10-s windows). A record that cannot be used is
refused with a reason in the log and counted; nothing is dropped silently.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.signal import resample_poly

from .cohort import (COHORT_COLUMNS, LABELS, MAX_MODELLING_AGE, QTC_LONG_MS, STUDY_GROUP,
                     CARDIAC_CAUSE, CohortReport, add_labels, add_pipeline_columns,
                     one_ecg_per_patient, parse_age, parse_datetime, parse_female)
from .constants import FS, LEAD_INDEX, LEADS, N_LEADS, N_SAMPLES
from .errors import PipelineError
from .gain import IDENTITIES, relative_residual
from .io import feather_problem, file_name_key, unsafe_name_reason
from .workspace import IMPORT_STEP, STEP_SCRIPTS

FORMATS = ("wfdb", "npy", "csv")
CHEST_LEADS: tuple[str, ...] = ("V1", "V2", "V3", "V4", "V5", "V6")
#: Leads a record must hold; the other four limb leads follow from I and II.
REQUIRED_LEADS: tuple[str, ...] = ("I", "II", *CHEST_LEADS)
DERIVABLE_LEADS: tuple[str, ...] = tuple(IDENTITIES)  # III, aVR, aVL, aVF
#: Extra spellings of lead names (after lower-casing and removing spaces and "_").
LEAD_ALIASES: dict[str, str] = {"di": "I", "dii": "II", "diii": "III"}
#: Microvolts per physical unit (unit names lower-cased, micro sign spelt "u").
UNIT_TO_UV: dict[str, float] = {"uv": 1.0, "mv": 1000.0, "v": 1e6}
DEFAULT_UNIT = "mV"  # of npy/csv samples when --units is not given
#: Stored III/aVR/aVL/aVF further than this from the identities (relative RMS) are reported:
#: usually a lead mix-up or a gain fault like NTUH's.
IDENTITY_WARNING = 0.05
#: Lead II ranges (mV, first window) outside these are reported: usually wrong units.
PLAUSIBLE_RANGE_MV = (0.1, 15.0)
SECONDS = N_SAMPLES / FS  # 10 s
#: Seconds read beyond the last window needed, so resampling sees no edge inside it.
READ_MARGIN_S = 1.0
#: Resampling pads the record's ends by extending the line through its end points.
PAD_TYPE = "line"
GROUP_CONTROL = "control"
NON_CARDIAC_CAUSE = "non-cardiac"

LABEL_ID_COLUMNS = ("record_id", "patient_id", "age", "sex")
#: Label columns a WFDB header's comments may give instead (PhysioNet/CinC Challenge
#: 2020/2021 records: ``# Age: 74``, ``# Sex: Male``): used where the labels table has no value.
HEADER_DEMOGRAPHICS = ("age", "sex")
EVENT_COLUMNS = ("days_to_event", "cardiac_cause")
#: Optional ECG measurements taken as they are (names and meaning as in x01's table).
MEASUREMENT_COLUMNS = ("qtc", "avg_rr", "ventricular_rate", "atrial_rate", "qrs_duration",
                       "qt_interval", "qtc_frederica")
#: Optional ECG flags (true/false, 1/0; missing -> false, as in x01).
FLAG_COLUMNS = ("stelev", "stdown", "dltwv", "lbbb", "paced")
#: Cells that spreadsheets and databases write for "no value" (case ignored). The table is
#: read as written; these are missing in number and flag columns, but not in cardiac_cause,
#: where an empty cell means a control and an unknown cause is an error to be resolved.
MISSING_WORDS = {"na", "n/a", "#n/a", "null", "nan", "none", "<na>"}
TRUE_WORDS = {"true", "1", "1.0", "yes", "y", "t"}
FALSE_WORDS = {"false", "0", "0.0", "no", "n", "f"}
#: Sampling rates accepted (Hz): from PTB-XL's 100-Hz copies (and below) to high-resolution
#: recorders; outside, a rate is almost surely a typo or a garbled header.
FS_RANGE = (50.0, 20_000.0)

LOG_COLUMNS = ("record_id", "patient_id", "source", "status", "reason", "fs", "seconds",
               "units", "n_windows", "derived_leads", "ignored_leads", "padded_samples",
               "identity_residual", "lead_II_range_mv", "measure_note")
#: Log statuses. ``imported``: in covariate_df and 10_sec_ecgs; ``refused``: the record's
#: signal or label row cannot be used; ``not_chosen``: another ECG of the patient was kept;
#: ``no_label``: a record without a label row; ``no_record``: a label row without a record.
STATUSES = ("imported", "refused", "not_chosen", "no_label", "no_record")


class RecordRefused(Exception):
    """A record that cannot be imported; the message is the logged reason."""


class _NothingImported(Exception):
    """No record could be imported: the output folder is not replaced."""


# --------------------------------------------------------------------------------------
# Names: leads, units, ids
# --------------------------------------------------------------------------------------
def _lead_table() -> dict[str, str]:
    table = {name.lower(): name for name in LEADS}
    table.update(LEAD_ALIASES)
    return table


_LEADS_BY_KEY = _lead_table()


def canonical_lead(name: object) -> str | None:
    """The pipeline's name of lead ``name`` ("AVL", "avl", "Lead aVL" -> "aVL"), else None."""
    key = re.sub(r"[\s_]", "", str(name)).lower()  # "-aVR" (inverted aVR) stays unknown
    key = key.removeprefix("lead")
    return _LEADS_BY_KEY.get(key)


def uv_per_unit(unit: object) -> float | None:
    """Microvolts per ``unit`` ("mV" -> 1000, "uV"/"µV"/"μV" -> 1, "V" -> 1e6), else None."""
    key = str(unit).strip().replace("\u00b5", "u").replace("\u03bc", "u").lower()
    return UNIT_TO_UV.get(key)


def id_problem(value: object) -> str | None:
    """Why ``value`` cannot be a record id, or None: it becomes a file name, so the rule is
    the one every later step applies (:func:`scdecg.io.unsafe_name_reason`)."""
    text = "" if value is None or (np.ndim(value) == 0 and pd.isna(value)) else str(value)
    if text.strip() == "":
        return "empty id"
    reason = unsafe_name_reason(text)
    return None if reason is None else f"id that cannot be a file name ({reason})"


def fs_problem(fs: float) -> str | None:
    """Why ``fs`` (Hz) is not a usable sampling rate, or None."""
    if not (isinstance(fs, (int, float)) and math.isfinite(fs)):
        return f"sampling rate {fs!r} is not a finite number"
    if not FS_RANGE[0] <= fs <= FS_RANGE[1]:
        return (f"sampling rate {fs:g} Hz is outside {FS_RANGE[0]:g}-{FS_RANGE[1]:g} Hz "
                "(a typo or a garbled header?)")
    return None


# --------------------------------------------------------------------------------------
# Reading one record
# --------------------------------------------------------------------------------------
@dataclass
class RawRecord:
    """A record as stored: ``signal`` is (channels, samples) in the channels' ``units``."""

    signal: np.ndarray
    names: list[str]
    units: list[str]
    fs: float
    total_samples: int = -1   # length of the whole record (``signal`` may hold its start only)
    uncalibrated: tuple[int, ...] = ()  # channels of ADC gain 0 (WFDB "uncalibrated")

    def __post_init__(self) -> None:
        if self.total_samples < 0:
            self.total_samples = self.signal.shape[-1]


def _samples_to_read(total: int, fs: float, seconds: float | None) -> int:
    return total if seconds is None else min(total, int(math.ceil(seconds * fs)))


def read_wfdb(path: Path, seconds: float | None = None) -> RawRecord:
    """Physical signals, channel names, units and rate of the WFDB record ``path`` (.hea).

    Only the first ``seconds`` are read (all when None); ``total_samples`` is the record's
    length from its header. Channels whose header gives an ADC gain of 0 ("uncalibrated" in
    the WFDB format; wfdb reads them at 200 units per mV) are listed in ``uncalibrated``.
    """
    import wfdb

    if Path(path).suffix != ".hea":
        raise RecordRefused(f"header {Path(path).name}: the wfdb package reads only a '.hea' "
                            "suffix in lower case; rename it (keep the signal file names "
                            "its lines give)")
    name = str(Path(path).with_suffix(""))
    if Path(name + ".hea").is_file() and Path(name + ".hea").stat().st_size == 0:
        raise RecordRefused("empty header file (0 bytes)")
    written = _check_record_line(Path(name + ".hea"))
    try:
        header = wfdb.rdheader(name)
        problem = _signal_file_problem(Path(name).parent, header)
        if problem:
            raise RecordRefused(problem)
        total = int(header.sig_len or 0)  # optional in a header: then the file's length
        fs = float(header.fs)
        if written is not None and not math.isclose(fs, written, rel_tol=1e-9):
            raise RecordRefused(f"header sampling rate: {written:g} Hz written, wfdb reads "
                                f"{fs:g} Hz (write it as a plain decimal number)")
        problem = fs_problem(fs)
        if problem:
            raise RecordRefused(f"header: {problem}")
        _check_mat_files(Path(name).parent, header)
        sampto = _samples_to_read(total, fs, seconds) if total else None
        record = wfdb.rdrecord(name, sampto=sampto)
    except RecordRefused:
        raise
    except Exception as exc:  # wfdb raises many types for broken headers and signal files
        raise RecordRefused(f"unreadable WFDB record: {type(exc).__name__}: {exc}") from exc
    if sampto is not None and sampto < total:  # only the start was read: is the end there?
        try:
            wfdb.rdrecord(name, sampfrom=total - 1, sampto=total)
        except Exception as exc:
            raise RecordRefused(f"the signal file ends before the {total} samples its header "
                                f"gives (a truncated file, or a wrong length in the header): "
                                f"{type(exc).__name__}: {exc}") from exc
    if record.p_signal is None or record.sig_name is None:
        raise RecordRefused("unreadable WFDB record: no physical signal")
    signal = np.asarray(record.p_signal, dtype=np.float64).T
    total = total or signal.shape[1]
    fields = _signal_fields(Path(name + ".hea"), list(record.sig_name))
    units = _header_units(fields, list(record.units or []))
    return RawRecord(signal=signal[:, :_samples_to_read(total, fs, seconds)],
                     names=list(record.sig_name), units=units, fs=fs, total_samples=total,
                     uncalibrated=_uncalibrated(fields))


#: Bytes per sample of the common WFDB signal formats (212 packs two samples in 3 bytes).
FORMAT_BYTES = {"8": 1, "80": 1, "16": 2, "61": 2, "160": 2, "212": 1.5, "24": 3, "32": 4}


def _signal_file_problem(folder: Path, header) -> str | None:
    """Why a single-segment record's ``.dat`` files cannot hold what its header says: a file
    that is empty or shorter than the header's length needs (wfdb's own messages for these
    are about array shapes), or a header of length 0. None when they fit (or cannot be told:
    no length, an unusual format, a .mat file)."""
    if getattr(header, "n_seg", None) or not getattr(header, "file_name", None):
        return None
    if header.sig_len == 0:
        return "the header gives a length of 0 samples (an empty record)"
    for file in dict.fromkeys(header.file_name):
        path = folder / file
        if path.suffix.lower() == ".dat" and path.is_file() and path.stat().st_size == 0:
            return f"empty signal file {file} (0 bytes)"
    if not header.sig_len:
        return None
    channels: dict[str, list[str]] = {}
    offsets: dict[str, int] = {}
    for file, fmt, offset in zip(header.file_name, header.fmt, header.byte_offset or
                                 [None] * len(header.file_name)):
        channels.setdefault(file, []).append(str(fmt))
        offsets[file] = int(offset or 0)
    for file, formats in channels.items():
        path = folder / file
        if path.suffix.lower() != ".dat" or not path.is_file() or len(set(formats)) != 1 \
                or formats[0] not in FORMAT_BYTES:
            continue
        need = offsets[file] + math.ceil(len(formats) * header.sig_len * FORMAT_BYTES[formats[0]])
        size = path.stat().st_size
        if size < need:
            return (f"signal file {file} truncated: {size} of the {need} bytes that "
                    f"{len(formats)} channels x {header.sig_len} samples in format "
                    f"{formats[0]} need")
    return None


#: MATLAB v4 type codes (``MOPT``: byte order, precision) of the WFDB formats a ``.mat``
#: signal file can hold (wfdb2mat; PhysioNet/CinC Challenge 2020/2021 records: ``16+24``).
MAT4_TYPES = {"16": 30, "61": 1030, "32": 20, "80": 50}
MAT4_PRECISIONS = ("double", "single", "int32", "int16", "uint16", "uint8")
#: Type codes of a real numeric full matrix, little- (0xxx) or big-endian (1xxx).
MAT4_CODES = {order + 10 * p for order in (0, 1000) for p in range(len(MAT4_PRECISIONS))}


def _mat4_type_name(code: int) -> str:
    return ("big-endian " if code >= 1000 else "") + MAT4_PRECISIONS[code // 10 % 10]


def _check_mat_files(folder: Path, header) -> None:
    """Refuse a record whose ``.mat`` signal file is not the MATLAB v4 matrix its header
    describes (wfdb reads the bytes at the header's offset whatever they are): a MATLAB v5/v7
    file (MATLAB's and ``scipy.io.savemat``'s default), a matrix starting elsewhere than the
    header's byte offset (``16`` written for ``16+24``), another number type, or a samples x
    leads matrix (leads x samples is what interleaves the samples as WFDB reads them)."""
    for file_name in sorted(set(getattr(header, "file_name", None) or [])):
        if not str(file_name).lower().endswith(".mat"):
            continue
        chans = [i for i, name in enumerate(header.file_name) if name == file_name]
        try:
            with open(folder / file_name, "rb") as handle:
                head = handle.read(20)
        except OSError:
            continue  # wfdb names the missing file
        where = f"signal file {file_name}"
        if head.startswith(b"MATLAB"):
            raise RecordRefused(f"{where} is a MATLAB v5/v7 file; a WFDB header can only point "
                                "into a MATLAB v4 one (an int16 leads x samples matrix, as "
                                "wfdb2mat or scipy.io.savemat(..., format='4') write it)")
        fields = [tuple(int(v) for v in np.frombuffer(head, order + "i4"))
                  for order in "<>" if len(head) == 20]
        fields = [f for f in fields if f[0] in MAT4_CODES] or [(-1, 0, 0, 0, 0)]
        code, rows, cols, imag, namlen = fields[0]  # a type code read in its byte order
        if code < 0 or imag != 0 or not 0 < namlen < 64:
            raise RecordRefused(f"{where} does not start with a MATLAB v4 matrix header")
        fmt, offsets = header.fmt[chans[0]], {header.byte_offset[i] or 0 for i in chans}
        if offsets != {20 + namlen}:
            raise RecordRefused(f"{where}: its MATLAB v4 matrix starts at byte {20 + namlen}, "
                                f"the header reads from byte "
                                f"{', '.join(map(str, sorted(offsets)))} (write the format as "
                                f"{fmt}+{20 + namlen})")
        if fmt in MAT4_TYPES and code != MAT4_TYPES[fmt]:
            raise RecordRefused(f"{where} holds {_mat4_type_name(code)} samples; the header's "
                                f"format {fmt} reads {_mat4_type_name(MAT4_TYPES[fmt])}")
        total = int(header.sig_len or 0)
        if rows != len(chans) or cols < total:
            raise RecordRefused(f"{where} holds a {rows} x {cols} matrix; the header's "
                                f"{len(chans)} channels of {total or cols} samples need "
                                f"{len(chans)} x {total or cols} (leads x samples)")


def _check_record_line(header: Path) -> float | None:
    """The sampling rate a header's record line writes (None: no rate field, the WFDB
    default of 250 Hz applies, as the format says). Refused: a rate that is not a positive
    number (wfdb would read it as 250 Hz, as if the field were absent) or lies outside
    :data:`FS_RANGE`, and a length that is not a whole number of samples ("-5")."""
    lines = _header_lines(header)
    fields = lines[0].split() if lines else []
    if len(fields) < 3:
        return None
    text = re.split(r"[/(]", fields[2], maxsplit=1)[0]
    try:
        fs = float(text)
    except ValueError:
        raise RecordRefused(f"header sampling rate {text!r} is not a number") from None
    if not (math.isfinite(fs) and fs > 0):
        raise RecordRefused(f"header sampling rate {text!r} is not a positive number")
    problem = fs_problem(fs)
    if problem:
        raise RecordRefused(f"header: {problem}")
    if len(fields) > 3 and not fields[3].isdigit():
        raise RecordRefused(f"header length {fields[3]!r} is not a whole number of samples")
    return fs


def _signal_fields(header: Path, names: Sequence[str]) -> list[list[str]]:
    """The whitespace-separated fields (``file fmt gain(baseline)/units ...``) of the signal
    line of each channel ``names[i]`` as the header writes them (wfdb drops non-ASCII bytes).

    A multi-segment record describes its signals in its segment headers (same folder): a
    channel's line is taken from the segment that gives it an ADC gain of 0, if any, else
    from the first segment naming it; segments that write a channel's unit differently
    refuse the record. Empty when the headers cannot be read (wfdb has read them already).
    """
    lines = _header_lines(header)
    if not lines:
        return []
    first = lines[0].split()
    if "/" not in first[0]:
        return [line.split() for line in lines[1:1 + len(names)]]
    segment_lines: list[list[str]] = []
    for segment in _segment_names(lines):
        seg_lines = _header_lines(header.with_name(f"{segment}.hea"))
        n = int(seg_lines[0].split()[1]) if seg_lines and len(seg_lines[0].split()) > 1 else 0
        segment_lines += [line.split() for line in seg_lines[1:1 + n]]
    fields = []
    for name in names:
        mine = [line for line in segment_lines if " ".join(line[8:]) == name]
        units = sorted({line[2].split("/", 1)[1] for line in mine
                        if len(line) > 2 and "/" in line[2]})
        if len(units) > 1:
            raise RecordRefused(f"segments of this multi-segment record give channel {name} "
                                f"in different units ({', '.join(units)})")
        uncalibrated = [line for line in mine if _uncalibrated([line])]
        fields.append((uncalibrated or mine or [[]])[0])
    return fields


def _segment_names(lines: Sequence[str]) -> list[str]:
    """The segment records a multi-segment header (``name/n_segments ...``, then one
    ``segment length`` line each) lists, gaps (``~``) left out; empty for a single header."""
    if not lines or "/" not in lines[0].split()[0]:
        return []
    return [entry.split()[0] for entry in lines[1:] if entry.split()[0] != "~"]


def _header_text(header: Path) -> str:
    """A WFDB header as text, read as UTF-8 (Latin-1 if not); empty when it cannot be read."""
    try:
        data = header.read_bytes()
    except OSError:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _header_lines(header: Path) -> list[str]:
    """A WFDB header's lines without comments and blank lines; empty when the file cannot be
    read."""
    lines = [line.split("#", 1)[0].strip() for line in _header_text(header).splitlines()]
    return [line for line in lines if line]


#: ``# Age: 74`` / ``#sex:F``: a demographic field in a header comment line.
_COMMENT_FIELD = re.compile(r"^\s*#\s*(age|sex)\s*:\s*(.*?)\s*$", re.IGNORECASE)
#: One-letter sexes some exports write, as the labels table spells them.
_SEX_LETTERS = {"m": "male", "f": "female"}
#: What headers write for "not known" (Challenge records: ``# Age: NaN``, ``# Sex: Unknown``).
_NOT_KNOWN = {"", "nan", "na", "n/a", "none", "unknown", "unk", "?", "-"}


def header_demographics(header: Path) -> dict[str, str]:
    """``age`` and ``sex`` as a WFDB header's comment lines write them (``# Age: 74``,
    ``# Sex: Male``; field names case-blind, ``M``/``F`` read as male/female); a field the
    header does not write, or writes empty or as not known ("NaN", "Unknown"), is absent. The
    values are checked where the labels table's are (:func:`scdecg.cohort.parse_age`,
    ``parse_female``)."""
    found: dict[str, str] = {}
    for line in _header_text(header).splitlines():
        match = _COMMENT_FIELD.match(line)
        if not match:
            continue
        key, value = match.group(1).lower(), match.group(2)
        if key not in found and value.lower() not in _NOT_KNOWN:    # the first written wins
            found[key] = _SEX_LETTERS.get(value.lower(), value) if key == "sex" else value
    return found


def _header_units(fields: list[list[str]], parsed: list[str]) -> list[str]:
    """``parsed`` (wfdb's units) with any unit spelt with non-ASCII characters as written.

    wfdb drops the non-ASCII bytes of a header, which turns "µV" into "V".
    """
    units = list(parsed)
    for i, line in enumerate(fields[:len(units)]):
        if len(line) > 2 and "/" in line[2] and not line[2].isascii():
            units[i] = line[2].split("/", 1)[1]
    return units


def _uncalibrated(fields: list[list[str]]) -> tuple[int, ...]:
    """Channels (indices) whose signal line gives an ADC gain of 0. (A line without a gain
    has no channel name either, so it can never be a lead.)"""
    out = []
    for i, line in enumerate(fields):
        try:
            if len(line) > 2 and float(re.split(r"[(/]", line[2], maxsplit=1)[0]) == 0:
                out.append(i)
        except ValueError:
            pass  # wfdb itself refuses a gain that is not a number
    return tuple(out)


def _as_leads_by_samples(array: np.ndarray, n_leads: int) -> np.ndarray:
    if array.ndim != 2:
        raise RecordRefused(f"wrong shape: {array.shape}, expected (leads, samples) 2-D")
    if array.shape[0] == n_leads:
        return array
    if array.shape[1] == n_leads:
        return array.T
    raise RecordRefused(f"wrong shape: {array.shape} does not match {n_leads} leads in --leads")


def read_npy(path: Path, fs: float, leads: Sequence[str], unit: str,
             seconds: float | None = None) -> RawRecord:
    """A ``.npy`` array (leads, samples) or (samples, leads), leads in ``leads`` order.

    Memory-mapped; only the first ``seconds`` are read (all when None).
    """
    from .io import UnreadableArray, load_npy

    try:
        array = load_npy(path, mmap=True)
    except UnreadableArray as exc:
        raise RecordRefused(exc.detail) from exc
    except OSError as exc:
        raise RecordRefused(f"unreadable .npy file: {exc}") from exc
    if not (np.issubdtype(array.dtype, np.signedinteger)
            or np.issubdtype(array.dtype, np.floating)):
        raise RecordRefused(f"wrong dtype: {array.dtype}, expected signed integer or float "
                            "samples (an ECG swings both ways; x01 and x03 refuse unsigned "
                            "stacks too)")
    view = _as_leads_by_samples(array, len(leads))
    total = view.shape[1]
    signal = np.asarray(view[:, :_samples_to_read(total, fs, seconds)], dtype=np.float64)
    return RawRecord(signal=signal, names=list(leads), units=[unit] * len(leads), fs=fs,
                     total_samples=total)


def read_csv_record(path: Path, fs: float, leads: Sequence[str], unit: str,
                    seconds: float | None = None) -> RawRecord:
    """A CSV, one row per sample, one column per lead.

    A first row that is not numeric is a header of lead names; it is used when ``leads`` is
    empty and must name the same leads as ``leads`` otherwise.
    """
    try:
        table = pd.read_csv(path, header=None, dtype=str, skip_blank_lines=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise RecordRefused(f"unreadable CSV (comma-separated, '.' decimals expected): "
                            f"{type(exc).__name__}: {exc}") from exc
    first = pd.to_numeric(table.iloc[0], errors="coerce") if len(table) else None
    header = None
    if first is not None and first.isna().all():
        header = [str(v).strip() for v in table.iloc[0]]
        table = table.iloc[1:]
    names = list(leads) or header
    if not names:
        raise RecordRefused("no lead names: give --leads or a header row")
    if header is not None and leads and [canonical_lead(h) or h for h in header] != \
            [canonical_lead(n) or n for n in leads]:
        raise RecordRefused(f"header leads {header} differ from --leads {list(leads)}")
    if table.shape[1] != len(names):
        raise RecordRefused(f"wrong shape: {table.shape[1]} columns for {len(names)} leads")
    values = table.apply(lambda col: pd.to_numeric(col.str.strip(), errors="coerce"))
    text = table.notna() & values.isna()
    # a channel that is no lead (a time stamp, a note) is not used: its text does not matter
    not_lead = np.array([canonical_lead(n) is None for n in names])
    textual = text.to_numpy().any(axis=0) & not_lead
    if textual.any():
        keep = ~textual
        table, values, text = (t.loc[:, keep] for t in (table, values, text))
        names = [n for n, k in zip(names, keep) if k]
    if text.to_numpy().any():
        row, col = np.argwhere(text.to_numpy())[0]
        raise RecordRefused(f"non-numeric value {table.iat[row, col]!r} in column {names[col]} "
                            f"(data row {row + 1})")
    signal = values.to_numpy(dtype=np.float64).T
    total = signal.shape[1]
    return RawRecord(signal=signal[:, :_samples_to_read(total, fs, seconds)], names=names,
                     units=[unit] * len(names), fs=fs, total_samples=total)


# --------------------------------------------------------------------------------------
# Leads, units, resampling, windows
# --------------------------------------------------------------------------------------
@dataclass
class LeadMapping:
    ecg_uv: np.ndarray           # (12, samples) float64 µV in LEADS order
    derived: list[str]           # limb leads computed from I and II
    ignored: list[str]           # source channels not used
    units: list[str]             # distinct units of the used channels


def to_pipeline_leads(raw: RawRecord) -> LeadMapping:
    """Pick the 12 leads by name, convert them to µV and derive missing limb leads.

    Refuses (by name) a record without I, II or a chest lead, a lead present twice, a used
    channel without calibration (WFDB gain 0), a used lead in an unknown unit, NaN
    or infinite samples in a used lead, and a flat used lead.
    """
    if raw.signal.ndim != 2 or raw.signal.shape[0] != len(raw.names):
        raise RecordRefused(f"wrong shape: {raw.signal.shape} for {len(raw.names)} channel names")
    where: dict[str, int] = {}
    ignored: list[str] = []
    for i, name in enumerate(raw.names):
        lead = canonical_lead(name)
        if lead is None:
            ignored.append(str(name))
        elif lead in where:
            raise RecordRefused(f"lead {lead} appears twice (channel {where[lead] + 1} "
                                f"{raw.names[where[lead]]!r} and channel {i + 1} {name!r}; "
                                "keep one in the record)")
        else:
            where[lead] = i
    missing = [lead for lead in REQUIRED_LEADS if lead not in where]
    if missing:
        raise RecordRefused(f"missing lead(s) {', '.join(missing)} (found: "
                            f"{', '.join(map(str, raw.names)) or 'none'})")
    uncalibrated = [str(raw.names[i]) for i in sorted(where.values()) if i in raw.uncalibrated]
    if uncalibrated:
        raise RecordRefused(f"uncalibrated channel(s) {', '.join(uncalibrated)}: ADC gain 0 in "
                            "the header, so the amplitudes have no known unit")
    n = raw.signal.shape[1]
    ecg = np.empty((N_LEADS, n), dtype=np.float64)
    units = []
    for lead, i in where.items():
        unit = raw.units[i] if i < len(raw.units) else ""
        factor = uv_per_unit(unit)
        if factor is None:
            raise RecordRefused(f"unknown unit {unit!r} of lead {lead} (known: mV, uV, µV, V)")
        bad = ~np.isfinite(raw.signal[i])
        if bad.any():
            raise RecordRefused(f"NaN or infinite samples in lead {lead}: {int(bad.sum())} of "
                                f"the {n} read")
        if n and np.ptp(raw.signal[i]) == 0:
            raise RecordRefused(f"flat lead {lead}: one constant value in the {n} samples read")
        ecg[LEAD_INDEX[lead]] = raw.signal[i] * factor
        units.append(str(unit))
    derived = [lead for lead in DERIVABLE_LEADS if lead not in where]
    lead1, lead2 = ecg[LEAD_INDEX["I"]], ecg[LEAD_INDEX["II"]]
    for lead in derived:
        a, b = IDENTITIES[lead]
        ecg[LEAD_INDEX[lead]] = a * lead1 + b * lead2
    return LeadMapping(ecg, derived, ignored, sorted(set(units)))


def resample_to_pipeline(ecg: np.ndarray, fs: float) -> np.ndarray:
    """``ecg`` (leads, samples) at ``fs`` Hz resampled to 500 Hz (whole record at once).

    Output sample ``j`` lies at time ``j / 500`` s, so 10-s windows of the output start at
    multiples of 5000. Rates are turned into an exact ratio ``500/fs``; a rate whose ratio
    needs a denominator above 1000 is refused.
    """
    problem = fs_problem(fs)
    if problem:
        raise RecordRefused(problem)
    ratio = Fraction(FS) / Fraction(fs).limit_denominator(1000)
    if abs(float(ratio) - FS / fs) > 1e-9 * FS / fs:
        raise RecordRefused(f"sampling rate {fs} Hz has no exact ratio to {FS} Hz")
    if ratio == 1:
        return np.asarray(ecg, dtype=np.float64)
    return resample_poly(ecg, ratio.numerator, ratio.denominator, axis=-1, padtype=PAD_TYPE)


@dataclass(frozen=True)
class WindowOptions:
    all_windows: bool = False   # False: first 10 s only
    max_windows: int = 0        # with all_windows: at most this many (0: no limit)
    pad_short: bool = False     # pad a record shorter than 10 s instead of refusing it

    def seconds_to_read(self) -> float | None:
        """How much of a record to read: the windows plus a margin that keeps the
        resampling filter's edge away from the last window (None: the whole record)."""
        if self.all_windows and self.max_windows <= 0:
            return None
        n_windows = self.max_windows if self.all_windows else 1
        return n_windows * SECONDS + READ_MARGIN_S


def cut_windows(ecg500: np.ndarray, options: WindowOptions) -> tuple[list[np.ndarray], int]:
    """10-s windows of a 500 Hz record and the number of samples padded (0 unless short).

    A short record is refused unless ``pad_short``; then its last sample is repeated (no
    step) up to 5000 samples.
    """
    n = ecg500.shape[1]
    if n < N_SAMPLES:
        if not options.pad_short:
            raise RecordRefused(f"too short: {n} of {N_SAMPLES} samples at {FS} Hz "
                                f"({n / FS:.3f} s < {SECONDS:g} s; --pad-short pads it)")
        if n == 0:
            raise RecordRefused("empty record: no samples")
        pad = N_SAMPLES - n
        return [np.pad(ecg500, ((0, 0), (0, pad)), mode="edge")], pad
    count = n // N_SAMPLES if options.all_windows else 1
    if options.all_windows and options.max_windows > 0:
        count = min(count, options.max_windows)
    return [ecg500[:, k * N_SAMPLES:(k + 1) * N_SAMPLES] for k in range(count)], 0


def window_ids(record_id: str, n_windows: int, all_windows: bool) -> list[str]:
    """The record id for the first-10-s import; ``<id>_w<k>`` per window with --windows."""
    return [f"{record_id}_w{k}" for k in range(n_windows)] if all_windows else [record_id]


# --------------------------------------------------------------------------------------
# ECG measurements the labels table does not give
# --------------------------------------------------------------------------------------
#: Plausible RR range (ms); a median RR outside is left missing, with the reason logged.
RR_RANGE_MS = (250.0, 2500.0)


def measure_ecg(ecg_uv: np.ndarray) -> tuple[dict[str, float], str]:
    """Median RR (ms) and ventricular rate (/min) of a (12, 5000) µV ECG, and a reason when
    they are left missing.

    R-peaks come from x04's detector on x04's detection lead (lead I). QRS and QT durations
    are not measured: a DWT delineation of the median beat (neurokit2) was tried on the
    synthetic ECGs and its QRS and QT correlated poorly with the planted ones, so these come
    from the labels table or stay missing.
    """
    from .beats import DETECTION_LEAD, MIN_RPEAKS, detect_rpeaks

    out = {"avg_rr": np.nan, "ventricular_rate": np.nan}
    try:
        rpeaks = detect_rpeaks(np.asarray(ecg_uv, dtype=np.float64)[DETECTION_LEAD] / 1000.0)
    except Exception as exc:  # neurokit2 raises assorted errors on pathological input
        return out, f"RR not measured: R-peak detection failed ({type(exc).__name__})"
    if len(rpeaks) < MIN_RPEAKS:
        return out, f"RR not measured: {len(rpeaks)} R-peaks"
    rr = float(np.median(np.diff(rpeaks))) * 1000.0 / FS
    low, high = RR_RANGE_MS
    if not low <= rr <= high:
        return out, f"RR not measured: median RR {rr:.0f} ms outside {low:.0f}-{high:.0f}"
    return {"avg_rr": rr, "ventricular_rate": 60000.0 / rr}, ""


def corrected_qt(qt_ms: float, rr_ms: float) -> dict[str, float]:
    """Bazett's and Fridericia's QTc (ms) from QT and RR (ms); NaN when either is missing."""
    if not (np.isfinite(qt_ms) and np.isfinite(rr_ms) and rr_ms > 0):
        return {"qtc": np.nan, "qtc_frederica": np.nan}
    rr_s = rr_ms / 1000.0
    return {"qtc": qt_ms / np.sqrt(rr_s), "qtc_frederica": qt_ms / np.cbrt(rr_s)}


# --------------------------------------------------------------------------------------
# One record, end to end (runs in worker processes)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignalOptions:
    format: str = "wfdb"
    fs: float = 0.0                 # npy/csv only
    leads: tuple[str, ...] = ()     # npy/csv only
    unit: str = ""                  # npy/csv only ("" = mV)
    windows: WindowOptions = WindowOptions()
    measure: bool = True            # measure RR and rate of each imported window


def read_record(path: Path, options: SignalOptions) -> RawRecord:
    seconds = options.windows.seconds_to_read()
    if options.format == "wfdb":
        return read_wfdb(path, seconds)
    unit = options.unit or DEFAULT_UNIT
    if options.format == "npy":
        return read_npy(path, options.fs, options.leads, unit, seconds)
    return read_csv_record(path, options.fs, options.leads, unit, seconds)


def import_record(task: tuple[str, str, str], options: SignalOptions) -> dict:
    """Read, map, convert, resample and save one record into ``out_dir``; one log row.

    ``task`` is ``(record_id, source path, out_dir)``. Files are written atomically; nothing
    is written for a refused record.
    """
    from .io import save_npy

    record_id, source, out_dir = task
    row = {"record_id": record_id, "status": "imported", "reason": "", "n_windows": 0,
           "padded_samples": 0}
    try:
        raw = read_record(Path(source), options)
        row.update(fs=raw.fs, seconds=raw.total_samples / raw.fs if raw.fs > 0 else np.nan)
        mapped = to_pipeline_leads(raw)
        row.update(units=";".join(mapped.units), derived_leads=";".join(mapped.derived),
                   ignored_leads=";".join(mapped.ignored))
        windows, padded = cut_windows(resample_to_pipeline(mapped.ecg_uv, raw.fs),
                                      options.windows)
    except RecordRefused as exc:
        row.update(status="refused", reason=" ".join(str(exc).split()))  # one line
        return row
    ids = window_ids(record_id, len(windows), options.windows.all_windows)
    for window_id in ids:   # "<id>_w<k>" may outgrow the file-name rule the id met
        problem = unsafe_name_reason(window_id)
        if problem:
            row.update(status="refused", reason=f"window id {window_id!r} cannot be a file "
                       f"name ({problem}); shorten the record id")
            return row
    measurements, reasons = [], []
    for window_id, window in zip(ids, windows):
        window = window.astype(np.float32)
        save_npy(window, Path(out_dir) / f"{window_id}.npy")
        if options.measure:
            values, reason = measure_ecg(window)
            measurements.append(values)
            reasons.append(f"{window_id}: {reason}" if reason and len(ids) > 1 else reason)
    row.update(n_windows=len(windows), padded_samples=padded, window_ids=ids,
               identity_residual=relative_residual(windows[0]),
               lead_II_range_mv=float(np.ptp(windows[0][LEAD_INDEX["II"]])) / 1000.0,
               measurements=measurements,
               measure_note="; ".join(r for r in reasons if r))
    return row


# --------------------------------------------------------------------------------------
# Finding records
# --------------------------------------------------------------------------------------
SUFFIXES = {"wfdb": ".hea", "npy": ".npy", "csv": ".csv"}


def discover_records(input_dir: Path, fmt: str, exclude: Sequence[Path] = ()) -> dict[str, Path]:
    """``{record_id: path}`` for every record file under ``input_dir`` (recursively).

    The id is the file stem. Two files with the same stem, or a stem that cannot be a file
    name, are errors naming both paths or the stem.
    """
    input_dir = Path(input_dir)
    if fmt not in FORMATS:
        raise PipelineError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if not input_dir.is_dir():
        raise PipelineError(f"{input_dir}: input folder not found (pass --input DIR)")
    skip = {Path(p).resolve() for p in exclude}
    found: dict[str, Path] = {}
    folded: dict[str, str] = {}  # file_name_key(id) -> id
    # suffixes in any case (files copied from Windows or FAT media: "R1.HEA", "r2.NPY")
    for path in sorted(p for p in input_dir.rglob("*") if p.suffix.lower() == SUFFIXES[fmt]):
        if not path.is_file() or path.resolve() in skip or path.name.startswith("."):
            continue
        record_id = path.stem
        problem = id_problem(record_id)
        if problem:
            raise PipelineError(f"{path}: record id {record_id!r} unusable: {problem}")
        if record_id in found:
            raise PipelineError(f"record id {record_id!r} found twice: {found[record_id]} and "
                                f"{path} (record ids are file stems and must be unique)")
        other = folded.get(file_name_key(record_id))
        if other is not None:
            raise PipelineError(f"record ids {other!r} and {record_id!r} differ only in case "
                                f"or Unicode form: {found[other]} and {path} (one file name "
                                "on macOS and Windows; rename one)")
        found[record_id] = path
        folded[file_name_key(record_id)] = record_id
    if fmt == "wfdb":  # a multi-segment record's segments are parts of it, not records
        segments = {path.with_name(f"{name}.hea") for path in found.values()
                    for name in _segment_names(_header_lines(path))}
        found = {rid: path for rid, path in found.items() if path not in segments}
    if not found:
        raise PipelineError(f"{input_dir}: no {SUFFIXES[fmt]} files found (--format {fmt})")
    return found


# --------------------------------------------------------------------------------------
# The labels table
# --------------------------------------------------------------------------------------
def read_labels(path: Path, optional: Sequence[str] = ()) -> pd.DataFrame:
    """The labels table (CSV or Feather) as strings, checked for columns, ids and mode.

    Returns the table with a ``_row`` column (1-based data row in the file) and the mode in
    ``df.attrs["mode"]``: ``"events"`` (days_to_event + cardiac_cause) or ``"labels"``
    (ready-made 0/1 columns). Columns named in ``optional`` (of :data:`LABEL_ID_COLUMNS`) may
    be absent: they are added empty (WFDB headers may fill ``age`` and ``sex``).
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: labels table not found (pass --labels FILE)")
    try:
        if path.suffix.lower() in (".feather", ".ftr", ".arrow"):
            problem = feather_problem(path)
            if problem:
                raise PipelineError(f"{path}: cannot read the labels table ({problem})")
            df = pd.read_feather(path)
            df = df.astype({c: "string" for c in df.columns}).astype(object)
            df = df.where(df.notna(), None)
        else:
            # As written: "NA", "N/A", "NULL" stay text (ids may be such words; MISSING_WORDS
            # says where they mean no value); only an empty cell is missing. index_col=False:
            # rows ending in a stray comma must not shift every column onto the next name.
            df = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
            df = df.where(df.apply(lambda c: c.str.strip() != ""), None)
            # pandas renames a repeated header ("age", "age.1"): check the header as written
            written = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
            _check_unique_columns(list(written.iloc[0]) if len(written) else [], path)
    except PipelineError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        raise PipelineError(f"{path}: cannot read the labels table ({type(exc).__name__}: "
                            f"{exc})") from exc
    _check_unique_columns(list(df.columns), path)
    df.columns = [str(c).strip() for c in df.columns]
    found = list(df.columns)
    for column in optional:
        if column not in df.columns:
            df[column] = None
    missing = [c for c in LABEL_ID_COLUMNS if c not in df.columns]
    if missing:
        raise PipelineError(f"{path}: missing column(s) {', '.join(missing)} (found: "
                            f"{', '.join(map(repr, found))}; comma-separated)")
    if df.empty:
        raise PipelineError(f"{path}: no data rows (one row per record is expected)")
    given_labels = [c for c in LABELS if c in df.columns]
    has_events = [c for c in EVENT_COLUMNS if c in df.columns]
    if given_labels and "cardiac_cause" in df.columns:
        raise PipelineError(f"{path}: give either days_to_event + cardiac_cause or ready-made "
                            f"label columns ({', '.join(given_labels)}), not both")
    if not given_labels and len(has_events) < len(EVENT_COLUMNS):
        absent = [c for c in EVENT_COLUMNS if c not in df.columns]
        raise PipelineError(f"{path}: missing column(s) {', '.join(absent)} (or give "
                            f"ready-made label columns such as {', '.join(LABELS[:4])})")
    df = df.assign(_row=np.arange(1, len(df) + 1))
    for row, value in zip(df["_row"], df["record_id"]):
        problem = id_problem(value)
        if problem:
            raise PipelineError(f"{path}: row {row}, column record_id: {value!r}: {problem}")
    df["record_id"] = df["record_id"].astype(str)
    dup = df["record_id"].duplicated(keep=False)
    if dup.any():
        first = df.loc[dup, "record_id"].iloc[0]
        rows = df.loc[df["record_id"] == first, "_row"].tolist()
        raise PipelineError(f"{path}: record_id {first!r} appears in rows {rows} "
                            f"({int(df['record_id'].duplicated().sum())} repeated id(s) in all)")
    empty_patient = df["patient_id"].isna() | (df["patient_id"].astype(str).str.strip() == "")
    if empty_patient.any():
        row = df.loc[empty_patient].iloc[0]
        raise PipelineError(f"{path}: row {row['_row']} (record_id {row['record_id']!r}): "
                            "patient_id is empty")
    df["patient_id"] = df["patient_id"].astype(str).str.strip()
    df.attrs["mode"] = "labels" if given_labels else "events"
    df.attrs["source"] = str(path)
    return df


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) \
        or not str(value).strip()


def _same_demographic(column: str, given: str, written: str) -> bool:
    given, written = str(given).strip().lower(), str(written).strip().lower()
    if column == "sex":
        return _SEX_LETTERS.get(given, given) == _SEX_LETTERS.get(written, written)
    try:
        return float(given) == float(written)
    except ValueError:
        return given == written


def fill_demographics(labels: pd.DataFrame, records: dict[str, Path],
                      report: CohortReport) -> pd.DataFrame:
    """``labels`` with each empty ``age`` / ``sex`` cell of a record filled from its WFDB
    header's comments (:func:`header_demographics`). A value in the labels table wins; where
    the header writes another, the difference is counted in ``report``, naming the values, as
    are the cells filled."""
    labels = labels.copy()
    group = "import"
    filled = {column: 0 for column in HEADER_DEMOGRAPHICS}
    differ: dict[str, list[str]] = {column: [] for column in HEADER_DEMOGRAPHICS}
    for index, record_id in zip(labels.index, labels["record_id"]):
        if record_id not in records:
            continue
        written = header_demographics(records[record_id])
        for column in HEADER_DEMOGRAPHICS:
            if column not in written:
                continue
            given = labels.at[index, column]
            if _blank(given):
                labels.at[index, column] = written[column]
                filled[column] += 1
            elif not _same_demographic(column, given, written[column]):
                differ[column].append(f"{record_id}: {str(given).strip()} / {written[column]}")
    for column in HEADER_DEMOGRAPHICS:
        report.note(group, f"{column} taken from the WFDB header (empty or absent in the "
                           "labels table)", filled[column])
        report.note_values(group, f"{column} differs between the labels table and the WFDB "
                                  "header; the labels table's used (record: table / header)",
                           pd.Series(differ[column], dtype="string"))
    return labels


def _check_unique_columns(names: Sequence[object], path: Path) -> None:
    """One :class:`PipelineError` naming a column the labels table has twice (spaces around
    a name do not count: `` sex `` repeats ``sex``)."""
    stripped = [str(name).replace("\ufeff", "").strip() for name in names]
    for name in filter(None, stripped):  # unnamed (empty) columns are not read
        where = [i + 1 for i, other in enumerate(stripped) if other == name]
        if len(where) > 1:
            raise PipelineError(f"{path}: column {name!r} appears {len(where)} times (columns "
                                f"{', '.join(map(str, where))}); keep one")


def _cell_text(df: pd.DataFrame, column: str, missing_words: bool = True) -> pd.Series:
    """The column as stripped text; empty cells (and :data:`MISSING_WORDS`, unless
    ``missing_words`` is False) missing."""
    text = df[column].astype("string").str.strip()
    blank = text == ""
    if missing_words:
        blank |= text.str.lower().isin(MISSING_WORDS)
    return text.where(~blank.fillna(True).astype(bool))


def _number_column(df: pd.DataFrame, column: str, source: str) -> pd.Series:
    text = _cell_text(df, column)
    number = pd.to_numeric(text, errors="coerce").astype(float)
    bad = text.notna() & number.isna()
    if bad.any():
        row = df.loc[bad].iloc[0]
        raise PipelineError(f"{source}: row {row['_row']} (record_id {row['record_id']!r}), "
                            f"column {column}: {row[column]!r} is not a number")
    infinite = np.isinf(number)
    if infinite.any():
        row = df.loc[infinite].iloc[0]
        raise PipelineError(f"{source}: row {row['_row']} (record_id {row['record_id']!r}), "
                            f"column {column}: {row[column]!r} is not a finite number")
    return number


def _bool_column(df: pd.DataFrame, column: str, source: str,
                 missing_words: bool = True) -> pd.Series:
    """True/False per row; missing stays <NA>; anything else is an error naming the row
    (``missing_words``: whether :data:`MISSING_WORDS` count as missing)."""
    text = _cell_text(df, column, missing_words).str.lower()
    out = pd.Series(pd.NA, index=df.index, dtype="boolean")
    out[text.isin(TRUE_WORDS).fillna(False).astype(bool)] = True
    out[text.isin(FALSE_WORDS).fillna(False).astype(bool)] = False
    bad = text.notna() & out.isna()
    if bad.any():
        row = df.loc[bad].iloc[0]
        hint = ("; leave it empty for a control, or give the arrest's cause"
                if column == "cardiac_cause" else "")
        raise PipelineError(f"{source}: row {row['_row']} (record_id {row['record_id']!r}), "
                            f"column {column}: {row[column]!r} is not true/false (or 1/0)"
                            f"{hint}")
    return out


def cohort_rows(labels: pd.DataFrame, report: CohortReport) -> tuple[pd.DataFrame, dict[str, str]]:
    """x01-shaped rows (columns :data:`COHORT_COLUMNS` + labels) for every label row.

    Returns the rows whose labels are usable and ``{record_id: reason}`` for those refused
    (an event without ``days_to_event``, or any row without it in "events" mode, as x01
    excludes ECGs without days to the event or to the control ECG).
    """
    source = labels.attrs.get("source", "labels table")
    mode = labels.attrs.get("mode", "events")
    group_name = "import"
    out = pd.DataFrame({"ecg_id": labels["record_id"].astype(str).to_numpy(),
                        "patient_ngsci_id": labels["patient_id"].astype(str).to_numpy()},
                       index=labels.index)
    out["age"] = parse_age(_cell_text(labels, "age"), group_name, report)
    sex = _cell_text(labels, "sex")
    out["female"] = parse_female(sex.str.lower().map(lambda v: _SEX_LETTERS.get(v, v),
                                                     na_action="ignore"), group_name, report)
    known = {*LABEL_ID_COLUMNS, *EVENT_COLUMNS, *LABELS, *MEASUREMENT_COLUMNS, *FLAG_COLUMNS,
             "VTVF", "_row"}
    unused = [c for c in labels.columns if c not in known]
    report.note_values(group_name, "labels-table column(s) not used (not a column the import "
                                   "reads; names are case-sensitive, see docs/DATA.md)",
                       pd.Series(unused, dtype="string"))
    days = (np.floor(_number_column(labels, "days_to_event", source))
            if "days_to_event" in labels.columns else pd.Series(np.nan, index=labels.index))
    out["days_to_event"] = days
    out["days_to_event_og"] = days
    report.note_values(group_name, "days_to_event below 0 (an ECG after the event?)",
                       out.loc[days < 0, "ecg_id"].astype("string"))
    refused: dict[str, str] = {}
    if mode == "events":
        cardiac = _bool_column(labels, "cardiac_cause", source, missing_words=False)
        event = cardiac.notna()
        if event.all():
            report.note(group_name, "rows with a cardiac_cause, that is arrests: every row (no "
                        "control: leave cardiac_cause empty for one; false means a "
                        "non-cardiac arrest)", int(event.sum()))
        out["group"] = np.where(event, STUDY_GROUP, GROUP_CONTROL)
        cause = pd.Series(pd.NA, index=labels.index, dtype="string")
        cause[event & cardiac.fillna(False)] = CARDIAC_CAUSE
        cause[event & ~cardiac.fillna(True)] = NON_CARDIAC_CAUSE
        out["cause_of_cardiac_arrest"] = cause
        for record_id, is_event in zip(out.loc[days.isna(), "ecg_id"], event[days.isna()]):
            refused[record_id] = ("label row: event without days_to_event" if is_event else
                                  "label row: no days_to_event (days from the ECG to the last "
                                  "follow-up without an event)")
    else:
        out["group"] = GROUP_CONTROL
        out["cause_of_cardiac_arrest"] = pd.Series(pd.NA, index=labels.index, dtype="string")
    vtvf = (_bool_column(labels, "VTVF", source).astype(float)
            if "VTVF" in labels.columns else np.nan)
    out["VTVF"] = vtvf
    for column in MEASUREMENT_COLUMNS:
        out[column] = (_number_column(labels, column, source) if column in labels.columns
                       else np.nan)
    out["qtc500"] = out["qtc"] > QTC_LONG_MS
    for column in FLAG_COLUMNS:
        out[column] = (_bool_column(labels, column, source).fillna(False).astype(bool)
                       if column in labels.columns else False)
    # Not known: NaT, in the type x01's parser gives a datetime (it varies with pandas).
    stamp = parse_datetime(pd.Series(["2000-01-01 00:00:00"], dtype="string"), "", "",
                           CohortReport())
    out["acquisition_datetime"] = pd.Series(pd.NaT, index=labels.index, dtype=stamp.dtype)
    out["file_path"] = ""
    out["npy_index"] = np.int64(0)
    out = out.loc[~out["ecg_id"].isin(refused)]

    if mode == "events":
        out = add_labels(out)
    else:
        given = labels.loc[out.index]
        for name in LABELS:
            if name in given.columns:
                # a boolean column (a Feather table's True/False) is 1/0
                as_bits = given[name].map(lambda v: {"true": "1", "false": "0"}.get(
                    str(v).strip().lower(), v), na_action="ignore")
                value = _number_column(given.assign(**{name: as_bits}), name, source)
                bad = value.notna() & ~value.isin([0.0, 1.0])
                if bad.any():
                    row = given.loc[bad].iloc[0]
                    raise PipelineError(f"{source}: row {row['_row']} (record_id "
                                        f"{row['record_id']!r}), column {name}: {row[name]!r} "
                                        "is not 0/1")
                out[name] = value
            else:
                out[name] = np.nan
            report.note(group_name, f"label {name} not given -> NaN (not trained on)",
                        int(name not in given.columns) * len(out))
        out["group"] = np.where(out[[n for n in LABELS]].eq(1).any(axis=1), STUDY_GROUP,
                                GROUP_CONTROL)
    return out[list(COHORT_COLUMNS) + list(LABELS)], refused


# --------------------------------------------------------------------------------------
# The whole import
# --------------------------------------------------------------------------------------
@dataclass
class ImportResult:
    covariates: pd.DataFrame                 # the x02 table written to covariate_df.feather
    log: pd.DataFrame                        # one row per record / orphan label row
    notes: CohortReport = field(default_factory=CohortReport)

    def summary(self) -> str:
        counts = Counter(self.log["status"])
        lines = ["[import] records and label rows by status: "
                 + ", ".join(f"{s} {counts.get(s, 0)}" for s in STATUSES)]
        reasons = self.log.loc[self.log["status"] != "imported"]
        for (status, reason), n in sorted(Counter(zip(reasons["status"], reasons["reason"])).items()):
            lines.append(f"  {n:>7}  {status}: {reason}")
        ok = self.log[self.log["status"] == "imported"]
        derived = Counter(lead for text in ok["derived_leads"].fillna("") for lead in
                          str(text).split(";") if lead)
        lines.append("[import] limb leads derived from I and II: "
                     + (", ".join(f"{k} {v}" for k, v in sorted(derived.items())) or "none"))
        stored = ok[ok["derived_leads"].fillna("") == ""]
        odd = stored.loc[stored["identity_residual"] > IDENTITY_WARNING, "record_id"].tolist()
        lines.append(f"[import] records whose stored III/aVR/aVL/aVF disagree with I and II "
                     f"(relative residual > {IDENTITY_WARNING}; lead mix-up or gain fault?): "
                     f"{len(odd)}" + (f", e.g. {', '.join(odd[:5])}" if odd else ""))
        low, high = PLAUSIBLE_RANGE_MV
        span = ok["lead_II_range_mv"]
        odd = ok.loc[(span < low) | (span > high), "record_id"].tolist()
        lines.append(f"[import] records whose lead II spans less than {low:g} or more than "
                     f"{high:g} mV (wrong units?): {len(odd)}"
                     + (f", e.g. {', '.join(odd[:5])}" if odd else ""))
        lines.append(f"[import] records padded to 10 s: {int((ok['padded_samples'] > 0).sum())}; "
                     f"sampling rates: " + ", ".join(
                         f"{fs:g} Hz {n}" for fs, n in sorted(Counter(ok["fs"]).items())))
        if self.notes.notes:
            lines.append("[import] label values kept as missing or taken from WFDB headers:")
            for (_, message), n in sorted(self.notes.notes.items()):
                lines.append(f"  {n:>7}  {message}")
        cov = self.covariates
        if cov.empty:
            lines.append("[import] no ECG imported")
            return "\n".join(lines)
        lines.append(f"[import] {len(cov)} ECGs of {cov['ptId'].nunique()} patients; "
                     f"{int(cov['include_modelling'].sum())} eligible for modelling; positives: "
                     + ", ".join(f"{n} {int((cov[n] == 1).sum())}" for n in LABELS))
        return "\n".join(lines)


def check_window_ids(kept_ids: Sequence[str], by_id: dict[str, dict],
                     record_ids: set[str]) -> None:
    """Window ids (``<id>_w<k>``) must not repeat or clash with another record's id."""
    seen: dict[str, str] = {}
    for record_id in kept_ids:
        for window_id in by_id[record_id]["window_ids"]:
            clash = seen.get(window_id) or (window_id in record_ids and window_id != record_id
                                            and window_id)
            if clash:
                raise PipelineError(f"window id {window_id!r} of record {record_id!r} clashes "
                                    f"with record {clash!r}; rename one of the records")
            seen[window_id] = record_id


def _log_row(record_id: str, status: str, reason: str, **extra) -> dict:
    return {"record_id": record_id, "status": status, "reason": reason, **extra}


def imported_covariates(kept: pd.DataFrame, by_id: dict[str, dict], records: dict[str, Path],
                        labels: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The x02 table of the kept label rows: one row per imported window, in x01's order,
    with the measurements the labels table left missing filled in."""
    # x01's order: the study group first, then the controls; by id within each.
    kept = (kept.assign(_rank=(kept["group"] != STUDY_GROUP).astype(int))
            .sort_values(["_rank", "ecg_id"], kind="mergesort").drop(columns="_rank"))
    expanded = []
    for row in kept.itertuples(index=False):
        result = by_id[row.ecg_id]
        for k, window_id in enumerate(result["window_ids"]):
            values = row._asdict()
            if result["measurements"]:  # fill what the labels table left missing
                for name, value in result["measurements"][k].items():
                    if pd.isna(values[name]):
                        values[name] = value
                for name, value in corrected_qt(values["qt_interval"], values["avg_rr"]).items():
                    if pd.isna(values[name]):
                        values[name] = value
                values["qtc500"] = bool(values["qtc"] > QTC_LONG_MS)
            expanded.append({**values, "ecg_id": window_id, "npy_index": np.int64(k),
                             "file_path": str(records[row.ecg_id])})
    cohort = pd.DataFrame(expanded, columns=list(kept.columns)).astype(kept.dtypes.to_dict())
    covariates = add_pipeline_columns(cohort.reset_index(drop=True), seed=seed)
    if "days_to_event" not in labels.columns and len(covariates):
        # Ready-made labels without days: the x02 days rule cannot apply; age and sex still do.
        covariates["include_modelling"] = (covariates["age"].notna()
                                           & covariates["female"].notna()
                                           & (covariates["age"] < MAX_MODELLING_AGE))
    return covariates


def check_replaceable(folder: Path) -> None:
    """Refuse to replace ``folder`` unless it is missing or holds only what an import or x03
    writes there (``<studyId>.npy`` files, hidden files of ours): the import swaps the folder
    as a whole, and must never delete a folder of the user's own."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise PipelineError(f"--out-dir {folder}: a file is where the ECG folder should be "
                            "(move it away)")
    for entry in folder.iterdir():
        ours = entry.is_file() and not entry.is_symlink() and (
            entry.suffix == ".npy" or entry.name.startswith("."))
        if not ours:
            raise PipelineError(f"--out-dir {folder}: holds {entry.name!r}, which neither an "
                                "import nor x03 writes; the import replaces this folder as a "
                                "whole, so choose another --out-dir or move it away")


def import_cohort(input_dir: Path | str, labels_path: Path | str, out_dir: Path | str,
                  options: SignalOptions, one_per_patient: bool = True, seed: int = 42,
                  n_jobs: int = 0, progress: bool = True,
                  table_path: Path | str | None = None,
                  log_path: Path | str | None = None) -> ImportResult:
    """Import the records under ``input_dir`` labelled in ``labels_path`` into ``out_dir``.

    ``out_dir`` (``10_sec_ecgs/``) is replaced as a whole (atomically, no stale files). With
    ``table_path`` the covariate table is written there too, staged beside it before the
    folder is swapped in and renamed into place right after, so an error or a killed run
    leaves both as they were. The new folder arrives carrying the import's
    :func:`~scdecg.io.unfinished_marker`, removed once the table is in place: a crash between
    the two renames leaves a folder that every reader refuses (naming the import to rerun)
    rather than a folder and a table of two imports. The folder's lock is held throughout (a
    second import or an x03 stops). Nothing is written when no record is imported. The caller
    writes the log (to ``log_path``, checked here with the other paths: no output may land on
    an input or another output, and ``out_dir`` must hold nothing but ECG files,
    :func:`check_replaceable`).
    """
    import contextlib
    import functools

    from .io import (atomic_path, folder_lock, refuse_path_clashes, replace_dir,
                     unfinished_marker, write_text)
    from .parallel import imap

    if options.format not in FORMATS:
        raise PipelineError(f"--format {options.format!r}: expected one of {', '.join(FORMATS)}")
    if options.format in ("npy", "csv"):
        if not options.fs or options.fs <= 0:
            raise PipelineError(f"--format {options.format}: give the sampling rate with --fs HZ")
        problem = fs_problem(options.fs)
        if problem:
            raise PipelineError(f"--fs {options.fs}: {problem}")
        if not options.leads and options.format == "npy":
            raise PipelineError("--format npy: give the lead order with --leads I,II,...")
        if uv_per_unit(options.unit or DEFAULT_UNIT) is None:
            raise PipelineError(f"--units {options.unit!r}: expected mV, uV or V")
        if any(not lead.strip() for lead in options.leads):
            raise PipelineError(f"--leads {','.join(options.leads)!r}: empty lead name")
        named = {canonical_lead(lead) for lead in options.leads}
        absent = [lead for lead in REQUIRED_LEADS if lead not in named]
        if options.leads and absent:
            raise PipelineError(f"--leads {','.join(options.leads)!r}: no {', '.join(absent)} "
                                "(every record needs I, II and V1-V6)")
    elif options.fs or options.leads or options.unit:
        raise PipelineError("--fs, --leads and --units are for --format npy/csv; WFDB headers "
                            "give the rate, lead names and units")

    refuse_path_clashes({"--out-dir": out_dir, "--output": table_path, "--log": log_path},
                        {"--input": input_dir, "--labels": labels_path})
    check_replaceable(Path(out_dir))
    wfdb = options.format == "wfdb"
    labels = read_labels(Path(labels_path), optional=HEADER_DEMOGRAPHICS if wfdb else ())
    records = discover_records(Path(input_dir), options.format, exclude=[Path(labels_path)])
    notes = CohortReport()
    if wfdb:   # age and sex the labels table leaves empty may be in the headers' comments
        labels = fill_demographics(labels, records, notes)
    rows, refused_labels = cohort_rows(labels, notes)
    patient_of = dict(zip(labels["record_id"], labels["patient_id"]))
    log: list[dict] = []
    for record_id in records:
        if record_id not in patient_of:
            log.append(_log_row(record_id, "no_label", "record has no row in the labels table"))
    for record_id in labels["record_id"]:
        if record_id not in records:
            log.append(_log_row(record_id, "no_record",
                                "label row has no record file under --input"))
        elif record_id in refused_labels:
            log.append(_log_row(record_id, "refused", refused_labels[record_id]))
    wanted = [r for r in rows["ecg_id"] if r in records]

    state: dict[str, object] = {"table": None}

    def fill(tmp: Path) -> None:
        tasks = [(r, str(records[r]), str(tmp)) for r in wanted]
        work = functools.partial(import_record, options=options)
        results = list(imap(work, tasks, n_jobs=n_jobs, desc="import records", chunksize=4,
                            progress=progress, unit="record"))
        by_id = {res["record_id"]: res for res in results}
        imported = [by_id.get(r, {}).get("status") == "imported" for r in rows["ecg_id"]]
        usable = rows.loc[np.asarray(imported, dtype=bool)]
        kept = one_ecg_per_patient(usable) if one_per_patient else usable
        kept_ids = set(kept["ecg_id"])
        for res in results:
            if res["status"] == "imported" and res["record_id"] not in kept_ids:
                res.update(status="not_chosen",
                           reason="another ECG of the patient kept (one per patient, as x01)")
                for window_id in res["window_ids"]:
                    (tmp / f"{window_id}.npy").unlink(missing_ok=True)
            log.append(res)
        check_window_ids(kept["ecg_id"], by_id, set(records))
        state.update(kept=kept, by_id=by_id)
        if kept.empty:
            raise _NothingImported  # leave the existing folder (and table) as they are
        state["covariates"] = imported_covariates(kept, by_id, records, labels, seed)
        if state["table"] is not None:  # staged now; renamed into place after the folder
            state["covariates"].reset_index(drop=True).to_feather(state["table"])
        table = f"its table {table_path}" if table_path is not None else "its table"
        write_text(f"{IMPORT_STEP} ({STEP_SCRIPTS[IMPORT_STEP]}) put this folder in place "
                   f"before {table}; it removes this file once both are\n",
                   unfinished_marker(tmp, IMPORT_STEP))

    staging = (atomic_path(table_path, clean=True) if table_path is not None
               else contextlib.nullcontext())
    try:  # the lock: a second import or an x03 over the same folder stops instead of racing
        with folder_lock(Path(out_dir), IMPORT_STEP):
            with staging as state["table"]:
                replace_dir(Path(out_dir), fill)
            unfinished_marker(out_dir, IMPORT_STEP).unlink()   # folder and table both in place
    except _NothingImported:
        pass
    kept, by_id = state["kept"], state["by_id"]
    covariates = state.get("covariates")
    if covariates is None:  # nothing imported: the empty table, not written
        covariates = imported_covariates(kept, by_id, records, labels, seed)

    frame = pd.DataFrame(log)
    frame["patient_id"] = frame["record_id"].map(patient_of)
    frame["source"] = frame["record_id"].map(
        lambda r: str(records[r].relative_to(Path(input_dir))) if r in records else "")
    for column in LOG_COLUMNS:
        if column not in frame.columns:
            frame[column] = np.nan
    frame = frame[list(LOG_COLUMNS)].sort_values("record_id", kind="mergesort")
    frame["n_windows"] = frame["n_windows"].fillna(0).astype(int)
    frame["padded_samples"] = frame["padded_samples"].fillna(0).astype(int)
    return ImportResult(covariates=covariates, log=frame.reset_index(drop=True), notes=notes)

