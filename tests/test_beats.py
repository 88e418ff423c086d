"""x04/x05: R-peaks, beat windows, the published filters, bad input, the beat files and tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scdecg.beats import (BeatConfig, Exclusion, SegmentTask, check_ecg,
                          detect_rpeaks, extract_windows, mean_autocorrelation,
                          morphing_exclusions, segment_ecg, segment_file, window_filters,
                          write_beats, z_distances)
from scdecg.workspace import beat_files
from scdecg.signals import right_pad, zero_median
from scdecg.synthetic import EcgParams, simulate_ecg

X04 = "00_Data_Preprocessing/x04_segment_beats.py"
X05 = "00_Data_Preprocessing/x05_create_morphing_beats.py"


def gaussian_ecg(peaks, n: int = 5000, amp: float = 1.0, noise: float = 0.01,
                 seed: int = 0) -> np.ndarray:
    """12 leads (mV) of Gaussian QRS and T waves at ``peaks``, lead gains 0.5..1.5."""
    t = np.arange(n)
    wave = np.zeros(n)
    for p in peaks:
        wave += (amp * np.exp(-0.5 * ((t - p) / 6) ** 2)
                 - 0.25 * amp * np.exp(-0.5 * ((t - p - 18) / 5) ** 2)
                 + 0.3 * amp * np.exp(-0.5 * ((t - p - 150) / 30) ** 2))
    rng = np.random.default_rng(seed)
    return (np.linspace(0.5, 1.5, 12)[:, None] * wave
            + rng.normal(0, noise, (12, n))).astype(np.float32)


PEAKS = np.arange(250, 5000, 500)   # 60 bpm, 10 beats


# ------------------------------------------------------------------- detection
def test_detect_rpeaks_finds_simulated_beats():
    rng = np.random.default_rng(3)
    for hr in (45.0, 75.0, 120.0):
        ecg_uv, truth = simulate_ecg(EcgParams(heart_rate=hr), rng, return_rpeaks=True)
        found = detect_rpeaks(ecg_uv[0] / 1000.0)
        inner = truth[(truth > 250) & (truth < 4750)]
        distance = np.abs(inner[:, None] - found[None, :]).min(axis=1)
        assert np.all(distance <= 10), (hr, inner, found)   # 20 ms
        assert len(found) <= len(truth) + 1


def test_detect_rpeaks_on_gaussian_beats():
    found = detect_rpeaks(gaussian_ecg(PEAKS)[0])
    np.testing.assert_allclose(found, PEAKS, atol=3)


# --------------------------------------------------------------------- windows
def test_extract_windows_drops_first_last_and_edge_windows():
    ecg = np.arange(12 * 1000, dtype=np.float32).reshape(12, 1000)
    rpeaks = np.array([50, 120, 300, 500, 850, 950])
    windows, k = extract_windows(ecg, rpeaks, pre=100, post=200)
    # k=0 and k=5 are first/last; r=120 fits ([20, 320)); r=850 crosses the end (1050 > 1000)
    assert k.tolist() == [1, 2, 3]
    assert windows.shape == (3, 12, 300)
    np.testing.assert_array_equal(windows[1], ecg[:, 200:500])


def test_extract_windows_edges_first_as_published():
    """Row 2: windows crossing the edges go first, then the first and last remaining ones."""
    ecg = np.arange(12 * 1000, dtype=np.float32).reshape(12, 1000)
    rpeaks = np.array([50, 120, 300, 500, 850, 950])
    # fitting windows: r=120, 300, 500 (k=1..3); of those the first and last are edge beats
    windows, k = extract_windows(ecg, rpeaks, pre=100, post=200, edges_first=True)
    assert k.tolist() == [2]
    np.testing.assert_array_equal(windows[0], ecg[:, 200:500])
    assert extract_windows(ecg, rpeaks, pre=100, post=200)[1].tolist() == [1, 2, 3]  # x06's rule


def test_second_rpeak_counts_only_strictly_inside_the_window():
    """Row 3: a peak on the window's first sample is not inside it; one just after is."""
    windows = np.zeros((1, 12, 300))
    r = np.array([1000])
    for other, flagged in [(900, False), (901, True), (1199, True), (1200, False)]:
        rpeaks = np.sort(np.array([other, 1000]))
        assert window_filters(windows, r, rpeaks)["multiple_rpeaks"][0] == flagged, other


def test_sd_filter_is_unbiased_and_rounded_to_4_decimals():
    """Row 3: the mean per-lead SD uses ddof 1 and is rounded to 4 decimals before <= 0.06."""
    def alternating(amplitude):          # every lead +-a: biased SD a, unbiased a*sqrt(300/299)
        return np.tile(np.r_[amplitude, -amplitude], 150)[None, None, :].repeat(12, axis=1)

    r = np.array([1000])
    # biased SD 0.05995 (<= 0.06) but unbiased 0.06005 -> 0.0601: kept
    assert not window_filters(alternating(0.05995), r, r)["low_sd"][0]
    # unbiased 0.060004 -> 0.0600 after rounding: rejected although it is above 0.06
    a = 0.060004 / np.sqrt(300 / 299)
    assert alternating(a).std(axis=-1, ddof=1).mean() > 0.06
    assert window_filters(alternating(a), r, r)["low_sd"][0]


def test_mean_autocorrelation_matches_the_formula():
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(3, 12, 300)).cumsum(axis=-1)
    expected = np.empty(3)
    for i, beat in enumerate(windows):
        per_lead = []
        for x in beat - beat.mean(axis=-1, keepdims=True):
            n = len(x)
            denom = np.sum(x * x) / n
            per_lead.append(np.mean([np.sum(x[:n - k] * x[k:]) / (n - k) / denom for k in range(5)]))
        expected[i] = np.mean(per_lead)
    np.testing.assert_allclose(mean_autocorrelation(windows), expected, rtol=1e-12)
    assert mean_autocorrelation(rng.normal(size=(1, 12, 300)))[0] < 0.3      # white noise
    const = windows[:1].copy()
    const[0, 0] = 2.0                                                     # one constant lead
    np.testing.assert_allclose(mean_autocorrelation(const),
                               mean_autocorrelation(windows[:1, 1:]), rtol=1e-12)
    assert np.isnan(mean_autocorrelation(np.ones((1, 12, 300))))[0]


