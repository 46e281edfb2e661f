"""XGBoost's settings, apart from xgboost itself: reading a configuration loads no booster."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["XGBConfig"]


def _require_range(name: str, value: float, low: float, high: float, *, open_low: bool) -> None:
    above = value > low if open_low else value >= low
    if not (above and value <= high):
        bracket = "(" if open_low else "["
        upper = "inf)" if high == float("inf") else f"{high:g}]"
        raise ValueError(f"{name} must be in {bracket}{low:g}, {upper}, got {value}")


@dataclass(frozen=True, slots=True)
class XGBConfig:
    """Booster settings; ``n_estimators`` is an upper bound cut by early stopping."""

    n_estimators: int = 1000
    learning_rate: float = 0.05
    max_depth: int = 6
    min_child_weight: float = 1.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    reg_alpha: float = 0.0
    gamma: float = 0.0
    early_stopping_rounds: int = 50

    def __post_init__(self) -> None:
        inf = float("inf")
        _require_range("n_estimators", self.n_estimators, 1, inf, open_low=False)
        _require_range("learning_rate", self.learning_rate, 0, 1, open_low=True)
        _require_range("max_depth", self.max_depth, 1, inf, open_low=False)
        _require_range("min_child_weight", self.min_child_weight, 0, inf, open_low=False)
        _require_range("subsample", self.subsample, 0, 1, open_low=True)
        _require_range("colsample_bytree", self.colsample_bytree, 0, 1, open_low=True)
        _require_range("reg_lambda", self.reg_lambda, 0, inf, open_low=False)
        _require_range("reg_alpha", self.reg_alpha, 0, inf, open_low=False)
        _require_range("gamma", self.gamma, 0, inf, open_low=False)
        _require_range("early_stopping_rounds", self.early_stopping_rounds, 1, inf, open_low=False)
