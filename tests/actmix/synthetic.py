"""Small synthetic datasets for tests: numeric + categorical columns, NaNs, a learnable target."""

from __future__ import annotations

import numpy as np
import pandas as pd

from actmix.types import Dataset

__all__ = ["make_classification_dataset", "make_regression_dataset"]

_COLORS = np.array(["red", "green", "blue"], dtype=object)


def _features(
    n: int, rng: np.random.Generator, missing: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric ``x0..x2`` (a ``missing`` share of NaN in x0, x1) and ``color`` (str with NaN)."""
    numeric = pd.DataFrame(rng.normal(size=(n, 3)), columns=["x0", "x1", "x2"])
    for column in ("x0", "x1"):
        numeric.loc[rng.random(n) < missing, column] = np.nan
    colors = _COLORS[rng.integers(0, len(_COLORS), size=n)]
    colors[rng.random(n) < missing] = np.nan
    categorical = pd.DataFrame({"color": colors})
    return numeric, categorical


def _signal(numeric: pd.DataFrame, categorical: pd.DataFrame) -> np.ndarray:
    color_effect = categorical["color"].map({"red": 1.0, "green": -1.0, "blue": 0.0}).fillna(0.0)
    filled = numeric.fillna(0.0)
    return (2.0 * filled["x0"] - filled["x1"] + 0.5 * filled["x2"] + color_effect).to_numpy()


def make_regression_dataset(n: int = 200, seed: int = 0, *, missing: float = 0.1) -> Dataset:
    """Regression rows with target ``~ 10 + 3 * signal + noise`` (mean and scale far from 0/1)."""
    rng = np.random.default_rng(seed)
    numeric, categorical = _features(n, rng, missing)
    target = 10.0 + 3.0 * _signal(numeric, categorical) + rng.normal(scale=0.5, size=n)
    return Dataset(
        name="synthetic_regression",
        numeric=numeric,
        categorical=categorical,
        target=pd.Series(target, name="target"),
        task="regression",
        classes=(),
        source="synthetic",
    )


def make_classification_dataset(
    n: int = 200, seed: int = 0, n_classes: int = 2, *, missing: float = 0.1
) -> Dataset:
    """Classification rows; labels ``class_0..`` are quantile bins of a noisy signal (balanced)."""
    rng = np.random.default_rng(seed)
    numeric, categorical = _features(n, rng, missing)
    score = _signal(numeric, categorical) + rng.normal(scale=0.3, size=n)
    edges = np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])
    classes = tuple(f"class_{code}" for code in range(n_classes))
    labels = np.array(classes, dtype=object)[np.searchsorted(edges, score)]
    return Dataset(
        name="synthetic_classification",
        numeric=numeric,
        categorical=categorical,
        target=pd.Series(labels, name="target"),
        task="classification",
        classes=classes,
        source="synthetic",
    )
