import dataclasses
import math

import numpy as np
import pytest
import torch

from actmix.config import EntropySchedule, TemperatureSchedule, TrainConfig
from actmix.mlp import MLP
from actmix.trainer import MemberData, fit, predict, resolve_device


def _regression_members(sizes, seed=0, features=3):
    rng = np.random.default_rng(seed)
    members = []
    for k, n in enumerate(sizes):
        x = rng.normal(size=(n + 40, features)).astype(np.float32)
        y = (np.sin(2 * x[:, 0]) + 0.5 * x[:, 1]).astype(np.float32)
        members.append(MemberData(x[:n], y[:n], x[n:], y[n:], seed=100 + k, target_std=2.0))
    return members


def _model(members, activation="actmix", dropout=0.1, out=1):
    return MLP(
        3,
        out,
        (16, 16),
        activation,
        dropout=dropout,
        members=len(members),
        seed=[m.seed for m in members],
    )


CONFIG = TrainConfig(
    epochs=12,
    batch_size=32,
    patience=4,
    temperature=TemperatureSchedule(initial=1.0, final=0.2, anneal_epochs=8),
    entropy=EntropySchedule(lambda_max=0.01, warmup_epochs=4),
)


def test_batched_members_equal_separate_single_runs():
    # different training sizes: members run different numbers of minibatches per epoch
    # (5, 7 and 5 of 32 rows; every member has >= 4 batches, so effective_batch_size
    # keeps 32 both batched and alone)
    members = _regression_members([130, 200, 140])
    batched = _model(members)
    batched_result = fit(batched, members, CONFIG, task="regression", device="cpu")
    for k, member in enumerate(members):
        single = _model([member])
        single_result = fit(single, [member], CONFIG, task="regression", device="cpu")
        for name, tensor in single.state_dict().items():
            assert torch.allclose(tensor[0], batched.state_dict()[name][k], atol=1e-5), (k, name)
        ours, theirs = batched_result.members[k], single_result.members[0]
        assert (ours.best_epoch, ours.epochs_run) == (theirs.best_epoch, theirs.epochs_run)
        assert ours.best_val_loss == pytest.approx(theirs.best_val_loss, rel=1e-5)


# one setting per knob, far enough from CONFIG's to change how a member trains
KNOBS = {
    "lr": {"lr": 4e-3},
    "eta_min_factor": {"eta_min_factor": 0.5},
    "weight_decay": {"weight_decay": 0.2},
    "grad_clip": {"grad_clip": 0.02},
    "patience": {"patience": 1},
    "temperature": {
        "temperature": TemperatureSchedule(
            initial=3.0, final=0.05, anneal_epochs=6, schedule="cosine"
        )
    },
    "entropy": {"entropy": EntropySchedule(lambda_max=0.5, warmup_epochs=2)},
    "no_entropy": {"entropy": EntropySchedule(lambda_max=0.0)},
}


def _alone(member: MemberData, config: TrainConfig):
    model = _model([member])
    return model, fit(model, [member], config, task="regression", device="cpu")


@pytest.mark.parametrize("knob", KNOBS)
def test_a_member_with_its_own_setting_trains_as_it_would_alone(knob):
    """Two members, two configurations differing in one knob, trained as one network:
    each member ends where it would alone with its own configuration."""
    members = _regression_members([130, 150])
    # a large step makes the validation loss wobble, so that patience has work to do
    base = dataclasses.replace(CONFIG, lr=0.05) if knob == "patience" else CONFIG
    other = dataclasses.replace(base, **KNOBS[knob])
    packed = _model(members)
    result = fit(packed, members, [base, other], task="regression", device="cpu")
    alone = [_alone(member, config) for member, config in zip(members, [base, other], strict=True)]
    for k, (single, single_result) in enumerate(alone):
        for name, tensor in single.state_dict().items():
            assert torch.allclose(tensor[0], packed.state_dict()[name][k], atol=1e-5), (k, name)
        ours, theirs = result.members[k], single_result.members[0]
        assert (ours.best_epoch, ours.epochs_run) == (theirs.best_epoch, theirs.epochs_run)
        assert ours.best_val_loss == pytest.approx(theirs.best_val_loss, rel=1e-5)
        for epoch, record in zip(result.history, single_result.history, strict=False):
            assert (epoch.lr[k], epoch.temperature[k], epoch.entropy_weight[k]) == (
                record.lr[0],
                record.temperature[0],
                record.entropy_weight[0],
            )
    # the knob mattered: member 1 under the base configuration would have ended elsewhere
    default, default_result = _alone(members[1], base)
    changed = alone[1][1].members[0] != default_result.members[0] or any(
        not torch.equal(a, b)
        for a, b in zip(
            default.state_dict().values(), alone[1][0].state_dict().values(), strict=True
        )
    )
    assert changed, knob


