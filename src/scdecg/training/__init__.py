"""Training the risk models: data, NaN-masked losses, the fit loop, metrics, splits and
data-parallel helpers. Scripts call :mod:`scdecg.training.runs`.

The names below are imported on first use, so that a torch-free submodule
(``scdecg.training.history``, ``.splits``, ``.metrics``) can be imported without torch.
"""
from importlib import import_module

_EXPORTS = {"SignalDataset": ".data", "build_dataset": ".data", "fit_stats": ".data",
            "zscore": ".data", "Context": ".distributed", "FitResult": ".loop",
            "FitSettings": ".loop", "fit": ".loop", "predict_logits": ".loop",
            "masked_loss": ".losses", "output_metrics": ".metrics", "r_squared": ".metrics",
            "roc_auc": ".metrics", "patient_split": ".splits"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
