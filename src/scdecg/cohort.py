"""The NTUH cohort table (x01) and its pipeline columns (x02).

:func:`build_cohort` turns the arrest-ntuh-ecg tree into one row per kept ECG: the study
group's pre-arrest ECGs and each control year's "pre" ECGs, with demographics, ECG
measurements and the SCD labels. :func:`add_pipeline_columns` then adds the names and the
placeholder covariates that the training code expects.

Odd source values are never dropped silently: each is either kept as a missing value or
excluded, and counted in a :class:`CohortReport` (printed by the scripts).

Decisions on inputs the published code did not anticipate (listed in docs/DEVIATIONS.md):

* a repeated ``ecg_id`` in a one-row-per-ECG table: the first row is used, later ones are
  ignored and counted;
* a patient with several control ECGs: the earliest (parsable) one is used and counted;
* ``npy_index`` that is not a whole number or lies outside the stacked array: ECG excluded;
* ties in the one-ECG-per-patient choice go to the smallest ``ecg_id``.
"""
from __future__ import annotations

import csv
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .constants import MIN_DAYS_TO_EVENT, SCALING_FACTOR, SCD_HORIZON_DAYS
from .errors import PipelineError
from .failures import FailureLog
from .io import file_name_key, npy_header, unsafe_name_reason, write_csv, write_feather
from .workspace import (CONTROL_COHORT, CONTROL_DIR, DIAGNOSIS, GLOBAL, PER_LEAD, RESTING,
                        ROSC_OUTCOMES, STEP_SCRIPTS, STUDY_COHORT, STUDY_DIR, STUDY_ECGS,
                        WAVEFORM_ARRAY, WAVEFORM_INDEX)

# --------------------------------------------------------------------------------------
# Source layout: every column x01 reads (the files: scdecg.workspace; ntuh-data.md).
# --------------------------------------------------------------------------------------

#: Columns needed from each group's metadata tables (paths relative to the group folder).
METADATA_COLUMNS: dict[str, tuple[str, ...]] = {
    PER_LEAD: ("ecg_id", "stelev", "stdown", "dltwv"),
    GLOBAL: ("ecg_id", "qtc", "avg_rr"),
    RESTING: ("ecg_id", "ventricular_rate", "atrial_rate", "qrs_duration", "qt_interval",
              "qtc_frederica"),
    DIAGNOSIS: ("ecg_id", "stmt_text"),
}
#: Study-group tables (relative to ``study-group/``) besides the metadata.
STUDY_COLUMNS: dict[str, tuple[str, ...]] = {
    WAVEFORM_INDEX: ("ecg_id", "npy_index", "ecg_timetag"),
    STUDY_ECGS: ("ecg_id", "patient_ngsci_id", "acquisition_datetime_offset"),
    STUDY_COHORT: ("ecg_id", "age", "sex", "rosc_datetime_offset"),
    ROSC_OUTCOMES: ("ecg_id", "cause_of_cardiac_arrest",
                          "hospitalization_datetime_offset", "initial_rhythm"),
}
CONTROL_COHORT_COLUMNS = ("ecg_id", "patient_ngsci_id", "acquisition_datetime_offset",
                          "ecg_timetag", "age", "sex")
CONTROL_INDEX_COLUMNS = ("ecg_id", "npy_index")

STUDY_TIMETAG = "[0]pre"
CONTROL_PRE, CONTROL_CONTROL = "pre", "control"
CARDIAC_CAUSE = "cardiac event"
SHOCKABLE_RHYTHM = "VT/VF"
#: Category values x01 recognises (compared after :func:`normalise_category`). Values outside
#: these lists are read as published (non-cardiac; not shockable) and named in the summary.
CARDIAC_CAUSES: tuple[str, ...] = (CARDIAC_CAUSE,)
NONCARDIAC_CAUSES: tuple[str, ...] = (
    "respiratory failure", "trauma", "overdose", "sepsis", "drowning", "hanging",
    "intracranial hemorrhage", "electrolyte imbalance")
SHOCKABLE_RHYTHMS: tuple[str, ...] = (SHOCKABLE_RHYTHM,)
OTHER_RHYTHMS: tuple[str, ...] = ("PEA", "asystole")
#: Ages are digits, optionally with the export's "+" suffix ("89+"); above this they are refused.
MAX_AGE = 120
AGE_PATTERN = r"(\d+)(\.\d*)?(\+?)"
#: A timezone suffix on a datetime ("Z", "+08:00", "-0500"); removed, the clock time kept.
TIMEZONE_SUFFIX = r"\s*(?:Z|UTC|[+-]\d{2}:?\d{2}|(?<=:\d\d)[+-]\d{2})$"
#: A date cut to its year or month ("2016", "2016-03"), which pandas would read as the 1st.
PARTIAL_DATE = r"^\d{4}(?:-\d{1,2})?$"
#: Years outside this range are a typo or a placeholder ("1015", "9999-12-31").
DATETIME_YEARS = (1900, 2100)
#: Distinct odd values named in one summary line.
MAX_NAMED_VALUES = 8
LBBB_PHRASE = "left bundle branch block"
PACED_PHRASE = "paced"
#: Per-lead flag bits (the published code tested equality with these codes).
FLAG_BITS: dict[str, int] = {"stelev": 8, "stdown": 4, "dltwv": 32}
#: How a per-lead code sets a flag: "bit" tests the bit (code & 8); "equal" is the published
#: test (code == 8), which misses combined codes such as 12 = 8 | 4 (docs/DEVIATIONS.md).
FLAG_MATCHES = ("bit", "equal")
FLAG_MATCH = "bit"
#: Flags whose missing value means "not flagged".
FALSE_IF_MISSING = ("lbbb", "qtc500", "stelev", "stdown", "dltwv")
QTC_LONG_MS = 500

LABELS: tuple[str, ...] = ("scd3mo", "scd6mo", "scd1", "scd2", "scd",
                           "arrest_noncardiac", "arrest_noncardiac1", "arrest_noncardiac2",
                           "any_arrest", "any_arrest1")
