"""Evaluation metrics with their direction, one table per task.

Regression metrics take predictions in the target's original units ``[n]``;
classification metrics take class probabilities ``[n, classes]`` (rows sum to 1).

>>> primary_metric("regression").name
'rmse'
>>> get_metric("accuracy").better(0.9, 0.8)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn import metrics as sk_metrics

from actmix.types import TASKS, Task

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "Direction",
    "Metric",
    "compute_metrics",
    "fold_std",
    "get_metric",
    "metrics_for",
    "primary_metric",
]

Direction = Literal["minimize", "maximize"]


@dataclass(frozen=True, slots=True)
class Metric:
    """A named score ``fn(y_true, prediction) -> float`` and whether lower or higher wins."""

    name: str
    direction: Direction
    task: Task
    fn: Callable[[np.ndarray, np.ndarray], float]

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``; NaN is worse than any number."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a < b if self.direction == "minimize" else a > b

    @property
    def worst(self) -> float:
        """A starting value every finite score beats (``inf`` or ``-inf``)."""
        return math.inf if self.direction == "minimize" else -math.inf


def _rmse(y_true: np.ndarray, prediction: np.ndarray) -> float:
    return float(sk_metrics.root_mean_squared_error(y_true, prediction))


def _mse(y_true: np.ndarray, prediction: np.ndarray) -> float:
    return float(sk_metrics.mean_squared_error(y_true, prediction))


def _mae(y_true: np.ndarray, prediction: np.ndarray) -> float:
    return float(sk_metrics.mean_absolute_error(y_true, prediction))


def _r2(y_true: np.ndarray, prediction: np.ndarray) -> float:
    return float(sk_metrics.r2_score(y_true, prediction))


def _accuracy(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    return float(sk_metrics.accuracy_score(y_true, probabilities.argmax(axis=1)))


def _f1_macro(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    # Macro over the classes present in y_true or predicted (scikit-learn's default);
    # a class that is never predicted scores 0 instead of warning.
    return float(
        sk_metrics.f1_score(
            y_true, probabilities.argmax(axis=1), average="macro", zero_division=0.0
        )
    )


def _roc_auc(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    n_classes = probabilities.shape[1]
    # AUC is undefined for a class with no positives (small folds): report NaN, not a crash.
    if np.unique(y_true).size < n_classes:
        return math.nan
    if n_classes == 2:
        return float(sk_metrics.roc_auc_score(y_true, probabilities[:, 1]))
    return float(
        sk_metrics.roc_auc_score(
            y_true, probabilities, multi_class="ovr", average="macro", labels=range(n_classes)
        )
    )


def _log_loss(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    # float32 rows summing to 1.0000001 make scikit-learn warn in float64; renormalise
    # here only, since rescaling could break exact ties that the AUC should see.
    normalised = probabilities / probabilities.sum(axis=1, keepdims=True)
    return float(sk_metrics.log_loss(y_true, normalised, labels=range(probabilities.shape[1])))


REGRESSION_METRICS: tuple[Metric, ...] = (
    Metric("rmse", "minimize", "regression", _rmse),
    Metric("mse", "minimize", "regression", _mse),
    Metric("mae", "minimize", "regression", _mae),
    Metric("r2", "maximize", "regression", _r2),
)
CLASSIFICATION_METRICS: tuple[Metric, ...] = (
    Metric("accuracy", "maximize", "classification", _accuracy),
    Metric("f1_macro", "maximize", "classification", _f1_macro),
    Metric("roc_auc", "maximize", "classification", _roc_auc),
    Metric("log_loss", "minimize", "classification", _log_loss),
)
_BY_NAME = {metric.name: metric for metric in (*REGRESSION_METRICS, *CLASSIFICATION_METRICS)}


def metrics_for(task: Task) -> tuple[Metric, ...]:
    """All metrics of ``task``, the primary one first."""
    if task == "regression":
        return REGRESSION_METRICS
    if task == "classification":
        return CLASSIFICATION_METRICS
    raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")


def primary_metric(task: Task) -> Metric:
    """RMSE for regression, accuracy for classification."""
    return metrics_for(task)[0]


def get_metric(name: str) -> Metric:
    """The metric called ``name``; ValueError listing the valid names otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(_BY_NAME)}") from None


def _checked_inputs(
    task: Task, y_true: np.ndarray, prediction: np.ndarray, n_classes: int | None
) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    prediction = np.asarray(prediction, dtype=np.float64)
    if y_true.ndim != 1 or y_true.size == 0:
        raise ValueError(f"y_true must be a non-empty 1-d array, got shape {y_true.shape}")
    if len(prediction) != len(y_true):
        raise ValueError(f"prediction has {len(prediction)} rows but y_true has {len(y_true)}")
    if not np.all(np.isfinite(prediction)):
        raise ValueError("prediction contains NaN or infinite values")
    if task == "regression":
        if prediction.ndim != 1:
            raise ValueError(f"regression prediction must be [n], got shape {prediction.shape}")
        return y_true.astype(np.float64), prediction

    if prediction.ndim != 2 or prediction.shape[1] < 2:
        raise ValueError(
            f"classification prediction must be probabilities [n, classes >= 2], "
            f"got shape {prediction.shape}"
        )
    if n_classes is not None and prediction.shape[1] != n_classes:
        raise ValueError(
            f"prediction has {prediction.shape[1]} columns, expected {n_classes} classes"
        )
    row_sums = prediction.sum(axis=1)
    if prediction.min() < 0 or not np.allclose(row_sums, 1.0, atol=1e-3):
        raise ValueError("classification prediction must be probabilities (>= 0, rows sum to 1)")
    labels = y_true.astype(np.int64)
    if labels.min() < 0 or labels.max() >= prediction.shape[1]:
        raise ValueError(
            f"y_true holds class codes {labels.min()}..{labels.max()}, "
            f"outside 0..{prediction.shape[1] - 1}"
        )
    return labels, prediction


def compute_metrics(
    task: Task, y_true: np.ndarray, prediction: np.ndarray, *, n_classes: int | None = None
) -> dict[str, float]:
    """Every metric of ``task`` as ``{name: value}``.

    ``y_true``: ``[n]`` targets in original units or class codes. ``prediction``:
    ``[n]`` values (regression) or ``[n, classes]`` probabilities (classification).
    """
    metrics = metrics_for(task)
    y_true, prediction = _checked_inputs(task, y_true, prediction, n_classes)
    return {metric.name: metric.fn(y_true, prediction) for metric in metrics}


def fold_std(values: Iterable[float]) -> float:
    """Spread of scores over folds (or fold x seed runs): the sample std, ``ddof=1``.

    Non-finite values (NaN from a diverged run, inf) are left out. With fewer than
    two finite values there is no spread to estimate and the result is NaN, not 0:
    a single run must not look perfectly stable.

    >>> fold_std([1.0, 2.0, float("nan"), 3.0])
    1.0
    >>> fold_std([4.0])
    nan
    """
    finite = np.array([float(v) for v in values], dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.std(ddof=1)) if finite.size >= 2 else math.nan
