"""Per-fold preprocessing: fitted on training rows only, NaN-free, invertible targets."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from actmix.config import TrainConfig
from actmix.mlp import MLP
from actmix.optim import MemberAdamW
from actmix.preprocessing import (
    MIN_STEPS_PER_EPOCH,
    build_preprocessor,
    effective_batch_size,
    prepare_fold,
    unstandardise,
)
from actmix.splits import Fold, make_folds
from actmix.trainer import MemberData, fit
from actmix.types import Dataset
from tests.actmix.synthetic import make_classification_dataset, make_regression_dataset

FOLD = Fold(0, np.arange(0, 60), np.arange(60, 80), np.arange(80, 100))
COLORS = ("color=blue", "color=green", "color=red")


def _with_rows_replaced(dataset: Dataset, rows: np.ndarray) -> Dataset:
    """Copy of ``dataset`` whose ``rows`` have absurd features and targets."""
    numeric = dataset.numeric.copy()
    numeric.iloc[rows] = 1e9
    categorical = dataset.categorical.copy()
    categorical.iloc[rows] = "never_seen"
    target = dataset.target.copy()
    target.iloc[rows] = 1e9 if dataset.task == "regression" else dataset.classes[-1]
    return dataclasses.replace(dataset, numeric=numeric, categorical=categorical, target=target)


@pytest.mark.parametrize(
    "dataset", [make_regression_dataset(100, seed=1), make_classification_dataset(100, seed=1)]
)
def test_nothing_is_fitted_on_validation_or_test_rows(dataset: Dataset) -> None:
    reference = prepare_fold(dataset, FOLD)
    outside = np.concatenate([FOLD.val_idx, FOLD.test_idx])
    changed = prepare_fold(_with_rows_replaced(dataset, outside), FOLD)
    assert changed.x_train.tobytes() == reference.x_train.tobytes()
    assert changed.y_train.tobytes() == reference.y_train.tobytes()
    assert (changed.target_mean, changed.target_std) == (
        reference.target_mean,
        reference.target_std,
    )
    assert changed.feature_names == reference.feature_names
    assert not np.array_equal(changed.x_val, reference.x_val)  # the change did reach val rows


def test_numeric_columns_use_train_median_mean_and_std() -> None:
    dataset = make_regression_dataset(100, seed=2, missing=0.2)
    arrays = prepare_fold(dataset, FOLD)
    raw = dataset.numeric["x0"].to_numpy()
    assert np.isnan(raw[FOLD.train_idx]).any() and np.isnan(raw[FOLD.val_idx]).any()

    median = np.nanmedian(raw[FOLD.train_idx])
    train_filled = np.where(np.isnan(raw[FOLD.train_idx]), median, raw[FOLD.train_idx])
    mean, std = train_filled.mean(), train_filled.std()
    val_filled = np.where(np.isnan(raw[FOLD.val_idx]), median, raw[FOLD.val_idx])
    column = arrays.feature_names.index("x0")
    np.testing.assert_allclose(
        arrays.x_train[:, column], (train_filled - mean) / std, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        arrays.x_val[:, column], (val_filled - mean) / std, rtol=1e-5, atol=1e-6
    )


def test_one_hot_imputes_most_frequent_and_ignores_unknown_categories() -> None:
    dataset = make_classification_dataset(100, seed=3, n_classes=3)
    colors = dataset.categorical["color"].to_numpy(dtype=object, copy=True)
    colors[FOLD.train_idx] = ["red"] * 30 + ["blue"] * 20 + [np.nan] * 10  # red is most frequent
    colors[FOLD.val_idx[0]] = np.nan
    colors[FOLD.test_idx[0]] = "purple"
    colors[FOLD.test_idx[1]] = "blue"
    dataset = dataclasses.replace(dataset, categorical=pd.DataFrame({"color": colors}))
    arrays = prepare_fold(dataset, FOLD)

    assert arrays.feature_names == ("x0", "x1", "x2", "color=blue", "color=red")
    one_hot = slice(3, 5)
    np.testing.assert_array_equal(arrays.x_val[0, one_hot], [0.0, 1.0])  # NaN -> red
    np.testing.assert_array_equal(arrays.x_test[0, one_hot], [0.0, 0.0])  # unknown -> zeros
    np.testing.assert_array_equal(arrays.x_test[1, one_hot], [1.0, 0.0])


@pytest.mark.parametrize("split_seed", [0, 1])
def test_outputs_are_finite_float32_with_train_targets_standardised(split_seed: int) -> None:
    dataset = make_regression_dataset(150, seed=4, missing=0.3)
    fold = make_folds(dataset, k=3, seed=split_seed).folds[1]
    arrays = prepare_fold(dataset, fold)
    target = dataset.target.to_numpy()
    assert arrays.target_mean == pytest.approx(target[fold.train_idx].mean())
    assert arrays.target_std == pytest.approx(target[fold.train_idx].std())
    for x, y, rows in (
        (arrays.x_train, arrays.y_train, fold.train_idx),
        (arrays.x_val, arrays.y_val, fold.val_idx),
        (arrays.x_test, arrays.y_test, fold.test_idx),
    ):
        assert x.dtype == np.float32 and y.dtype == np.float32
        assert x.shape == (rows.size, 6) and np.isfinite(x).all()
        expected = (target[rows] - arrays.target_mean) / arrays.target_std
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(unstandardise(y, arrays), target[rows], rtol=1e-5)
    assert abs(arrays.y_train.mean()) < 1e-5 and arrays.y_train.std() == pytest.approx(
        1.0, rel=1e-5
    )


def test_classification_targets_are_class_codes() -> None:
    dataset = make_classification_dataset(100, seed=5, n_classes=3)
    arrays = prepare_fold(dataset, FOLD)
    labels = dataset.target.to_numpy()
    assert arrays.y_test.dtype == np.int64
    assert [dataset.classes[code] for code in arrays.y_test] == list(labels[FOLD.test_idx])
    assert (arrays.target_mean, arrays.target_std) == (0.0, 1.0)


def test_numeric_only_and_categorical_only_datasets() -> None:
    dataset = make_regression_dataset(100, seed=6)
    numeric_only = dataclasses.replace(dataset, categorical=pd.DataFrame(index=range(100)))
    categorical_only = dataclasses.replace(dataset, numeric=pd.DataFrame(index=range(100)))
    assert prepare_fold(numeric_only, FOLD).feature_names == ("x0", "x1", "x2")
    arrays = prepare_fold(categorical_only, FOLD)
    assert arrays.feature_names == COLORS
    assert set(np.unique(arrays.x_train)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="has no feature columns"):
        build_preprocessor(
            dataclasses.replace(numeric_only, numeric=pd.DataFrame(index=range(100)))
        )


def test_constant_and_all_missing_columns_stay_finite() -> None:
    dataset = make_regression_dataset(100, seed=7)
    numeric = dataset.numeric.assign(constant=3.0, empty=np.nan)
    categorical = dataset.categorical.assign(always_missing=np.nan)
    arrays = prepare_fold(
        dataclasses.replace(dataset, numeric=numeric, categorical=categorical), FOLD
    )
    for x in (arrays.x_train, arrays.x_val, arrays.x_test):
        assert np.isfinite(x).all()
        for name in ("constant", "empty"):
            np.testing.assert_array_equal(x[:, arrays.feature_names.index(name)], 0.0)


def test_constant_target_does_not_divide_by_zero() -> None:
    dataset = make_regression_dataset(100, seed=8)
    dataset = dataclasses.replace(dataset, target=pd.Series(np.full(100, 5.0)))
    arrays = prepare_fold(dataset, FOLD)
    assert (arrays.target_mean, arrays.target_std) == (5.0, 1.0)
    np.testing.assert_array_equal(arrays.y_train, 0.0)


def test_fold_from_another_dataset_is_rejected() -> None:
    dataset = make_regression_dataset(50, seed=9)
    with pytest.raises(
        ValueError,
        match="fold 0 train_idx reaches row 59, but dataset 'synthetic_regression' has 50 rows",
    ):
        prepare_fold(dataset, FOLD)


def test_infinite_feature_is_refused_with_its_column_name() -> None:
    dataset = make_regression_dataset(100, seed=10)
    numeric = dataset.numeric.copy()
    numeric.loc[90, "x2"] = np.inf  # a test row: the check looks at every row
    with pytest.raises(ValueError, match=r"feature column\(s\) 'x2' \(1 rows\)"):
        prepare_fold(dataclasses.replace(dataset, numeric=numeric), FOLD)


@pytest.mark.parametrize(
    ("batch_size", "train_rows", "expected"),
    [
        (256, 40, 10),  # 40 rows // 4 steps
        (256, 41, 10),  # floor: 5 steps, never fewer than 4
        (128, 512, 128),  # exactly 4 full batches: unchanged
        (128, 511, 127),
        (128, 6000, 128),
        (256, 3, 1),  # fewer rows than MIN_STEPS_PER_EPOCH: one row per step
        (1, 1, 1),
    ],
)
def test_effective_batch_size_caps_small_data(
    batch_size: int, train_rows: int, expected: int
) -> None:
    assert MIN_STEPS_PER_EPOCH == 4
    capped = effective_batch_size(batch_size, train_rows)
    assert capped == expected
    assert math.ceil(train_rows / capped) >= min(MIN_STEPS_PER_EPOCH, train_rows)


@pytest.mark.parametrize(("batch_size", "train_rows"), [(0, 10), (16, 0)])
def test_effective_batch_size_rejects_non_positive_inputs(batch_size: int, train_rows: int) -> None:
    with pytest.raises(ValueError, match=f"must be >= 1, got {min(batch_size, train_rows)}"):
        effective_batch_size(batch_size, train_rows)


def test_a_dataset_smaller_than_one_batch_takes_several_steps_per_epoch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    y = x.sum(axis=1).astype(np.float32)
    member = MemberData(x[:40], y[:40], x[40:], y[40:], seed=0)
    steps: list[int] = []
    original_step = MemberAdamW.step

    def counting_step(self: MemberAdamW, *args: Any, **kwargs: Any) -> Any:
        steps.append(1)
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(MemberAdamW, "step", counting_step)
    model = MLP(3, 1, (8,), "relu", members=1, seed=[0])
    config = TrainConfig(epochs=2, batch_size=256, patience=5)
    fit(model, [member], config, task="regression", device="cpu")
    # 40 training rows with batch size 256 capped to 10: 4 steps in each of 2 epochs
    assert len(steps) == 2 * 4
