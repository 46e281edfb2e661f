"""The Optuna searcher, driven through Tune's hooks by hand: no Ray is started."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from actmix.config import RunConfig
from study.run import (
    ORPHAN_FAILURE,
    ORPHAN_REASON,
    OptunaSearcher,
    build_searcher,
    optuna_trial_counts,
)
from study.space import SearchSpace, baseline_point, config_from_sample, load_space
from study.tracking.payload import FINAL

optuna.logging.set_verbosity(optuna.logging.WARNING)

METRIC = "val_loss"
NAME = "unit-study"
SPACE = load_space("actmix")
BASELINE = baseline_point(SPACE, RunConfig(), epochs=200)


def make_searcher(storage: optuna.storages.BaseStorage, *, seed: int = 0) -> OptunaSearcher:
    return OptunaSearcher(
        SPACE,
        metric=METRIC,
        mode="min",
        baseline=BASELINE,
        sampler=optuna.samplers.TPESampler(seed=seed),
        storage=storage,
        study_name=NAME,
    )


def trials_of(storage: optuna.storages.BaseStorage) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=NAME, storage=storage).trials


@pytest.fixture(scope="module")
def empty_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Optuna SQLite file with its schema: creating the schema takes seconds, a copy not."""
    path = tmp_path_factory.mktemp("optuna") / "empty.db"
    optuna.storages.RDBStorage(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, empty_database: Path) -> str:
    shutil.copy(empty_database, tmp_path / "optuna.db")
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def test_the_first_trial_is_the_baseline_and_builds_the_seed_config():
    import ray

    storage = optuna.storages.InMemoryStorage()
    searcher = make_searcher(storage)
    first = searcher.suggest("trial_0")
    second = searcher.suggest("trial_1")
    assert {key: first[key] for key in BASELINE} == BASELINE
    seed = RunConfig()
    baseline_config = config_from_sample(SPACE, BASELINE, base=seed, epochs=200)
    assert config_from_sample(SPACE, first, base=seed, epochs=200) == baseline_config
    assert second["train.lr"] != first["train.lr"]  # sampled, not the baseline again
    assert [t.state for t in trials_of(storage)] == [TrialState.RUNNING] * 2
    assert not ray.is_initialized()


def test_a_searcher_built_again_over_the_study_does_not_queue_the_baseline_twice(sqlite_url):
    storage = optuna.storages.RDBStorage(sqlite_url)
    first = make_searcher(storage)
    first.suggest("trial_0")
    first.on_trial_complete("trial_0", result={METRIC: 1.0})
    again = make_searcher(storage)
    sample = again.suggest("trial_1")
    assert sample["train.lr"] != BASELINE["train.lr"]
    assert len(trials_of(storage)) == 2


@pytest.mark.parametrize(
    ("result", "error", "state", "value"),
    [
        ({METRIC: 0.25, FINAL: True}, False, TrialState.COMPLETE, 0.25),
        ({METRIC: math.nan}, False, TrialState.FAIL, None),
        ({METRIC: math.inf}, False, TrialState.FAIL, None),
        ({METRIC: -math.inf}, False, TrialState.FAIL, None),
        (None, True, TrialState.FAIL, None),
        ({METRIC: math.nan, FINAL: True}, False, TrialState.FAIL, None),
        (None, False, TrialState.PRUNED, None),
    ],
    ids=["final", "nan", "inf", "-inf", "error", "final-nan", "stopped"],
)
def test_completion_is_told_with_the_right_state(result, error, state, value):
    storage = optuna.storages.InMemoryStorage()
    searcher = make_searcher(storage)
    searcher.suggest("trial_0")
    searcher.on_trial_complete("trial_0", result=result, error=error)
    (trial,) = trials_of(storage)
    assert trial.state == state and trial.value == value


def test_a_trial_stopped_by_asha_is_pruned_with_its_intermediate_values():
    storage = optuna.storages.InMemoryStorage()
    searcher = make_searcher(storage)
    searcher.suggest("trial_0")
    for epoch, loss in enumerate([0.9, 0.5], start=1):
        searcher.on_trial_result("trial_0", {METRIC: loss, "training_iteration": epoch})
    # Tune completes a stopped trial with its last epoch's result: no final report
    searcher.on_trial_complete("trial_0", result={METRIC: 0.5, "training_iteration": 2})
    (trial,) = trials_of(storage)
    assert trial.state == TrialState.PRUNED
    assert trial.intermediate_values == {1: 0.9, 2: 0.5} and trial.value == 0.5


