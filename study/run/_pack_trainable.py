"""The trainable of a packed trial: K configurations x folds x seeds as one network.

Each epoch it reports, per configuration, what that configuration would have reported
alone (``study.tracking.payload.PACK``), and asks the study's rung board whether to stop
any configuration that reached an ASHA milestone; a stopped configuration's members
leave training at once (``fit``'s ``stop``) and its entry says ``PRUNED``. After the
last epoch every configuration that was not stopped gets its own final report, with its
own model file and figures. Test rows are never scored here.
"""

from __future__ import annotations

import math
from typing import Any

from actmix.config import RunConfig
from actmix.packs import build_pack
from actmix.trainer import EpochRecord, fit
from actmix.types import Dataset
from study.run._rungs import ask_rungs
from study.run._trainables import (
    StudySettings,
    epoch_metrics,
    final_metrics,
    load_checkpoint,
    objective_name,
    report,
    trial_device,
)
from study.space import config_from_sample
from study.tracking import payload, with_rendered_artifacts

__all__ = ["train_pack"]

_STATE_FILE = "pack.pt"


def train_pack(
    config: dict[str, Any], settings: StudySettings, dataset: Dataset, fold_arrays
) -> None:
    """Train the configurations of one pack (``config``: see ``payload.PACK_CONFIGS``)."""
    numbers: list[int] = list(config[payload.PACK_NUMBERS])
    configs = [
        config_from_sample(
            settings.space, sample, base=RunConfig(), epochs=settings.epochs, model=settings.model
        )
        for sample in config[payload.PACK_CONFIGS]
    ]
    pack = build_pack(dataset, configs, fold_arrays, settings.seeds)
    members_of = [pack.of(c) for c in range(len(configs))]
    key, mode = objective_name(dataset.task)
    saved = load_checkpoint(_STATE_FILE)
    pruned: set[int] = set() if saved is None else set(saved["pruned"])
    resumed = {} if saved is None else {payload.RESUMED_FROM_EPOCH: int(saved["fit"]["epoch"])}
    milestones = (
        set() if settings.rungs is None else {math.ceil(m) for m in settings.rungs.milestones()}
    )
    pruned_now: set[int] = set()

    def live(record: EpochRecord, c: int) -> bool:
        """Whether configuration ``c`` trained this epoch and was not stopped before it."""
        return c not in pruned and any(record.trained[k] for k in members_of[c])

    def stop(epoch: int, record: EpochRecord) -> list[int]:
        pruned_now.clear()
        if settings.rungs is None or epoch + 1 not in milestones:
            return []
        asked = [c for c in range(len(configs)) if live(record, c)]
        values = [epoch_metrics(record, members_of[c], dataset.task)[key] for c in asked]
        queries = [(numbers[c], epoch + 1, value) for c, value in zip(asked, values, strict=True)]
        decisions = ask_rungs(settings.rungs, queries)
        pruned_now.update(c for c, stopped in zip(asked, decisions, strict=True) if stopped)
        return [k for c in pruned_now for k in members_of[c] if record.active[k]]

    def on_epoch(epoch: int, record: EpochRecord) -> None:
        slots: list[dict[str, Any] | None] = []
        for c in range(len(configs)):
            if not live(record, c):
                slots.append(None)
                continue
            entry = {**epoch_metrics(record, members_of[c], dataset.task), **resumed}
            if c in pruned_now:
                entry[payload.PRUNED] = True
            slots.append(entry)
        resumed.clear()
        pruned.update(pruned_now)
        state = None
        if record.checkpoint is not None:
            state = {"fit": record.checkpoint, "pruned": sorted(pruned)}
        report(
            {payload.EPOCH: epoch, key: _best(slots, key, mode), payload.PACK: slots},
            state,
            _STATE_FILE,
        )

    result = fit(
        pack.model,
        pack.data,
        pack.train,
        task=dataset.task,
        on_epoch=on_epoch,
        device=trial_device(),
        checkpoint_every=settings.checkpoint_every,
        resume_from=None if saved is None else saved["fit"],
        stop=stop,
    )
    finals: list[dict[str, Any] | None] = []
    for c, members in enumerate(members_of):
        if c in pruned:
            finals.append(None)
            continue
        pairs = [(pack.members[k][1], pack.members[k][2]) for k in members]
        final = final_metrics(
            pack.model, result.members, members, pairs, len(fold_arrays), dataset.task
        )
        finals.append(with_rendered_artifacts(final, model=settings.model))
    epochs = max(outcome.epochs_run for outcome in result.members)
    report(
        {
            payload.EPOCH: epochs,
            key: _best(finals, key, mode),
            payload.PACK: finals,
            payload.FINAL: True,
        },
        None,
        _STATE_FILE,
    )


def _best(slots: list[dict[str, Any] | None], key: str, mode: str) -> float:
    """The best finite objective among the entries (NaN if none): the pack's Tune metric."""
    values = [float(s[key]) for s in slots if s is not None and math.isfinite(float(s[key]))]
    if not values:
        return math.nan
    return min(values) if mode == "min" else max(values)
