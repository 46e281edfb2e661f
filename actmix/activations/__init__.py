"""Activation registry: one name -> one constructor ``(width, members, **options)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch

from actmix.activations.actmix import BASIS_FUNCTIONS, DEFAULT_BASIS, ActMix, actmix_function
from actmix.activations.apa import AGLU, APA
from actmix.activations.base import ActivationLayer, FixedActivation
from actmix.activations.cpab import cpab_transform
from actmix.activations.ditac import DiTAC
from actmix.activations.fixed import FIXED_FUNCTIONS, PReLU, make_fixed
from actmix.activations.prepu import PRePU

__all__ = [
    "ACTIVATIONS",
    "AGLU",
    "APA",
    "BASIS_FUNCTIONS",
    "DEFAULT_BASIS",
    "ActMix",
    "ActivationLayer",
    "DiTAC",
    "FixedActivation",
    "PReLU",
    "PRePU",
    "activation_curves",
    "actmix_function",
    "available_activations",
    "check_activation",
    "cpab_transform",
    "make_activation",
]

ACTIVATIONS: dict[str, Callable[..., ActivationLayer]] = {
    "actmix": ActMix,
    "prelu": PReLU,
    "apa": APA,
    "aglu": AGLU,
    "prepu": PRePU,
    "ditac": DiTAC,
    **{name: make_fixed(name) for name in FIXED_FUNCTIONS},
}


def available_activations() -> tuple[str, ...]:
    return tuple(sorted(ACTIVATIONS))


def check_activation(name: str) -> str:
    """Return ``name`` if registered, else raise ``ValueError`` listing the valid names."""
    if name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; valid: {', '.join(available_activations())}"
        )
    return name


def make_activation(name: str, width: int, members: int = 1, **options: Any) -> ActivationLayer:
    """Build the activation ``name`` for a layer of ``width`` neurons and ``members`` members."""
    constructor = ACTIVATIONS[check_activation(name)]
    try:
        return constructor(width, members, **options)
    except TypeError as error:
        # an unexpected keyword is a user typo in the config, not a programming error
        raise ValueError(f"bad options for activation {name!r}: {error}") from None


@torch.no_grad()
def activation_curves(
    model: torch.nn.Module,
    x: np.ndarray | torch.Tensor,
    *,
    neurons: int = 4,
    width: int | None = None,
) -> list[np.ndarray]:
    """Member 0's activation curves on the grid ``x: [P]``, one ``[neurons, P]`` array per layer.

    ``model`` is an MLP (its ``activation_layers()``; widths from its spec) or a
    single activation layer, whose ``width`` must then be given. Every neuron sees
    the same inputs ``x``; the first ``neurons`` neurons of each layer are returned.

    >>> from actmix.mlp import MLP
    >>> [c.shape for c in activation_curves(MLP(3, 1, (8, 8), "prepu"), np.linspace(-2, 2, 5))]
    [(4, 5), (4, 5)]
    """
    if neurons < 1:
        raise ValueError(f"neurons must be >= 1, got {neurons}")
    layers_of = getattr(model, "activation_layers", None)
    members: int
    if layers_of is not None:
        # an MLP, duck-typed: nn.Module types its other attributes as Tensor | Module
        spec = cast(dict[str, Any], model.spec)
        layers, widths = layers_of(), list(spec["widths"])
        members = cast(int, model.members)
    elif width is None:
        raise ValueError("give width= for a single activation layer")
    else:
        layers, widths = [model], [int(width)]
        members = next((p.shape[0] for p in model.parameters()), 1)
    parameter = next(model.parameters(), None)
    like = parameter if parameter is not None else torch.empty(0)
    grid = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if grid.dim() != 1 or grid.numel() == 0:
        raise ValueError(f"x must be a non-empty 1-D grid, got shape {tuple(grid.shape)}")
    was_training = model.training
    model.eval()
    curves = []
    for layer, layer_width in zip(layers, widths, strict=True):
        inputs = grid.view(1, -1, 1).expand(members, -1, layer_width)
        output = layer(inputs)[0, :, :neurons]
        curves.append(output.T.double().cpu().numpy())
    model.train(was_training)
    return curves
