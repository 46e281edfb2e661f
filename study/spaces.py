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

A param name is a dotted path into ``RunConfig`` (``mlp.activation.<option>`` is
free-form; ``train.epochs`` belongs to the study) or a derived name, translated in
``_apply_params`` and inverted in ``_config_value``: ``mlp.width`` + ``mlp.depth``
-> ``mlp.widths``; ``train.temperature.final_fraction`` -> ``final = initial *
fraction``; ``train.temperature.anneal_fraction`` / ``train.entropy.warmup_fraction``
-> ``round(fraction * epochs)`` epochs; ``mlp.activation.basis`` as a comma string.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import inspect
import json
import math
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from actmix.activations import ACTIVATIONS, available_activations
from actmix.config import RunConfig, config_from_dict, config_to_dict

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

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

ParamKind = Literal["uniform", "loguniform", "int", "choice", "fixed", "zero_or_loguniform"]
DISTRIBUTIONS: tuple[str, ...] = typing.get_args(ParamKind)

_TOP_LEVEL_KEYS = ("description", "model", "extends", "params")
_XGBOOST = "xgboost"
_ACTIVATION_PREFIX = "mlp.activation."
_FILE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_OPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEED_EPOCHS = 200  # epochs of the seed config; endpoint checks build configs with it

_DERIVED: dict[str, type] = {
    "mlp.width": int,
    "mlp.depth": int,
    "train.temperature.final_fraction": float,
    "train.temperature.anneal_fraction": float,
    "train.entropy.warmup_fraction": float,
}
_EPOCH_FRACTIONS = ("train.temperature.anneal_fraction", "train.entropy.warmup_fraction")
# a derived name and the field it sets cannot both be searched
_SETS_FIELD = {
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
_PARAM_TYPES: dict[str, Any] = {
    **{
        path: annotation
        for path, annotation in _field_types(RunConfig, "").items()
        if path.split(".")[0] in ("mlp", "train", _XGBOOST)
        and path not in ("mlp.activation", "train.epochs")
    },
    **_DERIVED,
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
            elif trial.suggest_categorical(_enabled(name), [False, True]):
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
        _check_epochs(epochs)
        options = dict(config.mlp.activation) if config.model == self.model else {}
        point: dict[str, Any] = {}
        for param in self.params:
            if param.kind == "fixed":
                continue
            where = f"{self.path}: params.{param.name}"
            value = _config_value(param.name, config, options, self.model, epochs, where)
            if param.kind == "choice":
                point[param.name] = _match_choice(value, param.choices, where)
            elif param.kind == "zero_or_loguniform":
                enabled = _as_number(value, where) != 0
                point[_enabled(param.name)] = enabled
                if enabled:
                    point[param.name] = _within(param, value, where)
            else:
                if param.name in _EPOCH_FRACTIONS:
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
        return _build_config(
            values,
            base=base,
            epochs=epochs,
            model=self.model if model is None else model,
            source=f"{self.path}: sample",
        )

    def _sample_values(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        params = {param.name: param for param in self.params}
        flags = {_enabled(p.name): p.name for p in self.params if p.kind == "zero_or_loguniform"}
        for key in sample:
            if key not in params and key not in flags:
                raise ValueError(
                    f"{self.path}: unknown sample key {key!r}"
                    f"{_did_you_mean(str(key), [*params, *flags], 'params')}"
                )
        values = {key: value for key, value in sample.items() if key in params}
        for param in self.params:
            if param.kind == "fixed":
                values.setdefault(param.name, param.value)
            enabled = sample.get(_enabled(param.name))
            if param.kind != "zero_or_loguniform" or enabled is None:
                continue
            if enabled is False:
                if values.get(param.name, 0.0) != 0.0:
                    raise ValueError(
                        f"{self.path}: sample has {_enabled(param.name)}=False but "
                        f"{param.name}={values[param.name]!r}"
                    )
                values[param.name] = 0.0
            elif param.name not in values:
                raise ValueError(
                    f"{self.path}: sample has {_enabled(param.name)}=True but no {param.name}"
                )
        return values


def load_space(path_or_name: str | os.PathLike[str]) -> SearchSpace:
    """Load a space from a ``.yaml`` path or by bundled name (``"actmix"``, ``"mlp"``, ...)."""
    text = os.fspath(path_or_name)
    if text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"search space file not found: {path}")
        return _load(path.parent, path.name, ())
    directory = _bundled_directory()
    if _FILE_NAME.fullmatch(text) and directory.joinpath(f"{text}.yaml").is_file():
        return _load(directory, f"{text}.yaml", ())
    raise ValueError(
        f"unknown search space {text!r}; give a .yaml path or a bundled name: "
        f"{', '.join(_bundled_names())}"
    )


def bundled_spaces() -> dict[str, str]:
    """Name -> description of every space shipped in ``search_spaces/``."""
    return {name: load_space(name).description for name in _bundled_names()}


def space_for_model(model: str) -> SearchSpace:
    """``search_spaces/<model>.yaml`` if shipped, else the shared ``mlp`` space for ``model``."""
    _check_model(model)
    if _bundled_directory().joinpath(f"{model}.yaml").is_file():
        space = load_space(model)
    elif model == _XGBOOST:
        raise ValueError(f"no bundled search space for {model!r}")
    else:
        space = load_space("mlp")
    return space if space.model == model else dataclasses.replace(space, model=model)


# --- building configs: the one place where derived names are translated ---


def _apply_params(values: Mapping[str, Any], data: dict[str, Any], *, epochs: int) -> None:
    """Write ``values`` (param name -> value) into ``config_to_dict`` output ``data``."""
    for name, value in values.items():
        if name in _DERIVED:
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
        depth = _as_integer(values["mlp.depth"], "mlp.depth")
        data["mlp"]["widths"] = [values["mlp.width"]] * depth
    temperature = data["train"]["temperature"]
    if "train.temperature.final_fraction" in values:
        fraction = _as_number(values["train.temperature.final_fraction"], "final_fraction")
        temperature["final"] = temperature["initial"] * fraction
    if "train.temperature.anneal_fraction" in values:
        fraction = _as_number(values["train.temperature.anneal_fraction"], "anneal_fraction")
        temperature["anneal_epochs"] = round(fraction * epochs)
    if "train.entropy.warmup_fraction" in values:
        fraction = _as_number(values["train.entropy.warmup_fraction"], "warmup_fraction")
        data["train"]["entropy"]["warmup_epochs"] = round(fraction * epochs)


def _config_value(
    name: str,
    config: RunConfig,
    options: Mapping[str, Any],
    model: str,
    epochs: int,
    where: str,
) -> Any:
    """Inverse of ``_apply_params``: the value of param ``name`` that gives ``config``."""
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
    if name.startswith(_ACTIVATION_PREFIX):
        option = name.removeprefix(_ACTIVATION_PREFIX)
        value = options[option] if option in options else _option_default(model, option, where)
        if option == "basis" and isinstance(value, (list, tuple)):
            return ",".join(value)
        return value
    value: Any = config
    for part in name.split("."):
        value = getattr(value, part)
    return value


def _build_config(
    values: Mapping[str, Any], *, base: RunConfig, epochs: int, model: str, source: str
) -> RunConfig:
    _check_epochs(epochs)
    _check_model(model)
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


# --- parsing ---


def _load(directory: Traversable, filename: str, chain: tuple[str, ...]) -> SearchSpace:
    display = str(directory.joinpath(filename))
    if display in chain:
        raise ValueError(f"{chain[-1]}: extends: cycle {' -> '.join((*chain, display))}")
    data = _read_yaml(directory.joinpath(filename), display)
    if not isinstance(data, Mapping):
        raise ValueError(
            f"{display}: expected a mapping with keys {', '.join(_TOP_LEVEL_KEYS)}, "
            f"got {type(data).__name__}"
        )
    for key in data:
        if key not in _TOP_LEVEL_KEYS:
            valid = ", ".join(_TOP_LEVEL_KEYS)
            close = difflib.get_close_matches(str(key), _TOP_LEVEL_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"{display}: unknown key {key!r}; {hint}valid keys: {valid}")
    for key in ("description", "model", "extends"):
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"{display}: {key}: expected a string, got {data[key]!r}")
    params_data = data.get("params") or {}
    if not isinstance(params_data, Mapping):
        raise ValueError(f"{display}: params: expected a mapping name -> distribution")
    params: dict[str, Param] = {}
    parent = None
    if "extends" in data:
        parent = _load(
            directory, _extends_file(directory, data["extends"], display), (*chain, display)
        )
        params = {param.name: param for param in parent.params}
    for name, spec in params_data.items():
        where = f"{display}: params.{name}"
        if not isinstance(name, str):
            raise ValueError(f"{where}: param names are strings, got {name!r}")
        _check_name(name, where)
        params[name] = _parse_param(name, spec, where)
    space = SearchSpace(
        name=filename.removesuffix(".yaml").removesuffix(".yml"),
        path=display,
        description=data.get("description", parent.description if parent else ""),
        model=data.get("model", parent.model if parent else ""),
        params=tuple(params.values()),
    )
    _check_space(space)
    return space


def _read_yaml(location: Traversable, display: str) -> Any:
    if not location.is_file():
        raise FileNotFoundError(f"search space file not found: {display}")
    text = location.read_text(encoding="utf-8")
    try:
        _reject_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader), display)
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ValueError(f"cannot parse {display}{line}: {problem}") from None


