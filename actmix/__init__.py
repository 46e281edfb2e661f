"""ActMix: tabular MLPs with trainable activation functions, trained fast and evaluated leak-free.

>>> from actmix import load_dataset, make_folds, MLP, fit, cross_validate
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actmix.activations import ActMix, available_activations, make_activation
    from actmix.config import (
        EntropySchedule,
        MLPConfig,
        RunConfig,
        TemperatureSchedule,
        TrainConfig,
        config_from_dict,
        config_to_dict,
    )
    from actmix.cv import CVResult, cross_validate, final_split_seed
    from actmix.data import BUNDLED_DATASETS, load_dataset
    from actmix.metrics import compute_metrics, fold_std, primary_metric
    from actmix.mlp import MLP, ActMixMLP
    from actmix.preprocessing import FoldArrays, prepare_fold
    from actmix.splits import Fold, Splits, make_folds
    from actmix.trainer import EpochRecord, FitResult, MemberData, fit, predict
    from actmix.types import Dataset, Task
    from actmix.xgb import XGBConfig

__version__ = "0.1.0"

__all__ = [
    "BUNDLED_DATASETS",
    "MLP",
    "ActMix",
    "ActMixMLP",
    "CVResult",
    "Dataset",
    "EntropySchedule",
    "EpochRecord",
    "FitResult",
    "Fold",
    "FoldArrays",
    "MLPConfig",
    "MemberData",
    "RunConfig",
    "Splits",
    "Task",
    "TemperatureSchedule",
    "TrainConfig",
    "XGBConfig",
    "available_activations",
    "compute_metrics",
    "config_from_dict",
    "config_to_dict",
    "cross_validate",
    "final_split_seed",
    "fit",
    "fold_std",
    "load_dataset",
    "make_activation",
    "make_folds",
    "predict",
    "prepare_fold",
    "primary_metric",
]

# where each public name lives: imported on first use (PEP 562), so that importing a light
# module (``actmix.config``) or the package itself does not pay for torch and xgboost
_HOMES: dict[str, str] = {
    "ActMix": "actmix.activations",
    "ActMixMLP": "actmix.mlp",
    "BUNDLED_DATASETS": "actmix.data",
    "CVResult": "actmix.cv",
    "Dataset": "actmix.types",
    "EntropySchedule": "actmix.config",
    "EpochRecord": "actmix.trainer",
    "FitResult": "actmix.trainer",
    "Fold": "actmix.splits",
    "FoldArrays": "actmix.preprocessing",
    "MLP": "actmix.mlp",
    "MLPConfig": "actmix.config",
    "MemberData": "actmix.trainer",
    "RunConfig": "actmix.config",
    "Splits": "actmix.splits",
    "Task": "actmix.types",
    "TemperatureSchedule": "actmix.config",
    "TrainConfig": "actmix.config",
    "XGBConfig": "actmix.xgb",
    "available_activations": "actmix.activations",
    "compute_metrics": "actmix.metrics",
    "config_from_dict": "actmix.config",
    "config_to_dict": "actmix.config",
    "cross_validate": "actmix.cv",
    "final_split_seed": "actmix.cv",
    "fit": "actmix.trainer",
    "fold_std": "actmix.metrics",
    "load_dataset": "actmix.data",
    "make_activation": "actmix.activations",
    "make_folds": "actmix.splits",
    "predict": "actmix.trainer",
    "prepare_fold": "actmix.preprocessing",
    "primary_metric": "actmix.metrics",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'actmix' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
