"""Declarative search spaces: one YAML file per model family, one validated parser.

A space file names a default ``model``, may ``extends`` another file in the same
directory (its params are included; keys here override), and maps each param to
exactly one distribution::

    description: ActMix MLP
    model: actmix
    extends: mlp
    params:
      train.lr: {loguniform: [1.0e-4, 1.0e-2]}
      mlp.width: {choice: [64, 128, 256]}

Param names and derived params are described in ``study/space_params.py``; the
file grammar and its checks live in ``study/space_files.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actmix.config import RunConfig
from study.space_files import FILE_NAME, bundled_directory, bundled_names, parse_space_file
from study.space_params import (
    DISTRIBUTIONS,
    EPOCH_FRACTIONS,
    XGBOOST,
    Param,
    ParamKind,
    as_integer,
    as_number,
    build_config,
    check_epochs,
    check_model,
    config_value,
    did_you_mean,
    enabled_flag,
)

if TYPE_CHECKING:
    import optuna

__all__ = [
    "DISTRIBUTIONS",
    "Param",
    "ParamKind",
    "SearchSpace",
    "bundled_spaces",
    "load_space",
    "space_for_model",
]


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """A resolved search space (``extends`` applied); ``name`` is the file stem."""

    name: str
    path: str
    description: str
    model: str
    params: tuple[Param, ...]

    def sha256(self) -> str:
        """Stable hash of the model and the resolved params (not of path or description)."""
        payload = {"model": self.model, "params": [dataclasses.asdict(p) for p in self.params]}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Optuna define-by-run space: registers searched params, returns the constants.

        Pass it as ``OptunaSearch(space=space.suggest)``. A ``zero_or_loguniform``
        param ``x`` is searched as the flag ``x.enabled`` and, if enabled, ``x``.
        """
        constants: dict[str, Any] = {}
        for param in self.params:
            name = param.name
            if param.kind == "uniform":
                trial.suggest_float(name, param.low, param.high)
            elif param.kind == "loguniform":
                trial.suggest_float(name, param.low, param.high, log=True)
            elif param.kind == "int":
                trial.suggest_int(name, int(param.low), int(param.high), log=param.log)
            elif param.kind == "choice":
                trial.suggest_categorical(name, list(param.choices))
            elif param.kind == "fixed":
                constants[name] = param.value
            elif trial.suggest_categorical(enabled_flag(name), [False, True]):
                trial.suggest_float(name, param.low, param.high, log=True)
            else:
                constants[name] = 0.0
        return constants

    def baseline(self, config: RunConfig, *, epochs: int) -> dict[str, Any]:
        """The point (Optuna param names) that reproduces ``config``; fixed params left out.

        Used as ``points_to_evaluate`` so a study evaluates the seed default first.
        Activation options come from ``config`` if it has this space's model, else
        from the activation's defaults.
        """
        check_epochs(epochs)
        options = dict(config.mlp.activation) if config.model == self.model else {}
        point: dict[str, Any] = {}
        for param in self.params:
            if param.kind == "fixed":
                continue
            where = f"{self.path}: params.{param.name}"
            value = config_value(param.name, config, options, self.model, epochs, where)
            if param.kind == "choice":
                point[param.name] = _match_choice(value, param.choices, where)
            elif param.kind == "zero_or_loguniform":
                enabled = as_number(value, where) != 0
                point[enabled_flag(param.name)] = enabled
                if enabled:
                    point[param.name] = _within(param, value, where)
            else:
                if param.name in EPOCH_FRACTIONS:
                    value = min(max(value, param.low), param.high)
                point[param.name] = _within(param, value, where)
        return point

    def to_config(
        self,
        sample: Mapping[str, Any],
        *,
        base: RunConfig,
        epochs: int,
        model: str | None = None,
    ) -> RunConfig:
        """``base`` with the sampled values, ``train.epochs = epochs`` and ``model``.

        ``sample`` is what ``OptunaSearch`` hands a trial (searched params, constants,
        ``<name>.enabled`` flags); params it lacks keep their ``base`` value, except
        fixed ones. Activation options of ``base`` are dropped if the model changes.
        """
        values = self._sample_values(sample)
        return build_config(
            values,
            base=base,
            epochs=epochs,
            model=self.model if model is None else model,
            source=f"{self.path}: sample",
        )

    def _sample_values(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        params = {param.name: param for param in self.params}
        flags = {
            enabled_flag(p.name): p.name for p in self.params if p.kind == "zero_or_loguniform"
        }
        for key in sample:
            if key not in params and key not in flags:
                raise ValueError(
                    f"{self.path}: unknown sample key {key!r}"
                    f"{did_you_mean(str(key), [*params, *flags], 'params')}"
                )
        values = {key: value for key, value in sample.items() if key in params}
        for param in self.params:
            if param.kind == "fixed":
                values.setdefault(param.name, param.value)
            enabled = sample.get(enabled_flag(param.name))
            if param.kind != "zero_or_loguniform" or enabled is None:
                continue
            if enabled is False:
                if values.get(param.name, 0.0) != 0.0:
                    raise ValueError(
                        f"{self.path}: sample has {enabled_flag(param.name)}=False but "
                        f"{param.name}={values[param.name]!r}"
                    )
                values[param.name] = 0.0
            elif param.name not in values:
                raise ValueError(
                    f"{self.path}: sample has {enabled_flag(param.name)}=True but no {param.name}"
                )
        return values


def load_space(path_or_name: str | os.PathLike[str]) -> SearchSpace:
    """Load a space from a ``.yaml`` path or by bundled name (``"actmix"``, ``"mlp"``, ...)."""
    text = os.fspath(path_or_name)
    if text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"search space file not found: {path}")
        return SearchSpace(**parse_space_file(path.parent, path.name, ())._asdict())
    directory = bundled_directory()
    if FILE_NAME.fullmatch(text) and directory.joinpath(f"{text}.yaml").is_file():
        return SearchSpace(**parse_space_file(directory, f"{text}.yaml", ())._asdict())
    raise ValueError(
        f"unknown search space {text!r}; give a .yaml path or a bundled name: "
        f"{', '.join(bundled_names())}"
    )


