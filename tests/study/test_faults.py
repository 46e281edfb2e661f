"""What goes wrong on real clusters: a killed driver or worker, diverging and crashing trials."""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from study.cli import main
from study.run import ORPHAN_FAILURE, ORPHAN_REASON
from tests.study.processes import (
    signal_when_ready,
    study_command,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

CHECKPOINT_EVERY = 5  # StudySettings.checkpoint_every


def _children(uri: str, study: str):
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return client, [r for r in runs if r.data.tags.get("actmix.role") == "trial"]


def _checkpointed(uri: str, study: str) -> set[str]:
    """Trial runs still RUNNING that logged epoch CHECKPOINT_EVERY (a checkpoint exists)."""
    try:
        client, runs = _children(uri, study)
    except Exception:  # the store or the experiment does not exist yet
        return set()
    return {
        run.info.run_id
        for run in runs
        if run.info.status == "RUNNING"
        and any(
            m.step >= CHECKPOINT_EVERY
            for m in client.get_metric_history(run.info.run_id, "val_rmse_mean")
        )
    }


def _run_until_a_trial_finished(
    tmp_path: Path,
    name: str,
    args: list[str],
    env: dict[str, str],
    stop: signal.Signals,
    *,
    command: list[str] | None = None,
    ready: Callable[[str], bool] | None = None,
    what: str = "the first finished trial",
) -> tuple[int, str]:
    """Start ``run --name NAME ARGS`` (or ``command``); once a trial has finished (or
    ``ready(output)``), send ``stop`` to the driver's process group. Returns the exit code
    and the driver's output."""
    log = tmp_path / "driver.log"
    code, _ = signal_when_ready(
        command or study_command("run", "--name", name, *args),
        log=log,
        env=env,
        ready=ready or (lambda output: "finished val_rmse_mean" in output),
        what=what,
        stop=stop,
        grace=30,
    )
    return code, log.read_text()


def test_resume_after_the_driver_is_killed_twice(tmp_path):
    """kill -9 while the first trials run (none finished), then kill -9 the resume once it
    is half done; the store moves as a whole, and the second resume finishes it there:
    every trial once, no configuration twice."""
    store = tmp_path / "store"
    uri = f"sqlite:///{store / 'mlflow.db'}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    args = [
        "--trials",
        "5",
        "--folds",
        "2",
        "--epochs",
        "25",
        "--scheduler",
        "none",
        "--store",
        str(store),
    ]
    # first kill: the first trials are under way, one has checkpointed, none has finished
    _run_until_a_trial_finished(
        tmp_path,
        "killed",
        args,
        env,
        signal.SIGKILL,
        ready=lambda _output: bool(_checkpointed(uri, "killed")),
        what="a checkpointed first trial",
    )
    client, before = _children(uri, "killed")
    assert before and all(r.info.status == "RUNNING" for r in before)
    # runs that had passed their first checkpoint (epoch 5) when the driver died
    checkpointed = _checkpointed(uri, "killed")
    assert checkpointed, "the kill came before any running trial checkpointed"

    # second kill: the resume itself, half done, once it has finished a trial
    resume = study_command("resume", "killed", "--store", str(store))
    _run_until_a_trial_finished(tmp_path, "killed", [], env, signal.SIGKILL, command=resume)
    _, between = _children(uri, "killed")
    assert any(r.info.status == "FINISHED" for r in between)
    assert any(r.info.status == "RUNNING" for r in between)

    # the store moves as a whole before the last resume, which finishes it in its new place
    old_store, store = store, tmp_path / "moved" / "store"
    store.parent.mkdir()
    shutil.move(old_store, store)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    resumed = subprocess.run(
        study_command("resume", "killed", "--store", str(store)),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"its store moved from {old_store} to {store}" in resumed.stdout + resumed.stderr
    # Tune's result grid misses files a killed driver never wrote: not the user's concern
    assert "Failed to fetch metrics" not in resumed.stdout + resumed.stderr
    assert not old_store.exists()  # nothing of the study went back to the old place

    client, after = _children(uri, "killed")
    for run in after:
        assert run.info.artifact_uri.startswith(store.as_uri() + "/"), run.info.run_name
    assert len(after) == 5
    assert sorted(r.info.run_name for r in after) == [f"trial-{i:04d}" for i in range(5)]
    assert all(r.info.status == "FINISHED" for r in after)
    assert len({r.data.tags["trial_id"] for r in after}) == 5
    # runs that were under way were continued, not started again as new runs
    assert {r.info.run_id for r in before} <= {r.info.run_id for r in after}
    for run in after:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_rmse_mean")]
        assert steps == sorted(set(steps)), run.info.run_name  # no epoch logged twice
        if run.info.run_id in checkpointed:
            # continued from its checkpoint, not trained again from epoch 0
            assert int(run.data.tags["resumed_from_epoch"]) >= 5, run.info.run_name
    study = optuna.load_study(study_name="killed", storage=f"sqlite:///{store / 'optuna.db'}")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 5
    # a kill between asking a trial and storing its configuration leaves a trial that never
    # trained: the resume fails it (saying why) instead of training half a configuration
    for trial in study.trials:
        if trial.state.name != "COMPLETE":
            assert trial.state.name == "FAIL" and not trial.intermediate_values, trial.number
            assert trial.user_attrs == {ORPHAN_FAILURE: ORPHAN_REASON}, trial.number
    # two kills and two resumes later, no configuration was sampled twice
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 5
    parent = client.search_runs(
        [client.get_experiment_by_name("killed").experiment_id], "tags.`actmix.role` = 'study'"
    )
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"


def test_a_packed_study_resumes_after_kill_9_with_every_configuration_once(tmp_path):
    """kill -9 while both packs run (a checkpoint written, nothing finished); the resume
    rebuilds the rung board from Optuna and ends every configuration exactly once."""
    store = tmp_path / "store"
    uri = f"sqlite:///{store / 'mlflow.db'}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    args = ["--pack", "2", "--trials", "4", "--folds", "2", "--epochs", "16"]
    args += ["--grace-period", "8", "--reduction-factor", "2", "--store", str(store)]
    _run_until_a_trial_finished(
        tmp_path,
        "packkill",
        args,
        env,
        signal.SIGKILL,
        ready=lambda _output: bool(_checkpointed(uri, "packkill")),
        what="a checkpointed pack",
    )
    _, before = _children(uri, "packkill")
    checkpointed = _checkpointed(uri, "packkill")
    assert checkpointed, "the kill came before any pack checkpointed"
    resumed = subprocess.run(
        study_command("resume", "packkill", "--store", str(store)),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Failed to fetch metrics" not in resumed.stdout + resumed.stderr
    client, after = _children(uri, "packkill")
    assert sorted(r.info.run_name for r in after) == [f"trial-{i:04d}" for i in range(4)]
    assert {r.info.run_id for r in before} <= {r.info.run_id for r in after}
    study = optuna.load_study(study_name="packkill", storage=f"sqlite:///{store / 'optuna.db'}")
    trained = [t for t in study.trials if ORPHAN_FAILURE not in t.user_attrs]
    assert len(trained) == 4
    assert len({tuple(sorted(t.params.items())) for t in trained}) == 4
    runs = {r.info.run_name: r for r in after}
    for trial in trained:
        run = runs[f"trial-{trial.number:04d}"]
        assert run.info.status == "FINISHED", trial.number
        stopped = run.data.tags.get("stopped_early") == "true"
        assert stopped == (trial.state.name == "PRUNED"), trial.number
        if trial.state.name == "PRUNED":  # stopped at a rung (epochs 8 and 16), not elsewhere
            assert max(trial.intermediate_values) in (8, 16), trial.intermediate_values
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_rmse_mean")]
        assert steps == sorted(set(steps)), run.info.run_name  # no epoch logged twice
        if run.info.run_id in checkpointed:
            assert int(run.data.tags["resumed_from_epoch"]) >= CHECKPOINT_EVERY


@pytest.mark.usefixtures("local_ray")
def test_diverging_trials_fail_with_a_reason_and_the_study_finishes(tmp_path, capsys):
    space = tmp_path / "diverge.yaml"
    space.write_text(
        "description: learning rates no network survives\nmodel: relu\n"
        "params:\n  train.lr: {fixed: 1.0e+12}\n  train.grad_clip: {fixed: 1.0e+12}\n"
        "  mlp.dropout: {uniform: [0.0, 0.2]}\n"
    )
    store = tmp_path / "store"
    code = main(
        [
            "run",
            "--name",
            "diverge",
            "--space",
            str(space),
            "--trials",
            "2",
            "--folds",
            "2",
            "--epochs",
            "5",
            "--store",
            str(store),
        ]
    )
    assert code == 1  # the study ran to its end, but no trial finished
    summary = capsys.readouterr().out
    assert "2 failed" in summary and "no trial finished" in summary
    _, children = _children(f"sqlite:///{store / 'mlflow.db'}", "diverge")
    assert len(children) == 2
    for child in children:
        assert child.info.status == "FAILED"
        assert "diverged" in child.data.tags["failure_reason"]
    study = optuna.load_study(study_name="diverge", storage=f"sqlite:///{store / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]


@pytest.mark.usefixtures("local_ray")
def test_a_crashing_trial_is_retried_then_failed(tmp_path, capsys):
    space = tmp_path / "crash.yaml"
    # the baseline (omega_0 = 1) is valid; every other choice makes ActMix raise in the worker
    space.write_text(
        "description: crash\nmodel: actmix\n"
        "params:\n  mlp.activation.omega_0: {choice: [1.0, -1.0, -2.0, -3.0]}\n"
    )
    store = tmp_path / "store"
    code = main(
        [
            "run",
            "--name",
            "crash",
            "--space",
            str(space),
            "--trials",
            "4",
            "--folds",
            "2",
            "--epochs",
            "2",
            "--max-failures",
            "1",
            "--seed",
            "1",
            "--store",
            str(store),
        ]
    )
    assert code == 0
    assert "failed" in capsys.readouterr().out
    _, children = _children(f"sqlite:///{store / 'mlflow.db'}", "crash")
    failed = [c for c in children if c.info.status == "FAILED"]
    assert len(children) == 4 and failed
    for child in failed:
        assert "omega_0 must be > 0" in child.data.tags["failure_reason"]
        assert child.data.tags["retries"] == "1"
        assert float(child.data.params["mlp.activation.omega_0"]) < 0
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert all(float(c.data.params["mlp.activation.omega_0"]) > 0 for c in finished)
    study = optuna.load_study(study_name="crash", storage=f"sqlite:///{store / 'optuna.db'}")
    assert sorted(t.state.name for t in study.trials) == sorted(
        "FAIL" if c.info.status == "FAILED" else "COMPLETE" for c in children
    )


def _kill_first_trial_worker_after_a_checkpoint(results: Path, killed: list[int]) -> None:
    """Watch the Ray results folder; once the driver knows a checkpoint, SIGKILL the worker.

    A checkpoint folder appears as soon as the worker saved it; the driver learns of it
    only with that epoch's result, which its JSON logger then appends to ``result.json``.
    Killing in between would (correctly) restart the trial from scratch. The worker is
    the process that reported those results (Tune's ``pid``), never one found by name.
    """
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not killed:
        for path in results.glob("*/*/result.json"):
            lines = _complete_lines(path)
            if len(lines) > CHECKPOINT_EVERY:
                pid = json.loads(lines[0])["pid"]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.02)


def _complete_lines(path: Path) -> list[bytes]:
    try:
        written = path.read_bytes()
    except OSError:
        return []
    # the logger may be mid-write: what follows the last newline is not a line yet
    return written.split(b"\n")[:-1]


@pytest.mark.usefixtures("local_ray")
def test_a_killed_worker_process_is_retried_from_its_checkpoint(tmp_path, capsys):
    store = tmp_path / "store"
    killed: list[int] = []
    watcher = threading.Thread(
        target=_kill_first_trial_worker_after_a_checkpoint,
        args=(store / "ray", killed),
        daemon=True,
    )
    watcher.start()
    code = main(
        [
            "run",
            "--name",
            "workerkill",
            "--model",
            "relu",
            "--trials",
            "2",
            "--folds",
            "2",
            "--epochs",
            "60",
            "--scheduler",
            "none",
            "--max-concurrent",
            "1",
            "--max-failures",
            "1",
            "--store",
            str(store),
        ]
    )
    watcher.join(timeout=5)
    assert code == 0
    assert len(killed) == 1, "the watcher found no trainable worker to kill"
    assert "2 finished" in capsys.readouterr().out
    _, children = _children(f"sqlite:///{store / 'mlflow.db'}", "workerkill")
    assert sorted(c.info.status for c in children) == ["FINISHED", "FINISHED"]
    (retried,) = [c for c in children if c.data.tags.get("retries")]
    assert retried.data.tags["retries"] == "1"
    # from its last checkpoint, not from epoch 0
    assert int(retried.data.tags["resumed_from_epoch"]) >= CHECKPOINT_EVERY
    study = optuna.load_study(study_name="workerkill", storage=f"sqlite:///{store / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]


def test_ctrl_c_ends_the_study_as_interrupted_and_resume_finishes_it_from_elsewhere(tmp_path):
    """Ctrl-C at the terminal (SIGINT to the driver's process group) mid-study: exit 130, the
    parent run KILLED and tagged, cut-short trials not called stopped early, a pasteable
    resume hint; then resumed from another working directory."""
    store = tmp_path / "store"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    args = ["--trials", "4", "--folds", "2", "--epochs", "25", "--scheduler", "none"]
    args += ["--store", str(store)]
    # what a terminal's Ctrl-C does: SIGINT to the driver's process group
    code, text = _run_until_a_trial_finished(tmp_path, "ctrl-c", args, env, signal.SIGINT)
    assert code == 130, text[-3000:]
    last = text.strip().splitlines()[-1]
    assert "interrupted (SIGINT)" in last
    assert f"`actmix-study resume ctrl-c --store {store}`" in last

    uri = f"sqlite:///{store / 'mlflow.db'}"
    client, before = _children(uri, "ctrl-c")
    parent = client.search_runs(
        [client.get_experiment_by_name("ctrl-c").experiment_id], "tags.`actmix.role` = 'study'"
    )[0]
    assert parent.info.status == "KILLED" and parent.data.tags["interrupted"] == "SIGINT"
    assert all(r.info.status != "RUNNING" for r in before)
    assert not any(r.data.tags.get("stopped_early") for r in before)  # none was stopped early
    cut_short = [r for r in before if r.data.tags.get("interrupted") == "true"]
    assert cut_short and all(r.info.status == "KILLED" for r in cut_short)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = subprocess.run(
        study_command("resume", "ctrl-c", "--store", str(store)),  # absolute
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert list(elsewhere.iterdir()) == []

    client, after = _children(f"sqlite:///{store / 'mlflow.db'}", "ctrl-c")
    assert sorted(r.info.run_name for r in after) == [f"trial-{i:04d}" for i in range(4)]
    states = {r.info.run_name: (r.info.status, r.data.tags.get("failure_reason")) for r in after}
    assert all(r.info.status == "FINISHED" for r in after), states
    assert not any("interrupted" in r.data.tags for r in after)
    assert all(r.info.artifact_uri.startswith(store.as_uri()) for r in after)
    study = optuna.load_study(study_name="ctrl-c", storage=f"sqlite:///{store / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    configurations = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(configurations)) == 4  # no configuration sampled twice across the resume
