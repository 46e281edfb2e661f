"""DiTAC (Chelly et al., ECCV 2024): a GELU-like activation warped by a learned CPAB diffeomorphism.

    u = (x - a) / (b - a)
    x~ = a + (b - a) * T_theta(u)   for x in [a, b],   x~ = x outside
    DiTAC(x) = x~ * Phi(x)          (Phi: standard normal CDF)

``T_theta`` (see ``cpab.py``) fixes 0 and 1, so ``x~`` is continuous at ``a`` and
``b`` and strictly increasing; with ``theta = 0`` DiTAC is exactly GELU.

Speed: ``T_theta`` is evaluated once per forward pass on ``grid_size`` evenly
spaced points (float64) and the inputs are interpolated linearly between them,
so the cost of the closed-form integration does not grow with the batch.
Gradients reach both the inputs and the grid values (a lookup function with a
hand-written backward, ``gradcheck``-tested), and from the grid values
``theta``. The interpolation error shrinks as ``1 / grid_size^2``; it is largest
next to the zeros of the velocity field, where ``T_theta`` bends most.
``grid_size=None`` integrates at every input instead (exact, slower).
``Phi`` uses the erf form, as ``torch.nn.functional.gelu`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from actmix.activations.base import ActivationLayer, member_values
from actmix.activations.cpab import cpab_transform, smoothness_covariance

__all__ = ["DiTAC"]

_INVERSE_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_HALF = math.sqrt(0.5)


class DiTAC(ActivationLayer):
    """DiTAC x~(x)·Phi(x), x~ a learned CPAB diffeomorphism of [a, b] (Chelly et al., ECCV 2024).

    ``z: [members, batch, width]``. ``theta`` (velocities at the ``n_cells - 1``
    interior vertices) has shape ``[members, 1, n_cells - 1]``: one transform per
    layer and member, as in the paper; ``per_neuron=True`` gives every neuron its
    own, ``[members, width, n_cells - 1]``, at a price: one lookup grid per neuron
    (a CPU step of a 256-wide net gets ~15x slower with ``grid_size=256``, ~100x
    with the default 2048).

    ``init_scale > 0`` draws the initial ``theta`` from the smoothness prior
    ``N(0, init_scale^2 K)`` with ``torch.Generator().manual_seed(seed)``, the same
    draw for every member; the default 0 starts at the identity (GELU).
    ``prior_weight > 0`` adds ``prior_weight * theta^T K^-1 theta`` (mean over
    transforms) to the loss through ``regularization()``; ``K`` is the
    squared-exponential covariance with ``prior_length_scale`` (in units of the
    interval's length) over the interior vertices. ``init_scale``, ``prior_weight``
    and ``prior_length_scale`` may be one value per member: each member then starts
    and is regularised as it would be alone.
    """

    # buffers registered in __init__ (``grid`` only with a grid_size)
    prior_precision: torch.Tensor  # [k, k], or [members, k, k] with per-member length scales
    grid: torch.Tensor
    per_member_options = frozenset({"init_scale", "prior_weight", "prior_length_scale"})

    def __init__(
        self,
        width: int,
        members: int = 1,
        *,
        interval: Sequence[float] = (-3.0, 3.0),
        n_cells: int = 10,
        per_neuron: bool = False,
        grid_size: int | None = 2048,
        init_scale: float | Sequence[float] = 0.0,
        seed: int = 0,
        prior_length_scale: float | Sequence[float] = 0.1,
        prior_weight: float | Sequence[float] = 0.0,
    ) -> None:
        super().__init__()
        lower, upper = _check_interval(interval)
        n_cells = _check_count("n_cells", n_cells)
        if grid_size is not None:
            grid_size = _check_count("grid_size", grid_size)
        scales = member_values(init_scale, members, "init_scale")
        weights = member_values(prior_weight, members, "prior_weight")
        lengths = member_values(prior_length_scale, members, "prior_length_scale")
        for name, values, given in (
            ("init_scale", scales, init_scale),
            ("prior_weight", weights, prior_weight),
        ):
            if not all(math.isfinite(value) and value >= 0 for value in values):
                raise ValueError(f"{name} must be a finite number >= 0, got {given!r}")
        if not all(math.isfinite(value) and value > 0 for value in lengths):
            raise ValueError(f"prior_length_scale must be > 0, got {prior_length_scale!r}")
        self.interval = (lower, upper)
        self.n_cells = n_cells
        self.per_neuron = bool(per_neuron)
        self.grid_size = grid_size
        # a float when shared; else a tensor [members] that weighs each member's prior
        self.prior_weight: float | torch.Tensor = (
            weights[0] if len(set(weights)) == 1 else torch.tensor(weights)
        )
        self._any_prior = any(weight > 0 for weight in weights)
        transforms = width if per_neuron else 1
        start = {
            (scale, length): _initial_theta(transforms, n_cells, scale, length, seed)
            for scale, length in set(zip(scales, lengths, strict=True))
        }
        self.theta = nn.Parameter(
            torch.stack([start[pair] for pair in zip(scales, lengths, strict=True)]).float()
        )
        # derived constants, rebuilt from the options: kept out of the state dict
        precisions = {
            length: torch.linalg.inv(smoothness_covariance(n_cells, length)) for length in lengths
        }
        precision = (
            precisions[lengths[0]]
            if len(precisions) == 1
            else torch.stack([precisions[length] for length in lengths])
        )
        self.register_buffer("prior_precision", precision, persistent=False)
        if grid_size is not None:
            knots = torch.linspace(0.0, 1.0, grid_size, dtype=torch.float64)
            self.register_buffer("grid", knots, persistent=False)

    def warp(self, u: torch.Tensor) -> torch.Tensor:
        """``T_theta(u)`` of each transform, ``[members, transforms, P]``, in float64.

        ``u: [P]`` (every transform) or ``[members, transforms, P]``.
        """
        return cpab_transform(u.double(), self.theta.double())

    def forward(
        self, z: torch.Tensor, *, tables: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``tables``: this layer's lookup tables from :meth:`prepare_jointly`, if given."""
        lower, upper = self.interval
        if self.grid_size is None:
            length = upper - lower
            warped = lower + length * self._warp_exact(((z - lower) / length).clamp(0, 1))
            inside = (z >= lower) & (z <= upper)
            return torch.where(inside, warped.to(z.dtype), z) * torch.special.ndtr(z)
        values, slopes = tables if tables is not None else self._lookup_tables(z.dtype)
        members, transforms = self.theta.shape[:2]
        row_offset = None  # first entry of each (member, neuron)'s row in the flat tables
        if members * transforms > 1:
            row = torch.arange(members, device=z.device).view(-1, 1, 1) * transforms
            if self.per_neuron:
                row = row + torch.arange(transforms, device=z.device)
            row_offset = row * (self.grid_size + 1)
        last = self.grid_size - 1
        return _WarpedGELU.apply(z, values, slopes, row_offset, lower, last / (upper - lower), last)

    @classmethod
    def prepare_jointly(
        cls, layers: Sequence[ActivationLayer], dtype: torch.dtype
    ) -> list[dict[str, object]]:
        """The lookup tables of all ``layers`` that share a grid, from one CPAB integration.

        Integrating on the grid is a few dozen small operations whatever the grid's
        size; doing it once for every layer of a network instead of once per layer
        saves most of DiTAC's per-step overhead. Results equal the per-layer ones.
        """
        prepared: list[dict[str, object]] = [{} for _ in layers]
        groups: dict[tuple, list[int]] = {}
        ditacs: dict[int, DiTAC] = {}
        for index, layer in enumerate(layers):
            if isinstance(layer, DiTAC) and layer.grid_size is not None:
                ditacs[index] = layer
                theta = layer.theta
                key = (layer.interval, layer.grid_size, tuple(theta.shape), theta.device)
                groups.setdefault(key, []).append(index)
        for indices in groups.values():
            first = ditacs[indices[0]]
            thetas = torch.stack([ditacs[i].theta for i in indices]).double()
            warped = cpab_transform(first.grid, thetas)  # [layers, members, transforms, G]
            for index, layer_warp in zip(indices, warped.unbind(0), strict=True):
                prepared[index] = {"tables": ditacs[index]._tables_from_warp(layer_warp, dtype)}
        return prepared

    def _lookup_tables(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return self._tables_from_warp(self.warp(self.grid), dtype)

    def _tables_from_warp(
        self, warped: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat tables of ``x~ - x`` and its increment per grid interval, ``[rows * (G + 1)]``.

        ``warped`` is ``T_theta`` on the grid, ``[members, transforms, G]``. Row ``r``
        (member, or member and neuron) holds ``G + 1`` entries: one for inputs below
        ``a``, one per grid interval, one for inputs at or above ``b``; the outer two
        are zero, and so is ``x~ - x`` at ``a`` and ``b``, which makes the lookup the
        identity outside [a, b] without a mask.
        """
        lower, upper = self.interval
        shift = ((upper - lower) * (warped - self.grid)).to(dtype)
        # a zero in front is the entry below a; the entry at b is shift[-1], exactly 0 (T(1) = 1)
        values = F.pad(shift, (1, 0))
        slopes = F.pad(shift.diff(dim=-1), (1, 1))
        return values.reshape(-1), slopes.reshape(-1)

    def _warp_exact(self, u: torch.Tensor) -> torch.Tensor:
        members, batch, width = u.shape
        if self.per_neuron:
            return self.warp(u.transpose(1, 2)).transpose(1, 2)
        return self.warp(u.reshape(members, 1, batch * width)).view(members, batch, width)

    def regularization(self) -> torch.Tensor | None:
        """``prior_weight * theta^T K^-1 theta`` (mean over transforms) ``[members]``, or None."""
        if not self._any_prior:
            return None
        theta = self.theta
        precision = self.prior_precision.to(theta.dtype)
        if precision.dim() == 2:
            quadratic = torch.einsum("mtk,kl,mtl->mt", theta, precision, theta)
        else:
            quadratic = torch.einsum("mtk,mkl,mtl->mt", theta, precision, theta)
        weight = self.prior_weight
        if isinstance(weight, torch.Tensor):
            weight = weight.to(theta.device, theta.dtype)
        return weight * quadratic.mean(dim=1)

    def describe(self) -> dict[str, object]:
        return {
            "name": "ditac",
            "interval": list(self.interval),
            "n_cells": self.n_cells,
            "per_neuron": self.per_neuron,
            "max_abs_theta": float(self.theta.detach().abs().max()),
        }

    def extra_repr(self) -> str:
        a, b = self.interval
        return f"interval=({a}, {b}), n_cells={self.n_cells}, per_neuron={self.per_neuron}"


def _initial_theta(
    transforms: int, n_cells: int, scale: float, length: float, seed: int
) -> torch.Tensor:
    """A member's initial velocities ``[transforms, n_cells - 1]`` (float64): zero, or the
    draw of ``seed`` from the smoothness prior scaled by ``scale``."""
    if scale == 0:
        return torch.zeros(transforms, n_cells - 1, dtype=torch.float64)
    covariance = smoothness_covariance(n_cells, length)
    generator = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(transforms, n_cells - 1, generator=generator, dtype=torch.float64)
    return scale * noise @ torch.linalg.cholesky(covariance).T


class _WarpedGELU(torch.autograd.Function):
    """``(z + shift(z)) * Phi(z)`` with ``shift`` interpolated from ``DiTAC._lookup_tables``.

    ``row_offset: [members, 1, width or 1]`` (None for a single row) is where each
    member's (and neuron's) row starts in the flat tables; ``scale`` maps
    ``z - lower`` to grid units and ``last`` is ``grid_size - 1``. One function, so
    that forward and backward each take a handful of passes over ``z`` instead of
    some twenty through autograd.
    """

    @staticmethod
    def forward(ctx, z, values, slopes, row_offset, lower, scale, last):
        # position in the row, one past the grid's: entry 0 is "below a", entry last + 1 "at b"
        position = torch.add(z.new_tensor(1 - lower * scale), z, alpha=scale).clamp_(0, last + 1)
        left = position.floor()
        fraction = position.sub_(left)
        if row_offset is not None:
            if values.numel() <= 1 / torch.finfo(z.dtype).eps:
                left.add_(row_offset.to(z.dtype))  # integers are still exact in z's dtype
            else:
                left = left.long().add_(row_offset)
        index = left.long().reshape(-1)
        slope = slopes.index_select(0, index).view(z.shape)
        warped = values.index_select(0, index).view(z.shape).addcmul_(fraction, slope).add_(z)
        cdf = torch.erf(z * _SQRT_HALF).add_(1).mul_(0.5)  # faster than special.ndtr on CPU
        ctx.save_for_backward(z, index, fraction, slope, warped, cdf)
        ctx.scale, ctx.table_size = scale, values.numel()
        return warped * cdf

    @staticmethod
    def backward(ctx, grad):
        z, index, fraction, slope, warped, cdf = ctx.saved_tensors
        grad_cdf = grad * cdf
        grad_z = grad_values = grad_slopes = None
        if ctx.needs_input_grad[0]:
            # d/dz [x~ Phi] = x~' Phi + x~ phi, with x~' = 1 + slope * scale (0 outside)
            grad_z = torch.addcmul(grad_cdf, grad_cdf, slope, value=ctx.scale)
            density = torch.mul(z, z).mul_(-0.5).exp_().mul_(warped)
            grad_z.addcmul_(density, grad, value=_INVERSE_SQRT_2PI)
        if ctx.needs_input_grad[1]:
            grad_values = grad_cdf.new_zeros(ctx.table_size)
            grad_values.scatter_add_(0, index, grad_cdf.reshape(-1))
        if ctx.needs_input_grad[2]:
            grad_slopes = grad_cdf.new_zeros(ctx.table_size)
            grad_slopes.scatter_add_(0, index, (grad_cdf * fraction).reshape(-1))
        return grad_z, grad_values, grad_slopes, None, None, None, None


def _check_count(name: str, value: object) -> int:
    """An integer >= 2 (an integral float from a config file is fine)."""
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number != int(number) or number < 2:
        raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    return int(number)


def _check_interval(interval: Sequence[float]) -> tuple[float, float]:
    try:
        lower, upper = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise ValueError(f"interval must be a pair (a, b) of numbers, got {interval!r}") from None
    if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
        raise ValueError(f"interval must be finite with a < b, got {interval!r}")
    return lower, upper
