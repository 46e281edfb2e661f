"""The MLflow trial callback, driven by fake trials against a temporary SQLite store (no Ray)."""

from __future__ import annotations

import base64
import itertools
import math
import os
import pickle
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from matplotlib import image as mpimg

from actmix.analysis import load_model, save_model
from actmix.mlp import MLP
from study.tracking import (
    TAG_PARENT,
    TAG_ROLE,
    TAG_TRIAL_ID,
    TAG_TRIAL_INDEX,
    MlflowTrialLogger,
    client_for,
    end_open_trials,
    open_study_run,
    payload,
    trial_runs,
    with_rendered_artifacts,
)
from study.tracking import _progress as progress_module
from study.tracking._trial_runs import CHECKPOINT_FLUSH_S

OBJECTIVE = "val_rmse_mean"
CONFIG = {"train.lr": 0.01, "model.hidden": [8, 8]}


@dataclass
class FakeTrial:
    """The attributes of ``ray.tune.experiment.Trial`` the callback reads."""

    trial_id: str
    config: dict[str, Any] = field(default_factory=lambda: dict(CONFIG))
    experiment_tag: str = "1_train.lr=0.01"
    last_result: dict[str, Any] = field(default_factory=dict)
    error_file: str | None = None
    error: str | None = None
    status: str = "RUNNING"

    def get_error(self) -> str | None:
        return self.error


def full_config(sample: dict[str, Any]) -> dict[str, Any]:
    """Stands in for the runner's sample -> RunConfig dict (module level: picklable)."""
    return {"model": "actmix", "sampled": sample}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root / 'mlflow.db'}", root


_studies = itertools.count()


@dataclass
class Study:
    uri: str
    experiment_id: str
    parent_run_id: str
    lines: list[str] = field(default_factory=list)

    def logger(self) -> MlflowTrialLogger:
        """A fresh callback, as a driver (first or restarted) builds it."""
        return MlflowTrialLogger(
            uri=self.uri,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            study="demo",
            dataset="power_plant",
            model="actmix",
            objective=OBJECTIVE,
            mode="min",
            config_for_trial=full_config,
            report=self.lines.append,
            trials=4,
        )

    def runs(self) -> list[Any]:
        return trial_runs(self.uri, self.experiment_id, self.parent_run_id)

    def only_run(self) -> Any:
        (run,) = self.runs()
        return run

    def steps(self, run_id: str, key: str = OBJECTIVE) -> list[int]:
        return sorted(m.step for m in client_for(self.uri).get_metric_history(run_id, key))


@pytest.fixture
def study(store: tuple[str, Path]) -> Study:
    """A new study (experiment and parent run) in the module's store."""
    uri, root = store
    name = f"study-{next(_studies)}"
    experiment_id, parent_run_id = open_study_run(
        uri, name, artifact_location=(root / name).as_uri(), params={}, tags={}
    )
    return Study(uri, experiment_id, parent_run_id)


def _epoch(epoch: int, value: float, **extra: Any) -> dict[str, Any]:
    return {payload.EPOCH: epoch, OBJECTIVE: value, payload.TRAIN_LOSS: value / 2, **extra}


def _final(epoch: int, value: float, **extra: Any) -> dict[str, Any]:
    return {
        **_epoch(epoch, value),
        payload.FINAL: True,
        payload.FOLD_SCORES: [1.25, 1.75],
        payload.DIVERGED_MEMBERS: 0,
        payload.NODE_ID: "node-7",
        **extra,
    }


def _report_all(logger: MlflowTrialLogger, trial: FakeTrial, results: list[dict[str, Any]]) -> None:
    for result in results:
        logger.on_trial_result(0, [trial], trial, result)
        trial.last_result = result


def test_run_is_a_child_named_by_the_searchers_creation_order(study: Study) -> None:
    logger = study.logger()
    third = FakeTrial("t3", experiment_tag="3_train.lr=0.01")
    logger.on_trial_start(0, [third], third)
    run = study.only_run()
    assert run.info.run_name == "trial-0002"
    assert run.data.tags[TAG_TRIAL_ID] == "t3"
    assert run.data.tags[TAG_TRIAL_INDEX] == "2"
    assert run.data.tags[TAG_PARENT] == study.parent_run_id
    assert run.data.tags[TAG_ROLE] == "trial"
    # containers are JSON, so they read back
    assert run.data.params == {"train.lr": "0.01", "model.hidden": "[8,8]"}
    config = client_for(study.uri).download_artifacts(run.info.run_id, "config.yaml")
    assert yaml.safe_load(Path(config).read_text()) == full_config(CONFIG)


