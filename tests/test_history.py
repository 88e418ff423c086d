"""Learning curves: history.csv and learning_curve.png per training run; short epoch lines."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from scdecg.training.history import headline_outputs
from scdecg.training.loop import epoch_line
from training_fixtures import ECG_OUTPUTS, TINY, make_workspace, run_main

TRAIN = "01_Predictive_Model/x01_train_10s_ecg.py"


def test_headline_outputs_put_the_monitored_one_first():
    assert headline_outputs(ECG_OUTPUTS) == ["scd1", "scd2"] + [
        o for o in ECG_OUTPUTS if o not in ("scd1", "scd2")][:1]
    assert headline_outputs(ECG_OUTPUTS, "auc_dead1") == ["dead1", "scd1", "scd2"]
    assert headline_outputs(["age", "qrsDuration"], "r2_qrsDuration") == ["qrsDuration", "age"]
    assert headline_outputs(["x", "y", "z", "w"]) == ["x", "y", "z"]


def test_epoch_line_prints_headline_outputs_without_nan():
    record = {"epoch": 3, "lr": 1e-3, "train_loss": 0.5, "val_loss": 0.6,
              **{f"auc_{o}": math.nan for o in ECG_OUTPUTS}}
    record.update(auc_scd1=0.71234, auc_scd3mo=0.9, auc_dead1=0.8)  # scd2 has no positives
    line = epoch_line(record, ECG_OUTPUTS, improved=True)
    assert line.endswith("*  scd1 AUC 0.712, scd3mo AUC 0.900")
    assert "nan" not in line and "dead1" not in line and "scd2" not in line


def test_training_writes_history_and_learning_curve(tmp_path):
    make_workspace(tmp_path, n_patients=30, n_samples=600, beats=1)
    code, out, err = run_main(TRAIN, *TINY, "--length", "500", "--max-epochs", "2",
                              "--min-epochs", "2", cwd=tmp_path)
    assert code == 0, err
    folder = tmp_path / "modelfits_ecg" / "ntuh_scd_model_demo"
    history = pd.read_csv(folder / "history.csv")
    config = json.loads((folder / "config.json").read_text())
    assert list(history.columns[:5]) == ["epoch", "lr", "seconds", "train_loss", "val_loss"]
    assert history["epoch"].tolist() == [1, 2] and (history["seconds"] > 0).all()
    np.testing.assert_allclose(history["val_loss"], [h["val_loss"] for h in config["history"]])
    assert {f"auc_{o}" for o in ECG_OUTPUTS} <= set(history.columns)
    assert all("seconds" not in h for h in config["history"])  # config.json stays reproducible
    assert (folder / "learning_curve.png").stat().st_size > 5_000
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and all("nan" not in line for line in epoch_lines)
    assert all(line.count(" AUC ") <= 3 for line in epoch_lines)
    from scdecg.report import Report, section_learning_curves

    report = Report(tmp_path, tmp_path / "reports")
    section_learning_curves(report)
    section = "\n".join(report.lines)
    assert section.lstrip().startswith("## Learning curves")
    assert "### modelfits_ecg/ntuh_scd_model_demo" in section and "2 epochs in" in section
    assert "figures/ntuh_scd_model_demo-learning_curve.png" in section
    assert (tmp_path / "reports" / "figures" / "ntuh_scd_model_demo-learning_curve.png").exists()


def test_a_resumed_history_keeps_the_columns_in_the_runs_order():
    """The checkpoint stores history rows with sorted keys; history.csv after a resume had its
    metric columns in alphabetical order (auc_Acute_MI1 first) instead of the heads' order."""
    from scdecg.training.history import history_frame

    outputs = ["scd3mo", "scd1", "age", "Acute_MI1"]
    row = {"epoch": 1, "lr": 1e-3, "seconds": 2.0, "train_loss": 0.5, "val_loss": 0.6,
           "auc_scd3mo": 0.7, "auc_scd1": 0.71, "r2_age": 0.1, "auc_Acute_MI1": 0.6,
           "loss_scd3mo": 0.3, "loss_scd1": 0.31, "loss_age": 0.9, "loss_Acute_MI1": 0.2}
    as_run = list(history_frame([row], outputs).columns)
    assert as_run == list(row)
    resumed = dict(sorted(row.items()))
    assert list(history_frame([resumed], outputs).columns) == as_run
