"""What the training and prediction scripts do, so the scripts stay thin.

The scripts' options (constants < ``--run`` preset < ``--profile`` < command line) come from
:func:`scdecg.cli.script_parser`.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..cli import resolve_device, seed_everything
from ..errors import PipelineError
from ..failures import FailureLog
from ..io import (check_ids, check_values, float_column, output_dir, recorded_path,
                  read_feather, write_csv, write_feather)
from ..models import Architecture, build_model, load_trained, save_trained
from ..models.inference import fuse_for_inference
from ..models.store import require_entries
from .data import build_dataset, describe, unzscore
from .distributed import Context, setup, teardown
from .kinds import ModelKind, check_model_kind, model_kind
from .loop import CHECKPOINT_FILE, FitResult, FitSettings, fit, stream_logits
from .losses import REGRESSION_WEIGHT
from .splits import SPLITS, patient_split
from ..workspace import (BY_ECG_SUFFIX, CONFIG_FILE, COVARIATE_DF, EXCLUDED_FILE, GAIN_REPORT,
                         SPLIT_FILE, WEIGHTS_FILE, prediction_file, predictions_folder, read_split)

READ_WORKERS = 2         # prediction: threads reading signal files ahead of the model ...
PREFETCH_BATCHES = 4     # ... up to this many batches ahead


# ----------------------------------------------------------------------------- training
def select_rows(df: pd.DataFrame, subset: str | None, train_frac: float, val_frac: float,
                split_seed: int) -> pd.DataFrame:
    """include_modelling rows with their patient split (and, with ``subset``, an ``in_subset``
    column marking the rows where that 0/1 column is 1).

    The split is always the whole modelling cohort's, so a subset model (the death-only
    model) trains on training patients of the full split only: it can score every
    validation or lockbox ECG of the cohort (as the stacking ensemble needs) without having
    seen that patient.
    """
    check_values(df, COVARIATE_DF, binary=["include_modelling"])   # "False" is text, not 0
    rows = df[df["include_modelling"].astype("Float64").fillna(0).to_numpy(dtype=float) == 1]
    if rows.empty:
        raise PipelineError(f"{COVARIATE_DF}: no include_modelling rows")
    check_ids(rows, COVARIATE_DF, patients=True)
    rows = rows.astype({"studyId": str, "ptId": str}).reset_index(drop=True)
    rows["split"] = patient_split(rows["ptId"], train_frac, val_frac, split_seed).to_numpy()
    if subset:
        rows["in_subset"] = rows[subset].astype("Float64").fillna(0).to_numpy(dtype=float) == 1
        if not rows["in_subset"].any():
            raise PipelineError(f"{COVARIATE_DF}: no include_modelling rows with {subset} == 1")
    return rows


def train_model(args: argparse.Namespace, kind: str | ModelKind,
                regression_outputs: Sequence[str] = (), subset: str | None = None) -> Path:
    """Train a risk model (the x01 and x02 step); runs unchanged under ``torchrun``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``x01_train_10s_ecg.py`` or ``x02_train_beats.py`` (model name,
        outputs, covariates, architecture, optimiser, split, ``device``, ``resume``, ...).
    kind : str or ModelKind
        ``"ecg"`` (10-s ECGs in ``10_sec_ecgs/``) or ``"beat"`` (beat files in
        ``args.beats_dir``); see :mod:`scdecg.training.kinds`.
    regression_outputs : sequence of str
        Outputs trained as z-scored regressions (the rest are 0/1 classifications).
    subset : str, optional
        Train only on the rows where this 0/1 column is 1 (the death-only model).

    Returns
    -------
    pathlib.Path
        The model folder ``modelfits_<kind>/<model_name>/`` (``best.pt``, ``config.json``,
        ``split.csv``, ``excluded.csv``, ``history.csv``, ``checkpoint.pt``).

    Examples
    --------
    >>> from scdecg.cli import script_parser
    >>> args = script_parser("x01", x01_constants, ["--profile", "demo"],  # doctest: +SKIP
    ...                      profiles=x01_profiles).parse_args(["--profile", "demo"])
    >>> train_model(args, "ecg")                                           # doctest: +SKIP
    PosixPath('modelfits_ecg/ntuh_scd_model_demo')
    """
    if args.min_epochs > args.max_epochs:   # a way to switch early stopping off: said, not refused
        print(f"[train] --min-epochs {args.min_epochs} is above --max-epochs {args.max_epochs}: "
              f"no early stop; the run trains {args.max_epochs} epochs")
    device = resolve_device(args.device)
    ctx = setup(device)
    try:
        return _train(args, model_kind(kind), list(regression_outputs), subset, ctx)
    finally:
        teardown(ctx)


def _train(args, kind: ModelKind, regression_outputs: list[str], subset: str | None,
           ctx: Context) -> Path:
    outputs = list(args.outputs)
    covariates = list(getattr(args, "covariates", []))  # the beat model has none
    regression = [o in regression_outputs for o in outputs]
    needed = ["studyId", "ptId", "include_modelling", *outputs, *covariates,
              *kind.signal_columns]
    if subset:
        needed.append(subset)
    df = read_feather(COVARIATE_DF, columns=dict.fromkeys(needed), step="x02")
    cohort = select_rows(df, subset, args.train_frac, args.val_frac, args.split_seed)
    rows = cohort[cohort["in_subset"]].reset_index(drop=True) if subset else cohort
    # text ("abc") or an infinite value in a target or covariate: refused by name here, not a
    # parse error in fit_stats or a "training diverged" epochs later
    check_values(rows, COVARIATE_DF, numeric=[*outputs, *covariates])
    folder = kind.folder(args.model_name)
    samples_dir = getattr(args, "beats_dir", None) if kind.per_beat else None
    samples_dir = samples_dir or kind.samples_dir
    failures = FailureLog(f"{kind.key} inputs")
    gain_report = getattr(args, "gain_report", GAIN_REPORT)  # the beat scripts have none
    items = kind.build_samples(rows, samples_dir, failures, gain_report)
    considered = len(items) + len(failures)  # the samples, and what was left out before them
    common = dict(outputs=outputs, regression=regression, covariates=covariates,
                  length=args.length, preprocessing=list(args.preprocessing),
                  memory_limit_gb=args.memory_limit_gb, progress=ctx.is_main)
    # z-scoring statistics from the training samples that are used (a file x03 flagged or
    # that cannot be read does not count); validation reuses them
    train = build_dataset(items[items["split"] == "train"], name="train", cov_stats=None,
                          target_stats=None, **common)
    cov_stats, target_stats = train.cov_stats, train.target_stats
    val = build_dataset(items[items["split"] == "val"], name="val", cov_stats=cov_stats,
                        target_stats=target_stats, **common)
    for part in (train, val):
        for row in part.failures.rows:
            failures.add(row["record"], row["reason"], studyId=row.get("studyId"))
    if ctx.is_main and len(failures):
        print(failures.summary(total=considered))

    seed_everything(args.seed)
    arch = Architecture(outputs=outputs, length=args.length, channels=args.channels,
                        n_blocks=args.n_blocks, rep_mp=args.rep_mp, dropout=args.dropout,
                        covariates=covariates, cumulative=args.cumulative,
                        hazard=getattr(args, "hazard", "softplus"))
    model = build_model(arch)
    settings = FitSettings(lr=args.lr, batch_size=args.batch_size, min_epochs=args.min_epochs,
                           max_epochs=args.max_epochs, patience=args.patience,
                           weight_decay=args.weight_decay, gamma=args.gamma,
                           lr_reduce_interval=args.lr_reduce_interval, seed=args.seed,
                           regression_weight=getattr(args, "regression_weight", REGRESSION_WEIGHT),
                           bce_on_regression=getattr(args, "bce_on_regression", False),
                           eval_batch_size=args.eval_batch_size, amp=args.amp,
                           progress=ctx.is_main, monitor=args.monitor,
                           zero_based_epochs=args.zero_based_epochs, val_loss=args.val_loss)
    config = {
        "kind": kind.key, "model_name": args.model_name, "run": getattr(args, "run", None),
        "profile": args.profile, "seed": args.seed,
        "output_types": ["regression" if r else "classification" for r in regression],
        "covariates": covariates, "covariate_stats": cov_stats, "target_stats": target_stats,
        "preprocessing": list(args.preprocessing), "subset": subset,
        "beats_dir": samples_dir if kind.per_beat else None,
        "gain_report": None if kind.per_beat else gain_report,
        "split": {"train_frac": args.train_frac, "val_frac": args.val_frac,
                  "seed": args.split_seed, "file": SPLIT_FILE,
                  **{f"n_patients_{s}": int(rows.loc[rows["split"] == s, "ptId"].nunique())
                     for s in SPLITS},
                  **{f"n_ecgs_{s}": int((rows["split"] == s).sum()) for s in SPLITS}},
        "data": {"train": describe(train), "val": describe(val), "excluded": len(failures)},
        "training": {k: v for k, v in vars(settings).items() if k != "progress"},
        "world_size": ctx.world_size, "device": str(ctx.device),
    }
    def start() -> None:
        """The run's first writes, once fit has accepted the settings (and, with --resume,
        the checkpoint): a refused run leaves the folder as it was."""
        if not ctx.is_main:
            return
        output_dir(folder)
        if not args.resume:
            # a fresh run: nothing of an earlier run may stay beside this run's files (a
            # save that fails later must not leave best.pt of one run and checkpoint.pt of
            # another)
            for name in (CHECKPOINT_FILE, WEIGHTS_FILE, CONFIG_FILE):
                (folder / name).unlink(missing_ok=True)
        print(f"[{args.model_name}] {len(outputs)} outputs; train {len(train)} / val {len(val)} "
              f"samples ({config['split']['n_patients_train']} / "
              f"{config['split']['n_patients_val']} patients); device {ctx.device} x "
              f"{ctx.world_size}")
        # every modelling ECG (a subset model predicts them all; in_subset marks its own rows)
        write_csv(cohort[["studyId", "ptId", "split", *(["in_subset"] if subset else [])]],
                  folder / SPLIT_FILE)
        write_csv(failures.frame(), folder / EXCLUDED_FILE)

    def save(state, result: FitResult) -> None:
        save_trained(folder, model, _finite({**config, **summary(result)}), state)

    # everything that changes what is trained; --resume refuses a checkpoint that differs
    fingerprint = {"architecture": arch.to_dict(), "kind": kind.key, "subset": subset,
                   "split": config["split"], "n_train": len(train), "n_val": len(val),
                   **{k: config[k] for k in ("output_types", "covariate_stats", "target_stats",
                                             "preprocessing", "beats_dir")}}
    result = fit(model, train, val, outputs, regression, settings, folder, ctx, fingerprint,
                 resume=args.resume, on_best=save, on_start=start)
    if ctx.is_main:
        save(result.best_state, result)
        chosen = ("" if settings.monitor == "val_loss"
                  else f"{settings.monitor} {result.best_score:.4f}, ")
        print(f"[{args.model_name}] best epoch {result.best_epoch}: {chosen}validation loss "
              f"{result.best_val_loss:.4f}; saved {folder}")
    return folder


def summary(result: FitResult) -> dict[str, Any]:
    return {"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
            "best_score": result.best_score,
            "best_metrics": result.best_metrics,
            # seconds vary between identical runs: history.csv has them, config.json not
            "history": [{k: v for k, v in h.items() if k != "seconds"} for h in result.history],
            "epochs_run": len(result.history), "resumed_from_epoch": result.resumed_from}


def _finite(obj: Any) -> Any:
    """NaN/inf -> None so config.json stays standard JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- prediction
