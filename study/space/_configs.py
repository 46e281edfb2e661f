"""Building a configuration: sampled param values -> a validated ``RunConfig``.

The one place where derived param names (``mlp.width``, ``*_fraction``, the comma
string ``mlp.activation.basis``) are written into a config; ``_sampling``
holds the inverse, for the baseline point.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actmix.config import RunConfig, config_from_dict, config_to_dict
from study.space._kinds import KINDS
from study.space._params import (
    DERIVED,
    SearchSpace,
    as_integer,
    as_number,
    check_epochs,
    check_model,
    did_you_mean,
)

__all__ = ["build_config", "check_buildable", "config_from_sample"]

_SEED_EPOCHS = 200  # epochs of the seed config; endpoint checks build configs with it


def config_from_sample(
    space: SearchSpace,
    sample: Mapping[str, Any],
    *,
    base: RunConfig,
    epochs: int,
    model: str | None = None,
) -> RunConfig:
    """``base`` with the sampled values, ``train.epochs = epochs`` and ``model``.

    ``sample`` is what the searcher hands a trial (searched params, constants,
    ``<name>.enabled`` flags); params it lacks keep their ``base`` value, except
    fixed ones. Activation options of ``base`` are dropped if the model changes;
    ``model`` defaults to the space's.
    """
    return build_config(
        _sample_values(space, sample),
        base=base,
        epochs=epochs,
        model=space.model if model is None else model,
        source=f"{space.path}: sample",
    )


def build_config(
    values: Mapping[str, Any], *, base: RunConfig, epochs: int, model: str, source: str
) -> RunConfig:
    """``base`` with param ``values`` applied, ``model`` and ``train.epochs`` set, validated."""
    check_epochs(epochs)
    check_model(model)
    data = config_to_dict(base)
    if model != base.model:
        data["mlp"]["activation"] = {}  # options of another activation would not fit
    data["model"] = model
    data["train"]["epochs"] = epochs
    try:
        _apply_params(values, data, epochs=epochs)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    return config_from_dict(RunConfig, data, source=source)


def check_buildable(space: SearchSpace) -> SearchSpace:
    """``space`` if every bound, choice and fixed value gives a valid config on its own."""
    base = RunConfig(model=space.model)
    by_name = {param.name: param for param in space.params}
    partner = {"mlp.width": "mlp.depth", "mlp.depth": "mlp.width"}
    for param in space.params:
        for value in KINDS[param.kind].candidates(param):
            values = {param.name: value}
            if param.name in partner:
                values[partner[param.name]] = KINDS[by_name[partner[param.name]].kind].candidates(
                    by_name[partner[param.name]]
                )[0]
            try:
                build_config(
                    values, base=base, epochs=_SEED_EPOCHS, model=space.model, source="RunConfig"
                )
            except ValueError as error:
                raise ValueError(
                    f"{space.path}: params.{param.name}: {value!r} gives an invalid config: {error}"
                ) from None
    return space


def _sample_values(space: SearchSpace, sample: Mapping[str, Any]) -> dict[str, Any]:
    """Param name -> value: flags resolved (a disabled param is 0.0), fixed values added."""
    params = {param.name: param for param in space.params}
    flags = {flag for param in space.params for flag in KINDS[param.kind].flags(param)}
    for key in sample:
        if key not in params and key not in flags:
            raise ValueError(
                f"{space.path}: unknown sample key {key!r}"
                f"{did_you_mean(str(key), [*params, *flags], 'params')}"
            )
    values = {key: value for key, value in sample.items() if key in params}
    for param in space.params:
        KINDS[param.kind].resolve(param, sample, values, space.path)
    return values


def _apply_params(values: Mapping[str, Any], data: dict[str, Any], *, epochs: int) -> None:
    """Write ``values`` (param name -> value) into ``config_to_dict`` output ``data``."""
    for name, value in values.items():
        if name in DERIVED:
            continue
        if name == "mlp.activation.basis" and isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        *parents, leaf = name.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    if ("mlp.width" in values) != ("mlp.depth" in values):
        raise ValueError("mlp.width and mlp.depth go together (widths = (width,) * depth)")
    if "mlp.width" in values:
        depth = as_integer(values["mlp.depth"], "mlp.depth")
        data["mlp"]["widths"] = [values["mlp.width"]] * depth
    temperature = data["train"]["temperature"]
    if "train.temperature.final_fraction" in values:
        fraction = as_number(values["train.temperature.final_fraction"], "final_fraction")
        temperature["final"] = temperature["initial"] * fraction
    if "train.temperature.anneal_fraction" in values:
        fraction = as_number(values["train.temperature.anneal_fraction"], "anneal_fraction")
        temperature["anneal_epochs"] = round(fraction * epochs)
    if "train.entropy.warmup_fraction" in values:
        fraction = as_number(values["train.entropy.warmup_fraction"], "warmup_fraction")
        data["train"]["entropy"]["warmup_epochs"] = round(fraction * epochs)
