"""What users expect of a command line: --version, $MLFLOW_TRACKING_URI, strict JSON and CSV,
hints that can be pasted, and an exit code that tells a failed study apart (no Ray)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import shlex
from importlib import metadata
from pathlib import Path

import pytest

import study.cli
from study.cli import build_parser, main
from study.commands import print_outcome
from study.run import StudyOutcome
from study.store import DEFAULT_STORE, default_store_uris, store_flags
from study.tracking import (
    TAG_DATASET,
    TAG_METRIC,
    TAG_MODE,
    TAG_MODEL,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STUDY,
    client_for,
    open_study_run,
)

STUDY = "all-failed"


@pytest.fixture(scope="module")
def failed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one study whose two trials failed: one logged NaN, one nothing."""
    store = tmp_path_factory.mktemp("store")
    uri = default_store_uris(store)[0]
    experiment_id, parent = open_study_run(
        uri, STUDY, artifact_location=(store / "artifacts").as_uri(), params={}, tags={}
    )
    client = client_for(uri)
    for index, value in enumerate([float("nan"), None]):
        tags = {
            TAG_PARENT: parent,
            TAG_ROLE: "trial",
            TAG_STUDY: STUDY,
            TAG_DATASET: "power_plant",
            TAG_MODEL: "relu",
            TAG_METRIC: "val_rmse_mean",
            TAG_MODE: "min",
        }
        run_id = client.create_run(experiment_id, run_name=f"trial-{index:04d}", tags=tags)
        if value is not None:
            client.log_metric(run_id.info.run_id, "val_rmse_mean", value)
        client.set_terminated(run_id.info.run_id, status="FAILED")
    client.set_terminated(parent, status="FINISHED")
    return store


def _outcome(store: Path, *, best_value: float | None) -> StudyOutcome:
    return StudyOutcome(
        name=STUDY,
        experiment_id="0",
        parent_run_id="parent",
        tracking_uri=default_store_uris(store)[0],
        objective="val_rmse_mean",
        mode="min",
        counts={"finished": 0, "stopped": 0, "failed": 2, "running": 0},
        best_trial=None if best_value is None else "trial-0000",
        best_value=best_value,
    )


