"""AdamW and gradient clipping that treat each member of a batched model separately.

``torch.optim.AdamW`` and ``clip_grad_norm_`` see one big model: the clipping norm
would mix members and a member that has stopped early or diverged would keep
moving. Here every parameter has a leading member dimension; clipping norms, Adam
step counts and the decision to update at all are per member.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import torch
from torch import nn

from actmix._kernels import kernel_cache

__all__ = ["MemberAdamW"]

V = TypeVar("V", float, float | None)


def _per_member(value: V | Sequence[V], members: int, name: str) -> tuple[V, ...]:
    """One value for every member, or a checked sequence of one per member."""
    if isinstance(value, Sequence):
        if len(value) != members:
            raise ValueError(f"{name}: got {len(value)} values for {members} members")
        return tuple(value)
    return (value,) * members


def _adam_update(
    grads: torch.Tensor,
    stepping: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    factors: torch.Tensor,
    constants: torch.Tensor,
    grad_clip: torch.Tensor,
    clip: bool,
) -> torch.Tensor:
    """Clip ``grads: [M, P]`` per member, advance both moments in place and return the
    Adam update ``[M, P]`` (zero where not ``stepping``).

    ``factors: [M, 4]``: per member, what multiplies ``exp_avg`` and ``exp_avg_sq``
    (beta, or 1 where not stepping), the step size and the second bias correction's
    root. ``constants``: ``[1 - beta1, 1 - beta2, eps]``; ``grad_clip: [M, 1]`` each
    member's clipping norm (inf: not clipped). Tensors, not numbers, so one compiled copy
    serves every learning rate and setting; and the per-member powers stay out of the
    per-element loop.
    """
    keep1, keep2, step_size, correction2 = factors[:, :, None].unbind(dim=1)
    one_minus_beta1, one_minus_beta2, eps = constants.unbind()
    # where, not a multiply by a mask: a diverged member's NaN gradient times 0 is NaN
    grads = torch.where(stepping[:, None], grads, 0.0)
    if clip:
        # same formula as torch.nn.utils.clip_grad_norm_; inf / norm clamps to 1 exactly
        norm = torch.linalg.vector_norm(grads, dim=1, keepdim=True)
        grads = grads * (grad_clip / (norm + 1e-6)).clamp(max=1.0)
    exp_avg.mul_(keep1).add_(one_minus_beta1 * grads)
    exp_avg_sq.mul_(keep2).add_(one_minus_beta2 * grads * grads)
    return exp_avg / (exp_avg_sq.sqrt() / correction2 + eps) * step_size


class MemberAdamW:
    """AdamW (decoupled weight decay) with per-member clipping and update masks.

    With every member updating, each member follows exactly
    ``clip_grad_norm_(member_params, grad_clip)`` then ``torch.optim.AdamW``.
    ``weight_decay``, ``grad_clip`` and the learning rate of each ``step`` may differ
    between members (one value, or one per member): members with other settings train
    side by side as each would alone.
    A small MLP's step is dominated by per-operation overhead, not arithmetic, so
    the gradients are gathered into one ``[M, P]`` tensor per step and the Adam
    moments live in two such tensors (``exp_avg``, ``exp_avg_sq``): clipping and
    the update are one compiled kernel (``actmix._kernels``) whatever the number of
    parameters, and only weight decay, gathering the gradients and applying the
    update touch each parameter.
    """

    def __init__(
        self,
        decayed: Sequence[nn.Parameter],
        not_decayed: Sequence[nn.Parameter],
        *,
        members: int,
        weight_decay: float | Sequence[float],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        grad_clip: float | Sequence[float | None] | None = None,
    ) -> None:
        # plain tensors to torch._foreach_*, whose stubs take list[Tensor] (invariant)
        self.params: list[torch.Tensor] = [*decayed, *not_decayed]
        self.decayed: list[torch.Tensor] = list(decayed)
        if any(p.shape[0] != members for p in self.params):
            raise ValueError(f"every parameter must have a leading dimension of {members}")
        self.members = members
        self.weight_decay = _per_member(weight_decay, members, "weight_decay")
        clips = _per_member(grad_clip, members, "grad_clip")
        self.betas, self.eps, self.grad_clip = betas, eps, clips
        device = self.params[0].device
        self.steps = torch.zeros(members, device=device)
        # columns of the flat [M, P] layout: parameter i is columns offsets[i]:offsets[i+1]
        self._sizes = [p[0].numel() for p in self.params]
        self.exp_avg = torch.zeros(members, sum(self._sizes), device=device)
        self.exp_avg_sq = torch.zeros_like(self.exp_avg)
        self._constants = torch.tensor([1.0 - betas[0], 1.0 - betas[1], eps], device=device)
        self._clip = any(c is not None for c in clips)
        self._clip_norms = torch.tensor(
            [[math.inf if c is None else c] for c in clips], device=device
        )
        # the step's learning rates and lr x weight decay, as tensors, for the last lr given
        self._rates: tuple[tuple[float, ...], torch.Tensor, torch.Tensor] | None = None
        # per-member factors [M] are viewed as [M, 1, ...] once per rank, not per parameter
        self._ranks = [p.dim() for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _broadcast(self, values: torch.Tensor, ranks: Sequence[int]) -> list[torch.Tensor]:
        """``values: [M]`` viewed to broadcast against parameters of the given ranks."""
        views = {rank: values.view(-1, *([1] * (rank - 1))) for rank in set(ranks)}
        return [views[rank] for rank in ranks]

    def _flat_gradients(self) -> torch.Tensor:
        """``[M, P]``: every parameter's gradient (zeros where there is none), side by side."""
        return torch.cat(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(len(p), -1)
                for p in self.params
            ],
            dim=1,
        )

    def _per_parameter(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Views of ``flat: [M, P]`` shaped like each parameter."""
        return [
            part.view(p.shape)
            for part, p in zip(flat.split(self._sizes, dim=1), self.params, strict=True)
        ]

    def _learning_rates(self, lr: float | Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """``lr`` and ``lr * weight_decay`` per member ``[M]``, each product taken in double
        before the cast, as a single member's ``lr * weight_decay * mask`` does."""
        rates = _per_member(lr, self.members, "lr")
        if self._rates is None or self._rates[0] != rates:
            device = self.exp_avg.device
            decay = [rate * decay for rate, decay in zip(rates, self.weight_decay, strict=True)]
            self._rates = (
                rates,
                torch.tensor(rates, device=device),
                torch.tensor(decay, device=device),
            )
        return self._rates[1], self._rates[2]

    @torch.no_grad()
    def step(self, stepping: torch.Tensor, lr: float | Sequence[float]) -> None:
        """Update members where ``stepping: [M] bool`` is true; leave the others untouched.

        ``lr``: one learning rate, or one per member."""
        rates, decay_rates = self._learning_rates(lr)
        if self.decayed and any(self.weight_decay):
            decay = 1.0 - decay_rates * stepping.to(self.exp_avg.dtype)
            ranks = self._ranks[: len(self.decayed)]
            torch._foreach_mul_(self.decayed, self._broadcast(decay, ranks))
        beta1, beta2 = self.betas
        mask = stepping.to(self.steps.dtype)
        self.steps += mask
        count = self.steps.clamp(min=1.0)
        factors = torch.stack(
            [
                1.0 - (1.0 - beta1) * mask,  # beta where stepping, 1 (no decay) where not
                1.0 - (1.0 - beta2) * mask,
                # as a Python lr / tensor computes it: the reciprocal, times lr
                (1.0 - beta1**count).reciprocal() * rates * mask,
                (1.0 - beta2**count).sqrt(),
            ],
            dim=1,
        )
        update = kernel_cache.run(
            _adam_update,
            ("clipped",) if self._clip else (),
            self._flat_gradients(),
            stepping,
            self.exp_avg,
            self.exp_avg_sq,
            factors,
            self._constants,
            self._clip_norms,
            self._clip,
        )
        torch._foreach_sub_(self.params, self._per_parameter(update))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The optimiser's state: step counts and both moments, for checkpoints."""
        return {"steps": self.steps, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    def load_state_tensors(self, state: dict[str, torch.Tensor | list[torch.Tensor]]) -> None:
        """Load what ``state_tensors`` gave (moments saved per parameter are accepted too)."""
        for name, live in self.state_tensors().items():
            saved = state[name]
            if isinstance(saved, list):  # older checkpoints kept one tensor per parameter
                saved = torch.cat([t.reshape(len(t), -1) for t in saved], dim=1)
            if saved.shape != live.shape:
                raise ValueError(
                    f"checkpoint's optimizer {name} has shape {tuple(saved.shape)},"
                    f" this model needs {tuple(live.shape)}"
                )
            live.copy_(saved)
