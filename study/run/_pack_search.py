"""The Optuna searcher of packed studies: one Tune trial, K configurations, K Optuna trials.

A pack's configurations must share what fixes its network (``structural_names``): the
first is asked as in an unpacked study, the others are enqueued with its structural
params fixed and asked in turn, so the sampler fills in everything else. With TPE's
constant liar the pending pack-mates count as already evaluated, so the K differ.
Every configuration stays its own Optuna trial: its intermediate values, and its end as
COMPLETE, PRUNED (stopped by the rung board) or FAIL, come from its entry in the pack's
reports (``study.tracking.payload.PACK``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ray.tune.search import Searcher

from study.run._search import _EPOCH, ORPHAN_FAILURE, ORPHAN_REASON, OptunaSearcher
from study.space import SearchSpace, structural_names, suggest_params
from study.tracking import payload

__all__ = ["PACK_ATTR", "PackSearcher"]

_logger = logging.getLogger(__name__)
# the Optuna user attribute that names a configuration's pack (its first trial's number)
PACK_ATTR = "pack"


class PackSearcher(OptunaSearcher):
    """``OptunaSearcher`` whose Tune trials each hold up to ``pack`` configurations.

    ``budget``: configurations in all (the study's ``trials``); the last pack may be smaller.
    """

    def __init__(self, space: SearchSpace, *, model: str, pack: int, budget: int, **kwargs: Any):
        if pack < 2:
            raise ValueError(f"a pack holds at least 2 configurations, got {pack}")
        super().__init__(space, **kwargs)
        self._pack = pack
        self._budget = budget
        self._shared = structural_names(space, model)
        self._packs: dict[str, list[int]] = {}  # Tune trial id -> its Optuna trial numbers

    # --- asking ----------------------------------------------------------------------------

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        # Searcher.FINISHED (a str) ends the search once every configuration is asked
        numbers = self._packs.get(trial_id)
        if numbers is None:
            numbers = self._orphan_pack() or self._ask_pack()
            if not numbers:
                return Searcher.FINISHED
            self._packs[trial_id] = numbers
        return {
            payload.PACK_CONFIGS: [self._replay(number) for number in numbers],
            payload.PACK_NUMBERS: list(numbers),
        }

    def _ask_pack(self) -> list[int]:
        from optuna.trial import TrialState

        counted = [
            trial
            for trial in self._study.get_trials(deepcopy=False)
            if trial.state != TrialState.WAITING and ORPHAN_FAILURE not in trial.user_attrs
        ]
        size = min(self._pack, self._budget - len(counted))
        numbers: list[int] = []
        for _ in range(size):
            if numbers:
                first = self._storage.get_trial(self._optuna_id(numbers[0])).params
                shared = {k: v for k, v in first.items() if k in self._shared}
                self._study.enqueue_trial(shared)
            trial = self._study.ask()
            suggest_params(self._space, trial)
            pack = numbers[0] if numbers else trial.number
            trial.set_user_attr(PACK_ATTR, pack)
            numbers.append(trial.number)
        return numbers

    def _orphan_pack(self) -> list[int]:
        """The RUNNING configurations of one pack that no Tune trial owns (its driver died
        after asking them, before Tune saved the trial); those that cannot be replayed
        are told FAIL, as ``OptunaSearcher`` does."""
        from optuna.trial import TrialState

        owned = {number for numbers in self._packs.values() for number in numbers}
        packs: dict[int, list[int]] = {}
        for frozen in self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.number in owned:
                continue
            try:
                self._replay(frozen.number)
            except ValueError:
                self._storage.set_trial_user_attr(
                    self._optuna_id(frozen.number), ORPHAN_FAILURE, ORPHAN_REASON
                )
                self._study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
                continue
            packs.setdefault(int(frozen.user_attrs.get(PACK_ATTR, frozen.number)), []).append(
                frozen.number
            )
        return packs[min(packs)] if packs else []

    # --- results ---------------------------------------------------------------------------

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        numbers = self._packs.get(trial_id)
        if numbers is None:
            return
        step = result.get(_EPOCH)
        for number, slot in zip(numbers, payload.pack_slots(result, len(numbers)), strict=True):
            if slot is None:
                continue
            self._store_value(number, step, slot.get(self.metric), trial_id)
            if slot.get(payload.PRUNED) or payload.is_final(slot):
                self._tell_after_values(number, slot)

    def _tell_after_values(self, number: int, slot: Mapping[str, Any]) -> None:
        """Tell a configuration's end once the values handed over before it are stored."""
        state, value = self._outcome(None if slot.get(payload.PRUNED) else slot, error=False)
        study = self._study

        def tell() -> None:
            try:
                study.tell(number, value, state=state, skip_if_finished=True)
            except Exception:  # the trial stays RUNNING; the pack's completion tries again
                _logger.exception("end of Optuna trial %s not stored", number)

        self._reports().submit(tell)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        numbers = self._packs.get(trial_id)
        if numbers is None:
            _logger.warning("completion of unknown trial %s ignored (never suggested)", trial_id)
            return
        self.drain()
        slots = payload.pack_slots(result or {}, len(numbers))
        for number, slot in zip(numbers, slots, strict=True):
            if self._storage.get_trial(self._optuna_id(number)).state.is_finished():
                continue  # ended by its own entry (Optuna would say so at INFO level)
            pruned = slot is not None and slot.get(payload.PRUNED)
            state, value = self._outcome(None if pruned else slot, error)
            self._study.tell(number, value, state=state, skip_if_finished=True)
