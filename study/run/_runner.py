"""Run and resume studies: validate, start Ray, open MLflow/Optuna, tune, summarise.

Everything a user can get wrong is checked before Ray starts and before anything is
written to MLflow or Optuna. A study's settings are kept in a small manifest
(``<store>/studies/<name>.json``) so ``resume NAME`` can rebuild it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actmix.config import XGBOOST, RunConfig, run_config_to_dict
from study.request import StudyRequest
from study.run._adapters import RelocatableSearchGenerator
from study.run._disk import DiskGuard
from study.run._manifest import RECORDED_ADDRESS, moved_from, resume_plan, write_manifest
from study.run._outcome import StudyOutcome, study_outcome
from study.run._plan import StudyPlan, make_plan
from study.run._run_params import study_params
from study.run._rungs import start_rung_board
from study.run._search import (
    build_scheduler,
    build_searcher,
    trial_history,
)
from study.run._trainables import train_trial
from study.space import SearchSpace, config_from_sample
from study.store import (
    DEFAULT_STORE,
    check_free_space,
    relocate_mlflow_artifacts,
    relocated,
    store_flags,
    store_lock,
)
from study.system import StudyInterrupted, apply_environment_defaults, stop_signals
from study.tracking import (
    TAG_DATASET,
    TAG_METRIC,
    TAG_MODE,
    TAG_MODEL,
    MlflowTrialLogger,
    RunStatus,
    create_tracking_schema,
    end_open_trials,
    finish_study_run,
    mark_interrupted,
    open_study_run,
    reopen_interrupted,
)

__all__ = ["StudyOutcome", "create_schemas", "resume_study", "run_study", "start_ray"]

EXTENSION_SEED_STEP = 7919  # sampler seed of extension k: the study's seed + k x this


def start_ray(address: str | None) -> bool:
    """Connect to (or start) Ray; returns whether this call started it."""
    import ray

    if ray.is_initialized():
        return False
    apply_environment_defaults()
    # "token authentication is enabled" is said at every local start; it is Ray's default
    # and needs no action (an explicit RAY_AUTH_MODE silences it as well)
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR
    )
    # ray.init replaces the SIGTERM handler with a plain exit; a caller's own handler
    # (a suite's: SIGTERM stops it as Ctrl-C does) must survive it
    main_thread = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        target = address or "a local Ray"
        raise ConnectionError(f"cannot start or reach Ray at {target}: {error}") from None
    if callable(previous_sigterm):
        signal.signal(signal.SIGTERM, previous_sigterm)
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


def _trainable(plan: StudyPlan):
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
        config = config_from_sample(
            self.space, sample, base=RunConfig(), epochs=self.epochs, model=self.model
        )
        return run_config_to_dict(config)


def _print(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _tuner(plan: StudyPlan, experiment_id: str, parent_run_id: str, report: Callable[[str], None]):
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    request = plan.request
    apply_environment_defaults()
    logger = MlflowTrialLogger(
        uri=plan.tracking_uri,
        experiment_id=experiment_id,
        parent_run_id=parent_run_id,
        study=plan.name,
        first_index=plan.first_index,
        dataset=plan.dataset_name,
        model=plan.model,
        objective=plan.objective,
        mode=plan.mode,
        config_for_trial=_TrialConfig(plan.space, request.epochs, plan.model),
        report=report,
        trials=request.trials,
    )
    searcher = build_searcher(
        plan.space,
        metric=plan.objective,
        mode=plan.mode,
        baseline=plan.baseline,
        # an extension's sampler draws afresh: the same seed would retrace the first draws
        seed=request.seed + EXTENSION_SEED_STEP * plan.extension,
        n_startup_trials=request.n_startup_trials,
        storage_url=plan.optuna_storage,
        study_name=plan.name,
        max_concurrent=request.max_concurrent,
        model=plan.model,
        pack=request.pack,
        trials=request.trials,
        warm=plan.warm.points if plan.warm is not None else (),
    )
    _start_rungs(plan)
    # xgboost reports once per fold: ASHA's epoch milestones do not apply to it; packs
    # are stopped per configuration by their rung board, not by Tune
    scheduler_kind = "none" if plan.model == XGBOOST or request.pack > 1 else request.scheduler
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
            # our wrapper (Tune's would be plain): a moved store's resume relocates it
            search_alg=RelocatableSearchGenerator(searcher),
            scheduler=scheduler,
            num_samples=plan.packs,
            time_budget_s=request.time_budget,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=plan.tune_name,
            storage_path=str(plan.ray_path),
            callbacks=[
                logger,
                DiskGuard(str(plan.store)),
                JsonLoggerCallback(),
                CSVLoggerCallback(),
            ],
            failure_config=tune.FailureConfig(max_failures=request.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=0,
        ),
    )


def _start_rungs(plan: StudyPlan) -> None:
    """Start a packed study's rung board, with what its Optuna trials reached so far."""
    spec = plan.rungs()
    if spec is not None:
        start_rung_board(spec, trial_history(plan.optuna_storage, plan.name))


