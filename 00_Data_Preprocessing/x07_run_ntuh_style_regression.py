"""x07: association of arrest outcomes with the aVL biomarker (logit and LPM, patient-clustered SEs).

Reads covariate_df.feather (after x06); for every outcome × exposure × model × estimator fits one
regression and writes x07_regression_results.csv plus a readable x07_regression_results.md
(``--filter-mode all``: x07_regression_results_all.csv and .md, so neither overwrites the other).
Outcomes scd1 and scd (cardiac-cause arrest) and any_arrest (any cause, the contrast); exposures
z-scored within the analysed sample; models unadjusted, + age + sex, + age + sex + heart rate,
QRS duration, QTc. Only ECGs with days_to_event >= --min-days enter. See scdecg.association.
"""
from __future__ import annotations

from scdecg.association import (DEFAULT_QTC, ESTIMATORS as _ESTIMATORS, EXPOSURES as _EXPOSURES,
                                MIN_EVENTS as _MIN_EVENTS, OUTCOMES as _OUTCOMES, run_association)
from scdecg.cli import build_parser
from scdecg.constants import MIN_DAYS_TO_EVENT
from scdecg.errors import script_main
from scdecg.workspace import COVARIATE_DF as _COVARIATE_DF

COVARIATE_DF = _COVARIATE_DF
OUTPUT_CSV = ""     # empty: x07_regression_results.csv (casecontrol), x07_regression_results_all.csv (all)
OUTPUT_MD = ""      # empty: the same name as the CSV, ending .md
FILTER_MODE = "casecontrol"
OUTCOMES = list(_OUTCOMES)
EXPOSURES = list(_EXPOSURES)
ESTIMATORS = list(_ESTIMATORS)
QTC_COLUMN = DEFAULT_QTC
MIN_DAYS = float(MIN_DAYS_TO_EVENT)
MIN_EVENTS = _MIN_EVENTS
HELP = {
    "covariate_df": "cohort table with the x06 features",
    "output_csv": ("one row per outcome x exposure x model x estimator (default "
                   "x07_regression_results.csv, or x07_regression_results_<mode>.csv for "
                   "another --filter-mode)"),
    "output_md": "the same results as a readable Markdown report (default: the CSV's name, .md)",
    "outcomes": "0/1 outcome columns",
    "exposures": ("biomarker columns (z-scored within each analysed sample); an exposure that "
                  "is also a covariate (age, female, heartRate, qrsDuration, the QTc column) is "
                  "left out of its own adjustment set (age's age_sex model adjusts for sex only)"),
    "filter_mode": "casecontrol: each outcome's cases vs the control group; all: every row",
    "qtc_column": "QTc covariate of the fullest model (qtcf Fridericia, qtcb Bazett)",
    "min_days": "keep ECGs taken at least this many days before the event",
    "min_events": "fewest cases (and non-cases) for a regression to be attempted",
    "estimators": "logit and/or lpm (linear probability model)",
}


@script_main
def main(argv=None):
    args = build_parser(__doc__, help=HELP, covariate_df=COVARIATE_DF, output_csv=OUTPUT_CSV,
                        output_md=OUTPUT_MD, filter_mode=FILTER_MODE, outcomes=OUTCOMES,
                        exposures=EXPOSURES, estimators=ESTIMATORS, qtc_column=QTC_COLUMN,
                        min_days=MIN_DAYS, min_events=MIN_EVENTS).parse_args(argv)
    results, output_csv, output_md = run_association(
        args.covariate_df, args.output_csv, args.output_md, args.filter_mode, args.outcomes,
        args.exposures, args.estimators, args.qtc_column, args.min_days, args.min_events)
    failed = results[results["status"] != "ok"]
    print(f"[x07] {len(results) - len(failed)} of {len(results)} regressions estimated; "
          f"wrote {output_csv} and {output_md}")
    for reason, count in failed["reason"].value_counts().items():
        print(f"[x07]   not estimated ({count}): {reason}")
    headline = results[(results["model"] == "age_sex_ecg") & (results["estimator"] == "logit")]
    for row in headline.itertuples(index=False):
        print(f"[x07] {row.outcome:<10} {row.exposure:<14} adjusted log-OR per SD "
              f"{row.coef:+.3f} (SE {row.se:.3f}, p {row.p:.2g}, n {row.n}, events {row.n_events})")


if __name__ == "__main__":
    raise SystemExit(main())