# network knobs: the activation, then (dropout, activation options) of members 0 and 1
NETWORK_KNOBS = {
    "dropout": ("actmix", (0.1, {}), (0.4, {})),
    "relu_bias": ("actmix", (0.1, {"relu_bias": 0.0}), (0.1, {"relu_bias": 1.5})),
    "omega_0": ("actmix", (0.1, {"omega_0": 1.0}), (0.1, {"omega_0": 4.0})),
    "prelu_init": ("prelu", (0.1, {"init": 0.25}), (0.1, {"init": 0.0})),
    "prepu_scale_init": ("prepu", (0.1, {"scale_init": 0.0}), (0.1, {"scale_init": 0.5})),
    "apa_lambda_init": ("apa", (0.1, {"lambda_init": 1.0}), (0.1, {"lambda_init": 5.0})),
    "aglu_kappa_init": ("aglu", (0.1, {"kappa_init": 1.0}), (0.1, {"kappa_init": 0.2})),
    # a coarse lookup grid (shared, as structure is) keeps DiTAC's cases quick
    "ditac_init_scale": (
        "ditac",
        (0.1, {"grid_size": 64, "init_scale": 0.0}),
        (0.1, {"grid_size": 64, "init_scale": 0.3}),
    ),
    "ditac_prior_weight": (
        "ditac",
        (0.1, {"grid_size": 64, "init_scale": 0.3, "prior_weight": 0.0}),
        (0.1, {"grid_size": 64, "init_scale": 0.3, "prior_weight": 0.5}),
    ),
    "ditac_prior_length_scale": (
        "ditac",
        (0.1, {"grid_size": 64, "init_scale": 0.3, "prior_weight": 0.5, "prior_length_scale": 0.1}),
        (0.1, {"grid_size": 64, "init_scale": 0.3, "prior_weight": 0.5, "prior_length_scale": 0.4}),
    ),
}
# fewer epochs than CONFIG: a network knob shows from the first steps
NETWORK_TRAIN = dataclasses.replace(CONFIG, epochs=5)


def _network(members, dropouts, options, activation="actmix"):
    return MLP(
        3,
        1,
        (16, 16),
        activation,
        dropout=list(dropouts),
        activation_options=[dict(o) for o in options],
        members=len(members),
        seed=[m.seed for m in members],
    )


@pytest.mark.parametrize("knob", NETWORK_KNOBS)
def test_a_member_with_its_own_network_setting_trains_as_it_would_alone(knob):
    members = _regression_members([130, 150])
    activation, *settings = NETWORK_KNOBS[knob]
    packed = _network(members, *zip(*settings, strict=True), activation)
    result = fit(packed, members, NETWORK_TRAIN, task="regression", device="cpu")
    finals = []
    for k, (member, (dropout, options)) in enumerate(zip(members, settings, strict=True)):
        single = _network([member], [dropout], [options], activation)
        single_result = fit(single, [member], NETWORK_TRAIN, task="regression", device="cpu")
        finals.append(single.state_dict())
        for name, tensor in single.state_dict().items():
            assert torch.allclose(tensor[0], packed.state_dict()[name][k], atol=1e-5), (k, name)
        assert result.members[k].epochs_run == single_result.members[0].epochs_run
        # the standalone copy of member k keeps its own setting
        extracted = packed.member(k)
        assert extracted.spec["dropout"] == dropout
        assert extracted.spec["activation_options"] == options
    # the knob mattered: the two settings end in different weights from the same start
    same_start = _network([members[1]], [settings[0][0]], [settings[0][1]], activation)
    fit(same_start, [members[1]], NETWORK_TRAIN, task="regression", device="cpu")
    assert not torch.equal(same_start.weights[0], packed.weights[0][1:2])


