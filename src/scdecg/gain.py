"""NTUH limb-lead gain: estimate it from the Einthoven/Goldberger identities and correct it.

With correct gains the derived limb leads follow from leads I and II sample by sample::

    III = II - I      aVR = -(I + II)/2      aVL = I - II/2      aVF = II - I/2

The NTUH export stores the four derived leads inflated by a constant (reportedly 4.88, the
MUSE µV/LSB). For each derived lead the least-squares gain of the stored lead on the
identity-implied lead, ``g = <stored, implied> / <implied, implied>``, measures that factor.
Per ECG the decision is:

* every gain within ``tolerance`` (relative) of the fault 4.88 -> correct (divide the four
  derived leads by 4.88, or by each lead's own estimate with ``divisor="estimated"``);
* every gain within ``tolerance`` of 1 -> already correct, leave as stored;
* anything else -> ``unresolved``: written as stored and flagged.

Residuals are ``sqrt(sum (derived - implied)^2 / sum implied^2)`` over the four derived leads,
before and after the decision; a residual after above ``max_residual`` is flagged too.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .constants import DERIVED_LIMB_LEADS, LEAD_INDEX, N_LEADS, N_SAMPLES, NTUH_GAIN_FAULT

#: Coefficients of (I, II) giving each derived lead.
IDENTITIES: dict[str, tuple[float, float]] = {
    "III": (-1.0, 1.0), "aVR": (-0.5, -0.5), "aVL": (1.0, -0.5), "aVF": (-0.5, 1.0),
}
DERIVED_INDEX = np.array([LEAD_INDEX[name] for name in DERIVED_LIMB_LEADS])
GAIN_TOLERANCE = 0.05  # relative distance from 4.88 (or 1) that still counts as a match
MAX_RESIDUAL = 0.05    # residual after correction above this is flagged
DIVISORS = ("fixed", "estimated")
#: Largest plausible |sample| of a stored record in µV (100 mV; int16 saturates near 33 mV).
MAX_ABS_UV = 100_000.0
#: Smallest plausible largest |sample| of a record in µV: a QRS spans hundreds of µV, so a
#: record peaking below this was almost surely stored in millivolts.
MIN_PEAK_UV = 5.0
#: x03's per-ECG report, and the statuses that later steps must not measure as if fine.
UNUSABLE_STATUSES = ("failed", "unresolved")

REPORT_COLUMNS = ("studyId", *(f"gain_{name}" for name in DERIVED_LIMB_LEADS),
                  "residual_before", "residual_after", "corrected", "status", "flagged", "reason")


@dataclass(frozen=True)
class GainPolicy:
    fault: float = NTUH_GAIN_FAULT
    tolerance: float = GAIN_TOLERANCE
    max_residual: float = MAX_RESIDUAL
    divisor: str = "fixed"  # "fixed": divide by ``fault``; "estimated": by each lead's estimate


def implied_leads(ecg: np.ndarray) -> np.ndarray:
    """The derived limb leads (III, aVR, aVL, aVF) computed from leads I and II."""
    lead1 = np.asarray(ecg[LEAD_INDEX["I"]], dtype=np.float64)
    lead2 = np.asarray(ecg[LEAD_INDEX["II"]], dtype=np.float64)
    return np.stack([a * lead1 + b * lead2 for a, b in (IDENTITIES[n] for n in DERIVED_LIMB_LEADS)])


def estimate_gains(ecg: np.ndarray) -> np.ndarray:
    """Least-squares gain of each stored derived lead on its identity-implied lead (NaN if 0)."""
    implied = implied_leads(ecg)
    stored = np.asarray(ecg[DERIVED_INDEX], dtype=np.float64)
    power = (implied * implied).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(power > 0, (stored * implied).sum(axis=1) / power, np.nan)


def relative_residual(ecg: np.ndarray) -> float:
    """RMS of (derived - implied) relative to the RMS of the implied leads, pooled."""
    implied = implied_leads(ecg)
    error = np.asarray(ecg[DERIVED_INDEX], dtype=np.float64) - implied
    power = float((implied * implied).sum())
    return float(np.sqrt((error * error).sum() / power)) if power > 0 else float("nan")


def _near(gains: np.ndarray, target: float, tolerance: float) -> bool:
    return bool(np.all(np.abs(gains / target - 1.0) <= tolerance))


def correct_gain(ecg_uv: np.ndarray, policy: GainPolicy = GainPolicy()) -> tuple[np.ndarray, dict]:
    """Return the float32 ECG after the gain decision and its report fields (no studyId)."""
    ecg = np.asarray(ecg_uv, dtype=np.float32).copy()
    gains = estimate_gains(ecg)
    before = relative_residual(ecg)
    corrected, reason = False, ""
    if np.isfinite(gains).all() and _near(gains, policy.fault, policy.tolerance):
        divisor = gains if policy.divisor == "estimated" else np.full(len(gains), policy.fault)
        ecg[DERIVED_INDEX] = (ecg[DERIVED_INDEX] / divisor[:, None]).astype(np.float32)
        status, corrected = "corrected", True
    elif np.isfinite(gains).all() and _near(gains, 1.0, policy.tolerance):
        status = "unity"
    else:
        status = "unresolved"
        reason = ("unresolved gain: " + ", ".join(f"{n}={g:.3g}" for n, g in zip(DERIVED_LIMB_LEADS, gains))
                  + f" match neither {policy.fault} nor 1; stored values kept")
    after = relative_residual(ecg)
    flagged = status == "unresolved"
    if not flagged and not after <= policy.max_residual:
        flagged = True
        reason = f"high residual after correction: {after:.3g} > {policy.max_residual}"
    row = {**{f"gain_{n}": float(g) for n, g in zip(DERIVED_LIMB_LEADS, gains)},
           "residual_before": before, "residual_after": after, "corrected": corrected,
           "status": status, "flagged": flagged, "reason": reason}
    return ecg, row


def check_record(ecg: np.ndarray, max_abs_uv: float = MAX_ABS_UV) -> str | None:
    """Why a stored record cannot be used (``"<category>: <details>"``), or ``None``."""
    if ecg.shape != (N_LEADS, N_SAMPLES):
        return f"wrong shape: {tuple(ecg.shape)}, expected {(N_LEADS, N_SAMPLES)}"
    problem = check_dtype(ecg.dtype)
    if problem:
        return problem
    if np.issubdtype(ecg.dtype, np.floating) and not np.isfinite(ecg).all():
        return "contains NaN: non-finite samples (NaN or inf) in the record"
    if not ecg.any():
        return "all zeros: the record holds no signal"
    peak = float(np.abs(ecg.astype(np.float64)).max())
    if peak > max_abs_uv:
        return (f"implausible amplitude: |sample| up to {peak:.3g} µV > {max_abs_uv:g} µV "
                "(not microvolts?)")
    if peak < MIN_PEAK_UV:
        return (f"implausible amplitude: |sample| at most {peak:.3g} µV < {MIN_PEAK_UV:g} µV "
                "in every lead (millivolts, not microvolts?)")
    return None


def check_dtype(dtype: np.dtype) -> str | None:
    """Why values of ``dtype`` cannot be µV samples (unsigned types wrap negative voltages)."""
    from .io import sample_dtype_problem

    problem = sample_dtype_problem(dtype)
    return None if problem is None else f"{problem} (µV)"


def unusable_ecgs(report_path: str | Path) -> dict[str, str] | None:
    """``studyId -> reason`` for ECGs x03 could not resolve (status failed or unresolved);
    ``None`` when there is no report at ``report_path`` (an empty path: flags not used)."""
    import pandas as pd

    from .errors import PipelineError

    if not report_path or not Path(report_path).is_file():
        return None
    try:
        report = pd.read_csv(report_path, dtype={"studyId": str}, keep_default_na=False,
                             usecols=["studyId", "status", "reason"])
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{report_path}: not a readable x03 gain report ({exc})") from exc
    bad = report[report["status"].isin(UNUSABLE_STATUSES)]
    return {sid: f"x03 {status}: {reason}" for sid, status, reason
            in zip(bad["studyId"], bad["status"], bad["reason"])}


def failed_row(study_id: str, reason: str) -> dict:
    return {"studyId": study_id, **{f"gain_{n}": np.nan for n in DERIVED_LIMB_LEADS},
            "residual_before": np.nan, "residual_after": np.nan, "corrected": False,
            "status": "failed", "flagged": True, "reason": reason}


def extract_from_stack(stack_path: str, rows: list[tuple[str, int]], out_dir: str,
                       policy: GainPolicy = GainPolicy(),
                       max_abs_uv: float = MAX_ABS_UV) -> list[dict]:
    """Gain-correct ``rows`` (studyId, npy_index) of one stacked file into ``out_dir``.

    The stacked file is opened once (memory-mapped). A record that cannot be read gets a
    ``failed`` report row; its output file from an earlier run is left for
    :func:`finish_outputs` (so a run where every ECG fails removes nothing).
    """
    from .io import UnreadableArray, load_npy, record_path, save_npy

    out = Path(out_dir)
    try:
        stack = load_npy(stack_path, mmap=True)
    except FileNotFoundError:
        stack, problem = None, f"missing file: {stack_path}"
    except UnreadableArray as exc:
        stack, problem = None, f"unreadable file: {stack_path} ({exc.detail})"
    except OSError as exc:
        stack, problem = None, f"unreadable file: {stack_path} ({exc})"
    else:
        problem = None if stack.ndim == 3 else (
            f"wrong shape: {stack_path} holds shape {stack.shape}, expected (n, 12, 5000)")
        problem = problem or check_dtype(stack.dtype)
    report = []
    for study_id, index in rows:
        target = record_path(out, study_id)
        reason = problem
        if reason is None and not 0 <= index < stack.shape[0]:
            reason = f"npy_index out of range: {index} not in [0, {stack.shape[0]}) of {stack_path}"
        if reason is None:
            record = np.asarray(stack[index])
            reason = check_record(record, max_abs_uv)
        if reason is not None:
            report.append(failed_row(study_id, reason))
            continue
        ecg, row = correct_gain(record, policy)
        save_npy(ecg, target)
        report.append({"studyId": study_id, **row})
    return report


def imported_cohort_problem(file_paths) -> str | None:
    """Why a cohort whose ``file_path`` values are these is not x03's input, or None.

    x00_import_cohort.py records the source record (``.hea``, ``.csv`` or a 2-D ``.npy``) and
    has written ``10_sec_ecgs/`` itself; x03 would fail every ECG and empty that folder.
    """
    paths = sorted({str(p) for p in file_paths})
    other = [p for p in paths if Path(p).suffix.lower() != ".npy"]
    if other:
        return f"file_path {other[0]!r} is not a stacked .npy waveform file"
    from .io import npy_header

    shapes = []
    for path in paths:
        try:
            shapes.append(len(npy_header(path)[0]))
        except (OSError, ValueError):  # missing or unreadable: x03 reports it per ECG
            return None
    if paths and all(ndim == 2 for ndim in shapes):
        return f"file_path {paths[0]!r} holds one 2-D record, not a stack (n, 12, 5000)"
    return None


def extract_chunk(chunk: tuple[str, list[tuple[str, int]]], out_dir: str,
                  policy: GainPolicy = GainPolicy(), max_abs_uv: float = MAX_ABS_UV) -> list[dict]:
    """:func:`extract_from_stack` on one ``(stack_path, rows)`` chunk (for process pools)."""
    stack_path, rows = chunk
    return extract_from_stack(stack_path, rows, out_dir, policy, max_abs_uv)


def finish_outputs(report, out_dir: str | Path, report_path: str | Path) -> int:
    """After x03's extraction: remove the earlier outputs of the ECGs that failed now, and
    return how many. When every ECG failed, nothing is removed and the per-ECG report goes to
    :func:`scdecg.io.failed_run_path` (``report_path`` and ``out_dir`` keep the earlier good run): a
    :class:`PipelineError` names how many failed, the first reason and that file."""
    from .io import clear_failed_run, record_path, refuse_failed_run

    failed = report["status"] == "failed"
    if len(report) and failed.all():
        first = report.iloc[0]
        reason = " ".join(str(first["reason"]).split())
        refuse_failed_run(report, report_path,
                          f"all {len(report)} ECG{'s' * (len(report) > 1)} failed (first: "
                          f"{first['studyId']!r}: {reason}); {out_dir}/ and {report_path} left "
                          f"as they were")
    for study_id in report.loc[failed, "studyId"]:
        record_path(out_dir, study_id).unlink(missing_ok=True)
    clear_failed_run(report_path)
    return int(failed.sum())


# ------------------------------------------------------------------ x03 on a workspace
def stack_chunks(cohort, size: int) -> list[tuple[str, list[tuple[str, int]]]]:
    """``(file_path, [(studyId, npy_index), ...])`` tasks of at most ``size`` ECGs, rows
    sorted by index within a stack file."""
    tasks = []
    ordered = cohort.sort_values(["file_path", "npy_index"], kind="stable")
    for path, group in ordered.groupby("file_path", sort=False):
        rows = list(zip(group["studyId"], group["npy_index"]))
        tasks += [(str(path), rows[i:i + size]) for i in range(0, len(rows), size)]
    return tasks


def read_stack_cohort(path: str | Path):
    """studyId, file_path and npy_index of the cohort table (x02's), ids checked and
    ``npy_index`` whole numbers (int64), else one :class:`PipelineError` naming the ECG."""
    import pandas as pd

    from .errors import PipelineError
    from .io import check_ids, read_feather

    columns = ["studyId", "file_path", "npy_index"]
    cohort = read_feather(path, columns, step="x02")[columns]
    check_ids(cohort, path)
    bad = cohort["npy_index"].isna() | (pd.to_numeric(cohort["npy_index"], errors="coerce") % 1 != 0)
    if bad.any():
        row = cohort[bad].iloc[0]
        raise PipelineError(f"{path}: column npy_index is not a whole number for studyId "
                            f"{row['studyId']!r} (value {row['npy_index']!r})")
    cohort["npy_index"] = cohort["npy_index"].astype(np.int64)
    return cohort


def rerooted(file_paths, data_root: str | Path):
    """``file_paths`` (x01's, under the NTUH root it read) moved under ``data_root``: the
    part from ``study-group/`` or ``control-group/`` on is kept. A path without either is one
    :class:`PipelineError` naming it."""
    from .errors import PipelineError
    from .workspace import CONTROL_DIR, STUDY_DIR

    moved = []
    for text in file_paths:
        parts = Path(str(text)).parts
        anchor = next((i for i, part in enumerate(parts) if part in (STUDY_DIR, CONTROL_DIR)),
                      None)
        if anchor is None:
            raise PipelineError(f"--data-root {data_root}: file_path {str(text)!r} has no "
                                f"{STUDY_DIR}/ or {CONTROL_DIR}/ to re-root")
        moved.append(str(Path(data_root).joinpath(*parts[anchor:])))
    return moved


def extract_cohort(cohort_path: str | Path, out_dir: str | Path, report_path: str | Path,
                   policy: GainPolicy = GainPolicy(), max_abs_uv: float = MAX_ABS_UV,
                   chunk_size: int = 256, n_jobs: int = 0, data_root: str | Path = ""):
    """x03 on a workspace: write every cohort ECG to ``out_dir/<studyId>.npy`` with its limb
    leads' gain corrected, under a lock on ``out_dir``, and the per-ECG report to
    ``report_path`` (``data_root``: read the stacked files under it instead of where x01's
    ``file_path`` says, :func:`rerooted`); prints the summary and returns the report (cohort order). Until the
    report is written, ``out_dir`` carries the marker :func:`scdecg.io.unfinished_run`, so a
    killed or failed run is refused by the steps that read it. A cohort
    from x00_import_cohort.py is refused, and so is an ``out_dir`` that an import left
    unfinished (x03 writes only its cohort's files, so it cannot make that folder whole); when
    every ECG fails, ``out_dir`` and the report are left as they were (:func:`finish_outputs`)."""
    import functools

    import pandas as pd

    from .errors import PipelineError
    from .failures import FailureLog
    from .io import (check_finished, folder_lock, output_dir, remove_leftovers, unfinished_run,
                     write_csv)
    from .workspace import IMPORT_STEP
    from .parallel import imap

    if policy.divisor not in DIVISORS:
        raise PipelineError(f"--divisor {policy.divisor!r}: expected one of {DIVISORS}")
    if not (np.isfinite(policy.fault) and policy.fault > 0):
        raise PipelineError(f"--gain-fault {policy.fault!r}: must be a finite number above 0")
    for option, value in (("--tolerance", policy.tolerance), ("--max-abs-uv", max_abs_uv)):
        if not value > 0:   # infinity: match every gain (the published x03) / no amplitude check
            raise PipelineError(f"{option} {value!r}: must be above 0")
    # an import that died before its table was in place (its mark on out_dir): x03 writes only
    # the files of its own cohort, not the import's other ECGs, so it must not clear that mark;
    # refused first (the table left in place may be an earlier import's: not "run x04 next")
    check_finished(out_dir, steps=[IMPORT_STEP])
    cohort = read_stack_cohort(cohort_path)
    if str(data_root):
        cohort["file_path"] = rerooted(cohort["file_path"], data_root)
    problem = imported_cohort_problem(cohort["file_path"])
    if problem:
        raise PipelineError(f"{cohort_path}: {problem}: a cohort from x00_import_cohort.py, "
                            f"whose {out_dir}/ is already written; run x04 next, not x03")
    target = Path(out_dir).resolve()
    for folder in sorted({str(Path(p).parent) for p in cohort["file_path"]}):
        if target == Path(folder).resolve() or target in Path(folder).resolve().parents:
            raise PipelineError(f"--out-dir {out_dir}: holds the cohort's waveform files "
                                f"({folder}/, from {cohort_path}); give x03 a folder of its own")
    out = output_dir(out_dir)
    # the lock: a second x03 over the same folder stops instead of racing; the marker: until
    # the report is written, readers refuse the folder (a killed run mixes old and new files)
    with folder_lock(out, "x03"):
        check_finished(out, steps=[IMPORT_STEP])   # again: an import may have ended meanwhile
        with unfinished_run(out, "x03"):
            remove_leftovers(out)
            work = functools.partial(extract_chunk, out_dir=out_dir, policy=policy,
                                     max_abs_uv=max_abs_uv)
            tasks = stack_chunks(cohort, chunk_size)
            rows = [row for chunk_rows in imap(work, tasks, n_jobs=n_jobs, desc="x03 chunks",
                                               chunksize=1)
                    for row in chunk_rows]
            report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
            report = report.set_index("studyId").loc[cohort["studyId"]].reset_index()
            finish_outputs(report, out_dir, report_path)  # all failed: stops, removes nothing
            write_csv(report, report_path)

    log = FailureLog("x03")
    for row in report[report["flagged"]].itertuples():
        log.add(row.studyId, f"{row.status}: {row.reason.split(':')[0]}")
    print(report["status"].value_counts().rename_axis("status").to_string())
    ok = report[report["status"] != "failed"]
    if len(ok):
        gains = ok[[c for c in report.columns if c.startswith("gain_")]]
        print(f"[x03] median estimated gains: {gains.median().round(4).to_dict()}; "
              f"median residual before {ok['residual_before'].median():.4f}, "
              f"after {ok['residual_after'].median():.4f}")
    if len(log):
        print(log.summary(total=len(report)))
    return report
