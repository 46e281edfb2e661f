"""XGBoost baseline on the same folds and preprocessing as the MLPs.

Early stopping watches the inner validation set only; the test rows are predicted
once, with the best iteration, and never shown to xgboost during training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost

from actmix._xgb_config import XGBConfig
from actmix.preprocessing import FoldArrays, unstandardise
from actmix.types import Task

__all__ = ["XGBConfig", "XGBFoldResult", "fit_xgboost_fold"]


@dataclass(frozen=True, slots=True, eq=False)
class XGBFoldResult:
    """Predictions of the best iteration: ``[n]`` original units or ``[n, classes]`` probabilities.

    ``val_history[i]`` is the inner-validation eval metric after round ``i`` (RMSE in
    standardised target units, or log-loss), including rounds after the best one.
    """

    val_prediction: np.ndarray
    test_prediction: np.ndarray
    best_iteration: int
    val_history: list[float]


class _RoundReporter(xgboost.callback.TrainingCallback):
    """Forwards the latest inner-validation score of each round to ``on_round``."""

    def __init__(self, on_round: Callable[[int, float], None]) -> None:
        super().__init__()
        self._on_round = on_round

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:  # noqa: ARG002
        (history,) = evals_log["validation_0"].values()
        self._on_round(epoch, float(history[-1]))
        return False  # never asks xgboost to stop; early stopping does that


def fit_xgboost_fold(
    arrays: FoldArrays,
    task: Task,
    n_classes: int,
    config: XGBConfig,
    *,
    seed: int,
    n_jobs: int | None = None,
    on_round: Callable[[int, float], None] | None = None,
) -> XGBFoldResult:
    """Train on ``x_train``, early-stop on ``x_val``, predict val and test with the best round.

    ``on_round(round, val_score)`` (0-based round) is called after every boosting round.
    """
    if task == "regression":
        eval_metric = "rmse"
        model_class: type[xgboost.XGBModel] = xgboost.XGBRegressor
        objective = "reg:squarederror"
    elif task == "classification":
        if n_classes < 2:
            raise ValueError(f"classification needs n_classes >= 2, got {n_classes}")
        missing = sorted(set(range(n_classes)) - set(np.unique(arrays.y_train).tolist()))
        if missing:
            # XGBClassifier infers the classes from y_train and would misalign columns.
            raise ValueError(f"training rows lack class codes {missing} of {n_classes} classes")
        binary = n_classes == 2
        eval_metric = "logloss" if binary else "mlogloss"
        model_class = xgboost.XGBClassifier
        objective = "binary:logistic" if binary else "multi:softprob"
    else:
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")

    booster = model_class(
        objective=objective,
        eval_metric=eval_metric,
        tree_method="hist",
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        max_depth=config.max_depth,
        min_child_weight=config.min_child_weight,
        subsample=config.subsample,
        colsample_bytree=config.colsample_bytree,
        reg_lambda=config.reg_lambda,
        reg_alpha=config.reg_alpha,
        gamma=config.gamma,
        early_stopping_rounds=config.early_stopping_rounds,
        random_state=seed,
        n_jobs=n_jobs,
        callbacks=None if on_round is None else [_RoundReporter(on_round)],
    )
    booster.fit(
        arrays.x_train, arrays.y_train, eval_set=[(arrays.x_val, arrays.y_val)], verbose=False
    )
    best_iteration = int(booster.best_iteration)
    best_rounds = (0, best_iteration + 1)

    def predict(x: np.ndarray) -> np.ndarray:
        if task == "regression":
            return unstandardise(booster.predict(x, iteration_range=best_rounds), arrays)
        return booster.predict_proba(x, iteration_range=best_rounds).astype(np.float64)

    return XGBFoldResult(
        val_prediction=predict(arrays.x_val),
        test_prediction=predict(arrays.x_test),
        best_iteration=best_iteration,
        val_history=[float(v) for v in booster.evals_result()["validation_0"][eval_metric]],
    )
