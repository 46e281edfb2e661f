"""Sampling a search space: Optuna define-by-run suggestions and the baseline point.

``suggest_params`` registers each searched param on an Optuna trial; a
``zero_or_loguniform`` param ``x`` is searched as the flag ``x.enabled`` and, if
enabled, ``x``. ``baseline_point`` inverts ``_configs.build_config``: the point
that reproduces a given ``RunConfig``, which a study evaluates first.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from actmix.activations import ACTIVATIONS
from actmix.config import RunConfig
from study.space._kinds import KINDS, SEARCHED
from study.space._params import ACTIVATION_PREFIX, EPOCH_FRACTIONS, SearchSpace, check_epochs

if TYPE_CHECKING:
    import optuna

__all__ = ["baseline_point", "suggest_params"]


def suggest_params(space: SearchSpace, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """Register the searched params of ``space`` on ``trial``; return the constants.

    The trial's configuration is ``{**trial.params, **constants}``. Asked again for a
    trial that already has params (a replayed or fixed trial), Optuna returns them.
    """
    constants: dict[str, Any] = {}
    for param in space.params:
        value = KINDS[param.kind].suggest(param, trial)
        if value is not SEARCHED:
            constants[param.name] = value
    return constants


def baseline_point(space: SearchSpace, config: RunConfig, *, epochs: int) -> dict[str, Any]:
    """The point (Optuna param names) that reproduces ``config``; fixed params left out.

    Used as the study's first trial, so it evaluates the seed default first.
    Activation options come from ``config`` if it has this space's model, else from
    the activation's defaults. Epoch fractions beyond their range are clipped.
    """
    check_epochs(epochs)
    options = dict(config.mlp.activation) if config.model == space.model else {}
    point: dict[str, Any] = {}
    for param in space.params:
        kind = KINDS[param.kind]
        if not kind.searched:
            continue
        where = f"{space.path}: params.{param.name}"
        value = _config_value(param.name, config, options, space.model, epochs, where)
        if param.name in EPOCH_FRACTIONS and kind.clips:
            low, high = param.bounds()
            value = min(max(value, low), high)
        point.update(kind.point(param, value, where))
    return point


def _config_value(
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
        value: Any = options[option] if option in options else _option_default(model, option, where)
        if option == "basis" and isinstance(value, (list, tuple)):
            return ",".join(value)
        return value
    value = config
    for part in name.split("."):
        value = getattr(value, part)
    return value


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
