"""x03_predict: rows labelled by the right studyId, stored statistics reused, beat mode."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from scdecg.models import load_trained
from scdecg.signals import zero_mode
from training_fixtures import TINY, make_workspace, run_main

X01 = "01_Predictive_Model/x01_train_10s_ecg.py"
X02 = "01_Predictive_Model/x02_train_beats.py"
X03 = "01_Predictive_Model/x03_predict.py"


def ok(script, *args, cwd):
    code, out, err = run_main(script, *args, cwd=cwd)
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ws = tmp_path_factory.mktemp("predict")
    df = make_workspace(ws, n_patients=36, n_samples=1000, beats=2)
    ok(X01, *TINY, "--length", "500", "--max-epochs", "1", cwd=ws)
    ok(X02, *TINY, "--max-epochs", "1", cwd=ws)
    return ws, df


def test_predictions_are_the_validation_ecgs_labelled_by_studyid(trained):
    ws, df = trained
    ok(X03, cwd=ws)
    pred = pd.read_feather(ws / "predictions/ntuh_scd_model_demo_1/predictions.feather")
    split = pd.read_csv(ws / "modelfits_ecg/ntuh_scd_model_demo/split.csv", dtype=str)
    assert list(pred["studyId"]) == list(split.loc[split["split"] == "val", "studyId"])
    model, config = load_trained(ws / "modelfits_ecg/ntuh_scd_model_demo")
    assert [c for c in pred.columns if c.endswith("_hat")] == [f"{o}_hat" for o in config["outputs"]]
    assert not pred["in_sample"].any()
    # recompute one row by hand: file -> mV -> zero_mode -> first 500 samples; train statistics
    row = pred.iloc[len(pred) // 2]
    x = zero_mode(np.load(ws / "10_sec_ecgs" / f"{row.studyId}.npy") / 1000.0)[:, :500]
    meta = df.set_index("studyId").loc[row.studyId]
    stats = config["covariate_stats"]
    cov = [(meta[c] - stats[c]["mean"]) / stats[c]["sd"] for c in ("age", "female")]
    with torch.no_grad():
        logits = model(torch.tensor(x[None], dtype=torch.float32), torch.tensor([cov], dtype=torch.float32))
    np.testing.assert_allclose(row[[f"{o}_hat" for o in config["outputs"]]].to_numpy(float),
                               logits[0].numpy(), rtol=1e-4, atol=1e-5)


def test_in_sample_predictions_go_to_their_own_file(trained):
    ws, _ = trained
    folder = ws / "predictions/ntuh_scd_model_demo_1"
    ok(X03, cwd=ws)
    held_out = pd.read_feather(folder / "predictions.feather")
    ok(X03, "--in_sample", "--model_name", "ntuh_scd_model_demo", cwd=ws)
    pred = pd.read_feather(folder / "predictions_in_sample.feather")
    split = pd.read_csv(ws / "modelfits_ecg/ntuh_scd_model_demo/split.csv", dtype=str)
    assert list(pred["studyId"]) == list(split.loc[split["split"] == "train", "studyId"])
    assert pred["in_sample"].all() and (pred["split"] == "train").all()
    # the held-out predictions are not overwritten
    pd.testing.assert_frame_equal(pd.read_feather(folder / "predictions.feather"), held_out)
    # --part train is the project's spelling of the same thing; it conflicts with other parts
    ok(X03, "--part", "train", cwd=ws)
    pd.testing.assert_frame_equal(pd.read_feather(folder / "predictions_in_sample.feather"), pred)
    assert run_main(X03, "--in_sample", "--part", "lockbox", cwd=ws)[0] == 2


def test_the_published_command_lines_run_as_written(trained):
    """The authors' README commands, with --split 0.3 0.3 checked against the stored split."""
    ws, _ = trained
    ok(X03, "--model_name", "ntuh_scd_model_demo", "--covariate_df_path", "covariate_df.feather",
       "--ecg_dir", "10_sec_ecgs", cwd=ws)
    ecg = pd.read_feather(ws / "predictions/ntuh_scd_model_demo_1/predictions.feather")
    ok(X03, "--model_name", "ntuh_scd_beat_model_demo", "--covariate_df_path",
       "covariate_df.feather", "--ecg_dir", "ecg_beats", "--beat", cwd=ws)
    beats = pd.read_feather(ws / "predictions/ntuh_scd_beat_model_demo_1/predictions.feather")
    assert "filename" in beats.columns and "beat_file" not in beats.columns
    assert (~ecg["in_sample"]).all() and (ecg["split"] == "val").all()
    ok(X03, "--model_name", "ntuh_scd_model_demo", "--split", "0.3", "0.3", cwd=ws)
    pd.testing.assert_frame_equal(
        pd.read_feather(ws / "predictions/ntuh_scd_model_demo_1/predictions.feather"), ecg)


