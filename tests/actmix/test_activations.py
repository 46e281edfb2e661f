import math
import warnings

import pytest
import torch

import actmix.activations.actmix as actmix_module
from actmix.activations import (
    ACTIVATIONS,
    BASIS_FUNCTIONS,
    DEFAULT_BASIS,
    ActMix,
    actmix_function,
    available_activations,
    make_activation,
)
from actmix.activations.actmix import kernel_cache

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


# --- compiled and eager kernels of ActMix ----------------------------------------------------


def _reference_mixture(z, alpha, omega, basis):
    """Plain autograd reference: stack every basis output, weight, sum."""
    functions = {
        "sin": lambda v: torch.sin(omega * v),
        "tanh": torch.tanh,
        "relu": torch.relu,
        "identity": lambda v: v,
        "sigmoid": torch.sigmoid,
        "silu": lambda v: v * torch.sigmoid(v),
    }
    stack = torch.stack([functions[name](z) for name in basis], dim=-1)
    return (stack * alpha[:, None]).sum(dim=-1)


def _forward_backward(function, z, alpha, grad_out):
    z, alpha = z.detach().requires_grad_(), alpha.detach().requires_grad_()
    out = function(z, alpha)
    out.backward(grad_out)
    return out.detach(), z.grad, alpha.grad


def _random_inputs(basis, shape=(3, 37, 13), dtype=torch.float32):
    generator = torch.Generator().manual_seed(5)
    members, _, width = shape
    z = 2 * torch.randn(shape, generator=generator, dtype=dtype)
    logits = torch.randn(members, width, len(basis), generator=generator, dtype=dtype)
    grad_out = torch.randn(shape, generator=generator, dtype=dtype)
    return z, torch.softmax(logits, dim=-1), grad_out


@pytest.fixture
def fresh_compile(monkeypatch):
    """Compile even tiny inputs, from a clean cache and no earlier failure; reset after."""
    monkeypatch.delenv(actmix_module.COMPILE_ENV, raising=False)
    monkeypatch.setattr(kernel_cache, "min_elements", 0)
    kernel_cache.reset()
    calls = []
    real_compile = torch.compile

    def recording_compile(function, **options):
        calls.append(function.__name__)
        return real_compile(function, **options)

    monkeypatch.setattr(torch, "compile", recording_compile)
    yield calls
    # kernels compiled by a patched torch.compile (or a recorded failure) must not leak
    kernel_cache.reset()


