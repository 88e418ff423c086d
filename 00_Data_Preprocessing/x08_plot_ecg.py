"""x08: draw one 12-lead ECG on clinical paper, with its beats and the aVL R and S points of x06.

Reads covariate_df.feather and 10_sec_ecgs/<studyId>.npy; recomputes the x06 analysis of that
ECG (default settings) for the markers; writes a PNG or PDF (chosen by --output's extension).
"""
from __future__ import annotations

import matplotlib

from scdecg.cli import build_parser
from scdecg.errors import script_main
from scdecg.io import refuse_path_clashes
from scdecg.plotting import plot_cohort_ecg
from scdecg.workspace import X08_FIGURE
from scdecg.workspace import COVARIATE_DF as _COVARIATE_DF, TEN_SEC_DIR as _TEN_SEC_DIR

COVARIATE_DF = _COVARIATE_DF
ECG_DIR = _TEN_SEC_DIR
STUDY_ID = None          # default: the first row of covariate_df
OUTPUT = X08_FIGURE
MARKERS = True
DPI = 200
matplotlib.use("Agg")    # files only, never a window
HELP = {
    "covariate_df": "cohort table (for scaling_factor and the title)",
    "ecg_dir": "folder of 10-s ECGs written by x03",
    "study_id": "ECG to draw (default: the first row of the cohort table)",
    "output": "figure file; .png or .pdf",
    "markers": "mark detected beats and the aVL R and S points",
    "dpi": "resolution of a PNG",
}


@script_main
def main(argv=None):
    args = build_parser(__doc__, help=HELP, covariate_df=COVARIATE_DF, ecg_dir=ECG_DIR,
                        study_id=STUDY_ID, output=OUTPUT, markers=MARKERS,
                        dpi=DPI).parse_args(argv)
    refuse_path_clashes({"--output": args.output},
                        {"--covariate-df": args.covariate_df, "--ecg-dir": args.ecg_dir})
    study_id = plot_cohort_ecg(args.covariate_df, args.ecg_dir, args.study_id, args.output,
                               args.markers, args.dpi)
    print(f"[x08] wrote {args.output} ({study_id})")


if __name__ == "__main__":
    raise SystemExit(main())
