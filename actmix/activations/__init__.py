"""Activation registry: one name -> one constructor ``(width, members, **options)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actmix.activations.actmix import BASIS_FUNCTIONS, DEFAULT_BASIS, ActMix, actmix_function
from actmix.activations.base import ActivationLayer, FixedActivation
from actmix.activations.fixed import FIXED_FUNCTIONS, PReLU, make_fixed

__all__ = [
    "ACTIVATIONS",
    "BASIS_FUNCTIONS",
    "DEFAULT_BASIS",
    "ActMix",
    "ActivationLayer",
    "FixedActivation",
    "PReLU",
    "actmix_function",
    "available_activations",
    "check_activation",
    "make_activation",
]

ACTIVATIONS: dict[str, Callable[..., ActivationLayer]] = {
    "actmix": ActMix,
    "prelu": PReLU,
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
