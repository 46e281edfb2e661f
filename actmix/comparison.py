"""Comparing models on the same folds: per-fold scores, paired Wilcoxon tests, mean ranks.

Scores of different models are only paired when they come from the same outer folds
(same splits fingerprint); a fold's score is the mean over its training seeds, so seeds
do not inflate the number of pairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PairedTest", "fold_scores", "mean_ranks", "paired_wilcoxon"]


def fold_scores(rows: Sequence[Mapping[str, Any]], key: str) -> dict[int, float]:
    """``{fold: mean of key over that fold's seeds}``, skipping non-finite values."""
    by_fold: dict[int, list[float]] = {}
    for row in rows:
        if key not in row:
            raise ValueError(f"row of fold {row.get('fold')} has no {key!r}")
        value = float(row[key])
        if math.isfinite(value):
            by_fold.setdefault(int(row["fold"]), []).append(value)
    return {fold: float(np.mean(values)) for fold, values in sorted(by_fold.items())}


@dataclass(frozen=True, slots=True)
class PairedTest:
    """Wilcoxon signed-rank test of model A against model B on the folds both have.

    ``mean_difference`` is A minus B in the metric's units; ``wins`` counts folds where
    A is better (lower when ``lower_is_better``), ``losses`` where B is, ``ties`` equal.
    """

    n: int
    statistic: float
    p_value: float
    mean_difference: float
    wins: int
    losses: int
    ties: int

    @property
    def better(self) -> str:
        """``"A"``, ``"B"`` or ``"tie"`` by the majority of folds (the sign of the test)."""
        if self.wins == self.losses:
            return "tie"
        return "A" if self.wins > self.losses else "B"

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "mean_difference": self.mean_difference,
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.ties,
        }


def paired_wilcoxon(
    a: Mapping[int, float], b: Mapping[int, float], *, lower_is_better: bool
) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test on the folds present in both ``a`` and ``b``.

    Exact p-values for small samples without ties (scipy's ``auto``); folds with equal
    scores are dropped from the ranks (Wilcoxon's convention) but counted as ties.
    """
    from scipy.stats import wilcoxon

    folds = sorted(set(a) & set(b))
    if len(folds) < 2:
        raise ValueError(f"a paired test needs at least 2 common folds, got {len(folds)}")
    differences = np.array([a[fold] - b[fold] for fold in folds])
    signed = -differences if lower_is_better else differences  # > 0: A is better
    wins, losses = int((signed > 0).sum()), int((signed < 0).sum())
    ties = len(folds) - wins - losses
    if wins + losses == 0:
        statistic, p_value = 0.0, 1.0
    else:
        result = wilcoxon(differences, zero_method="wilcox", alternative="two-sided")
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return PairedTest(
        n=len(folds),
        statistic=statistic,
        p_value=p_value,
        mean_difference=float(differences.mean()),
        wins=wins,
        losses=losses,
        ties=ties,
    )


def mean_ranks(
    scores: Mapping[str, Mapping[str, float]], lower_is_better: Mapping[str, bool]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean rank of each model over datasets (1 = best; tied scores share the mean rank).

    ``scores`` is ``{dataset: {model: score}}``. Only models scored on every dataset are
    ranked, so a model is never rewarded for skipping hard datasets. Returns the mean
    ranks (best first) and the per-dataset ranks.
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
        values = np.array([by_model[model] for model in models], dtype=float)
        ranks = rankdata(values if lower_is_better[dataset] else -values, method="average")
        per_dataset[dataset] = dict(zip(models, map(float, ranks), strict=True))
    means = {model: float(np.mean([r[model] for r in per_dataset.values()])) for model in models}
    return dict(sorted(means.items(), key=lambda item: (item[1], item[0]))), per_dataset
