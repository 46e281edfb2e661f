import pytest

from actmix.config import RunConfig, TrainConfig, config_from_dict, config_to_dict


def test_round_trip_through_dict():
    config = config_from_dict(
        RunConfig,
        {
            "model": "actmix",
            "mlp": {"widths": [64, 32], "dropout": 0.2, "activation": {"relu_bias": 1.5}},
            "train": {
                "epochs": 20,
                "temperature": {"initial": 1.0, "final": 0.1, "schedule": "cosine"},
            },
        },
    )
    assert config.mlp.widths == (64, 32)
    assert config.train.temperature.schedule == "cosine"
    assert config_from_dict(RunConfig, config_to_dict(config)) == config


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(
        ValueError,
        match=r"unknown key 'temprature' in best\.yaml\.train; did you mean 'temperature'",
    ):
        config_from_dict(RunConfig, {"train": {"temprature": {}}}, source="best.yaml")


def test_wrong_types_and_values_name_the_key():
    with pytest.raises(ValueError, match=r"cfg.train.epochs: expected an integer, got 'ten'"):
        config_from_dict(RunConfig, {"train": {"epochs": "ten"}}, source="cfg")
    with pytest.raises(
        ValueError, match="schedule: 'sigmoid' is not one of linear, exponential, cosine"
    ):
        config_from_dict(RunConfig, {"train": {"temperature": {"schedule": "sigmoid"}}})
    with pytest.raises(ValueError, match="dropout must be in"):
        config_from_dict(RunConfig, {"mlp": {"dropout": 1.5}})
    with pytest.raises(ValueError, match="lr must be > 0"):
        TrainConfig(lr=0)


def test_with_epochs_keeps_the_schedule_fractions():
    from actmix.config import RunConfig, schedule_fractions, with_epochs

    config = RunConfig()  # the seed: 150 of 200 epochs annealing, 50 of 200 warm-up
    assert schedule_fractions(config.train) == {
        "temperature.anneal_fraction": 0.75,
        "entropy.warmup_fraction": 0.25,
    }
    short = with_epochs(config, 40)
    assert (short.train.epochs, short.train.temperature.anneal_epochs) == (40, 30)
    assert short.train.entropy.warmup_epochs == 10
    assert short.train.lr == config.train.lr and short.mlp == config.mlp
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        with_epochs(config, 0)
