"""Fixed activations and PReLU with a per-member, per-neuron slope."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from actmix.activations.base import ActivationLayer, FixedActivation

__all__ = ["FIXED_FUNCTIONS", "PReLU", "make_fixed"]

FIXED_FUNCTIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "leaky_relu": F.leaky_relu,  # negative slope 0.01, as torch's default
    "elu": F.elu,
    "silu": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": lambda z: z,
}


def make_fixed(name: str):
    """Constructor for the registry: ``(width, members) -> FixedActivation``."""

    def build(width: int, members: int = 1) -> FixedActivation:  # noqa: ARG001 - uniform signature
        return FixedActivation(name, FIXED_FUNCTIONS[name])

    build.__doc__ = f"{name} (no parameters)"
    return build


class PReLU(ActivationLayer):
    """``max(0, z) + a * min(0, z)`` with one learnable slope ``a`` per neuron and member."""

    def __init__(self, width: int, members: int = 1, *, init: float = 0.25) -> None:
        super().__init__()
        self.slope = nn.Parameter(torch.full((members, 1, width), float(init)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.where(z >= 0, z, self.slope * z)

    def describe(self) -> dict[str, object]:
        return {"name": "prelu", "mean_slope": float(self.slope.detach().mean())}
