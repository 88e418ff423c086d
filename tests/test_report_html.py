"""The HTML run report: one self-contained file that any browser renders offline."""
from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np

from scdecg.report_html import inline, markdown_to_html

VOID = {"meta", "img", "br", "hr"}


class Checker(HTMLParser):
    """Collects tags, checks that every element closes in order, and gathers src/href."""

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.refs, self.errors = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def parse(text: str) -> Checker:
    checker = Checker()
    checker.feed(text)
    checker.close()
    assert checker.errors == [] and checker.stack == [], (checker.errors, checker.stack)
    return checker


def test_inline_marks_leave_identifiers_alone():
    assert inline("`aVL_rs_diff` and aVL_rs_diff_2 <5") == (
        "<code>aVL_rs_diff</code> and aVL_rs_diff_2 &lt;5")
    assert inline("_Not available: `x.csv` is missing_") == (
        "<em>Not available: <code>x.csv</code> is missing</em>")
    assert inline("**42** of *all*") == "<strong>42</strong> of <em>all</em>"


def test_report_markdown_becomes_one_self_contained_page(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.subplots().plot(np.arange(5))
    (tmp_path / "figures").mkdir()
    fig.savefig(tmp_path / "figures" / "curve.png")
    lines = ["# Run report", "", "Workspace: `ws`.", "", "## Cohort", "",
             "| group | ECGs |", "|---|---|", "| study | 12 |", "| control | 30 |", "",
             "![a curve](figures/curve.png)", "", "*a curve*", "",
             "![gone](figures/missing.png)", "", "two\nline paragraph"]
    page = markdown_to_html(lines, tmp_path)
    checker = parse(page)
    assert checker.tags.count("table") == 1 and checker.tags.count("tr") == 3
    assert checker.tags.count("h1") == 1 and checker.tags.count("h2") == 1
    assert "<td>control</td><td>30</td>" in page
    assert "<figcaption>a curve</figcaption>" in page and "figure missing: figures/missing.png" in page
    assert "<p>two line paragraph</p>" in page
    assert all(ref.startswith("data:image/png;base64,") for ref in checker.refs) and checker.refs
    embedded = base64.b64decode(checker.refs[0].split(",", 1)[1])
    assert embedded == (tmp_path / "figures" / "curve.png").read_bytes()


def test_build_report_writes_the_html_beside_the_markdown(pipeline, tmp_path):
    from scdecg.report import build_report

    ws = pipeline.ensure("x06")
    path = build_report(ws, out=str(tmp_path / "reports"))
    page = (tmp_path / "reports" / "report.html").read_text()
    checker = parse(page)
    headings = re.findall(r"^## (.*)$", path.read_text(), re.M)
    assert len(headings) > 3
    assert [h for h in re.findall(r"<h2>(.*?)</h2>", page)] == [
        inline(h) for h in headings]
    assert all(ref.startswith("data:") for ref in checker.refs)
    assert checker.tags.count("img") == path.read_text().count("![")
