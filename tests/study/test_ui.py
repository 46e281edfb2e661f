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
