"""A step whose input step never ran exits 2 naming the script to run (never exit 0 with every
record failed)."""
from __future__ import annotations

import pandas as pd
import pytest

from scdecg.workspace import STEP_SCRIPTS
from training_fixtures import TINY, run_main


@pytest.fixture(scope="module")
def cohort_after_x02(pipeline) -> pd.DataFrame:
    """The shared study's cohort table as x02 leaves it (x06's columns removed, should the
    shared workspace already be further along)."""
    df = pd.read_feather(pipeline.ensure("x02") / "covariate_df.feather")
    return df.drop(columns=[c for c in df.columns if c.startswith("aVL_")])


def refused(script: str, *args: str, cwd, step: str) -> str:
    code, out, err = run_main(script, *args, cwd=cwd)
    assert code == 2, (script, code, out[-500:], err[-500:])
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and f"run {STEP_SCRIPTS[step]} first" in line, line
    return line


def test_x02_before_x01(tmp_path):
    line = refused("00_Data_Preprocessing/x02_generate_dummy_columns.py", cwd=tmp_path, step="x01")
    assert "covariate_df.feather: file not found" in line


def test_x01_without_data_points_at_x00(tmp_path):
    code, _, err = run_main("00_Data_Preprocessing/x01_build_ntuh_df.py", cwd=tmp_path)
    assert code == 2 and "data root not found" in err and STEP_SCRIPTS["x00"] in err


def test_x03_before_x02(tmp_path):
    pd.DataFrame({"ecg_id": ["a"], "file_path": ["f"], "npy_index": [0]}).to_feather(
        tmp_path / "covariate_df.feather")
    line = refused("00_Data_Preprocessing/x03_process_10sec_ecg.py", cwd=tmp_path, step="x02")
    assert "missing column(s) studyId" in line


@pytest.mark.parametrize("script", ["x04_segment_beats", "x06_create_aVL_feature",
                                    "x08_plot_ecg"])
def test_signal_steps_before_x03(script, tmp_path, cohort_after_x02):
    cohort_after_x02.to_feather(tmp_path / "covariate_df.feather")
    line = refused(f"00_Data_Preprocessing/{script}.py", cwd=tmp_path, step="x03")
    assert "10_sec_ecgs" in line


def test_x04_with_no_usable_ecg_is_an_error_not_success(tmp_path, cohort_after_x02):
    cohort_after_x02.head(3).to_feather(tmp_path / "covariate_df.feather")
    (tmp_path / "10_sec_ecgs").mkdir()  # x03 ran elsewhere: none of the cohort's files is here
    code, _, err = run_main("00_Data_Preprocessing/x04_segment_beats.py", "--n-jobs", "1",
                            cwd=tmp_path)
    assert code == 2 and "no ECG gave a beat (all 3 failed; first: " in err
    log = pd.read_csv(tmp_path / "ecg_beats" / "segmentation_log.failed.csv")
    assert (log["status"] == "failed").all() and len(log) == 3
    assert not (tmp_path / "ecg_beats" / "segmentation_log.csv").exists()


def test_x05_before_x04(tmp_path, cohort_after_x02):
    cohort_after_x02.to_feather(tmp_path / "covariate_df.feather")
    refused("00_Data_Preprocessing/x05_create_morphing_beats.py", cwd=tmp_path, step="x04")


def test_x07_before_x06(tmp_path, cohort_after_x02):
    cohort_after_x02.to_feather(tmp_path / "covariate_df.feather")
    line = refused("00_Data_Preprocessing/x07_run_ntuh_style_regression.py", cwd=tmp_path,
                   step="x06")
    assert "aVL_rs_diff" in line
    assert not (tmp_path / "x07_regression_results.csv").exists()


@pytest.mark.parametrize("script,step,folder", [
    ("01_Predictive_Model/x01_train_10s_ecg.py", "x03", "10_sec_ecgs"),
    ("01_Predictive_Model/x02_train_beats.py", "x04", "ecg_beats"),
])
def test_training_before_its_signals(script, step, folder, tmp_path, cohort_after_x02):
    cohort_after_x02.to_feather(tmp_path / "covariate_df.feather")
    line = refused(script, *TINY, "--max-epochs", "1", "--device", "cpu", cwd=tmp_path, step=step)
    assert f"{folder}: folder not found" in line
    assert not (tmp_path / "modelfits_ecg").exists() and not (tmp_path / "modelfits_beat").exists()


def test_prediction_before_training_and_evaluation_before_prediction(tmp_path, cohort_after_x02):
    cohort_after_x02.to_feather(tmp_path / "covariate_df.feather")
    code, _, err = run_main("01_Predictive_Model/x03_predict.py", "--beat", cwd=tmp_path)
    assert code == 2 and STEP_SCRIPTS["train_beat"] in err
    code, _, err = run_main("01_Predictive_Model/x05_evaluate.py", cwd=tmp_path)
    assert code == 2 and STEP_SCRIPTS["predict"] in err
