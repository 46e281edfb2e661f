"""Unit records: typed, with a JSON round trip that reads every committed record as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from study.suite import TunedStudy, UnitRecord

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = sorted(
    path
    for path in (ROOT / "results").glob("*/records/units/*/*/*.json")
    if not path.name.endswith(".trials.json")  # a tuned unit's trial history beside it
)


def test_there_are_committed_records_to_read():
    assert len(COMMITTED) >= 135


@pytest.mark.parametrize("path", COMMITTED[::9], ids=lambda p: "/".join(p.parts[-4:]))
def test_a_committed_record_loads_and_writes_back_the_same_json(path: Path):
    data = json.loads(path.read_text())
    record = UnitRecord.from_json(data)
    # fields added since a record was written come back at their defaults
    assert record.to_json() == {"repeat": 0, "provenance": None, **data}
    assert (record.study is None) == (record.kind == "reference")
    assert record.test_values() == [row[f"test_{record.metric}"] for row in data["rows"]]


def test_a_record_without_a_required_field_is_refused_by_name():
    data = json.loads(COMMITTED[0].read_text())
    del data["fingerprint"], data["rows"]
    with pytest.raises(ValueError, match="a unit record lacks fingerprint, rows"):
        UnitRecord.from_json(data)


def test_a_study_round_trips_and_needs_its_winner():
    study = TunedStudy("s", "trial-0003", 3.9, "val_rmse_mean", {"COMPLETE": 4}, {"x": 1.0})
    assert TunedStudy.from_json(study.to_json()) == study
    with pytest.raises(ValueError, match="best_trial"):
        TunedStudy.from_json({"name": "s", "best_value": 1.0, "objective": "o"})
