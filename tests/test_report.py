"""The run report reads a workspace, checks the planted biomarker, and names what is missing."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scdecg.report import build_report, probe_check

MODEL = "predictions/ntuh_scd_model_demo_1"
STATS = "morphing_outputs/morph-stats.feather"


def test_report_on_the_synthetic_study(pipeline, tmp_path):
    ws = pipeline.ensure("x07")
    path = build_report(ws, out=str(tmp_path / "reports"))
    text = path.read_text()
    assert path == tmp_path / "reports" / "report.md"
    for heading in ("## Cohort", "## Limb-lead gain correction (x03)",
                    "## Beat filtering waterfall (x05)", "## Was the planted biomarker recovered?"):
        assert heading in text
    checks = text[text.index("## Was the planted biomarker recovered?"):]
    # gain, biomarker and association stages are checked against the truth and pass
    assert checks.count("| yes |") == 3, checks
    assert "| NO |" not in checks
    # steps that have not run are named, not silently skipped
    assert "`predictions/` is missing" in text
    assert "`morphing_outputs/morph-stats.feather` is missing (made by s12)" in text


def test_report_without_ground_truth_says_so(tmp_path):
    text = build_report(tmp_path).read_text()
    assert "no ground truth to check against" in text
    assert "`covariate_df.feather` is missing (made by x01/x02)" in text


def test_report_warns_of_a_folder_a_step_left_unfinished(tmp_path):
    from scdecg.io import unfinished_marker

    (tmp_path / "ecg_beats").mkdir()
    unfinished_marker(tmp_path / "ecg_beats", "x04").write_text("x04 started")
    path, problems = build_report(tmp_path, problems=True)
    assert problems[0] == (f"{tmp_path / 'ecg_beats'}: x04 did not finish (killed or stopped by "
                           f"an error: {tmp_path / 'ecg_beats' / '.x04-unfinished'}); rerun "
                           "00_Data_Preprocessing/x04_segment_beats.py")
    assert f"**Warning:** `{problems[0]}`; the tables below may mix two runs." in path.read_text()


def test_report_warns_of_a_morph_run_s10_left_unfinished(tmp_path):
    """The morph run was not checked: its tables were shown as one run."""
    from scdecg.io import unfinished_marker

    (tmp_path / "morphing_outputs").mkdir()
    unfinished_marker(tmp_path / "morphing_outputs", "s10").write_text("s10 started")
    path, problems = build_report(tmp_path, problems=True)
    out = tmp_path / "morphing_outputs"
    assert problems[0] == (f"{out}: s10 did not finish (killed or stopped by an error: "
                           f"{out / '.s10-unfinished'}); rerun 02_Morphing/s10_morph_ecgs.py")
    assert f"**Warning:** `{problems[0]}`" in path.read_text()


def test_report_names_splits_trusts_the_lockbox_and_shows_baselines_and_ensemble(tmp_path):
    import pandas as pd

    folder = tmp_path / "predictions" / "ntuh_scd_model_demo_1"
    folder.mkdir(parents=True)
    for split, auc in (("val", 0.81), ("lockbox", 0.70)):
        suffix = "" if split == "val" else "_lockbox"
        pd.DataFrame({"split": [split], "output": ["scd1"], "n": [100], "n_pos": [20],
                      "auc": [auc], "auc_lo": [auc - 0.05], "auc_hi": [auc + 0.05]}
                     ).to_csv(folder / f"metrics{suffix}.csv", index=False)
        pd.DataFrame({"split": split, "model": ["ntuh_scd_model_demo", "median-beat probe"],
                      "n": 100, "n_pos": 20, "auc": [auc, 0.78], "auc_lo": 0.6, "auc_hi": 0.9,
                      "note": "x"}).to_csv(folder / f"baselines{suffix}.csv", index=False)
    ensemble = tmp_path / "predictions" / "scd1_ensemble_model"
    ensemble.mkdir()
    pd.DataFrame({"score": ["scd1_hat_ensemble", "scd1_hat0"], "n": 100, "n_pos": 20,
                  "n_patients": 90, "auc": [0.83, 0.81], "auc_lo": 0.7, "auc_hi": 0.9,
                  "split": "val"}).to_csv(ensemble / "metrics.csv", index=False)
    (tmp_path / "arrest-ntuh-ecg").mkdir()          # ground truth: the checks table is shown
    pd.DataFrame({"ecg_id": ["e1"], "patient_ngsci_id": ["p1"], "slur_strength": [0.0],
                  "cardiac_cause": [0]}).to_csv(tmp_path / "arrest-ntuh-ecg/synthetic_truth.csv",
                                               index=False)
    text = build_report(tmp_path).read_text()
    models = text[text.index("## Risk models"):text.index("## Stacking ensemble")]
    assert models.index("**Lockbox patients** (the figure to trust)") < models.index(
        "**Validation patients** (chose the epoch: optimistic)")
    assert "on the same lockbox ECGs" in models and "| median-beat probe |" in models
    checks = text[text.index("## Was the planted biomarker recovered?"):]
    assert "lockbox AUC scd1 ≥ 0.75 | 0.700 | NO" in checks
    assert "lockbox AUC scd1 ≥ the median-beat probe's | 0.700 vs 0.780 | NO" in checks
    assert "validation AUC" not in checks
    section = text[text.index("## Stacking ensemble"):]
    assert "| scd1_hat_ensemble |" in section and "cross-fitted" in section
    assert "No lockbox figure" in section and "--part all" in section
    assert "| ntuh_scd_model_demo | 0.700 | 0.810 |" in section


def test_the_probe_check_compares_the_model_on_the_probes_own_ecgs(tmp_path):
    """The probe scored 90 of the 100 lockbox ECGs: the check holds the deep model's AUC on
    those 90 (0.790) against the probe's (0.780), not its AUC on all 100 (0.700)."""
    import pandas as pd

    test_report_names_splits_trusts_the_lockbox_and_shows_baselines_and_ensemble(tmp_path)
    folder = tmp_path / "predictions" / "ntuh_scd_model_demo_1"
    pd.DataFrame({"split": "lockbox", "model": ["ntuh_scd_model_demo", "median-beat probe"],
                  "n": [100, 90], "n_pos": [20, 18], "auc": [0.70, 0.78], "auc_lo": 0.6,
                  "auc_hi": 0.9, "model_auc": [np.nan, 0.79], "difference": [np.nan, 0.01],
                  "difference_lo": [np.nan, -0.031], "difference_hi": [np.nan, 0.052],
                  "note": "x"}).to_csv(folder / "baselines_lockbox.csv", index=False)
    text = build_report(tmp_path).read_text()
    models = text[text.index("## Risk models"):text.index("## Stacking ensemble")]
    assert "| median-beat probe | 90 | 18 | 0.780 | 0.600 | 0.900 | 0.790 | 0.010 | -0.031 | " \
           "0.052 | x |" in models
    checks = text[text.index("## Was the planted biomarker recovered?"):]
    assert "| lockbox AUC scd1 not below the median-beat probe's (paired interval) | 0.790 vs " \
           "0.780 on 90 ECGs (difference +0.010, bootstrap interval -0.031 to +0.052: a tie) " \
           "| yes |" in checks
    assert "lockbox AUC scd1 ≥ 0.75 | 0.700 | NO" in checks


@pytest.mark.parametrize("model_auc, lo, hi, words, passed", [
    (0.750, -0.061, -0.002, "below the probe", "NO"),
    (0.778, -0.033, 0.029, "a tie", "yes"),          # below as a point, within chance
    (0.820, 0.004, 0.071, "above the probe", "yes")])
def test_the_probe_check_fails_only_when_the_model_is_below_the_probe_beyond_chance(
        model_auc, lo, hi, words, passed):
    """The check reads the paired interval of the difference, not the two points: a model
    0.002 below the probe with an interval of -0.033 to +0.029 is a tie and passes; one whose
    interval lies wholly below 0 fails."""
    probe = pd.Series({"n": 90, "auc": 0.780, "model_auc": model_auc,
                       "difference": model_auc - 0.780, "difference_lo": lo,
                       "difference_hi": hi})
    check = probe_check("ntuh_scd_model_demo_1", "lockbox", 0.700, probe)
    assert check.criterion == "lockbox AUC scd1 not below the median-beat probe's (paired interval)"
    assert check.value == (f"{model_auc:.3f} vs 0.780 on 90 ECGs (difference "
                           f"{model_auc - 0.780:+.3f}, bootstrap interval {lo:+.3f} to {hi:+.3f}: "
                           f"{words})")
    assert check.passed is (passed == "yes")


