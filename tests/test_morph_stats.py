"""What the morphs change: measurements, paired summaries, and the s08-s12 scripts end to end."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from conftest import run_script
from scdecg.constants import AVL, LEADS
from scdecg.delineation import POINTS
from scdecg.morph_stats import (MEASUREMENT_VERSION, QRS_WINDOW_MS, avl_slopes,
                                delineate_lead_neurokit, window_samples,
                                lead_change, lead_extrema,
                                paired_summary, stage_features)

LEAD_GAIN = np.array([1.0, 1.3, 0.4, -1.1, 0.7, 0.8, -0.6, 0.3, 0.9, 1.4, 1.2, 0.9])


def toy_beat(slur: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """A (12, 300) mV beat: P, QRS (R at sample 100) and T waves; ``slur`` widens the aVL
    terminal R downstroke."""
    t = np.arange(300, dtype=np.float64)
    g = lambda c, w: np.exp(-0.5 * ((t - c) / w) ** 2)  # noqa: E731
    beat = np.empty((12, 300))
    for i, gain in enumerate(LEAD_GAIN):
        down = 5.0 + (slur if i == AVL else 0.0)
        r = np.where(t <= 100, g(100, 5.0), g(100, down))
        beat[i] = gain * (0.12 * g(40, 10) + r - 0.15 * g(112, 3) + 0.25 * g(230, 18))
    if rng is not None:
        beat += rng.normal(0, 0.005, beat.shape)
    return beat.astype(np.float32)


def test_stage_features_delineate_each_lead():
    beats = np.stack([toy_beat(), toy_beat(5.0)])
    beats[1, 3] = np.nan                                    # one lead of one beat unusable
    long, failures = stage_features({"t0": beats}, {"t0": np.zeros((2, 1))}, ["scd1"],
                                    ["classification"], delineate=True, progress=False)
    assert {f"{w}_{lead}" for w in ("R_onset", "T_peak") for lead in LEADS} <= set(long.columns)
    assert 20 < long.loc[0, "T_peak_II"] - long.loc[0, "R_onset_II"] < 200
    assert long.loc[1, [f"{w}_aVR" for w in POINTS]].isna().all()
    assert long.loc[1, [f"{w}_II" for w in ("Q_peak", "S_peak", "T_peak")]].notna().all()
    assert failures[["beat_id", "stage", "step", "reason"]].values.tolist() == [
        [1, "t0", "delineation", "aVR: non-finite samples"]]


DATA = Path(__file__).parent / "data"


def test_delineation_agrees_with_the_neurokit2_reference_on_demo_beats():
    """The fast delineator against the old one (neurokit2 DWT on the beat tiled 9 times) on demo
    morph beats at all three stages, stored with their reference points by
    tests/data/make_delineation_reference.py: >= 95% of points within 2 samples (4 ms)."""
    from scdecg.delineation import agreement, delineate_beats

    with np.load(DATA / "delineation_beats.npz", allow_pickle=False) as data:
        beats = data["beats_uv"].astype(np.float64) / 1000.0
        stage = data["stage"].astype(str)
    ref = pd.read_csv(DATA / "delineation_reference.csv")
    assert set(stage) == {"raw", "t0", "final"} and len(ref) == len(beats) * len(LEADS)
    reference = np.full((len(beats), len(LEADS), len(POINTS)), np.nan)
    for row in ref.itertuples():
        reference[row.row, LEADS.index(row.lead)] = [getattr(row, p) for p in POINTS]
    points = delineate_beats(beats)
    overall = agreement(reference, points)
    assert overall["within"] >= 0.95
    assert overall["exact"] >= 0.9
    for name in ("raw", "t0", "final"):
        assert agreement(reference[stage == name], points[stage == name])["within"] >= 0.95, name
    assert np.isfinite(points).mean() > 0.8


def test_agreement_counts_missing_points():
    from scdecg.delineation import agreement

    ref = np.full((1, 1, len(POINTS)), 10.0)
    new = ref.copy()
    new[..., 0] = 13.0                        # 3 samples off
    new[..., 1] = np.nan                      # missing in one only
    ref[..., 2] = new[..., 2] = np.nan        # missing in both: agrees
    new[..., 3] = 12.0                        # within 2
    a = agreement(ref, new)
    assert a["within"] == pytest.approx(8 / 10) and a["exact"] == pytest.approx(7 / 10)
    assert a["missing_agree"] == pytest.approx(9 / 10) and a["within_P_onset"] == 0.0


def test_lead_extrema_and_avl_slopes_follow_the_slur():
    sharp, slurred = toy_beat(0.0), toy_beat(12.0)
    ext = lead_extrema(np.stack([sharp, slurred]))
    assert list(ext.columns[:2]) == ["min_I", "max_I"] and ext.shape == (2, 24)
    assert ext.loc[0, "max_aVL"] == pytest.approx(sharp[AVL].max())
    a, a2, reason = avl_slopes(sharp)
    b, b2, _ = avl_slopes(slurred)
    assert reason == "" and 0 < b < a and 0 < b2 < a2
    assert np.isnan(avl_slopes(np.zeros((12, 300)))[0])


def test_avl_slopes_low_pass_keeps_decoder_jitter_from_hiding_the_slur():
    """A decoded beat's sample-to-sample ripple (the demo DR-VAE's: about 0.01 mV) adds to
    mean |d1| over R..S on an unfiltered beat, so a slurred downstroke -- which lengthens R..S --
    can measure steeper than a sharp one. x06's 40-Hz low-pass, applied as in x06, restores the
    order; without it (lowpass_hz=0, the unfiltered measure) this pair comes out the wrong way."""
    ripple = 0.012 * np.where(np.arange(300) % 2 == 0, 1.0, -1.0)    # 250 Hz alternation, mV
    sharp, slurred = toy_beat(0.0) * 0.45, toy_beat(12.0) * 0.45      # a small aVL, as in axis +60
    sharp[AVL] += ripple
    slurred[AVL] += ripple
    filtered = [avl_slopes(b)[0] for b in (sharp, slurred)]
    raw = [avl_slopes(b, lowpass_hz=0.0)[0] for b in (sharp, slurred)]
    assert filtered[1] < filtered[0]
    assert raw[1] > raw[0]
    clean = toy_beat(12.0)
    assert avl_slopes(clean)[0] == pytest.approx(avl_slopes(clean, lowpass_hz=0.0)[0], rel=0.25)


def test_reference_delineation_of_a_tiled_beat_finds_the_waves():
    points = delineate_lead_neurokit(toy_beat()[1])
    # the QRS spans the R peak at sample 100: onset before, offset after, both found
    assert points["R_onset"] < points["Q_peak"] < 100 < points["S_peak"] <= points["R_offset"]
    assert points["R_offset"] - points["R_onset"] < 100      # under 200 ms
    assert 15 <= points["P_peak"] <= 65
    assert 200 <= points["T_peak"] <= 260


def test_paired_summary_and_lead_change_values():
    long = pd.DataFrame({"beat_id": [0, 1, 2, 3] * 2, "stage": ["t0"] * 4 + ["final"] * 4,
                         "x": [1.0, 2.0, 3.0, 4.0, 0.0, 1.5, 2.0, 3.5],     # falls
                         "y": [1.0, 1.0, 1.0, np.nan, 1.1, 1.3, 1.0, 9.0]})  # rises, one pair NaN
    s = paired_summary(long, ["x", "y"]).set_index("feature")   # no ptId: a beat is a patient
    assert s.loc["x", "n_beats"] == 4 and s.loc["y", "n_beats"] == 3
    assert s.loc["x", "n_patients"] == 4
    assert s.loc["x", "mean_change"] == pytest.approx(-0.75)
    assert s.loc["x", "sd_patient_change"] == pytest.approx(np.std([-1, -0.5, -1, -0.5], ddof=1))
    assert s.loc["x", "share_fell"] == 1.0 and s.loc["y", "share_rose"] == pytest.approx(2 / 3)
    assert s.loc["x", "rank"] == 1
    assert s.loc["x", "wilcoxon_p"] == pytest.approx(stats.wilcoxon([-1, -0.5, -1, -0.5]).pvalue)
    before = np.zeros((2, 12, 300))
    after = before.copy()
    after[:, AVL] += 0.2
    after[:, 0, :150] -= 0.1
    table, diff = lead_change(before, after)
    assert table["lead"].tolist()[:2] == ["aVL", "I"]
    assert table.iloc[0]["mean_abs_change_mv"] == pytest.approx(0.2)
    assert np.isnan(table.iloc[0]["relative_change"])          # zero amplitude before
    big = np.zeros((1, 12, 300))
    big[:, :, 100] = 1.0                                       # every lead spans 1 mV
    big[:, AVL, 100] = 0.1                                     # aVL only 0.1 mV
    moved = big + 0.01
    rel = lead_change(big, moved)[0].set_index("lead")
    assert rel.loc["aVL", "rank_relative"] == 1 and rel.loc["aVL", "relative_change"] == pytest.approx(0.1)
    np.testing.assert_allclose(diff[AVL], 0.2)


def test_lead_change_ranks_the_qrs_apart_from_the_t_wave():
    """A change after the QRS window (the T wave) counts over the whole beat, not in the QRS
    rank the report checks; the window is -50 to +100 ms from R (samples 75-149)."""
    before = np.zeros((3, 12, 300))
    before[:, :, 100] = 1.0                                    # every lead spans 1 mV
    after = before.copy()
    after[:, AVL, 110:130] += 0.05                             # aVL: terminal R, 20 samples
    after[:, LEADS.index("V4"), 200:280] += 0.05               # V4: T wave, 80 samples
    after[:, LEADS.index("III"), 70:80] -= 0.3                 # III: 5 of 10 samples in the QRS
    table = lead_change(before, after)[0].set_index("lead")
    assert table.loc["V4", "relative_change"] == pytest.approx(0.05 * 80 / 300)
    assert table.loc["V4", "qrs_abs_change_mv"] == 0
    assert table.loc["V4", "rank_qrs"] == table.loc["II", "rank_qrs"] == 3   # tied with unchanged
    assert table.loc["aVL", "qrs_relative_change"] == pytest.approx(0.05 * 20 / 75)
    assert table.loc["III", "qrs_abs_change_mv"] == pytest.approx(0.3 * 5 / 75)
    assert table.loc["V4", "rank_relative"] == 1 and table.loc["aVL", "rank_relative"] == 3
    assert table.loc["III", "rank_qrs"] == 1 and table.loc["aVL", "rank_qrs"] == 2
    assert window_samples(QRS_WINDOW_MS) == slice(75, 150)
    # float32 beats (as s10 stores them): the mean change is divided by the float32 amplitude,
    # exactly, not multiplied by a float32 reciprocal
    rng = np.random.default_rng(0)
    before32 = rng.normal(0, 0.3, (5, 12, 300)).astype(np.float32)
    after32 = before32 + rng.normal(0, 0.01, before32.shape).astype(np.float32)
    table = lead_change(before32, after32)[0].set_index("lead").loc[list(LEADS)]
    amplitude = np.ptp(before32, axis=-1).mean(0)
    mean_abs = np.abs(after32.astype(np.float64) - before32).mean(axis=(0, 2))
    np.testing.assert_array_equal(table["relative_change"], mean_abs / amplitude)


def test_paired_summary_tests_patient_means_not_beats():
    """Beats of one patient are averaged before the test: the p-value is scipy's Wilcoxon
    signed-rank test of the per-patient mean changes, whatever the beats per patient."""
    rng = np.random.default_rng(3)
    n_beats = np.array([1, 5, 2, 8, 3, 1, 4, 6])            # unequal beats per patient
    pt = np.repeat([f"p{i}" for i in range(len(n_beats))], n_beats)
    before = rng.normal(0.5, 0.2, len(pt))
    change = rng.normal(-0.05, 0.1, len(pt)) + np.repeat(rng.normal(0, 0.1, len(n_beats)), n_beats)
    ids = np.arange(len(pt))
    long = pd.DataFrame({"beat_id": np.r_[ids, ids], "stage": ["t0"] * len(pt) + ["final"] * len(pt),
                         "ptId": np.r_[pt, pt], "max_aVL": np.r_[before, before + change],
                         "T_peak_aVL": np.r_[np.full(len(pt), 210.0), np.full(len(pt), 215.0)]})
    s = paired_summary(long, ["max_aVL", "T_peak_aVL"]).set_index("feature")
    means = pd.Series(change).groupby(pt).mean().to_numpy()
    assert s.loc["max_aVL", "n_beats"] == len(pt) and s.loc["max_aVL", "n_patients"] == len(n_beats)
    assert s.loc["max_aVL", "wilcoxon_p"] == pytest.approx(stats.wilcoxon(means).pvalue, rel=1e-12)
    assert s.loc["max_aVL", "wilcoxon_p"] != pytest.approx(stats.wilcoxon(change).pvalue)
    assert s.loc["max_aVL", "mean_patient_change"] == pytest.approx(means.mean())
    assert s.loc["max_aVL", "standardized_change"] == pytest.approx(means.mean() / means.std(ddof=1))
    assert s.loc["max_aVL", "mean_change"] == pytest.approx(change.mean())
    assert s.loc["max_aVL", "unit"] == "mV"
    assert s.loc["T_peak_aVL", "unit"] == "ms from R"                # 500 Hz samples -> ms
    assert s.loc["T_peak_aVL", "mean_before"] == pytest.approx(220.0)  # (210 - 100) x 2 ms
    assert s.loc["T_peak_aVL", "mean_change"] == pytest.approx(10.0)
    assert np.isnan(s.loc["T_peak_aVL", "standardized_change"])         # no spread: no SD
    assert s.loc["T_peak_aVL", "wilcoxon_p"] == pytest.approx(stats.wilcoxon(np.full(8, 10.0)).pvalue)
    assert s.loc["T_peak_aVL", "share_rose"] == 1.0


def test_stage_features_long_format():
    beats = np.stack([toy_beat(0.0), toy_beat(8.0)])
    stages = {"raw": beats, "t0": beats, "final": beats[::-1].copy()}
    outputs = {"raw": np.array([[0.0, 50.0], [1.0, 60.0]]), "t0": np.array([[0.0, 50.0], [1.0, 60.0]]),
               "final": np.array([[2.0, 55.0], [-1.0, 65.0]])}
    long, failures = stage_features(stages, outputs, ["scd1", "age"],
                                    ["classification", "regression"],
                                    {"age": {"mean": 50.0, "sd": 10.0}}, delineate=False)
    assert len(long) == 6 and list(long["stage"].unique()) == ["raw", "t0", "final"]
    for col in ("beat_id", "yhat_scd1", "p_scd1", "yhat_age", "aVL_rs_diff", "min_aVL",
                "max_V6"):
        assert col in long.columns
    assert "p_age" not in long.columns
    final = long[long["stage"] == "final"].set_index("beat_id")
    assert final.loc[0, "yhat_scd1"] == 2.0                      # the logit, as published
    assert final.loc[0, "p_scd1"] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert final.loc[1, "yhat_age"] == 50.0 + 10.0 * 65.0
    t0 = long[long["stage"] == "t0"].set_index("beat_id")
    assert final.loc[0, "aVL_rs_diff"] == pytest.approx(t0.loc[1, "aVL_rs_diff"])
    assert list(failures.columns) == ["beat_id", "stage", "step", "reason"]


# --------------------------------------------------------------------------------------
# The scripts, end to end, on a small hand-made workspace (independent of x00-x05)
# --------------------------------------------------------------------------------------
N_PATIENTS = 12
BEATS_PER_ECG = 5
TRAIN = [f"p{i}" for i in range(6)]
VAL = [f"p{i}" for i in range(6, 10)]          # p10, p11: lockbox


def make_workspace(root):
    """covariate_df, morphing beats and an untrained small beat model with its split."""
    from scdecg.models import Architecture, build_model, save_trained

    rng = np.random.default_rng(0)
    pd.DataFrame({"studyId": [f"e{i}" for i in range(N_PATIENTS)],
                  "ptId": [f"p{i}" for i in range(N_PATIENTS)],
                  "include_modelling": True}).to_feather(root / "covariate_df.feather")
    for i in range(N_PATIENTS):
        folder = root / "ecg_beats_morphing" / f"e{i}"
        folder.mkdir(parents=True)
        for k in range(BEATS_PER_ECG):
            np.save(folder / f"e{i}_{k + 1}.npy", toy_beat(rng.uniform(0, 10), rng))
    torch.manual_seed(0)
    outputs = ["scd1", "age", "female"]
    model = build_model(Architecture(outputs=outputs, length=300, channels=8, n_blocks=2,
                                     rep_mp=5, dropout=0.0, cumulative=False))
    folder = root / "modelfits_beat" / "toy"
    save_trained(folder, model, {"output_types": ["classification", "regression",
                                                 "classification"]})
    pd.DataFrame({"ptId": TRAIN + VAL + ["p10", "p11"],
                  "split": ["train"] * 6 + ["val"] * 4 + ["lockbox"] * 2}
                 ).to_csv(folder / "split.csv", index=False)
    return root


def run_main(script: str, *args: str, cwd) -> int:
    """Run a script's ``main`` in this process (saves a torch import per script)."""
    import importlib.util
    import os

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before = os.getcwd()
    os.chdir(cwd)
    try:
        return module.main(list(args))
    finally:
        os.chdir(before)


