"""x06: the aVL terminal-R slope features (scdecg.features and the script)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_script
from scdecg import features
from scdecg.constants import AVL, FS
from scdecg.errors import PipelineError

X06 = "00_Data_Preprocessing/x06_create_aVL_feature.py"
#: Lead gains of one frontal/precordial projection of the test waveform (aVL positive).
LEAD_GAINS = np.array([1.0, 1.2, 0.2, -1.1, 0.8, 0.7, -0.5, 0.3, 0.8, 1.2, 1.1, 0.9])


def gaussian_ecg(rng: np.random.Generator, hr: float = 70.0, slur: float = 0.0,
                 noise_mv: float = 0.01, n: int = 5000, gains: np.ndarray = LEAD_GAINS
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A (12, n) ECG in mV built from Gaussian P, Q, R, S, T waves, and its true R-peak samples.

    ``slur`` widens the R wave's downstroke (its falling-side width is ``10 ms × (1 + slur)``)
    and delays the S wave accordingly; 0 is a brisk R→S descent.
    """
    t = np.arange(n) / FS
    centres = np.arange(0.3 + rng.uniform(0, 0.2), n / FS, 60.0 / hr)
    centres = centres + rng.normal(0, 0.01, len(centres))
    x = np.zeros(n)

    def wave(c, a, s):
        return a * np.exp(-0.5 * ((t - c) / s) ** 2)

    down = 0.010 * (1 + slur)
    for c in centres:
        x += wave(c - 0.16, 0.1, 0.02) + wave(c - 0.03, -0.1, 0.008)
        x += np.where(t < c, wave(c, 1.0, 0.010), wave(c, 1.0, down))
        x += wave(c + 0.035 + 0.6 * down, -0.25, 0.010) + wave(c + 0.30, 0.3, 0.04)
    ecg = gains[:, None] * x[None, :] + 0.05 * np.sin(2 * np.pi * 0.2 * t)[None, :]
    ecg = ecg + rng.normal(0, noise_mv, ecg.shape)
    return ecg.astype(np.float32), np.round(centres * FS).astype(int)


# ----------------------------------------------------------------------- the R→S slopes
def test_rs_slopes_of_a_straight_downstroke():
    # Rise to 1 at sample 250, fall by 0.05 per sample to 0 at 270, flat after: R = 250,
    # |d1| = 0.05 on [250, 270) and 0 from 270 on, so S = 270, rs_diff = 0.05, rs_diff_2 = 0.
    beat = np.zeros(500)
    beat[200:251] = np.linspace(0, 1, 51)
    beat[250:271] = np.linspace(1, 0, 21)
    out = features.rs_slopes(beat * 2.3 - 0.4, features.AvlFeatures())  # min-max undoes scaling
    assert (out.status, out.r_index, out.s_index) == ("ok", 250, 270)
    assert out.rs_diff == pytest.approx(0.05)
    assert out.rs_diff_2 == pytest.approx(0.0, abs=1e-12)


def test_rs_slopes_on_a_curved_downstroke_match_hand_computation():
    # Decelerating fall x[250 + k] = (1 - k/40)^2: d1 = -(79 - 2k)/1600, |d1| < 0.01 from k = 32,
    # so S = 282; the mean |d1| over [250, 282) telescopes to the drop / 32 = 0.96 / 32;
    # d2 = 2/1600 throughout.
    beat = np.zeros(500)
    beat[230:251] = np.linspace(0, 1, 21)
    k = np.arange(41)
    beat[250:291] = (1 - k / 40) ** 2
    out = features.rs_slopes(beat, features.AvlFeatures())
    assert (out.status, out.r_index, out.s_index) == ("ok", 250, 282)
    assert out.rs_diff == pytest.approx(0.96 / 32)
    assert out.rs_diff_2 == pytest.approx(2 / 1600)


def test_s_defaults_to_r_plus_61_when_the_fall_never_flattens():
    beat = np.zeros(500)
    beat[200:251] = np.linspace(0, 1, 51)
    beat[250:334] = 1 - 0.012 * np.arange(84)  # |d1| = 0.012 > 0.01 throughout the search
    out = features.rs_slopes(beat, features.AvlFeatures())
    assert (out.status, out.r_index, out.s_index) == ("ok", 250, 311)
    assert out.rs_diff == pytest.approx(0.012)
    assert out.rs_diff_2 == pytest.approx(0.0, abs=1e-12)


def test_r_is_the_highest_local_maximum_near_the_centre_not_the_edge_or_a_far_peak():
    beat = np.zeros(500)
    beat[100] = 5.0                             # a big spike far from the centre: ignored
    beat[240:246] = np.linspace(0, 0.3, 6)      # small r ...
    beat[245:260] = np.linspace(0.3, -1.0, 15)  # ... deep S
    beat[259:280] = np.linspace(-1.0, 0, 21)
    out = features.rs_slopes(beat, features.AvlFeatures())
    assert out.r_index == 245
    qs = np.zeros(500)                          # a QS complex: no R wave at all
    qs[240:260] = np.linspace(0, -1, 20)
    qs[259:290] = np.linspace(-1, 0, 31)
    out = features.rs_slopes(qs, features.AvlFeatures())
    assert out.status == "failed" and out.reason == "no R wave near the median beat centre"
    assert np.isnan(out.rs_diff) and np.isnan(out.rs_diff_2)