def _reject_duplicate_keys(node: yaml.Node | None, display: str) -> None:
    """safe_load keeps the last of two equal keys silently; a repeated param is a typo."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    line = key.start_mark.line + 1
                    raise ValueError(f"{display} (line {line}): duplicate key {key.value!r}")
                seen.add(key.value)
            _reject_duplicate_keys(value, display)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, display)


def _extends_file(directory: Traversable, target: str, display: str) -> str:
    stem = target.removesuffix(".yaml")
    if not _FILE_NAME.fullmatch(stem):
        raise ValueError(
            f"{display}: extends: expected the name of a space file in the same directory, "
            f"got {target!r}"
        )
    if not directory.joinpath(f"{stem}.yaml").is_file():
        raise ValueError(
            f"{display}: extends: no space file {target!r} next to it "
            f"({directory.joinpath(f'{stem}.yaml')} does not exist)"
        )
    return f"{stem}.yaml"


def _check_name(name: str, where: str) -> None:
    if name == "train.epochs":
        raise ValueError(f"{where}: train.epochs may not be searched: the study sets the epochs")
    if name.startswith(_ACTIVATION_PREFIX):
        if not _OPTION_NAME.fullmatch(name.removeprefix(_ACTIVATION_PREFIX)):
            raise ValueError(f"{where}: expected mlp.activation.<option>, got {name!r}")
        return
    if name not in _PARAM_TYPES:
        hint = _did_you_mean(name, [*_PARAM_TYPES, "mlp.activation.<option>"], "params")
        raise ValueError(f"{where}: unknown param {name!r}{hint}")


def _parse_param(name: str, spec: Any, where: str) -> Param:
    valid = ", ".join(DISTRIBUTIONS)
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"{where}: expected a mapping with one distribution ({valid}), got {spec!r}"
        )
    for key in spec:
        if key not in DISTRIBUTIONS and key != "log":
            raise ValueError(f"{where}: unknown distribution {key!r}; valid: {valid}")
    kinds = [key for key in spec if key in DISTRIBUTIONS]
    if len(kinds) != 1:
        got = ", ".join(kinds) or "none"
        raise ValueError(f"{where}: expected exactly one distribution, got {got}; valid: {valid}")
    kind = kinds[0]
    argument = spec[kind]
    log = spec.get("log", False)
    if "log" in spec and kind != "int":
        raise ValueError(f"{where}: 'log' goes only with int (use loguniform for floats)")
    if not isinstance(log, bool):
        raise ValueError(f"{where}: log: expected true or false, got {log!r}")
    if _PARAM_TYPES.get(name) is int and kind in ("uniform", "loguniform", "zero_or_loguniform"):
        raise ValueError(f"{where}: {name} is an integer; use int: [low, high] or choice")
    if kind == "fixed":
        return Param(name, kind, value=_fixed_value(argument, where))
    if kind == "choice":
        return Param(name, kind, choices=_choices(argument, where))
    low, high = _bounds(kind, argument, log, where)
    return Param(name, kind, low=low, high=high, log=log)


def _bounds(kind: str, argument: Any, log: bool, where: str) -> tuple[float, float]:
    numbers = [_number(v) for v in argument] if isinstance(argument, list) else []
    if len(numbers) != 2 or None in numbers:
        raise ValueError(f"{where}: {kind}: expected [low, high], got {argument!r}")
    low, high = numbers
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{where}: {kind}: bounds must be finite, got [{low}, {high}]")
    if low > high:
        raise ValueError(f"{where}: low {low} > high {high}")
    if kind == "int":
        if not (float(low).is_integer() and float(high).is_integer()):
            raise ValueError(f"{where}: int needs integer bounds, got [{low}, {high}]")
        low, high = int(low), int(high)
    if (kind in ("loguniform", "zero_or_loguniform") or log) and low <= 0:
        label = "int with log" if kind == "int" else kind
        raise ValueError(f"{where}: {label} needs low > 0, got {low}")
    return low, high


def _choices(argument: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(argument, list) or not argument:
        raise ValueError(f"{where}: choice: expected a non-empty list, got {argument!r}")
    seen = set()
    for value in argument:
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"{where}: choice values are str, int, float or bool, got {value!r}")
        if (type(value), value) in seen:
            raise ValueError(f"{where}: choice lists {value!r} twice")
        seen.add((type(value), value))
    return tuple(argument)


def _fixed_value(argument: Any, where: str) -> Any:
    scalar = (str, int, float, bool)
    if isinstance(argument, scalar):
        return argument
    if isinstance(argument, list) and all(isinstance(v, scalar) for v in argument):
        return tuple(argument)
    raise ValueError(f"{where}: fixed: expected a scalar or a list of scalars, got {argument!r}")


def _check_space(space: SearchSpace) -> None:
    where = f"{space.path}: params"
    names = {param.name for param in space.params}
    if not names:
        raise ValueError(f"{where}: no params")
    if not space.model:
        raise ValueError(f"{space.path}: model: missing; name an activation or 'xgboost'")
    try:
        _check_model(space.model)
    except ValueError as error:
        raise ValueError(f"{space.path}: model: {error}") from None
    is_xgboost = space.model == _XGBOOST
    for name in sorted(names):
        if name.startswith(f"{_XGBOOST}.") != is_xgboost:
            family = "xgboost.*" if is_xgboost else "mlp.* and train.*"
            raise ValueError(f"{where}.{name}: model {space.model!r} takes only {family} params")
        if name in _SETS_FIELD and _SETS_FIELD[name] in names:
            raise ValueError(f"{where}.{name}: give either {name} or {_SETS_FIELD[name]}, not both")
    if ("mlp.width" in names) != ("mlp.depth" in names):
        given = "mlp.width" if "mlp.width" in names else "mlp.depth"
        raise ValueError(
            f"{where}.{given}: mlp.width and mlp.depth go together (widths = (width,) * depth)"
        )
    _check_endpoints(space)


def _check_endpoints(space: SearchSpace) -> None:
    """Every bound, choice and fixed value must give a valid config on its own."""
    base = RunConfig(model=space.model)
    by_name = {param.name: param for param in space.params}
    partner = {"mlp.width": "mlp.depth", "mlp.depth": "mlp.width"}
    for param in space.params:
        for value in _candidates(param):
            values = {param.name: value}
            if param.name in partner:
                values[partner[param.name]] = _candidates(by_name[partner[param.name]])[0]
            try:
                _build_config(
                    values, base=base, epochs=_SEED_EPOCHS, model=space.model, source="RunConfig"
                )
            except ValueError as error:
                raise ValueError(
                    f"{space.path}: params.{param.name}: {value!r} gives an invalid config: {error}"
                ) from None


def _candidates(param: Param) -> tuple[Any, ...]:
    if param.kind == "fixed":
        return (param.value,)
    if param.kind == "choice":
        return param.choices
    if param.kind == "zero_or_loguniform":
        return (0.0, param.low, param.high)
    return (param.low, param.high)


# --- small helpers ---


def _bundled_directory() -> Traversable:
    return resources.files("study.search_spaces")


def _bundled_names() -> list[str]:
    entries = _bundled_directory().iterdir()
    return sorted(e.name.removesuffix(".yaml") for e in entries if e.name.endswith(".yaml"))


def _check_model(model: str) -> None:
    valid = (*available_activations(), _XGBOOST)
    if model not in valid:
        raise ValueError(f"unknown model {model!r}; valid: {', '.join(valid)}")


def _check_epochs(epochs: int) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")


def _enabled(name: str) -> str:
    return f"{name}.enabled"


def _did_you_mean(name: str, valid: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; valid {what}: {', '.join(valid)}"


def _number(value: Any) -> float | None:
    """A YAML number; also ``'1e-4'``, which YAML 1.1 reads as a string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _as_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    return value


def _as_integer(value: Any, where: str) -> int:
    if _as_number(value, where) != int(value):
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    return int(value)


def _within(param: Param, value: Any, where: str) -> float | int:
    """``value`` if inside the param's range (float rounding forgiven), else an error."""
    number = _as_number(value, where)
    low, high = param.low, param.high
    slack = 1e-9 * max(abs(low), abs(high), 1.0)
    if not low - slack <= number <= high + slack:
        raise ValueError(
            f"{where}: the base config's value {value!r} lies outside [{low}, {high}]; "
            "widen the range so the study can evaluate it"
        )
    if param.kind == "int":
        return _as_integer(number, where)
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
