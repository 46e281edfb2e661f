"""Ranking and export of trials from a hand-built MLflow store (no Ray)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from study.tracking import (
    TAG_DATASET,
    TAG_METRIC,
    TAG_MODE,
    TAG_MODEL,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STAGE,
    TAG_STOPPED_EARLY,
    TAG_STUDY,
    TAG_SUITE,
    best_per_model,
    client_for,
    export_best,
    format_frame,
    log_finished_run,
    open_study_run,
    study_trials,
    suite_finals,
)

# study -> (dataset, model, objective, mode, trials as (name, status, value or None))
STUDIES: dict[str, tuple[str, str, str, str, list[tuple[str, str, float | None]]]] = {
    "plant-actmix": (
        "power_plant",
        "actmix",
        "val_rmse_mean",
        "min",
        [
            ("trial-0000", "FINISHED", 4.0),
            ("trial-0001", "STOPPED", 3.5),  # stopped early, yet the best value so far
            ("trial-0002", "FAILED", math.nan),
            ("trial-0003", "FINISHED", 3.8),
            ("trial-0004", "RUNNING", None),  # nothing logged yet
            ("trial-0005", "FAILED", 1.0),  # a failed run's value is not to be trusted
        ],
    ),
    "plant-actmix-2": (
        "power_plant",
        "actmix",
        "val_rmse_mean",
        "min",
        [("trial-0000", "FINISHED", 3.6)],
    ),
    "plant-relu": (
        "power_plant",
        "relu",
        "val_rmse_mean",
        "min",
        [("trial-0000", "FINISHED", 4.5), ("trial-0001", "FINISHED", 4.2)],
    ),
    "adult-actmix": (
        "adult",
        "actmix",
        "val_accuracy_mean",
        "max",
        [
            ("trial-0000", "FINISHED", 0.84),
            ("trial-0001", "FINISHED", 0.86),
            ("trial-0002", "KILLED-STOPPED", 0.80),  # a store from before FINISHED+tag
            ("trial-0003", "KILLED", 0.70),  # cut short by Ctrl-C
        ],
    ),
    "wine-relu": ("wine", "relu", "val_rmse_mean", "min", [("trial-0000", "STOPPED", 0.7)]),
    # a suite's study (5 epochs, its dataset under the suite's label): not a user's study
    "tiny-plant-actmix-outer0": (
        "plant",
        "actmix",
        "val_rmse_mean",
        "min",
        [("trial-0000", "FINISHED", 2.0), ("trial-0001", "FINISHED", 2.5)],
    ),
}
SUITE_STUDY = "tiny-plant-actmix-outer0"
# the suite's retrained models and references: (label, stage, test RMSE per outer fold)
FINALS = [("actmix", "final", [3.0, 3.4]), ("relu-default", "reference", [2.9, 3.1])]


# a trial's config.yaml holds its whole config; the schedule part is what export-best reads
TRAIN = {"epochs": 30, "temperature": {"anneal_epochs": 15}, "entropy": {"warmup_epochs": 6}}


def _trial_run(
    client: Any, experiment_id: str, parent: str, study: str, name: str, status: str, value: Any
) -> None:
    dataset, model, objective, mode, _ = STUDIES[study]
    tags = {
        TAG_PARENT: parent,
        TAG_ROLE: "trial",
        TAG_STUDY: study,
        TAG_DATASET: dataset,
        TAG_MODEL: model,
        TAG_METRIC: objective,
        TAG_MODE: mode,
    }
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    if value is not None:
        client.log_metric(run_id, objective, value)
        client.log_metric(run_id, objective.replace("_mean", "_std"), value / 10)
    client.log_text(
        run_id, yaml.safe_dump({"model": model, "trial": name, "train": TRAIN}), "config.yaml"
    )
    if status in ("STOPPED", "KILLED-STOPPED"):
        # stopped early by the scheduler: FINISHED and tagged (KILLED in older stores)
        client.set_tag(run_id, TAG_STOPPED_EARLY, "true")
        status = "FINISHED" if status == "STOPPED" else "KILLED"
    if status != "RUNNING":
        client.set_terminated(run_id, status=status)


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = client_for(uri)
    for study, (dataset, *_, trials) in STUDIES.items():
        suite = study == SUITE_STUDY
        experiment_id, parent = open_study_run(
            uri,
            study,
            experiment="tiny" if suite else None,
            artifact_location=(root / study).as_uri(),
            params={
                "dataset": f"uci:{dataset}",
                "split_seed": 7,
                "target": "PE",
                "task": "regression",
                "trials": len(trials),
                "folds": 2 if suite else 5,
                "epochs": 5 if suite else 40,
            },
            tags={TAG_SUITE: "tiny", TAG_STAGE: "study"} if suite else {},
        )
        for name, status, value in trials:
            _trial_run(client, experiment_id, parent, study, name, status, value)
    for label, stage, values in FINALS:
        for fold, value in enumerate(values):
            log_finished_run(
                uri,
                "tiny",
                run_name=f"plant-{label}-outer{fold}",
                tags={TAG_SUITE: "tiny", TAG_STAGE: stage, "dataset": "plant", "model": label},
                params={"outer_fold": fold},
                metrics={"test_rmse_mean": value, "val_rmse_mean": 1.0},
            )
    return uri


def test_lower_is_better_ranking_puts_missing_values_last(uri: str) -> None:
    frame = study_trials(uri, "plant-actmix")
    assert list(frame["rank"]) == [1, 2, 3, 4, 5, 6]
    assert list(frame["trial"][:4]) == ["trial-0005", "trial-0001", "trial-0003", "trial-0000"]
    assert set(frame["trial"][4:]) == {"trial-0002", "trial-0004"}  # NaN and nothing logged
    best = frame.iloc[0]
    assert (best["status"], best["metric"], best["value"]) == ("FAILED", "val_rmse_mean", 1.0)
    assert frame.iloc[1]["std"] == pytest.approx(0.35)  # val_rmse_std is found by name


def test_higher_is_better_ranking(uri: str) -> None:
    frame = study_trials(uri, "adult-actmix")
    assert list(frame["trial"]) == ["trial-0001", "trial-0000", "trial-0002", "trial-0003"]


def test_a_trial_stopped_early_is_stopped_whether_finished_or_killed_with_the_tag(
    uri: str,
) -> None:
    plant = study_trials(uri, "plant-actmix").set_index("trial")["status"]
    assert (plant["trial-0001"], plant["trial-0003"]) == ("STOPPED", "FINISHED")
    adult = study_trials(uri, "adult-actmix").set_index("trial")["status"]
    # the tag makes a run stopped early; KILLED without it was cut short by a stop signal
    assert (adult["trial-0002"], adult["trial-0003"]) == ("STOPPED", "KILLED")


def test_unknown_study_names_the_known_ones(uri: str) -> None:
    with pytest.raises(ValueError, match=r"no study named 'plant'.*adult-actmix.*plant-relu"):
        study_trials(uri, "plant")


def test_best_per_model_spans_studies_and_skips_failed_runs(uri: str) -> None:
    frame = best_per_model(uri)
    rows = {(r.dataset, r.model): (r.study, r.trial, r.value) for r in frame.itertuples()}
    assert rows == {
        ("adult", "actmix"): ("adult-actmix", "trial-0001", 0.86),
        # the stopped-early 3.5 beats the other study's 3.6; the FAILED 1.0 does not count
        ("power_plant", "actmix"): ("plant-actmix", "trial-0001", 3.5),
        ("power_plant", "relu"): ("plant-relu", "trial-0001", 4.2),
        ("wine", "relu"): ("wine-relu", "trial-0000", 0.7),
    }
    assert list(best_per_model(uri, dataset="adult")["model"]) == ["actmix"]
    # each row says what its study could spend: trials x inner folds x epochs
    assert list(frame["budget"]) == ["4x5x40", "6x5x40", "2x5x40", "1x5x40"]


def test_a_suites_studies_are_apart_from_the_users_and_shown_on_request(uri: str) -> None:
    assert "plant" not in set(best_per_model(uri)["dataset"])  # the suite's label
    frame = best_per_model(uri, suite="tiny", params=True)
    assert [(r.dataset, r.study, r.trial, r.budget) for r in frame.itertuples()] == [
        ("plant", SUITE_STUDY, "trial-0000", "2x2x5")
    ]
    assert json.loads(frame["params"].iloc[0]) == {}  # the hand-made runs have none
    with pytest.raises(ValueError, match=r"no suite named 'nope'.*known: tiny"):
        best_per_model(uri, suite="nope")


def test_a_suites_final_stage_ranks_its_rows_on_the_outer_test_rows(uri: str) -> None:
    frame = suite_finals(uri, "tiny")
    rows = [(r.model, r.stage, r.metric, r.outer_folds) for r in frame.itertuples()]
    assert rows == [
        ("relu-default", "reference", "test_rmse", 2),
        ("actmix", "final", "test_rmse", 2),
    ]
    assert list(frame["value"]) == pytest.approx([3.0, 3.2])
    assert frame["std"].iloc[1] == pytest.approx(0.2828427)
    with pytest.raises(ValueError, match="no final or reference runs of a suite named 'x'"):
        suite_finals(uri, "x")


def test_export_best_takes_the_best_finished_trial_with_its_provenance(
    uri: str, tmp_path: Path
) -> None:
    path, config = export_best(uri, "plant-actmix", tmp_path / "best" / "best.yaml")
    assert yaml.safe_load(path.read_text()) == config
    assert config["trial"] == "trial-0003"  # not the better stopped-early or FAILED runs
    assert config["dataset"] == "uci:power_plant"  # the study's own dataset spec
    provenance = config["provenance"]
    assert provenance["study"] == "plant-actmix"
    assert provenance["value"] == 3.8
    assert provenance["split_seed"] == 7
    assert provenance["objective"] == "val_rmse_mean"
    # what `cv --config` needs on its own: the target and task, and the schedule's shape
    assert (provenance["target"], provenance["task"]) == ("PE", "regression")
    assert provenance["tuned_epochs"] == 30
    assert provenance["schedule_fractions"] == {
        "temperature.anneal_fraction": 0.5,
        "entropy.warmup_fraction": 0.2,
    }


def test_export_best_top_k_writes_the_best_finished_configurations_first(
    uri: str, tmp_path: Path
) -> None:
    path, written = export_best(uri, "plant-actmix", tmp_path / "top.yaml", top_k=3)
    assert yaml.safe_load(path.read_text()) == written
    members = written["ensemble"]
    # only two finished (the stopped-early and failed runs are no members), best first
    assert [m["provenance"]["trial"] for m in members] == ["trial-0003", "trial-0000"]
    assert [m["provenance"]["value"] for m in members] == [3.8, 4.0]
    assert all(m["dataset"] == "uci:power_plant" for m in members)
    with pytest.raises(ValueError, match="--top-k must be at least 1"):
        export_best(uri, "plant-actmix", tmp_path / "none.yaml", top_k=0)
    assert not (tmp_path / "none.yaml").exists()


def test_the_export_best_command_takes_top_k(uri: str, tmp_path: Path, capsys) -> None:
    from study.cli import main

    out = tmp_path / "top.yaml"
    argv = ["export-best", "--tracking-uri", uri, "--study", "plant-actmix", "--out", str(out)]
    assert main([*argv, "--top-k", "2"]) == 0
    said = capsys.readouterr().out
    assert "an ensemble of 2: trial-0003 (val_rmse_mean 3.8000), trial-0000" in said
    assert "cv --config" in said and len(yaml.safe_load(out.read_text())["ensemble"]) == 2


def test_export_best_without_a_finished_trial(uri: str, tmp_path: Path) -> None:
    # its one run is FINISHED in MLflow, but was stopped early: not a trained configuration
    with pytest.raises(ValueError, match="'wine-relu' has no finished trial"):
        export_best(uri, "wine-relu", tmp_path / "best.yaml")
    assert not (tmp_path / "best.yaml").exists()


def test_formats_carry_the_same_rows(uri: str) -> None:
    frame = study_trials(uri, "adult-actmix")
    records = json.loads(format_frame(frame, "json"))
    assert [r["trial"] for r in records] == ["trial-0001", "trial-0000", "trial-0002", "trial-0003"]
    markdown = format_frame(frame, "markdown").splitlines()
    assert markdown[0].startswith("| rank | trial | status")
    assert len(markdown) == 2 + len(frame)
    assert format_frame(frame, "csv").splitlines()[1].startswith("1,trial-0001,FINISHED")


def test_the_leaderboard_command_takes_suite_stage_and_params(uri: str, capsys) -> None:
    from study.cli import main

    assert main(["leaderboard", "--tracking-uri", uri, "--suite", "tiny", "--stage", "final"]) == 0
    out = capsys.readouterr().out
    assert out.index("relu-default") < out.index("actmix") and "reference" in out
    assert main(["leaderboard", "--tracking-uri", uri, "--format", "json", "--params"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["study"] for row in rows} == {
        "adult-actmix",
        "plant-actmix",
        "plant-relu",
        "wine-relu",
    }
    assert all("params" in row and "budget" in row for row in rows)
    assert main(["leaderboard", "--tracking-uri", uri, "--stage", "final"]) == 2
    assert "--stage final needs --suite NAME" in capsys.readouterr().err
