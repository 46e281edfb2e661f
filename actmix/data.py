"""Load tabular datasets: bundled UCI copies, any UCI id (cached on disk), or a CSV file.

Every source ends in the same conversion (``_to_dataset``): rows without a target are
dropped, the task is inferred unless given, numeric columns become float64 features and
everything else becomes string categories with NaN for missing values.

>>> data = load_dataset("power_plant")
>>> data.task, data.n_rows, data.feature_names
('regression', 9568, ('AT', 'V', 'AP', 'RH'))
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from actmix.types import TASKS, Dataset, Task

__all__ = ["BUNDLED_DATASETS", "describe_datasets", "load_dataset"]

BUNDLED_DATASETS: tuple[str, ...] = ("power_plant", "adult", "magic_gamma")

# UCI files mark missing cells with "?"; pandas' defaults ("", "NA", "NaN", ...) still apply.
_MISSING_MARKERS = ["?"]
# Integer-valued numeric targets with at most this many distinct values are class labels.
_MAX_INFERRED_CLASSES = 20
_VALID_SPECS = f"{', '.join(BUNDLED_DATASETS)}, uci:<id>, csv:<path>"
_CACHE_ENV = "ACTMIX_CACHE"
# ucimlrepo's variable types that fix the task of a target column.
_UCI_TYPE_TASKS: dict[str, Task] = {
    "Categorical": "classification",
    "Binary": "classification",
    "Continuous": "regression",
}


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
        return _load_uci(_parse_uci_id(rest), target=target, task=task, cache_dir=cache_dir)
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
        frame = _read_table(handle, dtype=spec.dtypes, compression="gzip")
    labels = frame[spec.target]
    if spec.label_suffix:
        labels = labels.str.removesuffix(spec.label_suffix)
    return _to_dataset(
        frame.drop(columns=spec.target), labels, name=spec.name, task=spec.task, source=spec.source
    )


def _load_csv(path: Path, *, target: str | None, task: Task | None) -> Dataset:
    if not path.is_file():
        raise FileNotFoundError(f"no CSV file at {str(path)!r}")
    try:
        frame = _read_table(path)
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"CSV file {str(path)!r} is empty") from error
    except (ValueError, OSError) as error:  # parser errors, bad encoding, bad gzip, permissions
        raise ValueError(f"could not read CSV file {str(path)!r}: {_first_line(error)}") from error
    if frame.empty:
        raise ValueError(f"CSV file {str(path)!r} has no data rows")
    target = _require_column(target, frame.columns, where=f"CSV file {str(path)!r}")
    name = path.name.removesuffix(".gz").removesuffix(".csv")
    return _to_dataset(
        frame.drop(columns=target), frame[target], name=name, task=task, source=f"csv:{path}"
    )


def _load_uci(
    uci_id: int,
    *,
    target: str | None,
    task: Task | None,
    cache_dir: str | os.PathLike[str] | None,
) -> Dataset:
    directory = _cache_directory(cache_dir)
    cached = _read_uci_cache(directory, uci_id)
    if cached is None:
        _write_uci_cache(directory, uci_id, _fetch_uci(uci_id))
        cached = _read_uci_cache(directory, uci_id)
        if cached is None:  # written just above; only a concurrent delete gets here
            raise OSError(f"UCI cache for id {uci_id} vanished from {str(directory)!r}")
    frame, meta = cached
    declared: list[str] = meta["targets"]
    features = [column for column in frame.columns if column not in declared]
    if declared:
        target = _require_column(
            target or declared[0], declared, where=f"the target columns of UCI dataset {uci_id}"
        )
    else:  # some UCI datasets declare no target; the user names one of the features
        target = _require_column(target, features, where=f"UCI dataset {uci_id}")
    if task is None:
        task = _UCI_TYPE_TASKS.get(meta["variables"].get(target, {}).get("type", ""))
    title = f"{meta['title']}, " if meta.get("title") else ""
    doi = f"doi:{meta['doi']}" if meta.get("doi") else "no DOI"
    return _to_dataset(
        frame[[column for column in features if column != target]],
        frame[target],
        name=f"uci-{uci_id}",
        task=task,
        source=f"uci:{uci_id} ({title}{doi})",
    )


def _parse_uci_id(text: str) -> int:
    try:
        uci_id = int(text.strip())
    except ValueError:
        uci_id = 0
    if uci_id <= 0:
        raise ValueError(f"UCI dataset id must be a positive integer, got {text!r} (e.g. uci:294)")
    return uci_id


def _fetch_uci(uci_id: int) -> Any:
    """``ucimlrepo.fetch_ucirepo(id=uci_id)``; every failure becomes a one-line ConnectionError."""
    from ucimlrepo import fetch_ucirepo  # lazy: only ``uci:`` specs need the network client

    try:
        return fetch_ucirepo(id=uci_id)
    except Exception as error:  # ucimlrepo raises URLError, ConnectionError and its own types
        raise ConnectionError(
            f"could not reach the UCI repository to fetch dataset id {uci_id} "
            f"({type(error).__name__}: {_first_line(error)}); use a bundled dataset "
            f"({', '.join(BUNDLED_DATASETS)}) or csv:<path> with target=<column>"
        ) from error


# --- UCI cache ---------------------------------------------------------------------------


def _cache_directory(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from_env = os.environ.get(_CACHE_ENV)
    return Path(from_env).expanduser() if from_env else Path.home() / ".cache" / "actmix"


def _cache_paths(directory: Path, uci_id: int) -> tuple[Path, Path]:
    return directory / f"uci-{uci_id}.csv.gz", directory / f"uci-{uci_id}.json"


def _write_uci_cache(directory: Path, uci_id: int, fetched: Any) -> None:
    """Store the fetched features+targets as one CSV and the column roles as JSON."""
    features = _frame_or_empty(fetched.data.features)
    targets = _frame_or_empty(fetched.data.targets)
    overlap = set(features.columns) & set(targets.columns)
    if overlap:
        raise ValueError(f"UCI dataset {uci_id} names {sorted(overlap)} as feature and target")
    frame = pd.concat([features.reset_index(drop=True), targets.reset_index(drop=True)], axis=1)
    metadata = getattr(fetched, "metadata", None) or {}
    meta = {
        "uci_id": uci_id,
        "title": metadata.get("name"),
        "doi": metadata.get("doi"),
        "targets": [str(column) for column in targets.columns],
        # Re-read string columns as strings, so codes like "01" keep their text.
        "strings": [
            str(column)
            for column in frame.columns
            if not pd.api.types.is_numeric_dtype(frame[column])
        ],
        "variables": _variable_roles(getattr(fetched, "variables", None)),
    }
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = _cache_paths(directory, uci_id)
    # The JSON goes last: a cache entry counts only when both files exist.
    _write_atomically(
        csv_path,
        lambda temp: frame.to_csv(temp, index=False, compression={"method": "gzip", "mtime": 0}),
    )
    _write_atomically(json_path, lambda temp: temp.write_text(json.dumps(meta, indent=1)))


def _read_uci_cache(directory: Path, uci_id: int) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    csv_path, json_path = _cache_paths(directory, uci_id)
    if not (csv_path.is_file() and json_path.is_file()):
        return None
    try:
        meta = json.loads(json_path.read_text())
        frame = _read_table(csv_path, dtype=dict.fromkeys(meta["strings"], str))
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(
            f"damaged UCI cache for id {uci_id} in {str(directory)!r} ({_first_line(error)}); "
            f"delete {csv_path.name} and {json_path.name} to download it again"
        ) from error
    return frame, meta


def _variable_roles(variables: pd.DataFrame | None) -> dict[str, dict[str, str]]:
    """``{column: {"role": ..., "type": ...}}`` from ucimlrepo's variables table."""
    if variables is None or "name" not in variables:
        return {}
    return {
        str(row["name"]): {key: str(row[key]) for key in ("role", "type") if key in row}
        for row in variables.to_dict("records")
    }