def test_intermediate_results_are_reported_per_epoch():
    storage = optuna.storages.InMemoryStorage()
    searcher = make_searcher(storage)
    searcher.suggest("trial_0")
    for epoch, loss in enumerate([0.9, 0.5, 0.4], start=1):
        searcher.on_trial_result("trial_0", {METRIC: loss, "training_iteration": epoch})
    searcher.on_trial_result("trial_0", {"training_iteration": 4})  # no metric: skipped
    searcher.drain()
    assert trials_of(storage)[0].intermediate_values == {1: 0.9, 2: 0.5, 3: 0.4}


class _SlowStorage(optuna.storages.InMemoryStorage):
    """A storage whose intermediate-value write takes as long as a busy database's."""

    def set_trial_intermediate_value(self, trial_id, step, intermediate_value):
        time.sleep(0.2)
        super().set_trial_intermediate_value(trial_id, step, intermediate_value)


def test_intermediate_values_are_written_off_the_event_loop_and_in_before_a_snapshot():
    storage = _SlowStorage()
    searcher = make_searcher(storage)
    searcher.suggest("trial_0")
    began = time.perf_counter()
    for epoch in range(1, 6):
        searcher.on_trial_result("trial_0", {METRIC: 1.0 / epoch, "training_iteration": epoch})
    assert time.perf_counter() - began < 0.5  # five writes of 0.2 s each are not waited for
    searcher.__getstate__()  # what Tune pickles: only after every value is stored
    assert trials_of(storage)[0].intermediate_values == {e: 1.0 / e for e in range(1, 6)}


def test_results_for_a_trial_already_finished_in_the_storage_are_ignored(tmp_path, sqlite_url):
    storage = optuna.storages.RDBStorage(sqlite_url)
    snapshot = tmp_path / "searcher.pkl"
    live = make_searcher(storage)
    live.suggest("trial_0")
    live.save(str(snapshot))  # Tune's snapshot: trial_0 still running
    live.on_trial_result("trial_0", {METRIC: 0.5, "training_iteration": 1})
    live.on_trial_complete("trial_0", result={METRIC: 0.5, FINAL: True})
    # the driver died; the restored searcher hears about trial_0 again
    restored = make_searcher(storage)
    restored.restore(str(snapshot))
    restored.on_trial_result("trial_0", {METRIC: 0.1, "training_iteration": 2})
    restored.on_trial_complete("trial_0", result={METRIC: 0.1, FINAL: True})
    restored.on_trial_complete("trial_0", result=None, error=True)
    (trial,) = trials_of(storage)
    assert trial.state == TrialState.COMPLETE and trial.value == 0.5
    assert trial.intermediate_values == {1: 0.5}


def test_an_orphan_running_trial_is_adopted_once_and_not_sampled_again(tmp_path, sqlite_url):
    storage = optuna.storages.RDBStorage(sqlite_url)
    snapshot = tmp_path / "searcher.pkl"
    live = make_searcher(storage)
    live.suggest("trial_0")
    live.on_trial_complete("trial_0", result={METRIC: 1.0, FINAL: True})
    live.save(str(snapshot))
    orphan = live.suggest("trial_1")  # asked after the snapshot, then the driver died
    restored = make_searcher(storage)
    restored.restore(str(snapshot))
    adopted = restored.suggest("trial_1_rerun")  # Tune never saw trial_1: a new trial id
    fresh = restored.suggest("trial_2")
    assert adopted == orphan
    assert fresh != orphan  # the restored sampler did not replay the draw it made for trial_1
    for trial_id in ("trial_1_rerun", "trial_2"):
        restored.on_trial_complete(trial_id, result={METRIC: 0.5, FINAL: True})
    trials = trials_of(storage)
    assert [t.number for t in trials] == [0, 1, 2]  # one Optuna trial per Tune trial
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert trials[1].params == {key: orphan[key] for key in trials[1].params}


def test_a_fresh_searcher_adopts_each_orphan_once():
    storage = optuna.storages.InMemoryStorage()
    dead = make_searcher(storage)
    orphans = [dead.suggest(f"old_{index}") for index in range(2)]
    survivor = make_searcher(storage)
    adopted = [survivor.suggest(f"new_{index}") for index in range(3)]
    assert adopted[:2] == orphans
    assert len(trials_of(storage)) == 3


