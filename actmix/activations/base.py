"""The small protocol every activation layer follows.

Activation layers act on ``[members, batch, width]`` tensors and keep any
trainable parameter with a leading member dimension, so that all folds and seeds
of one configuration train as one batched network.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ActivationLayer", "FixedActivation"]


class ActivationLayer(nn.Module):
    """Base class with no-op defaults; trainable activations override what applies."""

    def set_temperature(self, temperature: float) -> None:  # noqa: ARG002 - protocol default
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
