"""A failure after the study's runs were opened ends them and leaves the name free (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

import study.runner
from study.mlflow_store import client_for
from study.request import StudyRequest
from study.stores import default_store_uris


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