STUDY_GROUP = "study"
#: Columns of the x01 table before the labels, in order.
COHORT_COLUMNS: tuple[str, ...] = (
    "ecg_id", "patient_ngsci_id", "group", "file_path", "npy_index", "acquisition_datetime",
    "days_to_event", "days_to_event_og", "age", "female", "cause_of_cardiac_arrest", "VTVF",
    "stelev", "stdown", "dltwv", "qtc", "avg_rr", "qtc500", "ventricular_rate", "atrial_rate",
    "qrs_duration", "qt_interval", "qtc_frederica", "lbbb", "paced")


# --------------------------------------------------------------------------------------
# Bookkeeping
# --------------------------------------------------------------------------------------
@dataclass
class CohortReport:
    """Counts of everything x01 kept as missing, ignored or excluded, per group."""

    excluded: FailureLog = field(default_factory=lambda: FailureLog("x01"))
    notes: Counter = field(default_factory=Counter)   # (group, message) -> n
    rows_in: Counter = field(default_factory=Counter)  # group -> ECG rows read

    def note(self, group: str, message: str, n: int) -> None:
        if n:
            self.notes[(group, message)] += int(n)

    def note_values(self, group: str, message: str, values: pd.Series) -> None:
        """Count ``values`` under ``message``, naming the most frequent distinct ones."""
        counts = values.astype("string").fillna("<missing>").value_counts()
        if counts.empty:
            return
        named = ", ".join(f"{v!r} {n}" for v, n in counts.head(MAX_NAMED_VALUES).items())
        more = f", ... ({len(counts) - MAX_NAMED_VALUES} more values)" \
            if len(counts) > MAX_NAMED_VALUES else ""
        self.note(group, f"{message}: {named}{more}", int(counts.sum()))

    def exclude(self, group: str, ecg_ids: Iterable[str], reason: str) -> None:
        for ecg_id in ecg_ids:
            self.excluded.add(ecg_id, reason, group=group)

    def exclusion_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.excluded.rows, columns=["record", "reason", "group"])
        return frame.rename(columns={"record": "ecg_id"})[["group", "ecg_id", "reason"]]

    def summary(self, cohort: pd.DataFrame) -> str:
        lines = ["[x01] ECG rows read per group: "
                 + ", ".join(f"{g} {n}" for g, n in self.rows_in.items())]
        lines.append("[x01] values kept as missing or rows ignored (group: reason):")
        if not self.notes:
            lines.append("  none")
        for (group, message), n in sorted(self.notes.items()):
            lines.append(f"  {n:>7}  {group}: {message}")
        lines.append(f"[x01] ECGs excluded (group: reason): {len(self.excluded)}")
        by_reason = Counter((row["group"], row["reason"]) for row in self.excluded.rows)
        for (group, reason), n in sorted(by_reason.items()):
            lines.append(f"  {n:>7}  {group}: {reason}")
        lines.append(f"[x01] kept {len(cohort)} ECGs of {cohort['patient_ngsci_id'].nunique()} "
                     "patients (one per patient); per group: "
                     + ", ".join(f"{g} {n}" for g, n in
                                 cohort["group"].value_counts(sort=False).items()))
        lines.append("[x01] labels (positives): "
                     + ", ".join(f"{name} {int(cohort[name].sum())}" for name in LABELS))
        study = cohort["group"] == STUDY_GROUP
        if study.any() and not cohort.loc[study, "scd"].any():
            lines.append("[x01] warning: no kept study ECG has a cause in --cardiac-causes, so "
                         "every arrest reads as non-cardiac (see the values named above)")
        return "\n".join(lines)


@dataclass(frozen=True)
class Categories:
    """The category strings x01 recognises (x01's --cardiac-causes and related options)."""

    cardiac_causes: tuple[str, ...] = CARDIAC_CAUSES
    noncardiac_causes: tuple[str, ...] = NONCARDIAC_CAUSES
    shockable_rhythms: tuple[str, ...] = SHOCKABLE_RHYTHMS
    other_rhythms: tuple[str, ...] = OTHER_RHYTHMS


def normalise_category(values: pd.Series) -> pd.Series:
    """Case-folded, with surrounding whitespace removed and inner runs of it made one space."""
    return values.astype("string").str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()


def in_category(values: pd.Series, accepted: Iterable[str]) -> pd.Series:
    """True where ``values`` equal one of ``accepted`` (case and whitespace ignored)."""
    wanted = set(normalise_category(pd.Series(list(accepted), dtype="string")).dropna())
    return normalise_category(values).isin(wanted).fillna(False).astype(bool)


# --------------------------------------------------------------------------------------
# Layout check, before anything is read
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupSource:
    """Where one group's ECG index, waveforms and metadata live."""

    name: str     # "study" or the control year as a string
    folder: Path  # study-group/ or control-group/<year>/pre/

    @property
    def index_csv(self) -> Path:
        return self.folder / WAVEFORM_INDEX

    @property
    def array(self) -> Path:
        return self.folder / WAVEFORM_ARRAY


def group_sources(data_root: Path, control_years: Sequence[int]) -> list[GroupSource]:
    data_root = Path(data_root)
    groups = [GroupSource(STUDY_GROUP, data_root / STUDY_DIR)]
    groups += [GroupSource(str(year), data_root / CONTROL_DIR / str(year) / "pre")
               for year in control_years]
    return groups


def required_tables(data_root: Path, control_years: Sequence[int]) -> dict[Path, tuple[str, ...]]:
    """Every CSV x01 reads, with the columns it needs from it."""
    data_root = Path(data_root)
    study, *controls = group_sources(data_root, control_years)
    tables = {study.folder / name: cols for name, cols in STUDY_COLUMNS.items()}
    if controls:
        tables[data_root / CONTROL_COHORT] = CONTROL_COHORT_COLUMNS
    for group in [study, *controls]:
        if group is not study:
            tables[group.index_csv] = CONTROL_INDEX_COLUMNS
        tables.update({group.folder / name: cols for name, cols in METADATA_COLUMNS.items()})
    return tables