def test_an_activation_that_cannot_vary_an_option_per_member_says_so():
    # the shape of APA's parameters is structure, shared by every member of a network
    with pytest.raises(ValueError, match="'apa' cannot vary per_layer"):
        MLP(
            3,
            1,
            (8,),
            "apa",
            members=2,
            activation_options=[{"per_layer": False}, {"per_layer": True}],
        )
    with pytest.raises(ValueError, match="got 3 dropout rates for 2 members"):
        MLP(3, 1, (8,), "relu", members=2, dropout=[0.1, 0.2, 0.3])


def test_members_trained_together_share_epochs_and_batch_size():
    members = _regression_members([64, 64])
    for change in ({"epochs": 5}, {"batch_size": 16}):
        other = dataclasses.replace(CONFIG, **change)
        with pytest.raises(ValueError, match=f"must share {next(iter(change))}"):
            fit(_model(members), members, [CONFIG, other], task="regression", device="cpu")
    with pytest.raises(ValueError, match="got 1 training configurations for 2 members"):
        fit(_model(members), members, [CONFIG], task="regression", device="cpu")


def _val_mse(model: MLP, members: list[MemberData]) -> list[float]:
    predictions = predict(model, [m.x_val for m in members], task="regression")
    return [float(np.mean((p - m.y_val) ** 2)) for p, m in zip(predictions, members, strict=True)]


def test_training_is_deterministic_and_learns():
    members = _regression_members([64, 64])
    untrained, first, second = _model(members), _model(members), _model(members)
    first_result = fit(first, members, CONFIG, task="regression", device="cpu")
    second_result = fit(second, members, CONFIG, task="regression", device="cpu")
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert first_result.members == second_result.members
    # identical because training ran the same way, not because it did nothing
    assert not torch.equal(first.weights[0], untrained.weights[0])
    for before, after in zip(_val_mse(untrained, members), _val_mse(first, members), strict=True):
        assert after < 0.8 * before


def test_best_state_is_restored_and_reported_metric_is_in_original_units():
    members = _regression_members([80, 80])
    model = _model(members, dropout=0.0)
    result = fit(model, members, CONFIG, task="regression", device="cpu")
    predictions = predict(model, [m.x_val for m in members], task="regression")
    for k, member in enumerate(members):
        mse = float(np.mean((predictions[k] - member.y_val) ** 2))
        assert mse == pytest.approx(result.members[k].best_val_loss, rel=1e-4)
        assert result.members[k].best_val_metric == pytest.approx(math.sqrt(mse) * 2.0, rel=1e-4)


def test_early_stopping_respects_patience():
    members = _regression_members([64])
    config = TrainConfig(epochs=200, batch_size=16, lr=0.05, patience=3)
    result = fit(_model(members), members, config, task="regression", device="cpu")
    outcome = result.members[0]
    assert outcome.epochs_run < 200
    assert outcome.epochs_run == outcome.best_epoch + 3 + 1


def test_diverging_member_is_marked_while_others_finish():
    members = _regression_members([64, 64, 64])
    broken = members[1]
    y_bad = broken.y_train.copy()
    y_bad[5] = np.nan
    members[1] = MemberData(broken.x_train, y_bad, broken.x_val, broken.y_val, seed=broken.seed)
    seen = []
    model = _model(members)
    result = fit(
        model,
        members,
        CONFIG,
        task="regression",
        device="cpu",
        on_epoch=lambda epoch, record: seen.append((epoch, record.active)),
    )
    assert result.members[1].diverged and result.members[1].diverged_epoch == 0
    assert result.members[1].diverged_reason == "non-finite training loss"
    assert not result.members[0].diverged and result.members[0].epochs_run > 1
    assert seen[0] == (0, (True, False, True))
    assert all(torch.isfinite(t).all() for t in model.state_dict().values())


