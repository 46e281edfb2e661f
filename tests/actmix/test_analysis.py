"""Mixing-weight statistics against hand computation; every figure draws the data it is given."""

from __future__ import annotations

import json
import math

import matplotlib.image
import numpy as np
import pytest
import torch

from actmix import plots
from actmix.analysis import (
    analyze_model,
    effective_activations,
    layer_statistics,
    load_model,
    neuron_entropies,
    save_model,
)
from actmix.mlp import MLP

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# coefficients per neuron over the default basis (sin, tanh, relu, identity)
LAYER_1 = [[0.7, 0.1, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]]
LAYER_2 = [[0.1, 0.6, 0.2, 0.1], [0.1, 0.6, 0.2, 0.1]]


def _tiny_actmix() -> MLP:
    """Width 2, K 4, two layers; logits = log(alpha), so softmax at T = 1 gives alpha back."""
    model = MLP(3, 1, (2, 2), "actmix", seed=0)
    with torch.no_grad():
        for layer, alpha in zip(model.activation_layers(), (LAYER_1, LAYER_2), strict=True):
            layer.logits.copy_(torch.tensor(alpha).log().unsqueeze(0))
    return model


def _is_png(path) -> bool:
    """A real PNG with something drawn on it: its pixels are not one flat colour."""
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        return False
    pixels = matplotlib.image.imread(path)[..., :3]
    # a blank white figure has std 0; axes, text and data lift it well above 0.05
    return float(pixels.std()) > 0.05


def test_layer_statistics_match_hand_computation():
    first, second = layer_statistics(_tiny_actmix())
    # -(0.7 ln 0.7 + 3 * 0.1 ln 0.1) = 0.249672 + 0.690776
    entropy_a = 0.940448
    # -(0.1 ln 0.1 + 0.2 ln 0.2 + 0.3 ln 0.3 + 0.4 ln 0.4)
    #   = 0.230259 + 0.321888 + 0.361192 + 0.366516
    entropy_b = 1.279854
    assert first["entropy"]["min"] == pytest.approx(entropy_a, abs=1e-5)
    assert first["entropy"]["max"] == pytest.approx(entropy_b, abs=1e-5)
    assert first["entropy"]["mean"] == pytest.approx((entropy_a + entropy_b) / 2, abs=1e-5)
    assert first["entropy"]["max_possible"] == pytest.approx(1.386294, abs=1e-6)  # ln 4
    assert first["dominant_counts"] == {"sin": 1, "tanh": 0, "relu": 0, "identity": 1}
    expected_means = {"sin": 0.4, "tanh": 0.15, "relu": 0.2, "identity": 0.25}
    for name, value in expected_means.items():
        assert first["mean_coefficients"][name] == pytest.approx(value, abs=1e-6)
    assert second["dominant_counts"] == {"sin": 0, "tanh": 2, "relu": 0, "identity": 0}
    # -(2 * 0.1 ln 0.1 + 0.6 ln 0.6 + 0.2 ln 0.2) = 0.460517 + 0.306495 + 0.321888
    assert second["entropy"]["min"] == pytest.approx(1.088900, abs=1e-5)
    assert second["neurons"] == 2 and second["layer"] == 2


def test_entropy_treats_zero_coefficients_as_zero():
    assert neuron_entropies(np.array([[1.0, 0.0, 0.0]])) == pytest.approx([0.0])
    assert neuron_entropies(np.array([[0.5, 0.5]])) == pytest.approx([math.log(2)])


def test_effective_activation_is_the_weighted_sum_of_the_basis():
    grid = np.array([-1.0, 0.0, 1.0, 2.0])
    first_layer = effective_activations(_tiny_actmix(), grid)[0]
    lowest = [0.7 * math.sin(z) + 0.1 * math.tanh(z) + 0.1 * max(z, 0) + 0.1 * z for z in grid]
    highest = [0.1 * math.sin(z) + 0.2 * math.tanh(z) + 0.3 * max(z, 0) + 0.4 * z for z in grid]
    np.testing.assert_allclose(first_layer["lowest"], lowest, atol=1e-6)
    np.testing.assert_allclose(first_layer["highest"], highest, atol=1e-6)
    assert first_layer["lowest_neuron"][0] == 0 and first_layer["highest_neuron"][0] == 1
    np.testing.assert_allclose(first_layer["basis:relu"], [0, 0, 1, 2], atol=1e-7)


def test_model_file_round_trip(tmp_path):
    model = _tiny_actmix()
    path = save_model(model, tmp_path / "model.pt")
    stored = torch.load(path, weights_only=True)  # plain types only
    assert stored["spec"]["activation"] == "actmix"
    loaded = load_model(path)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loaded(x), model.eval()(x))


