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
- ``_configs``: ``config_from_sample`` (sampled values -> ``RunConfig``);
- ``_packs``: ``structural_names``, the params pack-mates share.

>>> from actmix.config import RunConfig
>>> space = load_space("mlp")
>>> point = baseline_point(space, RunConfig(), epochs=200)
>>> config_from_sample(space, point, base=RunConfig(), epochs=200).mlp.widths
(128, 128)
"""

from __future__ import annotations

from study.space._configs import build_config, check_buildable, config_from_sample
from study.space._files import (
    MAX_FILE_BYTES,
    MAX_YAML_NODES,
    absolute_space,
    bundled_directory,
    bundled_names,
    read_space,
)
from study.space._kinds import (
    DISTRIBUTIONS,
    KINDS,
    Kind,
    ParamKind,
)
from study.space._load import bundled_spaces, load_space, space_for_model
from study.space._packs import structural_names
from study.space._params import (
    ACTIVATION_PREFIX,
    DERIVED,
    EPOCH_FRACTIONS,
    PARAM_TYPES,
    SETS_FIELD,
    Param,
    SearchSpace,
    as_integer,
    as_number,
    check_epochs,
    check_model,
    did_you_mean,
    enabled_flag,
)
from study.space._sampling import baseline_point, suggest_params

__all__ = [
    "ACTIVATION_PREFIX",
    "DERIVED",
    "DISTRIBUTIONS",
    "EPOCH_FRACTIONS",
    "KINDS",
    "MAX_FILE_BYTES",
    "MAX_YAML_NODES",
    "PARAM_TYPES",
    "SETS_FIELD",
    "Kind",
    "Param",
    "ParamKind",
    "SearchSpace",
    "absolute_space",
    "as_integer",
    "as_number",
    "baseline_point",
    "build_config",
    "bundled_directory",
    "bundled_names",
    "bundled_spaces",
    "check_buildable",
    "check_epochs",
    "check_model",
    "config_from_sample",
    "did_you_mean",
    "enabled_flag",
    "load_space",
    "read_space",
    "space_for_model",
    "structural_names",
    "suggest_params",
]