def test_trial_without_a_counter_in_its_tag_is_named_after_the_runs_so_far(study: Study) -> None:
    logger = study.logger()
    for trial_id in ("a", "b"):
        trial = FakeTrial(trial_id, config={"x": trial_id}, experiment_tag="no-counter")
        logger.on_trial_start(0, [trial], trial)
    assert [run.info.run_name for run in study.runs()] == ["trial-0000", "trial-0001"]


def test_each_epoch_is_one_step_and_only_curve_metrics_are_logged(study: Study) -> None:
    logger = study.logger()
    trial = FakeTrial("t")
    logger.on_trial_start(0, [trial], trial)
    noise = {"time_this_iter_s": 0.5, "done": False, "hostname": "h", payload.LR: 0.1}
    _report_all(logger, trial, [_epoch(epoch, 2.0 - epoch / 10, **noise) for epoch in range(3)])
    logger.on_experiment_end([trial])  # the queued epochs are written on the way out
    run = study.only_run()
    assert study.steps(run.info.run_id) == [0, 1, 2]
    assert set(run.data.metrics) == {OBJECTIVE, payload.TRAIN_LOSS, payload.LR}
    assert run.data.metrics[OBJECTIVE] == pytest.approx(1.8)


def test_restarted_driver_continues_the_run_without_logging_replayed_epochs(study: Study) -> None:
    first = study.logger()
    trial = FakeTrial("t")
    first.on_trial_start(0, [trial], trial)
    _report_all(first, trial, [_epoch(epoch, 1.0) for epoch in range(3)])
    first.on_checkpoint(0, [trial], trial, checkpoint=None)  # epochs 0-2 are stored now
    _report_all(first, trial, [_epoch(epoch, 1.0) for epoch in range(3, 5)])
    # the driver dies (epochs 3 and 4 may be lost with it); Tune restores the callback
    restored = pickle.loads(pickle.dumps(first))
    restored.on_trial_start(0, [trial], trial)
    # the trial restarts from its epoch-3 checkpoint and replays epochs 3 and 4
    resumed = [_epoch(3, 1.0, **{payload.RESUMED_FROM_EPOCH: 3})]
    _report_all(restored, trial, resumed + [_epoch(epoch, 1.0) for epoch in range(4, 7)])
    restored.on_experiment_end([trial])
    run = study.only_run()
    assert study.steps(run.info.run_id) == list(range(7))
    assert study.steps(run.info.run_id, payload.TRAIN_LOSS) == list(range(7))
    assert run.data.tags["resumed_from_epoch"] == "3"


def test_orphan_run_is_adopted_by_the_reissued_configuration(study: Study) -> None:
    first = study.logger()
    lost = FakeTrial("lost")
    first.on_trial_start(0, [lost], lost)
    _report_all(first, lost, [_epoch(0, 1.0)])
    first.on_checkpoint(0, [lost], lost, checkpoint=None)
    # the driver dies; the restored searcher re-issues the same parameters under a new trial id
    reissued = FakeTrial("reissued", experiment_tag="5_train.lr=0.01")
    second = study.logger()
    second.on_trial_start(0, [reissued], reissued)
    _report_all(second, reissued, [_epoch(0, 1.0), _epoch(1, 0.9)])
    second.on_experiment_end([reissued])
    run = study.only_run()
    assert run.data.tags[TAG_TRIAL_ID] == "reissued"
    assert run.info.run_name == "trial-0000"
    assert study.steps(run.info.run_id) == [0, 1]


def test_a_run_killed_before_its_params_were_logged_is_adopted_by_its_index(
    study: Study,
) -> None:
    """The driver died between creating trial-0002's run and logging its params: the
    restored searcher's third trial (same creation index) continues that run."""
    client = client_for(study.uri)
    tags = {TAG_PARENT: study.parent_run_id, TAG_ROLE: "trial", TAG_TRIAL_ID: "gone"}
    bare, later = (
        client.create_run(
            study.experiment_id, run_name=f"trial-000{i}", tags={**tags, TAG_TRIAL_INDEX: str(i)}
        ).info.run_id
        for i in (2, 6)
    )
    reissued = FakeTrial("reissued", experiment_tag="3_train.lr=0.01")
    logger = study.logger()
    logger.on_trial_start(0, [reissued], reissued)
    _report_all(logger, reissued, [_epoch(0, 1.0)])
    logger.on_experiment_end([reissued])
    runs = {run.info.run_id: run for run in study.runs()}
    assert set(runs) == {bare, later}  # adopted, not duplicated
    assert runs[bare].data.tags[TAG_TRIAL_ID] == "reissued"
    assert runs[bare].data.params == {"train.lr": "0.01", "model.hidden": "[8,8]"}
    assert "config.yaml" in {a.path for a in client.list_artifacts(bare)}
    # the bare run of another index belongs to another trial: left alone
    assert runs[later].data.tags[TAG_TRIAL_ID] == "gone" and not runs[later].data.params


