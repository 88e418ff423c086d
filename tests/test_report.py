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
