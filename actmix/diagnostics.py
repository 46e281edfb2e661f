"""Activation diagnostics: gradient flow, dead units, stability under stress, capacity.

Four small controlled experiments, run for any registry activation (trainable
ones included) on the project's own ``MLP`` with Xavier-uniform weights and zero
biases, so that activations are compared on equal footing:

1. gradient flow: mean ``|dL/dW|`` per linear layer of a fresh network, ``L = mean(output)``;
2. sparsity and dead units after a short high-learning-rate SGD run;
3. stability: SGD at growing learning rates, Adam at growing depths, diverged or final loss;
4. capacity: final MSE of fitting sin(x), |x|, a smooth step, sin(10x) and x^3 on [-2, 2].

Every random draw comes from a ``torch.Generator`` seeded from ``seed``.

>>> results = run_diagnostics(["relu", "tanh"], settings=DiagnosticSettings.quick())
>>> sorted(results["capacity"]["relu"])
['sin(10x)', 'sin(x)', 'smooth step', 'x^3', '|x|']
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from actmix._diagnostics_figures import (
    diagnostics_report,
    plot_capacity,
    plot_gradient_flow,
    plot_sparsity,
    plot_stability,
)
from actmix._threads import torch_threads
from actmix.activations import check_activation
from actmix.mlp import MLP
from actmix.plots import save_figure

__all__ = [
    "TARGET_FUNCTIONS",
    "DiagnosticSettings",
    "diagnostics_report",
    "plot_capacity",
    "plot_gradient_flow",
    "plot_sparsity",
    "plot_stability",
    "run_diagnostics",
    "write_diagnostics",
]

TARGET_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sin(x)": torch.sin,
    "|x|": torch.abs,
    "smooth step": lambda x: torch.sigmoid(10 * x),
    "sin(10x)": lambda x: torch.sin(10 * x),
    "x^3": lambda x: x * x * x,
}
Options = Mapping[str, Any] | None  # an activation's constructor options
# (activation, settings, *, seed, options) -> that experiment's JSON-ready results
Experiment = Callable[..., Mapping[str, Any]]
_DIVERGED_LOSS = 1e6  # a loss or gradient entry above this counts as divergence
_DEAD_THRESHOLD = 1e-6  # |activation| below this counts as zero


@dataclass(frozen=True, slots=True)
class DiagnosticSettings:
    """Sizes of the four experiments; the defaults follow the activation tutorial."""

    width: int = 64
    gradient_depths: tuple[int, ...] = (5, 10, 20, 50)
    gradient_batch: int = 32
    sparsity_depth: int = 10
    sparsity_width: int = 128
    sparsity_samples: int = 1000
    sparsity_steps: int = 100
    sparsity_lr: float = 0.1
    stress_lrs: tuple[float, ...] = (1e-3, 1e-2, 0.1, 0.5, 1.0)
    lr_stress_depth: int = 10
    lr_stress_steps: int = 100
    stress_depths: tuple[int, ...] = (5, 10, 20, 50, 100)
    depth_stress_lr: float = 0.01
    depth_stress_steps: int = 200
    stress_points: int = 200
    capacity_depth: int = 5
    capacity_steps: int = 500
    capacity_lr: float = 1e-3
    capacity_train_points: int = 200
    capacity_test_points: int = 500

    def __post_init__(self) -> None:
        sizes = {k: v for k, v in asdict(self).items() if isinstance(v, int)}
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        for name in ("gradient_depths", "stress_lrs", "stress_depths"):
            values = getattr(self, name)
            if not values or min(values) <= 0:
                raise ValueError(f"{name} must be non-empty and positive, got {list(values)}")

    @classmethod
    def quick(cls) -> DiagnosticSettings:
        """Tiny networks and few steps: seconds per activation on a CPU (for tests and a look)."""
        return cls(
            width=16,
            gradient_depths=(5, 10),
            sparsity_depth=4,
            sparsity_width=32,
            sparsity_samples=256,
            sparsity_steps=30,
            lr_stress_depth=4,
            lr_stress_steps=30,
            stress_depths=(5, 10, 20),
            depth_stress_steps=30,
            stress_points=100,
            capacity_depth=2,
            capacity_steps=150,
            capacity_lr=1e-2,
            capacity_train_points=100,
            capacity_test_points=200,
        )


# --- building blocks -----------------------------------------------------------------------


def _network(
    activation: str,
    in_features: int,
    width: int,
    depth: int,
    *,
    seed: int,
    members: int = 1,
    options: Mapping[str, Any] | None = None,
) -> MLP:
    """An MLP with Xavier-uniform weights and zero biases drawn from ``seed``."""
    model = MLP(
        in_features,
        1,
        [width] * depth,
        activation,
        members=members,
        seed=seed,
        activation_options=options,
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight, bias in zip(model.weights, model.biases, strict=True):
            fan_in, fan_out = weight.shape[1:]
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            weight.copy_(torch.rand(weight.shape, generator=generator).mul_(2 * bound).sub_(bound))
            bias.zero_()
    return model


def _train(
    model: MLP, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer, steps: int
) -> dict[str, Any]:
    """Full-batch MSE training; stops at the first non-finite or exploding loss or gradient."""
    losses: list[float] = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)
        value = loss.item()
        if not math.isfinite(value) or value > _DIVERGED_LOSS:
            return {"diverged": True, "final_loss": None, "steps": len(losses)}
        losses.append(value)
        loss.backward()
        largest = max(float(p.grad.abs().max()) for p in model.parameters() if p.grad is not None)
        if not math.isfinite(largest) or largest > _DIVERGED_LOSS:
            return {"diverged": True, "final_loss": None, "steps": len(losses)}
        optimizer.step()
    return {"diverged": False, "final_loss": losses[-1], "steps": len(losses)}


def _stress_data(points: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(-2, 2, points).unsqueeze(1)
    return x, torch.sin(math.pi * x)


# --- the four experiments ------------------------------------------------------------------


def gradient_flow(
    activation: str, settings: DiagnosticSettings, *, seed: int, options: Options = None
) -> dict[str, Any]:
    """Per depth: mean ``|grad|`` of each linear layer's weight (input layer first)."""
    results = {}
    generator = torch.Generator().manual_seed(seed)
    for depth in settings.gradient_depths:
        model = _network(activation, 1, settings.width, depth, seed=seed, options=options)
        x = torch.randn(settings.gradient_batch, 1, generator=generator)
        model(x).mean().backward()
        magnitudes = [float(weight.grad.abs().mean()) for weight in model.weights]
        first, last = magnitudes[0], magnitudes[-1]
        results[str(depth)] = {
            "grad_magnitudes": magnitudes,
            # how much smaller the input layer's gradient is than the output layer's
            "output_to_input_ratio": last / first if first > 0 else math.inf,
        }
    return results