#: The figures the ``morphed`` scripts saved, by file name (the Figure objects, for their data).
FIGURES: dict = {}


@pytest.fixture(scope="module")
def morphed(tmp_path_factory):
    from scdecg import plotting

    ws = make_workspace(tmp_path_factory.mktemp("morph"))
    run_script("02_Morphing/s08_train_generator.py", "--beat-model", "modelfits_beat/toy",
               "--profile", "demo", "--epochs", "3", "--batch-size", "8", cwd=ws)
    save = plotting.save_figure

    def keep(fig, path, *args, **kwargs):
        FIGURES[Path(path).name] = fig
        save(fig, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plotting, "save_figure", keep)
        for script, *args in (
                ("s09_reconstruction_report.py", "--n-samples", "2"),
                ("s10_morph_ecgs.py", "--n-beats", "6", "--max-steps", "15", "--lr", "0.5",
                 "--max-rec-mse", "1.0", "--beat-stride", "5", "--batch-size", "4"),
                ("s12_morph_stats.py", "--n-examples", "2")):    # the authors' order: s11 inside
            assert run_main(f"02_Morphing/{script}", *args, cwd=ws) == 0, script
    return ws


def figure_lines(fig) -> list[np.ndarray]:
    """The y data of every line of every axes of ``fig``, in drawing order."""
    return [np.asarray(line.get_ydata(), dtype=np.float64) for ax in fig.axes for line in ax.lines]


