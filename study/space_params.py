"""Search-space params: their names and kinds, and how sampled values become a ``RunConfig``.

A param name is a dotted path into ``RunConfig`` (``mlp.activation.<option>`` is
free-form; ``train.epochs`` belongs to the study) or a derived name, translated in
``build_config`` and inverted in ``config_value``: ``mlp.width`` + ``mlp.depth``
-> ``mlp.widths``; ``train.temperature.final_fraction`` -> ``final = initial *
fraction``; ``train.temperature.anneal_fraction`` / ``train.entropy.warmup_fraction``
-> ``round(fraction * epochs)`` epochs; ``mlp.activation.basis`` as a comma string.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from actmix.activations import ACTIVATIONS, available_activations
from actmix.config import RunConfig, config_from_dict, config_to_dict

__all__ = [
    "ACTIVATION_PREFIX",
    "DERIVED",
    "DISTRIBUTIONS",
    "EPOCH_FRACTIONS",
    "PARAM_TYPES",
    "SETS_FIELD",
    "XGBOOST",
    "Param",
    "ParamKind",
    "as_integer",
    "as_number",
    "build_config",
    "check_epochs",
    "check_model",
    "config_value",
    "did_you_mean",
    "enabled_flag",
]

ParamKind = Literal["uniform", "loguniform", "int", "choice", "fixed", "zero_or_loguniform"]
DISTRIBUTIONS: tuple[str, ...] = typing.get_args(ParamKind)

XGBOOST = "xgboost"
ACTIVATION_PREFIX = "mlp.activation."

DERIVED: dict[str, type] = {
    "mlp.width": int,
    "mlp.depth": int,
    "train.temperature.final_fraction": float,
    "train.temperature.anneal_fraction": float,
    "train.entropy.warmup_fraction": float,
}
EPOCH_FRACTIONS = ("train.temperature.anneal_fraction", "train.entropy.warmup_fraction")
# a derived name and the field it sets cannot both be searched
SETS_FIELD = {
    "mlp.width": "mlp.widths",
    "mlp.depth": "mlp.widths",
    "train.temperature.final_fraction": "train.temperature.final",
    "train.temperature.anneal_fraction": "train.temperature.anneal_epochs",
    "train.entropy.warmup_fraction": "train.entropy.warmup_epochs",
}


def _field_types(cls: type, prefix: str) -> dict[str, Any]:
    """Dotted path -> annotation of every non-dataclass field below ``cls``."""
    hints = typing.get_type_hints(cls)
    types: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        annotation = hints[field.name]
        if dataclasses.is_dataclass(annotation):
            types.update(_field_types(annotation, f"{prefix}{field.name}."))
        else:
            types[f"{prefix}{field.name}"] = annotation
    return types


# searchable: the mlp/train/xgboost sections; model, dataset, provenance are not params
PARAM_TYPES: dict[str, Any] = {
    **{
        path: annotation
        for path, annotation in _field_types(RunConfig, "").items()
        if path.split(".")[0] in ("mlp", "train", XGBOOST)
        and path not in ("mlp.activation", "train.epochs")
    },
    **DERIVED,
}


@dataclass(frozen=True, slots=True)
class Param:
    """One param: ``low``/``high`` for ranges, ``choices`` for choice, ``value`` for fixed."""

    name: str
    kind: ParamKind
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    value: Any = None
    log: bool = False


# --- building configs: the one place where derived names are translated ---


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


def config_value(
    name: str,
    config: RunConfig,
    options: Mapping[str, Any],
    model: str,
    epochs: int,
    where: str,
) -> Any:
    """Inverse of ``build_config``: the value of param ``name`` that gives ``config``."""
    widths = config.mlp.widths
    temperature = config.train.temperature
    if name in ("mlp.width", "mlp.depth"):
        if len(set(widths)) != 1:
            raise ValueError(f"{where}: widths {list(widths)} are not all equal: no width x depth")
        return widths[0] if name == "mlp.width" else len(widths)
    if name == "train.temperature.final_fraction":
        return temperature.final / temperature.initial
    if name == "train.temperature.anneal_fraction":
        return temperature.anneal_epochs / epochs
    if name == "train.entropy.warmup_fraction":
        return config.train.entropy.warmup_epochs / epochs
    if name.startswith(ACTIVATION_PREFIX):
        option = name.removeprefix(ACTIVATION_PREFIX)
        value = options[option] if option in options else _option_default(model, option, where)
        if option == "basis" and isinstance(value, (list, tuple)):
            return ",".join(value)
        return value
    value: Any = config
    for part in name.split("."):
        value = getattr(value, part)
    return value


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


# --- value helpers ---


def check_model(model: str) -> None:
    valid = (*available_activations(), XGBOOST)
    if model not in valid:
        raise ValueError(f"unknown model {model!r}; valid: {', '.join(valid)}")


def check_epochs(epochs: int) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")


def enabled_flag(name: str) -> str:
    return f"{name}.enabled"


def did_you_mean(name: str, valid: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; valid {what}: {', '.join(valid)}"


def as_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    return value


def as_integer(value: Any, where: str) -> int:
    if as_number(value, where) != int(value):
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    return int(value)


def _option_default(model: str, option: str, where: str) -> Any:
    constructor = ACTIVATIONS.get(model)
    parameters = inspect.signature(constructor).parameters if constructor else {}
    parameter = parameters.get(option)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        raise ValueError(
            f"{where}: the base config sets no {option!r} and activation {model!r} "
            "has no default for it"
        )
    return parameter.default
