"""The units of work of a suite and where their results are kept.

A unit is (dataset, model or reference, repeat, outer fold). A tuned unit runs a study on the
outer fold's training rows, retrains the best configuration and scores the outer-test
rows; a reference unit only retrains and scores; an ensemble unit (``ensemble: {top_k}``)
retrains the top k configurations of its tuned unit's study and scores their average. A
unit is done when its result file exists:
``<store>/suites/<suite>/units/<dataset>/<label>/outer<j>.json`` (``r<i>-outer<j>`` for
repeat i > 0 of the outer cross-validation), with the out-of-fold predictions beside it in
``.npz`` and the study's trials in ``.trials.json``, written atomically at the end.
A process works on a unit only while it holds the unit's claim, an ``flock`` on
``claims/<dataset>/<label>/outer<j>.lock``, so drivers side by side never run one unit
twice, and the kernel drops the claim of a driver that dies, however it dies.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from study.suite._file import ENSEMBLE_SUFFIX, Suite, SuiteDataset, ensemble_label
from study.suite._records import UnitKind, UnitRecord

__all__ = [
    "SESSIONS_FILE",
    "Unit",
    "claim_unit",
    "read_sessions",
    "read_trials",
    "read_unit",
    "record_session",
    "record_session_start",
    "suite_directory",
    "suite_units",
    "trials_path",
    "write_unit",
]

SESSIONS_FILE = "sessions.jsonl"  # one line per `suite run`: when, how long, units done


@dataclass(frozen=True, slots=True)
class Unit:
    """One (dataset, model or reference, repeat, outer fold) of a suite."""

    dataset: SuiteDataset
    label: str  # the model's or reference's label in the suite file
    model: str  # activation name or xgboost
    kind: UnitKind
    outer_fold: int
    repeat: int = 0  # which repeat of the outer cross-validation

    @property
    def fold_name(self) -> str:
        """``outer<j>``, or ``r<i>-outer<j>`` in repeat i > 0 (repeat 0 keeps the old names)."""
        prefix = f"r{self.repeat}-" if self.repeat else ""
        return f"{prefix}outer{self.outer_fold}"

    @property
    def tuned_label(self) -> str:
        """The tuned model whose study the unit uses (an ensemble: the model it averages)."""
        return self.label.removesuffix(ENSEMBLE_SUFFIX) if self.kind == "ensemble" else self.label

    def study_name(self, suite: Suite) -> str:
        return f"{suite.name}-{self.dataset.label}-{self.tuned_label}-{self.fold_name}"

    def tuned(self) -> Unit:
        """The tuned unit an ensemble unit averages the study of (itself for others)."""
        if self.kind != "ensemble":
            return self
        return dataclasses.replace(self, label=self.tuned_label, kind="tuned")

    def path(self, root: Path) -> Path:
        return root / "units" / self.dataset.label / self.label / f"{self.fold_name}.json"


def suite_directory(store: Path, suite: Suite) -> Path:
    return store / "suites" / suite.name


def suite_units(suite: Suite) -> Iterator[Unit]:
    """Every unit, in the order a suite runs them: by dataset, repeat, then outer fold."""
    for dataset in suite.datasets:
        for repeat in range(suite.protocol.repeats):
            for fold in range(suite.protocol.outer_folds):
                for reference in suite.references:
                    yield Unit(dataset, reference.label, reference.model, "reference", fold, repeat)
                for model in suite.models:
                    yield Unit(dataset, model.label, model.model, "tuned", fold, repeat)
                if suite.ensemble_top_k is not None:  # after the studies they average
                    for model in suite.models:
                        label = ensemble_label(model.label)
                        yield Unit(dataset, label, model.model, "ensemble", fold, repeat)


@contextmanager
def claim_unit(root: Path, unit: Unit) -> Iterator[bool]:
    """Hold the unit's claim for the ``with`` block: True, or False if another process has it."""
    path = root / "claims" / unit.path(root).relative_to(root / "units").with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_unit(
    root: Path,
    unit: Unit,
    record: UnitRecord,
    test_idx: np.ndarray,
    prediction: np.ndarray,
    trials: list[dict[str, Any]] | None = None,
) -> Path:
    """Write a unit's result (JSON), predictions (npz) and, for a tuned unit, its study's
    trial history (``.trials.json``); the result last, so it marks the unit done."""
    path = unit.path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    if trials is not None:
        partial = path.with_name(path.name + ".trials.partial")
        partial.write_text(json.dumps(trials, indent=1, default=_plain))
        os.replace(partial, trials_path(path))
    arrays = path.with_suffix(".npz")
    partial = arrays.with_name(arrays.name + ".partial")
    with open(partial, "wb") as handle:
        np.savez_compressed(handle, test_idx=test_idx, prediction=prediction)
    os.replace(partial, arrays)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(record.to_json(), indent=1, default=_plain))
    os.replace(partial, path)
    return path


def read_unit(root: Path, unit: Unit) -> tuple[UnitRecord, dict[str, np.ndarray]] | None:
    """A done unit's record and predictions, or None when it is not done."""
    path = unit.path(root)
    if not path.is_file():
        return None
    try:
        record = UnitRecord.from_json(json.loads(path.read_text()))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    with np.load(path.with_suffix(".npz")) as arrays:
        return record, {name: arrays[name] for name in arrays.files}


def trials_path(unit_path: Path) -> Path:
    """``outer0.json`` -> ``outer0.trials.json``: the study's trial history beside it."""
    return unit_path.with_suffix(".trials.json")


def read_trials(root: Path, unit: Unit) -> list[dict[str, Any]] | None:
    """A done tuned unit's trial history, or None (a reference, or a unit written before
    suites kept trial histories)."""
    path = trials_path(unit.path(root))
    if not path.is_file():
        return None
    trials: list[dict[str, Any]] = json.loads(path.read_text())
    return trials


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to a unit file")


def record_session_start(root: Path, *, started: str) -> None:
    """Say in the session log that a `suite run` began: a session killed with -9 never
    writes its end line, and keeps this one (see ``read_sessions``)."""
    line = {"started": started, "pid": os.getpid(), "begun": True}
    with (root / SESSIONS_FILE).open("a") as log:
        log.write(json.dumps(line) + "\n")


def record_session(
    root: Path,
    *,
    started: str,
    seconds: float,
    before: int,
    after: int,
    provenance: dict[str, Any] | None = None,
) -> None:
    """Append one `suite run` to the suite's session log: its wall time, the units it
    finished, and what it ran on (machine, package versions, commit)."""
    line: dict[str, Any] = {"started": started, "pid": os.getpid(), "seconds": round(seconds, 1)}
    line |= {"done_before": before, "done_after": after}
    if provenance is not None:
        line["provenance"] = provenance
    with (root / SESSIONS_FILE).open("a") as log:
        log.write(json.dumps(line) + "\n")


def read_sessions(root: Path) -> list[dict[str, Any]]:
    """The suite's `suite run` sessions, oldest first (none before the first run).

    A session that began but never wrote its end line (killed with -9) is one with
    ``seconds`` None and ``ended`` False."""
    path = root / SESSIONS_FILE
    if not path.is_file():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    ended = {(line["started"], line.get("pid")) for line in lines if "seconds" in line}
    sessions = [line for line in lines if "seconds" in line]
    sessions += [
        {"started": line["started"], "pid": line.get("pid"), "seconds": None, "ended": False}
        for line in lines
        if line.get("begun") and (line["started"], line.get("pid")) not in ended
    ]
    return sorted(sessions, key=lambda session: session["started"])
