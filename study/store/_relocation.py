"""A store moved as a whole: the old absolute locations saved inside it, pointed at the new one.

A study's store holds absolute paths of itself in several places: Tune's saved
tuner (the MLflow callback's tracking URI, the searcher's Optuna URL), its search
generator (where new trials go), and the MLflow database (artifact locations).
``resume`` of a moved store runs inside ``relocated(old, new)``: while it is in
effect, ``relocate`` rewrites the old folder to the new one, and the classes that
Tune unpickles call it on the locations they restore. ``relocate_mlflow_artifacts``
rewrites the artifact locations that a SQLite tracking database keeps under the old
folder.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["relocate", "relocate_mlflow_artifacts", "relocated"]

_active: tuple[str, str] | None = None
# MLflow's columns that name artifact folders (logged_models exists from MLflow 3 on)
_ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
)


@contextmanager
def relocated(old: Path, new: Path) -> Iterator[None]:
    """While the block runs, ``relocate`` maps the folder ``old`` to ``new``."""
    global _active
    previous, _active = _active, (str(old), str(new))
    try:
        yield
    finally:
        _active = previous


def relocate(location: str) -> str:
    """``location`` (a path or a URI) with the moved folder's old path replaced by the new
    one, inside ``relocated``; unchanged outside it or when it names another folder."""
    if _active is None:
        return location
    old, new = _active
    # the old folder itself or anything below it, not a sibling such as "<old>-2"
    return re.sub(re.escape(old) + r"(?=/|$)", lambda _match: new, location)


def relocate_mlflow_artifacts(tracking_uri: str, old: Path, new: Path) -> int:
    """Point the artifact locations in the SQLite tracking store ``tracking_uri`` from
    ``old`` to ``new``; returns how many rows changed. Other stores are left alone."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return 0
    changed = 0
    with sqlite3.connect(tracking_uri[len(prefix) :]) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        for table, column in _ARTIFACT_COLUMNS:
            if table not in tables:
                continue
            # table and column names come from the constant above, never from input
            changed += connection.execute(
                f"UPDATE {table} SET {column} = replace({column}, ?, ?) WHERE {column} LIKE ?",
                (f"{old}/", f"{new}/", f"%{old}/%"),
            ).rowcount
    return changed
