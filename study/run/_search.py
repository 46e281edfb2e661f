"""Optuna TPE search (through Ray Tune) and the ASHA early-stopping scheduler.

``OptunaSearcher`` is a Ray Tune ``Searcher`` written on the public APIs of both
libraries: Optuna's ask-and-tell (``study.ask``/``study.tell`` by trial number) and its
storage interface (intermediate values), ``FixedTrial`` to replay a stored configuration;
Tune's ``Searcher`` hooks. It never builds an Optuna ``Trial`` itself, so a resumed
driver holds its RUNNING trials by number, not by live object. It runs in the Tune driver
process and needs no running Ray: tests call its hooks directly against an in-memory or
SQLite Optuna storage.
"""

from __future__ import annotations

import logging
import math
import pickle
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher

from study.request import SchedulerKind
from study.space import SearchSpace, suggest_params
from study.store import relocate
from study.tracking import Mode, payload

if TYPE_CHECKING:
    import optuna
    from optuna.trial import TrialState

    from actmix.metrics import Direction

__all__ = [
    "ORPHAN_FAILURE",
    "ORPHAN_REASON",
    "OptunaSearcher",
    "SchedulerKind",
    "build_scheduler",
    "build_searcher",
    "optuna_trial_counts",
    "trial_history",
]

_logger = logging.getLogger(__name__)
_DIRECTIONS: dict[str, Direction] = {"min": "minimize", "max": "maximize"}
_EPOCH = "training_iteration"  # Tune's step counter: one per reported epoch
# the user attribute that says why a trial is FAIL without having trained
ORPHAN_FAILURE = "failed_because"
ORPHAN_REASON = "its driver died before the trial had its whole configuration"