@pytest.mark.slow
@pytest.mark.parametrize("basis", [DEFAULT_BASIS, BASIS_FUNCTIONS, ("silu", "relu")])
def test_actmix_compiled_and_eager_match_a_reference(basis, fresh_compile, monkeypatch):
    z, alpha, grad_out = _random_inputs(basis)

    def ours(z, alpha):
        return actmix_function(z, alpha, omega=1.7, basis=basis)

    expected = _forward_backward(
        lambda z, alpha: _reference_mixture(z, alpha, 1.7, basis), z, alpha, grad_out
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback would warn
        compiled = _forward_backward(ours, z, alpha, grad_out)
    assert len(fresh_compile) == 2, "forward and backward kernels should be compiled"
    assert kernel_cache.error is None
    monkeypatch.setenv(actmix_module.COMPILE_ENV, "0")
    eager = _forward_backward(ours, z, alpha, grad_out)
    for name, want, got_compiled, got_eager in zip(
        ("out", "grad_z", "grad_alpha"), expected, compiled, eager, strict=True
    ):
        assert torch.allclose(got_compiled, want, rtol=1e-5, atol=1e-5), name
        assert torch.allclose(got_eager, want, rtol=1e-5, atol=1e-5), name


@pytest.mark.slow
def test_actmix_compiled_gradcheck_and_no_recompiles_across_shapes(fresh_compile):
    basis = ("sin", "tanh", "sigmoid", "relu", "identity")
    z, alpha, _ = _random_inputs(basis, shape=(2, 7, 5), dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda z, a: actmix_function(z, a, omega=3.0, basis=basis),
        (z.requires_grad_(), alpha.requires_grad_()),
    )
    # float32, once per graph: later batch sizes, member counts (> 1) and omegas reuse it
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    for members, batch, omega in [(3, 37, 1.0), (3, 50, 2.0), (6, 61, 0.5)]:
        z, alpha, grad_out = _random_inputs(basis, shape=(members, batch, 13))
        got = _forward_backward(
            lambda z, a, omega=omega: actmix_function(z, a, omega=omega, basis=basis),
            z,
            alpha,
            grad_out,
        )
        want = _forward_backward(
            lambda z, a, omega=omega: _reference_mixture(z, a, omega, basis), z, alpha, grad_out
        )
        for expected, actual in zip(want, got, strict=True):
            assert torch.allclose(actual, expected, rtol=1e-5, atol=1e-5)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 2
    assert len(fresh_compile) == 2 and kernel_cache.error is None


@pytest.mark.slow
def test_a_first_batch_as_wide_as_the_layer_does_not_specialise_the_graph(fresh_compile):
    # with duck sizing, batch == width on the first call would compile graphs for that
    # equality, and every other batch size would compile them again
    basis = ("sin", "relu")
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    for batch in (13, 37, 50):
        z, alpha, grad_out = _random_inputs(basis, shape=(3, batch, 13))
        _forward_backward(lambda z, a: actmix_function(z, a, basis=basis), z, alpha, grad_out)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 2
    assert len(fresh_compile) == 2 and kernel_cache.error is None


def test_actmix_compile_env_zero_never_compiles(fresh_compile, monkeypatch):
    monkeypatch.setenv(actmix_module.COMPILE_ENV, "0")
    basis = ("tanh", "identity")
    z, alpha, grad_out = _random_inputs(basis)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _forward_backward(lambda z, a: actmix_function(z, a, basis=basis), z, alpha, grad_out)
    want = _forward_backward(lambda z, a: _reference_mixture(z, a, 1.0, basis), z, alpha, grad_out)
    assert fresh_compile == []
    for expected, actual in zip(want, got, strict=True):
        assert torch.allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_actmix_compile_env_rejects_unknown_values(monkeypatch):
    monkeypatch.setenv(actmix_module.COMPILE_ENV, "maybe")
    monkeypatch.setattr(kernel_cache, "min_elements", 0)
    with pytest.raises(ValueError, match="ACTMIX_COMPILE='maybe'"):
        actmix_function(torch.randn(1, 2, 3), torch.full((1, 3, 4), 0.25))


def _raise_at_compile(_function, **_options):
    raise RuntimeError("no C++ compiler found")


def _raise_at_first_call(_function, **_options):
    def broken(*_args):
        raise RuntimeError("inductor failed\nlong traceback")

    return broken


@pytest.mark.usefixtures("fresh_compile")
@pytest.mark.parametrize("broken_compile", [_raise_at_compile, _raise_at_first_call])
def test_actmix_falls_back_to_eager_once_when_compile_fails(broken_compile, monkeypatch):
    monkeypatch.setattr(torch, "compile", broken_compile)
    basis = ("sin", "relu", "silu")
    z, alpha, grad_out = _random_inputs(basis)

    def ours(z, alpha):
        return actmix_function(z, alpha, omega=2.0, basis=basis)

    with pytest.warns(RuntimeWarning, match="fell back to eager.*RuntimeError") as caught:
        got = _forward_backward(ours, z, alpha, grad_out)
        _forward_backward(ours, z, alpha, grad_out)
    assert len([w for w in caught if "fell back" in str(w.message)]) == 1
    assert "\n" not in str(caught[0].message)
    want = _forward_backward(lambda z, a: _reference_mixture(z, a, 2.0, basis), z, alpha, grad_out)
    for expected, actual in zip(want, got, strict=True):
        assert torch.allclose(actual, expected, rtol=1e-5, atol=1e-6)
    # the failure is sticky until reset(), which makes the next call try compiling again
    assert kernel_cache.error is not None and kernel_cache.error.startswith("RuntimeError")
    kernel_cache.reset()
    assert kernel_cache.error is None
    with pytest.warns(RuntimeWarning, match="fell back to eager"):
        _forward_backward(ours, z, alpha, grad_out)
