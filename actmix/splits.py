"""Leak-free fold layout: hold-out, outer k-fold test sets and inner validation sets.

Every index refers to a row of the :class:`~actmix.types.Dataset`. Within a fold the
rows are split into ``train_idx`` (fitting, including preprocessing), ``val_idx``
(early stopping, checkpoint choice, the study objective) and ``test_idx`` (the outer
test fold, reported by the final CV only). Hold-out rows are in no fold at all.

>>> splits = make_folds(dataset, k=5, seed=0, holdout=0.1)  # doctest: +SKIP
>>> splits.save("splits.npz")  # doctest: +SKIP
>>> Splits.load("splits.npz").fingerprint() == splits.fingerprint()  # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from actmix.types import TASKS, Dataset, Task

__all__ = ["Fold", "Splits", "data_hash", "make_folds"]

_FORMAT_VERSION = 2  # 2 added data_hash; version 1 files load with an empty one
_READABLE_VERSIONS = (1, 2)
_PARTS = ("train", "val", "test")


def _index_array(name: str, values: Any) -> np.ndarray:
    """Sorted, unique, read-only int64 copy of ``values``; ValueError otherwise."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-d index array, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer row indices, got dtype {array.dtype}")
    array = np.array(array, dtype=np.int64)  # a copy: callers cannot mutate our folds
    if array.size > 1 and not np.all(array[1:] > array[:-1]):
        raise ValueError(f"{name} must be sorted and free of duplicates")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, slots=True, eq=False)
class Fold:
    """One outer fold: ``train_idx`` / ``val_idx`` / ``test_idx`` are disjoint row indices.

    Arrays are int64, sorted and read-only. Compare folds through
    :meth:`Splits.fingerprint`, not ``==``.
    """

    index: int
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray

    def __post_init__(self) -> None:
        for part in _PARTS:
            name = f"{part}_idx"
            object.__setattr__(
                self, name, _index_array(f"fold {self.index} {name}", getattr(self, name))
            )


