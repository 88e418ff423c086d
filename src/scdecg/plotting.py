"""A 12-lead ECG drawn as on clinical paper (pipeline step x08).

Layout: three rows of four 2.5-s segments — I, aVR, V1, V4 / II, aVL, V2, V5 / III, aVF, V3,
V6, each segment showing its own lead over its own quarter of the 10-s record — and a 10-s lead II
rhythm strip below. Standard paper: 25 mm/s, 10 mm/mV, a 1-mm minor and 5-mm major grid. The
axes' data units are millimetres and the figure is sized so that 1 unit is 1 mm on paper at
100% print scale. Each lead is drawn minus its own mode (the pipeline's baseline). A 1-mV,
200-ms calibration pulse opens every row.

Optional markers: the detected R-peaks (ticks above every row) and the aVL R and S points of
x06 (on every beat of the aVL segment that went into the median beat).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .constants import FS, LEAD_INDEX, N_LEADS
from .errors import PipelineError
from .signals import zero_mode

LAYOUT: tuple[tuple[str, ...], ...] = (("I", "aVR", "V1", "V4"),
                                       ("II", "aVL", "V2", "V5"),
                                       ("III", "aVF", "V3", "V6"))
RHYTHM_LEAD = "II"
MM_PER_S = 25.0
MM_PER_MV = 10.0
SEGMENT_S = 2.5
ROW_MM = 35.0              # vertical space per row (3.5 mV)
CAL_MM = 10.0              # left margin holding the calibration pulse
CAL_PULSE_S = 0.2
MARGIN_MM = 5.0
MINOR_MM, MAJOR_MM = 1.0, 5.0
GRID_MINOR_COLOUR, GRID_MAJOR_COLOUR = "#f6c6c6", "#e28a8a"
TRACE_COLOUR = "black"
FORMATS = (".png", ".pdf")


def row_baselines(n_rows: int = len(LAYOUT) + 1) -> np.ndarray:
    """Height (mm) of each row's 0-mV line, top row first; the rhythm strip is the last row."""
    return MARGIN_MM + ROW_MM * (n_rows - np.arange(n_rows) - 0.5)


def paper_size_mm(duration_s: float) -> tuple[float, float]:
    """(width, height) of the drawing in mm."""
    return CAL_MM + duration_s * MM_PER_S + MARGIN_MM, 2 * MARGIN_MM + ROW_MM * (len(LAYOUT) + 1)


def segment_slice(column: int, fs: int = FS) -> slice:
    """Samples of the 10-s record shown in layout column ``column``."""
    n = int(round(SEGMENT_S * fs))
    return slice(column * n, (column + 1) * n)