def check_inputs(data_root: Path, control_years: Sequence[int]) -> None:
    """Raise one :class:`PipelineError` naming every missing folder, file or column."""
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise PipelineError(f"{data_root}: data root not found (pass --data-root, or make the "
                            f"synthetic stand-in with {STEP_SCRIPTS['x00']})")
    problems: list[str] = []
    present = [y for y in control_years if (data_root / CONTROL_DIR / str(y)).is_dir()]
    absent_years = [str(y) for y in control_years if y not in present]
    if absent_years:
        problems.append(f"{data_root / CONTROL_DIR}: control year folder(s) not found: "
                        f"{', '.join(absent_years)} (leave them out of --control-years "
                        "to run without them)")
    for path, columns in required_tables(data_root, present).items():
        if not path.is_file():
            problems.append(f"{path}: file not found")
            continue
        try:
            header = [name.strip().lower() for name in raw_header(path)]
        except (csv.Error, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            problems.append(f"{path}: cannot read a CSV header ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())})")
            continue
        if len(header) == 1 and ";" in header[0]:
            problems.append(f"{path}: the header has no comma ({header[0][:60]!r}): a "
                            "semicolon-separated table; NTUH tables are comma-separated")
            continue
        absent = [c for c in columns if c not in header]
        if absent:
            problems.append(f"{path}: missing column(s) {', '.join(absent)}")
        repeated = sorted({c for c in header if c in columns and header.count(c) > 1})
        if repeated:
            problems.append(f"{path}: column name(s) {', '.join(repeated)} appear more than "
                            "once in the header")
    for group in group_sources(data_root, present):
        if not group.array.is_file():
            problems.append(f"{group.array}: file not found")
            continue
        try:
            shape = waveform_shape(group.array)
        except PipelineError as exc:
            problems.append(str(exc))
            continue
        if len(shape) != 3 or shape[1] != 12:
            problems.append(f"{group.array}: expected shape (n, 12, samples), got {shape}")
        dtype = waveform_dtype(group.array)
        if not (np.issubdtype(dtype, np.signedinteger) or np.issubdtype(dtype, np.floating)):
            problems.append(f"{group.array}: values of type {dtype}, expected signed integers "
                            "or floats in µV (an unsigned type would wrap negative voltages)")
    if problems:
        raise PipelineError("; ".join(problems))


def raw_header(path: Path) -> list[str]:
    """The header row of a CSV as written (repeated names kept; pandas would rename them)."""
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8-sig")
    if not first.strip():
        raise pd.errors.EmptyDataError("no header line")
    return next(csv.reader([first]))


def waveform_dtype(path: Path) -> np.dtype:
    return npy_header(path)[1]


def waveform_shape(path: Path) -> tuple[int, ...]:
    """Shape of a stacked ``.npy`` array, read from its header only (a file that is no array
    is a :class:`~scdecg.io.UnreadableArray` saying what it is)."""
    try:
        return npy_header(path)[0]
    except OSError as exc:
        raise PipelineError(f"{path}: not a readable .npy array ({exc})") from exc


# --------------------------------------------------------------------------------------
# Reading and parsing
# --------------------------------------------------------------------------------------
#: Ids are text as written: "NA", "None" or "nan" is an id, not a missing one.
ID_COLUMNS = ("ecg_id", "patient_ngsci_id")
#: What pandas reads as missing by default; x01 keeps that reading for every other column.
MISSING_TEXT = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan",
                "null")


def read_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """Read ``columns`` of a CSV as strings (IDs that look numeric stay strings; an empty
    cell is a missing id, but "NA" or "None" is an id; other columns read pandas' missing
    markers as missing).

    Every column is parsed, so a row with more fields than the header (an unquoted comma
    in a free-text cell) is an error naming its line instead of shifting that row's values
    into the next columns (which reading only ``columns`` would hide)."""
    problem = control_byte_problem(path)
    if problem:
        raise PipelineError(f"{path}: {problem}")
    try:
        with warnings.catch_warnings():
            # a first data row longer than the header: pandas would take its first field as
            # an index (index_col=None) or drop the extra ones with this warning (False)
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(path, dtype=str, encoding="utf-8", index_col=False,
                             keep_default_na=False, na_values=[""])
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{path}: line {first_undecodable_line(path)} is not UTF-8 text "
                            f"({exc.reason}); convert the file to UTF-8") from exc
    except (pd.errors.ParserWarning, pd.errors.ParserError, ValueError) as exc:
        line, fields, expected = first_long_row(path)
        if line:
            raise PipelineError(f"{path}: line {line} has {fields} fields, the header "
                                f"{expected} (an unquoted comma in a cell?); quote that "
                                "cell") from exc
        raise PipelineError(f"{path}: cannot read the table ({' '.join(str(exc).split())})"
                            ) from exc
    # "ECG_ID" or " age" (a space after each comma) name the same columns
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise PipelineError(f"{path}: no column {missing[0]!r}")
    for column in df.columns:
        # one line per record: a line break inside a cell means a stray quote opened a field
        # that swallowed the following lines (their records would be silently lost)
        broken = df[column].str.contains("[\r\n]", regex=True).fillna(False).astype(bool)
        if broken.any():
            row = int(np.flatnonzero(broken.to_numpy())[0])
            raise PipelineError(f"{path}: data row {row + 1}, column {column!r}: a quoted cell "
                                "spans several lines (a stray '\"'?), swallowing the rows "
                                f"after it: {df[column].iloc[row][:60]!r}...; fix the quote")
    df = df[list(columns)]
    for column in df.columns.difference(ID_COLUMNS):
        df[column] = df[column].mask(df[column].isin(MISSING_TEXT))
    return df


def control_byte_problem(path: Path) -> str | None:
    """A NUL byte (pandas ends the cell there, cutting an id short) or a carriage return
    without a line feed (pandas ends the row there) in a CSV that also has line feeds, named
    by line; None when there is neither. Files with only CR line ends are read as they are."""
    raw = Path(path).read_bytes()
    newline = b"\n"
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(newline, 0, nul) + 1
        return f"line {line} holds a NUL byte (pandas would cut the cell there); remove it"
    if newline in raw:
        bare = re.search(rb"\r(?!\n)", raw)
        if bare:
            line = raw.count(newline, 0, bare.start()) + 1
            return (f"line {line} holds a carriage return inside a row (pandas would split the "
                    "row there); remove it")
    return None


