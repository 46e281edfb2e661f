"""ActMix: per-neuron softmax mixture of basis activations.

    alpha[m, h, :] = softmax(logits[m, h, :] / T)
    ActMix(z)[m, b, h] = sum_k alpha[m, h, k] * phi_k(z[m, b, h])

The forward pass never stores the ``[members, batch, width, K]`` stack of basis
outputs: a custom autograd function keeps only ``z`` and ``alpha`` and recomputes
the basis values in backward. In training the network goes further
(``ActMix.linear_after``): ActMix, dropout and the next layer's product are one
autograd node that keeps ``z`` alone and recomputes the mixture in backward, so
training memory equals a ReLU MLP's.

Speed: the element-wise math (forward mixture; backward ``grad_z`` and
``grad_alpha``) is written as plain tensor functions and run through
``torch.compile(..., dynamic=True)`` by ``actmix._kernels``, which fuses each pass
into one kernel instead of ~3 full-size tensor passes per basis function.
Compilation is lazy (first call per basis tuple; inductor keeps compiled code on
disk, so later processes start faster), falls back to the eager functions with
one ``RuntimeWarning`` if it fails, and is turned off by ``ACTMIX_COMPILE=0``
(e.g. for short runs where a compile of several seconds does not pay off).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from actmix._dropout import DropoutMask, masked_scale
from actmix._kernels import COMPILE_ENV, KernelCache, kernel_cache
from actmix.activations.base import ActivationLayer, member_values

__all__ = [
    "BASIS_FUNCTIONS",
    "COMPILE_ENV",
    "DEFAULT_BASIS",
    "ActMix",
    "KernelCache",
    "actmix_function",
    "kernel_cache",
]

BASIS_FUNCTIONS: tuple[str, ...] = ("sin", "tanh", "relu", "identity", "sigmoid", "silu")
DEFAULT_BASIS: tuple[str, ...] = ("sin", "tanh", "relu", "identity")


# --- the math, as plain tensor functions (eager, or compiled per basis tuple) ---------------


def _tanh(z: torch.Tensor) -> torch.Tensor:
    """``tanh(z)``; on CPU as ``2 sigmoid(2z) - 1`` (absolute error <= 2 ulp of 1).

    The CPU's vectorised tanh is slow: the ``exp``-based form is ~2.5x faster compiled
    and ~1.4x eager. On GPUs tanh is cheap and one kernel beats three.
    """
    if z.device.type != "cpu":
        return torch.tanh(z)
    return torch.sigmoid(2.0 * z).mul_(2.0).sub_(1.0)


def _basis_value(name: str, z: torch.Tensor, omega: torch.Tensor | float) -> torch.Tensor:
    if name == "sin":
        return torch.mul(z, omega).sin_()
    if name == "tanh":
        return _tanh(z)
    if name == "relu":
        return torch.relu(z)
    if name == "identity":
        return z
    if name == "sigmoid":
        return torch.sigmoid(z)
    return F.silu(z)


def _basis_value_and_slope(
    name: str, z: torch.Tensor, omega: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor | float]:
    """``phi(z)``, ``phi'(z)`` (each transcendental once); a constant slope is a float."""
    if name == "sin":
        scaled = z * omega
        return torch.sin(scaled), torch.cos(scaled).mul_(omega)
    if name == "tanh":
        value = _tanh(z)
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


def _mix_forward(
    z: torch.Tensor, alpha_t: torch.Tensor, omega: torch.Tensor | float, basis: tuple[str, ...]
) -> torch.Tensor:
    """``sum_k alpha_t[k] * phi_k(z)``; ``z: [M, B, H]``, ``alpha_t: [K, M, 1, H]`` contiguous."""
    out = _basis_value(basis[0], z, omega) * alpha_t[0]
    for k in range(1, len(basis)):
        out.addcmul_(_basis_value(basis[k], z, omega), alpha_t[k])
    return out


