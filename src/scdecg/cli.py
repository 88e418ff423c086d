"""Argument parsing shared by the numbered scripts.

Each script keeps its defaults as named constants at the top and hands them to
:func:`build_parser`, so every constant is also a command-line option::

    DATA_ROOT = "arrest-ntuh-ecg/v1"
    N_JOBS = 2
    parser = build_parser(__doc__, data_root=DATA_ROOT, n_jobs=N_JOBS)

``data_root`` becomes ``--data-root``; the option's type follows the default's type
(``bool`` defaults become ``--flag/--no-flag``; ``None`` defaults take a string).

Numbers are checked where they enter, in one place (:func:`number_type`): no numeric option
takes a negative value or NaN; counts in :data:`COUNTS` (batch sizes, epochs, chunk sizes,
...) must be at least 1 unless their default is 0 (where 0 means "automatic"); shares in
:data:`FRACTIONS` lie in [0, 1] ([0, 1) for :data:`BELOW_ONE`); scales in :data:`POSITIVE`
are above 0; the rates, weights and scales in :data:`FINITE` are finite; low-pass cutoffs
(:data:`CUTOFFS`) are 0 (no filter) or lie in [0.5 Hz, FS/2); seeds are whole numbers in
[0, 2**32); an option with a limit (:data:`MAXIMA`, or a script's own
``maxima={"lr": 1e3}``) lies above 0 and at most the limit. A refused value stops the script
with argparse's one ``error:`` line (exit 2) naming the option. Options that name one file
or folder inside a fixed folder (:data:`NAMES`: ``--model-name``, ``--name``, ...) take a
plain name, never a path (:func:`name_type`). List options in :data:`CHOICES`
(``--preprocessing``) take only their known items.

``spellings={"model_name": "--model_name"}`` gives an option a second spelling with the same
meaning (the published scripts' underscore spellings).

Scripts with profiles (x01, x02, s08, s10) name each constant once and let
:func:`script_parser` collect them (:func:`script_constants`) and layer the defaults:
the script's constants (the published values) < the ``--run`` preset < the ``--profile``
overrides < the command line. ``--help`` shows the values that will run under the chosen
profile and run::

    EPOCHS = 100
    PROFILES = {"paper": {}, "demo": {"epochs": 30}}
    args = script_parser(__doc__, globals(), argv, profiles=PROFILES).parse_args(argv)
"""
from __future__ import annotations

import argparse
import ast
import math
import os
import random
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .constants import FS
from .signals import PREPROCESSORS

PROFILES = ("paper", "demo")
DEVICES = ("auto", "cpu", "cuda")

#: Options that count something: at least 1 (unless the script's default is 0, "automatic").
COUNTS = frozenset({
    "batch_size", "eval_batch_size", "max_epochs", "epochs", "chunk_size", "dpi",
    "calibration_bins", "n_patients", "channels", "n_blocks", "rep_mp", "length",
    "lr_reduce_interval", "n_boot", "n_beats", "min_beats", "min_events", "n_examples",
    "n_samples", "max_steps", "risk_stride", "beat_stride", "max_beats",
    "max_reference_beats", "max_delineate"})
#: Counts with an upper limit: a 12-lead figure at 100,000 dpi asks for terabytes. A script
#: may give its own options limits (``maxima=`` of :func:`build_parser`/:func:`script_parser`):
#: such an option lies above 0 and at most its limit (s10's morph step ``--lr``).
MAXIMA = {"dpi": 1200}
#: Options that are shares or probabilities: within [0, 1].
FRACTIONS = frozenset({"train_frac", "val_frac", "study_fraction", "cardiac_fraction",
                       "fault_fraction", "dropout", "ci_level", "stop_quantile"})
#: Shares that must stay below 1 (a dropout of 1 drops every unit; a fault fraction of 1
#: leaves no usable ECG).
BELOW_ONE = frozenset({"dropout", "fault_fraction"})
#: Options that are scales or limits: above 0 (x03's gain fault, tolerance and amplitude
#: limit; a fault of 0 divided by zero; a learning rate or decay factor of 0 trains nothing).
#: ``--tolerance inf`` is the published x03, ``--max-abs-uv inf`` no amplitude check.
POSITIVE = frozenset({"gain_fault", "tolerance", "max_abs_uv", "lr", "lr_max", "gamma"})
#: Learning rates, decays, loss weights and the gain fault: finite (an infinite rate only
#: turns the model into NaN).
FINITE = frozenset({"lr", "lr_max", "weight_decay", "gamma", "regression_weight", "kl_alpha",
                    "beta", "gain_fault"})