def test_flat_topped_r_keeps_the_first_difference_only():
    beat = np.zeros(500)
    beat[220:251] = np.linspace(0, 1, 31)
    beat[251:260] = 1.0 - 0.001 * np.arange(1, 10)   # plateau: S is at R + 1
    beat[260:280] = np.linspace(beat[259], 0, 20)
    out = features.rs_slopes(beat, features.AvlFeatures())
    assert (out.status, out.r_index, out.s_index) == ("partial", 250, 251)
    assert out.rs_diff == pytest.approx(0.001, rel=1e-6)
    assert np.isnan(out.rs_diff_2) and out.reason == "S directly after R"


# ------------------------------------------------------------------- beats and R-peaks
def test_median_beat_uses_interior_beats_whose_window_fits():
    rng = np.random.default_rng(0)
    out = features.avl_features(gaussian_ecg(rng, hr=170)[0])  # fast: a beat within 250 of the end
    inner = out.rpeaks[1:-1]
    fits = inner[(inner >= features.HALF_WINDOW) & (inner <= 5000 - features.HALF_WINDOW)]
    assert out.used_rpeaks.tolist() == fits.tolist() and out.n_beats == len(fits)
    assert len(fits) < len(inner)               # this record has a beat too close to an edge


def test_refined_hamilton_peaks_sit_on_the_true_qrs():
    rng = np.random.default_rng(3)
    for noise in (0.0, 0.01, 0.03):
        ecg, truth = gaussian_ecg(rng, hr=75, noise_mv=noise)
        avl = ecg[AVL].astype(np.float64)
        raw = features.detect_rpeaks_hamilton(avl)
        refined = features.refine_to_qrs(avl, raw)
        assert len(refined) == len(truth)
        inner = slice(1, -1)                      # x06 never uses the first and last beat
        assert np.abs(refined[inner] - truth[inner]).max() <= 3, (noise, refined - truth)


def test_slurred_downstroke_lowers_rs_diff():
    rng = np.random.default_rng(11)

    def rs(slur):
        rows = [features.avl_features(gaussian_ecg(rng, hr=rng.uniform(55, 95), slur=slur)[0])
                for _ in range(8)]
        assert all(r.status in ("ok", "partial") for r in rows), [r.reason for r in rows]
        return np.array([r.rs_diff for r in rows])

    brisk, slurred = rs(0.0), rs(2.0)
    assert np.median(slurred) < 0.85 * np.median(brisk), (brisk, slurred)


def test_aligned_median_beat_is_centred_on_the_r_wave():
    rng = np.random.default_rng(5)
    out = features.avl_features(gaussian_ecg(rng)[0], keep_median_beat=True)
    assert out.status == "ok" and abs(out.r_index - features.HALF_WINDOW) <= 2
    assert out.median_beat.shape == (12, 500) and out.n_beats == len(out.used_rpeaks) >= 8
    # The other leads are the same waveform scaled by their gains (after zero-mode).
    ratio = out.median_beat[1, 250] / out.median_beat[AVL, 250]
    assert ratio == pytest.approx(LEAD_GAINS[1] / LEAD_GAINS[AVL], rel=0.05)


# ------------------------------------------------------------------------- bad input
def _task(path, scale=1000.0):
    return features.EcgTask("e1", str(path), scale)


def test_bad_records_give_nan_and_a_reason(tmp_path):
    rng = np.random.default_rng(0)
    good, _ = gaussian_ecg(rng)
    cases = {
        "nan": (np.where(np.arange(5000) == 7, np.nan, good * 1000), "non-finite samples"),
        "zeros": (np.zeros((12, 5000)), "all-zero ECG"),
        "flat": (np.where(np.arange(12)[:, None] == AVL, 0.0, good * 1000), "flat aVL lead"),
        "brady": (gaussian_ecg(rng, hr=20)[0] * 1000, "too few beats"),
        "shape": (good[:6] * 1000, "unexpected ECG shape"),
    }
    for name, (ecg, reason) in cases.items():
        np.save(tmp_path / f"{name}.npy", ecg.astype(np.float32))
        row = features.features_for_file(_task(tmp_path / f"{name}.npy"))
        assert (row["status"], row["reason"]) == ("failed", reason), name
        assert np.isnan(row["aVL_rs_diff"]) and np.isnan(row["aVL_rs_diff_2"])
    row = features.features_for_file(_task(tmp_path / "absent.npy"))
    assert row["reason"] == "missing 10-s ECG file" and "absent.npy" in row["detail"]
    np.save(tmp_path / "good.npy", good * 1000)
    assert features.features_for_file(_task(tmp_path / "good.npy", np.nan))["reason"] == \
        "invalid scaling_factor"
    ok = features.features_for_file(_task(tmp_path / "good.npy"))
    assert ok["status"] == "ok" and 0 < ok["aVL_rs_diff"] < 1


