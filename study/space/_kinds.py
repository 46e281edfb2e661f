"""Distribution kinds: everything one kind of param does, in one place.

A kind says how its YAML argument is read (``parse``), how Optuna searches it
(``suggest``), which Optuna keys a config value becomes for the baseline point
(``point``), how a sample's keys resolve into a param value (``resolve``), and which
values stand for its whole range when a space is checked (``candidates``). Adding a
kind means adding it to ``ParamKind`` and ``KINDS`` here; the reader, the sampler and
the config builder only look kinds up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from study.space._params import Param, as_integer, as_number, enabled_flag

if TYPE_CHECKING:
    import optuna

__all__ = ["DISTRIBUTIONS", "KINDS", "Kind", "ParamKind"]

ParamKind = Literal["uniform", "loguniform", "int", "choice", "fixed", "zero_or_loguniform"]
DISTRIBUTIONS: tuple[str, ...] = get_args(ParamKind)

# ``suggest``'s answer for a param Optuna searches (its value is in ``trial.params``)
SEARCHED: Any = object()


@dataclass(frozen=True, slots=True)
class Kind:
    """One distribution kind (see the module docstring for what each callable does)."""

    parse: Callable[[str, Any, bool, str], Param]  # (name, argument, log, where)
    suggest: Callable[[Param, optuna.trial.BaseTrial], Any]  # a constant, or SEARCHED
    point: Callable[[Param, Any, str], dict[str, Any]]  # (param, config value, where)
    candidates: Callable[[Param], tuple[Any, ...]]
    # (param, sample, values, where): fill or check values[param.name] from the sample
    resolve: Callable[[Param, Mapping[str, Any], dict[str, Any], str], None]
    flags: Callable[[Param], tuple[str, ...]] = lambda _param: ()  # extra sample keys
    integer: bool = True  # may search an integer field
    clips: bool = False  # a baseline value outside [low, high] may be clipped into it
    searched: bool = True  # False: a constant, not part of an Optuna point


# --- reading ----------------------------------------------------------------------------


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


def _range_parser(kind: ParamKind) -> Callable[[str, Any, bool, str], Param]:
    def parse(name: str, argument: Any, log: bool, where: str) -> Param:
        numbers = [_number(v) for v in argument] if isinstance(argument, list) else []
        low, high = numbers if len(numbers) == 2 else (None, None)
        if low is None or high is None:
            raise ValueError(f"{where}: {kind}: expected [low, high], got {argument!r}")
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
        return Param(name, kind, low=low, high=high, log=log)

    return parse


def _parse_choice(name: str, argument: Any, _log: bool, where: str) -> Param:
    if not isinstance(argument, list) or not argument:
        raise ValueError(f"{where}: choice: expected a non-empty list, got {argument!r}")
    seen = set()
    for value in argument:
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"{where}: choice values are str, int, float or bool, got {value!r}")
        if (type(value), value) in seen:
            raise ValueError(f"{where}: choice lists {value!r} twice")
        seen.add((type(value), value))
    return Param(name, "choice", choices=tuple(argument))


def _parse_fixed(name: str, argument: Any, _log: bool, where: str) -> Param:
    scalar = (str, int, float, bool)
    if isinstance(argument, scalar):
        return Param(name, "fixed", value=argument)
    if isinstance(argument, list) and all(isinstance(v, scalar) for v in argument):
        return Param(name, "fixed", value=tuple(argument))
    raise ValueError(f"{where}: fixed: expected a scalar or a list of scalars, got {argument!r}")


# --- the baseline point -------------------------------------------------------------------


def _within(param: Param, value: Any, where: str) -> float | int:
    """``value`` if inside the param's range (float rounding forgiven), else an error."""
    number = as_number(value, where)
    low, high = param.bounds()
    slack = 1e-9 * max(abs(low), abs(high), 1.0)
    if not low - slack <= number <= high + slack:
        raise ValueError(
            f"{where}: the base config's value {value!r} lies outside [{low}, {high}]; "
            "widen the range so the study can evaluate it"
        )
    if param.kind == "int":
        return as_integer(number, where)
    return min(max(float(number), low), high)


def _match_choice(param: Param, value: Any, where: str) -> dict[str, Any]:
    for choice in param.choices:
        same_kind = isinstance(choice, bool) == isinstance(value, bool) and isinstance(
            choice, str
        ) == isinstance(value, str)
        if same_kind and choice == value:
            return {param.name: choice}
    raise ValueError(
        f"{where}: the base config's value {value!r} is not among the choices {list(param.choices)}"
    )


