"""Mean ranks, Friedman test, Nemenyi critical difference: hand computations and scipy."""

import math

import numpy as np
import pytest
from scipy.stats import friedmanchisquare, studentized_range

from actmix.ranking import (
    compare_ranks,
    critical_difference,
    friedman_test,
    mean_ranks,
    nemenyi_cliques,
)


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
        mean_ranks({"d1": {"a": 1.0}, "d2": {"b": 1.0}}, True)
    with pytest.raises(ValueError, match="non-finite score"):
        mean_ranks({"d1": {"a": 1.0, "b": math.nan}}, True)


def test_friedman_by_hand_when_every_dataset_agrees():
    # ranks 1, 2, 3 on 4 datasets: chi2 = 12*4/(3*4) * (1 + 4 + 9 - 3*16/4) = 8, df 2
    ranks = {f"d{i}": {"a": 1.0, "b": 2.0, "c": 3.0} for i in range(4)}
    test = friedman_test(ranks)
    assert test.statistic == pytest.approx(8.0)
    assert test.p_value == pytest.approx(math.exp(-4))  # chi2(2) survival = exp(-x/2)
    assert (test.n_datasets, test.n_models) == (4, 3)
    assert "little power" in test.note


@pytest.mark.parametrize("with_ties", [False, True])
def test_friedman_matches_scipy(with_ties: bool):
    rng = np.random.default_rng(0)
    models = ["a", "b", "c", "d", "e"]
    raw = rng.normal(size=(12, 5)) + np.arange(5) * 0.4
    if with_ties:
        raw = raw.round(0)
    scores = {f"d{i}": dict(zip(models, row, strict=True)) for i, row in enumerate(raw)}
    _, per_dataset = mean_ranks(scores, True)
    expected = friedmanchisquare(*raw.T)
    test = friedman_test(per_dataset)
    assert test.statistic == pytest.approx(expected.statistic)
    assert test.p_value == pytest.approx(expected.pvalue)


def test_friedman_not_applicable_says_why():
    one_dataset = friedman_test({"d1": {"a": 1.0, "b": 2.0, "c": 3.0}})
    assert one_dataset.p_value is None and "1 dataset(s)" in one_dataset.note
    two_models = friedman_test({"d1": {"a": 1.0, "b": 2.0}, "d2": {"a": 2.0, "b": 1.0}})
    assert two_models.p_value is None and "2 model(s)" in two_models.note
    ties = friedman_test(
        {"d1": {"a": 2.0, "b": 2.0, "c": 2.0}, "d2": {"a": 2.0, "b": 2.0, "c": 2.0}}
    )
    assert ties.p_value == 1.0
    with pytest.raises(ValueError, match=r"ranks 1\.\.k"):
        friedman_test({"d1": {"a": 0.3, "b": 0.2, "c": 0.1}, "d2": {"a": 1, "b": 2, "c": 3}})
    with pytest.raises(ValueError, match="expected"):
        friedman_test({"d1": {"a": 1.0, "b": 2.0, "c": 3.0}, "d2": {"a": 1.0, "b": 2.0, "x": 3.0}})


def test_critical_difference_by_hand_and_against_scipy():
    # Demšar (2006), section 3.2.2: 4 classifiers on 14 data sets, CD = 2.569 * sqrt(20/84)
    assert critical_difference(4, 14) == pytest.approx(2.569 * math.sqrt(20 / 84))
    for k in range(2, 11):
        q = studentized_range.ppf(0.95, k, np.inf) / math.sqrt(2)
        assert critical_difference(k, 6) == pytest.approx(q * math.sqrt(k * (k + 1) / 36), rel=1e-3)
        q10 = studentized_range.ppf(0.90, k, np.inf) / math.sqrt(2)
        assert critical_difference(k, 6, alpha=0.10) == pytest.approx(
            q10 * math.sqrt(k * (k + 1) / 36), rel=1e-3
        )
    # beyond the table: scipy's quantile, growing with k
    q12 = studentized_range.ppf(0.95, 12, np.inf) / math.sqrt(2)
    assert critical_difference(12, 3) == pytest.approx(q12 * math.sqrt(12 * 13 / 18))
    with pytest.raises(ValueError, match="n_models must be an integer >= 2, got 1"):
        critical_difference(1, 3)
    with pytest.raises(ValueError, match="n_datasets must be an integer >= 1, got 0"):
        critical_difference(3, 0)


def test_cliques_by_hand():
    assert nemenyi_cliques({"a": 1.0, "b": 1.5, "c": 2.9, "d": 3.2}, 1.0) == [
        ("a", "b"),
        ("c", "d"),
    ]
    assert nemenyi_cliques({"a": 1.0, "b": 1.8, "c": 2.6}, 1.0) == [("a", "b"), ("b", "c")]
    # (b, c) lies inside (a, b, c) and is not listed again
    assert nemenyi_cliques({"c": 1.4, "a": 1.0, "b": 1.2}, 1.0) == [("a", "b", "c")]
    # a difference of exactly CD is significant: no group
    assert nemenyi_cliques({"a": 1.0, "b": 2.0}, 1.0) == []


def test_compare_ranks_bundles_the_procedure():
    scores = {f"d{i}": {"a": 1.0 + i, "b": 2.0 + i, "c": 3.0 + i} for i in range(4)}
    scores["d0"]["only_here"] = 0.0
    summary = compare_ranks(scores, lower_is_better=True)
    assert summary.mean_ranks == {"a": 1.0, "b": 2.0, "c": 3.0}
    assert summary.left_out == ("only_here",)
    assert summary.friedman.statistic == pytest.approx(8.0)
    cd = 2.343 * math.sqrt(3 * 4 / 24)  # k = 3, N = 4
    assert summary.critical_difference == pytest.approx(cd)
    assert summary.cliques == (("a", "b"), ("b", "c"))  # 1 apart, CD = 1.66: a vs c differ
    data = summary.to_dict()
    assert data["friedman_p"] == pytest.approx(math.exp(-4))
    assert data["cliques"] == [["a", "b"], ["b", "c"]]
