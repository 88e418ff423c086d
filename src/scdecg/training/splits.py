"""Patient-level train / validation / lockbox splits."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import PipelineError
from ..workspace import SPLIT_NAMES

SPLITS = SPLIT_NAMES


def patient_split(pt_ids: pd.Series, train_frac: float, val_frac: float, seed: int) -> pd.Series:
    """Assign every row to ``train``/``val``/``lockbox`` by patient.

    Unique patient ids are sorted, permuted with ``numpy.random.default_rng(seed)``, and the
    first ``train_frac`` go to training, the next ``val_frac`` to validation, the rest to the
    untouched lockbox. All ECGs of a patient share one part. Returns labels aligned with
    ``pt_ids``.
    """
    if not (0 < train_frac and 0 < val_frac and train_frac + val_frac <= 1):
        raise PipelineError(f"split fractions train={train_frac}, val={val_frac} must be "
                            f"positive and sum to at most 1")
    patients = np.sort(pt_ids.astype(str).unique())
    order = np.random.default_rng(seed).permutation(len(patients))
    n_train = int(round(train_frac * len(patients)))
    n_val = int(round(val_frac * len(patients)))
    part = np.empty(len(patients), dtype=object)
    part[order[:n_train]] = "train"
    part[order[n_train:n_train + n_val]] = "val"
    part[order[n_train + n_val:]] = "lockbox"
    lookup = dict(zip(patients, part))
    return pt_ids.astype(str).map(lookup).rename("split")