def first_long_row(path: Path) -> tuple[int, int, int]:
    """(line, fields, header fields) of the first CSV row with more fields than the header."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            expected = len(next(reader, []))
            for row in reader:
                if len(row) > expected:
                    return reader.line_num, len(row), expected
        except csv.Error:   # a quote that never closes: not this problem
            pass
    return 0, 0, 0


def first_undecodable_line(path: Path) -> int:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def first_row_per_ecg(df: pd.DataFrame, source: Path, group: str, report: CohortReport,
                      key: str = "ecg_id") -> pd.DataFrame:
    """Keep the first row of each ``key``; count the ignored repeats."""
    dup = df[key].duplicated(keep="first")
    report.note(group, f"repeated {key} in {source.name}: later row ignored", int(dup.sum()))
    return df.loc[~dup]


def parse_age(values: pd.Series, group: str, report: CohortReport) -> pd.Series:
    """Whole years: digits, optionally with a fraction or the export's "+" suffix
    ("89+" -> 89, "63.47" -> 63: the first run of digits, as the published x01 took).

    Anything else ("-5", "1e2", "6O", "45,5") and ages above :data:`MAX_AGE` become NaN;
    each kind is counted, naming the values.
    """
    text = values.astype("string").str.strip()
    parts = text.str.extract(rf"^{AGE_PATTERN}$")
    age = parts[0].astype(float)
    no_digits = ~text.str.contains(r"\d", regex=True).fillna(False).astype(bool)
    report.note(group, "age missing or without digits -> NaN", int(no_digits.sum()))
    report.note_values(group, "age not years (digits, optionally a fraction or '+') -> NaN",
                       text[~no_digits & age.isna()])
    report.note(group, "age with extra characters (e.g. '89+') -> its first digits",
                int((parts[2] == "+").sum()))
    fraction = parts[1].fillna("").str.strip(".0") != ""
    report.note(group, "age with a fraction (e.g. '63.47') -> whole years (its first digits)",
                int(fraction.sum()))
    too_old = age > MAX_AGE
    report.note_values(group, f"age above {MAX_AGE} -> NaN", text[too_old])
    return age.mask(too_old).astype(float)


def parse_female(values: pd.Series, group: str, report: CohortReport) -> pd.Series:
    """1.0 for "female", 0.0 for "male" (case and spaces ignored), else NaN (counted)."""
    text = values.astype("string").str.strip().str.lower()
    female = text.map({"female": 1.0, "male": 0.0}).astype(float)
    report.note(group, "sex not male/female -> female NaN", int(female.isna().sum()))
    return female


def parse_datetime(values: pd.Series, column: str, group: str,
                   report: CohortReport) -> pd.Series:
    """Parse "YYYY-MM-DD HH:MM:SS", "YYYY/MM/DD HH:MM", "YYYY-MM-DDTHH:MM:SS" and the like.

    Missing and unparsable values become NaT and are counted separately.
    """
    text = values.astype("string").str.strip()
    text = text.where(text != "")
    zoned = text.str.contains(TIMEZONE_SUFFIX, regex=True).fillna(False).astype(bool)
    report.note(group, f"{column} with a timezone: offset dropped, clock time kept",
                int(zoned.sum()))
    normalised = (text.str.replace(TIMEZONE_SUFFIX, "", regex=True)
                  .str.replace("/", "-", regex=False).str.replace("T", " ", regex=False))
    # pandas reads "2016" as 1 January and "2016-03" as the 1st: a day that was never written
    no_day = normalised.str.contains(PARTIAL_DATE, regex=True).fillna(False)
    report.note_values(group, f"{column} without a day (only a year or month) -> NaT",
                       text[no_day.astype(bool)])
    kept = normalised.where(~no_day.astype(bool))
    try:
        parsed = pd.to_datetime(kept, format="ISO8601", errors="coerce")
    except (ValueError, TypeError):  # what pandas cannot even coerce: one value at a time
        parsed = pd.to_datetime(pd.Series(
            [pd.to_datetime(v, format="ISO8601", errors="coerce") if isinstance(v, str)
             else pd.NaT for v in kept], index=kept.index, dtype=object))
    years = parsed.dt.year
    odd_year = parsed.notna() & ((years < DATETIME_YEARS[0]) | (years > DATETIME_YEARS[1]))
    report.note_values(group, f"{column} outside the years {DATETIME_YEARS[0]}-"
                       f"{DATETIME_YEARS[1]} -> NaT", text[odd_year.astype(bool)])
    parsed = parsed.mask(odd_year)
    report.note(group, f"{column} missing -> NaT", int(text.isna().sum()))
    report.note(group, f"{column} unparsable -> NaT",
                int((text.notna() & ~no_day & ~odd_year & parsed.isna()).sum()))
    return parsed


def floor_days(start: pd.Series, end: pd.Series) -> pd.Series:
    """Whole days from ``start`` to ``end``, rounded down (NaN when either is missing)."""
    return np.floor((end - start).dt.total_seconds() / 86400.0)


#: The largest per-lead bit code read as one (larger values are no code: counted, no flag).
MAX_CODE = 2 ** 31 - 1


def parse_number(values: pd.Series, column: str, group: str, report: CohortReport,
                 non_negative: bool = False) -> pd.Series:
    """Floats; text that is not a number, an infinite value and (``non_negative``) a value
    below 0 become NaN, each counted by kind (empty cells are just missing)."""
    number = pd.to_numeric(values, errors="coerce").astype(float)
    report.note(group, f"{column} not a number -> NaN", int((values.notna() & number.isna()).sum()))
    infinite = np.isinf(number)
    report.note(group, f"{column} infinite -> NaN", int(infinite.sum()))
    negative = (number < 0) & ~infinite if non_negative else pd.Series(False, index=number.index)
    report.note_values(group, f"{column} below 0 (a duration, rate or code) -> NaN",
                       values[negative])
    return number.mask(infinite | negative)


def parse_code(values: pd.Series, column: str, group: str, report: CohortReport) -> pd.Series:
    """Integer bit codes; missing -> 0 (no flag); non-numeric, infinite, negative,
    fractional or above :data:`MAX_CODE` -> 0 (counted, the value named)."""
    number = parse_number(values, column, group, report, non_negative=True)
    odd = number.notna() & ((number != np.floor(number)) | (number > MAX_CODE))
    report.note_values(group, f"{column} not a whole-number code -> no flag", values[odd])
    return number.mask(odd).fillna(0).astype(np.int64)


# --------------------------------------------------------------------------------------
# Per-group tables
# --------------------------------------------------------------------------------------
def read_ecg_index(group: GroupSource, columns: Sequence[str],
                   report: CohortReport) -> pd.DataFrame:
    """The group's waveform index, one row per ``ecg_id`` (rows without an id ignored)."""
    df = read_table(group.index_csv, columns)
    report.rows_in[group.name] += len(df)
    no_id = df["ecg_id"].isna()
    report.note(group.name, f"row without ecg_id in {group.index_csv.name}: ignored",
                int(no_id.sum()))
    df = first_row_per_ecg(df.loc[~no_id], group.index_csv, group.name, report)
    unsafe = df["ecg_id"].map(unsafe_name_reason)
    for reason, ids in df.loc[unsafe.notna(), "ecg_id"].groupby(unsafe.dropna()):
        report.exclude(group.name, ids, f"ecg_id not usable as a file name: {reason}")
    return df.loc[unsafe.isna()]


