"""What determines a suite's units, kept beside them, so an edited suite file is refused.

Units are found by dataset, label, repeat and outer fold; what they hold depends on far
more: the data and its outer splits, each model's search space, each reference's
configuration, the protocol and the budget. ``suite.lock.json`` in the suite's folder
records all of that (as :func:`determinants` gives it) when the first unit runs. A later
``suite run`` or ``suite report`` whose file differs refuses in one line that names
what changed: reusing the old units would report them under the new file, and reusing a
study made for other outer folds would tune on rows that are now outer-test rows.
A study found under a unit's name is reused only if it was made for that unit's request.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.request import StudyRequest
from study.suite._file import Suite

__all__ = [
    "LOCK_FILE",
    "check_lock",
    "check_study_request",
    "determinants",
    "write_lock",
]

LOCK_FILE = "suite.lock.json"
# what a study found under a unit's name must share with the unit's request to be reused
STUDY_FIELDS = (
    "target",
    "task",
    "model",
    "trials",
    "n_startup_trials",
    "pack",
    "folds",
    "split_seed",
    "epochs",
    "scheduler",
    "grace_period",
    "outer_folds",
    "outer_fold",
)


def determinants(
    suite: Suite,
    *,
    splits: Mapping[str, list[str]] | None = None,
    spaces: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything that determines the suite's units, by dotted key, as plain JSON.

    ``splits``: per dataset label, the fingerprint of each repeat's outer splits (data
    and rows); ``spaces``: per tuned model, its search space's sha256. Keys whose value
    was not given are left out (and so not compared).
    """
    found: dict[str, Any] = {}
    for entry in suite.datasets:
        found[f"datasets.{entry.label}.target"] = entry.target
        found[f"datasets.{entry.label}.task"] = entry.task
        if splits is not None:
            found[f"datasets.{entry.label}.outer_splits"] = list(splits[entry.label])
    for model in suite.models:
        found[f"models.{model.label}.model"] = model.model
        if spaces is not None:
            found[f"models.{model.label}.space"] = spaces[model.label]
    for reference in suite.references:
        found[f"references.{reference.label}"] = {
            "model": reference.model,
            "config": dict(reference.config),
        }
    for name, value in dataclasses.asdict(suite.protocol).items():
        found[f"protocol.{name}"] = value
    for name, value in dataclasses.asdict(suite.study).items():
        found[f"study.{name}"] = value
    found["study.grace_period"] = suite.study.grace  # the default resolved
    if suite.ensemble_top_k is not None:  # suites without ensembles keep their old locks
        found["ensemble.top_k"] = suite.ensemble_top_k
    if suite.study.pack == 1:
        # unpacked, as every suite locked before packs existed: their locks still match
        del found["study.pack"]
    return json.loads(json.dumps(found))  # plain JSON: tuples as lists, as read back


def _entry(key: str) -> str:
    """``datasets.adult.target`` -> ``datasets.adult``: the entry a key belongs to."""
    return ".".join(key.split(".")[:2])


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Entries added or removed, then values that differ where both sides have a key."""
    old_entries, new_entries = {_entry(k) for k in old}, {_entry(k) for k in new}
    changed = [f"{entry} added" for entry in sorted(new_entries - old_entries)]
    changed += [f"{entry} removed" for entry in sorted(old_entries - new_entries)]
    for key in sorted(set(old) & set(new)):
        if old[key] != new[key]:
            before, after = json.dumps(old[key]), json.dumps(new[key])
            short = len(before) + len(after) < 60
            changed.append(f"{key} {before} -> {after}" if short else f"{key} changed")
    return changed


def check_lock(root: Path, current: Mapping[str, Any], *, source: str) -> None:
    """ValueError if the suite's folder was made for another suite file; nothing to
    compare before the first run (or in a store from before locks)."""
    path = root / LOCK_FILE
    if not path.is_file():
        return
    changes = _changes(json.loads(path.read_text()), current)
    if changes:
        listed = "; ".join(changes[:4])
        if len(changes) > 4:
            listed += f"; and {len(changes) - 4} more"
        raise ValueError(
            f"{source}: the suite file changed since the units in {root} ran ({listed}); "
            "their results would not match it: give the suite a new name, or use another "
            "--store"
        )


def write_lock(root: Path, current: Mapping[str, Any]) -> None:
    """Record what determines the units, unless a lock is there already (atomically)."""
    path = root / LOCK_FILE
    if path.is_file():
        return
    root.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(dict(current), indent=1, sort_keys=True))
    os.replace(partial, path)


def check_study_request(manifest: Mapping[str, Any], request: StudyRequest, *, source: str) -> None:
    """ValueError if a study found under a unit's name was made for another request."""
    recorded = manifest.get("request", {})
    defaults = {f.name: f.default for f in dataclasses.fields(StudyRequest)}
    differs = [
        f"{name} {recorded.get(name, defaults[name])!r} != {getattr(request, name)!r}"
        for name in STUDY_FIELDS
        if recorded.get(name, defaults[name]) != getattr(request, name)
    ]
    if differs:
        raise ValueError(
            f"{source}: study {request.name} in the store was made for another unit "
            f"({'; '.join(differs)}): it may have tuned on rows that are this unit's test "
            "rows; give the suite a new name, or use another --store"
        )
