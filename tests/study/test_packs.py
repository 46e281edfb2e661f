"""Packed trials without Ray: what pack-mates share, the pack searcher through Tune's hooks,
the rung rule against Ray's own ASHA bracket, and each configuration's MLflow run."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.schedulers.async_hyperband import _Bracket
from ray.tune.search import Searcher

from actmix.config import RunConfig
from actmix.packs import check_pack
from study.run._pack_search import PACK_ATTR, PackSearcher
from study.run._rungs import Rungs, RungSpec
from study.space import baseline_point, config_from_sample, load_space, structural_names
from study.tracking import MlflowTrialLogger, client_for, open_study_run, payload, trial_runs

optuna.logging.set_verbosity(optuna.logging.WARNING)

METRIC = "val_rmse_mean"
SPACE = load_space("actmix")


def _searcher(storage: optuna.storages.BaseStorage, *, pack: int, budget: int) -> PackSearcher:
    return PackSearcher(
        SPACE,
        model="actmix",
        pack=pack,
        budget=budget,
        metric=METRIC,
        mode="min",
        baseline=baseline_point(SPACE, RunConfig(), epochs=20),
        sampler=optuna.samplers.TPESampler(seed=1, constant_liar=True),
        storage=storage,
        study_name="packed",
    )


def _trials(storage: optuna.storages.BaseStorage) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="packed", storage=storage).trials


def _configs(suggestion: dict[str, Any]) -> list[RunConfig]:
    return [
        config_from_sample(SPACE, sample, base=RunConfig(), epochs=20)
        for sample in suggestion[payload.PACK_CONFIGS]
    ]


def test_structural_names_are_what_fixes_the_network():
    names = structural_names(SPACE, "actmix")
    assert {"mlp.width", "mlp.depth", "train.batch_size", "mlp.activation.basis"} <= names
    per_member = {"train.lr", "mlp.dropout", "mlp.activation.relu_bias", "mlp.activation.omega_0"}
    assert not per_member & names
    # a zero_or param's flag follows its param: weight decay may differ between pack-mates
    assert "train.weight_decay.enabled" not in names


def test_pack_mates_share_the_network_and_differ_in_the_rest():
    storage = optuna.storages.InMemoryStorage()
    searcher = _searcher(storage, pack=4, budget=8)
    packs = [searcher.suggest(f"t{index}") for index in range(2)]
    for suggestion in packs:
        configs = _configs(suggestion)
        check_pack(configs)  # they can train as one network
        assert len({(c.train.lr, c.mlp.dropout) for c in configs}) == 4  # not duplicates
    assert [s[payload.PACK_NUMBERS] for s in packs] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    trials = _trials(storage)
    assert trials[0].params == baseline_point(SPACE, RunConfig(), epochs=20)  # seed default first
    assert [t.user_attrs[PACK_ATTR] for t in trials] == [0, 0, 0, 0, 4, 4, 4, 4]


def test_the_last_pack_takes_what_is_left_of_the_budget_then_the_search_ends():
    searcher = _searcher(optuna.storages.InMemoryStorage(), pack=4, budget=6)
    assert len(searcher.suggest("a")[payload.PACK_NUMBERS]) == 4
    assert searcher.suggest("b")[payload.PACK_NUMBERS] == [4, 5]
    assert searcher.suggest("c") == Searcher.FINISHED


def test_each_configuration_is_told_by_its_own_entry():
    storage = optuna.storages.InMemoryStorage()
    searcher = _searcher(storage, pack=3, budget=3)
    searcher.suggest("t")
    first = {payload.EPOCH: 0, METRIC: 3.0, payload.PACK: [{METRIC: 3.0}, {METRIC: 4.0}, None]}
    searcher.on_trial_result("t", {**first, "training_iteration": 1})
    stopped = [{METRIC: 2.5}, {METRIC: 5.0, payload.PRUNED: True}, None]
    searcher.on_trial_result("t", {METRIC: 2.5, payload.PACK: stopped, "training_iteration": 2})
    searcher.drain()
    assert [t.state for t in _trials(storage)][1] == TrialState.PRUNED  # at once
    final = [{METRIC: 2.0, payload.FINAL: True}, None, {METRIC: math.nan, payload.FINAL: True}]
    last = {METRIC: 2.0, payload.PACK: final, payload.FINAL: True, "training_iteration": 3}
    searcher.on_trial_result("t", last)
    searcher.on_trial_complete("t", result=last)
    trials = _trials(storage)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    assert trials[0].value == 2.0 and trials[0].intermediate_values == {1: 3.0, 2: 2.5, 3: 2.0}
    assert trials[1].intermediate_values == {1: 4.0, 2: 5.0}


def test_a_pack_that_errors_fails_every_configuration_not_yet_ended():
    storage = optuna.storages.InMemoryStorage()
    searcher = _searcher(storage, pack=2, budget=2)
    searcher.suggest("t")
    searcher.on_trial_result(
        "t", {METRIC: 1.0, payload.PACK: [{METRIC: 1.0, payload.PRUNED: True}, {METRIC: 2.0}]}
    )
    searcher.on_trial_complete("t", error=True)
    assert [t.state for t in _trials(storage)] == [TrialState.PRUNED, TrialState.FAIL]


def test_an_orphan_pack_is_adopted_whole_and_its_configurations_not_sampled_again(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    live = _searcher(storage, pack=2, budget=6)
    live.suggest("t0")
    snapshot = tmp_path / "searcher.pkl"
    live.save(str(snapshot))
    orphan = live.suggest("t1")  # asked after the snapshot; then the driver died
    restored = _searcher(storage, pack=2, budget=6)
    restored.restore(str(snapshot))
    assert restored.suggest("t1-again") == orphan  # Tune never saw t1: a new trial id
    fresh = restored.suggest("t2")
    assert fresh[payload.PACK_NUMBERS] == [4, 5]
    assert restored.suggest("t3") == Searcher.FINISHED  # 6 configurations, none asked twice
    assert len(_trials(storage)) == 6


# --- the rung board's rule ---------------------------------------------------------------


@dataclass
class _Named:
    trial_id: str


@pytest.mark.parametrize("mode", ["min", "max"])
def test_rungs_stop_exactly_what_rays_asha_bracket_stops(mode):
    spec = RungSpec("board", grace_period=2, reduction_factor=3.0, max_t=41, mode=mode)
    rungs, bracket = Rungs(spec), _Bracket(min_t=2, max_t=41, reduction_factor=3.0, s=0)
    generator = random.Random(7)
    live = {key: True for key in range(30)}
    for iteration in range(1, 41):
        for key in [k for k, on in live.items() if on]:
            value = generator.gauss(0.0, 1.0)
            reward = value if mode == "max" else -value
            expected = bracket.on_result(_Named(str(key)), iteration, reward) == "STOP"
            assert rungs.decide(key, iteration, value) == expected, (key, iteration)
            live[key] = not expected
    assert 0 < sum(live.values()) < 30  # some stopped, some went on


def test_restored_rungs_repeat_their_decisions_and_cut_as_before():
    spec = RungSpec("board", grace_period=1, reduction_factor=2.0, max_t=9, mode="min")
    original = Rungs(spec)
    history: list[dict[str, Any]] = []
    for key, values in enumerate([[1.0, 0.9, 0.8, 0.7], [2.0, 1.9], [0.5, 0.4, 0.3, 0.2]]):
        steps: dict[str, float] = {}
        state = "COMPLETE"
        for iteration, value in enumerate(values, start=1):
            steps[str(iteration)] = value
            if original.decide(key, iteration, value):
                state = "PRUNED"
                break
        history.append({"number": key, "state": state, "intermediate_values": steps})
    assert [h["state"] for h in history] == ["COMPLETE", "PRUNED", "COMPLETE"]
    restored = Rungs(spec)
    restored.restore(history)
    assert restored.recorded == original.recorded
    assert restored.decide(1, 2, 1.9) is True  # a replay after a restore: the same decision
    assert restored.decide(0, 2, 0.9) is False
    assert restored.decide(9, 1, 1.5) == original.decide(9, 1, 1.5)


# --- one MLflow run per configuration ----------------------------------------------------


@dataclass
class _PackTrial:
    trial_id: str
    config: dict[str, Any]
    experiment_tag: str = "1_configs=..."
    last_result: dict[str, Any] = field(default_factory=dict)
    error_file: str | None = None
    status: str = "RUNNING"

    def get_error(self) -> str | None:
        return None


def _full(sample: dict[str, Any]) -> dict[str, Any]:
    return {"sampled": sample}


def test_each_configuration_of_a_pack_has_its_own_run_ended_by_its_own_entry(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id, parent = open_study_run(
        uri, "packs", artifact_location=(tmp_path / "a").as_uri(), params={}, tags={}
    )
    lines: list[str] = []
    logger = MlflowTrialLogger(
        uri=uri,
        experiment_id=experiment_id,
        parent_run_id=parent,
        study="packs",
        dataset="power_plant",
        model="relu",
        objective=METRIC,
        mode="min",
        config_for_trial=_full,
        report=lines.append,
        trials=2,
    )
    config = {
        payload.PACK_CONFIGS: [{"train.lr": 0.01}, {"train.lr": 0.001}],
        payload.PACK_NUMBERS: [6, 7],
    }
    trial = _PackTrial("tp", config)
    logger.on_trial_start(0, [trial], trial)
    epoch = {payload.EPOCH: 0, METRIC: 1.0}
    logger.on_trial_result(0, [trial], trial, {**epoch, payload.PACK: [epoch, epoch]})
    pruned = {payload.EPOCH: 1, METRIC: 3.0, payload.PRUNED: True}
    second = {payload.EPOCH: 1, METRIC: 0.9}
    logger.on_trial_result(0, [trial], trial, {**second, payload.PACK: [second, pruned]})
    runs = {run.info.run_name: run for run in trial_runs(uri, experiment_id, parent)}
    assert runs["trial-0007"].info.status == "FINISHED"  # at the report that stopped it
    assert runs["trial-0007"].data.tags["stopped_early"] == "true"
    assert runs["trial-0006"].info.status == "RUNNING"
    final = {
        payload.EPOCH: 2,
        METRIC: 0.8,
        payload.FINAL: True,
        payload.FOLD_SCORES: [0.7, 0.9],
        payload.DIVERGED_MEMBERS: 0,
    }
    logger.on_trial_result(0, [trial], trial, {**final, payload.PACK: [final, None]})
    logger.on_trial_complete(0, [trial], trial)
    logger.on_experiment_end([trial])
    runs = {run.info.run_name: run for run in trial_runs(uri, experiment_id, parent)}
    assert set(runs) == {"trial-0006", "trial-0007"}
    assert runs["trial-0006"].info.status == "FINISHED"
    assert runs["trial-0006"].data.params == {"train.lr": "0.01"}
    client = client_for(uri)
    steps = [m.step for m in client.get_metric_history(runs["trial-0007"].info.run_id, METRIC)]
    assert steps == [0, 1]
    assert [line.split("  [")[0] for line in lines] == [
        "trial-0007 stopped early val_rmse_mean=3.0000",
        "trial-0006 finished val_rmse_mean=0.8000",
    ]
    assert lines[-1].split("  [")[1].startswith("2/2 done, 0 running")
