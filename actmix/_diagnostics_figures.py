"""Figures and the markdown report of ``run_diagnostics`` results (a JSON-ready dict).

Everything here reads only the results dict, so saved ``diagnostics.json`` files can
be drawn again without running the experiments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "diagnostics_report",
    "plot_capacity",
    "plot_gradient_flow",
    "plot_sparsity",
    "plot_stability",
]


# --- figures and report --------------------------------------------------------------------


def plot_gradient_flow(results: Mapping[str, Any]) -> Figure:
    """Mean |grad| per layer (log scale), one panel per depth, one line per activation."""
    flow = results["gradient_flow"]
    depths = list(next(iter(flow.values())))
    figure, axes = plt.subplots(1, len(depths), figsize=(4.2 * len(depths), 3.6), squeeze=False)
    for axis, depth in zip(axes[0], depths, strict=True):
        for name, by_depth in flow.items():
            magnitudes = np.maximum(by_depth[depth]["grad_magnitudes"], 1e-30)
            axis.semilogy(np.arange(1, len(magnitudes) + 1), magnitudes, marker=".", label=name)
        axis.set_title(f"depth {depth}")
        axis.set_xlabel("linear layer (1 = input)")
        axis.grid(alpha=0.3)
    axes[0, 0].set_ylabel("mean |dL/dW| (log)")
    axes[0, 0].legend(fontsize=8)
    figure.suptitle("Gradient flow at initialisation")
    figure.tight_layout()
    return figure


def plot_sparsity(results: Mapping[str, Any]) -> Figure:
    """Bars of mean sparsity and dead-unit share per activation."""
    sparsity = results["sparsity"]
    names = list(sparsity)
    figure, (left, right) = plt.subplots(1, 2, figsize=(max(8, 1.4 * len(names) + 4), 3.8))
    positions = np.arange(len(names))
    left.bar(positions, [100 * sparsity[n]["mean_sparsity"] for n in names], color="tab:blue")
    left.set_ylabel("near-zero activations (%)")
    left.set_title("Sparsity")
    right.bar(positions, [100 * sparsity[n]["mean_dead"] for n in names], color="tab:red")
    right.set_ylabel("units zero on every sample (%)")
    right.set_title("Dead units")
    for axis in (left, right):
        axis.set_xticks(positions, names, rotation=30)
        axis.set_ylim(0, 100)
    figure.suptitle("After high-learning-rate SGD")
    figure.tight_layout()
    return figure


def _final_losses(entries: Mapping[str, Mapping[str, Any]], cap: float) -> list[float]:
    return [cap if e["diverged"] else min(e["final_loss"], cap) for e in entries.values()]


def plot_stability(results: Mapping[str, Any], *, cap: float = 10.0) -> Figure:
    """Final loss against learning rate and depth (log scales); diverged runs sit at ``cap``."""
    stability_results = results["stability"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, entry in stability_results.items():
        rates = [float(lr) for lr in entry["learning_rate"]]
        left.loglog(rates, _final_losses(entry["learning_rate"], cap), marker="o", label=name)
        depths = [int(depth) for depth in entry["depth"]]
        right.semilogy(depths, _final_losses(entry["depth"], cap), marker="o", label=name)
    for axis, label, title in (
        (left, "learning rate (SGD)", "Learning-rate stress"),
        (right, "hidden layers (Adam)", "Depth stress"),
    ):
        axis.axhline(cap, color="tab:red", linestyle="--", linewidth=1, label="diverged")
        axis.set_xlabel(label)
        axis.set_ylabel(f"final MSE (capped at {cap:g})")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    left.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_capacity(results: Mapping[str, Any]) -> Figure:
    """Heatmap of log10 test MSE, activation x target function (lower is better)."""
    table = results["capacity"]
    names = list(table)
    targets = list(table[names[0]])
    mse = np.array(
        [[table[n][t] if table[n][t] is not None else np.nan for t in targets] for n in names]
    )
    figure, axis = plt.subplots(figsize=(1.6 * len(targets) + 2, 0.6 * len(names) + 1.8))
    image = axis.imshow(np.log10(mse + 1e-12), cmap="RdYlGn_r", aspect="auto")
    for i in range(len(names)):
        for j in range(len(targets)):
            text = "nan" if np.isnan(mse[i, j]) else f"{mse[i, j]:.3g}"
            axis.text(j, i, text, ha="center", va="center", fontsize=8)
    axis.set_xticks(range(len(targets)), targets)
    axis.set_yticks(range(len(names)), names)
    axis.set_title("Representational capacity: test MSE (lower is better)")
    figure.colorbar(image, ax=axis, label="log10 MSE")
    figure.tight_layout()
    return figure


def _loss_cell(entry: Mapping[str, Any]) -> str:
    return "diverged" if entry["diverged"] else f"{entry['final_loss']:.4g}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        # a "|" inside a cell (the target |x|) would end the cell
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    lines = [line(headers), "|" + "---|" * len(headers), *(line(row) for row in rows)]
    return "\n".join(lines)


def diagnostics_report(results: Mapping[str, Any]) -> str:
    """A markdown report with one table per experiment."""
    names = list(results["capacity"])
    flow = results["gradient_flow"]
    depths = list(next(iter(flow.values())))
    stability_results = results["stability"]
    first = stability_results[names[0]]
    sections = [
        "# Activation diagnostics",
        f"Activations: {', '.join(names)}; seed {results['seed']}.",
        "## Gradient flow",
        "Output-layer over input-layer mean |gradient| at initialisation "
        "(much above 1: gradients vanish towards the input; below 1: they grow).",
        _table(
            ["activation", *(f"depth {d}" for d in depths)],
            [[n, *(f"{flow[n][d]['output_to_input_ratio']:.3g}" for d in depths)] for n in names],
        ),
        "![gradient flow](gradient_flow.png)",
        "## Sparsity and dead units",
        "After full-batch SGD at a high learning rate: share of activations with "
        "|a| < 1e-6, and of units that are zero on every sample.",
        _table(
            ["activation", "sparsity", "dead units"],
            [
                [
                    n,
                    f"{100 * results['sparsity'][n]['mean_sparsity']:.1f}%",
                    f"{100 * results['sparsity'][n]['mean_dead']:.1f}%",
                ]
                for n in names
            ],
        ),
        "![sparsity](sparsity.png)",
        "## Stability",
        "Final training MSE on sin(pi x), or `diverged` (non-finite, or loss/gradient > 1e6).",
        _table(
            ["activation", *(f"lr {lr}" for lr in first["learning_rate"])],
            [
                [n, *(_loss_cell(e) for e in stability_results[n]["learning_rate"].values())]
                for n in names
            ],
        ),
        "",
        _table(
            ["activation", *(f"depth {d}" for d in first["depth"])],
            [[n, *(_loss_cell(e) for e in stability_results[n]["depth"].values())] for n in names],
        ),
        "![stability](stability.png)",
        "## Representational capacity",
        "Test MSE of fitting each function on [-2, 2] (lower is better).",
        _table(
            ["activation", *results["capacity"][names[0]]],
            [
                [
                    n,
                    *(
                        "nan" if value is None else f"{value:.4g}"
                        for value in results["capacity"][n].values()
                    ),
                ]
                for n in names
            ],
        ),
        "![capacity](capacity.png)",
    ]
    return "\n\n".join(sections) + "\n"