def test_split_fractions_that_differ_from_the_stored_split_are_refused(trained):
    ws, _ = trained
    code, _, err = run_main(X03, "--model_name", "ntuh_scd_model_demo", "--split", "0.5", "0.3",
                            cwd=ws)
    assert code == 2
    line = err.strip()
    assert "\n" not in line
    assert "--split 0.5 0.3" in line and "(train 0.3, val 0.3" in line
    assert "modelfits_ecg/ntuh_scd_model_demo" in line
    # the beat model was trained with 0.3 / 0.2 (x02's published fractions)
    code, _, err = run_main(X03, "--beat", "--split", "0.3", "0.3", cwd=ws)
    assert code == 2 and "(train 0.3, val 0.2" in err
    # the project's former `--split train` gets a pointer to --part
    assert run_main(X03, "--split", "train", cwd=ws)[0] == 2


def test_ecg_dir_and_covariate_table_are_read_from_the_given_paths(trained, tmp_path):
    ws, df = trained
    ok(X03, cwd=ws)
    reference = pd.read_feather(ws / "predictions/ntuh_scd_model_demo_1/predictions.feather")
    # the same files under other names give the same predictions
    other = tmp_path / "elsewhere"
    shutil.copytree(ws / "10_sec_ecgs", other / "signals")
    df.to_feather(other / "table.feather")
    for name in ("modelfits_ecg",):
        (tmp_path / name).symlink_to(ws / name)
    ok(X03, "--ecg_dir", str(other / "signals"), "--covariate_df_path",
       str(other / "table.feather"), cwd=tmp_path)
    pred = pd.read_feather(tmp_path / "predictions/ntuh_scd_model_demo_1/predictions.feather")
    pd.testing.assert_frame_equal(pred, reference)
    # and an empty ECG folder means every ECG fails to load: nothing is predicted
    (tmp_path / "empty").mkdir()
    code, _, err = run_main(X03, "--ecg_dir", str(tmp_path / "empty"), "--covariate_df_path",
                            str(other / "table.feather"), cwd=tmp_path)
    assert code == 2 and "no usable signal files" in err and str(tmp_path / "empty") in err


@pytest.mark.parametrize("id_dtype", [object, "string", "str"])
def test_per_ecg_means_are_float64_whatever_pandas_does(id_dtype):
    """pandas 3.0 averaged a float32 column in float32 (3.1 in float64): the means are taken
    in float64 by us."""
    from scdecg.training.runs import per_ecg_means

    values = np.float32([0.1, 0.2, 0.7, 1e-3, 3.0])
    beats = pd.DataFrame({"studyId": pd.Series(["b", "b", "b", "a", "a"], dtype=id_dtype),
                          "filename": ["b_0", "b_1", "b_2", "a_0", "a_1"], "scd1_hat": values,
                          "split": ["val"] * 3 + ["train"] * 2,
                          "in_sample": [False] * 3 + [True] * 2})
    by_ecg = per_ecg_means(beats, ["scd1_hat"])
    assert by_ecg["scd1_hat"].dtype == np.float64
    assert by_ecg["studyId"].tolist() == ["b", "a"] and by_ecg["n_beats"].tolist() == [3, 2]
    assert by_ecg["scd1_hat"].tolist() == [values[:3].astype(np.float64).mean(),
                                           values[3:].astype(np.float64).mean()]
    assert by_ecg[["split", "in_sample"]].values.tolist() == [["val", False], ["train", True]]


