"""AdamW and gradient clipping that treat each member of a batched model separately.

``torch.optim.AdamW`` and ``clip_grad_norm_`` see one big model: the clipping norm
would mix members and a member that has stopped early or diverged would keep
moving. Here every parameter has a leading member dimension; clipping norms, Adam
step counts and the decision to update at all are per member.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

__all__ = ["MemberAdamW"]


class MemberAdamW:
    """AdamW (decoupled weight decay) with per-member clipping and update masks.

    With every member updating, each member follows exactly
    ``clip_grad_norm_(member_params, grad_clip)`` then ``torch.optim.AdamW``.
    The update runs as ``torch._foreach_*`` calls over all parameters (per-member
    factors broadcast from ``[M, 1, ...]`` views): a small MLP's step is dominated
    by per-operation overhead, not arithmetic.
    """

    def __init__(
        self,
        decayed: Sequence[nn.Parameter],
        not_decayed: Sequence[nn.Parameter],
        *,
        members: int,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        grad_clip: float | None = None,
    ) -> None:
        # plain tensors to torch._foreach_*, whose stubs take list[Tensor] (invariant)
        self.params: list[torch.Tensor] = [*decayed, *not_decayed]
        self.decayed: list[torch.Tensor] = list(decayed)
        self.weight_decay = weight_decay
        self.betas, self.eps, self.grad_clip = betas, eps, grad_clip
        device = self.params[0].device
        self.steps = torch.zeros(members, device=device)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        # per-member factors [M] are viewed as [M, 1, ...] once per rank, not per parameter
        self._ranks = [p.dim() for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _broadcast(self, values: torch.Tensor, ranks: Sequence[int]) -> list[torch.Tensor]:
        """``values: [M]`` viewed to broadcast against parameters of the given ranks."""
        views = {rank: values.view(-1, *([1] * (rank - 1))) for rank in set(ranks)}
        return [views[rank] for rank in ranks]

    @torch.no_grad()
    def step(self, stepping: torch.Tensor, lr: float) -> None:
        """Update members where ``stepping: [M] bool`` is true; leave the others untouched."""
        beta1, beta2 = self.betas
        ranks = self._ranks
        mask = stepping.to(self.steps.dtype)
        # a fill, not a multiply by the mask: a diverged member's NaN gradient times 0 is NaN
        frozen = self._broadcast(~stepping, ranks)
        grads = [
            p.grad.masked_fill(still, 0.0) if p.grad is not None else torch.zeros_like(p)
            for p, still in zip(self.params, frozen, strict=True)
        ]
        if self.grad_clip is not None:
            # never the start value 0 of sum(): there is at least one parameter
            squared = cast(torch.Tensor, sum(g.pow(2).flatten(1).sum(dim=1) for g in grads))
            # same formula as torch.nn.utils.clip_grad_norm_
            coefficient = (self.grad_clip / (squared.sqrt() + 1e-6)).clamp_(max=1.0)
            torch._foreach_mul_(grads, self._broadcast(coefficient, ranks))
        self.steps += mask
        steps = self.steps.clamp(min=1.0)
        step_size = lr / (1.0 - beta1**steps) * mask
        bias_correction2_sqrt = (1.0 - beta2**steps).sqrt()
        if self.decayed and self.weight_decay:
            decay = 1.0 - lr * self.weight_decay * mask
            torch._foreach_mul_(self.decayed, self._broadcast(decay, ranks[: len(self.decayed)]))
        keep1 = 1.0 - (1.0 - beta1) * mask  # beta where stepping, 1 (no decay) where not
        keep2 = 1.0 - (1.0 - beta2) * mask
        torch._foreach_mul_(self.exp_avg, self._broadcast(keep1, ranks))
        torch._foreach_add_(self.exp_avg, grads, alpha=1.0 - beta1)
        torch._foreach_mul_(self.exp_avg_sq, self._broadcast(keep2, ranks))
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, value=1.0 - beta2)
        denominators = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denominators, self._broadcast(bias_correction2_sqrt, ranks))
        torch._foreach_add_(denominators, self.eps)
        updates = torch._foreach_div(self.exp_avg, denominators)
        torch._foreach_mul_(updates, self._broadcast(step_size, ranks))
        torch._foreach_sub_(self.params, updates)
