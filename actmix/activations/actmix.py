"""ActMix: per-neuron softmax mixture of basis activations.

    alpha[m, h, :] = softmax(logits[m, h, :] / T)
    ActMix(z)[m, b, h] = sum_k alpha[m, h, k] * phi_k(z[m, b, h])

The forward pass never stores the ``[members, batch, width, K]`` stack of basis
outputs: a custom autograd function keeps only ``z`` and ``alpha`` and recomputes
the basis values in backward, so training memory stays close to a ReLU MLP's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from actmix.activations.base import ActivationLayer

__all__ = ["BASIS_FUNCTIONS", "DEFAULT_BASIS", "ActMix", "actmix_function"]

BASIS_FUNCTIONS: tuple[str, ...] = ("sin", "tanh", "relu", "identity", "sigmoid", "silu")
DEFAULT_BASIS: tuple[str, ...] = ("sin", "tanh", "relu", "identity")


def _basis_value(name: str, z: torch.Tensor, omega: float) -> torch.Tensor:
    if name == "sin":
        return torch.sin(z * omega)
    if name == "tanh":
        return torch.tanh(z)
    if name == "relu":
        return torch.relu(z)
    if name == "identity":
        return z
    if name == "sigmoid":
        return torch.sigmoid(z)
    return F.silu(z)


def _basis_value_and_slope(
    name: str, z: torch.Tensor, omega: float
) -> tuple[torch.Tensor, torch.Tensor | float]:
    """``phi(z)`` and ``phi'(z)``; the slope is a plain float where it is constant."""
    if name == "sin":
        scaled = z * omega
        return torch.sin(scaled), torch.cos(scaled).mul_(omega)
    if name == "tanh":
        value = torch.tanh(z)
        return value, 1.0 - value * value
    if name == "relu":
        return torch.relu(z), (z > 0).to(z.dtype)
    if name == "identity":
        return z, 1.0
    sigmoid = torch.sigmoid(z)
    if name == "sigmoid":
        return sigmoid, sigmoid * (1.0 - sigmoid)
    # silu(z) = z * s(z); silu'(z) = s(z) * (1 + z * (1 - s(z)))
    return z * sigmoid, sigmoid * (1.0 + z * (1.0 - sigmoid))


class _ActMixFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, alpha, omega, basis):
        # z: [M, B, H]; alpha: [M, H, K]
        ctx.save_for_backward(z, alpha)
        ctx.omega, ctx.basis = omega, basis
        out = None
        for k, name in enumerate(basis):
            weight = alpha[:, None, :, k]
            value = _basis_value(name, z, omega)
            out = value * weight if out is None else out.addcmul_(value, weight)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        z, alpha = ctx.saved_tensors
        need_z, need_alpha = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        slope_sum = torch.zeros_like(z) if need_z else None
        grad_alpha = torch.empty_like(alpha) if need_alpha else None
        for k, name in enumerate(ctx.basis):
            weight = alpha[:, None, :, k]
            value, slope = _basis_value_and_slope(name, z, ctx.omega)
            if need_alpha:
                grad_alpha[:, :, k] = (grad_out * value).sum(dim=1)
            if need_z:
                if isinstance(slope, float):
                    slope_sum.add_(weight * slope)
                else:
                    slope_sum.addcmul_(slope, weight)
        grad_z = slope_sum.mul_(grad_out) if need_z else None
        return grad_z, grad_alpha, None, None


def actmix_function(
    z: torch.Tensor,
    alpha: torch.Tensor,
    *,
    omega: float = 1.0,
    basis: Sequence[str] = DEFAULT_BASIS,
) -> torch.Tensor:
    """Mix basis activations of ``z [M, B, H]`` with weights ``alpha [M, H, K]``."""
    return _ActMixFunction.apply(z, alpha, float(omega), tuple(basis))


def _check_basis(basis: Sequence[str]) -> tuple[str, ...]:
    if isinstance(basis, str):
        basis = [part.strip() for part in basis.split(",")]
    basis = tuple(basis)
    if not basis:
        raise ValueError(f"basis must name at least one of {', '.join(BASIS_FUNCTIONS)}")
    unknown = [name for name in basis if name not in BASIS_FUNCTIONS]
    if unknown:
        raise ValueError(
            f"unknown basis function {unknown[0]!r}; valid: {', '.join(BASIS_FUNCTIONS)}"
        )
    if len(set(basis)) != len(basis):
        raise ValueError(f"basis lists a function twice: {list(basis)}")
    return basis


class ActMix(ActivationLayer):
    """Per-neuron mixture of basis activations with a temperature-scaled softmax.

    Parameters: ``relu_bias`` is the initial logit of the relu column (others 0),
    ``omega_0`` the frequency of the sine basis, ``temperature`` the initial
    softmax temperature (the trainer updates it each epoch).
    """

    def __init__(
        self,
        width: int,
        members: int = 1,
        *,
        basis: Sequence[str] = DEFAULT_BASIS,
        relu_bias: float = 0.0,
        omega_0: float = 1.0,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        self.basis = _check_basis(basis)
        if omega_0 <= 0:
            raise ValueError(f"omega_0 must be > 0, got {omega_0}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.omega_0 = float(omega_0)
        self.relu_bias = float(relu_bias)
        logits = torch.zeros(members, width, len(self.basis))
        if "relu" in self.basis:
            logits[:, :, self.basis.index("relu")] = self.relu_bias
        self.logits = nn.Parameter(logits)
        # per member, so restoring a member's best epoch restores its temperature too
        self.register_buffer("temperature", torch.full((members, 1, 1), float(temperature)))

    def set_temperature(self, temperature: float) -> None:
        self.temperature.fill_(temperature)

    def mixing_weights(self) -> torch.Tensor:
        """Mixing coefficients ``alpha: [members, width, K]`` at the current temperature."""
        return torch.softmax(self.logits / self.temperature, dim=-1)

    def entropy(self) -> torch.Tensor:
        """Mean over neurons of ``-sum_k alpha log alpha``: ``[members]``."""
        log_alpha = torch.log_softmax(self.logits / self.temperature, dim=-1)
        return -(log_alpha.exp() * log_alpha).sum(dim=-1).mean(dim=-1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return actmix_function(z, self.mixing_weights(), omega=self.omega_0, basis=self.basis)

    def describe(self) -> dict[str, object]:
        return {
            "name": "actmix",
            "basis": list(self.basis),
            "omega_0": self.omega_0,
            "relu_bias": self.relu_bias,
            "temperature": self.temperature.flatten().tolist(),
        }

    def extra_repr(self) -> str:
        return f"basis={list(self.basis)}, omega_0={self.omega_0}"
