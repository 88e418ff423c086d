"""Latent morphing: gradient ascent, stopping, batching, failures, and the morph set."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from scdecg.errors import PipelineError
from scdecg.morphing import (INDEPENDENT_COLUMNS, BeatRiskModel, MeanRiskModel, draw_morph_set,
                             independent_risk_change, load_beat_models, morph_beat_index,
                             morph_in_batches, morph_latents, split_patients, start_latents,
                             stop_threshold)

LATENT = 16


class ToyBeatModel(nn.Module):
    """(B, 12, 300) -> logits for ("age", "scd1"): a conv, a pooled mean, a linear layer."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv1d(12, 4, 5)
        self.out = nn.Linear(4, 2)
        with torch.no_grad():  # steep enough that a few steps move the logit visibly
            self.conv.weight *= 10
            self.out.weight *= 10

    def forward(self, x):
        return self.out(torch.tanh(self.conv(x)).mean(-1))


def toy_setup(n=6):
    torch.manual_seed(0)
    decoder = nn.Sequential(nn.Linear(LATENT, 32), nn.Tanh(), nn.Linear(32, 12 * 300),
                            nn.Unflatten(1, (12, 300)))
    model = BeatRiskModel(ToyBeatModel(), ["age", "scd1"], ["regression", "classification"])
    z0 = torch.randn(n, LATENT)
    return decoder, model, z0


