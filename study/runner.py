"""Run and resume studies: validate, start Ray, open MLflow/Optuna, tune, summarise.

Everything a user can get wrong is checked before Ray starts and before anything is
written to MLflow or Optuna. A study's settings are kept in a small manifest
(``<store>/studies/<name>.json``) so ``resume NAME`` can rebuild it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actmix.activations import make_activation
from actmix.config import RunConfig, run_config_to_dict
from actmix.cv import package_versions
from actmix.data import load_dataset
from actmix.splits import make_folds
from study.search import SchedulerKind, build_scheduler, build_searcher, optuna_trial_counts
from study.spaces import SearchSpace, load_space, space_for_model
from study.stores import default_store_uris
from study.tracking import (
    MlflowTrialLogger,
    check_tracking_uri,
    client_for,
    finish_study_run,
    open_study_run,
    trial_runs,
)
from study.trainables import StudySettings, objective_name, train_trial

__all__ = ["StudyOutcome", "StudyRequest", "resume_study", "run_study"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True, slots=True)
class StudyRequest:
    """What ``actmix-study run`` was asked for (defaults: the embedded small study)."""

    name: str | None = None
    dataset: str = "power_plant"
    target: str | None = None
    task: str | None = None
    model: str | None = None  # default: the space's model, else actmix
    space: str | None = None  # a YAML path or a bundled space name
    trials: int = 12
    folds: int = 5
    seeds: int = 1
    split_seed: int = 0
    epochs: int = 40
    max_concurrent: int = 2
    time_budget: float | None = None
    scheduler: SchedulerKind = "asha"
    grace_period: int = 10
    reduction_factor: float = 3.0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    store: str = "actmix-runs"
    tracking_uri: str | None = None
    optuna_storage: str | None = None
    seed: int = 0
    max_failures: int = 1
    checkpoint_every: int = 5

    def __post_init__(self) -> None:
        checks = [
            (self.trials >= 1, f"--trials must be >= 1, got {self.trials}"),
            (self.folds >= 2, f"--folds must be >= 2, got {self.folds}"),
            (self.seeds >= 1, f"--seeds must be >= 1, got {self.seeds}"),
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.max_concurrent >= 1, f"--max-concurrent must be >= 1, got {self.max_concurrent}"),
            (self.cpus_per_trial > 0, f"--cpus-per-trial must be > 0, got {self.cpus_per_trial}"),
            (self.gpus_per_trial >= 0, f"--gpus-per-trial must be >= 0, got {self.gpus_per_trial}"),
            (self.grace_period >= 1, f"--grace-period must be >= 1, got {self.grace_period}"),
            (
                self.reduction_factor > 1,
                f"--reduction-factor must be > 1, got {self.reduction_factor}",
            ),
            (self.max_failures >= 0, f"--max-failures must be >= 0, got {self.max_failures}"),
            (
                self.time_budget is None or self.time_budget > 0,
                f"--time-budget must be > 0 seconds, got {self.time_budget}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.name is not None and not _NAME.match(self.name):
            raise ValueError(
                f"bad study name {self.name!r}: use letters, digits, '.', '_' or '-' (max 100)"
            )


@dataclass(frozen=True, slots=True)
class StudyOutcome:
    name: str
    experiment_id: str
    parent_run_id: str
    tracking_uri: str
    objective: str
    mode: str
    counts: dict[str, int]
    best_trial: str | None
    best_value: float | None
    optuna: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A validated request with everything resolved (paths, URIs, space, objective)."""

    request: StudyRequest
    name: str
    model: str
    space: SearchSpace
    dataset_name: str
    task: str
    objective: str
    mode: str
    store: Path
    tracking_uri: str
    optuna_storage: str
    baseline: dict[str, Any]

    @property
    def manifest(self) -> Path:
        return self.store / "studies" / f"{self.name}.json"

    @property
    def ray_path(self) -> Path:
        return self.store / "ray"

    def settings(self) -> StudySettings:
        request = self.request
        return StudySettings(
            dataset=request.dataset,
            model=self.model,
            space=self.space,
            folds=request.folds,
            seeds=tuple(range(request.seed, request.seed + request.seeds)),
            split_seed=request.split_seed,
            epochs=request.epochs,
            target=request.target,
            task=request.task,
            checkpoint_every=request.checkpoint_every,
        )