def with_valid_npy_index(df: pd.DataFrame, group: GroupSource,
                         report: CohortReport) -> pd.DataFrame:
    """Rows whose ``npy_index`` addresses a row of the stacked array no other ECG of the
    group addresses; others excluded and counted.

    Adds ``file_path`` (the array's path as given under the data root) and ``group``.
    """
    n_rows = waveform_shape(group.array)[0]
    index = pd.to_numeric(df["npy_index"], errors="coerce")
    whole = index.notna() & (index == np.floor(index))
    in_range = whole & (index >= 0) & (index < n_rows)
    report.exclude(group.name, df.loc[~whole, "ecg_id"], "npy_index missing or not an integer")
    report.exclude(group.name, df.loc[whole & ~in_range, "ecg_id"],
                   f"npy_index outside the waveform array (rows 0..{n_rows - 1})" if n_rows
                   else "npy_index outside the waveform array (it holds no rows)")
    shared = in_range & index.where(in_range).duplicated(keep=False)
    report.exclude(group.name, df.loc[shared, "ecg_id"],
                   "npy_index shared with another ecg_id (one waveform for two ECGs)")
    in_range &= ~shared
    df = df.loc[in_range].copy()
    df["npy_index"] = index[in_range].astype(np.int64)
    df["file_path"] = group.array.as_posix()
    df["group"] = group.name
    return df


def metadata(group: GroupSource, report: CohortReport,
             flag_match: str = FLAG_MATCH) -> pd.DataFrame:
    """ECG measurements and flags from the group's four metadata tables, one row per ECG."""
    folder = group.folder
    per_lead = read_table(folder / PER_LEAD, METADATA_COLUMNS[PER_LEAD])
    flags = pd.DataFrame({"ecg_id": per_lead["ecg_id"]})
    for name, bit in FLAG_BITS.items():
        code = parse_code(per_lead[name], name, group.name, report)
        flags[name] = (code == bit) if flag_match == "equal" else (code & bit) > 0
    flags = flags.groupby("ecg_id", sort=True).any()  # any lead flagged -> ECG flagged

    global_ = first_row_per_ecg(read_table(folder / GLOBAL, METADATA_COLUMNS[GLOBAL]),
                                folder / GLOBAL, group.name, report).set_index("ecg_id")
    resting = first_row_per_ecg(read_table(folder / RESTING, METADATA_COLUMNS[RESTING]),
                                folder / RESTING, group.name, report).set_index("ecg_id")
    numeric = pd.concat([global_, resting], axis=1)
    for column in numeric.columns:
        numeric[column] = parse_number(numeric[column], column, group.name, report,
                                       non_negative=True)   # durations and rates
    numeric["qtc500"] = numeric["qtc"] > QTC_LONG_MS

    diagnosis = read_table(folder / DIAGNOSIS, METADATA_COLUMNS[DIAGNOSIS])
    text = diagnosis["stmt_text"].astype("string").str.lower().fillna("")
    statements = pd.DataFrame({"ecg_id": diagnosis["ecg_id"],
                               "lbbb": text.str.contains(LBBB_PHRASE, regex=False),
                               "paced": text.str.contains(PACED_PHRASE, regex=False)})
    statements = statements.groupby("ecg_id", sort=True).any()
    return pd.concat([flags, numeric, statements], axis=1)


def unmatched_reason(ids: pd.Series, table: pd.DataFrame, name: str) -> pd.Series:
    """Per id absent from ``table``: "no matching row in <name>", noting ids that differ only
    in leading zeros (``118`` vs ``0000118``); "" where the id is listed."""
    listed = ids.isin(table["ecg_id"])
    reason = pd.Series("", index=ids.index, dtype=object)
    reason[~listed] = f"no matching row in {name}"
    stripped = set(table["ecg_id"].dropna().astype(str).str.lstrip("0"))
    near = ~listed & ids.astype(str).str.lstrip("0").isin(stripped)
    reason[near] = f"no matching row in {name} (an ecg_id there differs only in leading zeros)"
    return reason


