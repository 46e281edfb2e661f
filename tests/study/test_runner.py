"""``study.runner`` without Ray: resume from any working directory (a moved store refused
with what to do), and a study that cannot start ends what it opened."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import study.runner
from study.manifest import write_manifest
from study.mlflow_store import client_for, open_study_run
from study.plan import make_plan
from study.request import StudyRequest
from study.runner import resume_plan
from study.space_files import bundled_directory
from study.stores import default_store_uris


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


def test_a_moved_store_is_refused_with_what_to_do(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a").mkdir()
    _start(tmp_path / "a", monkeypatch)
    moved = tmp_path / "b" / "moved-runs"
    moved.parent.mkdir()
    shutil.move(tmp_path / "a" / "runs", moved)
    before = (moved / "studies" / "s.json").read_text()
    with pytest.raises(ValueError, match=r"has moved to .*moved-runs; .*move it back"):
        resume_plan("s", str(moved))
    assert (moved / "studies" / "s.json").read_text() == before


def test_a_study_that_cannot_start_ends_its_parent_run_and_writes_no_manifest(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(study.runner, "start_ray", lambda _address: False)
    monkeypatch.setattr(study.runner, "_check_resources", lambda _request: None)

    def broken_tuner(*_args, **_kwargs):
        raise RuntimeError("the searcher could not be built")

    monkeypatch.setattr(study.runner, "_tuner", broken_tuner)
    request = StudyRequest(name="late", store=str(tmp_path), trials=1)
    with pytest.raises(RuntimeError, match="searcher"):
        study.runner.run_study(request)
    assert not (tmp_path / "studies" / "late.json").exists()  # `run --name late` works again
    client = client_for(default_store_uris(tmp_path)[0])
    (parent,) = client.search_runs([client.get_experiment_by_name("late").experiment_id])
    assert parent.info.status == "FAILED"