def _report_warm(plan: StudyPlan, report: Callable[[str], None]) -> None:
    warm = plan.warm
    if warm is None:
        return
    report(
        f"warm start from study {warm.source}: {len(warm.points)} of its "
        f"{plan.request.warm_start_top} best configurations are tried first, after the seed "
        "default"
    )
    for line in warm.skipped:
        report(f"  skipped {line}")


def _utilisation(grid: Any, plan: StudyPlan, started: float | None) -> float | None:
    """Seconds inside trainables over trial-slot seconds since ``started`` (perf_counter)."""
    if started is None:
        return None
    busy = sum(float((result.metrics or {}).get("time_total_s", 0.0)) for result in grid)
    slots = min(plan.request.max_concurrent, plan.packs)
    return busy / (slots * (time.perf_counter() - started))


def _tune(
    plan: StudyPlan, tuner, experiment_id: str, parent_run_id: str, *, started: float | None
) -> StudyOutcome:
    """``tuner.fit()``, then end the parent run: FINISHED, FAILED, or KILLED by a signal
    (``StudyInterrupted`` raised after the run is ended, its Tune state saved).

    ``started``: when the study began (``time.perf_counter``), for its utilisation."""
    status: RunStatus = "FAILED"
    interrupted: str | None = None
    utilisation: float | None = None
    try:
        with stop_signals() as received:
            grid = tuner.fit()
        utilisation = _utilisation(grid, plan, started)
        interrupted = received.name
        end_open_trials(
            plan.tracking_uri, experiment_id, parent_run_id, interrupted=interrupted is not None
        )
        status = "KILLED" if interrupted else "FINISHED"
    except KeyboardInterrupt:
        # a second Ctrl-C, or one before Tune started: stop now, runs stay as they are
        interrupted, status = "SIGINT", "KILLED"
    finally:
        outcome = study_outcome(plan, experiment_id, parent_run_id, report=_print)
        outcome = dataclasses.replace(outcome, utilisation=utilisation)
        summary: dict[str, float] = {f"trials_{k}": v for k, v in outcome.counts.items()}
        if outcome.best_value is not None:
            summary[f"best_{plan.objective}"] = outcome.best_value
        if utilisation is not None:
            summary["slot_utilisation"] = utilisation
        if interrupted:
            mark_interrupted(plan.tracking_uri, parent_run_id, interrupted)
        finish_study_run(plan.tracking_uri, parent_run_id, status, summary)
    if interrupted:
        raise StudyInterrupted(plan.name, interrupted)
    return outcome


def create_schemas(tracking_uri: str, optuna_storage: str) -> None:
    """Create the MLflow and Optuna database schemas if they are missing (hold the store
    lock: two creations at once corrupt a new SQLite store)."""
    import optuna

    create_tracking_schema(tracking_uri)
    optuna.storages.RDBStorage(optuna_storage)


