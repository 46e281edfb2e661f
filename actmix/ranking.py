"""Models across datasets: mean ranks, the Friedman test and Nemenyi's critical difference.

Follows Demšar (2006), "Statistical Comparisons of Classifiers over Multiple Data Sets",
JMLR 7: rank the models on each dataset (1 = best, ties share the mean rank), average
the ranks, test whether they differ with Friedman's chi-square, and call two models
different when their mean ranks differ by at least the critical difference
``CD = q_alpha * sqrt(k (k + 1) / (6 N))`` for k models on N datasets.

>>> summary = compare_ranks(
...     {"d1": {"a": 1.0, "b": 2.0, "c": 3.0}, "d2": {"a": 1.5, "b": 2.5, "c": 0.5}},
...     lower_is_better=True,
... )
>>> summary.mean_ranks
{'a': 1.5, 'c': 2.0, 'b': 2.5}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from actmix.comparison import ALPHA

__all__ = [
    "FriedmanTest",
    "RankSummary",
    "compare_ranks",
    "critical_difference",
    "friedman_test",
    "mean_ranks",
    "nemenyi_cliques",
]

# Demšar (2006), Table 5: studentized range quantiles / sqrt(2) for k = 2..10 models.
_NEMENYI_Q: dict[float, tuple[float, ...]] = {
    0.05: (1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164),
    0.10: (1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920),
}
_FEW_DATASETS = 10  # Demšar: the chi-square approximation is good for N > 10 and k > 5
_FEW_MODELS = 5


def mean_ranks(
    scores: Mapping[str, Mapping[str, float]], lower_is_better: bool | Mapping[str, bool]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean rank of each model over datasets (1 = best; tied scores share the mean rank).

    ``scores`` is ``{dataset: {model: score}}``; ``lower_is_better`` one flag or one per
    dataset. Only models scored on every dataset are ranked, so a model is never
    rewarded for skipping hard datasets. Returns the mean ranks (best first) and the
    per-dataset ranks.
    """
    from scipy.stats import rankdata

    if not scores:
        raise ValueError("no datasets to rank")
    common = set.intersection(*(set(models) for models in scores.values()))
    if len(common) < 2:
        raise ValueError("fewer than 2 models were scored on every dataset")
    models = sorted(common)
    per_dataset = {}
    for dataset, by_model in scores.items():
        lower = lower_is_better if isinstance(lower_is_better, bool) else lower_is_better[dataset]
        values = np.array([by_model[model] for model in models], dtype=float)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"dataset {dataset!r} has a non-finite score: {dict(by_model)}")
        ranks = rankdata(values if lower else -values, method="average")
        per_dataset[dataset] = dict(zip(models, map(float, ranks), strict=True))
    means = {model: float(np.mean([r[model] for r in per_dataset.values()])) for model in models}
    return dict(sorted(means.items(), key=lambda item: (item[1], item[0]))), per_dataset


@dataclass(frozen=True, slots=True)
class FriedmanTest:
    """Friedman's chi-square over per-dataset ranks; ``p_value`` None when not applicable."""

    n_datasets: int
    n_models: int
    statistic: float | None
    p_value: float | None
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_datasets": self.n_datasets,
            "n_models": self.n_models,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "note": self.note,
        }


def friedman_test(dataset_ranks: Mapping[str, Mapping[str, float]]) -> FriedmanTest:
    """Friedman test that all models have the same mean rank, from :func:`mean_ranks`' ranks.

    ``chi2 = 12 N / (k (k+1)) * (sum_j R_j^2 - k (k+1)^2 / 4)`` over mean ranks ``R_j``,
    divided by the usual tie correction (as ``scipy.stats.friedmanchisquare``), with
    k - 1 degrees of freedom. Needs >= 2 datasets and >= 3 models; otherwise
    ``p_value`` is None and ``note`` says why.
    """
    from scipy.stats import chi2

    n_datasets = len(dataset_ranks)
    models = sorted(next(iter(dataset_ranks.values()))) if dataset_ranks else []
    for dataset, ranks in dataset_ranks.items():
        if sorted(ranks) != models:
            raise ValueError(f"dataset {dataset!r} ranks {sorted(ranks)}, expected {models}")
    k = len(models)
    note: str | None
    if n_datasets < 2 or k < 3:
        note = (
            f"Friedman test not applicable: it needs >= 2 datasets and >= 3 models, "
            f"got {n_datasets} dataset(s) and {k} model(s)"
        )
        return FriedmanTest(n_datasets, k, None, None, note)
    matrix = np.array([[ranks[m] for m in models] for ranks in dataset_ranks.values()])
    if not np.allclose(matrix.sum(axis=1), k * (k + 1) / 2):
        raise ValueError("each dataset's ranks must be ranks 1..k (ties averaged)")
    average = matrix.mean(axis=0)
    statistic = 12 * n_datasets / (k * (k + 1)) * (np.sum(average**2) - k * (k + 1) ** 2 / 4)
    tie_sizes = [np.unique(row, return_counts=True)[1] for row in matrix]
    tied = sum(float(np.sum(sizes.astype(float) ** 3 - sizes)) for sizes in tie_sizes)
    correction = 1 - tied / (n_datasets * k * (k * k - 1))
    if correction <= 0:  # every dataset ranks every model equal: nothing to tell apart
        return FriedmanTest(n_datasets, k, 0.0, 1.0, "all models tie on every dataset")
    statistic /= correction
    note = None
    if n_datasets <= _FEW_DATASETS or k <= _FEW_MODELS:
        note = (
            f"with {n_datasets} datasets and {k} models the chi-square p-value is an "
            f"approximation (Demšar 2006: good for N > {_FEW_DATASETS} and k > {_FEW_MODELS}) "
            "and the test has little power: a large p-value is weak evidence of no difference"
        )
    return FriedmanTest(n_datasets, k, float(statistic), float(chi2.sf(statistic, k - 1)), note)


