"""Run a suite: nested cross-validation of every tuned model and reference on every dataset.

For each dataset the outer folds are made once per repeat (split seed
``protocol.split_seed`` + repeat); every model and reference of that dataset is scored on
exactly those folds. For each outer fold a
tuned model gets a study (the usual ``run`` machinery) over the outer-training rows
only; its best trial, chosen by inner-validation score, is retrained there with
``protocol.seeds`` seeds and scored once on the outer-test rows. A unit's result file
is written last, so a killed suite continues where it stopped: finished units are
skipped, an interrupted study is resumed, and nothing runs twice. Several drivers may
work on one suite side by side (``jobs``, or separate commands on one store): each unit
is claimed by one of them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actmix.config import RunConfig, config_from_dict, run_config_to_dict
from actmix.data import load_dataset
from actmix.metrics import primary_metric
from actmix.nested import evaluate_outer_fold
from actmix.splits import Splits, make_folds
from actmix.types import Dataset
from study.store import DEFAULT_STORE, default_store_uris, manifest_path, store_folder
from study.suite._checks import check_suite, unit_request
from study.suite._ensemble import retrain_ensemble
from study.suite._file import Suite, reference_config
from study.suite._lock import check_lock, determinants, write_lock
from study.suite._records import TunedStudy, UnitRecord
from study.suite._unit_runs import log_unit, unit_tags
from study.suite._units import (
    Unit,
    claim_unit,
    record_session,
    record_session_start,
    suite_directory,
    suite_units,
    write_unit,
)
from study.suite._workers import run_workers
from study.system import die_with_parent, provenance

__all__ = ["SuiteProgress", "run_suite", "suite_progress"]

Report = Callable[[str], None]


def _print(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class SuiteProgress:
    """Which units of a suite are done, which have a study under way, which are left."""

    done: tuple[Unit, ...]
    started: tuple[Unit, ...]  # a study exists but the unit has no result yet
    left: tuple[Unit, ...]

    @property
    def total(self) -> int:
        return len(self.done) + len(self.started) + len(self.left)


def suite_progress(suite: Suite, *, store: str = DEFAULT_STORE) -> SuiteProgress:
    """Read a suite's progress from its store (no Ray, nothing written)."""
    root = suite_directory(store_folder(store), suite)
    done, started, left = [], [], []
    for unit in suite_units(suite):
        if unit.path(root).is_file():
            done.append(unit)
        elif manifest_path(store_folder(store), unit.study_name(suite)).is_file():
            started.append(unit)
        else:
            left.append(unit)
    return SuiteProgress(tuple(done), tuple(started), tuple(left))


