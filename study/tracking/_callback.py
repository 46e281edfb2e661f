"""The Ray Tune callback that mirrors each trial of a study into a nested MLflow run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from study.store import relocate
from study.tracking import payload
from study.tracking._packs import PackSlot, pack_slots_of
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
    adopts and ends runs (see there for how a restored study keeps its runs). A packed
    trial (``payload.is_pack``) is handed over as one ``PackSlot`` per configuration, so
    each configuration has its own run, ended when its own entry says it ended.
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
        first_index: int = 0,
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
            first_index=first_index,
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
        self._ended: set[str] = set()  # ids of the pack slots whose runs were ended
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
        statuses: list[str] = []
        for trial in trials:
            status = "TERMINATED" if trial is ended else str(trial.status)
            slots = pack_slots_of(trial)
            if slots is None:
                statuses.append(status)
            else:  # a pack counts as its configurations
                statuses += ["TERMINATED" if s.trial_id in self._ended else status for s in slots]
        self._statuses = statuses

    def _open_slots(self, trial: TrialLike) -> list[PackSlot] | None:
        """The configurations of a packed trial whose runs are not ended; None if unpacked."""
        slots = pack_slots_of(trial)
        return None if slots is None else [s for s in slots if s.trial_id not in self._ended]

    def _targets(self, trial: TrialLike) -> list[TrialLike]:
        """What a hook acts on: the trial itself, or its configurations still running."""
        slots = self._open_slots(trial)
        return [trial] if slots is None else list(slots)

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
        slots = self._open_slots(trial)
        if slots is None:
            self.runs.run_id(trial, live=trials)
            return
        live = [s for t in trials for s in (pack_slots_of(t) or [])]
        for slot in slots:
            self.runs.run_id(slot, live=live)

    def on_trial_result(
        self,
        iteration: int,
        trials: list[Trial],
        trial: TrialLike,
        result: dict[str, Any],
        **info: Any,
    ) -> None:
        del iteration, info
        slots = pack_slots_of(trial, result)
        if slots is None:
            self._see(trials)
            self.runs.log_result(trial, result)
            if payload.is_final(result):
                self.progress.offer(result.get(self.study_run.objective))
            return
        for slot in slots:
            entry = slot.last_result
            if entry is None or slot.trial_id in self._ended:
                continue
            self.runs.log_result(slot, entry)
            if payload.is_final(entry):
                self.progress.offer(entry.get(self.study_run.objective))
            if payload.is_final(entry) or entry.get(payload.PRUNED):
                self._ended.add(slot.trial_id)
                self._see(trials)
                self.runs.complete(slot)
        self._see(trials)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: TrialLike, **info: Any
    ) -> None:
        del iteration, info
        for slot in self._open_slots(trial) or ():
            # a configuration with no end of its own: stopped with its pack (time budget)
            self._ended.add(slot.trial_id)
            self.runs.complete(slot)
        self._see(trials, ended=trial)
        if pack_slots_of(trial) is None:
            self.runs.complete(trial)

    def on_checkpoint(
        self, iteration: int, trials: list[Trial], trial: TrialLike, checkpoint: Any, **info: Any
    ) -> None:
        del iteration, trials, checkpoint, info
        for target in self._targets(trial):
            self.runs.checkpointed(target)

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
        for target in self._targets(trial):
            self.runs.count_retry(target)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: TrialLike, **info: Any
    ) -> None:
        del iteration, info
        for target in self._targets(trial):
            if target is not trial:
                self._ended.add(target.trial_id)
            self.runs.fail(target)
        self._see(trials, ended=trial)
