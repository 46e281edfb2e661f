import math

import pytest
import torch
from torch.func import functional_call

from actmix.activations import ACTIVATIONS, AGLU, APA, make_activation

Z = [-3.0, -1.2, -0.1, 0.0, 0.4, 2.5]


def layer_with(name, lam, kappa, width=6, **options):
    layer = make_activation(name, width, lambda_init=lam, kappa_init=kappa, **options)
    return layer.double()


def values(layer, points=Z):
    z = torch.tensor([[points]], dtype=torch.float64)
    return layer(z)[0, 0].tolist()


def test_registry_names_and_docstrings():
    assert ACTIVATIONS["apa"] is APA and ACTIVATIONS["aglu"] is AGLU
    for name in ("apa", "aglu"):
        assert ACTIVATIONS[name].__doc__.strip().splitlines()[0]


def test_lambda_kappa_one_is_sigmoid_and_aglu_is_silu():
    sigmoid = [1 / (1 + math.exp(-v)) for v in Z]
    assert values(layer_with("apa", 1.0, 1.0)) == pytest.approx(sigmoid, abs=1e-6)
    silu = [v * s for v, s in zip(Z, sigmoid, strict=True)]
    assert values(layer_with("aglu", 1.0, 1.0)) == pytest.approx(silu, abs=1e-6)


def test_hand_computed_value():
    # (0.5 e^(-2 z) + 1)^(-1/0.5) at z = 0.3, and z times it for AGLU
    expected = (0.5 * math.exp(-0.6) + 1) ** -2
    assert values(layer_with("apa", 0.5, 2.0, width=1), [0.3])[0] == pytest.approx(expected)
    aglu = values(layer_with("aglu", 0.5, 2.0, width=1), [0.3])[0]
    assert aglu == pytest.approx(0.3 * expected)


def test_small_lambda_tends_to_the_gumbel_cdf():
    points = [x / 4 for x in range(-8, 21)]
    gumbel = [math.exp(-math.exp(-1.5 * v)) for v in points]
    errors = []
    for lam in (1e-2, 1e-3, 1.5e-4):
        got = values(layer_with("apa", lam, 1.5, width=len(points)), points)
        errors.append(max(abs(g - e) for g, e in zip(got, gumbel, strict=True)))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-4


@pytest.mark.parametrize("name", ["apa", "aglu"])
@pytest.mark.parametrize("per_layer", [False, True])
def test_gradcheck_through_the_layer(name, per_layer):
    torch.manual_seed(0)
    layer = make_activation(name, 4, members=2, per_layer=per_layer).double()
    with torch.no_grad():
        layer.lambda_raw.normal_()
        layer.kappa.normal_()
    z = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    raw = layer.lambda_raw.detach().clone().requires_grad_()
    kappa = layer.kappa.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda z, raw, kappa: functional_call(layer, {"lambda_raw": raw, "kappa": kappa}, (z,)),
        (z, raw, kappa),
    )


@pytest.mark.parametrize("name", ["apa", "aglu"])
@pytest.mark.parametrize(("lam", "kappa"), [(1.5e-4, 1.0), (1.0, 1.0), (5.0, -3.0), (1e-3, 20.0)])
def test_large_inputs_give_finite_values_and_gradients(name, lam, kappa):
    layer = layer_with(name, lam, kappa, width=4).float()
    z = torch.tensor([[[-50.0, -20.0, 20.0, 50.0]]], requires_grad=True)
    out = layer(z)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(z.grad).all()
    assert torch.isfinite(layer.lambda_raw.grad).all() and torch.isfinite(layer.kappa.grad).all()


def test_lambda_stays_above_its_floor_and_keeps_a_gradient():
    layer = make_activation("apa", 3)
    with torch.no_grad():
        layer.lambda_raw.fill_(-80.0)
    assert (layer.lam >= 1e-4).all()
    layer(torch.ones(1, 2, 3)).sum().backward()
    assert torch.isfinite(layer.lambda_raw.grad).all()
    # a clamp would have left the raw parameter with no gradient at all here
    with torch.no_grad():
        layer.lambda_raw.fill_(-5.0)
    layer.lambda_raw.grad = None
    layer(torch.full((1, 2, 3), -0.5)).sum().backward()
    assert (layer.lambda_raw.grad != 0).all()


def test_parameter_shapes_per_neuron_and_per_layer():
    per_neuron = make_activation("aglu", 5, members=3)
    assert per_neuron.lambda_raw.shape == per_neuron.kappa.shape == (3, 1, 5)
    per_layer = make_activation("aglu", 5, members=3, per_layer=True)
    assert per_layer.lambda_raw.shape == per_layer.kappa.shape == (3, 1, 1)
    assert per_layer(torch.randn(3, 2, 5)).shape == (3, 2, 5)
    assert per_layer.describe() == {
        "name": "aglu",
        "per_layer": True,
        "mean_lambda": pytest.approx(1.0),
        "mean_kappa": 1.0,
    }


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"lambda_init": 0.0}, "lambda_init must be a finite number > 0.0001, got 0.0"),
        ({"lambda_init": 1e-4}, "lambda_init"),
        ({"kappa_init": math.inf}, "kappa_init must be finite, got inf"),
    ],
)
def test_bad_options_name_the_value(options, fragment):
    with pytest.raises(ValueError, match=fragment):
        make_activation("apa", 3, **options)
