import shutil
import textwrap
import time

import optuna
import pytest

from actmix.activations import available_activations
from actmix.config import MLPConfig, RunConfig, TemperatureSchedule, TrainConfig, config_to_dict
from actmix.xgb import XGBConfig
from study.space import (
    Param,
    baseline_point,
    bundled_spaces,
    config_from_sample,
    load_space,
    space_for_model,
    suggest_params,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Seed defaults written out by hand (DESIGN.md, RunConfig() with 200 epochs).
MLP_BASELINE = {
    "train.lr": 1e-3,
    "train.weight_decay.enabled": True,
    "train.weight_decay": 1e-4,
    "mlp.width": 128,
    "mlp.depth": 2,
    "mlp.dropout": 0.1,
    "train.batch_size": 128,
}
BASELINES = {
    "mlp": MLP_BASELINE,
    "relu": MLP_BASELINE,
    "gelu": MLP_BASELINE,
    "prelu": {**MLP_BASELINE, "mlp.activation.init": 0.25},
    "actmix": {
        **MLP_BASELINE,
        "train.temperature.initial": 1.0,
        "train.temperature.final_fraction": 1.0,
        "train.temperature.anneal_fraction": 0.75,
        "train.temperature.schedule": "linear",
        "mlp.activation.relu_bias": 0.0,
        "mlp.activation.omega_0": 1.0,
        "train.entropy.lambda_max.enabled": False,
        "train.entropy.warmup_fraction": 0.25,
        "mlp.activation.basis": "sin,tanh,relu,identity",
    },
    "apa": {
        **MLP_BASELINE,
        "mlp.activation.lambda_init": 1.0,
        "mlp.activation.kappa_init": 1.0,
        "mlp.activation.per_layer": False,
    },
    "aglu": {
        **MLP_BASELINE,
        "mlp.activation.lambda_init": 1.0,
        "mlp.activation.kappa_init": 1.0,
        "mlp.activation.per_layer": False,
    },
    "prepu": {**MLP_BASELINE, "mlp.activation.scale_init": 0.0},
    "ditac": {
        **MLP_BASELINE,
        "mlp.activation.n_cells": 10,
        "mlp.activation.init_scale": 0.0,
        "mlp.activation.prior_weight.enabled": False,
        "mlp.activation.prior_length_scale": 0.1,
    },
    "xgboost": {
        "xgboost.learning_rate": 0.05,
        "xgboost.max_depth": 6,
        "xgboost.min_child_weight": 1.0,
        "xgboost.subsample": 0.8,
        "xgboost.colsample_bytree": 0.8,
        "xgboost.reg_lambda.enabled": True,
        "xgboost.reg_lambda": 1.0,
        "xgboost.reg_alpha.enabled": False,
        "xgboost.gamma.enabled": False,
    },
}
# the knobs suite's space: actmix's, its basis fixed to the seed's
BASELINES["actmix-knobs"] = {
    k: v for k, v in BASELINES["actmix"].items() if k != "mlp.activation.basis"
}
# the activation's own defaults, which the space makes explicit in the config
SEED_OPTIONS = {
    "actmix": {"relu_bias": 0.0, "omega_0": 1.0, "basis": ["sin", "tanh", "relu", "identity"]},
    "actmix-knobs": {"relu_bias": 0.0, "omega_0": 1.0},  # the basis is not searched
    "prelu": {"init": 0.25},
    "apa": {"lambda_init": 1.0, "kappa_init": 1.0, "per_layer": False},
    "aglu": {"lambda_init": 1.0, "kappa_init": 1.0, "per_layer": False},
    "prepu": {"scale_init": 0.0},
    "ditac": {
        "interval": [-3.0, 3.0],
        "n_cells": 10,
        "init_scale": 0.0,
        "prior_weight": 0.0,
        "prior_length_scale": 0.1,
    },
}
MODELS = {"mlp": "relu", "relu": "relu", "gelu": "gelu", "prelu": "prelu", "actmix": "actmix"}
MODELS["actmix-knobs"] = "actmix"
MODELS.update(apa="apa", aglu="aglu", prepu="prepu", ditac="ditac", xgboost="xgboost")


def assert_same_config(actual, expected, where="config"):
    """Field-by-field comparison of two nested config dicts, floats approximately."""
    if isinstance(expected, dict):
        assert set(actual) == set(expected), where
        for key in expected:
            assert_same_config(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected), where
    else:
        assert actual == expected and type(actual) is type(expected), where


def assert_same_point(actual, expected):
    assert set(actual) == set(expected)
    for key, value in expected.items():
        if isinstance(value, float):
            assert actual[key] == pytest.approx(value), key
        else:
            assert actual[key] == value and type(actual[key]) is type(value), key


def test_bundled_spaces_are_the_shipped_files():
    spaces = bundled_spaces()
    assert set(spaces) == set(BASELINES)
    assert all(description.strip() for description in spaces.values())


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_is_the_seed_default(name):
    space = load_space(name)
    assert space.name == name and space.model == MODELS[name]
    point = baseline_point(space, RunConfig(model=space.model), epochs=200)
    assert_same_point(point, BASELINES[name])


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_config_reproduces_the_seed_config(name):
    space = load_space(name)
    seed = RunConfig(model=space.model)
    config = config_from_sample(
        space, baseline_point(space, seed, epochs=200), base=seed, epochs=200
    )
    expected = config_to_dict(seed)
    expected["mlp"]["activation"] = SEED_OPTIONS.get(name, {})
    assert_same_config(config_to_dict(config), expected)
    assert config.xgboost == XGBConfig()


def test_actmix_extends_mlp_and_keeps_its_order():
    mlp, actmix = load_space("mlp"), load_space("actmix")
    names = [param.name for param in actmix.params]
    assert names[: len(mlp.params)] == [param.name for param in mlp.params]
    assert actmix.params[0] == Param("train.lr", "loguniform", low=1e-4, high=1e-2)
    assert "train.temperature.final_fraction" in names and len(names) == len(set(names))


def test_sha256_depends_on_content_not_location(tmp_path):
    shutil.copy(load_space("mlp").path, tmp_path / "mlp.yaml")
    copy = load_space(str(tmp_path / "mlp.yaml"))
    assert copy.sha256() == load_space("mlp").sha256() == load_space("relu").sha256()
    assert len(copy.sha256()) == 64
    assert load_space("gelu").sha256() != load_space("relu").sha256()  # model differs
    assert load_space("actmix").sha256() != load_space("mlp").sha256()


def _check_in_space(space, params, constants):
    """Every param is either searched within its range or a constant."""
    for param in space.params:
        if param.kind == "fixed":
            assert constants[param.name] == param.value
        elif param.kind == "choice":
            assert params[param.name] in param.choices
        elif param.kind == "zero_or_loguniform":
            if params[f"{param.name}.enabled"]:
                assert param.low <= params[param.name] <= param.high
            else:
                assert constants[param.name] == 0.0 and param.name not in params
        else:
            assert param.low <= params[param.name] <= param.high
            if param.kind == "int":
                assert isinstance(params[param.name], int)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_asked_trials_lie_in_the_space_and_give_valid_configs(name):
    space = load_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    epochs = 80
    enabled_seen = set()
    for _ in range(30):
        trial = study.ask()
        constants = suggest_params(space, trial)
        _check_in_space(space, trial.params, constants)
        enabled_seen |= {key for key, value in trial.params.items() if value is False}
        sample = {**trial.params, **constants}
        config = config_from_sample(space, sample, base=RunConfig(), epochs=epochs)
        assert config.model == space.model and config.train.epochs == epochs
        if "mlp.width" in sample:
            assert config.mlp.widths == (sample["mlp.width"],) * sample["mlp.depth"]
        temperature = config.train.temperature
        assert temperature.final <= temperature.initial * (1 + 1e-12)
        if "train.temperature.anneal_fraction" in sample:
            fraction = sample["train.temperature.anneal_fraction"]
            assert temperature.anneal_epochs == round(fraction * epochs)
            assert temperature.final == pytest.approx(
                sample["train.temperature.initial"] * sample["train.temperature.final_fraction"]
            )
        if "mlp.activation.basis" in sample:
            assert ",".join(config.mlp.activation["basis"]) == sample["mlp.activation.basis"]
        study.tell(trial, 0.0)
    if any(param.kind == "zero_or_loguniform" for param in space.params):
        assert enabled_seen  # the random sampler disabled some penalty at least once


def test_disabled_zero_or_loguniform_is_zero_in_constants_and_config():
    space = load_space("actmix")
    point = baseline_point(space, RunConfig(), epochs=200)
    point["train.weight_decay.enabled"] = False
    del point["train.weight_decay"]
    trial = optuna.trial.FixedTrial(point)
    constants = suggest_params(space, trial)
    assert constants == {"train.weight_decay": 0.0, "train.entropy.lambda_max": 0.0}
    config = config_from_sample(space, {**point, **constants}, base=RunConfig(), epochs=200)
    assert config.train.weight_decay == 0.0 and config.train.entropy.lambda_max == 0.0


def test_enabled_zero_or_loguniform_is_searched_on_a_log_scale():
    space = load_space("actmix")
    point = baseline_point(space, RunConfig(), epochs=200)
    point.update({"train.entropy.lambda_max.enabled": True, "train.entropy.lambda_max": 0.01})
    trial = optuna.trial.FixedTrial(point)
    constants = suggest_params(space, trial)
    assert "train.entropy.lambda_max" not in constants
    assert trial.distributions[
        "train.entropy.lambda_max"
    ] == optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    config = config_from_sample(space, {**point, **constants}, base=RunConfig(), epochs=200)
    assert config.train.entropy.lambda_max == 0.01


def test_epoch_fractions_follow_the_study_epochs():
    space = load_space("actmix")
    point = baseline_point(space, RunConfig(), epochs=100)
    # 150 of 100 epochs is clipped to the whole run; 50 of 100 is half of it
    assert point["train.temperature.anneal_fraction"] == 1.0
    assert point["train.entropy.warmup_fraction"] == 0.5
    config = config_from_sample(space, point, base=RunConfig(), epochs=100)
    assert config.train.temperature.anneal_epochs == 100
    assert config.train.entropy.warmup_epochs == 50


@pytest.mark.parametrize(
    ("base", "name", "fragment"),
    [
        (RunConfig(mlp=MLPConfig(widths=(128, 64))), "mlp.width", "not all equal"),
        (RunConfig(train=TrainConfig(lr=1.0)), "train.lr", "outside [0.0001, 0.01]"),
        (RunConfig(train=TrainConfig(batch_size=100)), "train.batch_size", "not among"),
        (
            RunConfig(train=TrainConfig(temperature=TemperatureSchedule(final=2.0))),
            "train.temperature.final_fraction",
            "outside",
        ),
    ],
)
def test_baseline_outside_the_space_names_the_param(base, name, fragment):
    space = load_space("actmix")
    with pytest.raises(ValueError, match="params") as error:
        baseline_point(space, base, epochs=200)
    assert f"params.{name}:" in str(error.value) and fragment in str(error.value)


def test_to_config_rejects_unknown_keys_and_half_pairs():
    space = load_space("mlp")
    with pytest.raises(
        ValueError, match=r"unknown sample key 'train\.lrr'; did you mean 'train\.lr'"
    ):
        config_from_sample(space, {"train.lrr": 0.1}, base=RunConfig(), epochs=10)
    with pytest.raises(ValueError, match=r"mlp\.width and mlp\.depth go together"):
        config_from_sample(space, {"mlp.width": 64}, base=RunConfig(), epochs=10)
    with pytest.raises(ValueError, match=r"enabled=True but no train\.weight_decay"):
        config_from_sample(space, {"train.weight_decay.enabled": True}, base=RunConfig(), epochs=10)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        config_from_sample(space, {}, base=RunConfig(), epochs=0)


def test_to_config_keeps_unsampled_values_and_drops_options_of_another_model():
    base = RunConfig(model="actmix", mlp=MLPConfig(activation={"relu_bias": 2.0}), dataset="wine")
    same = config_from_sample(load_space("actmix"), {"train.lr": 0.005}, base=base, epochs=7)
    assert same.mlp.activation == {"relu_bias": 2.0} and same.train.lr == 0.005
    assert same.dataset == "wine" and same.train.epochs == 7
    other = config_from_sample(load_space("relu"), {}, base=base, epochs=7)
    assert other.model == "relu" and other.mlp.activation == {}
    override = config_from_sample(load_space("relu"), {}, base=base, epochs=7, model="elu")
    assert override.model == "elu"


def test_space_for_model_falls_back_to_the_mlp_space():
    space = space_for_model("elu")
    assert space.name == "mlp" and space.model == "elu"
    assert space.params == load_space("mlp").params
    config = config_from_sample(
        space, baseline_point(space, RunConfig(), epochs=200), base=RunConfig(), epochs=200
    )
    assert config.model == "elu"
    assert space_for_model("actmix") == load_space("actmix")
    assert space_for_model("xgboost").model == "xgboost"


def test_space_for_an_unknown_model_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown model 'swish'; valid: ") as error:
        space_for_model("swish")
    for model in (*available_activations(), "xgboost"):
        assert model in str(error.value)


def test_load_space_by_unknown_name_or_missing_path():
    with pytest.raises(ValueError, match=r"unknown search space \'actmixx\'.*actmix, .*gelu, mlp"):
        load_space("actmixx")
    with pytest.raises(FileNotFoundError, match=r"nowhere\.yaml"):
        load_space("/nowhere/nowhere.yaml")


def test_yaml_1_1_exponents_without_a_dot_are_read_as_numbers(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("model: relu\nparams:\n  train.lr: {loguniform: [1e-4, 1e-2]}\n")
    assert load_space(str(path)).params == (Param("train.lr", "loguniform", low=1e-4, high=1e-2),)


def _space(params: str, *, header: str = "model: relu", extends: str | None = None) -> str:
    lines = [header] + ([f"extends: {extends}"] if extends else []) + ["params:"]
    return "\n".join(lines) + "\n" + textwrap.indent(textwrap.dedent(params), "  ")


LR = "train.lr: {loguniform: [1.0e-4, 1.0e-2]}\n"
BAD_FILES = {
    "malformed yaml": (
        {"bad.yaml": "model: relu\nparams:\n  train.lr: {loguniform: [1.0e-4, 1.0e-2]\n"},
        ValueError,
        ["cannot parse", "(line "],
    ),
    "unknown distribution": (
        {"bad.yaml": _space("train.lr: {normal: [0.0, 1.0]}")},
        ValueError,
        ["params.train.lr: unknown distribution 'normal'; valid: uniform, loguniform, int"],
    ),
    "low above high": (
        {"bad.yaml": _space("train.lr: {loguniform: [0.1, 0.01]}")},
        ValueError,
        ["params.train.lr: low 0.1 > high 0.01"],
    ),
    "log range from zero": (
        {"bad.yaml": _space("train.lr: {loguniform: [0.0, 0.01]}")},
        ValueError,
        ["params.train.lr: loguniform needs low > 0, got 0.0"],
    ),
    "int log range from zero": (
        {"bad.yaml": _space("mlp.depth: {int: [0, 4], log: true}\nmlp.width: {fixed: 64}")},
        ValueError,
        ["params.mlp.depth: int with log needs low > 0, got 0"],
    ),
    "log on a float": (
        {"bad.yaml": _space("train.lr: {uniform: [0.001, 0.01], log: true}")},
        ValueError,
        ["params.train.lr: 'log' goes only with int"],
    ),
    "not a pair": (
        {"bad.yaml": _space("train.lr: {uniform: [0.001]}")},
        ValueError,
        ["params.train.lr: uniform: expected [low, high], got [0.001]"],
    ),
    "two distributions": (
        {"bad.yaml": _space("train.lr: {uniform: [0.001, 0.01], choice: [0.1]}")},
        ValueError,
        ["params.train.lr: expected exactly one distribution, got uniform, choice"],
    ),
    "empty choice": (
        {"bad.yaml": _space("train.batch_size: {choice: []}")},
        ValueError,
        ["params.train.batch_size: choice: expected a non-empty list"],
    ),
    "nested choice": (
        {"bad.yaml": _space("train.batch_size: {choice: [[64, 128]]}")},
        ValueError,
        ["params.train.batch_size: choice values are str, int, float or bool"],
    ),
    "unknown top-level key": (
        {"bad.yaml": "model: relu\nparamz:\n  " + LR},
        ValueError,
        ["unknown key 'paramz'; did you mean 'params'?", "valid keys: description, model"],
    ),
    "unknown param with a suggestion": (
        {"bad.yaml": _space("train.lrr: {loguniform: [1.0e-4, 1.0e-2]}")},
        ValueError,
        ["params.train.lrr: unknown param 'train.lrr'; did you mean 'train.lr'?"],
    ),
    "unknown param without one": (
        {"bad.yaml": _space("optimizer.kind: {choice: [adam]}")},
        ValueError,
        ["params.optimizer.kind: unknown param 'optimizer.kind'; valid params: mlp.widths"],
    ),
    "epochs searched": (
        {"bad.yaml": _space("train.epochs: {int: [10, 100]}")},
        ValueError,
        ["params.train.epochs: train.epochs may not be searched: the study sets"],
    ),
    "width without depth": (
        {"bad.yaml": _space("mlp.width: {choice: [64, 128]}")},
        ValueError,
        ["params.mlp.width: mlp.width and mlp.depth go together"],
    ),
    "derived and plain field": (
        {
            "bad.yaml": _space(
                "train.temperature.final: {uniform: [0.1, 1.0]}\n"
                "train.temperature.final_fraction: {uniform: [0.1, 1.0]}",
                header="model: actmix",
            )
        },
        ValueError,
        ["params.train.temperature.final_fraction: give either", "not both"],
    ),
    "continuous range on an integer": (
        {"bad.yaml": _space("train.batch_size: {uniform: [32, 512]}")},
        ValueError,
        ["params.train.batch_size: train.batch_size is an integer"],
    ),
    "range outside the config's limits": (
        {"bad.yaml": _space("mlp.dropout: {uniform: [0.0, 1.0]}")},
        ValueError,
        ["params.mlp.dropout: 1.0 gives an invalid config", "dropout must be in [0, 1)"],
    ),
    "choice outside a literal": (
        {"bad.yaml": _space("train.temperature.schedule: {choice: [linear, sigmoid]}")},
        ValueError,
        ["params.train.temperature.schedule: 'sigmoid' gives an invalid config"],
    ),
    "unknown model": (
        {"bad.yaml": _space(LR, header="model: swish")},
        ValueError,
        ["model: unknown model 'swish'; valid: ", "xgboost"],
    ),
    "no model": (
        {"bad.yaml": "params:\n  " + LR},
        ValueError,
        ["model: missing; name an activation or 'xgboost'"],
    ),
    "xgboost param in an mlp space": (
        {"bad.yaml": _space("xgboost.max_depth: {int: [2, 8]}")},
        ValueError,
        ["params.xgboost.max_depth: model 'relu' takes only mlp.* and train.* params"],
    ),
    "duplicate param": (
        {"bad.yaml": _space(LR + LR)},
        ValueError,
        ["(line 4): duplicate key 'train.lr'"],
    ),
    "not a mapping": ({"bad.yaml": "- train.lr\n"}, ValueError, ["expected a mapping"]),
    "extends a missing file": (
        {"bad.yaml": _space(LR, extends="nowhere")},
        ValueError,
        ["extends: no space file 'nowhere' next to it"],
    ),
    "extends itself": (
        {"bad.yaml": _space(LR, extends="bad")},
        ValueError,
        ["extends: cycle"],
    ),
    "extends cycle": (
        {"bad.yaml": _space(LR, extends="other"), "other.yaml": _space(LR, extends="bad")},
        ValueError,
        ["other.yaml: extends: cycle", "bad.yaml -> "],
    ),
}


@pytest.mark.parametrize(
    ("files", "error", "fragments"), list(BAD_FILES.values()), ids=list(BAD_FILES)
)
def test_bad_space_files_name_the_file_and_key(tmp_path, files, error, fragments):
    for filename, text in files.items():
        (tmp_path / filename).write_text(text)
    path = tmp_path / "bad.yaml"
    with pytest.raises(error) as raised:
        load_space(str(path))
    message = str(raised.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_a_missing_space_file_is_file_not_found(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(FileNotFoundError, match=r"absent\.yaml"):
        load_space(str(path))


def test_an_alias_bomb_fails_fast_and_says_why(tmp_path):
    path = tmp_path / "bomb.yaml"
    levels = 10  # 9**10 (3.5e9) nodes once expanded; the text is 1 KiB
    anchors = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        anchors.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    path.write_text("\n".join(anchors) + "\nparams:\n  train.lr: {choice: *a9}\n")
    started = time.perf_counter()
    with pytest.raises(ValueError, match="expands to more than 20000 YAML nodes") as error:
        load_space(str(path))
    assert time.perf_counter() - started < 1.0
    assert str(path) in str(error.value) and "aliases" in str(error.value)


def test_a_few_aliases_are_fine(tmp_path):
    path = tmp_path / "aliases.yaml"
    path.write_text(
        "model: relu\nparams:\n"
        "  train.lr: &range {loguniform: [1.0e-4, 1.0e-2]}\n"
        "  train.weight_decay: *range\n"
    )
    params = load_space(str(path)).params
    assert [(p.name, p.low, p.high) for p in params] == [
        ("train.lr", 1e-4, 1e-2),
        ("train.weight_decay", 1e-4, 1e-2),
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("model: relu\nparams: &p\n  train.lr: *p\n", "an alias refers to a node containing it"),
        (
            "model: relu\nparams:\n  train.lr: " + "[" * 5000 + "]" * 5000 + "\n",
            "nested too deeply",
        ),
        ("# " + "x" * (300 * 1024) + "\nmodel: relu\n", "larger than 256 KiB"),
    ],
    ids=["recursive alias", "deep nesting", "too large"],
)
def test_documents_too_big_or_too_deep_are_refused_with_the_file_named(tmp_path, text, fragment):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=fragment) as error:
        load_space(str(path))
    assert str(path) in str(error.value)


def test_a_space_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("description: café\nmodel: relu\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"not UTF-8 text \(byte 16 is 0xe9\)") as error:
        load_space(str(path))
    assert str(path) in str(error.value)
