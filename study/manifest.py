"""A study's manifest, ``<store>/studies/<name>.json``: its request with absolute paths,
its MLflow ids and stores, so that ``resume NAME`` rebuilds it from any directory."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from study.plan import StudyPlan

__all__ = ["load_manifest", "write_manifest"]


def write_manifest(plan: StudyPlan, experiment_id: str, parent_run_id: str) -> None:
    """Write ``<store>/studies/<name>.json`` atomically: what ``resume`` rebuilds from."""
    plan.manifest.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "name": plan.name,
        "request": dataclasses.asdict(plan.request) | {"name": plan.name},
        "experiment_id": experiment_id,
        "parent_run_id": parent_run_id,
        "tracking_uri": plan.tracking_uri,
        "optuna_storage": plan.optuna_storage,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    partial = plan.manifest.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2))
    partial.replace(plan.manifest)


def load_manifest(name: str, store: str) -> dict[str, Any]:
    """The manifest of study ``name`` in ``store``; ValueError naming the known studies."""
    path = Path(store).expanduser().resolve() / "studies" / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
        listing = ", ".join(known) if known else "none"
        raise ValueError(
            f"no study named {name!r} in {path.parent.parent}; known studies: {listing}"
        )
    return json.loads(path.read_text())
