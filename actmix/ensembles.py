"""Ensembles of tuned configurations on an outer fold: averaged predictions, scored once.

A tuned model's top k configurations (by inner validation) are each retrained as the
single best is (``actmix.nested.evaluate_outer_fold``, the same seeds); the ensemble's
prediction for seed s is the mean of the k configurations' seed-s predictions
(probabilities for classification, original units for regression), and it is scored on
the outer-test rows like a single model. Nothing here sees a row that the
configurations' own evaluations did not: the ensemble is a function of their outer-test
predictions only.

>>> members = [evaluate_outer_fold(data, c, outer, 0, seeds=(0, 1)) for c in top]  # doctest: +SKIP
>>> ensemble = ensemble_outer_fold(data, members)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from actmix.cv import score_rows
from actmix.nested import OuterFoldResult
from actmix.types import Dataset

__all__ = ["ensemble_outer_fold"]


def ensemble_outer_fold(dataset: Dataset, members: Sequence[OuterFoldResult]) -> OuterFoldResult:
    """The ensemble of ``members`` (one configuration each, evaluated on the same outer
    fold with the same seeds): per seed, their mean test prediction and its test scores.

    Each row has ``seed``, the ``test_*`` metrics and ``members`` (k). ValueError when the
    members were not evaluated on the same rows with the same seeds.
    """
    if not members:
        raise ValueError("an ensemble needs at least one member")
    first = members[0]
    seeds = [row["seed"] for row in first.rows]
    for member in members[1:]:
        if not np.array_equal(member.test_idx, first.test_idx):
            raise ValueError("ensemble members were scored on different outer-test rows")
        if [row["seed"] for row in member.rows] != seeds:
            raise ValueError("ensemble members were trained with different seeds")
    # [members, seeds, rows(, classes)] -> [seeds, rows(, classes)]
    mean = np.mean(np.stack([member.test_prediction for member in members]), axis=0)
    rows = tuple(
        {
            "seed": seed,
            **score_rows(dataset, first.test_idx, mean[k], "test"),
            "members": len(members),
        }
        for k, seed in enumerate(seeds)
    )
    return OuterFoldResult(rows=rows, test_idx=first.test_idx, test_prediction=mean)
