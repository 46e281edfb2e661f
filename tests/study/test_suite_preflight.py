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
