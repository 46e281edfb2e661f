"""A suite's comparisons and ranks.

Each comparison pairs the suite's focus model (tuned ActMix by default) with another row
on the same outer folds. The primary test is the corrected resampled t-test (Nadeau &
Bengio) on the per-outer-fold scores, each the mean over the retraining seeds, over every
repeat of the outer cross-validation: it sees the noise of training and of splits, not
only that of test rows. Its p-values are Holm-corrected within each dataset. A paired
bootstrap over rows of the first repeat's pooled out-of-fold predictions is shown beside
it; it sees test-row noise only, and its smallest possible p-value (2 / (resamples + 1))
is flagged where reached. Ranks: Friedman's test over the tuned models only, with the
references' mean ranks among all rows beside them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from actmix.comparison import ALPHA, PairedTest, corrected_t_test, holm, paired_bootstrap
from actmix.ranking import RankSummary, compare_ranks, mean_ranks
from study.report._suite_data import DatasetResults, finite_mean
from study.suite import Suite

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "SuiteComparison",
    "SuiteRanks",
    "compare_dataset",
    "suite_ranks",
]

BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True, slots=True)
class SuiteComparison:
    """Focus model ``a`` against row ``b`` on one dataset: the corrected t-test (primary,
    Holm within the dataset) and the row bootstrap (secondary, Holm within the dataset)."""

    dataset: str
    a: str
    b: str
    b_kind: str
    test: PairedTest
    p_holm: float | None
    bootstrap: PairedTest | None
    bootstrap_p_holm: float | None

    @property
    def significant(self) -> bool:
        return self.p_holm is not None and self.p_holm < ALPHA

    def to_json(self) -> dict[str, Any]:
        boot: dict[str, Any] | None = None
        if self.bootstrap is not None:
            floor = 2 / (BOOTSTRAP_RESAMPLES + 1)
            p_value = self.bootstrap.p_value
            boot = {
                **self.bootstrap.to_dict(),
                "p_holm": self.bootstrap_p_holm,
                "significant": self.bootstrap_p_holm is not None and self.bootstrap_p_holm < ALPHA,
                "floor": floor,
                "at_floor": p_value is not None and p_value <= floor,
            }
        return {
            "dataset": self.dataset,
            "a": self.a,
            "b": self.b,
            "b_kind": self.b_kind,
            **self.test.to_dict(),
            "p_holm": self.p_holm,
            "significant": self.significant,
            "bootstrap": boot,
        }


def compare_dataset(suite: Suite, data: DatasetResults) -> list[SuiteComparison]:
    """The focus model against every other row with all its folds, on one dataset."""
    folds = suite.protocol.outer_folds * suite.protocol.repeats
    focus = suite.focus
    if not data.complete(focus, folds):
        return []
    others = [label for label in suite.labels if label != focus and data.complete(label, folds)]
    tests = [_corrected(data, focus, other) for other in others]
    boots = [
        paired_bootstrap(
            data.y_true,
            data.oof[focus],
            data.oof[other],
            metric="rmse" if data.metric == "rmse" else "accuracy",
            seed=suite.protocol.split_seed + index,
            n_resamples=BOOTSTRAP_RESAMPLES,
        )
        if focus in data.oof and other in data.oof
        else None
        for index, other in enumerate(others)
    ]
    adjusted = holm([test.p_value for test in tests])
    boot_adjusted = holm([None if boot is None else boot.p_value for boot in boots])
    return [
        SuiteComparison(
            dataset=data.label,
            a=focus,
            b=other,
            b_kind=data.kinds[other],
            test=test,
            p_holm=p_holm,
            bootstrap=boot,
            bootstrap_p_holm=boot_holm,
        )
        for other, test, p_holm, boot, boot_holm in zip(
            others, tests, adjusted, boots, boot_adjusted, strict=True
        )
    ]


def _corrected(data: DatasetResults, focus: str, other: str) -> PairedTest:
    """The corrected t-test of ``focus`` against ``other``; not applicable (p None, with
    the reason) where a fold has no finite score, e.g. every seed diverged."""
    try:
        return corrected_t_test(
            data.fold_scores[focus],
            data.fold_scores[other],
            lower_is_better=data.lower_is_better,
            test_fraction=data.test_fraction,
        )
    except ValueError as error:
        return PairedTest(
            test="corrected_t",
            n=len(data.fold_scores[focus]),
            statistic=None,
            p_value=None,
            mean_difference=math.nan,
            lower_is_better=data.lower_is_better,
            note=str(error),
        )


@dataclass(frozen=True, slots=True)
class SuiteRanks:
    """Ranks of the tuned models (with Friedman's test) and of every row, for context."""

    tuned: RankSummary | None
    all_rows: dict[str, float]  # mean rank among every row, references included
    references: tuple[str, ...]
    note: str | None  # why there are no ranks of tuned models
    diagram_note: str | None  # why no critical-difference diagram is drawn, if none is

    @property
    def draw_diagram(self) -> bool:
        return self.diagram_note is None

    def to_json(self) -> dict[str, Any]:
        tuned = self.tuned.to_dict() if self.tuned else {"mean_ranks": {}, "friedman_p": None}
        return {
            **tuned,
            "over": "tuned models",
            "all_rows": self.all_rows,
            "references": {label: self.all_rows[label] for label in self.references},
            "note": self.note,
            "diagram": self.draw_diagram,
            "diagram_note": self.diagram_note,
        }


def suite_ranks(suite: Suite, per_dataset: dict[str, DatasetResults]) -> SuiteRanks:
    """Friedman and mean ranks over tuned models; references ranked among all rows."""
    folds = suite.protocol.outer_folds * suite.protocol.repeats
    scores = {
        label: {
            row: finite_mean(list(by_fold.values()))
            for row, by_fold in data.fold_scores.items()
            if data.complete(row, folds)
        }
        for label, data in per_dataset.items()
    }
    directions = {label: data.lower_is_better for label, data in per_dataset.items()}
    tuned_labels = {model.label for model in suite.models}
    tuned_scores = {
        dataset: {row: v for row, v in rows.items() if row in tuned_labels}
        for dataset, rows in scores.items()
    }
    try:
        all_rows, _ = mean_ranks(scores, directions)
    except ValueError:
        all_rows = {}
    references = tuple(r.label for r in suite.references if r.label in all_rows)
    try:
        tuned = compare_ranks(tuned_scores, directions)
    except ValueError as error:
        return SuiteRanks(None, all_rows, references, f"no ranks: {error}", "no ranks")
    p_value = tuned.friedman.p_value
    if p_value is None:
        diagram = f"no critical-difference diagram: {tuned.friedman.note}"
    elif p_value >= ALPHA:
        diagram = (
            f"no critical-difference diagram: Friedman's test does not reject equal mean "
            f"ranks of the tuned models (p = {p_value:.3f} >= {ALPHA}), so no pairwise "
            "difference of ranks is tested"
        )
    else:
        diagram = None
    return SuiteRanks(tuned, all_rows, references, None, diagram)