def sparsity_and_dead_units(
    activation: str, settings: DiagnosticSettings, *, seed: int, options: Options = None
) -> dict[str, Any]:
    """Share of near-zero activations and of units zero on every sample, after SGD at a high LR."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(settings.sparsity_samples, 10, generator=generator)
    noise = torch.randn(settings.sparsity_samples, 1, generator=generator)
    y = torch.sin(x.sum(dim=1, keepdim=True)) + 0.1 * noise
    model = _network(
        activation,
        10,
        settings.sparsity_width,
        settings.sparsity_depth,
        seed=seed,
        options=options,
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.sparsity_lr)
    training = _train(model, x, y, optimizer, settings.sparsity_steps)
    outputs: list[torch.Tensor] = []
    hooks = [
        layer.register_forward_hook(lambda _module, _inputs, output: outputs.append(output[0]))
        for layer in model.activation_layers()
    ]
    model.eval()
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    near_zero = [(output.abs() < _DEAD_THRESHOLD) for output in outputs]  # [samples, width]
    layer_sparsity = [float(zero.float().mean()) for zero in near_zero]
    layer_dead = [float(zero.all(dim=0).float().mean()) for zero in near_zero]
    return {
        "layer_sparsity": layer_sparsity,
        "layer_dead": layer_dead,
        "mean_sparsity": float(np.mean(layer_sparsity)),
        "mean_dead": float(np.mean(layer_dead)),
        "diverged": training["diverged"],
    }


def stability(
    activation: str, settings: DiagnosticSettings, *, seed: int, options: Options = None
) -> dict[str, Any]:
    """Learning-rate stress (SGD) and depth stress (Adam) on ``sin(pi x)``: diverged or loss."""
    x, y = _stress_data(settings.stress_points)
    by_lr = {}
    for lr in settings.stress_lrs:
        model = _network(
            activation, 1, settings.width, settings.lr_stress_depth, seed=seed, options=options
        )
        optimizer: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        by_lr[repr(float(lr))] = _train(model, x, y, optimizer, settings.lr_stress_steps)
    by_depth = {}
    for depth in settings.stress_depths:
        model = _network(activation, 1, settings.width, depth, seed=seed, options=options)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.depth_stress_lr)
        by_depth[str(depth)] = _train(model, x, y, optimizer, settings.depth_stress_steps)
    return {"learning_rate": by_lr, "depth": by_depth}


def capacity(
    activation: str, settings: DiagnosticSettings, *, seed: int, options: Options = None
) -> dict[str, float | None]:
    """Test MSE of fitting each target function (one member per target, trained together)."""
    targets = list(TARGET_FUNCTIONS.values())
    x_train = torch.linspace(-2, 2, settings.capacity_train_points).view(1, -1, 1)
    x_test = torch.linspace(-2, 2, settings.capacity_test_points).view(1, -1, 1)
    y_train = torch.cat([target(x_train) for target in targets])
    y_test = torch.cat([target(x_test) for target in targets])
    members = len(targets)
    model = _network(
        activation,
        1,
        settings.width,
        settings.capacity_depth,
        seed=seed,
        members=members,
        options=options,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.capacity_lr)
    inputs = x_train.expand(members, -1, -1)
    for _ in range(settings.capacity_steps):
        optimizer.zero_grad()
        # summed over members: each member's gradient is its own MSE's gradient
        loss = (model(inputs) - y_train).pow(2).mean(dim=(1, 2)).sum()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        mse = (model(x_test.expand(members, -1, -1)) - y_test).pow(2).mean(dim=(1, 2))
    return {
        name: (float(value) if math.isfinite(float(value)) else None)
        for name, value in zip(TARGET_FUNCTIONS, mse, strict=True)
    }


def run_diagnostics(
    activations: Sequence[str],
    *,
    settings: DiagnosticSettings | None = None,
    seed: int = 0,
    activation_options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
    threads: int | None = 1,
) -> dict[str, Any]:
    """All four experiments for each activation; a JSON-ready dict keyed by experiment.

    ``activation_options`` maps an activation name to its constructor options.
    ``threads`` sets torch's intra-op threads for the run (restored afterwards):
    these networks are so small that one thread is fastest, and several threads
    spin-wait badly on a busy machine. ``None`` leaves the setting alone.
    """
    names = [check_activation(name) for name in activations]
    if not names:
        raise ValueError("give at least one activation to diagnose")
    if len(set(names)) != len(names):
        raise ValueError(f"an activation is listed twice: {list(names)}")
    settings = settings or DiagnosticSettings()
    options = dict(activation_options or {})
    experiments: dict[str, Experiment] = {
        "gradient_flow": gradient_flow,
        "sparsity": sparsity_and_dead_units,
        "stability": stability,
        "capacity": capacity,
    }
    results: dict[str, Any] = {"settings": asdict(settings), "seed": seed}
    results.update({key: {} for key in experiments})
    with torch_threads(threads):
        _run_all(names, experiments, results, settings, seed, options, progress)
    return results


def _run_all(
    names: Sequence[str],
    experiments: Mapping[str, Experiment],
    results: dict[str, Any],
    settings: DiagnosticSettings,
    seed: int,
    options: Mapping[str, Mapping[str, Any]],
    progress: Callable[[str], None] | None,
) -> None:
    for name in names:
        for offset, (key, experiment) in enumerate(experiments.items()):
            # one seed per experiment, shared by all activations: equal starting weights
            results[key][name] = experiment(
                name, settings, seed=seed + 1000 * offset, options=options.get(name)
            )
        if progress is not None:
            progress(f"diagnosed {name}")


def write_diagnostics(results: Mapping[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """Write ``diagnostics.json``, ``diagnostics.md`` and the four PNG figures to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [
        save_figure(plot_gradient_flow(results), out / "gradient_flow.png"),
        save_figure(plot_sparsity(results), out / "sparsity.png"),
        save_figure(plot_stability(results), out / "stability.png"),
        save_figure(plot_capacity(results), out / "capacity.png"),
    ]
    json_path = out / "diagnostics.json"
    json_path.write_text(json.dumps(results, indent=2, allow_nan=True))
    report_path = out / "diagnostics.md"
    report_path.write_text(diagnostics_report(results))
    return [*files, json_path, report_path]
