"""x08: draw one 12-lead ECG on clinical paper, with its beats and the aVL R and S points of x06.

Reads covariate_df.feather and 10_sec_ecgs/<studyId>.npy; recomputes the x06 analysis of that
ECG (default settings) for the markers; writes a PNG or PDF (chosen by --output's extension).
"""
from __future__ import annotations


import matplotlib
import numpy as np
import pandas as pd

from scdecg.cli import build_parser
from scdecg.constants import FS, N_LEADS
from scdecg.errors import PipelineError, script_main
from scdecg.features import HALF_WINDOW, avl_features
from scdecg.io import load_npy, read_feather, record_path, run_first
from scdecg.plotting import plot_ecg, save_figure
from scdecg.signals import to_millivolts
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
    cohort = read_feather(args.covariate_df, ["studyId", "scaling_factor"], step="x02")
    if not len(cohort):
        raise PipelineError(f"{args.covariate_df}: no rows")
    study_id = args.study_id if args.study_id is not None else str(cohort["studyId"].iloc[0])
    match = cohort[cohort["studyId"].astype(str) == study_id]
    if match.empty:
        raise PipelineError(f"{args.covariate_df}: no row with studyId {study_id!r}")
    row = match.iloc[0]
    value = row["scaling_factor"]
    value = value.item() if isinstance(value, np.generic) else value
    scaling = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if not (np.isfinite(scaling) and scaling > 0):   # as x04 and x06 refuse it
        raise PipelineError(f"{args.covariate_df}: scaling_factor {value!r} of studyId "
                            f"{study_id!r} is not a positive number")
    path = record_path(args.ecg_dir, study_id)
    if not path.exists():
        raise PipelineError(f"{path}: file not found ({run_first('x03')})")
    try:
        stored = load_npy(path)
    except (OSError, ValueError) as exc:
        raise PipelineError(f"{path}: not a readable .npy file ({exc})") from exc
    if not (np.issubdtype(stored.dtype, np.integer) or np.issubdtype(stored.dtype, np.floating)):
        raise PipelineError(f"{path}: holds {stored.dtype} values, not real numbers (rerun x03)")
    if stored.ndim != 2 or stored.shape[0] != N_LEADS or stored.shape[1] < FS:
        raise PipelineError(f"{path}: shape {stored.shape}, expected ({N_LEADS}, samples) "
                            f"with at least {FS} samples (rerun x03)")
    ecg = to_millivolts(stored, float(scaling))
    if not np.isfinite(ecg).all():
        raise PipelineError(f"{path}: holds non-finite samples (NaN or inf)")

    markers = {}
    note = ""
    if args.markers:
        result = avl_features(ecg)
        markers["rpeaks"] = result.rpeaks
        if result.r_index >= 0:
            start = result.used_rpeaks - HALF_WINDOW
            markers["avl_r"], markers["avl_s"] = start + result.r_index, start + result.s_index
        note = (f"   aVL_rs_diff {result.rs_diff:.4f}, aVL_rs_diff_2 {result.rs_diff_2:.4f}"
                if result.status != "failed" else f"   x06: {result.reason}")
    title = f"{study_id}   group {row.get('group', '?')}   25 mm/s, 10 mm/mV{note}"
    save_figure(plot_ecg(ecg, title=title, **markers), args.output, dpi=args.dpi)
    print(f"[x08] wrote {args.output} ({study_id})")


if __name__ == "__main__":
    raise SystemExit(main())
