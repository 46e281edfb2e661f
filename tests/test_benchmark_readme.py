"""The driver-load table in benchmarks/README.md is generated from the committed runs."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _driver_table():
    spec = importlib.util.spec_from_file_location(
        "driver_table", ROOT / "benchmarks" / "driver_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_driver_table_is_the_committed_runs():
    table = _driver_table()
    runs = table.measured_runs()
    assert runs, "no committed benchmarks/measured/driver-*.json"
    readme = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    assert table.block(readme) == "\n" + table.render(runs)


def test_a_target_that_is_missed_is_marked_so():
    table = _driver_table()
    name, run = table.measured_runs()[0]
    slow = {**run, "load": {**run["load"], "processed_per_s": 0.5 * run["load"]["offered_per_s"]}}
    fast = {**run, "load": {**run["load"], "processed_per_s": run["load"]["offered_per_s"]}}
    assert "= 50% ✗" in table.render([(name, slow)])
    assert "= 100% ✓" in table.render([(name, fast)])
