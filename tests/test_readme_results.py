"""The README's Results section is generated from the committed suite reports, never typed:
one block per suite, the knobs answer first."""

import json
import re
from pathlib import Path

import pytest

from study.report import markers, render_markdown
from study.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
SUITES = ("knobs", "uci3")  # in the README's order


def _report(name: str) -> dict:
    return json.loads((ROOT / "results" / name / "report.json").read_text())


def _block(readme: str, name: str) -> str:
    begin, end = markers(name)
    return readme[readme.index(begin) + len(begin) : readme.index(end)]


@pytest.mark.parametrize("name", SUITES)
def test_the_readme_results_block_is_the_committed_report(name):
    report = _report(name)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _block(readme, name) == "\n" + render_markdown(report, figures=f"results/{name}")
    for figure in report["figures"].values():
        assert (ROOT / "results" / name / figure).is_file(), figure
    assert (ROOT / "results" / name / "report.html").is_file()


def test_the_results_lead_with_the_knobs_answer():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    results = readme.index("\n## Results\n")
    starts = [readme.index(markers(name)[0]) for name in SUITES]
    assert results < starts[0] < starts[1]
    assert readme.index("\n## ", results + 1) > starts[1]  # both inside the section


@pytest.mark.parametrize("name", SUITES)
def test_the_committed_report_comes_from_the_bundled_suite_file(name):
    report = _report(name)
    suite = load_suite(ROOT / "suites" / f"{name}.yaml")
    assert report["budget"]["suite_sha256"] == suite.sha256
    protocol = suite.protocol
    units = len(suite.datasets) * len(suite.labels) * protocol.outer_folds * protocol.repeats
    assert report["budget"]["units"] == units  # every unit of the suite, none missing
    datasets = {row["dataset"] for row in report["results"]}
    assert datasets == {d.label for d in suite.datasets}


def test_the_knobs_prose_names_exactly_the_budget_checks_that_fail():
    # the sentence under the knobs block says which checks fail and what to raise: it is
    # typed, so it is held to report.json (its check names are the section's bold words)
    report = _report("knobs")
    failed = {c["check"] for c in report["budget_checks"] if c["verdict"] == "fail"}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme.index(markers("knobs")[1])
    prose = readme[after : readme.index("\n### ", after)]
    assert set(re.findall(r"\*\*([^*]+)\*\*", prose)) == failed
