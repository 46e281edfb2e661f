"""Nested cross-validation: outer folds for honest test scores, studies on the rest.

For each outer fold, a study sees only the outer-training rows (its own inner folds
are made from them), its best configuration is retrained on those rows with early
stopping on the fold's inner-validation rows, and the outer-test rows are scored
once. Every model of a dataset uses the same outer :class:`~actmix.splits.Splits`.

>>> outer = make_folds(dataset, 5, seed=0)  # doctest: +SKIP
>>> study_data = outer_training_set(dataset, outer, 2)  # doctest: +SKIP
>>> scored = evaluate_outer_fold(dataset, best_config, outer, 2, seeds=(0, 1, 2))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from actmix._threads import torch_threads
from actmix.config import XGBOOST, RunConfig
from actmix.cv import build_members, score_rows
from actmix.preprocessing import prepare_fold
from actmix.splits import Splits, make_folds
from actmix.trainer import fit, predict
from actmix.types import Dataset
from actmix.xgb import fit_xgboost_fold

__all__ = [
    "OuterFoldResult",
    "evaluate_outer_fold",
    "outer_training_rows",
    "outer_training_set",
    "state_digest",
    "study_rows",
    "subset_rows",
]


def outer_training_rows(splits: Splits, fold_index: int) -> np.ndarray:
    """Sorted rows of the dataset a study of outer fold ``fold_index`` may see."""
    if not 0 <= fold_index < splits.k:
        raise ValueError(f"outer fold must be in 0..{splits.k - 1}, got {fold_index}")
    fold = splits.folds[fold_index]
    return np.sort(np.concatenate([fold.train_idx, fold.val_idx]))


def outer_training_set(dataset: Dataset, splits: Splits, fold_index: int) -> Dataset:
    """The dataset restricted to outer fold ``fold_index``'s training rows (renumbered).

    The class list is kept whole, so every study of a dataset predicts the same classes.
    """
    if splits.n_rows != dataset.n_rows:
        raise ValueError(
            f"outer splits were made for {splits.n_rows} rows; "
            f"dataset {dataset.name!r} has {dataset.n_rows}"
        )
    return subset_rows(dataset, outer_training_rows(splits, fold_index))


def subset_rows(dataset: Dataset, rows: np.ndarray) -> Dataset:
    """``dataset`` with only ``rows`` (renumbered ``0..len(rows)-1``), same columns and classes."""

    def take(frame: Any) -> Any:
        return frame.iloc[rows].reset_index(drop=True)

    return Dataset(
        name=dataset.name,
        numeric=take(dataset.numeric),
        categorical=take(dataset.categorical),
        target=take(dataset.target),
        task=dataset.task,
        classes=dataset.classes,
        source=dataset.source,
    )


@dataclass(frozen=True, slots=True)
class OuterFoldResult:
    """Scores and predictions of one configuration on one outer fold.

    ``rows``: one dict per training seed with ``test_*`` and ``val_*`` metrics.
    ``test_idx``: ``[n_test]`` dataset rows of the outer-test fold.
    ``test_prediction``: ``[seeds, n_test]`` (regression, original units) or
    ``[seeds, n_test, classes]`` probabilities, in ``test_idx`` order.
    """

    rows: tuple[dict[str, Any], ...]
    test_idx: np.ndarray
    test_prediction: np.ndarray


def evaluate_outer_fold(
    dataset: Dataset,
    config: RunConfig,
    splits: Splits,
    fold_index: int,
    *,
    seeds: Sequence[int] = (0,),
    device: str = "auto",
    threads: int | None = None,
) -> OuterFoldResult:
    """Train ``config`` on the fold's training rows (early stopping on its inner-validation
    rows), once per seed, and score the outer-test rows once.

    The outer-test rows reach nothing but ``predict`` and the scoring at the end.
    ``threads`` caps the CPU threads of torch and XGBoost (default: all cores), for a
    caller that shares the machine with other work.
    """
    with torch_threads(threads):
        return _evaluate_outer_fold(dataset, config, splits, fold_index, seeds, device, threads)


def _evaluate_outer_fold(
    dataset: Dataset,
    config: RunConfig,
    splits: Splits,
    fold_index: int,
    seeds: Sequence[int],
    device: str,
    threads: int | None,
) -> OuterFoldResult:
    seeds = tuple(int(seed) for seed in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)}")
    if not 0 <= fold_index < splits.k:
        raise ValueError(f"outer fold must be in 0..{splits.k - 1}, got {fold_index}")
    fold = splits.folds[fold_index]
    arrays = prepare_fold(dataset, fold)
    extra: list[dict[str, Any]]  # per seed: what else the model reports
    if config.model == XGBOOST:
        outcomes = [
            fit_xgboost_fold(
                arrays, dataset.task, dataset.n_classes, config.xgboost, seed=seed, n_jobs=threads
            )
            for seed in seeds
        ]
        val = [outcome.val_prediction for outcome in outcomes]
        test = [outcome.test_prediction for outcome in outcomes]
        extra = [{"best_iteration": outcome.best_iteration} for outcome in outcomes]
    else:
        batched = build_members(dataset, config, [arrays], seeds)
        result = fit(batched.model, batched.data, config.train, task=dataset.task, device=device)
        members = len(seeds)
        val = predict(batched.model, [arrays.x_val] * members, task=dataset.task)
        test = predict(batched.model, [arrays.x_test] * members, task=dataset.task)
        if dataset.task == "regression":
            # the network predicts standardised targets; scores are in original units
            val = [p * arrays.target_std + arrays.target_mean for p in val]
            test = [p * arrays.target_std + arrays.target_mean for p in test]
        extra = [
            {
                "state_sha256": state_digest(batched.model.member(k)),
                "best_epoch": member.best_epoch,
                "epochs_run": member.epochs_run,
                "diverged": member.diverged,
            }
            for k, member in enumerate(result.members)
        ]
    rows = tuple(
        {
            "seed": seed,
            **score_rows(dataset, fold.test_idx, test[k], "test"),
            **score_rows(dataset, fold.val_idx, val[k], "val"),
            **extra[k],
        }
        for k, seed in enumerate(seeds)
    )
    return OuterFoldResult(rows=rows, test_idx=fold.test_idx, test_prediction=np.stack(test))


def state_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a model's parameters and buffers, in state-dict order: equal digests
    mean bit-identical weights (what the leak tests compare across runs)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def study_rows(
    dataset: Dataset, *, outer_folds: int | None, outer_fold: int | None, split_seed: int
) -> Dataset:
    """What a study trains on: the whole dataset, or one outer fold's training rows."""
    if outer_folds is None or outer_fold is None:
        return dataset
    return outer_training_set(dataset, make_folds(dataset, outer_folds, split_seed), outer_fold)
