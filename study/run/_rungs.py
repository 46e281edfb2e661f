"""ASHA for the configurations of packed trials: one rung board per study, shared by all packs.

Tune's ASHA decides per Tune trial; a pack is one Tune trial holding several
configurations, so packed studies run Tune's FIFO scheduler and stop configurations
here instead, by the same rule: at each milestone (``grace_period x
reduction_factor^k`` reported epochs) a configuration is stopped when its value is below
the ``1 - 1/reduction_factor`` quantile of the values every configuration of the study
recorded at that milestone before it (``ray.tune.schedulers.AsyncHyperBandScheduler``'s
single bracket). The records live in a named Ray actor, so packs on every node of a
cluster compare with each other; a resumed driver rebuilds them from the Optuna
intermediate values, and a decision once made is given again to a configuration that
replays its epochs after a restore.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from study.tracking import Mode

__all__ = ["RungSpec", "Rungs", "ask_rungs", "rung_records", "start_rung_board"]


@dataclass(frozen=True, slots=True)
class RungSpec:
    """Where a study's rungs are and how they cut (sent to the workers with the settings)."""

    board: str  # the named Ray actor holding the records
    grace_period: int
    reduction_factor: float
    max_t: int  # Tune's max_t: epochs + 1, as the unpacked ASHA is built
    mode: Mode

    def milestones(self) -> tuple[float, ...]:
        """Reported epochs at which a configuration is judged, ascending (Ray's rungs)."""
        grace = min(self.grace_period, self.max_t)
        count = int(np.log(self.max_t / grace) / np.log(self.reduction_factor) + 1)
        return tuple(grace * self.reduction_factor**k for k in range(count))


@dataclass
class Rungs:
    """The values recorded at each milestone and the decisions made, by configuration key."""

    spec: RungSpec
    recorded: dict[float, dict[int, float]] = field(default_factory=dict)
    stopped: dict[float, set[int]] = field(default_factory=dict)

    def decide(self, key: int, iteration: int, value: float | None) -> bool:
        """Whether configuration ``key`` stops at ``iteration`` (its reported epoch count)."""
        for milestone in reversed(self.spec.milestones()):
            if iteration < milestone:
                continue
            recorded = self.recorded.setdefault(milestone, {})
            stopped = self.stopped.setdefault(milestone, set())
            if key in recorded:
                # judged there already (a replay after a restore): the same decision
                return key in stopped
            reward = _reward(value, self.spec.mode)
            stop = False
            if recorded and reward is not None:
                cutoff = np.nanpercentile(
                    list(recorded.values()), (1 - 1 / self.spec.reduction_factor) * 100
                )
                stop = bool(reward < cutoff)
            if reward is not None:
                recorded[key] = reward
            if stop:
                stopped.add(key)
            return stop
        return False

    def restore(self, history: Iterable[Mapping[str, Any]]) -> None:
        """Records from ``trial_history`` rows: each trial's value at each milestone it
        reached, and whether it stopped there (PRUNED with its last value at it)."""
        milestones = self.spec.milestones()
        for trial in history:
            values = {int(step): value for step, value in trial["intermediate_values"].items()}
            last = max(values, default=None)
            for milestone in milestones:
                step = math.ceil(milestone)
                reward = _reward(values.get(step), self.spec.mode)
                if reward is None:
                    continue
                self.recorded.setdefault(milestone, {})[trial["number"]] = reward
                if trial["state"] == "PRUNED" and last == step:
                    self.stopped.setdefault(milestone, set()).add(trial["number"])


def _reward(value: float | None, mode: Mode) -> float | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value) if mode == "max" else -float(value)


class _Board:
    """The Ray actor around ``Rungs`` (one call per pack and epoch, for all its members)."""

    def __init__(self, spec: RungSpec, history: list[dict[str, Any]]) -> None:
        self.rungs = Rungs(spec)
        self.rungs.restore(history)

    def decide(self, queries: list[tuple[int, int, float | None]]) -> list[bool]:
        return [self.rungs.decide(key, iteration, value) for key, iteration, value in queries]

    def records(self) -> dict[float, dict[int, float]]:
        """What each milestone recorded, by configuration (for ``study`` tests and debugging)."""
        return self.rungs.recorded


# the driver's handles: Ray ends an actor, named or not, once no handle to it is left
_BOARDS: dict[str, Any] = {}


def start_rung_board(spec: RungSpec, history: list[dict[str, Any]]) -> None:
    """Start the study's board (replacing one of the same name left in this Ray); it lives
    as long as this driver's Ray session."""
    import ray

    with contextlib.suppress(ValueError):  # ValueError: there is none yet
        ray.kill(ray.get_actor(spec.board))
    # a tiny bookkeeping actor: it must not hold a CPU a trial needs
    actor = ray.remote(num_cpus=0)(_Board).options(name=spec.board)
    _BOARDS[spec.board] = actor.remote(spec, history)


def ask_rungs(spec: RungSpec, queries: Sequence[tuple[int, int, float | None]]) -> list[bool]:
    """Decisions for ``(configuration key, reported epochs, value)`` from the study's board."""
    import ray

    if not queries:
        return []
    try:
        board = ray.get_actor(spec.board)
    except ValueError:
        raise RuntimeError(
            f"the study's ASHA board {spec.board!r} is not running; resume the study"
        ) from None
    return list(ray.get(board.decide.remote(list(queries))))


def rung_records(spec: RungSpec) -> dict[float, dict[int, float]]:
    """The board's records now: milestone -> {configuration key: reward (max is better)}."""
    import ray

    return dict(ray.get(ray.get_actor(spec.board).records.remote()))
