"""The DR-VAE: architecture, loss, schedules, training, resume, saving and sampling."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scdecg.errors import PipelineError
from scdecg.vae import (BeatVAE, VAETrainConfig, drvae_loss, encode, fit_vae, kl_weight_at,
                        latent_statistics, load_vae, lr_at, reconstruct, sample_beats, save_vae)

CPU = torch.device("cpu")


def toy_beats(n=48, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 300)
    amp = rng.normal(1.0, 0.2, (n, 12, 1))
    return (amp * np.exp(-((t - 0.33) / 0.02) ** 2)).astype(np.float32)


def toy_risk(x):
    """A fixed 'frozen beat model': sigmoid of a lead-aVL statistic."""
    return torch.sigmoid(3 * x[:, 4].mean(-1) - 0.1)


def test_architecture_shapes():
    torch.manual_seed(0)
    vae = BeatVAE()
    x = torch.randn(3, 12, 300)
    mu, var = vae.encoder(x)
    assert mu.shape == var.shape == (3, 512) and (var > 0).all()
    assert vae.encoder.hidden.in_features == 75 * 12
    assert vae.decoder(mu).shape == (3, 12, 300)
    assert vae.decoder.net[-1].bias is None and len(vae.decoder.net) == 9
    assert sum(p.numel() for p in vae.parameters()) == (
        (12 * 12 * 10 + 12) * 2 + 900 * 128 + 128 + 2 * (128 * 512 + 512)
        + 512 * 100 + 100 + 3 * (100 * 100 + 100) + 100 * 3600)


def test_loss_matches_the_formula():
    x = torch.zeros(2, 12, 300)
    x_hat = torch.zeros(2, 12, 300)
    x_hat[0, 4, :10] = 1.0                    # beat 0: rec 5 in lead aVL only
    mu = torch.zeros(2, 512)
    mu[1, 0] = 2.0                            # beat 1: KL = 0.5 * 4 = 2
    var = torch.ones(2, 512)
    p_real, p_rec = torch.tensor([0.5, 0.5]), torch.tensor([0.1, 0.5])   # dr 0.16 and 0
    out = drvae_loss(x, x_hat, mu, var, p_real, p_rec, kl_weight=0.5, beta=10.0)
    beat0 = 5.0 / 12 + 10.0 * 0.16
    beat1 = 0.5 * 2.0
    assert out["loss"].item() == pytest.approx((beat0 + beat1) / 2, rel=1e-6)
    assert out["kl"].item() == pytest.approx(1.0) and out["dr"].item() == pytest.approx(0.08)


def test_schedules():
    assert kl_weight_at(0, 400, 0.01) == 0.0
    assert kl_weight_at(50, 400, 0.01) == pytest.approx(0.005)
    assert kl_weight_at(100, 400, 0.01) == kl_weight_at(399, 400, 0.01) == pytest.approx(0.01)
    lrs = [lr_at(s, 1000, 1e-4, 1e-7) for s in range(1001)]
    assert lrs[0] == pytest.approx(1e-7) and lrs[50] == pytest.approx(1e-4)
    assert lrs[25] == pytest.approx((1e-7 + 1e-4) / 2)
    assert lrs[1000] == pytest.approx(1e-7) and lrs[525] == pytest.approx((1e-4 + 1e-7) / 2)
    assert all(a >= b for a, b in zip(lrs[50:], lrs[51:]))


def test_training_lowers_the_loss_is_seeded_and_resumes(tmp_path):
    beats = toy_beats(32)
    cfg = VAETrainConfig(epochs=5, batch_size=16, lr_max=3e-3, seed=0)

    def run(**kw):
        torch.manual_seed(0)
        vae = BeatVAE(latent_dim=8)
        return vae, fit_vae(vae, beats, toy_risk, cfg, CPU, progress=False, **kw)

    vae, hist = run()
    assert hist[-1]["rec"] < 0.8 * hist[0]["rec"]
    _, again = run()
    assert again == hist                                     # same seed, same numbers
    ckpt = tmp_path / "last_epoch.pt"
    fit_vae(BeatVAE(latent_dim=8), beats, toy_risk, cfg, CPU, checkpoint_path=ckpt,
            progress=False)
    with pytest.raises(PipelineError, match="differs"):
        fit_vae(BeatVAE(latent_dim=8), beats, toy_risk, VAETrainConfig(epochs=6, batch_size=16),
                CPU, checkpoint_path=ckpt, resume=True, progress=False)


def test_resume_mid_run_matches_uninterrupted(tmp_path):
    beats = toy_beats(32)
    cfg = VAETrainConfig(epochs=4, batch_size=16, lr_max=3e-3, seed=3)
    torch.manual_seed(0)
    full = BeatVAE(latent_dim=8)
    ref = fit_vae(full, beats, toy_risk, cfg, CPU, progress=False)

    class Stop(Exception):
        pass

    calls = {"n": 0}

    def risk_that_dies(x):  # a crash in epoch 3: the real beats' risk once, then 1 call per
        calls["n"] += 1     # step (the reconstructions), 2 steps per epoch
        if calls["n"] > 1 + 2 * 2:
            raise Stop
        return toy_risk(x)

    ckpt = tmp_path / "last_epoch.pt"
    torch.manual_seed(0)
    with pytest.raises(Stop):
        fit_vae(BeatVAE(latent_dim=8), beats, risk_that_dies, cfg, CPU, checkpoint_path=ckpt,
                progress=False)
    torch.manual_seed(123)                                   # a different init: resume overrides
    resumed = BeatVAE(latent_dim=8)
    hist = fit_vae(resumed, beats, toy_risk, cfg, CPU, checkpoint_path=ckpt, resume=True,
                   progress=False)
    assert hist == ref
    for a, b in zip(resumed.state_dict().values(), full.state_dict().values()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("edit, message", [
    (lambda t, s: t["model"].pop("encoder.mu.weight"),
     "weights do not match this model configuration (missing: encoder.mu.weight)"),
    (lambda t, s: t["model"].update({"encoder.mu.bias": torch.zeros(3)}),
     "weights do not match this model configuration (shape: encoder.mu.bias (3,) vs "
     "expected (8,))"),
    (lambda t, s: t.pop("optimiser"),
     "not a usable epoch checkpoint (no optimiser); remove it or drop --resume"),
    (lambda t, s: s.update(history="abc"),
     "not a usable epoch checkpoint (history is str, expected a list of epochs); remove it or "
     "drop --resume")], ids=["missing_tensor", "shape", "no_optimiser", "history_text"])
def test_resume_from_a_damaged_epoch_checkpoint_is_one_line(tmp_path, edit, message):
    """These were torch's multi-line load_state_dict error, a KeyError or an AttributeError."""
    from scdecg.io import load_checkpoint, save_checkpoint

    beats, ckpt = toy_beats(16), tmp_path / "last_epoch.pt"
    cfg = VAETrainConfig(epochs=2, batch_size=16, seed=0)
    fit_vae(BeatVAE(latent_dim=8), beats, toy_risk, VAETrainConfig(epochs=1, batch_size=16),
            CPU, checkpoint_path=ckpt, progress=False)
    tensors, saved = load_checkpoint(ckpt)
    saved["train"] = {**saved["train"], "epochs": 2}   # so that the resume continues
    edit(tensors, saved)
    save_checkpoint(ckpt, tensors, saved)
    with pytest.raises(PipelineError) as info:
        fit_vae(BeatVAE(latent_dim=8), beats, toy_risk, cfg, CPU, checkpoint_path=ckpt,
                resume=True, progress=False)
    assert str(info.value) == f"{ckpt}: {message}"


