"""Per-epoch schedules: ActMix temperature, entropy weight and learning rate."""

from __future__ import annotations

import math

from actmix.config import EntropySchedule, TemperatureSchedule

__all__ = ["entropy_weight_at", "learning_rate_at", "temperature_at"]


def temperature_at(epoch: int, schedule: TemperatureSchedule) -> float:
    """Temperature for ``epoch`` (0-based); held at ``final`` after ``anneal_epochs``."""
    if schedule.anneal_epochs == 0:
        return schedule.final
    progress = min(epoch / schedule.anneal_epochs, 1.0)
    start, end = schedule.initial, schedule.final
    if schedule.schedule == "linear":
        return start + (end - start) * progress
    if schedule.schedule == "exponential":
        return start * (end / start) ** progress
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def entropy_weight_at(epoch: int, schedule: EntropySchedule) -> float:
    """Entropy penalty weight: linear warm-up from 0 to ``lambda_max``."""
    if schedule.warmup_epochs == 0:
        return schedule.lambda_max
    return schedule.lambda_max * min(epoch / schedule.warmup_epochs, 1.0)


def learning_rate_at(epoch: int, *, lr: float, epochs: int, eta_min_factor: float) -> float:
    """Cosine decay from ``lr`` to ``lr * eta_min_factor`` over ``epochs``."""
    eta_min = lr * eta_min_factor
    progress = min(epoch / epochs, 1.0)
    return eta_min + (lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * progress))
