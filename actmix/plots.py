"""Figures of what a model learned (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_mixing_weights", "save_figure"]


def plot_mixing_weights(
    weights: Sequence[np.ndarray], basis: Sequence[str], *, title: str = "ActMix mixing weights"
):
    """Heatmap per layer of mixing coefficients ``[neurons, K]``, rows sorted by dominant basis.

    Sorting neurons by their dominant basis makes groups of specialised neurons visible.
    """
    if not weights:
        raise ValueError("no layers to plot")
    figure, axes = plt.subplots(
        1, len(weights), figsize=(2.2 + 1.6 * len(weights) * len(basis) / 4, 4.5), squeeze=False
    )
    image = None
    for layer, (axis, alpha) in enumerate(zip(axes[0], weights, strict=True)):
        alpha = np.asarray(alpha, dtype=float)
        if alpha.ndim != 2 or alpha.shape[1] != len(basis):
            raise ValueError(f"layer {layer}: expected [neurons, {len(basis)}], got {alpha.shape}")
        order = np.lexsort((-alpha.max(axis=1), alpha.argmax(axis=1)))
        image = axis.imshow(alpha[order], aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
        axis.set_xticks(range(len(basis)), list(basis), rotation=45)
        axis.set_title(f"layer {layer + 1}")
        axis.set_xlabel("basis function")
        if layer == 0:
            axis.set_ylabel("neuron (sorted by dominant basis)")
    if image is None:
        raise RuntimeError("internal error: no layer was drawn")
    figure.colorbar(image, ax=axes[0].tolist(), label="mixing weight (alpha)")
    figure.suptitle(title)
    return figure


def save_figure(figure, path: str | os.PathLike) -> Path:
    """Write ``figure`` as PNG and close it (figures hold memory until closed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


# --- analysis of a trained model (actmix.analysis) -----------------------------------------

__all__ += [
    "plot_dominant_basis",
    "plot_effective_activations",
    "plot_entropy_distributions",
    "plot_layer_topology",
    "plot_learned_curves",
    "plot_neuron_coefficients",
    "plot_specialisation_spectrum",
]


def _layer_grid(layers: int, *, panel_width: float = 3.6, panel_height: float = 3.2):
    """One row of panels, one per layer (squeezed to a flat array of axes)."""
    if layers < 1:
        raise ValueError("no layers to plot")
    figure, axes = plt.subplots(
        1, layers, figsize=(0.6 + panel_width * layers, panel_height), squeeze=False
    )
    return figure, axes[0]


def plot_entropy_distributions(
    entropies: Sequence[np.ndarray], basis_size: int, *, title: str = "Mixing entropy per neuron"
):
    """Histogram per layer of the neurons' entropies, with the uniform-mixture maximum log K."""
    figure, axes = _layer_grid(len(entropies))
    ceiling = float(np.log(basis_size))
    for layer, (axis, values) in enumerate(zip(axes, entropies, strict=True)):
        axis.hist(np.asarray(values, dtype=float), bins=20, range=(0.0, ceiling), color="tab:blue")
        axis.axvline(ceiling, color="tab:red", linestyle="--", label=f"log K = {ceiling:.2f}")
        axis.set_title(f"layer {layer + 1}")
        axis.set_xlabel("entropy (nats)")
        if layer == 0:
            axis.set_ylabel("neurons")
            axis.legend(fontsize=8)
    figure.suptitle(f"{title} (0 = one basis, log K = uniform mixture)")
    figure.tight_layout()
    return figure


def plot_dominant_basis(
    counts: np.ndarray, basis: Sequence[str], *, title: str = "Dominant basis per neuron"
):
    """Pie per layer of how many neurons have each basis as their largest coefficient.

    ``counts: [layers, K]``.
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[1] != len(basis):
        raise ValueError(f"counts must be [layers, {len(basis)}], got {counts.shape}")
    figure, axes = _layer_grid(counts.shape[0], panel_width=3.2)
    colours = plt.cm.tab10(np.arange(len(basis)))
    for layer, (axis, row) in enumerate(zip(axes, counts, strict=True)):
        shown = row > 0
        axis.pie(
            row[shown],
            labels=[b for b, keep in zip(basis, shown, strict=True) if keep],
            colors=colours[shown],
            autopct=lambda share: f"{share:.0f}%",
            startangle=90,
        )
        axis.set_title(f"layer {layer + 1} ({int(row.sum())} neurons)")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_neuron_coefficients(
    weights: Sequence[np.ndarray],
    basis: Sequence[str],
    *,
    max_neurons: int = 64,
    title: str = "Mixing coefficients per neuron",
):
    """Stacked bars per neuron (first ``max_neurons`` of each layer), one row per layer."""
    if not weights:
        raise ValueError("no layers to plot")
    figure, axes = plt.subplots(len(weights), 1, figsize=(10, 2.4 * len(weights)), squeeze=False)
    colours = plt.cm.tab10(np.arange(len(basis)))
    for layer, (axis, alpha) in enumerate(zip(axes[:, 0], weights, strict=True)):
        alpha = np.asarray(alpha, dtype=float)[:max_neurons]
        bottom = np.zeros(alpha.shape[0])
        for k, name in enumerate(basis):
            axis.bar(
                np.arange(alpha.shape[0]),
                alpha[:, k],
                bottom=bottom,
                color=colours[k],
                label=name,
                width=0.9,
            )
            bottom += alpha[:, k]
        axis.set_ylim(0, 1)
        axis.set_ylabel(f"layer {layer + 1}\nalpha")
        if layer == 0:
            axis.legend(ncol=len(basis), fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("neuron")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_effective_activations(
    grid: np.ndarray,
    panels: Sequence[dict[str, np.ndarray]],
    *,
    title: str = "Effective activation of the highest- and lowest-entropy neuron",
):
    """Per layer: the mixed curves ``highest``/``lowest`` over faint ``basis:<name>`` curves."""
    figure, axes = _layer_grid(len(panels), panel_width=4.0)
    for layer, (axis, panel) in enumerate(zip(axes, panels, strict=True)):
        for key, values in panel.items():
            if key.startswith("basis:"):
                axis.plot(grid, values, linewidth=1, alpha=0.35, label=key.removeprefix("basis:"))
        for key, style in (("highest", "tab:red"), ("lowest", "tab:blue")):
            neuron, entropy = panel[f"{key}_neuron"]
            axis.plot(
                grid,
                panel[key],
                color=style,
                linewidth=2.2,
                label=f"{key} entropy: neuron {int(neuron)} (H={entropy:.2f})",
            )
        axis.set_title(f"layer {layer + 1}")
        axis.set_xlabel("pre-activation z")
        axis.grid(alpha=0.3)
        if layer == 0:
            axis.set_ylabel("activation")
        axis.legend(fontsize=6, loc="upper left")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_layer_topology(
    mean_coefficients: np.ndarray,
    basis: Sequence[str],
    *,
    title: str = "Layer-wise topology: mean coefficient per basis by depth",
):
    """Lines of each basis's mean coefficient across layers; ``mean_coefficients: [layers, K]``."""
    means = np.asarray(mean_coefficients, dtype=float)
    if means.ndim != 2 or means.shape[1] != len(basis):
        raise ValueError(f"mean_coefficients must be [layers, {len(basis)}], got {means.shape}")
    figure, axis = plt.subplots(figsize=(6, 4))
    depth = np.arange(1, means.shape[0] + 1)
    for k, name in enumerate(basis):
        axis.plot(depth, means[:, k], marker="o", label=name)
    axis.axhline(1 / len(basis), color="grey", linestyle=":", label="uniform 1/K")
    axis.set_xticks(depth)
    axis.set_xlabel("layer (depth)")
    axis.set_ylabel("mean mixing coefficient")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8)
    axis.set_title(title)
    return figure


