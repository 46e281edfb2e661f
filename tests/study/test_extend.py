"""`actmix-study extend`: a study grown by N trials, in-process and after a killed driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from study.cli import main
from study.tracking import best_per_model
from tests.study.processes import signal_when_ready, study_command

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TINY = ["--folds", "2", "--epochs", "2", "--scheduler", "none", "--seed", "3"]


def _trials(store: Path, name: str) -> tuple[MlflowClient, list, list]:
    """The study's MLflow parent and trial runs (by name) and its Optuna trials."""
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    trials = sorted(
        (r for r in runs if r.data.tags.get("actmix.role") == "trial"),
        key=lambda r: r.info.run_name,
    )
    (parent,) = [r for r in runs if r.data.tags.get("actmix.role") == "study"]
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{store / 'optuna.db'}")
    return client, [parent, *trials], study.trials


@pytest.fixture(scope="module")
def grown(local_ray, tmp_path_factory) -> tuple[Path, set[str]]:  # noqa: ARG001
    """A store with study "grow": 3 trials, then extended by 2 (in this process); and the
    run ids of the first three."""
    store = tmp_path_factory.mktemp("extend") / "store"
    argv = ["run", "--name", "grow", "--trials", "3", *TINY, "--store", str(store)]
    assert main(argv) == 0
    _, (_, *before), _ = _trials(store, "grow")
    assert main(["extend", "grow", "--trials", "2", "--store", str(store)]) == 0
    return store, {run.info.run_id for run in before}


def test_bad_extend_requests_say_why_and_write_nothing(grown, capsys) -> None:
    grown, _ = grown
    manifest = (grown / "studies" / "grow.json").read_text()
    with pytest.raises(SystemExit):
        main(["extend", "grow", "--store", str(grown)])  # --trials is required
    assert main(["extend", "grow", "--trials", "0", "--store", str(grown)]) == 2
    assert main(["extend", "nope", "--trials", "2", "--store", str(grown)]) == 2
    err = capsys.readouterr().err
    assert "--trials must be a positive whole number" in err
    assert "no study named 'nope'" in err and "known studies: grow" in err
    assert (grown / "studies" / "grow.json").read_text() == manifest


def test_extend_adds_exactly_n_new_configurations_to_the_same_study(grown) -> None:
    store, before = grown
    _, (parent, *runs), trials = _trials(store, "grow")
    assert [r.info.run_name for r in runs] == [f"trial-{i:04d}" for i in range(5)]
    assert {r.info.run_id for r in runs[:3]} == before  # the first launch's runs stay
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in runs)
    # one Optuna study: the sampler continued over the whole history, nothing repeated
    assert [t.number for t in trials] == list(range(5))
    assert all(t.state.name == "COMPLETE" for t in trials)
    configs = {json.dumps(t.params, sort_keys=True) for t in trials}
    assert len(configs) == 5
    by_run = {r.info.run_name: r for r in runs}
    for trial in trials:  # each new run logs its own Optuna trial's configuration
        run = by_run[f"trial-{trial.number:04d}"]
        assert run.data.metrics["val_rmse_mean"] == pytest.approx(trial.value)
    # the parent says what it became, and the leaderboard counts all its trials
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["actmix.trials"] == "5" and "extension.1" in parent.data.tags
    assert parent.data.metrics["trials_finished"] == 5
    (row,) = best_per_model(f"sqlite:///{store / 'mlflow.db'}").itertuples()
    assert row.budget == "5x2x2"
    # the study report's history and export-best see all of it as one study
    from study.report import load_history
    from study.tracking import export_best

    uri = f"sqlite:///{store / 'mlflow.db'}"
    history = load_history(uri, "grow", storage=f"sqlite:///{store / 'optuna.db'}")
    assert dict(history.states) == {"COMPLETE": 5}
    _, top = export_best(uri, "grow", store.parent / "top.yaml", top_k=5)
    assert len(top["ensemble"]) == 5
    recorded = json.loads((store / "studies" / "grow.json").read_text())
    assert [e["trials"] for e in recorded["extensions"]] == [2]
    assert recorded["request"]["trials"] == 3  # the first launch's request stays


def test_an_extension_whose_driver_is_killed_resumes_to_exactly_n_more(
    grown, tmp_path: Path
) -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    store, _ = grown  # 5 trials: 3, then 2 more
    extend = study_command("extend", "grow", "--trials", "3", "--store", str(store))
    code, _ = signal_when_ready(
        extend,
        log=tmp_path / "extend.log",
        env=env,
        ready=lambda output: "finished val_rmse_mean" in output,
        what="the extension's first finished trial",
        stop=signal.SIGKILL,
        grace=30,
    )
    assert code == -signal.SIGKILL
    resumed = subprocess.run(
        study_command("resume", "grow", "--store", str(store)),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, (parent, *runs), trials = _trials(store, "grow")
    assert [r.info.run_name for r in runs] == [f"trial-{i:04d}" for i in range(8)]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.tags["trial_id"] for r in runs}) == 8
    trained = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(trained) == 8
    assert len({json.dumps(t.params, sort_keys=True) for t in trained}) == 8
    assert parent.info.status == "FINISHED" and parent.data.tags["actmix.trials"] == "8"
