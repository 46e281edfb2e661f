"""One line of study progress: trials done and running, best so far, time elapsed.

The tracking callback appends it to each ended trial's line and, when nothing has ended
for a while, prints it alone, so a terminal never shows a minute of silence.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from study.tracking._tags import Mode

__all__ = ["HEARTBEAT_S", "Progress", "format_elapsed"]

HEARTBEAT_S = 30.0  # a progress line at least this often while trials run


def format_elapsed(seconds: float) -> str:
    """``75.4`` -> ``"1m15s"``; ``3725`` -> ``"1h02m"``."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class Progress:
    """Progress of one study in this driver (``mode``: ``"min"`` or ``"max"``)."""

    total: int  # trials asked for
    objective: str
    mode: Mode
    best: float | None = None
    heartbeat_s: float = HEARTBEAT_S
    started: float = field(default_factory=time.monotonic)
    last_line: float = field(default_factory=time.monotonic)

    def offer(self, value: Any) -> None:
        """A finished trial's objective value; kept when it is the best so far."""
        if value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        if self.best is None or (value < self.best if self.mode == "min" else value > self.best):
            self.best = value

    def summary(self, statuses: Iterable[str]) -> str:
        """``3/8 done, 2 running, best val_rmse_mean=4.0301, 1m12s`` from Tune's statuses."""
        statuses = list(statuses)
        done = sum(status in ("TERMINATED", "ERROR") for status in statuses)
        running = sum(status == "RUNNING" for status in statuses)
        best = "no result yet" if self.best is None else f"best {self.objective}={self.best:.4f}"
        self.last_line = time.monotonic()
        elapsed = format_elapsed(self.last_line - self.started)
        return f"{done}/{self.total} done, {running} running, {best}, {elapsed}"

    def due(self) -> bool:
        """Whether a line alone is due (nothing printed for ``heartbeat_s``)."""
        return time.monotonic() - self.last_line >= self.heartbeat_s
