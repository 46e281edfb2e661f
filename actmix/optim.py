"""AdamW and gradient clipping that treat each member of a batched model separately.

``torch.optim.AdamW`` and ``clip_grad_norm_`` see one big model: the clipping norm
would mix members and a member that has stopped early or diverged would keep
moving. Here every parameter has a leading member dimension; clipping norms, Adam
step counts and the decision to update at all are per member.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MemberAdamW"]


def _per_member(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape ``[M]`` so it broadcasts against ``like: [M, ...]``."""
    return values.view(-1, *([1] * (like.dim() - 1)))


class MemberAdamW:
    """AdamW (decoupled weight decay) with per-member clipping and update masks.

    With every member updating, each member follows exactly
    ``clip_grad_norm_(member_params, grad_clip)`` then ``torch.optim.AdamW``.
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
        self.params = [*decayed, *not_decayed]
        self.decay = [weight_decay] * len(decayed) + [0.0] * len(not_decayed)
        self.betas, self.eps, self.grad_clip = betas, eps, grad_clip
        device = self.params[0].device
        self.steps = torch.zeros(members, device=device)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, stepping: torch.Tensor, lr: float) -> None:
        """Update members where ``stepping: [M] bool`` is true; leave the others untouched."""
        beta1, beta2 = self.betas
        mask = stepping.to(self.steps.dtype)
        grads = [
            torch.where(_per_member(stepping, p), p.grad, 0.0)
            if p.grad is not None
            else torch.zeros_like(p)
            for p in self.params
        ]
        if self.grad_clip is not None:
            squared = sum(g.pow(2).flatten(1).sum(dim=1) for g in grads)
            # same formula as torch.nn.utils.clip_grad_norm_
            coefficient = (self.grad_clip / (squared.sqrt() + 1e-6)).clamp_(max=1.0)
            for g in grads:
                g.mul_(_per_member(coefficient, g))
        self.steps += mask
        steps = self.steps.clamp(min=1.0)
        step_size = lr / (1.0 - beta1**steps) * mask
        bias_correction2_sqrt = (1.0 - beta2**steps).sqrt()
        keep1 = torch.where(stepping, beta1, 1.0)
        keep2 = torch.where(stepping, beta2, 1.0)
        for p, g, m, v, decay in zip(
            self.params, grads, self.exp_avg, self.exp_avg_sq, self.decay, strict=True
        ):
            if decay:
                p.mul_(_per_member(1.0 - lr * decay * mask, p))
            m.mul_(_per_member(keep1, m)).add_(g, alpha=1.0 - beta1)
            v.mul_(_per_member(keep2, v)).addcmul_(g, g, value=1.0 - beta2)
            denom = (v.sqrt() / _per_member(bias_correction2_sqrt, v)).add_(self.eps)
            p.sub_(m / denom * _per_member(step_size, p))