def _absolute_dataset(spec: str) -> str:
    # Tune runs trials in their own working directories: a relative CSV path must not
    # depend on where the driver was started
    if spec.startswith("csv:"):
        return "csv:" + str(Path(spec.removeprefix("csv:")).expanduser().resolve())
    return spec


def check_ray_address(address: str, *, timeout: float = 5.0) -> None:
    """Fail fast when a Ray address does not answer (``ray.init`` would wait for minutes)."""
    if address == "auto":
        return  # ray.init finds the local cluster file or says there is none, at once
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"bad --address {address!r}; expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except OSError as error:
        raise ConnectionError(
            f"cannot reach Ray at {address} ({error.strerror or error}); start one with "
            "`ray start --head` or `ray up`, or leave out --address for a local Ray"
        ) from None


def _plan(request: StudyRequest) -> _Plan:
    """Validate everything that can be checked without Ray; write nothing."""
    request = dataclasses.replace(request, dataset=_absolute_dataset(request.dataset))
    space = load_space(request.space) if request.space else None
    model = request.model or (space.model if space else "actmix")
    space = space or space_for_model(model)
    if (model == "xgboost") != (space.model == "xgboost"):
        raise ValueError(
            f"search space {space.path} is for model {space.model!r}, which cannot train {model!r}"
        )
    dataset = load_dataset(request.dataset, target=request.target, task=request.task)  # type: ignore[arg-type]
    make_folds(dataset, request.folds, request.split_seed)  # too few rows/classes fail here
    baseline = space.baseline(RunConfig(model=model), epochs=request.epochs)
    if model != "xgboost":
        # bad activation options (e.g. a fixed omega_0 <= 0) fail here, not in every trial
        first = space.to_config(baseline, base=RunConfig(), epochs=request.epochs, model=model)
        make_activation(model, 2, 1, **first.mlp.activation)
    objective, mode = objective_name(dataset.task)
    name = request.name or f"{dataset.name}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"
    store = Path(request.store).expanduser().resolve()
    mlflow_uri, optuna_uri = default_store_uris(store)
    tracking_uri = request.tracking_uri or mlflow_uri
    check_tracking_uri(tracking_uri)
    if request.address:
        check_ray_address(request.address)
    return _Plan(
        request=request,
        name=name,
        model=model,
        space=space,
        dataset_name=dataset.name,
        task=dataset.task,
        objective=objective,
        mode=mode,
        store=store,
        tracking_uri=tracking_uri,
        optuna_storage=request.optuna_storage or optuna_uri,
        baseline=baseline,
    )


