"""The Ray Tune callback that mirrors each trial of a study into a nested MLflow run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from study.store import relocate
from study.tracking import payload
from study.tracking._progress import HEARTBEAT_S, Progress
from study.tracking._tags import Mode
from study.tracking._trial_runs import StudyRun, TrialLike, TrialRuns

if TYPE_CHECKING:
    # the hooks take Tune's trial list as the supertype declares it (list is invariant)
    from ray.tune.experiment import Trial

__all__ = ["MlflowTrialLogger"]


class MlflowTrialLogger(Callback):
    """Log every trial of a study as a child run of the study's MLflow parent run.

    Runs on the driver, inside Tune's event loop: the driver is the only MLflow
    writer (a SQLite store works on a cluster) and workers never reach the tracking
    server. Trainables on the workers only ``tune.report`` flat dicts (keys in
    ``study.tracking.payload``); the final report carries the model file and what the
    figures are drawn from, so no shared storage is needed.

    Each hook hands over to ``study.tracking._trial_runs.TrialRuns``, which finds, creates,
    adopts and ends runs (see there for how a restored study keeps its runs).
    The callback is pickled into Tune's experiment state; it keeps only its
    settings, and rebuilds the client and caches after a restore.
    """

    def __init__(
        self,
        *,
        uri: str,
        experiment_id: str,
        parent_run_id: str,
        study: str,
        dataset: str,
        model: str,
        objective: str,
        mode: Mode,
        config_for_trial: Callable[[dict[str, Any]], dict[str, Any]],
        report: Callable[[str], None] | None = None,
        trials: int = 0,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.study_run = StudyRun(
            uri=uri,
            experiment_id=experiment_id,
            parent_run_id=parent_run_id,
            study=study,
            dataset=dataset,
            model=model,
            objective=objective,
            mode=mode,
        )
        self.config_for_trial = config_for_trial
        self.report = report
        self.progress = Progress(
            total=trials, objective=objective, mode=mode, heartbeat_s=heartbeat_s
        )
        self._statuses: list[str] = []  # of Tune's trials, as of the latest hook
        self._trial_runs: TrialRuns | None = None

    def __getstate__(self) -> dict[str, Any]:
        # no live client or caches in Tune's saved state: a restored driver looks runs up
        return {**self.__dict__, "_trial_runs": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # a resumed store that moved as a whole: the tracking URI named the old folder
        self.study_run = dataclasses.replace(self.study_run, uri=relocate(self.study_run.uri))
        # a resumed driver counts its own elapsed time (monotonic clocks are per process)
        self.progress = Progress(
            total=self.progress.total,
            objective=self.progress.objective,
            mode=self.progress.mode,
            best=self.progress.best,
            heartbeat_s=self.progress.heartbeat_s,
        )

    @property
    def runs(self) -> TrialRuns:
        if self._trial_runs is None:
            report = None if self.report is None else self._report_with_progress
            self._trial_runs = TrialRuns(
                self.study_run, config_for_trial=self.config_for_trial, report=report
            )
        return self._trial_runs

    def _report_with_progress(self, line: str) -> None:
        if self.report is not None:
            self.report(f"{line}  [{self.progress.summary(self._statuses)}]")

    def _see(self, trials: list[Trial], *, ended: TrialLike | None = None) -> None:
        # Tune may call the end hooks before it updates the ended trial's status
        self._statuses = ["TERMINATED" if trial is ended else str(trial.status) for trial in trials]

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        # Tune's controller calls this after every step of its loop (at least every 0.1 s
        # while trials run), so a study whose trials report nothing still says how it is
        del iteration, info
        self._see(trials)
        if self.report is not None and self._statuses and self.progress.due():
            self.report(f"study {self.study_run.study}: {self.progress.summary(self._statuses)}")

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: TrialLike, **info: Any
    ) -> None:
        del iteration, info
        self.runs.run_id(trial, live=trials)

    def on_trial_result(
        self,
        iteration: int,
        trials: list[Trial],
        trial: TrialLike,
        result: dict[str, Any],
        **info: Any,
    ) -> None:
        del iteration, info
        self._see(trials)
        self.runs.log_result(trial, result)
        if payload.is_final(result):
            self.progress.offer(result.get(self.study_run.objective))

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: TrialLike, **info: Any
    ) -> None:
        del iteration, info
        self._see(trials, ended=trial)
        self.runs.complete(trial)

    def on_checkpoint(
        self, iteration: int, trials: list[Trial], trial: TrialLike, checkpoint: Any, **info: Any
    ) -> None:
        del iteration, trials, checkpoint, info
        self.runs.checkpointed(trial)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        # Tune calls this on every way out of fit() that cleans up (end, Ctrl-C, an error)
        del trials, info
        if self._trial_runs is not None:
            self._trial_runs.close()
            self._trial_runs = None

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: TrialLike, **info: Any
    ) -> None:
        # Tune retries a crashed trial (FailureConfig.max_failures)
        del iteration, trials, info
        self.runs.count_retry(trial)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: TrialLike, **info: Any
    ) -> None:
        del iteration, info
        self._see(trials, ended=trial)
        self.runs.fail(trial)
