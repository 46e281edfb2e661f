"""Every kind of bad input stops with exit code 2 and one line, before Ray or any store."""

import socket

import pytest
from mlflow.tracking import MlflowClient

import study.runner  # noqa: F401 - imports Ray now: its log handler must not bind to one test's capture
from study.cli import main

SPACE_PROBLEMS = {
    "malformed": ("params: [unclosed\n", "cannot parse"),
    "unknown_distribution": (
        "model: relu\nparams:\n  train.lr: {normal: [0.0, 1.0]}\n",
        "unknown distribution 'normal'",
    ),
    "low_above_high": (
        "model: relu\nparams:\n  train.lr: {uniform: [0.1, 0.01]}\n",
        "low 0.1 > high 0.01",
    ),
    "log_from_zero": (
        "model: relu\nparams:\n  train.lr: {loguniform: [0.0, 0.01]}\n",
        "loguniform needs low > 0",
    ),
}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "no_target.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp_path / "text_target.csv").write_text("a,y\n1,x\n2,y\n3,z\n")
    (tmp_path / "a_folder").mkdir()
    for name, (text, _) in SPACE_PROBLEMS.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    (tmp_path / "unknown_model.yaml").write_text("model: resnet\nmlp: {widths: [8]}\n")


ROWS = [
    (["run", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["run", "--model", "nope"], "unknown model 'nope'"),
    (["run", "--dataset", "csv:{tmp}/missing.csv", "--target", "y"], "missing.csv"),
    (["run", "--dataset", "csv:{tmp}/a_folder", "--target", "y"], "a_folder"),
    (["run", "--dataset", "csv:{tmp}/empty.csv", "--target", "y"], "is empty"),
    (["run", "--dataset", "csv:{tmp}/no_target.csv", "--target", "y"], "target column 'y'"),
    (
        ["run", "--dataset", "csv:{tmp}/text_target.csv", "--target", "y", "--task", "regression"],
        "needs a numeric target",
    ),
    *[
        (["run", "--space", f"{{tmp}}/{name}.yaml"], message)
        for name, (_, message) in SPACE_PROBLEMS.items()
    ],
    (["run", "--trials", "0"], "--trials: must be >= 1, got 0"),
    (["run", "--trials", "-3"], "--trials: must be >= 1, got -3"),
    (["run", "--folds", "1"], "--folds: must be >= 2, got 1"),
    (["run", "--epochs", "0"], "--epochs: must be >= 1, got 0"),
    (["run", "--seed", "-1"], "--seed: must be >= 0, got -1"),
    (["run", "--split-seed", "-1"], "--split-seed: must be >= 0, got -1"),
    (["run", "--reduction-factor", "1"], "--reduction-factor: must be > 1, got 1.0"),
    (["run", "--gpus-per-trial", "1"], "the Ray cluster has 0 GPUs"),
    (["run", "--tracking-uri", "http://127.0.0.1:{port}"], "cannot reach MLflow tracking server"),
    (["run", "--address", "127.0.0.1:{port}"], "cannot reach Ray at 127.0.0.1:"),
    (["cv", "--config", "{tmp}/unknown_model.yaml"], "unknown model 'resnet'"),
]


@pytest.mark.parametrize(("argv", "message"), ROWS, ids=[" ".join(r[0][:3]) for r in ROWS])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    _files(tmp_path)
    store = tmp_path / "store"
    filled = [a.format(tmp=tmp_path, port=_closed_port()) for a in argv]
    extra = ["--store", str(store), "--name", "bad"] if filled[0] == "run" else []
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main([*filled, *extra]))
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("actmix-study: error:")]
    assert len(errors) == 1 and message in errors[0], stderr
    assert "Traceback" not in stderr
    # nothing half-done: no study manifest, no MLflow experiment, no Optuna study
    assert not (store / "studies").exists()
    assert not (store / "optuna.db").exists()
    if (store / "mlflow.db").exists():
        assert (
            MlflowClient(f"sqlite:///{store / 'mlflow.db'}").get_experiment_by_name("bad") is None
        )