#: The parts of a model's split that can be predicted; ``train`` (and ``all``) are in-sample.
PARTS = (*SPLITS, "all")


def check_split_fractions(config: dict[str, Any], folder: Path,
                          fractions: Sequence[float] | None) -> None:
    """Refuse ``--split TRAIN VAL`` fractions that differ from the model's stored split."""
    if fractions is None:
        return
    stored = config.get("split") or {}
    if "train_frac" not in stored or "val_frac" not in stored:
        raise PipelineError(f"{folder / CONFIG_FILE}: no stored split fractions to check "
                            f"--split {fractions[0]:g} {fractions[1]:g} against")
    train, val = float(stored["train_frac"]), float(stored["val_frac"])
    if not (math.isclose(fractions[0], train, abs_tol=1e-9)
            and math.isclose(fractions[1], val, abs_tol=1e-9)):
        raise PipelineError(f"--split {fractions[0]:g} {fractions[1]:g} does not match the split "
                            f"{folder} was trained with (train {train:g}, val {val:g}; "
                            f"{folder / SPLIT_FILE}): predictions always use the stored split")


def per_ecg_means(beats: pd.DataFrame, hats: list[str]) -> pd.DataFrame:
    """One row per ECG of beat predictions: the mean of each ``hats`` column in float64
    (pandas 3.0 averages a float32 column in float32, 3.1 in float64), ``n_beats``, and the
    ECG's ``split`` and ``in_sample``; ECGs in order of first beat."""
    return beats.astype({h: "float64" for h in hats}).groupby("studyId", sort=False).agg(
        **{h: (h, "mean") for h in hats}, n_beats=("filename", "size"),
        split=("split", "first"), in_sample=("in_sample", "first")).reset_index()


