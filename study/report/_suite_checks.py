"""Budget checks: whether a suite's budget let its studies search and its models train.

Each check yields rows (check, dataset, model, value, threshold, verdict, detail,
advice); a failed check does not stop the report, it says what limited the answer:

- random search: a study of ``trials`` <= the sampler's ``n_startup_trials`` never ran TPE;
- finished trials: the median number of completed trials per study (after ASHA) is
  below ``MIN_FINISHED``;
- untuned best: in more than half the studies the best trial is the first, the seed
  default (trial-0000), so the "tuned" row is mostly that default;
- late best trial: in more than a third of the studies the best trial came in the last
  third of the trials (about a third by chance alone), so more trials would likely
  change the winner;
- still improving: more than a quarter of the retrained models had their best epoch in
  the last tenth of their epochs;
- patience >= epochs: early stopping could never act;
- ASHA before annealing: the first rung comes before the slowest temperature schedule of
  the space has annealed, so such schedules are judged before they can show their worth.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from actmix.config import XGBOOST
from study.report._suite_data import DatasetResults
from study.report._suite_importance import MIN_FINISHED
from study.suite import Suite, UnitRecord
from study.tracking import SEED_DEFAULT_TRIAL

__all__ = ["BudgetCheck", "budget_checks", "checks_sentence"]

ANNEAL_PARAM = "train.temperature.anneal_fraction"
UNTUNED_SHARE = 0.5
LATE_SHARE = 1 / 3
IMPROVING_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """One check on one dataset and row (``all`` where it does not depend on them)."""

    check: str
    dataset: str
    model: str
    value: float
    threshold: float
    passed: bool
    detail: str
    advice: str

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "dataset": self.dataset,
            "model": self.model,
            "value": self.value,
            "threshold": self.threshold,
            "verdict": self.verdict,
            "detail": self.detail,
            "advice": self.advice,
        }


def budget_checks(suite: Suite, per_dataset: Mapping[str, DatasetResults]) -> list[BudgetCheck]:
    """Every check on every dataset and row of the finished units."""
    budget = suite.study
    rows = [
        BudgetCheck(
            "random search",
            "all",
            "all",
            budget.trials,
            budget.n_startup_trials,
            budget.trials > budget.n_startup_trials,
            f"{budget.trials} trials per study, the first {budget.n_startup_trials} "
            "of them random draws",
            "raise study.trials well above study.n_startup_trials, so TPE models the history",
        )
    ]
    for dataset, data in per_dataset.items():
        for label in suite.labels:
            records = [r for r in data.records if r.label == label]
            if records:
                rows += _study_checks(suite, dataset, label, records)
                rows += _training_checks(dataset, label, records)
    return rows


def _share(flags: list[bool]) -> float:
    return float(np.mean(flags)) if flags else 0.0


def _trial_index(name: str) -> int | None:
    """``trial-0007`` -> 7; None for a name of another form."""
    number = name.rsplit("-", 1)[-1]
    return int(number) if number.isdigit() else None


def _study_checks(
    suite: Suite, dataset: str, label: str, records: list[UnitRecord]
) -> Iterator[BudgetCheck]:
    studies = [r.study for r in records if r.study is not None]
    if not studies:
        return
    n = len(studies)
    finished = [s.trial_states.get("COMPLETE", 0) for s in studies]
    median = float(np.median(finished))
    yield BudgetCheck(
        "finished trials",
        dataset,
        label,
        median,
        MIN_FINISHED,
        median >= MIN_FINISHED,
        f"completed trials per study: median {median:g}, min {min(finished)}, max "
        f"{max(finished)} over {n} studies",
        "raise study.trials, or ASHA's grace period, so more trials finish",
    )
    untuned = _share([s.best_trial == SEED_DEFAULT_TRIAL for s in studies])
    yield BudgetCheck(
        "untuned best",
        dataset,
        label,
        untuned,
        UNTUNED_SHARE,
        untuned <= UNTUNED_SHARE,
        f"the seed default ({SEED_DEFAULT_TRIAL}) was the best trial in {untuned:.0%} of "
        f"{n} studies",
        "the tuned row is mostly the default: raise study.trials",
    )
    trials = suite.study.trials
    indices = [index for s in studies if (index := _trial_index(s.best_trial)) is not None]
    late = _share([index >= math.ceil(2 * trials / 3) for index in indices])
    yield BudgetCheck(
        "late best trial",
        dataset,
        label,
        late,
        LATE_SHARE,
        late <= LATE_SHARE,
        f"the best trial came in the last third of the {trials} trials in {late:.0%} of "
        f"{n} studies",
        "more trials would likely change the winner: raise study.trials",
    )
    grace = suite.study.grace
    high = _anneal_high(suite, label)
    if suite.study.scheduler == "asha" and high is not None:
        annealed = math.ceil(high * suite.study.epochs)
        yield BudgetCheck(
            "ASHA before annealing",
            dataset,
            label,
            grace,
            annealed,
            grace >= annealed,
            f"ASHA's first rung at epoch {grace}; the slowest schedule of the space anneals "
            f"until epoch {annealed} of {suite.study.epochs}",
            "raise study.grace_period (a third of the epochs or more) or use scheduler: none",
        )


def _anneal_high(suite: Suite, label: str) -> float | None:
    """The largest annealing fraction the label's search space allows (None: not searched)."""
    from study.space import load_space, space_for_model

    (model,) = [m for m in suite.models if m.label == label]
    if model.model == XGBOOST:
        return None
    try:
        space = load_space(model.space) if model.space else space_for_model(model.model)
    except (ValueError, OSError):  # the space file is gone or changed: nothing to check
        return None
    for param in space.params:
        if param.name == ANNEAL_PARAM:
            if param.kind == "choice":
                return float(max(param.choices))
            return float(param.value) if param.kind == "fixed" else param.bounds()[1]
    return None