def _png(path):
    """A real (tiny) PNG file."""
    from matplotlib.figure import Figure

    from scdecg.plotting import save_figure

    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(Figure(figsize=(1, 1)), path, dpi=20)


def handmade_workspace(ws):
    """Hand-made outputs of x03/x05, s09-s12 and the demo's timings, with ground truth."""
    import pandas as pd

    # cohort: scd1 and a non-cardiac contrast label for 8 ECGs
    pd.DataFrame({"studyId": [f"e{i}" for i in range(10)], "ptId": [f"p{i}" for i in range(10)],
                  "group": "study", "include_modelling": True,
                  "scd1": [1, 1, 1, 0, 0, 0, 0, 0, 0, 0.0],
                  "arrest_noncardiac": [0, 0, 0, 1, 1, 0, 0, 0, 1, 0.0]}
                 ).to_feather(ws / "covariate_df.feather")
    folder = ws / "predictions" / "ntuh_scd_model_demo_1"
    folder.mkdir(parents=True)
    pd.DataFrame({"studyId": [f"e{i}" for i in range(10)], "split": ["val"] * 8 + ["lockbox"] * 2,
                  "scd1_hat": [3.0, 2, 1, 2.5, 0, -1, -2, -3, 10, -10]}    # lockbox: no metrics
                 ).to_feather(folder / "predictions.feather")
    pd.DataFrame({"split": ["val"], "output": ["scd1"], "n": [8], "n_pos": [3], "auc": [0.8],
                  "auc_lo": [0.6], "auc_hi": [0.95]}).to_csv(folder / "metrics.csv", index=False)
    _png(folder / "roc_scd.png")
    _png(folder / "roc_scd_train.png")                    # in-sample figures are not shown
    beat = ws / "predictions" / "ntuh_scd_beat_model_demo_1"
    beat.mkdir()
    pd.DataFrame({"studyId": ["e0"], "scd1_hat": [0.0]}).to_feather(beat / "predictions_by_ecg.feather")
    # morphing: 4 beats moved (risk up in 3, level in 1; aVL_rs_diff down in all 4), 1 started
    # at the stop
    rows = []
    for beat_id, (r0, r1, a0, a1, steps) in enumerate(
            [(0, 1, 5, 4, 3), (0, 2, 5, 3, 4), (1, 3, 6, 5, 2), (2, 2, 6, 2, 5), (4, 4, 5, 5, 0)]):
        for stage, risk, avl in (("t0", r0, a0), ("final", r1, a1)):
            rows.append({"beat_id": beat_id, "stage": stage, "yhat_scd1": float(risk),
                         "aVL_rs_diff": float(avl), "status": "ok", "steps": steps})
    out = ws / "morphing_outputs"
    out.mkdir()
    pd.DataFrame(rows).to_feather(out / "morph-stats.feather")
    pd.DataFrame({"lead": ["I", "all"], "n_beats": [20, 20], "mae": [0.0123, 0.02],
                  "mse": [0.0004, 0.0009], "rmse": [0.02, 0.03]}
                 ).to_csv(out / "reconstruction_report.csv", index=False)
    pd.DataFrame({"feature": ["aVL_rs_diff", "max_aVL"], "rank": [1, 2], "unit": ["mV/ms", "mV"],
                  "n_beats": 4, "n_patients": 4, "mean_change": [-1.5, 0.25]}
                 ).to_csv(out / "morph-summary.csv", index=False)
    pd.DataFrame({"feature": ["yhat_scd1"], "rank": [1], "unit": [""], "n_beats": [4],
                  "n_patients": [4], "mean_change": [1.0]}).to_csv(out / "morph-outputs.csv",
                                                                      index=False)
    pd.DataFrame({"lead": ["I", "aVL", "V5", "III"], "mean_abs_change_mv": [0.03, 0.02, 0.04, 0.01],
                  "relative_change": [0.02, 0.05, 0.03, 0.01], "rank": [2, 3, 1, 4],
                  "rank_relative": [3, 1, 2, 4], "qrs_abs_change_mv": [0.05, 0.06, 0.07, 0.02],
                  "qrs_relative_change": [0.04, 0.09, 0.05, 0.02], "rank_qrs": [3, 1, 2, 4]}
                 ).to_csv(out / "morph-lead-change.csv", index=False)
    pd.DataFrame({"model": ["modelfits_beat/indep_a", "modelfits_beat/indep_b"], "n_beats": 4,
                  "share_raised": [1.0, 0.5], "mean_logit_change": [0.8, -0.1]}
                 ).to_csv(out / "morph_independent.csv", index=False)
    _png(out / "morph-risk-trajectory.png")
    # the demo's timings
    (ws / "reports").mkdir()
    pd.DataFrame({"step": ["x01", "x02", "s10"], "seconds": [1.25, 10.0, 30.5]}
                 ).to_csv(ws / "reports" / "demo_timings.csv", index=False)
    (ws / "arrest-ntuh-ecg").mkdir()                        # ground truth: the checks table
    pd.DataFrame({"ecg_id": [f"e{i}" for i in range(10)], "patient_ngsci_id": "p",
                  "slur_strength": [3.0, 2, 1, 0, 0, 0, 0, 0, 0, 0], "cardiac_cause": 0}
                 ).to_csv(ws / "arrest-ntuh-ecg" / "synthetic_truth.csv", index=False)


def test_report_model_morphing_and_timing_sections_show_the_workspace_values(tmp_path):
    """Hand-made outputs of x03/x05, s09-s12 and the demo's timings: each section shows their
    values and the checks are computed from them."""
    ws = tmp_path
    handmade_workspace(ws)
    text = build_report(ws).read_text()
    models = text[text.index("## Risk models"):text.index("## Learning curves")]
    assert "### ntuh_scd_model_demo_1 (10-s model)" in models
    assert "### ntuh_scd_beat_model_demo_1 (beat model, per ECG)" in models
    assert "`predictions/ntuh_scd_beat_model_demo_1/metrics.csv` is missing (made by " \
           "x05_evaluate.py --model-name ntuh_scd_beat_model_demo --beat)" in models
    assert "| scd1 | 8 | 3 | 0.800 | 0.600 | 0.950 |" in models
    assert "(figures/ntuh_scd_model_demo_1-roc_scd.png)" in models and "roc_scd_train" not in models
    assert (ws / "reports" / "figures" / "ntuh_scd_model_demo_1-roc_scd.png").exists()
    # the scd1 score for non-cardiac arrest on the validation ECGs, computed here: positives
    # e3 (2.5), e4 (0) against the six others (3, 2, 1, -1, -2, -3): 5 + 3 wins of 12 pairs
    contrast = (5 + 3) / 12
    assert f"non-cardiac arrest (a contrast: the planted signal is cardiac) is {contrast:.3f}, " \
           "against 0.800 for scd1" in models
    morph = text[text.index("## Morphing"):text.index("## Was the planted")]
    assert "4 beats morphed (1 more started at the stop threshold and took no step). " \
           "Predicted scd1 risk rose in 75.0%; aVL_rs_diff fell in 100.0%." in morph
    assert "| I | 20 | 0.012 | 0.0004 | 0.020 |" in morph          # s09's table
    assert "| aVL_rs_diff | 1 | mV/ms | 4 | 4 | -1.500 |" in morph    # s12's waveform table
    assert "| yhat_scd1 | 1 |  | 4 | 4 | 1.000 |" in morph
    assert "(figures/morphing_outputs-morph-risk-trajectory.png)" in morph
    checks = text[text.index("## Was the planted biomarker recovered?"):text.index("## Run time")]
    assert "| ntuh_scd_model_demo_1 | validation AUC scd1 ≥ 0.75 | 0.800 (the planted slur: " \
           "1.000) | yes |" in checks
    assert "On these validation ECGs the planted slur strength itself scores scd1 with AUC " \
           "1.000, against the model's 0.800" in models
    assert f"| ntuh_scd_model_demo_1 | validation: scd1 score separates scd1 better than " \
           f"non-cardiac arrest | 0.800 vs {contrast:.3f} | yes |" in checks
    assert "| s10 morphing | risk rises in ≥ 90% of morphs | 75.0% | NO |" in checks
    assert "| s12 morph stats | aVL_rs_diff falls in ≥ 75% of morphs | 100.0% | yes |" in checks
    # s12's lead ranking, by change over amplitude, and s10's independent models
    assert "| aVL | 0.060 | 0.090 | 1 | 0.020 | 0.050 | 1 |\n| V5 | 0.070 | 0.050 | 2 | 0.040 | 0.030 | 2 |" in morph
    assert "| s12 morph stats | aVL among the 3 leads whose QRS changed most (change over " \
           "amplitude) | rank 1 of 4 (whole beat: rank 1) | yes |" in checks
    assert "| modelfits_beat/indep_b | 4 | 0.500 | -0.100 |" in morph
    assert "| s10 independent model indep_a | its risk rises in ≥ 90% of morphs | 100.0% | yes |" \
        in checks
    assert "| s10 independent model indep_b | its risk rises in ≥ 90% of morphs | 50.0% | NO |" \
        in checks
    timing = text[text.index("## Run time of each step"):]
    assert "Total 42 s for the steps before this report." in timing
    # the oracle is scored on the model's validation ECGs only: a lockbox control (e9) with
    # the strongest slur would pull it to 15/18 if the split were ignored
    truth = ws / "arrest-ntuh-ecg" / "synthetic_truth.csv"
    pd.read_csv(truth).assign(slur_strength=[3.0, 2, 1, 0, 0, 0, 0, 0, 0, 5]).to_csv(
        truth, index=False)
    assert "(the planted slur: 1.000) | yes |" in build_report(ws).read_text()
    assert "| x01 | 1.2 |" in timing and "| s10 | 30.5 |" in timing


