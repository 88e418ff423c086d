"""What the morphs change: per-beat features at each stage, paired summaries, figures.

For every morphed beat and each stage -- ``raw`` (the real beat), ``t0`` (its reconstruction)
and ``final`` (the morph) -- :func:`stage_features` measures every beat-model output, each
lead's minimum and maximum, a delineation of each lead (P/Q/R/S/T onsets, peaks and offsets as
sample indices relative to the beat; :mod:`scdecg.delineation`) and the aVL R->S slope features. The paired
change from t0 to final is then summarised per feature (:func:`paired_summary`) and per lead
(:func:`lead_change`).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .constants import AVL, BEAT_PRE, FS, LEADS
from .delineation import POINTS, delineate_beats
from .errors import PipelineError
from .features import (FEATURE_COLUMNS, LOWPASS_HZ, MIN_AVL_RANGE_MV, AvlFeatures, lowpass,
                       rs_slopes)
from .parallel import imap
from .workspace import (MORPH_LEAD_CHANGE, MORPH_OUTPUTS, MORPH_RUN, MORPH_SUMMARY,
                        MORPH_SUMMARY_MD, MORPH_TABLE, STAGE_ARRAYS, STATS_FAILURES,
                        STATS_RECORD, STATS_TABLE, TRAJECTORY_LOGITS, TRAJECTORY_RISK_STEPS,
                        parse_beat_file, read_config, took_a_step)

STAGES = ("raw", "t0", "final")
#: neurokit2 delineation keys -> our column stems (``<stem>_<lead>``).
WAVES = {"ECG_P_Onsets": "P_onset", "ECG_P_Peaks": "P_peak", "ECG_P_Offsets": "P_offset",
         "ECG_Q_Peaks": "Q_peak", "ECG_R_Onsets": "R_onset", "ECG_R_Offsets": "R_offset",
         "ECG_S_Peaks": "S_peak", "ECG_T_Onsets": "T_onset", "ECG_T_Peaks": "T_peak",
         "ECG_T_Offsets": "T_offset"}
N_TILES = 9  # copies of the beat laid end to end for the delineator; the middle one is read


# --------------------------------------------------------------------------------------
# Per-beat measurements
# --------------------------------------------------------------------------------------
def lead_extrema(beats: np.ndarray) -> pd.DataFrame:
    """``min_<lead>`` and ``max_<lead>`` (mV) of each beat (N, 12, 300)."""
    cols = {}
    for i, lead in enumerate(LEADS):
        cols[f"min_{lead}"] = beats[:, i].min(-1)
        cols[f"max_{lead}"] = beats[:, i].max(-1)
    return pd.DataFrame(cols)


def avl_slopes(beat: np.ndarray, lowpass_hz: float = LOWPASS_HZ) -> tuple[float, float, str]:
    """``(aVL_rs_diff, aVL_rs_diff_2, reason)`` of one (12, 300) beat, R searched around BEAT_PRE.

    The x06 definition applied to the beat's aVL lead in place of the ECG's aVL median beat:
    x06's zero-phase low-pass (``lowpass_hz``, default x06's 40 Hz; 0: none), then
    :func:`scdecg.features.rs_slopes`. NaN with a reason when it does not apply.
    """
    lead = np.asarray(beat[AVL], dtype=np.float64)
    if not np.isfinite(lead).all():
        return np.nan, np.nan, "non-finite aVL"
    if np.ptp(lead) < MIN_AVL_RANGE_MV:
        return np.nan, np.nan, f"flat aVL (range < {MIN_AVL_RANGE_MV} mV)"
    out = rs_slopes(lowpass(lead, lowpass_hz), AvlFeatures(), centre=BEAT_PRE)
    return out.rs_diff, out.rs_diff_2, out.reason


def delineate_lead_neurokit(signal: np.ndarray, fs: int = FS,
                            n_tiles: int = N_TILES) -> dict[str, float]:
    """The reference delineation of one lead of one beat (slow: about 0.25 s a lead): tile it
    ``n_tiles`` times, run neurokit2's DWT delineator with the known R-peaks, and read the
    middle copy (indices relative to the beat's first sample). Raises on failure.

    :func:`delineate_stages` measures the same points a hundred times faster; this stays as
    the reference that it is tested and benchmarked against."""
    import neurokit2 as nk

    length = len(signal)
    tiled = np.tile(np.asarray(signal, dtype=np.float64), n_tiles)
    rpeaks = BEAT_PRE + length * np.arange(n_tiles)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, waves = nk.ecg_delineate(tiled, rpeaks=rpeaks, sampling_rate=fs, method="dwt")
    middle = n_tiles // 2
    out = {}
    for key, stem in WAVES.items():
        values = waves.get(key)
        v = values[middle] if values is not None and len(values) == n_tiles else np.nan
        out[stem] = float(v) - middle * length if v is not None and np.isfinite(v) else np.nan
    return out


def delineation_columns() -> list[str]:
    """``<point>_<lead>`` columns of the delineation, lead by lead."""
    return [f"{p}_{lead}" for lead in LEADS for p in POINTS]


def _delineate_chunk(beats: np.ndarray) -> np.ndarray:
    return delineate_beats(beats).reshape(len(beats), -1)


def delineate_stages(stages: dict[str, np.ndarray], n_jobs: int = 1, chunk: int = 64,
                     progress: bool = True) -> tuple[dict[str, pd.DataFrame], list[dict]]:
    """Every lead of every beat of every stage delineated
    (:func:`scdecg.delineation.delineate_beats`, in chunks of ``chunk`` beats over ``n_jobs``
    processes): ``({stage: table with delineation_columns()}, failures)``. A lead with
    non-finite samples has NaN points and is logged."""
    names = list(stages)
    beats = np.concatenate([np.asarray(stages[s]) for s in names]) if names else np.empty((0,))
    chunks = [beats[i:i + chunk] for i in range(0, len(beats), chunk)]
    parts = list(imap(_delineate_chunk, chunks, n_jobs=n_jobs, chunksize=1,
                      desc="delineate", progress=progress, unit="chunk"))
    values = np.concatenate(parts) if parts else np.empty((0, len(LEADS) * len(POINTS)))
    tables, failures, start = {}, [], 0
    for stage in names:
        n = len(stages[stage])
        tables[stage] = pd.DataFrame(values[start:start + n], columns=delineation_columns())
        bad = ~np.isfinite(stages[stage]).all(-1)
        failures += [{"beat_id": int(i), "stage": stage, "step": "delineation",
                      "reason": f"{LEADS[j]}: non-finite samples"} for i, j in zip(*np.nonzero(bad))]
        start += n
    return tables, failures


def output_columns(raw: np.ndarray, output_names: Sequence[str], output_types: Sequence[str],
                   target_stats: dict[str, dict[str, float]] | None = None) -> dict[str, np.ndarray]:
    """The beat model's outputs (N, n_outputs) as columns, as the published morph statistics
    have them: ``yhat_<name>`` is the logit of a classification output (``p_<name>`` its
    probability); a regression output is ``yhat_<name>`` back on its own scale with the
    training ``target_stats`` (``{name: {"mean", "sd"}}``, the beat model's z-scoring)."""
    target_stats = target_stats or {}
    raw = np.asarray(raw, dtype=np.float64)
    cols = {}
    for j, (name, kind) in enumerate(zip(output_names, output_types)):
        if kind == "classification":
            cols[f"yhat_{name}"] = raw[:, j]
            cols[f"p_{name}"] = 1 / (1 + np.exp(-raw[:, j]))
        else:
            st = target_stats.get(name, {"mean": 0.0, "sd": 1.0})
            cols[f"yhat_{name}"] = raw[:, j] * st["sd"] + st["mean"]
    return cols


def stage_features(stages: dict[str, np.ndarray], outputs: dict[str, np.ndarray],
                   output_names: Sequence[str], output_types: Sequence[str],
                   target_stats: dict[str, dict[str, float]] | None = None,
                   delineate: bool = True, n_jobs: int = 1, progress: bool = True,
                   lowpass_hz: float = LOWPASS_HZ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long table (one row per beat x stage) of every measurement, plus a failure log.

    ``stages`` maps stage name -> beats (N, 12, 300); ``outputs`` maps stage name -> the beat
    model's raw outputs (N, n_outputs) in ``output_names`` order (columns: see
    :func:`output_columns`). Then each lead's min and max, the aVL slope features and, with
    ``delineate``, every lead's P/QRS/T points (:func:`delineate_stages`).
    """
    points, failures = (delineate_stages(stages, n_jobs=n_jobs, progress=progress)
                        if delineate else ({}, []))
    frames = []
    for stage, beats in stages.items():
        cols = {"beat_id": np.arange(len(beats)), "stage": stage,
                **output_columns(outputs[stage], output_names, output_types, target_stats)}
        frame = pd.concat([pd.DataFrame(cols), lead_extrema(beats)], axis=1)
        slopes = [avl_slopes(b, lowpass_hz) for b in beats]
        for k, name in enumerate(FEATURE_COLUMNS):
            frame[name] = [s[k] for s in slopes]
        failures += [{"beat_id": i, "stage": stage, "step": "aVL slopes", "reason": s[2]}
                     for i, s in enumerate(slopes) if s[2]]
        if delineate:
            frame = pd.concat([frame, points[stage]], axis=1)
        frames.append(frame)
    log = pd.DataFrame(failures, columns=["beat_id", "stage", "step", "reason"])
    return pd.concat(frames, ignore_index=True), log


# --------------------------------------------------------------------------------------
# The measurement step (s11, run by s12 when its output is missing or stale)
# --------------------------------------------------------------------------------------
#: Bump when the measurements change: morph statistics of an older version are remeasured.
#: 2: own delineation of every beat; yhat_* are logits, p_* probabilities. 3: x06's low-pass
#: before the aVL slope features.
MEASUREMENT_VERSION = 3
S10 = "02_Morphing/s10_morph_ecgs.py"


def morph_run_files(out: Path) -> list[Path]:
    """The s10 outputs the measurements rest on; a PipelineError naming s10 if one is missing
    or s10 left ``out`` unfinished (:func:`scdecg.io.check_finished`: old and new files mixed)."""
    from .io import check_finished

    out = Path(out)
    check_finished(out)
    files = [out / MORPH_TABLE, *(out / n for n in STAGE_ARRAYS.values()), out / MORPH_RUN]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise PipelineError(f"{out}: no morph run ({', '.join(missing)} missing): run {S10} first")
    return files


def run_beat_model(out: Path, run: dict | None = None) -> str:
    """The beat model the morph run in ``out`` used (its ``morph_run.json``, or ``run`` when
    already read), refused when it lies outside the workspace."""
    from .io import recorded_path

    run = read_run(out) if run is None else run
    return str(recorded_path(run.get("beat_model"), Path(out) / MORPH_RUN, "beat_model",
                             "--beat-model"))


def read_run(out: Path) -> dict:
    """``morph_run.json`` of the morph run in ``out``: a JSON object whose ``stop_logit`` is a
    number or null (one :class:`PipelineError` naming the file and entry otherwise)."""
    from .io import read_json

    record = Path(out) / MORPH_RUN
    run = read_json(record)
    if not isinstance(run, dict):
        raise PipelineError(f"{record}: not a JSON object; rerun {S10}")
    stop = run.get("stop_logit")
    if stop is not None and (isinstance(stop, bool) or not isinstance(stop, (int, float))):
        raise PipelineError(f"{record}: stop_logit is {stop!r}, expected a number or null; "
                            f"rerun {S10}")
    return run


def measurement_settings(beat_model: str, delineate: bool,
                         lowpass_hz: float = LOWPASS_HZ) -> dict:
    return {"version": MEASUREMENT_VERSION, "beat_model": str(beat_model),
            "delineate": bool(delineate), "lowpass_hz": float(lowpass_hz)}


def stats_out_of_date(out: Path, beat_model: str = "", delineate: bool = True,
                      lowpass_hz: float = LOWPASS_HZ) -> str:
    """Why ``morph-stats.feather`` in ``out`` cannot be used as it is ("" when it can): missing,
    older than the morph run, measured on other morph files (by content), with another beat
    model or delineation setting, by an older version of the measurements, or not the table
    that measurement wrote (its SHA-256 in ``morph-stats.json``: edited or another run's)."""
    from .io import file_digest, file_digests, read_json

    out = Path(out)
    files = morph_run_files(out)
    table, record = out / STATS_TABLE, out / STATS_RECORD
    if not table.exists():
        return f"{table.name} not found"
    if not record.exists():
        return f"{record.name} not found (measured by an older version)"
    if table.stat().st_mtime < max(f.stat().st_mtime for f in files):
        return f"{table.name} is older than the morph run"
    try:
        rec = read_json(record)
    except PipelineError as exc:
        return str(exc)
    if not isinstance(rec, dict):
        return f"{record.name} is not a JSON object"
    beat_model = beat_model or run_beat_model(out)
    wanted = measurement_settings(beat_model, delineate, lowpass_hz)
    for key, value in wanted.items():
        if rec.get(key) != value:
            return f"measured with {key} = {rec.get(key)!r}, not {value!r}"
    if rec.get("inputs") != file_digests(files):
        return f"{table.name} was measured on other morph files"
    if rec.get("table") != file_digest(table):  # edited, or another run's
        return f"{table.name} is not the table this measurement wrote"
    return ""


def measure_morphs(out: Path, beat_model: str = "", device="cpu", delineate: bool = True,
                   n_jobs: int = 1, progress: bool = True,
                   lowpass_hz: float = LOWPASS_HZ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure every morphed beat at each stage (the s11 step) and write
    ``morph-stats.feather`` (one row per beat x stage, with the morph table's ids),
    ``morph-stats-failures.csv`` and ``morph-stats.json`` (settings and the SHA-256 of the
    morph files measured and of the table written).

    Parameters
    ----------
    out : pathlib.Path
        The morph run's folder (``morphing_outputs``, written by s10).
    beat_model : str
        The beat-model folder whose outputs are measured ("" = the one in ``morph_run.json``).
    device : torch.device or str
        Where the beat model runs.
    delineate : bool
        Delineate every lead of every stage (P/QRS/T points; about 10 ms a beat).
    n_jobs : int
        Processes for the delineation (0 = every core).
    progress : bool
        Show progress bars.
    lowpass_hz : float
        x06's zero-phase low-pass on each beat's aVL before the slope features (0: none).

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The measurements (one row per beat x stage) and the failed measurements.

    Examples
    --------
    >>> long, failures = measure_morphs(Path("morphing_outputs"), n_jobs=0)  # doctest: +SKIP
    >>> long.groupby("stage")["p_scd1"].mean()                             # doctest: +SKIP
    """
    from .io import file_digest, file_digests, write_csv, write_feather, write_json
    from .morphing import load_beat_model, read_morph_outputs

    out = Path(out)
    files = morph_run_files(out)
    inputs = file_digests(files)
    table, stages = read_morph_outputs(out)
    beat_folder = beat_model or run_beat_model(out)
    risk, beat_config = load_beat_model(Path(beat_folder), device)
    outputs = {stage: risk.predict(beats, device) for stage, beats in stages.items()}
    long, failures = stage_features(stages, outputs, risk.outputs, risk.output_types,
                                    beat_config.get("target_stats"), delineate=delineate,
                                    n_jobs=n_jobs, progress=progress, lowpass_hz=lowpass_hz)
    meta = table[[c for c in ("beat_id", "status", "source_file", "studyId", "ptId", "steps",
                              "stopped") if c in table.columns]]
    long = meta.merge(long, on="beat_id", how="right", validate="one_to_many")
    write_feather(long, out / STATS_TABLE)
    write_csv(failures, out / STATS_FAILURES)
    write_json({**measurement_settings(beat_folder, delineate, lowpass_hz), "inputs": inputs,
                "table": file_digest(out / STATS_TABLE),
                "n_beats": len(table), "stages": list(stages), "n_failures": len(failures)},
               out / STATS_RECORD)
    return long, failures


def describe_failures(failures: pd.DataFrame) -> str:
    """Failed measurements counted by step and stage, one per line."""
    if failures.empty:
        return ""
    counts = failures.groupby(["step", "stage"], sort=True).size()
    return "".join(f"\n  {n:>6}  {step} ({stage})" for (step, stage), n in counts.items())


# --------------------------------------------------------------------------------------
# Paired summaries
# --------------------------------------------------------------------------------------
def feature_unit(name: str) -> str:
    """Unit of a morph-stats column as the summary reports it."""
    if name.startswith(("min_", "max_")):
        return "mV"
    if name in FEATURE_COLUMNS:
        return "1/sample (min-max normalised aVL)"
    if name.rpartition("_")[0] in POINTS:
        return "ms from R"
    if name.startswith("p_"):
        return "probability"
    if name.startswith("yhat_"):
        return "logit or output's own unit"
    return ""


def waveform_features(long: pd.DataFrame) -> list[str]:
    """The columns that describe the beat's waveform: each lead's min and max, the aVL slope
    features and the delineation points (not model outputs, ids or morph bookkeeping)."""
    points = set(POINTS)
    return [c for c in long.columns if pd.api.types.is_numeric_dtype(long[c])
            and (c.startswith(("min_", "max_")) or c in FEATURE_COLUMNS
                 or c.rpartition("_")[0] in points)]


def output_features(long: pd.DataFrame, drop: Sequence[str] = ()) -> list[str]:
    """The beat model's output columns (``yhat_*``, ``p_*``), less those of outputs in ``drop``."""
    skip = {f"{prefix}_{name}" for name in drop for prefix in ("yhat", "p")}
    return [c for c in long.columns if c.startswith(("yhat_", "p_")) and c not in skip]


def outputs_without_positives(config: dict) -> list[str]:
    """Classification outputs of a beat model whose validation AUC could not be computed (no
    positive label among the validation beats): their predictions carry no information."""
    metrics = config.get("best_metrics") or {}
    return [name for name, kind in zip(config.get("outputs") or [], config.get("output_types") or [])
            if kind == "classification" and f"auc_{name}" in metrics
            and metrics[f"auc_{name}"] is None]


def summary_values(long: pd.DataFrame, feature: str) -> pd.Series:
    """A column in the summary's unit: delineation points as ms from R, others unchanged."""
    values = long[feature].astype(np.float64)
    if feature.rpartition("_")[0] in POINTS:
        return (values - BEAT_PRE) * 1000.0 / FS
    return values


def paired_summary(long: pd.DataFrame, features: Sequence[str], before: str = "t0",
                   after: str = "final", cluster: str = "ptId") -> pd.DataFrame:
    """Per feature, the paired change ``after - before``, with patients as the unit of analysis.

    Beats of one patient are not independent, so each patient's beats are averaged first:
    ``patient_change`` is a patient's mean change, and the test is a Wilcoxon signed-rank test
    of those patient means against zero (``wilcoxon_p``; NaN with fewer than two patients or
    no non-zero mean). Without a ``cluster`` column every beat counts as its own patient.

    Columns: feature, rank (1 = largest |standardized_change|), unit, n_beats, n_patients,
    mean_before, mean_after, mean_change (over beats), share_fell, share_rose (of beats),
    mean_patient_change, sd_patient_change, standardized_change (mean / SD of the patient
    means), share_patients_fell, wilcoxon_p. Delineation points are in ms from R.
    """
    key = ["beat_id"]
    b = long[long["stage"] == before].set_index(key)
    a = long[long["stage"] == after].set_index(key)
    groups = (b[cluster] if cluster in b.columns else pd.Series(b.index.astype(str), index=b.index))
    features = list(features)
    # every feature at once: the beats of both stages, aligned (a beat missing from a stage
    # or with a missing value there drops out of that feature's pairs)
    before_values = pd.DataFrame({f: summary_values(b, f) for f in features}, index=b.index)
    after_values = pd.DataFrame({f: summary_values(a, f) for f in features},
                                index=a.index).reindex(b.index)
    change = after_values - before_values
    paired = before_values.notna() & after_values.notna()
    patient_means = change.where(paired).groupby(groups.to_numpy()).mean()
    rows = []
    for f in features:
        pair = paired[f].to_numpy()
        rows.append(paired_row(f, before_values[f][pair], after_values[f][pair],
                               patient_means[f].dropna().to_numpy(dtype=np.float64)))
    return ranked_summary(rows)


#: The columns of :func:`paired_summary`'s table but ``rank``, in order.
PAIRED_COLUMNS = ["feature", "unit", "n_beats", "n_patients", "mean_before", "mean_after",
                  "mean_change", "share_fell", "share_rose", "mean_patient_change",
                  "sd_patient_change", "standardized_change", "share_patients_fell", "wilcoxon_p"]


def paired_row(feature: str, before: pd.Series, after: pd.Series,
               per_patient: np.ndarray) -> dict:
    """One row of :func:`paired_summary`: ``before`` and ``after`` are the feature's paired
    beats (no missing value), ``per_patient`` each patient's mean change."""
    from scipy import stats

    d = after - before
    m = len(per_patient)
    sd = per_patient.std(ddof=1) if m > 1 else np.nan
    row = {"feature": feature, "unit": feature_unit(feature), "n_beats": len(d),
           "n_patients": m, "mean_before": before.mean(), "mean_after": after.mean(),
           "mean_change": d.mean() if len(d) else np.nan,
           "share_fell": (d < 0).mean() if len(d) else np.nan,
           "share_rose": (d > 0).mean() if len(d) else np.nan,
           "mean_patient_change": per_patient.mean() if m else np.nan,
           "sd_patient_change": sd,
           "standardized_change": per_patient.mean() / sd if m > 1 and sd > 0 else np.nan,
           "share_patients_fell": (per_patient < 0).mean() if m else np.nan,
           "wilcoxon_p": np.nan}
    if m > 1 and np.any(per_patient != 0):
        row["wilcoxon_p"] = float(stats.wilcoxon(per_patient).pvalue)
    return row


def ranked_summary(rows: list[dict]) -> pd.DataFrame:
    """:func:`paired_row` rows as a table ranked by |standardized_change| (1 = largest)."""
    out = pd.DataFrame(rows, columns=PAIRED_COLUMNS)
    order = out["standardized_change"].abs().rank(ascending=False, method="min", na_option="bottom")
    out.insert(1, "rank", order.astype(int))
    return out.sort_values(["rank", "feature"]).reset_index(drop=True)


#: The depolarisation window of a beat, ms from R, in which :func:`lead_change` also ranks the
#: leads: from before QRS onset (about -45 ms at the demo's QRS widths) past the slowest terminal
#: R downstroke the generator plants, and before the T wave (docs/DEVIATIONS.md, "The lead rank
#: of the morphs is taken in the QRS").
QRS_WINDOW_MS = (-50, 100)


def window_samples(window_ms: tuple[float, float]) -> slice:
    """The beat samples (R at :data:`BEAT_PRE`, :data:`FS` Hz) of ``window_ms`` ms from R.

    >>> window_samples(QRS_WINDOW_MS)
    slice(75, 150, None)
    """
    lo, hi = (BEAT_PRE + round(ms * FS / 1000) for ms in window_ms)
    return slice(max(lo, 0), hi)


def lead_change(before: np.ndarray, after: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """How much each lead changed from ``before`` to ``after`` (both (N, 12, 300)).

    Returns a table and the signed mean difference waveform per lead (12, 300). The table: the
    lead; ``mean_abs_change_mv``, the mean over beats and samples of |after - before|;
    ``relative_change``, that over the lead's mean peak-to-peak amplitude before (low-amplitude
    leads such as aVL change little in mV); ``qrs_abs_change_mv`` and ``qrs_relative_change``,
    the same over the samples of :data:`QRS_WINDOW_MS` only; and their ranks (1 = most):
    ``rank`` by mean_abs_change_mv, ``rank_relative`` by relative_change and ``rank_qrs`` by
    qrs_relative_change, the ranking the run report checks.
    """
    diff = after.astype(np.float64) - before
    amplitude = np.ptp(before, axis=-1).mean(0)
    amplitude = np.where(amplitude > 0, amplitude, np.nan)
    mean_abs = np.abs(diff).mean(axis=(0, 2))
    qrs_abs = np.abs(diff[..., window_samples(QRS_WINDOW_MS)]).mean(axis=(0, 2))
    table = pd.DataFrame({"lead": list(LEADS), "mean_abs_change_mv": mean_abs,
                          "relative_change": mean_abs / amplitude})
    table["rank"] = table["mean_abs_change_mv"].rank(ascending=False, method="min").astype(int)
    table["rank_relative"] = _rank(table["relative_change"])
    table["qrs_abs_change_mv"] = qrs_abs
    table["qrs_relative_change"] = qrs_abs / amplitude
    table["rank_qrs"] = _rank(table["qrs_relative_change"])
    return table.sort_values("rank").reset_index(drop=True), diff.mean(0)


def _rank(values: pd.Series) -> pd.Series:
    """Ranks, largest first (1), ties at their lowest rank, NaN last."""
    return values.rank(ascending=False, method="min", na_option="bottom").astype(int)


# --------------------------------------------------------------------------------------
# The summary (s12)
# --------------------------------------------------------------------------------------
SUMMARY_COLUMNS = ["feature", "rank", "unit", "n_beats", "n_patients", "mean_before",
                   "mean_after", "mean_change", "share_fell", "share_rose",
                   "mean_patient_change", "standardized_change", "wilcoxon_p"]


def morphed_split(patients: Sequence[str], beat_folder: Path) -> str:
    """Name of the beat model's split(s) the morphed patients belong to ("" if unknown)."""
    from .morphing import split_patients

    try:
        splits = split_patients(beat_folder)
    except PipelineError:
        return ""
    found = {name for name, members in splits.items() if set(map(str, patients)) & members}
    return " + ".join(sorted(found))


def summarise_morphs(out: Path, beat_model: str = "", n_examples: int = 4,
                     seed: int = 0) -> dict:
    """What the morphs changed from t0 (reconstruction) to final (morph), over the beats that
    were morphed (:func:`scdecg.morphing.took_a_step`). Writes ``morph-summary.csv`` (waveform
    features, ranked), ``morph-outputs.csv`` (the beat model's outputs, apart; outputs without
    a positive validation label left out), ``morph-summary.md`` (both, with n and units),
    ``morph-lead-change.csv`` and the figures. Returns the figures the scripts print."""
    from .io import check_finished, read_array, read_feather, write_csv, write_text
    from .morphing import read_morph_outputs
    from .tables import markdown_table

    out = Path(out)
    check_finished(out)   # s10 killed or stopped midway: refused, naming it
    long = read_feather(out / STATS_TABLE, ["beat_id", "stage", "yhat_scd1", "aVL_rs_diff"])
    table, stages = read_morph_outputs(out)
    ok = took_a_step(table).to_numpy()
    n_unmoved = int((table["status"].eq("ok") & ~ok).sum())
    if not ok.any():
        raise PipelineError(f"{out / MORPH_TABLE}: no successfully morphed beat to summarise"
                            f" ({n_unmoved} started at the stop threshold and took no step)")
    moved_ids = table.loc[ok, "beat_id"]
    long = long[long["beat_id"].isin(moved_ids)]
    run = read_run(out)
    risk_steps = read_array(out / TRAJECTORY_RISK_STEPS, (None,), "s10")
    logits = read_array(out / TRAJECTORY_LOGITS, (len(risk_steps), len(table)), "s10")
    beat_folder = Path(beat_model or run_beat_model(out, run))
    config = read_config(beat_folder)
    patients = table.loc[ok, "ptId"].astype(str) if "ptId" in table else pd.Series(dtype=str)
    split = morphed_split(patients.unique(), beat_folder) if len(patients) else ""
    n_beats, n_patients = int(ok.sum()), int(patients.nunique()) or int(ok.sum())
    who = f"{n_beats} morphed beats of {n_patients} patients" + (f" ({split} split)" if split else "")

    waveform = paired_summary(long, waveform_features(long))
    dropped = outputs_without_positives(config)
    model_outputs = paired_summary(long, output_features(long, dropped))
    write_csv(waveform, out / MORPH_SUMMARY)
    write_csv(model_outputs, out / MORPH_OUTPUTS)
    leads, mean_diff = lead_change(stages["t0"][ok], stages["final"][ok])
    write_csv(leads, out / MORPH_LEAD_CHANGE)
    text = [f"# What the morphs changed (reconstruction -> morph, {who})", "",
            f"{n_unmoved} more beats started at the stop level and took no step: left out. "
            "Changes are morph minus reconstruction. Beats of one patient are not independent: "
            "each patient's beats are averaged, `standardized_change` is the mean of the "
            "patient means over their SD, and `wilcoxon_p` is a Wilcoxon signed-rank test of "
            "the patient means against zero. `share_fell` / `share_rose` count beats. "
            "Delineation points are in ms from R (500 Hz samples x 2).", "",
            "## Waveform features, ranked by |standardized change|", "",
            markdown_table(waveform[SUMMARY_COLUMNS]), "",
            "## Change per lead (relative to its amplitude)", "",
            f"Ranked by the change in the QRS ({QRS_WINDOW_MS[0]:+d} to {QRS_WINDOW_MS[1]:+d} ms "
            "from R: `qrs_*`, `rank_qrs`) over the lead's mean peak-to-peak amplitude; the "
            "whole-beat figures (`mean_abs_change_mv`, `relative_change`, `rank_relative`) "
            "also count the ST segment and the T wave.", "",
            markdown_table(leads.sort_values(["rank_qrs", "lead"])), "",
            "## Beat-model outputs (yhat_*: logits of classification outputs, as published; "
            "p_*: probabilities; regression outputs in their own units)", ""]
    if dropped:
        text += [f"Left out, no positive validation label: {', '.join(dropped)}.", ""]
    text += [markdown_table(model_outputs[SUMMARY_COLUMNS]), ""]
    write_text("\n".join(text), out / MORPH_SUMMARY_MD)

    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(np.flatnonzero(ok), min(n_examples, n_beats), replace=False))
    row = table.set_index("beat_id")
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    titles = [f"{short_beat_name(row.at[i, 'source_file'])}\npredicted risk "
              f"{sig(row.at[i, 'logit_t0']):.2f} -> {sig(row.at[i, 'logit_final']):.2f}"
              for i in ids]
    plot_twelve_lead_overlays(stages["t0"][ids], stages["final"][ids],
                              ("reconstruction", "morph"), titles, out / "morph-examples.png",
                              f"reconstruction vs morph: {len(ids)} examples of {who}")
    plot_lead_change(leads, mean_diff, out / "morph-lead-change.png", who)
    plot_risk_trajectories(risk_steps, logits[:, ok], run.get("stop_logit"),
                           out / "morph-risk-trajectory.png",
                           subtitle=f"predicted scd1 risk along the morph, {who}")
    return {"who": who, "n_unmoved": n_unmoved, "summary": waveform, "outputs": model_outputs,
            "leads": leads}


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------
def short_beat_name(path: str) -> str:
    """``ecg_beats_morphing/<studyId>/<studyId>_<k>.npy`` -> ``<first 8 of studyId>_<k>``."""
    study, k = parse_beat_file(path) or (Path(path).stem, "?")
    return f"{study[:8]}_{k}"


def _figure(*grid, figsize, **subplots):
    """A pyplot-free figure (nothing global to close) and, given a grid, its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return (fig, fig.subplots(*grid, **subplots)) if grid or subplots else fig


def _save(fig, path: Path) -> None:
    from .plotting import save_figure

    save_figure(fig, path, dpi=110, tight=True)


def plot_twelve_lead_overlays(first: np.ndarray, second: np.ndarray, labels: tuple[str, str],
                              titles: Sequence[str], path: Path, suptitle: str = "") -> None:
    """One panel per example beat, its 12 leads stacked from I (top) to V6: ``first`` and
    ``second`` overlaid, in mV, on one vertical scale for every lead and panel (the bar on the
    right). One panel per beat rather than one per lead and beat: 12 times fewer axes draw in
    about a fifth of the time (docs/PERFORMANCE.md)."""
    n = len(first)
    fig, axes = _figure(1, n, figsize=(3.2 * n + 1.0, 11), sharey=True, squeeze=False)
    t = (np.arange(first.shape[-1]) - BEAT_PRE) / FS * 1000
    both = np.concatenate([first, second]).astype(np.float64)
    step = 1.1 * float(np.ptp(both, axis=-1).max()) if both.size else 0.0
    step = step if np.isfinite(step) and step > 0 else 1.0
    for j, ax in enumerate(axes[0]):
        for i in range(len(LEADS)):
            ax.axhline(-step * i, color="0.9", lw=0.5, zorder=0)
            ax.plot(t, first[j, i] - step * i, color="0.4", lw=1,
                    label=labels[0] if i == 0 else None)
            ax.plot(t, second[j, i] - step * i, color="tab:red", lw=1,
                    label=labels[1] if i == 0 else None)
        ax.set_yticks([-step * i for i in range(len(LEADS))], LEADS)
        ax.set_ylim(-step * (len(LEADS) + 0.4), step * 0.8)   # room below V6 for the legend
        ax.set_title(titles[j], fontsize=8)
        ax.set_xlabel("ms from R")
    bar = step / 2
    ax = axes[0, -1]
    ax.plot([t[-1] + 8] * 2, [0, bar], color="k", lw=2, clip_on=False)
    ax.text(t[-1] + 12, bar / 2, f"{bar:.2g} mV", va="center", fontsize=7)
    ax.legend(fontsize=7, loc="lower right")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    _save(fig, path)


def plot_reconstruction(report: pd.DataFrame, beats: np.ndarray, recs: np.ndarray,
                        titles: Sequence[str], path: Path) -> None:
    """Per-lead RMSE (bars, error bars = SD over beats) and real vs reconstructed examples."""
    per_lead = report[report["lead"] != "all"]
    n = len(beats)
    fig = _figure(figsize=(4 + 3 * n, 6))
    grid = fig.add_gridspec(3, n + 1, width_ratios=[1.6] + [1] * n)
    ax = fig.add_subplot(grid[:, 0])
    ax.barh(per_lead["lead"], per_lead["rmse"], xerr=per_lead["rmse_beat_sd"], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel("RMSE (mV), error bar = SD over beats")
    ax.set_title("reconstruction error, validation beats")
    t = (np.arange(beats.shape[-1]) - BEAT_PRE) / FS * 1000
    for j in range(n):
        for k, lead in enumerate(("I", "aVL", "V2")):
            a = fig.add_subplot(grid[k, j + 1])
            i = LEADS.index(lead)
            a.plot(t, beats[j, i], color="0.4", lw=1, label="real")
            a.plot(t, recs[j, i], color="tab:red", lw=1, label="reconstructed")
            a.set_title(f"{titles[j]} {lead}", fontsize=8)
            a.set_yticks([])
    fig.axes[1].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def plot_beats(beats: np.ndarray, path: Path, title: str = "") -> None:
    """Each beat's 12 leads stacked (offset) in its own panel."""
    n = len(beats)
    fig, axes = _figure(1, n, figsize=(2.6 * n, 7), squeeze=False)
    t = (np.arange(beats.shape[-1]) - BEAT_PRE) / FS * 1000
    for j, ax in enumerate(axes[0]):
        for i, lead in enumerate(LEADS):
            ax.plot(t, beats[j, i] - 1.5 * i, lw=0.8, color="k")
        ax.set_yticks([-1.5 * i for i in range(12)], LEADS if j == 0 else [""] * 12)
        ax.set_xlabel("ms from R")
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_lead_change(table: pd.DataFrame, mean_diff: np.ndarray, path: Path,
                     subtitle: str = "") -> None:
    """Change per lead relative to its amplitude -- bars ranked by the QRS window's change (the
    ranking the run report checks; its mV value beside each bar), the whole beat's beside them
    -- and the signed mean difference waveform per lead, the QRS window shaded."""
    fig, axes = _figure(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [1, 1.6]})
    ranked = table.sort_values(["rank_qrs", "lead"])
    colors = ["tab:red" if lead == "aVL" else "tab:blue" for lead in ranked["lead"]]
    qrs = 100 * ranked["qrs_relative_change"].to_numpy(dtype=np.float64)
    whole = 100 * ranked["relative_change"].to_numpy(dtype=np.float64)
    y = np.arange(len(ranked))
    lo, hi = QRS_WINDOW_MS
    ax = axes[0]
    ax.barh(y - 0.2, qrs, height=0.4, color=colors, label=f"QRS, {lo:+d} to {hi:+d} ms (ranked)")
    ax.barh(y + 0.2, whole, height=0.4, color="0.7", label="whole beat")
    for k, (p, mv) in enumerate(zip(qrs, ranked["qrs_abs_change_mv"])):
        ax.text(p, k - 0.2, f" {mv:.3g} mV", va="center", fontsize=7)
    ax.set_yticks(y, [f"{r}. {lead}" for r, lead in zip(ranked["rank_qrs"], ranked["lead"])])
    ax.invert_yaxis()
    ax.set_xlabel("mean |morph - reconstruction| / mean peak-to-peak amplitude (%)")
    ax.set_title("change per lead relative to its amplitude (rank in the QRS)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.margins(x=0.25)
    t = (np.arange(mean_diff.shape[-1]) - BEAT_PRE) / FS * 1000
    step = 2 * np.abs(mean_diff).max() or 1.0
    ax = axes[1]
    ax.axvspan(lo, hi, color="0.93", label="QRS window")
    for i, lead in enumerate(LEADS):
        ax.axhline(-step * i, color="0.85", lw=0.5)
        ax.plot(t, mean_diff[i] - step * i, lw=1.5 if i == AVL else 0.8,
                color="tab:red" if i == AVL else "k", label="aVL" if i == AVL else None)
    bar = step / 2
    ax.plot([t[-1] + 8] * 2, [0, bar], color="k", lw=2, clip_on=False)
    ax.text(t[-1] + 12, bar / 2, f"{bar:.2g} mV", va="center", fontsize=7)
    ax.set_yticks([-step * i for i in range(12)], LEADS)
    ax.set_xlabel("ms from R")
    ax.set_title("mean signed difference, morph - reconstruction (mV, one row per lead)",
                 fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    if subtitle:
        fig.suptitle(subtitle)
    fig.tight_layout()
    _save(fig, path)


def plot_risk_trajectories(steps: np.ndarray, logits: np.ndarray, stop_logit: float | None,
                           path: Path, n_lines: int = 50, subtitle: str = "") -> None:
    """Predicted scd1 risk along the morph: a sample of beats, the median and the stop level."""
    risk = 1 / (1 + np.exp(-logits.astype(np.float64)))
    fig, ax = _figure(1, 1, figsize=(7, 4.5))
    shown = np.linspace(0, risk.shape[1] - 1, min(n_lines, risk.shape[1])).astype(int)
    for k, j in enumerate(shown):
        ax.plot(steps, risk[:, j], color="tab:blue", alpha=0.25, lw=0.8,
                label=f"one beat ({len(shown)} of {risk.shape[1]} shown)" if k == 0 else None)
    ax.plot(steps, np.nanmedian(risk, axis=1), color="k", lw=2, label="median of all beats")
    if stop_logit is not None:
        ax.axhline(1 / (1 + np.exp(-stop_logit)), color="tab:red", ls="--", label="stop level")
    ax.set_xlabel("morph step")
    ax.set_ylabel("predicted scd1 risk (probability)")
    ax.set_title(subtitle or "predicted risk along the morph", fontsize=10)
    ax.legend(fontsize=8)
    _save(fig, path)
