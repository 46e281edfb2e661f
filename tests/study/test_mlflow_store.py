"""The Ray-free MLflow layer: study runs in their own or a shared experiment, found by tag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from study.store import default_store_uris
from study.tracking import (
    TAG_METRIC,
    TAG_MODE,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STUDY,
    check_tracking_uri,
    client_for,
    finish_study_run,
    open_study_run,
    runs_view_url,
    study_names,
    study_runs,
    trial_runs,
)


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return default_store_uris(tmp_path)[0]


def test_a_study_gets_its_own_experiment_and_a_suite_shares_one(uri: str) -> None:
    alone, _ = open_study_run(uri, "solo", artifact_location=None, params={"a": 1}, tags={})
    shared = [
        open_study_run(uri, name, experiment="suite", artifact_location=None, params={}, tags={})
        for name in ("suite-a", "suite-b")
    ]
    client = client_for(uri)
    assert client.get_experiment(alone).name == "solo"
    assert {experiment for experiment, _ in shared} == {
        client.get_experiment_by_name("suite").experiment_id
    }
    assert study_names(client) == ["solo", "suite-a", "suite-b"]
    (parent,) = study_runs(client, "suite-b", "study")
    assert parent.info.run_id == shared[1][1]
    assert parent.data.params == {}
    (solo,) = study_runs(client, "solo", "study")
    assert solo.data.params == {"a": "1"} and solo.data.tags[TAG_STUDY] == "solo"
    # marked as model training, so the MLflow UI opens them on the runs table
    for name in ("solo", "suite"):
        tags = client.get_experiment_by_name(name).tags
        assert tags["mlflow.experimentKind"] == "custom_model_development", name


def test_trial_runs_are_the_parent_runs_children_oldest_first(uri: str) -> None:
    experiment, parent = open_study_run(uri, "s", artifact_location=None, params={}, tags={})
    _, other = open_study_run(uri, "t", experiment="s", artifact_location=None, params={}, tags={})
    client = client_for(uri)
    names = ["trial-0000", "trial-0001"]
    for name in names:
        tags = {TAG_PARENT: parent, TAG_ROLE: "trial", TAG_STUDY: "s"}
        client.create_run(experiment, run_name=name, tags=tags)
    client.create_run(experiment, run_name="not-mine", tags={TAG_PARENT: other})
    assert [run.info.run_name for run in trial_runs(uri, experiment, parent)] == names
    finish_study_run(uri, parent, "FINISHED", {"trials_finished": 2, "label": "x"})
    ended = client.get_run(parent)
    assert ended.info.status == "FINISHED" and ended.data.metrics == {"trials_finished": 2.0}


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("foo://bar", "unknown MLflow tracking URI scheme 'foo'"),
        ("http://127.0.0.1:9", "cannot reach MLflow tracking server"),
    ],
)
def test_a_tracking_uri_that_cannot_work_is_refused_in_one_line(given: str, problem: str) -> None:
    with pytest.raises((ValueError, ConnectionError), match=problem):
        check_tracking_uri(given, timeout=1)


@pytest.mark.parametrize(
    "given", ["sqlite:///x.db", "postgresql+psycopg2://h/db", "C:/runs", "runs"]
)
def test_known_schemes_and_paths_are_accepted_without_connecting(given: str) -> None:
    check_tracking_uri(given)


def test_a_study_stores_the_ui_view_of_its_trials_best_first(uri: str) -> None:
    tags = {TAG_METRIC: "val_accuracy_mean", TAG_MODE: "max"}
    experiment, _ = open_study_run(
        uri, "plant.actmix-1", artifact_location=None, params={}, tags=tags
    )
    client = client_for(uri)
    state = json.loads(
        client.get_experiment(experiment).tags["mlflow.sharedViewState.study-plant.actmix-1"]
    )
    assert state == {
        "searchFilter": "tags.`actmix.study` = 'plant.actmix-1'",
        "orderByKey": "metrics.`val_accuracy_mean`",
        "orderByAsc": False,  # higher is better: best first
        "selectedColumns": [
            "metrics.`val_accuracy_mean`",
            "metrics.`val_accuracy_std`",
            "tags.`stopped_early`",
        ],
    }
    address = "http://127.0.0.1:5000"
    assert runs_view_url(client, address, experiment, "plant.actmix-1") == (
        f"{address}/#/experiments/{experiment}/runs?viewStateShareKey=study-plant.actmix-1"
    )
    # a study without an objective (or made before the view existed): the plain table
    other, _ = open_study_run(uri, "plain", artifact_location=None, params={}, tags={})
    assert runs_view_url(client, address, other, "plain").endswith(f"/{other}/runs")
