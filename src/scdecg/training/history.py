"""Learning curves of a training run: ``history.csv`` and ``learning_curve.png``.

Each epoch's record (epoch, learning rate, training and validation loss, every output's
validation AUC or R² and masked loss, seconds) becomes one row of ``history.csv`` in the
model folder; the figure shows the losses and the headline outputs' AUC/R² per epoch, with the
epoch chosen as best marked. The table is rewritten after every epoch, so a stopped run has
it; the figure is drawn when training ends (drawing it every epoch cost 0.2-0.4 s per epoch).
``seconds`` is the only column that differs between otherwise identical runs.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..io import write_csv
from ..workspace import HISTORY_FILE, LEARNING_CURVE

#: Outputs shown on epoch lines and in the figure when the model has them.
HEADLINE_OUTPUTS: tuple[str, ...] = ("scd1", "scd2", "age")
MAX_HEADLINE = 3
LEADING = ("epoch", "lr", "seconds", "train_loss", "val_loss")


def headline_outputs(outputs: Sequence[str], monitor: str = "val_loss") -> list[str]:
    """The outputs worth a place on an epoch line: the monitored one, then
    :data:`HEADLINE_OUTPUTS` present in ``outputs``, else the first outputs (at most 3)."""
    chosen: list[str] = []
    for prefix in ("auc_", "r2_", "loss_"):
        if monitor.startswith(prefix) and monitor[len(prefix):] in outputs:
            chosen.append(monitor[len(prefix):])
    chosen += [name for name in HEADLINE_OUTPUTS if name in outputs and name not in chosen]
    chosen += [name for name in outputs if name not in chosen]
    return chosen[:MAX_HEADLINE]


def history_frame(history: Sequence[dict], outputs: Sequence[str] = ()) -> pd.DataFrame:
    """One row per epoch; the run's columns first, then the per-output columns: with
    ``outputs``, each output's AUC or R² in the outputs' order, then their losses (the order
    a run writes, also after a resume, whose checkpoint stores the rows with sorted keys);
    without, as recorded."""
    frame = pd.DataFrame(list(history))
    first = [c for c in LEADING if c in frame.columns]
    rest = [c for c in frame.columns if c not in first]
    if outputs:
        place = {name: i for i, name in enumerate(outputs)}

        def key(column: str) -> tuple[int, int]:
            prefix, _, output = column.partition("_")
            return (prefix == "loss", place.get(output, len(place)))

        rest = sorted(rest, key=key)   # stable: unknown columns keep their recorded order
    return frame[first + rest]


def write_history(folder: str | Path, history: Sequence[dict], outputs: Sequence[str],
                  monitor: str = "val_loss", best_epoch: int = 0, figure: bool = True) -> None:
    """Write ``history.csv`` and (with ``figure``) ``learning_curve.png`` into ``folder``,
    atomically."""
    folder = Path(folder)
    frame = history_frame(history, outputs)
    write_csv(frame, folder / HISTORY_FILE)
    if figure and len(frame):
        from ..plotting import save_figure

        save_figure(learning_curve(frame, outputs, monitor, best_epoch),
                    folder / LEARNING_CURVE, dpi=120)


def learning_curve(frame: pd.DataFrame, outputs: Sequence[str], monitor: str = "val_loss",
                   best_epoch: int = 0):
    """Losses (left) and the headline outputs' validation AUC / R² (right) per epoch."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.6))
    loss_ax, score_ax = fig.subplots(1, 2)
    epochs = frame["epoch"]
    for column, label in (("train_loss", "training loss"), ("val_loss", "validation loss")):
        if column in frame:
            loss_ax.plot(epochs, frame[column], marker="o", markersize=3, label=label)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("masked loss")
    loss_ax.legend(frameon=False)
    plotted = 0
    for name in headline_outputs(outputs, monitor):
        for kind, label in (("auc", "AUC"), ("r2", "R²")):
            column = f"{kind}_{name}"
            if column in frame and frame[column].notna().any():
                score_ax.plot(epochs, frame[column], marker="o", markersize=3,
                              label=f"{name} {label}")
                plotted += 1
    score_ax.set_xlabel("epoch")
    score_ax.set_ylabel("validation AUC / R²")
    if plotted:
        score_ax.legend(frameon=False)
    else:
        score_ax.text(0.5, 0.5, "no output with both classes in validation", ha="center",
                      va="center", transform=score_ax.transAxes)
    for ax in (loss_ax, score_ax):
        if best_epoch:
            ax.axvline(best_epoch, color="0.6", linestyle="--", linewidth=0.8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"learning curve (best epoch {best_epoch} by {monitor})" if best_epoch
                 else "learning curve")
    fig.tight_layout()
    return fig


def headline_scores(record: dict, outputs: Sequence[str], monitor: str = "val_loss") -> list[str]:
    """``"scd1 AUC 0.712"``-style entries for the headline outputs; NaN ones left out."""
    scores = []
    for name in headline_outputs(outputs, monitor):
        for kind in ("auc", "r2"):
            value = record.get(f"{kind}_{name}")
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                scores.append(f"{name} {kind.upper()} {value:.3f}")
    return scores