def test_each_window_filter_rejects_what_it_should():
    ecg = gaussian_ecg(PEAKS)
    windows, k = extract_windows(ecg, PEAKS)
    base = {name: int(m.sum()) for name, m in window_filters(windows, PEAKS[k], PEAKS).items()}
    assert base == dict.fromkeys(base, 0)

    extra = np.sort(np.append(PEAKS, PEAKS[3] + 120))       # a second R-peak inside window 3
    masks = window_filters(windows, PEAKS[k], extra)
    assert np.flatnonzero(masks["multiple_rpeaks"]).tolist() == [2]  # window of k=3 (and k=2 no)

    small = gaussian_ecg(PEAKS, amp=0.2, noise=0.002)
    w_small, _ = extract_windows(small, PEAKS)
    masks = window_filters(w_small, PEAKS[k], PEAKS)
    assert masks["low_amplitude"].all() and masks["low_sd"].all() and not masks["low_autocorr"].any()

    # SD alone: a large but brief spike keeps the range above 0.5 mV, the SD below 0.06 mV
    spiky = np.zeros((1, 12, 300))
    spiky[0, :, 100] = 0.6      # SD = 0.6 / sqrt(300) ~ 0.035 mV
    assert window_filters(spiky, np.array([1000]), np.array([1000]))["low_sd"].all()
    assert not window_filters(spiky, np.array([1000]), np.array([1000]))["low_amplitude"].any()

    noisy = np.random.default_rng(1).normal(0, 1.0, (2, 12, 300))
    masks = window_filters(noisy, np.array([1000, 2000]), np.array([1000, 2000]))
    assert masks["low_autocorr"].all() and not masks["low_sd"].any()


# ----------------------------------------------------------------- one ECG
def test_segment_ecg_keeps_interior_beats():
    seg = segment_ecg(gaussian_ecg(PEAKS))
    assert seg.status == "ok" and seg.reason == ""
    assert seg.beat_index.tolist() == list(range(1, 9))
    assert seg.beats.shape == (8, 12, 300) and seg.beats.dtype == np.float32
    assert seg.n_windows == 8 and seg.n_kept == 8
    np.testing.assert_allclose(np.argmax(seg.beats[:, 0], axis=1), 100, atol=3)  # R at sample 100


def test_each_lead_median_is_removed_before_beats_are_cut():
    """Row 1: per-lead median removal by default; --no-zero-median keeps the offsets."""
    offsets = np.linspace(-1.0, 1.0, 12)[:, None].astype(np.float32)     # mV
    ecg = gaussian_ecg(PEAKS) + offsets
    seg = segment_ecg(ecg)
    expected = ecg - np.median(ecg, axis=1, keepdims=True)
    for beat, k in zip(seg.beats, seg.beat_index):
        r = seg.rpeaks[k]
        np.testing.assert_allclose(beat, expected[:, r - 100:r + 200], atol=1e-5)
    raw = segment_ecg(ecg, BeatConfig(zero_median=False))
    assert raw.beat_index.tolist() == seg.beat_index.tolist()
    np.testing.assert_allclose(raw.beats - seg.beats,
                               np.broadcast_to(np.median(ecg, axis=1)[None, :, None], seg.beats.shape),
                               atol=1e-5)
    assert abs(np.median(raw.beats[:, -1]) - 1.0) < 0.05      # V6 keeps its +1 mV offset


def test_published_tail_cut_zero_pads_and_takes_the_median_with_the_pad():
    """Row 1 switch: --tail-cut 500 zeroes the last 500 samples, then removes the medians."""
    offsets = np.linspace(-1.0, 1.0, 12)[:, None].astype(np.float32)
    ecg = gaussian_ecg(PEAKS) + offsets
    seg = segment_ecg(ecg, BeatConfig(tail_cut=500))
    padded = right_pad(ecg[:, :4500], 5000)
    expected = padded - np.median(padded, axis=1, keepdims=True)
    assert seg.status == "ok" and seg.reason == ""            # the pad is not a "missing tail"
    assert not np.any(np.abs(seg.rpeaks - 4750) < 50)        # the last beat is cut away ...
    assert np.any(np.abs(seg.rpeaks - 4500) < 20)            # ... and the step is taken for one
    for beat, k in zip(seg.beats, seg.beat_index):
        r = seg.rpeaks[k]
        np.testing.assert_allclose(beat, expected[:, r - 100:r + 200], atol=1e-5)
    assert seg.rpeaks[seg.beat_index].max() == 4250           # beats end before the pad
    # the median with the pad included differs from the recording's own median
    assert not np.allclose(np.median(padded, axis=1), np.median(ecg, axis=1), atol=1e-3)


def test_beat_files_are_numbered_among_kept_beats(tmp_path):
    """Row 19: a rejected beat leaves no gap in the file numbers; files follow time order."""
    ecg = gaussian_ecg(PEAKS)
    ecg[:, 1300:1700] = np.random.default_rng(5).normal(0, 0.8, (12, 400))  # spoil beat 3
    np.save(tmp_path / "e1.npy", ecg * 1000.0)
    seg = segment_ecg(ecg)
    assert 3 not in seg.beat_index.tolist() and seg.n_kept >= 5
    segment_file(SegmentTask("e1", str(tmp_path / "e1.npy"), 1000.0), str(tmp_path / "beats"))
    files = beat_files(tmp_path / "beats" / "e1")
    assert [k for k, _ in files] == list(range(seg.n_kept))
    for (_, path), beat in zip(files, seg.beats):
        np.testing.assert_allclose(np.load(path), beat, atol=1e-4)