def test_the_lead_check_says_no_when_avl_is_not_among_the_three_leads_whose_qrs_changed_most(tmp_path):
    handmade_workspace(tmp_path)
    leads = pd.DataFrame({"lead": ["I", "II", "III", "aVL"], "mean_abs_change_mv": 0.1,
                          "relative_change": [0.4, 0.3, 0.2, 0.25], "rank": 1,
                          "rank_relative": [1, 2, 4, 3], "qrs_abs_change_mv": 0.2,
                          "qrs_relative_change": [0.8, 0.6, 0.4, 0.2], "rank_qrs": [1, 2, 3, 4]})
    path = tmp_path / "morphing_outputs" / "morph-lead-change.csv"
    leads.to_csv(path, index=False)
    report = build_report(tmp_path).read_text()
    checks = report.split("## Was the planted biomarker recovered?")[1]
    # the QRS's rank decides, whatever the whole beat's
    assert "| s12 morph stats | aVL among the 3 leads whose QRS changed most (change over " \
           "amplitude) | rank 4 of 4 (whole beat: rank 3) | NO |" in checks
    assert "| aVL | 0.200 | 0.200 | 4 | 0.100 | 0.250 | 3 |" in report   # the table beside it
    leads.assign(rank_qrs=[1, 2, 4, 3], rank_relative=[1, 2, 3, 4]).to_csv(path, index=False)
    assert "| s12 morph stats | aVL among the 3 leads whose QRS changed most (change over " \
           "amplitude) | rank 3 of 4 (whole beat: rank 4) | yes |" in build_report(tmp_path).read_text()


def test_the_timing_section_gives_wall_time_when_lanes_ran_side_by_side(tmp_path):
    (tmp_path / "reports").mkdir()
    pd.DataFrame({"step": ["x00", "beat model", "10-s model", "morphing"],
                  "script": "s.py", "seconds": [10.0, 40.0, 50.0, 20.0],
                  "lane": [0, 1, 2, 0], "started": [0.0, 10.5, 10.5, 61.0]}
                 ).to_csv(tmp_path / "reports" / "demo_timings.csv", index=False)
    timing = build_report(tmp_path).read_text().split("## Run time of each step")[1]
    # wall time: the last step ends at 61 + 20 s; the steps' own times add up to 120 s
    assert "81 s of wall time for the steps before this report; lanes 1 and 2 ran side by " \
           "side" in timing and "add up to more: 120 s" in timing
    assert "| beat model | 1 | 10.5 | 40.0 |" in timing
    assert "| morphing | 0 | 61.0 | 20.0 |" in timing


