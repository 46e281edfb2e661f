"""The Python API: a study's trials as a DataFrame, its best configuration, a suite report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from study import api
from study.tracking import (
    TAG_DATASET,
    TAG_METRIC,
    TAG_MODE,
    TAG_MODEL,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STUDY,
    client_for,
    open_study_run,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one two-trial study, as `run` leaves it (params logged as text)."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    experiment_id, parent = open_study_run(
        uri, "demo", artifact_location=(root / "a").as_uri(), params={"dataset": "x"}, tags={}
    )
    client = client_for(uri)
    for name, lr, widths, value in (
        ("trial-0000", 0.001, "[8,8]", 4.0),
        ("trial-0001", 0.01, "[16]", 3.0),
    ):
        tags = {
            TAG_PARENT: parent,
            TAG_ROLE: "trial",
            TAG_STUDY: "demo",
            TAG_DATASET: "x",
            TAG_MODEL: "relu",
            TAG_METRIC: "val_rmse_mean",
            TAG_MODE: "min",
        }
        run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        client.log_param(run_id, "train.lr", str(lr))
        client.log_param(run_id, "mlp.widths", widths)
        client.log_param(run_id, "train.temperature.schedule", "cosine")
        client.log_metric(run_id, "val_rmse_mean", value)
        client.log_metric(run_id, "fold0_val_rmse", value - 0.5)
        client.log_text(
            run_id, yaml.safe_dump({"model": "relu", "train": {"lr": lr}}), "config.yaml"
        )
        client.set_terminated(run_id, status="FINISHED")
    return root


def test_trials_are_a_frame_with_typed_params_and_metrics_best_first(store: Path) -> None:
    frame = api.trials("demo", store=store)
    assert list(frame["trial"]) == ["trial-0001", "trial-0000"]
    best = frame.iloc[0]
    assert best["rank"] == 1 and best["value"] == 3.0
    assert best["param.train.lr"] == 0.01 and best["param.mlp.widths"] == [16]
    assert best["param.train.temperature.schedule"] == "cosine"
    assert best["metric.fold0_val_rmse"] == 2.5


def test_best_configuration_and_a_missing_store(store: Path, tmp_path: Path) -> None:
    config = api.best_configuration("demo", store=store)
    assert config["train"]["lr"] == 0.01 and config["provenance"]["trial"] == "trial-0001"
    with pytest.raises(ValueError, match="no MLflow store at"):
        api.trials("demo", store=tmp_path)


def test_suite_report_reads_the_file_or_its_folder(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps({"answer": "no knob matters"}))
    assert api.suite_report(tmp_path)["answer"] == "no knob matters"
    assert api.suite_report(tmp_path / "report.json")["answer"] == "no knob matters"
    with pytest.raises(ValueError, match="no suite report at"):
        api.suite_report(tmp_path / "nope")


def test_the_committed_suite_report_loads() -> None:
    report = api.suite_report(Path(__file__).resolve().parents[2] / "results" / "uci3")
    assert {"answer", "results", "comparisons", "budget_checks"} <= set(report)
