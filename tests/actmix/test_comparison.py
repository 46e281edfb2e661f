"""Paired tests and mean ranks against hand computations."""

import math

import pytest

from actmix.comparison import fold_scores, mean_ranks, paired_wilcoxon


def test_fold_scores_average_the_seeds_of_each_fold():
    rows = [
        {"fold": 1, "seed": 0, "test_rmse": 2.0},
        {"fold": 0, "seed": 0, "test_rmse": 1.0},
        {"fold": 0, "seed": 1, "test_rmse": 3.0},
        {"fold": 1, "seed": 1, "test_rmse": math.nan},  # a diverged member does not count
    ]
    assert fold_scores(rows, "test_rmse") == {0: 2.0, 1: 2.0}
    with pytest.raises(ValueError, match="test_accuracy"):
        fold_scores(rows, "test_accuracy")


def test_wilcoxon_all_folds_one_way_has_the_exact_minimum_p():
    # 5 folds, A better on each: two-sided exact p = 2 / 2**5
    a = {0: 1.0, 1: 1.1, 2: 1.2, 3: 1.3, 4: 1.4}
    b = {0: 1.5, 1: 1.7, 2: 1.9, 3: 2.1, 4: 2.3}
    test = paired_wilcoxon(a, b, lower_is_better=True)
    assert (test.n, test.wins, test.losses, test.ties) == (5, 5, 0, 0)
    assert test.p_value == pytest.approx(2 / 32)
    assert test.statistic == 0.0
    assert test.mean_difference == pytest.approx(-0.7)
    assert test.better == "A"
    # the same numbers as accuracies: higher is better, so B wins every fold
    assert paired_wilcoxon(a, b, lower_is_better=False).better == "B"


def test_wilcoxon_mixed_signs_against_hand_count():
    # differences -1..-5 and +6: W+ = 6; subsets of {1..6} with rank sum <= 6 number 14,
    # so the exact two-sided p is 2 * 14 / 2**6
    b = {fold: 10.0 for fold in range(6)}
    a = {fold: 10.0 + d for fold, d in enumerate([-1, -2, -3, -4, -5, 6])}
    test = paired_wilcoxon(a, b, lower_is_better=True)
    assert test.statistic == 6.0
    assert test.p_value == pytest.approx(28 / 64)
    assert (test.wins, test.losses) == (5, 1)


def test_wilcoxon_pairs_only_common_folds_and_counts_ties():
    a = {0: 1.0, 1: 2.0, 2: 3.0, 7: 9.0}
    b = {0: 1.0, 1: 2.5, 2: 3.5}
    test = paired_wilcoxon(a, b, lower_is_better=True)
    assert (test.n, test.wins, test.losses, test.ties) == (3, 2, 0, 1)
    equal = paired_wilcoxon({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0}, lower_is_better=True)
    assert (equal.p_value, equal.better) == (1.0, "tie")
    with pytest.raises(ValueError, match="at least 2 common folds"):
        paired_wilcoxon({0: 1.0}, {0: 2.0, 1: 3.0}, lower_is_better=True)


def test_mean_ranks_by_hand():
    scores = {
        "d1": {"actmix": 1.2, "relu": 1.9, "xgboost": 0.9, "gelu": 5.0},
        "d2": {"actmix": 8.5, "relu": 10.0, "xgboost": 8.5},
        "d3": {"actmix": 0.80, "relu": 0.865, "xgboost": 0.82},
    }
    lower = {"d1": True, "d2": True, "d3": False}
    means, per_dataset = mean_ranks(scores, lower)
    assert per_dataset["d2"] == {"actmix": 1.5, "relu": 3.0, "xgboost": 1.5}
    assert per_dataset["d3"] == {"actmix": 3.0, "relu": 1.0, "xgboost": 2.0}
    assert means == pytest.approx({"xgboost": 1.5, "actmix": 6.5 / 3, "relu": 7 / 3})
    assert list(means) == ["xgboost", "actmix", "relu"]  # best first; gelu is not everywhere
    with pytest.raises(ValueError, match="fewer than 2 models"):
        mean_ranks({"d1": {"a": 1.0}, "d2": {"b": 1.0}}, {"d1": True, "d2": True})