@pytest.mark.parametrize(
    "why",
    ["other parameters", "its trial is still live", "it has ended"],
)
def test_a_run_that_is_no_orphan_is_left_alone(study: Study, why: str) -> None:
    first = study.logger()
    old = FakeTrial("old")
    first.on_trial_start(0, [old], old)
    if why == "it has ended":
        old.last_result = _final(1, 1.0)
        first.on_trial_complete(0, [old], old)
    config = {"train.lr": 0.02} if why == "other parameters" else dict(CONFIG)
    new = FakeTrial("new", config=config, experiment_tag="2_x")
    live = [old, new] if why == "its trial is still live" else [new]
    study.logger().on_trial_start(0, live, new)
    assert sorted(run.data.tags[TAG_TRIAL_ID] for run in study.runs()) == ["new", "old"]


def _model_file(directory: Path) -> tuple[str, bytes]:
    """What the trainable reports as its model file (base64), and the file's bytes."""
    data = save_model(MLP(3, 1, (4, 4), "actmix", seed=0), directory / "model.pt").read_bytes()
    return base64.b64encode(data).decode("ascii"), data


def _image(client: Any, run_id: str, name: str) -> np.ndarray:
    return mpimg.imread(client.download_artifacts(run_id, name))


def test_finished_trial_logs_fold_scores_model_and_mixing_weights(
    study: Study, tmp_path: Path
) -> None:
    logger = study.logger()
    trial = FakeTrial("t")
    logger.on_trial_start(0, [trial], trial)
    encoded, raw = _model_file(tmp_path)
    weights = np.random.default_rng(0).dirichlet(np.ones(4), size=(2, 5))  # 2 layers, 5 neurons
    final = _final(
        4,
        1.5,
        **{
            payload.MODEL_FILE: encoded,
            payload.MIXING_WEIGHTS: weights.tolist(),
            payload.BASIS: ["sin", "tanh", "relu", "identity"],
        },
    )
    # the worker renders the files; the driver only writes what arrives
    final = with_rendered_artifacts(final, model="actmix")
    assert set(final[payload.ARTIFACTS]) == {"model.pt", "mixing_weights.png"}
    assert payload.MIXING_WEIGHTS not in final and payload.MODEL_FILE not in final
    _report_all(logger, trial, [_epoch(0, 2.0), final])
    logger.on_trial_complete(0, [trial], trial)
    client = client_for(study.uri)
    run = client.get_run(study.only_run().info.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["fold0_val_rmse"] == 1.25
    assert run.data.metrics["fold1_val_rmse"] == 1.75
    assert run.data.metrics[payload.DIVERGED_MEMBERS] == 0
    assert study.steps(run.info.run_id, "fold0_val_rmse") == [4]
    assert run.data.tags["ray_node_id"] == "node-7"
    artifacts = {entry.path for entry in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"config.yaml", "model.pt", "mixing_weights.png"}
    model_path = client.download_artifacts(run.info.run_id, "model.pt")
    assert Path(model_path).read_bytes() == raw
    assert load_model(model_path).spec["activation"] == "actmix"
    heatmap = _image(client, run.info.run_id, "mixing_weights.png")
    assert heatmap.ndim == 3 and heatmap.std() > 0.05  # a drawn figure, not a blank canvas
    (line,) = study.lines
    progress = "  [1/4 done, 0 running, best val_rmse_mean=1.5000, "
    assert line.startswith("trial-0000 finished val_rmse_mean=1.5000" + progress)


def test_learned_curves_are_drawn_for_activations_without_mixing_weights(study: Study) -> None:
    logger = study.logger()
    trial = FakeTrial("t")
    grid = np.linspace(-3, 3, 31)
    curves = [np.stack([np.tanh(grid), np.maximum(grid, 0)]).tolist()]  # 1 layer, 2 neurons
    final = _final(2, 1.0, **{payload.CURVE_GRID: grid.tolist(), payload.CURVES: curves})
    _report_all(logger, trial, [with_rendered_artifacts(final, model="prepu")])
    client = client_for(study.uri)
    run_id = study.only_run().info.run_id
    artifacts = {entry.path for entry in client.list_artifacts(run_id)}
    assert artifacts == {"config.yaml", "learned_curves.png"}
    assert _image(client, run_id, "learned_curves.png").std() > 0.05


def test_final_report_seen_by_an_earlier_driver_still_finishes_the_run(study: Study) -> None:
    first = study.logger()
    trial = FakeTrial("t")
    _report_all(first, trial, [_epoch(0, 2.0), _final(1, 1.5)])
    # a restarted driver learns of the completion from the trial's last result alone
    study.logger().on_trial_complete(0, [trial], trial)
    assert study.only_run().info.status == "FINISHED"
    assert study.steps(study.only_run().info.run_id) == [0, 1]


def test_trial_without_final_report_was_stopped_early(study: Study) -> None:
    logger = study.logger()
    trial = FakeTrial("t")
    _report_all(logger, trial, [_epoch(0, 2.0), _epoch(1, 1.9)])
    logger.on_trial_complete(0, [trial], trial)
    run = study.only_run()
    # FINISHED with the tag: a stop that is part of the search is no failure (KILLED shows
    # as a red cross in MLflow's UI); KILLED is kept for trials a stop signal cut short
    assert run.info.status == "FINISHED"
    assert run.data.tags["stopped_early"] == "true"
    assert "failure_reason" not in run.data.tags
    assert payload.DIVERGED_MEMBERS not in run.data.metrics
    (line,) = study.lines
    progress = "  [1/4 done, 0 running, no result yet, "  # a stopped trial is not a result
    assert line.startswith("trial-0000 stopped early val_rmse_mean=1.9000" + progress)


@pytest.mark.parametrize("interrupted", [False, True])
def test_runs_left_running_end_as_stopped_early_or_cut_short(
    study: Study, interrupted: bool
) -> None:
    """After the driver was down: a run that reached its final report is FINISHED; one that
    did not was stopped by the scheduler (FINISHED, tagged) or, when a stop signal ended the
    study, cut short (KILLED, tagged interrupted: resume reopens it)."""
    client = client_for(study.uri)
    ids = {}
    for name, final in (("done", True), ("partial", False)):
        tags = {TAG_PARENT: study.parent_run_id, TAG_ROLE: "trial"}
        run_id = client.create_run(study.experiment_id, run_name=name, tags=tags).info.run_id
        client.log_metric(run_id, OBJECTIVE, 1.0)
        if final:
            client.log_metric(run_id, payload.DIVERGED_MEMBERS, 0.0)
        ids[name] = run_id
    end_open_trials(study.uri, study.experiment_id, study.parent_run_id, interrupted=interrupted)
    done, partial = (client.get_run(ids[name]) for name in ("done", "partial"))
    assert done.info.status == "FINISHED" and not {"stopped_early", "interrupted"} & set(
        done.data.tags
    )
    if interrupted:
        assert partial.info.status == "KILLED" and partial.data.tags["interrupted"] == "true"
        assert "stopped_early" not in partial.data.tags
    else:
        assert partial.info.status == "FINISHED"
        assert partial.data.tags["stopped_early"] == "true"


def test_diverged_trial_fails_with_its_reason(study: Study) -> None:
    logger = study.logger()
    trial = FakeTrial("t")
    reason = "2/2 members diverged (non-finite loss at epoch 3)"
    _report_all(logger, trial, [_final(3, math.nan, **{payload.DIVERGED_REASON: reason})])
    logger.on_trial_complete(0, [trial], trial)
    run = study.only_run()
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"] == reason
    assert "stopped_early" not in run.data.tags
    (line,) = study.lines
    assert line.startswith(f"trial-0000 failed ({reason})  [1/4 done, 0 running, no result yet")


def test_a_progress_line_comes_when_nothing_ended_for_a_while(study: Study, monkeypatch) -> None:
    logger = study.logger()
    trials = [FakeTrial("a"), FakeTrial("b"), FakeTrial("c", status="PENDING")]
    logger.on_step_end(0, trials)
    assert study.lines == []  # just started: nothing to say yet
    clock = progress_module.time.monotonic() + progress_module.HEARTBEAT_S + 61
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock)
    logger.on_step_end(1, trials)
    logger.on_step_end(2, trials)  # just said: not again
    (line,) = study.lines
    assert line.startswith("study demo: 0/4 done, 2 running, no result yet, 1m")


