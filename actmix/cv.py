"""Leak-free k-fold cross-validation of one configuration over folds x seeds.

Every (fold, seed) pair is one member of a single batched MLP, trained with
``fit``; XGBoost runs on the same folds and preprocessing. Only inner-validation
rows steer training; outer test rows are scored once, at the end.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actmix.activations import check_activation
from actmix.config import XGBOOST, RunConfig, run_config_to_dict
from actmix.metrics import compute_metrics, fold_std, metrics_for, primary_metric
from actmix.mlp import MLP
from actmix.packs import build_pack
from actmix.preprocessing import FoldArrays, prepare_fold
from actmix.splits import Splits, make_folds
from actmix.trainer import EpochRecord, FitResult, MemberData, fit, predict
from actmix.types import Dataset, Task
from actmix.xgb import fit_xgboost_fold

__all__ = [
    "BatchedMembers",
    "CVResult",
    "build_members",
    "choose_split_seed",
    "cross_validate",
    "final_split_seed",
    "package_versions",
    "score_rows",
    "splits_record",
    "summarise",
]

DEFAULT_SPLIT_SEED = 0  # the fold split of a CV when nothing else decides it


def final_split_seed(study_split_seed: int) -> int:
    """The split seed of the final CV of a configuration tuned on ``study_split_seed``.

    Scoring a configuration on the folds it was selected on would reward the
    selection; the final CV therefore always draws fresh folds: the study's seed + 1.
    """
    return int(study_split_seed) + 1


@dataclass(frozen=True, slots=True)
class CVResult:
    """Per-(fold, seed) rows and their summary; ``model`` holds the trained MLP members."""

    dataset: str
    source: str
    task: Task
    model_name: str
    config: dict[str, Any]
    splits: dict[str, Any]
    seeds: tuple[int, ...]
    rows: tuple[dict[str, Any], ...]
    summary: dict[str, dict[str, float]]
    seconds: float
    versions: dict[str, str]
    model: MLP | None = field(default=None, compare=False, repr=False)
    fit_result: FitResult | None = field(default=None, compare=False, repr=False)

    @property
    def primary_metric(self) -> str:
        return primary_metric(self.task).name

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "source": self.source,
            "task": self.task,
            "model": self.model_name,
            "config": self.config,
            "splits": self.splits,
            "seeds": list(self.seeds),
            "summary": self.summary,
            "rows": list(self.rows),
            "seconds": self.seconds,
            "versions": self.versions,
        }

    def save_json(self, path: str | os.PathLike) -> Path:
        """Write the result as JSON (atomically: a crash leaves no half file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".partial")
        partial.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=True))
        partial.replace(path)
        return path


def package_versions() -> dict[str, str]:
    """Versions that matter for reproducing a result."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("actmix-study", "torch", "numpy", "pandas", "scikit-learn", "xgboost"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def summarise(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, dict[str, float]]:
    """Mean, std (``fold_std``: ddof=1, NaN below two values), min and max of each key
    over rows, ignoring NaN."""
    summary = {}
    for key in keys:
        values = np.array([row[key] for row in rows if key in row], dtype=float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            summary[key] = {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
            continue
        summary[key] = {
            "mean": float(values.mean()),
            "std": fold_std(values),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return summary


def _true_targets(dataset: Dataset, rows: np.ndarray) -> np.ndarray:
    if dataset.task == "classification":
        return dataset.target_codes()[rows]
    return dataset.target.to_numpy(dtype=float)[rows]


def score_rows(
    dataset: Dataset, rows: np.ndarray, prediction: np.ndarray, prefix: str
) -> dict[str, float]:
    """Every metric of ``prediction`` (original units / probabilities) on dataset ``rows``."""
    values = compute_metrics(
        dataset.task, _true_targets(dataset, rows), prediction, n_classes=dataset.n_classes or None
    )
    return {f"{prefix}_{name}": value for name, value in values.items()}


@dataclass(frozen=True, slots=True)
class BatchedMembers:
    """One batched MLP for every (fold, seed) pair, with each member's data."""

    model: MLP
    data: tuple[MemberData, ...]
    pairs: tuple[tuple[int, int], ...]  # (fold index, seed) of each member


def build_members(
    dataset: Dataset,
    config: RunConfig,
    fold_arrays: Sequence[FoldArrays],
    seeds: Sequence[int],
) -> BatchedMembers:
    """The batched model and member data for ``config`` over folds x seeds (fold-major):
    a pack of one configuration."""
    check_activation(config.model)
    pack = build_pack(dataset, [config], fold_arrays, seeds)
    pairs = tuple((fold, seed) for _, fold, seed in pack.members)
    return BatchedMembers(model=pack.model, data=pack.data, pairs=pairs)


def _to_original_units(prediction: np.ndarray, arrays: FoldArrays, task: Task) -> np.ndarray:
    if task == "regression":
        return prediction * arrays.target_std + arrays.target_mean
    return prediction