def study_group(data_root: Path, report: CohortReport,
                categories: Categories = Categories()) -> pd.DataFrame:
    """Pre-arrest ECGs of the study group; ``days_to_event`` counts to ROSC."""
    group = group_sources(data_root, [])[0]
    df = read_ecg_index(group, STUDY_COLUMNS[WAVEFORM_INDEX], report)
    is_pre = (df["ecg_timetag"].astype("string").str.strip().str.lower()
              == STUDY_TIMETAG.lower()).fillna(False)
    report.note(group.name, f"ecg_timetag not {STUDY_TIMETAG!r}: row not used",
                int((~is_pre).sum()))
    df = with_valid_npy_index(df.loc[is_pre.astype(bool)].drop(columns="ecg_timetag"),
                              group, report)
    unmatched = {}
    for name in (STUDY_ECGS, STUDY_COHORT, ROSC_OUTCOMES):
        path = group.folder / name
        table = first_row_per_ecg(read_table(path, STUDY_COLUMNS[name]), path, group.name, report)
        unmatched[name] = unmatched_reason(df["ecg_id"], table, name).to_numpy()
        df = df.merge(table, on="ecg_id", how="left", validate="one_to_one")
    no_outcome = unmatched[ROSC_OUTCOMES] != ""
    report.note(group.name, f"no matching row in {ROSC_OUTCOMES}: cause and rhythm missing",
                int(no_outcome.sum()))

    acquired = parse_datetime(df["acquisition_datetime_offset"], "acquisition datetime",
                              group.name, report)
    rosc = parse_datetime(df["rosc_datetime_offset"], "ROSC datetime", group.name, report)
    hospital = parse_datetime(df["hospitalization_datetime_offset"], "hospitalisation datetime",
                              group.name, report)
    df["days_to_event"] = floor_days(acquired, rosc)
    df["days_to_event_og"] = floor_days(acquired, hospital)
    df["exclude_reason"] = np.select(
        [unmatched[STUDY_ECGS] != "", df["patient_ngsci_id"].isna(), acquired.isna(),
         unmatched[STUDY_COHORT] != "", rosc.isna()],
        [unmatched[STUDY_ECGS], f"no patient_ngsci_id (empty in {STUDY_ECGS})",
         "no days_to_event: acquisition datetime missing or unparsable",
         unmatched[STUDY_COHORT],
         "no days_to_event: ROSC datetime missing or unparsable"], default="")
    df["acquisition_datetime"] = acquired
    df["age"] = parse_age(df["age"], group.name, report)
    df["female"] = parse_female(df["sex"], group.name, report)
    rhythm = df["initial_rhythm"].astype("string").str.strip()
    rhythm = rhythm.where(rhythm != "")
    df["VTVF"] = in_category(rhythm, categories.shockable_rhythms).astype(float).where(
        rhythm.notna())
    known = in_category(rhythm, categories.shockable_rhythms + categories.other_rhythms)
    report.note_values(group.name, "initial_rhythm not in --shockable-rhythms or "
                       "--other-rhythms (read as not shockable)", rhythm[rhythm.notna() & ~known])
    cause = df["cause_of_cardiac_arrest"].astype("string").str.strip()
    df["cause_of_cardiac_arrest"] = cause
    cause = cause.where(cause != "")
    known = in_category(cause, categories.cardiac_causes + categories.noncardiac_causes)
    report.note_values(group.name, "cause_of_cardiac_arrest not in --cardiac-causes or "
                       "--noncardiac-causes (read as non-cardiac)", cause[cause.notna() & ~known])
    report.note(group.name, "cause_of_cardiac_arrest missing (read as non-cardiac)",
                int((cause.isna() & ~no_outcome).sum()))
    return df


def control_dates(data_root: Path, report: CohortReport) -> tuple[pd.DataFrame, pd.Series]:
    """The control cohort table (one row per ECG) and each patient's control-ECG datetime."""
    path = Path(data_root) / CONTROL_COHORT
    table = first_row_per_ecg(read_table(path, CONTROL_COHORT_COLUMNS), path, "control", report)
    table = table.assign(acquisition_datetime=parse_datetime(
        table["acquisition_datetime_offset"], "acquisition datetime (ecg-cohort.csv)",
        "control", report))
    tag = table["ecg_timetag"].astype("string").str.strip().str.lower()
    report.note_values("control", f"ecg_timetag in {CONTROL_COHORT} neither {CONTROL_PRE!r} nor "
                       f"{CONTROL_CONTROL!r} (not a control ECG)",
                       tag[~tag.isin([CONTROL_PRE, CONTROL_CONTROL]).fillna(False).astype(bool)])
    controls = table.loc[tag == CONTROL_CONTROL]
    n_per_patient = controls.groupby("patient_ngsci_id")["ecg_id"].size()
    report.note("control", "patient with several control ECGs: earliest used",
                int((n_per_patient > 1).sum()))
    control_at = controls.groupby("patient_ngsci_id")["acquisition_datetime"].min()
    return table.drop(columns=["acquisition_datetime_offset"]), control_at


def control_group(data_root: Path, year: int, cohort_table: pd.DataFrame,
                  control_at: pd.Series, report: CohortReport) -> pd.DataFrame:
    """One control year's "pre" ECGs; ``days_to_event`` counts to the patient's control ECG."""
    group = group_sources(data_root, [year])[1]
    df = with_valid_npy_index(read_ecg_index(group, CONTROL_INDEX_COLUMNS, report), group, report)
    df = df.merge(cohort_table, on="ecg_id", how="left", validate="one_to_one")
    listed = df["ecg_id"].isin(cohort_table["ecg_id"])
    tag = df["ecg_timetag"].astype("string").str.strip().str.lower()
    not_pre = (tag != CONTROL_PRE).fillna(True).to_numpy(bool)   # "control" or no tag
    # reindex, not map: mapping through an empty datetime Series fails in pandas
    control = pd.Series(control_at.reindex(df["patient_ngsci_id"]).to_numpy(), index=df.index)
    days = floor_days(df["acquisition_datetime"], control)
    df["days_to_event"] = days
    df["days_to_event_og"] = days
    df["exclude_reason"] = np.select(
        [~listed, not_pre, df["patient_ngsci_id"].isna(), df["acquisition_datetime"].isna(),
         ~df["patient_ngsci_id"].isin(control_at.index), days.isna()],
        [f"not listed in {CONTROL_COHORT}",
         f"not tagged {CONTROL_PRE!r} in {CONTROL_COHORT} (a control ECG)",
         "no patient_ngsci_id",
         "no days_to_event: acquisition datetime missing or unparsable",
         "no days_to_event: patient has no control ECG",
         "no days_to_event: control-ECG datetime missing or unparsable"], default="")
    df["age"] = parse_age(df["age"], group.name, report)
    df["female"] = parse_female(df["sex"], group.name, report)
    df["VTVF"] = np.nan
    df["cause_of_cardiac_arrest"] = pd.Series(pd.NA, index=df.index, dtype="string")
    return df


def with_metadata(df: pd.DataFrame, group: GroupSource, report: CohortReport,
                  flag_match: str = FLAG_MATCH) -> pd.DataFrame:
    measured = metadata(group, report, flag_match)
    report.note(group.name, "ECG in none of the metadata tables: flags False, measurements "
                "missing", int((~df["ecg_id"].isin(measured.index)).sum()))
    df = df.join(measured, on="ecg_id")
    for name in (*FALSE_IF_MISSING, "paced"):
        df[name] = df[name].astype("boolean").fillna(False).astype(bool)
    return df


