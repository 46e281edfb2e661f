"""The knobs suite (suites/knobs.yaml) keeps the floors its question needs."""

from pathlib import Path

from study.space import load_space
from study.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
KNOBS = {
    "train.temperature.initial",
    "train.temperature.final_fraction",
    "train.temperature.anneal_fraction",
    "train.temperature.schedule",
    "mlp.activation.relu_bias",
    "mlp.activation.omega_0",
    "train.entropy.lambda_max",
    "train.entropy.warmup_fraction",
}


def test_the_budget_meets_the_floors():
    suite = load_suite(ROOT / "suites" / "knobs.yaml")
    study, protocol = suite.study, suite.protocol
    assert study.trials >= 30 and study.n_startup_trials <= study.trials / 3  # TPE searches
    assert study.epochs >= 60
    assert study.scheduler == "none" or study.grace >= study.epochs / 3
    assert protocol.seeds >= 3 and protocol.outer_folds == 5
    assert {d.label for d in suite.datasets} == {"power_plant", "magic_gamma"}
    assert set(suite.labels) == {
        "actmix",
        "relu",
        "xgboost",
        "actmix-seed-config",
        "actmix-seed-readme",
        "relu-default",
    }


def test_actmix_searches_its_knobs_over_the_same_network_space_as_relu():
    suite = load_suite(ROOT / "suites" / "knobs.yaml")
    spaces = {model.label: load_space(model.space or model.model) for model in suite.models}
    actmix, relu = (
        {p.name for p in spaces["actmix"].params},
        {p.name for p in spaces["relu"].params},
    )
    assert actmix - relu == KNOBS  # exactly the knobs of the question, nothing else of ActMix
    assert relu <= actmix
    shared = {p.name: p for p in spaces["relu"].params}
    assert all(shared[p.name] == p for p in spaces["actmix"].params if p.name in shared)