def _cross_validate_mlp(
    dataset: Dataset,
    config: RunConfig,
    splits: Splits,
    fold_arrays: Sequence[FoldArrays],
    seeds: Sequence[int],
    *,
    device: str,
    on_epoch: Callable[[int, EpochRecord], None] | None,
) -> tuple[list[dict[str, Any]], MLP, FitResult]:
    batched = build_members(dataset, config, fold_arrays, seeds)
    model, pairs = batched.model, batched.pairs
    result = fit(
        model, batched.data, config.train, task=dataset.task, on_epoch=on_epoch, device=device
    )
    val_predictions = predict(model, [fold_arrays[f].x_val for f, _ in pairs], task=dataset.task)
    test_predictions = predict(model, [fold_arrays[f].x_test for f, _ in pairs], task=dataset.task)
    rows = []
    for k, (fold_index, seed) in enumerate(pairs):
        fold, arrays, outcome = splits.folds[fold_index], fold_arrays[fold_index], result.members[k]
        val = _to_original_units(val_predictions[k], arrays, dataset.task)
        test = _to_original_units(test_predictions[k], arrays, dataset.task)
        rows.append(
            {
                "fold": fold_index,
                "seed": seed,
                **score_rows(dataset, fold.test_idx, test, "test"),
                **score_rows(dataset, fold.val_idx, val, "val"),
                "best_epoch": outcome.best_epoch,
                "epochs_run": outcome.epochs_run,
                "diverged": outcome.diverged,
                "diverged_reason": outcome.diverged_reason,
            }
        )
    return rows, model, result


def _cross_validate_xgboost(
    dataset: Dataset,
    config: RunConfig,
    splits: Splits,
    fold_arrays: Sequence[FoldArrays],
    seeds: Sequence[int],
    *,
    progress: Callable[[str], None] | None,
) -> list[dict[str, Any]]:
    rows = []
    for fold_index, (fold, arrays) in enumerate(zip(splits.folds, fold_arrays, strict=True)):
        for seed in seeds:
            outcome = fit_xgboost_fold(
                arrays, dataset.task, dataset.n_classes, config.xgboost, seed=seed
            )
            rows.append(
                {
                    "fold": fold_index,
                    "seed": seed,
                    **score_rows(dataset, fold.test_idx, outcome.test_prediction, "test"),
                    **score_rows(dataset, fold.val_idx, outcome.val_prediction, "val"),
                    "best_iteration": outcome.best_iteration,
                }
            )
            if progress is not None:
                progress(f"fold {fold_index + 1}/{len(splits.folds)} seed {seed}: done")
    return rows


def splits_record(splits: Splits) -> dict[str, Any]:
    """What a CV result records of its folds (so another run can be checked against them)."""
    return {
        "k": splits.k,
        "seed": splits.seed,
        "inner_val": splits.inner_val,
        "holdout": splits.holdout,
        "fingerprint": splits.fingerprint(),
    }


def choose_split_seed(
    config: RunConfig, split_seed: int | None, tuned_with_split_seed: int | None
) -> int:
    """The seed of a final CV's folds (see ``cross_validate``): the one given, else the
    split seed ``config`` was tuned on + 1, else ``DEFAULT_SPLIT_SEED``."""
    if split_seed is not None:
        return split_seed
    if tuned_with_split_seed is None:
        recorded = config.provenance.get("split_seed")
        # bool is an int too, but never a seed
        if isinstance(recorded, int) and not isinstance(recorded, bool):
            tuned_with_split_seed = recorded
    if tuned_with_split_seed is None:
        return DEFAULT_SPLIT_SEED
    return final_split_seed(tuned_with_split_seed)


def cross_validate(
    dataset: Dataset,
    config: RunConfig | None = None,
    *,
    folds: int = 10,
    seeds: Sequence[int] = (0,),
    split_seed: int | None = None,
    tuned_with_split_seed: int | None = None,
    splits: Splits | None = None,
    device: str = "auto",
    on_epoch: Callable[[int, EpochRecord], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> CVResult:
    """K-fold CV of ``config`` on ``dataset``: test scores per (fold, seed) and their summary.

    The folds come from, in this order: ``splits`` (e.g. loaded with ``Splits.load``,
    so several models are compared on byte-identical folds); an explicit
    ``split_seed``; ``final_split_seed(tuned_with_split_seed)`` for a configuration
    tuned on the folds of that seed, which defaults to the ``split_seed`` recorded in
    ``config.provenance`` (an exported study configuration), so a final CV never
    silently reuses the folds the configuration was selected on; else seed 0.

    >>> from actmix import load_dataset
    >>> result = cross_validate(load_dataset("power_plant"), folds=5)  # doctest: +SKIP
    """
    config = config or RunConfig()
    if config.model != XGBOOST:
        check_activation(config.model)
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)}")
    started = time.perf_counter()
    if splits is None:
        seed = choose_split_seed(config, split_seed, tuned_with_split_seed)
        splits = make_folds(dataset, folds, seed)
    if splits.n_rows != dataset.n_rows:
        raise ValueError(
            f"splits were made for {splits.n_rows} rows; "
            f"dataset {dataset.name!r} has {dataset.n_rows}"
        )
    fold_arrays = [prepare_fold(dataset, fold) for fold in splits.folds]
    model, fit_result = None, None
    if config.model == XGBOOST:
        rows = _cross_validate_xgboost(
            dataset, config, splits, fold_arrays, seeds, progress=progress
        )
    else:
        rows, model, fit_result = _cross_validate_mlp(
            dataset, config, splits, fold_arrays, seeds, device=device, on_epoch=on_epoch
        )
    names = [metric.name for metric in metrics_for(dataset.task)]
    keys = [f"{split}_{name}" for split in ("test", "val") for name in names]
    return CVResult(
        dataset=dataset.name,
        source=dataset.source,
        task=dataset.task,
        model_name=config.model,
        config=run_config_to_dict(config),
        splits=splits_record(splits),
        seeds=seeds,
        rows=tuple(rows),
        summary=summarise(rows, keys),
        seconds=time.perf_counter() - started,
        versions=package_versions(),
        model=model,
        fit_result=fit_result,
    )
