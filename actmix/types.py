"""Small shared types: task kinds and the loaded dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["TASKS", "Dataset", "Task"]

Task = Literal["regression", "classification"]
TASKS: tuple[Task, ...] = ("regression", "classification")


@dataclass(frozen=True, slots=True)
class Dataset:
    """A tabular dataset, split by column kind, ready for per-fold preprocessing.

    ``numeric`` holds float columns (NaN = missing), ``categorical`` holds string
    columns (NaN = missing); both share the row index ``0..n_rows-1``. For
    classification, ``target`` holds the class labels as strings and ``classes``
    lists them sorted; for regression ``target`` is float and ``classes`` is empty.
    """

    name: str
    numeric: pd.DataFrame
    categorical: pd.DataFrame
    target: pd.Series
    task: Task
    classes: tuple[str, ...]
    source: str

    @property
    def n_rows(self) -> int:
        return len(self.target)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return (*self.numeric.columns, *self.categorical.columns)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def target_codes(self) -> np.ndarray:
        """Class indices (int64, position in ``classes``); classification only."""
        if self.task != "classification":
            raise ValueError(f"dataset {self.name!r} is a regression task; it has no class codes")
        lookup = {label: code for code, label in enumerate(self.classes)}
        return self.target.map(lookup).to_numpy(dtype=np.int64)
