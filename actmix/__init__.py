"""ActMix: tabular MLPs with trainable activation functions, trained fast and evaluated leak-free.

>>> from actmix import load_dataset, make_folds, MLP, fit, cross_validate
"""

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
