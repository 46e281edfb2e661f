"""The README's Results section is generated from the committed suite report, never typed."""

import json
from pathlib import Path

from study.report import markers, render_markdown
from study.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "uci3"


def test_the_readme_results_block_is_the_committed_report():
    report = json.loads((RESULTS / "report.json").read_text())
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    begin, end = markers("uci3")
    block = readme[readme.index(begin) + len(begin) : readme.index(end)]
    assert block == "\n" + render_markdown(report, figures="results/uci3")
    for name in report["figures"].values():
        assert (RESULTS / name).is_file(), name
    assert (RESULTS / "report.html").is_file()


def test_the_committed_report_comes_from_the_bundled_suite_file():
    report = json.loads((RESULTS / "report.json").read_text())
    suite = load_suite(ROOT / "suites" / "uci3.yaml")
    assert report["budget"]["suite_sha256"] == suite.sha256
    assert report["budget"]["units"] == len(suite.datasets) * len(suite.labels) * 5
    datasets = {row["dataset"] for row in report["results"]}
    assert datasets == {d.label for d in suite.datasets}
