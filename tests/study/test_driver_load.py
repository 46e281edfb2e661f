"""A small run of the driver load benchmark: 8 synthetic trials at once, every epoch of
every trial in MLflow exactly once and every trial in Optuna once (a real local Ray)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "driver.py"


def test_eight_concurrent_trials_land_every_epoch_once(tmp_path: Path) -> None:
    out = tmp_path / "driver.json"
    argv = ["--concurrent", "8", "--rounds", "1", "--epochs", "6", "--epoch-seconds", "0.1"]
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), *argv, "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    load = json.loads(out.read_text())["load"]
    assert load["counts"] == {
        "mlflow_trial_runs": 8,
        "runs_with_every_epoch_once": 8,
        "optuna_trials": 8,
        "optuna_complete": 8,
        "all_landed_once": True,
    }
    assert load["report_to_driver_s"]["n"] == 8 * 6  # the driver saw every report
    assert load["driver_to_mlflow_s"]["n"] == 8 * 6  # and stored every objective value