def run_suite(
    suite: Suite,
    *,
    store: str = DEFAULT_STORE,
    tracking_uri: str | None = None,
    address: str | None = None,
    jobs: int = 1,
    worker_of: int | None = None,
    report: Report = _print,
) -> SuiteProgress:
    """Run (or continue) every unit of ``suite``; returns the progress at the end.

    ``jobs`` > 1 runs that many suite drivers side by side on one Ray (see
    :mod:`study.suite._workers`); ``worker_of`` is set in such a driver (the parent's pid).
    """
    from study.tracking import check_tracking_uri

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs must be an integer >= 1, got {jobs!r}")
    if worker_of is not None and not die_with_parent(worker_of):
        return suite_progress(suite, store=store)  # the command that started us is gone
    store_path = store_folder(store)
    uri = tracking_uri or default_store_uris(store_path)[0]
    check_tracking_uri(uri)
    root = suite_directory(store_path, suite)
    # cheap first (no data loaded): a finished suite whose file changed must not say "done"
    check_lock(root, determinants(suite), source=f"suite {suite.name}")
    progress = suite_progress(suite, store=store)
    if not progress.started and not progress.left:
        if worker_of is None:
            report(f"suite {suite.name}: all {progress.total} units are done; nothing to run")
        return progress
    if worker_of is None:
        # every dataset and space, before Ray starts or the store is written
        current = check_suite(
            suite, store=str(store_path), tracking_uri=tracking_uri, address=address
        )
        check_lock(root, current, source=f"suite {suite.name}")
        root.mkdir(parents=True, exist_ok=True)
        write_lock(root, current)
        _follow_a_moved_store(suite, store_path, uri, report)
        (root / "suite.yaml").write_text(suite.text)
        side_by_side = f", {jobs} drivers side by side" if jobs > 1 else ""
        report(
            f"suite {suite.name}: {len(progress.done)} of {progress.total} units done, "
            f"{len(progress.started) + len(progress.left)} to run (store {store_path}"
            f"{side_by_side})"
        )
    started, began = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%S")
    if worker_of is None:  # a worker's time is inside its parent's session
        record_session_start(root, started=began)
    from study.run import create_schemas, start_ray
    from study.store import store_lock

    # before any driver of the suite writes: a reference unit's MLflow run would otherwise
    # create the schema beside another driver's study doing the same
    with store_lock(store_path):
        create_schemas(uri, default_store_uris(store_path)[1])

    ray_started = start_ray(address)
    try:
        if jobs > 1 and worker_of is None:
            import ray

            run_workers(
                suite,
                jobs=jobs,
                store=store_path,
                tracking_uri=tracking_uri,
                address=address or ray.get_runtime_context().gcs_address,
                report=report,
            )
        else:
            # drivers side by side share the head node's cores for their retraining
            threads = max(1, _cores() // jobs) if jobs > 1 else None
            _run_units(
                suite, store_path, uri, tracking_uri is None, address, threads, report, started
            )
    finally:
        if ray_started:
            import ray

            ray.shutdown()
        if worker_of is None:  # a worker's time is inside its parent's session
            record_session(
                root,
                started=began,
                seconds=time.perf_counter() - started,
                before=len(progress.done),
                after=sum(unit.path(root).is_file() for unit in suite_units(suite)),
                provenance=provenance(),
            )
    return suite_progress(suite, store=store)


def _follow_a_moved_store(suite: Suite, store: Path, uri: str, report: Report) -> None:
    """A store moved or copied as a whole since its studies started: point its MLflow
    artifact locations at the new place (the unit records of a finished study are then
    made from its own files), as ``resume`` does for one study."""
    import json

    from study.run import moved_from
    from study.store import relocate_mlflow_artifacts

    for unit in suite_units(suite):
        path = manifest_path(store, unit.study_name(suite))
        if unit.kind == "tuned" and path.is_file():
            old = moved_from(json.loads(path.read_text()), store)
            if old is not None and relocate_mlflow_artifacts(uri, old, store):
                report(f"suite {suite.name}: its store moved from {old} to {store}")
            return


def _run_units(
    suite: Suite,
    store: Path,
    uri: str,
    local_artifacts: bool,
    address: str | None,
    threads: int | None,
    report: Report,
    started: float,
) -> None:
    """Run every unit that is neither done nor claimed by another driver, in suite order."""
    # artifacts go beside a local store, never into the working directory
    artifacts = (store / "artifacts" / suite.name).as_uri() if local_artifacts else None
    root = suite_directory(store, suite)
    total = sum(1 for _ in suite_units(suite))
    for dataset_entry in suite.datasets:
        units = [u for u in suite_units(suite) if u.dataset == dataset_entry]
        context: _Context | None = None
        for unit in units:
            if unit.path(root).is_file():
                continue
            with claim_unit(root, unit) as mine:
                # done by another driver between the check above and the claim
                if not mine or unit.path(root).is_file():
                    continue
                if context is None:  # the data is loaded once a unit of it is ours
                    dataset = load_dataset(
                        dataset_entry.spec, target=dataset_entry.target, task=dataset_entry.task
                    )
                    context = _Context(
                        suite, store, uri, artifacts, address, threads, root, dataset, report
                    )
                if unit.kind == "ensemble":
                    _await_tuned(context, unit)
                _run_unit(context, unit)
            done = sum(u.path(root).is_file() for u in suite_units(suite))
            elapsed = time.perf_counter() - started
            report(f"suite {suite.name}: {done}/{total} units done ({elapsed:.0f}s)")


@dataclass(frozen=True, slots=True)
class _Context:
    suite: Suite
    store: Path
    tracking_uri: str
    artifacts: str | None  # the suite experiment's artifact folder in a local store
    address: str | None
    threads: int | None  # CPU threads of the retraining (None: all cores)
    root: Path
    dataset: Dataset
    report: Report
    outers: dict[int, Splits] = dataclasses.field(default_factory=dict)  # by repeat

    def outer(self, repeat: int) -> Splits:
        """The outer folds of repeat ``repeat``, made on first use."""
        if repeat not in self.outers:
            protocol = self.suite.protocol
            self.outers[repeat] = make_folds(
                self.dataset, protocol.outer_folds, protocol.repeat_seed(repeat)
            )
        return self.outers[repeat]


def _run_unit(context: _Context, unit: Unit) -> None:
    suite, protocol = context.suite, context.suite.protocol
    began = time.perf_counter()
    study: TunedStudy | None = None
    trials: list[dict[str, Any]] | None = None
    seeds = tuple(range(protocol.seeds))
    outer = context.outer(unit.repeat)
    said = f"{unit.dataset.label} {unit.fold_name}: {unit.label} ({unit.kind}), retraining"
    if unit.kind == "ensemble":
        top_k = suite.ensemble_top_k or 0
        context.report(f"{said} the top {top_k} of its study on {len(seeds)} seed(s)")
        config, scored = retrain_ensemble(
            context.dataset,
            outer,
            unit.outer_fold,
            tracking_uri=context.tracking_uri,
            study=unit.study_name(suite),
            top_k=top_k,
            seeds=seeds,
            threads=context.threads,
        )
    else:
        if unit.kind == "reference":
            (reference,) = [r for r in suite.references if r.label == unit.label]
            tuned = reference_config(reference, epochs=suite.study.epochs)
        else:
            study, tuned, trials = _tuned_config(context, unit)
        context.report(f"{said} on {len(seeds)} seed(s) and scoring the outer-test rows")
        config = run_config_to_dict(tuned)
        scored = evaluate_outer_fold(
            context.dataset, tuned, outer, unit.outer_fold, seeds=seeds, threads=context.threads
        )
    metric = primary_metric(context.dataset.task)
    values = [row[f"test_{metric.name}"] for row in scored.rows]
    record = UnitRecord(
        suite=suite.name,
        dataset=unit.dataset.label,
        dataset_spec=unit.dataset.spec,
        task=context.dataset.task,
        label=unit.label,
        model=unit.model,
        kind=unit.kind,
        outer_fold=unit.outer_fold,
        outer_folds=protocol.outer_folds,
        split_seed=protocol.repeat_seed(unit.repeat),
        fingerprint=outer.fingerprint(),
        metric=metric.name,
        direction=metric.direction,
        value=_mean(values),
        rows=list(scored.rows),
        config=config,
        study=study,
        seconds=time.perf_counter() - began,
        repeat=unit.repeat,
        provenance=provenance(),
    )
    record = dataclasses.replace(
        record, run_id=log_unit(context.tracking_uri, suite, unit, record, context.artifacts)
    )
    write_unit(context.root, unit, record, scored.test_idx, scored.test_prediction, trials)
    context.report(
        f"{unit.dataset.label} {unit.fold_name}: {unit.label} test {metric.name} {record.value:.4f}"
    )


def _tuned_config(
    context: _Context, unit: Unit
) -> tuple[TunedStudy, RunConfig, list[dict[str, Any]]]:
    """Run (or resume) the unit's study: its best trial's configuration, chosen on
    validation, and the study's trial history."""
    from study.report import load_history
    from study.run import resume_study, run_study, trial_history
    from study.tracking import export_best

    suite, name = context.suite, unit.study_name(context.suite)
    if manifest_path(context.store, name).is_file():
        if not _study_finished(context, name):
            context.report(f"{name}: resuming the interrupted study")
            # on this driver's Ray: the one the study started on may have been a
            # `--jobs` run's temporary Ray, gone with it
            resume_study(
                name, store=str(context.store), report=context.report, address=context.address
            )
    else:
        request = unit_request(
            suite,
            unit,
            store=str(context.store),
            tracking_uri=context.tracking_uri if context.artifacts is None else None,
            address=context.address,
        )
        run_study(request, report=context.report, tags=unit_tags(suite, unit, "study"))
    # kept beside the unit's record, so that the committed records name what was retrained
    _, exported = export_best(
        context.tracking_uri, name, unit.path(context.root).with_suffix(".best.yaml")
    )
    config = config_from_dict(RunConfig, exported, source=f"the best trial of {name}")
    # the store's own Optuna database: the parent run names the one the study started in,
    # which a moved store no longer has and a copied store's original still has
    optuna_storage = default_store_uris(context.store)[1]
    history = load_history(context.tracking_uri, name, storage=optuna_storage)
    study = TunedStudy(
        name=name,
        best_trial=exported["provenance"]["trial"],
        best_value=exported["provenance"]["value"],
        objective=exported["provenance"]["objective"],
        trial_states=dict(history.states),
        importances=dict(history.importances),
        importance_note=history.note,
    )
    trials = trial_history(optuna_storage, name)
    return study, config, trials


def _await_tuned(context: _Context, unit: Unit) -> None:
    """Before an ensemble unit: its tuned unit done, by another driver or now by this one."""
    tuned = unit.tuned()
    while not tuned.path(context.root).is_file():
        with claim_unit(context.root, tuned) as mine:
            if mine and not tuned.path(context.root).is_file():
                _run_unit(context, tuned)
                continue
        time.sleep(2)  # another driver runs it


def _study_finished(context: _Context, name: str) -> bool:
    import json

    from study.run import moved_from
    from study.store import relocate, relocated
    from study.tracking import run_finished

    manifest = json.loads(manifest_path(context.store, name).read_text())
    uri = manifest["tracking_uri"]
    old = moved_from(manifest, context.store)
    if old is not None:  # a moved or copied store: its tracking store moved with it
        with relocated(old, context.store):
            uri = relocate(uri)
    return run_finished(uri, manifest["parent_run_id"])


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan
