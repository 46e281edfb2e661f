"""What each member of a batched network trains with: its own training configuration
(checked against what members trained together must share) and, each epoch, the values
its schedules give (learning rate, temperature, entropy weight).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from actmix.config import TrainConfig
from actmix.schedules import entropy_weight_at, learning_rate_at, temperature_at

__all__ = ["SHARED_TRAIN_FIELDS", "EpochSchedule", "member_configs"]

# what members trained together must share: one loop of epochs over one minibatch layout
SHARED_TRAIN_FIELDS = ("epochs", "batch_size")


def member_configs(
    config: TrainConfig | Sequence[TrainConfig], members: int
) -> tuple[TrainConfig, ...]:
    """One training configuration per member: ``config`` for all, or one each, checked."""
    if isinstance(config, TrainConfig):
        return (config,) * members
    configs = tuple(config)
    if len(configs) != members:
        raise ValueError(f"got {len(configs)} training configurations for {members} members")
    for name in SHARED_TRAIN_FIELDS:
        values = sorted({getattr(c, name) for c in configs})
        if len(values) > 1:
            raise ValueError(f"members trained together must share {name}, got {values}")
    return configs


@dataclass(frozen=True, slots=True)
class EpochSchedule:
    """The scheduled values of one epoch, per member; ``weights``: the entropy weights as
    a tensor ``[M]`` (None when no member has one)."""

    temperature: tuple[float, ...]
    entropy_weight: tuple[float, ...]
    lr: tuple[float, ...]
    weights: torch.Tensor | None

    @classmethod
    def at(cls, epoch: int, configs: Sequence[TrainConfig], device: torch.device) -> EpochSchedule:
        weights = tuple(entropy_weight_at(epoch, c.entropy) for c in configs)
        return cls(
            temperature=tuple(temperature_at(epoch, c.temperature) for c in configs),
            entropy_weight=weights,
            lr=tuple(
                learning_rate_at(epoch, lr=c.lr, epochs=c.epochs, eta_min_factor=c.eta_min_factor)
                for c in configs
            ),
            weights=torch.tensor(weights, device=device) if any(w > 0 for w in weights) else None,
        )
