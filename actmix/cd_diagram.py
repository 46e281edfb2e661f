"""Critical-difference diagram (Demšar 2006): mean ranks on one axis, groups not told apart joined.

The axis runs from rank 1 (best, left) to rank k; every model hangs from its mean rank
to its label (better half on the left, worse half on the right); a bar above the axis
is one critical difference long; a thick line under the axis joins each maximal group
of models whose mean ranks differ by less than the critical difference (Nemenyi).

>>> from actmix.ranking import compare_ranks  # doctest: +SKIP
>>> summary = compare_ranks(scores, lower_is_better=True)  # doctest: +SKIP
>>> cd = summary.critical_difference  # doctest: +SKIP
>>> figure = plot_critical_difference(summary.mean_ranks, cd)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from actmix.ranking import nemenyi_cliques

__all__ = ["CD_LABEL", "CLIQUE_LABEL", "plot_critical_difference"]

CD_LABEL = "critical difference"  # matplotlib label of the CD bar's line
CLIQUE_LABEL = "clique"  # matplotlib label of each line that joins a group
_ROW_STEP = 0.3  # vertical distance between label rows (data units)
_CLIQUE_STEP = 0.1


def plot_critical_difference(
    mean_ranks: Mapping[str, float],
    cd: float,
    *,
    title: str | None = None,
    width: float = 7.0,
) -> Figure:
    """A critical-difference diagram of ``{model: mean rank}`` for critical difference ``cd``.

    The groups are :func:`actmix.ranking.nemenyi_cliques` of the same ranks and ``cd``.
    """
    if len(mean_ranks) < 2:
        raise ValueError(f"a critical-difference diagram needs >= 2 models, got {len(mean_ranks)}")
    if not (math.isfinite(cd) and cd > 0):
        raise ValueError(f"the critical difference must be a finite number > 0, got {cd}")
    ordered = sorted(mean_ranks.items(), key=lambda item: (item[1], item[0]))
    for model, rank in ordered:
        if not (math.isfinite(rank) and rank >= 1):
            raise ValueError(f"mean rank of {model!r} must be a finite number >= 1, got {rank}")
    k = len(ordered)
    cliques = nemenyi_cliques(mean_ranks, cd)
    n_left = math.ceil(k / 2)
    rows = max(n_left, k - n_left)
    clique_depth = _CLIQUE_STEP * (len(cliques) + 1)
    axis_end = max(k, math.ceil(ordered[-1][1]))
    pad = 0.08 * (axis_end - 1) + 0.1

    figure, axis = plt.subplots(figsize=(width, 1.3 + 0.32 * rows + 0.12 * len(cliques)))
    axis.set_axis_off()
    axis.set_xlim(1 - pad, max(axis_end, 1 + cd) + pad)
    axis.set_ylim(-(clique_depth + (rows + 0.6) * _ROW_STEP), 0.75)

    axis.plot([1, axis_end], [0, 0], color="black", linewidth=1)
    for tick in range(1, axis_end + 1):
        axis.plot([tick, tick], [0, 0.06], color="black", linewidth=1)
        axis.text(tick, 0.1, str(tick), ha="center", va="bottom", fontsize=9)
    axis.text(axis_end + 0.15, 0, "mean rank\n(1 = best)", va="center", fontsize=8, color="0.4")

    axis.plot([1, 1 + cd], [0.4, 0.4], color="tab:red", linewidth=2, label=CD_LABEL)
    for end in (1, 1 + cd):
        axis.plot([end, end], [0.36, 0.44], color="tab:red", linewidth=1)
    axis.text(1 + cd / 2, 0.46, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)

    for position, (model, rank) in enumerate(ordered):
        left = position < n_left
        row = position if left else k - 1 - position
        height = -(clique_depth + (row + 1) * _ROW_STEP)
        label_x = 1 - pad * 0.5 if left else axis_end + pad * 0.5
        axis.plot([rank, rank, label_x], [0, height, height], color="0.35", linewidth=0.8)
        axis.text(
            label_x - 0.02 if left else label_x + 0.02,
            height,
            f"{model} ({rank:.2f})",
            ha="right" if left else "left",
            va="center",
            fontsize=9,
        )

    for index, clique in enumerate(cliques):
        ranks = [mean_ranks[model] for model in clique]
        height = -_CLIQUE_STEP * (index + 1)
        axis.plot(
            [min(ranks) - 0.03, max(ranks) + 0.03],
            [height, height],
            color="black",
            linewidth=3,
            solid_capstyle="round",
            label=CLIQUE_LABEL,
            zorder=3,
        )
    if title:
        axis.set_title(title, fontsize=10)
    return figure
