"""CPAB transformations of [0, 1]: flows of continuous piecewise-affine velocity fields.

The velocity field ``v`` is affine on each of ``n_cells`` equal cells, continuous,
and zero at 0 and 1. It is parametrised by ``theta: [..., n_cells - 1]``, its
values at the interior vertices (the hat-function basis of the null space of the
continuity and boundary constraints). ``T(u)`` is the solution at time ``t`` of
``du/dt = v(u)`` from ``u``; it maps [0, 1] onto itself, strictly increasing.

Inside a cell of slope ``a`` the flow is known in closed form. After time ``s``
from ``x``, where the velocity is ``v_x``, the position is ``x + v_x s E(a s)``;
the point at distance ``d`` ahead is reached after ``d / v_x * L(a d / v_x)``,
with ``E(y) = expm1(y) / y`` and ``L(y) = log1p(y) / y`` (both 1 at 0). A
trajectory never changes direction and never crosses a zero of ``v``, so it
crosses at most ``n_cells - 1`` vertices; the crossing times of whole cells are
summed once per field, and the integration is a fixed number of tensor
operations, not a loop over cells.

Those two closed forms are autograd functions with hand-written derivatives
(``gradcheck``-tested): through plain autograd their guards against 0/0 would
record a few dozen extra operations, and on a lookup grid such bookkeeping,
not arithmetic, is the cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cpab_transform", "smoothness_covariance", "vertex_velocities"]

_SERIES_BELOW = 1e-4  # |x| under which the slopes of E and L use their Taylor series
_RATIO_FLOOR = -1 + 1e-12  # r > -1 holds in exact arithmetic for reachable ends
_PRIOR_JITTER = 1e-4  # added to the covariance diagonal so its inverse stays bounded


def vertex_velocities(theta: torch.Tensor) -> torch.Tensor:
    """Velocities at all ``n_cells + 1`` vertices ``[..., n_cells + 1]``, zero at both ends."""
    zero = theta.new_zeros((*theta.shape[:-1], 1))
    return torch.cat([zero, theta, zero], dim=-1)


def _small_and_safe(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask of ``|x| < _SERIES_BELOW`` and ``x`` with those entries set to 1 (no 0/0)."""
    small = x.abs() < _SERIES_BELOW
    return small, torch.where(small, torch.ones_like(x), x)


def _expm1_ratio(x: torch.Tensor) -> torch.Tensor:
    """``E(x) = expm1(x) / x``, 1 at 0 (accurate near 0 too: expm1 is; no autograd here)."""
    return torch.where(x == 0, 1.0, torch.expm1(x) / x)


