"""Paired comparisons of two models on the same rows, and Holm's correction across them.

Three paired tests, each reported as a :class:`PairedTest` (A minus B, metric units):

- :func:`corrected_t_test` on per-fold scores over (repeated) cross-validation: the
  resampled t-test with Nadeau and Bengio's (2003) variance correction
  ``(1/J + n_test/n_train)``, which accounts for the overlap of training sets between
  folds; it sees training randomness (splits, seeds), not only test-row noise, and is
  the primary test of a comparison.
- :func:`paired_wilcoxon` on per-fold scores (a fold's score is the mean over its seeds,
  so seeds do not inflate the number of pairs). With k folds its smallest two-sided
  p-value is 2/2^k, so it is only run when that can go below ``alpha`` (k >= 6 at 0.05).
- :func:`paired_bootstrap` over the rows of pooled out-of-fold predictions (every row
  predicted once, by a model that never saw it), with a percentile interval.

Scores are only paired when they come from the same folds of the same data (same splits
fingerprint). Which model is better always follows the sign of the mean difference and
the metric's direction, never a count of wins.

>>> holm([0.01, 0.04, 0.03])
[0.03, 0.06, 0.06]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ALPHA",
    "BOOTSTRAP_METRICS",
    "Better",
    "BootstrapMetric",
    "PairedTest",
    "TestName",
    "better_of",
    "corrected_t_test",
    "fold_scores",
    "holm",
    "min_wilcoxon_folds",
    "paired_bootstrap",
    "paired_wilcoxon",
]

ALPHA = 0.05  # significance level of every test and verdict unless a caller says otherwise
TestName = Literal["corrected_t", "wilcoxon", "bootstrap"]
Better = Literal["a", "b", "tie"]
BootstrapMetric = Literal["rmse", "accuracy"]
BOOTSTRAP_METRICS: tuple[BootstrapMetric, ...] = ("rmse", "accuracy")
_LOWER_IS_BETTER: dict[BootstrapMetric, bool] = {"rmse": True, "accuracy": False}
_BOOTSTRAP_CELLS = 4_000_000  # resample indices drawn per block, to bound memory


def fold_scores(rows: Sequence[Mapping[str, Any]], key: str) -> dict[int, float]:
    """``{fold: mean of key over that fold's seeds}``, skipping non-finite values."""
    by_fold: dict[int, list[float]] = {}
    for row in rows:
        if key not in row:
            raise ValueError(f"row of fold {row.get('fold')} has no {key!r}")
        value = float(row[key])
        if math.isfinite(value):
            by_fold.setdefault(int(row["fold"]), []).append(value)
    return {fold: float(np.mean(values)) for fold, values in sorted(by_fold.items())}


def better_of(mean_difference: float, *, lower_is_better: bool) -> Better:
    """``"a"``, ``"b"`` or ``"tie"`` from the sign of A minus B and the metric's direction."""
    if not math.isfinite(mean_difference) or mean_difference == 0:
        return "tie"
    a_is_lower = mean_difference < 0
    return "a" if a_is_lower == lower_is_better else "b"


@dataclass(frozen=True, slots=True)
class PairedTest:
    """One paired test of model A against model B; differences are A minus B.

    ``n`` counts folds (corrected t, Wilcoxon) or rows (bootstrap). ``p_value`` is None
    when the test is not applicable, and ``note`` says why. ``statistic`` is Wilcoxon's
    W (the smaller signed-rank sum), the corrected t statistic, or None for the
    bootstrap. ``wins``/``losses``/``ties`` count the folds (or rows, by per-row loss)
    where A is better / worse / equal: shown for context only, they never decide
    ``better``.
    """

    test: TestName
    n: int
    statistic: float | None
    p_value: float | None
    mean_difference: float
    lower_is_better: bool
    ci_low: float | None = None
    ci_high: float | None = None
    wins: int = 0
    losses: int = 0
    ties: int = 0
    note: str | None = None

    @property
    def better(self) -> Better:
        """The better model by the mean difference, whatever the p-value."""
        return better_of(self.mean_difference, lower_is_better=self.lower_is_better)

    def to_dict(self) -> dict[str, Any]:
        """A ``report.json`` comparison's fields, less ``dataset``, ``a``, ``b``, ``p_holm``."""
        return {
            "test": self.test,
            "n": self.n,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "mean_difference": self.mean_difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "better": self.better,
            "lower_is_better": self.lower_is_better,
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.ties,
            "note": self.note,
        }


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def min_wilcoxon_folds(alpha: float = ALPHA) -> int:
    """The fewest folds whose smallest two-sided signed-rank p-value, 2/2^k, is below ``alpha``.

    >>> min_wilcoxon_folds(0.05)
    6
    """
    _check_alpha(alpha)
    return max(2, math.floor(math.log2(2 / alpha)) + 1)


def _counts(signed: np.ndarray) -> tuple[int, int, int]:
    """(wins, losses, ties) of A from differences signed so that > 0 means A is better."""
    wins, losses = int((signed > 0).sum()), int((signed < 0).sum())
    return wins, losses, signed.size - wins - losses


def paired_wilcoxon(
    a: Mapping[int, float],
    b: Mapping[int, float],
    *,
    lower_is_better: bool,
    alpha: float = ALPHA,
) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test of A against B on the folds both have.

    Run only when the common folds number at least :func:`min_wilcoxon_folds` (``alpha``);
    with fewer, ``p_value`` is None and ``note`` gives the smallest attainable p. Exact
    p-values for small samples without ties (scipy's ``auto``); folds with equal scores
    are dropped from the ranks (Wilcoxon's convention) and counted as ties.
    """
    from scipy.stats import wilcoxon

    folds = sorted(set(a) & set(b))
    if not folds:
        raise ValueError(f"no common folds: A has {sorted(a)}, B has {sorted(b)}")
    differences = np.array([a[fold] - b[fold] for fold in folds], dtype=float)
    wins, losses, ties = _counts(-differences if lower_is_better else differences)
    n, needed = len(folds), min_wilcoxon_folds(alpha)
    statistic: float | None = None
    p_value: float | None = None
    note = None
    if wins + losses == 0:
        statistic, p_value = 0.0, 1.0
    else:
        result = wilcoxon(differences, zero_method="wilcox", alternative="two-sided")
        statistic = float(result.statistic)
        if n >= needed:
            p_value = float(result.pvalue)
    if n < needed:
        p_value = None
        note = (
            f"Wilcoxon not applicable: with {n} folds the smallest two-sided p-value is "
            f"2/2^{n} = {2 / 2**n:.4g}, not below {alpha}; it needs >= {needed} folds"
        )
    return PairedTest(
        test="wilcoxon",
        n=n,
        statistic=statistic,
        p_value=p_value,
        mean_difference=float(differences.mean()),
        lower_is_better=lower_is_better,
        wins=wins,
        losses=losses,
        ties=ties,
        note=note,
    )


def corrected_t_test(
    a: Mapping[Any, float],
    b: Mapping[Any, float],
    *,
    lower_is_better: bool,
    test_fraction: float,
) -> PairedTest:
    """Corrected resampled t-test (Nadeau & Bengio 2003) of A against B on common folds.

    ``a`` and ``b`` map a fold (any key, e.g. ``(repeat, fold)`` over repeated
    cross-validation) to its score. With J differences ``d`` of mean ``m`` and sample
    variance ``s2``, ``t = m / sqrt((1/J + test_fraction) * s2)`` on J - 1 degrees of
    freedom, two-sided; ``test_fraction`` is n_test / n_train of one fold (1/(k-1) for
    k-fold). The plain t-test would use ``1/J`` alone and, with overlapping training
    sets, reject far too often. ``ci_low``/``ci_high``: the matching (1 - ALPHA) interval
    ``m -+ t_{J-1} * sqrt((1/J + test_fraction) * s2)``. Needs two folds; equal differences
    (zero variance) give p = 1 for a zero mean and p = 0 otherwise.

    >>> test = corrected_t_test({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.0, 1: 0.0, 2: 0.0},
    ...                         lower_is_better=True, test_fraction=0.5)
    >>> round(test.statistic, 4), round(test.p_value, 4)  # t = 2 / sqrt((1/3 + 1/2) * 1)
    (2.1909, 0.1598)
    """
    from scipy.stats import t as student_t

    if not math.isfinite(test_fraction) or test_fraction <= 0:
        raise ValueError(f"test_fraction must be > 0, got {test_fraction}")
    folds = [fold for fold in a if fold in b]
    if len(folds) < 2:
        raise ValueError(f"the corrected t-test needs >= 2 common folds, got {len(folds)}")
    differences = np.array([a[fold] - b[fold] for fold in folds], dtype=float)
    if not np.all(np.isfinite(differences)):
        raise ValueError("the corrected t-test needs finite scores on every common fold")
    wins, losses, ties = _counts(-differences if lower_is_better else differences)
    mean, n = float(differences.mean()), differences.size
    scale = math.sqrt((1 / n + test_fraction) * float(differences.var(ddof=1)))
    if scale == 0:
        statistic, p_value = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    else:
        statistic = mean / scale
        p_value = float(min(1.0, 2 * student_t.sf(abs(statistic), n - 1)))
    half_width = float(student_t.ppf(1 - ALPHA / 2, n - 1)) * scale  # the test's own interval
    return PairedTest(
        test="corrected_t",
        n=n,
        statistic=statistic,
        p_value=p_value,
        mean_difference=mean,
        lower_is_better=lower_is_better,
        ci_low=mean - half_width,
        ci_high=mean + half_width,
        wins=wins,
        losses=losses,
        ties=ties,
    )


def _row_losses(y_true: np.ndarray, prediction: np.ndarray, metric: BootstrapMetric) -> np.ndarray:
    """Per-row squared error (rmse) or correctness (accuracy), float64 ``[n]``."""
    if metric == "rmse":
        if prediction.ndim != 1:
            raise ValueError(f"rmse needs predictions of shape [n], got {prediction.shape}")
        losses = (prediction.astype(float) - y_true.astype(float)) ** 2
        if not np.all(np.isfinite(losses)):
            raise ValueError("rmse needs finite targets and predictions")
        return losses
    if prediction.ndim == 2:  # class probabilities [n, classes]; y_true holds class codes
        prediction = prediction.argmax(axis=1)
    elif prediction.ndim != 1:
        raise ValueError(
            f"accuracy needs labels [n] or probabilities [n, c], got {prediction.shape}"
        )
    return (prediction == y_true).astype(float)


def _metric_from_mean(mean_loss: np.ndarray, metric: BootstrapMetric) -> np.ndarray:
    return np.sqrt(mean_loss) if metric == "rmse" else mean_loss


def paired_bootstrap(
    y_true: ArrayLike,
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    *,
    metric: BootstrapMetric,
    seed: int,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> PairedTest:
    """Paired bootstrap over rows of ``metric(A) - metric(B)`` on pooled predictions.

    Each resample draws n rows with replacement (``numpy.random.default_rng(seed)``,
    every row equally likely) and scores both models on the same rows.
    ``mean_difference`` is the difference on all rows; ``ci_low``/``ci_high`` the
    percentile interval at ``confidence``; the two-sided p-value is
    ``2 * min(P*(d <= 0), P*(d >= 0))`` with the +1 correction, so it is consistent with
    the interval and never below ``2 / (n_resamples + 1)``.

    **Shapes**: ``y_true`` ``[n]``; ``pred_a``, ``pred_b`` ``[n]`` (regression values or
    class labels) or ``[n, classes]`` probabilities for accuracy (``y_true`` = class codes).
    """
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(BOOTSTRAP_METRICS)}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    truth = np.asarray(y_true)
    predictions = [np.asarray(pred_a), np.asarray(pred_b)]
    if truth.ndim != 1 or truth.size < 2:
        raise ValueError(f"y_true must have shape [n] with n >= 2, got {truth.shape}")
    for name, prediction in zip(("pred_a", "pred_b"), predictions, strict=True):
        if prediction.shape[:1] != truth.shape:
            raise ValueError(f"{name} has {prediction.shape[0]} rows, y_true has {truth.size}")
    loss_a, loss_b = (_row_losses(truth, p, metric) for p in predictions)
    lower_is_better = _LOWER_IS_BETTER[metric]
    observed = _metric_from_mean(np.array([loss_a.mean(), loss_b.mean()]), metric)

    rng = np.random.default_rng(seed)
    n = truth.size
    block = max(1, _BOOTSTRAP_CELLS // n)
    differences = np.empty(n_resamples)
    for start in range(0, n_resamples, block):
        rows = rng.integers(0, n, size=(min(block, n_resamples - start), n))
        resampled_a = _metric_from_mean(loss_a[rows].mean(axis=1), metric)
        resampled_b = _metric_from_mean(loss_b[rows].mean(axis=1), metric)
        differences[start : start + rows.shape[0]] = resampled_a - resampled_b
    tail = (1 - confidence) / 2
    ci_low, ci_high = np.quantile(differences, [tail, 1 - tail])
    below = (1 + np.count_nonzero(differences <= 0)) / (n_resamples + 1)
    above = (1 + np.count_nonzero(differences >= 0)) / (n_resamples + 1)
    # per-row "wins" are lower loss for rmse and higher correctness for accuracy
    row_difference = loss_a - loss_b
    wins, losses, ties = _counts(-row_difference if lower_is_better else row_difference)
    return PairedTest(
        test="bootstrap",
        n=n,
        statistic=None,
        p_value=float(min(1.0, 2 * min(below, above))),
        mean_difference=float(observed[0] - observed[1]),
        lower_is_better=lower_is_better,
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        wins=wins,
        losses=losses,
        ties=ties,
    )


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the input order (monotone, capped at 1).

    None marks a comparison without a p-value (e.g. a test that was not applicable): it
    stays None and does not count towards the family size.

    >>> holm([0.01, None, 0.5])
    [0.02, None, 0.5]
    """
    for value in p_values:
        if value is not None and not 0 <= value <= 1:
            raise ValueError(f"p-values must lie in [0, 1] (or be None), got {value}")
    tested = [(value, index) for index, value in enumerate(p_values) if value is not None]
    tested.sort()
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for position, (value, index) in enumerate(tested):
        # the running maximum keeps adjusted p-values in the order of the raw ones
        running = max(running, min(1.0, (len(tested) - position) * value))
        adjusted[index] = running
    return adjusted
