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
