"""scdecg: shared code of the ECG sudden-cardiac-death reproduction.

The numbered scripts under ``00_Data_Preprocessing/``, ``01_Predictive_Model/`` and
``02_Morphing/`` are thin: constants, argument parsing and calls into this package.
From Python (a notebook), the package offers :func:`load_model`, :func:`predict_risk`,
:func:`avl_biomarker` and :func:`plot_ecg` (see :mod:`scdecg.api`).
"""

__version__ = "0.1.0"

#: The Python API (:mod:`scdecg.api`), imported on first use so that ``import scdecg`` stays
#: light for the preprocessing scripts.
_API = ("TrainedModel", "load_model", "predict_risk", "avl_biomarker", "plot_ecg")
__all__ = list(_API)


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'scdecg' has no attribute {name!r}")
