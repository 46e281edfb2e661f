import numpy as np
import pytest
import torch

from actmix import _kernels
from actmix._dropout import (
    _lowbias32_numpy,
    dropout,
    epoch_dropout_keys,
    random_dropout_keys,
)
from actmix._kernels import kernel_cache

CPU = torch.device("cpu")


def _reference_keep(keys: np.ndarray, rows: int, width: int, p: float) -> np.ndarray:
    """The mask written out in numpy uint32 arithmetic: ``[M, rows, width]`` bool."""
    position = np.arange(rows * width, dtype=np.uint32)
    bits = _lowbias32_numpy((position * np.uint32(0x9E3779B1)) ^ keys.view(np.uint32)[:, None])
    return ((bits >> np.uint32(8)) < round((1 - p) * (1 << 24))).reshape(-1, rows, width)


@pytest.mark.parametrize("compiled", [False, True])
def test_masks_equal_the_numpy_reference_compiled_or_not(compiled, monkeypatch):
    monkeypatch.setenv(_kernels.COMPILE_ENV, "1" if compiled else "0")
    monkeypatch.setattr(kernel_cache, "min_elements", 0)
    keys = epoch_dropout_keys([5, 6, 7], epoch=2, steps=1, layers=1, device=CPU)[0, :, 0]
    h = torch.rand(3, 40, 24) + 0.5  # never 0, so a zero in the output is a dropped unit
    out = dropout(h, keys, 0.3)
    want = _reference_keep(keys.numpy(), 40, 24, 0.3)
    assert np.array_equal(out.numpy() != 0, want)
    torch.testing.assert_close(out[torch.from_numpy(want)], h[torch.from_numpy(want)] / 0.7)
    assert kernel_cache.error is None
    kernel_cache.reset()


def test_drop_rate_and_scale_keep_the_mean():
    keys = epoch_dropout_keys([1], epoch=0, steps=1, layers=1, device=CPU)[0, :, 0]
    out = dropout(torch.ones(1, 500, 400), keys, 0.1)
    assert (out == 0).float().mean().item() == pytest.approx(0.1, abs=0.003)
    assert out.mean().item() == pytest.approx(1.0, abs=0.005)


def test_backward_recomputes_the_same_mask_and_passes_gradcheck():
    keys = torch.tensor([11, -12], dtype=torch.int32)
    h = torch.randn(2, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: dropout(x, keys, 0.5), (h,))
    dropout(h, keys, 0.5).sum().backward()
    assert torch.equal(h.grad != 0, dropout(h.detach(), keys, 0.5) != 0)


def test_keys_are_per_member_and_differ_by_epoch_step_and_layer():
    both = epoch_dropout_keys([3, 4], epoch=1, steps=5, layers=2, device=CPU)
    assert both.shape == (5, 2, 2) and both.dtype == torch.int32
    # a member's keys do not depend on the others: a single run draws the same masks
    assert torch.equal(both[:, :1], epoch_dropout_keys([3], 1, 5, 2, CPU))
    assert torch.equal(both[:, 1:], epoch_dropout_keys([4], 1, 5, 2, CPU))
    assert len(set(both.flatten().tolist())) == both.numel()
    assert not torch.equal(both, epoch_dropout_keys([3, 4], 2, 5, 2, CPU))
    # large seeds count with all their bits
    assert not torch.equal(
        epoch_dropout_keys([1], 0, 1, 1, CPU), epoch_dropout_keys([1 + (1 << 32)], 0, 1, 1, CPU)
    )


def test_random_keys_and_bad_probability():
    torch.manual_seed(0)
    first, second = random_dropout_keys(2, 3, CPU), random_dropout_keys(2, 3, CPU)
    assert first.shape == (2, 3) and not torch.equal(first, second)
    with pytest.raises(ValueError, match="dropout must be in"):
        dropout(torch.ones(1, 2, 2), torch.zeros(1, dtype=torch.int32), 1.0)
