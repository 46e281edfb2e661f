"""From pandas frames to a checked ``Dataset``: column kinds, target type and dataset checks.

Every source (bundled, ``uci:``, ``csv:``) ends in ``to_dataset``: rows without a
target are dropped, the task is inferred unless given, numeric columns become float64
features and everything else becomes string categories with NaN for missing values.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from actmix.types import Dataset, Task

__all__ = [
    "NUMERIC_SHARE",
    "CoercedValuesWarning",
    "check_dataset",
    "first_line",
    "read_table",
    "require_column",
    "to_dataset",
]

# UCI files mark missing cells with "?"; pandas' defaults ("", "NA", "NaN", ...) still apply.
_MISSING_MARKERS = ["?"]
# Integer-valued numeric targets with at most this many distinct values are class labels.
_MAX_INFERRED_CLASSES = 20
# A text column whose non-missing cells parse as numbers at least this often is numeric
# data with a few stray tokens ("unknown", "n/a"); those tokens become missing values.
# Below it the column is categorical. One bad cell must not one-hot a whole float column.
NUMERIC_SHARE = 0.95


class CoercedValuesWarning(UserWarning):
    """Non-numeric cells of a mostly numeric column were read as missing values."""


def read_table(
    source: Any, *, dtype: Mapping[str, Any] | None = None, **options: Any
) -> pd.DataFrame:
    """``pd.read_csv`` with the UCI missing marker and whole-column dtype inference."""
    # low_memory=False: infer each column's dtype from all rows, not chunk by chunk.
    return pd.read_csv(source, dtype=dtype, na_values=_MISSING_MARKERS, low_memory=False, **options)


def to_dataset(
    features: pd.DataFrame,
    target: pd.Series,
    *,
    name: str,
    task: Task | None,
    source: str,
    declared_text: Collection[str] = (),
) -> Dataset:
    """The one conversion every source uses: drop unlabeled rows, type target and features.

    declared_text: columns the source declares as text (e.g. codes like "0150"); they stay
        categorical even when their values look like numbers. Every other text column is
        numeric when at least ``NUMERIC_SHARE`` of its non-missing cells are numbers.
    """
    if features.shape[1] == 0:
        raise ValueError(f"dataset {name!r} has no feature columns besides target {target.name!r}")
    labeled = target.notna().to_numpy()
    if not labeled.any():
        raise ValueError(f"dataset {name!r} has no rows with a value in target {target.name!r}")
    features = features.iloc[labeled].reset_index(drop=True)
    target = target.iloc[labeled].reset_index(drop=True)
    task = task or _infer_task(target)
    classes: tuple[str, ...]
    if task == "regression":
        target, classes = _regression_target(target), ()
    else:
        target, classes = _classification_target(target)
    numeric, categorical = _split_features(features, name=name, declared_text=declared_text)
    dataset = Dataset(
        name=name,
        numeric=numeric,
        categorical=categorical,
        target=target,
        task=task,
        classes=classes,
        source=source,
    )
    check_dataset(dataset)
    return dataset


def check_dataset(dataset: Dataset) -> None:
    """Raise ``ValueError`` if ``dataset`` cannot be trained on, naming what is wrong.

    Refused: infinite numeric features (the message names the columns), a
    classification target with fewer than two classes, a regression target with
    missing or infinite values. Cheap; call it before starting any workers.
    """
    infinite = np.isinf(dataset.numeric.to_numpy(dtype=np.float64, na_value=np.nan))
    columns = infinite.any(axis=0)
    if columns.any():
        counts = ", ".join(
            f"{name!r} ({int(count)} rows)"
            for name, count in zip(
                dataset.numeric.columns[columns], infinite.sum(axis=0)[columns], strict=True
            )
        )
        raise ValueError(
            f"dataset {dataset.name!r} has infinite values in feature column(s) {counts}; "
            "replace them with finite numbers or leave the cells empty (missing)"
        )
    if dataset.task == "classification":
        if dataset.n_classes < 2:
            raise ValueError(
                f"dataset {dataset.name!r}: task 'classification' needs at least two classes, "
                f"but target {dataset.target.name!r} has only {list(dataset.classes)}"
            )
    else:
        values = dataset.target.to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"dataset {dataset.name!r}: regression target {dataset.target.name!r} has "
                f"{int((~np.isfinite(values)).sum())} missing or infinite values"
            )


def _infer_task(target: pd.Series) -> Task:
    """Text labels and few integer values are classes; anything else is a quantity."""
    if pd.api.types.is_bool_dtype(target) or not pd.api.types.is_numeric_dtype(target):
        return "classification"
    values = target.to_numpy(dtype=np.float64)
    if not np.all(np.mod(values, 1.0) == 0.0):
        return "regression"
    distinct = len(np.unique(values))
    if distinct <= _MAX_INFERRED_CLASSES and distinct < len(values) / 2:
        return "classification"
    return "regression"


def _regression_target(target: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(target):
        return target.astype(np.float64)
    values = pd.to_numeric(target, errors="coerce")
    offending = target[values.isna()].unique()
    if len(offending):
        shown = ", ".join(repr(value) for value in offending[:5])
        raise ValueError(
            f"task='regression' needs a numeric target, but column {target.name!r} "
            f"holds non-numeric values such as {shown}"
        )
    return values.astype(np.float64)


def _classification_target(target: pd.Series) -> tuple[pd.Series, tuple[str, ...]]:
    labels = target.map(_label_text).astype(object)
    return labels, _sorted_classes(labels.unique())


def _label_text(value: Any) -> str:
    # 1.0 (an int column widened by missing values) and 1 must be the same class, "1".
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _sorted_classes(labels: Iterable[str]) -> tuple[str, ...]:
    """Numeric order when every label is a number ("2" before "10"), else text order."""
    labels = list(labels)
    try:
        return tuple(sorted(labels, key=lambda label: (float(label), label)))
    except ValueError:
        return tuple(sorted(labels))


def _split_features(
    features: pd.DataFrame, *, name: str, declared_text: Collection[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric (int/float/bool, or mostly numbers) columns as float64; the rest as str."""
    numeric_columns: dict[Any, pd.Series] = {}
    categorical_columns: dict[Any, pd.Series] = {}
    for column in features.columns:
        values = features[column]
        if pd.api.types.is_numeric_dtype(values):
            numeric_columns[column] = values.astype(np.float64)
            continue
        parsed = None if column in declared_text else _mostly_numeric(values, dataset=name)
        if parsed is None:
            categorical_columns[column] = _category_column(values)
        else:
            numeric_columns[column] = parsed
    # Keep the file's column order within each kind.
    numeric = pd.DataFrame(numeric_columns, index=features.index, columns=list(numeric_columns))
    categorical = pd.DataFrame(
        categorical_columns, index=features.index, columns=list(categorical_columns)
    )
    return numeric.astype(np.float64), categorical