def test_gradient_ascent_raises_the_logit_and_t0_is_the_reconstruction():
    decoder, model, z0 = toy_setup()
    res = morph_latents(decoder, model.target_logit, z0, lr=0.05, max_steps=30, progress=False)
    with torch.no_grad():
        rec = decoder(z0)
        logit0 = model.target_logit(rec)
    np.testing.assert_array_equal(res.beats_t0, rec.numpy())        # t0 = Dec(z0), no step taken
    np.testing.assert_allclose(res.logit_t0, logit0.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(res.risk_trajectory[0], res.logit_t0)
    assert (res.steps == 30).all() and not res.stopped.any() and not res.failed.any()
    assert (res.logit_final > res.logit_t0 + 0.02).all()
    assert (np.diff(res.risk_trajectory, axis=0) > -1e-6).all()      # small steps: monotone
    with torch.no_grad():
        np.testing.assert_allclose(res.beats_final, decoder(torch.as_tensor(res.z_final)).numpy(),
                                   atol=1e-6)
    assert list(res.beat_steps) == [0, 30] and res.beat_trajectory.shape == (2, 6, 12, 300)


def test_stopping_rule_freezes_beats_and_ends_the_loop():
    decoder, model, z0 = toy_setup(8)
    free = morph_latents(decoder, model.target_logit, z0, lr=0.05, max_steps=40, progress=False)
    stop = float(np.quantile(free.risk_trajectory[10], 0.5))
    res = morph_latents(decoder, model.target_logit, z0, lr=0.05, max_steps=400,
                        stop_logit=stop, progress=False)
    assert res.stopped.all() and res.risk_steps[-1] < 400            # loop ended early
    assert (res.logit_final >= stop).all()
    for i in range(8):
        k = res.steps[i]
        traj = res.risk_trajectory[:, i]
        if k > 0:
            assert traj[k - 1] < stop <= traj[k]                    # stopped at the first crossing
        np.testing.assert_array_equal(traj[k:], traj[k])            # frozen afterwards
    above = res.logit_t0 >= stop                                    # started above: no step at all
    assert above.any() and (res.steps[above] == 0).all()
    np.testing.assert_array_equal(res.beats_final[above], res.beats_t0[above])


def test_batched_equals_one_at_a_time():
    decoder, model, z0 = toy_setup(5)
    kw = dict(lr=0.05, max_steps=25, stop_logit=None, progress=False)
    batch = morph_latents(decoder, model.target_logit, z0, **kw)
    for i in range(5):
        one = morph_latents(decoder, model.target_logit, z0[i:i + 1], **kw)
        np.testing.assert_allclose(one.z_final[0], batch.z_final[i], atol=1e-5)
        np.testing.assert_allclose(one.logit_final[0], batch.logit_final[i], atol=1e-5)
    chunks = morph_in_batches(decoder, model.target_logit, z0, batch_size=2, **kw)
    np.testing.assert_allclose(chunks.z_final, batch.z_final, atol=1e-5)
    np.testing.assert_allclose(chunks.risk_trajectory, batch.risk_trajectory, atol=1e-5)


def test_nan_beat_fails_with_reason_and_the_others_are_kept():
    decoder, model, z0 = toy_setup(4)
    bad = z0.clone()
    bad[2, 0] = float("nan")
    kw = dict(lr=0.05, max_steps=10, progress=False)
    res = morph_latents(decoder, model.target_logit, bad, **kw)
    ref = morph_latents(decoder, model.target_logit, z0, **kw)
    assert res.failed.tolist() == [False, False, True, False]
    assert "non-finite" in res.reasons[2] and res.reasons[0] == ""
    keep = [0, 1, 3]
    np.testing.assert_allclose(res.z_final[keep], ref.z_final[keep], atol=1e-6)
    assert res.steps[2] == 0


def test_stop_threshold_is_the_probability_quantile():
    logits = np.linspace(-3, 3, 101)
    assert stop_threshold(logits, 0.9) == pytest.approx(2.4, abs=1e-9)
    with pytest.raises(PipelineError):
        stop_threshold(np.array([]), 0.9)


def test_beat_model_protocol_checks_outputs():
    with pytest.raises(PipelineError, match="scd1"):
        BeatRiskModel(ToyBeatModel(), ["age", "female"])
    bad = BeatRiskModel(ToyBeatModel(), ["age", "scd1", "scd2"])
    with pytest.raises(PipelineError, match=r"expected \(1, 3\)"):
        bad.check_input()


def test_morph_set_holds_only_validation_patients(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cov = pd.DataFrame({"studyId": [f"e{i}" for i in range(6)],
                        "ptId": [f"p{i}" for i in range(6)]})
    cov.to_feather("covariate_df.feather")
    for i in range(6):
        (tmp_path / "ecg_beats_morphing" / f"e{i}").mkdir(parents=True)
        for k in range(3):
            np.save(tmp_path / "ecg_beats_morphing" / f"e{i}" / f"e{i}_{k}.npy",
                    np.zeros((12, 300), np.float32))
    pd.DataFrame({"ptId": [f"p{i}" for i in range(6)],
                  "split": ["train", "train", "train", "val", "val", "lockbox"]}
                 ).to_csv(tmp_path / "split.csv", index=False)
    splits = split_patients(tmp_path)
    index = morph_beat_index(None)
    assert len(index) == 18
    drawn = draw_morph_set(index, splits, n_beats=4, seed=0)
    assert len(drawn) == 4 and set(drawn["ptId"]) <= {"p3", "p4"}
    assert drawn.equals(draw_morph_set(index, splits, n_beats=4, seed=0))
    everything = draw_morph_set(index, splits, n_beats=100, seed=0)
    assert sorted(everything["ptId"].unique()) == ["p3", "p4"] and len(everything) == 6
    with pytest.raises(PipelineError, match="both train and val"):
        draw_morph_set(index, {"train": {"p1", "p3"}, "val": {"p3"}}, 4, 0)


def test_mean_risk_model_targets_the_mean_logit_and_its_gradient():
    torch.manual_seed(3)
    models = [BeatRiskModel(ToyBeatModel(), ["age", "scd1"]) for _ in range(3)]
    for k, m in enumerate(models):          # three different models
        with torch.no_grad():
            m.module.out.bias += k
            m.module.conv.weight *= 1 + k
    mean = MeanRiskModel(models)
    x = torch.randn(5, 12, 300, requires_grad=True)
    want = torch.stack([m.target_logit(x) for m in models]).mean(0)
    got = mean.target_logit(x)
    torch.testing.assert_close(got, want)
    g_mean = torch.autograd.grad(got.sum(), x)[0]
    g_each = [torch.autograd.grad(m.target_logit(x).sum(), x)[0] for m in models]
    torch.testing.assert_close(g_mean, sum(g_each) / 3)
    beats = x.detach().numpy()
    np.testing.assert_allclose(mean.predict_target(beats),
                               np.mean([m.predict_target(beats) for m in models], 0), rtol=1e-5)
    assert MeanRiskModel(models[:1]).target_logit(x).equal(models[0].target_logit(x))
    with pytest.raises(PipelineError, match="no beat model"):
        MeanRiskModel([])


def test_morph_target_is_the_mean_of_the_models():
    decoder, model, z0 = toy_setup()
    other = BeatRiskModel(ToyBeatModel(), ["age", "scd1"])
    with torch.no_grad():                   # another model: other weights, other bias
        other.module.conv.weight.mul_(0.3)
        other.module.out.bias.add_(1.0)
    res = morph_latents(decoder, MeanRiskModel([model, other]).target_logit, z0, lr=0.05,
                        max_steps=20, progress=False)
    each = [m.predict_target(res.beats_final) for m in (model, other)]
    np.testing.assert_allclose(res.logit_final, np.mean(each, 0), rtol=1e-4, atol=1e-5)
    assert (res.logit_final > res.logit_t0).all()


def test_independent_report_scores_models_that_did_not_steer():
    decoder, model, z0 = toy_setup()
    res = morph_latents(decoder, model.target_logit, z0, lr=0.05, max_steps=30, progress=False)
    flipped = BeatRiskModel(ToyBeatModel(), ["age", "scd1"], source="flipped")
    with torch.no_grad():
        flipped.module.out.weight.neg_()
        flipped.module.out.bias.neg_()
    rows = independent_risk_change([model, flipped], res.beats_t0, res.beats_final)
    assert [r["model"] for r in rows] == ["beat model", "flipped"]
    same, opposite = rows
    assert same["share_raised"] == 1.0 and same["mean_logit_change"] > 0.02
    assert opposite["share_raised"] == 0.0            # its logit is the negative of the target's
    np.testing.assert_allclose(opposite["mean_logit_change"], -same["mean_logit_change"], rtol=1e-4)
    assert same["mean_risk_after"] > same["mean_risk_before"]
    assert set(same) == set(INDEPENDENT_COLUMNS) and same["n_beats"] == 6


def test_start_latent_is_sampled_with_a_fixed_seed_or_the_mean():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(4, 8)).astype(np.float32)
    var = rng.uniform(0.01, 0.2, size=(4, 8)).astype(np.float32)
    np.testing.assert_array_equal(start_latents(mu, var, "mean"), mu)
    a, b = start_latents(mu, var, "sampled", 0), start_latents(mu, var, "sampled", 0)
    np.testing.assert_array_equal(a, b)                     # fixed seed: same start every run
    eps = torch.randn((4, 8), generator=torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(a, mu + np.sqrt(var) * eps, rtol=1e-6)
    assert not np.allclose(a, mu) and not np.allclose(a, start_latents(mu, var, "sampled", 1))
    np.testing.assert_array_equal(start_latents(mu, 0 * var, "sampled"), mu)
    with pytest.raises(PipelineError, match="start latent"):
        start_latents(mu, var, "median")


def _save_toy_beat_model(folder, split_rows):
    from scdecg.models import Architecture, build_model, save_trained

    torch.manual_seed(len(str(folder)))
    model = build_model(Architecture(outputs=["scd1", "age"], length=300, channels=8, n_blocks=1,
                                     rep_mp=5, dropout=0.0, cumulative=False))
    save_trained(folder, model, {"output_types": ["classification", "regression"]})
    pd.DataFrame(split_rows, columns=["ptId", "split"]).to_csv(folder / "split.csv", index=False)


def test_beat_models_loaded_together_share_one_split(tmp_path):
    split = [("p0", "train"), ("p1", "train"), ("p2", "val")]
    for name in ("a", "b"):
        _save_toy_beat_model(tmp_path / name, split)
    _save_toy_beat_model(tmp_path / "c", [("p0", "train"), ("p2", "train"), ("p1", "val")])
    mean, configs, splits = load_beat_models([tmp_path / "a", tmp_path / "b"])
    assert len(mean.members) == 2 and len(configs) == 2
    assert splits == {"train": {"p0", "p1"}, "val": {"p2"}}
    x = torch.randn(3, 12, 300)
    torch.testing.assert_close(mean.target_logit(x),
                               (mean.members[0].target_logit(x) + mean.members[1].target_logit(x)) / 2)
    with pytest.raises(PipelineError, match="split differs"):
        load_beat_models([tmp_path / "a", tmp_path / "c"])


# ------------------------------------------------ edge cases found by mutation testing
def test_strides_must_be_at_least_one_and_one_is_allowed():
    decoder, model, z0 = toy_setup(2)
    for bad in (dict(risk_stride=0), dict(beat_stride=0)):
        with pytest.raises(ValueError, match="^strides must be >= 1$"):
            morph_latents(decoder, model.target_logit, z0, max_steps=2, progress=False, **bad)
    res = morph_latents(decoder, model.target_logit, z0, max_steps=5, beat_stride=1,
                        risk_stride=2, progress=False)
    assert list(res.beat_steps) == [0, 1, 2, 3, 4, 5] and list(res.risk_steps) == [0, 2, 4, 5]
    res = morph_latents(decoder, model.target_logit, z0, max_steps=5, beat_stride=2,
                        progress=False)
    assert list(res.beat_steps) == [0, 2, 4, 5]
    assert res.stopped.dtype == bool and res.failed.dtype == bool and res.steps.dtype == np.int64


def test_morph_defaults_are_the_published_settings_of_s10():
    import inspect

    from test_training import _script_constant
    params = inspect.signature(morph_latents).parameters
    assert params["lr"].default == _script_constant("02_Morphing/s10_morph_ecgs.py", "LR") == 0.01
    assert params["max_steps"].default == _script_constant("02_Morphing/s10_morph_ecgs.py",
                                                           "MAX_STEPS") == 2000


def test_morph_defaults_in_use_step_size_steps_and_snapshots():
    """The defaults as the loop uses them (the signature alone does not show what runs): one
    step of lr = 0.01 along a unit gradient, 2000 steps without a stop, beats every 100."""
    decoder = lambda z: z[:, :1, None].expand(-1, 12, 300) * 1.0  # noqa: E731
    target = lambda x: x[:, 0, 0]                                  # noqa: E731 - logit = z[:, 0]
    z0 = torch.zeros(2, 3)
    one = morph_latents(decoder, target, z0, max_steps=1, progress=False)
    np.testing.assert_allclose(one.z_final, [[0.01, 0, 0]] * 2, rtol=1e-6)
    full = morph_latents(decoder, target, z0, progress=False)
    assert full.steps.tolist() == [2000, 2000]
    assert full.beat_steps.tolist() == list(range(0, 2001, 100))
    np.testing.assert_allclose(full.logit_final, [20.0, 20.0], rtol=1e-4)


def test_a_beat_exactly_at_the_stop_logit_stops_before_any_step():
    decoder, model, z0 = toy_setup(3)
    with torch.no_grad():
        t0 = model.target_logit(decoder(z0)).numpy()
    res = morph_latents(decoder, model.target_logit, z0, lr=0.05, max_steps=5,
                        stop_logit=float(t0[1]), progress=False)
    assert res.stopped[1] and res.steps[1] == 0


def test_non_finite_logit_or_latent_fails_even_when_the_rest_is_finite():
    decoder, model, z0 = toy_setup(3)

    def nan_logit_for_beat_1(x, calls=[0]):   # noqa: B006 - finite beat and latent, NaN
        calls[0] += 1                          # logit for beat 1 at step 0
        logit = model.target_logit(x)
        if calls[0] == 1:
            logit = torch.where(torch.arange(len(x)) == 1, torch.full_like(logit, float("nan")), logit)
        return logit

    res = morph_latents(decoder, nan_logit_for_beat_1, z0, lr=0.05, max_steps=4, progress=False)
    assert res.failed.tolist() == [False, True, False] and res.steps.tolist() == [4, 0, 4]
    # a decoder that maps a NaN latent to a finite beat: the latent still fails the beat
    clean_decoder = lambda z: decoder(torch.nan_to_num(z))  # noqa: E731
    bad = z0.clone()
    bad[0, 3] = float("nan")
    res = morph_latents(clean_decoder, model.target_logit, bad, lr=0.05, max_steps=4,
                        progress=False)
    assert res.failed.tolist() == [True, False, False]
    assert res.reasons[0] == "non-finite latent, beat or logit at step 0"


def test_a_beat_failing_later_keeps_the_step_it_failed_at_and_all_failing_ends_the_loop():
    decoder, model, z0 = toy_setup(2)

    def logit_nan_after_step_2(x, calls=[0]):   # noqa: B006 - counts the calls
        calls[0] += 1
        logit = model.target_logit(x)
        return logit if calls[0] <= 3 else logit * float("nan")

    res = morph_latents(decoder, logit_nan_after_step_2, z0, lr=0.05, max_steps=50,
                        progress=False)
    assert res.failed.all() and res.steps.tolist() == [3, 3]
    assert res.reasons == ["non-finite latent, beat or logit at step 3"] * 2
    assert res.risk_steps[-1] == 3                    # ended when nothing was left to move


def test_morph_in_batches_joins_every_field():
    import dataclasses

    decoder, model, z0 = toy_setup(4)
    with torch.no_grad():
        stop = float(np.median(model.target_logit(decoder(z0)).numpy())) + 0.05
    kw = dict(lr=0.05, max_steps=12, stop_logit=stop, beat_stride=5, progress=False)
    whole = morph_latents(decoder, model.target_logit, z0, **kw)
    for size in (4, 2):                                # one chunk, and exactly two
        joined = morph_in_batches(decoder, model.target_logit, z0, batch_size=size, **kw)
        for f in dataclasses.fields(whole):
            a, b = getattr(whole, f.name), getattr(joined, f.name)
            if f.name == "reasons":
                assert a == b
            else:
                np.testing.assert_allclose(np.asarray(b, dtype=float), np.asarray(a, dtype=float),
                                           atol=1e-5, err_msg=f.name)


def test_stop_threshold_is_asymmetric_exact_and_finite_at_saturation():
    logits = np.array([-4.0, -1.0, 0.5, 3.0], np.float32)
    p = np.quantile(1 / (1 + np.exp(-logits.astype(np.float64))), 0.75)
    assert stop_threshold(logits, 0.75) == pytest.approx(np.log(p / (1 - p)), rel=1e-12)
    # every probability rounds to 1 in float64: clipped to 1 - 1e-12, not infinite
    assert stop_threshold(np.array([50.0, 60.0]), 0.5) == pytest.approx(np.log((1 - 1e-12) / 1e-12))
    with pytest.raises(PipelineError, match="^no real beats to set the morphing stop threshold from$"):
        stop_threshold(np.array([]), 0.9)


def test_morphs_refuse_validation_patients_that_trained_the_vae(tmp_path, monkeypatch):
    """s10/s09 with a beat model of another split: its validation patients included patients
    whose beats trained the VAE (5 of 19 in the hunt), reported as held out."""
    from scdecg.morphing import refuse_trained_on, split_patients, vae_training_patients

    monkeypatch.chdir(tmp_path)
    for name, train in (("vae_beat", ["a", "b"]), ("other", ["c", "d"])):
        folder = tmp_path / "modelfits_beat" / name
        folder.mkdir(parents=True)
        rows = [(f"e{p}", p, "train" if p in train else "val") for p in "abcd"]
        pd.DataFrame(rows, columns=["studyId", "ptId", "split"]).to_csv(folder / "split.csv",
                                                                        index=False)
    config = {"beat_model": "modelfits_beat/vae_beat"}
    assert vae_training_patients("modelfits_vae/drvae", config) == {"a", "b"}
    same = split_patients(Path("modelfits_beat/vae_beat"))["val"]
    refuse_trained_on(same, {"a", "b"}, "the VAE")            # its own split: fine
    other = split_patients(Path("modelfits_beat/other"))["val"]
    with pytest.raises(PipelineError, match=r"2 of the 2 validation patients trained the VAE "
                                            r"\(e.g. ptId 'a'\)"):
        refuse_trained_on(other, {"a", "b"}, "the VAE")
