"""The progress heartbeat through the real path: Ray Tune's controller calls the callback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from study.tracking import MlflowTrialLogger, open_study_run, payload

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("local_ray")]

SILENT_S = 3.0  # the trial reports nothing for this long
HEARTBEAT_S = 0.5


def silent_trial(config: dict) -> None:
    """Reports once, at its end, like an epoch far longer than the heartbeat."""
    from ray import tune

    time.sleep(config["sleep"])
    final = payload.FinalReport(fold_scores=[1.0], diverged_members=0)
    tune.report({payload.EPOCH: 0, "val_rmse_mean": 1.0, **final.to_report()})


def _config(sample: dict) -> dict:
    return dict(sample)


def test_a_silent_trial_gets_progress_lines_from_a_real_tune_run(tmp_path: Path):
    from ray import tune

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id, parent_run_id = open_study_run(
        uri, "heartbeat", artifact_location=(tmp_path / "artifacts").as_uri(), params={}, tags={}
    )
    lines: list[str] = []
    logger = MlflowTrialLogger(
        uri=uri,
        experiment_id=experiment_id,
        parent_run_id=parent_run_id,
        study="heartbeat",
        dataset="power_plant",
        model="relu",
        objective="val_rmse_mean",
        mode="min",
        config_for_trial=_config,
        report=lines.append,
        trials=1,
        heartbeat_s=HEARTBEAT_S,
    )
    tuner = tune.Tuner(
        silent_trial,
        param_space={"sleep": SILENT_S},
        tune_config=tune.TuneConfig(num_samples=1),
        run_config=tune.RunConfig(
            storage_path=str(tmp_path / "tune"), callbacks=[logger], verbose=0
        ),
    )
    tuner.fit()
    beats = [line for line in lines if line.startswith("study heartbeat: 0/1 done, 1 running")]
    # several beats while the trial was silent, not one per controller step
    assert 2 <= len(beats) <= SILENT_S / HEARTBEAT_S + 2, lines