@pytest.mark.parametrize("make,status,category", [
    (lambda: np.zeros((12, 5000), np.float32), "failed", "flat signal"),
    (lambda: gaussian_ecg(PEAKS) * np.r_[0.0, np.ones(11)][:, None], "failed", "flat signal"),
    (lambda: gaussian_ecg(PEAKS) * np.r_[np.ones(6), 0.0, np.ones(5)][:, None], "failed",
     "flat signal"),                                                    # V1 disconnected
    (lambda: np.clip(gaussian_ecg(PEAKS), -0.05, 0.05), "failed", "saturated signal"),
    (lambda: np.clip(gaussian_ecg(PEAKS), -2, 0.9), "failed", "saturated signal"),  # R tops clipped
    (lambda: np.where(np.arange(5000) == 7, np.nan, gaussian_ecg(PEAKS)), "failed", "contains NaN"),
    (lambda: gaussian_ecg(PEAKS)[:, :4000], "failed", "wrong shape"),
    (lambda: gaussian_ecg(PEAKS)[:6], "failed", "wrong shape"),
    (lambda: gaussian_ecg([1500, 3500], noise=0.0), "no_beats", "fewer than 3 R-peaks"),
    (lambda: gaussian_ecg(PEAKS, amp=0.2, noise=0.002), "no_beats", "all windows rejected"),
])
def test_segment_ecg_bad_input_gets_a_reason(make, status, category):
    seg = segment_ecg(make())
    assert seg.status == status
    assert seg.reason.split(":")[0] == category, seg.reason
    assert seg.n_kept == 0 and seg.beats.shape[0] == 0


def test_segment_ecg_without_room_for_windows():
    seg = segment_ecg(gaussian_ecg(PEAKS), BeatConfig(pre=2400, post=2700))
    assert seg.status == "no_beats" and seg.reason.startswith("no window fits")
    assert len(seg.rpeaks) == 10 and seg.n_windows == 0


def test_check_ecg_accepts_a_normal_ecg():
    assert check_ecg(gaussian_ecg(PEAKS)) is None
    one_flat_top = gaussian_ecg(PEAKS)
    one_flat_top[:, 2248:2253] = one_flat_top[:, 2248:2253].max(axis=1, keepdims=True)
    assert check_ecg(one_flat_top) is None          # one broad peak is not clipping


def test_missing_tail_is_outside_the_recording():
    ecg = gaussian_ecg(PEAKS)
    ecg[:, 3000:] = 0.0
    seg = segment_ecg(ecg)
    assert seg.status == "ok" and seg.reason == "missing tail: all leads zero from sample 3000"
    assert seg.beat_index.tolist() == [1, 2, 3, 4]     # 2750 is now the last R-peak
    assert len(seg.rpeaks) == 6


# ------------------------------------------------------------------ files
def test_segment_file_writes_beats_and_replaces_stale_ones(tmp_path):
    np.save(tmp_path / "e1.npy", gaussian_ecg(PEAKS) * 1000.0)   # µV as x03 writes
    stale = tmp_path / "beats" / "e1"
    stale.mkdir(parents=True)
    (stale / "e1_99.npy").write_bytes(b"old")
    row = segment_file(SegmentTask("e1", str(tmp_path / "e1.npy"), 1000.0), str(tmp_path / "beats"))
    assert row["status"] == "ok" and row["n_kept"] == 8 and row["n_rpeaks"] == 10
    assert [k for k, _ in beat_files(stale)] == list(range(8))   # numbered among kept beats
    beat = np.load(stale / "e1_4.npy")
    assert beat.dtype == np.float32 and beat.shape == (12, 300)
    r = detect_rpeaks(gaussian_ecg(PEAKS)[0])[5]           # beat 4 is R-peak 5 (peak 0 dropped)
    centred = zero_median(gaussian_ecg(PEAKS))
    np.testing.assert_allclose(beat, centred[:, r - 100:r + 200], atol=1e-4)  # mV

    row = segment_file(SegmentTask("e1", str(tmp_path / "nope.npy"), 1000.0), str(tmp_path / "beats"))
    assert row["status"] == "failed" and row["reason"].startswith("missing 10_sec_ecgs file:")
    assert not stale.exists()                      # a failed ECG leaves no beats behind
    assert list((tmp_path / "beats").iterdir()) == []


def test_write_beats_keeps_k_in_file_names(tmp_path):
    beats = np.zeros((2, 12, 300), np.float32)
    write_beats(tmp_path / "s", "s", beats, np.array([3, 7]))
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["s_3.npy", "s_7.npy"]


# ------------------------------------------------------------- x05 pieces
def test_exclusion_rules_and_published_order():
    values = pd.Series([25.0, 30.0, 90.0, 95.0, np.nan])
    assert Exclusion("hr", "hr", "within", 30, 90).excluded(values).tolist() == [True, False, False, True, True]
    assert Exclusion("x", "x", "above", 90).excluded(values).tolist() == [False, False, False, True, False]
    assert Exclusion("x", "x", "below", 30).excluded(values).tolist() == [True, False, False, False, False]
    flags = pd.Series([True, False, None, 1.0, 0.0], dtype=object)
    assert Exclusion("f", "f", "true").excluded(flags).tolist() == [True, False, False, True, False]
    steps = [s.column for s in morphing_exclusions()]
    assert steps[:3] == ["heartRate", "age", "most_recent_ef"]
    assert "lbbb" in steps and "dltwv" in steps and "LBBB" not in steps
    assert steps.index("lbbb") < steps.index("antiarr") < steps.index("dltwv")
    published = [s.column for s in morphing_exclusions(real_flags=False)]
    assert "LBBB" in published and "deltawave" in published and "lbbb" not in published
    assert steps[-1] == "rrInterval" and len(steps) == 29


