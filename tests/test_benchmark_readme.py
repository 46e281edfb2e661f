"""The benchmark tables in benchmarks/README.md and the README's speed figures are generated
from the committed runs (benchmarks/measured/*.json)."""

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def benchmarks(monkeypatch):
    """Import a module of benchmarks/ (a folder of scripts, not a package)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))

    def load(name):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load


def _readme(*parts):
    return (ROOT.joinpath(*parts)).read_text(encoding="utf-8")


def test_the_driver_table_is_the_committed_runs(benchmarks):
    table = benchmarks("driver_table")
    runs = table.measured_runs()
    assert runs, "no committed benchmarks/measured/driver-*.json"
    assert table.block(_readme("benchmarks", "README.md")) == "\n" + table.render(runs)


def test_a_target_that_is_missed_is_marked_so(benchmarks):
    table = benchmarks("driver_table")
    name, run = table.measured_runs()[0]
    slow = {**run, "load": {**run["load"], "processed_per_s": 0.5 * run["load"]["offered_per_s"]}}
    fast = {**run, "load": {**run["load"], "processed_per_s": run["load"]["offered_per_s"]}}
    assert "= 50% ✗" in table.render([(name, slow)])
    assert "= 100% ✓" in table.render([(name, fast)])


def test_the_trainer_tables_and_readme_speed_figures_are_the_committed_runs(benchmarks):
    table = benchmarks("trainer_table")
    blocks = benchmarks("readme_blocks")
    runs, pairs = table.measured_runs(), table.comparisons()
    assert table.LATEST in dict(runs), f"no committed benchmarks/measured/{table.LATEST}"
    assert pairs, "no committed benchmarks/measured/ab-trainer-*.json"
    tables = blocks.block(_readme("benchmarks", "README.md"), table.BEGIN, table.END)
    assert tables == "\n" + table.render(runs, pairs)
    speed = blocks.block(_readme("README.md"), table.SPEED_BEGIN, table.SPEED_END)
    assert speed == "\n" + table.render_speed(runs, pairs)


def test_trainer_targets_show_their_verdict(benchmarks):
    table = benchmarks("trainer_table")
    name, run = table.measured_runs()[-1]
    target = run["targets"][0]
    for passed, mark in ((True, "✓"), (False, "✗")):
        changed = {**run, "targets": [{**target, "value": 9.87, "passed": passed}]}
        assert f"9.87 {mark}" in table.render([(name, changed)])


def test_the_packing_table_is_the_committed_runs(benchmarks):
    table = benchmarks("packing_table")
    runs = table.measured_runs()
    assert runs, "no committed benchmarks/measured/packing-*.json"
    assert table.block(_readme("benchmarks", "README.md")) == "\n" + table.render(runs)


def test_the_end_to_end_packing_table_and_readme_line_are_the_committed_runs(benchmarks):
    table = benchmarks("packing_table")
    blocks = benchmarks("readme_blocks")
    runs = table.study_runs()
    assert runs, "no committed benchmarks/measured/study-packing*.json"
    for _, run in runs:
        assert run["same_configurations"]  # packed and unpacked trained the same work
    studies = blocks.block(_readme("benchmarks", "README.md"), table.STUDY_BEGIN, table.STUDY_END)
    assert studies == "\n" + table.render_study(runs)
    speed = blocks.block(_readme("README.md"), table.SPEED_BEGIN, table.SPEED_END)
    assert speed == "\n" + table.render_speed(runs)


def test_the_packing_target_shows_its_verdict(benchmarks):
    table = benchmarks("packing_table")
    name, run = table.study_runs()[-1]
    for ratio, mark, word in ((1.9, "✓", "meets"), (1.2, "✗", "misses")):
        rows = [{**row, "packed_vs_unpacked": ratio} for row in run["rows"]]
        changed = {**run, "rows": rows}
        assert f"| {ratio:.2f}x {mark} |" in table.render_study([(name, changed)])
        assert f"{word} the 1.8x target" in table.render_speed([(name, changed)])


def test_the_quick_starts_time_is_the_committed_measurement(benchmarks):
    import json

    quick = benchmarks("quickstart")
    blocks = benchmarks("readme_blocks")
    assert quick.RESULT.is_file(), "no committed benchmarks/measured/quickstart.json"
    run = json.loads(quick.RESULT.read_text())
    assert blocks.block(_readme("README.md"), quick.BEGIN, quick.END) == "\n" + quick.render(run)
