"""Ensembles of tuned configurations on an outer fold: averaged predictions, scored once.

A tuned model's top k configurations (by inner validation) are each retrained as the
single best is (``actmix.nested.evaluate_outer_fold``, the same seeds); the ensemble's
prediction for seed s is the mean of the k configurations' seed-s predictions
(probabilities for classification, original units for regression), and it is scored on
the outer-test rows like a single model. Nothing here sees a row that the
configurations' own evaluations did not: the ensemble is a function of their outer-test
predictions only.

``cross_validate_ensemble`` is the same over every fold of a k-fold split: what
``actmix-study cv --config`` runs for a file that ``export-best --top-k`` wrote.

>>> members = [evaluate_outer_fold(data, c, outer, 0, seeds=(0, 1)) for c in top]  # doctest: +SKIP
>>> ensemble = ensemble_outer_fold(data, members)  # doctest: +SKIP
>>> result = cross_validate_ensemble(data, top, folds=5, seeds=(0, 1))  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from actmix.config import RunConfig, run_config_to_dict
from actmix.cv import (
    CVResult,
    choose_split_seed,
    package_versions,
    score_rows,
    splits_record,
    summarise,
)
from actmix.metrics import metrics_for
from actmix.nested import OuterFoldResult, evaluate_outer_fold
from actmix.splits import make_folds
from actmix.types import Dataset

__all__ = ["cross_validate_ensemble", "ensemble_outer_fold"]


def ensemble_outer_fold(dataset: Dataset, members: Sequence[OuterFoldResult]) -> OuterFoldResult:
    """The ensemble of ``members`` (one configuration each, evaluated on the same outer
    fold with the same seeds): per seed, their mean test prediction and its test scores.

    Each row has ``seed``, the ``test_*`` metrics and ``members`` (k). ValueError when the
    members were not evaluated on the same rows with the same seeds.
    """
    if not members:
        raise ValueError("an ensemble needs at least one member")
    first = members[0]
    seeds = [row["seed"] for row in first.rows]
    for member in members[1:]:
        if not np.array_equal(member.test_idx, first.test_idx):
            raise ValueError("ensemble members were scored on different outer-test rows")
        if [row["seed"] for row in member.rows] != seeds:
            raise ValueError("ensemble members were trained with different seeds")
    # [members, seeds, rows(, classes)] -> [seeds, rows(, classes)]
    mean = np.mean(np.stack([member.test_prediction for member in members]), axis=0)
    rows = tuple(
        {
            "seed": seed,
            **score_rows(dataset, first.test_idx, mean[k], "test"),
            "members": len(members),
        }
        for k, seed in enumerate(seeds)
    )
    return OuterFoldResult(rows=rows, test_idx=first.test_idx, test_prediction=mean)


def cross_validate_ensemble(
    dataset: Dataset,
    configs: Sequence[RunConfig],
    *,
    folds: int = 10,
    seeds: Sequence[int] = (0,),
    split_seed: int | None = None,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> CVResult:
    """K-fold CV of the ensemble of ``configs``: on each fold every configuration is
    trained with ``seeds`` (early stopping on the fold's inner validation rows), and their
    mean prediction per seed is scored on the fold's test rows.

    The folds are chosen as ``cross_validate`` chooses them for ``configs[0]`` (an explicit
    ``split_seed``, else the study's split seed + 1 for exported configurations). Rows
    hold ``fold``, ``seed``, the ``test_*`` metrics and ``members``.
    """
    if not configs:
        raise ValueError("an ensemble needs at least one configuration")
    seeds = tuple(int(s) for s in seeds)
    started = time.perf_counter()
    splits = make_folds(dataset, folds, choose_split_seed(configs[0], split_seed, None))
    rows: list[dict[str, object]] = []
    for fold in range(splits.k):
        members = [
            evaluate_outer_fold(dataset, config, splits, fold, seeds=seeds, device=device)
            for config in configs
        ]
        rows += [{"fold": fold, **row} for row in ensemble_outer_fold(dataset, members).rows]
        if progress is not None:
            done = f"{len(configs)} configurations x {len(seeds)} seed(s)"
            progress(f"fold {fold + 1}/{splits.k}: {done} done")
    models = {config.model for config in configs}
    keys = [f"test_{metric.name}" for metric in metrics_for(dataset.task)]
    return CVResult(
        dataset=dataset.name,
        source=dataset.source,
        task=dataset.task,
        model_name=f"{configs[0].model}-ensemble" if len(models) == 1 else "ensemble",
        config={"ensemble": [run_config_to_dict(config) for config in configs]},
        splits=splits_record(splits),
        seeds=seeds,
        rows=tuple(rows),
        summary=summarise(rows, keys),
        seconds=time.perf_counter() - started,
        versions=package_versions(),
    )
