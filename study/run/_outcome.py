"""How a study ended, read back from its MLflow trial runs and its Optuna trials."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from study.run._plan import StudyPlan
from study.run._search import optuna_trial_counts
from study.tracking import STOPPED, Mode, trial_runs, trial_status

__all__ = ["StudyOutcome", "study_outcome"]


@dataclass(frozen=True, slots=True)
class StudyOutcome:
    """How a study ended, read back from MLflow and Optuna."""

    name: str  # the study name
    experiment_id: str  # its MLflow experiment
    parent_run_id: str  # its MLflow parent run
    tracking_uri: str
    objective: str  # the metric key optimised, e.g. val_rmse_mean
    mode: Mode
    counts: dict[str, int]  # child runs: finished, stopped (early), failed, running
    best_trial: str | None  # run name of the best non-failed trial, e.g. trial-0007
    best_value: float | None  # its objective value
    optuna: dict[str, int] = field(default_factory=dict)  # Optuna trials per state
    # share of the trial slots (max_concurrent x wall time, Ray start-up included) spent
    # inside trainables; None for a resumed study (its trials' times span earlier drivers)
    utilisation: float | None = None


def study_outcome(
    plan: StudyPlan, experiment_id: str, parent_run_id: str, *, report: Callable[[str], None]
) -> StudyOutcome:
    """How the study of ``plan`` stands: its trial runs counted by outcome, the best one,
    and Optuna's counts (``report`` says why those are missing, if they are)."""
    runs = trial_runs(plan.tracking_uri, experiment_id, parent_run_id)
    counts = {"finished": 0, "stopped": 0, "failed": 0, "running": 0}
    best_name, best_value = None, None
    for run in runs:
        status = trial_status(run.info.status, run.data.tags)
        key = {"FINISHED": "finished", STOPPED: "stopped", "FAILED": "failed"}.get(
            status, "running"
        )
        counts[key] += 1
        value = run.data.metrics.get(plan.objective)
        if status == "FAILED" or value is None or not math.isfinite(value):
            continue
        better = best_value is None or (
            value < best_value if plan.mode == "min" else value > best_value
        )
        if better:
            best_name, best_value = run.info.run_name, value
    try:
        optuna_counts = optuna_trial_counts(plan.optuna_storage, plan.name)
    except (KeyError, OSError, ImportError, RuntimeError) as error:
        # the summary still stands without the Optuna counts; say why they are missing
        report(f"note: cannot read the Optuna trial counts of {plan.name}: {error}")
        optuna_counts = {}
    return StudyOutcome(
        name=plan.name,
        experiment_id=experiment_id,
        parent_run_id=parent_run_id,
        tracking_uri=plan.tracking_uri,
        objective=plan.objective,
        mode=plan.mode,
        counts=counts,
        best_trial=best_name,
        best_value=best_value,
        optuna=optuna_counts,
    )
