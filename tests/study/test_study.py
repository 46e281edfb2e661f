"""End-to-end studies on a real local Ray, with real MLflow and Optuna SQLite stores."""

import contextlib
import json
import math
import re
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from actmix.analysis import load_model
from actmix.config import RunConfig, config_from_dict, run_config_to_dict
from study.cli import main
from study.space import baseline_point, config_from_sample, load_space
from study.tracking import study_trials

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _runs(uri: str, study: str):
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("actmix.role") == "study"]
    children = [r for r in runs if r.data.tags.get("actmix.role") == "trial"]
    return client, parents, children


@pytest.fixture(scope="module")
def actmix_study(local_ray, tmp_path_factory):  # noqa: ARG001 - needs Ray running
    store = tmp_path_factory.mktemp("store")
    out = tmp_path_factory.mktemp("out") / "stdout.txt"
    with out.open("w") as stdout, contextlib.redirect_stdout(stdout):
        code = main(
            [
                "run",
                "--name",
                "tiny",
                "--trials",
                "4",
                "--folds",
                "2",
                "--epochs",
                "4",
                "--grace-period",
                "2",
                "--max-concurrent",
                "2",
                "--store",
                str(store),
            ]
        )
    assert code == 0
    # the summary says how busy the trial slots were (Ray start-up counts against it)
    lines = out.read_text().strip().splitlines()
    summary = lines[-1]
    # the seed default's rank is said in words, as the README's sample shows it
    assert re.fullmatch(r"trial-0000 is the seed default configuration \(rank \d+\)", lines[-2])
    share = re.search(r"trials trained (\d+)% of the time their slots were open", summary)
    assert share and 0 < int(share.group(1)) <= 100, summary
    return store, f"sqlite:///{store / 'mlflow.db'}"


def test_study_has_one_parent_and_one_child_per_trial(actmix_study):
    store, uri = actmix_study
    client, parents, children = _runs(uri, "tiny")
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert 0 < parent.data.metrics["slot_utilisation"] <= 1
    for key in (
        "dataset",
        "model",
        "space_file",
        "space_sha256",
        "sampler",
        "scheduler",
        "trials",
        "git_commit",
        "version.torch",
    ):
        assert key in parent.data.params, key
    assert sorted(c.info.run_name for c in children) == [f"trial-{i:04d}" for i in range(4)]
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["trial_id"]
        assert child.info.status == "FINISHED"  # those stopped early as well, tagged
        assert "train.lr" in child.data.params
        history = client.get_metric_history(child.info.run_id, "val_rmse_mean")
        assert [m.step for m in history][:2] == [0, 1]
        if "stopped_early" not in child.data.tags:
            assert "fold0_val_rmse" in child.data.metrics and "fold1_val_rmse" in child.data.metrics
            assert math.isfinite(child.data.metrics["val_rmse_std"])
            artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
            assert {"config.yaml", "mixing_weights.png", "model.pt"} <= artifacts
            model = load_model(client.download_artifacts(child.info.run_id, "model.pt"))
            assert model.members == 1 and model.spec["activation"] == "actmix"
        else:
            assert child.data.tags.get("stopped_early") == "true"
    # the Optuna storage holds the same trials, none left running
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    states = [t.state.name for t in study.trials]
    assert len(states) == 4 and "RUNNING" not in states


def test_seed_default_configuration_is_trial_zero(actmix_study):
    _, uri = actmix_study
    client, _, children = _runs(uri, "tiny")
    first = next(c for c in children if c.info.run_name == "trial-0000")
    logged = yaml.safe_load(
        Path(client.download_artifacts(first.info.run_id, "config.yaml")).read_text()
    )
    seed_default = RunConfig(model="actmix")
    space = load_space("actmix")
    expected = config_from_sample(
        space, baseline_point(space, seed_default, epochs=4), base=seed_default, epochs=4
    )
    assert logged == run_config_to_dict(expected)
    assert logged["mlp"]["widths"] == [128, 128] and logged["train"]["lr"] == 0.001