def test_every_hook_is_one_ray_tune_calls() -> None:
    """A misspelt hook is never called and fails silently (``on_step`` was one): every
    ``on_*`` method of the callback must be a hook of Tune's ``Callback``."""
    from ray.tune import Callback

    hooks = {name for name in vars(MlflowTrialLogger) if name.startswith("on_")}
    assert hooks and hooks <= set(vars(Callback)), hooks - set(vars(Callback))


def test_crashed_trial_fails_with_the_last_line_of_its_error(study: Study, tmp_path: Path) -> None:
    logger = study.logger()
    error_file = tmp_path / "error.txt"
    error_file.write_text(
        "Traceback (most recent call last):\n  ...\nValueError: omega_0 must be > 0\n\n"
    )
    trial = FakeTrial("t", error_file=str(error_file), error="remote copy, not read")
    logger.on_trial_start(0, [trial], trial)
    logger.on_trial_error(0, [trial], trial)
    run = study.only_run()
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"] == "ValueError: omega_0 must be > 0"


def test_crash_without_error_file_uses_the_trials_error(study: Study) -> None:
    logger = study.logger()
    trial = FakeTrial("t", error_file="/no/such/file", error="RayTaskError\nMemoryError: out")
    logger.on_trial_error(0, [trial], trial)
    assert study.only_run().data.tags["failure_reason"] == "MemoryError: out"


