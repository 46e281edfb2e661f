"""Dropout whose masks come from a counter-based hash, not from a generator's stream.

Each mask element is a hash of ``(key, position)``: the key is made from the
member's seed, the epoch, the step and the layer (``epoch_dropout_keys``), the
position is the element's index within the member's ``[batch, width]`` block.
So a member's masks do not depend on the other members, a batched run and a
single run with the same seed drop the same units, and a resumed run needs no
generator state. For the trainer this replaces one generator call per member
and layer and step with one fused kernel per layer, and the backward pass
recomputes the mask from the key instead of keeping it.

The hash is Wellons' ``lowbias32`` over 32-bit integers, run on int32 tensors
(two's-complement wrap-around; logical shifts written as an arithmetic shift
and a mask); ``_lowbias32_numpy`` is the same function on uint32 arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from actmix._kernels import kernel_cache

__all__ = [
    "DropoutMask",
    "apply_dropout",
    "dropout",
    "dropout_mask",
    "epoch_dropout_keys",
    "masked_scale",
    "random_dropout_keys",
]

# the hash's constants as int32 (two's complement); see _lowbias32_numpy for the uint32 forms
_MULTIPLY_1 = 0x7FEB352D
_MULTIPLY_2 = 0x846CA68B - (1 << 32)
_SPREAD = 0x9E3779B1 - (1 << 32)  # odd: position * _SPREAD is a bijection on 32 bits
_FRACTION_BITS = 24  # uniform draws have 24 bits, as float32's mantissa


def _lowbias32(x: torch.Tensor) -> torch.Tensor:
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * _MULTIPLY_1
    x = x ^ ((x >> 15) & 0x1FFFF)
    x = x * _MULTIPLY_2
    return x ^ ((x >> 16) & 0xFFFF)


def _lowbias32_numpy(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def masked_scale(
    h: torch.Tensor, keys: torch.Tensor, threshold: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """``h * mask * scale``; ``h: [M, B, H]``, ``keys: [M, 1, 1]`` int32, 0-d others."""
    rows, width = h.shape[1], h.shape[2]
    position = torch.arange(rows * width, dtype=torch.int32, device=h.device).view(1, rows, width)
    bits = _lowbias32((position * _SPREAD) ^ keys)
    keep = ((bits >> (32 - _FRACTION_BITS)) & ((1 << _FRACTION_BITS) - 1)) < threshold
    return h * keep.to(h.dtype) * scale


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, keys, threshold, scale):
        ctx.save_for_backward(keys, threshold, scale)
        return kernel_cache.run(masked_scale, (), h.detach(), keys, threshold, scale)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        keys, threshold, scale = ctx.saved_tensors
        grad = kernel_cache.run(masked_scale, (), grad_out.contiguous(), keys, threshold, scale)
        return grad, None, None, None


class DropoutMask(NamedTuple):
    """What ``masked_scale`` needs besides the tensor: ``keys: [M, 1, 1]`` int32, and the
    keep threshold (int32) and the scale ``1 / (1 - p)``: 0-d tensors for one rate, or
    ``[M, 1, 1]`` for one rate per member."""

    keys: torch.Tensor
    threshold: torch.Tensor
    scale: torch.Tensor


@functools.lru_cache(maxsize=64)
def _constants(
    p: float | tuple[float, ...], dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, ...]:
    # tensors, not Python numbers: a compiled kernel takes them as inputs (no recompiles)
    rates = p if isinstance(p, tuple) else (p,)
    keep = [1.0 - rate for rate in rates]
    threshold = torch.tensor([round(k * (1 << _FRACTION_BITS)) for k in keep], dtype=torch.int32)
    scale = torch.tensor([1.0 / k for k in keep], dtype=dtype)
    if not isinstance(p, tuple):  # one rate: 0-d, as the kernels have always seen it
        return threshold[0].to(device), scale[0].to(device)
    return threshold.view(-1, 1, 1).to(device), scale.view(-1, 1, 1).to(device)


def dropout_mask(keys: torch.Tensor, p: float | Sequence[float], like: torch.Tensor) -> DropoutMask:
    """The mask of probability ``p`` (one, or one per member) given by ``keys: [M]`` for
    tensors like ``like``."""
    rates = [p] if isinstance(p, int | float) else list(p)
    if not all(0 <= rate < 1 for rate in rates):
        raise ValueError(f"dropout must be in [0, 1), got {p}")
    if isinstance(p, int | float):
        return DropoutMask(keys.view(-1, 1, 1), *_constants(float(p), like.dtype, like.device))
    if len(rates) != keys.numel():
        raise ValueError(f"got {len(rates)} dropout rates for {keys.numel()} members")
    shared = tuple(float(rate) for rate in rates)
    key: float | tuple[float, ...] = shared[0] if len(set(shared)) == 1 else shared
    return DropoutMask(keys.view(-1, 1, 1), *_constants(key, like.dtype, like.device))


def apply_dropout(h: torch.Tensor, mask: DropoutMask) -> torch.Tensor:
    """``h: [M, B, H]`` through the dropout ``mask``."""
    return _Dropout.apply(h, *mask)


def dropout(h: torch.Tensor, keys: torch.Tensor, p: float) -> torch.Tensor:
    """Zero each element of ``h: [M, B, H]`` with probability ``p``, scale the rest by
    ``1 / (1 - p)``; member ``m``'s mask is a function of ``keys[m]`` (int32) alone."""
    return apply_dropout(h, dropout_mask(keys, p, h))


def epoch_dropout_keys(
    seeds: Sequence[int], epoch: int, steps: int, layers: int, device: torch.device
) -> torch.Tensor:
    """Keys ``[steps, members, layers]`` (int32) of every dropout mask of one epoch."""
    seed = np.asarray([s % (1 << 64) for s in seeds], dtype=np.uint64)
    key = _lowbias32_numpy((seed & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    key = _lowbias32_numpy(key ^ (seed >> np.uint64(32)).astype(np.uint32))
    key = _lowbias32_numpy(key ^ np.uint32(epoch % (1 << 32)))
    step = np.arange(steps, dtype=np.uint32)[:, None, None]
    layer = np.arange(layers, dtype=np.uint32)[None, None, :]
    key = _lowbias32_numpy(key[None, :, None] ^ step)
    key = _lowbias32_numpy(key ^ layer)
    return torch.from_numpy(key.view(np.int32).copy()).to(device)


def random_dropout_keys(members: int, layers: int, device: torch.device) -> torch.Tensor:
    """Keys ``[members, layers]`` from torch's global generator (dropout outside ``fit``)."""
    return torch.randint(-(1 << 31), (1 << 31) - 1, (members, layers), dtype=torch.int32).to(device)
