"""APA and AGLU (Alexandridis et al., ECCV 2024), with learnable λ, κ per neuron and member.

    APA(z; λ, κ) = (λ exp(-κ z) + 1) ** (-1 / λ) = exp(logsigmoid(κ z - ln λ) / λ)
    AGLU(z; λ, κ) = z * APA(z; λ, κ)

The log-sigmoid form never raises a large number to a power, so it stays finite
for any ``z``; gradients come from autograd. λ = κ = 1 gives the sigmoid (AGLU:
SiLU); λ -> 0 gives the Gumbel CDF ``exp(-exp(-κ z))``.

λ stays positive through the reparametrisation ``λ = 1e-4 + softplus(lambda_raw)``,
``lambda_raw`` being the trained parameter: unlike a clamp at 1e-4, this never
leaves λ stuck where its gradient is zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from actmix.activations.base import ActivationLayer, member_full, member_values

__all__ = ["AGLU", "APA", "LAMBDA_MIN", "apa"]

LAMBDA_MIN = 1e-4


def apa(z: torch.Tensor, lam: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """``(λ exp(-κ z) + 1) ** (-1 / λ)`` in log-sigmoid form; ``lam`` must be positive."""
    return torch.exp(F.logsigmoid(kappa * z - torch.log(lam)) / lam)


def _inverse_softplus(value: float) -> float:
    """``raw`` with ``softplus(raw) = value > 0``, stable for small and large values."""
    return value + math.log(-math.expm1(-value))


class APA(ActivationLayer):
    """Adaptive Parametric Activation (λ e^(-κz) + 1)^(-1/λ), learnable λ, κ (Alexandridis 2024).

    ``z: [members, batch, width]``. λ and κ have shape ``[members, 1, width]``,
    or ``[members, 1, 1]`` with ``per_layer=True`` (one pair per layer and member).
    """

    gated = False  # AGLU multiplies by z

    per_member_options = frozenset({"lambda_init", "kappa_init"})

    def __init__(
        self,
        width: int,
        members: int = 1,
        *,
        lambda_init: float | Sequence[float] = 1.0,
        kappa_init: float | Sequence[float] = 1.0,
        per_layer: bool = False,
    ) -> None:
        super().__init__()
        lambdas = member_values(lambda_init, members, "lambda_init")
        kappas = member_values(kappa_init, members, "kappa_init")
        if not all(math.isfinite(value) and value > LAMBDA_MIN for value in lambdas):
            raise ValueError(
                f"lambda_init must be a finite number > {LAMBDA_MIN}, got {lambda_init}"
            )
        if not all(math.isfinite(value) for value in kappas):
            raise ValueError(f"kappa_init must be finite, got {kappa_init}")
        shape = (1, 1 if per_layer else width)
        self.per_layer = bool(per_layer)
        raw = [_inverse_softplus(value - LAMBDA_MIN) for value in lambdas]
        self.lambda_raw = nn.Parameter(member_full(raw, shape))
        self.kappa = nn.Parameter(member_full(kappas, shape))

    @property
    def lam(self) -> torch.Tensor:
        """λ ``[members, 1, width or 1]``, always above ``LAMBDA_MIN``."""
        return LAMBDA_MIN + F.softplus(self.lambda_raw)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        value = apa(z, self.lam, self.kappa)
        return z * value if self.gated else value

    def describe(self) -> dict[str, object]:
        lam = self.lam.detach()
        return {
            "name": "aglu" if self.gated else "apa",
            "per_layer": self.per_layer,
            "mean_lambda": float(lam.mean()),
            "mean_kappa": float(self.kappa.detach().mean()),
        }


class AGLU(APA):
    """Adaptive Generalised Linear Unit z·APA(z; λ, κ), learnable λ, κ (Alexandridis 2024).

    λ = κ = 1 gives SiLU. Shapes and options as ``APA``.
    """

    gated = True
