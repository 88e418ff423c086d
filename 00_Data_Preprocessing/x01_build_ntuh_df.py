"""Build the cohort table from the NTUH arrest ECG tree: one ECG per patient, with labels.

Reads the study group's pre-arrest ECGs and each control year's "pre" ECGs under
--data-root, checks every file and column it needs before reading anything, and writes
covariate_df.feather (plus x01_exclusions.csv, one row per excluded ECG with its reason)
in the working directory. A control year folder that is absent is an error unless it is
left out of --control-years.
"""
from __future__ import annotations

from scdecg.cli import build_parser
from scdecg.cohort import build_cohort
from scdecg.constants import CONTROL_YEARS, COVARIATE_DF, DEFAULT_DATA_ROOT
from scdecg.errors import script_main
from scdecg.io import write_csv, write_feather

DATA_ROOT = DEFAULT_DATA_ROOT
CONTROL_YEARS_USED = list(CONTROL_YEARS)
OUTPUT = COVARIATE_DF
EXCLUSIONS = "x01_exclusions.csv"

HELP = {
    "data_root": "root of the arrest-ntuh-ecg tree (holds study-group/ and control-group/)",
    "control_years": "control-group year folders to read",
    "output": "cohort table to write",
    "exclusions": "table of excluded ECGs and reasons to write",
}


@script_main
def main(argv=None):
    args = build_parser(__doc__, help=HELP, data_root=DATA_ROOT,
                        control_years=CONTROL_YEARS_USED, output=OUTPUT,
                        exclusions=EXCLUSIONS).parse_args(argv)
    cohort, report = build_cohort(args.data_root, args.control_years)
    print(report.summary(cohort))
    write_feather(cohort, args.output)
    write_csv(report.exclusion_frame(), args.exclusions)
    print(f"[x01] wrote {args.output} and {args.exclusions}")


if __name__ == "__main__":
    raise SystemExit(main())
