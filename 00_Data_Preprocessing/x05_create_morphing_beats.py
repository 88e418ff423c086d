"""Build the stricter beat set used by the morphing model (ecg_beats_morphing/).

1. ECG-level exclusions in the published order: heart rate outside 30-90, age outside 18-80,
   then every flag must be false (low EF, VT/VF, ICD, ST changes, QTc > 500, LBBB, delta wave,
   comorbidities, ...) and the interval limits (P, QRS, QTc, RR) must hold. The real NTUH
   ``lbbb``/``dltwv`` flags are used, not the published all-False ``LBBB``/``deltawave``.
2. The beats of the remaining ECGs are x04's (``ecg_beats/``: same detector, windows and
   filters), so nothing is segmented twice.
3. A median beat and an SD beat (12, 300) are computed over a seeded sample of at most 10,000
   of those beats; beats whose z-distance ||(beat - median) / sd|| exceeds 100 are dropped
   (the published code computed this distance but never applied it).

Writes the kept beats to ``ecg_beats_morphing/<studyId>/<studyId>_<k>.npy``, the median and SD
beats, every beat's distance (``x05_beat_distances.csv``) and the waterfall table
``x05_waterfall_table_results.csv``: after each step, the ECGs and the beats that remain.
Until those tables are written, ``ecg_beats_morphing/.x05-unfinished`` marks the folder, so a
killed or failed run is refused by s08-s10 until x05 is rerun.
"""
from __future__ import annotations

from scdecg.beats import create_morphing_beats
from scdecg.cli import script_parser
from scdecg.errors import script_main
from scdecg.workspace import BEATS_DIR, COVARIATE_DF, MORPH_BEATS_DIR
from scdecg.workspace import SEGMENTATION_LOG as _SEGMENTATION_LOG

COHORT = COVARIATE_DF
BEATS = BEATS_DIR
SEGMENTATION_LOG = _SEGMENTATION_LOG
OUT_DIR = MORPH_BEATS_DIR
MAX_REFERENCE_BEATS = 10_000
MAX_Z_DISTANCE = 100.0
REAL_FLAGS = True
EXCLUDE_MISSING_INTERVALS = False  # a missing QTcB/QTcF/RR keeps the ECG, as published
SEED = 42
N_JOBS = 0

HELP = {
    "cohort": "cohort table (after x02)",
    "beats": "x04's beat folder (holds the segmentation log)",
    "segmentation_log": "x04's log file name inside the beat folder",
    "out_dir": "folder receiving the morphing beats and the tables",
    "max_reference_beats": "beats sampled for the median and SD beats",
    "max_z_distance": "drop beats farther than this from the median beat (z-distance)",
    "real_flags": "exclude on the real lbbb/dltwv flags (--no-real-flags: the published "
                  "all-False LBBB/deltawave placeholders)",
    "exclude_missing_intervals": "also exclude ECGs whose QTcB, QTcF or RR interval is missing "
                                 "(the published code kept them)",
    "seed": "seed of the reference-beat sample",
    "n_jobs": "worker processes (0: all cores, 1: in-process)",
}


@script_main
def main(argv=None):
    args = script_parser(__doc__, globals(), argv, help=HELP, device=False).parse_args(argv)
    create_morphing_beats(args.cohort, args.beats, args.out_dir,
                          segmentation_log=args.segmentation_log,
                          max_reference_beats=args.max_reference_beats,
                          max_z_distance=args.max_z_distance, real_flags=args.real_flags,
                          exclude_missing_intervals=args.exclude_missing_intervals,
                          seed=args.seed, n_jobs=args.n_jobs)


if __name__ == "__main__":
    raise SystemExit(main())
