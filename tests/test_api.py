"""scdecg's Python API: the README example runs, and predictions match x03_predict's."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import scdecg
from scdecg.errors import PipelineError
from training_fixtures import TINY, make_workspace, run_main
from conftest import ROOT

TRAIN = "01_Predictive_Model/x01_train_10s_ecg.py"
PREDICT = "01_Predictive_Model/x03_predict.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ws = tmp_path_factory.mktemp("api")
    df = make_workspace(ws, n_patients=30, n_samples=5000, beats=1)
    code, _, err = run_main(TRAIN, *TINY, "--length", "500", "--max-epochs", "1", cwd=ws)
    assert code == 0, err
    return ws, df


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## From Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(trained, monkeypatch, capsys):
    ws, _ = trained
    code = readme_example()
    assert len(code.strip().splitlines()) == 5
    monkeypatch.chdir(ws)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "scd1" in out and "aVL_rs_diff" in out
    assert (ws / "my_ecg.png").stat().st_size > 10_000


def test_predict_risk_matches_x03_predict(trained, monkeypatch):
    ws, df = trained
    code, _, err = run_main(PREDICT, "--part", "all", cwd=ws)
    assert code == 0, err
    pred = pd.read_feather(ws / "predictions/ntuh_scd_model_demo_1/predictions.feather")
    model = scdecg.load_model(ws / "modelfits_ecg/ntuh_scd_model_demo")
    rows = df.set_index("studyId").loc[pred["studyId"]]
    ecgs = np.stack([np.load(ws / "10_sec_ecgs" / f"{s}.npy") for s in pred["studyId"]]) / 1000
    risk = scdecg.predict_risk(model, ecgs, {"age": rows["age"], "female": rows["female"]})
    assert list(risk.columns) == model.outputs and len(risk) == len(pred)
    for name in ("scd1", "scd2", "dead1"):
        expected = 1 / (1 + np.exp(-pred[f"{name}_hat"].to_numpy(np.float64)))
        np.testing.assert_allclose(risk[name], expected, rtol=1e-4, atol=1e-5)
    assert ((risk["scd1"] > 0) & (risk["scd1"] < 1)).all()


def test_predict_risk_names_what_is_wrong(trained):
    ws, _ = trained
    model = scdecg.load_model(ws / "modelfits_ecg/ntuh_scd_model_demo")
    ecg = np.zeros((12, 1000), np.float32)
    with pytest.raises(PipelineError, match="covariate\\(s\\) female not given"):
        scdecg.predict_risk(model, ecg, age=[60])
    with pytest.raises(PipelineError, match="expected \\(n, 12, samples\\)"):
        scdecg.predict_risk(model, np.zeros((2, 8, 1000)), age=[1, 2], female=[0, 1])
    with pytest.raises(PipelineError, match="2 values for 1 signals"):
        scdecg.predict_risk(model, ecg, age=[1, 2], female=[0, 1])
    with pytest.raises(PipelineError, match="no trained model here"):
        scdecg.load_model(ws / "nothing")


def test_api_arguments_of_the_wrong_kind_are_named(trained):
    """batch_size=-1 returned an empty table; the others were ValueError, AttributeError or
    IndexError tracebacks from numpy, torch or matplotlib."""
    ws, _ = trained
    model = scdecg.load_model(ws / "modelfits_ecg/ntuh_scd_model_demo")
    ecg, cov = np.zeros((12, 1000), np.float32), {"age": [60], "female": [1]}
    for call, message in [
            (lambda: scdecg.predict_risk(model, ecg, cov, batch_size=-1),
             "batch_size: -1, expected a whole number, 1 or more"),
            (lambda: scdecg.predict_risk(model, ecg, cov, batch_size=0),
             "batch_size: 0, expected a whole number, 1 or more"),
            (lambda: scdecg.predict_risk(str(model.folder), ecg, cov),
             "model: a str, expected the TrainedModel that scdecg.load_model returns"),
            (lambda: scdecg.predict_risk(model, "ecg.npy", cov),
             "signals: not an array of real numbers (holds <U7 values)"),
            (lambda: scdecg.predict_risk(model, np.zeros((0, 12, 1000)), age=[], female=[]),
             "signals: shape (0, 12, 1000), expected (n, 12, samples) in mV with n of 1 or more"),
            (lambda: scdecg.predict_risk(model, ecg, [60, 1]),
             "covariates: a list, expected a mapping or DataFrame of age, female"),
            (lambda: scdecg.predict_risk(model, ecg, age=["sixty"], female=[1]),
             "covariate age: not an array of real numbers (holds <U5 values)"),
            (lambda: scdecg.plot_ecg(np.zeros((8, 1000))),
             "ecg_mv: shape (8, 1000), expected (12, samples) in mV, at least 500 samples (1 s "
             "at 500 Hz)"),
            (lambda: scdecg.plot_ecg(ecg[None]),
             "ecg_mv: shape (1, 12, 1000), expected (12, samples) in mV, at least 500 samples "
             "(1 s at 500 Hz)"),
            (lambda: scdecg.plot_ecg(np.zeros((12, 3))),
             "ecg_mv: shape (12, 3), expected (12, samples) in mV, at least 500 samples (1 s "
             "at 500 Hz)"),
            (lambda: scdecg.load_model(None), "folder: a NoneType, expected the path of a "
                                              "trained model folder"),
            (lambda: scdecg.load_model(model.folder, device="tpu"),
             "--device 'tpu': use auto, cpu, cuda (or cuda:N)")]:
        with pytest.raises(PipelineError) as info:
            call()
        assert str(info.value) == message
    frame = pd.DataFrame({"age": pd.Series([60], dtype=object), "female": [1.0]})
    assert len(scdecg.predict_risk(model, ecg, frame)) == 1   # numbers held as objects: used
    # a signal shorter than the model's input is zero-padded as x03 does, but not silently
    assert model.length == 500
    with pytest.warns(UserWarning, match=r"^signals: 400 samples, fewer than the model's 500; "
                                         r"zero-padded at the end \(as x03_predict.py does\)$"):
        short = scdecg.predict_risk(model, ecg[:, :400], cov)
    padded = np.concatenate([ecg[:, :400], np.zeros((12, 100), np.float32)], axis=1)
    pd.testing.assert_frame_equal(short, scdecg.predict_risk(model, padded, cov))


def test_avl_biomarker_is_x06s_measurement():
    from scdecg.features import avl_features
    from scdecg.synthetic import sample_ecg_params, simulate_ecg

    rng = np.random.default_rng(5)
    ecg = simulate_ecg(sample_ecg_params(rng, slur=0.8), rng) / 1000
    out = scdecg.avl_biomarker(ecg)
    ref = avl_features(ecg)
    assert out["status"] == ref.status == "ok" and out["n_beats"] == ref.n_beats > 5
    assert out["aVL_rs_diff"] == ref.rs_diff and out["aVL_rs_diff_2"] == ref.rs_diff_2
    assert np.isfinite(out["aVL_rs_diff"])
    fig = scdecg.plot_ecg(ecg, title="synthetic")
    labels = {line.get_label() for ax in fig.axes for line in ax.lines}
    assert {"I", "aVL", "V6", "II (rhythm)"} <= labels