def _mix_backward(
    grad_out: torch.Tensor,
    z: torch.Tensor,
    alpha_t: torch.Tensor,
    omega: torch.Tensor | float,
    need_z: bool,
    need_alpha: bool,
    basis: tuple[str, ...],
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``grad_z: [M, B, H]`` and ``grad_alpha_t: [K, M, 1, H]`` (None where not needed)."""
    slope_sum = None  # sum_k alpha_k phi_k'(z) over bases with a varying slope: [M, B, H]
    constant_slope = None  # the same over bases with a constant slope: [M, 1, H]
    grad_alpha = []
    for k, name in enumerate(basis):
        value, slope = _basis_value_and_slope(name, z, omega)
        if need_alpha:
            grad_alpha.append((grad_out * value).sum(dim=1, keepdim=True))
        if not need_z:
            continue
        if isinstance(slope, float):
            term = alpha_t[k] * slope
            constant_slope = term if constant_slope is None else constant_slope + term
        elif slope_sum is None:
            slope_sum = slope * alpha_t[k]
        else:
            slope_sum.addcmul_(slope, alpha_t[k])
    grad_z = None
    if need_z:
        if slope_sum is None:
            if constant_slope is None:
                raise RuntimeError("internal error: a basis without a slope")
            grad_z = grad_out * constant_slope
        else:
            if constant_slope is not None:
                slope_sum.add_(constant_slope)
            grad_z = slope_sum.mul_(grad_out)
    return grad_z, torch.stack(grad_alpha) if need_alpha else None


def _mix_dropped(
    z: torch.Tensor,
    alpha_t: torch.Tensor,
    omega: torch.Tensor,
    keys: torch.Tensor,
    threshold: torch.Tensor,
    scale: torch.Tensor,
    basis: tuple[str, ...],
) -> torch.Tensor:
    """The mixture with dropout applied (see ``actmix._dropout``)."""
    return masked_scale(_mix_forward(z, alpha_t, omega, basis), keys, threshold, scale)


def _mix_backward_recomputing(
    grad_mixed: torch.Tensor,
    z: torch.Tensor,
    alpha_t: torch.Tensor,
    omega: torch.Tensor,
    basis: tuple[str, ...],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """``grad_z``, ``grad_alpha`` and the mixture itself, from the same basis values."""
    grad_z, grad_alpha = _mix_backward(grad_mixed, z, alpha_t, omega, True, True, basis)
    return grad_z, grad_alpha, _mix_forward(z, alpha_t, omega, basis)


def _mix_backward_recomputing_dropped(
    grad_dropped: torch.Tensor,
    z: torch.Tensor,
    alpha_t: torch.Tensor,
    omega: torch.Tensor,
    keys: torch.Tensor,
    threshold: torch.Tensor,
    scale: torch.Tensor,
    basis: tuple[str, ...],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """As ``_mix_backward_recomputing`` through dropout: the mask is recomputed too."""
    grad_mixed = masked_scale(grad_dropped, keys, threshold, scale)
    grad_z, grad_alpha, mixed = _mix_backward_recomputing(grad_mixed, z, alpha_t, omega, basis)
    return grad_z, grad_alpha, masked_scale(mixed, keys, threshold, scale)


@functools.lru_cache(maxsize=64)
def _omega_tensor(
    omega: float | tuple[float, ...], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``omega`` as a 0-d tensor (one for every member) or ``[M, 1, 1]`` (one each): a
    compiled kernel takes it as a plain input, where a Python float would cost a
    conversion on every call (and a recompile if it were specialised)."""
    if isinstance(omega, tuple):
        return torch.tensor(omega, dtype=dtype, device=device).view(-1, 1, 1)
    return torch.tensor(omega, dtype=dtype, device=device)


def _alpha_layout(alpha: torch.Tensor) -> torch.Tensor:
    """``[M, H, K] -> [K, M, 1, H]``, contiguous: ``alpha_t[k]`` broadcasts over the batch."""
    return alpha.permute(2, 0, 1).unsqueeze(2).contiguous()


def _scaled_logits_t(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """``logits / T`` in the kernels' layout ``[K, M, 1, H]``.

    Softmaxes then run over the leading dimension, each step over whole ``[M, 1, H]``
    blocks: over a trailing dimension of 4, torch's CPU softmax is not vectorised
    and costs many times more.
    """
    return _alpha_layout(logits) / temperature.view(1, -1, 1, 1)


class _ActMixFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, alpha_t, omega, basis):
        # z: [M, B, H]; alpha_t: [K, M, 1, H] contiguous
        ctx.save_for_backward(z, alpha_t)
        ctx.omega, ctx.basis = omega, basis
        # detached, so compiled kernels do not guard (and recompile) on requires_grad
        z, alpha_t = z.detach(), alpha_t.detach()
        omega_t = _omega_tensor(omega, z.dtype, z.device)
        return kernel_cache.run(_mix_forward, basis, z, alpha_t, omega_t, basis)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        z, alpha_t = (t.detach() for t in ctx.saved_tensors)
        # the gradient of ``out.sum()``, say, arrives expanded (stride 0)
        grad_out = grad_out.detach().contiguous()
        need_z, need_alpha = ctx.needs_input_grad[:2]
        grad_z, grad_alpha_t = kernel_cache.run(
            _mix_backward,
            ctx.basis,
            grad_out,
            z,
            alpha_t,
            _omega_tensor(ctx.omega, z.dtype, z.device),
            need_z,
            need_alpha,
            ctx.basis,
        )
        return grad_z, grad_alpha_t, None, None


class _MixLinearFunction(torch.autograd.Function):
    """``baddbmm(bias, dropout(ActMix(z)), weight)`` as one node that keeps ``z``, not the
    mixture: backward recomputes the mixture in the kernel that computes ``grad_z``
    (which evaluates every basis function anyway) and takes the weight gradient from it."""

    @staticmethod
    def forward(ctx, z, alpha_t, weight, bias, omega, basis, keys, threshold, scale):
        ctx.save_for_backward(z, alpha_t, weight, keys, threshold, scale)
        ctx.omega, ctx.basis = omega, basis
        z, alpha_t = z.detach(), alpha_t.detach()
        omega_t = _omega_tensor(omega, z.dtype, z.device)
        if keys is None:
            mixed = kernel_cache.run(_mix_forward, basis, z, alpha_t, omega_t, basis)
        else:
            mixed = kernel_cache.run(
                _mix_dropped, basis, z, alpha_t, omega_t, keys, threshold, scale, basis
            )
        return torch.baddbmm(bias.detach(), mixed, weight.detach())

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        z, alpha_t, weight, keys, threshold, scale = ctx.saved_tensors
        alpha_t = alpha_t.detach()
        omega_t = _omega_tensor(ctx.omega, z.dtype, z.device)
        grad_mixed = torch.bmm(grad_out, weight.detach().transpose(1, 2))
        if keys is None:
            grad_z, grad_alpha, mixed = kernel_cache.run(
                _mix_backward_recomputing,
                ctx.basis,
                grad_mixed,
                z.detach(),
                alpha_t,
                omega_t,
                ctx.basis,
            )
        else:
            grad_z, grad_alpha, mixed = kernel_cache.run(
                _mix_backward_recomputing_dropped,
                ctx.basis,
                grad_mixed,
                z.detach(),
                alpha_t,
                omega_t,
                keys,
                threshold,
                scale,
                ctx.basis,
            )
        grad_weight = torch.bmm(mixed.transpose(1, 2), grad_out)
        grad_bias = grad_out.sum(dim=1, keepdim=True)
        return grad_z, grad_alpha, grad_weight, grad_bias, None, None, None, None, None


def actmix_function(
    z: torch.Tensor,
    alpha: torch.Tensor,
    *,
    omega: float = 1.0,
    basis: Sequence[str] = DEFAULT_BASIS,
) -> torch.Tensor:
    """Mix basis activations of ``z [M, B, H]`` with weights ``alpha [M, H, K]``."""
    basis = _check_basis(basis)
    if alpha.shape[-1] != len(basis):
        raise ValueError(
            f"alpha has {alpha.shape[-1]} mixing weights per neuron for {len(basis)} bases"
        )
    return _ActMixFunction.apply(z, _alpha_layout(alpha), float(omega), basis)


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
    softmax temperature (the trainer updates it each epoch). ``relu_bias`` and
    ``omega_0`` may be one value per member: members with other values then train side
    by side as each would alone.
    """

    temperature: torch.Tensor  # buffer [members, 1, 1]
    fuses_linear = True
    per_member_options = frozenset({"relu_bias", "omega_0"})

    def __init__(
        self,
        width: int,
        members: int = 1,
        *,
        basis: Sequence[str] = DEFAULT_BASIS,
        relu_bias: float | Sequence[float] = 0.0,
        omega_0: float | Sequence[float] = 1.0,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        self.basis = _check_basis(basis)
        omegas = member_values(omega_0, members, "omega_0")
        biases = member_values(relu_bias, members, "relu_bias")
        if min(omegas) <= 0:
            raise ValueError(f"omega_0 must be > 0, got {omega_0}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        # a float when every member shares it: the kernels then see the 0-d omega as before
        self.omega_0: float | tuple[float, ...] = omegas[0] if len(set(omegas)) == 1 else omegas
        self.relu_bias: float | tuple[float, ...] = biases[0] if len(set(biases)) == 1 else biases
        logits = torch.zeros(members, width, len(self.basis))
        if "relu" in self.basis:
            logits[:, :, self.basis.index("relu")] = torch.tensor(biases)[:, None]
        self.logits = nn.Parameter(logits)
        # per member, so restoring a member's best epoch restores its temperature too
        self.register_buffer("temperature", torch.full((members, 1, 1), float(temperature)))

    def set_temperature(self, temperature: float | torch.Tensor) -> None:
        """One temperature for every member, or ``[members]``, one each."""
        if isinstance(temperature, torch.Tensor):
            self.temperature.copy_(temperature.view(-1, 1, 1))
        else:
            self.temperature.fill_(temperature)

    def _mixing_weights_t(self) -> torch.Tensor:
        """``alpha`` in the kernels' layout ``[K, M, 1, H]``."""
        return torch.softmax(_scaled_logits_t(self.logits, self.temperature), dim=0)

    def mixing_weights(self) -> torch.Tensor:
        """Mixing coefficients ``alpha: [members, width, K]`` at the current temperature."""
        return self._mixing_weights_t().squeeze(2).permute(1, 2, 0)

    def entropy(self) -> torch.Tensor:
        """Mean over neurons of ``-sum_k alpha log alpha``: ``[members]``."""
        log_alpha = torch.log_softmax(_scaled_logits_t(self.logits, self.temperature), dim=0)
        return -(log_alpha.exp() * log_alpha).sum(dim=0).mean(dim=(-2, -1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # the basis was checked at construction; skip actmix_function's checks
        return _ActMixFunction.apply(z, self._mixing_weights_t(), self.omega_0, self.basis)

    def linear_after(
        self,
        z: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        mask: DropoutMask | None,
    ) -> torch.Tensor:
        keys, threshold, scale = (None, None, None) if mask is None else mask
        return _MixLinearFunction.apply(
            z,
            self._mixing_weights_t(),
            weight,
            bias,
            self.omega_0,
            self.basis,
            keys,
            threshold,
            scale,
        )

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
