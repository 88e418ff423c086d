"""Extract each cohort ECG from its stacked waveform file and fix the NTUH limb-lead gain.

For every covariate_df row, reads record ``npy_index`` of ``file_path`` (each stacked file is
memory-mapped once per chunk), estimates the gain of III, aVR, aVL and aVF against the
Einthoven/Goldberger identities, divides them by 4.88 when the estimates match that fault
(leaves them when they match 1, flags anything else) and writes
``10_sec_ecgs/<studyId>.npy`` as float32 (12, 5000) microvolts. Every ECG gets a row in
``x03_gain_report.csv`` (gains, residuals before/after, corrected, status, reason);
unreadable records are logged and counted, their stale outputs removed, and the run continues.
When every ECG fails, 10_sec_ecgs/ and the report are left as they were and the run stops,
naming the per-ECG reasons file (x03_gain_report.failed.csv).
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from scdecg.cli import build_parser
from scdecg.constants import NTUH_GAIN_FAULT
from scdecg.errors import PipelineError, script_main
from scdecg.failures import FailureLog
from scdecg.gain import (DIVISORS, GAIN_TOLERANCE, MAX_ABS_UV as _MAX_ABS_UV,
                         MAX_RESIDUAL, REPORT_COLUMNS, GainPolicy, extract_chunk,
                         finish_outputs, imported_cohort_problem)
from scdecg.io import (check_ids, folder_lock, output_dir, read_feather, remove_leftovers,
                       write_csv)
from scdecg.parallel import imap
from scdecg.workspace import COVARIATE_DF, GAIN_REPORT, TEN_SEC_DIR

COHORT = COVARIATE_DF
OUT_DIR = TEN_SEC_DIR
REPORT = GAIN_REPORT
GAIN_FAULT = NTUH_GAIN_FAULT
TOLERANCE = GAIN_TOLERANCE
MAX_RESIDUAL_AFTER = MAX_RESIDUAL
DIVISOR = "fixed"
MAX_ABS_UV = _MAX_ABS_UV
CHUNK_SIZE = 256
N_JOBS = 0

HELP = {
    "cohort": "cohort table (after x02)",
    "out_dir": "folder receiving <studyId>.npy",
    "report": "per-ECG gain report (CSV)",
    "gain_fault": "factor by which the derived limb leads are stored too large",
    "tolerance": "relative distance from the fault (or from 1) still counted as a match",
    "max_residual_after": "flag ECGs whose identity residual after correction exceeds this",
    "divisor": f"one of {DIVISORS}: divide by the fault itself or by each lead's estimate",
    "max_abs_uv": "records with a larger |sample| (µV) fail as implausible (wrong units)",
    "chunk_size": "ECGs per worker task",
    "n_jobs": "worker processes (0: all cores, 1: in-process)",
}


def chunks(cohort: pd.DataFrame, size: int) -> list[tuple[str, list[tuple[str, int]]]]:
    """``(file_path, [(studyId, npy_index), ...])`` tasks, rows sorted by index within a file."""
    tasks = []
    ordered = cohort.sort_values(["file_path", "npy_index"], kind="stable")
    for path, group in ordered.groupby("file_path", sort=False):
        rows = list(zip(group["studyId"], group["npy_index"]))
        tasks += [(str(path), rows[i:i + size]) for i in range(0, len(rows), size)]
    return tasks


def load_cohort(path: str) -> pd.DataFrame:
    cohort = read_feather(path, ["studyId", "file_path", "npy_index"], step="x02")[["studyId", "file_path", "npy_index"]]
    check_ids(cohort, path)
    bad = cohort["npy_index"].isna() | (pd.to_numeric(cohort["npy_index"], errors="coerce") % 1 != 0)
    if bad.any():
        row = cohort[bad].iloc[0]
        raise PipelineError(f"{path}: column npy_index is not a whole number for studyId "
                            f"{row['studyId']!r} (value {row['npy_index']!r})")
    cohort["npy_index"] = cohort["npy_index"].astype(np.int64)
    return cohort


@script_main
def main(argv=None):
    args = build_parser(__doc__, help=HELP, cohort=COHORT, out_dir=OUT_DIR, report=REPORT,
                        gain_fault=GAIN_FAULT, tolerance=TOLERANCE,
                        max_residual_after=MAX_RESIDUAL_AFTER, divisor=DIVISOR,
                        max_abs_uv=MAX_ABS_UV, chunk_size=CHUNK_SIZE, n_jobs=N_JOBS).parse_args(argv)
    if args.divisor not in DIVISORS:
        raise PipelineError(f"--divisor {args.divisor!r}: expected one of {DIVISORS}")
    cohort = load_cohort(args.cohort)
    problem = imported_cohort_problem(cohort["file_path"])
    if problem:
        raise PipelineError(f"{args.cohort}: {problem}: a cohort from x00_import_cohort.py, "
                            f"whose {args.out_dir}/ is already written; run x04 next, not x03")
    policy = GainPolicy(fault=args.gain_fault, tolerance=args.tolerance,
                        max_residual=args.max_residual_after, divisor=args.divisor)
    out = output_dir(args.out_dir)
    with folder_lock(out, "x03"):  # a second x03 over the same folder stops instead of racing
        remove_leftovers(out)
        work = functools.partial(extract_chunk, out_dir=args.out_dir, policy=policy,
                                 max_abs_uv=args.max_abs_uv)
        rows = [row for chunk_rows in imap(work, chunks(cohort, args.chunk_size), n_jobs=args.n_jobs,
                                           desc="x03 chunks", chunksize=1)
                for row in chunk_rows]
        report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
        report = report.set_index("studyId").loc[cohort["studyId"]].reset_index()  # cohort order
        finish_outputs(report, args.out_dir, args.report)  # every ECG failed: stops, removes nothing
    write_csv(report, args.report)

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
    print(f"[x03] wrote {len(ok)} ECGs to {args.out_dir}/ and {args.report}")


if __name__ == "__main__":
    raise SystemExit(main())
