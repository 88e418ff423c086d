"""Losses, metrics, splits, datasets and the fit loop (seeds, checkpoint/resume)."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from scdecg.errors import PipelineError
from scdecg.models import Architecture, build_model, load_trained
from scdecg.training import (Context, FitSettings, build_dataset, fit, fit_stats, masked_loss,
                             patient_split, r_squared, roc_auc)
from scdecg.failures import FailureLog
from scdecg.training.data import beat_items, label_matrix, ten_second_items
from scdecg.training.loop import per_output_losses, validation_loss
from conftest import ROOT
from training_fixtures import ECG_OUTPUTS, TINY, make_workspace, refused_line, run_main

X01 = "01_Predictive_Model/x01_train_10s_ecg.py"
X02 = "01_Predictive_Model/x02_train_beats.py"


# ----------------------------------------------------------------------------- loss
def test_masked_loss_ignores_nan_targets_and_weights_regression():
    torch.manual_seed(0)
    logits = torch.randn(5, 3)
    targets = torch.tensor([[1, 0, 2.0], [0, float("nan"), 1.5], [1, 1, float("nan")],
                            [float("nan"), 0, 0.5], [0, 1, -1.0]])
    is_reg = torch.tensor([False, False, True])
    cls = ~torch.isnan(targets[:, :2])
    bce = F.binary_cross_entropy_with_logits(logits[:, :2][cls], targets[:, :2][cls])
    reg = ~torch.isnan(targets[:, 2])
    mse = ((logits[:, 2][reg] - targets[:, 2][reg]) ** 2).mean()
    got = masked_loss(logits, targets, is_reg)
    assert torch.isfinite(got)
    assert got.item() == pytest.approx((bce + 10 * mse).item(), rel=1e-6)
    assert masked_loss(logits, targets, is_reg, regression_weight=1).item() == \
        pytest.approx((bce + mse).item(), rel=1e-6)


def test_published_loss_runs_bce_over_the_regression_outputs_too():
    """``bce_on_regression``: one BCE mean over every labelled pair (the published loss),
    plus the weighted MSE of the regressions as before."""
    torch.manual_seed(0)
    logits = torch.randn(4, 2)
    targets = torch.tensor([[1.0, 2.5], [0.0, -1.0], [float("nan"), 0.3], [1.0, float("nan")]])
    is_reg = torch.tensor([False, True])
    labelled = ~torch.isnan(targets)
    bce_all = F.binary_cross_entropy_with_logits(logits[labelled], targets[labelled])
    reg = labelled[:, 1]
    mse = ((logits[:, 1][reg] - targets[:, 1][reg]) ** 2).mean()
    got = masked_loss(logits, targets, is_reg, regression_weight=10.0, bce_on_regression=True)
    assert got.item() == pytest.approx((bce_all + 10 * mse).item(), rel=1e-6)
    ours = masked_loss(logits, targets, is_reg, regression_weight=10.0)
    assert abs(got.item() - ours.item()) > 1e-3     # the option changes the loss
    # without regression outputs the two losses are one
    only_cls = torch.tensor([False, False])
    assert masked_loss(logits, targets.clamp(0, 1), only_cls, bce_on_regression=True).item() == \
        pytest.approx(masked_loss(logits, targets.clamp(0, 1), only_cls).item())


def test_masked_loss_with_a_single_labelled_regression_pair():
    logits = torch.tensor([[0.0, 3.0], [0.0, 7.0]])
    targets = torch.tensor([[1.0, 1.0], [0.0, float("nan")]])
    bce = F.binary_cross_entropy_with_logits(torch.zeros(2), torch.tensor([1.0, 0.0]))
    got = masked_loss(logits, targets, torch.tensor([False, True]), regression_weight=1.0)
    assert got.item() == pytest.approx(bce.item() + 4.0)      # (3 - 1)^2 over one pair


def test_masked_loss_gradient_is_zero_for_unlabelled_pairs():
    logits = torch.zeros(2, 2, requires_grad=True)
    masked_loss(logits, torch.tensor([[1.0, float("nan")], [float("nan"), 0.0]]),
                torch.tensor([False, True])).backward()
    assert logits.grad[0, 1] == 0 and logits.grad[1, 0] == 0 and logits.grad[0, 0] != 0
    all_nan = masked_loss(torch.zeros(2, 1), torch.full((2, 1), float("nan")), torch.tensor([False]))
    assert all_nan.item() == 0.0


# ----------------------------------------------------------------------------- metrics
def test_auc_matches_pairwise_definition_with_ties_and_nan():
    rng = np.random.default_rng(1)
    y = (rng.random(200) < 0.3).astype(float)
    score = np.round(rng.normal(y, 1.0), 1)  # ties
    y[:5] = np.nan
    keep = ~np.isnan(y)
    pos, neg = score[keep][y[keep] == 1], score[keep][y[keep] == 0]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert roc_auc(y, score) == pytest.approx(brute)
    assert math.isnan(roc_auc(np.zeros(4), np.arange(4.0)))


def test_r_squared():
    y = np.array([1.0, 2, 3, 4, np.nan])
    assert r_squared(y, np.array([1.0, 2, 3, 4, 99])) == pytest.approx(1.0)
    assert r_squared(y, np.full(5, 2.5)) == pytest.approx(0.0)


# ----------------------------------------------------------------------------- splits
def test_patient_split_keeps_patients_together_and_is_seeded():
    pts = pd.Series([f"p{i // 2}" for i in range(1000)])  # two ECGs per patient
    split = patient_split(pts, 0.3, 0.3, seed=42)
    assert (split.groupby(pts).nunique() == 1).all()
    per_patient = split.groupby(pts).first().value_counts()
    assert per_patient["train"] == 150 and per_patient["val"] == 150 and per_patient["lockbox"] == 200
    assert split.equals(patient_split(pts, 0.3, 0.3, seed=42))
    assert not split.equals(patient_split(pts, 0.3, 0.3, seed=1))


# ----------------------------------------------------------------------------- data
def test_labels_keep_nan_and_reject_non_binary(tmp_path):
    df = pd.DataFrame({"a": [True, False, None], "b": [0.0, 2.0, 1.0]})
    y = label_matrix(df, ["a"], [False], "t")
    assert y[0, 0] == 1 and y[1, 0] == 0 and np.isnan(y[2, 0])
    with pytest.raises(PipelineError, match="column b holds 2.0"):
        label_matrix(df, ["b"], [False], "t")


def test_covariates_use_training_statistics(tmp_path):
    df = make_workspace(tmp_path, n_patients=12, n_samples=200, beats=1)
    items = ten_second_items(df, tmp_path)
    stats = fit_stats(df.iloc[:6], ["age", "female"])
    common = dict(outputs=["scd1"], regression=[False], covariates=["age", "female"],
                  cov_stats=stats, target_stats={}, length=200, preprocessing=["zero_mode"],
                  memory_limit_gb=1.0, name="t", progress=False)
    val = build_dataset(items.iloc[6:], **common)
    expected = (df["age"].iloc[6:] - df["age"].iloc[:6].mean()) / df["age"].iloc[:6].std()
    np.testing.assert_allclose(val.covariates[:, 0], expected, rtol=1e-5)
    x, _, _ = val.batch(np.array([0]))
    raw = np.load(tmp_path / "10_sec_ecgs" / f"{df.studyId.iloc[6]}.npy") / 1000
    assert x.shape == (1, 12, 200)
    np.testing.assert_allclose(x[0] - x[0, :, :1], raw - raw[:, :1], atol=1e-5)  # mV, offset only


@pytest.mark.parametrize("value, shown", [(None, "nan"), (np.inf, "inf")])
def test_a_missing_or_infinite_covariate_is_named_with_its_value(tmp_path, value, shown):
    df = make_workspace(tmp_path, n_patients=12, n_samples=200, beats=1)
    items = ten_second_items(df, tmp_path)
    stats = fit_stats(df.iloc[:6], ["age", "female"])
    items.loc[8, "age"] = value
    items.loc[10, "age"] = value
    with pytest.raises(PipelineError) as caught:
        build_dataset(items.iloc[6:], ["scd1"], [False], ["age", "female"], stats, {}, 200,
                      ["zero_mode"], 1.0, name="t", progress=False)
    assert str(caught.value) == (f"t: covariate missing or not finite for studyId "
                                 f"{items.loc[8, 'studyId']!r} (age={shown}, female="
                                 f"{items.loc[8, 'female']}; 2 ECG(s))")


def test_beat_items_lists_each_ecgs_beats_in_beat_order_and_counts_ecgs_without(tmp_path):
    root = tmp_path / "ecg_beats"
    for sid, ks in (("e1", (10, 2, 1)), ("e3", (0,))):
        (root / sid).mkdir(parents=True)
        for k in ks:
            np.save(root / sid / f"{sid}_{k}.npy", np.zeros((12, 300), np.float32))
    (root / "e1" / "notes.npy").write_bytes(b"")            # breaks the naming rule: ignored
    (root / "e1" / "e3_4.npy").write_bytes(b"")             # another ECG's name: ignored
    rows = pd.DataFrame({"studyId": pd.Series(["e3", "e2", "e1"], dtype="string"),
                         "age": [70.0, 60.0, 50.0]})
    failures = FailureLog("beats")
    items = beat_items(rows, tmp_path, "ecg_beats", failures)
    assert items["studyId"].dtype == "string"
    assert items[["studyId", "filename", "scale", "age"]].values.tolist() == [
        ["e3", "e3_0.npy", 1.0, 70.0], ["e1", "e1_1.npy", 1.0, 50.0],
        ["e1", "e1_2.npy", 1.0, 50.0], ["e1", "e1_10.npy", 1.0, 50.0]]
    assert items["path"].tolist() == [str(root / "e3" / "e3_0.npy")] + [
        str(root / "e1" / f"e1_{k}.npy") for k in (1, 2, 10)]
    assert [(r["studyId"], r["reason"]) for r in failures.rows] == [("e2", "no beat files")]
    with pytest.raises(PipelineError, match=r"ecg_beats: no beat files for any selected ECG$"):
        beat_items(rows.iloc[[1]], tmp_path, "ecg_beats", failures)


def test_bad_signal_files_are_excluded_and_counted(tmp_path):
    df = make_workspace(tmp_path, n_patients=6, n_samples=200, beats=1)
    (tmp_path / "10_sec_ecgs" / "e0001.npy").unlink()
    (tmp_path / "10_sec_ecgs" / "e0002.npy").write_bytes(b"not a numpy file")
    np.save(tmp_path / "10_sec_ecgs" / "e0003.npy", np.zeros((3, 200), np.float32))
    for in_memory_gb in (1.0, 0.0):  # in memory, and lazy
        data = build_dataset(ten_second_items(df, tmp_path), ["scd1"], [False], [], {}, {}, 200,
                             ["zero_mode"], in_memory_gb, name="t", progress=False)
        assert list(data.index["studyId"]) == ["e0000", "e0004", "e0005"]
        assert {row["studyId"]: row["reason"] for row in data.failures.rows} == {
            "e0001": "file missing", "e0002": "unreadable: not a NumPy array file (no .npy header)",
            "e0003": "shape (3, 200), expected (12, samples)"}
        assert len(data.failures) == 3 and set(data.failures.counts().values()) == {1}
        assert (data.signals is None) == (in_memory_gb == 0.0)
        assert data.batch(np.array([1]))[0].shape == (1, 12, 200)
    # streaming prediction: nothing checked or loaded up front; read_batch finds the bad files
    data = build_dataset(ten_second_items(df, tmp_path), ["scd1"], [False], [], {}, {}, 200,
                         ["zero_mode"], 0.0, name="t", progress=False, check_files=False)
    assert data.signals is None and len(data) == 6 and len(data.failures) == 0
    x, _, read, reasons = data.read_batch(np.arange(6))
    assert read.tolist() == [True, False, False, False, True, True] and x.shape == (3, 12, 200)
    assert reasons == ["file missing", "unreadable: not a NumPy array file (no .npy header)",
                       "shape (3, 200), expected (12, samples)"]
    with pytest.raises(ValueError, match="streaming"):
        build_dataset(ten_second_items(df, tmp_path), ["scd1"], [False], [], {}, {}, 200,
                      ["zero_mode"], 1.0, name="t", progress=False, check_files=False)


# ----------------------------------------------------------------------------- fit loop
@pytest.fixture(scope="module")
def tiny_problems(tmp_path_factory):
    """The train/val datasets of :func:`_tiny_problem`, built once per size for this module.

    Fits never change a dataset in place, except the monitor test, which edits a copy."""
    cache = {}

    def get(n=32):
        if n not in cache:
            cache[n] = _tiny_problem(tmp_path_factory.mktemp(f"tiny{n}"), n)
        return cache[n]
    return get


def _tiny_problem(tmp_path, n=32):
    df = make_workspace(tmp_path / "ws", n_patients=n, n_samples=256, beats=1)
    items = ten_second_items(df, tmp_path / "ws")
    common = dict(outputs=ECG_OUTPUTS, regression=[False] * len(ECG_OUTPUTS),
                  covariates=["age", "female"], cov_stats=fit_stats(df, ["age", "female"]),
                  target_stats={}, length=200, preprocessing=["zero_mode"],
                  memory_limit_gb=1.0, progress=False)
    train = build_dataset(items.iloc[: n // 2], name="train", **common)  # 256 > 200: random windows
    val = build_dataset(items.iloc[n // 2:], name="val", **common)
    return train, val


def _fit(tmp_path, train, val, folder, max_epochs, resume=False, on_best=None, seed=3,
         monitor="val_loss", patience=3, min_epochs=10, lr=3e-3):
    torch.manual_seed(seed)
    model = build_model(Architecture(outputs=ECG_OUTPUTS, length=200, channels=4, n_blocks=2,
                                     rep_mp=1, dropout=0.2, covariates=["age", "female"]))
    settings = FitSettings(lr=lr, batch_size=8, min_epochs=min_epochs, max_epochs=max_epochs,
                           patience=patience, lr_reduce_interval=2, seed=seed, progress=False,
                           monitor=monitor)
    result = fit(model, train, val, ECG_OUTPUTS, [False] * len(ECG_OUTPUTS), settings,
                 tmp_path / folder, Context(), {"test": 1}, resume=resume, on_best=on_best)
    return model, result


def test_fit_is_reproducible_and_resume_matches_an_uninterrupted_run(tmp_path, tiny_problems):
    train, val = tiny_problems()
    straight, res_straight = _fit(tmp_path, train, val, "a", max_epochs=4)
    again, res_again = _fit(tmp_path, train, val, "b", max_epochs=2)
    assert [h["val_loss"] for h in res_again.history] == [h["val_loss"] for h in res_straight.history[:2]]

    def kill_at_epoch_3(state, result):
        if result.best_epoch == 3:
            raise KeyboardInterrupt  # killed after epoch 3's validation, before its checkpoint

    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, train, val, "c", max_epochs=4, on_best=kill_at_epoch_3)
    assert json.loads(torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=True)
                      ["config_json"])["epoch"] in (1, 2)
    resumed, res_resumed = _fit(tmp_path, train, val, "c", max_epochs=4, resume=True)
    assert res_resumed.resumed_from in (1, 2)
    assert [h["val_loss"] for h in res_resumed.history] == [h["val_loss"] for h in res_straight.history]
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert res_resumed.best_val_loss == res_straight.best_val_loss
    # interval 2, counted from 0 as published: epochs 1-3 at the full rate, then halved
    assert [h["lr"] for h in res_straight.history] == [3e-3, 3e-3, 3e-3, 1.5e-3]


@pytest.mark.parametrize("edit, message", [
    ("state['epoch'] = 'one'", "epoch is 'one'"),
    ("state['epoch'] = -5", "epoch is -5"),
    ("state['epoch'] = 1e9", "epoch is 1000000000.0"),
    ("del state['best_epoch']", "no best_epoch"),
    ("state['history'] = 'x'", "history is str"),
    ("state['finished'] = 'no'", "finished is 'no'"),
    ("del tensors['optimizer']", "no optimizer"),
    ("state = [1, 2]", "its state is list")])
def test_resume_from_a_checkpoint_with_edited_state_is_one_line(tmp_path, tiny_problems, edit,
                                                                 message):
    """Each of these was a traceback (or, for finished 'no', a run that trained nothing)."""
    train, val = tiny_problems(16)
    _fit(tmp_path, train, val, "t", max_epochs=1)
    path = tmp_path / "t" / "checkpoint.pt"
    tensors = torch.load(path, weights_only=True)
    parts = {"state": json.loads(tensors["config_json"]), "tensors": tensors}
    exec(edit, {}, parts)
    tensors["config_json"] = json.dumps(parts["state"])
    torch.save(tensors, path)
    with pytest.raises(PipelineError, match=rf"checkpoint.pt: .*{re.escape(message)}.*remove it "
                       "or drop --resume"):
        _fit(tmp_path, train, val, "t", max_epochs=2, resume=True)


@pytest.mark.parametrize("monitor, pick", [("val_loss", np.argmin), ("auc_scd1", np.argmax),
                                           ("loss_scd1", np.argmin)])
def test_monitor_picks_the_best_epoch_and_its_weights(tmp_path, monitor, pick, tiny_problems):
    train, val = tiny_problems()
    saved = {}
    model, result = _fit(tmp_path, train, val, "m", max_epochs=6, monitor=monitor, patience=10,
                         on_best=lambda state, res: saved.update(epoch=res.best_epoch))
    values = [h[monitor] for h in result.history]
    assert len(set(values)) > 1  # the choice is not trivial
    assert result.best_epoch == int(pick(values)) + 1 == saved["epoch"]
    assert result.best_score == values[result.best_epoch - 1]
    assert result.best_val_loss == result.history[result.best_epoch - 1]["val_loss"]


def test_per_output_losses_are_each_outputs_masked_bce_or_mse():
    logits = np.array([[0.5, 1.0], [-1.0, 2.0], [2.0, 0.0]], np.float32)
    targets = np.array([[1.0, 0.5], [np.nan, 1.0], [0.0, np.nan]], np.float32)
    got = per_output_losses(logits, targets, ["a", "b"], [False, True])
    bce = F.binary_cross_entropy_with_logits(torch.tensor([0.5, 2.0]), torch.tensor([1.0, 0.0]))
    assert got["loss_a"] == pytest.approx(bce.item())
    assert got["loss_b"] == pytest.approx((0.5 ** 2 + 1.0 ** 2) / 2)  # MSE, unweighted


def test_monitor_names_are_checked_before_training(tmp_path, tiny_problems):
    import copy

    train, val = tiny_problems(16)
    val = copy.deepcopy(val)            # its targets are edited below
    for bad in ("auc_nope", "r2_scd1", "accuracy", "loss_"):
        with pytest.raises(PipelineError, match=f"--monitor {bad}: not a validation metric"):
            _fit(tmp_path, train, val, "bad", max_epochs=1, monitor=bad)
    val.targets[:, 2] = np.where(np.isnan(val.targets[:, 2]), np.nan, 0.0)  # no positives
    with pytest.raises(PipelineError, match="auc_scd1: the validation set has .* 0 positive"):
        _fit(tmp_path, train, val, "bad", max_epochs=1, monitor="auc_scd1")
    assert not (tmp_path / "bad").exists()


def test_different_seed_gives_a_different_run(tmp_path, tiny_problems):
    train, val = tiny_problems(16)
    _, a = _fit(tmp_path, train, val, "a", max_epochs=1, seed=3)
    _, b = _fit(tmp_path, train, val, "b", max_epochs=1, seed=4)
    assert a.history[0]["val_loss"] != b.history[0]["val_loss"]


def test_a_validation_set_without_labels_is_not_taken_for_divergence(tmp_path, tiny_problems):
    """With no labelled validation pair the masked loss is 0 and the outputs are finite, so
    the run goes on instead of being told to lower --lr."""
    import copy

    train, val = tiny_problems(16)
    val = copy.deepcopy(val)
    val.targets[:] = np.nan
    _, result = _fit(tmp_path, train, val, "unlabelled", max_epochs=1, min_epochs=1)
    assert len(result.history) == 1 and result.history[0]["val_loss"] == 0.0


def test_a_diverging_fit_stops_in_one_line(tmp_path, tiny_problems):
    """lr 1e30 is finite but turns the weights into NaN: the AUC used to stop in a traceback."""
    train, val = tiny_problems(16)
    with pytest.raises(PipelineError) as err:
        _fit(tmp_path, train, val, "div", max_epochs=2, lr=1e30)
    assert re.fullmatch(r"training diverged at epoch 1 \(validation loss nan, \d+ non-finite "
                        r"validation outputs\); lower --lr", str(err.value)), str(err.value)


# ----------------------------------------------------------------------------- scripts
@pytest.mark.parametrize("script, option, value, what", [
    (X01, "--lr", "inf", "a finite number above 0"),
    (X01, "--lr", "0", "a finite number above 0"),      # trains nothing
    (X01, "--weight-decay", "inf", "a finite number, 0 or more"),
    (X01, "--gamma", "inf", "a finite number above 0"),
    (X01, "--gamma", "0", "a finite number above 0"),   # zeroes the rate at the first decay
    (X01, "--dropout", "1", "a number from 0 to below 1"),
    (X02, "--lr", "1e999", "a finite number above 0"),
    (X02, "--regression-weight", "inf", "a finite number, 0 or more"),
    (X02, "--dropout", "1.0", "a number from 0 to below 1")])
def test_training_refuses_an_infinite_rate_or_weight_when_parsing(tmp_path, script, option,
                                                                  value, what):
    line = refused_line(script, option, value, cwd=tmp_path)
    assert line.endswith(f"error: argument {option}: {value!r}: {option} must be {what}"), line
    assert list(tmp_path.iterdir()) == []



def test_min_epochs_above_max_epochs_is_said(tmp_path):
    """x01 --min-epochs 5 --max-epochs 2 ran 2 epochs without a word; it is a way to switch
    early stopping off, so it is said, not refused."""
    make_workspace(tmp_path, n_patients=24, n_samples=300, beats=1)
    code, out, err = run_main(X01, *TINY[:-4], "--length", "300", "--min-epochs", "5",
                              "--max-epochs", "2", cwd=tmp_path)
    assert code == 0, err
    assert "[train] --min-epochs 5 is above --max-epochs 2: no early stop; the run trains 2 " \
           "epochs" in out
    history = pd.read_csv(tmp_path / "modelfits_ecg" / "ntuh_scd_model_demo" / "history.csv")
    assert history["epoch"].tolist() == [1, 2]

def test_training_that_diverges_stops_in_one_line(tmp_path):
    """--lr 1e30 used to end in 'score contains NaN' from the validation AUC."""
    make_workspace(tmp_path, n_patients=24, n_samples=600, beats=1)
    for script, folder in ((X01, "modelfits_ecg"), (X02, "modelfits_beat")):
        length = ["--length", "500"] if script == X01 else []
        code, _, err = run_main(script, *TINY, *length, "--lr", "1e30", cwd=tmp_path)
        errors = [line for line in err.splitlines() if "error:" in line]
        assert code == 2 and "Traceback" not in err and len(errors) == 1, err
        assert err.splitlines()[-1] == errors[0] and re.fullmatch(
            r"error: training diverged at epoch 1 \(validation loss nan, \d+ non-finite "
            r"validation outputs\); lower --lr", errors[0]), errors
        # as for other failed runs: the split and the exclusions stay, no model is saved
        model = next((tmp_path / folder).iterdir())
        assert sorted(p.name for p in model.iterdir()) == ["excluded.csv", "split.csv"]


def ok(script, *args, cwd):
    code, out, err = run_main(script, *args, cwd=cwd)
    assert code == 0, err
    return out


def test_train_script_resume_extends_a_run_exactly(tmp_path):
    make_workspace(tmp_path, n_patients=40, n_samples=400, beats=1)
    common = [*TINY[:-4], "--length", "300", "--min-epochs", "9"]
    ok(X01, *common, "--max-epochs", "3", "--model-name", "straight", cwd=tmp_path)
    ok(X01, *common, "--max-epochs", "1", "--model-name", "resumed", cwd=tmp_path)
    out = ok(X01, *common, "--max-epochs", "3", "--model-name", "resumed", "--resume", cwd=tmp_path)
    assert "resuming after epoch 1" in out
    a = json.loads((tmp_path / "modelfits_ecg/straight/config.json").read_text())
    b = json.loads((tmp_path / "modelfits_ecg/resumed/config.json").read_text())
    assert [h["val_loss"] for h in a["history"]] == [h["val_loss"] for h in b["history"]]
    assert a["best_val_loss"] == b["best_val_loss"]
    assert a["best_score"] == a["best_val_loss"] and a["training"]["monitor"] == "val_loss"
    # the stored statistics and split are what prediction reuses
    assert set(a["covariate_stats"]) == {"age", "female"}
    split = pd.read_csv(tmp_path / "modelfits_ecg/straight/split.csv")
    assert set(split["split"]) == {"train", "val", "lockbox"}
    # resuming with another configuration names what differs
    code, _, err = run_main(X01, *common, "--channels", "8", "--model-name", "resumed",
                            "--resume", cwd=tmp_path)
    assert code == 2 and "architecture.channels" in err


def test_unknown_output_is_named(tmp_path, script_runner):
    make_workspace(tmp_path, n_patients=10, n_samples=300, beats=1)
    proc = script_runner(X01, *TINY, "--outputs", "scd1", "not_a_label", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "not_a_label" in proc.stderr and "Traceback" not in proc.stderr
    code, _, err = run_main(X02, *TINY, "--regression", "qrsDuration", "--outputs", "scd1",
                            "qrsDuration", "missing_measure", cwd=tmp_path)
    assert code == 2 and "missing_measure" in err


def test_death_only_run_selects_dead1_patients_and_its_own_statistics(tmp_path):
    df = make_workspace(tmp_path, n_patients=50, n_samples=300, beats=1)
    ok(X01, *TINY, "--length", "300", "--run", "death-only", cwd=tmp_path)
    folder = tmp_path / "modelfits_ecg/ntuh_scd_model_demo_death_only"
    config = json.loads((folder / "config.json").read_text())
    split = pd.read_csv(folder / "split.csv", dtype=str)
    dead = set(df.loc[df["dead1"] == 1, "studyId"])
    # split.csv lists every modelling ECG with the cohort's split (so the model can score them
    # all, as the ensemble needs); in_subset marks the dead1 rows it trained on
    modelling = df[df["include_modelling"].astype(bool)]
    assert set(split["studyId"]) == set(modelling["studyId"])
    assert set(split.loc[split["in_subset"] == "True", "studyId"]) == dead & set(modelling["studyId"])
    cohort = patient_split(modelling["ptId"].astype(str), 0.3, 0.3, 42)
    assert dict(zip(split["studyId"], split["split"])) == dict(zip(modelling["studyId"], cohort))
    split = split[split["in_subset"] == "True"]
    assert config["outputs"] == ["scd3mo", "scd6mo", "scd1", "scd2", "TROPT1", "Acute_MI1",
                                 "scd3mo_6mo", "scd6mo_1", "scd1_2"]
    train_ids = split.loc[split["split"] == "train", "studyId"]
    expected = df.set_index("studyId").loc[train_ids, "age"]
    assert config["covariate_stats"]["age"]["mean"] == pytest.approx(expected.mean())


def test_covariate_statistics_come_from_the_training_ecgs_that_are_used(tmp_path):
    """x01: age/female are z-scored with the mean and SD of the training ECGs the model
    trains on; a training ECG whose file cannot be read is left out of them too (it was
    counted before: the statistics then differed from the training set's)."""
    df = make_workspace(tmp_path, n_patients=40, n_samples=300, beats=1)
    modelling = df[df["include_modelling"].astype(bool)]
    split = patient_split(modelling["ptId"].astype(str), 0.3, 0.3, 42)
    train = modelling[split.to_numpy() == "train"]
    broken = train.sort_values("age")["studyId"].iloc[-1]      # the oldest: moves the mean
    (tmp_path / "10_sec_ecgs" / f"{broken}.npy").write_bytes(b"not an array")
    ok(X01, *TINY, "--length", "300", cwd=tmp_path)
    folder = tmp_path / "modelfits_ecg/ntuh_scd_model_demo"
    config = json.loads((folder / "config.json").read_text())
    assert broken in set(pd.read_csv(folder / "excluded.csv", dtype=str)["studyId"])
    used = train[train["studyId"] != broken]["age"].astype(float)
    assert config["covariate_stats"]["age"]["mean"] == pytest.approx(used.mean())
    assert config["covariate_stats"]["age"]["sd"] == pytest.approx(used.std())
    assert config["covariate_stats"]["age"]["mean"] != pytest.approx(train["age"].mean())
    assert config["data"]["train"]["samples"] == len(used)


def test_beat_script_standardises_regression_targets_with_training_statistics(tmp_path):
    df = make_workspace(tmp_path, n_patients=30, n_samples=1000, beats=2)
    ok(X02, *TINY, cwd=tmp_path)
    config = json.loads((tmp_path / "modelfits_beat/ntuh_scd_beat_model_demo/config.json").read_text())
    assert config["architecture"]["channels"] == 4 and config["architecture"]["length"] == 300
    types = dict(zip(config["outputs"], config["output_types"]))
    assert types["age"] == "regression" and types["female"] == "classification"
    split = pd.read_csv(tmp_path / "modelfits_beat/ntuh_scd_beat_model_demo/split.csv", dtype=str)
    train = df[df["studyId"].isin(split.loc[split["split"] == "train", "studyId"])]
    assert config["target_stats"]["qtInterval"]["mean"] == pytest.approx(train["qtInterval"].mean())
    assert config["split"]["val_frac"] == 0.2
    assert config["history"][-1]["r2_age"] is not None


# ------------------------------------------------------------ the published epoch count
def test_lr_steps_and_minimum_epochs_count_from_zero_as_published():
    """Rows 8 and 9: the published loop counted epochs from 0, so the rate first halves after
    11 epochs and at least min_epochs + 1 epochs run; --no-zero-based-epochs counts from 1."""
    published = FitSettings(lr=1.0, batch_size=8, min_epochs=40, max_epochs=1000, patience=10)
    rates = [published.lr_at(e) for e in range(1, 33)]
    assert rates[:11] == [1.0] * 11 and rates[11:21] == [0.5] * 10 and rates[21:31] == [0.25] * 10
    assert not published.may_stop(40, best_epoch=1) and published.may_stop(41, best_epoch=1)
    assert not published.may_stop(45, best_epoch=36) and published.may_stop(46, best_epoch=36)

    ours = FitSettings(lr=1.0, batch_size=8, min_epochs=40, max_epochs=1000, patience=10,
                       zero_based_epochs=False)
    rates = [ours.lr_at(e) for e in range(1, 22)]
    assert rates[:10] == [1.0] * 10 and rates[10:20] == [0.5] * 10 and rates[20] == 0.25
    assert ours.may_stop(40, best_epoch=1) and not ours.may_stop(39, best_epoch=1)


def test_validation_loss_pooled_and_published_batch_mean():
    """Row 10: by default one masked loss over the whole set; batch_mean averages the batches'
    own masked losses, so a batch with one label weighs as much as one with four."""
    logits = np.array([[0.0], [0.0], [2.0], [2.0], [-1.0]], np.float32)
    targets = np.array([[1.0], [0.0], [1.0], [1.0], [np.nan]], np.float32)
    is_reg = torch.tensor([False])
    bce = lambda z, y: float(np.log1p(np.exp(-z)) if y == 1 else np.log1p(np.exp(z)))  # noqa: E731
    per = [bce(z, y) for z, y in zip(logits[:4, 0], targets[:4, 0])]
    pooled = FitSettings(lr=1.0, batch_size=3, min_epochs=1, max_epochs=1, patience=1)
    assert validation_loss(logits, targets, is_reg, pooled) == pytest.approx(np.mean(per), rel=1e-6)
    batched = FitSettings(lr=1.0, batch_size=3, min_epochs=1, max_epochs=1, patience=1,
                          val_loss="batch_mean")
    expected = np.mean([np.mean(per[:3]), per[3]])      # batches [0:3] and [3:5] (one label)
    assert validation_loss(logits, targets, is_reg, batched) == pytest.approx(expected, rel=1e-6)
    assert abs(expected - np.mean(per)) > 0.05


def _script_constant(path: str, name: str):
    import ast
    tree = ast.parse((ROOT / path).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path}: no constant {name}")


def test_covariates_and_beat_heads_in_the_published_order():
    """Row 19: age then female, both as the 10-s model's covariates (concatenated after the
    backbone features in that order) and among the beat model's heads."""
    assert _script_constant("01_Predictive_Model/x01_train_10s_ecg.py", "COVARIATES") == ["age", "female"]
    heads = _script_constant("01_Predictive_Model/x02_train_beats.py", "OUTPUTS")
    assert heads[12:16] == ["Acute_MI1", "age", "female", "qrsDuration"]
    model = build_model(Architecture(outputs=["scd1"], length=200, channels=4, n_blocks=2,
                                     rep_mp=1, dropout=0.0, covariates=["age", "female"],
                                     cumulative=False)).eval()
    n_feat = model.backbone.n_features
    with torch.no_grad():
        for p in model.head.parameters():
            p.zero_()
        model.head[0].weight[0, n_feat] = 1.0        # the first covariate column only
        model.head[2].weight[0, 0] = 1.0
    x = torch.zeros(2, 12, 200)
    out = model(x, torch.tensor([[2.0, 0.0], [0.0, 2.0]]))[:, 0]
    assert out.tolist() == [2.0, 0.0]                 # column F is age, F + 1 is female


def test_beat_model_trains_for_up_to_1000_epochs():
    """Row 11 (recorded in DEVIATIONS): not the published max_epochs=2; --max-epochs 2 gives it."""
    script = "01_Predictive_Model/x02_train_beats.py"
    assert _script_constant(script, "MAX_EPOCHS") == 1000
    assert _script_constant(script, "MIN_EPOCHS") == 40


def test_early_stopping_stops_and_a_finished_run_does_not_resume(tmp_path, tiny_problems):
    """With patience 1 the loop stops at the first epoch allowed to stop (min_epochs counted
    from 0, as published) after one that did not improve; the checkpoint says finished, and
    --resume then trains no further. A large learning rate makes improvement stall early."""
    train, val = tiny_problems(16)
    _, result = _fit(tmp_path, train, val, "run", max_epochs=40, patience=1, min_epochs=1, lr=0.5)
    epochs = [row["epoch"] for row in result.history]
    assert epochs == list(range(1, epochs[-1] + 1)) and epochs[-1] < 40, "never stopped early"
    settings = FitSettings(lr=0.5, batch_size=8, min_epochs=1, max_epochs=40, patience=1)
    trace = _best_so_far(result.history)
    assert trace[-1][1] == result.best_epoch
    # it stopped at the first epoch where stopping was allowed, not before and not after
    assert settings.may_stop(*trace[-1])
    assert not any(settings.may_stop(e, b) for e, b in trace[:-1])
    _, again = _fit(tmp_path, train, val, "run", max_epochs=40, patience=1, min_epochs=1, lr=0.5,
                    resume=True)
    assert [row["epoch"] for row in again.history] == epochs   # nothing trained after the stop
    assert again.best_epoch == result.best_epoch


def _best_so_far(history):
    """(epoch, best epoch up to it) for each epoch of a history, by validation loss."""
    out, best, best_loss = [], 0, float("inf")
    for row in history:
        if row["val_loss"] < best_loss:
            best, best_loss = row["epoch"], row["val_loss"]
        out.append((row["epoch"], best))
    return out


def test_x02_published_switches_reach_the_model_and_the_loss(tmp_path):
    """x02 end to end: --hazard relu builds the published horizon layer (zero hazard for a
    negative pre-activation), --val-loss batch_mean changes only the validation loss (same
    seed: the same training), --regression-weight and --bce-on-regression reach the training
    loss."""
    make_workspace(tmp_path, n_patients=30, n_samples=1000, beats=3)
    common = (*TINY, "--max-epochs", "1", "--batch-size", "16")
    runs = {"pooled": (), "batch_mean": ("--val-loss", "batch_mean"),
            "relu": ("--hazard", "relu"), "weight": ("--regression-weight", "2.5"),
            "bce_all": ("--bce-on-regression",)}
    history, configs = {}, {}
    for name, extra in runs.items():
        ok(X02, *common, *extra, "--model-name", name, cwd=tmp_path)
        folder = tmp_path / "modelfits_beat" / name
        configs[name] = json.loads((folder / "config.json").read_text())
        history[name] = pd.read_csv(folder / "history.csv").iloc[0]
    assert configs["pooled"]["training"]["val_loss"] == "pooled"
    assert configs["batch_mean"]["training"]["val_loss"] == "batch_mean"
    assert history["batch_mean"]["train_loss"] == history["pooled"]["train_loss"]
    assert abs(history["batch_mean"]["val_loss"] - history["pooled"]["val_loss"]) > 1e-6
    assert configs["weight"]["training"]["regression_weight"] == 2.5
    assert configs["pooled"]["training"]["regression_weight"] == 10.0       # published
    assert abs(history["weight"]["train_loss"] - history["pooled"]["train_loss"]) > 1e-3
    assert configs["bce_all"]["training"]["bce_on_regression"] is True
    assert configs["pooled"]["training"]["bce_on_regression"] is False
    assert abs(history["bce_all"]["train_loss"] - history["pooled"]["train_loss"]) > 1e-3
    assert configs["pooled"]["architecture"]["hazard"] == "softplus"
    assert configs["relu"]["architecture"]["hazard"] == "relu"
    for name, at_minus_one in (("relu", 0.0), ("pooled", float(np.log1p(np.exp(-1.0))))):
        model, _ = load_trained(tmp_path / "modelfits_beat" / name)
        assert model.cumulative.hazard_fn(torch.tensor([-1.0])).item() == pytest.approx(at_minus_one)


def test_published_tail_cut_reproduces_the_published_10s_loader(tmp_path):
    """DEVIATIONS "10-s input length": --preprocessing published_tail_cut zero_mode is the
    published loader exactly (mV, last 500 samples dropped and zero-padded back, then each
    lead's mode, taken with the padding), and the model keeps it for prediction."""
    from scdecg.signals import zero_mode
    from scdecg.training.data import read_signal

    rng = np.random.default_rng(3)
    x = np.round(rng.normal(0, 300, (12, 5000))).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    got = read_signal(tmp_path / "a.npy", 1000.0, ["published_tail_cut", "zero_mode"])
    cut = np.concatenate([x[:, :4500] / np.float32(1000), np.zeros((12, 500), np.float32)], 1)
    assert got.shape == (12, 5000)
    np.testing.assert_array_equal(got, zero_mode(cut))
    # every lead's last 500 samples are the padding minus that lead's mode; the pad zeros
    # make 0 the mode of most leads here, so the rest is the raw mV signal
    assert np.all(got[:, 4500:] == got[:, -1:]) and not np.array_equal(got, zero_mode(x / 1000))
    assert np.array_equal(read_signal(tmp_path / "a.npy", 1000.0, ["published_tail_cut"])[:, 4500:],
                          np.zeros((12, 500), np.float32))

    make_workspace(tmp_path, n_patients=30, n_samples=700, beats=1)
    ok(X01, *TINY, "--preprocessing", "published_tail_cut", "zero_mode", cwd=tmp_path)
    config = json.loads((tmp_path / "modelfits_ecg/ntuh_scd_model_demo/config.json").read_text())
    assert config["preprocessing"] == ["published_tail_cut", "zero_mode"]


@pytest.mark.parametrize("refused", [("--resume", "--split-seed", "7"),
                                     ("--monitor", "auc_bogus")],
                         ids=["resume_with_another_split", "unknown_monitor"])
def test_a_refused_training_run_leaves_the_model_folder_as_it_was(tmp_path, refused):
    """A --resume refused for a changed split rewrote split.csv first (the trained model's
    patients then read as lockbox), and a fresh run refused before its first epoch deleted
    the earlier best.pt and config.json; now a refused run writes nothing."""
    make_workspace(tmp_path, n_patients=40, n_samples=300, beats=1)
    ok(X01, *TINY, "--length", "300", "--max-epochs", "1", cwd=tmp_path)
    folder = tmp_path / "modelfits_ecg/ntuh_scd_model_demo"
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert {"best.pt", "config.json", "split.csv", "checkpoint.pt"} <= set(before)
    code, _, err = run_main(X01, *TINY, "--length", "300", "--max-epochs", "1", *refused,
                            cwd=tmp_path)
    assert code == 2, err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


def test_include_modelling_as_text_is_refused_by_name(tmp_path):
    """The strings "True"/"False" in include_modelling both counted as true (a cast to
    bool), so every excluded ECG entered training; now the column and value are named."""
    df = make_workspace(tmp_path, n_patients=20, n_samples=300, beats=1)
    df["include_modelling"] = df["include_modelling"].map({True: "True", False: "False",
                                                           1: "True", 0: "False"})
    df.to_feather(tmp_path / "covariate_df.feather")
    code, _, err = run_main(X01, *TINY, "--length", "300", "--max-epochs", "1", cwd=tmp_path)
    assert code == 2 and "column include_modelling is 'True' for studyId" in err, err
    assert "expected 0, 1 or missing" in err
    assert not (tmp_path / "modelfits_ecg").exists()