def test_generator_folder_and_reconstruction_report(morphed):
    folder = morphed / "modelfits_vae" / "drvae"
    config = json.loads((folder / "config.json").read_text())
    assert config["n_beats"] == len(TRAIN) * BEATS_PER_ECG and config["n_patients"] == len(TRAIN)
    assert config["train"]["epochs"] == 3 and config["architecture"]["latent_dim"] == 512
    assert len(pd.read_csv(folder / "history.csv")) == 3
    assert np.load(folder / "latent_mu_mean.npy").shape == (512,)
    report = pd.read_csv(morphed / "morphing_outputs" / "reconstruction_report.csv")
    assert report["lead"].tolist() == list(LEADS) + ["all"]
    assert (report["n_beats"] == len(VAL) * BEATS_PER_ECG).all()
    # the errors of the validation beats' reconstructions, computed here
    from scdecg.signals import zero_mode
    from scdecg.vae import load_vae, reconstruct, sample_beats

    vae, _, latent = load_vae(folder)
    beats = np.stack([zero_mode(np.load(morphed / "ecg_beats_morphing" / f"e{p[1:]}"
                                        / f"e{p[1:]}_{k + 1}.npy").astype(np.float32))
                      for p in sorted(VAL) for k in range(BEATS_PER_ECG)])  # as s09 reads them
    err = reconstruct(vae, beats, torch.device("cpu")).astype(np.float64) - beats
    per_lead = report.set_index("lead")
    np.testing.assert_allclose(per_lead.loc[list(LEADS), "mse"], (err ** 2).mean(axis=(0, 2)),
                               rtol=1e-5)
    np.testing.assert_allclose(per_lead.loc[list(LEADS), "mae"], np.abs(err).mean(axis=(0, 2)),
                               rtol=1e-5)
    assert per_lead.at["all", "rmse"] == pytest.approx(np.sqrt((err ** 2).mean()), rel=1e-5)
    # bounded: smaller than the beats' own RMS (a flat zero line) and than an untrained VAE's
    # (3 epochs on 30 toy beats: measured 0.166 mV against 0.181 and 0.183 mV)
    from scdecg.vae import BeatVAE

    torch.manual_seed(0)
    untrained = reconstruct(BeatVAE(**vae.arch), beats, torch.device("cpu")) - beats
    rmse = per_lead.at["all", "rmse"]
    assert 0.01 < rmse < 0.95 * np.sqrt(np.mean(beats.astype(np.float64) ** 2))
    assert rmse < 0.95 * np.sqrt(np.mean(untrained.astype(np.float64) ** 2))
    # the figures show those numbers: RMSE bars per lead, real vs reconstructed beats
    fig = FIGURES["reconstruction_report.png"]
    bars = fig.axes[0].patches
    assert [b.get_width() for b in bars] == pytest.approx(per_lead.loc[list(LEADS), "rmse"].tolist())
    for ax in fig.axes[1:]:
        real, rec = ax.lines[0].get_ydata(), ax.lines[1].get_ydata()
        lead = LEADS.index(ax.get_title().split()[-1])
        match = np.flatnonzero(np.all(np.isclose(beats[:, lead], real, atol=1e-6), axis=1))
        assert len(match) >= 1              # a real validation beat ...
        np.testing.assert_allclose(rec - real, err[match[0], lead], atol=1e-5)  # ... and its rec
    samples = sample_beats(vae, latent, 2, seed=0)     # s09's seed
    lines = figure_lines(FIGURES["generated_beats.png"])
    assert len(lines) == 2 * 12
    np.testing.assert_allclose(np.stack(lines).reshape(2, 12, -1) + 1.5 * np.arange(12)[:, None],
                               samples, atol=1e-5)