@pytest.mark.parametrize("damage, problem", [
    (lambda ws: pd.read_csv(ws / MODEL / "metrics.csv").assign(auc="high").to_csv(
        ws / MODEL / "metrics.csv", index=False),
     f"{MODEL}/metrics.csv: column auc is 'high' for row 0 (1 row(s)); expected a finite number"),
    (lambda ws: (ws / "covariate_df.feather").write_bytes(b"xx"),
     "covariate_df.feather: not a readable Feather table (not a Feather file: no Arrow or "
     "Feather marker at its start); rerun the step that writes it"),
    (lambda ws: pd.read_feather(ws / STATS).drop(columns="steps").to_feather(ws / STATS),
     f"{STATS}: missing column(s) steps"),
    (lambda ws: (ws / "morphing_outputs/morph-summary.csv").write_text('"torn\n'),
     "morphing_outputs/morph-summary.csv: not a readable CSV table (Error tokenizing data. C "
     "error: EOF inside string starting at row 0)"),
    (lambda ws: (ws / "reports/demo_timings.csv").write_text("step\nx01\n"),
     "reports/demo_timings.csv: missing column(s) seconds")],
    ids=["text_auc", "torn_cohort", "stats_column", "torn_csv", "timings_column"])
def test_a_damaged_output_is_named_and_the_rest_of_the_report_is_written(
        tmp_path, monkeypatch, capsys, damage, problem):
    """Each of these stopped python -m scdecg.report in a pandas or pyarrow traceback, with
    no report at all."""
    from scdecg.report import main

    handmade_workspace(tmp_path)
    damage(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"[report] warning: not shown: {problem}"]
    assert "1 file(s) could not be used, named in the report" in out
    text = (tmp_path / "reports" / "report.md").read_text()
    assert f"_Not shown:_ `{problem}`" in text
    for heading in ("## Cohort", "## Risk models", "## Morphing (02_Morphing)",
                    "## Was the planted biomarker recovered?"):
        assert heading in text                       # every section is still there
    if "timings" not in problem:
        assert "Total 42 s for the steps before this report." in text
    assert (tmp_path / "reports" / "report.html").stat().st_size > 0


def test_the_report_names_the_synthetic_cohort_it_analysed(tmp_path):
    handmade_workspace(tmp_path)
    first = build_report(tmp_path).read_text().splitlines()[2]
    assert first == (f"Workspace: `{tmp_path}`. Data: synthetic NTUH stand-in (with ground "
                     "truth).")
    (tmp_path / "arrest-ntuh-ecg" / "v1").mkdir()
    (tmp_path / "arrest-ntuh-ecg" / "v1" / ".synthetic-ntuh").write_text(
        "synthetic NTUH tree: 3000 patients, seed 2\n")
    first = build_report(tmp_path).read_text().splitlines()[2]
    assert first.endswith("Data: synthetic NTUH stand-in (with ground truth): 3000 patients, "
                          "seed 2.")
    (tmp_path / "arrest-ntuh-ecg" / "synthetic_truth.csv").unlink()        # real data
    first = build_report(tmp_path).read_text().splitlines()[2]
    assert first.endswith("Data: `arrest-ntuh-ecg/v1`.")


def test_the_report_never_deletes_figures_it_did_not_draw(tmp_path):
    """python -m scdecg.report --out DIR removed DIR/figures whatever it held (a user's
    fig1_final.pdf); now a folder the report does not own, or a figures folder holding
    anything but PNGs, is refused in one line and nothing is deleted."""
    from scdecg.errors import PipelineError

    victim = tmp_path / "victim"
    (victim / "figures").mkdir(parents=True)
    (victim / "figures" / "fig1_final.pdf").write_text("x")
    with pytest.raises(PipelineError, match="a folder the report did not write"):
        build_report(tmp_path, out=str(victim))
    (victim / "report.md").write_text("an earlier report")
    with pytest.raises(PipelineError, match="holds 'fig1_final.pdf', not one of the report's"):
        build_report(tmp_path, out=str(victim))
    assert (victim / "figures" / "fig1_final.pdf").read_text() == "x"
    (victim / "figures" / "fig1_final.pdf").unlink()
    (victim / "figures" / "old-calibration.png").write_bytes(b"png")
    build_report(tmp_path, out=str(victim))        # its own earlier figures are replaced
    assert not (victim / "figures" / "old-calibration.png").exists()
