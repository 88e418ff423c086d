"""Model folders: the one store of every trained network (risk models and the DR-VAE).

A model folder holds ``config.json`` (what the model is and how it was trained), a weights
file of tensors only (``{"model": state_dict}`` plus a JSON copy of what the weights were
trained for), and optionally named float arrays (``<name>.npy``).
:func:`save_model_folder`, :func:`read_model_config`, :func:`load_model_state` and
:func:`read_model_arrays` write and read that layout; :func:`save_trained` /
:func:`load_trained` (risk models, ``best.pt``) and :func:`scdecg.vae.save_vae` /
:func:`scdecg.vae.load_vae` (``vae.pt`` and the latent statistics) build on them.

For a risk model, ``best.pt`` holds tensors only (``{"model": state_dict}`` plus, as a JSON string, what the
weights were trained for: architecture, output names and types, covariates, preprocessing and
the covariate and target statistics; see :func:`scdecg.io.save_checkpoint`), so it loads with
``weights_only=True``. Loading checks that ``config.json`` agrees with ``best.pt`` on all of
these and that the statistics can be used, so an edited or mixed-up folder is refused with
one line instead of giving mislabelled or NaN predictions.
"""
from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import PipelineError
import numpy as np

from ..io import (PathLike, load_checkpoint, read_array, read_json, save_checkpoint, save_npy,
                  write_json)
from .risk import Architecture, RiskModel, build_model
from ..workspace import CONFIG_FILE, WEIGHTS_FILE

#: Entries of config.json that best.pt carries too (what the weights were trained for).
TRAINED_FOR = ("outputs", "output_types", "covariates", "covariate_stats", "target_stats",
               "preprocessing")


def state_dict_mismatch(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor],
                        limit: int = 6) -> str:
    """A one-line description of missing/unexpected keys and shape differences ('' if none)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k} {tuple(found[k].shape)} vs expected {tuple(v.shape)}"
              for k, v in expected.items() if k in found and found[k].shape != v.shape]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{label}: {', '.join(items[:limit])}{more}")
    return "; ".join(parts)


def load_state_checked(model: nn.Module, state: dict[str, torch.Tensor], source: PathLike) -> None:
    """``model.load_state_dict(state)`` with a one-line error naming what differs."""
    problem = state_dict_mismatch(model.state_dict(), state)
    if problem:
        raise PipelineError(f"{source}: weights do not match this model configuration "
                            f"({problem})")
    for key, value in state.items():  # NaN weights would give NaN outputs and exit 0
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise PipelineError(f"{source}: weights {key} hold "
                                f"{int((~torch.isfinite(value)).sum())} NaN or infinite "
                                "value(s); retrain the model or restore the file")
    model.load_state_dict(state)


# ----------------------------------------------------------------------------- any model
def save_model_folder(folder: PathLike, weights_file: str, state: dict[str, torch.Tensor],
                      config: dict[str, Any], carried: dict[str, Any],
                      arrays: dict[str, np.ndarray] | None = None) -> None:
    """Write a model folder: ``weights_file`` (``state`` on the CPU, with ``carried`` as its
    JSON record), each of ``arrays`` as ``<name>.npy`` (float32) and ``config.json`` last."""
    folder = Path(folder)
    save_checkpoint(folder / weights_file,
                    {"model": {k: v.detach().cpu() for k, v in state.items()}}, carried)
    for name, value in (arrays or {}).items():
        save_npy(np.asarray(value, dtype=np.float32), folder / f"{name}.npy")
    write_json(config, folder / CONFIG_FILE)


def read_model_config(folder: PathLike) -> dict[str, Any]:
    """A model folder's ``config.json``, which must be a JSON object."""
    source = Path(folder) / CONFIG_FILE
    config = read_json(source)
    if not isinstance(config, dict):
        raise PipelineError(f"{source}: not a JSON object")
    return config


def load_model_state(model: nn.Module, tensors: dict[str, Any], source: PathLike) -> None:
    """Load the ``model`` entry of a weights file's ``tensors`` into ``model`` (one line
    naming what is missing or differs)."""
    if "model" not in tensors:
        raise PipelineError(f"{source}: no 'model' weights")
    load_state_checked(model, tensors["model"], source)


def read_model_arrays(folder: PathLike, names: tuple[str, ...], step: str,
                      shape: tuple[int | None, ...]) -> dict[str, np.ndarray]:
    """The arrays ``<name>.npy`` saved with a model, each of ``shape`` with finite values
    (PipelineError naming the file and the ``step`` that writes it when one is missing,
    unreadable, of another shape or not finite)."""
    return {name: read_array(Path(folder) / f"{name}.npy", shape, step, finite=True)
            for name in names}


# ----------------------------------------------------------------------------- risk models
def save_trained(folder: PathLike, model: RiskModel, config: dict[str, Any],
                 state: dict[str, torch.Tensor] | None = None) -> None:
    """Write ``best.pt`` (``state`` or the model's current weights) and ``config.json``."""
    state = model.state_dict() if state is None else state
    full = {**config, "architecture": model.arch.to_dict(), "outputs": list(model.outputs)}
    carried = {k: full[k] for k in ("architecture", *TRAINED_FOR) if k in full}
    save_model_folder(folder, WEIGHTS_FILE, state, full, carried)


