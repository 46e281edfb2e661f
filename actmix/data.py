"""Load tabular datasets: bundled UCI copies, any UCI id (cached on disk), or a CSV file.

Every source ends in the same conversion (``actmix._frames.to_dataset``): rows without a
target are dropped, the task is inferred unless given, numeric columns become float64
features and everything else becomes string categories with NaN for missing values. A
text column whose cells are at least 95 % numbers (``NUMERIC_SHARE``) stays numeric: its
stray tokens become missing values, with a ``CoercedValuesWarning`` naming the column and
count. ``check_dataset`` then refuses infinite features and single-class targets.

>>> data = load_dataset("power_plant")
>>> data.task, data.n_rows, data.feature_names
('regression', 9568, ('AT', 'V', 'AP', 'RH'))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

from actmix._frames import (
    NUMERIC_SHARE,
    CoercedValuesWarning,
    check_dataset,
    first_line,
    read_table,
    require_column,
    to_dataset,
)
from actmix._uci import load_uci, parse_uci_id
from actmix.types import TASKS, Dataset, Task

__all__ = [
    "BUNDLED_DATASETS",
    "NUMERIC_SHARE",
    "CoercedValuesWarning",
    "check_dataset",
    "describe_datasets",
    "load_dataset",
]

BUNDLED_DATASETS: tuple[str, ...] = ("power_plant", "adult", "magic_gamma")

_VALID_SPECS = f"{', '.join(BUNDLED_DATASETS)}, uci:<id>, csv:<path>"
# What a user without network access can load instead of a uci: spec.
_OFFLINE_CHOICES = (
    f"a bundled dataset ({', '.join(BUNDLED_DATASETS)}) or csv:<path> with target=<column>"
)


@dataclass(frozen=True, slots=True)
class _Bundled:
    """A dataset shipped in ``actmix/datasets`` (facts from PROVENANCE.md)."""

    name: str
    title: str
    uci_id: int
    doi: str
    rows: int
    target: str
    task: Task
    # Read dtypes for every column, target included; explicit so a damaged file fails loudly.
    dtypes: Mapping[str, Any]
    # Adult's test part writes ">50K." for ">50K"; the suffix is stripped from every label.
    label_suffix: str = ""

    @property
    def file(self) -> str:
        return f"{self.name}.csv.gz"

    @property
    def source(self) -> str:
        return f"bundled:{self.name} (UCI {self.uci_id}, doi:{self.doi})"


_MAGIC_FEATURES = (
    "fLength",
    "fWidth",
    "fSize",
    "fConc",
    "fConc1",
    "fAsym",
    "fM3Long",
    "fM3Trans",
    "fAlpha",
    "fDist",
)

_BUNDLED: dict[str, _Bundled] = {
    spec.name: spec
    for spec in (
        _Bundled(
            name="power_plant",
            title="Combined Cycle Power Plant",
            uci_id=294,
            doi="10.24432/C5002N",
            rows=9568,
            target="PE",
            task="regression",
            dtypes=dict.fromkeys(("AT", "V", "AP", "RH", "PE"), "float64"),
        ),
        _Bundled(
            name="adult",
            title="Adult (Census Income)",
            uci_id=2,
            doi="10.24432/C5XW20",
            rows=48842,
            target="income",
            task="classification",
            dtypes={
                "age": "int64",
                "workclass": str,
                "fnlwgt": "int64",
                "education": str,
                "education-num": "int64",
                "marital-status": str,
                "occupation": str,
                "relationship": str,
                "race": str,
                "sex": str,
                "capital-gain": "int64",
                "capital-loss": "int64",
                "hours-per-week": "int64",
                "native-country": str,
                "income": str,
            },
            label_suffix=".",
        ),
        _Bundled(
            name="magic_gamma",
            title="MAGIC Gamma Telescope",
            uci_id=159,
            doi="10.24432/C52C8B",
            rows=19020,
            target="class",
            task="classification",
            dtypes={**dict.fromkeys(_MAGIC_FEATURES, "float64"), "class": str},
        ),
    )
}


def load_dataset(
    spec: str,
    *,
    target: str | None = None,
    task: Task | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Load a dataset by spec: a bundled name, ``uci:<id>`` or ``csv:<path>``.

    target: the target column; required for ``csv:``, optional for ``uci:`` (default: its
        first declared target), and for bundled data only its own target is accepted.
    task: inferred from the target when ``None``.
    cache_dir: where ``uci:`` downloads are kept; default ``$ACTMIX_CACHE`` or
        ``~/.cache/actmix``.

    >>> load_dataset("csv:houses.csv", target="price")  # doctest: +SKIP
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    if not isinstance(spec, str):
        raise ValueError(f"dataset spec must be a string, got {spec!r}; valid: {_VALID_SPECS}")
    if spec in _BUNDLED:
        return _load_bundled(_BUNDLED[spec], target=target, task=task)
    kind, separator, rest = spec.partition(":")
    if separator and kind == "uci":
        return load_uci(
            parse_uci_id(rest),
            target=target,
            task=task,
            cache_dir=cache_dir,
            fallback=_OFFLINE_CHOICES,
        )
    if separator and kind == "csv":
        return _load_csv(Path(rest).expanduser(), target=target, task=task)
    raise ValueError(f"unknown dataset {spec!r}; valid: {_VALID_SPECS}")


def describe_datasets() -> list[dict[str, Any]]:
    """One summary per bundled dataset (for ``actmix-study datasets``), without loading data."""
    return [
        {
            "name": spec.name,
            "title": spec.title,
            "task": spec.task,
            "rows": spec.rows,
            "features": len(spec.dtypes) - 1,
            "target": spec.target,
            "uci_id": spec.uci_id,
            "doi": spec.doi,
            "license": "CC BY 4.0",
            "source": spec.source,
        }
        for spec in _BUNDLED.values()
    ]


# --- sources ---------------------------------------------------------------------------


def _load_bundled(spec: _Bundled, *, target: str | None, task: Task | None) -> Dataset:
    if target is not None and target != spec.target:
        raise ValueError(
            f"bundled dataset {spec.name!r} has the fixed target {spec.target!r}, "
            f"got target={target!r}"
        )
    if task is not None and task != spec.task:
        raise ValueError(f"bundled dataset {spec.name!r} is a {spec.task} task, got task={task!r}")
    with files("actmix.datasets").joinpath(spec.file).open("rb") as handle:
        frame = read_table(handle, dtype=spec.dtypes, compression="gzip")
    labels = frame[spec.target]
    if spec.label_suffix:
        labels = labels.str.removesuffix(spec.label_suffix)
    return to_dataset(
        frame.drop(columns=spec.target),
        labels,
        name=spec.name,
        task=spec.task,
        source=spec.source,
        declared_text=[column for column, dtype in spec.dtypes.items() if dtype is str],
    )


def _load_csv(path: Path, *, target: str | None, task: Task | None) -> Dataset:
    if not path.is_file():
        raise FileNotFoundError(f"no CSV file at {str(path)!r}")
    try:
        frame = read_table(path)
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"CSV file {str(path)!r} is empty") from error
    except (ValueError, OSError) as error:  # parser errors, bad encoding, bad gzip, permissions
        raise ValueError(f"could not read CSV file {str(path)!r}: {first_line(error)}") from error
    if frame.empty:
        raise ValueError(f"CSV file {str(path)!r} has no data rows")
    target = require_column(target, frame.columns, where=f"CSV file {str(path)!r}")
    name = path.name.removesuffix(".gz").removesuffix(".csv")
    return to_dataset(
        frame.drop(columns=target), frame[target], name=name, task=task, source=f"csv:{path}"
    )