def predict_model(kind: str | ModelKind, model_name: str, part: str, device_name: str,
                  batch_size: int, read_workers: int = READ_WORKERS,
                  prefetch_batches: int = PREFETCH_BATCHES, covariate_df: str = COVARIATE_DF,
                  ecg_dir: str = "", split_fractions: Sequence[float] | None = None,
                  gain_report: str = GAIN_REPORT) -> Path:
    """Predict the ``part`` rows of a model's stored split (the x03 step).

    Writes ``predictions/<model_name>_1/`` :func:`~scdecg.workspace.prediction_file` (and,
    for beats, the per-ECG mean logits ``<stem>_by_ecg.feather``): studyId (+ filename),
    one ``<output>_hat`` column per output (logits; regressions in their original units),
    split and in_sample.

    Parameters
    ----------
    kind : str or ModelKind
        ``"ecg"`` or ``"beat"`` (:mod:`scdecg.training.kinds`).
    model_name : str
        The folder name under ``modelfits_<kind>/``.
    part : str
        ``"val"``, ``"lockbox"``, ``"train"`` (in-sample) or ``"all"``.
    device_name : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    batch_size : int
        Samples per forward pass.
    read_workers, prefetch_batches : int
        Signals stream from disk: ``read_workers`` threads read up to ``prefetch_batches``
        batches ahead of the model, so memory does not grow with the cohort. Files that
        cannot be used are left out and counted, as in training.
    covariate_df : str
        The cohort table with the covariates (and ``scaling_factor``).
    ecg_dir : str
        The folder of ``<studyId>.npy`` files (10-s models, default ``10_sec_ecgs``) or of
        ``<studyId>/<studyId>_<k>.npy`` beat files (default: the folder the beat model was
        trained on).
    split_fractions : (float, float), optional
        The published ``--split TRAIN VAL``: only checked against the stored split.
    gain_report : str
        10-s models: x03's report; the ECGs it flags (failed or unresolved) are left out and
        counted (``""``: every ECG is predicted, as published). Beat models do not read it.

    Returns
    -------
    pathlib.Path
        The predictions folder.

    Examples
    --------
    >>> predict_model("ecg", "ntuh_scd_model_demo", "lockbox", "auto", 256)  # doctest: +SKIP
    PosixPath('predictions/ntuh_scd_model_demo_1')
    """
    if part not in PARTS:
        raise PipelineError(f"part {part!r}: choose one of {', '.join(PARTS)}")
    kind = model_kind(kind)
    folder = kind.folder(model_name)
    if not (folder / CONFIG_FILE).exists():
        raise PipelineError(f"{folder}: no trained model here ({kind.missing_hint()})")
    device = resolve_device(device_name)
    model, config = load_trained(folder, device)
    check_model_kind(config, folder, kind)   # a 10-s model among beat models, or the reverse
    require_entries(config, ("covariates", "covariate_stats", "target_stats", "preprocessing"),
                    folder / CONFIG_FILE)
    check_split_fractions(config, folder, split_fractions)
    outputs = config["outputs"]
    covariates = config["covariates"]
    split_table = read_split(folder, ["studyId", "ptId", "split"])
    check_ids(split_table, folder / SPLIT_FILE, patients=True,
              hint="retrain the model, or restore the folder's split.csv")
    df = read_feather(covariate_df, columns=["studyId", *covariates, *kind.signal_columns],
                      step="x02")
    check_ids(df, covariate_df)
    for col in kind.signal_columns:   # text refused here, naming this table; a bad number
        df[col] = float_column(df, col, covariate_df)   # fails its ECG later
    rows = split_table if part == "all" else split_table[split_table["split"] == part]
    if rows.empty:
        raise PipelineError(f"{folder / SPLIT_FILE}: no rows in split {part!r}")
    # ECGs of the split that the cohort table no longer holds are left out, counted
    failures = FailureLog("predict inputs")
    absent = ~rows["studyId"].isin(df["studyId"].astype(str))
    if absent.all():
        raise PipelineError(f"{folder / SPLIT_FILE}: none of its {len(rows)} {part} ECG(s) is "
                            f"in {covariate_df} (studyId {rows['studyId'].iloc[0]!r} is not); "
                            "give the cohort table the model was trained on")
    for sid in rows.loc[absent, "studyId"]:
        failures.add(sid, f"studyId of {SPLIT_FILE} not in {covariate_df}", studyId=sid)
    rows = rows[~absent]
    keep = [c for c in df.columns if c not in rows.columns]
    rows = rows.merge(df[["studyId", *keep]], on="studyId", how="left", validate="one_to_one")
    for col in outputs:  # labels are not needed to predict
        if col not in rows.columns:
            rows[col] = np.nan
    samples_dir = ecg_dir or (recorded_path(config["beats_dir"], folder / CONFIG_FILE,
                                            "beats_dir", "--ecg_dir")
                              if config.get("beats_dir") else kind.samples_dir)
    items = kind.build_samples(rows, samples_dir, failures, gain_report)
    considered = len(items) + len(failures)  # the samples, and what was left out before them
    data = build_dataset(items, outputs, [True] * len(outputs), covariates,
                         config["covariate_stats"], {}, config["architecture"]["length"],
                         config["preprocessing"], 0.0, name=f"predict {part}",  # 0: stream
                         check_files=False)
    for row in data.failures.rows:
        failures.add(row["record"], row["reason"], studyId=row.get("studyId"))
    logits, readable, unread = stream_logits(
        fuse_for_inference(model), data, device, batch_size, workers=read_workers,
        depth=prefetch_batches, progress=True)
    for i, reason in unread:
        failures.add(data.index["path"].iloc[i], reason, studyId=data.index["studyId"].iloc[i])
    if len(failures):
        print(failures.summary(total=considered))
    if not readable.any():
        raise PipelineError(f"predict {part}: no usable signal files "
                            f"(first: {failures.rows[0]['record']}: {failures.rows[0]['reason']})")
    values = unzscore(logits, outputs, config["target_stats"])  # regression -> original units
    index = data.index[readable].reset_index(drop=True)
    frame = index[kind.sample_columns].copy()
    for j, name in enumerate(outputs):
        frame[f"{name}_hat"] = values[:, j].astype(np.float32)
    frame["split"] = index["split"].to_numpy()
    frame["in_sample"] = frame["split"] == "train"
    out = predictions_folder(model_name)
    target = out / prediction_file(part)
    write_feather(frame, target)
    hats = frame[[f"{o}_hat" for o in outputs]].to_numpy()
    nonfinite = int((~np.isfinite(hats)).any(axis=1).sum())
    if nonfinite:
        print(f"[{model_name}] warning: {nonfinite} of {len(frame)} rows have non-finite "
              f"outputs (NaN or inf) in {target}")
    written = [target]
    if kind.per_beat:
        by_ecg = per_ecg_means(frame, [f"{o}_hat" for o in outputs])
        written.append(target.with_name(f"{target.stem}{BY_ECG_SUFFIX}.feather"))
        write_feather(by_ecg, written[-1])
    print(f"[{model_name}] {len(frame)} {kind.sample}s "
          f"({part}, in-sample: {part in ('train', 'all')}) -> "
          + ", ".join(str(p) for p in written))
    return out
