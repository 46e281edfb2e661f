"""How runs end and reopen: a study's trials left RUNNING, an interrupted study resumed, a
suite unit's run written whole."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from study.tracking import payload
from study.tracking._client import (
    client_for,
    experiment_id_for,
    now_ms,
    param_text,
    search_all_runs,
    trial_runs,
)
from study.tracking._tags import TAG_INTERRUPTED, TAG_STOPPED_EARLY

__all__ = [
    "end_open_trials",
    "log_finished_run",
    "mark_interrupted",
    "reopen_interrupted",
    "run_finished",
]


def end_open_trials(
    uri: str, experiment_id: str, parent_run_id: str, *, interrupted: bool = False
) -> None:
    """End child runs left RUNNING: a trial that finished while the driver was down, one
    the scheduler stopped, or (``interrupted``) one a stop signal cut short."""
    client = client_for(uri)
    for run in trial_runs(uri, experiment_id, parent_run_id):
        if run.info.status != "RUNNING":
            continue
        final = payload.reached_final_report(run.data.metrics)
        if not final:
            tag = TAG_INTERRUPTED if interrupted else TAG_STOPPED_EARLY
            client.set_tag(run.info.run_id, tag, "true")
        # a trial stopped early by the scheduler is FINISHED (tagged); one cut short, KILLED
        cut_short = interrupted and not final
        client.set_terminated(run.info.run_id, status="KILLED" if cut_short else "FINISHED")


def mark_interrupted(uri: str, run_id: str, signal_name: str) -> None:
    """Tag a study's parent run with the signal that stopped it (``resume`` removes it)."""
    client_for(uri).set_tag(run_id, TAG_INTERRUPTED, signal_name)


def reopen_interrupted(uri: str, experiment_id: str, parent_run_id: str) -> None:
    """Undo what an interruption wrote: the study and its cut-short trials run again."""
    client = client_for(uri)
    for run in trial_runs(uri, experiment_id, parent_run_id):
        if run.data.tags.get(TAG_INTERRUPTED):
            client.update_run(run.info.run_id, status="RUNNING")
            client.delete_tag(run.info.run_id, TAG_INTERRUPTED)
    parent = client.get_run(parent_run_id)
    if TAG_INTERRUPTED in parent.data.tags:
        client.delete_tag(parent_run_id, TAG_INTERRUPTED)
    client.update_run(parent_run_id, status="RUNNING")


def run_finished(uri: str, run_id: str) -> bool:
    """Whether run ``run_id`` ended FINISHED."""
    return bool(client_for(uri).get_run(run_id).info.status == "FINISHED")


def log_finished_run(
    uri: str,
    experiment: str,
    *,
    run_name: str,
    tags: Mapping[str, str],
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifact_location: str | None = None,
    replace: bool = False,
) -> str:
    """A run written whole in ``experiment`` (created if missing); its id.

    Non-finite metrics are left out. A write that fails ends the run FAILED (KILLED for
    Ctrl-C), so no run is left RUNNING. With ``replace``, earlier runs of the same name
    (a try that failed, say on a full disk) are deleted first, so a rerun leaves one.
    """
    from mlflow.entities import Metric, Param

    client = client_for(uri)
    experiment_id = experiment_id_for(client, experiment, artifact_location=artifact_location)
    if replace:
        quoted = run_name.replace("'", "\\'")
        for earlier in search_all_runs(
            client, [experiment_id], f"attributes.run_name = '{quoted}'"
        ):
            client.delete_run(earlier.info.run_id)
    run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
    try:
        now = now_ms()
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items() if math.isfinite(v)],
            params=[Param(k, param_text(v)) for k, v in params.items()],
        )
        client.set_terminated(run.info.run_id, status="FINISHED")
    except BaseException as error:
        stopped = isinstance(error, KeyboardInterrupt)  # Ctrl-C is not the run's failure
        client.set_terminated(run.info.run_id, status="KILLED" if stopped else "FAILED")
        raise
    return str(run.info.run_id)
