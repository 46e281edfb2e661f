"""``actmix-study report`` on a store built from known final runs and a real Optuna study."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient

from actmix.cv import CVResult
from study.cli import main
from study.tags import TAG_METRIC, TAG_MODE, TAG_ROLE, TAG_STUDY
from study.tracking import log_final_cv, open_study_run

SAME_FOLDS = "a" * 40
OTHER_FOLDS = "b" * 40


def _result(dataset, task, model, per_fold, *, seeds=(0,), fingerprint=SAME_FOLDS, jitter=0.0):
    """A CVResult whose fold f has test scores per_fold[f] -/+ jitter over its seeds."""
    metric = "rmse" if task == "regression" else "accuracy"
    offsets = np.linspace(-jitter, jitter, len(seeds)) if len(seeds) > 1 else [0.0]
    rows = tuple(
        {"fold": fold, "seed": seed, f"test_{metric}": value + offset}
        for fold, value in enumerate(per_fold)
        for seed, offset in zip(seeds, offsets, strict=True)
    )
    values = [row[f"test_{metric}"] for row in rows]
    return CVResult(
        dataset=dataset,
        source="test",
        task=task,
        model_name=model,
        config={"model": model},
        splits={"k": len(per_fold), "seed": 1, "fingerprint": fingerprint},
        seeds=tuple(seeds),
        rows=rows,
        summary={f"test_{metric}": {"mean": float(np.mean(values)), "std": 0.0}},
        seconds=1.0,
        versions={},
    )


FINALS = [  # (experiment, result)
    (
        "s1",
        _result("d1", "regression", "actmix", [1.0, 1.1, 1.2, 1.3, 1.4], seeds=(0, 1), jitter=0.05),
    ),
    ("actmix-final", _result("d1", "regression", "relu", [1.5, 1.7, 1.9, 2.1, 2.3])),
    ("actmix-final", _result("d1", "regression", "gelu", [5.0] * 5)),
    ("actmix-final", _result("d1", "regression", "xgboost", [0.9] * 5, fingerprint=OTHER_FOLDS)),
    ("s1", _result("d2", "regression", "actmix", [9, 8, 7, 6, 5, 16])),
    ("actmix-final", _result("d2", "regression", "relu", [10.0] * 6)),
    ("actmix-final", _result("d2", "regression", "xgboost", [8.5] * 6)),
    ("s1", _result("d3", "classification", "actmix", [0.80] * 4)),
    ("actmix-final", _result("d3", "classification", "relu", [0.85, 0.86, 0.87, 0.88])),
    ("actmix-final", _result("d3", "classification", "xgboost", [0.82] * 4)),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    for name in ("s1", "s2", "actmix-final"):
        client.create_experiment(name, artifact_location=(root / "art" / name).as_uri())
    # s1: a real Optuna study where only x matters
    storage = f"sqlite:///{root / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="s1", storage=storage, sampler=optuna.samplers.TPESampler(seed=0)
    )
    study.optimize(
        lambda t: (t.suggest_float("x", 0, 1) - 0.3) ** 2 + 0.001 * t.suggest_int("n", 1, 3),
        n_trials=15,
    )
    params = {"optuna_storage": storage, "objective": "val_rmse_mean (min)"}
    open_study_run(uri, "s1", artifact_location=None, params=params, tags={})
    # s2: a study with trials but no final run yet
    _, parent = open_study_run(uri, "s2", artifact_location=None, params={}, tags={})
    experiment = client.get_experiment_by_name("s2").experiment_id
    for index, value in enumerate([4.0, 3.5]):
        tags = {TAG_ROLE: "trial", TAG_STUDY: "s2", TAG_METRIC: "val_rmse_mean"}
        tags |= {TAG_MODE: "min", "mlflow.parentRunId": parent}
        run = client.create_run(experiment, run_name=f"trial-{index:04d}", tags=tags)
        client.log_metric(run.info.run_id, "val_rmse_mean", value)
        client.set_terminated(run.info.run_id)
    for index, (name, result) in enumerate(FINALS):
        path = result.save_json(root / f"cv-{index}.json")
        log_final_cv(uri, result, experiment=name, provenance={}, json_path=path)
    return root, uri


@pytest.fixture(scope="module")
def report(store, tmp_path_factory):
    _, uri = store
    out = tmp_path_factory.mktemp("report")
    argv = ["report", "--study", "s1", "--study", "s2", "--experiment", "actmix-final"]
    assert main([*argv, "--tracking-uri", uri, "--out", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text())


def _comparison(data, dataset, other):
    (found,) = [
        c for c in data["comparisons"] if c["dataset"] == dataset and c["other_model"] == other
    ]
    return found


def test_leaderboards_are_mean_and_std_over_folds_and_seeds(report):
    _, data = report
    d1 = data["leaderboards"]["d1"]
    assert [run["model"] for run in d1] == ["xgboost", "actmix", "relu", "gelu"]
    actmix = d1[1]
    values = [x + d for x in [1.0, 1.1, 1.2, 1.3, 1.4] for d in (-0.05, 0.05)]
    assert actmix["n"] == 10
    assert actmix["mean"] == pytest.approx(1.2)
    assert actmix["std"] == pytest.approx(np.std(values, ddof=1))
    assert actmix["per_fold"] == pytest.approx({"0": 1.0, "1": 1.1, "2": 1.2, "3": 1.3, "4": 1.4})
    d3 = data["leaderboards"]["d3"]  # accuracy: higher first
    assert [run["model"] for run in d3] == ["relu", "xgboost", "actmix"]


def test_paired_tests_use_per_fold_scores_on_the_same_folds(report):
    _, data = report
    relu = _comparison(data, "d1", "relu")
    assert relu["test"]["p_value"] == pytest.approx(2 / 32)
    assert (relu["test"]["wins"], relu["test"]["losses"]) == (5, 0)
    assert relu["verdict"] == "no significant difference at 0.05"  # 5 folds cannot reach it
    xgboost = _comparison(data, "d1", "xgboost")
    assert xgboost["test"] is None and "same folds" in xgboost["note"]
    mixed = _comparison(data, "d2", "relu")
    assert mixed["test"]["statistic"] == 6.0
    assert mixed["test"]["p_value"] == pytest.approx(28 / 64)
    accuracy = _comparison(data, "d3", "relu")
    assert (accuracy["test"]["wins"], accuracy["test"]["losses"]) == (0, 4)


def test_mean_ranks_over_three_datasets(report):
    _, data = report
    assert data["mean_ranks"] == pytest.approx({"xgboost": 1.5, "actmix": 6.5 / 3, "relu": 7 / 3})
    assert "gelu" in data["rank_note"]


def test_optuna_history_and_importances(report):
    _, data = report
    s1, s2 = data["studies"]
    assert len(s1["trials"]) == 15 and s1["direction"] == "minimize"
    assert max(s1["importances"], key=s1["importances"].get) == "x"
    assert s2["note"]  # no Optuna storage recorded: said, not crashed
    board = data["trial_leaderboards"]["s2"]
    assert [row["trial"] for row in board] == ["trial-0001", "trial-0000"]
    assert "s1" not in data["trial_leaderboards"]  # it has final runs


def test_html_is_self_contained_and_logged_to_the_study(report, store):
    out, _ = report
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 + 2  # 3 fold plots, history, importance
    assert "0.0625" in page and "smallest possible two-sided p-value" in page
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    client = MlflowClient(tracking_uri=store[1])
    experiment = client.get_experiment_by_name("s1").experiment_id
    (parent,) = client.search_runs([experiment], "tags.`actmix.role` = 'study'")
    logged = {entry.path for entry in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/report.json"} <= logged


def test_unknown_study_is_one_line_and_writes_nothing(store, tmp_path, capsys):
    _, uri = store
    out = tmp_path / "never"
    code = main(["report", "--study", "nope", "--tracking-uri", uri, "--out", str(out)])
    assert code == 2
    message = capsys.readouterr()
    assert "no study or experiment named 'nope'" in message.err + message.out
    assert "s1" in message.err + message.out
    assert not out.exists()
    code = main(["report", "--store", str(tmp_path / "empty"), "--out", str(out)])
    assert code == 2 and not out.exists()


def test_without_names_the_report_covers_every_study_in_the_store(store, tmp_path):
    _, uri = store
    assert main(["report", "--tracking-uri", uri, "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert sorted(data["sources"]) == ["actmix-final", "s1", "s2"]
    assert sum(len(runs) for runs in data["leaderboards"].values()) == len(FINALS)


def test_cv_result_files_alone_need_no_store(tmp_path, report):
    _, from_store = report
    files = [
        str(result.save_json(tmp_path / f"cv-{i}.json")) for i, (_, result) in enumerate(FINALS)
    ]
    store, out = tmp_path / "no-store", tmp_path / "out"
    assert main(["report", "--results", *files, "--store", str(store), "--out", str(out)]) == 0
    assert not store.exists()  # nothing read from or written to MLflow
    data = json.loads((out / "report.json").read_text())
    for dataset, runs in data["leaderboards"].items():
        expected = from_store["leaderboards"][dataset]
        assert [(r["model"], r["mean"], r["std"]) for r in runs] == [
            (r["model"], r["mean"], r["std"]) for r in expected
        ]
    assert _comparison(data, "d2", "relu")["test"] == _comparison(from_store, "d2", "relu")["test"]
    assert data["mean_ranks"] == from_store["mean_ranks"]


def test_a_bad_result_file_is_one_line_and_writes_nothing(tmp_path, capsys):
    not_a_result = tmp_path / "other.json"
    not_a_result.write_text('{"rows": []}')
    out = tmp_path / "out"
    for path, message in [
        (tmp_path / "missing.json", "no cv result file"),
        (not_a_result, "is not a cv result"),
    ]:
        assert main(["report", "--results", str(path), "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()