def test_a_missing_tail_is_cut_off_not_analysed():
    rng = np.random.default_rng(4)
    ecg, _ = gaussian_ecg(rng)
    tailless = ecg.copy()
    tailless[:, 3000:] = 0.0                    # the recording stops at 6 s
    with_tail = features.avl_features(tailless)
    cut = features.avl_features(ecg[:, :3000])
    assert with_tail.status == cut.status == "ok"
    assert with_tail.rs_diff == cut.rs_diff and with_tail.used_rpeaks.max() < 3000 - 250


def test_add_feature_columns_replaces_instead_of_duplicating():
    cov = pd.DataFrame({"studyId": ["a", "b", "c"], "age": [50.0, 60, 70],
                        "aVL_rs_diff": [9.0, 9.0, 9.0]})
    table = pd.DataFrame({"studyId": ["b", "a"], "aVL_rs_diff": [0.2, 0.1],
                          "aVL_rs_diff_2": [0.02, np.nan]})
    out = features.add_feature_columns(cov, table)
    assert list(out.columns) == ["studyId", "age", "aVL_rs_diff", "aVL_rs_diff_2"]
    np.testing.assert_allclose(out["aVL_rs_diff"], [0.1, 0.2, np.nan])
    np.testing.assert_allclose(out["aVL_rs_diff_2"], [np.nan, 0.02, np.nan])


# ------------------------------------------------------------- the script on the study
@pytest.fixture(scope="module")
def x06_workspace(pipeline):
    return pipeline.ensure("x06")


def test_x06_on_synthetic_study_separates_planted_slur(x06_workspace):
    cov = pd.read_feather(x06_workspace / "covariate_df.feather")
    table = pd.read_csv(x06_workspace / "x06_avl_features.csv", dtype={"studyId": str})
    truth = pd.read_csv(x06_workspace / "arrest-ntuh-ecg" / "synthetic_truth.csv",
                        dtype={"ecg_id": str})
    assert cov.columns.tolist().count("aVL_rs_diff") == 1
    assert len(table) == len(cov) and set(table["studyId"]) == set(cov["studyId"])
    assert (table["status"] != "failed").mean() > 0.85, table["reason"].value_counts()
    not_ok = table[table["status"] != "ok"]
    assert not_ok["reason"].fillna("").str.len().gt(0).all()
    assert table.loc[table["status"] == "failed", "aVL_rs_diff"].isna().all()

    truth = truth[["ecg_id", "slur_strength", "cardiac_cause"]]
    merged = cov.merge(truth, left_on="studyId", right_on="ecg_id", how="inner")
    assert len(merged) == len(cov)
    cases = merged[(merged["group"] == "study") & merged["cardiac_cause"].astype(bool)]
    controls = merged[merged["group"] != "study"]
    assert len(cases) >= 20 and len(controls) >= 100
    # Slurred cases: a slower downstroke on average. aVL_rs_diff_2 has a long right tail (a few
    # noisy median beats), so its mean barely moves; its median does.
    assert cases["aVL_rs_diff"].mean() < 0.85 * controls["aVL_rs_diff"].mean()
    for column in features.FEATURE_COLUMNS:
        assert cases[column].median() < 0.85 * controls[column].median(), column
    # Stronger planted slur, slower downstroke, across every ECG.
    rho = merged["slur_strength"].corr(merged["aVL_rs_diff"], method="spearman")
    assert rho < -0.3, rho


def test_x06_rerun_replaces_columns_and_reproduces_values(x06_workspace, tmp_path, monkeypatch):
    # A 12-ECG slice of the study (keeps the test quick) that already holds x06's columns.
    cov = pd.read_feather(x06_workspace / "covariate_df.feather").iloc[:12]
    cov.to_feather(tmp_path / "covariate_df.feather")
    (tmp_path / "10_sec_ecgs").symlink_to(x06_workspace / "10_sec_ecgs")
    spec = importlib.util.spec_from_file_location("x06_avl_features", ROOT / X06)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)                       # the script's workspace
    assert module.main(["--n-jobs", "1"]) == 0        # in-process: no interpreter start-up
    again = pd.read_feather(tmp_path / "covariate_df.feather")
    pd.testing.assert_frame_equal(again, cov)          # same values, no duplicated columns
    text = {"studyId": str, "status": str, "reason": str, "detail": str}  # all-empty in a slice
    table = pd.read_csv(tmp_path / "x06_avl_features.csv", dtype=text)
    full = pd.read_csv(x06_workspace / "x06_avl_features.csv", dtype=text)
    pd.testing.assert_frame_equal(table, full.iloc[:12])


