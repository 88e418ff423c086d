"""x07: association of arrest outcomes with the aVL biomarker (logit and LPM, patient-clustered SEs).

Reads covariate_df.feather (after x06); for every outcome × exposure × model × estimator fits one
regression and writes x07_regression_results.csv plus a readable x07_regression_results.md
(``--filter-mode all``: x07_regression_results_all.csv and .md, so neither overwrites the other).
Outcomes scd1 and scd (cardiac-cause arrest) and any_arrest (any cause, the contrast); exposures
z-scored within the analysed sample; models unadjusted, + age + sex, + age + sex + heart rate,
QRS duration, QTc. Only ECGs with days_to_event >= --min-days enter. See scdecg.association.
"""
from __future__ import annotations

from pathlib import Path

from scdecg.association import (CLUSTER, DEFAULT_QTC, ESTIMATORS as _ESTIMATORS, EXPOSURES as
                                _EXPOSURES, FILTER_MODES, MIN_EVENTS as _MIN_EVENTS, OUTCOMES as
                                _OUTCOMES, association_table, markdown_table, model_covariates,
                                results_file)
from scdecg.cli import build_parser
from scdecg.constants import MIN_DAYS_TO_EVENT
from scdecg.errors import PipelineError, script_main
from scdecg.io import check_values, read_feather, write_csv, write_text
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
    "exposures": "biomarker columns (z-scored within each analysed sample)",
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
    if args.filter_mode not in FILTER_MODES:
        raise PipelineError(f"--filter-mode {args.filter_mode!r}: expected one of {FILTER_MODES}")
    unknown = sorted(set(args.estimators) - set(_ESTIMATORS))
    if unknown:
        raise PipelineError(f"--estimators {unknown[0]!r}: expected some of {_ESTIMATORS}")
    args.output_csv = args.output_csv or results_file(args.filter_mode, ".csv")
    args.output_md = args.output_md or str(Path(args.output_csv).with_suffix(".md"))
    covariates = max(model_covariates(args.qtc_column).values(), key=len)
    needed = ["studyId", CLUSTER, "group", "days_to_event", *args.outcomes, *args.exposures,
              *covariates]
    df = read_feather(args.covariate_df, needed, step="x06")
    # outcomes 0/1 and numbers finite, or rows would drop silently or the regression stop
    check_values(df, args.covariate_df, binary=args.outcomes,
                 numeric=["days_to_event", *args.exposures, *covariates])

    results = association_table(df, args.outcomes, args.exposures, args.filter_mode,
                                args.qtc_column, args.estimators, args.min_events, args.min_days)
    write_csv(results, args.output_csv)
    title = (f"# x07 association results ({args.filter_mode}; days_to_event >= {args.min_days:g}; "
             f"exposures per SD; SEs clustered by {CLUSTER})\n\n")
    write_text(title + markdown_table(results), args.output_md)

    failed = results[results["status"] != "ok"]
    print(f"[x07] {len(results) - len(failed)} of {len(results)} regressions estimated; "
          f"wrote {args.output_csv} and {args.output_md}")
    for reason, count in failed["reason"].value_counts().items():
        print(f"[x07]   not estimated ({count}): {reason}")
    headline = results[(results["model"] == "age_sex_ecg") & (results["estimator"] == "logit")]
    for row in headline.itertuples(index=False):
        print(f"[x07] {row.outcome:<10} {row.exposure:<14} adjusted log-OR per SD "
              f"{row.coef:+.3f} (SE {row.se:.3f}, p {row.p:.2g}, n {row.n}, events {row.n_events})")


if __name__ == "__main__":
    raise SystemExit(main())
