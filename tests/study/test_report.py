"""``actmix-study report`` on a store built from known final runs and a real Optuna study."""

from __future__ import annotations

import json
import os

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient

from actmix.cv import CVResult
from study.cli import main
from study.tracking import TAG_METRIC, TAG_MODE, TAG_ROLE, TAG_STUDY, log_final_cv, open_study_run

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
    ("actmix-final", _result("d1", "regression", "gelu", [5.0] * 5, fingerprint=OTHER_FOLDS)),
    ("actmix-final", _result("d1", "regression", "xgboost", [0.9] * 5)),
    # an older actmix run with far better test scores: never picked for the tests
    ("s1", _result("d2", "regression", "actmix", [1.0] * 6)),
    ("s1", _result("d2", "regression", "actmix", [9, 8, 7, 6, 5, 16])),
    ("actmix-final", _result("d2", "regression", "relu", [10.0] * 6)),
    ("actmix-final", _result("d2", "regression", "xgboost", [8.6] * 6)),
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
    assert relu["test"]["test"] == "wilcoxon"
    assert (relu["test"]["wins"], relu["test"]["losses"]) == (5, 0)
    # 5 folds cannot reach p < 0.05 (2/2^5 = 0.0625): no p-value, the reason instead
    assert relu["test"]["p_value"] is None and relu["p_holm"] is None
    assert "2/2^5 = 0.0625" in relu["note"]
    assert relu["verdict"] == "actmix better on average, not tested (5 folds < 6)"
    gelu = _comparison(data, "d1", "gelu")  # on other folds: listed, never paired
    assert gelu["test"] is None and "same folds" in gelu["note"]
    accuracy = _comparison(data, "d3", "relu")
    assert (accuracy["test"]["wins"], accuracy["test"]["losses"]) == (0, 4)
    assert accuracy["test"]["better"] == "b"


def test_each_model_is_its_latest_run_never_the_best_by_test_score(report):
    _, data = report
    mixed = _comparison(data, "d2", "relu")
    # differences -1..-5, +6: W = 6 and exact p = 2 * 14 / 2^6 (see test_comparison)
    assert mixed["test"]["statistic"] == 6.0
    assert mixed["test"]["p_value"] == pytest.approx(28 / 64)
    actmix_runs = [run for run in data["leaderboards"]["d2"] if run["model"] == "actmix"]
    older, newer = sorted(actmix_runs, key=lambda run: run["started"])
    assert older["mean"] == pytest.approx(1.0) and not older["compared"]
    assert newer["mean"] == pytest.approx(8.5) and newer["compared"]
    assert mixed["reference"] == newer["run_id"]


def test_p_values_are_holm_corrected_within_a_dataset(report):
    _, data = report
    relu, xgboost = _comparison(data, "d2", "relu"), _comparison(data, "d2", "xgboost")
    # xgboost 8.6 on every fold: differences 0.4, -0.6, -1.6, -2.6, -3.6, 7.4, W = 1 + 6 = 7;
    # 18 subsets of ranks 1..6 sum to <= 7, so p = 2 * 18 / 64
    assert xgboost["test"]["statistic"] == 7.0
    assert xgboost["test"]["p_value"] == pytest.approx(36 / 64)
    # Holm over the two: 2 * 28/64 = 0.875 for the smaller, max(0.875, 36/64) for the larger
    assert relu["p_holm"] == pytest.approx(0.875)
    assert xgboost["p_holm"] == pytest.approx(0.875)
    assert relu["verdict"] == "no significant difference at 0.05 (Holm)"