def plot_specialisation_spectrum(
    max_coefficients: Sequence[np.ndarray],
    basis_size: int,
    *,
    title: str = "Neuron specialisation spectrum",
):
    """Each layer's neurons sorted by their largest coefficient (1 = one basis, 1/K = uniform)."""
    if not max_coefficients:
        raise ValueError("no layers to plot")
    figure, axis = plt.subplots(figsize=(6, 4))
    for layer, values in enumerate(max_coefficients):
        ordered = np.sort(np.asarray(values, dtype=float))[::-1]
        rank = np.linspace(0, 1, ordered.size) if ordered.size > 1 else np.zeros(1)
        axis.plot(rank, ordered, label=f"layer {layer + 1}")
    axis.axhline(1 / basis_size, color="grey", linestyle=":", label="uniform 1/K")
    axis.set_xlabel("neuron rank (fraction of layer, most specialised first)")
    axis.set_ylabel("largest mixing coefficient")
    axis.set_ylim(0, 1.02)
    axis.legend(fontsize=8)
    axis.set_title(title)
    return figure


def plot_learned_curves(
    grid: np.ndarray, curves: Sequence[np.ndarray], *, title: str = "Learned activation curves"
):
    """Per layer, each neuron's learned curve; ``curves``: one ``[neurons, P]`` array per layer."""
    figure, axes = _layer_grid(len(curves), panel_width=4.0)
    for layer, (axis, values) in enumerate(zip(axes, curves, strict=True)):
        for neuron, curve in enumerate(np.asarray(values, dtype=float)):
            axis.plot(grid, curve, linewidth=1.2, label=f"neuron {neuron}")
        axis.set_title(f"layer {layer + 1}")
        axis.set_xlabel("pre-activation z")
        axis.grid(alpha=0.3)
        if layer == 0:
            axis.set_ylabel("activation")
            axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


