"""One MLflow child run per Tune trial: find or create it, log its reports, end it.

``TrialRuns`` is the whole of the MLflow side of ``study.tracking._callback``; it needs
no Ray, only objects shaped like a Tune trial (``TrialLike``), so tests drive it
with plain dataclasses. It keeps a restored study's runs whole:

- a trial keeps its run across driver restarts: runs carry the Tune trial id
  (``TAG_TRIAL_ID``) and are found again by it;
- a RUNNING run of a trial Tune lost (the driver died between creating the run
  and saving its state) is adopted by the trial the restored searcher re-issues
  with the same parameters;
- epochs a restored trial replays from its checkpoint are not logged twice.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from study.tracking import payload
from study.tracking._artifacts import write_reported_artifacts
from study.tracking._client import client_for, now_ms, param_text, trial_runs
from study.tracking._metric_writer import MetricWriter
from study.tracking._packs import PackSlot
from study.tracking._tags import (
    CONFIG_ARTIFACT,
    STOPPED,
    TAG_DATASET,
    TAG_FAILURE_REASON,
    TAG_LAST_ERROR,
    TAG_METRIC,
    TAG_MODE,
    TAG_MODEL,
    TAG_NODE_ID,
    TAG_PARENT,
    TAG_RESUMED_FROM_EPOCH,
    TAG_RETRIES,
    TAG_ROLE,
    TAG_STOPPED_EARLY,
    TAG_STUDY,
    TAG_TRIAL_ID,
    TAG_TRIAL_INDEX,
    Mode,
    trial_run_name,
)

if TYPE_CHECKING:
    from mlflow.entities import Metric, Run
    from mlflow.tracking import MlflowClient

__all__ = ["StudyRun", "TrialLike", "TrialRuns"]

# MLflow caps tag values; a traceback's last line fits
_TAG_LIMIT = 5000
# Tune's own step counter, for results without an epoch
_TRAINING_ITERATION = "training_iteration"
_SERVER_WRITERS = 8  # parallel metric writes to an HTTP tracking server
CHECKPOINT_FLUSH_S = 2.0  # the longest a checkpoint hook waits for its metrics to be stored
_SAID = {"FINISHED": "finished", STOPPED: "stopped early", "FAILED": "failed"}


class TrialLike(Protocol):
    """What ``TrialRuns`` reads of a ``ray.tune.experiment.Trial``."""

    @property
    def trial_id(self) -> str: ...
    @property
    def config(self) -> Mapping[str, Any]: ...
    @property
    def experiment_tag(self) -> str: ...
    @property
    def last_result(self) -> Mapping[str, Any] | None: ...
    @property
    def error_file(self) -> str | None: ...
    def get_error(self) -> object | None: ...


@dataclass(frozen=True, slots=True)
class StudyRun:
    """The study whose trials are logged: where, under which parent run, and what they optimise."""

    uri: str  # MLflow tracking URI
    experiment_id: str  # the study's experiment
    parent_run_id: str  # this launch's parent run; trial runs are its children
    study: str  # the study's name
    dataset: str  # dataset name, tagged on each trial run
    model: str  # model family, tagged on each trial run
    objective: str  # the metric key optimised, e.g. val_rmse_mean
    mode: Mode
    # runs of an extended study's unpacked trials are named from here on (Tune counts
    # each launch's trials from 1; a packed trial's runs carry their Optuna numbers)
    first_index: int = 0


class TrialRuns:
    """The child runs of one study's trials, written through one MLflow client.

    ``config_for_trial`` turns a trial's sampled parameters into the full RunConfig
    dict logged as ``config.yaml``; ``report``, when given, receives one line per
    ended trial.
    """

    def __init__(
        self,
        study: StudyRun,
        *,
        config_for_trial: Callable[[dict[str, Any]], dict[str, Any]],
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.study = study
        self.config_for_trial = config_for_trial
        self.report = report
        self.client: MlflowClient = client_for(study.uri)
        # per-epoch metrics are written off Tune's event loop, in batches; a tracking
        # server takes several runs' batches at once
        server = study.uri.startswith(("http://", "https://"))
        self.writer = MetricWriter(self.client, workers=_SERVER_WRITERS if server else 1)
        self._runs: dict[str, str] = {}  # trial id -> run id
        self._final: dict[str, Mapping[str, Any]] = {}  # trial id -> its final report
        self._last_step: dict[str, int] = {}  # run id -> steps up to here are logged

    # --- finding runs ----------------------------------------------------------------------

    def run_id(self, trial: TrialLike, *, live: Collection[TrialLike] = ()) -> str:
        """The run of ``trial``: known, found by trial id, adopted, or created.

        ``live`` are the trials Tune knows now; only with them can an orphan be adopted.
        """
        if trial.trial_id in self._runs:
            return self._runs[trial.trial_id]
        children = trial_runs(self.study.uri, self.study.experiment_id, self.study.parent_run_id)
        for run in children:
            if run.data.tags.get(TAG_TRIAL_ID) == trial.trial_id:
                return self._continue(trial, run.info.run_id)
        offset = 0 if isinstance(trial, PackSlot) else self.study.first_index
        index = _creation_index(trial, default=len(children), offset=offset)
        orphan = _orphan_run(children, trial, live, index=index)
        if orphan is not None:
            self.client.set_tag(orphan.info.run_id, TAG_TRIAL_ID, trial.trial_id)
            # killed before its params or config were logged: log them now
            self._describe(orphan.info.run_id, trial, params=not orphan.data.params)
            return self._continue(trial, orphan.info.run_id)
        return self._create(trial, index=index)

    def _continue(self, trial: TrialLike, run_id: str) -> str:
        history = self.client.get_metric_history(run_id, self.study.objective)
        self._last_step[run_id] = max((metric.step for metric in history), default=-1)
        self._runs[trial.trial_id] = run_id
        return run_id

    def _create(self, trial: TrialLike, *, index: int) -> str:
        study = self.study
        run = self.client.create_run(
            study.experiment_id,
            run_name=trial_run_name(index),
            tags={
                TAG_PARENT: study.parent_run_id,
                TAG_ROLE: "trial",
                TAG_STUDY: study.study,
                TAG_DATASET: study.dataset,
                TAG_MODEL: study.model,
                TAG_METRIC: study.objective,
                TAG_MODE: study.mode,
                TAG_TRIAL_ID: trial.trial_id,
                TAG_TRIAL_INDEX: str(index),
            },
        )
        run_id = run.info.run_id
        self._runs[trial.trial_id] = run_id
        self._describe(run_id, trial, params=True)
        return run_id

    def _describe(self, run_id: str, trial: TrialLike, *, params: bool) -> None:
        """Log the trial's params (with ``params``) and its full config as ``config.yaml``."""
        from mlflow.entities import Param

        logged = [Param(str(k), param_text(v)) for k, v in sorted(trial.config.items())]
        if params and logged:
            self.client.log_batch(run_id, params=logged)
        config = self.config_for_trial(dict(trial.config))
        self.client.log_text(run_id, yaml.safe_dump(config, sort_keys=False), CONFIG_ARTIFACT)

    # --- logging ---------------------------------------------------------------------------

    def log_result(self, trial: TrialLike, result: Mapping[str, Any]) -> None:
        """Log one report: its metrics at step ``epoch``, and the artifacts of a final one."""
        run_id = self.run_id(trial)
        step = int(result.get(payload.EPOCH, result.get(_TRAINING_ITERATION, 0)))
        if payload.RESUMED_FROM_EPOCH in result:
            resumed = str(result[payload.RESUMED_FROM_EPOCH])
            self.client.set_tag(run_id, TAG_RESUMED_FROM_EPOCH, resumed)
        if step <= self._last_step.get(run_id, -1):
            return  # replayed by a restored trial; its final report's step comes after
        metrics = _epoch_metrics(result, step)
        final = payload.is_final(result)
        if final:
            self._final[trial.trial_id] = result
            report = payload.FinalReport.from_report(result)
            if report.node_id:
                self.client.set_tag(run_id, TAG_NODE_ID, report.node_id)
            metrics += _final_metrics(report, self.study.objective, step)
        self.writer.log(run_id, metrics)
        if final:
            # the final report marks the run complete (see payload): store it now
            self.writer.flush(run_id)
            with tempfile.TemporaryDirectory() as directory:
                for path in write_reported_artifacts(result, Path(directory)):
                    self.client.log_artifact(run_id, str(path))

    def count_retry(self, trial: TrialLike) -> None:
        """Record on the run that Tune restarts ``trial`` after a crash, and why it crashed."""
        run_id = self.run_id(trial)
        retries = int(self.client.get_run(run_id).data.tags.get(TAG_RETRIES, "0")) + 1
        self.client.set_tag(run_id, TAG_RETRIES, str(retries))
        error = _trial_error(trial)
        if error is not None:
            self.client.set_tag(run_id, TAG_LAST_ERROR, _last_line(error))

    # --- ending ----------------------------------------------------------------------------

    def complete(self, trial: TrialLike) -> None:
        """End the run of a trial Tune completed: FINISHED, STOPPED (early) or FAILED."""
        last = trial.last_result or {}
        final = self._final.pop(trial.trial_id, None) or (last if payload.is_final(last) else None)
        objective = self.study.objective
        if final is None:
            # no final report: the scheduler (ASHA) stopped the trial early
            self._end(trial, STOPPED, last.get(objective))
            return
        value = final.get(objective)
        if value is None or not math.isfinite(float(value)):
            reason = (
                payload.FinalReport.from_report(final).diverged_reason or "objective is not finite"
            )
            self._end(trial, "FAILED", None, reason=reason)
            return
        self._end(trial, "FINISHED", value)

    def fail(self, trial: TrialLike) -> None:
        """End the run of a trial that raised (retries used up) as FAILED, with the error."""
        error = _trial_error(trial)
        reason = _last_line(error) if error else "trial raised an error"
        self._end(trial, "FAILED", None, reason=reason)

    def checkpointed(self, trial: TrialLike) -> None:
        """Store the metrics of ``trial`` so far: a restored trial reports only later ones.

        Waits at most ``CHECKPOINT_FLUSH_S`` (none while the store is failing): Tune's event
        loop waits on this hook, and an unreachable tracking server would hold it for the
        client's retries (a minute); the writer stores them once the server is back.
        """
        self.writer.flush(self.run_id(trial), timeout=CHECKPOINT_FLUSH_S)

    def close(self) -> None:
        """Write every queued metric (at the end of the experiment, however it ended)."""
        self.writer.close()

    def _end(
        self, trial: TrialLike, status: str, value: float | None, *, reason: str | None = None
    ) -> None:
        """End the run with ``status`` (a RunStatus, or STOPPED: FINISHED and tagged)."""
        run_id = self.run_id(trial)
        self.writer.flush(run_id)  # an ended run has all its metrics
        if status == STOPPED:
            self.client.set_tag(run_id, TAG_STOPPED_EARLY, "true")
        if reason is not None:
            self.client.set_tag(run_id, TAG_FAILURE_REASON, reason[:_TAG_LIMIT])
        self.client.set_terminated(run_id, status="FINISHED" if status == STOPPED else status)
        if self.report is not None:
            name = self.client.get_run(run_id).info.run_name
            shown = "" if value is None else f" {self.study.objective}={float(value):.4f}"
            detail = f" ({reason})" if reason else ""
            self.report(f"{name} {_SAID[status]}{shown}{detail}")


