"""Disk space of a store: checked before a study starts, watched while it runs.

A full disk in the middle of a study fails writes in MLflow, Optuna and Ray Tune at once
(hundreds of lines of chained tracebacks, runs ended FAILED). So a study does not start
with less than ``START_FLOOR`` free where its store is, and stops as a Ctrl-C would (state
saved, resumable) once less than ``STOP_FLOOR`` is left, while writes still succeed.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

__all__ = [
    "START_FLOOR",
    "STOP_FLOOR",
    "LowDiskSpace",
    "check_free_space",
    "disk_full_error",
    "free_bytes",
    "megabytes",
]

START_FLOOR = 200 * 2**20  # a study's checkpoints, runs and artifacts need some room
STOP_FLOOR = 50 * 2**20  # enough to save the state of a stopped study


class LowDiskSpace(OSError):
    """Too little free space for a study to start (``strerror`` says where and how much)."""


def free_bytes(path: str | Path) -> int:
    """Bytes free for this user on the filesystem of ``path`` (its nearest existing parent)."""
    folder = Path(path).expanduser().resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def megabytes(count: int) -> str:
    return f"{count / 2**20:.0f} MB"


def check_free_space(store: str | Path, *, floor: int = START_FLOOR) -> None:
    """LowDiskSpace naming the store and its free space when less than ``floor`` is free."""
    free = free_bytes(store)
    if free < floor:
        raise LowDiskSpace(
            errno.ENOSPC,
            f"the disk of store {store} has {megabytes(free)} free; a study needs at least "
            f"{megabytes(floor)}: free some space (or give another --store)",
        )


def disk_full_error(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) is a full disk, by errno or by the
    words SQLite and others use for it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(current)
        if "database or disk is full" in text or "No space left on device" in text:
            return True
        current = current.__cause__ or current.__context__
    return False
