"""Optuna TPE search (through Ray Tune) and the ASHA early-stopping scheduler."""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from study.spaces import SearchSpace

__all__ = ["SchedulerKind", "build_scheduler", "build_searcher", "optuna_trial_counts"]

SchedulerKind = Literal["asha", "none"]


class _OptunaSearch(OptunaSearch):
    """OptunaSearch that survives restores and records a non-finite objective as FAILED.

    Ray's version passes NaN to ``study.tell``, which Optuna refuses: the trial
    would stay RUNNING in the Optuna storage forever. And after a killed driver,
    Tune's experiment snapshot can be older than the Optuna storage: a trial that
    Optuna already has as finished may report again; its record is kept as it is.
    """

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if trial_id not in self._ot_trials:
            orphan = self._orphan_trial()
            if orphan is not None:
                # asked before the driver died, never in Tune's snapshot: reuse it, so
                # Optuna keeps exactly one trial per Tune trial (define-by-run replays
                # the stored params, so the configuration is the same)
                self._ot_trials[trial_id] = orphan
        return super().suggest(trial_id)

    def _orphan_trial(self):
        import optuna

        if self._ot_study is None:
            return None
        known = {trial.number for trial in self._ot_trials.values()}
        running = self._ot_study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)
        )
        for frozen in running:
            if frozen.number not in known:
                return optuna.trial.Trial(self._ot_study, frozen._trial_id)
        return None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        import optuna

        try:
            super().on_trial_result(trial_id, result)
        except optuna.exceptions.UpdateFinishedTrialError:
            return

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        value = (result or {}).get(self.metric)
        if value is not None and not math.isfinite(float(value)):
            result, error = None, True
        super().on_trial_complete(trial_id, result=result, error=error)


def build_searcher(
    space: SearchSpace,
    *,
    metric: str,
    mode: str,
    baseline: dict[str, Any],
    seed: int,
    storage_url: str,
    study_name: str,
    max_concurrent: int,
) -> ConcurrencyLimiter:
    """Seeded multivariate TPE over ``space``, persisted in ``storage_url``, baseline first."""
    import optuna

    with warnings.catch_warnings():
        # multivariate TPE is flagged experimental but is stable and the better default here
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
    searcher = _OptunaSearch(
        space=space.suggest,
        metric=metric,
        mode=mode,
        points_to_evaluate=[baseline],
        sampler=sampler,
        storage=optuna.storages.RDBStorage(storage_url),
        study_name=study_name,
    )
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def build_scheduler(
    kind: SchedulerKind, *, max_t: int, grace_period: int, reduction_factor: float
) -> TrialScheduler:
    """ASHA on epochs (``training_iteration``) or plain FIFO; metric/mode come from TuneConfig."""
    if kind == "none":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=max_t,
        grace_period=min(grace_period, max_t),
        reduction_factor=reduction_factor,
    )


def optuna_trial_counts(storage_url: str, study_name: str) -> dict[str, int]:
    """Number of Optuna trials per state (COMPLETE, FAIL, RUNNING, ...)."""
    import optuna

    study = optuna.load_study(study_name=study_name, storage=storage_url)
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts
