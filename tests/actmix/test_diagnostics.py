"""The activation diagnostics: behaviours the tutorial predicts, determinism, files."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
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


def _labelled(axis, label: str):
    return next(line for line in axis.get_lines() if line.get_label() == label)


def _check_gradient_flow(figure, results) -> None:
    assert [axis.get_title() for axis in figure.axes] == ["depth 5", "depth 10"]
    for axis, depth in zip(figure.axes, ("5", "10"), strict=True):
        for name in ("relu", "tanh", "actmix"):
            magnitudes = results["gradient_flow"][name][depth]["grad_magnitudes"]
            line = _labelled(axis, name)
            np.testing.assert_allclose(line.get_xdata(), np.arange(1, len(magnitudes) + 1))
            np.testing.assert_allclose(line.get_ydata(), np.maximum(magnitudes, 1e-30))


def _check_sparsity(figure, results) -> None:
    left, right = figure.axes
    assert (left.get_title(), right.get_title()) == ("Sparsity", "Dead units")
    names = [label.get_text() for label in left.get_xticklabels()]
    assert names == ["relu", "tanh", "actmix"]
    for axis, key in ((left, "mean_sparsity"), (right, "mean_dead")):
        heights = [bar.get_height() for bar in axis.patches]
        np.testing.assert_allclose(heights, [100 * results["sparsity"][n][key] for n in names])


def _check_stability(figure, results) -> None:
    left, right = figure.axes
    assert (left.get_title(), right.get_title()) == ("Learning-rate stress", "Depth stress")
    for axis, key in ((left, "learning_rate"), (right, "depth")):
        entries = results["stability"]["tanh"][key].values()
        expected = [10.0 if e["diverged"] else min(e["final_loss"], 10.0) for e in entries]
        np.testing.assert_allclose(_labelled(axis, "tanh").get_ydata(), expected)


def _check_capacity(figure, results) -> None:
    axis = figure.axes[0]
    assert axis.get_title().startswith("Representational capacity")
    assert [label.get_text() for label in axis.get_xticklabels()] == list(TARGET_FUNCTIONS)
    names = [label.get_text() for label in axis.get_yticklabels()]
    assert names == ["relu", "tanh", "actmix"]
    mse = np.array([[results["capacity"][n][t] for t in TARGET_FUNCTIONS] for n in names])
    np.testing.assert_allclose(axis.get_images()[0].get_array(), np.log10(mse + 1e-12))


@pytest.mark.parametrize(
    ("plot", "check"),
    [
        (plot_gradient_flow, _check_gradient_flow),
        (plot_sparsity, _check_sparsity),
        (plot_stability, _check_stability),
        (plot_capacity, _check_capacity),
    ],
    ids=["gradient_flow", "sparsity", "stability", "capacity"],
)
def test_each_plot_draws_the_results_and_writes_a_png(quick_results, plot, check, tmp_path):
    figure = plot(quick_results)
    check(figure, quick_results)
    path = save_figure(figure, tmp_path / "figure.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    # not a blank canvas: axes, text and data give the pixels a spread
    assert matplotlib.image.imread(path)[..., :3].std() > 0.05