def _frame_or_empty(frame: pd.DataFrame | None) -> pd.DataFrame:
    # ucimlrepo returns None, not an empty frame, for a role without columns.
    return pd.DataFrame() if frame is None else frame


def _write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Write through a temporary file and rename, so no reader ever sees half a file."""
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temp = Path(temp_name)
    try:
        write(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


# --- frame -> Dataset ---------------------------------------------------------------------


def _read_table(
    source: Any, *, dtype: Mapping[str, Any] | None = None, **options: Any
) -> pd.DataFrame:
    # low_memory=False: infer each column's dtype from all rows, not chunk by chunk.
    return pd.read_csv(source, dtype=dtype, na_values=_MISSING_MARKERS, low_memory=False, **options)


def _to_dataset(
    features: pd.DataFrame, target: pd.Series, *, name: str, task: Task | None, source: str
) -> Dataset:
    """The one conversion every source uses: drop unlabeled rows, type target and features."""
    if features.shape[1] == 0:
        raise ValueError(f"dataset {name!r} has no feature columns besides target {target.name!r}")
    labeled = target.notna().to_numpy()
    if not labeled.any():
        raise ValueError(f"dataset {name!r} has no rows with a value in target {target.name!r}")
    features = features.iloc[labeled].reset_index(drop=True)
    target = target.iloc[labeled].reset_index(drop=True)
    task = task or _infer_task(target)
    if task == "regression":
        target, classes = _regression_target(target), ()
    else:
        target, classes = _classification_target(target)
    numeric, categorical = _split_features(features)
    return Dataset(
        name=name,
        numeric=numeric,
        categorical=categorical,
        target=target,
        task=task,
        classes=classes,
        source=source,
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


def _split_features(features: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric (int/float/bool) columns as float64; the rest as str objects, NaN if missing."""
    is_numeric = [pd.api.types.is_numeric_dtype(features[column]) for column in features.columns]
    numeric = features.loc[:, is_numeric].astype(np.float64)
    categorical = pd.DataFrame(
        {
            column: _category_column(features[column])
            for column, flag in zip(features.columns, is_numeric, strict=True)
            if not flag
        },
        index=features.index,
    )
    return numeric, categorical


def _category_column(column: pd.Series) -> pd.Series:
    text = column.map(str, na_action="ignore").astype(object)
    # "?" marks a missing cell in UCI data even where the reader did not catch it.
    return text.where(text.notna() & (text != "?"), np.nan)


# --- messages ----------------------------------------------------------------------------


def _require_column(target: str | None, columns: Iterable[Any], *, where: str) -> str:
    available = [str(column) for column in columns]
    if target is None:
        raise ValueError(f"pass target=<column> for {where}; columns: {_names(available)}")
    if target not in available:
        raise ValueError(f"target column {target!r} not in {where}; columns: {_names(available)}")
    return target


def _names(names: list[str], limit: int = 30) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names) - limit} more)"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else "no details"