def test_leaderboard_order_follows_the_metric(actmix_study, capsys):
    store, uri = actmix_study
    frame = study_trials(uri, "tiny")
    values = [v for v in frame["value"] if math.isfinite(v)]
    assert values == sorted(values)
    assert list(frame["rank"]) == [1, 2, 3, 4]
    capsys.readouterr()
    assert main(["leaderboard", "--study", "tiny", "--store", str(store), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["trial"] for r in rows] == list(frame["trial"])


def test_export_best_round_trips_through_cv(actmix_study, tmp_path, capsys):
    store, uri = actmix_study
    best = tmp_path / "best.yaml"
    assert main(["export-best", "--study", "tiny", "--store", str(store), "--out", str(best)]) == 0
    exported = yaml.safe_load(best.read_text())
    top = study_trials(uri, "tiny")
    top = top[top["status"] == "FINISHED"].iloc[0]
    assert exported["provenance"]["run_id"] == top["run_id"]
    client = MlflowClient(tracking_uri=uri)
    trial_config = yaml.safe_load(
        Path(client.download_artifacts(top["run_id"], "config.yaml")).read_text()
    )
    for section in ("model", "mlp", "train"):
        assert exported[section] == trial_config[section]
    out = tmp_path / "final.json"
    capsys.readouterr()
    assert main(["cv", "--config", str(best), "--folds", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rebuilt = config_from_dict(RunConfig, result["config"])
    assert run_config_to_dict(rebuilt)["mlp"] == exported["mlp"]
    assert result["config"]["train"] == exported["train"]
    assert result["splits"]["seed"] == 1  # the study split with seed 0: the final CV must not
    finals = client.search_runs(
        [client.get_experiment_by_name("tiny").experiment_id], "tags.stage = 'final'"
    )
    assert len(finals) == 1 and "test_rmse_mean" in finals[0].data.metrics
    # ... and the report reads the final run and the study's Optuna history back
    report = tmp_path / "report"
    assert main(["report", "--study", "tiny", "--store", str(store), "--out", str(report)]) == 0
    data = json.loads((report / "report.json").read_text())
    (final,) = data["leaderboards"]["power_plant"]
    assert (final["model"], final["n"]) == ("actmix", 2)
    assert final["mean"] == pytest.approx(result["summary"]["test_rmse"]["mean"])
    (history,) = data["studies"]
    assert sum(history["states"].values()) == 4
    assert (report / "history-tiny.png").is_file()


def test_asha_stops_a_hopeless_trial(local_ray, tmp_path):  # noqa: ARG001
    space = tmp_path / "space.yaml"
    # a learning rate of 1e-7 cannot compete with the baseline at the first rung
    space.write_text(
        "description: lr only\nmodel: relu\nparams:\n  train.lr: {choice: [0.001, 1.0e-7]}\n"
    )
    store = tmp_path / "store"
    code = main(
        [
            "run",
            "--name",
            "asha",
            "--space",
            str(space),
            "--trials",
            "4",
            "--folds",
            "2",
            "--epochs",
            "6",
            "--grace-period",
            "1",
            "--reduction-factor",
            "2",
            "--max-concurrent",
            "1",
            "--seed",
            "3",
            "--store",
            str(store),
        ]
    )
    assert code == 0
    _, _, children = _runs(f"sqlite:///{store / 'mlflow.db'}", "asha")
    assert {c.info.status for c in children} == {"FINISHED"}  # stopped early is no failure
    stopped = [c for c in children if c.data.tags.get("stopped_early")]
    assert stopped, [(c.info.run_name, c.data.params) for c in children]
    baseline = next(c for c in children if c.info.run_name == "trial-0000")
    assert baseline.info.status == "FINISHED" and "stopped_early" not in baseline.data.tags
    assert not [c for c in children if c.info.status == "FAILED"]
    for child in stopped:
        assert child.data.tags["stopped_early"] == "true"
        assert child.data.params["train.lr"] == "1e-07"


def test_a_packed_study_keeps_every_configuration_its_own_trial_and_asha_spans_packs(
    local_ray,  # noqa: ARG001
    tmp_path,
):
    space = tmp_path / "space.yaml"
    # width is shared inside a pack; a learning rate of 1e-7 loses at the first rungs
    space.write_text(
        "description: packs\nmodel: relu\nparams:\n"
        "  train.lr: {choice: [0.001, 1.0e-7]}\n  mlp.width: {choice: [32, 128]}\n"
        "  mlp.depth: {fixed: 2}\n"
    )
    store = tmp_path / "store"
    argv = ["run", "--name", "packed", "--space", str(space), "--pack", "3", "--trials", "6"]
    argv += ["--folds", "2", "--epochs", "6", "--grace-period", "1", "--reduction-factor", "2"]
    argv += ["--max-concurrent", "1", "--seed", "3", "--store", str(store)]
    assert main(argv) == 0
    client, parents, children = _runs(f"sqlite:///{store / 'mlflow.db'}", "packed")
    assert parents[0].data.params["pack"] == "3"
    study = optuna.load_study(study_name="packed", storage=f"sqlite:///{store / 'optuna.db'}")
    trials = study.trials
    runs = {child.info.run_name: child for child in children}
    # one Optuna trial and one MLflow run per configuration, as if unpacked
    assert sorted(runs) == [f"trial-{i:04d}" for i in range(6)]
    for trial in trials:
        run = runs[f"trial-{trial.number:04d}"]
        assert run.info.status == "FINISHED", trial.number
        stopped = run.data.tags.get("stopped_early") == "true"
        assert stopped == (trial.state.name == "PRUNED"), trial.number
        expected = {k: str(v) for k, v in trial.params.items()}
        assert run.data.params == {**expected, "mlp.depth": "2"}  # and the fixed param
        if trial.state.name == "COMPLETE":
            assert run.data.metrics["val_rmse_mean"] == pytest.approx(trial.value)
            model = load_model(client.download_artifacts(run.info.run_id, "model.pt"))
            assert model.members == 1 and model.spec["widths"] == [trial.params["mlp.width"]] * 2
    packs = [trials[:3], trials[3:]]
    for pack in packs:  # pack-mates share the network
        assert len({t.params["mlp.width"] for t in pack}) == 1
    assert {t.state.name for t in trials} == {"COMPLETE", "PRUNED"}
    # the packs ran one after the other: ASHA's rule over all six configurations in that
    # order stops exactly the pruned ones (pack 1 was judged against pack 0's values)
    from study.run._rungs import Rungs, RungSpec, rung_records

    spec = RungSpec("actmix-rungs-packed", 1, 2.0, 7, "min")
    rungs = Rungs(spec)
    stopped = set()
    for pack in packs:
        for iteration in range(1, 7):
            for trial in pack:
                value = trial.intermediate_values.get(iteration)
                if trial.number in stopped or value is None:
                    continue
                if rungs.decide(trial.number, iteration, value):
                    stopped.add(trial.number)
    assert stopped == {t.number for t in trials if t.state.name == "PRUNED"}
    assert set(rung_records(spec)[1.0]) == set(range(6))
    # one pack at a time on 2 CPUs: it took the free one as a second thread, from epoch 2
    history = client.get_metric_history(runs["trial-0000"].info.run_id, "threads")
    assert [m.value for m in sorted(history, key=lambda m: m.step)][:2] == [1, 2]


def test_xgboost_study(local_ray, tmp_path):  # noqa: ARG001
    store = tmp_path / "store"
    assert (
        main(
            [
                "run",
                "--name",
                "xgb",
                "--model",
                "xgboost",
                "--trials",
                "2",
                "--folds",
                "2",
                "--store",
                str(store),
            ]
        )
        == 0
    )
    _, parents, children = _runs(f"sqlite:///{store / 'mlflow.db'}", "xgb")
    assert len(parents) == 1 and len(children) == 2
    for child in children:
        assert child.info.status == "FINISHED"
        assert "fold1_val_rmse" in child.data.metrics
        assert "xgboost.learning_rate" in child.data.params or child.info.run_name == "trial-0000"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "nope"], "unknown dataset 'nope'"),
        (["--model", "nope"], "unknown model 'nope'"),
        (
            ["--gpus-per-trial", "0.5"],
            "--gpus-per-trial 0.5 asked for, but the Ray cluster has 0 GPUs",
        ),
        (["--tracking-uri", "http://127.0.0.1:9"], "cannot reach MLflow tracking server"),
    ],
)
def test_bad_run_input_writes_nothing(local_ray, tmp_path, capsys, argv, message):  # noqa: ARG001
    store = tmp_path / "store"
    code = main(["run", "--name", "bad", "--store", str(store), *argv])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (store / "studies").exists()
    if (store / "mlflow.db").exists():
        client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
        assert client.get_experiment_by_name("bad") is None


def test_trainable_activation_trials_log_their_learned_curves(local_ray, tmp_path):  # noqa: ARG001
    store = tmp_path / "store"
    assert (
        main(
            [
                "run",
                "--name",
                "prelu",
                "--model",
                "prelu",
                "--trials",
                "1",
                "--folds",
                "2",
                "--epochs",
                "2",
                "--store",
                str(store),
            ]
        )
        == 0
    )
    client, _, children = _runs(f"sqlite:///{store / 'mlflow.db'}", "prelu")
    artifacts = {a.path for a in client.list_artifacts(children[0].info.run_id)}
    assert {"learned_curves.png", "model.pt", "config.yaml"} <= artifacts
