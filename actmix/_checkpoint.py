"""Checkpoints of a running ``fit``: everything needed to continue it exactly.

A snapshot is a dict of CPU tensors and plain values, so ``torch.save`` writes it
and ``torch.load(..., weights_only=True)`` reads it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from actmix._early_stopping import EarlyStopping
from actmix.mlp import MLP
from actmix.optim import MemberAdamW

__all__ = ["restore", "snapshot"]


def _cpu_copies(tensors: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().cpu().clone() for t in tensors]


def snapshot(
    next_epoch: int,
    model: MLP,
    optimizer: MemberAdamW,
    best_state: Mapping[str, torch.Tensor],
    progress: EarlyStopping,
    shufflers: Sequence[torch.Generator],
    dropout_generators: Sequence[torch.Generator],
) -> dict[str, Any]:
    """The state after epoch ``next_epoch - 1``; ``restore`` continues from ``next_epoch``."""
    return {
        "epoch": next_epoch,
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "best_state": {k: v.cpu().clone() for k, v in best_state.items()},
        "optimizer": {
            "steps": optimizer.steps.cpu().clone(),
            "exp_avg": _cpu_copies(optimizer.exp_avg),
            "exp_avg_sq": _cpu_copies(optimizer.exp_avg_sq),
        },
        "progress": progress.to_dict(),
        "shufflers": [g.get_state() for g in shufflers],
        "dropout_generators": [g.get_state() for g in dropout_generators],
    }


def restore(
    state: Mapping[str, Any],
    model: MLP,
    optimizer: MemberAdamW,
    best_state: dict[str, torch.Tensor],
    shufflers: Sequence[torch.Generator],
    dropout_generators: Sequence[torch.Generator],
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
    optimizer.steps.copy_(state["optimizer"]["steps"])
    for live, saved in zip(optimizer.exp_avg, state["optimizer"]["exp_avg"], strict=True):
        live.copy_(saved)
    for live, saved in zip(optimizer.exp_avg_sq, state["optimizer"]["exp_avg_sq"], strict=True):
        live.copy_(saved)
    for generator, saved in zip(shufflers, state["shufflers"], strict=True):
        generator.set_state(saved)
    for generator, saved in zip(dropout_generators, state["dropout_generators"], strict=True):
        generator.set_state(saved)
    return int(state["epoch"]), EarlyStopping.from_dict(state["progress"])
