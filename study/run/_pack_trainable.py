"""The trainable of a packed trial: K configurations x folds x seeds as one network.

Each epoch it reports, per configuration, what that configuration would have reported
alone (``study.tracking.payload.PACK``), and asks the study's rung board whether to stop
any configuration that reached an ASHA milestone; a stopped configuration's members
leave training at once (``fit``'s ``stop``) and its entry says ``PRUNED``. After the
last epoch every configuration that was not stopped gets its own final report, with its
own model file and figures. Test rows are never scored here.

Stopped configurations leave the network: at an epoch that stopped some, ``fit`` hands
over a checkpoint, the survivors' members are selected from it
(``actmix.packs.select_members``) and training goes on in a smaller network, each
survivor exactly where it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from actmix.config import RunConfig
from actmix.packs import Pack, build_pack, select_members
from actmix.trainer import EpochRecord, FitResult, fit
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


class _Compact(Exception):
    """Raised from ``on_epoch`` after configurations were stopped: continue without them."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        super().__init__("configurations stopped")
        self.snapshot = snapshot


@dataclass
class _PackRun:
    """What every network of one pack shares (a pack's network shrinks as it goes)."""

    settings: StudySettings
    dataset: Dataset
    fold_arrays: Any
    configs: list[RunConfig]
    numbers: list[int]
    key: str
    mode: str
    milestones: set[int]
    pruned: set[int]  # configurations stopped by the rung board
    resumed: dict[str, Any]  # said once, in the first report after a restore

    def build(
        self, alive: list[int], resume_from: dict[str, Any] | None
    ) -> tuple[list[int], Pack, dict[int, list[int]], dict[str, Any] | None]:
        """The network of the configurations of ``alive`` not stopped, and where it resumes."""
        kept = [c for c in alive if c not in self.pruned]
        if resume_from is not None and kept != alive:
            old = self._pack(alive)
            keep = [k for i, c in enumerate(alive) if c in kept for k in old.of(i)]
            resume_from = select_members(resume_from, keep)
        pack = self._pack(kept)
        return kept, pack, {c: pack.of(i) for i, c in enumerate(kept)}, resume_from

    def _pack(self, alive: list[int]) -> Pack:
        configs = [self.configs[c] for c in alive]
        return build_pack(self.dataset, configs, self.fold_arrays, self.settings.seeds)


def train_pack(
    config: dict[str, Any], settings: StudySettings, dataset: Dataset, fold_arrays
) -> None:
    """Train the configurations of one pack (``config``: see ``payload.PACK_CONFIGS``)."""
    key, mode = objective_name(dataset.task)
    saved = load_checkpoint(_STATE_FILE)
    run = _PackRun(
        settings=settings,
        dataset=dataset,
        fold_arrays=fold_arrays,
        configs=[
            config_from_sample(
                settings.space,
                sample,
                base=RunConfig(),
                epochs=settings.epochs,
                model=settings.model,
            )
            for sample in config[payload.PACK_CONFIGS]
        ],
        numbers=list(config[payload.PACK_NUMBERS]),
        key=key,
        mode=mode,
        milestones=(
            set() if settings.rungs is None else {math.ceil(m) for m in settings.rungs.milestones()}
        ),
        pruned=set() if saved is None else set(saved["pruned"]),
        resumed={} if saved is None else {payload.RESUMED_FROM_EPOCH: int(saved["fit"]["epoch"])},
    )
    alive = list(range(len(run.configs))) if saved is None else list(saved["alive"])
    resume_from = None if saved is None else saved["fit"]
    if not [c for c in alive if c not in run.pruned]:
        # restored after the rung board had stopped every configuration: nothing to train
        report(
            {
                payload.EPOCH: 0,
                key: math.nan,
                payload.PACK: [None] * len(run.configs),
                payload.FINAL: True,
            },
            None,
            _STATE_FILE,
        )
        return
    while True:
        alive, pack, members_of, resume_from = run.build(alive, resume_from)
        try:
            result = _fit_network(run, alive, pack, members_of, resume_from)
        except _Compact as compact:
            resume_from = compact.snapshot
            continue
        break
    finals: list[dict[str, Any] | None] = []
    for c in range(len(run.configs)):
        members = members_of.get(c)
        if members is None or c in run.pruned:
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


def _fit_network(
    run: _PackRun,
    alive: list[int],
    pack: Pack,
    members_of: dict[int, list[int]],
    resume_from: dict[str, Any] | None,
) -> FitResult:
    """``fit`` the network of ``alive``; ``_Compact`` once the rung board stopped some of
    them while others go on."""
    task = run.dataset.task
    pruned_now: set[int] = set()

    def live(record: EpochRecord, c: int) -> bool:
        """Whether configuration ``c`` trained this epoch and was not stopped before it."""
        members = members_of.get(c)
        if members is None or c in run.pruned:
            return False
        return any(record.trained[k] for k in members)

    def stop(epoch: int, record: EpochRecord) -> list[int]:
        pruned_now.clear()
        rungs = run.settings.rungs
        if rungs is None or epoch + 1 not in run.milestones:
            return []
        asked = [c for c in alive if live(record, c)]
        values = [epoch_metrics(record, members_of[c], task)[run.key] for c in asked]
        queries = [(run.numbers[c], epoch + 1, v) for c, v in zip(asked, values, strict=True)]
        decisions = ask_rungs(rungs, queries)
        pruned_now.update(c for c, stopped in zip(asked, decisions, strict=True) if stopped)
        return [k for c in pruned_now for k in members_of[c] if record.active[k]]

    def on_epoch(epoch: int, record: EpochRecord) -> None:
        slots: list[dict[str, Any] | None] = []
        for c in range(len(run.configs)):
            if not live(record, c):
                slots.append(None)
                continue
            entry = {**epoch_metrics(record, members_of[c], task), **run.resumed}
            if c in pruned_now:
                entry[payload.PRUNED] = True
            slots.append(entry)
        run.resumed.clear()
        run.pruned.update(pruned_now)
        state = None
        if record.checkpoint is not None:
            state = {"fit": record.checkpoint, "pruned": sorted(run.pruned), "alive": alive}
        metrics = {payload.EPOCH: epoch, run.key: _best(slots, run.key, run.mode)}
        if run.settings.threads is not None:
            count = run.settings.threads.update()
            for slot in slots:
                if slot is not None:
                    slot[payload.THREADS] = count
        report({**metrics, payload.PACK: slots}, state, _STATE_FILE)
        survivors = [c for c in alive if c not in run.pruned]
        going_on = any(record.active[k] for c in survivors for k in members_of[c])
        if pruned_now and going_on and record.checkpoint is not None:
            raise _Compact(record.checkpoint)

    return fit(
        pack.model,
        pack.data,
        pack.train,
        task=task,
        on_epoch=on_epoch,
        device=trial_device(),
        checkpoint_every=run.settings.checkpoint_every,
        resume_from=resume_from,
        stop=stop,
    )


def _best(slots: list[dict[str, Any] | None], key: str, mode: str) -> float:
    """The best finite objective among the entries (NaN if none): the pack's Tune metric."""
    values = [float(s[key]) for s in slots if s is not None and math.isfinite(float(s[key]))]
    if not values:
        return math.nan
    return min(values) if mode == "min" else max(values)
