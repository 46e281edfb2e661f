"""A configuration of a packed trial, shaped like a Tune trial for ``TrialRuns``.

A packed Tune trial holds several configurations (see ``payload.PACK_CONFIGS``); each is
logged as its own MLflow run, so each is handed to ``TrialRuns`` as a ``PackSlot``: its
own id (``<Tune trial id>:<slot>``), its own config, and its entry of the pack's report
as its last result. Its run is named after its Optuna trial number, so ``trial-0000`` is
the baseline as in an unpacked study.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from study.tracking import payload

__all__ = ["PackSlot", "pack_slots_of"]


@dataclass(frozen=True, slots=True)
class PackSlot:
    """Configuration ``index`` of the packed Tune trial ``trial`` (a ``TrialLike``)."""

    trial: Any
    index: int
    last_result: Mapping[str, Any] | None = None

    @property
    def trial_id(self) -> str:
        return f"{self.trial.trial_id}:{self.index}"

    @property
    def config(self) -> Mapping[str, Any]:
        return self.trial.config[payload.PACK_CONFIGS][self.index]

    @property
    def number(self) -> int:
        """The configuration's Optuna trial number."""
        return int(self.trial.config[payload.PACK_NUMBERS][self.index])

    @property
    def experiment_tag(self) -> str:
        # read by TrialRuns for the run's index: Tune's tags count from 1, numbers from 0
        return f"{self.number + 1}_pack"

    @property
    def error_file(self) -> str | None:
        return self.trial.error_file

    def get_error(self) -> object | None:
        return self.trial.get_error()


def pack_slots_of(trial: Any, result: Mapping[str, Any] | None = None) -> list[PackSlot] | None:
    """The configurations of ``trial`` with their entries of ``result``; None if unpacked."""
    config = getattr(trial, "config", None) or {}
    if not payload.is_pack(config):
        return None
    size = len(config[payload.PACK_NUMBERS])
    entries = payload.pack_slots(result or {}, size)
    return [PackSlot(trial, index, entries[index]) for index in range(size)]
