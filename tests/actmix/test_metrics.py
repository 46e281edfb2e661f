"""Metrics against hand computations on tiny arrays."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from actmix.metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    compute_metrics,
    fold_std,
    get_metric,
    metrics_for,
    primary_metric,
)


def test_regression_metrics_match_hand_computation() -> None:
    # errors 0.5, 0, -1, 1 -> squared 0.25, 0, 1, 1; mean(y) = 2.5, total sum of squares 5
    scores = compute_metrics("regression", np.array([1.0, 2, 3, 4]), np.array([1.5, 2, 2, 5]))
    assert scores == pytest.approx({"rmse": 0.75, "mse": 0.5625, "mae": 0.625, "r2": 1 - 2.25 / 5})
    assert list(scores) == ["rmse", "mse", "mae", "r2"]


def test_binary_metrics_match_hand_computation() -> None:
    positive = np.array([0.1, 0.6, 0.4, 0.8])
    probabilities = np.stack([1 - positive, positive], axis=1)
    scores = compute_metrics("classification", np.array([0, 0, 1, 1]), probabilities, n_classes=2)
    # predictions 0, 1, 0, 1: one hit per class; positive scores beat negatives in 3 of 4 pairs
    assert scores == pytest.approx(
        {
            "accuracy": 0.5,
            "f1_macro": 0.5,
            "roc_auc": 0.75,
            "log_loss": -(math.log(0.9) + math.log(0.4) + math.log(0.4) + math.log(0.8)) / 4,
        }
    )


def test_multiclass_metrics_match_hand_computation() -> None:
    probabilities = np.array(
        [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]], dtype=np.float32
    )
    y_true = np.array([0, 1, 2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float32 row sums must not trip scikit-learn warnings
        scores = compute_metrics("classification", y_true, probabilities, n_classes=3)
    # argmax 0, 2, 2, 1 -> per-class F1: 1, 0, 0.5.
    # one-vs-rest AUC: class 0 -> 1; class 1 -> 2/3; class 2 -> (1 + 0.5 + 1 + 0) / 4 (one tie)
    assert scores == pytest.approx(
        {
            "accuracy": 0.5,
            "f1_macro": 0.5,
            "roc_auc": (1 + 2 / 3 + 0.625) / 3,
            "log_loss": -(math.log(0.7) + math.log(0.3) + math.log(0.6) + math.log(0.3)) / 4,
        },
        rel=1e-6,
    )


@pytest.mark.parametrize(
    ("y_true", "n_classes"), [(np.array([1, 1, 1]), 2), (np.array([0, 0, 1]), 3)]
)
def test_roc_auc_is_nan_when_a_class_is_absent(y_true: np.ndarray, n_classes: int) -> None:
    probabilities = np.full((3, n_classes), 1 / n_classes)
    probabilities[:, 0] += 0.05
    probabilities[:, 1] -= 0.05
    scores = compute_metrics("classification", y_true, probabilities, n_classes=n_classes)
    assert math.isnan(scores["roc_auc"])
    assert math.isfinite(scores["log_loss"]) and math.isfinite(scores["accuracy"])


def test_directions_primary_metrics_and_lookup() -> None:
    assert primary_metric("regression").name == "rmse"
    assert primary_metric("classification").name == "accuracy"
    assert metrics_for("regression") == REGRESSION_METRICS
    assert [m.name for m in CLASSIFICATION_METRICS] == [
        "accuracy",
        "f1_macro",
        "roc_auc",
        "log_loss",
    ]
    rmse, accuracy, log_loss = get_metric("rmse"), get_metric("accuracy"), get_metric("log_loss")
    assert rmse.better(1.0, 2.0) and not rmse.better(2.0, 1.0) and not rmse.better(1.0, 1.0)
    assert accuracy.better(0.9, 0.8) and not accuracy.better(0.8, 0.9)
    assert log_loss.direction == "minimize" and get_metric("r2").direction == "maximize"
    assert rmse.better(5.0, math.nan) and not rmse.better(math.nan, 5.0)
    assert rmse.better(1e12, rmse.worst) and accuracy.better(0.0, accuracy.worst)


def test_unknown_names_and_tasks_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown metric 'rsme'; valid metrics: rmse, mse"):
        get_metric("rsme")
    with pytest.raises(ValueError, match="got 'ranking'"):
        metrics_for("ranking")


@pytest.mark.parametrize(
    ("task", "y_true", "prediction", "message"),
    [
        ("regression", [1.0, 2.0], [1.0], "prediction has 1 rows but y_true has 2"),
        ("regression", [1.0, 2.0], [[1.0], [2.0]], r"regression prediction must be \[n\]"),
        ("regression", [1.0, 2.0], [1.0, np.nan], "NaN or infinite"),
        ("classification", [0, 1], [0.2, 0.8], "must be probabilities"),
        ("classification", [0, 1], [[0.2, 0.2], [0.5, 0.5]], "rows sum to 1"),
        ("classification", [0, 2], [[0.2, 0.8], [0.5, 0.5]], "outside 0..1"),
    ],
)
def test_malformed_inputs_raise(task, y_true, prediction, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_metrics(task, np.asarray(y_true), np.asarray(prediction))


def test_column_count_must_match_n_classes() -> None:
    with pytest.raises(ValueError, match="2 columns, expected 3 classes"):
        compute_metrics("classification", np.array([0, 1]), np.eye(2), n_classes=3)


def test_fold_std_is_the_sample_std_of_the_finite_values():
    # mean 5; squared deviations 9 + 1 + 1 + 1 + 0 + 0 + 4 + 16 = 32; 32 / (8 - 1)
    scores = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
    assert fold_std(scores) == pytest.approx(math.sqrt(32 / 7))
    assert fold_std([*scores, math.nan, math.inf]) == pytest.approx(math.sqrt(32 / 7))
    assert fold_std(np.array([1.0, 3.0])) == pytest.approx(math.sqrt(2))
    for too_few in ([], [4.0], [4.0, math.nan], [math.nan, math.nan]):
        assert math.isnan(fold_std(too_few)), too_few
