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


def test_a_cross_validated_ensemble_is_its_members_mean_on_every_fold() -> None:
    from actmix.config import MLPConfig, RunConfig, TrainConfig
    from actmix.ensembles import cross_validate_ensemble
    from actmix.nested import evaluate_outer_fold
    from actmix.splits import make_folds

    dataset = make_regression_dataset(60)
    configs = [
        RunConfig(
            model="relu",
            mlp=MLPConfig(widths=(width,)),
            train=TrainConfig(epochs=3, batch_size=16),
        )
        for width in (4, 8)
    ]
    result = cross_validate_ensemble(dataset, configs, folds=2, seeds=(0, 1), split_seed=3)
    assert result.model_name == "relu-ensemble" and len(result.config["ensemble"]) == 2
    assert [(row["fold"], row["seed"]) for row in result.rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    splits = make_folds(dataset, 2, 3)
    assert result.splits["fingerprint"] == splits.fingerprint()
    y = dataset.target.to_numpy(dtype=float)
    for fold in (0, 1):  # by hand: each member alone, then the mean
        members = [evaluate_outer_fold(dataset, c, splits, fold, seeds=(0, 1)) for c in configs]
        mean = np.mean([member.test_prediction for member in members], axis=0)
        truth = y[splits.folds[fold].test_idx]
        for seed in (0, 1):
            (row,) = [r for r in result.rows if r["fold"] == fold and r["seed"] == seed]
            rmse = float(np.sqrt(np.mean((mean[seed] - truth) ** 2)))
            assert row["test_rmse"] == pytest.approx(rmse, rel=1e-6)
    assert result.summary["test_rmse"]["mean"] == pytest.approx(
        np.mean([row["test_rmse"] for row in result.rows])
    )