def test_resume_on_other_beats_or_another_frozen_model_is_refused(tmp_path):
    """s08 --resume compared only the settings and the beat count: another --beat-model or
    other beats of the same count carried on silently from the other run's epoch."""
    from scdecg.vae import training_inputs

    for name, weights in (("a", b"model a"), ("b", b"model b")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "best.pt").write_bytes(weights)
    beats, ckpt = toy_beats(16), tmp_path / "last_epoch.pt"
    inputs = training_inputs(beats, [tmp_path / "a"])
    assert inputs == training_inputs(beats.copy(), [str(tmp_path / "a")])
    fit_vae(BeatVAE(latent_dim=8), beats, toy_risk, VAETrainConfig(epochs=1, batch_size=16),
            CPU, checkpoint_path=ckpt, progress=False, inputs=inputs)
    cfg = VAETrainConfig(epochs=1, batch_size=16)
    for other, differ in ((training_inputs(beats, [tmp_path / "b"]), "beat_models"),
                          (training_inputs(toy_beats(16, seed=1), [tmp_path / "a"]), "beats")):
        with pytest.raises(PipelineError) as info:
            fit_vae(BeatVAE(latent_dim=8), beats, toy_risk, cfg, CPU, checkpoint_path=ckpt,
                    resume=True, progress=False, inputs=other)
        assert str(info.value) == (f"{ckpt}: saved run trained on other inputs (its {differ} "
                                   "differ from this run's); remove it or drop --resume")
    hist = fit_vae(BeatVAE(latent_dim=8), beats, toy_risk, cfg, CPU, checkpoint_path=ckpt,
                   resume=True, progress=False, inputs=inputs)   # the same inputs: resumed
    assert [row["epoch"] for row in hist] == [1]


