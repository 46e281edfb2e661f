"""Top-k ensembles on an outer fold: the score of the averaged prediction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actmix.ensembles import ensemble_outer_fold
from actmix.nested import OuterFoldResult
from tests.actmix.synthetic import make_classification_dataset, make_regression_dataset


def _member(test_idx: np.ndarray, prediction: np.ndarray, seeds=(0, 1)) -> OuterFoldResult:
    rows = tuple({"seed": seed} for seed in seeds)
    return OuterFoldResult(rows=rows, test_idx=test_idx, test_prediction=prediction)


def test_a_regression_ensemble_scores_the_mean_prediction() -> None:
    dataset = make_regression_dataset(40)
    rows = np.array([3, 7, 11])
    y = dataset.target.to_numpy(dtype=float)[rows]
    # two configurations x two seeds: predictions off by known amounts
    a = _member(rows, np.stack([y + 1.0, y + 2.0]))
    b = _member(rows, np.stack([y - 3.0, y + 4.0]))
    ensemble = ensemble_outer_fold(dataset, [a, b])
    # seed 0: mean error (1 - 3) / 2 = -1 on every row; seed 1: (2 + 4) / 2 = 3
    assert [row["test_rmse"] for row in ensemble.rows] == pytest.approx([1.0, 3.0])
    assert [row["test_mae"] for row in ensemble.rows] == pytest.approx([1.0, 3.0])
    assert [row["members"] for row in ensemble.rows] == [2, 2]
    assert ensemble.test_prediction.shape == (2, 3)


def test_a_classification_ensemble_averages_probabilities() -> None:
    dataset = make_classification_dataset(40)
    rows = np.array([0, 1])
    codes = dataset.target_codes()[rows]
    classes = dataset.n_classes
    one = np.full((1, 2, classes), 0.0)
    two = np.full((1, 2, classes), 0.0)
    for i, code in enumerate(codes):
        wrong = (code + 1) % classes
        one[0, i, code], one[0, i, wrong] = 0.8, 0.2  # right, confident
        two[0, i, code], two[0, i, wrong] = 0.4, 0.6  # wrong
    ensemble = ensemble_outer_fold(dataset, [_member(rows, one, (5,)), _member(rows, two, (5,))])
    (row,) = ensemble.rows
    # the mean puts 0.6 on the right class of every row: right, log loss -ln 0.6
    assert row["seed"] == 5 and row["test_accuracy"] == 1.0
    assert row["test_log_loss"] == pytest.approx(-math.log(0.6))


def test_members_of_other_rows_or_seeds_are_refused() -> None:
    dataset = make_regression_dataset(40)
    prediction = np.zeros((2, 2))
    base = _member(np.array([1, 2]), prediction)
    with pytest.raises(ValueError, match="different outer-test rows"):
        ensemble_outer_fold(dataset, [base, _member(np.array([1, 3]), prediction)])
    with pytest.raises(ValueError, match="different seeds"):
        ensemble_outer_fold(dataset, [base, _member(np.array([1, 2]), prediction, (0, 2))])
    with pytest.raises(ValueError, match="at least one member"):
        ensemble_outer_fold(dataset, [])