def test_each_recovery_counts_a_retry_and_keeps_the_latest_error(study: Study) -> None:
    logger = study.logger()
    trial = FakeTrial("t")
    logger.on_trial_start(0, [trial], trial)
    for attempt in (1, 2):
        trial.error = f"Traceback\nRuntimeError: crash {attempt}"
        logger.on_trial_recover(0, [trial], trial)
    tags = study.only_run().data.tags
    assert tags["retries"] == "2"
    assert tags["last_error"] == "RuntimeError: crash 2"
    assert study.only_run().info.status == "RUNNING"


def _mlflow_server(backend: str, port: int, log: Path):
    from tests.study.processes import answers, start_in_own_group, wait_until

    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = start_in_own_group(command, log=log, env=env)
    health = f"http://127.0.0.1:{port}/health"
    wait_until(lambda: answers(health) or server.poll() is not None, 120, "the MLflow server")
    assert server.poll() is None, log.read_text()[-2000:]
    return server


@pytest.mark.slow
def test_a_tracking_server_outage_does_not_hold_the_checkpoint_hook(tmp_path: Path) -> None:
    """With the server down, MLflow's client retries a write for about a minute; Tune's
    event loop waits on the checkpoint hook, so the hook must not wait for the write. The
    epochs are stored once the server is back, none lost or doubled."""
    from tests.study.processes import free_port, stop_group

    backend, port = f"sqlite:///{tmp_path / 'mlflow.db'}", free_port()
    server = _mlflow_server(backend, port, tmp_path / "server.log")
    try:
        uri = f"http://127.0.0.1:{port}"
        experiment_id, parent = open_study_run(
            uri, "outage", artifact_location=(tmp_path / "art").as_uri(), params={}, tags={}
        )
        study = Study(uri, experiment_id, parent)
        logger, trial = study.logger(), FakeTrial("t")
        logger.on_trial_start(0, [trial], trial)
        _report_all(logger, trial, [_epoch(0, 2.0)])
        logger.on_checkpoint(0, [trial], trial, None)  # stored while the server is up
        stop_group(server)
        _report_all(logger, trial, [_epoch(1, 1.9), _epoch(2, 1.8)])
        started = time.monotonic()
        logger.on_checkpoint(0, [trial], trial, None)
        waited = time.monotonic() - started
        assert waited < CHECKPOINT_FLUSH_S + 3, f"the hook waited {waited:.0f} s"
        server = _mlflow_server(backend, port, tmp_path / "server2.log")
        _report_all(logger, trial, [_final(3, 1.7)])
        logger.on_trial_complete(0, [trial], trial)
        logger.on_experiment_end([trial])
        assert study.steps(study.only_run().info.run_id) == [0, 1, 2, 3]
    finally:
        stop_group(server)