def test_mean_ranks_and_friedman_over_three_datasets(report):
    _, data = report
    # ranks d1: xgboost 1, actmix 2, relu 3; d2: actmix 1, xgboost 2, relu 3; d3 (accuracy):
    # relu 1, xgboost 2, actmix 3. gelu is on d1 only (and on other folds there).
    assert data["mean_ranks"] == pytest.approx({"xgboost": 5 / 3, "actmix": 2.0, "relu": 7 / 3})
    assert list(data["mean_ranks"]) == ["xgboost", "actmix", "relu"]
    assert "gelu" in data["rank_note"]
    ranking = data["ranking"]
    # chi2 = 12 * 3 / (3 * 4) * ((5/3)^2 + 2^2 + (7/3)^2 - 3 * 4^2 / 4) = 2/3, df 2
    assert ranking["friedman_statistic"] == pytest.approx(2 / 3)
    assert ranking["friedman_p"] == pytest.approx(np.exp(-1 / 3))
    assert ranking["critical_difference"] == pytest.approx(2.343 * np.sqrt(12 / 18))


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
    # 3 fold plots, history, importance, critical-difference diagram
    assert page.count("data:image/png;base64,") == 3 + 2 + 1
    assert "0.0625" in page and "smallest possible two-sided p-value" in page
    assert "No run is chosen by its test score" in page
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


def test_verdict_follows_the_mean_difference_not_the_fold_wins(tmp_path, capsys):
    # 40 folds: actmix wins 21 by 0.1 and loses 19 by a lot, 1.47 RMSE worse on average
    loss = (1.47 * 40 + 21 * 0.1) / 19
    actmix = _result("d4", "regression", "actmix", [5.0 - 0.1] * 21 + [5.0 + loss] * 19)
    relu = _result("d4", "regression", "relu", [5.0] * 40)
    paths = [str(r.save_json(tmp_path / f"{r.model_name}.json")) for r in (actmix, relu)]
    out = tmp_path / "out"
    assert main(["report", "--results", *paths, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "report.json").read_text())
    comparison = _comparison(data, "d4", "relu")
    assert (comparison["test"]["wins"], comparison["test"]["losses"]) == (21, 19)
    assert comparison["test"]["mean_difference"] == pytest.approx(1.47)
    assert comparison["test"]["p_value"] < 0.05
    assert comparison["verdict"] == "relu better (Holm p < 0.05)"
    assert "d4: actmix vs relu: relu better" in printed
    assert "actmix better" not in printed


def test_result_files_are_ordered_by_time_not_by_test_score(tmp_path):
    newer = _result("d5", "regression", "actmix", [2.0, 2.1, 2.2, 2.3, 2.4, 2.5])
    older = _result("d5", "regression", "actmix", [0.5] * 6)  # better, and given last
    relu = _result("d5", "regression", "relu", [2.0] * 6)
    paths = [
        str(result.save_json(tmp_path / f"{name}.json"))
        for name, result in (("newer", newer), ("relu", relu), ("older", older))
    ]
    os.utime(paths[2], (1_000_000, 1_000_000))
    out = tmp_path / "out"
    assert main(["report", "--results", *paths, "--out", str(out)]) == 0
    data = json.loads((out / "report.json").read_text())
    comparison = _comparison(data, "d5", "relu")
    assert comparison["reference"] == paths[0]
    assert comparison["test"]["mean_difference"] == pytest.approx(0.25)
    assert comparison["test"]["better"] == "b"


def test_the_page_says_why_a_dataset_has_no_paired_tests_and_what_pruned_trials_are(report):
    from study.report._study_html import _why_untested

    out, _ = report
    page = (out / "report.html").read_text()
    # s1's Optuna trials are all complete: the page does not call pruned trials complete
    assert "count as complete" not in page
    assert "pruned ones (stopped early by ASHA) are left out" in page

    class Run:  # what _why_untested reads of a FinalRun
        def __init__(self, model: str) -> None:
            self.model = model

    assert "no actmix final run" in _why_untested([Run("relu")])
    assert "only actmix has final runs" in _why_untested([Run("actmix"), Run("actmix")])
    assert "same folds and data" in _why_untested([Run("actmix"), Run("relu")])


def test_counts_read_as_words():
    from study.report._render import plural

    assert (plural(1, "dataset"), plural(3, "dataset")) == ("1 dataset", "3 datasets")