def _mostly_numeric(values: pd.Series, *, dataset: str) -> pd.Series | None:
    """``values`` as float64 with stray tokens missing, or None if it is not mostly numbers."""
    present = values.notna() & (values.astype(object) != "?")
    if not present.any():
        return None
    parsed = pd.to_numeric(values.where(present), errors="coerce").astype(np.float64)
    failed = present & parsed.isna()
    share = 1.0 - failed.sum() / present.sum()
    if share < NUMERIC_SHARE:
        return None
    if failed.any():
        examples = ", ".join(repr(token) for token in values[failed].unique()[:3])
        warnings.warn(
            f"dataset {dataset!r}: column {values.name!r} is numeric ({share:.1%} of its "
            f"values are numbers); {int(failed.sum())} non-numeric cell(s) such as "
            f"{examples} are treated as missing",
            CoercedValuesWarning,
            stacklevel=6,  # the caller of load_dataset for csv: specs
        )
    return parsed


def _category_column(column: pd.Series) -> pd.Series:
    text = column.map(str, na_action="ignore").astype(object)
    # "?" marks a missing cell in UCI data even where the reader did not catch it.
    return text.where(text.notna() & (text != "?"), np.nan)


def require_column(target: str | None, columns: Iterable[Any], *, where: str) -> str:
    """``target`` if it names one of ``columns``; else a ValueError listing them."""
    available = [str(column) for column in columns]
    if target is None:
        raise ValueError(f"pass target=<column> for {where}; columns: {_names(available)}")
    if target not in available:
        raise ValueError(f"target column {target!r} not in {where}; columns: {_names(available)}")
    return target


def _names(names: list[str], limit: int = 30) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names) - limit} more)"


def first_line(error: BaseException) -> str:
    """The first line of an error's message, at most 200 characters."""
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else "no details"
