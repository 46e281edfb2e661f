import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from actmix.activations import ACTIVATIONS, DiTAC, activation_curves, cpab_transform
from actmix.activations import ditac as ditac_module
from actmix.activations.base import ActivationLayer
from actmix.mlp import MLP
from actmix.plots import plot_learned_curves, save_figure


def rk4_flow(u, theta, *, steps=4000):
    """Independent reference: RK4 on du/dt = v(u), v by linear interpolation (numpy)."""
    theta = np.asarray(theta, dtype=float)
    vertices = np.linspace(0.0, 1.0, theta.size + 2)
    velocities = np.concatenate([[0.0], theta, [0.0]])

    def velocity(x):
        return np.interp(x, vertices, velocities)

    x, h = np.array(u, dtype=float), 1.0 / steps
    for _ in range(steps):
        k1 = velocity(x)
        k2 = velocity(x + h / 2 * k1)
        k3 = velocity(x + h / 2 * k2)
        k4 = velocity(x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def gelu_erf(x):
    return x * 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_registry_name_and_docstring():
    assert ACTIVATIONS["ditac"] is DiTAC
    assert DiTAC.__doc__.strip().splitlines()[0]


def test_registry_has_the_tutorial_fixed_set():
    fixed = {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu", "identity"}
    assert fixed | {"apa", "aglu", "prepu", "ditac"} <= set(ACTIVATIONS)


@pytest.mark.parametrize(("n_cells", "scale"), [(10, 0.3), (10, 1.5), (4, 3.0), (16, 1.0)])
def test_closed_form_matches_a_numerical_ode_solution(n_cells, scale):
    generator = torch.Generator().manual_seed(n_cells)
    theta = scale * torch.randn(n_cells - 1, generator=generator, dtype=torch.float64)
    u = torch.cat(
        [
            torch.linspace(0, 1, n_cells + 1, dtype=torch.float64),  # the vertices themselves
            torch.rand(60, generator=generator, dtype=torch.float64),
        ]
    )
    expected = rk4_flow(u.numpy(), theta.numpy())
    assert np.abs(cpab_transform(u, theta).numpy() - expected).max() < 1e-6


def test_transform_fixes_the_ends_and_is_increasing():
    generator = torch.Generator().manual_seed(3)
    theta = torch.randn(4, 9, generator=generator, dtype=torch.float64)
    u = torch.linspace(0, 1, 5001, dtype=torch.float64)
    for scale in (1.0, 3.0):
        warped = cpab_transform(u, scale * theta)
        assert warped[:, 0].abs().max() < 1e-12 and (warped[:, -1] - 1).abs().max() < 1e-12
        steps = warped.diff(dim=-1)
        # strictly; a strong field squeezes neighbours closer than float64 can tell apart
        assert (steps > 0).all() if scale == 1.0 else (steps > -1e-15).all()


def test_zero_field_is_the_identity_and_starts_moving_along_the_hat_functions():
    # at theta = 0, dT(u)/dtheta_j is the hat function of vertex j at u (time 1)
    u = torch.tensor([0.0, 0.05, 0.13, 0.5, 0.61, 0.999, 1.0], dtype=torch.float64)
    theta = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    warped = cpab_transform(u, theta)
    assert torch.equal(warped.detach(), u)
    for point, value in enumerate(u.tolist()):
        (gradient,) = torch.autograd.grad(warped[point], theta, retain_graph=True)
        hats = [max(0.0, 1 - abs(5 * value - j)) for j in range(1, 5)]
        assert gradient.tolist() == pytest.approx(hats, abs=1e-12)


@pytest.mark.parametrize(
    "theta",
    [
        torch.tensor([0.8, -1.1, 0.4, 1.9, -0.3]),  # zeros of v inside cells, both directions
        torch.zeros(5),
        0.3 + 1e-7 * torch.arange(5.0),  # nearly constant: slopes close to 0
        -torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9]),  # flow to the left everywhere
    ],
)
def test_transform_gradcheck(theta):
    u = torch.linspace(0.01, 0.99, 23, dtype=torch.float64).requires_grad_()
    theta = theta.double().requires_grad_()
    assert torch.autograd.gradcheck(cpab_transform, (u, theta))


def test_transform_broadcasts_leading_dimensions():
    theta = torch.randn(3, 1, 4, dtype=torch.float64)
    u = torch.rand(2, 7, dtype=torch.float64)
    warped = cpab_transform(u, theta)
    assert warped.shape == (3, 2, 7)
    assert torch.allclose(warped[2, 1], cpab_transform(u[1], theta[2, 0]))


