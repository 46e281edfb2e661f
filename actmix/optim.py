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


class MemberAdamW:
    """AdamW (decoupled weight decay) with per-member clipping and update masks.

    With every member updating, each member follows exactly
    ``clip_grad_norm_(member_params, grad_clip)`` then ``torch.optim.AdamW``.
    A small MLP's step is dominated by per-operation overhead, not arithmetic, so
    the gradients are gathered into one ``[M, P]`` tensor per step and the Adam
    moments live in two such tensors (``exp_avg``, ``exp_avg_sq``): clipping and
    the update are a dozen operations whatever the number of parameters, and only
    gathering the gradients and applying the update touch each parameter.
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
        if any(p.shape[0] != members for p in self.params):
            raise ValueError(f"every parameter must have a leading dimension of {members}")
        self.weight_decay = weight_decay
        self.betas, self.eps, self.grad_clip = betas, eps, grad_clip
        device = self.params[0].device
        self.steps = torch.zeros(members, device=device)
        # columns of the flat [M, P] layout: parameter i is columns offsets[i]:offsets[i+1]
        self._sizes = [p[0].numel() for p in self.params]
        self.exp_avg = torch.zeros(members, sum(self._sizes), device=device)
        self.exp_avg_sq = torch.zeros_like(self.exp_avg)
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

    @torch.no_grad()
    def step(self, stepping: torch.Tensor, lr: float) -> None:
        """Update members where ``stepping: [M] bool`` is true; leave the others untouched."""
        beta1, beta2 = self.betas
        mask = stepping.to(self.steps.dtype)
        grads = self._flat_gradients()
        # a fill, not a multiply by the mask: a diverged member's NaN gradient times 0 is NaN
        grads.masked_fill_(~stepping[:, None], 0.0)
        if self.grad_clip is not None:
            # same formula as torch.nn.utils.clip_grad_norm_
            norm = torch.linalg.vector_norm(grads, dim=1, keepdim=True)
            grads.mul_((self.grad_clip / (norm + 1e-6)).clamp_(max=1.0))
        self.steps += mask
        steps = self.steps.clamp(min=1.0)
        step_size = (lr / (1.0 - beta1**steps) * mask)[:, None]
        bias_correction2_sqrt = (1.0 - beta2**steps).sqrt_()[:, None]
        if self.decayed and self.weight_decay:
            decay = 1.0 - lr * self.weight_decay * mask
            ranks = self._ranks[: len(self.decayed)]
            torch._foreach_mul_(self.decayed, self._broadcast(decay, ranks))
        # beta where stepping, 1 (no decay) where not
        self.exp_avg.mul_((1.0 - (1.0 - beta1) * mask)[:, None]).add_(grads, alpha=1.0 - beta1)
        self.exp_avg_sq.mul_((1.0 - (1.0 - beta2) * mask)[:, None])
        self.exp_avg_sq.addcmul_(grads, grads, value=1.0 - beta2)
        denominator = self.exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(self.eps)
        update = torch.div(self.exp_avg, denominator).mul_(step_size)
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
