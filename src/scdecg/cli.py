"""Argument parsing shared by the numbered scripts.

Each script keeps its defaults as named constants at the top and hands them to
:func:`build_parser`, so every constant is also a command-line option::

    DATA_ROOT = "arrest-ntuh-ecg/v1"
    N_JOBS = 2
    parser = build_parser(__doc__, data_root=DATA_ROOT, n_jobs=N_JOBS)

``data_root`` becomes ``--data-root``; the option's type follows the default's type
(``bool`` defaults become ``--flag/--no-flag``; ``None`` defaults take a string).
``spellings={"model_name": "--model_name"}`` gives an option a second spelling with the same
meaning (the published scripts' underscore spellings).
"""
from __future__ import annotations

import argparse
import os
import random
from typing import Any, Sequence

import numpy as np

PROFILES = ("paper", "demo")
DEVICES = ("auto", "cpu", "cuda")


def build_parser(description: str | None, help: dict[str, str] | None = None,
                 spellings: dict[str, str] | None = None,
                 **defaults: Any) -> argparse.ArgumentParser:
    """A parser with one ``--option`` per keyword default (see module docstring)."""
    parser = argparse.ArgumentParser(
        description=(description or "").strip().splitlines()[0] if description else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_options(parser, help=help, spellings=spellings, **defaults)
    return parser


def add_options(parser: argparse.ArgumentParser, help: dict[str, str] | None = None,
                spellings: dict[str, str] | None = None, **defaults: Any) -> None:
    help, spellings = help or {}, spellings or {}
    unknown = sorted(set(spellings) - set(defaults))
    if unknown:
        raise ValueError(f"spellings for options that do not exist: {unknown}")
    for name, default in defaults.items():
        flags = ["--" + name.replace("_", "-")]
        if name in spellings and spellings[name] not in flags:
            flags.append(spellings[name])
        text = help.get(name) or "(default: %(default)s)"
        if isinstance(default, bool):
            parser.add_argument(*flags, dest=name, default=default, help=text,
                                action=argparse.BooleanOptionalAction)
        elif isinstance(default, (list, tuple)):
            item_type = type(default[0]) if default else str
            parser.add_argument(*flags, dest=name, default=list(default), nargs="*",
                                type=item_type, help=text)
        elif default is None:
            parser.add_argument(*flags, dest=name, default=None, help=text)
        else:
            parser.add_argument(*flags, dest=name, default=default, type=type(default),
                                help=text)


def add_runtime_options(parser: argparse.ArgumentParser, *, profile: str | None = "paper",
                        device: str | None = "auto", seed: int | None = None) -> None:
    """Add ``--profile``, ``--device`` and ``--seed`` (each only when its default is given)."""
    if profile is not None:
        parser.add_argument("--profile", choices=PROFILES, default=profile,
                            help="paper: published hyperparameters; demo: small, CPU-friendly")
    if device is not None:
        parser.add_argument("--device", choices=DEVICES, default=device,
                            help="auto uses CUDA when available")
    if seed is not None:
        parser.add_argument("--seed", type=int, default=seed, help="random seed")


def resolve_device(name: str):
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU is an error."""
    import torch

    from .errors import PipelineError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PipelineError("--device cuda: no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # preprocessing scripts may run without torch installed
        return
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    return parser.parse_args(argv)
