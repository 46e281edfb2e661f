"""Where a command will write, checked before anything is written (no Ray, no MLflow).

A folder (the study store) must be a folder, or be creatable inside a folder this process
can write to; a file (``export-best --out``) must not be a folder and must be writable;
an Optuna storage must be a database URL SQLAlchemy knows. Each check raises
:class:`~study.system.RequestError` naming the field, so the CLI names the flag.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from study.system import RequestError

__all__ = ["check_optuna_storage", "check_writable_file", "check_writable_folder", "store_lock"]

LOCK_FILE = ".lock"


def check_writable_folder(folder: str | os.PathLike[str], *, field: str) -> Path:
    """The absolute ``folder``, if it is (or can be created as) a folder this process writes to.

    Writing is probed with an anonymous temporary file rather than ``os.access``, which
    answers "yes" to root even where writes fail (a read-only mount, ``/sys``).
    """
    path = Path(folder).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise RequestError(field, f"{path} is a file, not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise RequestError(field, f"cannot create {path}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise RequestError(field, f"cannot write to {existing} ({reason})") from None
    return path


def check_writable_file(file: str | os.PathLike[str], *, field: str) -> Path:
    """The absolute ``file``, if it can be written (created, or replaced when it exists)."""
    path = Path(file).expanduser().resolve()
    if path.is_dir():
        raise RequestError(field, f"{path} is a folder; give a file name")
    if path.exists():
        try:
            with path.open("r+b"):  # opened for writing, nothing written
                pass
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise RequestError(field, f"cannot write to {path} ({reason})") from None
        return path
    check_writable_folder(path.parent, field=field)
    return path


def check_optuna_storage(url: str, *, field: str = "optuna_storage") -> None:
    """Refuse an Optuna storage that is not a database URL of a known kind; connects nowhere."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    example = "e.g. sqlite:///optuna.db or postgresql://user@host/db"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise RequestError(field, f"{url!r} is not a database URL; {example}") from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise RequestError(
            field, f"unknown database {parsed.drivername!r} in {url!r}; {example}"
        ) from None


@contextmanager
def store_lock(store: Path) -> Iterator[None]:
    """Hold ``<store>/.lock`` exclusively (``flock``; it is released if the holder dies).

    Drivers started at the same moment on a new store would otherwise create MLflow's and
    Optuna's SQLite schemas together, and one crashes inside the migration.
    """
    import fcntl

    store.mkdir(parents=True, exist_ok=True)
    with (store / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