def test_save_model_needs_a_single_member(tmp_path):
    with pytest.raises(ValueError, match=r"model\.member"):
        save_model(MLP(3, 1, (4,), "relu", members=2), tmp_path / "m.pt")


def test_load_model_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pt"):
        load_model(tmp_path / "nope.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not a model file"):
        load_model(foreign)


def test_analyze_actmix_writes_every_figure_and_the_statistics(tmp_path):
    files = analyze_model(_tiny_actmix(), tmp_path)
    names = {path.name for path in files}
    assert names == {
        "mixing_heatmaps.png",
        "entropy_distributions.png",
        "dominant_basis.png",
        "neuron_coefficients.png",
        "effective_activations.png",
        "layer_topology.png",
        "specialisation_spectrum.png",
        "layer_statistics.json",
    }
    assert all(_is_png(path) for path in files if path.suffix == ".png")
    summary = json.loads((tmp_path / "layer_statistics.json").read_text())
    assert summary["basis"] == ["sin", "tanh", "relu", "identity"]
    assert summary["layers"][1]["dominant_counts"]["tanh"] == 2


@pytest.mark.parametrize("activation", ["prelu", "relu"])
def test_analyze_other_activations_draws_learned_curves(tmp_path, activation):
    files = analyze_model(MLP(3, 1, (4, 4), activation), tmp_path)
    assert {path.name for path in files} == {"learned_curves.png", "activation_summary.json"}
    assert _is_png(tmp_path / "learned_curves.png")
    with pytest.raises(ValueError, match="no mixing weights"):
        layer_statistics(MLP(3, 1, (4,), activation))


BASIS = ("sin", "tanh", "relu", "identity")
WEIGHTS = [np.array(LAYER_1), np.array(LAYER_2)]
GRID = np.linspace(-2, 2, 9)


def _titles(figure) -> list[str]:
    return [axis.get_title() for axis in figure.axes if axis.get_title()]


def _line(axis, label: str):
    return next(line for line in axis.get_lines() if line.get_label() == label)


def _check_entropy(figure) -> None:
    assert _titles(figure) == ["layer 1", "layer 2"]
    assert figure.axes[0].get_xlabel() == "entropy (nats)"
    # one histogram bar count per neuron: 2 neurons in layer 1, 1 in layer 2
    counts = [sum(bar.get_height() for bar in axis.patches) for axis in figure.axes]
    assert counts == [2, 1]


def _check_dominant(figure) -> None:
    assert _titles(figure) == ["layer 1 (2 neurons)", "layer 2 (2 neurons)"]
    labels = [
        [text.get_text() for text in axis.texts if text.get_text() in BASIS] for axis in figure.axes
    ]
    assert labels == [["sin", "identity"], ["tanh"]]


def _check_coefficients(figure) -> None:
    assert [axis.get_ylabel() for axis in figure.axes] == ["layer 1\nalpha", "layer 2\nalpha"]
    # stacked bars: basis-major, neuron-minor; heights are the coefficients
    heights = [bar.get_height() for bar in figure.axes[0].patches]
    np.testing.assert_allclose(heights, np.array(LAYER_1).T.ravel())


def _check_effective(figure) -> None:
    axis = figure.axes[0]
    assert axis.get_xlabel() == "pre-activation z"
    highest = next(line for line in axis.get_lines() if line.get_label().startswith("highest"))
    assert "neuron 1 (H=1.20)" in highest.get_label()
    np.testing.assert_allclose(highest.get_ydata(), GRID)
    np.testing.assert_allclose(_line(axis, "tanh").get_ydata(), np.tanh(GRID))


def _check_topology(figure) -> None:
    axis = figure.axes[0]
    assert axis.get_ylabel() == "mean mixing coefficient"
    for name, value in zip(BASIS, [0.4, 0.15, 0.2, 0.25], strict=True):
        np.testing.assert_allclose(_line(axis, name).get_ydata(), [value] * 3)


def _check_spectrum(figure) -> None:
    axis = figure.axes[0]
    # sorted, most specialised first
    np.testing.assert_allclose(_line(axis, "layer 1").get_ydata(), [0.7, 0.4])
    np.testing.assert_allclose(_line(axis, "layer 2").get_ydata(), [0.6])


def _check_curves(figure) -> None:
    axis = figure.axes[0]
    assert axis.get_title() == "layer 1" and figure.get_suptitle() == "Learned activation curves"
    np.testing.assert_allclose(_line(axis, "neuron 1").get_ydata(), GRID**2)


