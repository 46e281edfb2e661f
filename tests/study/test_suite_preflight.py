"""``suite run`` checks every dataset and space before Ray starts or the store is written:
a bad dataset (even the last one) stops it in one line, with nothing left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.cli import main

GOOD_CSV = "good.csv"


def _frame(n: int, labels: list[str] | None = None, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": x[:, 0] - x[:, 1]})
    if labels is not None:
        frame["label"] = labels
    return frame


def _suite(datasets: str, models: str = "[relu]", extra: str = "") -> str:
    return (
        f"name: pre\ndatasets: {datasets}\nmodels: {models}\n"
        f"protocol: {{outer_folds: 3, inner_folds: 2, seeds: 1}}\n"
        f"study: {{trials: 2, epochs: 3{extra}}}\n"
    )


GOOD = '{spec: "csv:good.csv", target: y, task: regression}'


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    _frame(60).to_csv(tmp_path / GOOD_CSV, index=False)
    _frame(3).to_csv(tmp_path / "tiny.csv", index=False)
    _frame(60, ["one"] * 60).to_csv(tmp_path / "one_class.csv", index=False)
    # a class of two rows: three outer folds cannot each hold one
    _frame(60, ["a"] * 58 + ["b"] * 2).to_csv(tmp_path / "rare.csv", index=False)
    # five of class b: 3 outer folds leave 3 or 4 per outer-training set, enough for 2 inner
    # folds; 4 inner folds are not
    _frame(60, ["a"] * 55 + ["b"] * 5).to_csv(tmp_path / "few.csv", index=False)
    return tmp_path


CASES = {
    "missing csv": (_suite(f'[{GOOD}, {{spec: "csv:nope.csv", target: y}}]'), "nope.csv"),
    "missing target": (_suite('[{spec: "csv:good.csv", target: price}]'), "price"),
    "three rows": (_suite('[{spec: "csv:tiny.csv", target: y, task: regression}]'), "tiny.csv"),
    "one class": (_suite('[{spec: "csv:one_class.csv", target: label}]'), "one_class.csv"),
    "outer folds above the smallest class": (
        _suite('[{spec: "csv:rare.csv", target: label}]'),
        "rare.csv",
    ),
    "impossible inner split": (
        _suite('[{spec: "csv:few.csv", target: label}]').replace(
            "inner_folds: 2", "inner_folds: 4"
        ),
        "few.csv",
    ),
    "missing space file": (_suite(f"[{GOOD}]", "[{model: relu, space: nope.yaml}]"), "nope.yaml"),
    "gpus without gpus": (_suite(f"[{GOOD}]", extra=", gpus_per_trial: 1"), "GPU"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_dataset_or_space_stops_the_suite_before_anything_is_written(
    folder, case, capsys, monkeypatch
):
    import ray

    text, needle = CASES[case]
    path = folder / "suite.yaml"
    path.write_text(text)
    store = folder / "store"
    monkeypatch.chdir(folder)
    assert main(["suite", "run", str(path), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err
    assert not store.exists()  # no mlflow.db, optuna.db or suites/ folder
    assert not ray.is_initialized()


# ---------------------------------------------------------------- an edited suite file

EDITED = """
name: edited
datasets: [{spec: "csv:good.csv", target: y, task: regression}]
models: [relu]
references:
  relu-default: {model: relu}
