"""What a trained model learned: mixing-weight statistics, learned curves and their figures.

Works on one member of an ``MLP`` (member 0 by default). For ActMix the numbers
come from the mixing coefficients ``alpha: [width, K]`` of each layer; for any
other activation the learned curves are evaluated on a grid.

>>> from actmix.mlp import MLP
>>> stats = layer_statistics(MLP(3, 1, (8, 8), "actmix"))
>>> [round(layer["entropy"]["mean"], 4) for layer in stats]  # uniform start: log 4
[1.3863, 1.3863]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actmix.activations import activation_curves, actmix_function
from actmix.mlp import MLP

__all__ = [
    "analyze_model",
    "effective_activations",
    "layer_statistics",
    "load_model",
    "mixing_basis",
    "mixing_weights",
    "neuron_entropies",
    "save_model",
]

_GRID = (-3.0, 3.0, 301)  # inputs at which curves are drawn: low, high, points


# --- model files ---------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """``value`` as JSON-like plain types (what ``torch.load(weights_only=True)`` accepts)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"cannot store {type(value).__name__} {value!r} in a model file")


def save_model(model: MLP, path: str | os.PathLike) -> Path:
    """Write a single-member model as ``{"spec", "state"}``; ``load_model`` rebuilds it.

    A batched model must be narrowed first: ``save_model(model.member(0), path)``.
    """
    if model.members != 1:
        raise ValueError(
            f"save_model takes a single-member model, got {model.members} members; "
            "pass model.member(k)"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    torch.save({"spec": _plain(model.spec), "state": state}, path)
    return path


def load_model(path: str | os.PathLike) -> MLP:
    """Rebuild a model written by ``save_model`` (loaded with ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle/zip errors of every kind mean "not a model file"
        raise ValueError(f"{path} is not a model file written by save_model ({error})") from None
    if not isinstance(stored, dict) or set(stored) != {"spec", "state"}:
        raise ValueError(f"{path} is not a model file written by save_model (no spec/state)")
    model = MLP(**stored["spec"], members=1)
    model.load_state_dict(stored["state"])
    return model.eval()


# --- numbers -------------------------------------------------------------------------------


def mixing_basis(model: MLP) -> tuple[str, ...] | None:
    """The basis names of a mixture model's layers, or None if its activation does not mix."""
    basis = getattr(model.activation_layers()[0], "basis", None)
    if model.mixing_weights() is None or basis is None:
        return None
    return tuple(basis)


@torch.no_grad()
def mixing_weights(model: MLP, *, member: int = 0) -> list[np.ndarray]:
    """Member ``member``'s mixing coefficients, one ``[width, K]`` array per layer."""
    weights = model.mixing_weights()
    if weights is None:
        raise ValueError(f"activation {model.spec['activation']!r} has no mixing weights")
    if not 0 <= member < model.members:
        raise ValueError(f"member {member} out of range 0..{model.members - 1}")
    return [w[member].double().cpu().numpy() for w in weights]


def neuron_entropies(alpha: np.ndarray) -> np.ndarray:
    """``-sum_k alpha log alpha`` per neuron of ``alpha: [width, K]`` (0 log 0 counts as 0)."""
    alpha = np.asarray(alpha, dtype=float)
    safe = np.where(alpha > 0, alpha, 1.0)
    return -(alpha * np.log(safe)).sum(axis=-1)


def layer_statistics(model: MLP, *, member: int = 0) -> list[dict[str, Any]]:
    """Per layer: entropy mean/min/max, dominant-basis counts and mean coefficients.

    A neuron's dominant basis is its largest coefficient (the first one on a tie).
    """
    basis = mixing_basis(model)
    if basis is None:
        raise ValueError(f"activation {model.spec['activation']!r} has no mixing weights")
    statistics = []
    for index, alpha in enumerate(mixing_weights(model, member=member)):
        entropy = neuron_entropies(alpha)
        dominant = np.bincount(alpha.argmax(axis=1), minlength=len(basis))
        statistics.append(
            {
                "layer": index + 1,
                "neurons": int(alpha.shape[0]),
                "entropy": {
                    "mean": float(entropy.mean()),
                    "min": float(entropy.min()),
                    "max": float(entropy.max()),
                    "max_possible": float(np.log(len(basis))),
                },
                "dominant_counts": {name: int(n) for name, n in zip(basis, dominant, strict=True)},
                "mean_coefficients": {
                    name: float(v) for name, v in zip(basis, alpha.mean(axis=0), strict=True)
                },
            }
        )
    return statistics


@torch.no_grad()
def effective_activations(
    model: MLP, grid: np.ndarray, *, member: int = 0
) -> list[dict[str, np.ndarray]]:
    """Per layer, ``sum_k alpha_k phi_k`` on ``grid: [P]`` for the highest- and lowest-entropy
    neuron, plus each basis function alone (keys ``highest``, ``lowest``, ``basis:<name>``)."""
    basis = mixing_basis(model)
    if basis is None:
        raise ValueError(f"activation {model.spec['activation']!r} has no mixing weights")
    omega = float(getattr(model.activation_layers()[0], "omega_0", 1.0))
    z = torch.as_tensor(np.asarray(grid, dtype=float)).view(1, -1, 1)
    # each basis alone: a one-hot mixture of a single neuron
    one_hot = torch.eye(len(basis), dtype=z.dtype)
    basis_curves = {
        f"basis:{name}": actmix_function(z, one_hot[k].view(1, 1, -1), omega=omega, basis=basis)
        .flatten()
        .numpy()
        for k, name in enumerate(basis)
    }
    panels = []
    for alpha in mixing_weights(model, member=member):
        entropy = neuron_entropies(alpha)
        panel: dict[str, np.ndarray] = {}
        for key, neuron in (("highest", entropy.argmax()), ("lowest", entropy.argmin())):
            weights = torch.as_tensor(alpha[neuron]).view(1, 1, -1)
            panel[key] = actmix_function(z, weights, omega=omega, basis=basis).flatten().numpy()
            panel[f"{key}_neuron"] = np.array([int(neuron), float(entropy[neuron])])
        panels.append({**panel, **basis_curves})
    return panels


# --- the whole analysis --------------------------------------------------------------------


def analyze_model(
    model: MLP,
    out_dir: str | os.PathLike,
    *,
    member: int = 0,
    neurons: int = 8,
    title: str = "",
) -> list[Path]:
    """Write the figures and JSON summary of member ``member`` to ``out_dir``; returns the files.

    Mixture activations get heatmaps, entropy histograms, dominant-basis pies,
    per-neuron bars, effective activations, layer topology, the specialisation
    spectrum and ``layer_statistics.json``; other activations get their learned
    curves (first ``neurons`` neurons per layer) and ``activation_summary.json``.
    """
    from actmix import plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = model.spec["activation"]
    prefix = f"{title}: " if title else ""
    grid = np.linspace(*_GRID)
    basis = mixing_basis(model)
    files: list[Path] = []

    def save(figure, filename: str) -> None:
        files.append(plots.save_figure(figure, out / filename))

    if basis is None:
        curves = activation_curves(model.member(member), grid, neurons=neurons)
        save(
            plots.plot_learned_curves(grid, curves, title=f"{prefix}learned {name} curves"),
            "learned_curves.png",
        )
        summary = {
            "activation": name,
            "layers": [_plain_describe(layer) for layer in model.activation_layers()],
        }
        files.append(_write_json(summary, out / "activation_summary.json"))
        return files

    weights = mixing_weights(model, member=member)
    statistics = layer_statistics(model, member=member)
    entropies = [neuron_entropies(alpha) for alpha in weights]
    save(
        plots.plot_mixing_weights(weights, basis, title=f"{prefix}ActMix mixing coefficients"),
        "mixing_heatmaps.png",
    )
    save(plots.plot_entropy_distributions(entropies, len(basis)), "entropy_distributions.png")
    counts = [[layer["dominant_counts"][b] for b in basis] for layer in statistics]
    save(plots.plot_dominant_basis(np.array(counts), basis), "dominant_basis.png")
    save(plots.plot_neuron_coefficients(weights, basis), "neuron_coefficients.png")
    save(
        plots.plot_effective_activations(grid, effective_activations(model, grid, member=member)),
        "effective_activations.png",
    )
    means = [[layer["mean_coefficients"][b] for b in basis] for layer in statistics]
    save(plots.plot_layer_topology(np.array(means), basis), "layer_topology.png")
    save(
        plots.plot_specialisation_spectrum([alpha.max(axis=1) for alpha in weights], len(basis)),
        "specialisation_spectrum.png",
    )
    files.append(
        _write_json(
            {"activation": name, "basis": list(basis), "layers": statistics},
            out / "layer_statistics.json",
        )
    )
    return files


def _plain_describe(layer) -> dict[str, Any]:
    try:
        return _plain(layer.describe())
    except ValueError:
        return {"name": type(layer).__name__}


def _write_json(data: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path
