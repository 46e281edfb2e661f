"""Folders of files kept in MLflow: a trial's model fetched, a command's output logged as a
run of its own or attached to a study's run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.tracking._client import (
    client_for,
    experiment_id_for,
    search_all_runs,
    study_runs,
)
from study.tracking._tags import MODEL_ARTIFACT, TAG_ROLE

__all__ = [
    "attach_folder",
    "download_model",
    "latest_parent_run",
    "log_folder_run",
    "reportable_experiments",
]


def download_model(uri: str, run_id: str, directory: str | Path) -> Path:
    """Fetch ``model.pt`` of run ``run_id`` into ``directory``; ValueError if there is none."""
    from mlflow.exceptions import MlflowException

    client = client_for(uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ValueError(f"no MLflow run {run_id!r} at {uri}") from None
    logged = {entry.path for entry in client.list_artifacts(run_id)}
    if MODEL_ARTIFACT not in logged:
        name = run.info.run_name or run_id
        listed = ", ".join(sorted(logged)) or "none"
        raise ValueError(
            f"run {name} ({run_id}) has no {MODEL_ARTIFACT} artifact; analyze a finished "
            f"trial run, or use --model-file (its artifacts: {listed})"
        )
    return Path(client.download_artifacts(run_id, MODEL_ARTIFACT, str(directory)))


def attach_folder(uri: str, run_id: str, folder: Path, artifact_path: str | None = None) -> None:
    """Log every file of ``folder`` to run ``run_id`` (under ``artifact_path``)."""
    client_for(uri).log_artifacts(run_id, str(folder), artifact_path)


def log_folder_run(
    uri: str, experiment: str, run_name: str, params: Mapping[str, Any], folder: Path
) -> str:
    """A finished run of its own in ``experiment`` holding ``params`` and ``folder``'s files."""
    client = client_for(uri)
    run = client.create_run(experiment_id_for(client, experiment), run_name=run_name)
    run_id = str(run.info.run_id)
    for key, value in params.items():
        client.log_param(run_id, key, str(value))
    client.log_artifacts(run_id, str(folder))
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def latest_parent_run(client: Any, study: str) -> Any:
    """The newest parent run of ``study`` (None when it has none); ValueError if unknown."""
    from study.tracking._final_runs import experiments_named

    parents = study_runs(client, study, "study")
    if not parents:
        experiments_named(client, [study])  # an experiment without a study: None, else raise
    return parents[0] if parents else None


def reportable_experiments(uri: str) -> list[str]:
    """Experiments holding a study's parent run or a final-CV run: what ``report`` covers
    when no study is named (a ``cv --experiment`` of its own counts too)."""
    client = client_for(uri)
    names = []
    for experiment in client.search_experiments():
        if experiment.name == "Default":
            continue
        # MLflow's filter grammar has no IN for tags: one query per role
        if any(
            search_all_runs(
                client, [experiment.experiment_id], f"tags.`{TAG_ROLE}` = '{role}'", limit=1
            )
            for role in ("study", "final")
        ):
            names.append(experiment.name)
    if not names:
        raise ValueError(f"no studies in {uri}; run one with `actmix-study run`")
    return names
