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
