"""The Tune callback that stops a study before its store's disk is full (see
``study.store._space``): every few seconds of Tune's loop it looks at the free space
and, below ``STOP_FLOOR``, stops the study as a Ctrl-C would, saying why."""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback

from study.store import STOP_FLOOR, free_bytes, megabytes, relocate
from study.system import request_stop

__all__ = ["DiskGuard"]

CHECK_EVERY_S = 5.0


class DiskGuard(Callback):
    """Stops the study once less than ``floor`` bytes are free where ``store`` is."""

    def __init__(self, store: str, *, floor: int = STOP_FLOOR) -> None:
        self.store = store
        self.floor = floor
        self._checked = 0.0
        self._stopped = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.store = relocate(self.store)  # a resumed store that moved as a whole
        self._checked, self._stopped = 0.0, False

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        del iteration, trials, info
        now = time.monotonic()
        if self._stopped or now - self._checked < CHECK_EVERY_S:
            return
        self._checked = now
        free = free_bytes(self.store)
        if free < self.floor:
            self._stopped = request_stop(
                f"disk nearly full: {megabytes(free)} free at {self.store}; free space, then resume"
            )
