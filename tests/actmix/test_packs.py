"""Packs: configurations sharing a network's shape train as one network, each as alone."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from actmix.config import (
    XGBOOST,
    EntropySchedule,
    MLPConfig,
    RunConfig,
    TemperatureSchedule,
    TrainConfig,
)
from actmix.cv import build_members
from actmix.packs import build_pack, check_pack, select_members
from actmix.preprocessing import prepare_fold
from actmix.splits import make_folds
from actmix.trainer import fit
from tests.actmix.synthetic import make_regression_dataset

TRAIN = TrainConfig(epochs=8, batch_size=32, patience=3)
BASE = RunConfig(model="actmix", mlp=MLPConfig(widths=(16, 16), dropout=0.1), train=TRAIN)
# three configurations that differ in knobs a pack lets each member keep
CONFIGS = [
    BASE,
    dataclasses.replace(
        BASE,
        mlp=MLPConfig(widths=(16, 16), dropout=0.3, activation={"relu_bias": 1.5}),
        train=dataclasses.replace(TRAIN, lr=3e-3, weight_decay=0.0),
    ),
    dataclasses.replace(
        BASE,
        mlp=MLPConfig(widths=(16, 16), dropout=0.0, activation={"omega_0": 3.0}),
        train=dataclasses.replace(
            TRAIN,
            temperature=TemperatureSchedule(initial=2.0, final=0.1, anneal_epochs=6),
            entropy=EntropySchedule(lambda_max=0.05, warmup_epochs=2),
            grad_clip=0.1,
        ),
    ),
]


@pytest.fixture(scope="module")
def folds():
    dataset = make_regression_dataset(160, seed=4)
    splits = make_folds(dataset, 2, 0)
    return dataset, [prepare_fold(dataset, fold) for fold in splits.folds]


def test_each_configuration_of_a_pack_trains_as_it_would_alone(folds):
    dataset, arrays = folds
    pack = build_pack(dataset, CONFIGS, arrays, seeds=[7])
    assert [c for c, _, _ in pack.members] == [0, 0, 1, 1, 2, 2]
    result = fit(pack.model, pack.data, pack.train, task="regression", device="cpu")
    for c, config in enumerate(CONFIGS):
        alone = build_members(dataset, config, arrays, [7])
        alone_result = fit(alone.model, alone.data, config.train, task="regression", device="cpu")
        for j, k in enumerate(pack.of(c)):
            for name, tensor in alone.model.state_dict().items():
                packed = pack.model.state_dict()[name][k]
                assert torch.allclose(tensor[j], packed, atol=1e-5), (c, name)
            ours, theirs = result.members[k], alone_result.members[j]
            assert (ours.best_epoch, ours.epochs_run) == (theirs.best_epoch, theirs.epochs_run)


def test_configurations_that_differ_in_shape_are_refused():
    def changed(**mlp) -> RunConfig:
        return dataclasses.replace(BASE, mlp=dataclasses.replace(BASE.mlp, **mlp))

    cases = [
        (changed(widths=(32, 16)), "mlp.widths differs"),
        (changed(activation={"basis": ["sin", "relu"]}), "mlp.activation.basis differs"),
        (dataclasses.replace(BASE, train=dataclasses.replace(TRAIN, epochs=9)), "train.epochs"),
        (dataclasses.replace(BASE, train=dataclasses.replace(TRAIN, batch_size=64)), "batch_size"),
        (dataclasses.replace(BASE, model="relu"), "model differs"),
    ]
    for other, message in cases:
        with pytest.raises(ValueError, match=message):
            check_pack([BASE, other])
    with pytest.raises(ValueError, match="xgboost configurations are not packed"):
        check_pack([RunConfig(model=XGBOOST)])


def test_a_configuration_stopped_from_outside_leaves_the_others_untouched(folds):
    dataset, arrays = folds
    runs = []
    for stopping in (False, True):
        pack = build_pack(dataset, CONFIGS, arrays, seeds=[7])
        stopped = set(pack.of(1))

        def stop(epoch: int, _record, stopped=stopped, stopping=stopping) -> set[int]:
            return stopped if stopping and epoch == 2 else set()

        result = fit(pack.model, pack.data, pack.train, task="regression", device="cpu", stop=stop)
        runs.append((pack, result))
    (free, free_result), (cut, cut_result) = runs
    for k in range(len(free.members)):
        if k in cut.of(1):
            assert cut_result.members[k].epochs_run == 3  # epochs 0, 1 and 2
        else:
            assert cut_result.members[k] == free_result.members[k]
            for name, tensor in free.model.state_dict().items():
                assert torch.allclose(tensor[k], cut.model.state_dict()[name][k], atol=1e-6)
    assert any(r.epochs_run > 3 for r in free_result.members)  # the stop cut something short


class _Stopped(Exception):
    def __init__(self, checkpoint) -> None:
        super().__init__("stopped")
        self.checkpoint = checkpoint


def test_stopped_configurations_leave_the_network_and_the_rest_go_on_where_they_were(folds):
    """Epoch 2 stops configuration 1; the other two either go on in the same network or
    continue in a network of their members only (selected from that epoch's checkpoint,
    which the stop makes fit hand over): the same training either way."""
    dataset, arrays = folds
    whole = build_pack(dataset, CONFIGS, arrays, seeds=[7])

    def stop(epoch: int, _record) -> list[int]:
        return whole.of(1) if epoch == 2 else []

    kept = fit(whole.model, whole.data, whole.train, task="regression", device="cpu", stop=stop)

    def leave(_epoch: int, record) -> None:
        if record.checkpoint is not None:  # only the stopping epoch has one here
            raise _Stopped(record.checkpoint)

    first = build_pack(dataset, CONFIGS, arrays, seeds=[7])
    with pytest.raises(_Stopped) as stopped:
        fit(first.model, first.data, first.train, task="regression", stop=stop, on_epoch=leave)
    survivors = [k for c in (0, 2) for k in first.of(c)]
    state = select_members(stopped.value.checkpoint, survivors)
    assert state["epoch"] == 3 and len(state["shufflers"]) == 4
    smaller = build_pack(dataset, [CONFIGS[0], CONFIGS[2]], arrays, seeds=[7])
    rest = fit(smaller.model, smaller.data, smaller.train, task="regression", resume_from=state)
    for new, old in enumerate(survivors):
        assert rest.members[new] == kept.members[old]
        for name, tensor in smaller.model.state_dict().items():
            assert torch.allclose(tensor[new], whole.model.state_dict()[name][old], atol=1e-6)
    with pytest.raises(ValueError, match=r"keep must name distinct members of 0\.\.5"):
        select_members(stopped.value.checkpoint, [0, 0])