def test_missing_qtc_or_rr_keeps_the_ecg_as_published():
    """Row 4: a missing QTcB, QTcF or RR is no abnormal flag (kept); heart rate and age are
    range filters (missing excluded); --exclude-missing-intervals excludes the former too."""
    df = pd.DataFrame({"heartRate": [np.nan, 60.0], "age": [50.0, np.nan],
                       "qtcb": [np.nan, 500.0], "qtcf": [np.nan, 400.0],
                       "rrInterval": [np.nan, 1000.0]})
    published = {s.column: s.excluded(df[s.column]).tolist() for s in morphing_exclusions()
                 if s.rule == "within"}
    assert published == {"heartRate": [True, False], "age": [False, True],
                         "qtcb": [False, True], "qtcf": [False, False],
                         "rrInterval": [False, False]}
    strict = {s.column: s.excluded(df[s.column]).tolist()
              for s in morphing_exclusions(exclude_missing_intervals=True) if s.rule == "within"}
    assert strict["qtcb"] == [True, True] and strict["qtcf"] == [True, False]
    assert strict["rrInterval"] == [True, False] and strict["heartRate"] == [True, False]


def test_z_distance_is_the_frobenius_norm_of_z_scores():
    median = np.zeros((12, 300))
    sd = np.full((12, 300), 2.0)
    beats = np.ones((2, 12, 300))
    beats[1] *= 4
    np.testing.assert_allclose(z_distances(beats, median, sd), [0.5 * 60, 2.0 * 60])


# ------------------------------------------------------------- the scripts
def cohort_for_x05(ids, **overrides) -> pd.DataFrame:
    """A cohort table whose every ECG passes the morphing exclusions (unless overridden)."""
    df = pd.DataFrame({"studyId": ids, "scaling_factor": 1000.0})
    for step in morphing_exclusions() + morphing_exclusions(real_flags=False):
        if step.column not in df:
            df[step.column] = False if step.rule == "true" else np.nan
    df = df.assign(heartRate=60.0, age=50.0, most_recent_ef=55.0, pDuration=100.0,
                   qrsDuration=90.0, qtcb=400.0, qtcf=400.0, rrInterval=1000.0)
    return df.assign(**overrides)