def _nemenyi_q(n_models: int, alpha: float) -> float:
    """Studentized range quantile / sqrt(2): Demšar's table for k <= 10, scipy beyond."""
    table = _NEMENYI_Q.get(alpha)
    if table is not None and n_models - 2 < len(table):
        return table[n_models - 2]
    from scipy.stats import studentized_range

    return float(studentized_range.ppf(1 - alpha, n_models, np.inf) / math.sqrt(2))


def critical_difference(n_models: int, n_datasets: int, *, alpha: float = ALPHA) -> float:
    """Nemenyi's critical difference of mean ranks, ``q_alpha * sqrt(k (k + 1) / (6 N))``.

    >>> round(critical_difference(4, 14), 2)  # Demšar (2006), section 3.2.2
    1.25
    """
    if isinstance(n_models, bool) or not isinstance(n_models, int) or n_models < 2:
        raise ValueError(f"n_models must be an integer >= 2, got {n_models!r}")
    if isinstance(n_datasets, bool) or not isinstance(n_datasets, int) or n_datasets < 1:
        raise ValueError(f"n_datasets must be an integer >= 1, got {n_datasets!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    q = _nemenyi_q(n_models, alpha)
    return q * math.sqrt(n_models * (n_models + 1) / (6 * n_datasets))


def nemenyi_cliques(ranks: Mapping[str, float], cd: float) -> list[tuple[str, ...]]:
    """Maximal groups of models (best first) whose mean ranks all differ by less than CD.

    These are the bars of a critical-difference diagram; a model in no group of two or
    more differs from every other one. Groups contained in a bigger one are dropped.
    """
    if not cd > 0:
        raise ValueError(f"the critical difference must be > 0, got {cd}")
    ordered = sorted(ranks.items(), key=lambda item: (item[1], item[0]))
    cliques: list[tuple[str, ...]] = []
    last_end = 0
    for start in range(len(ordered)):
        end = start
        while end + 1 < len(ordered) and (ordered[end + 1][1] - ordered[start][1] < cd):
            end += 1
        # a group ending where an earlier one ended is inside that one
        if end > start and end + 1 > last_end:
            cliques.append(tuple(name for name, _ in ordered[start : end + 1]))
            last_end = end + 1
    return cliques


@dataclass(frozen=True, slots=True)
class RankSummary:
    """Mean ranks, per-dataset ranks, Friedman test and Nemenyi CD of one set of scores."""

    mean_ranks: dict[str, float]  # best first
    dataset_ranks: dict[str, dict[str, float]]
    left_out: tuple[str, ...]  # models not scored on every dataset
    friedman: FriedmanTest
    alpha: float
    critical_difference: float
    cliques: tuple[tuple[str, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean_ranks": self.mean_ranks,
            "dataset_ranks": self.dataset_ranks,
            "left_out": list(self.left_out),
            "friedman_statistic": self.friedman.statistic,
            "friedman_p": self.friedman.p_value,
            "friedman_note": self.friedman.note,
            "alpha": self.alpha,
            "critical_difference": self.critical_difference,
            "cliques": [list(clique) for clique in self.cliques],
        }


def compare_ranks(
    scores: Mapping[str, Mapping[str, float]],
    lower_is_better: bool | Mapping[str, bool],
    *,
    alpha: float = ALPHA,
) -> RankSummary:
    """Everything of Demšar's procedure for ``{dataset: {model: score}}`` in one call."""
    means, per_dataset = mean_ranks(scores, lower_is_better)
    every_model = set().union(*(set(models) for models in scores.values()))
    cd = critical_difference(len(means), len(per_dataset), alpha=alpha)
    return RankSummary(
        mean_ranks=means,
        dataset_ranks=per_dataset,
        left_out=tuple(sorted(every_model - set(means))),
        friedman=friedman_test(per_dataset),
        alpha=alpha,
        critical_difference=cd,
        cliques=tuple(nemenyi_cliques(means, cd)),
    )
