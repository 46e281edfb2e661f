import math

import pytest
import torch

from actmix.activations import (
    ACTIVATIONS,
    BASIS_FUNCTIONS,
    ActMix,
    actmix_function,
    available_activations,
    make_activation,
)

ALL = available_activations()


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'.*relu"):
        make_activation("rleu", 8)


def test_bad_option_is_a_value_error():
    with pytest.raises(ValueError, match="actmix"):
        make_activation("actmix", 8, temprature=0.5)


@pytest.mark.parametrize("name", ALL)
def test_contract_shape_gradients_members_state(name):
    torch.manual_seed(0)
    layer = make_activation(name, 6, members=3)
    z = torch.randn(3, 5, 6, requires_grad=True)
    out = layer(z)
    assert out.shape == z.shape
    out.square().sum().backward()
    assert torch.isfinite(z.grad).all()
    for parameter in layer.parameters():
        assert parameter.shape[0] == 3, "activation parameters need a leading member dimension"
        assert torch.isfinite(parameter.grad).all()
    clone = make_activation(name, 6, members=3)
    clone.load_state_dict(layer.state_dict())
    assert torch.equal(clone(z), out)


@pytest.mark.parametrize("name", ALL)
def test_members_are_independent(name):
    layer = make_activation(name, 4, members=2)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter[1].normal_()
    z = torch.randn(1, 7, 4)
    out = layer(z.expand(2, 7, 4))
    single = make_activation(name, 4, members=1)
    single.load_state_dict({k: v[:1] for k, v in layer.state_dict().items()})
    assert torch.allclose(out[:1], single(z))


def test_fixed_formulas():
    z = torch.tensor([[[-2.0, -0.5, 0.0, 1.5]]])
    expected = {
        "relu": [0.0, 0.0, 0.0, 1.5],
        "identity": [-2.0, -0.5, 0.0, 1.5],
        "leaky_relu": [-0.02, -0.005, 0.0, 1.5],
        "tanh": [math.tanh(v) for v in (-2.0, -0.5, 0.0, 1.5)],
        "sigmoid": [1 / (1 + math.exp(-v)) for v in (-2.0, -0.5, 0.0, 1.5)],
        "silu": [v / (1 + math.exp(-v)) for v in (-2.0, -0.5, 0.0, 1.5)],
        "elu": [math.exp(-2.0) - 1, math.exp(-0.5) - 1, 0.0, 1.5],
        "gelu": [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in (-2.0, -0.5, 0.0, 1.5)],
    }
    for name, values in expected.items():
        out = make_activation(name, 4)(z)
        assert torch.allclose(out, torch.tensor([[values]]), atol=1e-6), name


def test_prelu_has_a_slope_per_member_and_neuron():
    layer = make_activation("prelu", 3, members=2)
    assert layer.slope.shape == (2, 1, 3)
    with torch.no_grad():
        layer.slope.copy_(torch.tensor([[[0.1, 0.2, 0.3]], [[1.0, 2.0, 3.0]]]))
    out = layer(torch.tensor([[[-1.0, -1.0, 2.0]], [[-1.0, -2.0, 2.0]]]))
    assert torch.allclose(out, torch.tensor([[[-0.1, -0.2, 2.0]], [[-1.0, -4.0, 2.0]]]))


def test_actmix_matches_hand_computation():
    layer = ActMix(2, basis=("sin", "tanh", "relu", "identity"), relu_bias=1.5, omega_0=2.0)
    z = torch.tensor([[[0.7, -1.2]]])
    # logits (0, 0, 1.5, 0) at T=1 for both neurons
    e = math.exp(1.5)
    alpha = [1 / (3 + e), 1 / (3 + e), e / (3 + e), 1 / (3 + e)]
    expected = [
        alpha[0] * math.sin(2.0 * v)
        + alpha[1] * math.tanh(v)
        + alpha[2] * max(v, 0.0)
        + alpha[3] * v
        for v in (0.7, -1.2)
    ]
    assert torch.allclose(layer(z), torch.tensor([[expected]]), atol=1e-6)
    assert torch.allclose(layer.mixing_weights()[0, 0], torch.tensor(alpha), atol=1e-6)


def test_actmix_temperature_sharpens_the_mixture():
    layer = ActMix(1, relu_bias=1.0)
    hot = layer.mixing_weights()[0, 0, 2].item()
    layer.set_temperature(0.1)
    cold = layer.mixing_weights()[0, 0, 2].item()
    # softmax((0, 0, 10, 0)): relu weight e^10 / (3 + e^10)
    assert cold == pytest.approx(math.exp(10) / (3 + math.exp(10)), rel=1e-6)
    assert cold > hot


def test_actmix_entropy_by_hand():
    layer = ActMix(3, members=2)
    assert torch.allclose(layer.entropy(), torch.full((2,), math.log(4)))
    with torch.no_grad():
        layer.logits[1] = torch.tensor([0.0, 0.0, math.log(2.0), 0.0])
    # member 1: alpha = (1/5, 1/5, 2/5, 1/5)
    p = [0.2, 0.2, 0.4, 0.2]
    assert layer.entropy()[1].item() == pytest.approx(-sum(v * math.log(v) for v in p), rel=1e-6)


@pytest.mark.parametrize("basis", [BASIS_FUNCTIONS, ("sin",), ("relu", "identity")])
def test_actmix_function_gradcheck(basis):
    torch.manual_seed(1)
    z = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    alpha = torch.softmax(torch.randn(2, 3, len(basis), dtype=torch.float64), -1).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda z, a: actmix_function(z, a, omega=3.0, basis=basis), (z, alpha)
    )


def test_actmix_keeps_no_basis_stack_for_backward():
    layer = ActMix(64, members=2, basis=BASIS_FUNCTIONS)
    z = torch.randn(2, 128, 64, requires_grad=True)
    saved = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(z)
    # z itself plus per-neuron tensors (logits, alpha); never batch * width * K
    assert max(saved) == z.numel()
    assert sum(saved) < 2 * z.numel()


def test_actmix_rejects_bad_options():
    with pytest.raises(ValueError, match="unknown basis function 'cos'"):
        ActMix(4, basis=("sin", "cos"))
    with pytest.raises(ValueError, match="omega_0"):
        ActMix(4, omega_0=0.0)
    with pytest.raises(ValueError, match="twice"):
        ActMix(4, basis=("relu", "relu"))


def test_registry_has_the_fixed_set():
    expected = {"relu", "gelu", "prelu", "leaky_relu", "elu", "silu", "tanh", "sigmoid", "identity"}
    assert expected | {"actmix"} <= set(ACTIVATIONS)
