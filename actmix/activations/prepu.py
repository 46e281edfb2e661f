"""PRePU: parametric rectified power unit ``relu(z) ** (1 + softsign(s))``, ``s`` per neuron.

The power ``p = 1 + softsign(s)`` lies in (0, 2). For ``p < 1`` the true slope
``p z^(p-1)`` is unbounded at 0+, so below ``z = EPSILON`` the unit continues
linearly to 0 (``z * EPSILON^(p-1)``, equal to ``z^p`` at ``EPSILON``): the
function stays continuous and its slope is at most ``1 / EPSILON``. With
``s = 0`` (the default start) ``p = 1`` and the unit is exactly ReLU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from actmix.activations.base import ActivationLayer, member_full, member_values

__all__ = ["EPSILON", "PRePU", "rectified_power"]

EPSILON = 1e-6


def rectified_power(z: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    """``relu(z) ** power`` with the linear piece on (0, EPSILON]; finite gradients everywhere.

    Written as ``relu(z) * exp((power - 1) * log(max(z, EPSILON)))``: one expression
    for all three pieces (0, linear, power), whose logarithm never sees 0, and
    exactly ``relu(z)`` when ``power == 1``.
    """
    return F.relu(z) * torch.exp((power - 1) * torch.log(z.clamp_min(EPSILON)))


class PRePU(ActivationLayer):
    """Parametric rectified power unit relu(z)^(1 + softsign(s)), learnable s per neuron.

    ``z: [members, batch, width]``; ``s: [members, 1, width]`` starts at
    ``scale_init`` (0: exactly ReLU).
    """

    per_member_options = frozenset({"scale_init"})

    def __init__(
        self, width: int, members: int = 1, *, scale_init: float | Sequence[float] = 0.0
    ) -> None:
        super().__init__()
        scales = member_values(scale_init, members, "scale_init")
        if not all(math.isfinite(scale) for scale in scales):
            raise ValueError(f"scale_init must be finite, got {scale_init}")
        self.scale = nn.Parameter(member_full(scales, (1, width)))

    @property
    def power(self) -> torch.Tensor:
        """The exponent ``1 + softsign(s)`` in (0, 2), ``[members, 1, width]``."""
        return 1 + F.softsign(self.scale)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return rectified_power(z, self.power)

    def describe(self) -> dict[str, object]:
        power = self.power.detach()
        return {
            "name": "prepu",
            "mean_power": float(power.mean()),
            "min_power": float(power.min()),
            "max_power": float(power.max()),
        }