def _epoch_metrics(result: Mapping[str, Any], step: int) -> list[Metric]:
    from mlflow.entities import Metric

    now = now_ms()
    return [
        Metric(key, float(value), now, step)
        for key, value in result.items()
        if _is_number(value) and (key in payload.CURVE_METRICS or key.startswith("val_"))
    ]


def _final_metrics(final: payload.FinalReport, objective: str, step: int) -> list[Metric]:
    """Per-fold scores and the diverged count (whose presence marks a run as complete)."""
    from mlflow.entities import Metric

    now = now_ms()
    metrics = [
        Metric(payload.fold_score_key(objective, fold), float(score), now, step)
        for fold, score in enumerate(final.fold_scores)
    ]
    diverged = float(final.diverged_members)
    return [*metrics, Metric(payload.DIVERGED_MEMBERS, diverged, now, step)]


def _orphan_run(
    children: list[Run], trial: TrialLike, live: Collection[TrialLike], *, index: int
) -> Run | None:
    """A RUNNING child of a trial Tune no longer knows (created just before the driver
    died, missing from Tune's snapshot) with the same parameters: the restored
    searcher re-issues that configuration, so the run is continued, not duplicated.

    A driver killed between creating a run and logging its params leaves one without
    params: it is the orphan of the trial that has its creation index (the restored
    searcher counts on from its snapshot, so the re-issued trial gets the same index)."""
    if not live:
        return None
    known = {t.trial_id for t in live}
    wanted = {str(k): param_text(v) for k, v in trial.config.items()}
    for run in children:
        if run.info.status != "RUNNING" or run.data.tags.get(TAG_TRIAL_ID) in known:
            continue
        bare = not run.data.params and run.data.tags.get(TAG_TRIAL_INDEX) == str(index)
        if run.data.params == wanted or bare:
            return run
    return None


def _creation_index(trial: TrialLike, *, default: int, offset: int = 0) -> int:
    """0-based order in which the searcher created ``trial`` (so trial-0000 is the baseline),
    counted from ``offset`` (the trials of the study's earlier launches).

    Trials start concurrently, so start order is not creation order; Tune's experiment
    tag begins with the searcher's 1-based counter ("3_train.lr=...").
    """
    head = str(getattr(trial, "experiment_tag", "")).split("_", 1)[0]
    return offset + int(head) - 1 if head.isdigit() else default


def _trial_error(trial: TrialLike) -> str | None:
    """The trial's error trace: the driver-local file first (storage may not be synced yet)."""
    try:
        path = trial.error_file
        if path and Path(path).is_file():
            return Path(path).read_text()
    except (OSError, AttributeError):
        pass
    error = trial.get_error()
    return None if error is None else str(error)


def _last_line(error: object) -> str:
    """The informative last line of a (remote) traceback."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1][:_TAG_LIMIT] if lines else type(error).__name__


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
