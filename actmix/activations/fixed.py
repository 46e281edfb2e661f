"""Fixed activations and PReLU with a per-member, per-neuron slope."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from actmix.activations.base import ActivationLayer, FixedActivation, member_full, member_values

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

    per_member_options = frozenset({"init"})

    def __init__(
        self, width: int, members: int = 1, *, init: float | Sequence[float] = 0.25
    ) -> None:
        super().__init__()
        slopes = member_values(init, members, "init")
        self.slope = nn.Parameter(member_full(slopes, (1, width)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.where(z >= 0, z, self.slope * z)

    def describe(self) -> dict[str, object]:
        return {"name": "prelu", "mean_slope": float(self.slope.detach().mean())}
