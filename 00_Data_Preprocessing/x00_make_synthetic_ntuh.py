"""Write a seeded synthetic arrest-ntuh-ecg v1 tree (the pipeline's default input).

Writes the NTUH layout under --data-root (tables, stacked int16 waveforms with the NTUH
derived-lead gain fault) and the ground truth as synthetic_truth.csv in --data-root's parent
folder. The same arguments give byte-identical files. See scdecg.synthetic for the model.
"""
from __future__ import annotations

import sys
from pathlib import Path

from scdecg.cli import build_parser
from scdecg.errors import PipelineError, script_main
from scdecg.synthetic import CohortDesign, write_synthetic_ntuh
from scdecg.workspace import DEFAULT_DATA_ROOT, TRUTH_FILE

DATA_ROOT = DEFAULT_DATA_ROOT
N_PATIENTS = 3000            # NTUH itself has about 10,950 patients and 18,000 ECGs
SEED = 0
STUDY_FRACTION = CohortDesign.study_fraction      # patients with an arrest
CARDIAC_FRACTION = CohortDesign.cardiac_fraction  # arrests of cardiac cause
FAULT_FRACTION = CohortDesign.fault_fraction      # ECGs with an injected recording fault
CHUNK_SIZE = 256             # ECGs simulated per write to the stacked arrays
PROGRESS = True

HELP = {
    "data_root": "folder to write the NTUH tree into (truth goes to its parent)",
    "n_patients": "number of patients (arrest cases plus controls)",
    "seed": "random seed; equal seeds give byte-identical files",
    "study_fraction": "fraction of patients in the arrest (study) group",
    "cardiac_fraction": "fraction of arrests with a cardiac cause",
    "fault_fraction": "fraction of ECGs with one injected recording fault",
    "chunk_size": "ECGs per chunk written to each waveform-rhythm.npy",
    "progress": "show a progress bar",
}


@script_main
def main(argv=None):
    args = build_parser(__doc__, help=HELP, data_root=DATA_ROOT, n_patients=N_PATIENTS, seed=SEED,
                        study_fraction=STUDY_FRACTION, cardiac_fraction=CARDIAC_FRACTION,
                        fault_fraction=FAULT_FRACTION, chunk_size=CHUNK_SIZE,
                        progress=PROGRESS).parse_args(argv)
    for name in ("study_fraction", "cardiac_fraction", "fault_fraction"):
        value = getattr(args, name)
        if not 0.0 <= value <= 1.0:
            raise PipelineError(f"--{name.replace('_', '-')} {value}: must lie in [0, 1]")
    if args.chunk_size < 1:
        raise PipelineError(f"--chunk-size {args.chunk_size}: must be at least 1")
    design = CohortDesign(study_fraction=args.study_fraction,
                          cardiac_fraction=args.cardiac_fraction,
                          fault_fraction=args.fault_fraction)
    truth = write_synthetic_ntuh(args.data_root, args.n_patients, args.seed, design,
                                 chunk_size=args.chunk_size, progress=args.progress)
    stored = truth["npy_index"].ge(0).sum()
    print(f"[x00] {truth['patient_ngsci_id'].nunique()} patients, {len(truth)} ECG rows "
          f"({stored} with waveforms) under {args.data_root}; "
          f"{int(truth['selected'].sum())} ECGs selectable, {int(truth['scd1'][truth['selected']].sum())} "
          f"scd1 cases; {int((truth['fault'].fillna('') != '').sum())} with faults; "
          f"truth: {Path(args.data_root).parent / TRUTH_FILE}", file=sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