def test_classification_reports_accuracy_and_records_every_epoch():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    member = MemberData(x[:240], y[:240], x[240:], y[240:], seed=0)
    records = []
    model = _model([member], out=3, activation="relu")
    result = fit(
        model,
        [member],
        TrainConfig(epochs=15, batch_size=32, lr=1e-2),
        task="classification",
        device="cpu",
        on_epoch=lambda _epoch, record: records.append(record),
    )
    assert [r.epoch for r in records] == list(range(len(records)))
    assert records[0].metric == "accuracy" and records[0].entropy is None
    probabilities = predict(model, [member.x_val], task="classification")[0]
    accuracy = float((probabilities.argmax(1) == member.y_val).mean())
    assert accuracy == pytest.approx(result.members[0].best_val_metric)
    assert accuracy > 0.7
    assert np.allclose(probabilities.sum(1), 1.0)


def test_temperature_and_entropy_are_recorded():
    members = _regression_members([64])
    records = []
    fit(
        _model(members),
        members,
        CONFIG,
        task="regression",
        device="cpu",
        on_epoch=lambda _epoch, record: records.append(record),
    )
    assert records[0].temperature[0] == 1.0 and records[4].temperature[0] == pytest.approx(0.6)
    assert records[2].entropy_weight[0] == pytest.approx(0.005)
    assert records[0].entropy[0] <= math.log(4) + 1e-6


def test_bad_inputs():
    members = _regression_members([32, 32])
    with pytest.raises(ValueError, match="2 members, model has 3"):
        fit(MLP(3, 1, (4,), members=3), members, CONFIG, task="regression")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_resume_from_a_checkpoint_continues_exactly(tmp_path):
    # a learning rate high enough that validation losses bounce: early stopping matters
    config = dataclasses.replace(CONFIG, lr=0.08, patience=3)
    members = _regression_members([70, 64])
    straight = _model(members)
    straight_result = fit(straight, members, config, task="regression", device="cpu")

    saved = {}

    def keep_third(epoch, record):
        if epoch == 2:
            saved["state"] = record.checkpoint

    interrupted = _model(members)
    fit(
        interrupted,
        members,
        config,
        task="regression",
        device="cpu",
        checkpoint_every=3,
        on_epoch=keep_third,
    )
    path = tmp_path / "state.pt"
    torch.save(saved["state"], path)
    state = torch.load(path, weights_only=True)

    # at the checkpoint a member has gone an epoch without improving; one stops early
    assert min(state["progress"]["best_epoch"]) < 2
    assert min(m.epochs_run for m in straight_result.members) < config.epochs
    resumed = _model(members)
    result = fit(resumed, members, config, task="regression", device="cpu", resume_from=state)
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    # early-stopping counters carried on too: from epoch 3 on, every record (best score
    # so far, which members still train) and each member's outcome are the straight run's
    assert result.history[0].epoch == 3
    assert result.history == straight_result.history[3:]
    assert result.members == straight_result.members


@pytest.mark.parametrize("activation", ["actmix", "relu"])
def test_training_is_the_same_bit_for_bit_with_any_number_of_threads(activation):
    """A study's trials take free CPUs as extra threads (study.run._threads): that must
    change time only. Wide layers and big batches, so the threaded kernels are the ones used."""
    members = _regression_members([600, 500])
    config = TrainConfig(epochs=2, batch_size=256, patience=5)
    previous = torch.get_num_threads()
    states = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model = MLP(3, 1, (256, 256), activation, dropout=0.1, members=2, seed=[1, 2])
            fit(model, members, config, task="regression", device="cpu")
            states.append(model.state_dict())
    finally:
        torch.set_num_threads(previous)
    for name, tensor in states[0].items():
        assert torch.equal(tensor, states[1][name]), name