# --------------------------------------------------------------------------------------
# Cohort-level steps
# --------------------------------------------------------------------------------------
def one_ecg_per_patient(df: pd.DataFrame) -> pd.DataFrame:
    """Per patient: a study-group ECG when the patient has one (a patient who arrested is a
    case, whatever control-year ECGs they also have); among those, the smallest
    ``days_to_event`` >= 2, else the smallest overall.

    Ties go to the smallest ``ecg_id`` so the choice does not depend on row order.
    """
    eligible = df["days_to_event"] >= MIN_DAYS_TO_EVENT
    order = df.assign(_ineligible=~eligible, _control=df["group"] != STUDY_GROUP).sort_values(
        ["patient_ngsci_id", "_control", "_ineligible", "days_to_event", "ecg_id"],
        kind="mergesort")
    return (order.drop_duplicates("patient_ngsci_id", keep="first")
            .drop(columns=["_ineligible", "_control"]))


def patients_in_both_groups(df: pd.DataFrame) -> pd.Series:
    """The patient ids with ECGs in the study group and in a control year."""
    in_study = df["group"] == STUDY_GROUP
    both = set(df.loc[in_study, "patient_ngsci_id"]) & set(df.loc[~in_study, "patient_ngsci_id"])
    return pd.Series(sorted(both), dtype="string")


def add_labels(df: pd.DataFrame, cardiac_causes: Sequence[str] = CARDIAC_CAUSES) -> pd.DataFrame:
    """SCD and arrest labels as float 0/1; only the study group can be positive.

    An arrest is cardiac when its cause is one of ``cardiac_causes`` (case and whitespace
    ignored); any other or a missing cause reads as non-cardiac, as published.
    """
    days = df["days_to_event"]
    study = (df["group"] == STUDY_GROUP) & (days >= MIN_DAYS_TO_EVENT)
    cardiac = in_category(df["cause_of_cardiac_arrest"], cardiac_causes)
    labels = {name: study & cardiac & (days <= limit) for name, limit in SCD_HORIZON_DAYS.items()}
    labels["scd"] = study & cardiac
    labels["arrest_noncardiac"] = study & ~cardiac
    labels["arrest_noncardiac1"] = study & ~cardiac & (days <= SCD_HORIZON_DAYS["scd1"])
    labels["arrest_noncardiac2"] = study & ~cardiac & (days <= SCD_HORIZON_DAYS["scd2"])
    labels["any_arrest"] = labels["scd"] | labels["arrest_noncardiac"]
    labels["any_arrest1"] = labels["scd1"] | labels["arrest_noncardiac1"]
    out = df.copy()
    for name in LABELS:
        out[name] = labels[name].astype(float)
    return out


SHARED_ID_REASON = ("ecg_id shared with another ECG (in another group, or equal up to letter "
                    "case or Unicode form: one file name on macOS and Windows)")


def write_cohort(cohort: pd.DataFrame, report: CohortReport, output: Path | str,
                 exclusions: Path | str) -> None:
    """x01's outputs: the exclusions list, then the cohort table; a cohort without any ECG
    is refused (after the exclusions are written, which say why) and the earlier table is
    left as it was."""
    write_csv(report.exclusion_frame(), exclusions)
    if cohort.empty:
        raise PipelineError(f"no ECG left in the cohort ({sum(report.rows_in.values())} rows "
                            f"read, {len(report.excluded)} excluded: reasons in {exclusions}); "
                            f"{output} not written")
    write_feather(cohort, output)


def build_cohort(data_root: Path | str, control_years: Sequence[int],
                 categories: Categories = Categories(),
                 flag_match: str = FLAG_MATCH) -> tuple[pd.DataFrame, CohortReport]:
    """The x01 cohort table (one ECG per patient) and the report of what was set aside.

    ``flag_match`` "equal" sets the per-lead ST/delta-wave flags as published (code == bit)."""
    if flag_match not in FLAG_MATCHES:
        raise PipelineError(f"flag match {flag_match!r}: expected one of {', '.join(FLAG_MATCHES)}")
    data_root = Path(data_root)
    repeated = sorted({y for y in control_years if list(control_years).count(y) > 1})
    if repeated:
        raise PipelineError(f"--control-years {repeated[0]} given more than once (its ECGs "
                            "would be read twice)")
    check_inputs(data_root, control_years)
    report = CohortReport()
    unread = sorted(d.name for d in (data_root / CONTROL_DIR).glob("*")
                    if d.is_dir() and d.name.isdigit() and int(d.name) not in control_years)
    report.note_values("control", "control-year folder present but not read (not in "
                       "--control-years)", pd.Series(unread, dtype="string"))
    study, *controls = group_sources(data_root, control_years)
    frames = [with_metadata(study_group(data_root, report, categories), study, report, flag_match)]
    if controls:
        cohort_table, control_at = control_dates(data_root, report)
        for year, group in zip(control_years, controls):
            df = control_group(data_root, year, cohort_table, control_at, report)
            frames.append(with_metadata(df, group, report, flag_match))
    df = pd.concat(frames, ignore_index=True)
    # one id in two groups, or ids equal up to case or Unicode form (one file on macOS and
    # Windows): x03 would write both ECGs to one file, so neither is used
    key = df["ecg_id"].map(file_name_key).where(df["exclude_reason"] == "")
    shared = key.notna() & key.duplicated(keep=False)
    df.loc[shared, "exclude_reason"] = SHARED_ID_REASON

    excluded = df["exclude_reason"] != ""
    for (group_name, reason), rows in df.loc[excluded].groupby(["group", "exclude_reason"]):
        report.exclude(group_name, rows["ecg_id"], reason)
    df = df.loc[~excluded, list(COHORT_COLUMNS)]

    report.note_values(STUDY_GROUP, "patient with ECGs in the study group and a control year: "
                       "a study ECG kept (the patient is a case)", patients_in_both_groups(df))
    kept = one_ecg_per_patient(df)
    dropped = df.loc[~df.index.isin(kept.index)]
    for group_name, n in dropped["group"].value_counts(sort=False).items():
        report.note(group_name, "ECG not chosen (another ECG of the patient kept)", n)

    group_rank = kept["group"].map({g.name: i for i, g in enumerate([study, *controls])})
    kept = kept.assign(_rank=group_rank).sort_values(["_rank", "ecg_id"], kind="mergesort")
    labelled = add_labels(kept.drop(columns="_rank"), categories.cardiac_causes)
    return labelled.reset_index(drop=True), report


