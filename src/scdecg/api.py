"""What a researcher calls from Python: load a trained model, predict, measure aVL, plot.

The functions work on arrays in millivolts, leads in :data:`scdecg.constants.LEADS` order
(I, II, III, aVR, aVL, aVF, V1-V6), 500 Hz: 10-s ECGs ``(n, 12, 5000)`` for a 10-s model,
beats ``(n, 12, 300)`` (R-peak at sample 100) for a beat model. Files in ``10_sec_ecgs/`` are
in microvolts: divide them by 1000.

Examples
--------
>>> import numpy as np, scdecg
>>> model = scdecg.load_model("modelfits_ecg/ntuh_scd_model_demo")          # doctest: +SKIP
>>> ecg = np.load("10_sec_ecgs/some_id.npy") / 1000.0                      # doctest: +SKIP
>>> scdecg.predict_risk(model, ecg[None], age=[63], female=[1])["scd1"]     # doctest: +SKIP
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .constants import FS, N_LEADS
from .errors import PipelineError

CLASSIFICATION = "classification"


@dataclass
class TrainedModel:
    """A trained 10-s or beat model and its configuration (from :func:`load_model`).

    Attributes
    ----------
    network : torch.nn.Module
        The network in eval mode, fused for inference.
    config : dict
        The model folder's ``config.json`` (outputs, covariates, statistics, training run).
    folder : pathlib.Path
        Where the model was loaded from.
    """

    network: Any
    config: dict
    folder: Path

    @property
    def outputs(self) -> list[str]:
        """Output names, in head order."""
        return list(self.config["outputs"])

    @property
    def covariates(self) -> list[str]:
        """Covariates the model takes beside the signal (e.g. ``age``, ``female``)."""
        return list(self.config["covariates"])

    @property
    def length(self) -> int:
        """Samples the network reads (5000 for a 10-s model, 300 for a beat model)."""
        return int(self.config["architecture"]["length"])


def load_model(folder: str | Path, device: str = "cpu") -> TrainedModel:
    """Load a trained model folder (``modelfits_ecg/<name>`` or ``modelfits_beat/<name>``).

    Parameters
    ----------
    folder : str or pathlib.Path
        A folder written by ``x01_train_10s_ecg.py`` or ``x02_train_beats.py`` (holds
        ``best.pt`` and ``config.json``).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.

    Returns
    -------
    TrainedModel

    Raises
    ------
    scdecg.errors.PipelineError
        When the folder holds no trained model or its weights do not fit its configuration.

    Examples
    --------
    >>> model = load_model("modelfits_ecg/ntuh_scd_model_demo")  # doctest: +SKIP
    >>> model.outputs[:4]                                        # doctest: +SKIP
    ['scd3mo', 'scd6mo', 'scd1', 'scd2']
    """
    from .cli import resolve_device
    from .models import load_trained
    from .models.inference import fuse_for_inference

    if not isinstance(folder, (str, os.PathLike)):
        raise PipelineError(f"folder: a {type(folder).__name__}, expected the path of a "
                            "trained model folder")
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise PipelineError(f"{folder}: no trained model here (no config.json)")
    network, config = load_trained(folder, resolve_device(device))
    return TrainedModel(network=fuse_for_inference(network), config=config, folder=folder)


def predict_risk(model: TrainedModel, signals_mv: np.ndarray,
                 covariates: Mapping[str, Sequence[float]] | pd.DataFrame | None = None,
                 batch_size: int = 256, **covariate_values: Sequence[float]) -> pd.DataFrame:
    """Predict every output of ``model`` for a batch of ECGs (or beats) in millivolts.

    The signals go through the model's own preprocessing (e.g. each lead's mode subtracted)
    and its first ``model.length`` samples are used, as ``x03_predict.py`` does; covariates
    are z-scored with the training statistics stored in the model.

    Parameters
    ----------
    model : TrainedModel
        From :func:`load_model`.
    signals_mv : numpy.ndarray
        ``(n, 12, samples)`` in mV, leads in LEADS order, 500 Hz; one ``(12, samples)`` ECG is
        taken as ``n = 1``.
    covariates : mapping or pandas.DataFrame, optional
        One value per ECG for each of ``model.covariates``; they may also be passed as keyword
        arguments (``age=[63], female=[1]``).
    batch_size : int
        ECGs per forward pass.

    Returns
    -------
    pandas.DataFrame
        One row per ECG, one column per output: the predicted probability for classification
        outputs (e.g. ``scd1``), the prediction in the original units for regression outputs.

    Examples
    --------
    >>> risk = predict_risk(model, ecgs_mv, age=[63, 71], female=[1, 0])  # doctest: +SKIP
    >>> risk["scd1"]                                                      # doctest: +SKIP
    """
    from .signals import preprocess
    from .training.data import fit_to, unzscore, zscore
    from .training.distributed import Context
    from .training.loop import predict_logits

    if not isinstance(model, TrainedModel):
        raise PipelineError(f"model: a {type(model).__name__}, expected the TrainedModel that "
                            "scdecg.load_model returns")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
            or batch_size < 1:
        raise PipelineError(f"batch_size: {batch_size!r}, expected a whole number, 1 or more")
    x = _numbers(signals_mv, "signals", np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1] != N_LEADS or x.shape[2] < 1 or len(x) == 0:
        raise PipelineError(f"signals: shape {x.shape}, expected (n, {N_LEADS}, samples) in mV "
                            "with n of 1 or more")
    if not np.isfinite(x).all():
        raise PipelineError(f"signals: {int((~np.isfinite(x)).sum())} NaN or infinite samples")
    if covariates is not None and not isinstance(covariates, (Mapping, pd.DataFrame)):
        raise PipelineError(f"covariates: a {type(covariates).__name__}, expected a mapping or "
                            f"DataFrame of {', '.join(model.covariates) or 'no covariates'}")
    values = dict(covariates.items() if covariates is not None else {})
    values.update(covariate_values)
    missing = [c for c in model.covariates if c not in values]
    if missing:
        raise PipelineError(f"covariate(s) {', '.join(missing)} not given (the model takes "
                            f"{', '.join(model.covariates)})")
    cov = np.column_stack([_numbers(values[c], f"covariate {c}", np.float64).reshape(-1)
                           for c in model.covariates]) if model.covariates else np.zeros((len(x), 0))
    if cov.shape[0] != len(x):
        raise PipelineError(f"covariates: {cov.shape[0]} values for {len(x)} signals")
    if not np.isfinite(cov).all():
        raise PipelineError("covariates: missing (NaN) values")
    cov = zscore(cov, model.covariates, model.config["covariate_stats"])
    if x.shape[2] < model.length:
        warnings.warn(f"signals: {x.shape[2]} samples, fewer than the model's {model.length}; "
                      "zero-padded at the end (as x03_predict.py does)", stacklevel=2)
    steps = model.config.get("preprocessing", [])
    inputs = np.stack([fit_to(preprocess(s, steps).astype(np.float32), model.length, None)
                       for s in x])
    device = next(model.network.parameters()).device
    logits = predict_logits(model.network, inputs, Context(device=device), batch_size,
                            amp=False, n_outputs=len(model.outputs), covariates=cov)
    logits = unzscore(logits, model.outputs, model.config.get("target_stats", {}))
    types = model.config.get("output_types") or [CLASSIFICATION] * len(model.outputs)
    frame = pd.DataFrame(logits, columns=model.outputs)
    for name, kind in zip(model.outputs, types):
        if kind == CLASSIFICATION:
            frame[name] = 1.0 / (1.0 + np.exp(-frame[name]))
    return frame


def _numbers(value: Any, what: str, dtype) -> np.ndarray:
    """``value`` as a real ``dtype`` array; one PipelineError naming ``what`` otherwise."""
    try:
        array = np.asarray(value)
        if array.dtype.kind in "USVcMm":  # text, bytes, complex, dates: not converted
            raise TypeError(f"holds {array.dtype} values")
        return array.astype(dtype)
    except (TypeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PipelineError(f"{what}: not an array of real numbers ({first})") from None


def avl_biomarker(ecg_mv: np.ndarray) -> dict[str, Any]:
    """The aVL R→S slope features of one 10-s ECG (x06's definition), with status and reason.

    Parameters
    ----------
    ecg_mv : numpy.ndarray
        ``(12, samples)`` in mV, leads in LEADS order, 500 Hz.

    Returns
    -------
    dict
        ``aVL_rs_diff``, ``aVL_rs_diff_2`` (NaN when they cannot be measured), ``status``
        (``"ok"``, ``"partial"`` or ``"failed"``), ``reason``, ``n_beats``.

    Examples
    --------
    >>> avl_biomarker(ecg_mv)["aVL_rs_diff"]  # doctest: +SKIP
    """
    from .features import avl_features

    out = avl_features(np.asarray(ecg_mv))
    return {"aVL_rs_diff": out.rs_diff, "aVL_rs_diff_2": out.rs_diff_2, "status": out.status,
            "reason": out.reason, "n_beats": out.n_beats}


def plot_ecg(ecg_mv: np.ndarray, title: str = "", markers: bool = True):
    """Draw one ECG on ECG paper (x08's layout); returns a matplotlib Figure.

    Parameters
    ----------
    ecg_mv : numpy.ndarray
        ``(12, samples)`` in mV, leads in LEADS order, 500 Hz.
    title : str
        Printed above the tracing.
    markers : bool
        Mark the R-peaks and the aVL R and S points that the biomarker uses.

    Returns
    -------
    matplotlib.figure.Figure
        Save it with ``fig.savefig("ecg.png", dpi=200)``.

    Examples
    --------
    >>> plot_ecg(ecg_mv, title="my ECG").savefig("ecg.png")  # doctest: +SKIP
    """
    from .features import HALF_WINDOW, avl_features
    from .plotting import plot_ecg as draw

    ecg = _numbers(ecg_mv, "ecg_mv", np.float64)
    if ecg.ndim != 2 or ecg.shape[0] != N_LEADS or ecg.shape[1] < FS:
        raise PipelineError(f"ecg_mv: shape {ecg.shape}, expected ({N_LEADS}, samples) in mV, "
                            f"at least {FS} samples (1 s at {FS} Hz)")
    if not markers:
        return draw(ecg, title=title)
    feats = avl_features(ecg)
    marks = {"rpeaks": feats.rpeaks}
    if feats.r_index >= 0:  # median-beat indices -> record samples, beat by beat (as x08)
        start = feats.used_rpeaks - HALF_WINDOW
        marks.update(avl_r=start + feats.r_index, avl_s=start + feats.s_index)
    return draw(ecg, title=title, **marks)


__all__ = ["TrainedModel", "load_model", "predict_risk", "avl_biomarker", "plot_ecg"]