def _training_checks(dataset: str, label: str, records: list[UnitRecord]) -> Iterator[BudgetCheck]:
    if records[0].model == XGBOOST:
        return
    late: list[bool] = []
    for record in records:
        for row in record.rows:
            if "best_epoch" in row and "epochs_run" in row:
                run = int(row["epochs_run"])
                late.append(int(row["best_epoch"]) >= run - max(1, math.ceil(run / 10)))
    if late:
        share = _share(late)
        yield BudgetCheck(
            "still improving",
            dataset,
            label,
            share,
            IMPROVING_SHARE,
            share <= IMPROVING_SHARE,
            f"{share:.0%} of {len(late)} retrained models had their best epoch in the last "
            "tenth of their epochs",
            "raise study.epochs (early stopping ends the models that are done)",
        )
    patient = [
        _train(record, "patience") >= _train(record, "epochs")
        for record in records
        if _train(record, "patience") is not None and _train(record, "epochs") is not None
    ]
    if patient:
        share = _share(patient)
        yield BudgetCheck(
            "patience >= epochs",
            dataset,
            label,
            share,
            0.0,
            share == 0,
            f"early stopping's patience was at least the epochs in {share:.0%} of "
            f"{len(patient)} retrained configurations",
            "lower train.patience below the epochs (a space's `train.patience: {fixed: N}`, "
            "a reference's `config: {train.patience: N}`), or raise study.epochs, so early "
            "stopping can act",
        )


def _train(record: UnitRecord, key: str) -> Any:
    train = record.config.get("train")
    return train.get(key) if isinstance(train, dict) else None


def checks_sentence(checks: list[BudgetCheck]) -> str:
    """One sentence naming the failed checks (how many of their rows failed)."""
    failed: dict[str, list[BudgetCheck]] = {}
    totals: dict[str, int] = {}
    for check in checks:
        totals[check.check] = totals.get(check.check, 0) + 1
        if not check.passed:
            failed.setdefault(check.check, []).append(check)
    if not failed:
        return "Every budget check passed."
    parts = []
    for name, rows in failed.items():
        if rows[0].dataset == "all":
            parts.append(f"{name} ({rows[0].detail})")
        else:
            parts.append(f"{name} ({len(rows)} of {totals[name]} dataset x model rows)")
    return (
        "The budget limits this answer; failed checks: "
        + "; ".join(parts)
        + ". A claim below that is not significant may be one this budget could not detect."
    )
