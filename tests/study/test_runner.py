"""``study.run`` without Ray: resume from any working directory or a moved store, and a
study that cannot start ends what it opened."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import study.run._runner as runner
from study.request import StudyRequest
from study.run import make_plan, resume_plan, write_manifest
from study.space import bundled_directory
from study.store import default_store_uris, relocate, relocate_mlflow_artifacts, relocated
from study.tracking import client_for, open_study_run


def _start(folder: Path, monkeypatch) -> None:
    """Write study "s" as `run` does, from ``folder``, with a relative store and space."""
    monkeypatch.chdir(folder)
    (folder / "spaces").mkdir()
    (folder / "spaces" / "mine.yaml").write_text(
        bundled_directory().joinpath("mlp.yaml").read_text()
    )
    request = StudyRequest(name="s", store="runs", space="spaces/mine.yaml", trials=1)
    plan = make_plan(request)
    experiment_id, parent = open_study_run(
        plan.tracking_uri,
        plan.name,
        artifact_location=(plan.store / "artifacts" / plan.name).as_uri(),
        params={},
        tags={},
    )
    client_for(plan.tracking_uri).create_run(experiment_id, tags={"mlflow.parentRunId": parent})
    write_manifest(plan, experiment_id, parent)


def test_the_manifest_records_absolute_locations(tmp_path: Path, monkeypatch) -> None:
    _start(tmp_path, monkeypatch)
    request = json.loads((tmp_path / "runs" / "studies" / "s.json").read_text())["request"]
    assert request["store"] == str(tmp_path / "runs")
    assert request["space"] == str(tmp_path / "spaces" / "mine.yaml")


def test_resume_from_another_directory_uses_the_given_store(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a").mkdir()
    _start(tmp_path / "a", monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _, plan = resume_plan("s", str(tmp_path / "a" / "runs"))
    assert plan.store == tmp_path / "a" / "runs"
    assert plan.tracking_uri == f"sqlite:///{tmp_path / 'a' / 'runs' / 'mlflow.db'}"
    assert plan.space.path == str(tmp_path / "a" / "spaces" / "mine.yaml")
    assert list(elsewhere.iterdir()) == []  # no store of the working directory was made


def test_a_moved_store_resumes_in_its_new_place(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a").mkdir()
    _start(tmp_path / "a", monkeypatch)
    old, moved = tmp_path / "a" / "runs", tmp_path / "b" / "moved-runs"
    moved.parent.mkdir()
    shutil.move(old, moved)
    manifest, plan = resume_plan("s", str(moved))
    assert plan.store == moved and runner.moved_from(manifest, moved) == old
    assert plan.tracking_uri == f"sqlite:///{moved / 'mlflow.db'}"
    assert plan.optuna_storage == f"sqlite:///{moved / 'optuna.db'}"
    # MLflow's artifact locations follow the store; locations elsewhere stay as they were
    client = client_for(plan.tracking_uri)
    other = client.create_experiment("other", artifact_location=(tmp_path / "x").as_uri())
    changed = relocate_mlflow_artifacts(plan.tracking_uri, old, moved)
    experiment = client.get_experiment_by_name("s")
    assert changed == 3  # the study's experiment, its parent run and the child run
    assert experiment.artifact_location == (moved / "artifacts" / "s").as_uri()
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2
    for run in runs:
        assert run.info.artifact_uri.startswith((moved / "artifacts" / "s").as_uri() + "/")
    assert client.get_experiment(other).artifact_location == (tmp_path / "x").as_uri()


def test_relocate_rewrites_the_old_folder_only_while_relocating(tmp_path: Path) -> None:
    old, new = tmp_path / "runs", tmp_path / "elsewhere" / "runs"
    inside = f"sqlite:///{old / 'optuna.db'}"
    assert relocate(inside) == inside
    with relocated(old, new):
        assert relocate(inside) == f"sqlite:///{new / 'optuna.db'}"
        assert relocate(str(old)) == str(new)
        # a sibling whose name starts like the old folder is another folder
        assert relocate(f"{old}-2/x") == f"{old}-2/x"
    assert relocate(inside) == inside


def test_a_study_that_cannot_start_ends_its_parent_run_and_writes_no_manifest(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(runner, "start_ray", lambda _address: False)
    monkeypatch.setattr(runner, "_check_resources", lambda _request: None)

    def broken_tuner(*_args, **_kwargs):
        raise RuntimeError("the searcher could not be built")

    monkeypatch.setattr(runner, "_tuner", broken_tuner)
    request = StudyRequest(name="late", store=str(tmp_path), trials=1)
    with pytest.raises(RuntimeError, match="searcher"):
        runner.run_study(request)
    assert not (tmp_path / "studies" / "late.json").exists()  # `run --name late` works again
    client = client_for(default_store_uris(tmp_path)[0])
    (parent,) = client.search_runs([client.get_experiment_by_name("late").experiment_id])
    assert parent.info.status == "FAILED"