def run_study(
    request: StudyRequest,
    *,
    report: Callable[[str], None] = _print,
    tags: dict[str, str] | None = None,
) -> StudyOutcome:
    """Validate, then run a whole study; returns its summary.

    ``tags`` are added to the study's MLflow parent run (a suite names itself there).
    """
    started = time.perf_counter()
    plan = make_plan(request)
    if plan.manifest.exists():
        raise ValueError(
            f"study {plan.name!r} already exists in {plan.store}; resume it with "
            f"`actmix-study resume {plan.name}{store_flags(store=request.store)}` "
            "or choose another --name"
        )
    check_free_space(plan.store)
    started_ray = start_ray(request.address)
    try:
        _check_resources(request)
        with store_lock(plan.store):
            create_schemas(plan.tracking_uri, plan.optuna_storage)
            experiment_id, parent_run_id = open_study_run(
                plan.tracking_uri,
                plan.name,
                experiment=plan.experiment,
                artifact_location=(
                    (plan.store / "artifacts" / plan.experiment).as_uri()
                    if request.tracking_uri is None
                    else None
                ),
                params=study_params(plan),
                tags={
                    TAG_DATASET: plan.dataset_name,
                    TAG_MODEL: plan.model,
                    TAG_METRIC: plan.objective,
                    TAG_MODE: plan.mode,
                    **(tags or {}),
                },
            )
        try:
            tuner = _tuner(plan, experiment_id, parent_run_id, report)
        except BaseException:
            # no study to resume: end what was opened, and the name stays free
            finish_study_run(plan.tracking_uri, parent_run_id, "FAILED", {})
            raise
        write_manifest(plan, experiment_id, parent_run_id)
        _report_warm(plan, report)
        packed = f" in packs of {request.pack}" if request.pack > 1 else ""
        report(
            f"study {plan.name}: {plan.model} on {plan.dataset_name}, {request.trials} trials"
            f"{packed} x {request.folds} folds, objective {plan.objective} ({plan.mode}); "
            f"MLflow parent run {parent_run_id}"
        )
        return _tune(plan, tuner, experiment_id, parent_run_id, started=started)
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def resume_study(
    name: str,
    *,
    store: str = DEFAULT_STORE,
    report: Callable[[str], None] = _print,
    address: str | None = RECORDED_ADDRESS,
) -> StudyOutcome:
    """Restore a study whose driver died: unfinished trials continue from checkpoints.

    A store moved as a whole continues in its new place (see ``study.store._relocation``).
    ``address``: the Ray to resume on (None: a local one); by default the one the study
    was started with.
    """
    from ray import tune

    manifest, plan = resume_plan(name, store, address=address)
    path = plan.ray_path / plan.tune_name
    if not tune.Tuner.can_restore(str(path)):
        raise ValueError(f"study {name!r} has no Ray Tune state at {path}; nothing to resume")
    old = moved_from(manifest, plan.store)
    with relocated(old, plan.store) if old is not None else contextlib.nullcontext():
        return _resume(plan, manifest, old, report)


def _resume(
    plan: StudyPlan,
    manifest: dict[str, Any],
    old: Path | None,
    report: Callable[[str], None],
) -> StudyOutcome:
    from ray import tune

    name, request = plan.name, plan.request
    path = plan.ray_path / plan.tune_name
    check_free_space(plan.store)
    started_ray = start_ray(request.address)
    try:
        _check_resources(request)
        experiment_id, parent_run_id = manifest["experiment_id"], manifest["parent_run_id"]
        if old is not None:
            relocate_mlflow_artifacts(plan.tracking_uri, old, plan.store)
            # from now on the manifest names the new place: a later resume needs no moving
            write_manifest(plan, experiment_id, parent_run_id)
            report(f"study {name}: its store moved from {old} to {plan.store}; continuing there")
        reopen_interrupted(plan.tracking_uri, experiment_id, parent_run_id)
        report(f"resuming study {name} (MLflow parent run {parent_run_id})")
        _start_rungs(plan)
        tuner = tune.Tuner.restore(
            str(path), _trainable(plan), resume_unfinished=True, resume_errored=True
        )
        return _tune(plan, tuner, experiment_id, parent_run_id, started=None)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
