"""``uci:<id>`` datasets: fetched once with ``ucimlrepo`` and cached on disk as CSV + JSON."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from actmix._frames import first_line, read_table, require_column, to_dataset
from actmix.types import Dataset, Task

__all__ = ["load_uci", "parse_uci_id"]

_CACHE_ENV = "ACTMIX_CACHE"
# ucimlrepo's variable types that fix the task of a target column.
_UCI_TYPE_TASKS: dict[str, Task] = {
    "Categorical": "classification",
    "Binary": "classification",
    "Continuous": "regression",
}
# Variables UCI declares as text: they stay categorical even if they look like numbers.
_UCI_TEXT_TYPES = frozenset({"Categorical", "Binary"})


def load_uci(
    uci_id: int,
    *,
    target: str | None,
    task: Task | None,
    cache_dir: str | os.PathLike[str] | None,
    fallback: str,
) -> Dataset:
    """The dataset ``uci:<uci_id>`` from the cache, fetching it on first use.

    fallback: what to suggest when the repository cannot be reached.
    """
    directory = _cache_directory(cache_dir)
    cached = _read_uci_cache(directory, uci_id)
    if cached is None:
        _write_uci_cache(directory, uci_id, _fetch_uci(uci_id, fallback=fallback))
        cached = _read_uci_cache(directory, uci_id)
        if cached is None:  # written just above; only a concurrent delete gets here
            raise OSError(f"UCI cache for id {uci_id} vanished from {str(directory)!r}")
    frame, meta = cached
    declared: list[str] = meta["targets"]
    features = [column for column in frame.columns if column not in declared]
    if declared:
        target = require_column(
            target or declared[0], declared, where=f"the target columns of UCI dataset {uci_id}"
        )
    else:  # some UCI datasets declare no target; the user names one of the features
        target = require_column(target, features, where=f"UCI dataset {uci_id}")
    variables: dict[str, dict[str, str]] = meta["variables"]
    if task is None:
        task = _UCI_TYPE_TASKS.get(variables.get(target, {}).get("type", ""))
    title = f"{meta['title']}, " if meta.get("title") else ""
    doi = f"doi:{meta['doi']}" if meta.get("doi") else "no DOI"
    return to_dataset(
        frame[[column for column in features if column != target]],
        frame[target],
        name=f"uci-{uci_id}",
        task=task,
        source=f"uci:{uci_id} ({title}{doi})",
        declared_text={
            column for column, role in variables.items() if role.get("type") in _UCI_TEXT_TYPES
        },
    )


def parse_uci_id(text: str) -> int:
    """The positive integer id after ``uci:``; a ValueError with an example otherwise."""
    try:
        uci_id = int(text.strip())
    except ValueError:
        uci_id = 0
    if uci_id <= 0:
        raise ValueError(f"UCI dataset id must be a positive integer, got {text!r} (e.g. uci:294)")
    return uci_id


def _fetch_uci(uci_id: int, *, fallback: str) -> Any:
    """``ucimlrepo.fetch_ucirepo(id=uci_id)``; every failure becomes a one-line ConnectionError."""
    from ucimlrepo import fetch_ucirepo  # lazy: only ``uci:`` specs need the network client

    try:
        return fetch_ucirepo(id=uci_id)
    except Exception as error:  # ucimlrepo raises URLError, ConnectionError and its own types
        raise ConnectionError(
            f"could not reach the UCI repository to fetch dataset id {uci_id} "
            f"({type(error).__name__}: {first_line(error)}); use {fallback}"
        ) from error


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
        frame = read_table(csv_path, dtype=dict.fromkeys(meta["strings"], str))
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(
            f"damaged UCI cache for id {uci_id} in {str(directory)!r} ({first_line(error)}); "
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