def test_save_load_sample_and_mismatch(tmp_path):
    torch.manual_seed(0)
    vae = BeatVAE(latent_dim=8)
    beats = toy_beats(20)
    mu, var = encode(vae, beats, CPU)
    stats = latent_statistics(mu, var)
    np.testing.assert_allclose(stats["mu_mean"], mu.mean(0))
    save_vae(tmp_path / "m", vae, {"name": "m"}, stats)
    loaded, config, stats2 = load_vae(tmp_path / "m")
    assert config["architecture"]["latent_dim"] == 8
    np.testing.assert_allclose(reconstruct(loaded, beats, CPU), reconstruct(vae, beats, CPU))
    a = sample_beats(loaded, stats2, 5, seed=1)
    assert a.shape == (5, 12, 300) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, sample_beats(loaded, stats2, 5, seed=1))
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["architecture"]["latent_dim"] = 16
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(PipelineError, match="do not match"):
        load_vae(tmp_path / "m")
    # a preprocessing entry other than what the VAE's beats always get (s09 ran with ["bogus"])
    cfg["architecture"]["latent_dim"] = 8
    cfg_path.write_text(json.dumps({**cfg, "preprocessing": ["bogus"]}))
    with pytest.raises(PipelineError) as info:
        load_vae(tmp_path / "m")
    assert str(info.value) == (f"{cfg_path}: preprocessing is ['bogus'], but the VAE's beats "
                               "are always ['zero_mode'] (scdecg.morphing.load_beats); rerun "
                               "02_Morphing/s08_train_generator.py or restore the file")
    cfg_path.write_text(json.dumps({**cfg, "preprocessing": ["zero_mode"]}))
    load_vae(tmp_path / "m")


def test_the_generator_never_overwrites_a_risk_model_or_its_own_beat_model(tmp_path):
    """s08 --output-dir modelfits_ecg --name victim replaced a risk model's config.json and
    history (x03 then failed on it); --output-dir and --name equal to the --beat-model
    replaced the beat model's; --output-dir . --name ecg_beats_morphing added the VAE's files
    to x05's folder. All are refused before training."""
    from scdecg.vae import check_generator_folder

    victim = tmp_path / "modelfits_ecg" / "victim"
    victim.mkdir(parents=True)
    (victim / "config.json").write_text(json.dumps({"kind": "ecg", "outputs": ["scd1"]}))
    with pytest.raises(PipelineError, match="holds a risk model of kind .ecg."):
        check_generator_folder(victim, ["modelfits_beat/b"])
    beat = tmp_path / "modelfits_beat" / "b"
    with pytest.raises(PipelineError, match="is the beat model s08 trains against"):
        check_generator_folder(beat, [str(beat)])
    vae = tmp_path / "modelfits_vae" / "drvae"          # its own earlier run: fine
    vae.mkdir(parents=True)
    (vae / "config.json").write_text(json.dumps({"name": "drvae", "train": {}}))
    check_generator_folder(vae, [str(beat)])
    killed = tmp_path / "modelfits_vae" / "killed"      # a killed run's epoch checkpoint: fine
    killed.mkdir()
    (killed / "last_epoch.pt").write_bytes(b"")
    check_generator_folder(killed, [str(beat)])
    check_generator_folder(tmp_path / "modelfits_vae" / "new", [str(beat)])
    morph_beats = tmp_path / "ecg_beats_morphing"         # another step's folder: refused
    (morph_beats / "pt1").mkdir(parents=True)
    with pytest.raises(PipelineError) as info:
        check_generator_folder(morph_beats, [str(beat)])
    assert str(info.value) == (f"{morph_beats}: a folder s08 did not write (it holds files but "
                               "no config.json or last_epoch.pt); give the generator its own "
                               "--output-dir/--name")