class OptunaSearcher(Searcher):
    """One Optuna trial per Tune trial, in a persistent study, the baseline first.

    Differences from Ray's ``OptunaSearch`` that a study relies on:

    - a trial stopped by ASHA before its final report is told as PRUNED (with its
      intermediate values), so Optuna's importances and dashboard tell it apart;
    - a non-finite objective is told as FAIL (Optuna refuses NaN as a value, and
      Ray's version leaves such a trial RUNNING in the storage forever);
    - after a killed driver, Tune's snapshot can be older than the Optuna storage:
      a RUNNING trial asked after the snapshot (an orphan) is adopted by the next
      new Tune trial instead of asking a new one, and results for a trial the
      storage already has as finished are ignored;
    - a restored searcher reseeds its sampler, so it does not replay the random
      draws it made after the snapshot (that would repeat an orphan's configuration).
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        metric: str,
        mode: Mode,
        baseline: Mapping[str, Any],
        sampler: optuna.samplers.BaseSampler,
        storage: optuna.storages.BaseStorage,
        study_name: str,
        warm: tuple[Mapping[str, Any], ...] = (),
    ) -> None:
        import optuna

        if mode not in _DIRECTIONS:
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        super().__init__(metric=metric, mode=mode)
        self._space = space
        self._storage = storage
        self._study = optuna.create_study(
            storage=storage,
            sampler=sampler,
            pruner=optuna.pruners.NopPruner(),  # Tune's scheduler stops trials, not Optuna
            study_name=study_name,
            direction=_DIRECTIONS[mode],
            load_if_exists=True,
        )
        # a searcher built again over an existing study must not queue the baseline twice
        self._study.enqueue_trial(dict(baseline), skip_if_exists=True)
        for point in warm:  # a warm start's configurations, best first, after it
            self._study.enqueue_trial(dict(point), skip_if_exists=True)
        self._study_id = storage.get_study_id_from_name(study_name)
        self._trials: dict[str, int] = {}  # Tune trial id -> its Optuna trial's number
        self._reporter: ThreadPoolExecutor | None = None  # started at the first result

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        number = self._trials.get(trial_id)
        if number is not None:  # asked again for a trial it already has: same configuration
            return self._replay(number)
        orphan = self._orphan_config()
        if orphan is not None:
            number, config = orphan
        else:
            trial = self._study.ask()
            # suggesting fills trial.params; an enqueued trial (the baseline) gets its own
            constants = suggest_params(self._space, trial)
            number, config = trial.number, {**trial.params, **constants}
        self._trials[trial_id] = number
        return config

    def _replay(self, number: int) -> dict[str, Any]:
        """The configuration trial ``number`` was given: its stored params, same constants."""
        import optuna

        params = self._storage.get_trial(self._optuna_id(number)).params
        fixed = optuna.trial.FixedTrial(params, number=number)
        return {**params, **suggest_params(self._space, fixed)}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        number = self._trials.get(trial_id)
        if number is not None:
            self._store_value(number, result.get(_EPOCH), result.get(self.metric), trial_id)

    def _store_value(self, number: int, step: Any, value: Any, trial_id: str) -> None:
        """Store trial ``number``'s objective at ``step`` (skipped when either is missing)."""
        import optuna

        if value is None or step is None:
            return
        storage, optuna_id = self._storage, self._optuna_id(number)

        def report() -> None:
            try:
                storage.set_trial_intermediate_value(optuna_id, int(step), float(value))
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # finished in the storage before the snapshot Tune resumed from
            except Exception:  # a lost intermediate value must not stop the study
                _logger.exception("intermediate value of trial %s not stored", trial_id)

        # one storage write per epoch of every trial: off Tune's event loop, in order
        self._reports().submit(report)

    def _optuna_id(self, number: int) -> int:
        return self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number)

    def _reports(self) -> ThreadPoolExecutor:
        if self._reporter is None:
            self._reporter = ThreadPoolExecutor(1, thread_name_prefix="optuna-report")
        return self._reporter

    def drain(self) -> None:
        """Wait until every intermediate value handed over so far is in the storage."""
        if self._reporter is not None:
            self._reporter.submit(lambda: None).result()

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        number = self._trials.get(trial_id)
        if number is None:
            _logger.warning("completion of unknown trial %s ignored (never suggested)", trial_id)
            return
        self.drain()  # its intermediate values first: a finished trial refuses them
        state, told = self._outcome(result, error)
        self._study.tell(number, told, state=state, skip_if_finished=True)

    def _outcome(
        self, result: Mapping[str, Any] | None, error: bool
    ) -> tuple[TrialState, float | None]:
        """What a trial that ended with ``result`` (its last report) is told."""
        from optuna.trial import TrialState

        value = (result or {}).get(self.metric)
        if value is not None and math.isfinite(float(value)) and payload.is_final(result or {}):
            return TrialState.COMPLETE, float(value)
        if (value is not None and not math.isfinite(float(value))) or error:
            return TrialState.FAIL, None
        # stopped by the scheduler (ASHA) before its final report: Optuna keeps the
        # intermediate values and takes the last one as the trial's value
        return TrialState.PRUNED, None

    def __getstate__(self) -> dict[str, Any]:
        """No live database objects: the storage as its URL, the Optuna trials as numbers.

        Tune pickles the searcher into its saved state; an unpickled Optuna study would
        carry its own copy of the storage, apart from the one the searcher opens.
        """
        import optuna

        self.drain()  # the snapshot must not be ahead of the storage
        state = self.__dict__.copy()
        state["_reporter"] = None
        storage, study = state.pop("_storage"), state.pop("_study")
        rdb = isinstance(storage, optuna.storages.RDBStorage)
        state["_storage"] = storage.url if rdb else storage  # in-memory: pickled as is
        state["_study"] = (study.study_name, study.sampler)
        state.pop("_study_id")  # the storage's key: looked up again on load
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import optuna

        state = dict(state)
        storage = state.pop("_storage")
        if isinstance(storage, str):
            # a resumed store that moved as a whole: the URL named the old folder
            storage = optuna.storages.RDBStorage(relocate(storage))
        name, sampler = state.pop("_study")
        numbers: dict[str, int] = state.pop("_trials")
        state["_reporter"] = None  # also absent from searchers pickled before it existed
        self.__dict__.update(state)
        self._storage = storage
        self._study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        self._study_id = storage.get_study_id_from_name(name)
        self._trials = dict(numbers)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__getstate__(), file)

    def restore(self, checkpoint_path: str) -> None:
        # the file is the one `save` wrote into the study's own store, beside the state Tune
        # itself unpickles on restore: never user input (the sampler's state needs pickle)
        with open(checkpoint_path, "rb") as file:
            self.__setstate__(pickle.load(file))
        # the sampler's generator is back where it was at the snapshot; its next draws
        # would repeat the ones made for trials asked after it (the orphans)
        self._study.sampler.reseed_rng()

    def _orphan_config(self) -> tuple[int, dict[str, Any]] | None:
        """A RUNNING trial of the study that no Tune trial owns, with its configuration.

        An orphan whose driver died before its params were all stored cannot be replayed:
        it is told FAIL (it never trained) and the next one is tried.
        """
        from optuna.trial import TrialState

        owned = set(self._trials.values())
        for frozen in self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.number in owned:
                continue
            try:
                return frozen.number, self._replay(frozen.number)
            except ValueError:  # FixedTrial: a param the orphan was never given
                self._storage.set_trial_user_attr(
                    self._optuna_id(frozen.number), ORPHAN_FAILURE, ORPHAN_REASON
                )
                self._study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
        return None


