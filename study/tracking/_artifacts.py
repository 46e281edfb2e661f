"""Files a trial's final report becomes: its model file and a figure of what it learned.

Plain functions over the payload (``study.tracking.payload``), no MLflow and no Ray. The worker
renders the files (:func:`with_rendered_artifacts`: matplotlib and serialisation cost
CPU the driver's event loop cannot spare) and the driver writes the bytes
(:func:`write_reported_artifacts`).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.tracking import payload
from study.tracking._tags import CURVES_ARTIFACT, MIXING_WEIGHTS_ARTIFACT, MODEL_ARTIFACT

__all__ = ["with_rendered_artifacts", "write_final_artifacts", "write_reported_artifacts"]


def with_rendered_artifacts(result: Mapping[str, Any], *, model: str) -> dict[str, Any]:
    """A final report (``result``) with its artifacts rendered into ``artifacts`` and what
    they were made from (model file, mixing weights, curves) no longer sent."""
    import tempfile

    final = payload.FinalReport.from_report(result)
    with tempfile.TemporaryDirectory() as directory:
        paths = write_final_artifacts(final, Path(directory), model=model)
        files = {path.name: base64.b64encode(path.read_bytes()).decode("ascii") for path in paths}
    rendered = dataclasses.replace(
        final,
        model_file=None,
        mixing_weights=None,
        basis=None,
        curve_grid=None,
        curves=None,
        artifacts=files or None,
    )
    epoch = {key: value for key, value in result.items() if key not in final.to_report()}
    return {**epoch, **rendered.to_report()}


def write_reported_artifacts(result: Mapping[str, Any], directory: Path) -> list[Path]:
    """Write the files a final report carries in ``artifacts`` into ``directory``."""
    written = []
    for name, data in (payload.FinalReport.from_report(result).artifacts or {}).items():
        path = directory / Path(name).name  # a bare file name, whatever was sent
        path.write_bytes(base64.b64decode(data))
        written.append(path)
    return written


def write_final_artifacts(final: payload.FinalReport, directory: Path, *, model: str) -> list[Path]:
    """Write the artifacts ``final`` (a trial's last report) carries into ``directory``.

    ``MODEL_ARTIFACT`` when it has a model file, then ``MIXING_WEIGHTS_ARTIFACT``
    (ActMix heatmap, fold 0) or ``CURVES_ARTIFACT`` (learned curves, fold 0) for
    trainable activations; ``model`` names the family in the curves' title.
    """
    written = []
    if final.mixing_weights and final.basis:
        written.append(
            _mixing_weights_figure(
                final.mixing_weights, final.basis, directory / MIXING_WEIGHTS_ARTIFACT
            )
        )
    if final.curves and final.curve_grid:
        written.append(
            _curves_figure(final.curve_grid, final.curves, directory / CURVES_ARTIFACT, model=model)
        )
    if final.model_file:
        path = directory / MODEL_ARTIFACT
        path.write_bytes(base64.b64decode(final.model_file))
        written.append(path)
    return written


def _mixing_weights_figure(weights: list[Any], basis: list[str], path: Path) -> Path:
    import numpy as np

    from actmix.plots import plot_mixing_weights, save_figure

    figure = plot_mixing_weights(
        [np.asarray(layer) for layer in weights], basis, title="ActMix mixing weights (fold 0)"
    )
    return save_figure(figure, path)


def _curves_figure(grid: list[float], curves: list[Any], path: Path, *, model: str) -> Path:
    import numpy as np

    from actmix.plots import plot_learned_curves, save_figure

    figure = plot_learned_curves(
        np.asarray(grid),
        [np.asarray(layer) for layer in curves],
        title=f"{model}: learned activation curves (fold 0)",
    )
    return save_figure(figure, path)