def test_x06_names_a_missing_input(tmp_path):
    proc = run_script(X06, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "covariate_df.feather: file not found" in proc.stderr


# ------------------------------------------------------------- published behaviour and switches
def gaussians(n: int = 1000, **waves: tuple[float, float, float]) -> np.ndarray:
    """A lead of Gaussian waves: name=(centre, width, amplitude)."""
    t = np.arange(n)
    return sum(a * np.exp(-0.5 * ((t - c) / w) ** 2) for c, w, a in waves.values())


def test_the_published_refinement_takes_the_polarity_that_stands_out_more():
    """The last step of biosppy's Hamilton segmenter (which the published x06 ran), checked by
    hand: an R of +1.0 mV beside a deeper S of -1.05 mV stays on the R, because R stands 0.95
    above the next maximum (T) and S only 0.75 below the next minimum (Q); the largest |value|
    (the S) is not the rule."""
    lead = gaussians(q=(470, 4, -0.3), r=(500, 4, 1.0), s=(515, 4, -1.05), t=(580, 20, 0.05))
    assert features.refine_by_peak_contrast(lead, np.array([505])).tolist() == [500]
    # a small r before a deep S that stands far out: the S
    lead = gaussians(r=(500, 4, 0.2), s=(520, 4, -1.5), q=(460, 4, -0.1), t=(580, 20, 0.15))
    assert features.refine_by_peak_contrast(lead, np.array([505])).tolist() == [520]
    # two detections of one complex are one peak; "none" keeps the detections
    lead = gaussians(r=(500, 4, 1.0), t=(580, 20, 0.2), q=(470, 4, -0.3), s=(520, 4, -0.4))
    assert features.refine_by_peak_contrast(lead, np.array([490, 510])).tolist() == [500]
    assert features.refine_rpeaks(lead, np.array([480]), "none").tolist() == [480]
    with pytest.raises(ValueError, match="unknown R-peak refinement"):
        features.refine_rpeaks(lead, np.array([480]), "biosppy")


def test_the_published_refinement_at_edges_plateaus_and_lone_peaks():
    # near the start the window is [0, p + 100): a flat baseline gives second peaks of 0
    lead = np.zeros(1000)
    lead[30], lead[60] = 1.0, -0.5
    assert features.refine_by_peak_contrast(lead, np.array([5])).tolist() == [30]
    # one maximum and one minimum, no plateau: no second peak of either polarity, and the
    # segmenter then takes the one later in the window, whatever the amplitudes
    lead = np.sin(2 * np.pi * np.arange(1000) / 200)
    assert features.refine_by_peak_contrast(lead, np.array([200])).tolist() == [250]
    assert features.refine_by_peak_contrast(lead, np.array([300])).tolist() == [350]
    # no extremum at all in the window: no peak
    ramp = np.arange(1000, dtype=np.float64)
    assert features.refine_by_peak_contrast(ramp, np.array([500])).tolist() == []
    # the window is [p - 0.2 s, p + 0.2 s) at any rate: 100 samples each side at 500 Hz, 50 at
    # 250 Hz, where the R 50 samples after the detection is out of reach and the small
    # negative deflection, standing 0.2 below the baseline, is all there is
    lead = np.zeros(1000)
    lead[500], lead[430] = 1.0, -0.2
    assert features.refine_by_peak_contrast(lead, np.array([450])).tolist() == [500]
    assert features.refine_by_peak_contrast(lead, np.array([450]), fs=250).tolist() == [430]


def test_x06_default_uses_the_published_refinement():
    rng = np.random.default_rng(3)
    ecg, truth = gaussian_ecg(rng, hr=75, noise_mv=0.01)
    out = features.avl_features(ecg)
    avl = features.lowpass(features.zero_mode(ecg.astype(np.float64)))[AVL]
    expected = features.refine_by_peak_contrast(avl, features.detect_rpeaks_hamilton(avl))
    assert out.rpeaks.tolist() == expected.tolist()
    assert np.abs(out.rpeaks[1:-1] - truth[1:-1]).max() <= 3   # on the R wave (aVL positive)
    centre = features.avl_features(ecg, refine="qrs_centre")
    assert centre.status == "ok" and np.abs(centre.rpeaks[1:-1] - truth[1:-1]).max() <= 3


def test_published_median_beat_rules_are_a_switch():
    """Row 6: by default >= 3 windows and an aVL range >= 0.05 mV; published: any number of
    windows, no flatness check (min_beats=1, min_avl_range=0)."""
    rng = np.random.default_rng(0)
    brady, _ = gaussian_ecg(rng, hr=20)
    assert features.avl_features(brady).reason == "too few beats"
    published = features.avl_features(brady, min_beats=1, min_avl_range=0.0)
    assert 1 <= published.n_beats < features.MIN_BEATS and published.status in ("ok", "partial")
    good, _ = gaussian_ecg(rng)
    faint = good.copy()
    faint[AVL] *= 0.03                                      # aVL spans about 0.04 mV
    assert features.avl_features(faint).reason == "flat aVL lead"
    kept = features.avl_features(faint, min_avl_range=0.0)
    assert kept.reason != "flat aVL lead" and np.isfinite(kept.rs_diff)
    flat = good.copy()
    flat[AVL] = 0.0
    assert features.avl_features(flat, min_beats=1, min_avl_range=0.0).reason == "flat aVL lead"


def test_x06_rejects_an_unknown_refinement(tmp_path):
    proc = run_script(X06, "--rpeak-refinement", "biosppy", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "--rpeak-refinement biosppy" in proc.stderr


# ------------------------------------------------------------- the fast path vs the plain one
def _x06_reference():
    spec = importlib.util.spec_from_file_location("x06_reference",
                                                  ROOT / "benchmarks" / "x06_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _varied_ecgs(n: int, seed: int) -> list[np.ndarray]:
    """Simulated ECGs in mV: every parameter fault, added noise, a missing tail, gaussian ones."""
    from scdecg import synthetic

    rng = np.random.default_rng(seed)
    faults = ("",) * 4 + synthetic.PARAM_FAULTS
    out = []
    for i in range(n):
        params = synthetic.sample_ecg_params(rng, slur=float(rng.uniform(0, 1)),
                                             fault=faults[i % len(faults)])
        ecg = synthetic.simulate_ecg(params, rng).astype(np.float32) / 1000.0
        if i % 5 == 1:
            ecg = ecg + rng.normal(0, 0.08, ecg.shape).astype(np.float32)
        if i % 7 == 2:
            ecg[:, -1200:] = 0.0
        out.append(ecg)
    out += [gaussian_ecg(rng, hr=hr, slur=s)[0] for hr, s in ((45, 0.0), (120, 1.0), (170, 0.5))]
    return out


def test_fast_x06_equals_the_plain_reference_to_1e6():
    # the reference: every lead, np.unique modes, a filter designed per call, neurokit2's
    # Hamilton; the fast path must find the same R-peaks, statuses, R/S and features
    ref = _x06_reference()
    ecgs = _varied_ecgs(40, seed=5)
    statuses = set()
    for i, ecg in enumerate(ecgs):
        for refine in ("published", "qrs_centre"):
            a, b = ref.avl_features(ecg, refine=refine), features.avl_features(ecg, refine=refine)
            assert np.array_equal(a.rpeaks, b.rpeaks), (i, refine)
            assert (a.status, a.reason, a.r_index, a.s_index, a.n_beats) == \
                (b.status, b.reason, b.r_index, b.s_index, b.n_beats), (i, refine)
            for u, v in ((a.rs_diff, b.rs_diff), (a.rs_diff_2, b.rs_diff_2)):
                assert (np.isnan(u) and np.isnan(v)) or abs(u - v) <= 1e-6, (i, refine, u, v)
            statuses.add(a.status)
        kept, plain = features.avl_features(ecg, keep_median_beat=True), ref.avl_features(ecg)
        assert (kept.median_beat is None) == (plain.median_beat is None), i
        if kept.median_beat is not None:     # the 12-lead median beat x08 draws
            assert np.abs(kept.median_beat - plain.median_beat).max() <= 1e-6, i
        assert kept.row() == plain.row() or abs(kept.rs_diff - plain.rs_diff) <= 1e-6, i
    assert "ok" in statuses


def test_hamilton_detector_equals_neurokit2_on_noisy_leads():
    ref = _x06_reference()
    rng = np.random.default_rng(9)
    checked = 0
    for ecg in _varied_ecgs(21, seed=9):
        lead = ecg[AVL].astype(np.float64) + rng.normal(0, rng.uniform(0, 0.2), ecg.shape[1])
        expected = ref.detect_rpeaks_hamilton(lead)
        assert features.detect_rpeaks_hamilton(lead).tolist() == expected.tolist()
        checked += len(expected)
    assert checked > 200


def test_numpy_mean_of_up_to_eight_values_is_reproduced_bit_for_bit():
    from collections import deque

    from scdecg.hamilton import _mean

    rng = np.random.default_rng(2)
    for n in range(1, 9):
        for _ in range(2000):
            values = deque((float(v) for v in rng.exponential(1, n) * 10.0 ** rng.uniform(-5, 3)),
                           maxlen=8)
            assert _mean(values) == np.mean(values)


def test_lead_modes_by_counting_equal_the_sorted_unique_modes():
    from scdecg.signals import lead_modes

    ref = _x06_reference()
    rng = np.random.default_rng(4)
    for i in range(200):
        x = rng.normal(0, rng.uniform(0.005, 3), (int(rng.integers(1, 13)), int(rng.integers(1, 3000))))
        if i % 3 == 0:
            x = np.round(x, 2)       # many ties
        assert np.array_equal(lead_modes(x), ref.lead_modes(x)), i
    wide = np.array([[0.0, 0.0, 5e6, -5e6, 1.0]])   # too many levels to count: sorted instead
    assert lead_modes(wide).ravel().tolist() == [0.0]


# ------------------------------------------------ edges found by mutation testing (features)
def test_each_failure_names_its_reason_and_the_records_numbers(monkeypatch):
    rng = np.random.default_rng(0)
    good, _ = gaussian_ecg(rng)

    def fail(ecg, **kw):
        out = features.avl_features(ecg, **kw)
        assert out.status == "failed" and np.isnan(out.rs_diff)
        return out.reason, out.detail

    assert fail(good[:, :499]) == ("unexpected ECG shape", "shape (12, 499)")
    assert features.avl_features(good[:, :500]).reason != "unexpected ECG shape"  # 500 is enough
    nan = good.copy()
    nan[3, :7] = np.nan
    assert fail(nan) == ("non-finite samples", "7 NaN/inf samples")
    assert fail(np.zeros((12, 5000))) == ("all-zero ECG", "every sample is 0")
    short = good.copy()
    short[:, 499:] = 0.0                                     # 499 samples, then a missing tail
    assert fail(short) == ("too short before a missing tail", "499 samples")
    flat = good.copy()
    flat[AVL] = 0.01 * np.sin(np.arange(5000) / 50)          # range 0.02 mV < 0.05
    reason, detail = fail(flat, lowpass_hz=0)
    assert reason == "flat aVL lead" and detail == "range 0.0200 mV < 0.05 mV"
    edge = good.astype(np.float64)
    edge[AVL] = np.r_[0.0, np.full(4999, 0.05)]              # exactly the limit: not flat
    assert features.avl_features(edge, lowpass_hz=0).reason != "flat aVL lead"
    slow = gaussian_ecg(rng, hr=20)[0]
    assert fail(slow) == ("too few beats", "2 usable windows from 4 R-peaks; need 3")
    two = features.avl_features(slow, min_beats=2)               # exactly enough
    assert two.status == "ok" and two.n_beats == 2
    with pytest.raises(ValueError, match=r"^unknown R-peak refinement 'x'; known: "
                                         r"published, qrs_centre, none$"):
        features.avl_features(good, refine="x")

    def broken(*args, **kwargs):
        raise RuntimeError("no peaks")

    monkeypatch.setattr(features, "detect_rpeaks_hamilton", broken)
    assert fail(good) == ("R-peak detection failed", "RuntimeError: no peaks")


def test_a_flat_median_beat_fails_with_its_range():
    """A limit between the median beat's aVL range and the whole lead's: the median beat is
    the flat one."""
    rng = np.random.default_rng(1)
    ecg, peaks = gaussian_ecg(rng, noise_mv=0.0)
    out = features.avl_features(ecg, min_avl_range=10.0)      # nothing is that tall
    assert (out.status, out.reason) == ("failed", "flat aVL lead")
    ok = features.avl_features(ecg, keep_median_beat=True)
    assert ok.status == "ok" and ok.median_beat.dtype == np.float32
    assert features.avl_features(ecg).median_beat is None     # kept only when asked
    span = float(np.ptp(ok.median_beat[AVL]))
    # a median beat just below the limit while the lead itself is above it
    lead_span = float(np.ptp(features.lowpass(ecg - np.median(ecg, axis=1, keepdims=True))[AVL]))
    assert span < lead_span
    out = features.avl_features(ecg, min_avl_range=(span + lead_span) / 2)
    assert (out.status, out.reason) == ("failed", "flat aVL median beat")
    assert out.detail == f"range {span:.4f} mV" and out.median_beat is None


def test_lowpass_is_scipy_butterworth_along_time_and_zero_turns_it_off():
    from scipy.signal import butter, sosfiltfilt

    rng = np.random.default_rng(2)
    x = rng.normal(size=(12, 1000))
    expected = sosfiltfilt(butter(4, 40.0, fs=500, output="sos"), x, axis=-1)
    np.testing.assert_allclose(features.lowpass(x), expected)
    np.testing.assert_allclose(features.lowpass(x[3]), expected[3])       # one lead alike
    slow = features.lowpass(x, cutoff_hz=0.5)                              # below 1 Hz: filters
    np.testing.assert_allclose(slow, sosfiltfilt(butter(4, 0.5, fs=500, output="sos"), x))
    assert features.lowpass(x, cutoff_hz=0) is not None
    np.testing.assert_array_equal(features.lowpass(x, cutoff_hz=0), x)


def test_minmax_of_a_short_ramp():
    np.testing.assert_allclose(features.minmax(np.array([2.0, 3.0, 4.0])), [0.0, 0.5, 1.0])


def test_find_r_takes_the_highest_peak_within_centre_plus_minus_60_edges_included():
    def spikes(n=500, **at):
        beat = np.zeros(n)
        for i, h in at.items():
            beat[int(i[1:])] = h
        return beat

    # 190 and 310 are the search's ends; 311 is one beyond it
    assert features.find_r(spikes(s190=0.5, s250=0.3, s311=1.0)) == 190
    assert features.find_r(spikes(s250=0.3, s310=0.5)) == 310
    assert features.find_r(spikes(s1=1.0, s30=0.5), centre=30) == 1        # sample 1 can be R
    assert features.find_r(spikes(s498=1.0, s490=0.5), centre=490) == 498  # and len - 2
    qs = np.zeros(500)                                   # a QS complex with a 0.01 ripple
    qs[240:260] = np.linspace(0, -1, 20)
    qs[259:290] = np.linspace(-1, 0, 31)
    qs[250] = qs[249] + 0.01
    assert features.find_r(qs) is None                   # a ripple is no R wave


def test_find_s_needs_three_samples_below_the_flat_slope_before_the_end():
    d1 = np.full(311, 0.05)
    d1[260:263] = features.FLAT_SLOPE                    # exactly 0.01 is not flat
    d1[270:273] = 0.0
    assert features.find_s(d1, 250) == 270
    d1 = np.full(311, 0.05)
    d1[308:311] = 0.0                                    # a run of 3 ending on the last sample
    assert features.find_s(d1, 250) == 308
    d1[308] = 0.05                                       # a run of 2 at the end: no S
    assert features.find_s(d1, 250) == 311


def test_rs_slopes_at_the_end_of_a_short_beat_and_around_another_centre():
    fall = np.zeros(312)
    fall[200:251] = np.linspace(0, 1, 51)
    fall[250:] = 1 - 0.012 * np.arange(62)               # never flat: S = R + 61 = 311
    out = features.rs_slopes(fall, features.AvlFeatures())
    assert (out.status, out.r_index, out.s_index) == ("ok", 250, 311)   # S on len(d1): fits
    assert out.rs_diff == pytest.approx(0.012)
    past = features.rs_slopes(fall[:300], features.AvlFeatures())
    assert (past.status, past.reason, past.detail) == \
        ("failed", "S search runs past the median beat", "R 250, S 311")
    assert np.isnan(past.rs_diff)
    early = np.zeros(500)
    early[100:151] = np.linspace(0, 1, 51)               # R at 150, a taller peak at 250
    early[150:171] = np.linspace(1, 0, 21)
    early[250] = 2.0
    assert features.rs_slopes(early, features.AvlFeatures(), centre=150).r_index == 150


def test_rs_slopes_failure_details_and_the_second_difference_window():
    qs = np.zeros(500)
    qs[240:260] = np.linspace(0, -1, 20)
    qs[259:290] = np.linspace(-1, 0, 31)
    out = features.rs_slopes(qs, features.AvlFeatures())
    assert out.detail == "no local maximum within ±60 samples of sample 250"
    flat_top = np.zeros(500)
    flat_top[220:251] = np.linspace(0, 1, 31)
    flat_top[251:260] = 1.0 - 0.001 * np.arange(1, 10)
    flat_top[260:280] = np.linspace(flat_top[259], 0, 20)
    out = features.rs_slopes(flat_top, features.AvlFeatures())
    assert out.detail == "R 250, S 251: no second difference"
    # S two samples after R: one second difference, status ok
    two = np.zeros(500)
    two[200:251] = np.linspace(0, 1, 51)
    two[251], two[252] = 0.9, 0.0
    two[253:] = 0.0
    out = features.rs_slopes(two, features.AvlFeatures())
    assert (out.status, out.r_index, out.s_index) == ("ok", 250, 252)
    assert out.rs_diff_2 == pytest.approx(abs((0.0 - 0.9) - (0.9 - 1.0)))
    # a cubic fall: the second differences vary, their mean is over d2[R:S-1]
    beat = np.zeros(500)
    beat[200:251] = np.linspace(0, 1, 51)
    k = np.arange(31)
    beat[250:281] = (1 - k / 30) ** 3
    out = features.rs_slopes(beat, features.AvlFeatures())
    d1, d2 = np.diff(beat), np.diff(beat, n=2)
    s = out.s_index
    assert out.r_index == 250 and 260 < s < 281
    assert out.rs_diff == pytest.approx(np.mean(np.abs(d1[250:s])))
    assert out.rs_diff_2 == pytest.approx(np.mean(np.abs(d2[250:s - 1])))


def exact_ecg(peaks, n: int = 5000) -> np.ndarray:
    """12 equal leads of identical beats on a 1/1024 mV grid: baseline 0 (its mode), R 1 mV."""
    t = np.arange(n)
    x = np.zeros(n)
    for p in peaks:
        x += np.exp(-0.5 * ((t - p) / 6) ** 2) + 0.3 * np.exp(-0.5 * ((t - p - 150) / 30) ** 2)
    return np.repeat(np.round(x * 1024)[None] / 1024, 12, axis=0)


def test_avl_range_limits_are_inclusive_and_one_window_is_enough_when_asked():
    ecg = exact_ecg(range(250, 5000, 500))        # lead and median beat span exactly 1 mV
    out = features.avl_features(ecg, lowpass_hz=0, min_avl_range=1.0)
    assert (out.status, out.r_index, out.n_beats) == ("ok", 250, 8)
    one = features.avl_features(exact_ecg([1000, 2500, 4000]), lowpass_hz=0, min_beats=1)
    assert (one.status, one.n_beats) == ("ok", 1)
    none = features.avl_features(exact_ecg([1500, 3500]), lowpass_hz=0, min_beats=0)
    assert (none.reason, none.detail) == ("too few beats",
                                          "0 usable windows from 2 R-peaks; need 1")


def test_keeping_the_median_beat_measures_avl_not_lead_i():
    gains = LEAD_GAINS.copy()
    gains[0] = -1.0                                  # lead I inverted: no R wave there
    ecg, _ = gaussian_ecg(np.random.default_rng(8), gains=gains)
    plain = features.avl_features(ecg)
    kept = features.avl_features(ecg, keep_median_beat=True)
    assert plain.status == kept.status == "ok"
    assert (kept.r_index, kept.s_index) == (plain.r_index, plain.s_index)
    assert kept.rs_diff == pytest.approx(plain.rs_diff, abs=1e-9)


def test_the_sampling_rate_reaches_the_filter_the_detector_and_the_refinement(monkeypatch):
    import inspect

    seen = []

    def spy(name):
        real = getattr(features, name)

        def call(*args, **kwargs):
            bound = inspect.signature(real).bind(*args, **kwargs)
            bound.apply_defaults()
            seen.append((name, bound.arguments["fs"]))
            return real(*args, **kwargs)
        return call

    for name in ("lowpass", "detect_rpeaks_hamilton", "refine_rpeaks"):
        monkeypatch.setattr(features, name, spy(name))
    features.avl_features(gaussian_ecg(np.random.default_rng(1))[0], fs=400)
    assert seen == [("lowpass", 400), ("detect_rpeaks_hamilton", 400), ("refine_rpeaks", 400)]


def test_minmax_and_the_deflection_search_whatever_the_input_types():
    x = np.random.default_rng(3).normal(size=500).astype(np.float32)
    wide = x.astype(np.float64)
    np.testing.assert_array_equal(features.minmax(x), (wide - wide.min()) / np.ptp(wide))
    lead = np.zeros(2000)
    lead[560], lead[1000] = -1.5, 2.0
    assert features.refine_by_peak_contrast(lead, np.array([480.0, 990.0])).tolist() == [560, 1000]
    empty = features.refine_by_peak_contrast(lead, np.array([], dtype=np.int64))
    assert empty.dtype == np.int64 and len(empty) == 0


def test_lowpass_and_deflection_of_stored_types_work_in_float64():
    x = np.random.default_rng(5).normal(size=(12, 1000)).astype(np.float32)
    np.testing.assert_array_equal(features.lowpass(x), features.lowpass(x.astype(np.float64)))
    lead = np.zeros(1000, dtype=np.int16)
    lead[450], lead[520] = 30000, -32768          # int16's most negative value, in µV
    # computed in float64 (in int16, 30000 - (-32768) would wrap around): the maximum stands
    # 30000 above the baseline, more than 0.85 x the minimum's 32768 below it
    assert features.refine_by_peak_contrast(lead, np.array([500])).tolist() == [450]


def test_x06_stops_when_no_ecg_could_be_measured(tmp_path):
    """Signals stored in millivolts (every aVL 'flat'): x06 exited 0 with every feature NaN,
    and x07 then estimated nothing; now it stops like x03 and x04, leaving the earlier run."""
    rng = np.random.default_rng(4)
    ids = ["e1", "e2"]
    (tmp_path / "10_sec_ecgs").mkdir()
    for sid in ids:
        ecg, _ = gaussian_ecg(rng, hr=70)
        np.save(tmp_path / "10_sec_ecgs" / f"{sid}.npy", (ecg / 1000.0).astype(np.float32))
    pd.DataFrame({"studyId": ids, "scaling_factor": [1000.0, 1000.0]}).to_feather(
        tmp_path / "covariate_df.feather")
    before = (tmp_path / "covariate_df.feather").read_bytes()
    with pytest.raises(PipelineError, match=r"no ECG measured: all 2 failed \(first: 'e1': "
                                            r"failed: .*x06_avl_features.failed.csv"):
        features.measure_cohort(tmp_path / "covariate_df.feather", tmp_path / "10_sec_ecgs",
                                None, tmp_path / "x06_avl_features.csv", n_jobs=1)
    assert (tmp_path / "covariate_df.feather").read_bytes() == before
    assert not (tmp_path / "x06_avl_features.csv").exists()
    assert (tmp_path / "x06_avl_features.failed.csv").is_file()
