"""``analyze``, ``diagnose`` and ``report`` on a hand-built MLflow store (no Ray)."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from actmix.analysis import save_model
from actmix.mlp import MLP
from study.commands import add_analysis_commands


def _main(argv: list[str]) -> int:
    """What ``study.cli.main`` does with these commands: user errors are exit code 2."""
    parser = argparse.ArgumentParser(prog="actmix-study")
    add_analysis_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"actmix-study: error: {error}")
        return 2


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite MLflow store with one experiment whose artifacts stay in the temp folder."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("demo", artifact_location=(root / "art").as_uri())
    return uri, client, experiment, root


def _actmix_model() -> MLP:
    model = MLP(3, 1, (4, 4), "actmix", seed=0)
    with torch.no_grad():
        for layer in model.activation_layers():
            layer.logits.normal_(generator=torch.Generator().manual_seed(3))
    return model


def test_analyze_model_file(tmp_path, capsys):
    path = save_model(_actmix_model(), tmp_path / "model.pt")
    assert _main(["analyze", "--model-file", str(path), "--out", str(tmp_path / "out")]) == 0
    statistics = json.loads((tmp_path / "out" / "layer_statistics.json").read_text())
    assert len(statistics["layers"]) == 2
    assert "8 files" in capsys.readouterr().out


def test_analyze_run_downloads_the_model_and_logs_the_figures(store, tmp_path):
    uri, client, experiment, _ = store
    run_id = client.create_run(experiment, run_name="trial-0000").info.run_id
    client.log_artifact(run_id, str(save_model(_actmix_model(), tmp_path / "model.pt")))
    code = _main(
        ["analyze", "--run", run_id, "--tracking-uri", uri, "--out", str(tmp_path / "out")]
    )
    assert code == 0
    logged = {entry.path for entry in client.list_artifacts(run_id, "analysis")}
    assert "analysis/layer_statistics.json" in logged
    assert "analysis/mixing_heatmaps.png" in logged


def test_analyze_run_without_a_model_says_so(store, tmp_path, capsys):
    uri, client, experiment, _ = store
    run_id = client.create_run(experiment, run_name="trial-0001").info.run_id
    code = _main(["analyze", "--run", run_id, "--tracking-uri", uri, "--out", str(tmp_path)])
    assert code == 2
    assert "has no model.pt artifact" in capsys.readouterr().out


def test_analyze_unknown_run_and_missing_file(store, tmp_path, capsys):
    uri = store[0]
    assert _main(["analyze", "--run", "0" * 32, "--tracking-uri", uri]) == 2
    assert "no MLflow run" in capsys.readouterr().out
    assert _main(["analyze", "--model-file", str(tmp_path / "absent.pt")]) == 2
    assert "model file not found" in capsys.readouterr().out


def test_diagnose_quick_writes_and_logs(store, tmp_path, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # the new experiment's artifacts land under ./mlruns
    uri = store[0]
    out = tmp_path / "diag"
    argv = ["diagnose", "--activations", "relu,actmix", "--quick", "--out", str(out)]
    assert _main([*argv, "--tracking-uri", uri]) == 0
    assert (out / "diagnostics.md").is_file() and (out / "capacity.png").is_file()
    assert "logged to MLflow" in capsys.readouterr().out
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("actmix-diagnostics")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["activations"] == "relu,actmix"
    assert "diagnostics.json" in {entry.path for entry in client.list_artifacts(run.info.run_id)}


def test_diagnose_unknown_activation_is_a_usage_error(capsys):
    assert _main(["diagnose", "--activations", "relu,nope", "--quick"]) == 2
    assert "unknown activation 'nope'" in capsys.readouterr().out