# --------------------------------------------------------------------------------------
# x02: pipeline columns
# --------------------------------------------------------------------------------------
RENAMES = {"ecg_id": "studyId", "patient_ngsci_id": "ptId", "qtc_frederica": "qtcf",
           "qtc": "qtcb", "qrs_duration": "qrsDuration", "avg_rr": "rrInterval",
           "stelev": "ST_elevation", "stdown": "ST_depression", "atrial_rate": "atrialrate",
           "qt_interval": "qtInterval"}
#: Placeholder death labels: probability of a synthetic death, and the SCD label it includes.
DEATH_PLACEHOLDERS = {"dead3mo": (0.02, "scd3mo"), "dead6mo": (0.03, "scd6mo"),
                      "dead1": (0.04, "scd1"), "dead2": (0.05, "scd2")}
#: Training flags NTUH does not have: all False.
ABSENT_FLAGS = ("low_ef", "ICD_VT1", "ICD_VF1", "Phi_VT1", "TROPT1", "Acute_MI1", "ICD_VT",
                "ICD_VF", "Phi_VT", "LBBB", "antiarr", "deltawave", "CHF_Cardiomyopathy",
                "Hypertension", "CAD", "Diabetes", "Hyperlipidemia", "TROPT40", "Acute_MI",
                "Old_MI")
INTERVAL_LABELS = {"scd3mo_6mo": ("scd6mo", "scd3mo"), "scd6mo_1": ("scd1", "scd6mo"),
                   "scd1_2": ("scd2", "scd1")}
EF_TRIANGLE = (20.0, 55.0, 70.0)
P_DURATION_BINS = ((0.0, 20.0), (20.0, 120.0), (120.0, 160.0))
P_DURATION_PROBS = (0.025, 0.95, 0.025)
AXIS_RANGE = (-90.0, 90.0)
MAX_MODELLING_AGE = 80
X01_COLUMNS = ("ecg_id", "patient_ngsci_id", "group", "file_path", "npy_index",
               "days_to_event", "age", "female", "VTVF", *LABELS, *FALSE_IF_MISSING,
               "qtc", "avg_rr", "ventricular_rate", "atrial_rate", "qrs_duration",
               "qt_interval", "qtc_frederica")


def is_processed(df: pd.DataFrame) -> bool:
    """True when ``df`` already carries the x02 columns (x02 renames ``ecg_id``)."""
    return "studyId" in df.columns and "ecg_id" not in df.columns


def patient_order(ids: pd.Series) -> np.ndarray:
    """Row positions sorted by patient id, as the published per-patient groupby left them:
    numerically when every id is a whole number (as pandas would have read them), else as
    text; equal ids keep their row order."""
    text = ids.astype(str).to_numpy()
    if len(text) and all(t.isdigit() for t in text):
        stripped = np.array([t.lstrip("0") for t in text], dtype=object)
        lengths = np.array([len(t) for t in stripped])
        return np.lexsort((np.arange(len(text)), text, stripped, lengths))
    return np.lexsort((np.arange(len(text)), text))


def add_pipeline_columns(df: pd.DataFrame, seed: int = 42) -> pd.DataFrame:
    """The x02 table: renames, model-selection columns and seeded placeholder covariates.

    Random draws come from one ``np.random.RandomState(seed)`` (the legacy generator the
    published code seeded globally), in this order: the four death placeholders,
    ``most_recent_ef``, ``pDuration`` (bin, then position), ``qrsFrontAxis``, ``qrsHorizAxis``.
    Each draw of ``n`` values goes to the rows in patient-id order (:func:`patient_order`),
    the order the published table had; the table keeps its own row order.
    """
    missing = [c for c in X01_COLUMNS if c not in df.columns]
    if missing:
        raise PipelineError(f"cohort table: missing column(s) {', '.join(missing)} (run x01)")
    out = df.rename(columns=RENAMES)
    out["scaling_factor"] = SCALING_FACTOR
    out["include_modelling"] = (out["age"].notna() & out["female"].notna()
                                & (out["age"] < MAX_MODELLING_AGE)
                                & (out["days_to_event"] >= MIN_DAYS_TO_EVENT))
    for name, (longer, shorter) in INTERVAL_LABELS.items():
        out[name] = ((out[longer] == 1) & (out[shorter] != 1)).astype(float)
    out["VTVF"] = (out["VTVF"] == 1).astype(bool)  # missing -> False
    out["VFVT"] = out["VTVF"]

    rng = np.random.RandomState(seed)
    n = len(out)
    order = patient_order(out["ptId"])

    def by_patient(values: np.ndarray) -> np.ndarray:   # the i-th draw -> the i-th patient
        placed = np.empty_like(values)
        placed[order] = values
        return placed

    for name, (prob, label) in DEATH_PLACEHOLDERS.items():
        out[name] = ((by_patient(rng.uniform(size=n)) < prob) | (out[label] == 1)).astype(float)
    for name in ABSENT_FLAGS:
        out[name] = False
    out["heartRate"] = out["ventricular_rate"]
    out["meanqtc"] = out["qtcb"]
    out["most_recent_ef"] = by_patient(rng.triangular(*EF_TRIANGLE, size=n))
    bins = rng.choice(len(P_DURATION_BINS), size=n, p=P_DURATION_PROBS)
    low, high = np.asarray(P_DURATION_BINS).T
    out["pDuration"] = by_patient(rng.uniform(low[bins], high[bins]))
    out["qrsFrontAxis"] = by_patient(rng.uniform(*AXIS_RANGE, size=n))
    out["qrsHorizAxis"] = by_patient(rng.uniform(*AXIS_RANGE, size=n))
    return out


def describe_pipeline_columns(df: pd.DataFrame) -> str:
    """One short summary of the x02 table."""
    counts = ", ".join(f"{name} {int(df[name].sum())}"
                       for name in (*DEATH_PLACEHOLDERS, *INTERVAL_LABELS, "VTVF"))
    return (f"[x02] {len(df)} ECGs, {int(df['include_modelling'].sum())} eligible for modelling "
            f"(age and sex known, age < {MAX_MODELLING_AGE}, days_to_event >= "
            f"{MIN_DAYS_TO_EVENT}); positives: {counts}")