def _check_history(figure) -> None:
    axis = figure.axes[0]
    assert (axis.get_xlabel(), axis.get_ylabel()) == ("trial number", "val")
    np.testing.assert_allclose(axis.collections[0].get_offsets(), [[0, 3.0], [2, 2.0], [3, 2.5]])
    np.testing.assert_allclose(_line(axis, "best so far").get_ydata(), [3.0, 2.0, 2.0])


def _check_history_outlier(figure) -> None:
    axis = figure.axes[0]
    trials = axis.collections[0].get_offsets()
    assert 100.0 not in trials[:, 1] and len(trials) == 4  # the outlier is drawn at the edge


def _check_importance(figure) -> None:
    axis = figure.axes[0]
    assert [label.get_text() for label in axis.get_yticklabels()] == ["omega_0", "lr"]
    np.testing.assert_allclose([bar.get_width() for bar in axis.patches], [0.3, 0.7])


def _check_folds(figure) -> None:
    axis = figure.axes[0]
    assert axis.get_ylabel() == "test rmse" and axis.get_xlabel() == "outer fold (1-based)"
    np.testing.assert_allclose(_line(axis, "relu").get_xydata(), [[1, 1.1], [2, 1.3]])


@pytest.mark.parametrize(
    ("draw", "check"),
    [
        (
            lambda: plots.plot_entropy_distributions([np.array([0.1, 0.9]), np.array([1.2])], 4),
            _check_entropy,
        ),
        (
            lambda: plots.plot_dominant_basis(np.array([[1, 0, 0, 1], [0, 2, 0, 0]]), BASIS),
            _check_dominant,
        ),
        (lambda: plots.plot_neuron_coefficients(WEIGHTS, BASIS), _check_coefficients),
        (
            lambda: plots.plot_effective_activations(
                GRID,
                [
                    {
                        "highest": GRID,
                        "lowest": np.tanh(GRID),
                        "highest_neuron": np.array([1, 1.2]),
                        "lowest_neuron": np.array([0, 0.3]),
                        "basis:tanh": np.tanh(GRID),
                    }
                ],
            ),
            _check_effective,
        ),
        (
            lambda: plots.plot_layer_topology(np.array([[0.4, 0.15, 0.2, 0.25]] * 3), BASIS),
            _check_topology,
        ),
        (
            lambda: plots.plot_specialisation_spectrum([np.array([0.4, 0.7]), np.array([0.6])], 4),
            _check_spectrum,
        ),
        (lambda: plots.plot_learned_curves(GRID, [np.vstack([GRID, GRID**2])]), _check_curves),
        (
            lambda: plots.plot_optimisation_history(
                [0, 2, 3], [3.0, 2.0, 2.5], [3.0, 2.0, 2.0], objective="val"
            ),
            _check_history,
        ),
        (
            lambda: plots.plot_optimisation_history(
                [0, 1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0, 100.0], [1.0] * 5, objective="val"
            ),
            _check_history_outlier,
        ),
        (lambda: plots.plot_param_importances({"lr": 0.7, "omega_0": 0.3}), _check_importance),
        (
            lambda: plots.plot_fold_scores(
                {"actmix": {0: 1.0, 1: 1.2}, "relu": {0: 1.1, 1: 1.3}}, metric="rmse"
            ),
            _check_folds,
        ),
    ],
    ids=[
        "entropy",
        "dominant",
        "coefficients",
        "effective",
        "topology",
        "spectrum",
        "curves",
        "history",
        "history-outlier",
        "importance",
        "folds",
    ],
)
def test_each_plot_draws_its_data_and_writes_a_png(tmp_path, draw, check):
    figure = draw()
    check(figure)
    assert _is_png(plots.save_figure(figure, tmp_path / "figure.png"))


def test_history_axis_leaves_out_a_far_outlier():
    # quartiles 2 and 4: the axis ends 3 interquartile ranges above, at 10, not at 100
    assert plots._robust_range(np.array([1.0, 2.0, 3.0, 4.0, 100.0])) == (1.0, 10.0)
    assert plots._robust_range(np.array([1.0, 2.0, 3.0])) == (1.0, 3.0)
    figure = plots.plot_optimisation_history(
        [0, 1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0, 100.0], [1.0] * 5, objective="val"
    )
    assert figure.axes[0].get_ylim()[1] < 11
    plots.plt.close(figure)


@pytest.mark.parametrize(
    "draw",
    [
        lambda: plots.plot_optimisation_history([], [], [], objective="val"),
        lambda: plots.plot_param_importances({}),
        lambda: plots.plot_fold_scores({}, metric="rmse"),
    ],
    ids=["history", "importance", "folds"],
)
def test_report_plots_refuse_empty_input(draw):
    with pytest.raises(ValueError, match="no "):
        draw()
