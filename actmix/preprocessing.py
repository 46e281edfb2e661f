"""Per-fold preprocessing, fitted on the fold's training rows only.

Imputation, scaling, one-hot encoding and (for regression) target standardisation
see ``fold.train_idx`` and nothing else; the inner validation and test rows are only
transformed. Every dataset takes the same path, whatever its column kinds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from actmix._frames import check_dataset
from actmix.splits import Fold
from actmix.types import Dataset

__all__ = [
    "MIN_STEPS_PER_EPOCH",
    "FoldArrays",
    "build_preprocessor",
    "effective_batch_size",
    "prepare_fold",
    "unstandardise",
]

# Fewest optimiser steps an epoch takes when the training rows allow it (see
# ``effective_batch_size``).
MIN_STEPS_PER_EPOCH = 4


@dataclass(frozen=True, slots=True, eq=False)
class FoldArrays:
    """Model-ready arrays of one fold.

    ``x_*``: float32 ``[rows, features]``. ``y_*``: float32 standardised targets
    ``[rows]`` for regression (``(y - target_mean) / target_std``), int64 class codes
    ``[rows]`` for classification (where ``target_mean = 0.0`` and ``target_std = 1.0``).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    target_mean: float
    target_std: float
    feature_names: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def _numeric_values(frame: pd.DataFrame) -> np.ndarray:
    # Nullable pandas dtypes (pd.NA) become plain float64 with NaN for the imputer.
    return pd.DataFrame(frame).to_numpy(dtype=np.float64, na_value=np.nan)


def _categorical_values(frame: pd.DataFrame) -> np.ndarray:
    # Object array of str with np.nan for missing: one representation whatever the
    # pandas dtype (object, "str", "category"), so the imputer and encoder agree.
    values = pd.DataFrame(frame).to_numpy(dtype=object, copy=True)
    missing = pd.isna(values)
    values[~missing] = values[~missing].astype(str)
    values[missing] = np.nan
    return values


def _one_hot_name(feature: str, category: object) -> str:
    return f"{feature}={category}"


def build_preprocessor(dataset: Dataset) -> ColumnTransformer:
    """Unfitted transformer for ``pd.concat([dataset.numeric, dataset.categorical], axis=1)``.

    Numeric: median imputation + standard scaling. Categorical: most-frequent
    imputation + one-hot (unknown categories encode as all zeros). Columns that are
    entirely missing in the fitting rows are kept (as constants) so that the
    feature count does not depend on which rows a fold happens to hold.
    """
    numeric_columns = list(dataset.numeric.columns)
    categorical_columns = list(dataset.categorical.columns)
    if not numeric_columns and not categorical_columns:
        raise ValueError(f"dataset {dataset.name!r} has no feature columns")
    overlap = sorted(set(map(str, numeric_columns)) & set(map(str, categorical_columns)))
    if overlap:
        raise ValueError(
            f"dataset {dataset.name!r}: columns {overlap} are both numeric and categorical"
        )

    transformers = []
    if numeric_columns:
        numeric = Pipeline(
            [
                ("values", FunctionTransformer(_numeric_values, feature_names_out="one-to-one")),
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scale", StandardScaler()),
            ]
        )
        transformers.append(("numeric", numeric, numeric_columns))
    if categorical_columns:
        categorical = Pipeline(
            [
                (
                    "values",
                    FunctionTransformer(_categorical_values, feature_names_out="one-to-one"),
                ),
                ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
                (
                    "one_hot",
                    OneHotEncoder(
                        handle_unknown="ignore",
                        sparse_output=False,
                        feature_name_combiner=_one_hot_name,
                    ),
                ),
            ]
        )
        transformers.append(("categorical", categorical, categorical_columns))
    return ColumnTransformer(transformers, sparse_threshold=0.0, verbose_feature_names_out=False)


def _feature_frame(dataset: Dataset) -> pd.DataFrame:
    return pd.concat(
        [dataset.numeric.reset_index(drop=True), dataset.categorical.reset_index(drop=True)],
        axis=1,
    )


def _check_fold(dataset: Dataset, fold: Fold) -> None:
    for name in ("train_idx", "val_idx", "test_idx"):
        rows = getattr(fold, name)
        if rows.size and (rows.min() < 0 or rows.max() >= dataset.n_rows):
            raise ValueError(
                f"fold {fold.index} {name} reaches row {rows.max()}, but dataset "
                f"{dataset.name!r} has {dataset.n_rows} rows; were the splits made for it?"
            )
    if fold.train_idx.size == 0:
        raise ValueError(f"fold {fold.index} has no training rows")


def prepare_fold(dataset: Dataset, fold: Fold) -> FoldArrays:
    """Fit the preprocessor on ``fold.train_idx`` and transform train, val and test rows.

    Raises ``ValueError`` for a dataset ``check_dataset`` refuses (e.g. infinite features).
    """
    check_dataset(dataset)
    _check_fold(dataset, fold)
    features = _feature_frame(dataset)
    preprocessor = build_preprocessor(dataset)
    preprocessor.fit(features.iloc[fold.train_idx])

    def transform(rows: np.ndarray) -> np.ndarray:
        return preprocessor.transform(features.iloc[rows]).astype(np.float32)

    if dataset.task == "classification":
        codes = dataset.target_codes()
        targets = {name: codes[getattr(fold, f"{name}_idx")] for name in ("train", "val", "test")}
        target_mean, target_std = 0.0, 1.0
    else:
        values = dataset.target.to_numpy(dtype=np.float64, na_value=np.nan)
        train_targets = values[fold.train_idx]
        target_mean = float(train_targets.mean())
        # A constant training target would divide by zero; leave its scale alone.
        target_std = float(train_targets.std()) or 1.0
        targets = {
            name: ((values[getattr(fold, f"{name}_idx")] - target_mean) / target_std).astype(
                np.float32
            )
            for name in ("train", "val", "test")
        }

    return FoldArrays(
        x_train=transform(fold.train_idx),
        y_train=targets["train"],
        x_val=transform(fold.val_idx),
        y_val=targets["val"],
        x_test=transform(fold.test_idx),
        y_test=targets["test"],
        target_mean=target_mean,
        target_std=target_std,
        feature_names=tuple(str(name) for name in preprocessor.get_feature_names_out()),
    )


def unstandardise(y_std: np.ndarray, arrays: FoldArrays) -> np.ndarray:
    """Standardised regression values ``[...]`` back to the target's units (float64)."""
    return np.asarray(y_std, dtype=np.float64) * arrays.target_std + arrays.target_mean


def effective_batch_size(batch_size: int, train_rows: int) -> int:
    """``batch_size`` capped at ``train_rows // MIN_STEPS_PER_EPOCH`` (at least 1).

    A dataset smaller than one batch would otherwise take a single optimiser step per
    epoch and reach the epoch cap barely trained. With the cap every epoch takes at
    least ``min(MIN_STEPS_PER_EPOCH, train_rows)`` steps; data with at least
    ``MIN_STEPS_PER_EPOCH * batch_size`` training rows keep ``batch_size`` unchanged.
    For members of one batched model pass the smallest member's row count.

    >>> effective_batch_size(256, 40), effective_batch_size(128, 6000)
    (10, 128)
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if train_rows < 1:
        raise ValueError(f"train_rows must be >= 1, got {train_rows}")
    return min(batch_size, max(1, train_rows // MIN_STEPS_PER_EPOCH))
