"""Add the pipeline columns to the cohort table: names, labels, placeholder covariates.

Renames the NTUH columns to the training code's names, adds scaling_factor, ptId,
include_modelling, the interval labels and VFVT, and draws the seeded placeholders for
covariates NTUH lacks (death labels, ejection fraction, P duration, QRS axes). Rewrites
covariate_df.feather in place. A table x02 already processed is left unchanged (so a rerun
does not disturb columns added by later steps).
"""
from __future__ import annotations

from scdecg.cli import build_parser
from scdecg.cohort import add_pipeline_columns, describe_pipeline_columns, is_processed
from scdecg.errors import script_main
from scdecg.io import read_feather, write_feather
from scdecg.workspace import COVARIATE_DF

COHORT = COVARIATE_DF
SEED = 42

HELP = {
    "cohort": "cohort table written by x01, rewritten in place",
    "seed": "seed of the np.random.RandomState drawing the placeholder covariates",
}


@script_main
def main(argv=None):
    args = build_parser(__doc__, help=HELP, cohort=COHORT, seed=SEED).parse_args(argv)
    cohort = read_feather(args.cohort, step="x01")
    if is_processed(cohort):
        print(f"[x02] {args.cohort} already has the pipeline columns; left unchanged")
        return
    cohort = add_pipeline_columns(cohort, seed=args.seed)
    print(describe_pipeline_columns(cohort))
    write_feather(cohort, args.cohort)
    print(f"[x02] wrote {args.cohort}")


if __name__ == "__main__":
    raise SystemExit(main())
