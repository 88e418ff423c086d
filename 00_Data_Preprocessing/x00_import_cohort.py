"""Import your own 12-lead ECGs and a labels table: writes what x01-x03 write for NTUH.

Reads a folder of WFDB records (--format wfdb, the default; searched recursively, rate, lead
names and units from each header) or of .npy / .csv files (--format npy|csv with --fs HZ,
--leads I,II,... and --units), and the labels table --labels (CSV or Feather: record_id,
patient_id, age, sex, and either days_to_event + cardiac_cause or ready-made 0/1 label columns
such as scd1; with WFDB records, age and sex the table leaves out come from the headers'
``# Age:``/``# Sex:`` comments). Leads are matched by name (case-insensitive), missing
III/aVR/aVL/aVF are derived from I and II, signals are converted to microvolts, resampled to
500 Hz and cut to the first 10 s (or every 10-s window with --windows). Writes
covariate_df.feather (the x02 table), 10_sec_ecgs/<studyId>.npy (float32 (12, 5000)
microvolts) and an import log with one row per record and status. Run x04 onwards next; do
not run x01-x03 after an import.
"""
from __future__ import annotations

from pathlib import Path

from scdecg.cli import build_parser
from scdecg.errors import PipelineError, script_main
from scdecg.importing import FORMATS, SignalOptions, WindowOptions, import_cohort
from scdecg.io import write_csv
from scdecg.workspace import COVARIATE_DF, IMPORT_LOG, TEN_SEC_DIR

INPUT = None
FORMAT = "wfdb"
LABELS = None
FS = 0.0
LEADS = ""
UNITS = ""
WINDOWS = False
MAX_WINDOWS = 0
PAD_SHORT = False
ONE_PER_PATIENT = True
MEASURE = True
SEED = 42
OUTPUT = COVARIATE_DF
OUT_DIR = TEN_SEC_DIR
LOG = IMPORT_LOG
N_JOBS = 0

HELP = {
    "input": "folder holding the records (searched recursively); the record id is the file stem",
    "format": f"one of {', '.join(FORMATS)}",
    "labels": "labels table (CSV or .feather): record_id, patient_id, age, sex and either "
              "days_to_event + cardiac_cause or ready-made 0/1 label columns (WFDB: age "
              "and sex left out are read from the headers' # Age: / # Sex: comments)",
    "fs": "sampling rate in Hz of the npy/csv files (WFDB headers give their own)",
    "leads": "comma-separated lead order of the npy/csv files, e.g. I,II,V1,V2,V3,V4,V5,V6",
    "units": "unit of the npy/csv samples: mV (when not given), uV or V",
    "windows": "import every consecutive 10-s window as its own ECG (<id>_w0, <id>_w1, ...) "
               "instead of the first 10 s only",
    "max_windows": "with --windows: at most this many windows per record (0: all)",
    "pad_short": "pad records shorter than 10 s (last sample repeated) instead of refusing them",
    "one_per_patient": "keep one ECG per patient as x01 does (the smallest days_to_event >= 2)",
    "measure": "measure RR and heart rate of each imported ECG where the labels table does not "
               "give them, and QTc from a given qt_interval (x05 and x07 need them)",
    "seed": "seed of the x02 placeholder covariates",
    "output": "cohort table to write (the x02 table)",
    "out_dir": "folder receiving <studyId>.npy (replaced as a whole; a folder holding other "
               "files is refused)",
    "log": "import log to write: one row per record and label row, with status and reason",
    "n_jobs": "worker processes (0: all cores, 1: in-process)",
}


@script_main
def main(argv=None):
    args = build_parser(__doc__, help=HELP, input=INPUT, format=FORMAT, labels=LABELS, fs=FS,
                        leads=LEADS, units=UNITS, windows=WINDOWS, max_windows=MAX_WINDOWS,
                        pad_short=PAD_SHORT, one_per_patient=ONE_PER_PATIENT,
                        measure=MEASURE, seed=SEED,
                        output=OUTPUT, out_dir=OUT_DIR, log=LOG,
                        n_jobs=N_JOBS).parse_args(argv)
    if args.input is None or args.labels is None:
        raise PipelineError("give the records folder with --input DIR and the labels table "
                            "with --labels FILE")
    leads = tuple(name.strip() for name in args.leads.split(",")) if args.leads else ()
    options = SignalOptions(format=args.format, fs=args.fs, leads=leads, unit=args.units,
                            windows=WindowOptions(all_windows=args.windows,
                                                  max_windows=args.max_windows,
                                                  pad_short=args.pad_short),
                            measure=args.measure)
    result = import_cohort(Path(args.input), Path(args.labels), Path(args.out_dir), options,
                           one_per_patient=args.one_per_patient, seed=args.seed,
                           n_jobs=args.n_jobs, table_path=Path(args.output),
                           log_path=Path(args.log))
    write_csv(result.log, args.log)
    print(result.summary())
    if result.covariates.empty:
        raise PipelineError(f"no record was imported ({args.out_dir}/ and {args.output} left "
                            f"as they were); the reason for each record is in {args.log}")
    print(f"[import] wrote {args.output}, {len(result.covariates)} ECGs to {args.out_dir}/ "
          f"and {args.log}")


if __name__ == "__main__":
    raise SystemExit(main())