def plot_ecg(ecg_mv: np.ndarray, title: str = "", rpeaks: np.ndarray | None = None,
             avl_r: np.ndarray | None = None, avl_s: np.ndarray | None = None, fs: int = FS):
    """Draw one (12, T) ECG in mV; returns the matplotlib Figure.

    ``rpeaks``, ``avl_r``, ``avl_s`` are sample indices in the record (markers are optional).
    Every trace is a Line2D labelled with its lead (the rhythm strip ``"II (rhythm)"``). The
    figure is built without pyplot, so it needs no GUI and leaves the pyplot state alone.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    ecg = zero_mode(np.asarray(ecg_mv, dtype=np.float64))
    duration = ecg.shape[-1] / fs
    width, height = paper_size_mm(duration)
    fig = Figure(figsize=(width / 25.4, height / 25.4))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-CAL_MM, width - CAL_MM)
    ax.set_ylim(0, height)
    ax.set_axis_off()

    for step, colour, gid, lw in ((MINOR_MM, GRID_MINOR_COLOUR, "grid-minor", 0.3),
                                  (MAJOR_MM, GRID_MAJOR_COLOUR, "grid-major", 0.6)):
        xs = np.arange(-CAL_MM, width - CAL_MM + 1e-9, step)
        ys = np.arange(0, height + 1e-9, step)
        segments = [[(x, 0), (x, height)] for x in xs] + [[(-CAL_MM, y), (width - CAL_MM, y)]
                                                           for y in ys]
        ax.add_collection(LineCollection(segments, colors=colour, linewidths=lw, gid=gid,
                                         zorder=0))

    t_mm = np.arange(ecg.shape[-1]) / fs * MM_PER_S
    baselines = row_baselines()
    rows = [[(name, segment_slice(c, fs)) for c, name in enumerate(names)] for names in LAYOUT]
    rows.append([(RHYTHM_LEAD, slice(0, ecg.shape[-1]))])
    for baseline, row in zip(baselines, rows):
        _calibration_pulse(ax, baseline)
        for column, (name, span) in enumerate(row):
            label = f"{name} (rhythm)" if len(row) == 1 else name
            ax.plot(t_mm[span], baseline + MM_PER_MV * ecg[LEAD_INDEX[name], span],
                    color=TRACE_COLOUR, linewidth=0.6, label=label, zorder=2)
            ax.text(t_mm[span][0] + 1.0, baseline + 0.3 * ROW_MM, label.replace(" (rhythm)", ""),
                    fontsize=9, va="bottom", zorder=3)
            if column:  # a short divider where one lead's segment hands over to the next
                ax.plot([t_mm[span][0]] * 2, [baseline - 3, baseline + 3], color=TRACE_COLOUR,
                        linewidth=0.8, gid="divider", zorder=2)
        if rpeaks is not None and len(rpeaks):
            ax.plot(np.asarray(rpeaks) / fs * MM_PER_S, np.full(len(rpeaks), baseline + 0.42 * ROW_MM),
                    linestyle="none", marker="v", markersize=3, color="tab:blue", gid="rpeaks",
                    zorder=3)

    aVL_row, aVL_col = next((r, names.index("aVL")) for r, names in enumerate(LAYOUT)
                            if "aVL" in names)
    shown = segment_slice(aVL_col, fs)
    for points, colour, gid in ((avl_r, "tab:red", "aVL-R"), (avl_s, "tab:green", "aVL-S")):
        if points is None:
            continue
        points = np.asarray(points, dtype=int)
        points = points[(points >= shown.start) & (points < shown.stop)]
        ax.plot(t_mm[points], baselines[aVL_row] + MM_PER_MV * ecg[LEAD_INDEX["aVL"], points],
                linestyle="none", marker="o", markersize=3, color=colour, gid=gid, zorder=4)
    if title:
        ax.text(0, height - 1.5, title, fontsize=9, va="top", zorder=3)
    return fig


def _calibration_pulse(ax, baseline: float) -> None:
    """A 1-mV, 200-ms rectangle in the left margin."""
    x0, w, h = -CAL_MM + 2.0, CAL_PULSE_S * MM_PER_S, MM_PER_MV
    ax.plot([x0 - 1.5, x0, x0, x0 + w, x0 + w, x0 + w + 1.5],
            [baseline, baseline, baseline + h, baseline + h, baseline, baseline],
            color=TRACE_COLOUR, linewidth=0.8, gid="calibration", zorder=2)


def save_figure(fig, path: str | Path, dpi: int = 200, tight: bool = False) -> None:
    """Write ``fig`` as PNG or PDF (by extension), atomically and without a time stamp or
    software version (a rerun writes the same bytes); ``tight`` crops to the drawn area.
    The one way the package saves a figure."""
    from .io import atomic_path

    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise PipelineError(f"{path}: unsupported figure format {path.suffix!r} "
                            f"(use {' or '.join(FORMATS)})")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lower()[1:], dpi=dpi,
                    **({"bbox_inches": "tight"} if tight else {}),
                    metadata={"Software": None} if path.suffix.lower() == ".png"
                    else {"Creator": None, "Producer": None, "CreationDate": None})


def plot_cohort_ecg(covariate_df: str | Path, ecg_dir: str | Path, study_id: str | None,
                    output: str | Path, markers: bool = True, dpi: int = 200) -> str:
    """Draw the 10-s ECG ``study_id`` (default: the cohort table's first row) of x03's
    ``ecg_dir`` into ``output`` (x08), with x06's beats and aVL R and S points when
    ``markers``; returns the studyId drawn. A missing row, a bad ``scaling_factor`` or an
    unusable ECG file is one :class:`PipelineError` naming it."""
    from .features import HALF_WINDOW, avl_features
    from .io import (UnreadableArray, check_finished, load_signal, plain_value, read_feather,
                     record_path, run_first)
    from .signals import to_millivolts

    cohort = read_feather(covariate_df, ["studyId", "scaling_factor"], step="x02")
    if not len(cohort):
        raise PipelineError(f"{covariate_df}: no rows")
    study_id = str(cohort["studyId"].iloc[0]) if study_id is None else study_id
    match = cohort[cohort["studyId"].astype(str) == study_id]
    if match.empty:
        raise PipelineError(f"{covariate_df}: no row with studyId {study_id!r}")
    row = match.iloc[0]
    value = plain_value(row["scaling_factor"])
    scaling = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if not (np.isfinite(scaling) and scaling > 0):   # as x04 and x06 refuse it
        raise PipelineError(f"{covariate_df}: scaling_factor {value!r} of studyId "
                            f"{study_id!r} is not a positive number")
    path = record_path(ecg_dir, study_id)
    check_finished(ecg_dir)   # x03 killed or stopped midway: refused
    if not path.exists():
        raise PipelineError(f"{path}: file not found ({run_first('x03')})")
    try:   # the rule x04, x06 and training apply: no unsigned, complex or text samples
        stored = load_signal(path)
    except UnreadableArray as exc:
        raise PipelineError(f"{path}: {exc.detail} (rerun x03)") from exc
    except OSError as exc:
        raise PipelineError(f"{path}: not a readable .npy file ({exc})") from exc
    if stored.ndim != 2 or stored.shape[0] != N_LEADS or stored.shape[1] < FS:
        raise PipelineError(f"{path}: shape {stored.shape}, expected ({N_LEADS}, samples) "
                            f"with at least {FS} samples (rerun x03)")
    ecg = to_millivolts(stored, float(scaling))
    if not np.isfinite(ecg).all():
        raise PipelineError(f"{path}: holds non-finite samples (NaN or inf)")

    marks: dict[str, object] = {}
    note = ""
    if markers:
        result = avl_features(ecg)
        marks["rpeaks"] = result.rpeaks
        if result.r_index >= 0:
            start = result.used_rpeaks - HALF_WINDOW
            marks["avl_r"], marks["avl_s"] = start + result.r_index, start + result.s_index
        note = (f"   aVL_rs_diff {result.rs_diff:.4f}, aVL_rs_diff_2 {result.rs_diff_2:.4f}"
                if result.status != "failed" else f"   x06: {result.reason}")
    title = f"{study_id}   group {row.get('group', '?')}   25 mm/s, 10 mm/mV{note}"
    save_figure(plot_ecg(ecg, title=title, **marks), output, dpi=dpi)
    return study_id