def test_zero_theta_is_gelu():
    layer = make_ditac(4)
    points = [-5.0, -3.0, -1.7, -0.2, 0.0, 0.4, 2.9, 3.0, 6.0]
    z = torch.tensor(points).view(1, -1, 1).expand(1, len(points), 4)
    out = layer(z)[0, :, 0].tolist()
    assert out == pytest.approx([gelu_erf(v) for v in points], abs=1e-6)


def make_ditac(width, members=1, *, theta=None, dtype=torch.float32, **options):
    layer = DiTAC(width, members, **options).to(dtype)
    if theta is not None:
        with torch.no_grad():
            layer.theta.copy_(torch.as_tensor(theta, dtype=dtype).expand_as(layer.theta))
    return layer


THETA = [0.9, -0.7, 1.2, 0.4, -1.0, 0.6, 0.3, -0.5, 0.8]


@pytest.mark.parametrize("grid_size", [2048, None])
def test_identity_outside_the_interval_and_continuous_at_its_ends(grid_size):
    layer = make_ditac(1, theta=THETA, dtype=torch.float64, grid_size=grid_size)
    outside = [-9.0, -3.5, -3.0000001, 3.0000001, 4.2, 12.0]
    out = layer(torch.tensor(outside, dtype=torch.float64).view(1, -1, 1))[0, :, 0]
    assert out.tolist() == pytest.approx([gelu_erf(v) for v in outside], rel=1e-12)
    for end in (-3.0, 3.0):
        near = torch.tensor([end - 1e-9, end, end + 1e-9], dtype=torch.float64)
        values = layer(near.view(1, 3, 1))[0, :, 0]
        assert (values - gelu_erf(end)).abs().max() < 1e-6


def test_inside_the_interval_warps_by_the_transform():
    layer = make_ditac(1, theta=THETA, dtype=torch.float64, grid_size=None)
    x = torch.tensor([-2.2, -0.4, 0.0, 1.1, 2.6], dtype=torch.float64)
    u = (x + 3) / 6
    warped = -3 + 6 * torch.from_numpy(rk4_flow(u.numpy(), THETA))
    expected = warped * torch.special.ndtr(x)
    assert torch.allclose(layer(x.view(1, -1, 1))[0, :, 0], expected, atol=1e-6)


@pytest.mark.parametrize("per_neuron", [False, True])
def test_lookup_grid_agrees_with_the_exact_transform(per_neuron):
    exact = make_ditac(3, 2, init_scale=0.15, per_neuron=per_neuron, grid_size=None)
    grid = make_ditac(3, 2, init_scale=0.15, per_neuron=per_neuron)
    assert torch.equal(exact.theta, grid.theta) and exact.theta.abs().max() > 0
    z = 4 * torch.randn(2, 400, 3, generator=torch.Generator().manual_seed(0))
    # linear interpolation error, largest next to zeros of the velocity field
    assert (exact(z) - grid(z)).abs().max() < 1e-3


@pytest.mark.parametrize("per_neuron", [False, True])
@pytest.mark.parametrize("grid_size", [64, None])
def test_layer_gradcheck(per_neuron, grid_size):
    layer = make_ditac(
        3, 2, dtype=torch.float64, init_scale=0.5, per_neuron=per_neuron, grid_size=grid_size
    )
    generator = torch.Generator().manual_seed(1)
    z = 2.5 * torch.randn(2, 4, 3, generator=generator, dtype=torch.float64)
    z.requires_grad_()
    theta = layer.theta.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda z, theta: functional_call(layer, {"theta": theta}, (z,)), (z, theta)
    )


def test_smoothness_prior_by_hand():
    assert make_ditac(4, 2).regularization() is None
    layer = make_ditac(4, 2, n_cells=5, prior_weight=0.3, prior_length_scale=0.2)
    theta = torch.tensor([[[0.5, -0.2, 0.1, 0.7]], [[0.0, 0.0, 0.0, 0.0]]])
    with torch.no_grad():
        layer.theta.copy_(theta)
    positions = np.arange(1, 5) / 5
    kernel = np.exp(-((positions[:, None] - positions[None, :]) ** 2) / (2 * 0.2**2))
    kernel += 1e-4 * np.eye(4)
    first = theta[0, 0].double().numpy()
    expected = 0.3 * first @ np.linalg.solve(kernel, first)
    penalty = layer.regularization()
    assert penalty.shape == (2,)
    assert penalty[0].item() == pytest.approx(expected, rel=1e-5) and penalty[1].item() == 0