def build_searcher(
    space: SearchSpace,
    *,
    metric: str,
    mode: Mode,
    baseline: dict[str, Any],
    seed: int,
    n_startup_trials: int,
    storage_url: str,
    study_name: str,
    max_concurrent: int,
    model: str,
    pack: int = 1,
    trials: int = 0,
    warm: tuple[Mapping[str, Any], ...] = (),
) -> ConcurrencyLimiter:
    """Seeded multivariate TPE over ``space``, persisted in ``storage_url``, baseline first.

    The first ``n_startup_trials`` trials (the baseline among them) are random draws;
    TPE models the history only after them. With ``pack`` > 1 each Tune trial holds up
    to ``pack`` of the ``trials`` configurations (``PackSearcher``), and TPE counts
    pending configurations as evaluated (constant liar) so that pack-mates differ."""
    import optuna

    from study.run._pack_search import PackSearcher  # it builds on OptunaSearcher, above

    with warnings.catch_warnings():
        # multivariate TPE is flagged experimental but is stable and the better default here
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=seed,
            multivariate=True,
            n_startup_trials=n_startup_trials,
            constant_liar=pack > 1,
        )
    common: dict[str, Any] = {
        "metric": metric,
        "mode": mode,
        "baseline": baseline,
        "sampler": sampler,
        "storage": optuna.storages.RDBStorage(storage_url),
        "study_name": study_name,
    }
    searcher = (
        PackSearcher(space, model=model, pack=pack, budget=trials, **common)
        if pack > 1
        else OptunaSearcher(space, warm=warm, **common)  # a request refuses warm with packs
    )
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def build_scheduler(
    kind: SchedulerKind, *, max_t: int, grace_period: int, reduction_factor: float
) -> TrialScheduler:
    """ASHA on epochs (``training_iteration``) or plain FIFO; metric/mode come from TuneConfig."""
    if kind == "none":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr=_EPOCH,
        max_t=max_t,
        grace_period=min(grace_period, max_t),
        reduction_factor=reduction_factor,
    )


def optuna_trial_counts(storage_url: str, study_name: str) -> dict[str, int]:
    """Number of Optuna trials per state (COMPLETE, FAIL, RUNNING, ...)."""
    import optuna

    study = optuna.load_study(study_name=study_name, storage=storage_url)
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def trial_history(storage_url: str, study_name: str) -> list[dict[str, Any]]:
    """Every trial of a study as plain JSON, in the order Optuna numbered them.

    Per trial: ``number``, ``state``, ``value``, ``params``, ``distributions`` (Optuna's
    JSON form, so an importance can be recomputed), ``intermediate_values`` (epoch ->
    value) and ``user_attrs``: what convergence and importance checks need without the
    store.
    """
    import optuna

    study = optuna.load_study(study_name=study_name, storage=storage_url)
    return [
        {
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value,
            "params": dict(trial.params),
            "distributions": {
                name: optuna.distributions.distribution_to_json(distribution)
                for name, distribution in trial.distributions.items()
            },
            "intermediate_values": {
                str(step): value for step, value in sorted(trial.intermediate_values.items())
            },
            "user_attrs": dict(trial.user_attrs),
        }
        for trial in study.get_trials(deepcopy=False)
    ]