@dataclass(frozen=True, slots=True, eq=False)
class Splits:
    """The folds of one dataset for one split seed, plus the never-seen hold-out rows.

    Construction checks the layout (every row used exactly once per fold, test folds
    partition the non-hold-out rows), so a loaded file is either consistent or rejected.
    """

    folds: tuple[Fold, ...]
    holdout_idx: np.ndarray
    k: int
    seed: int
    inner_val: float
    holdout: float
    n_rows: int
    task: Task
    data_hash: str = ""  # :func:`data_hash` of the rows the folds index; "" = unknown

    def __post_init__(self) -> None:
        object.__setattr__(self, "folds", tuple(self.folds))
        object.__setattr__(self, "holdout_idx", _index_array("holdout_idx", self.holdout_idx))
        _check_options(self.k, self.inner_val, self.holdout)
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.n_rows < 1:
            raise ValueError(f"n_rows must be >= 1, got {self.n_rows}")
        if len(self.folds) != self.k:
            raise ValueError(f"expected {self.k} folds, got {len(self.folds)}")
        _check_layout(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write one ``.npz`` file (plain int64 arrays + JSON metadata) at exactly ``path``."""
        # Any: mypy would match **arrays against savez's keyword allow_pickle: bool
        arrays: dict[str, Any] = {"holdout": self.holdout_idx}
        for fold in self.folds:
            for part in _PARTS:
                arrays[f"fold{fold.index}_{part}"] = getattr(fold, f"{part}_idx")
        meta = {
            "format_version": _FORMAT_VERSION,
            "k": int(self.k),
            "seed": int(self.seed),
            "inner_val": float(self.inner_val),
            "holdout": float(self.holdout),
            "n_rows": int(self.n_rows),
            "task": self.task,
            "data_hash": self.data_hash,
            "fingerprint": self.fingerprint(),
        }
        # A file handle stops numpy from appending ".npz" to a path that lacks it.
        with open(path, "wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Splits:
        """Read a file written by :meth:`save`; ValueError if it is corrupt or inconsistent."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"splits file not found: {os.fspath(path)}")
        try:
            with np.load(path, allow_pickle=False) as archive:
                contents = {name: archive[name] for name in archive.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(f"{os.fspath(path)} is not a readable splits file: {error}") from None
        try:
            return cls._from_contents(contents)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{os.fspath(path)} is not a valid splits file: {error}") from None

    @classmethod
    def _from_contents(cls, contents: dict[str, np.ndarray]) -> Splits:
        if "meta" not in contents:
            raise ValueError("missing 'meta' entry")
        meta = json.loads(str(contents.pop("meta")))
        if meta.get("format_version") not in _READABLE_VERSIONS:
            readable = " or ".join(map(str, _READABLE_VERSIONS))
            raise ValueError(f"format_version {meta.get('format_version')!r} is not {readable}")
        k = int(meta["k"])
        expected = {"holdout"} | {f"fold{i}_{part}" for i in range(k) for part in _PARTS}
        if set(contents) != expected:
            unexpected = sorted(set(contents) - expected)
            missing = sorted(expected - set(contents))
            raise ValueError(
                f"arrays do not match k={k}: missing {missing}, unexpected {unexpected}"
            )
        for name, array in contents.items():
            if array.dtype != np.int64:
                raise ValueError(f"array {name!r} has dtype {array.dtype}, expected int64")
        folds = tuple(Fold(i, *(contents[f"fold{i}_{part}"] for part in _PARTS)) for i in range(k))
        splits = cls(
            folds=folds,
            holdout_idx=contents["holdout"],
            k=k,
            seed=int(meta["seed"]),
            inner_val=float(meta["inner_val"]),
            holdout=float(meta["holdout"]),
            n_rows=int(meta["n_rows"]),
            task=meta["task"],
            data_hash=str(meta.get("data_hash", "")),
        )
        if splits.fingerprint() != meta["fingerprint"]:
            stored = meta["fingerprint"]
            raise ValueError(
                f"fingerprint {splits.fingerprint()} does not match the stored {stored}"
            )
        return splits

    def fingerprint(self) -> str:
        """Short sha256 hex over the data hash, ``n_rows`` and every index array, in order.

        Two runs with the same fingerprint trained and tested on the same rows of the
        same data: a different file with the same name and row count gets another one.
        """
        digest = hashlib.sha256()
        if self.data_hash:  # splits without one (format 1 files) keep their old fingerprint
            digest.update(f"data:{self.data_hash};".encode())
        arrays = [self.holdout_idx]
        arrays += [getattr(fold, f"{part}_idx") for fold in self.folds for part in _PARTS]
        digest.update(np.array([self.n_rows, len(arrays)], dtype="<i8").tobytes())
        for array in arrays:
            # The length prefix keeps [1, 2] + [3] distinct from [1] + [2, 3].
            digest.update(np.array([array.size], dtype="<i8").tobytes())
            digest.update(array.astype("<i8", copy=False).tobytes())
        return digest.hexdigest()[:16]

    def check_dataset(self, dataset: Dataset) -> None:
        """ValueError unless these splits were made for ``dataset``'s rows (count and content)."""
        if self.n_rows != dataset.n_rows:
            raise ValueError(
                f"splits were made for {self.n_rows} rows; "
                f"dataset {dataset.name!r} has {dataset.n_rows}"
            )
        if self.data_hash and self.data_hash != data_hash(dataset):
            raise ValueError(
                f"splits were made for other data (data hash {self.data_hash[:12]}) than "
                f"dataset {dataset.name!r} ({data_hash(dataset)[:12]})"
            )


def _hash_column(digest: Any, name: object, values: pd.Series, *, numeric: bool) -> None:
    """Feed one column's name and values to ``digest`` in a canonical byte form."""
    digest.update(json.dumps(["column", str(name), values.size, numeric]).encode())
    if numeric:
        array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        # one NaN bit pattern and +0.0 for -0.0, so equal values always hash equal
        array = np.where(np.isnan(array), np.nan, array + 0.0)
        digest.update(array.astype("<f8", copy=False).tobytes())
    else:
        text = values.astype(object).where(values.notna(), None).tolist()
        digest.update(json.dumps([None if v is None else str(v) for v in text]).encode())


def data_hash(dataset: Dataset) -> str:
    """sha256 hex of a dataset's task, features and target (not its name or source).

    Column names, column kinds, row order and every value count; missing values hash
    alike however they were read. Equal data loaded twice hashes equal.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(["actmix-data", 1, dataset.task, dataset.n_rows]).encode())
    for column in dataset.numeric.columns:
        _hash_column(digest, column, dataset.numeric[column], numeric=True)
    for column in dataset.categorical.columns:
        _hash_column(digest, column, dataset.categorical[column], numeric=False)
    _hash_column(digest, "target", dataset.target, numeric=dataset.task == "regression")
    return digest.hexdigest()


def _check_options(k: int, inner_val: float, holdout: float) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"folds must be an integer >= 2, got {k!r}")
    if k < 2:
        raise ValueError(f"folds must be >= 2, got {k}")
    if not 0 < inner_val < 1:
        raise ValueError(f"inner_val must be in (0, 1), got {inner_val}")
    if not 0 <= holdout < 1:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")


def _check_layout(splits: Splits) -> None:
    """Every row is used once per fold; test folds partition the non-hold-out rows."""
    n_rows = splits.n_rows

    def counts(*arrays: np.ndarray) -> np.ndarray:
        rows = np.concatenate(arrays)
        if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
            raise ValueError(
                f"row indices must lie in [0, {n_rows}), got {rows.min()}..{rows.max()}"
            )
        return np.bincount(rows, minlength=n_rows)

    holdout_rows = counts(splits.holdout_idx) > 0
    for position, fold in enumerate(splits.folds):
        if fold.index != position:
            raise ValueError(f"fold at position {position} has index {fold.index}")
        if fold.train_idx.size == 0 or fold.val_idx.size == 0 or fold.test_idx.size == 0:
            raise ValueError(f"fold {fold.index} has an empty train, val or test part")
        if not np.all(counts(fold.train_idx, fold.val_idx, fold.test_idx, splits.holdout_idx) == 1):
            raise ValueError(
                f"fold {fold.index}: train, val, test and hold-out rows must be disjoint "
                f"and cover all {n_rows} rows"
            )
    test_counts = counts(*(fold.test_idx for fold in splits.folds))
    if not np.array_equal(test_counts, (~holdout_rows).astype(test_counts.dtype)):
        raise ValueError("test folds must partition the rows outside the hold-out set")


def _split_off(
    rows: np.ndarray, size: float, labels: np.ndarray | None, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, carved) sorted row indices; ``labels`` (per dataset row) stratify the cut."""
    stratify = None if labels is None else labels[rows]
    try:
        kept, carved = train_test_split(
            rows, test_size=size, stratify=stratify, random_state=seed, shuffle=True
        )
    except ValueError as error:
        raise ValueError(
            f"cannot carve the {what} ({size:g} of {rows.size} rows): {error}"
        ) from None
    return np.sort(kept), np.sort(carved)


def make_folds(
    dataset: Dataset, k: int, seed: int, *, inner_val: float = 0.15, holdout: float = 0.0
) -> Splits:
    """Hold-out, then k outer folds, then an inner validation set in each fold's training part.

    Classification is stratified on the class codes at every step; regression uses
    plain shuffled splits. The same ``(dataset rows, k, seed, inner_val, holdout)``
    always gives the same splits.
    """
    _check_options(k, inner_val, holdout)
    n_rows = dataset.n_rows
    labels = dataset.target_codes() if dataset.task == "classification" else None

    all_rows = np.arange(n_rows, dtype=np.int64)
    if holdout > 0:
        pool, holdout_idx = _split_off(all_rows, holdout, labels, seed, "hold-out set")
    else:
        pool, holdout_idx = all_rows, np.empty(0, dtype=np.int64)

    if k > pool.size:
        raise ValueError(f"folds must be <= the {pool.size} rows outside the hold-out set, got {k}")
    if labels is None:
        outer = KFold(n_splits=k, shuffle=True, random_state=seed).split(pool)
    else:
        present, class_counts = np.unique(labels[pool], return_counts=True)
        smallest = int(class_counts.argmin())
        if class_counts[smallest] < k:
            label = dataset.classes[present[smallest]]
            raise ValueError(
                f"folds must be <= the smallest class count outside the hold-out set "
                f"(class {label!r} has {class_counts[smallest]} rows), got {k}"
            )
        outer = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(
            pool, labels[pool]
        )

    folds = []
    for index, (train_positions, test_positions) in enumerate(outer):
        train_idx, val_idx = _split_off(
            pool[train_positions],
            inner_val,
            labels,
            seed + index,
            f"inner validation of fold {index}",
        )
        folds.append(Fold(index, train_idx, val_idx, np.sort(pool[test_positions])))

    return Splits(
        folds=tuple(folds),
        holdout_idx=holdout_idx,
        k=k,
        seed=seed,
        inner_val=inner_val,
        holdout=holdout,
        n_rows=n_rows,
        task=dataset.task,
        data_hash=data_hash(dataset),
    )
