"""What the morphs change: measurements, paired summaries, and the s08-s12 scripts end to end."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run_script
from scdecg.constants import AVL, LEADS
from scdecg.morph_stats import (avl_slopes, delineate_lead, lead_change, lead_extrema,
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


def test_lead_extrema_and_avl_slopes_follow_the_slur():
    sharp, slurred = toy_beat(0.0), toy_beat(12.0)
    ext = lead_extrema(np.stack([sharp, slurred]))
    assert list(ext.columns[:2]) == ["min_I", "max_I"] and ext.shape == (2, 24)
    assert ext.loc[0, "max_aVL"] == pytest.approx(sharp[AVL].max())
    a, a2, reason = avl_slopes(sharp)
    b, b2, _ = avl_slopes(slurred)
    assert reason == "" and 0 < b < a and 0 < b2 < a2
    assert np.isnan(avl_slopes(np.zeros((12, 300)))[0])


def test_delineation_of_a_tiled_beat_finds_the_waves():
    points = delineate_lead(toy_beat()[1])
    assert points["R_onset"] < 100 < points["R_offset"] or np.isnan(points["R_offset"])
    assert 15 <= points["P_peak"] <= 65
    assert 200 <= points["T_peak"] <= 260


def test_paired_summary_and_lead_change_values():
    long = pd.DataFrame({"beat_id": [0, 1, 2, 3] * 2, "stage": ["t0"] * 4 + ["final"] * 4,
                         "x": [1.0, 2.0, 3.0, 4.0, 0.0, 1.5, 2.0, 3.5],     # falls
                         "y": [1.0, 1.0, 1.0, np.nan, 1.1, 1.3, 1.0, 9.0]})  # rises, one pair NaN
    s = paired_summary(long, ["x", "y"]).set_index("feature")
    assert s.loc["x", "n"] == 4 and s.loc["y", "n"] == 3
    assert s.loc["x", "mean_change"] == pytest.approx(-0.75)
    assert s.loc["x", "sd_change"] == pytest.approx(np.std([-1, -0.5, -1, -0.5], ddof=1))
    assert s.loc["x", "share_fell"] == 1.0 and s.loc["y", "share_rose"] == pytest.approx(2 / 3)
    assert s.loc["x", "rank"] == 1 and s.loc["x", "t_p"] == pytest.approx(0.013846, rel=1e-3)
    before = np.zeros((2, 12, 300))
    after = before.copy()
    after[:, AVL] += 0.2
    after[:, 0, :150] -= 0.1
    table, diff = lead_change(before, after)
    assert table["lead"].tolist()[:2] == ["aVL", "I"]
    assert table.iloc[0]["mean_abs_change_mv"] == pytest.approx(0.2)
    np.testing.assert_allclose(diff[AVL], 0.2)


def test_stage_features_long_format():
    beats = np.stack([toy_beat(0.0), toy_beat(8.0)])
    stages = {"raw": beats, "t0": beats, "final": beats[::-1].copy()}
    outputs = {"raw": np.array([[0.0, 50.0], [1.0, 60.0]]), "t0": np.array([[0.0, 50.0], [1.0, 60.0]]),
               "final": np.array([[2.0, 55.0], [-1.0, 65.0]])}
    long, failures = stage_features(stages, outputs, ["scd1", "age"],
                                    ["classification", "regression"], delineate=True, n_jobs=1,
                                    progress=False)
    assert len(long) == 6 and list(long["stage"].unique()) == ["raw", "t0", "final"]
    for col in ("beat_id", "yhat_scd1", "logit_scd1", "yhat_age", "aVL_rs_diff", "min_aVL",
                "max_V6", "R_onset_aVL", "T_peak_II"):
        assert col in long.columns
    final = long[long["stage"] == "final"].set_index("beat_id")
    assert final.loc[0, "yhat_scd1"] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert final.loc[1, "yhat_age"] == 65.0
    t0 = long[long["stage"] == "t0"].set_index("beat_id")
    assert final.loc[0, "aVL_rs_diff"] == pytest.approx(t0.loc[1, "aVL_rs_diff"])
    assert list(failures.columns) == ["beat_id", "stage", "step", "reason"]