def bundled_spaces() -> dict[str, str]:
    """Name -> description of every space shipped in ``search_spaces/``."""
    return {name: load_space(name).description for name in bundled_names()}


def space_for_model(model: str) -> SearchSpace:
    """``search_spaces/<model>.yaml`` if shipped, else the shared ``mlp`` space for ``model``."""
    check_model(model)
    if bundled_directory().joinpath(f"{model}.yaml").is_file():
        space = load_space(model)
    elif model == XGBOOST:
        raise ValueError(f"no bundled search space for {model!r}")
    else:
        space = load_space("mlp")
    return space if space.model == model else dataclasses.replace(space, model=model)


def _within(param: Param, value: Any, where: str) -> float | int:
    """``value`` if inside the param's range (float rounding forgiven), else an error."""
    number = as_number(value, where)
    low, high = param.low, param.high
    slack = 1e-9 * max(abs(low), abs(high), 1.0)
    if not low - slack <= number <= high + slack:
        raise ValueError(
            f"{where}: the base config's value {value!r} lies outside [{low}, {high}]; "
            "widen the range so the study can evaluate it"
        )
    if param.kind == "int":
        return as_integer(number, where)
    return min(max(float(number), low), high)


def _match_choice(value: Any, choices: tuple[Any, ...], where: str) -> Any:
    for choice in choices:
        same_kind = isinstance(choice, bool) == isinstance(value, bool) and isinstance(
            choice, str
        ) == isinstance(value, str)
        if same_kind and choice == value:
            return choice
    raise ValueError(
        f"{where}: the base config's value {value!r} is not among the choices {list(choices)}"
    )
