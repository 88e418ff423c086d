"""Segment every cohort ECG into single beats and keep those passing the published filters.

Each lead's median is subtracted (mV), then R-peaks are found on lead I (neurokit2 cleaning and
peak finding; no delineation). Each peak r gives the window [r-100, r+200) of all 12 leads;
windows crossing the recording's edges are dropped, then the first and last remaining ones,
then those holding a second R-peak, or with low mean peak-to-peak (<= 0.5 mV), low mean SD
(ddof 1, rounded to 4 decimals, <= 0.06 mV) or low mean autocorrelation (<= 0.75). Kept beats
are written as float32 (12, 300) to ``ecg_beats/<studyId>/<studyId>_<k>.npy`` (k = 0..n-1);
each ECG's folder is replaced as a whole, so reruns leave no stale beats. Every ECG gets a row
in ``ecg_beats/segmentation_log.csv`` with its status, reason and per-filter rejection counts.
When no ECG gives a beat, ecg_beats/ is left as it was and the run stops, naming the per-ECG
reasons file (segmentation_log.failed.csv). Until the log is written, ecg_beats/.x04-unfinished
marks the folder: if this run is killed or stops on an error, x05 and beat training refuse it
until x04 is rerun.
"""
from __future__ import annotations

from pathlib import Path

from scdecg import beats
from scdecg.cli import build_parser
from scdecg.errors import script_main
from scdecg.signals import PUBLISHED_TAIL_CUT
from scdecg.workspace import BEATS_DIR, COVARIATE_DF, SEGMENTATION_LOG, TEN_SEC_DIR
from scdecg.workspace import GAIN_REPORT as _GAIN_REPORT

COHORT = COVARIATE_DF
ECG_DIR = TEN_SEC_DIR
OUT_DIR = BEATS_DIR
GAIN_REPORT = _GAIN_REPORT
LOG_NAME = SEGMENTATION_LOG
RPEAK_METHOD = beats.RPEAK_METHOD
CORRECT_ARTIFACTS = False
MIN_MEAN_PTP = beats.MIN_MEAN_PTP_MV
MIN_MEAN_SD = beats.MIN_MEAN_SD_MV
MIN_AUTOCORR = beats.MIN_MEAN_AUTOCORR
ZERO_MEDIAN = True     # subtract each lead's median before cutting beats (published)
TAIL_CUT = 0           # 500: the published loader's cut-and-zero-pad of the end (DEVIATIONS.md)
MIN_LEAD_RANGE = beats.FLAT_PTP_MV          # 0: no flat-lead check (published)
MAX_CLIPPED_FRACTION = beats.SATURATION_FRACTION  # inf: no clipped-lead check (published)
N_JOBS = 0

HELP = {
    "cohort": "cohort table (after x02); studyId and scaling_factor are read",
    "ecg_dir": "folder of <studyId>.npy written by x03 (µV)",
    "out_dir": "folder receiving <studyId>/<studyId>_<k>.npy beats and the log",
    "gain_report": "x03's report: ECGs it failed or left unresolved get no beats ('' to ignore)",
    "log_name": "segmentation log file name inside out_dir",
    "rpeak_method": "neurokit2 method for cleaning lead I and finding its R-peaks",
    "correct_artifacts": "apply neurokit2's Kubios R-peak artifact correction, as the published "
                         "ecg_process did (it relocates premature beats' peaks)",
    "min_mean_ptp": "drop windows whose mean peak-to-peak range (mV) is at most this",
    "min_mean_sd": "drop windows whose mean per-lead SD (mV) is at most this",
    "min_autocorr": "drop windows whose mean autocorrelation (lags 0..4) is at most this",
    "zero_median": "subtract each lead's median before the beats are cut (as published)",
    "tail_cut": "replace this many samples at the end by zeros before the median is taken "
                f"({PUBLISHED_TAIL_CUT}: the published loader; 0: keep the full record)",
    "min_lead_range": "refuse ECGs with a lead spanning fewer mV than this (flat or "
                      "disconnected; 0: no check, as published)",
    "max_clipped_fraction": "refuse ECGs with a lead pinned at its extreme in this share of "
                            "samples over several runs (clipped; inf: no check, as published)",
    "n_jobs": "worker processes (0: all cores, 1: in-process)",
}


@script_main
def main(argv=None):
    args = build_parser(__doc__, help=HELP, cohort=COHORT, ecg_dir=ECG_DIR, out_dir=OUT_DIR,
                        gain_report=GAIN_REPORT, log_name=LOG_NAME, rpeak_method=RPEAK_METHOD,
                        correct_artifacts=CORRECT_ARTIFACTS,
                        min_mean_ptp=MIN_MEAN_PTP, min_mean_sd=MIN_MEAN_SD,
                        min_autocorr=MIN_AUTOCORR, zero_median=ZERO_MEDIAN, tail_cut=TAIL_CUT,
                        min_lead_range=MIN_LEAD_RANGE, max_clipped_fraction=MAX_CLIPPED_FRACTION,
                        n_jobs=N_JOBS).parse_args(argv)
    config = beats.BeatConfig(method=args.rpeak_method, correct_artifacts=args.correct_artifacts,
                              min_mean_ptp=args.min_mean_ptp, min_mean_sd=args.min_mean_sd,
                              min_mean_autocorr=args.min_autocorr, zero_median=args.zero_median,
                              tail_cut=args.tail_cut, min_lead_range=args.min_lead_range,
                              max_clipped=args.max_clipped_fraction)
    log = beats.segment_cohort(args.cohort, args.ecg_dir, args.out_dir, args.gain_report,
                               args.log_name, config, args.n_jobs)
    n_ok = int((log["status"] == "ok").sum())
    print(f"[x04] {n_ok} ECGs with beats; log: {Path(args.out_dir) / args.log_name}")


if __name__ == "__main__":
    raise SystemExit(main())
