"""The two kinds of risk model -- the 10-s ECG model and the beat model -- as objects.

Everything that differs between them lives here: the model folder (``modelfits_<key>/``),
the default model name, the script that trains it, where its samples come from and how
they are built (one sample per ECG, or one per beat file), and how its predictions are
named. Training, prediction and evaluation ask the kind instead of testing a string.

This module needs no torch.

>>> model_kind("beat").folder().as_posix()
'modelfits_beat/ntuh_scd_beat_model_demo'
>>> model_kind(False).script
'01_Predictive_Model/x01_train_10s_ecg.py'
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from ..constants import BEAT_LEN
from ..errors import PipelineError
from ..failures import FailureLog
from ..gain import unusable_ecgs
from ..io import require_dir
from ..workspace import (BEATS_DIR, CONFIG_FILE, DEFAULT_MODEL_NAMES, GAIN_REPORT, MODEL_DIRS,
                         MORPH_BEATS_DIR, PREDICTIONS, PREDICTIONS_BY_ECG, STEP_SCRIPTS,
                         TEN_SEC_DIR)
from .data import beat_items, ten_second_items


def _ecg_samples(rows: pd.DataFrame, folder: str, failures: FailureLog,
                 gain_report: str = GAIN_REPORT) -> pd.DataFrame:
    """One sample per 10-s ECG in ``folder`` (x03's); ECGs that x03's ``gain_report`` flags
    (failed or unresolved) are left out and counted in ``failures`` (``""``: none are; a
    ``gain_report`` that is not there is refused, unless it is the default)."""
    require_dir(folder, "x03")
    if gain_report and gain_report != GAIN_REPORT and not Path(gain_report).is_file():
        # only the default may be absent (no x03 run, e.g. an imported cohort)
        raise PipelineError(f"--gain-report {gain_report}: no such file; give x03's report, "
                            "or '' to use every ECG")
    flagged = unusable_ecgs(gain_report) or {}
    refused = rows["studyId"].isin(list(flagged))
    for sid in rows.loc[refused, "studyId"]:
        failures.add(flagged[sid], "x03 could not resolve this ECG", studyId=sid)
    return ten_second_items(rows[~refused], ecg_dir=folder, failures=failures)


def _beat_samples(rows: pd.DataFrame, folder: str, failures: FailureLog,
                  gain_report: str = GAIN_REPORT) -> pd.DataFrame:
    """One sample per beat file in ``folder`` (x04's, or x05's morphing beats, which already
    left out what they could not use, x03's flags included, so ``gain_report`` is not read);
    ECGs without beats are counted in ``failures``."""
    require_dir(folder, "x05" if folder == MORPH_BEATS_DIR else "x04")
    return beat_items(rows, Path("."), folder, failures)


@dataclass(frozen=True)
class ModelKind:
    """One kind of risk model.

    Attributes
    ----------
    key : str
        ``"ecg"`` or ``"beat"``: config.json's ``kind`` and the ``modelfits_<key>`` folder.
    default_name : str
        The model name used when none is given.
    train_step : str
        The pipeline step (:data:`scdecg.workspace.PIPELINE`) whose script trains it.
    samples_dir : str
        The default folder of its input files.
    sample : str
        What one sample is, for messages (``"ECG"`` or ``"beat"``).
    signal_columns : tuple of str
        Covariate-table columns its samples need besides the outputs and covariates.
    per_beat : bool
        Samples are beats: predictions name the beat file and are also averaged per ECG.
    build_samples : callable
        ``(rows, folder, failures, gain_report) -> samples``: the sample table of cohort
        ``rows`` (``gain_report``: x03's report, whose flagged ECGs are left out).
    """

    key: str
    default_name: str
    train_step: str
    samples_dir: str
    sample: str
    signal_columns: tuple[str, ...]
    per_beat: bool
    build_samples: Callable[[pd.DataFrame, str, FailureLog, str], pd.DataFrame]

    @property
    def script(self) -> str:
        """The script that trains this kind of model."""
        return STEP_SCRIPTS[self.train_step]

    @property
    def label(self) -> str:
        """What this kind of model is called in messages."""
        return "beat model" if self.per_beat else "10-s ECG model"

    @property
    def sample_columns(self) -> list[str]:
        """The columns that identify a sample in a predictions file."""
        return ["studyId", "filename"] if self.per_beat else ["studyId"]

    @property
    def evaluated_predictions(self) -> str:
        """The predictions file x05 evaluates (per ECG: the beat model's mean logits)."""
        return PREDICTIONS_BY_ECG if self.per_beat else PREDICTIONS

    def folder(self, name: str = "") -> Path:
        """``modelfits_<key>/<name>`` (the default model when ``name`` is empty)."""
        return Path(MODEL_DIRS[self.key]) / (name or self.default_name)

    def missing_hint(self) -> str:
        """What to do when a model folder of this kind is not there."""
        return f"train it with {self.script}" + ("" if self.per_beat else " or pass --beat")


ECG_MODEL = ModelKind("ecg", DEFAULT_MODEL_NAMES["ecg"], "train_ecg", TEN_SEC_DIR, "ECG",
                      ("scaling_factor",), False, _ecg_samples)
BEAT_MODEL = ModelKind("beat", DEFAULT_MODEL_NAMES["beat"], "train_beat", BEATS_DIR, "beat",
                       (), True, _beat_samples)
KINDS: dict[str, ModelKind] = {k.key: k for k in (ECG_MODEL, BEAT_MODEL)}


def model_kind(kind: str | bool | ModelKind) -> ModelKind:
    """The :class:`ModelKind` of ``"ecg"``/``"beat"``, of a script's ``--beat`` flag
    (``True``: the beat model), or ``kind`` itself."""
    if isinstance(kind, ModelKind):
        return kind
    if isinstance(kind, bool):
        return BEAT_MODEL if kind else ECG_MODEL
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    return KINDS[kind]


def check_model_kind(config: Mapping[str, Any], folder: str | Path,
                     expected: str | bool | ModelKind) -> None:
    """Refuse, in one :class:`PipelineError`, a model folder holding another kind of model
    than ``expected`` (a 10-s model where a beat model is needed, or the reverse): the kind is
    config.json's ``kind`` (training writes it), or, where there is none, the model's input
    length (a beat model's is the beat's ``BEAT_LEN`` samples)."""
    expected = model_kind(expected)
    held = config.get("kind")
    if held is None:
        length = (config.get("architecture") or {}).get("length")
        held = "beat" if length == BEAT_LEN else "ecg"
        why = (f"config.json names no kind; its input is {length} samples" if length
               else "config.json names no kind or input length")
    elif held not in KINDS:
        raise PipelineError(f"{Path(folder) / CONFIG_FILE}: kind is {held!r}, expected "
                            f"{' or '.join(KINDS)}; retrain the model")
    else:
        why = f"kind {held!r} in its config.json"
    if held != expected.key:
        raise PipelineError(f"{folder}: holds a {KINDS[held].label} ({why}), not the "
                            f"{expected.label} expected here; give a {expected.label} "
                            f"folder ({expected.script} trains one)")