def check_architecture(arch: Any, source: PathLike) -> None:
    """Each architecture entry has the type of its default (``n_blocks: "ten"`` is refused)."""
    if not isinstance(arch, dict):
        raise PipelineError(f"{source}: 'architecture' is not a JSON object")
    if not isinstance(arch.get("outputs"), list):
        raise PipelineError(f"{source}: architecture.outputs is not a list of names")
    defaults = Architecture(outputs=["x"])
    for f in fields(Architecture):
        if f.name not in arch:
            continue
        value, default = arch[f.name], getattr(defaults, f.name)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif isinstance(default, str):
            ok = isinstance(value, str)
        else:
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not ok:
            raise PipelineError(f"{source}: architecture.{f.name} is {value!r}, expected "
                                f"{'a list of names' if isinstance(default, list) else type(default).__name__}")


def check_stats(stats: Any, columns: list[str], key: str, source: PathLike) -> None:
    """Every column in ``columns`` has a finite mean and a finite positive sd in ``stats``."""
    if not isinstance(stats, dict):
        raise PipelineError(f"{source}: '{key}' is not a JSON object")
    for column in columns:
        entry = stats.get(column)
        if not isinstance(entry, dict):
            raise PipelineError(f"{source}: {key} has no entry for {column!r}")
        mean, sd = entry.get("mean"), entry.get("sd")
        if not (isinstance(mean, (int, float)) and math.isfinite(mean)):
            raise PipelineError(f"{source}: {key}.{column}.mean is {mean!r}, expected a number")
        if not (isinstance(sd, (int, float)) and math.isfinite(sd) and sd > 0):
            raise PipelineError(f"{source}: {key}.{column}.sd is {sd!r}, expected a positive number")


def require_entries(config: dict[str, Any], keys: tuple[str, ...], source: PathLike) -> None:
    """Raise one line naming the entries of ``config`` that are absent."""
    missing = [k for k in keys if k not in config]
    if missing:
        raise PipelineError(f"{source}: no {', '.join(repr(k) for k in missing)} entry "
                            "(retrain the model, or restore the folder's config.json)")


def check_preprocessing(steps: Any, source: PathLike) -> None:
    """Refuse, in one line naming ``source``, a ``preprocessing`` entry that is not a list of
    the known steps (:data:`scdecg.signals.PREPROCESSORS`)."""
    from ..signals import PREPROCESSORS

    if not isinstance(steps, list) or not all(isinstance(x, str) for x in steps):
        raise PipelineError(f"{source}: 'preprocessing' is {steps!r}, expected a list of step "
                            f"names ({', '.join(PREPROCESSORS)})")
    unknown = [x for x in steps if x not in PREPROCESSORS]
    if unknown:
        raise PipelineError(f"{source}: unknown preprocessing step {unknown[0]!r}; known: "
                            f"{', '.join(PREPROCESSORS)} (retrain the model, or restore the "
                            "folder's config.json)")


def load_trained(folder: PathLike, device: str | torch.device = "cpu") -> tuple[RiskModel, dict]:
    """Rebuild the model of a model folder, load its best weights, return ``(model, config)``.

    The model is in eval mode on ``device``; ``config["outputs"]`` lists its outputs in
    head order.
    """
    folder = Path(folder)
    source = folder / CONFIG_FILE
    config = read_model_config(folder)
    require_entries(config, ("architecture", "outputs"), source)
    check_architecture(config["architecture"], source)
    if config["outputs"] != config["architecture"]["outputs"]:
        raise PipelineError(f"{source}: 'outputs' {config['outputs']} differ from the "
                            f"architecture's outputs {config['architecture']['outputs']}")
    covariates = config.get("covariates") or []
    if "covariate_stats" in config:
        check_stats(config["covariate_stats"], covariates, "covariate_stats", source)
    if "target_stats" in config:
        check_stats(config["target_stats"], list(config["target_stats"]), "target_stats", source)
    check_preprocessing(config.get("preprocessing", []), source)
    tensors, saved = load_checkpoint(folder / WEIGHTS_FILE)
    differ = sorted(k for k in TRAINED_FOR if k in saved and saved[k] != config.get(k))
    if differ:
        raise PipelineError(f"{folder}: config.json does not match what best.pt was trained "
                            f"for (differs in {', '.join(differ)})")
    model = build_model(config["architecture"])
    if saved.get("architecture") != config["architecture"]:
        differ = sorted(k for k in set(saved.get("architecture", {})) | set(config["architecture"])
                        if saved.get("architecture", {}).get(k) != config["architecture"].get(k))
        raise PipelineError(f"{folder}: best.pt was saved for another configuration "
                            f"(differs in {', '.join(differ)})")
    load_model_state(model, tensors, folder / WEIGHTS_FILE)
    return model.to(device).eval(), config


__all__ = ["Architecture", "CONFIG_FILE", "WEIGHTS_FILE", "load_model_state",
           "load_state_checked", "load_trained", "read_model_arrays", "read_model_config",
           "save_model_folder", "save_trained", "state_dict_mismatch"]
