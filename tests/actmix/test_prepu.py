import math

import pytest
import torch
from torch.func import functional_call

from actmix.activations import ACTIVATIONS, PRePU, make_activation
from actmix.activations.prepu import EPSILON, rectified_power


def prepu_with(scales, dtype=torch.float64):
    layer = make_activation("prepu", len(scales)).to(dtype)
    with torch.no_grad():
        layer.scale.copy_(torch.tensor([[scales]]))
    return layer


def test_registry_name_and_docstring():
    assert ACTIVATIONS["prepu"] is PRePU
    assert PRePU.__doc__.strip().splitlines()[0]


def test_default_scale_is_exactly_relu():
    layer = make_activation("prepu", 7)
    z = torch.tensor([[[-2.0, -1e-30, 0.0, 1e-30, 1e-7, 0.3, 5.0]]])
    assert torch.equal(layer(z), torch.relu(z))


def test_hand_computed_values():
    # softsign(1) = 1/2, softsign(-1) = -1/2, softsign(3) = 3/4
    layer = prepu_with([1.0, -1.0, 3.0, 1.0])
    out = layer(torch.tensor([[[4.0, 4.0, 2.0, -4.0]]], dtype=torch.float64))
    assert out[0, 0].tolist() == pytest.approx([8.0, 2.0, 2.0**1.75, 0.0])
    assert layer.power[0, 0].tolist() == pytest.approx([1.5, 0.5, 1.75, 1.5])


def test_gradcheck_away_from_zero():
    z = torch.tensor([[[0.2, 1.3, 2.7, -0.8], [3.1, 0.05, 0.9, -2.0]]], dtype=torch.float64)
    power = torch.tensor([[[0.3, 0.9, 1.4, 1.9]]], dtype=torch.float64)
    assert torch.autograd.gradcheck(rectified_power, (z.requires_grad_(), power.requires_grad_()))
    layer = prepu_with([-0.7, 0.2, 1.5, 0.0])
    scale = layer.scale.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda z, scale: functional_call(layer, {"scale": scale}, (z,)), (z, scale)
    )


@pytest.mark.parametrize("scale", [-20.0, -1.0, 0.0, 2.0])
def test_gradients_are_finite_at_and_near_zero(scale):
    z = torch.tensor([[[0.0, 1e-38, 1e-30, 1e-8, EPSILON, 2 * EPSILON, -1e-30]]])
    layer = prepu_with([scale] * z.shape[-1], dtype=torch.float32)
    z.requires_grad_()
    layer(z).sum().backward()
    assert torch.isfinite(z.grad).all() and torch.isfinite(layer.scale.grad).all()
    # below EPSILON the slope is EPSILON^(p - 1) <= 1 / EPSILON
    assert z.grad.abs().max() <= 1 / EPSILON * 1.001


def test_continuous_where_the_linear_piece_meets_the_power():
    layer = prepu_with([-1.0])  # power 1/2: steepest near 0
    below, above = EPSILON * (1 - 1e-9), EPSILON * (1 + 1e-9)
    out = layer(torch.tensor([[[below]], [[above]]], dtype=torch.float64).view(2, 1, 1))
    assert out[0].item() == pytest.approx(out[1].item(), rel=1e-6)
    assert out[1].item() == pytest.approx(math.sqrt(EPSILON), rel=1e-6)


def test_bad_option_names_the_value():
    with pytest.raises(ValueError, match="scale_init must be finite, got nan"):
        make_activation("prepu", 3, scale_init=math.nan)