def _point_zero_or(param: Param, value: Any, where: str) -> dict[str, Any]:
    enabled = as_number(value, where) != 0
    point: dict[str, Any] = {enabled_flag(param.name): enabled}
    if enabled:
        point[param.name] = _within(param, value, where)
    return point


# --- samples -------------------------------------------------------------------------------


def _resolve_plain(
    _param: Param, _sample: Mapping[str, Any], _values: dict[str, Any], _where: str
) -> None:
    """The sample holds the value itself, or none (the base config's value stays)."""


def _resolve_fixed(
    param: Param, _sample: Mapping[str, Any], values: dict[str, Any], _where: str
) -> None:
    values.setdefault(param.name, param.value)


def _resolve_zero_or(
    param: Param, sample: Mapping[str, Any], values: dict[str, Any], where: str
) -> None:
    flag = enabled_flag(param.name)
    enabled = sample.get(flag)
    if enabled is None:
        return
    if enabled is False:
        if values.get(param.name, 0.0) != 0.0:
            raise ValueError(
                f"{where}: sample has {flag}=False but {param.name}={values[param.name]!r}"
            )
        values[param.name] = 0.0
    elif param.name not in values:
        raise ValueError(f"{where}: sample has {flag}=True but no {param.name}")


# --- Optuna --------------------------------------------------------------------------------


def _suggest_zero_or(param: Param, trial: optuna.trial.BaseTrial) -> Any:
    if trial.suggest_categorical(enabled_flag(param.name), [False, True]):
        trial.suggest_float(param.name, *param.bounds(), log=True)
        return SEARCHED
    return 0.0


def _suggested(register: Callable[[Param, optuna.trial.BaseTrial], Any]) -> Callable[..., Any]:
    def suggest(param: Param, trial: optuna.trial.BaseTrial) -> Any:
        register(param, trial)
        return SEARCHED

    return suggest


def _suggest_int(param: Param, trial: optuna.trial.BaseTrial) -> None:
    low, high = param.bounds()
    trial.suggest_int(param.name, int(low), int(high), log=param.log)


def _bounds_of(param: Param) -> tuple[Any, ...]:
    return (param.low, param.high)


KINDS: dict[str, Kind] = {
    "uniform": Kind(
        parse=_range_parser("uniform"),
        suggest=_suggested(lambda p, trial: trial.suggest_float(p.name, *p.bounds())),
        point=lambda p, value, where: {p.name: _within(p, value, where)},
        candidates=_bounds_of,
        resolve=_resolve_plain,
        integer=False,
        clips=True,
    ),
    "loguniform": Kind(
        parse=_range_parser("loguniform"),
        suggest=_suggested(lambda p, trial: trial.suggest_float(p.name, *p.bounds(), log=True)),
        point=lambda p, value, where: {p.name: _within(p, value, where)},
        candidates=_bounds_of,
        resolve=_resolve_plain,
        integer=False,
        clips=True,
    ),
    "int": Kind(
        parse=_range_parser("int"),
        suggest=_suggested(_suggest_int),
        point=lambda p, value, where: {p.name: _within(p, value, where)},
        candidates=_bounds_of,
        resolve=_resolve_plain,
        clips=True,
    ),
    "choice": Kind(
        parse=_parse_choice,
        suggest=_suggested(lambda p, trial: trial.suggest_categorical(p.name, list(p.choices))),
        point=_match_choice,
        candidates=lambda p: p.choices,
        resolve=_resolve_plain,
    ),
    "fixed": Kind(
        parse=_parse_fixed,
        suggest=lambda p, _trial: p.value,
        point=lambda _p, _value, _where: {},
        candidates=lambda p: (p.value,),
        resolve=_resolve_fixed,
        searched=False,
    ),
    # 0 (off) or log-uniform in [low, high]: searched as the flag ``<name>.enabled`` and,
    # when on, the value
    "zero_or_loguniform": Kind(
        parse=_range_parser("zero_or_loguniform"),
        suggest=_suggest_zero_or,
        point=_point_zero_or,
        candidates=lambda p: (0.0, p.low, p.high),
        resolve=_resolve_zero_or,
        flags=lambda p: (enabled_flag(p.name),),
        integer=False,
    ),
}
if set(KINDS) != set(DISTRIBUTIONS):
    raise RuntimeError("internal error: KINDS and ParamKind name different kinds")