def test_beat_predictions_read_the_beat_model_and_aggregate_per_ecg(trained):
    ws, df = trained
    ok(X03, "--beat", cwd=ws)
    folder = ws / "predictions/ntuh_scd_beat_model_demo_1"
    beats = pd.read_feather(folder / "predictions.feather")
    by_ecg = pd.read_feather(folder / "predictions_by_ecg.feather")
    config = json.loads((ws / "modelfits_beat/ntuh_scd_beat_model_demo/config.json").read_text())
    assert {"studyId", "filename", "scd1_hat", "age_hat"} <= set(beats.columns)
    assert all(b.startswith(s + "_") for s, b in zip(beats["studyId"], beats["filename"]))
    mean = beats["scd1_hat"].astype(np.float64).groupby(beats["studyId"]).mean()
    assert by_ecg["scd1_hat"].dtype == np.float64                # averaged in float64
    np.testing.assert_array_equal(by_ecg.set_index("studyId").loc[mean.index, "scd1_hat"], mean)
    assert (by_ecg["n_beats"] == 2).all()
    # regression outputs come back in the original units (years), around the training mean
    assert abs(beats["age_hat"].mean() - config["target_stats"]["age"]["mean"]) < 3 * config["target_stats"]["age"]["sd"]
    # one beat recomputed by hand: the model's z-scored output times the training SD plus the
    # training mean (a wrong SD factor or a missing mean fails this)
    model, config = load_trained(ws / "modelfits_beat/ntuh_scd_beat_model_demo")
    assert config["preprocessing"] == ["zero_mode"]
    row = beats.iloc[len(beats) // 3]
    x = zero_mode(np.load(ws / "ecg_beats" / row.studyId / row.filename).astype(np.float32))
    meta = df.set_index("studyId").loc[row.studyId]
    stats = config["covariate_stats"]
    cov = [(meta[c] - stats[c]["mean"]) / stats[c]["sd"] for c in config["covariates"]]
    with torch.no_grad():
        out = model(torch.tensor(x[None], dtype=torch.float32),
                    torch.tensor([cov], dtype=torch.float32))[0].numpy().astype(np.float64)
    target = config["target_stats"]
    assert set(target) == {o for o, t in zip(config["outputs"], config["output_types"])
                           if t == "regression"} and "age" in target
    for j, output in enumerate(config["outputs"]):
        z = out[j]
        expected = z * target[output]["sd"] + target[output]["mean"] if output in target else z
        assert row[f"{output}_hat"] == pytest.approx(expected, rel=1e-4, abs=1e-4), output
    assert target["age"]["sd"] > 2                      # so the factor is visible


def test_missing_model_folder_is_a_clear_error(trained):
    ws, _ = trained
    code, _, err = run_main(X03, "--beat", "--model-name", "ntuh_scd_model_demo", cwd=ws)
    assert code == 2 and "modelfits_beat/ntuh_scd_model_demo" in err


def test_a_model_folder_of_the_other_kind_is_refused_naming_both_kinds(trained, tmp_path):
    """A 10-s model in modelfits_beat/ (x03 --beat) or a beat model in modelfits_ecg/ (x03)
    ended in a traceback or predictions of meaningless inputs; one without a kind in its
    config.json is told apart by its input length."""
    from training_fixtures import refused_line

    ws, _ = trained
    shutil.copytree(ws / "modelfits_ecg" / "ntuh_scd_model_demo", tmp_path / "modelfits_beat" / "e")
    shutil.copytree(ws / "modelfits_beat" / "ntuh_scd_beat_model_demo",
                    tmp_path / "modelfits_ecg" / "b")
    for name in ("covariate_df.feather", "10_sec_ecgs", "ecg_beats"):
        (tmp_path / name).symlink_to(ws / name)
    x02, x01 = "01_Predictive_Model/x02_train_beats.py", "01_Predictive_Model/x01_train_10s_ecg.py"
    line = refused_line(X03, "--beat", "--model-name", "e", cwd=tmp_path)
    assert line == ("error: modelfits_beat/e: holds a 10-s ECG model (kind 'ecg' in its "
                    "config.json), not the beat model expected here; give a beat model folder "
                    f"({x02} trains one)")
    line = refused_line(X03, "--model-name", "b", cwd=tmp_path)
    assert line == ("error: modelfits_ecg/b: holds a beat model (kind 'beat' in its "
                    "config.json), not the 10-s ECG model expected here; give a 10-s ECG model "
                    f"folder ({x01} trains one)")
    config = tmp_path / "modelfits_beat" / "e" / "config.json"
    config.write_text(json.dumps({k: v for k, v in json.loads(config.read_text()).items()
                                  if k != "kind"}))
    line = refused_line(X03, "--beat", "--model-name", "e", cwd=tmp_path)
    assert "modelfits_beat/e: holds a 10-s ECG model (config.json names no kind; its input is " \
           "500 samples), not the beat model expected here" in line, line
    assert not (tmp_path / "predictions").exists()


@pytest.mark.parametrize("steps, expected", [
    (["zero_mode", "bogus"], "unknown preprocessing step 'bogus'; known: zero_mode, "
                             "zero_median, published_tail_cut"),
    ("zero_mode", "'preprocessing' is 'zero_mode', expected a list of step names")])
def test_a_config_naming_an_unknown_preprocessing_step_is_refused(trained, tmp_path, steps,
                                                                 expected):
    """A config.json edited to name an unknown preprocessing step ended in a ValueError
    traceback at prediction; a text in place of the list was applied letter by letter."""
    from training_fixtures import refused_line

    ws, _ = trained
    folder = tmp_path / "modelfits_ecg" / "m"
    shutil.copytree(ws / "modelfits_ecg" / "ntuh_scd_model_demo", folder)
    for name in ("covariate_df.feather", "10_sec_ecgs"):
        (tmp_path / name).symlink_to(ws / name)
    config = folder / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "preprocessing": steps}))
    line = refused_line(X03, "--model-name", "m", cwd=tmp_path)
    assert line.startswith(f"error: modelfits_ecg/m/config.json: {expected}"), line
    assert not (tmp_path / "predictions").exists()