protocol: {outer_folds: 2, inner_folds: 2, seeds: 1}
study: {trials: 2, epochs: 3}
"""


def _locked_store(folder: Path) -> tuple[Path, Path]:
    """A store whose suite folder was made for EDITED (as its first `suite run` leaves it)."""
    from study.suite import load_suite
    from study.suite._checks import check_suite
    from study.suite._lock import write_lock
    from study.suite._units import suite_directory

    path = folder / "edited.yaml"
    path.write_text(EDITED)
    store = folder / "store"
    suite = load_suite(path)
    current = check_suite(suite, store=str(store), tracking_uri=None, address=None)
    write_lock(suite_directory(store, suite), current)
    return path, store


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("outer_folds: 2", "outer_folds: 3"), "protocol.outer_folds 2 -> 3"),
        (
            (
                "relu-default: {model: relu}",
                "relu-default: {model: relu, config: {train.lr: 0.01}}",
            ),
            "references.relu-default",
        ),
        (("trials: 2", "trials: 4"), "study.trials 2 -> 4"),
        (("models: [relu]", "models: [relu, gelu]"), "models.gelu added"),
        (("split_seed", "split_seed"), None),  # unchanged: runs (here: stops at Ray's door)
    ],
)
def test_an_edited_suite_file_is_refused_by_run_and_report(folder, change, named, capsys):
    path, store = _locked_store(folder)
    path.write_text(EDITED.replace(*change))
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    if named is None:
        from study.suite import check_lock, determinants, load_suite
        from study.suite._units import suite_directory

        suite = load_suite(path)
        check_lock(suite_directory(store, suite), determinants(suite), source="same")
        return
    for command in (["suite", "run"], ["suite", "report"]):
        code = main(
            [
                *command,
                str(path),
                "--store",
                str(store),
                *(["--out", str(folder / "out")] if command[1] == "report" else []),
            ]
        )
        err = capsys.readouterr().err
        assert code == 2, err
        assert named in err and "changed since the units" in err and len(err.splitlines()) == 1
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before  # nothing written
    assert not (folder / "out").exists()


def test_a_study_made_for_other_outer_folds_is_never_reused(folder, capsys):
    """The suite's folder is gone (no lock), but a study of the old 2-fold suite is still in
    the store under a unit's name: a 3-fold suite must not reuse it."""
    import json

    path = folder / "edited.yaml"
    path.write_text(EDITED.replace("outer_folds: 2", "outer_folds: 3"))
    studies = folder / "store" / "studies"
    studies.mkdir(parents=True)
    old = {
        "target": "y",
        "task": "regression",
        "model": "relu",
        "trials": 2,
        "folds": 2,
        "split_seed": 0,
        "epochs": 3,
        "scheduler": "asha",
        "grace_period": 1,
        "outer_folds": 2,
        "outer_fold": 0,
    }
    (studies / "edited-good-relu-outer0.json").write_text(json.dumps({"request": old}))
    assert main(["suite", "run", str(path), "--store", str(folder / "store")]) == 2
    err = capsys.readouterr().err
    assert "study edited-good-relu-outer0" in err and "outer_folds 2 != 3" in err
    assert not (folder / "store" / "suites").exists()


# ------------------------------------------------------------------- hostile YAML


def _bomb(levels: int = 8) -> str:
    """Nested anchors: 9 ** levels strings once expanded, in a few hundred bytes."""
    parts = ["&l0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        parts.append(f"&l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "[" + ", ".join(parts) + "]"


@pytest.mark.parametrize("where", ["name", "focus", "reference"])
def test_an_alias_bomb_is_refused_in_one_short_line(tmp_path, where, capsys):
    text = {
        "name": f"name: {_bomb()}\ndatasets: [power_plant]\nmodels: [actmix]\n",
        "focus": f"name: s\ndatasets: [power_plant]\nmodels: [actmix]\nfocus: {_bomb()}\n",
        "reference": (
            "name: s\ndatasets: [power_plant]\nmodels: [actmix]\n"
            f"references:\n  r: {{model: actmix, config: {{train.lr: {_bomb()}}}}}\n"
        ),
    }[where]
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    assert len(text) < 600
    assert main(["suite", "status", str(path), "--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and len(err) < 400, err[:500]
    assert "expands to more than" in err


def test_a_large_quoted_value_is_shortened_in_the_message(tmp_path, capsys):
    path = tmp_path / "long.yaml"
    path.write_text(
        "name: [" + ", ".join(["abcdefgh"] * 5000) + "]\ndatasets: [power_plant]\n"
        "models: [actmix]\n"
    )
    assert main(["suite", "status", str(path), "--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert len(err) < 400 and "characters)" in err, err[:500]