def test_x04_and_x05_scripts_on_a_small_workspace(tmp_path, script_runner):
    ids = ["a", "b", "c", "d", "odd", "flat", "gone"]
    ecgs = tmp_path / "10_sec_ecgs"
    ecgs.mkdir()
    for i, sid in enumerate(ids[:4]):
        np.save(ecgs / f"{sid}.npy", gaussian_ecg(PEAKS + 7 * i, seed=i) * 1000.0)
    odd = gaussian_ecg(PEAKS, seed=9) * 1000.0
    odd[:, 3170:3290] += 3000.0                     # a 3 mV step in one beat only
    np.save(ecgs / "odd.npy", odd)
    np.save(ecgs / "flat.npy", np.zeros((12, 5000), np.float32))
    cohort_for_x05(ids, age=[50.0, 50.0, 50.0, 85.0, 50.0, 50.0, 50.0],
                   lbbb=[False, True, False, False, False, False, False]
                   ).to_feather(tmp_path / "covariate_df.feather")
    (tmp_path / "ecg_beats" / "removed_study").mkdir(parents=True)   # an earlier run's
    (tmp_path / "ecg_beats" / "segmentation_log.csv").write_text("studyId\nremoved_study\n")

    proc = script_runner(X04, "--n-jobs", "1", cwd=tmp_path)
    assert "1  failed: flat signal" in proc.stdout and "1  failed: missing 10_sec_ecgs file" in proc.stdout
    log = pd.read_csv(tmp_path / "ecg_beats" / "segmentation_log.csv").set_index("studyId")
    assert log.index.tolist() == ids
    assert log.loc[["a", "b", "c", "d", "odd"], "n_kept"].tolist() == [8, 8, 8, 8, 8]
    assert log.loc["flat", "reason"] == "flat signal: all zeros"
    assert (log.loc[["flat", "gone"], "status"] == "failed").all()
    assert sorted(p.name for p in (tmp_path / "ecg_beats").iterdir()) == \
        ["a", "b", "c", "d", "odd", "segmentation_log.csv"]      # stale folder removed

    script_runner(X05, "--n-jobs", "1", cwd=tmp_path)
    out = tmp_path / "ecg_beats_morphing"
    waterfall = pd.read_csv(out / "x05_waterfall_table_results.csv").set_index("step")
    assert waterfall.iloc[0].tolist()[:2] == [7, 40]
    assert waterfall.loc["exclude age outside 18-80", "ecgs"] == 6         # d is 85
    assert waterfall.loc["exclude age outside 18-80", "beats"] == 32
    assert waterfall.loc["exclude lbbb", ["ecgs", "beats"]].tolist() == [5, 24]  # the real flag
    assert waterfall.loc["ECGs with at least one beat", ["ecgs", "beats"]].tolist() == [3, 24]
    last = waterfall.iloc[-1]
    assert last.name.startswith("exclude beats with z-distance") and last["beats"] == 23
    distances = pd.read_csv(out / "x05_beat_distances.csv")
    assert distances.loc[~distances["kept"], "beat_file"].tolist() == ["odd_5.npy"]  # R-peak 6 is kept beat 5
    assert distances.loc[~distances["kept"], "z_distance"].iloc[0] > 100
    files = sorted(p.name for p in out.glob("*/*.npy"))
    assert len(files) == 23 and "odd_5.npy" not in files and not any(f.startswith("b_") for f in files)
    assert np.load(out / "median_beat.npy").shape == (12, 300)

    # the published placeholders instead of the real flags keep b
    script_runner(X05, "--n-jobs", "1", "--no-real-flags", cwd=tmp_path)
    waterfall = pd.read_csv(out / "x05_waterfall_table_results.csv")
    assert waterfall["beats"].iloc[-1] == 31 and (out / "b").is_dir()
    # and --max-z-distance inf, the published x05 that never applied its distance, keeps odd_5
    script_runner(X05, "--n-jobs", "1", "--no-real-flags", "--max-z-distance", "inf", cwd=tmp_path)
    waterfall = pd.read_csv(out / "x05_waterfall_table_results.csv")
    assert waterfall["step"].iloc[-1] == "exclude beats with z-distance > inf"
    assert waterfall["beats"].iloc[-1] == waterfall["beats"].iloc[-2] == 32
    assert (out / "odd" / "odd_5.npy").is_file()
    # a distance no beat meets keeps that beat set instead of emptying it
    before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = script_runner(X05, "--n-jobs", "1", "--no-real-flags", "--max-z-distance", "1",
                         cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert ("ecg_beats_morphing/: no beat lies within z-distance 1 of the median beat (all 32 "
            "beats of 4 ECGs dropped; smallest ") in proc.stderr
    assert ("ecg_beats_morphing/ left as it was; every beat's distance in "
            "ecg_beats_morphing/x05_beat_distances.failed.csv") in proc.stderr
    failed = out / "x05_beat_distances.failed.csv"
    assert len(pd.read_csv(failed)) == 32
    failed.unlink()
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # a second x05 while one writes the folder stops at once (it took no lock: the two mixed
    # their beats, and the second removed the first one's temporaries)
    from scdecg.io import folder_lock

    with folder_lock(out, "x05"):
        proc = script_runner(X05, "--n-jobs", "1", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: ecg_beats_morphing: another run is writing this folder (lock "
        ".ecg_beats_morphing.lock is held); wait for it to finish before running x05")
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_x05_needs_x04(tmp_path, script_runner):
    cohort_for_x05(["a"]).to_feather(tmp_path / "covariate_df.feather")
    proc = script_runner(X05, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "segmentation_log.csv: file not found" in proc.stderr


def test_x04_on_synthetic_study(pipeline):
    ws = pipeline.ensure("x04")
    cohort = pd.read_feather(ws / "covariate_df.feather")
    log = pd.read_csv(ws / "ecg_beats" / "segmentation_log.csv", dtype={"studyId": str})
    assert log["studyId"].tolist() == cohort["studyId"].astype(str).tolist()
    assert set(log["status"]) <= {"ok", "no_beats", "failed"}
    assert (log["status"] == "ok").mean() > 0.85
    assert (log.loc[log["status"] != "ok", "reason"].str.len() > 0).all()
    assert (log["n_kept"] <= log["n_windows"]).all() and (log["n_windows"] <= log["n_rpeaks"]).all()
    truth = pd.read_csv(ws / "arrest-ntuh-ecg" / "synthetic_truth.csv", dtype={"ecg_id": str})
    fault = truth.set_index("ecg_id")["fault"].fillna("").reindex(log["studyId"]).to_numpy()
    category = log["reason"].fillna("").str.split(":").str[0].to_numpy()
    # an ECG x03 could not resolve (a flat derived lead has no gain) is not segmented
    assert np.isin(category[fault == "flat_lead"], ["flat signal", "x03 unresolved"]).all()
    assert np.isin(category[fault == "saturation"], ["saturated signal", "x03 unresolved"]).all()
    assert log["reason"].fillna("")[fault == "missing_tail"].str.contains("missing tail").all()
    assert not np.isin(category[fault == ""], ["flat signal", "saturated signal"]).any()
    sample = log[log["status"] == "ok"].head(20)
    for sid, n_kept in zip(sample["studyId"], sample["n_kept"]):
        files = beat_files(ws / "ecg_beats" / sid)
        assert len(files) == n_kept
        beat = np.load(files[0][1])
        assert beat.dtype == np.float32 and beat.shape == (12, 300)
        assert 0.2 < np.ptp(beat[0]) < 10          # millivolts, not microvolts


def test_x05_on_synthetic_study(pipeline):
    ws = pipeline.ensure("x05")
    waterfall = pd.read_csv(ws / "ecg_beats_morphing" / "x05_waterfall_table_results.csv")
    assert list(waterfall.columns[:3]) == ["step", "ecgs", "beats"]
    assert waterfall["ecgs"].is_monotonic_decreasing and waterfall["beats"].is_monotonic_decreasing
    log = pd.read_csv(ws / "ecg_beats" / "segmentation_log.csv")
    assert waterfall["beats"].iloc[0] == log["n_kept"].sum()
    files = list((ws / "ecg_beats_morphing").glob("*/*.npy"))
    assert len(files) == waterfall["beats"].iloc[-1] > 0
    assert len({f.parent.name for f in files}) == waterfall["ecgs"].iloc[-1]


def test_write_beats_replaces_changed_folders_and_skips_identical_ones(tmp_path):
    beats = np.random.default_rng(0).normal(size=(2, 12, 300)).astype(np.float32)
    folder = tmp_path / "s"
    write_beats(folder, "s", beats, np.array([1, 2]))
    stamp = folder.stat().st_ino
    write_beats(folder, "s", beats, np.array([1, 2]))          # identical: untouched
    assert folder.stat().st_ino == stamp
    write_beats(folder, "s", beats[:1] + 1, np.array([1]))     # changed: replaced whole
    assert folder.stat().st_ino != stamp
    assert [p.name for p in folder.iterdir()] == ["s_1.npy"]
    np.testing.assert_array_equal(np.load(folder / "s_1.npy"), beats[0] + 1)
    write_beats(folder, "s", beats[:0], np.array([], dtype=int))
    assert not folder.exists()


def test_remove_stale_dirs_only_touches_beat_folders(tmp_path):
    from scdecg.beats import remove_stale_dirs

    for name, files in {"keep": ["keep_1.npy"], "old": ["old_1.npy", "old_2.npy"],
                        ".x.abc.tmp": ["x_1.npy"], "data": ["table.csv"], "empty": []}.items():
        (tmp_path / name).mkdir()
        for f in files:
            (tmp_path / name / f).write_bytes(b"")
    assert remove_stale_dirs(tmp_path, {"keep"}) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "keep"]


def test_x04_published_loader_options(tmp_path, script_runner):
    """Row 1 switch on the command line: --tail-cut 500 reproduces the published loader."""
    ecg = gaussian_ecg(PEAKS) + np.linspace(-1.0, 1.0, 12)[:, None].astype(np.float32)
    (tmp_path / "10_sec_ecgs").mkdir()
    np.save(tmp_path / "10_sec_ecgs" / "e1.npy", ecg * 1000.0)
    pd.DataFrame({"studyId": ["e1"], "scaling_factor": [1000.0]}).to_feather(
        tmp_path / "covariate_df.feather")
    script_runner(X04, "--n-jobs", "1", "--tail-cut", "500", cwd=tmp_path)
    expected = segment_ecg(ecg, BeatConfig(tail_cut=500))
    files = beat_files(tmp_path / "ecg_beats" / "e1")
    assert len(files) == expected.n_kept
    np.testing.assert_allclose(np.stack([np.load(p) for _, p in files]), expected.beats, atol=1e-4)
    proc = script_runner(X04, "--tail-cut", "5000", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "--tail-cut 5000" in proc.stderr


# ------------------------------------------------ edges found by mutation testing (beats)
def test_the_morphing_exclusions_are_the_published_table():
    """Every step of x05's ECG-level exclusions, in order, with its column, rule and limits
    (the thresholds are the science: a changed one changes the morphing beat set)."""
    nan = float("nan")
    flags = ["VTVF", "ICD_VT", "ICD_VF", "Phi_VT", "ST_elevation", "ST_depression", "qtc500",
             "lbbb", "antiarr", "dltwv", "CHF_Cardiomyopathy", "Hypertension", "CAD",
             "Diabetes", "Hyperlipidemia", "TROPT40", "Acute_MI", "Old_MI"]
    expected = ([("heart rate outside 30-90", "heartRate", "within", 30, 90, True),
                 ("age outside 18-80", "age", "within", 18, 80, True),
                 ("most_recent_ef < 35", "most_recent_ef", "below", 35, nan, True)]
                + [(f, f, "true", nan, nan, True) for f in flags]
                + [("heartRate > 120", "heartRate", "above", 120, nan, True),
                   ("pDuration > 120", "pDuration", "above", 120, nan, True),
                   ("pDuration < 20", "pDuration", "below", 20, nan, True),
                   ("qrsDuration > 120", "qrsDuration", "above", 120, nan, True),
                   ("qrsDuration < 20", "qrsDuration", "below", 20, nan, True),
                   ("qtcb outside 350-450", "qtcb", "within", 350, 450, False),
                   ("qtcf outside 350-450", "qtcf", "within", 350, 450, False),
                   ("rrInterval outside 350-1500", "rrInterval", "within", 350, 1500, False)])

    def rows(steps):
        return [(s.step, s.column, s.rule, s.low, s.high, s.missing_excluded) for s in steps]

    def same(a, b):
        return len(a) == len(b) and all(
            x[:3] == y[:3] and x[5] == y[5] and all(
                (np.isnan(u) and np.isnan(v)) or u == v for u, v in zip(x[3:5], y[3:5]))
            for x, y in zip(a, b))

    assert same(rows(morphing_exclusions()), expected), rows(morphing_exclusions())
    published = [("LBBB", "LBBB", *r[2:]) if r[1] == "lbbb" else
                 ("deltawave", "deltawave", *r[2:]) if r[1] == "dltwv" else r for r in expected]
    assert same(rows(morphing_exclusions(real_flags=False)), published)
    strict = [r[:5] + (True,) for r in expected]
    assert same(rows(morphing_exclusions(exclude_missing_intervals=True)), strict)


def test_exclusion_masks_are_boolean_and_an_unknown_rule_is_named():
    flags = pd.Series([True, None, 0.0], dtype=object)
    mask = Exclusion("f", "f", "true").excluded(flags)
    assert mask.dtype == bool and mask.tolist() == [True, False, False]
    numbers = pd.Series(["95", "oops", None], dtype=object)      # text read as numbers
    assert Exclusion("x", "x", "above", 90).excluded(numbers).tolist() == [True, False, False]
    with pytest.raises(ValueError, match=r"^unknown exclusion rule 'between'$"):
        Exclusion("x", "x", "between", 1, 2).excluded(numbers)


def test_recorded_length_at_the_missing_tail_limit():
    from scdecg.beats import MIN_TAIL_ZEROS, recorded_length

    ecg = np.ones((12, 1000))
    assert recorded_length(np.zeros((12, 1000))) == 0
    ecg[:, 1000 - MIN_TAIL_ZEROS:] = 0                 # exactly the limit: a missing tail
    assert recorded_length(ecg) == 1000 - MIN_TAIL_ZEROS
    ecg[:, 1000 - MIN_TAIL_ZEROS] = 1                  # one sample short of it: recorded
    assert recorded_length(ecg) == 1000
    ecg[3, :] = 0                                      # one lead still non-zero is enough
    assert recorded_length(ecg) == 1000


def test_clipping_needs_three_runs_at_the_extreme_and_one_percent():
    from scdecg.beats import clipped_fraction

    lead = np.sin(np.linspace(0, 20, 1000))
    for n_runs, expected in ((2, 0.0), (3, 0.03)):
        clipped = lead.copy()
        for r in range(n_runs):
            clipped[100 + 300 * r:110 + 300 * r] = 5.0     # runs of 10 samples at the max
        assert clipped_fraction(clipped) == pytest.approx(expected)
    clipped = lead.copy()
    clipped[0] = 5.0                                     # a one-sample run at the start counts
    clipped[400:410] = clipped[800:810] = 5.0
    assert clipped_fraction(clipped) == pytest.approx(0.021)
    clipped = lead.copy()
    clipped[[100, 102, 104]] = -5.0                      # three single-sample runs at the min
    assert clipped_fraction(clipped) == pytest.approx(0.003)


def test_flat_and_saturated_limits_are_inclusive_as_documented():
    from scdecg.beats import FLAT_PTP_MV, SATURATION_FRACTION

    ecg = gaussian_ecg(PEAKS)
    n = ecg.shape[1]
    flat = ecg.copy()
    flat[2] = np.r_[0.0, np.full(n - 1, FLAT_PTP_MV)]        # range exactly the limit: kept
    assert check_ecg(flat) is None
    flat[2, 0] = FLAT_PTP_MV * 0.01                          # just under it: flat
    assert check_ecg(flat).startswith("flat signal: lead III range")
    sat = ecg.copy()
    top = sat[5].max() + 1.0
    k = int(round(SATURATION_FRACTION * n))                  # exactly 1% in three runs
    for start, size in zip((500, 2000, 3500), (k - 2 * (k // 3), k // 3, k // 3)):
        sat[5, start:start + size] = top
    assert check_ecg(sat).startswith("saturated signal: lead aVF pinned")


def test_flat_and_clipped_checks_can_be_turned_off_as_published(tmp_path, script_runner):
    """DEVIATIONS "ECG-level checks before segmentation": x04 --min-lead-range 0
    --max-clipped-fraction inf segments flat-lead and clipped ECGs as the published code did."""
    from scdecg.beats import FLAT_PTP_MV

    ecg = gaussian_ecg(PEAKS)
    flat = ecg.copy()
    flat[2] = 0.5 * FLAT_PTP_MV                                  # lead III dead
    sat = ecg.copy()
    sat[5] = np.minimum(sat[5], np.quantile(sat[5], 0.97))       # aVF clipped at its top 3%
    assert check_ecg(flat).startswith("flat signal") and check_ecg(sat).startswith("saturated")
    assert check_ecg(flat, min_lead_range=0.0) is None
    assert check_ecg(sat, max_clipped=float("inf")) is None
    published = BeatConfig(min_lead_range=0.0, max_clipped=float("inf"))
    assert segment_ecg(flat).status == "failed"
    assert segment_ecg(flat, published).beat_index.tolist() == segment_ecg(ecg).beat_index.tolist()

    (tmp_path / "10_sec_ecgs").mkdir()
    for sid, x in (("flat", flat), ("sat", sat)):
        np.save(tmp_path / "10_sec_ecgs" / f"{sid}.npy", (x * 1000.0).astype(np.float32))
    cohort_for_x05(["flat", "sat"]).to_feather(tmp_path / "covariate_df.feather")
    script_runner(X04, "--n-jobs", "1", cwd=tmp_path, check=False)   # nothing segmented: exit 2
    log = pd.read_csv(tmp_path / "ecg_beats" / "segmentation_log.failed.csv").set_index("studyId")
    assert (log["status"] == "failed").all()
    script_runner(X04, "--n-jobs", "1", "--min-lead-range", "0", "--max-clipped-fraction", "inf",
                  cwd=tmp_path)
    log = pd.read_csv(tmp_path / "ecg_beats" / "segmentation_log.csv").set_index("studyId")
    assert (log["status"] == "ok").all() and log.loc["flat", "n_kept"] == 8
    assert not (tmp_path / "ecg_beats" / "segmentation_log.failed.csv").exists()


def test_x04_where_no_ecg_gives_a_beat_keeps_the_earlier_beats(tmp_path):
    """x04 pointed at the wrong 10-s folder fails every ECG: it used to remove every earlier
    beat folder and overwrite the log, then stop."""
    from training_fixtures import run_main

    ecgs = tmp_path / "10_sec_ecgs"
    ecgs.mkdir()
    for i, sid in enumerate(["a", "b"]):
        np.save(ecgs / f"{sid}.npy", gaussian_ecg(PEAKS + 7 * i, seed=i) * 1000.0)
    cohort_for_x05(["a", "b"]).to_feather(tmp_path / "covariate_df.feather")
    assert run_main(X04, "--n-jobs", "1", cwd=tmp_path)[0] == 0
    beats_dir = tmp_path / "ecg_beats"

    def snapshot():
        return {str(p.relative_to(beats_dir)): p.read_bytes()
                for p in sorted(beats_dir.rglob("*")) if p.is_file()}

    before = snapshot()
    assert len(before) == 17 and "a/a_7.npy" in before   # 8 + 8 beats and the log
    (tmp_path / "empty").mkdir()
    code, _, err = run_main(X04, "--n-jobs", "1", "--ecg-dir", "empty", cwd=tmp_path)
    assert code == 2
    assert err.splitlines()[-1] == (
        "error: empty: no ECG gave a beat (all 2 failed; first: 'a': failed: missing "
        "10_sec_ecgs file: empty/a.npy); ecg_beats/ left as it was; per-ECG reasons in "
        "ecg_beats/segmentation_log.failed.csv")
    failed = pd.read_csv(beats_dir / "segmentation_log.failed.csv")
    assert failed["studyId"].tolist() == ["a", "b"] and (failed["status"] == "failed").all()
    (beats_dir / "segmentation_log.failed.csv").unlink()
    assert snapshot() == before


def test_z_distance_measures_from_the_median():
    median = np.full((12, 300), 3.0)
    beats = np.full((1, 12, 300), 5.0)
    np.testing.assert_allclose(z_distances(beats, median, np.ones((12, 300))), [2.0 * 60])


def test_segment_ecg_drops_edge_windows_first_then_the_first_and_last_as_published():
    seg = segment_ecg(gaussian_ecg(PEAKS), BeatConfig(pre=300))   # R at 250: crosses the start
    assert len(seg.rpeaks) == 10
    # edges first: 250 goes, then the first and last remaining (750, 4750); the other order
    # would drop 250 and 4750 and keep 750
    assert seg.beat_index.tolist() == list(range(2, 9)) and seg.n_windows == 7


def test_segment_ecg_passes_its_config_on():
    ecg = gaussian_ecg(PEAKS)
    seg = segment_ecg(ecg, BeatConfig(min_mean_ptp=100.0))        # the filters get the config
    assert seg.status == "no_beats" and seg.rejected["low_amplitude"] == 8
    short = segment_ecg(ecg[:, :4000], BeatConfig(n_samples=4000))  # and so does check_ecg
    assert short.status == "ok" and short.n_kept == 6


def test_segment_ecg_with_exactly_three_rpeaks_keeps_the_middle_beat():
    seg = segment_ecg(gaussian_ecg([1000, 2500, 4000], noise=0.0))
    assert len(seg.rpeaks) == 3 and seg.status == "ok" and seg.beat_index.tolist() == [1]


def test_a_failing_rpeak_detector_is_a_failed_ecg_with_its_error_and_the_tail_note(monkeypatch):
    from scdecg import beats

    def boom(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(beats, "detect_rpeaks", boom)
    ecg = gaussian_ecg(PEAKS)
    ecg[:, 4000:] = 0.0
    seg = segment_ecg(ecg)
    assert seg.status == "failed" and len(seg.rpeaks) == 0
    assert seg.reason == ("R-peak detection failed: ValueError boom "
                          "(missing tail: all leads zero from sample 4000)")
    assert segment_ecg(gaussian_ecg(PEAKS)).reason == "R-peak detection failed: ValueError boom"


def test_extract_windows_keeps_windows_that_touch_the_edges():
    """A window may start on sample 0 and end on the last sample; only the first and last
    R-peaks are dropped (x06's order), and no R-peaks (or float positions) are fine."""
    ecg = np.arange(12 * 1000, dtype=np.float32).reshape(12, 1000)
    windows, k = extract_windows(ecg, np.array([50, 100, 400, 800, 950]), pre=100, post=200)
    assert k.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(windows[0], ecg[:, 0:300])
    np.testing.assert_array_equal(windows[2], ecg[:, 700:1000])
    windows, k = extract_windows(ecg, [], pre=100, post=200)
    assert windows.shape == (0, 12, 300) and k.tolist() == []
    windows, k = extract_windows(ecg, np.array([50.0, 400.0, 950.0]), pre=100, post=200)
    assert k.tolist() == [1]
    np.testing.assert_array_equal(windows[0], ecg[:, 300:600])


def test_mean_autocorrelation_of_one_varying_lead_is_that_leads_and_warns_nothing():
    import warnings

    rng = np.random.default_rng(4)
    window = np.ones((1, 12, 300))
    window[0, 7] = rng.normal(size=300).cumsum()          # eleven constant leads, one not
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # constant leads: no RuntimeWarning
        one = mean_autocorrelation(window)
        alone = mean_autocorrelation(window[:, 7:8])
    assert 0.5 < alone[0] < 1.0
    np.testing.assert_allclose(one, alone, rtol=1e-12)


def test_window_filters_need_values_strictly_above_their_limits():
    r = np.array([1000])
    step = np.zeros((1, 12, 300))
    step[0, :, 150:] = 0.5                                 # every lead's range exactly 0.5 mV
    assert window_filters(step, r, r)["low_amplitude"][0]
    assert not window_filters(step * 1.01, r, r)["low_amplitude"][0]
    walk = np.random.default_rng(3).normal(size=(1, 12, 300)).cumsum(axis=-1)
    at = float(mean_autocorrelation(walk)[0])
    assert window_filters(walk, r, r, BeatConfig(min_mean_autocorr=at))["low_autocorr"][0]
    assert not window_filters(walk, r, r, BeatConfig(min_mean_autocorr=at - 1e-9))["low_autocorr"][0]


def test_sd_filter_of_float32_beats_computes_the_sd_in_float64():
    """x04's windows are float32. This one's mean SD is 0.0600500008 in float64, which rounds
    to 0.0601 (kept); summed in float32 it comes out as 0.06005 and rounds to 0.0600."""
    base = np.random.default_rng(0).normal(size=(1, 12, 300))
    beats = (base / base.std(axis=-1, ddof=1).mean() * 0.060050000890343805).astype(np.float32)
    sd = beats.std(axis=-1, ddof=1, dtype=np.float64).mean()
    assert 0.06005 < sd < 0.0600500015
    r = np.array([1000])
    assert not window_filters(beats, r, r)["low_sd"][0]


def test_segment_ecg_beats_are_float32_whatever_the_input_type():
    seg = segment_ecg(gaussian_ecg(PEAKS).astype(np.float64), BeatConfig(zero_median=False))
    assert seg.n_kept == 8 and seg.beats.dtype == np.float32


def test_a_one_sample_tail_cut_is_the_published_loader_not_a_missing_tail():
    ecg = gaussian_ecg(PEAKS)
    ecg[:, 3000:] = 0.0
    seg = segment_ecg(ecg, BeatConfig(tail_cut=1))
    assert seg.status == "ok" and seg.reason == ""         # the zeros count as signal
    assert segment_ecg(ecg).reason == "missing tail: all leads zero from sample 3000"


def test_segment_ecg_passes_the_detector_settings_on(monkeypatch):
    from scdecg import beats

    calls = []

    def spy(lead, fs, method, correct_artifacts):
        calls.append((len(lead), fs, method, correct_artifacts))
        return PEAKS

    monkeypatch.setattr(beats, "detect_rpeaks", spy)
    seg = segment_ecg(gaussian_ecg(PEAKS), BeatConfig(fs=250, method="pantompkins1985",
                                                      correct_artifacts=True))
    assert calls == [(5000, 250, "pantompkins1985", True)] and seg.n_kept == 8


def test_too_few_rpeaks_keeps_the_ones_found_in_the_log():
    seg = segment_ecg(gaussian_ecg([1500, 3500], noise=0.0))
    assert seg.status == "no_beats" and seg.reason.startswith("fewer than 3 R-peaks: 2 found")
    np.testing.assert_allclose(seg.rpeaks, [1500, 3500], atol=3)
    assert seg.log_row("e")["n_rpeaks"] == 2


def test_z_distances_are_computed_in_float64_whatever_the_stored_type():
    rng = np.random.default_rng(6)
    beats = rng.normal(size=(3, 12, 300)).astype(np.float32)
    median = rng.normal(size=(12, 300)).astype(np.float32)
    sd = rng.uniform(0.5, 2.0, size=(12, 300)).astype(np.float32)
    z = (beats.astype(np.float64) - median.astype(np.float64)) / sd.astype(np.float64)
    expected = np.sqrt((z ** 2).sum(axis=(1, 2)))
    np.testing.assert_allclose(z_distances(beats, median, sd), expected, rtol=1e-13)


def test_a_missing_true_false_flag_stored_as_float_is_not_excluded():
    flags = pd.Series([1.0, np.nan, 0.0])                  # a bool column with gaps, as float
    assert Exclusion("f", "f", "true").excluded(flags).tolist() == [True, False, False]
