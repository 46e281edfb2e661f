"""Environment defaults: set once at CLI start, never over the user's own settings."""

from __future__ import annotations

import os

import pytest

from study.cli import main
from study.system import ENVIRONMENT_DEFAULTS, apply_environment_defaults


def test_defaults_fill_only_what_the_user_left_unset():
    environ = {"RAY_USAGE_STATS_ENABLED": "1", "PATH": "/bin"}
    apply_environment_defaults(environ)
    assert environ["RAY_USAGE_STATS_ENABLED"] == "1"
    assert environ["PATH"] == "/bin"
    assert environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "1"
    assert environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert set(ENVIRONMENT_DEFAULTS) <= set(environ)


def test_the_cli_applies_them_before_any_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ENVIRONMENT_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    assert main(["models"]) == 0
    assert "actmix" in capsys.readouterr().out
    for name, value in ENVIRONMENT_DEFAULTS.items():
        assert os.environ[name] == value, name


def test_a_new_store_is_created_without_library_chatter(tmp_path):
    """A fresh process (as a user's command is) creating a study's stores prints none of
    MLflow's "Creating initial MLflow database tables" or Optuna's "A new study created"."""
    import subprocess
    import sys

    script = (
        "from study.system import apply_environment_defaults\n"
        "apply_environment_defaults()\n"
        "from study.run import create_schemas\n"
        f"create_schemas('sqlite:///{tmp_path}/mlflow.db', 'sqlite:///{tmp_path}/optuna.db')\n"
        "import optuna\n"
        f"optuna.create_study(storage='sqlite:///{tmp_path}/optuna.db', study_name='s')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    output = done.stdout + done.stderr
    assert "Creating initial MLflow database tables" not in output, output
    assert "A new study created" not in output, output
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "optuna.db").is_file()
