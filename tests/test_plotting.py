"""x08: the 12-lead ECG on clinical paper (scdecg.plotting and the script)."""
from __future__ import annotations

import importlib.util
import struct

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_script
from scdecg import plotting
from scdecg.constants import LEAD_INDEX, LEADS
from scdecg.errors import PipelineError
from scdecg.signals import zero_mode

X08 = "00_Data_Preprocessing/x08_plot_ecg.py"


def test_ecg(seed: int = 0) -> np.ndarray:
    """A (12, 5000) mV record: a distinct sine per lead plus a per-lead offset."""
    t = np.arange(5000) / 500
    lead = np.arange(12)[:, None]
    return (0.5 * np.sin(2 * np.pi * (1 + lead / 4) * t) + 0.1 * lead - 0.3).astype(np.float32)


test_ecg.__test__ = False  # a helper, not a test


def lines_by_label(fig) -> dict:
    ax = fig.axes[0]
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_traces_are_the_leads_in_millimetres_at_25_mm_s_and_10_mm_mv():
    ecg = test_ecg()
    fig = plotting.plot_ecg(ecg)
    lines = lines_by_label(fig)
    assert sorted(lines) == sorted([*LEADS, "II (rhythm)"])
    expected = zero_mode(ecg.astype(np.float64))
    baselines = plotting.row_baselines()
    # aVL: second row, second column -> samples 1250..2499, x 62.5..124.95 mm.
    x, y = lines["aVL"].get_data()
    np.testing.assert_allclose(x, np.arange(1250, 2500) / 500 * 25.0)
    np.testing.assert_allclose(y, baselines[1] + 10.0 * expected[LEAD_INDEX["aVL"], 1250:2500])
    # V6: third row, last column.
    x, y = lines["V6"].get_data()
    np.testing.assert_allclose(x, np.arange(3750, 5000) / 500 * 25.0)
    np.testing.assert_allclose(y, baselines[2] + 10.0 * expected[LEAD_INDEX["V6"], 3750:5000])
    # Rhythm strip: all 10 s of lead II, 250 mm long, on the bottom row.
    x, y = lines["II (rhythm)"].get_data()
    assert x[0] == 0 and x[-1] == pytest.approx(4999 / 500 * 25.0) and len(x) == 5000
    np.testing.assert_allclose(y, baselines[3] + 10.0 * expected[LEAD_INDEX["II"]])
    # Rows are 35 mm apart, top to bottom.
    np.testing.assert_allclose(-np.diff(baselines), 35.0)


def test_one_data_unit_is_one_millimetre_and_the_grid_is_1_and_5_mm():
    fig = plotting.plot_ecg(test_ecg())
    ax = fig.axes[0]
    width_mm, height_mm = fig.get_size_inches() * 25.4
    assert tuple(ax.get_position().bounds) == (0, 0, 1, 1)
    assert np.diff(ax.get_xlim())[0] == pytest.approx(width_mm)
    assert np.diff(ax.get_ylim())[0] == pytest.approx(height_mm)
    grids = {c.get_gid(): c for c in ax.collections}
    for gid, step in (("grid-minor", 1.0), ("grid-major", 5.0)):
        verticals = sorted({seg[0, 0] for seg in grids[gid].get_segments() if seg[0, 0] == seg[1, 0]})
        np.testing.assert_allclose(np.diff(verticals), step)
    # The calibration pulse is 10 mm (1 mV) high and 5 mm (200 ms) wide.
    pulse = next(line for line in ax.get_lines() if line.get_gid() == "calibration")
    x, y = pulse.get_data()
    assert np.ptp(y) == pytest.approx(10.0) and x[3] - x[2] == pytest.approx(5.0)


def test_markers_sit_on_beats_and_on_the_avl_trace():
    ecg = test_ecg()
    rpeaks = np.array([300, 800, 1300, 1800, 2300, 2800])
    r, s = np.array([1300, 1800, 2300, 2800]), np.array([1320, 1822, 2321, 2819])
    fig = plotting.plot_ecg(ecg, rpeaks=rpeaks, avl_r=r, avl_s=s)
    by_gid = {}
    for line in fig.axes[0].get_lines():
        by_gid.setdefault(line.get_gid(), []).append(line)
    assert len(by_gid["rpeaks"]) == 4                          # one row of ticks per row
    np.testing.assert_allclose(by_gid["rpeaks"][0].get_xdata(), rpeaks / 500 * 25)
    (r_line,), (s_line,) = by_gid["aVL-R"], by_gid["aVL-S"]
    shown = r[(r >= 1250) & (r < 2500)]                        # only the aVL segment's beats
    np.testing.assert_allclose(r_line.get_xdata(), shown / 500 * 25)
    avl = zero_mode(ecg.astype(np.float64))[LEAD_INDEX["aVL"]]
    np.testing.assert_allclose(r_line.get_ydata(), plotting.row_baselines()[1] + 10 * avl[shown])
    assert len(s_line.get_xdata()) == 3


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _assert_paper_pixels(path, dpi: int) -> None:
    """The PNG has the physical paper size at ``dpi`` (to the pixel matplotlib truncates)."""
    width_mm, height_mm = plotting.paper_size_mm(10.0)
    expected = np.array([width_mm, height_mm]) / 25.4 * dpi
    assert np.all(np.abs(np.array(_png_size(path)) - expected) < 1), (_png_size(path), expected)


def test_save_png_and_pdf_and_refuse_other_formats(tmp_path):
    fig = plotting.plot_ecg(test_ecg())
    plotting.save_figure(fig, tmp_path / "ecg.png", dpi=100)
    _assert_paper_pixels(tmp_path / "ecg.png", 100)
    first = (tmp_path / "ecg.png").read_bytes()
    plotting.save_figure(plotting.plot_ecg(test_ecg()), tmp_path / "ecg.png", dpi=100)
    assert (tmp_path / "ecg.png").read_bytes() == first          # reruns give identical files
    plotting.save_figure(fig, tmp_path / "ecg.pdf")
    assert (tmp_path / "ecg.pdf").read_bytes()[:5] == b"%PDF-"
    with pytest.raises(PipelineError, match=r"ecg\.jpg: unsupported figure format"):
        plotting.save_figure(fig, tmp_path / "ecg.jpg")


@pytest.fixture(scope="module")
def x06_workspace(pipeline):
    return pipeline.ensure("x06")


def test_x08_draws_a_study_ecg(x06_workspace, tmp_path, capsys):
    cov = pd.read_feather(x06_workspace / "covariate_df.feather")
    sid = str(cov["studyId"].iloc[3])
    args = ["--covariate-df", str(x06_workspace / "covariate_df.feather"),
            "--ecg-dir", str(x06_workspace / "10_sec_ecgs")]
    run_script(X08, *args, "--study-id", sid, "--output", "ecg.png", "--dpi", "50", cwd=tmp_path)
    _assert_paper_pixels(tmp_path / "ecg.png", 50)
    spec = importlib.util.spec_from_file_location("x08_plot_ecg", ROOT / X08)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([*args, "--study-id", "nope"]) == 2
    assert "no row with studyId 'nope'" in capsys.readouterr().err
