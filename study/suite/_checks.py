"""A suite checked as a whole before its first unit, and the study request of a tuned unit.

``suite run`` calls :func:`check_suite` before Ray starts and before the store is
written: every dataset loads, every repeat's outer split and every outer fold's inner
split can be made, every tuned model's search space loads and builds its baseline, and
the tracking store, the Ray address or the local GPUs the budget asks for are there. A
bad dataset three hours into a suite would otherwise stop it there, after the earlier
datasets' units.
"""

from __future__ import annotations

import json
from typing import Any

from actmix.config import XGBOOST
from actmix.data import load_dataset
from actmix.nested import outer_training_set
from actmix.splits import make_folds
from study.request import StudyRequest
from study.store import manifest_path, store_folder
from study.suite._file import Suite
from study.suite._lock import check_study_request, determinants
from study.suite._units import Unit, suite_units

__all__ = ["check_suite", "unit_request"]


def unit_request(
    suite: Suite,
    unit: Unit,
    *,
    store: str,
    tracking_uri: str | None,
    address: str | None,
) -> StudyRequest:
    """The study a tuned unit runs: its model's space over its outer fold's training rows."""
    (model,) = [m for m in suite.models if m.label == unit.label]
    budget, protocol = suite.study, suite.protocol
    return StudyRequest(
        name=unit.study_name(suite),
        experiment=suite.name,  # one MLflow experiment holds the whole suite
        dataset=unit.dataset.spec,
        target=unit.dataset.target,
        task=unit.dataset.task,
        model=model.model,
        space=model.space,
        trials=budget.trials,
        n_startup_trials=budget.n_startup_trials,
        folds=protocol.inner_folds,
        split_seed=protocol.repeat_seed(unit.repeat),
        epochs=budget.epochs,
        max_concurrent=budget.max_concurrent,
        pack=1 if model.model == XGBOOST else budget.pack,
        scheduler=budget.scheduler,
        grace_period=budget.grace,
        cpus_per_trial=budget.cpus_per_trial,
        gpus_per_trial=budget.gpus_per_trial,
        address=address,
        store=store,
        tracking_uri=tracking_uri,
        outer_folds=protocol.outer_folds,
        outer_fold=unit.outer_fold,
    )


def check_suite(
    suite: Suite, *, store: str, tracking_uri: str | None, address: str | None
) -> dict[str, Any]:
    """ValueError (naming the dataset, model or study) for anything that would stop a unit
    or make it reuse a study made for other rows; returns what determines the units
    (:func:`study.suite._lock.determinants`, with the splits and spaces)."""
    from study.run import make_plan

    protocol = suite.protocol
    splits: dict[str, list[str]] = {}
    spaces: dict[str, str] = {}
    for entry in suite.datasets:
        where = f"dataset {entry.label} ({entry.spec})"
        try:
            dataset = load_dataset(entry.spec, target=entry.target, task=entry.task)
            splits[entry.label] = []
            for repeat in range(protocol.repeats):
                seed = protocol.repeat_seed(repeat)
                outer = make_folds(dataset, protocol.outer_folds, seed)
                splits[entry.label].append(outer.fingerprint())
                for fold in range(protocol.outer_folds):
                    rows = outer_training_set(dataset, outer, fold)
                    make_folds(rows, protocol.inner_folds, seed)
        except (ValueError, OSError) as error:
            raise ValueError(f"{where}: {error}") from None
    # once per model (nothing of it depends on the dataset, whose rows were checked above):
    # the space, its baseline, the stores, Ray or the GPUs
    for model in suite.models:
        unit = Unit(suite.datasets[0], model.label, model.model, "tuned", 0)
        request = unit_request(suite, unit, store=store, tracking_uri=tracking_uri, address=address)
        try:
            spaces[model.label] = make_plan(request).space.sha256()
        except ValueError as error:
            raise ValueError(f"model {model.label}: {error}") from None
    _check_existing_studies(suite, store=store, tracking_uri=tracking_uri, address=address)
    return determinants(suite, splits=splits, spaces=spaces)


def _check_existing_studies(
    suite: Suite, *, store: str, tracking_uri: str | None, address: str | None
) -> None:
    """A study already in the store under a unit's name must have been made for it."""
    for unit in suite_units(suite):
        if unit.kind != "tuned":
            continue
        path = manifest_path(store_folder(store), unit.study_name(suite))
        if path.is_file():
            request = unit_request(
                suite, unit, store=store, tracking_uri=tracking_uri, address=address
            )
            check_study_request(json.loads(path.read_text()), request, source=f"suite {suite.name}")
