"""What a done unit of a suite leaves behind: a typed record, written as JSON.

The JSON keys are the field names; ``from_json`` reads every record a suite has written
so far (``results/uci3/records`` included) and refuses one that lacks a field it needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from actmix.metrics import Direction
from actmix.types import Task

__all__ = ["TunedStudy", "UnitKind", "UnitRecord"]

UnitKind = Literal["tuned", "reference", "ensemble"]


def _missing(what: str, data: Mapping[str, Any], fields: tuple[str, ...]) -> None:
    absent = [name for name in fields if name not in data]
    if absent:
        raise ValueError(f"{what} lacks {', '.join(absent)}")


@dataclass(frozen=True, slots=True)
class TunedStudy:
    """The study of a tuned unit: which trial won, on what, and how its trials ended."""

    name: str
    best_trial: str
    best_value: float
    objective: str
    trial_states: dict[str, int] = field(default_factory=dict)  # Optuna state -> count
    importances: dict[str, float] = field(default_factory=dict)  # fANOVA, param -> share
    importance_note: str | None = None  # why there are no importances, when there are none

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TunedStudy:
        _missing("a unit's study", data, ("name", "best_trial", "best_value", "objective"))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True, slots=True)
class UnitRecord:
    """One unit's outcome: its outer-test scores per seed and what produced them.

    ``rows``: one dict per training seed (``seed``, ``test_<metric>``, ``val_<metric>``,
    ...); ``value``: the primary metric's mean over seeds; ``config``: the retrained
    configuration (``RunConfig`` as a dict); ``study``: None for a reference.
    """

    suite: str
    dataset: str  # the dataset's label in the suite file
    dataset_spec: str
    task: Task
    label: str
    model: str
    kind: UnitKind
    outer_fold: int
    outer_folds: int
    split_seed: int
    fingerprint: str  # of the outer splits (rows and folds)
    metric: str
    direction: Direction
    value: float
    rows: list[dict[str, float]]
    config: dict[str, Any]
    study: TunedStudy | None = None
    seconds: float = 0.0
    run_id: str | None = None  # the unit's MLflow run
    repeat: int = 0  # which repeat of the outer cross-validation (its seed: split_seed)
    provenance: dict[str, Any] | None = None  # machine, versions, commit; None: not recorded

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["study"] = None if self.study is None else self.study.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UnitRecord:
        required = tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        _missing("a unit record", data, required)
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {key: value for key, value in data.items() if key in known}
        study = data.get("study")
        fields["study"] = None if not study else TunedStudy.from_json(study)
        return cls(**fields)

    def test_values(self) -> list[float]:
        """The primary metric on the outer-test rows, one per seed."""
        return [float(row[f"test_{self.metric}"]) for row in self.rows]
