"""XGBoost on one fold: shapes and units, early stopping on inner validation only, config checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from actmix.preprocessing import FoldArrays, prepare_fold
from actmix.splits import make_folds
from actmix.types import Dataset
from actmix.xgb import XGBConfig, fit_xgboost_fold
from tests.actmix.synthetic import make_classification_dataset, make_regression_dataset

CONFIG = XGBConfig(n_estimators=150, learning_rate=0.1, max_depth=3, early_stopping_rounds=10)


def _first_fold(dataset: Dataset) -> FoldArrays:
    return prepare_fold(dataset, make_folds(dataset, k=3, seed=0).folds[0])


def _fit(arrays: FoldArrays, dataset: Dataset, **options) -> object:
    return fit_xgboost_fold(
        arrays, dataset.task, dataset.n_classes, CONFIG, seed=0, n_jobs=1, **options
    )


def test_regression_predictions_are_in_original_units() -> None:
    dataset = make_regression_dataset(240, seed=0)
    arrays = _first_fold(dataset)
    result = _fit(arrays, dataset)
    assert result.val_prediction.shape == arrays.y_val.shape
    assert result.test_prediction.shape == arrays.y_test.shape

    # The same data with the target rescaled: standardised targets are unchanged, so the
    # booster is too, and predictions must follow the rescaling exactly.
    rescaled = dataclasses.replace(dataset, target=pd.Series(2.0 * dataset.target + 1000.0))
    rescaled_result = _fit(_first_fold(rescaled), rescaled)
    np.testing.assert_allclose(
        rescaled_result.test_prediction, 2.0 * result.test_prediction + 1000.0, rtol=1e-5
    )
    y_test = arrays.y_test * arrays.target_std + arrays.target_mean
    rmse = np.sqrt(np.mean((result.test_prediction - y_test) ** 2))
    assert rmse < 0.5 * y_test.std()  # learned something, in target units


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classification_predictions_are_probabilities(n_classes: int) -> None:
    dataset = make_classification_dataset(240, seed=1, n_classes=n_classes)
    arrays = _first_fold(dataset)
    result = _fit(arrays, dataset)
    assert result.test_prediction.shape == (arrays.y_test.size, n_classes)
    assert result.val_prediction.shape == (arrays.y_val.size, n_classes)
    np.testing.assert_allclose(result.test_prediction.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = np.mean(result.test_prediction.argmax(axis=1) == arrays.y_test)
    assert accuracy > 1.5 / n_classes


@pytest.mark.parametrize(
    "dataset", [make_regression_dataset(240, seed=2), make_classification_dataset(240, seed=2)]
)
def test_early_stopping_follows_the_validation_curve(dataset: Dataset) -> None:
    arrays = _first_fold(dataset)
    rounds: list[tuple[int, float]] = []
    result = _fit(arrays, dataset, on_round=lambda round_, score: rounds.append((round_, score)))
    history = np.array(result.val_history)
    assert result.best_iteration == int(history.argmin())
    expected_rounds = min(
        CONFIG.n_estimators, result.best_iteration + 1 + CONFIG.early_stopping_rounds
    )
    assert len(history) == expected_rounds
    assert rounds == list(enumerate(result.val_history))


@pytest.mark.parametrize(
    "dataset", [make_regression_dataset(240, seed=3), make_classification_dataset(240, seed=3)]
)
def test_test_rows_never_influence_training(dataset: Dataset) -> None:
    arrays = _first_fold(dataset)
    rng = np.random.default_rng(0)
    scrambled = dataclasses.replace(
        arrays,
        x_test=rng.normal(scale=100.0, size=arrays.x_test.shape).astype(np.float32),
        y_test=rng.permutation(arrays.y_test),
    )
    reference, changed = _fit(arrays, dataset), _fit(scrambled, dataset)
    assert changed.best_iteration == reference.best_iteration
    assert changed.val_history == reference.val_history
    assert changed.val_prediction.tobytes() == reference.val_prediction.tobytes()
    assert not np.array_equal(changed.test_prediction, reference.test_prediction)


def test_training_rows_must_hold_every_class() -> None:
    dataset = make_classification_dataset(240, seed=4, n_classes=3)
    arrays = _first_fold(dataset)
    keep = arrays.y_train != 2
    arrays = dataclasses.replace(arrays, x_train=arrays.x_train[keep], y_train=arrays.y_train[keep])
    with pytest.raises(ValueError, match=r"training rows lack class codes \[2\] of 3 classes"):
        _fit(arrays, dataset)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_estimators", 0, r"n_estimators must be in \[1, inf\), got 0"),
        ("learning_rate", 0.0, r"learning_rate must be in \(0, 1\], got 0.0"),
        ("learning_rate", 1.5, r"learning_rate must be in \(0, 1\], got 1.5"),
        ("max_depth", 0, r"max_depth must be in \[1, inf\), got 0"),
        ("min_child_weight", -1.0, r"min_child_weight must be in \[0, inf\), got -1.0"),
        ("subsample", 0.0, r"subsample must be in \(0, 1\], got 0.0"),
        ("colsample_bytree", 1.2, r"colsample_bytree must be in \(0, 1\], got 1.2"),
        ("reg_lambda", -0.1, r"reg_lambda must be in \[0, inf\), got -0.1"),
        ("reg_alpha", -1.0, r"reg_alpha must be in \[0, inf\), got -1.0"),
        ("gamma", -1.0, r"gamma must be in \[0, inf\), got -1.0"),
        ("early_stopping_rounds", 0, r"early_stopping_rounds must be in \[1, inf\), got 0"),
    ],
)
def test_config_rejects_out_of_range_values(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        XGBConfig(**{field: value})