def test_version_prints_the_installed_version_and_exits_0(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"actmix-study {metadata.version('actmix-study')}\n"


def _leaf_parsers(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _leaf_parsers(sub, (*prefix, name))
            return
    yield prefix, parser


def _required_argv(parser: argparse.ArgumentParser) -> list[str]:
    argv: list[str] = []
    for action in parser._actions:
        if not action.option_strings and action.nargs != 0:
            argv.append("x")  # a positional: a study name, a suite file
        elif action.required:
            argv += [action.option_strings[0], "x"]
    for group in parser._mutually_exclusive_groups:
        if group.required:  # e.g. analyze --run | --model-file
            argv += [group._group_actions[0].option_strings[0], "x"]
    return argv


def test_every_tracking_uri_option_falls_back_to_the_environment(monkeypatch) -> None:
    seen: dict[str, argparse.Namespace] = {}
    commands: dict[str, list[str]] = {}

    def with_spy() -> argparse.ArgumentParser:
        parser = build_parser()
        for path, leaf in _leaf_parsers(parser):
            if any(action.dest == "tracking_uri" for action in leaf._actions):
                name = " ".join(path)
                leaf.set_defaults(handler=lambda args, name=name: seen.update({name: args}) or 0)
                commands[name] = [*path, *_required_argv(leaf)]
        return parser

    monkeypatch.setattr(study.cli, "build_parser", with_spy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    with_spy()  # finds the commands
    assert {"run", "cv", "leaderboard", "export-best", "ui", "report", "suite run"} <= set(commands)
    for name, argv in commands.items():
        assert main(argv) == 0
        assert seen[name].tracking_uri == "http://mlflow.example:5000", name
        assert main([*argv, "--tracking-uri", "sqlite:///given.db"]) == 0
        assert seen[name].tracking_uri == "sqlite:///given.db", name  # the flag wins
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert main(commands["leaderboard"]) == 0
    assert seen["leaderboard"].tracking_uri is None


def test_leaderboard_json_is_strict_json_and_reads_the_environment_store(
    failed_store: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", default_store_uris(failed_store)[0])
    # --store names an empty folder: only the environment can lead to the trials
    code = main(["leaderboard", "--study", STUDY, "--format", "json", "--store", str(tmp_path)])
    assert code == 0
    text = capsys.readouterr().out

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    records = json.loads(text, parse_constant=refuse)
    assert sorted(r["trial"] for r in records) == ["trial-0000", "trial-0001"]
    assert [r["value"] for r in records] == [None, None]
    assert [r["std"] for r in records] == [None, None]


def test_leaderboard_csv_has_one_line_per_trial_and_no_blank_row(
    failed_store: Path, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code = main(["leaderboard", "--study", STUDY, "--format", "csv", "--store", str(failed_store)])
    assert code == 0
    text = capsys.readouterr().out
    assert text.endswith("\n") and not text.endswith("\n\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["rank", "trial", "status"]
    assert len(rows) == 3 and all(rows)


def test_a_study_in_which_every_trial_failed_exits_1(failed_store: Path, capsys) -> None:
    code = print_outcome(_outcome(failed_store, best_value=None), store=str(failed_store), uri=None)
    assert code == 1
    summary = capsys.readouterr().out.splitlines()[-1]
    assert f"study {STUDY}: no trial finished;" in summary and "2 failed" in summary
    code = print_outcome(_outcome(failed_store, best_value=4.0), store=str(failed_store), uri=None)
    assert code == 0


def _hints(text: str) -> list[list[str]]:
    return [shlex.split(hint) for hint in re.findall(r"`(actmix-study [^`]*)`", text)]


@pytest.mark.parametrize(
    ("store", "uri", "flags"),
    [
        (DEFAULT_STORE, None, ""),
        (DEFAULT_STORE, f"sqlite:///{Path(DEFAULT_STORE).resolve() / 'mlflow.db'}", ""),
        ("my runs", None, " --store 'my runs'"),
        (DEFAULT_STORE, "http://mlflow:5000", " --tracking-uri http://mlflow:5000"),
    ],
)
def test_store_flags_are_empty_only_for_the_defaults(store, uri, flags) -> None:
    assert store_flags(store=store, uri=uri) == flags


def test_end_of_run_hints_paste_with_the_store_and_tracking_uri(failed_store: Path, capsys) -> None:
    store, uri = str(failed_store.parent / "my store"), "http://mlflow.example:5000"
    print_outcome(_outcome(failed_store, best_value=4.0), store=store, uri=uri)
    hints = _hints(capsys.readouterr().out)
    assert [hint[1] for hint in hints] == ["ui", "report"]
    for hint in hints:
        args = build_parser().parse_args(hint[1:])
        assert (args.store, args.tracking_uri) == (store, uri)


def test_the_resume_hint_of_an_existing_study_names_its_store(tmp_path: Path, capsys) -> None:
    store = tmp_path / "my store"
    (store / "studies").mkdir(parents=True)
    (store / "studies" / "taken.json").write_text("{}")
    code = main(["run", "--name", "taken", "--store", str(store), "--trials", "1"])
    assert code == 2
    (hint,) = _hints(capsys.readouterr().err)
    args = build_parser().parse_args(hint[1:])
    assert (args.command, args.name, args.store) == ("resume", "taken", str(store))


@pytest.mark.parametrize(
    ("given", "expected"),
    [([], "recorded"), (["--address", "local"], None), (["--address", "auto"], "auto")],
)
def test_resume_takes_the_ray_to_resume_on(monkeypatch, capsys, given, expected):
    """The Ray a study started on may be gone (a `suite run --jobs N` parent's): `resume`
    can name another, or a local one."""
    import study.run

    seen = {}

    def resume_study(name, *, store, address):
        seen.update(name=name, store=store, address=address)
        raise ValueError("stopped here")

    monkeypatch.setattr(study.run, "resume_study", resume_study)
    assert main(["resume", "s1", *given]) == 2
    assert (seen["name"], seen["address"]) == ("s1", expected)
    assert study.run.RECORDED_ADDRESS == "recorded"
    capsys.readouterr()
