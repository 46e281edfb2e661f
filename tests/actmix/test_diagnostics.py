"""The activation diagnostics: behaviours the tutorial predicts, determinism, files."""

from __future__ import annotations

import json

import pytest
import torch

from actmix.diagnostics import (
    TARGET_FUNCTIONS,
    DiagnosticSettings,
    plot_capacity,
    plot_gradient_flow,
    plot_sparsity,
    plot_stability,
    run_diagnostics,
    write_diagnostics,
)
from actmix.plots import save_figure

SMALL = DiagnosticSettings(
    width=8,
    gradient_depths=(3,),
    sparsity_depth=2,
    sparsity_width=16,
    sparsity_samples=64,
    sparsity_steps=5,
    stress_lrs=(1e-3, 1.0),
    lr_stress_depth=2,
    lr_stress_steps=5,
    stress_depths=(2,),
    depth_stress_steps=5,
    stress_points=32,
    capacity_depth=1,
    capacity_steps=5,
    capacity_train_points=16,
    capacity_test_points=16,
)


@pytest.fixture(scope="module")
def quick_results():
    return run_diagnostics(["relu", "tanh", "actmix"], settings=DiagnosticSettings.quick())


def test_quick_run_covers_every_experiment(quick_results):
    assert set(quick_results["gradient_flow"]["actmix"]) == {"5", "10"}
    # one gradient per linear layer: depth hidden layers + the output layer
    assert len(quick_results["gradient_flow"]["relu"]["10"]["grad_magnitudes"]) == 11
    assert set(quick_results["stability"]["tanh"]["learning_rate"]) == {
        "0.001",
        "0.01",
        "0.1",
        "0.5",
        "1.0",
    }
    assert set(quick_results["capacity"]["actmix"]) == set(TARGET_FUNCTIONS)
    json.dumps(quick_results, allow_nan=True)  # JSON-ready


def test_relu_is_sparse_and_tanh_is_not(quick_results):
    # relu outputs exact zeros for negative inputs; tanh is zero only at z = 0
    assert quick_results["sparsity"]["relu"]["mean_sparsity"] > 0.2
    assert quick_results["sparsity"]["tanh"]["mean_sparsity"] < 0.01
    assert quick_results["sparsity"]["tanh"]["mean_dead"] == 0.0


def test_small_learning_rate_never_diverges(quick_results):
    for name in ("relu", "tanh", "actmix"):
        entry = quick_results["stability"][name]["learning_rate"]["0.001"]
        assert not entry["diverged"] and entry["final_loss"] > 0


def test_same_seed_same_numbers_and_threads_restored():
    threads = torch.get_num_threads()
    first = run_diagnostics(["relu", "prelu"], settings=SMALL, seed=7)
    second = run_diagnostics(["relu", "prelu"], settings=SMALL, seed=7)
    assert first == second
    assert run_diagnostics(["relu"], settings=SMALL, seed=8) != run_diagnostics(
        ["relu"], settings=SMALL, seed=7
    )
    assert torch.get_num_threads() == threads


def test_bad_activation_lists_are_rejected():
    with pytest.raises(ValueError, match="unknown activation 'relux'"):
        run_diagnostics(["relux"], settings=SMALL)
    with pytest.raises(ValueError, match="twice"):
        run_diagnostics(["relu", "relu"], settings=SMALL)
    with pytest.raises(ValueError, match="width must be >= 1"):
        DiagnosticSettings(width=0)


def test_write_diagnostics_files(quick_results, tmp_path):
    files = write_diagnostics(quick_results, tmp_path)
    assert {path.name for path in files} == {
        "gradient_flow.png",
        "sparsity.png",
        "stability.png",
        "capacity.png",
        "diagnostics.json",
        "diagnostics.md",
    }
    for path in files:
        assert path.stat().st_size > 200
    report = (tmp_path / "diagnostics.md").read_text()
    assert "\\|x\\|" in report  # the |x| column does not break the markdown table
    assert "| actmix |" in report


@pytest.mark.parametrize("plot", [plot_gradient_flow, plot_sparsity, plot_stability, plot_capacity])
def test_each_plot_writes_a_png(quick_results, plot, tmp_path):
    path = save_figure(plot(quick_results), tmp_path / "figure.png")
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 1000