def _expm1_ratio_slope(x: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """``E'(x) = (exp(x) - E(x)) / x``, 1/2 at 0; ``ratio`` is ``E(x)``."""
    small, safe = _small_and_safe(x)
    series = 1 / 2 + x * (1 / 3 + x * (1 / 8 + x / 30))
    return torch.where(small, series, (torch.exp(x) - ratio) / safe)


def _log1p_ratio(x: torch.Tensor) -> torch.Tensor:
    """``L(x) = log1p(x) / x`` for ``x > -1``, 1 at 0 (accurate near 0: log1p is)."""
    return torch.where(x == 0, 1.0, torch.log1p(x) / x)


def _log1p_ratio_slope(x: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """``L'(x) = (1 / (1 + x) - L(x)) / x``, -1/2 at 0; ``ratio`` is ``L(x)``."""
    small, safe = _small_and_safe(x)
    series = -1 / 2 + x * (2 / 3 - x * (3 / 4 - x * 4 / 5))
    return torch.where(small, series, (torch.reciprocal(1 + x) - ratio) / safe)


class _TravelTime(torch.autograd.Function):
    """Time to cover ``distance`` from a point with ``velocity`` in a cell with ``slope``.

    ``|log1p(r) / slope|`` with ``r = slope * distance / velocity``, written as
    ``|distance / velocity * L(r)|``. Entries that are not ``valid`` (the end
    velocity ``velocity + slope * distance`` has another sign: never reached) and
    times above ``cap`` come out as ``cap``, with zero gradient. The absolute value
    makes a whole cell's crossing time right for either direction of flow
    (the expression is symmetric in the two vertex velocities).

    Derivatives by hand, one expression each: d/d distance = 1 / v_end,
    d/d velocity = -distance / (velocity v_end), d/d slope = (distance / velocity)^2 L'(r).
    """

    @staticmethod
    def forward(ctx, distance, velocity, slope, valid, cap):
        velocity = torch.where(velocity == 0, 1.0, velocity)
        per_velocity = distance / velocity
        ratio = torch.where(valid, (slope * per_velocity).clamp(min=_RATIO_FLOOR), 0.0)
        log_ratio = _log1p_ratio(ratio)
        signed = per_velocity * log_ratio
        time = signed.abs()
        keep = valid & (time < cap)
        ctx.save_for_backward(velocity, per_velocity, ratio, log_ratio, signed.sign() * keep)
        return torch.where(keep, time, cap)

    @staticmethod
    def backward(ctx, grad):
        velocity, per_velocity, ratio, log_ratio, factor = ctx.saved_tensors
        grad = grad * factor
        per_end_velocity = grad / (velocity * (1 + ratio))
        return (
            per_end_velocity,
            -per_end_velocity * per_velocity,
            grad * per_velocity.square() * _log1p_ratio_slope(ratio, log_ratio),
            None,
            None,
        )


class _CellFlow(torch.autograd.Function):
    """Position after ``time`` from ``start`` with ``velocity`` in a cell with ``slope``.

    ``start + velocity * time * E(slope * time)``. Derivatives by hand: 1 for
    ``start``, ``time E`` for ``velocity``, ``velocity time^2 E'`` for ``slope``
    and the end velocity ``velocity exp(slope time)`` for ``time``.
    """

    @staticmethod
    def forward(ctx, start, velocity, slope, time):
        exponent = slope * time
        ratio = _expm1_ratio(exponent)
        ctx.save_for_backward(velocity, time, exponent, ratio)
        return start + velocity * time * ratio

    @staticmethod
    def backward(ctx, grad):
        velocity, time, exponent, ratio = ctx.saved_tensors
        grad_velocity = grad * velocity
        return (
            grad,
            grad * time * ratio,
            grad_velocity * time.square() * _expm1_ratio_slope(exponent, ratio),
            grad_velocity * torch.exp(exponent),
        )


def cpab_transform(u: torch.Tensor, theta: torch.Tensor, *, time: float = 1.0) -> torch.Tensor:
    """``T_theta(u)`` for ``u: [..., P]`` in [0, 1] and ``theta: [..., n_cells - 1]``.

    Leading dimensions broadcast; the result has their broadcast shape and ``P``
    last. Differentiable in ``u`` and ``theta``; ``time >= 0``.

    >>> cpab_transform(torch.tensor([0.0, 0.5, 1.0]), torch.zeros(9))
    tensor([0.0000, 0.5000, 1.0000])
    """
    if theta.dim() < 1 or theta.shape[-1] < 1:
        raise ValueError(f"theta needs n_cells - 1 >= 1 entries, got shape {tuple(theta.shape)}")
    if u.dim() < 1:
        raise ValueError("u needs a last dimension of points, got a scalar")
    if not time >= 0:
        raise ValueError(f"time must be >= 0, got {time}")
    n_cells = theta.shape[-1] + 1
    batch = torch.broadcast_shapes(u.shape[:-1], theta.shape[:-1])
    points = u.shape[-1]
    u = u.expand(*batch, points)
    vertices = vertex_velocities(theta).expand(*batch, n_cells + 1)
    left_velocity, right_velocity = vertices[..., :-1], vertices[..., 1:]
    slopes = (right_velocity - left_velocity) * n_cells
    cells = torch.stack([left_velocity, right_velocity, slopes], dim=-1)  # [..., n_cells, 3]
    cap = 1.0 + abs(time)  # a time above ``time`` means "not reached"; keeps sums finite

    with torch.no_grad():
        cell = (u * n_cells).floor_().clamp_(0, n_cells - 1).long()
    here_left, here_right, slope = _gather_cells(cells, cell)
    velocity = torch.lerp(here_left, here_right, u * n_cells - cell)
    with torch.no_grad():
        moving_right = velocity > 0
        moving = moving_right | (velocity < 0)
        first_vertex = cell + moving_right  # the vertex the trajectory heads for
        reaches_first = torch.where(moving_right, here_right, here_left) * velocity > 0
        # flow crosses a whole cell only if both of its vertex velocities have one sign
        crossable = left_velocity * right_velocity > 0
    first_distance = first_vertex.to(u.dtype) / n_cells - u

    # one call for the crossing times of whole cells and of each point's first stretch;
    # a cell's time is symmetric in its two velocities, which serves both directions
    times = _TravelTime.apply(
        torch.cat([torch.full_like(slopes, 1.0 / n_cells), first_distance], dim=-1),
        torch.cat([left_velocity, velocity], dim=-1),
        torch.cat([slopes, slope], dim=-1),
        torch.cat([crossable, reaches_first], dim=-1),
        cap,
    )
    cell_time, first_time = times.split([n_cells, points], dim=-1)
    # arrival time at vertex m, from the first vertex j: offset + table[m], with rows of
    # cumulative rightward times (m >= j) and minus cumulative leftward ones (m <= j)
    rightward = cell_time.masked_fill(left_velocity <= 0, cap)
    leftward = cell_time.masked_fill(left_velocity >= 0, cap).neg()
    table = F.pad(torch.stack([rightward, leftward], dim=-2).cumsum(-1), (1, 0))
    flat_table = table.flatten(-2)
    with torch.no_grad():
        row_start = torch.where(moving_right, 0, n_cells + 1)
    offset = first_time - flat_table.gather(-1, row_start + first_vertex)

    with torch.no_grad():
        # vertices reached before ``time`` lie ahead of the first one, in order; the
        # cumulative times increase, so counting them is a sorted search
        budget = time - offset
        rightward_table = table[..., 0, :].contiguous()
        leftward_table = table[..., 1, :].neg()
        ahead_right = torch.searchsorted(rightward_table, budget) - first_vertex
        ahead_left = first_vertex + 1 - torch.searchsorted(leftward_table, -budget, right=True)
        crossed = torch.where(moving_right, ahead_right, ahead_left).clamp_(min=0) * moving
        has_crossed = crossed > 0
        step = torch.where(moving_right, 1, -1)
        last_vertex = (first_vertex + (crossed - 1) * step).clamp_(0, n_cells)
        last_cell = (last_vertex - (~moving_right).long()).clamp_(0, n_cells - 1)
    arrival_last = offset + flat_table.gather(-1, row_start + last_vertex)
    last_left, last_right, last_slope = _gather_cells(cells, last_cell)

    # the last stretch, inside one cell: from the last vertex crossed, or from u
    start = torch.where(has_crossed, last_vertex.to(u.dtype) / n_cells, u)
    vertex_velocity = torch.where(moving_right, last_left, last_right)
    start_velocity = torch.where(has_crossed, vertex_velocity, velocity)
    final_slope = torch.where(has_crossed, last_slope, slope)
    remaining = torch.where(has_crossed, time - arrival_last, time)
    return _CellFlow.apply(start, start_velocity, final_slope, remaining)


def _gather_cells(cells: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Left velocity, right velocity and slope of ``cell: [..., P]``, each ``[..., P]``."""
    index = cell.unsqueeze(-1).expand(*cell.shape, cells.shape[-1])
    return cells.gather(-2, index).unbind(-1)


def smoothness_covariance(n_cells: int, length_scale: float) -> torch.Tensor:
    """Squared-exponential prior covariance of ``theta`` ``[n_cells - 1, n_cells - 1]`` (float64).

    ``K[i, j] = exp(-(x_i - x_j)^2 / (2 length_scale^2))`` over the interior
    vertices ``x_i = i / n_cells`` (the positions the entries of ``theta`` live
    at), plus a small diagonal jitter so that ``K`` is safely invertible.
    """
    positions = torch.arange(1, n_cells, dtype=torch.float64) / n_cells
    squared = (positions[:, None] - positions[None, :]).square()
    covariance = torch.exp(-squared / (2 * length_scale**2))
    return covariance + _PRIOR_JITTER * torch.eye(n_cells - 1, dtype=torch.float64)
