"""Frozen configuration dataclasses and the one function that builds them from dicts."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union, get_args, get_origin

from actmix._xgb_config import XGBConfig

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "DEFAULT_DATASET",
    "XGBOOST",
    "EntropySchedule",
    "MLPConfig",
    "RunConfig",
    "ScheduleKind",
    "TemperatureSchedule",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "run_config_to_dict",
    "schedule_fractions",
    "with_epochs",
]

ScheduleKind = Literal["linear", "exponential", "cosine"]

XGBOOST = "xgboost"  # the model name that means gradient-boosted trees, not an MLP
DEFAULT_DATASET = "power_plant"  # what every command uses when no dataset is named
T = TypeVar("T", bound="DataclassInstance")  # a config dataclass


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True, slots=True)
class TemperatureSchedule:
    """Softmax temperature of ActMix: ``initial`` -> ``final`` over ``anneal_epochs``, then held."""

    initial: float = 1.0
    final: float = 1.0
    anneal_epochs: int = 150
    schedule: ScheduleKind = "linear"

    def __post_init__(self) -> None:
        _require(self.initial > 0, f"temperature.initial must be > 0, got {self.initial}")
        _require(self.final > 0, f"temperature.final must be > 0, got {self.final}")
        _require(
            self.anneal_epochs >= 0,
            f"temperature.anneal_epochs must be >= 0, got {self.anneal_epochs}",
        )


@dataclass(frozen=True, slots=True)
class EntropySchedule:
    """Weight of the mixing-entropy penalty: linear warm-up 0 -> ``lambda_max``."""

    lambda_max: float = 0.0
    warmup_epochs: int = 50

    def __post_init__(self) -> None:
        _require(self.lambda_max >= 0, f"entropy.lambda_max must be >= 0, got {self.lambda_max}")
        _require(
            self.warmup_epochs >= 0, f"entropy.warmup_epochs must be >= 0, got {self.warmup_epochs}"
        )


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Optimisation settings shared by every MLP (seed defaults)."""

    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    eta_min_factor: float = 0.01
    grad_clip: float = 0.5
    patience: int = 20
    temperature: TemperatureSchedule = field(default_factory=TemperatureSchedule)
    entropy: EntropySchedule = field(default_factory=EntropySchedule)

    def __post_init__(self) -> None:
        _require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _require(
            0 <= self.eta_min_factor <= 1,
            f"eta_min_factor must be in [0, 1], got {self.eta_min_factor}",
        )
        _require(self.grad_clip > 0, f"grad_clip must be > 0, got {self.grad_clip}")
        _require(self.patience >= 1, f"patience must be >= 1, got {self.patience}")


@dataclass(frozen=True, slots=True)
class MLPConfig:
    """Shape of the MLP; ``activation`` holds options of the chosen activation."""

    widths: tuple[int, ...] = (128, 128)
    dropout: float = 0.1
    activation: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(len(self.widths) >= 1, "widths must name at least one hidden layer")
        _require(all(w >= 1 for w in self.widths), f"widths must be >= 1, got {list(self.widths)}")
        _require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything that defines one configuration: model family and its settings.

    ``model`` is an activation registry name (an MLP with that activation) or
    ``"xgboost"``. ``dataset`` and ``provenance`` are optional: a config exported
    from a study records where it came from.
    """

    model: str = "actmix"
    mlp: MLPConfig = field(default_factory=MLPConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    xgboost: XGBConfig = field(default_factory=XGBConfig)
    dataset: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


def _suggest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = get_origin(annotation)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return _build(annotation, value, where)
    if origin is Literal:
        choices = get_args(annotation)
        if value not in choices:
            valid = ", ".join(map(str, choices))
            raise ValueError(f"{where}: {value!r} is not one of {valid}")
        return value
    if origin in (Union, types.UnionType):
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        inner = [a for a in options if a is not type(None)]
        return _convert(value, inner[0], where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        item_type = get_args(annotation)[0]
        return tuple(_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _build(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise ValueError(f"unknown key {key!r} in {where}{_suggest(str(key), names)}")
    kwargs = {key: _convert(value, hints[key], f"{where}.{key}") for key, value in data.items()}
    try:
        return cls(**kwargs)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def config_from_dict(cls: type[T], data: Mapping[str, Any], *, source: str = "config") -> T:
    """Build a frozen config dataclass from a (YAML) dict, rejecting unknown keys.

    >>> config_from_dict(TrainConfig, {"epochs": 50}).epochs
    50
    """
    if not isinstance(data, Mapping):
        raise ValueError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    return _build(cls, data, source)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain dict (lists instead of tuples) suitable for YAML/JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def run_config_to_dict(config: RunConfig) -> dict[str, Any]:
    """``config_to_dict`` without the sections the model does not use (xgboost vs MLP)."""
    data = config_to_dict(config)
    unused = ("mlp", "train") if config.model == XGBOOST else ("xgboost",)
    for key in unused:
        data.pop(key)
    if config.dataset is None:
        data.pop("dataset")
    if not config.provenance:
        data.pop("provenance")
    return data


def schedule_fractions(train: TrainConfig) -> dict[str, float]:
    """The epoch-dependent schedule parts as fractions of ``train.epochs``.

    >>> schedule_fractions(TrainConfig(epochs=200))
    {'temperature.anneal_fraction': 0.75, 'entropy.warmup_fraction': 0.25}
    """
    return {
        "temperature.anneal_fraction": train.temperature.anneal_epochs / train.epochs,
        "entropy.warmup_fraction": train.entropy.warmup_epochs / train.epochs,
    }


def with_epochs(config: RunConfig, epochs: int) -> RunConfig:
    """``config`` trained for ``epochs``, its annealing and warm-up rescaled to keep their
    fraction of the run: a schedule tuned over 30 epochs keeps its shape over 200.

    >>> config = with_epochs(RunConfig(), 40)
    >>> config.train.temperature.anneal_epochs, config.train.entropy.warmup_epochs
    (30, 10)
    """
    _require(epochs >= 1, f"epochs must be >= 1, got {epochs}")
    train = config.train
    fractions = schedule_fractions(train)
    temperature = dataclasses.replace(
        train.temperature,
        anneal_epochs=round(fractions["temperature.anneal_fraction"] * epochs),
    )
    entropy = dataclasses.replace(
        train.entropy, warmup_epochs=round(fractions["entropy.warmup_fraction"] * epochs)
    )
    train = dataclasses.replace(train, epochs=epochs, temperature=temperature, entropy=entropy)
    return dataclasses.replace(config, train=train)
