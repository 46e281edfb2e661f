"""Test-fold targets never reach training, initialisation or the scored predictions.

Each test changes only the targets of fold 0's test rows, in a way that moves their mean
or class frequencies (a permutation would keep both and hide leaks that use them), and
checks that fold 0's members and scored predictions are bit-identical while its test
metric changes. Two leaks these tests were written against: shifting test predictions
towards the test-target mean when scoring, and setting output biases from the class
frequencies of all rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from actmix import cv
from actmix.config import MLPConfig, RunConfig, TrainConfig
from actmix.cv import CVResult, build_members, cross_validate
from actmix.mlp import MLP
from actmix.preprocessing import prepare_fold, unstandardise
from actmix.splits import Splits, make_folds
from actmix.trainer import predict
from actmix.types import Dataset
from tests.actmix.synthetic import make_classification_dataset, make_regression_dataset

TINY = RunConfig(
    model="actmix",
    mlp=MLPConfig(widths=(8, 8), dropout=0.1),
    train=TrainConfig(epochs=3, batch_size=32, patience=3),
)
SEEDS = (0, 1)

# (first row of the scored fold, "test" or "val") -> each member's prediction, in order
Scored = dict[tuple[int, str], list[np.ndarray]]


@pytest.fixture
def scored(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Scored]]:
    """Every prediction ``cross_validate`` hands to ``score_rows``; ``_run`` opens a run."""
    runs: list[Scored] = []
    original = cv.score_rows

    def spy(
        dataset: Dataset, rows: np.ndarray, prediction: np.ndarray, prefix: str
    ) -> dict[str, float]:
        runs[-1].setdefault((int(rows[0]), prefix), []).append(np.array(prediction, copy=True))
        return original(dataset, rows, prediction, prefix)

    monkeypatch.setattr(cv, "score_rows", spy)
    yield runs


def _run(dataset: Dataset, splits: Splits, scored: list[Scored]) -> tuple[CVResult, Scored]:
    scored.append({})
    result = cross_validate(dataset, TINY, splits=splits, seeds=SEEDS, device="cpu")
    assert scored[-1], "cross_validate no longer scores through actmix.cv.score_rows"
    return result, scored[-1]


def _with_targets(dataset: Dataset, rows: np.ndarray, values: Any) -> Dataset:
    target = dataset.target.copy()
    target.iloc[rows] = values
    return dataclasses.replace(dataset, target=pd.Series(target, name=dataset.target.name))


def _fold_members(result: CVResult, fold: int) -> list[int]:
    return [k for k, row in enumerate(result.rows) if row["fold"] == fold]


def _assert_same_state(ours: MLP, theirs: MLP) -> None:
    theirs_state = theirs.state_dict()
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, theirs_state[name]), name


def _model_predictions(dataset: Dataset, splits: Splits, result: CVResult) -> list[np.ndarray]:
    """Each member's test predictions recomputed from its weights and test features alone."""
    assert result.model is not None
    arrays = [prepare_fold(dataset, fold) for fold in splits.folds]
    member_arrays = [arrays[row["fold"]] for row in result.rows]
    outputs = predict(result.model, [a.x_test for a in member_arrays], task=dataset.task)
    if dataset.task == "classification":
        return outputs
    return [unstandardise(output, a) for output, a in zip(outputs, member_arrays, strict=True)]


def _scored_test_predictions(scored: Scored, splits: Splits, fold: int) -> list[np.ndarray]:
    return scored[(int(splits.folds[fold].test_idx[0]), "test")]


def test_regression_scores_depend_on_the_model_and_test_features_only(
    scored: list[Scored],
) -> None:
    dataset = make_regression_dataset(150, seed=11)
    splits = make_folds(dataset, 3, seed=0)
    test_rows = splits.folds[0].test_idx
    original = dataset.target.to_numpy()[test_rows]
    # a new mean and spread for fold 0's test targets
    changed = _with_targets(dataset, test_rows, 3.0 * original - 40.0)
    clean, clean_scored = _run(dataset, splits, scored)
    dirty, dirty_scored = _run(changed, splits, scored)

    for before, after in zip(
        _scored_test_predictions(clean_scored, splits, 0),
        _scored_test_predictions(dirty_scored, splits, 0),
        strict=True,
    ):
        assert before.tobytes() == after.tobytes()
    assert clean.model is not None and dirty.model is not None
    for k in _fold_members(clean, 0):
        _assert_same_state(clean.model.member(k), dirty.model.member(k))
        assert clean.rows[k]["test_rmse"] != dirty.rows[k]["test_rmse"]

    # every reported score is the metric of the model's own predictions on the true targets
    predictions = _model_predictions(changed, splits, dirty)
    targets = changed.target.to_numpy(dtype=np.float64)
    for k, row in enumerate(dirty.rows):
        truth = targets[splits.folds[row["fold"]].test_idx]
        rmse = math.sqrt(float(np.mean((predictions[k] - truth) ** 2)))
        assert row["test_rmse"] == pytest.approx(rmse, rel=1e-5)


def test_class_frequencies_of_the_test_fold_leave_members_unchanged(
    scored: list[Scored],
) -> None:
    dataset = make_classification_dataset(150, seed=12, n_classes=3)
    splits = make_folds(dataset, 3, seed=0)
    test_rows = splits.folds[0].test_idx
    # every test row of fold 0 becomes the first class: the frequencies of all rows move
    changed = _with_targets(dataset, test_rows, dataset.classes[0])
    assert changed.classes == dataset.classes
    counts = [np.bincount(d.target_codes(), minlength=3) for d in (dataset, changed)]
    assert not np.array_equal(*counts)

    # initialisation: fold 0's members are built from fold 0's training data only
    members = [
        build_members(d, TINY, [prepare_fold(d, fold) for fold in splits.folds], SEEDS)
        for d in (dataset, changed)
    ]
    fold_zero = [k for k, (fold, _) in enumerate(members[0].pairs) if fold == 0]
    for k in fold_zero:
        _assert_same_state(members[0].model.member(k), members[1].model.member(k))

    # training and scoring
    clean, clean_scored = _run(dataset, splits, scored)
    dirty, dirty_scored = _run(changed, splits, scored)
    assert clean.model is not None and dirty.model is not None
    for before, after in zip(
        _scored_test_predictions(clean_scored, splits, 0),
        _scored_test_predictions(dirty_scored, splits, 0),
        strict=True,
    ):
        assert before.tobytes() == after.tobytes()
    for k in _fold_members(clean, 0):
        _assert_same_state(clean.model.member(k), dirty.model.member(k))
        assert clean.rows[k]["test_accuracy"] != dirty.rows[k]["test_accuracy"]

    predictions = _model_predictions(changed, splits, dirty)
    codes = changed.target_codes()
    for k, row in enumerate(dirty.rows):
        truth = codes[splits.folds[row["fold"]].test_idx]
        accuracy = float(np.mean(predictions[k].argmax(axis=1) == truth))
        assert row["test_accuracy"] == pytest.approx(accuracy, abs=1e-12)
