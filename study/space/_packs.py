"""Which searched params of a space fix a pack's network (and must be shared inside a pack).

A packed trial trains several configurations as one network (``actmix.packs``): they
must agree on everything ``actmix.packs.shared_part`` names. In a search space those
are the params that set the hidden widths (``mlp.width``, ``mlp.depth``, ``mlp.widths``),
``train.batch_size`` and the activation options the model cannot vary per member
(ActMix's basis, say); everything else may differ between pack-mates.
"""

from __future__ import annotations

from actmix.activations import ACTIVATIONS, check_activation
from actmix.packs import SHARED_TRAIN_FIELDS
from study.space._params import ACTIVATION_PREFIX, SETS_FIELD, SearchSpace, enabled_flag

__all__ = ["structural_names"]


def structural_names(space: SearchSpace, model: str) -> frozenset[str]:
    """The Optuna param names (``<name>.enabled`` flags included) pack-mates share."""
    per_member: frozenset[str] = getattr(
        ACTIVATIONS[check_activation(model)], "per_member_options", frozenset()
    )
    shared_fields = {"mlp.widths", *(f"train.{name}" for name in SHARED_TRAIN_FIELDS)}
    names: set[str] = set()
    for param in space.params:
        target = SETS_FIELD.get(param.name, param.name)
        option = target.removeprefix(ACTIVATION_PREFIX)
        activation = target.startswith(ACTIVATION_PREFIX) and option not in per_member
        if target in shared_fields or activation:
            names |= {param.name, enabled_flag(param.name)}
    return frozenset(names)
