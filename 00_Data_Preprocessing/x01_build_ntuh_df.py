"""Build the cohort table from the NTUH arrest ECG tree: one ECG per patient, with labels.

Reads the study group's pre-arrest ECGs and each control year's "pre" ECGs under
--data-root, checks every file and column it needs before reading anything, and writes
covariate_df.feather (plus x01_exclusions.csv, one row per excluded ECG with its reason)
in the working directory. A control year folder that is absent is an error unless it is
left out of --control-years.
"""
from __future__ import annotations

from scdecg.cli import build_parser
from scdecg.cohort import (CARDIAC_CAUSES, FLAG_MATCH as _FLAG_MATCH, FLAG_MATCHES,
                           NONCARDIAC_CAUSES, OTHER_RHYTHMS, SHOCKABLE_RHYTHMS, Categories,
                           build_cohort, write_cohort)
from scdecg.constants import CONTROL_YEARS
from scdecg.errors import script_main
from scdecg.io import refuse_path_clashes
from scdecg.workspace import COVARIATE_DF, DEFAULT_DATA_ROOT, X01_EXCLUSIONS

DATA_ROOT = DEFAULT_DATA_ROOT
CONTROL_YEARS_USED = list(CONTROL_YEARS)
OUTPUT = COVARIATE_DF
EXCLUSIONS = X01_EXCLUSIONS
# Category values recognised (case and surrounding whitespace ignored); other values are read
# as published (non-cardiac, not shockable) and named with their counts in the summary.
CARDIAC_CAUSES_USED = list(CARDIAC_CAUSES)
NONCARDIAC_CAUSES_USED = list(NONCARDIAC_CAUSES)
SHOCKABLE_RHYTHMS_USED = list(SHOCKABLE_RHYTHMS)
OTHER_RHYTHMS_USED = list(OTHER_RHYTHMS)
FLAG_MATCH = _FLAG_MATCH   # "bit": code & 8 sets ST elevation; "equal": code == 8 (published)

HELP = {
    "data_root": "root of the arrest-ntuh-ecg tree (holds study-group/ and control-group/)",
    "control_years": "control-group year folders to read",
    "output": "cohort table to write",
    "exclusions": "table of excluded ECGs and reasons to write",
    "cardiac_causes": "cause_of_cardiac_arrest values that make an arrest cardiac (SCD)",
    "noncardiac_causes": "cause values known to be non-cardiac (others are named in the summary)",
    "shockable_rhythms": "initial_rhythm values that set VTVF",
    "other_rhythms": "initial_rhythm values known not to be shockable",
    "flag_match": f"one of {', '.join(FLAG_MATCHES)}: a per-lead code sets stelev/stdown/dltwv "
                  "when its bit 8/4/32 is set, or (published) when it equals 8/4/32",
}


@script_main
def main(argv=None):
    args = build_parser(__doc__, help=HELP, data_root=DATA_ROOT,
                        control_years=CONTROL_YEARS_USED, output=OUTPUT,
                        exclusions=EXCLUSIONS, cardiac_causes=CARDIAC_CAUSES_USED,
                        noncardiac_causes=NONCARDIAC_CAUSES_USED,
                        shockable_rhythms=SHOCKABLE_RHYTHMS_USED,
                        other_rhythms=OTHER_RHYTHMS_USED,
                        flag_match=FLAG_MATCH).parse_args(argv)
    refuse_path_clashes({"--output": args.output, "--exclusions": args.exclusions},
                        {"--data-root": args.data_root})
    categories = Categories(tuple(args.cardiac_causes), tuple(args.noncardiac_causes),
                            tuple(args.shockable_rhythms), tuple(args.other_rhythms))
    cohort, report = build_cohort(args.data_root, args.control_years, categories, args.flag_match)
    print(report.summary(cohort))
    write_cohort(cohort, report, args.output, args.exclusions)
    print(f"[x01] wrote {args.output} and {args.exclusions}")


if __name__ == "__main__":
    raise SystemExit(main())
