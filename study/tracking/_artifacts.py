"""Files a trial's final report becomes: its model file and a figure of what it learned.

Plain functions over the payload (``study.tracking.payload``), no MLflow and no Ray. The worker
renders the files (:func:`with_rendered_artifacts`: matplotlib and serialisation cost
CPU the driver's event loop cannot spare) and the driver writes the bytes
(:func:`write_reported_artifacts`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.tracking import payload
from study.tracking._tags import CURVES_ARTIFACT, MIXING_WEIGHTS_ARTIFACT, MODEL_ARTIFACT

__all__ = ["with_rendered_artifacts", "write_final_artifacts", "write_reported_artifacts"]

# what the rendered files are made from; not sent once they are rendered
_SOURCES = frozenset(
    {payload.MODEL_FILE, payload.MIXING_WEIGHTS, payload.BASIS, payload.CURVE_GRID, payload.CURVES}
)


def with_rendered_artifacts(final: Mapping[str, Any], *, model: str) -> dict[str, Any]:
    """``final`` with its artifacts rendered into ``ARTIFACTS`` (and their sources dropped)."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        paths = write_final_artifacts(final, Path(directory), model=model)
        files = {path.name: base64.b64encode(path.read_bytes()).decode("ascii") for path in paths}
    kept = {key: value for key, value in final.items() if key not in _SOURCES}
    return {**kept, payload.ARTIFACTS: files} if files else kept


def write_reported_artifacts(final: Mapping[str, Any], directory: Path) -> list[Path]:
    """Write the files a final report carries in ``ARTIFACTS`` into ``directory``."""
    written = []
    for name, data in (final.get(payload.ARTIFACTS) or {}).items():
        path = directory / Path(name).name  # a bare file name, whatever was sent
        path.write_bytes(base64.b64decode(data))
        written.append(path)
    return written


def write_final_artifacts(final: Mapping[str, Any], directory: Path, *, model: str) -> list[Path]:
    """Write the artifacts ``final`` (a trial's last report) carries into ``directory``.

    ``MODEL_ARTIFACT`` when it has a model file, then ``MIXING_WEIGHTS_ARTIFACT``
    (ActMix heatmap, fold 0) or ``CURVES_ARTIFACT`` (learned curves, fold 0) for
    trainable activations; ``model`` names the family in the curves' title.
    """
    written = []
    if final.get(payload.MIXING_WEIGHTS):
        written.append(
            _mixing_weights_figure(
                final[payload.MIXING_WEIGHTS],
                final[payload.BASIS],
                directory / MIXING_WEIGHTS_ARTIFACT,
            )
        )
    if final.get(payload.CURVES):
        written.append(
            _curves_figure(
                final[payload.CURVE_GRID],
                final[payload.CURVES],
                directory / CURVES_ARTIFACT,
                model=model,
            )
        )
    if final.get(payload.MODEL_FILE):
        path = directory / MODEL_ARTIFACT
        path.write_bytes(base64.b64decode(final[payload.MODEL_FILE]))
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