# --- study report (study.report) -----------------------------------------------------------

__all__ += ["plot_fold_scores", "plot_optimisation_history", "plot_param_importances"]


def plot_optimisation_history(
    numbers: Sequence[int],
    values: Sequence[float],
    best_so_far: Sequence[float],
    *,
    objective: str,
    title: str = "Optimisation history",
):
    """Each completed trial's objective and the best value reached up to it."""
    if not numbers:
        raise ValueError("no completed trials to plot")
    figure, axis = plt.subplots(figsize=(6.5, 4))
    scores = np.asarray(values, dtype=float)
    low, high = _robust_range(scores)
    inside = (scores >= low) & (scores <= high)
    trials = np.asarray(numbers)
    axis.scatter(trials[inside], scores[inside], s=18, color="tab:blue", alpha=0.7, label="trial")
    if not inside.all():
        # a diverged or hopeless trial would squash everything else into one line
        edge = np.where(scores > high, high, low)
        marker = np.where(scores > high, "^", "v")
        for m in ("^", "v"):
            picked = ~inside & (marker == m)
            if picked.any():
                axis.scatter(trials[picked], edge[picked], marker=m, color="tab:grey", s=30)
        axis.scatter([], [], marker="^", color="tab:grey", label="off the axis")
        margin = 0.05 * (high - low or 1.0)
        axis.set_ylim(low - margin, high + margin)
    axis.step(trials, best_so_far, where="post", color="tab:red", label="best so far")
    axis.set_xlabel("trial number")
    axis.set_ylabel(objective)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(title)
    return figure


def _robust_range(values: np.ndarray) -> tuple[float, float]:
    """Data range, cut at 3 interquartile ranges beyond the quartiles (outliers excluded)."""
    finite = values[np.isfinite(values)]
    if finite.size < 4:
        return float(finite.min()), float(finite.max())
    q1, q3 = np.percentile(finite, [25, 75])
    spread = q3 - q1
    low = max(float(finite.min()), q1 - 3 * spread)
    high = min(float(finite.max()), q3 + 3 * spread)
    return (low, high) if high > low else (float(finite.min()), float(finite.max()))


def plot_param_importances(
    importances: dict[str, float], *, title: str = "Hyper-parameter importance"
):
    """Horizontal bars, most important on top (fANOVA shares of the objective's variance)."""
    if not importances:
        raise ValueError("no importances to plot")
    names = sorted(importances, key=importances.__getitem__)
    figure, axis = plt.subplots(figsize=(6.5, 0.9 + 0.32 * len(names)))
    axis.barh(range(len(names)), [importances[name] for name in names], color="tab:green")
    axis.set_yticks(range(len(names)), names, fontsize=8)
    axis.set_xlabel("importance (share of objective variance)")
    axis.set_xlim(0, max(1e-9, max(importances.values())) * 1.1)
    axis.set_title(title)
    return figure


def plot_fold_scores(
    scores: dict[str, dict[int, float]], *, metric: str, title: str = "Test score per fold"
):
    """One line per model over the outer folds: paired differences are visible at a glance."""
    if not scores:
        raise ValueError("no models to plot")
    figure, axis = plt.subplots(figsize=(6.5, 4))
    for label, by_fold in scores.items():
        folds = sorted(by_fold)
        axis.plot([f + 1 for f in folds], [by_fold[f] for f in folds], marker="o", label=label)
    axis.set_xticks(sorted({f + 1 for by_fold in scores.values() for f in by_fold}))
    axis.set_xlabel("outer fold (1-based)")
    axis.set_ylabel(f"test {metric}")
    axis.grid(alpha=0.3)
    # beside the axes, not over the lines it names
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axis.set_title(title)
    return figure
