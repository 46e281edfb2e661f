"""Paired tests and Holm's correction against hand computations and independent computations."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from actmix.comparison import (
    better_of,
    corrected_t_test,
    fold_scores,
    holm,
    min_wilcoxon_folds,
    paired_bootstrap,
    paired_wilcoxon,
)


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


def test_better_follows_the_sign_and_the_direction():
    assert better_of(-0.5, lower_is_better=True) == "a"
    assert better_of(-0.5, lower_is_better=False) == "b"
    assert better_of(0.5, lower_is_better=True) == "b"
    assert better_of(0.0, lower_is_better=True) == "tie"


def test_wilcoxon_needs_enough_folds_to_reach_alpha():
    # 2/2^k < alpha: k = 6 at 0.05 (2/64 = 0.031), k = 8 at 0.01 (2/256 = 0.0078)
    assert min_wilcoxon_folds(0.05) == 6
    assert min_wilcoxon_folds(0.01) == 8
    a = {0: 1.0, 1: 1.1, 2: 1.2, 3: 1.3, 4: 1.4}
    b = {0: 1.5, 1: 1.7, 2: 1.9, 3: 2.1, 4: 2.3}
    five = paired_wilcoxon(a, b, lower_is_better=True)
    assert five.p_value is None and five.statistic == 0.0
    assert "2/2^5 = 0.0625" in five.note and ">= 6 folds" in five.note
    assert (five.n, five.wins, five.losses, five.better) == (5, 5, 0, "a")
    assert five.mean_difference == pytest.approx(-0.7)
    six = paired_wilcoxon({**a, 5: 1.5}, {**b, 5: 2.5}, lower_is_better=True)
    assert six.p_value == pytest.approx(2 / 64)  # all six folds one way: the exact minimum
    assert six.note is None and six.test == "wilcoxon"
    # the same numbers as accuracies: higher is better, so B is better
    assert paired_wilcoxon({**a, 5: 1.5}, {**b, 5: 2.5}, lower_is_better=False).better == "b"


def test_wilcoxon_mixed_signs_against_hand_count():
    # differences -1..-5 and +6: W+ = 6; subsets of {1..6} with rank sum <= 6 number 14,
    # so the exact two-sided p is 2 * 14 / 2**6
    b = {fold: 10.0 for fold in range(6)}
    a = {fold: 10.0 + d for fold, d in enumerate([-1, -2, -3, -4, -5, 6])}
    test = paired_wilcoxon(a, b, lower_is_better=True)
    assert test.statistic == 6.0
    assert test.p_value == pytest.approx(28 / 64)
    assert (test.wins, test.losses) == (5, 1)


def test_direction_comes_from_the_mean_difference_not_from_counting_wins():
    # 40 folds: A wins 21 by 0.1 and loses 19 by a lot; on average A is worse by 1.47 RMSE
    loss = (1.47 * 40 + 21 * 0.1) / 19
    differences = [-0.1] * 21 + [loss] * 19
    b = {fold: 5.0 for fold in range(40)}
    a = {fold: 5.0 + d for fold, d in enumerate(differences)}
    test = paired_wilcoxon(a, b, lower_is_better=True)
    assert (test.wins, test.losses) == (21, 19)
    assert test.mean_difference == pytest.approx(1.47)
    assert test.better == "b"
    # W = rank sum of the 21 small differences = 1 + ... + 21; significant, and for B
    assert test.statistic == 231.0
    assert test.p_value < 0.05


def test_wilcoxon_pairs_only_common_folds_and_counts_ties():
    a = {fold: float(fold) for fold in range(8)}
    b = {fold: float(fold) + (0.5 if fold % 2 else 0.0) for fold in range(7)}
    test = paired_wilcoxon(a, b, lower_is_better=True)
    assert (test.n, test.wins, test.losses, test.ties) == (7, 3, 0, 4)
    equal = paired_wilcoxon(b, b, lower_is_better=True)
    assert (equal.p_value, equal.better) == (1.0, "tie")
    with pytest.raises(ValueError, match="no common folds"):
        paired_wilcoxon({0: 1.0}, {1: 2.0}, lower_is_better=True)


def _correlated_correctness(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two classifiers' predictions, right about 80 % and 76 % of the time."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    shared = rng.random(n)
    right_a = shared < 0.8
    right_b = np.where(rng.random(n) < 0.7, shared < 0.76, rng.random(n) < 0.76)
    wrong = (y + 1) % 3
    return y, np.where(right_a, y, wrong), np.where(right_b, y, wrong)


def test_bootstrap_accuracy_matches_the_normal_approximation():
    y, pred_a, pred_b = _correlated_correctness(3000, seed=1)
    result = paired_bootstrap(y, pred_a, pred_b, metric="accuracy", seed=0, n_resamples=4000)
    # independent: the paired difference of correctness is a mean of n iid terms
    per_row = (pred_a == y).astype(float) - (pred_b == y)
    standard_error = per_row.std(ddof=1) / math.sqrt(y.size)
    assert result.mean_difference == pytest.approx(per_row.mean())
    assert result.ci_low == pytest.approx(
        per_row.mean() - 1.96 * standard_error, abs=0.1 * standard_error
    )
    assert result.ci_high == pytest.approx(
        per_row.mean() + 1.96 * standard_error, abs=0.1 * standard_error
    )
    expected_p = 2 * norm.sf(abs(per_row.mean()) / standard_error)
    assert result.p_value == pytest.approx(expected_p, abs=0.01)
    assert result.better == "a" and result.test == "bootstrap" and result.n == 3000
    # class probabilities give the same answer as their argmax labels
    probabilities = np.eye(3)[pred_a] * 0.6 + 0.4 / 3
    again = paired_bootstrap(y, probabilities, pred_b, metric="accuracy", seed=0, n_resamples=4000)
    assert again == result


def test_bootstrap_rmse_direction_interval_and_an_independent_loop():
    rng = np.random.default_rng(2)
    y = rng.normal(size=1500)
    # A is closer on most rows but far off on a few: A wins most rows, yet its RMSE is worse
    error_a = np.where(rng.random(y.size) < 0.05, 4.0, 0.2) * rng.choice([-1, 1], y.size)
    pred_a, pred_b = y + error_a, y + rng.normal(scale=0.5, size=y.size)
    result = paired_bootstrap(y, pred_a, pred_b, metric="rmse", seed=3, n_resamples=3000)

    def rmse(pred: np.ndarray, rows: np.ndarray) -> float:
        return float(np.sqrt(np.mean((pred[rows] - y[rows]) ** 2)))

    everything = np.arange(y.size)
    assert result.mean_difference == pytest.approx(
        rmse(pred_a, everything) - rmse(pred_b, everything)
    )
    assert result.wins > result.losses and result.mean_difference > 0
    assert result.better == "b" and result.lower_is_better
    # an independent bootstrap: its own generator, one resample at a time
    loop_rng = np.random.default_rng(99)
    draws = []
    for _ in range(3000):
        rows = loop_rng.integers(0, y.size, size=y.size)
        draws.append(rmse(pred_a, rows) - rmse(pred_b, rows))
    low, high = np.quantile(draws, [0.025, 0.975])
    width = high - low
    assert result.ci_low == pytest.approx(low, abs=0.1 * width)
    assert result.ci_high == pytest.approx(high, abs=0.1 * width)
    assert 0 < result.ci_low < result.ci_high
    assert result.p_value == pytest.approx(2 / 3001)  # no resample favours A


def test_bootstrap_identical_models_and_seeding():
    y, pred_a, pred_b = _correlated_correctness(400, seed=4)
    same = paired_bootstrap(y, pred_a, pred_a, metric="accuracy", seed=0, n_resamples=500)
    assert (same.mean_difference, same.ci_low, same.ci_high, same.p_value) == (0, 0, 0, 1)
    assert same.better == "tie" and same.ties == 400
    first = paired_bootstrap(y, pred_a, pred_b, metric="accuracy", seed=7, n_resamples=500)
    assert paired_bootstrap(y, pred_a, pred_b, metric="accuracy", seed=7, n_resamples=500) == first
    other = paired_bootstrap(y, pred_a, pred_b, metric="accuracy", seed=8, n_resamples=500)
    assert (other.ci_low, other.ci_high, other.p_value) != (
        first.ci_low,
        first.ci_high,
        first.p_value,
    )
    assert other.mean_difference == first.mean_difference  # the estimate does not resample


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"metric": "r2"}, "unknown metric 'r2'"),
        ({"n_resamples": 0}, "n_resamples must be a positive integer, got 0"),
        ({"confidence": 1.0}, r"confidence must be in \(0, 1\), got 1.0"),
        ({"pred_b": np.zeros(4)}, "pred_b has 4 rows, y_true has 5"),
        ({"pred_a": np.array([1.0, np.nan, 0, 0, 0])}, "finite"),
    ],
)
def test_bootstrap_bad_input_names_the_value(arguments, message):
    call = {"y_true": np.zeros(5), "pred_a": np.zeros(5), "pred_b": np.ones(5)}
    call |= {"metric": "rmse", "seed": 0} | arguments
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(**call)


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert holm([0.02, 0.02]) == pytest.approx([0.04, 0.04])
    assert holm([0.3]) == [0.3]
    assert holm([]) == []


def test_holm_leaves_missing_p_values_out_of_the_family():
    assert holm([None, 0.01, None, 0.02]) == pytest.approx([None, 0.02, None, 0.02])
    with pytest.raises(ValueError, match=r"got 1\.5"):
        holm([0.1, 1.5])


def test_corrected_t_test_against_a_worked_example():
    # five folds of 5-fold CV (n_test / n_train = 1/4); differences A - B = 1, 2, 3, 4, 5
    a = {fold: 10.0 + d for fold, d in enumerate([1.0, 2.0, 3.0, 4.0, 5.0])}
    b = dict.fromkeys(range(5), 10.0)
    test = corrected_t_test(a, b, lower_is_better=True, test_fraction=0.25)
    # mean 3, sample variance 2.5; corrected variance (1/5 + 1/4) * 2.5 = 1.125
    assert test.statistic == pytest.approx(3 / math.sqrt(1.125))  # 2.8284
    # two-sided, 4 degrees of freedom: t = 2 sqrt(2) gives p = 0.04742 (t tables)
    assert test.p_value == pytest.approx(0.047421, abs=1e-5)
    assert test.better == "b" and test.n == 5 and test.test == "corrected_t"
    # 95 % interval: 3 -+ t(0.975, 4) * sqrt(1.125) = 3 -+ 2.776445 * 1.06066
    assert (test.ci_low, test.ci_high) == pytest.approx((0.055135, 5.944865), abs=1e-5)
    # the uncorrected resampled t-test would claim far more: (1/5) * 2.5 = 0.5
    plain = 3 / math.sqrt(0.5)
    assert test.statistic < plain


def test_corrected_t_test_takes_repeat_and_fold_keys_and_pairs_common_ones():
    a = {(0, 0): 1.0, (0, 1): 2.0, (1, 0): 1.5, (1, 1): 2.5, (2, 0): 9.0}
    b = {(0, 0): 0.5, (0, 1): 1.0, (1, 0): 1.0, (1, 1): 2.0}
    test = corrected_t_test(a, b, lower_is_better=False, test_fraction=1.0)
    differences = [0.5, 1.0, 0.5, 0.5]
    variance = (1 / 4 + 1.0) * float(np.var(differences, ddof=1))
    assert test.n == 4
    assert test.statistic == pytest.approx(np.mean(differences) / math.sqrt(variance))
    assert test.better == "a" and test.wins == 4


def test_corrected_t_test_constant_differences_and_bad_input():
    same = corrected_t_test(
        {0: 1.0, 1: 1.0}, {0: 1.0, 1: 1.0}, lower_is_better=True, test_fraction=0.5
    )
    assert same.p_value == 1.0 and same.better == "tie"
    shifted = corrected_t_test(
        {0: 2.0, 1: 2.0}, {0: 1.0, 1: 1.0}, lower_is_better=True, test_fraction=0.5
    )
    assert shifted.p_value == 0.0 and shifted.better == "b"
    with pytest.raises(ValueError, match="needs >= 2 common folds"):
        corrected_t_test({0: 1.0}, {0: 2.0}, lower_is_better=True, test_fraction=0.5)
    with pytest.raises(ValueError, match="test_fraction must be > 0"):
        corrected_t_test(
            {0: 1.0, 1: 2.0}, {0: 2.0, 1: 1.0}, lower_is_better=True, test_fraction=0.0
        )