def test_generator_trains_on_the_morphing_beats_or_the_published_ecg_beats(morphed, tmp_path):
    """Row 13: by default s08 reads ecg_beats_morphing/ (the authors' README);
    --beats-dir ecg_beats reads x04's beats, as the published s08 did."""
    config = json.loads((morphed / "modelfits_vae" / "drvae" / "config.json").read_text())
    assert config["beats_dir"] == "ecg_beats_morphing"
    ws = make_workspace(tmp_path)
    for i in range(N_PATIENTS):                     # x04's folder: one beat per ECG
        folder = ws / "ecg_beats" / f"e{i}"
        folder.mkdir(parents=True)
        shutil.copy(ws / "ecg_beats_morphing" / f"e{i}" / f"e{i}_1.npy", folder / f"e{i}_0.npy")
    run_script("02_Morphing/s08_train_generator.py", "--beat-model", "modelfits_beat/toy",
               "--beats-dir", "ecg_beats", "--profile", "demo", "--epochs", "1",
               "--batch-size", "8", "--name", "published", cwd=ws)
    config = json.loads((ws / "modelfits_vae" / "published" / "config.json").read_text())
    assert config["beats_dir"] == "ecg_beats" and config["n_beats"] == len(TRAIN)
    # --max-beats reaches the code: a seeded subset of that many training beats
    assert len(TRAIN) > 3
    run_script("02_Morphing/s08_train_generator.py", "--beat-model", "modelfits_beat/toy",
               "--beats-dir", "ecg_beats", "--profile", "demo", "--epochs", "1",
               "--batch-size", "8", "--name", "capped", "--max-beats", "3", cwd=ws)
    config = json.loads((ws / "modelfits_vae" / "capped" / "config.json").read_text())
    assert config["n_beats"] == 3 and config["n_patients"] == 3


def test_morph_outputs(morphed, monkeypatch):
    from scdecg.vae import load_vae, reconstruct

    out = morphed / "morphing_outputs"
    table = pd.read_feather(out / "morphs.feather")
    run = json.loads((out / "morph_run.json").read_text())
    assert run["n_pool"] == len(VAL) * BEATS_PER_ECG and run["n_drawn"] == 6
    assert len(table) + run["n_gate_skipped"] == 6
    assert set(table["ptId"]) <= set(VAL)                    # never a training patient
    for row in table.itertuples():                            # the right source file per morph
        assert row.source_file.startswith(f"ecg_beats_morphing/{row.studyId}/{row.studyId}_")
    raw = np.load(out / "beats_raw.npy")
    from scdecg.morphing import load_beats
    monkeypatch.chdir(morphed)
    np.testing.assert_array_equal(raw, load_beats(table["source_file"].tolist(), progress=False))
    vae, _, _ = load_vae(morphed / "modelfits_vae" / "drvae")
    t0 = np.load(out / "beats_t0.npy")
    np.testing.assert_allclose(t0, reconstruct(vae, raw, torch.device("cpu")), atol=1e-5)
    assert (table["steps"] <= 15).all() and table["status"].eq("ok").all()
    traj = pd.read_feather(out / "trajectory_risk.feather")
    first = traj[traj["step"] == 0].set_index("beat_id")["logit"]
    np.testing.assert_allclose(first.to_numpy(), table["logit_t0"], rtol=1e-5)
    stop = run["stop_logit"]
    moved = table["logit_t0"] < stop
    assert (table.loc[~moved, "steps"] == 0).all()
    assert ((table["logit_final"] >= stop) | (table["steps"] == 15)).all()
    assert np.load(out / "trajectory_beats.npy").shape[1:] == (len(table), 12, 300)


