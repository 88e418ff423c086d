"""Training the risk models: data, NaN-masked losses, the fit loop, metrics, splits and
data-parallel helpers. Scripts call :mod:`scdecg.training.runs`."""
from .data import SignalDataset, build_dataset, fit_stats, zscore
from .distributed import Context
from .loop import FitResult, FitSettings, fit, predict_logits
from .losses import masked_loss
from .metrics import output_metrics, r_squared, roc_auc
from .splits import patient_split

__all__ = ["Context", "FitResult", "FitSettings", "SignalDataset", "build_dataset", "fit",
           "fit_stats", "masked_loss", "output_metrics", "patient_split", "predict_logits",
           "r_squared", "roc_auc", "zscore"]
