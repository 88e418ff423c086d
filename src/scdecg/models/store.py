"""Model folders: ``config.json`` (architecture, outputs, statistics, ...) + ``best.pt``.

``best.pt`` holds tensors only (``{"model": state_dict}`` plus the architecture as a JSON
string, see :func:`scdecg.io.save_checkpoint`), so it loads with ``weights_only=True``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import PipelineError
from ..io import PathLike, load_checkpoint, read_json, save_checkpoint, write_json
from .risk import Architecture, RiskModel, build_model

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "best.pt"


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
        raise PipelineError(f"{source}: weights do not fit this model configuration ({problem})")
    model.load_state_dict(state)


def save_trained(folder: PathLike, model: RiskModel, config: dict[str, Any],
                 state: dict[str, torch.Tensor] | None = None) -> None:
    """Write ``best.pt`` (``state`` or the model's current weights) and ``config.json``."""
    folder = Path(folder)
    state = model.state_dict() if state is None else state
    arch = model.arch.to_dict()
    save_checkpoint(folder / WEIGHTS_FILE, {"model": {k: v.detach().cpu() for k, v in state.items()}},
                    {"architecture": arch})
    write_json({**config, "architecture": arch, "outputs": list(model.outputs)},
               folder / CONFIG_FILE)


def load_trained(folder: PathLike, device: str | torch.device = "cpu") -> tuple[RiskModel, dict]:
    """Rebuild the model of a model folder, load its best weights, return ``(model, config)``.

    The model is in eval mode on ``device``; ``config["outputs"]`` lists its outputs in
    head order.
    """
    folder = Path(folder)
    config = read_json(folder / CONFIG_FILE)
    if "architecture" not in config:
        raise PipelineError(f"{folder / CONFIG_FILE}: no 'architecture' entry")
    model = build_model(config["architecture"])
    tensors, saved = load_checkpoint(folder / WEIGHTS_FILE)
    if saved.get("architecture") != config["architecture"]:
        differ = sorted(k for k in set(saved.get("architecture", {})) | set(config["architecture"])
                        if saved.get("architecture", {}).get(k) != config["architecture"].get(k))
        raise PipelineError(f"{folder}: best.pt was saved for another configuration "
                            f"(differs in {', '.join(differ)})")
    if "model" not in tensors:
        raise PipelineError(f"{folder / WEIGHTS_FILE}: no 'model' weights")
    load_state_checked(model, tensors["model"], folder / WEIGHTS_FILE)
    return model.to(device).eval(), config


__all__ = ["Architecture", "CONFIG_FILE", "WEIGHTS_FILE", "load_state_checked", "load_trained",
           "save_trained", "state_dict_mismatch"]
