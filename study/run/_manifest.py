"""A study's manifest, ``<store>/studies/<name>.json``: its request with absolute paths,
its MLflow ids and stores, so that ``resume NAME`` rebuilds it from any directory."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from study.request import StudyRequest
from study.run._plan import StudyPlan, make_plan
from study.store import manifest_path, relocate, relocated, store_folder

__all__ = ["RECORDED_ADDRESS", "load_manifest", "moved_from", "resume_plan", "write_manifest"]


def write_manifest(
    plan: StudyPlan,
    experiment_id: str,
    parent_run_id: str,
    *,
    extensions: list[dict[str, Any]] | None = None,
) -> None:
    """Write ``<store>/studies/<name>.json`` atomically: what ``resume`` rebuilds from.

    ``extensions`` (one entry per `extend`: its trials, the index of its first run, when)
    replace those recorded; by default they are kept. The request is the first launch's.
    """
    plan.manifest.parent.mkdir(parents=True, exist_ok=True)
    first: dict[str, Any] = {}
    if plan.manifest.is_file():
        first = json.loads(plan.manifest.read_text())
    if extensions is None:
        extensions = first.get("extensions", [])
    request = dataclasses.asdict(plan.request) | {"name": plan.name}
    if plan.extension:
        request["trials"] = first["request"]["trials"]  # this launch's count is its entry's
    data = {
        "name": plan.name,
        "request": request,
        "experiment_id": experiment_id,
        "parent_run_id": parent_run_id,
        "tracking_uri": plan.tracking_uri,
        "optuna_storage": plan.optuna_storage,
        "created": first.get("created", time.strftime("%Y-%m-%dT%H:%M:%S")),
        "extensions": extensions,
    }
    partial = plan.manifest.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2))
    partial.replace(plan.manifest)


def load_manifest(name: str, store: str) -> dict[str, Any]:
    """The manifest of study ``name`` in ``store``; ValueError naming the known studies."""
    path = manifest_path(store, name)
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
        listing = ", ".join(known) if known else "none"
        raise ValueError(
            f"no study named {name!r} in {path.parent.parent}; known studies: {listing}"
        )
    return json.loads(path.read_text())


def moved_from(manifest: dict[str, Any], store: Path) -> Path | None:
    """The folder the study's store was in when it started, if it has moved since."""
    recorded = Path(manifest["request"]["store"])
    return recorded if recorded.is_absolute() and recorded != store else None


# resume on the Ray the study was started with (its manifest's address)
RECORDED_ADDRESS = "recorded"


def resume_plan(
    name: str, store: str, *, address: str | None = RECORDED_ADDRESS
) -> tuple[dict[str, Any], StudyPlan]:
    """The manifest and plan of study ``name`` in ``store``, from any working directory.

    A store moved as a whole resumes in its new place: locations that the request named
    inside the old folder (an explicit SQLite URI, say) are moved with it. ``address``:
    the Ray to resume on (None: a local one) instead of the recorded one, which may be
    gone (the temporary Ray of a ``suite run --jobs N``, say).
    """
    manifest = load_manifest(name, store)
    folder = store_folder(store)
    fields = dict(manifest["request"], store=str(folder))
    if address != RECORDED_ADDRESS:
        fields["address"] = address
    old = moved_from(manifest, folder)
    if old is not None:
        with relocated(old, folder):
            for field in ("tracking_uri", "optuna_storage"):
                if fields.get(field):
                    fields[field] = relocate(fields[field])
    extensions = manifest.get("extensions", [])
    if not extensions:
        return manifest, make_plan(StudyRequest.from_mapping(fields))
    # the latest launch is the one a resume continues: the latest extension
    latest = extensions[-1]
    fields["trials"] = latest["trials"]
    plan = make_plan(StudyRequest.from_mapping(fields))
    return manifest, dataclasses.replace(
        plan, extension=len(extensions), first_index=latest["first_index"]
    )