def test_scripts_on_the_shared_synthetic_study(pipeline, tmp_path):
    """x01 -> x02 -> x03 with tiny settings on the pipeline's own x03/x04 outputs."""
    study = pipeline.ensure("x04")
    for name in ("covariate_df.feather", "10_sec_ecgs", "ecg_beats"):
        (tmp_path / name).symlink_to(study / name)  # read-only use; models are written here
    ok(X01, *TINY, "--length", "5000", "--max-epochs", "1", cwd=tmp_path)
    ok(X02, *TINY, "--max-epochs", "1", cwd=tmp_path)
    ok(X03, cwd=tmp_path)
    ok(X03, "--beat", "--part", "all", cwd=tmp_path)
    pred = pd.read_feather(tmp_path / "predictions/ntuh_scd_model_demo_1/predictions.feather")
    by_ecg = pd.read_feather(tmp_path / "predictions/ntuh_scd_beat_model_demo_1/predictions_by_ecg.feather")
    assert len(pred) > 20 and np.isfinite(pred["scd1_hat"]).all()
    cov = pd.read_feather(study / "covariate_df.feather")
    included = cov.loc[cov["include_modelling"].astype(bool)].set_index("studyId")
    # the 10-s model: exactly the validation ECGs of its split, one recomputed by hand
    split = pd.read_csv(tmp_path / "modelfits_ecg/ntuh_scd_model_demo/split.csv", dtype=str)
    assert list(pred["studyId"]) == list(split.loc[split["split"] == "val", "studyId"])
    model, config = load_trained(tmp_path / "modelfits_ecg/ntuh_scd_model_demo")
    assert config["preprocessing"] == ["zero_mode"]
    row = pred.iloc[len(pred) // 2]
    meta = included.loc[row.studyId]
    x = zero_mode(np.load(study / "10_sec_ecgs" / f"{row.studyId}.npy")
                  / float(meta["scaling_factor"]))[:, :5000]
    stats = config["covariate_stats"]
    cov_z = [(meta[c] - stats[c]["mean"]) / stats[c]["sd"] for c in config["covariates"]]
    with torch.no_grad():
        logits = model(torch.tensor(x[None], dtype=torch.float32),
                       torch.tensor([cov_z], dtype=torch.float32))[0].numpy()
    np.testing.assert_allclose(row[[f"{o}_hat" for o in config["outputs"]]].to_numpy(float),
                               logits, rtol=1e-4, atol=1e-5)
    # the beat model, every part: each included ECG with beats, its mean over all its beats
    beats = pd.read_feather(tmp_path / "predictions/ntuh_scd_beat_model_demo_1/predictions.feather")
    with_beats = {sid for sid in included.index if any((study / "ecg_beats" / sid).glob("*.npy"))}
    assert set(by_ecg["studyId"]) == with_beats and len(with_beats) > 20
    files = {sid: len(list((study / "ecg_beats" / sid).glob("*.npy"))) for sid in with_beats}
    assert by_ecg.set_index("studyId")["n_beats"].to_dict() == files
    mean = beats.groupby("studyId")["scd1_hat"].mean()
    np.testing.assert_allclose(by_ecg.set_index("studyId").loc[mean.index, "scd1_hat"], mean,
                               rtol=1e-6)


def test_every_prediction_command_in_prediction_commands_md_runs(trained):
    """Each x03 line of prediction_commands.md parses and runs; only a model this workspace
    never trained (death-only, low-EF) may be missing, and then the error names it."""
    ws, _ = trained
    text = (Path(__file__).resolve().parents[1] / "01_Predictive_Model" /
            "prediction_commands.md").read_text()
    lines = [line.split("#")[0].split() for line in text.splitlines()
             if line.startswith(f"python {X03}")]
    assert len(lines) >= 8
    for words in lines:
        code, _, err = run_main(X03, *words[2:], cwd=ws)
        never_trained = any(f"{member}: no trained model here" in err
                            for member in ("death_only", "low_ef"))
        assert code == 0 or (code == 2 and never_trained), (words, err)


def _in_memory_predictions(ws: Path, part_rows: pd.DataFrame) -> np.ndarray:
    """The old way: every signal loaded into memory first, then predicted batch by batch."""
    from scdecg.models.inference import fuse_for_inference
    from scdecg.training.data import build_dataset, ten_second_items, unzscore
    from scdecg.training.distributed import Context
    from scdecg.training.loop import predict_logits

    model, config = load_trained(ws / "modelfits_ecg/ntuh_scd_model_demo")
    items = ten_second_items(part_rows, ws)
    data = build_dataset(items, config["outputs"], [True] * len(config["outputs"]),
                         config["covariates"], config["covariate_stats"], {},
                         config["architecture"]["length"], config["preprocessing"], 4.0,
                         name="in memory", progress=False)
    assert data.signals is not None
    logits = predict_logits(fuse_for_inference(model), data, Context(), 7)
    return unzscore(logits, config["outputs"], config["target_stats"]).astype(np.float32)


def test_streamed_predictions_equal_in_memory_ones_and_skip_a_bad_file(trained, tmp_path):
    ws, df = trained
    for name in ("modelfits_ecg", "covariate_df.feather"):
        (tmp_path / name).symlink_to(ws / name)
    shutil.copytree(ws / "10_sec_ecgs", tmp_path / "10_sec_ecgs")
    split = pd.read_csv(ws / "modelfits_ecg/ntuh_scd_model_demo/split.csv", dtype=str)
    rows = split.merge(df.astype({"studyId": str}).drop(columns="ptId"), on="studyId")
    rows = rows[rows["split"] == "val"].reset_index(drop=True)
    expected = _in_memory_predictions(tmp_path, rows)
    hats = [c + "_hat" for c in load_trained(ws / "modelfits_ecg/ntuh_scd_model_demo")[1]["outputs"]]
    # batches of 7 and 3 over the same rows, 0-3 reader threads, 1-5 batches ahead
    for extra in (["--batch-size", "7", "--read-workers", "0"],
                  ["--batch-size", "3", "--read-workers", "3", "--prefetch", "1"],
                  ["--batch-size", "7", "--read-workers", "1", "--prefetch", "5"]):
        ok(X03, *extra, cwd=tmp_path)
        pred = pd.read_feather(tmp_path / "predictions/ntuh_scd_model_demo_1/predictions.feather")
        assert list(pred["studyId"]) == list(rows["studyId"])
        np.testing.assert_allclose(pred[hats].to_numpy(), expected, rtol=0, atol=1e-6)
    # unusable files (a NaN sample behind a fine header; a wrong shape; a truncated file; a
    # missing one) are found as they are read, left out and counted with the reason, not fatal
    bad = rows["studyId"].iloc[[4, 5, 6, 7]].tolist()
    files = [tmp_path / "10_sec_ecgs" / f"{sid}.npy" for sid in bad]
    x = np.load(files[0]).astype(np.float32)
    x[3, 10] = np.nan
    np.save(files[0], x)
    np.save(files[1], x[:8])
    files[2].write_bytes(files[2].read_bytes()[:100])
    files[3].unlink()
    code, out, err = run_main(X03, "--batch-size", "3", cwd=tmp_path)
    assert code == 0, err
    for reason in ("non-finite samples", "shape (8, ", "unreadable", "file missing"):
        assert reason in out + err
    assert "4 record(s) excluded or failed" in out + err
    pred = pd.read_feather(tmp_path / "predictions/ntuh_scd_model_demo_1/predictions.feather")
    keep = ~rows["studyId"].isin(bad).to_numpy()
    assert list(pred["studyId"]) == list(rows.loc[keep, "studyId"])
    np.testing.assert_allclose(pred[hats].to_numpy(), expected[keep], rtol=0, atol=1e-6)


def test_prefetch_keeps_order_and_reads_at_most_depth_ahead():
    import threading
    import time

    from scdecg.training.data import prefetch

    started, lock = [], threading.Lock()

    def work(i):
        with lock:
            started.append(i)
        time.sleep(0.002 * (i % 3))
        return i * i

    seen = []
    for k, value in enumerate(prefetch(work, range(40), workers=3, depth=4)):
        seen.append(value)
        time.sleep(0.003)
        with lock:
            assert max(started) <= k + 4    # never more than depth items beyond the consumer
    assert seen == [i * i for i in range(40)]
    assert list(prefetch(work, range(5), workers=0)) == [0, 1, 4, 9, 16]
