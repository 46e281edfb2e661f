"""The small protocol every activation layer follows.

Activation layers act on ``[members, batch, width]`` tensors and keep any
trainable parameter with a leading member dimension, so that all folds and seeds
of one configuration train as one batched network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from actmix._dropout import DropoutMask

__all__ = ["ActivationLayer", "FixedActivation", "joint_inputs", "member_values"]


def member_values(value: float | Sequence[float], members: int, name: str) -> tuple[float, ...]:
    """One float per member from one value or from a sequence of ``members`` values (an
    option in a layer's ``per_member_options``)."""
    if isinstance(value, Sequence):
        if len(value) != members:
            raise ValueError(f"{name}: got {len(value)} values for {members} members")
        return tuple(float(v) for v in value)
    return (float(value),) * members


def member_full(values: Sequence[float], shape: tuple[int, ...]) -> torch.Tensor:
    """``[members, *shape]`` filled with member k's value in slice k."""
    return (
        torch.tensor(values, dtype=torch.float32)
        .view(-1, *([1] * len(shape)))
        .expand(len(values), *shape)
        .clone()
    )


class ActivationLayer(nn.Module):
    """Base class with no-op defaults; trainable activations override what applies."""

    # whether ``linear_after`` exists: the network then calls it in training instead
    # of the layer, dropout and the next product one by one
    fuses_linear = False
    # constructor options that may be one value per member (a list): see MLP
    per_member_options: frozenset[str] = frozenset()

    def linear_after(
        self,
        z: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        mask: DropoutMask | None,
    ) -> torch.Tensor:
        """``baddbmm(bias, dropout(self(z)), weight)``, keeping less for backward than the
        three steps would (``mask``: the dropout mask, None without dropout)."""
        raise NotImplementedError(f"{type(self).__name__} has no fused linear path")

    def set_temperature(self, temperature: float | torch.Tensor) -> None:  # noqa: ARG002 - protocol
        """Called by the trainer each epoch; only temperature-driven layers care."""
        return None

    def entropy(self) -> torch.Tensor | None:
        """Mean mixing entropy per member ``[members]``, or None if not a mixture."""
        return None

    def mixing_weights(self) -> torch.Tensor | None:
        """Mixing coefficients ``[members, width, K]`` of a mixture activation, else None."""
        return None

    def regularization(self) -> torch.Tensor | None:
        """Extra loss per member ``[members]`` (already weighted), or None."""
        return None

    def describe(self) -> dict[str, object]:
        """Plain summary for logs and exports."""
        return {"name": type(self).__name__}

    @classmethod
    def prepare_jointly(
        cls,
        layers: Sequence[ActivationLayer],  # noqa: ARG003 - protocol default
        dtype: torch.dtype,  # noqa: ARG003
    ) -> list[dict[str, Any]] | None:
        """Keyword arguments for each layer's forward, computed for all ``layers`` at once.

        A network calls this once per forward pass with all its layers of this class;
        layers whose per-pass setup is many small operations (DiTAC's lookup grids) do
        it in one batched computation instead of one per layer. None: nothing to share.
        """
        return None


def joint_inputs(layers: Sequence[ActivationLayer], dtype: torch.dtype) -> list[dict[str, Any]]:
    """Per layer, the extra forward arguments its class prepared jointly (often none)."""
    extra: list[dict[str, Any]] = [{} for _ in layers]
    by_class: dict[type[ActivationLayer], list[int]] = {}
    for index, layer in enumerate(layers):
        by_class.setdefault(type(layer), []).append(index)
    for kind, indices in by_class.items():
        prepared = kind.prepare_jointly([layers[i] for i in indices], dtype)
        if prepared is not None:
            for index, arguments in zip(indices, prepared, strict=True):
                extra[index] = arguments
    return extra


class FixedActivation(ActivationLayer):
    """A parameter-free activation applied element-wise."""

    def __init__(self, name: str, function) -> None:
        super().__init__()
        self.name = name
        self.function = function

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.function(z)

    def describe(self) -> dict[str, object]:
        return {"name": self.name}

    def extra_repr(self) -> str:
        return self.name