def test_prior_initialisation_is_seeded_shared_by_members_and_leaves_global_rng_alone():
    assert torch.equal(make_ditac(4, 3).theta, torch.zeros(3, 1, 9))
    state = torch.get_rng_state()
    first = make_ditac(4, 3, init_scale=0.2, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first.theta, make_ditac(4, 3, init_scale=0.2, seed=5).theta)
    assert not torch.equal(first.theta, make_ditac(4, 3, init_scale=0.2, seed=6).theta)
    assert torch.equal(first.theta[0], first.theta[2])
    per_neuron = make_ditac(4, 2, init_scale=0.2, per_neuron=True)
    assert per_neuron.theta.shape == (2, 4, 9)
    assert not torch.equal(per_neuron.theta[0, 0], per_neuron.theta[0, 1])


def test_batched_mlp_member_equals_its_standalone_copy():
    model = MLP(3, 1, (8, 8), "ditac", members=3, activation_options={"per_neuron": True})
    with torch.no_grad():
        for layer in model.activations:
            layer.theta.normal_(std=0.3)
    x = torch.randn(5, 3)
    single = model.member(1)
    assert torch.allclose(single(x), model(x.expand(3, 5, 3))[1], atol=1e-6)
    decayed, _ = model.parameter_groups()
    assert all(id(layer.theta) not in {id(p) for p in decayed} for layer in model.activations)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"interval": (3.0, -3.0)}, r"interval must be finite with a < b, got \(3.0, -3.0\)"),
        ({"interval": 3.0}, "interval must be a pair"),
        ({"n_cells": 1}, "n_cells must be an integer >= 2, got 1"),
        ({"n_cells": 4.5}, "n_cells must be an integer >= 2, got 4.5"),
        ({"grid_size": 1}, "grid_size must be an integer >= 2, got 1"),
        ({"init_scale": -0.1}, "init_scale must be a finite number >= 0, got -0.1"),
        ({"prior_length_scale": 0.0}, "prior_length_scale must be > 0, got 0.0"),
    ],
)
def test_bad_options_name_the_value(options, fragment):
    with pytest.raises(ValueError, match=fragment):
        DiTAC(4, **options)


def test_activation_curves_of_member_zero_and_their_plot(tmp_path):
    model = MLP(2, 1, (6, 5), "ditac", members=2)
    with torch.no_grad():
        model.activations[1].theta[0].fill_(0.5)
    x = np.linspace(-4, 4, 41)
    curves = activation_curves(model, x, neurons=3)
    assert [c.shape for c in curves] == [(3, 41), (3, 41)]
    gelu = np.array([gelu_erf(v) for v in x])
    assert np.allclose(curves[0], gelu, atol=1e-6)  # theta = 0: GELU
    assert not np.allclose(curves[1], gelu, atol=1e-3)  # member 0's warped layer
    single = activation_curves(model.activations[1], x, neurons=2, width=5)
    assert np.allclose(single[0], curves[1][:2])
    path = save_figure(plot_learned_curves(x, curves, title="DiTAC"), tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    with pytest.raises(ValueError, match="width"):
        activation_curves(model.activations[0], x)


def test_network_computes_all_lookup_tables_in_one_integration_with_equal_results(monkeypatch):
    model = MLP(5, 1, (6, 6, 6), "ditac", members=2, seed=0, activation_options={"init_scale": 0.5})
    with torch.no_grad():  # distinct transforms per layer and member
        for k, layer in enumerate(model.activation_layers()):
            layer.theta.add_(0.1 * (k + 1) * torch.randn(layer.theta.shape))
    x = torch.randn(2, 7, 5, generator=torch.Generator().manual_seed(2))

    def output_and_gradients():
        model.zero_grad()
        out = model(x)
        out.square().sum().backward()
        return out.detach(), [layer.theta.grad.clone() for layer in model.activation_layers()]

    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return cpab_transform(*args, **kwargs)

    monkeypatch.setattr(ditac_module, "cpab_transform", counted)
    joint_out, joint_grads = output_and_gradients()
    assert len(calls) == 1  # three layers, one integration
    # the same network with each layer computing its own tables (the protocol's default)
    monkeypatch.setattr(DiTAC, "prepare_jointly", ActivationLayer.prepare_jointly)
    alone_out, alone_grads = output_and_gradients()
    assert len(calls) == 4
    torch.testing.assert_close(joint_out, alone_out, rtol=0, atol=1e-6)
    for joint, alone in zip(joint_grads, alone_grads, strict=True):
        torch.testing.assert_close(joint, alone, rtol=1e-6, atol=1e-7)
