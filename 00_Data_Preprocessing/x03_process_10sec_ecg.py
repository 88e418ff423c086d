"""Extract each cohort ECG from its stacked waveform file and fix the NTUH limb-lead gain.

For every covariate_df row, reads record ``npy_index`` of ``file_path`` (each stacked file is
memory-mapped once per chunk), estimates the gain of III, aVR, aVL and aVF against the
Einthoven/Goldberger identities, divides them by 4.88 when the estimates match that fault
(leaves them when they match 1, flags anything else) and writes
``10_sec_ecgs/<studyId>.npy`` as float32 (12, 5000) microvolts. Every ECG gets a row in
``x03_gain_report.csv`` (gains, residuals before/after, corrected, status, reason);
unreadable records are logged and counted, their stale outputs removed, and the run continues.
When every ECG fails, 10_sec_ecgs/ and the report are left as they were and the run stops,
naming the per-ECG reasons file (x03_gain_report.failed.csv). Until the report is written,
10_sec_ecgs/.x03-unfinished marks the folder: if this run is killed or stops on an error, the
steps reading 10_sec_ecgs/ refuse it until x03 is rerun. A 10_sec_ecgs/ that
x00_import_cohort.py left unfinished (.x00_import-unfinished) is refused: x03 writes only its
cohort's ECGs, so only a rerun of the import completes that folder.
"""
from __future__ import annotations

from scdecg.cli import build_parser
from scdecg.constants import NTUH_GAIN_FAULT
from scdecg.errors import script_main
from scdecg.io import refuse_path_clashes
from scdecg.gain import (DIVISORS, GAIN_TOLERANCE, MAX_ABS_UV as _MAX_ABS_UV, MAX_RESIDUAL,
                         GainPolicy, extract_cohort)
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
DATA_ROOT = ""   # "": read the waveform files where x01 found them (its file_path column)

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
    "data_root": "NTUH data root to read the stacked waveform files from, when the release has "
                 "moved since x01 or x03 runs from another folder ('': x01's file_path as "
                 "stored)",
}


@script_main
def main(argv=None):
    args = build_parser(__doc__, help=HELP, cohort=COHORT, out_dir=OUT_DIR, report=REPORT,
                        gain_fault=GAIN_FAULT, tolerance=TOLERANCE,
                        max_residual_after=MAX_RESIDUAL_AFTER, divisor=DIVISOR,
                        max_abs_uv=MAX_ABS_UV, chunk_size=CHUNK_SIZE, n_jobs=N_JOBS,
                        data_root=DATA_ROOT).parse_args(argv)
    refuse_path_clashes({"--out-dir": args.out_dir, "--report": args.report},
                        {"--cohort": args.cohort})
    policy = GainPolicy(fault=args.gain_fault, tolerance=args.tolerance,
                        max_residual=args.max_residual_after, divisor=args.divisor)
    report = extract_cohort(args.cohort, args.out_dir, args.report, policy, args.max_abs_uv,
                            args.chunk_size, args.n_jobs, args.data_root)
    ok = report[report["status"] != "failed"]
    print(f"[x03] wrote {len(ok)} ECGs to {args.out_dir}/ and {args.report}")


if __name__ == "__main__":
    raise SystemExit(main())
