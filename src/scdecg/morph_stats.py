"""What the morphs change: per-beat features at each stage, paired summaries, figures.

For every morphed beat and each stage -- ``raw`` (the real beat), ``t0`` (its reconstruction)
and ``final`` (the morph) -- :func:`stage_features` measures every beat-model output, each
lead's minimum and maximum, a neurokit2 delineation of each lead (P/Q/R/S/T onsets, peaks and
offsets as sample indices relative to the beat) and the aVL R->S slope features. The paired
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
from .features import FEATURE_COLUMNS, MIN_AVL_RANGE_MV, AvlFeatures, rs_slopes
from .parallel import imap

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


def avl_slopes(beat: np.ndarray) -> tuple[float, float, str]:
    """``(aVL_rs_diff, aVL_rs_diff_2, reason)`` of one (12, 300) beat, R searched around BEAT_PRE.

    The x06 definition (:func:`scdecg.features.rs_slopes`) applied to the beat's aVL lead in
    place of the ECG's aVL median beat. NaN with a reason when it does not apply.
    """
    lead = np.asarray(beat[AVL], dtype=np.float64)
    if not np.isfinite(lead).all():
        return np.nan, np.nan, "non-finite aVL"
    if np.ptp(lead) < MIN_AVL_RANGE_MV:
        return np.nan, np.nan, f"flat aVL (range < {MIN_AVL_RANGE_MV} mV)"
    out = rs_slopes(lead, AvlFeatures(), centre=BEAT_PRE)
    return out.rs_diff, out.rs_diff_2, out.reason


def delineate_lead(signal: np.ndarray, fs: int = FS, n_tiles: int = N_TILES) -> dict[str, float]:
    """Delineate one lead of one beat: tile it ``n_tiles`` times, run neurokit2's DWT
    delineator with the known R-peaks, and read the middle copy (indices relative to the
    beat's first sample; a point may fall slightly outside 0..299). Raises on failure."""
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


def delineate_beat(beat: np.ndarray) -> tuple[dict[str, float], list[str]]:
    """All 12 leads of one beat: ``({"<wave>_<lead>": index}, [failure reasons])``."""
    row: dict[str, float] = {}
    failures = []
    for i, lead in enumerate(LEADS):
        try:
            points = delineate_lead(beat[i])
        except Exception as exc:  # neurokit2 raises many types on odd beats
            points = {stem: np.nan for stem in WAVES.values()}
            failures.append(f"{lead}: {type(exc).__name__}")
        row.update({f"{stem}_{lead}": v for stem, v in points.items()})
    return row, failures


def stage_features(stages: dict[str, np.ndarray], outputs: np.ndarray | dict[str, np.ndarray],
                   output_names: Sequence[str], output_types: Sequence[str],
                   target_stats: dict[str, dict[str, float]] | None = None,
                   delineate: bool = True, max_delineate: int = 0, n_jobs: int = 0,
                   progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long table (one row per beat x stage) of every measurement, plus a failure log.

    ``stages`` maps stage name -> beats (N, 12, 300); ``outputs`` maps stage name -> the beat
    model's raw outputs (N, n_outputs) in ``output_names`` order. Classification outputs
    become probabilities ``yhat_<name>`` (and ``logit_<name>``); regression outputs are put
    back on their own scale with the training ``target_stats`` (``{name: {"mean", "sd"}}``,
    the beat model's z-scoring) when given. ``max_delineate`` > 0 delineates only the first
    that many beats (the delineator is the slow part); the others' delineation columns are NaN.
    """
    target_stats = target_stats or {}
    frames, failures = [], []
    for stage, beats in stages.items():
        raw = np.asarray(outputs[stage], dtype=np.float64)
        cols = {"beat_id": np.arange(len(beats)), "stage": stage}
        for j, (name, kind) in enumerate(zip(output_names, output_types)):
            if kind == "classification":
                cols[f"logit_{name}"] = raw[:, j]
                cols[f"yhat_{name}"] = 1 / (1 + np.exp(-raw[:, j]))
            else:
                st = target_stats.get(name, {"mean": 0.0, "sd": 1.0})
                cols[f"yhat_{name}"] = raw[:, j] * st["sd"] + st["mean"]
        frame = pd.concat([pd.DataFrame(cols), lead_extrema(beats)], axis=1)
        slopes = [avl_slopes(b) for b in beats]
        for k, name in enumerate(FEATURE_COLUMNS):
            frame[name] = [s[k] for s in slopes]
        failures += [{"beat_id": i, "stage": stage, "step": "aVL slopes", "reason": s[2]}
                     for i, s in enumerate(slopes) if s[2]]
        if delineate:
            todo = list(beats[:max_delineate] if max_delineate > 0 else beats)
            results = list(imap(delineate_beat, todo, n_jobs=n_jobs, chunksize=4,
                                desc=f"delineate {stage}", progress=progress))
            points = pd.DataFrame([r for r, _ in results], index=range(len(todo)),
                                  columns=[f"{w}_{lead}" for lead in LEADS for w in WAVES.values()])
            frame = pd.concat([frame, points.reindex(range(len(beats)))], axis=1)
            failures += [{"beat_id": i, "stage": stage, "step": "delineation", "reason": f}
                         for i, (_, fs) in enumerate(results) for f in fs]
        frames.append(frame)
    log = pd.DataFrame(failures, columns=["beat_id", "stage", "step", "reason"])
    return pd.concat(frames, ignore_index=True), log


# --------------------------------------------------------------------------------------
# Paired summaries
# --------------------------------------------------------------------------------------
def paired_summary(long: pd.DataFrame, features: Sequence[str], before: str = "t0",
                   after: str = "final") -> pd.DataFrame:
    """Per feature, the paired change ``after - before`` over beats with both values.

    Columns: feature, n, mean_before, mean_after, mean_change, sd_change, standardized_change
    (mean / SD of the change), share_fell, share_rose, t_p (paired t), wilcoxon_p, rank
    (1 = largest |standardized_change|).
    """
    from scipy import stats

    wide_b = long[long["stage"] == before].set_index("beat_id")
    wide_a = long[long["stage"] == after].set_index("beat_id")
    rows = []
    for f in features:
        pair = pd.concat([wide_b[f].rename("b"), wide_a[f].rename("a")], axis=1).dropna()
        d = (pair["a"] - pair["b"]).to_numpy(dtype=np.float64)
        n = len(d)
        sd = d.std(ddof=1) if n > 1 else np.nan
        row = {"feature": f, "n": n, "mean_before": pair["b"].mean(), "mean_after": pair["a"].mean(),
               "mean_change": d.mean() if n else np.nan, "sd_change": sd,
               "standardized_change": d.mean() / sd if n > 1 and sd > 0 else np.nan,
               "share_fell": (d < 0).mean() if n else np.nan,
               "share_rose": (d > 0).mean() if n else np.nan, "t_p": np.nan, "wilcoxon_p": np.nan}
        if n > 1 and sd > 0:
            row["t_p"] = stats.ttest_rel(pair["a"], pair["b"]).pvalue
            if np.any(d != 0):
                row["wilcoxon_p"] = stats.wilcoxon(d).pvalue
        rows.append(row)
    out = pd.DataFrame(rows)
    order = out["standardized_change"].abs().rank(ascending=False, method="min", na_option="bottom")
    out.insert(1, "rank", order.astype(int))
    return out.sort_values(["rank", "feature"]).reset_index(drop=True)


def lead_change(before: np.ndarray, after: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """How much each lead changed from ``before`` to ``after`` (both (N, 12, 300)).

    Returns a table (lead, mean_abs_change_mv = mean over beats and samples of |after-before|,
    relative_change = that over the lead's mean peak-to-peak amplitude before, ``rank`` by
    mean_abs_change_mv, ``rank_relative`` by relative_change -- low-amplitude leads such as
    aVL change little in mV) and the signed mean difference waveform per lead (12, 300).
    """
    diff = after.astype(np.float64) - before
    mean_abs = np.abs(diff).mean(axis=(0, 2))
    amplitude = np.ptp(before, axis=-1).mean(0)
    table = pd.DataFrame({"lead": list(LEADS), "mean_abs_change_mv": mean_abs,
                          "relative_change": mean_abs / np.where(amplitude > 0, amplitude, np.nan)})
    table["rank"] = table["mean_abs_change_mv"].rank(ascending=False, method="min").astype(int)
    table["rank_relative"] = table["relative_change"].rank(ascending=False, method="min",
                                                           na_option="bottom").astype(int)
    return table.sort_values("rank").reset_index(drop=True), diff.mean(0)


def feature_columns(long: pd.DataFrame) -> list[str]:
    """The numeric measurement columns of a morph-stats table (not ids or logits)."""
    skip = {"beat_id"}
    return [c for c in long.columns if c not in skip and not c.startswith("logit_")
            and pd.api.types.is_numeric_dtype(long[c])]


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------
def short_beat_name(path: str) -> str:
    """``ecg_beats_morphing/<studyId>/<studyId>_<k>.npy`` -> ``<first 8 of studyId>_<k>``."""
    study, _, k = Path(path).stem.rpartition("_")
    return f"{study[:8]}_{k}"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    from .io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=110,
                    bbox_inches="tight")
    _pyplot().close(fig)


def plot_twelve_lead_overlays(first: np.ndarray, second: np.ndarray, labels: tuple[str, str],
                              titles: Sequence[str], path: Path, suptitle: str = "") -> None:
    """One column per example beat, one row per lead: ``first`` and ``second`` overlaid."""
    plt = _pyplot()
    n = len(first)
    fig, axes = plt.subplots(12, n, figsize=(3.2 * n, 14), sharex=True, squeeze=False)
    t = (np.arange(first.shape[-1]) - BEAT_PRE) / FS * 1000
    for j in range(n):
        for i, lead in enumerate(LEADS):
            ax = axes[i, j]
            ax.plot(t, first[j, i], color="0.4", lw=1, label=labels[0])
            ax.plot(t, second[j, i], color="tab:red", lw=1, label=labels[1])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(lead, rotation=0, ha="right", va="center")
        axes[0, j].set_title(titles[j], fontsize=8)
        axes[-1, j].set_xlabel("ms from R")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    if suptitle:
        fig.suptitle(suptitle)
    _save(fig, path)


def plot_reconstruction(report: pd.DataFrame, beats: np.ndarray, recs: np.ndarray,
                        titles: Sequence[str], path: Path) -> None:
    """Per-lead RMSE (bars, error bars = SD over beats) and real vs reconstructed examples."""
    plt = _pyplot()
    per_lead = report[report["lead"] != "all"]
    n = len(beats)
    fig = plt.figure(figsize=(4 + 3 * n, 6))
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
    plt = _pyplot()
    n = len(beats)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 7), squeeze=False)
    t = (np.arange(beats.shape[-1]) - BEAT_PRE) / FS * 1000
    for j, ax in enumerate(axes[0]):
        for i, lead in enumerate(LEADS):
            ax.plot(t, beats[j, i] - 1.5 * i, lw=0.8, color="k")
        ax.set_yticks([-1.5 * i for i in range(12)], LEADS if j == 0 else [""] * 12)
        ax.set_xlabel("ms from R")
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_lead_change(table: pd.DataFrame, mean_diff: np.ndarray, path: Path) -> None:
    """Mean |final - t0| per lead (bars) and the signed mean difference waveform per lead."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1, 2]})
    ordered = table.set_index("lead").loc[list(LEADS)]
    colors = ["tab:red" if lead == "aVL" else "tab:blue" for lead in LEADS]
    axes[0].barh(list(LEADS), ordered["mean_abs_change_mv"], color=colors)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("mean |final - t0| (mV)")
    axes[0].set_title("change per lead")
    t = (np.arange(mean_diff.shape[-1]) - BEAT_PRE) / FS * 1000
    step = 2 * np.abs(mean_diff).max() or 1.0
    for i in range(len(LEADS)):
        axes[1].plot(t, mean_diff[i] - step * i, lw=1.5 if i == AVL else 0.8,
                     color="tab:red" if i == AVL else "k")
    axes[1].set_yticks([-step * i for i in range(12)], LEADS)
    axes[1].set_xlabel("ms from R")
    axes[1].set_title("mean signed difference final - t0 (offset per lead)")
    fig.tight_layout()
    _save(fig, path)


def plot_risk_trajectories(steps: np.ndarray, logits: np.ndarray, stop_logit: float | None,
                           path: Path, n_lines: int = 50) -> None:
    """Predicted scd1 risk along the morph: a sample of beats, the median and the stop level."""
    plt = _pyplot()
    risk = 1 / (1 + np.exp(-logits.astype(np.float64)))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for j in np.linspace(0, risk.shape[1] - 1, min(n_lines, risk.shape[1])).astype(int):
        ax.plot(steps, risk[:, j], color="tab:blue", alpha=0.25, lw=0.8)
    ax.plot(steps, np.nanmedian(risk, axis=1), color="k", lw=2, label="median")
    if stop_logit is not None:
        ax.axhline(1 / (1 + np.exp(-stop_logit)), color="tab:red", ls="--", label="stop level")
    ax.set_xlabel("step")
    ax.set_ylabel("predicted scd1 risk")
    ax.legend()
    _save(fig, path)
