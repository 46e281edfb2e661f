import pytest
import torch

from actmix import _kernels
from actmix._kernels import kernel_cache
from actmix.optim import MemberAdamW


@pytest.fixture(params=[False, True], ids=["eager", "compiled"])
def compiled(request, monkeypatch):
    """Run the update eagerly, or compiled even for these tiny parameters."""
    monkeypatch.setenv(_kernels.COMPILE_ENV, "1" if request.param else "0")
    monkeypatch.setattr(kernel_cache, "min_elements", 0)
    kernel_cache.reset()
    yield request.param
    assert kernel_cache.error is None
    kernel_cache.reset()


def _loss(x, weight, bias):
    return (x @ weight + bias).pow(3).sum()


@pytest.mark.usefixtures("compiled")
def test_one_member_matches_torch_adamw_with_clipping():
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(1, 5, 3))
    bias = torch.nn.Parameter(torch.randn(1, 1, 3))
    ref_weight = torch.nn.Parameter(weight.detach()[0].clone())
    ref_bias = torch.nn.Parameter(bias.detach()[0].clone())
    ours = MemberAdamW([weight], [bias], members=1, weight_decay=0.1, grad_clip=0.5)
    reference = torch.optim.AdamW(
        [
            {"params": [ref_weight], "weight_decay": 0.1},
            {"params": [ref_bias], "weight_decay": 0.0},
        ],
        lr=1e-2,
    )
    for _ in range(25):
        x = torch.randn(7, 5)
        _loss(x, weight[0], bias[0]).backward()
        ours.step(torch.tensor([True]), 1e-2)
        ours.zero_grad()
        _loss(x, ref_weight, ref_bias).backward()
        torch.nn.utils.clip_grad_norm_([ref_weight, ref_bias], 0.5)
        reference.step()
        reference.zero_grad()
    assert torch.allclose(weight[0], ref_weight, atol=1e-5)
    assert torch.allclose(bias[0], ref_bias, atol=1e-5)


@pytest.mark.usefixtures("compiled")
def test_frozen_member_is_untouched_even_with_nan_gradients():
    weight = torch.nn.Parameter(torch.ones(2, 3, 1))
    optimizer = MemberAdamW([weight], [], members=2, weight_decay=0.5, grad_clip=1.0)
    weight.grad = torch.tensor([[[1.0], [2.0], [3.0]], [[float("nan")]] * 3])
    optimizer.step(torch.tensor([True, False]), 0.1)
    assert torch.equal(weight[1], torch.ones(3, 1))
    assert torch.isfinite(weight).all() and not torch.equal(weight[0], torch.ones(3, 1))
    assert optimizer.steps.tolist() == [1.0, 0.0]


@pytest.mark.usefixtures("compiled")
def test_clipping_norm_is_per_member():
    # member 0 has a huge gradient; member 1's small one must not be scaled by it
    a = torch.nn.Parameter(torch.zeros(2, 1, 1))
    b = torch.nn.Parameter(torch.zeros(2, 1, 1))
    optimizer = MemberAdamW([a], [], members=2, weight_decay=0.0, grad_clip=1.0)
    reference = MemberAdamW([b], [], members=2, weight_decay=0.0, grad_clip=1.0)
    a.grad = torch.tensor([[[1000.0]], [[0.3]]])
    b.grad = torch.tensor([[[0.0]], [[0.3]]])
    optimizer.step(torch.tensor([True, True]), 0.1)
    reference.step(torch.tensor([True, True]), 0.1)
    assert torch.equal(a[1], b[1])


def test_moments_saved_one_tensor_per_parameter_still_load():
    # checkpoints written before the flat [M, P] layout kept one moment per parameter
    weight = torch.nn.Parameter(torch.zeros(2, 3, 1))
    bias = torch.nn.Parameter(torch.zeros(2, 1, 1))
    optimizer = MemberAdamW([weight], [bias], members=2, weight_decay=0.0)
    old = {
        "steps": torch.tensor([4.0, 2.0]),
        "exp_avg": [torch.full((2, 3, 1), 1.0), torch.full((2, 1, 1), 2.0)],
        "exp_avg_sq": [torch.full((2, 3, 1), 3.0), torch.full((2, 1, 1), 4.0)],
    }
    optimizer.load_state_tensors(old)
    assert optimizer.exp_avg.tolist() == [[1.0, 1.0, 1.0, 2.0]] * 2
    assert optimizer.exp_avg_sq.tolist() == [[3.0, 3.0, 3.0, 4.0]] * 2
    assert optimizer.steps.tolist() == [4.0, 2.0]
    with pytest.raises(ValueError, match="exp_avg has shape"):
        optimizer.load_state_tensors({**old, "exp_avg": torch.zeros(2, 5)})
