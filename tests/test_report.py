"""The run report reads a workspace, checks the planted biomarker, and names what is missing."""
from __future__ import annotations

from scdecg.report import build_report


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
