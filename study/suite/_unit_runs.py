"""The MLflow runs of a suite's units: one per unit in the suite's experiment, tagged so the
leaderboard finds a suite's studies, final models and references."""

from __future__ import annotations

import math

from study.suite._file import Suite
from study.suite._records import UnitRecord
from study.suite._units import Unit

__all__ = ["log_unit", "unit_tags"]


def log_unit(
    tracking_uri: str, suite: Suite, unit: Unit, record: UnitRecord, artifacts: str | None
) -> str:
    """One MLflow run per unit in the suite's experiment (stage final or reference)."""
    from study.tracking import log_finished_run

    stage = "reference" if unit.kind == "reference" else "final"
    rows = record.rows
    return log_finished_run(
        tracking_uri,
        suite.name,
        run_name=f"{unit.dataset.label}-{unit.label}-{unit.fold_name}",
        tags=unit_tags(suite, unit, stage),
        params={
            "outer_fold": unit.outer_fold,
            "repeat": unit.repeat,
            "outer_folds": record.outer_folds,
            "split_seed": record.split_seed,
            "splits_fingerprint": record.fingerprint,
            "seeds": len(rows),
            "config": record.config,
        },
        metrics={
            f"{key}_mean": _mean([row[key] for row in rows])
            for key in rows[0]
            if key.startswith(("test_", "val_"))
        },
        artifact_location=artifacts,
        replace=True,  # a unit redone after a failed write keeps one run
    )


def unit_tags(suite: Suite, unit: Unit, stage: str) -> dict[str, str]:
    from study.tracking import TAG_DATASET, TAG_MODEL, TAG_STAGE, TAG_SUITE

    return {
        TAG_SUITE: suite.name,
        "dataset": unit.dataset.label,
        "model": unit.label,
        "outer_fold": str(unit.outer_fold),
        "repeat": str(unit.repeat),
        TAG_STAGE: stage,
        TAG_DATASET: unit.dataset.label,
        TAG_MODEL: unit.model,
    }


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan
