"""Reading and checking a search-space file: YAML -> a typed ``SearchSpace``.

The file grammar, ``extends``, and every check that needs only the file: names,
distributions, bounds, the model and which params go together. Whether each value
builds a valid ``RunConfig`` is checked by ``space_configs.check_buildable``, which
``spaces.load_space`` applies to what this module returns. Every problem is a
``ValueError`` (or ``FileNotFoundError``) naming the file, the param and what would
be valid.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actmix.config import XGBOOST
from study.space._kinds import DISTRIBUTIONS, KINDS
from study.space._params import (
    ACTIVATION_PREFIX,
    PARAM_TYPES,
    SETS_FIELD,
    Param,
    SearchSpace,
    check_model,
    did_you_mean,
)
from study.system import MAX_YAML_NODES, parse_yaml

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_YAML_NODES",
    "absolute_space",
    "bundled_directory",
    "bundled_names",
    "read_space",
]

_TOP_LEVEL_KEYS = ("description", "model", "extends", "params")
_FILE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_OPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# a space file is a few lines; the caps keep a hostile or mistaken file from
# costing minutes (anchors and aliases can make a few lines stand for 10^9 nodes)
MAX_FILE_BYTES = 256 * 1024


def _is_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text


def absolute_space(path_or_name: str) -> str:
    """A space path made absolute (a study may resume from elsewhere); a bundled name as is."""
    return (
        str(Path(path_or_name).expanduser().resolve()) if _is_path(path_or_name) else path_or_name
    )


def read_space(path_or_name: str | os.PathLike[str]) -> SearchSpace:
    """Read a space from a ``.yaml`` path or by bundled name (``"actmix"``, ``"mlp"``, ...)."""
    text = os.fspath(path_or_name)
    if _is_path(text):
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"search space file not found: {path}")
        return _parse_space_file(path.parent, path.name, ())
    directory = bundled_directory()
    if _FILE_NAME.fullmatch(text) and directory.joinpath(f"{text}.yaml").is_file():
        return _parse_space_file(directory, f"{text}.yaml", ())
    raise ValueError(
        f"unknown search space {text!r}; give a .yaml path or a bundled name: "
        f"{', '.join(bundled_names())}"
    )


def bundled_directory() -> Traversable:
    return resources.files("study.search_spaces")


def bundled_names() -> list[str]:
    entries = bundled_directory().iterdir()
    return sorted(e.name.removesuffix(".yaml") for e in entries if e.name.endswith(".yaml"))


def _parse_space_file(directory: Traversable, filename: str, chain: tuple[str, ...]) -> SearchSpace:
    """Parse and check ``directory/filename``; ``chain``: the files extending it (cycles)."""
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
        parent = _parse_space_file(
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
    with location.open("rb") as stream:
        raw = stream.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(
            f"{display}: larger than {MAX_FILE_BYTES // 1024} KiB; a search space file "
            "is a few lines"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{display}: not UTF-8 text (byte {error.start} is {raw[error.start]:#04x}); "
            "save the file as UTF-8"
        ) from None
    return parse_yaml(text, display, what="a search space")


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
    if name.startswith(ACTIVATION_PREFIX):
        if not _OPTION_NAME.fullmatch(name.removeprefix(ACTIVATION_PREFIX)):
            raise ValueError(f"{where}: expected mlp.activation.<option>, got {name!r}")
        return
    if name not in PARAM_TYPES:
        hint = did_you_mean(name, [*PARAM_TYPES, "mlp.activation.<option>"], "params")
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
    if PARAM_TYPES.get(name) is int and not KINDS[kind].integer:
        raise ValueError(f"{where}: {name} is an integer; use int: [low, high] or choice")
    return KINDS[kind].parse(name, argument, log, where)


def _check_space(space: SearchSpace) -> None:
    where = f"{space.path}: params"
    names = {param.name for param in space.params}
    if not names:
        raise ValueError(f"{where}: no params")
    if not space.model:
        raise ValueError(f"{space.path}: model: missing; name an activation or 'xgboost'")
    try:
        check_model(space.model)
    except ValueError as error:
        raise ValueError(f"{space.path}: model: {error}") from None
    is_xgboost = space.model == XGBOOST
    for name in sorted(names):
        if name.startswith(f"{XGBOOST}.") != is_xgboost:
            family = "xgboost.*" if is_xgboost else "mlp.* and train.*"
            raise ValueError(f"{where}.{name}: model {space.model!r} takes only {family} params")
        if name in SETS_FIELD and SETS_FIELD[name] in names:
            raise ValueError(f"{where}.{name}: give either {name} or {SETS_FIELD[name]}, not both")
    if ("mlp.width" in names) != ("mlp.depth" in names):
        given = "mlp.width" if "mlp.width" in names else "mlp.depth"
        raise ValueError(
            f"{where}.{given}: mlp.width and mlp.depth go together (widths = (width,) * depth)"
        )
