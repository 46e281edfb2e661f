"""`actmix-study ui`: the MLflow server it starts never outlives it."""

import os
import signal

import pytest

from tests.study.processes import (
    answers,
    descendants,
    free_port,
    kill_survivors,
    start_in_own_group,
    stop_group,
    study_command,
    wait_until,
)

pytestmark = pytest.mark.slow


def test_the_server_dies_with_a_sigkilled_ui_command(tmp_path):
    port = free_port()
    health = f"http://127.0.0.1:{port}/health"
    log = tmp_path / "ui.log"
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ui = start_in_own_group(
        study_command("ui", "--tracking-uri", store, "--port", str(port)), log=log
    )
    server: dict[int, int] = {}
    try:
        wait_until(lambda: answers(health) or ui.poll() is not None, 180, "the MLflow server")
        assert ui.poll() is None, log.read_text()
        server = descendants(ui.pid)
        # the supervisor, `mlflow server` and its uvicorn
        assert len(server) >= 3, server

        os.kill(ui.pid, signal.SIGKILL)  # no chance to clean up
        ui.wait()
        assert not kill_survivors(server, wait=45), "the MLflow server outlived `ui`"
        assert not answers(health)
    finally:
        stop_group(ui)
        kill_survivors(server, wait=0)  # when the test failed: found through `ui`, not by name


def test_the_dashboard_serves_the_stores_studies_and_stops_with_the_command(tmp_path):
    import json
    import urllib.request

    import optuna

    store = tmp_path / "store"
    store.mkdir()
    optuna.create_study(study_name="demo", storage=f"sqlite:///{store / 'optuna.db'}")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/studies"
    log = tmp_path / "dashboard.log"
    command = study_command("dashboard", "--store", str(store), "--port", str(port))
    dashboard = start_in_own_group(command, log=log)
    server: dict[int, int] = {}
    try:
        wait_until(lambda: answers(url) or dashboard.poll() is not None, 120, "optuna-dashboard")
        assert dashboard.poll() is None, log.read_text()
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        # the key is study_summaries in 0.x, to become studies (the dashboard's own TODO)
        studies = body.get("studies", body.get("study_summaries"))
        assert [study["study_name"] for study in studies] == ["demo"]
        assert f"optuna-dashboard at http://127.0.0.1:{port}" in log.read_text()
        server = descendants(dashboard.pid)
        dashboard.send_signal(signal.SIGINT)  # Ctrl-C
        dashboard.wait(timeout=60)
        assert not kill_survivors(server, wait=45), "optuna-dashboard outlived the command"
        assert not answers(url)
    finally:
        stop_group(dashboard)
        kill_survivors(server, wait=0)


def test_the_dashboard_says_what_is_missing(tmp_path, capsys, monkeypatch):
    from study.cli import main

    assert main(["dashboard", "--store", str(tmp_path / "none")]) == 2
    assert "no Optuna storage at" in capsys.readouterr().err
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert main(["dashboard", "--optuna-storage", storage]) == 2
    err = capsys.readouterr().err
    assert "optuna-dashboard is not installed: pip install 'actmix-study[dashboard]'" in err
