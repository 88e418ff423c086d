"""x06: the aVL terminal-R slope biomarker (aVL_rs_diff, aVL_rs_diff_2) of every ECG.

Reads covariate_df.feather and 10_sec_ecgs/<studyId>.npy; writes the two feature columns back
into covariate_df.feather (replacing them on a rerun) and a per-ECG table x06_avl_features.csv
(studyId, status, reason, features, median-beat R and S indices, beats used). ECGs whose
features cannot be computed get NaN, and the reason is logged and counted.
See scdecg.features for the algorithm.
"""
from __future__ import annotations

import numpy as np

from scdecg.cli import build_parser
from scdecg.errors import script_main
from scdecg.io import refuse_path_clashes
from scdecg.features import (FEATURE_COLUMNS, LOWPASS_HZ as _LOWPASS_HZ, MIN_BEATS as _MIN_BEATS,
                             MIN_AVL_RANGE_MV as _MIN_AVL_RANGE_MV,
                             RPEAK_REFINEMENT as _RPEAK_REFINEMENT, measure_cohort)
from scdecg.workspace import AVL_FEATURES, GAIN_REPORT as _GAIN_REPORT
from scdecg.workspace import COVARIATE_DF as _COVARIATE_DF, TEN_SEC_DIR as _TEN_SEC_DIR

COVARIATE_DF = _COVARIATE_DF
ECG_DIR = _TEN_SEC_DIR
GAIN_REPORT = _GAIN_REPORT
OUTPUT_TABLE = AVL_FEATURES
RPEAK_REFINEMENT = _RPEAK_REFINEMENT  # "published": biosppy's last step, the aVL peak that stands out within ±0.2 s
LOWPASS_HZ = _LOWPASS_HZ  # zero-phase low-pass cutoff; 0 = none (published)
MIN_BEATS = _MIN_BEATS    # 1: a median beat from any number of windows (published)
MIN_AVL_RANGE = _MIN_AVL_RANGE_MV  # 0: no flatness check (published)
N_JOBS = 0             # worker processes; 0 = every available core, 1 = in-process
HELP = {
    "covariate_df": "cohort table to read and update",
    "ecg_dir": "folder of 10-s ECGs (<studyId>.npy, µV, written by x03)",
    "gain_report": "x03's report: ECGs it failed or left unresolved are not measured ('' to ignore)",
    "output_table": "per-ECG result table",
    "rpeak_refinement": "how Hamilton's aVL detections are moved: published (as biosppy's "
                        "segmenter: to the peak, within ±0.2 s, of the polarity that stands "
                        "out more), qrs_centre (to the aVL QRS centre, see DEVIATIONS.md) or "
                        "none",
    "lowpass_hz": ("zero-phase low-pass cutoff before feature extraction (0: none, as "
                   "published; otherwise 0.5 Hz to below 250 Hz, half the sampling rate)"),
    "min_beats": "fewest beat windows that make a median beat (1: as published)",
    "min_avl_range": "an aVL lead or median beat spanning fewer mV fails as flat (0: as published)",
    "n_jobs": "worker processes (0: all cores)",
}


@script_main
def main(argv=None):
    args = build_parser(__doc__, help=HELP, covariate_df=COVARIATE_DF, ecg_dir=ECG_DIR,
                        gain_report=GAIN_REPORT, output_table=OUTPUT_TABLE,
                        rpeak_refinement=RPEAK_REFINEMENT, lowpass_hz=LOWPASS_HZ,
                        min_beats=MIN_BEATS, min_avl_range=MIN_AVL_RANGE,
                        n_jobs=N_JOBS).parse_args(argv)
    refuse_path_clashes({"--output-table": args.output_table},
                        {"--covariate-df": args.covariate_df, "--ecg-dir": args.ecg_dir,
                         "--gain-report": args.gain_report})
    table = measure_cohort(args.covariate_df, args.ecg_dir, args.gain_report, args.output_table,
                           args.rpeak_refinement, args.lowpass_hz, args.min_beats,
                           args.min_avl_range, args.n_jobs)
    for column in FEATURE_COLUMNS:
        values = table[column].to_numpy(dtype=float)
        print(f"[x06] {column}: {np.isfinite(values).sum()} of {len(values)} ECGs, "
              f"median {np.nanmedian(values) if np.isfinite(values).any() else float('nan'):.4f}")
    print(f"[x06] wrote {args.output_table} and the columns {', '.join(FEATURE_COLUMNS)} "
          f"of {args.covariate_df}")


if __name__ == "__main__":
    raise SystemExit(main())
