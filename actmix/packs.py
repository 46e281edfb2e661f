"""Packs: several configurations that share a network's shape, trained as one network.

A batched MLP already trains folds x seeds of one configuration as members of one
network. A pack adds configurations to that: K configurations x folds x seeds members,
where each configuration keeps its own learning rate and schedules, weight decay,
gradient clip, patience, dropout rate and the activation options its activation can vary
per member (see ``actmix.trainer.fit`` and ``actmix.mlp.MLP``). What every configuration
of a pack must share is what fixes the network and its loop (:func:`shared_part`): the
model, the hidden widths, the epochs, the batch size and the structural activation
options (ActMix's basis, say). Member k trains as it would alone, so a pack changes
what a configuration costs, not what it learns.

>>> from actmix.config import RunConfig, MLPConfig
>>> a, b = RunConfig(mlp=MLPConfig(dropout=0.1)), RunConfig(mlp=MLPConfig(dropout=0.3))
>>> check_pack([a, b])  # dropout may differ between configurations
>>> check_pack([a, RunConfig(mlp=MLPConfig(widths=(64,)))])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: configuration 1 cannot share a pack with configuration 0: mlp.widths differs ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actmix._checkpoint import select_members
from actmix._member_settings import SHARED_TRAIN_FIELDS
from actmix.activations import ACTIVATIONS, check_activation
from actmix.config import XGBOOST, RunConfig, TrainConfig
from actmix.mlp import MLP
from actmix.preprocessing import FoldArrays
from actmix.trainer import MemberData
from actmix.types import Dataset

__all__ = [
    "SHARED_TRAIN_FIELDS",
    "Pack",
    "build_pack",
    "check_pack",
    "select_members",
    "shared_part",
]


def shared_part(config: RunConfig) -> dict[str, Any]:
    """What configurations trained in one pack must agree on, by dotted name."""
    if config.model == XGBOOST:
        raise ValueError("xgboost configurations are not packed")
    constructor = ACTIVATIONS[check_activation(config.model)]
    per_member: frozenset[str] = getattr(constructor, "per_member_options", frozenset())
    shared: dict[str, Any] = {"model": config.model, "mlp.widths": tuple(config.mlp.widths)}
    shared |= {f"train.{name}": getattr(config.train, name) for name in SHARED_TRAIN_FIELDS}
    shared |= {
        f"mlp.activation.{name}": value
        for name, value in sorted(config.mlp.activation.items())
        if name not in per_member
    }
    return shared


def check_pack(configs: Sequence[RunConfig]) -> None:
    """ValueError naming the first setting that keeps two configurations out of one pack."""
    if not configs:
        raise ValueError("a pack needs at least one configuration")
    first = shared_part(configs[0])
    for index, config in enumerate(configs[1:], start=1):
        other = shared_part(config)
        for name in sorted(set(first) | set(other)):
            if first.get(name) != other.get(name):
                raise ValueError(
                    f"configuration {index} cannot share a pack with configuration 0: "
                    f"{name} differs ({other.get(name)!r} != {first.get(name)!r})"
                )


@dataclass(frozen=True, slots=True)
class Pack:
    """One batched MLP for every (configuration, fold, seed), configuration-major.

    ``train``: each member's training configuration, for ``fit``; ``members``: the
    (configuration, fold, seed) of each member.
    """

    model: MLP
    data: tuple[MemberData, ...]
    train: tuple[TrainConfig, ...]
    members: tuple[tuple[int, int, int], ...]

    def of(self, configuration: int) -> list[int]:
        """The member indices of one configuration."""
        return [k for k, (c, _, _) in enumerate(self.members) if c == configuration]


def build_pack(
    dataset: Dataset,
    configs: Sequence[RunConfig],
    fold_arrays: Sequence[FoldArrays],
    seeds: Sequence[int],
) -> Pack:
    """The pack of ``configs`` over folds x seeds; ValueError if they cannot share one."""
    check_pack(configs)
    triples = tuple(
        (c, fold, seed)
        for c in range(len(configs))
        for fold in range(len(fold_arrays))
        for seed in seeds
    )
    data = tuple(
        MemberData(
            x_train=fold_arrays[fold].x_train,
            y_train=fold_arrays[fold].y_train,
            x_val=fold_arrays[fold].x_val,
            y_val=fold_arrays[fold].y_val,
            seed=seed,
            target_std=fold_arrays[fold].target_std,
        )
        for _, fold, seed in triples
    )
    # one-hot widths can differ between folds (a rare category absent from a fold's
    # training rows); narrower folds are zero-padded and each member is initialised
    # for its own width, so no fold depends on another fold's categories
    widths = [fold_arrays[fold].x_train.shape[1] for _, fold, _ in triples]
    first = configs[0]
    model = MLP(
        max(widths),
        1 if dataset.task == "regression" else dataset.n_classes,
        first.mlp.widths,
        first.model,
        dropout=[configs[c].mlp.dropout for c, _, _ in triples],
        members=len(triples),
        activation_options=[configs[c].mlp.activation for c, _, _ in triples],
        seed=[seed for _, _, seed in triples],
        member_inputs=widths,
    )
    return Pack(model, data, tuple(configs[c].train for c, _, _ in triples), triples)
