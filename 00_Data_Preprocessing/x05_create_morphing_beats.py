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
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from scdecg.beats import (beat_files, morphing_exclusions, reference_beats, remove_stale_dirs,
                          select_morphing_beats)
from scdecg.cli import build_parser
from scdecg.errors import PipelineError, script_main
from scdecg.io import (check_names, output_dir, read_feather, remove_leftovers, run_first,
                       save_npy, write_csv)
from scdecg.parallel import imap
from scdecg.workspace import (BEAT_DISTANCES, BEATS_DIR, COVARIATE_DF, MEDIAN_BEAT, MORPH_BEATS_DIR,
                              SD_BEAT, WATERFALL)
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


def waterfall_row(step: str, kept: pd.Series, beats: pd.Series) -> dict:
    return {"step": step, "ecgs": int(kept.sum()), "beats": int(beats[kept].sum())}


@script_main
def main(argv=None):
    args = build_parser(__doc__, help=HELP, cohort=COHORT, beats=BEATS,
                        segmentation_log=SEGMENTATION_LOG, out_dir=OUT_DIR,
                        max_reference_beats=MAX_REFERENCE_BEATS, max_z_distance=MAX_Z_DISTANCE,
                        real_flags=REAL_FLAGS, exclude_missing_intervals=EXCLUDE_MISSING_INTERVALS,
                        seed=SEED, n_jobs=N_JOBS).parse_args(argv)
    steps = morphing_exclusions(real_flags=args.real_flags,
                                exclude_missing_intervals=args.exclude_missing_intervals)
    cohort = read_feather(args.cohort, ["studyId", *dict.fromkeys(s.column for s in steps)],
                          step="x02")
    cohort["studyId"] = cohort["studyId"].astype(str)
    check_names(cohort["studyId"], "studyId", args.cohort)
    log_path = Path(args.beats) / args.segmentation_log
    if not log_path.exists():
        raise PipelineError(f"{log_path}: file not found ({run_first('x04')})")
    log = pd.read_csv(log_path, dtype={"studyId": str}).set_index("studyId")
    missing = cohort.loc[~cohort["studyId"].isin(log.index), "studyId"]
    if len(missing):
        raise PipelineError(f"{log_path}: no row for studyId {missing.iloc[0]!r} "
                            f"({len(missing)} cohort ECGs missing; rerun x04)")
    n_beats = log.loc[cohort["studyId"], "n_kept"].reset_index(drop=True)

    kept = pd.Series(True, index=cohort.index)
    rows = [waterfall_row("all ECGs (beats from x04)", kept, n_beats)]
    for step in steps:
        kept &= ~step.excluded(cohort[step.column])
        rows.append(waterfall_row(f"exclude {step.step}", kept, n_beats))
    kept &= n_beats > 0
    rows.append(waterfall_row("ECGs with at least one beat", kept, n_beats))
    selected = cohort.loc[kept, "studyId"].tolist()

    out = output_dir(args.out_dir)
    remove_leftovers(out)
    paths = [p for sid in selected for _, p in beat_files(Path(args.beats) / sid)]
    if len(paths) != int(n_beats[kept].sum()):
        raise PipelineError(f"{args.beats}/: {len(paths)} beat files for the selected ECGs, but "
                            f"{log_path} lists {int(n_beats[kept].sum())} (rerun x04)")
    if not paths:
        raise PipelineError(f"{args.cohort}: no ECG passes the morphing exclusions with beats "
                            f"(see the waterfall above)\n" + pd.DataFrame(rows).to_string(index=False))
    median, sd = reference_beats(paths, args.max_reference_beats, args.seed)
    save_npy(median.astype(np.float32), out / MEDIAN_BEAT)
    save_npy(sd.astype(np.float32), out / SD_BEAT)

    work = functools.partial(select_morphing_beats, source_root=args.beats, target_root=str(out),
                             median=median, sd=sd, max_distance=args.max_z_distance)
    distances = pd.DataFrame([row for ecg_rows in imap(work, selected, n_jobs=args.n_jobs,
                                                        desc="x05 morphing beats")
                              for row in ecg_rows],
                             columns=["studyId", "beat_file", "z_distance", "kept"])
    per_ecg = distances.groupby("studyId")["kept"].sum()
    rows.append({"step": f"exclude beats with z-distance > {args.max_z_distance:g}",
                 "ecgs": int((per_ecg > 0).sum()), "beats": int(per_ecg.sum())})
    waterfall = pd.DataFrame(rows)
    waterfall["ecgs_removed"] = (-waterfall["ecgs"].diff()).fillna(0).astype(int)
    waterfall["beats_removed"] = (-waterfall["beats"].diff()).fillna(0).astype(int)
    stale = remove_stale_dirs(out, set(per_ecg.index[per_ecg > 0]))
    write_csv(distances, out / BEAT_DISTANCES)
    write_csv(waterfall, out / WATERFALL)

    print(waterfall.to_string(index=False))
    print(f"[x05] median beat from {min(len(paths), args.max_reference_beats)} of {len(paths)} "
          f"beats; z-distance median {distances['z_distance'].median():.1f}, "
          f"{int((~distances['kept']).sum())} beats above {args.max_z_distance:g}")
    if stale:
        print(f"[x05] removed {stale} stale folder(s) from {out}/")
    print(f"[x05] wrote {int(per_ecg.sum())} beats of {int((per_ecg > 0).sum())} ECGs to {out}/")


if __name__ == "__main__":
    raise SystemExit(main())
