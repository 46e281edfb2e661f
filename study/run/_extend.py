"""Grow a study: ``extend NAME --trials N`` adds N trials to a finished or interrupted study.

The same Optuna study goes on (its sampler sees the whole history, under a seed of its own
so that it does not retrace its first draws), in a Ray Tune experiment of its own
(``<name>-extendK``), with new MLflow child runs under the same parent run, named on from
the study's last trial. The manifest records each extension, so ``resume NAME`` continues
an extension stopped by Ctrl-C or a killed driver, as it does a first launch.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from study.run._manifest import RECORDED_ADDRESS, moved_from, resume_plan, write_manifest
from study.run._outcome import StudyOutcome
from study.run._runner import (
    _check_resources,
    _print,
    _tune,
    _tuner,
    resume_study,
    start_ray,
)
from study.store import DEFAULT_STORE, check_free_space, store_flags, store_lock
from study.tracking import (
    TAG_INTERRUPTED,
    TAG_TRIAL_INDEX,
    TAG_TRIALS,
    client_for,
    trial_runs,
)

__all__ = ["extend_study"]


def extend_study(
    name: str,
    trials: int,
    *,
    store: str = DEFAULT_STORE,
    report: Callable[[str], None] = _print,
    address: str | None = RECORDED_ADDRESS,
) -> StudyOutcome:
    """Add ``trials`` trials to study ``name``; an interrupted launch is resumed first."""
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"--trials must be a positive whole number, got {trials!r}")
    manifest, plan = resume_plan(name, store, address=address)
    old = moved_from(manifest, plan.store)
    if old is not None:
        raise ValueError(
            f"study {name!r} moved from {old}: run `actmix-study resume {name}"
            f"{store_flags(store=store)}` once in its new place, then extend it"
        )
    experiment_id, parent_run_id = manifest["experiment_id"], manifest["parent_run_id"]
    client = client_for(plan.tracking_uri)
    parent = client.get_run(parent_run_id)
    if parent.info.status == "RUNNING" or TAG_INTERRUPTED in parent.data.tags:
        report(f"study {name} was stopped before it ended: resuming it first")
        resume_study(name, store=store, report=report, address=address)
        manifest, plan = resume_plan(name, store, address=address)
    runs = trial_runs(plan.tracking_uri, experiment_id, parent_run_id)
    first_index = 1 + max((int(r.data.tags.get(TAG_TRIAL_INDEX, -1)) for r in runs), default=-1)
    extensions = manifest.get("extensions", [])
    plan = dataclasses.replace(
        plan,
        request=dataclasses.replace(plan.request, trials=trials),
        extension=len(extensions) + 1,
        first_index=first_index,
    )
    entry = {
        "trials": trials,
        "first_index": first_index,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    check_free_space(plan.store)
    started = time.perf_counter()
    started_ray = start_ray(plan.request.address)
    try:
        _check_resources(plan.request)
        tuner = _tuner(plan, experiment_id, parent_run_id, report)
        with store_lock(plan.store):
            write_manifest(plan, experiment_id, parent_run_id, extensions=[*extensions, entry])
            client.update_run(parent_run_id, status="RUNNING")
            total = first_index + trials
            client.set_tag(parent_run_id, TAG_TRIALS, str(total))
            client.set_tag(
                parent_run_id,
                f"extension.{plan.extension}",
                f"{trials} trials at {entry['started']}",
            )
        report(
            f"study {name}: {trials} more trials, trial-{first_index:04d} to "
            f"trial-{total - 1:04d} (Ray Tune experiment {plan.tune_name})"
        )
        return _tune(plan, tuner, experiment_id, parent_run_id, started=started)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
