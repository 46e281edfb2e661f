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

The room's modules, bottom up:

- ``_params``: ``Param``, ``SearchSpace`` and the param names a space may use;
- ``_kinds``: the distribution kinds, each with all it does (adding one touches only it);
- ``_files``: reading and checking a file (YAML -> ``SearchSpace``);
- ``_sampling``: ``suggest_params`` (Optuna define-by-run) and ``baseline_point``;
- ``_configs``: ``config_from_sample`` (sampled values -> ``RunConfig``).

>>> from actmix.config import RunConfig
>>> space = load_space("mlp")
>>> point = baseline_point(space, RunConfig(), epochs=200)
>>> config_from_sample(space, point, base=RunConfig(), epochs=200).mlp.widths
(128, 128)
"""

from __future__ import annotations

import dataclasses
import os

from actmix.config import XGBOOST
from study.space._configs import check_buildable, config_from_sample
from study.space._files import bundled_directory, bundled_names, read_space
from study.space._kinds import DISTRIBUTIONS, ParamKind
from study.space._params import Param, SearchSpace, check_model
from study.space._sampling import baseline_point, suggest_params

__all__ = [
    "DISTRIBUTIONS",
    "Param",
    "ParamKind",
    "SearchSpace",
    "baseline_point",
    "bundled_spaces",
    "config_from_sample",
    "load_space",
    "space_for_model",
    "suggest_params",
]


def load_space(path_or_name: str | os.PathLike[str]) -> SearchSpace:
    """Load a space from a ``.yaml`` path or by bundled name (``"actmix"``, ``"mlp"``, ...).

    Every check passed: the file's grammar, and a valid ``RunConfig`` from each
    bound, choice and fixed value.
    """
    return check_buildable(read_space(path_or_name))


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