#: Low-pass cutoffs in Hz: 0 (no filter) or from LOWPASS_MIN_HZ up to, not including, the
#: Nyquist frequency of the FS-Hz recordings (below 0.5 Hz the filter design is singular).
CUTOFFS = frozenset({"lowpass_hz"})
LOWPASS_MIN_HZ = 0.5
SEED_LIMIT = 2 ** 32  # NumPy's legacy seeding takes [0, 2**32)
#: Options naming one file or folder inside a fixed folder (model folders, run and log
#: names): a path ("../x", "/tmp/x", "a/b") would write outside it, so it is refused.
NAMES = frozenset({"model_name", "name", "output_name", "scd_model", "death_only_model",
                   "low_ef_model", "log_name", "segmentation_log"})
#: List options whose items come from a fixed set (argparse refuses anything else).
CHOICES = {"preprocessing": tuple(PREPROCESSORS)}


def number_type(name: str, default: int | float, maximum: int | float | None = None):
    """The argparse ``type`` of numeric option ``name`` whose script default is ``default``
    (``maximum``: the script's limit for it, else :data:`MAXIMA`'s, if any)."""
    kind = type(default)
    flag = "--" + name.replace("_", "-")
    maximum = MAXIMA.get(name) if maximum is None else maximum
    capped = False
    if name == "seed" or name.endswith("_seed"):
        low, high, what = 0, SEED_LIMIT - 1, f"a whole number from 0 to {SEED_LIMIT - 1}"
    elif name in BELOW_ONE:
        low, high, what = 0.0, 1.0, "a number from 0 to below 1"
    elif name in FRACTIONS:
        low, high, what = 0.0, 1.0, "a number from 0 to 1"
    elif name in CUTOFFS:
        low, high = LOWPASS_MIN_HZ, FS / 2
        what = (f"0 (no filter) or from {low:g} Hz to below {high:g} Hz (half the "
                f"{FS}-Hz sampling rate)")
    elif maximum is not None and kind is int:
        low, high, what, capped = 1, maximum, f"from 1 to {maximum}", True
    elif maximum is not None:  # the smallest float above 0, up to and including the limit
        low, high, capped = np.nextafter(0.0, 1.0), maximum, True
        what = f"above 0 and at most {maximum:g}"
    elif name in COUNTS and default != 0:
        low, high, what = 1, None, "at least 1"
    elif name in POSITIVE:  # the smallest float above 0 (and the largest, if finite)
        finite = name in FINITE
        low, high = np.nextafter(0.0, 1.0), np.finfo(np.float64).max if finite else None
        what = "a finite number above 0" if finite else "above 0"
    elif name in FINITE:
        low, high, what = 0, math.inf, "a finite number, 0 or more"
    else:
        low, high, what = 0, None, "0 or more"
    # high itself is refused, but for a script's limit
    below = (name in BELOW_ONE or name in CUTOFFS or name in FINITE) and not capped

    def allowed(value) -> bool:  # NaN fails every comparison
        if name in CUTOFFS and value == 0:
            return True
        return value >= low and (high is None or value < high or (not below and value == high))

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
        if not allowed(value):
            raise argparse.ArgumentTypeError(f"{text!r}: {flag} must be {what}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


def name_type(name: str, default: str):
    """The argparse ``type`` of option ``name`` (in :data:`NAMES`): one plain file or folder
    name (``scdecg.io.unsafe_name_reason``); empty only where the default is empty."""
    flag = "--" + name.replace("_", "-")

    def convert(text: str) -> str:
        from .io import unsafe_name_reason

        if text == "" and default == "":
            return text
        reason = unsafe_name_reason(text)
        if reason is not None:
            raise argparse.ArgumentTypeError(f"{text!r}: {flag} must be a plain file or folder "
                                             f"name, not a path ({reason})")
        return text

    convert.__name__ = "name"
    return convert


def build_parser(description: str | None, help: dict[str, str] | None = None,
                 spellings: dict[str, str] | None = None,
                 maxima: Mapping[str, int | float] | None = None,
                 **defaults: Any) -> argparse.ArgumentParser:
    """A parser with one ``--option`` per keyword default (see module docstring); ``maxima``:
    this script's limits of numeric options (each above 0 and at most its limit)."""
    parser = argparse.ArgumentParser(
        description=(description or "").strip().splitlines()[0] if description else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_options(parser, help=help, spellings=spellings, maxima=maxima, **defaults)
    return parser


def add_options(parser: argparse.ArgumentParser, help: dict[str, str] | None = None,
                spellings: dict[str, str] | None = None,
                maxima: Mapping[str, int | float] | None = None, **defaults: Any) -> None:
    help, spellings, maxima = help or {}, spellings or {}, maxima or {}
    for label, table in (("spellings", spellings), ("maxima", maxima)):
        unknown = sorted(set(table) - set(defaults))
        if unknown:
            raise ValueError(f"{label} for options that do not exist: {unknown}")
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
                                type=item_type, help=text, choices=CHOICES.get(name))
        elif name in NAMES and isinstance(default, (str, type(None))):
            parser.add_argument(*flags, dest=name, default=default, help=text,
                                type=name_type(name, default or ""))
        elif default is None:
            parser.add_argument(*flags, dest=name, default=None, help=text)
        elif isinstance(default, (int, float)):
            parser.add_argument(*flags, dest=name, default=default, help=text,
                                type=number_type(name, default, maxima.get(name)))
        else:
            parser.add_argument(*flags, dest=name, default=default, type=type(default),
                                help=text)


def _is_option_value(value: Any) -> bool:
    items = value if isinstance(value, (list, tuple)) else [value]
    return value is None or all(isinstance(v, (str, int, float, bool)) for v in items)


def script_constants(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """A script's option defaults: every UPPER_CASE name its own file assigns at the top level
    (in file order; imported names and ``_PRIVATE`` ones do not count) whose value is a str,
    int, float, bool, None or a list of those, keyed by the lower-case name.

    ``namespace`` is the script's ``globals()``.
    """
    tree = ast.parse(Path(namespace["__file__"]).read_text())
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        for target in targets:
            name = getattr(target, "id", "")
            if name.isupper() and not name.startswith("_") and _is_option_value(namespace[name]):
                value = namespace[name]
                constants[name.lower()] = list(value) if isinstance(value, tuple) else value
    return constants


def script_parser(description: str | None, constants: Mapping[str, Any],
                  argv: Sequence[str] | None = None, *,
                  profiles: Mapping[str, Mapping[str, Any]] | None = None,
                  runs: Mapping[str, Mapping[str, Any]] | None = None,
                  help: dict[str, str] | None = None, spellings: dict[str, str] | None = None,
                  maxima: Mapping[str, int | float] | None = None,
                  device: bool = True) -> argparse.ArgumentParser:
    """The parser of a script with profiles: one ``--option`` per constant, whose default is
    the constant overridden by the ``--run`` preset, then by the ``--profile`` values chosen
    in ``argv`` (so ``--help`` shows what will run).

    Parameters
    ----------
    description : str
        The script's ``__doc__`` (its first line describes the script).
    constants : mapping
        Option name -> published value, or the script's ``globals()`` (read with
        :func:`script_constants`).
    argv : sequence of str, optional
        The command line (default ``sys.argv[1:]``), read here only for ``--profile`` and
        ``--run``.
    profiles : mapping, optional
        Profile name -> overrides; the first is the default. Adds ``--profile``.
    runs : mapping, optional
        Run name -> overrides (applied before the profile); the first is the default. Adds
        ``--run``.
    help, spellings, maxima : dict, optional
        As in :func:`build_parser`.
    device : bool
        Add ``--device``.

    Returns
    -------
    argparse.ArgumentParser

    Examples
    --------
    >>> parser = script_parser("Train.", {"epochs": 100, "seed": 0}, ["--profile", "demo"],
    ...                        profiles={"paper": {}, "demo": {"epochs": 30}})
    >>> parser.parse_args(["--profile", "demo"]).epochs
    30
    """
    if "__file__" in constants:
        constants = script_constants(constants)
    profiles, runs = dict(profiles or {}), dict(runs or {})
    for label, table in (("profile", profiles), ("run", runs)):
        for key, values in table.items():
            unknown = sorted(set(values) - set(constants))
            if unknown:
                raise ValueError(f"{label} {key!r} sets values that are no constant: {unknown}")
    pre = argparse.ArgumentParser(add_help=False)
    for flag, table in (("--profile", profiles), ("--run", runs)):
        if table:
            pre.add_argument(flag, default=next(iter(table)), choices=tuple(table))
    known, _ = pre.parse_known_args(argv)
    defaults = {**constants, **runs.get(getattr(known, "run", None), {}),
                **profiles.get(getattr(known, "profile", None), {})}
    help = {"seed": "random seed", **(help or {})}
    parser = build_parser(description, help=help, spellings=spellings, maxima=maxima,
                          **defaults)
    if profiles:
        parser.add_argument("--profile", default=next(iter(profiles)), choices=tuple(profiles),
                            help="paper: published hyperparameters; demo: small, CPU-friendly")
    if runs:
        parser.add_argument("--run", default=next(iter(runs)), choices=tuple(runs),
                            help="which published model: " + ", ".join(runs))
    if device:
        add_runtime_options(parser, profile=None, device="auto")
    return parser


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
        parser.add_argument("--seed", type=number_type("seed", seed), default=seed,
                            help="random seed")


def resolve_device(name: str):
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU is an error."""
    import torch

    from .errors import PipelineError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(name, str) or not (name in DEVICES or re.fullmatch(r"cuda:\d+", name)):
        raise PipelineError(f"--device {name!r}: use {', '.join(DEVICES)} (or cuda:N)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PipelineError(f"--device {name}: no CUDA device is available")
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