def test_a_trial_running_at_the_snapshot_reports_and_is_told_after_a_restore(tmp_path, sqlite_url):
    storage = optuna.storages.RDBStorage(sqlite_url)
    snapshot = tmp_path / "searcher.pkl"
    live = make_searcher(storage)
    live.suggest("trial_0")
    config = live.suggest("trial_1")
    live.on_trial_result("trial_1", {METRIC: 0.7, "training_iteration": 1})
    live.save(str(snapshot))
    restored = make_searcher(storage)
    restored.restore(str(snapshot))
    assert restored.suggest("trial_1") == config  # asked again: the same configuration
    restored.on_trial_result("trial_1", {METRIC: 0.6, "training_iteration": 2})
    restored.on_trial_complete("trial_1", result={METRIC: 0.6, FINAL: True})
    trial = trials_of(storage)[1]
    assert trial.state == TrialState.COMPLETE and trial.value == 0.6
    assert trial.intermediate_values == {1: 0.7, 2: 0.6}
    assert len(trials_of(storage)) == 2  # no new trial was asked for it


def test_an_orphan_the_driver_gave_no_params_is_failed_not_adopted():
    storage = optuna.storages.InMemoryStorage()
    survivor = make_searcher(storage)
    survivor.suggest("trial_0")  # the baseline
    bare = survivor._study.ask()  # asked, then the driver died before suggesting its params
    config = survivor.suggest("trial_1")
    states = {t.number: t.state for t in trials_of(storage)}
    assert states[bare.number] == TrialState.FAIL
    assert trials_of(storage)[bare.number].user_attrs == {ORPHAN_FAILURE: ORPHAN_REASON}
    assert set(config) >= {p.name for p in SPACE.params}  # a whole configuration


def test_mode_must_be_min_or_max():
    with pytest.raises(ValueError, match="mode must be 'min' or 'max', got 'minimize'"):
        OptunaSearcher(
            SPACE,
            metric=METRIC,
            mode="minimize",
            baseline=BASELINE,
            sampler=optuna.samplers.RandomSampler(),
            storage=optuna.storages.InMemoryStorage(),
            study_name=NAME,
        )


def _searcher_for(
    space: SearchSpace, url: str, *, seed: int, max_concurrent: int, n_startup_trials: int = 10
) -> Any:
    return build_searcher(
        space,
        metric=METRIC,
        mode="min",
        baseline=baseline_point(space, RunConfig(model=space.model), epochs=200),
        seed=seed,
        n_startup_trials=n_startup_trials,
        storage_url=url,
        study_name=NAME,
        max_concurrent=max_concurrent,
        model=space.model,
    )


def test_build_searcher_is_seeded_and_limits_concurrency(tmp_path, empty_database):
    space = load_space("mlp")
    urls = []
    for name in ("a.db", "b.db"):
        shutil.copy(empty_database, tmp_path / name)
        urls.append(f"sqlite:///{tmp_path / name}")
    first = _searcher_for(space, urls[0], seed=3, max_concurrent=2)
    second = _searcher_for(space, urls[1], seed=3, max_concurrent=2)
    samples = [first.suggest("trial_0"), first.suggest("trial_1")]
    assert first.suggest("trial_2") is None  # two running already
    assert [second.suggest("trial_0"), second.suggest("trial_1")] == samples


def test_the_random_start_up_ends_after_n_startup_trials(tmp_path, empty_database):
    """Same seed, same history: TPE (start-up over) and random draws (start-up not over)
    propose different next configurations; within the start-up both draw the same."""
    space = load_space("mlp")
    proposals = {}
    for startup in (3, 100):
        shutil.copy(empty_database, tmp_path / f"{startup}.db")
        url = f"sqlite:///{tmp_path / f'{startup}.db'}"
        searcher = _searcher_for(space, url, seed=5, max_concurrent=1, n_startup_trials=startup)
        drawn = []
        for index in range(4):
            drawn.append(searcher.suggest(f"trial_{index}"))
            searcher.on_trial_complete(f"trial_{index}", result={METRIC: float(index), FINAL: True})
        proposals[startup] = drawn
    assert proposals[3][:3] == proposals[100][:3]
    assert proposals[3][3] != proposals[100][3]


def test_optuna_trial_counts_counts_each_state(sqlite_url):
    url = sqlite_url
    searcher = make_searcher(optuna.storages.RDBStorage(url))
    outcomes = [
        ({METRIC: 0.3, FINAL: True}, False),
        ({METRIC: 0.2, FINAL: True}, False),
        ({METRIC: math.nan}, False),
        (None, False),
    ]
    for index, (result, error) in enumerate(outcomes):
        searcher.suggest(f"trial_{index}")
        searcher.on_trial_complete(f"trial_{index}", result=result, error=error)
    searcher.suggest("trial_running")
    counts = optuna_trial_counts(url, NAME)
    assert counts == {"COMPLETE": 2, "FAIL": 1, "PRUNED": 1, "RUNNING": 1}