def _quiet_tune() -> None:
    # Tune's TensorBoard logger chokes on list-valued final results (per-fold scores);
    # the JSON and CSV loggers it needs are added explicitly. Checkpoint-sync warnings
    # are noise for trials this small
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def _start_ray(address: str | None) -> bool:
    """Connect to (or start) Ray; returns whether this call started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    _quiet_tune()
    try:
        if address:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        else:
            ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        target = address or "a local Ray"
        raise ConnectionError(f"cannot start or reach Ray at {target}: {error}") from None
    return True


def _check_resources(request: StudyRequest) -> None:
    import ray

    resources = ray.cluster_resources()
    gpus, cpus = resources.get("GPU", 0.0), resources.get("CPU", 0.0)
    if request.gpus_per_trial > 0 and gpus < request.gpus_per_trial:
        raise ValueError(
            f"--gpus-per-trial {request.gpus_per_trial} asked for, but the Ray cluster has "
            f"{gpus:g} GPUs; use --gpus-per-trial 0 or a cluster with GPU workers"
        )
    if cpus < request.cpus_per_trial:
        raise ValueError(
            f"--cpus-per-trial {request.cpus_per_trial} asked for, "
            f"but the Ray cluster has {cpus:g} CPUs"
        )


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _study_params(plan: _Plan) -> dict[str, Any]:
    request = plan.request
    return {
        "dataset": request.dataset,
        "model": plan.model,
        "task": plan.task,
        "space_file": plan.space.path,
        "space_sha256": plan.space.sha256(),
        "sampler": f"optuna TPE (multivariate, seed {request.seed})",
        "scheduler": (
            f"ASHA(grace_period={request.grace_period}, "
            f"reduction_factor={request.reduction_factor})"
            if request.scheduler == "asha"
            else "none"
        ),
        "trials": request.trials,
        "time_budget_s": request.time_budget or "none",
        "max_concurrent": request.max_concurrent,
        "folds": request.folds,
        "seeds": request.seeds,
        "split_seed": request.split_seed,
        "epochs": request.epochs,
        "objective": f"{plan.objective} ({plan.mode})",
        "optuna_storage": plan.optuna_storage,
        "git_commit": _git_commit(),
        **{f"version.{k}": v for k, v in package_versions().items()},
    }


def _trainable(plan: _Plan):
    from ray import tune

    resources = {"cpu": plan.request.cpus_per_trial, "gpu": plan.request.gpus_per_trial}
    return tune.with_resources(
        tune.with_parameters(train_trial, settings=plan.settings()), resources=resources
    )


class _TrialConfig:
    """Picklable ``sample -> RunConfig dict`` for the tracking callback."""

    def __init__(self, space: SearchSpace, epochs: int, model: str) -> None:
        self.space, self.epochs, self.model = space, epochs, model

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        config = self.space.to_config(
            sample, base=RunConfig(), epochs=self.epochs, model=self.model
        )
        return run_config_to_dict(config)


def _print(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _tuner(plan: _Plan, experiment_id: str, parent_run_id: str, report: Callable[[str], None]):
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    request = plan.request
    _quiet_tune()
    logger = MlflowTrialLogger(
        uri=plan.tracking_uri,
        experiment_id=experiment_id,
        parent_run_id=parent_run_id,
        study=plan.name,
        dataset=plan.dataset_name,
        model=plan.model,
        objective=plan.objective,
        mode=plan.mode,
        config_for_trial=_TrialConfig(plan.space, request.epochs, plan.model),
        report=report,
    )
    searcher = build_searcher(
        plan.space,
        metric=plan.objective,
        mode=plan.mode,
        baseline=plan.baseline,
        seed=request.seed,
        storage_url=plan.optuna_storage,
        study_name=plan.name,
        max_concurrent=request.max_concurrent,
    )
    # xgboost reports once per fold: ASHA's epoch milestones do not apply to it
    scheduler_kind = "none" if plan.model == "xgboost" else request.scheduler
    scheduler = build_scheduler(
        scheduler_kind,
        max_t=request.epochs + 1,
        grace_period=request.grace_period,
        reduction_factor=request.reduction_factor,
    )
    return tune.Tuner(
        _trainable(plan),
        tune_config=tune.TuneConfig(
            metric=plan.objective,
            mode=plan.mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=request.trials,
            time_budget_s=request.time_budget,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=plan.name,
            storage_path=str(plan.ray_path),
            callbacks=[logger, JsonLoggerCallback(), CSVLoggerCallback()],
            failure_config=tune.FailureConfig(max_failures=request.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=0,
        ),
    )


def _write_manifest(plan: _Plan, experiment_id: str, parent_run_id: str) -> None:
    plan.manifest.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "name": plan.name,
        "request": dataclasses.asdict(plan.request) | {"name": plan.name},
        "experiment_id": experiment_id,
        "parent_run_id": parent_run_id,
        "tracking_uri": plan.tracking_uri,
        "optuna_storage": plan.optuna_storage,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    partial = plan.manifest.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2))
    partial.replace(plan.manifest)


def _outcome(plan: _Plan, experiment_id: str, parent_run_id: str) -> StudyOutcome:
    import math

    runs = trial_runs(plan.tracking_uri, experiment_id, parent_run_id)
    counts = {"finished": 0, "stopped": 0, "failed": 0, "running": 0}
    best_name, best_value = None, None
    for run in runs:
        status = run.info.status
        key = {"FINISHED": "finished", "KILLED": "stopped", "FAILED": "failed"}.get(
            status, "running"
        )
        counts[key] += 1
        value = run.data.metrics.get(plan.objective)
        if status == "FAILED" or value is None or not math.isfinite(value):
            continue
        better = best_value is None or (
            value < best_value if plan.mode == "min" else value > best_value
        )
        if better:
            best_name, best_value = run.info.run_name, value
    try:
        optuna_counts = optuna_trial_counts(plan.optuna_storage, plan.name)
    except Exception:
        optuna_counts = {}
    return StudyOutcome(
        name=plan.name,
        experiment_id=experiment_id,
        parent_run_id=parent_run_id,
        tracking_uri=plan.tracking_uri,
        objective=plan.objective,
        mode=plan.mode,
        counts=counts,
        best_trial=best_name,
        best_value=best_value,
        optuna=optuna_counts,
    )


def _tune(plan: _Plan, tuner, experiment_id: str, parent_run_id: str) -> StudyOutcome:
    status = "FAILED"
    try:
        tuner.fit()
        _reconcile(plan, experiment_id, parent_run_id)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        outcome = _outcome(plan, experiment_id, parent_run_id)
        summary = {f"trials_{k}": v for k, v in outcome.counts.items()}
        if outcome.best_value is not None:
            summary[f"best_{plan.objective}"] = outcome.best_value
        finish_study_run(plan.tracking_uri, parent_run_id, status, summary)
    return outcome


def _reconcile(plan: _Plan, experiment_id: str, parent_run_id: str) -> None:
    """End child runs left RUNNING (e.g. a trial that finished while the driver was down)."""
    client = client_for(plan.tracking_uri)
    for run in trial_runs(plan.tracking_uri, experiment_id, parent_run_id):
        if run.info.status != "RUNNING":
            continue
        final = run.data.metrics.get("diverged_members") is not None
        client.set_terminated(run.info.run_id, status="FINISHED" if final else "KILLED")
        if not final:
            client.set_tag(run.info.run_id, "stopped_early", "true")


def run_study(request: StudyRequest, *, report: Callable[[str], None] = _print) -> StudyOutcome:
    """Validate, then run a whole study; returns its summary."""
    plan = _plan(request)
    if plan.manifest.exists():
        raise ValueError(
            f"study {plan.name!r} already exists in {plan.store}; resume it with "
            f"`actmix-study resume {plan.name}` or choose another --name"
        )
    started_ray = _start_ray(request.address)
    try:
        _check_resources(request)
        experiment_id, parent_run_id = open_study_run(
            plan.tracking_uri,
            plan.name,
            artifact_location=(
                (plan.store / "artifacts" / plan.name).as_uri()
                if request.tracking_uri is None
                else None
            ),
            params=_study_params(plan),
            tags={
                "actmix.dataset": plan.dataset_name,
                "actmix.model": plan.model,
                "actmix.metric": plan.objective,
                "actmix.mode": plan.mode,
            },
        )
        _write_manifest(plan, experiment_id, parent_run_id)
        report(
            f"study {plan.name}: {plan.model} on {plan.dataset_name}, {request.trials} trials x "
            f"{request.folds} folds, objective {plan.objective} ({plan.mode}); "
            f"MLflow parent run {parent_run_id}"
        )
        tuner = _tuner(plan, experiment_id, parent_run_id, report)
        return _tune(plan, tuner, experiment_id, parent_run_id)
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def load_manifest(name: str, store: str) -> dict[str, Any]:
    path = Path(store).expanduser().resolve() / "studies" / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
        listing = ", ".join(known) if known else "none"
        raise ValueError(
            f"no study named {name!r} in {path.parent.parent}; known studies: {listing}"
        )
    return json.loads(path.read_text())


def resume_study(
    name: str, *, store: str = "actmix-runs", report: Callable[[str], None] = _print
) -> StudyOutcome:
    """Restore a study whose driver died: unfinished trials continue from checkpoints."""
    from ray import tune

    manifest = load_manifest(name, store)
    request = StudyRequest(**manifest["request"])
    plan = _plan(request)
    path = plan.ray_path / plan.name
    if not tune.Tuner.can_restore(str(path)):
        raise ValueError(f"study {name!r} has no Ray Tune state at {path}; nothing to resume")
    started_ray = _start_ray(request.address)
    try:
        _check_resources(request)
        experiment_id, parent_run_id = manifest["experiment_id"], manifest["parent_run_id"]
        client_for(plan.tracking_uri).update_run(parent_run_id, status="RUNNING")
        report(f"resuming study {name} (MLflow parent run {parent_run_id})")
        tuner = tune.Tuner.restore(
            str(path), _trainable(plan), resume_unfinished=True, resume_errored=True
        )
        return _tune(plan, tuner, experiment_id, parent_run_id)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
