"""Checkpoints of a running ``fit``: everything needed to continue it exactly.

A snapshot is a dict of CPU tensors and plain values, so ``torch.save`` writes it
and ``torch.load(..., weights_only=True)`` reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from actmix._early_stopping import EarlyStopping
from actmix.mlp import MLP
from actmix.optim import MemberAdamW

__all__ = ["restore", "select_members", "snapshot"]


def snapshot(
    next_epoch: int,
    model: MLP,
    optimizer: MemberAdamW,
    best_state: Mapping[str, torch.Tensor],
    progress: EarlyStopping,
    shufflers: Sequence[torch.Generator],
) -> dict[str, Any]:
    """The state after epoch ``next_epoch - 1``; ``restore`` continues from ``next_epoch``."""
    return {
        "epoch": next_epoch,
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "best_state": {k: v.cpu().clone() for k, v in best_state.items()},
        "optimizer": {k: v.cpu().clone() for k, v in optimizer.state_tensors().items()},
        "progress": progress.to_dict(),
        "shufflers": [g.get_state() for g in shufflers],
    }


def restore(
    state: Mapping[str, Any],
    model: MLP,
    optimizer: MemberAdamW,
    best_state: dict[str, torch.Tensor],
    shufflers: Sequence[torch.Generator],
) -> tuple[int, EarlyStopping]:
    """Load a ``snapshot`` into the live objects; returns the epoch to continue from
    and the early-stopping state."""
    if len(state["shufflers"]) != len(shufflers):
        raise ValueError(
            f"checkpoint has {len(state['shufflers'])} members, the model has {len(shufflers)}"
        )
    device = optimizer.steps.device
    model.load_state_dict(state["model"])
    for name, tensor in state["best_state"].items():
        best_state[name] = tensor.to(device)
    optimizer.load_state_tensors(state["optimizer"])
    for generator, saved in zip(shufflers, state["shufflers"], strict=True):
        generator.set_state(saved)
    return int(state["epoch"]), EarlyStopping.from_dict(state["progress"])


def select_members(state: Mapping[str, Any], keep: Sequence[int]) -> dict[str, Any]:
    """The ``snapshot`` of a network made of members ``keep`` only (in that order).

    Every tensor of a snapshot carries the member dimension first and every list holds
    one entry per member, so the members kept continue exactly where they were; a pack
    uses it to drop the configurations a scheduler stopped from its batch.
    """
    members = len(state["shufflers"])
    if not keep or len(set(keep)) != len(keep) or not all(0 <= k < members for k in keep):
        raise ValueError(f"keep must name distinct members of 0..{members - 1}, got {list(keep)}")
    index = torch.tensor(list(keep), dtype=torch.long)
    position = {old: new for new, old in enumerate(keep)}
    progress = state["progress"]

    def pick(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: tensor.index_select(0, index) for name, tensor in tensors.items()}

    return {
        "epoch": state["epoch"],
        "model": pick(state["model"]),
        "best_state": pick(state["best_state"]),
        "optimizer": pick(state["optimizer"]),
        "progress": {
            **{
                name: [progress[name][k] for k in keep]
                for name in ("best_loss", "best_metric", "best_epoch", "epochs_run", "active")
            },
            "diverged": [
                [position[k], epoch, reason]
                for k, epoch, reason in progress["diverged"]
                if k in position
            ],
        },
        "shufflers": [state["shufflers"][k] for k in keep],
    }
