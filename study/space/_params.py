"""What a search space is made of: typed params, the names they may take, and value checks.

The bottom of the search-space modules: ``_kinds`` says what each distribution kind
does, ``_files`` reads YAML into these types, ``_sampling`` turns them into Optuna
suggestions and the baseline point, and ``_configs`` turns sampled values into a
``RunConfig``. Nothing here imports them.

A param name is a dotted path into ``RunConfig`` (``mlp.activation.<option>`` is
free-form; ``train.epochs`` belongs to the study) or one of the ``DERIVED`` names:
``mlp.width`` + ``mlp.depth`` -> ``mlp.widths``; ``train.temperature.final_fraction``
-> ``final = initial * fraction``; ``train.temperature.anneal_fraction`` /
``train.entropy.warmup_fraction`` -> ``round(fraction * epochs)`` epochs.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actmix.activations import available_activations
from actmix.config import XGBOOST, RunConfig

if TYPE_CHECKING:
    from study.space._kinds import ParamKind

__all__ = [
    "ACTIVATION_PREFIX",
    "DERIVED",
    "EPOCH_FRACTIONS",
    "PARAM_TYPES",
    "SETS_FIELD",
    "Param",
    "SearchSpace",
    "as_integer",
    "as_number",
    "check_epochs",
    "check_model",
    "did_you_mean",
    "enabled_flag",
]

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
        if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
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

    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` of a range param (every kind but choice and fixed)."""
        if self.low is None or self.high is None:
            raise RuntimeError(f"internal error: {self.name} has no bounds")
        return self.low, self.high


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """A resolved search space (``extends`` applied), as read from one YAML file."""

    name: str  # the file stem: "actmix" for actmix.yaml
    path: str  # where it was read from, for messages
    description: str
    model: str  # the model its configurations train unless the study names another
    params: tuple[Param, ...]  # in file order, a parent's (``extends``) first

    def sha256(self) -> str:
        """Stable hash of the model and the resolved params (not of path or description)."""
        payload = {"model": self.model, "params": [dataclasses.asdict(p) for p in self.params]}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def enabled_flag(name: str) -> str:
    """The Optuna flag that switches a ``zero_or_loguniform`` param ``name`` on or off."""
    return f"{name}.enabled"


def check_model(model: str) -> None:
    valid = (*available_activations(), XGBOOST)
    if model not in valid:
        raise ValueError(f"unknown model {model!r}; valid: {', '.join(valid)}")


def check_epochs(epochs: int) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")


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
