"""Every member's rows as padded tensors on the training device.

Members of one batched model may have different row counts (folds differ in
size); their arrays are zero-padded to the longest and a mask marks real rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from actmix.types import Task

if TYPE_CHECKING:
    from actmix.trainer import MemberData

__all__ = ["MemberTensors", "stack_padded"]


def stack_padded(
    arrays: Sequence[np.ndarray | torch.Tensor],
    features: int | None,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Stack per-member arrays into ``[M, rows_max(, features)]``, zero-padded."""
    tensors = [torch.as_tensor(a) for a in arrays]
    rows = max(t.shape[0] for t in tensors)
    shape = (len(tensors), rows) if features is None else (len(tensors), rows, features)
    out = torch.zeros(shape, dtype=dtype)
    for k, t in enumerate(tensors):
        if features is None:
            out[k, : t.shape[0]] = t
        else:
            out[k, : t.shape[0], : t.shape[1]] = t
    return out.to(device)


@dataclass(frozen=True, slots=True)
class MemberTensors:
    """Every member's rows as padded device tensors, and how an epoch walks them.

    ``x_*: [M, rows_max, features]``; ``y_*: [M, rows_max]``. Member ``k`` takes
    ``member_steps[k]`` minibatches per epoch, the longest member ``steps``;
    ``valid: [M, steps * batch_size]`` is 1.0 at real positions, 0.0 at padding.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    train_rows: tuple[int, ...]
    val_rows: torch.Tensor  # [M]
    target_std: torch.Tensor  # [M]
    batch_size: int
    member_steps: tuple[int, ...]
    steps: int
    valid: torch.Tensor
    member_index: torch.Tensor  # [M, 1]: gathers each member's own rows

    @classmethod
    def build(
        cls,
        data: Sequence[MemberData],
        in_features: int,
        task: Task,
        batch_size: int,
        device: torch.device,
    ) -> MemberTensors:
        y_dtype = torch.float32 if task == "regression" else torch.int64
        train_rows = tuple(len(d.y_train) for d in data)
        member_steps = tuple(math.ceil(n / batch_size) for n in train_rows)
        steps = max(member_steps)
        positions = torch.arange(steps * batch_size)[None, :]
        return cls(
            x_train=stack_padded([d.x_train for d in data], in_features, torch.float32, device),
            y_train=stack_padded([d.y_train for d in data], None, y_dtype, device),
            x_val=stack_padded([d.x_val for d in data], in_features, torch.float32, device),
            y_val=stack_padded([d.y_val for d in data], None, y_dtype, device),
            train_rows=train_rows,
            val_rows=torch.tensor([len(d.y_val) for d in data], device=device),
            target_std=torch.tensor([d.target_std for d in data], device=device),
            batch_size=batch_size,
            member_steps=member_steps,
            steps=steps,
            valid=(positions < torch.tensor(train_rows)[:, None]).to(device, torch.float32),
            member_index=torch.arange(len(data), device=device)[:, None],
        )
