"""A suite's finished units, read back for its report: per dataset, every row's outer-fold
scores keyed by (repeat, outer fold), the pooled out-of-fold predictions of the first
repeat, the records themselves and the studies' trial histories where they were kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actmix.data import load_dataset
from study.suite import Suite, UnitKind, UnitRecord, read_trials, read_unit, suite_units

__all__ = ["DatasetResults", "FoldKey", "finite_mean", "load_results"]

FoldKey = tuple[int, int]  # (repeat, outer fold)


def finite_mean(values: list[float]) -> float:
    """The mean of the finite values; NaN when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


@dataclass(frozen=True, slots=True)
class DatasetResults:
    """One dataset's finished units, by row label (model or reference)."""

    label: str
    metric: str
    lower_is_better: bool
    fingerprints: dict[int, str]  # repeat -> fingerprint of its outer splits
    y_true: np.ndarray  # [n] targets (regression) or class codes, dataset row order
    fold_scores: dict[str, dict[FoldKey, float]] = field(default_factory=dict)  # mean over seeds
    kinds: dict[str, UnitKind] = field(default_factory=dict)
    oof: dict[str, np.ndarray] = field(default_factory=dict)  # repeat 0, seed-mean predictions
    records: list[UnitRecord] = field(default_factory=list)
    trials: dict[tuple[str, FoldKey], list[dict[str, Any]]] = field(default_factory=dict)
    test_sizes: list[tuple[int, int]] = field(default_factory=list)  # (n_test, n_train) per unit

    @property
    def test_fraction(self) -> float:
        """Mean n_test / n_train of the outer folds: the corrected t-test's correction."""
        return float(np.mean([test / train for test, train in self.test_sizes]))

    def complete(self, label: str, folds: int) -> bool:
        """Whether ``label`` has a score on all ``folds`` (repeats x outer folds) folds."""
        return len(self.fold_scores.get(label, {})) == folds


def load_results(
    suite: Suite, root: Path
) -> tuple[dict[str, DatasetResults], list[dict[str, Any]]]:
    """Every dataset with a finished unit, and one result row per unit and seed."""
    per_dataset: dict[str, DatasetResults] = {}
    results: list[dict[str, Any]] = []
    for entry in suite.datasets:
        loaded = [(u, read_unit(root, u)) for u in suite_units(suite) if u.dataset == entry]
        done = [(u, found) for u, found in loaded if found is not None]
        if not done:
            continue
        dataset = load_dataset(entry.spec, target=entry.target, task=entry.task)
        y_true = (
            dataset.target_codes()
            if dataset.task == "classification"
            else dataset.target.to_numpy(dtype=float)
        )
        first = done[0][1][0]
        data = DatasetResults(
            label=entry.label,
            metric=first.metric,
            lower_is_better=first.direction == "minimize",
            fingerprints={},
            y_true=y_true,
        )
        for unit, (record, arrays) in done:
            expected = data.fingerprints.setdefault(unit.repeat, record.fingerprint)
            if record.fingerprint != expected:
                raise ValueError(
                    f"{unit.path(root)} was scored on other outer folds (fingerprint "
                    f"{record.fingerprint} != {expected}); remove it and rerun"
                )
            key = (unit.repeat, unit.outer_fold)
            data.records.append(record)
            data.fold_scores.setdefault(unit.label, {})[key] = finite_mean(record.test_values())
            data.kinds[unit.label] = unit.kind
            n_test = len(arrays["test_idx"])
            data.test_sizes.append((n_test, dataset.n_rows - n_test))
            trials = read_trials(root, unit)
            if trials is not None:
                data.trials[(unit.label, key)] = trials
            if unit.repeat == 0:
                prediction = arrays["prediction"].mean(axis=0)
                pooled = data.oof.setdefault(
                    unit.label, np.full((dataset.n_rows, *prediction.shape[1:]), np.nan)
                )
                pooled[arrays["test_idx"]] = prediction
            for row in record.rows:
                results.append(
                    {
                        "dataset": entry.label,
                        "model": unit.label,
                        "kind": unit.kind,
                        "repeat": unit.repeat,
                        "outer_fold": unit.outer_fold,
                        "seed": row["seed"],
                        "metric": record.metric,
                        "value": float(row[f"test_{record.metric}"]),
                    }
                )
        per_dataset[entry.label] = data
    return per_dataset, results