def test_morph_stats_and_summary(morphed):
    out = morphed / "morphing_outputs"
    stats_table = pd.read_feather(out / "morph-stats.feather")
    table = pd.read_feather(out / "morphs.feather")
    assert len(stats_table) == 3 * len(table)
    for col in ("beat_id", "stage", "yhat_scd1", "p_scd1", "aVL_rs_diff", "yhat_age", "min_aVL",
                "T_peak_aVL", "source_file", "ptId"):
        assert col in stats_table.columns
    assert list(stats_table["stage"].unique()) == ["raw", "t0", "final"]
    points = stats_table[[f"{w}_{lead}" for lead in LEADS for w in POINTS]]
    assert points.notna().mean().mean() > 0.8 and points.notna().any(axis=1).all()  # every beat
    final = stats_table[stats_table["stage"] == "final"].set_index("beat_id")
    np.testing.assert_allclose(final["yhat_scd1"], table["logit_final"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(final["p_scd1"], 1 / (1 + np.exp(-table["logit_final"])),
                               rtol=1e-4)
    record = json.loads((out / "morph-stats.json").read_text())
    assert record["version"] == MEASUREMENT_VERSION == 3 and record["delineate"] and record["n_beats"] == len(table)

    summary = pd.read_csv(out / "morph-summary.csv")
    assert {"aVL_rs_diff", "max_aVL", "T_peak_aVL"} <= set(summary["feature"])
    assert not summary["feature"].str.startswith(("yhat_", "p_")).any()   # waveform only
    assert summary["rank"].is_monotonic_increasing
    assert summary.set_index("feature").at["max_aVL", "unit"] == "mV"
    outputs = pd.read_csv(out / "morph-outputs.csv").set_index("feature")
    assert {"yhat_scd1", "p_scd1", "yhat_age"} <= set(outputs.index)
    s = outputs.loc["yhat_scd1"]
    moved = (table["steps"] > 0).to_numpy()  # beats already at the stop level are left out
    assert s["n_beats"] == moved.sum() and moved.any()
    assert s["n_patients"] == table.loc[moved, "ptId"].nunique()
    assert s["share_rose"] == pytest.approx(
        np.mean(table["logit_final"][moved] > table["logit_t0"][moved]), abs=1e-9)
    run = json.loads((out / "morph_run.json").read_text())
    assert run["n_started_above_stop"] == (~moved).sum()
    assert run["share_risk_raised"] == pytest.approx(s["share_rose"])
    leads = pd.read_csv(out / "morph-lead-change.csv")
    assert sorted(leads["lead"]) == sorted(LEADS) and leads["rank"].min() == 1
    md = (out / "morph-summary.md").read_text()
    assert md.startswith(f"# What the morphs changed (reconstruction -> morph, {moved.sum()} "
                         f"morphed beats of {table.loc[moved, 'ptId'].nunique()} patients (val split))")
    assert "Wilcoxon signed-rank test of the patient means" in md
    # the morphs raised the risk: every morphed beat ends above where it started
    assert (table["logit_final"][moved] > table["logit_t0"][moved]).all()
    assert s["share_rose"] == 1.0 and s["share_fell"] == 0.0 and s["mean_change"] > 0
    # the figures hold those values
    sig = lambda v: 1 / (1 + np.exp(-np.asarray(v, dtype=np.float64)))  # noqa: E731
    traj_fig = FIGURES["morph-risk-trajectory.png"]
    ax = traj_fig.axes[0]
    logits = np.load(out / "trajectory_logits.npy")[:, moved]
    median = next(line for line in ax.lines if line.get_label() == "median of all beats")
    np.testing.assert_allclose(median.get_ydata(), np.nanmedian(sig(logits), axis=1), rtol=1e-12)
    assert median.get_ydata()[-1] > median.get_ydata()[0]
    stop = next(line for line in ax.lines if line.get_label() == "stop level")
    assert stop.get_ydata()[0] == pytest.approx(sig(run["stop_logit"]))
    assert len(ax.lines) == moved.sum() + 2                     # one line per beat (<= 50)
    lead_fig = FIGURES["morph-lead-change.png"]
    ranked = leads.sort_values(["rank_qrs", "lead"])          # the QRS's bars, then the beat's
    assert [b.get_width() for b in lead_fig.axes[0].patches] == pytest.approx(
        (100 * ranked["qrs_relative_change"]).tolist() + (100 * ranked["relative_change"]).tolist())
    assert [t.get_text() for t in lead_fig.axes[0].get_yticklabels()] == [
        f"{r}. {lead}" for r, lead in zip(ranked["rank_qrs"], ranked["lead"])]
    avl_line = next(line for line in lead_fig.axes[1].lines if line.get_label() == "aVL")
    t0, final = np.load(out / "beats_t0.npy"), np.load(out / "beats_final.npy")
    mean_diff = (final[moved] - t0[moved]).astype(np.float64).mean(axis=0)
    step = 2 * np.abs(mean_diff).max()
    np.testing.assert_allclose(avl_line.get_ydata(), mean_diff[AVL] - step * AVL, atol=1e-5)
    examples = FIGURES["morph-examples.png"]
    assert len(examples.axes) == 2            # one panel per example, its 12 leads stacked
    assert [t.get_text() for t in examples.axes[0].get_yticklabels()] == list(LEADS)
    for j in range(2):                        # each example: its reconstruction and its morph
        ax = examples.axes[j]                 # lead I on top, at offset 0
        labelled = {line.get_label(): line.get_ydata() for line in ax.lines
                    if not line.get_label().startswith("_")}
        first, second = labelled["reconstruction"], labelled["morph"]
        step = -np.diff(ax.get_yticks())                # every lead on its own baseline, in order
        assert np.allclose(step, step[0]) and step[0] > 0
        beat = np.flatnonzero(np.all(np.isclose(t0[:, 0], first, atol=1e-6), axis=1))
        assert len(beat) == 1 and moved[beat[0]]
        np.testing.assert_allclose(second, final[beat[0], 0], atol=1e-6)
        avl_morph = ax.lines[3 * AVL + 2]                      # per lead: baseline, first, second
        np.testing.assert_allclose(avl_morph.get_ydata() + step[0] * AVL, final[beat[0], AVL],
                                   atol=1e-5)
        p0, p1 = (float(v) for v in ax.get_title().split("risk ")[1].split(" -> "))
        assert p0 == pytest.approx(sig(table["logit_t0"][beat[0]]), abs=0.006)
        assert p1 == pytest.approx(sig(table["logit_final"][beat[0]]), abs=0.006) and p1 >= p0


def test_s12_before_s10_exits_2_naming_s10(morphed, tmp_path, capsys):
    (tmp_path / "morphing_outputs").mkdir()
    assert run_main("02_Morphing/s12_morph_stats.py", cwd=tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "run 02_Morphing/s10_morph_ecgs.py first" in err
    assert len(err.strip().splitlines()) == 1


def test_s12_remeasures_stale_morph_stats_only(morphed, tmp_path, capsys):
    import shutil

    out = tmp_path / "morphing_outputs"
    shutil.copytree(morphed / "morphing_outputs", out)
    args = ("--output-dir", str(out), "--n-examples", "1")
    assert run_main("02_Morphing/s12_morph_stats.py", *args, cwd=morphed) == 0
    assert "measuring the morphs" not in capsys.readouterr().out          # up to date: kept
    import os

    os.utime(out / "morphs.feather")                                    # touched: newer
    assert run_main("02_Morphing/s12_morph_stats.py", *args, cwd=morphed) == 0
    assert "is older than the morph run: measuring the morphs first" in capsys.readouterr().out
    final = np.load(out / "beats_final.npy")
    final[:, :, :] *= 0.5                                               # another morph run ...
    np.save(out / "beats_final.npy", final)
    old = (out / "morph-stats.feather").stat().st_mtime - 10           # ... with an old date
    os.utime(out / "beats_final.npy", (old, old))
    assert run_main("02_Morphing/s12_morph_stats.py", *args, cwd=morphed) == 0
    assert "was measured on other morph files: measuring the morphs first" in capsys.readouterr().out
    stats_table = pd.read_feather(out / "morph-stats.feather")
    now = stats_table[stats_table["stage"] == "final"].sort_values("beat_id")
    np.testing.assert_allclose(now["max_aVL"], final[:, 4].max(-1), rtol=1e-6)
    record_path = out / "morph-stats.json"                               # an older version
    record_path.write_text(record_path.read_text().replace('"version": 3', '"version": 2'))
    assert run_main("02_Morphing/s12_morph_stats.py", *args, cwd=morphed) == 0
    assert "measured with version = 2, not 3" in capsys.readouterr().out
    assert run_main("02_Morphing/s12_morph_stats.py", *args, "--lowpass-hz", "0",
                    cwd=morphed) == 0                                    # another low-pass
    assert "measured with lowpass_hz = 40.0, not 0.0" in capsys.readouterr().out
    assert json.loads(record_path.read_text())["lowpass_hz"] == 0.0
    (out / "morph-stats.feather").unlink()
    assert run_main("02_Morphing/s11_prepare_morph_stats.py", "--output-dir", str(out),
                    "--no-delineate", cwd=morphed) == 0                 # s11 on its own
    assert "T_peak_II" not in pd.read_feather(out / "morph-stats.feather").columns
    assert run_main("02_Morphing/s12_morph_stats.py", *args, cwd=morphed) == 0
    assert "measured with delineate = False, not True" in capsys.readouterr().out


def test_bad_inputs_give_one_clear_line(morphed, tmp_path, capsys):
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(morphed, ws, ignore=shutil.ignore_patterns("morphing_outputs"))
    code = run_main("02_Morphing/s10_morph_ecgs.py", "--n-beats", "3", "--max-rec-mse", "0", cwd=ws)
    assert code == 2 and "no beat of the morph set passes" in capsys.readouterr().err
    config_path = ws / "modelfits_beat" / "toy" / "config.json"
    config = json.loads(config_path.read_text())
    config["architecture"]["channels"] = 16
    config_path.write_text(json.dumps(config))
    code = run_main("02_Morphing/s10_morph_ecgs.py", "--n-beats", "3", cwd=ws)
    assert code == 2 and "channels" in capsys.readouterr().err


VAE_DIR = "modelfits_vae/drvae"
S08 = "02_Morphing/s08_train_generator.py"
S10 = "02_Morphing/s10_morph_ecgs.py"


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _edit_weights(path: Path, key: str) -> None:
    """One weight of ``key`` in a model's weights file set to NaN."""
    from scdecg.io import load_checkpoint, save_checkpoint

    tensors, record = load_checkpoint(path)
    tensors["model"][key].view(-1)[0] = float("nan")
    save_checkpoint(path, tensors, record)


@pytest.mark.parametrize("edit, message", [
    (lambda v: np.save(v / "latent_mu_mean.npy", np.zeros(10, np.float32)),
     f"{VAE_DIR}/latent_mu_mean.npy: shape (10,), expected (512,); rerun {S08}"),
    (lambda v: np.save(v / "latent_mu_mean.npy", np.full(512, np.nan, np.float32)),
     f"{VAE_DIR}/latent_mu_mean.npy: value nan at index (0,); expected finite numbers; rerun {S08}"),
    (lambda v: np.save(v / "latent_var_mean.npy", np.array(["a"] * 512)),
     f"{VAE_DIR}/latent_var_mean.npy: holds <U1 values, not numbers; rerun {S08}"),
    (lambda v: (v / "latent_mu_sd.npy").write_bytes((v / "latent_mu_sd.npy").read_bytes()[:100]),
     f"{VAE_DIR}/latent_mu_sd.npy: a NumPy array file with a broken header (EOF: reading "
     f"array header, expected 118 bytes got 90); rerun {S08}"),
    (lambda v: np.save(v / "latent_mu_sd.npy", -np.ones(512, np.float32)),
     f"{VAE_DIR}/latent_mu_sd.npy: negative value -1.0; a standard deviation or variance cannot "
     f"be negative (rerun {S08})"),
    (lambda v: _edit_json(v / "config.json", lambda c: c["architecture"].update(latent_dim="512")),
     f"{VAE_DIR}/config.json: architecture.latent_dim is '512', expected a positive whole number"),
    (lambda v: _edit_json(v / "config.json", lambda c: c["architecture"].update(n_leads=-12)),
     f"{VAE_DIR}/config.json: architecture.n_leads is -12, expected a positive whole number"),
    (lambda v: _edit_json(v / "config.json", lambda c: c["architecture"].update(beat_len=302)),
     f"{VAE_DIR}/config.json: architecture.beat_len is 302, expected a multiple of 4 (two "
     "average pools)"),
    (lambda v: _edit_json(v / "config.json", lambda c: c["architecture"].update(depth=3)),
     f"{VAE_DIR}/config.json: architecture.depth is not an entry of the VAE (known: latent_dim, "
     "n_leads, beat_len)"),
    (lambda v: _edit_weights(v / "vae.pt", "encoder.mu.bias"),
     f"{VAE_DIR}/vae.pt: weights encoder.mu.bias hold 1 NaN or infinite value(s); retrain the "
     "model or restore the file")],
    ids=["mu_shape", "mu_nan", "var_text", "sd_truncated", "sd_negative", "latent_dim_text",
         "n_leads_negative", "beat_len_odd", "unknown_entry", "nan_weight"])
def test_a_corrupt_vae_folder_is_refused_in_one_line(morphed, tmp_path, capsys, edit, message):
    """These were tracebacks (torch's size errors, numpy's EOF) or, for NaN or negative
    latent statistics, beats sampled from NaN written to generated_beats.png with exit 0 (NaN
    weights: a reconstruction_report.csv of NaN errors, exit 0)."""
    ws = tmp_path / "ws"
    shutil.copytree(morphed, ws, ignore=shutil.ignore_patterns("morphing_outputs"))
    edit(ws / VAE_DIR)
    assert run_main("02_Morphing/s09_reconstruction_report.py", "--n-samples", "2", cwd=ws) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {message}"]
    assert not (ws / "morphing_outputs").exists()


OUT = "morphing_outputs"


@pytest.mark.parametrize("edit, message", [
    (lambda o: np.save(o / "beats_final.npy", np.full((6, 12, 300), np.nan, np.float32)),
     f"{OUT}/beats_final.npy: beat_id 0 has non-finite samples although its status is 'ok' "
     f"(6 beat(s)); rerun {S10}"),
    (lambda o: np.save(o / "beats_t0.npy", np.zeros((6, 300, 12), np.float32)),
     f"{OUT}/beats_t0.npy: shape (6, 300, 12), expected (any, 12, 300); rerun {S10}"),
    (lambda o: (o / "beats_raw.npy").write_bytes(b"\x93NUMPY garbage"),
     f"{OUT}/beats_raw.npy: a NumPy array file with a broken header (format version "
     f"(32, 103)); rerun {S10}"),
    (lambda o: (o / "morph_run.json").write_text("[]"),
     f"{OUT}/morph_run.json: not a JSON object; rerun {S10}"),
    (lambda o: _edit_json(o / "morph_run.json", lambda r: r.update(stop_logit="high")),
     f"{OUT}/morph_run.json: stop_logit is 'high', expected a number or null; rerun {S10}"),
    (lambda o: np.save(o / "trajectory_logits.npy", np.zeros((3, 2), np.float32)),
     f"{OUT}/trajectory_logits.npy: shape (3, 2), expected (16, 6); rerun {S10}")],
    ids=["nan_morph", "transposed", "garbage", "run_not_object", "stop_text",
         "trajectory_shape"])
def test_corrupt_morph_outputs_are_refused_in_one_line(morphed, tmp_path, capsys, edit, message):
    """NaN morphs of 'ok' beats were measured (s11 exit 0) and s12 stopped in a pandas
    traceback; the other cases were numpy, json or indexing tracebacks."""
    out = tmp_path / OUT
    shutil.copytree(morphed / OUT, out)
    written = {n: (out / n).read_bytes() for n in ("morph-stats.feather", "morph-summary.csv")}
    edit(out)
    assert run_main("02_Morphing/s12_morph_stats.py", "--output-dir", str(out), cwd=morphed) == 2
    err = capsys.readouterr().err.replace(str(tmp_path) + "/", "")
    assert err.splitlines() == [f"error: {message}"]
    assert {n: (out / n).read_bytes() for n in written} == written   # refused before writing


@pytest.mark.parametrize("script, patient, content, message", [
    ("s08_train_generator.py", 0, np.full((12, 300), np.nan, np.float32),
     "value nan at index (0, 0); expected finite numbers"),
    ("s09_reconstruction_report.py", 6, np.full((12, 300), np.nan, np.float32),
     "value nan at index (0, 0); expected finite numbers"),
    ("s10_morph_ecgs.py", 6, b"garbage",
     "not a NumPy array file (no .npy header)"),
    ("s10_morph_ecgs.py", 7, np.zeros((300, 12), np.float32), "shape (300, 12), expected (12, 300)")],
    ids=["s08_nan", "s09_nan", "s10_garbage", "s10_transposed"])
def test_a_bad_morphing_beat_is_named(morphed, tmp_path, capsys, script, patient, content,
                                      message):
    """A NaN training beat made s08 stop with 'VAE training diverged' naming no file; a NaN
    validation beat made every error of reconstruction_report.csv NaN (exit 0); a file that is
    no .npy array was numpy's traceback advising to load pickles."""
    ws = tmp_path / "ws"
    shutil.copytree(morphed, ws, ignore=shutil.ignore_patterns("morphing_outputs", "modelfits_vae"
                                                               if script.startswith("s08") else "x"))
    path = ws / "ecg_beats_morphing" / f"e{patient}" / f"e{patient}_1.npy"
    path.write_bytes(content) if isinstance(content, bytes) else np.save(path, content)
    args = {"s08_train_generator.py": ["--beat-model", "modelfits_beat/toy", "--epochs", "1"],
            "s09_reconstruction_report.py": [], "s10_morph_ecgs.py": ["--n-beats", "20"]}[script]
    assert run_main(f"02_Morphing/{script}", *args, cwd=ws) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: ecg_beats_morphing/e{patient}/e{patient}_1.npy: {message}; rerun "
        "00_Data_Preprocessing/x05_create_morphing_beats.py"]
    assert not (ws / "morphing_outputs").exists()


def test_a_damaged_measurement_record_is_remeasured(morphed, tmp_path, capsys):
    """A truncated or non-object morph-stats.json stopped s12 (or was an AttributeError);
    it is s12's own record, so the morphs are measured again."""
    out = tmp_path / OUT
    shutil.copytree(morphed / OUT, out)
    for text, reason in (("{", "not valid JSON"), ("[]", "morph-stats.json is not a JSON object")):
        (out / "morph-stats.json").write_text(text)
        assert run_main("02_Morphing/s12_morph_stats.py", "--output-dir", str(out),
                        "--n-examples", "1", cwd=morphed) == 0
        assert reason in capsys.readouterr().out
        assert json.loads((out / "morph-stats.json").read_text())["n_beats"] == 6


@pytest.mark.parametrize("edit", [
    lambda d: d.assign(stage=d["stage"].replace({"final": "fin"})),
    lambda d: d.assign(beat_id=d["beat_id"] + 100),
    lambda d: d.assign(yhat_scd1=np.nan),
    lambda d: d.assign(aVL_rs_diff="x")], ids=["stage", "beat_id", "nan_output", "text"])
def test_an_edited_or_foreign_morph_stats_table_is_remeasured(morphed, tmp_path, capsys, edit):
    """A morph-stats.feather changed after it was measured (or copied from another run) was
    summarised as it stood: NaN shares and ranks with exit 0, or a KeyError traceback."""
    out = tmp_path / OUT
    shutil.copytree(morphed / OUT, out)
    measured = pd.read_feather(out / "morph-stats.feather")
    edit(measured.copy()).to_feather(out / "morph-stats.feather")
    assert run_main("02_Morphing/s12_morph_stats.py", "--output-dir", str(out),
                    "--n-examples", "1", cwd=morphed) == 0
    assert ("morph-stats.feather is not the table this measurement wrote: measuring the morphs "
            "first") in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_feather(out / "morph-stats.feather"), measured)
    summary = pd.read_csv(out / "morph-outputs.csv").set_index("feature")
    assert summary.at["yhat_scd1", "share_rose"] == 1.0


def test_beats_that_took_no_step_are_left_out_of_the_summary(morphed, tmp_path, capsys):
    import shutil

    out = tmp_path / "morphing_outputs"
    shutil.copytree(morphed / "morphing_outputs", out)
    table = pd.read_feather(out / "morphs.feather")
    moved = table["steps"] > 0
    table.loc[0, ["steps", "logit_final"]] = [0, table.at[0, "logit_t0"]]  # as if at the stop
    table.to_feather(out / "morphs.feather")
    assert run_main("02_Morphing/s12_morph_stats.py", "--output-dir", str(out), cwd=morphed) == 0
    outputs = pd.read_csv(out / "morph-outputs.csv").set_index("feature")
    n_left = int(moved.sum()) - bool(moved[0])
    assert outputs.at["yhat_scd1", "n_beats"] == n_left
    assert f"{n_left} morphed beats of " in capsys.readouterr().out


def test_run_report_shows_waveform_features_and_model_outputs_apart(morphed, tmp_path):
    import shutil

    from scdecg.report import build_report

    ws = tmp_path / "ws"
    shutil.copytree(morphed / "morphing_outputs", ws / "morphing_outputs")
    text = build_report(ws).read_text()
    section = text[text.index("Most changed waveform features"):]
    waveform, outputs = section.split("The beat model's outputs")[:2]
    assert "| max_aVL |" in waveform or "| min_aVL |" in waveform
    assert "yhat_scd1" not in waveform and "| yhat_scd1 |" in outputs
    assert "n_patients" in waveform and "wilcoxon_p" in waveform


def test_s10_demo_profile_sets_the_stop_level_from_the_reconstructions(morphed, tmp_path):
    """--profile demo means --stop-reference reconstructed: the stop level is the 0.9 quantile
    of the predicted risk of the validation beats' reconstructions, not of the real beats (the
    fixture's run, the published default)."""
    from scdecg.models import load_trained
    from scdecg.morphing import stop_threshold
    from scdecg.signals import zero_mode
    from scdecg.vae import load_vae, reconstruct

    out = tmp_path / "demo_run"
    assert run_main("02_Morphing/s10_morph_ecgs.py", "--profile", "demo", "--n-beats", "4",
                    "--max-steps", "3", "--max-rec-mse", "1.0", "--output-dir", str(out),
                    cwd=morphed) == 0
    run = json.loads((out / "morph_run.json").read_text())
    assert run["stop_reference"] == "reconstructed" and run["args"]["lr"] == 0.05
    # every validation beat, real and reconstructed, scored by the beat model here
    files = sorted((morphed / "ecg_beats_morphing").glob("e*/e*_*.npy"))
    files = [f for f in files if f"p{f.parent.name[1:]}" in VAL]
    beats = np.stack([zero_mode(np.load(f).astype(np.float32)) for f in files])
    assert len(beats) == run["n_pool"] == len(VAL) * BEATS_PER_ECG
    vae, _, _ = load_vae(morphed / "modelfits_vae" / "drvae")
    model, config = load_trained(morphed / "modelfits_beat" / "toy")
    scd1 = config["outputs"].index("scd1")
    with torch.no_grad():
        real = model(torch.as_tensor(beats), None)[:, scd1].numpy()
        rec = model(torch.as_tensor(reconstruct(vae, beats, torch.device("cpu"))), None)[:, scd1].numpy()
    assert run["stop_logit"] == pytest.approx(stop_threshold(rec, 0.9), abs=1e-5)
    assert run["logit_shift_reconstruction"] == pytest.approx(np.mean(rec - real), abs=1e-5)
    published = json.loads((morphed / "morphing_outputs" / "morph_run.json").read_text())
    assert published["stop_reference"] == "real"
    assert published["stop_logit"] == pytest.approx(stop_threshold(real, 0.9), abs=1e-5)
    assert abs(run["stop_logit"] - published["stop_logit"]) > 1e-4   # the two differ here
    # --stop-reference real on the command line wins over the profile
    out_real = tmp_path / "demo_real"
    assert run_main("02_Morphing/s10_morph_ecgs.py", "--profile", "demo", "--n-beats", "4",
                    "--max-steps", "3", "--max-rec-mse", "1.0", "--output-dir", str(out_real),
                    "--stop-reference", "real", cwd=morphed) == 0
    again = json.loads((out_real / "morph_run.json").read_text())
    assert again["stop_logit"] == pytest.approx(published["stop_logit"], abs=1e-6)


class _Killed(BaseException):
    """Stands in for SIGKILL (or an error nothing catches) in the middle of s10's writes."""


def test_a_killed_s10_is_refused_by_s11_and_s12_until_s10_is_rerun(morphed, tmp_path, capsys,
                                                                    monkeypatch):
    """s10 wrote its many files with no mark: a run killed midway left new beats beside the
    old morph_run.json and independent-model check, and s11/s12 measured the mix (exit 0)."""
    import scdecg.morph_run as morph_run

    out = tmp_path / OUT
    shutil.copytree(morphed / OUT, out)
    marker = out / ".s10-unfinished"
    args = ("--n-beats", "6", "--max-steps", "3", "--lr", "0.5", "--max-rec-mse", "1.0",
            "--output-dir", str(out))
    kept = {n: (out / n).read_bytes() for n in ("morphs.feather", "beats_final.npy",
                                                "morph_gate_log.csv", "morph_run.json")}
    # a refusal that writes nothing (no beat passes the gate) leaves no mark and the old run
    assert run_main(S10, *args, "--max-rec-mse", "0", cwd=morphed) == 2
    err = capsys.readouterr().err.replace(str(tmp_path) + "/", "")
    assert "no beat of the morph set passes the reconstruction gate" in err and err.endswith(
        f"per-beat reconstruction errors in {OUT}/morph_gate_log.failed.csv\n")
    assert not marker.exists() and {n: (out / n).read_bytes() for n in kept} == kept
    # killed after the morph arrays, before the independent check and morph_run.json
    real_write_csv, calls = morph_run.write_csv, []

    def write_csv(*a, **k):
        calls.append(1)
        if len(calls) > 1:   # the gate log passes; morph_independent.csv is killed
            raise _Killed
        return real_write_csv(*a, **k)

    monkeypatch.setattr(morph_run, "write_csv", write_csv)
    with pytest.raises(_Killed):
        run_main(S10, *args, cwd=morphed)
    monkeypatch.undo()
    assert marker.read_text().startswith(f"s10 ({S10}) started writing this folder at ")
    assert (out / "morph_run.json").read_bytes() == kept["morph_run.json"]   # old beside new
    expected = (f"error: {OUT}: s10 did not finish (killed or stopped by an error: "
                f"{OUT}/.s10-unfinished); rerun {S10}")
    stats_before = (out / "morph-stats.feather").read_bytes()
    for script in ("s11_prepare_morph_stats.py", "s12_morph_stats.py"):
        assert run_main(f"02_Morphing/{script}", "--output-dir", str(out), cwd=morphed) == 2
        err = capsys.readouterr().err.replace(str(tmp_path) + "/", "")
        assert err.splitlines() == [expected], script
    assert (out / "morph-stats.feather").read_bytes() == stats_before
    # a complete rerun clears the mark (and the failed gate log)
    assert run_main(S10, *args, cwd=morphed) == 0
    assert not marker.exists() and not (out / "morph_gate_log.failed.csv").exists()
    assert run_main("02_Morphing/s12_morph_stats.py", "--output-dir", str(out),
                    "--n-examples", "1", cwd=morphed) == 0


def test_a_second_s10_over_the_same_folder_stops_before_writing(morphed, tmp_path, capsys):
    """Two s10 runs over one folder interleaved their files (no lock); the second now stops
    in one line naming the folder's lock, before loading a model or writing a file."""
    from scdecg.io import folder_lock

    out = tmp_path / OUT
    with folder_lock(out, "s10"):   # the first run, still writing
        assert run_main(S10, "--n-beats", "6", "--max-steps", "3", "--max-rec-mse", "1.0",
                        "--output-dir", str(out), cwd=morphed) == 2
    err = capsys.readouterr().err.replace(str(tmp_path) + "/", "")
    assert err == (f"error: {OUT}: another run is writing this folder (lock .{OUT}.lock is "
                   "held); wait for it to finish before running s10\n")
    assert not out.exists()


def test_a_10s_model_given_as_a_beat_model_is_refused_naming_both_kinds(morphed, tmp_path,
                                                                        capsys):
    """s08/s10 --beat-model, s10 --independent-models and s11 --beat-model took a 10-s model's
    folder and stopped in a traceback (its network run on a 300-sample beat)."""
    from scdecg.models import Architecture, build_model, save_trained

    ecg = tmp_path / "modelfits_ecg" / "ecg"
    save_trained(ecg, build_model(Architecture(outputs=["scd1", "age", "female"], length=500,
                                               channels=8, n_blocks=2, rep_mp=5)),
                 {"kind": "ecg", "output_types": ["classification", "regression",
                                                  "classification"]})
    shutil.copy(morphed / "modelfits_beat" / "toy" / "split.csv", ecg / "split.csv")
    shutil.copytree(morphed / OUT, tmp_path / OUT)
    expected = (f"error: {ecg}: holds a 10-s ECG model (kind 'ecg' in its config.json), not the "
                "beat model expected here; give a beat model folder "
                "(01_Predictive_Model/x02_train_beats.py trains one)")
    out = ("--output-dir", str(tmp_path / "new"))
    for script, *args in ((S08, "--beat-model", str(ecg), "--epochs", "1", *out),
                          (S10, "--beat-model", str(ecg), *out),
                          (S10, "--independent-models", str(ecg), *out),
                          ("02_Morphing/s11_prepare_morph_stats.py", "--beat-model", str(ecg),
                           "--output-dir", str(tmp_path / OUT))):
        assert run_main(script, *args, cwd=morphed) == 2, (script, args)
        assert capsys.readouterr().err.splitlines() == [expected], (script, args)
    assert not (tmp_path / "new").exists()
    assert ((tmp_path / OUT / "morph-stats.feather").read_bytes()
            == (morphed / OUT / "morph-stats.feather").read_bytes())   # s11 measured nothing


@pytest.mark.parametrize("option, value, what", [
    ("--lr", "1e30", "above 0 and at most 1000"), ("--lr", "0", "above 0 and at most 1000"),
    ("--lr", "-0.01", "above 0 and at most 1000"), ("--lr", "inf", "above 0 and at most 1000"),
    ("--lr", "nan", "above 0 and at most 1000"), ("--max-steps", "-5", "at least 1"),
    ("--batch-size", "0", "at least 1"), ("--max-rec-mse", "nan", "0 or more")])
def test_s10_refuses_an_absurd_number_naming_the_option(tmp_path, option, value, what):
    """--lr 1e30 was accepted (one step threw every latent far off the beats and counted as
    reaching the stop threshold, exit 0), as was --lr 0 (no beat moved in 15 steps)."""
    from training_fixtures import refused_line

    line = refused_line(S10, option, value, cwd=tmp_path)
    assert line.endswith(f"error: argument {option}: {value!r}: {option} must be {what}"), line
    assert list(tmp_path.iterdir()) == []


def test_s10_takes_its_largest_step_size_and_cli_limits_are_checked():
    from scdecg.cli import build_parser

    parser = build_parser("x", maxima={"lr": 1e3}, lr=0.01, dpi=200)
    assert parser.parse_args(["--lr", "1000"]).lr == 1000.0
    assert parser.parse_args(["--lr", "1e-300", "--dpi", "1200"]).dpi == 1200
    with pytest.raises(ValueError, match=r"maxima for options that do not exist: \['rate'\]"):
        build_parser("x", maxima={"rate": 1.0}, lr=0.01)


def test_a_generator_that_decodes_one_beat_for_all_is_named(morphed, tmp_path, capsys):
    """A collapsed VAE (here: its last decoder layer zeroed, so every latent decodes the same,
    flat beat) gives morphs whose risk never moves; s10 says so instead of reporting 0%."""
    import shutil

    from scdecg.io import load_checkpoint, save_checkpoint

    ws = tmp_path / "ws"
    shutil.copytree(morphed, ws, ignore=shutil.ignore_patterns("morphing_outputs"))
    weights = ws / VAE_DIR / "vae.pt"
    tensors, record = load_checkpoint(weights)
    last = max(k for k in tensors["model"] if k.startswith("decoder.net.") and
               k.endswith(".weight"))
    tensors["model"][last].zero_()
    save_checkpoint(weights, tensors, record)
    capsys.readouterr()
    assert run_main(S10, "--n-beats", "3", "--max-steps", "5", "--no-stop", "--max-rec-mse",
                    "100", cwd=ws) == 0
    assert "warning: no morph changed its beat's risk at all" in capsys.readouterr().out
