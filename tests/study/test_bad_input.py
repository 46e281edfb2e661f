"""Every kind of bad input stops with exit code 2 and one line, before Ray or any store."""

import os
import socket
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import study.run._runner  # imports Ray now: its log handler must not bind to one test's capture
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
    (tmp_path / "latin1.yaml").write_bytes("description: café\nmodel: relu\n".encode("latin-1"))
    (tmp_path / "one_class.csv").write_text("a,b,y\n" + "".join(f"{i},{i},x\n" for i in range(9)))
    (tmp_path / "infinite.csv").write_text(
        "a,b,y\n" + "".join(f"{i},{'inf' if i == 3 else i},{i}\n" for i in range(9))
    )


@pytest.fixture(autouse=True)
def _ray_must_not_start(monkeypatch):
    """Every check here runs before Ray: a study that starts it has checked too late."""

    def refuse(address):
        raise AssertionError(f"Ray started (address={address!r}) before the input was refused")

    monkeypatch.setattr(study.run._runner, "start_ray", refuse)


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
    # without --address a local Ray would start: this machine's GPUs are counted first
    (["run", "--gpus-per-trial", "1000"], "--gpus-per-trial: 1000 asked for, but this machine"),
    (["run", "--tracking-uri", "foo://bar"], "unknown MLflow tracking URI scheme 'foo'"),
    (["leaderboard", "--tracking-uri", "foo://bar"], "unknown MLflow tracking URI scheme 'foo'"),
    (["run", "--optuna-storage", "notaurl"], "--optuna-storage: 'notaurl' is not a database URL"),
    (["run", "--optuna-storage", "foo://bar"], "--optuna-storage: unknown database 'foo'"),
    (
        [
            "run",
            "--dataset",
            "csv:{tmp}/one_class.csv",
            "--target",
            "y",
            "--task",
            "classification",
        ],
        "needs at least two classes, but target 'y' has only ['x']",
    ),
    (
        ["run", "--dataset", "csv:{tmp}/infinite.csv", "--target", "y"],
        "infinite values in feature column(s) 'b' (1 rows)",
    ),
    (["run", "--space", "{tmp}/latin1.yaml"], "latin1.yaml: not UTF-8 text"),
    (["export-best", "--study", "s", "--out", "{tmp}/a_folder"], "--out: "),
    (["run", "--tracking-uri", "http://127.0.0.1:{port}"], "cannot reach MLflow tracking server"),
    (["run", "--address", "127.0.0.1:{port}"], "cannot reach Ray at 127.0.0.1:"),
    (["run", "--address", "ray://127.0.0.1:10001"], "Ray Client (ray://) is not supported"),
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


def _read_only_folder(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o500)
    request.addfinalizer(lambda: folder.chmod(0o700))  # so pytest can delete tmp_path
    if os.access(folder, os.W_OK):
        pytest.skip("running as root: a folder without write permission still takes writes")
    return folder


def _unwritable(tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> Path:
    """A path this process cannot create, of one kind."""
    if kind == "a file":
        (tmp_path / "a_file").write_text("not a folder\n")
        return tmp_path / "a_file"
    if kind == "under a file":
        (tmp_path / "a_file").write_text("not a folder\n")
        return tmp_path / "a_file" / "inside"
    if kind == "in a read-only folder":
        return _read_only_folder(tmp_path, request) / "inside"
    # sysfs refuses new files even to root (where chmod does not stop writes)
    if not sys.platform.startswith("linux") or not Path("/sys/kernel").is_dir():
        pytest.skip("needs Linux sysfs")
    return Path("/sys/kernel/actmix-test-inside")


PLACES = ["a file", "under a file", "in a read-only folder", "in sysfs"]
PROBLEMS = {
    "a file": "is a file, not a folder",
    "under a file": "is a file, not a folder",
    "in a read-only folder": "cannot write to",
    "in sysfs": "cannot write to /sys/kernel",
}


def _one_error_line(capsys, code: int, flag: str, problem: str) -> None:
    assert code == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("actmix-study: error:")]
    assert len(errors) == 1 and f"{flag}: " in errors[0] and problem in errors[0], stderr


@pytest.mark.parametrize("place", PLACES)
def test_a_store_that_cannot_be_written_is_refused_before_anything(
    tmp_path, capsys, request, place
):
    store = _unwritable(tmp_path, place, request)
    before = sorted(tmp_path.rglob("*"))
    code = main(["run", "--name", "bad", "--store", str(store), "--trials", "1"])
    _one_error_line(capsys, code, "--store", PROBLEMS[place])
    assert sorted(tmp_path.rglob("*")) == before  # no store folder, manifest or database


@pytest.mark.parametrize("place", ["in a read-only folder", "in sysfs"])
def test_export_best_into_an_unwritable_folder_is_refused_first(tmp_path, capsys, request, place):
    out = _unwritable(tmp_path, place, request) / "best.yaml"
    # no store at all: the --out check comes before MLflow is asked for the study
    code = main(["export-best", "--study", "s", "--out", str(out), "--store", str(tmp_path / "s")])
    _one_error_line(capsys, code, "--out", "cannot write to")
    assert not (tmp_path / "s").exists() and not out.exists()
