"""`run --warm-start STUDY --top K`: another study's best configurations go first."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from study.cli import main
from study.run import warm_start
from study.space import load_space
from study.store import default_store_uris
from study.tracking import TAG_MODEL, open_study_run

SPACE = """description: warm
model: relu
params:
  train.lr: {loguniform: [1.0e-4, 1.0e-2]}
  mlp.width: {choice: [32, 128]}
  mlp.depth: {fixed: 1}
"""


def _space(tmp_path: Path, name: str, text: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_space(str(path))


def _source(store: Path, name: str, model: str, trials: list[tuple[dict, float]]) -> None:
    """A finished study as the store has it: an MLflow parent run and an Optuna study."""
    uri, storage = default_store_uris(store)
    open_study_run(uri, name, artifact_location=None, params={}, tags={TAG_MODEL: model})
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
    distributions = {
        "train.lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
        "mlp.width": optuna.distributions.CategoricalDistribution([32, 64, 128]),
        "mlp.dropout": optuna.distributions.FloatDistribution(0.0, 0.5),
    }
    for params, value in trials:
        used = {k: distributions[k] for k in params}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=used, value=value))


def test_the_best_that_fit_are_taken_best_first_and_the_others_said(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    _source(
        store,
        "a",
        "relu",
        [
            ({"train.lr": 1e-3, "mlp.width": 128}, 3.0),  # third
            ({"train.lr": 5e-2, "mlp.width": 128}, 1.0),  # best, lr outside the new range
            ({"train.lr": 2e-3, "mlp.width": 32}, 2.0),  # second
            ({"train.lr": 3e-3, "mlp.width": 64}, 2.5),  # width not a choice of the new space
            ({"train.lr": 4e-3, "mlp.width": 128, "mlp.dropout": 0.1}, 2.7),  # dropout not searched
            ({"train.lr": 1e-4, "mlp.width": 128}, 9.0),  # beyond --top
        ],
    )
    uri, storage = default_store_uris(store)
    space = _space(tmp_path, "warm", SPACE)
    warm = warm_start("a", 5, space=space, model="relu", tracking_uri=uri, optuna_storage=storage)
    assert warm.points == (
        {"train.lr": 2e-3, "mlp.width": 32},
        {"train.lr": 1e-3, "mlp.width": 128},
    )
    assert len(warm.skipped) == 3
    best, width, dropout = warm.skipped
    assert best.startswith("trial-0001: ") and "out of the range" in best
    assert width.startswith("trial-0003: ") and "64" in width
    assert dropout == f"trial-0004: mlp.dropout not searched by {space.path}"
    # the top 6 reach the last one; the seed default is left out, as trial 0 has it
    baseline = {"train.lr": 1e-3, "mlp.width": 128}
    kept = warm_start(
        "a",
        6,
        space=space,
        model="relu",
        tracking_uri=uri,
        optuna_storage=storage,
        baseline=baseline,
    )
    assert kept.points == (
        {"train.lr": 2e-3, "mlp.width": 32},
        {"train.lr": 1e-4, "mlp.width": 128},
    )
    assert "trial-0000: it is the seed default, trial 0 already" in kept.skipped


def test_a_study_of_another_model_or_none_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    _source(store, "a", "gelu", [({"train.lr": 1e-3, "mlp.width": 128}, 1.0)])
    uri, storage = default_store_uris(store)
    space = _space(tmp_path, "warm", SPACE)
    with pytest.raises(ValueError, match="study 'a' tuned gelu, not relu"):
        warm_start("a", 2, space=space, model="relu", tracking_uri=uri, optuna_storage=storage)
    with pytest.raises(ValueError, match="no study named 'b' in the store; known: a"):
        warm_start("b", 2, space=space, model="relu", tracking_uri=uri, optuna_storage=storage)


def test_bad_warm_start_requests_write_nothing(tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    assert main(["run", "--warm-start", "x", "--store", str(store)]) == 2
    assert "no study named 'x'" in capsys.readouterr().err
    assert not store.exists() or not any(store.iterdir())
    assert main(["run", "--warm-start", "x", "--pack", "2", "--store", str(store)]) == 2
    assert "--warm-start: cannot be combined with --pack above 1" in capsys.readouterr().err
    assert not store.exists() or not any(store.iterdir())


@pytest.mark.ray
@pytest.mark.slow
def test_a_warm_started_study_tries_the_others_best_right_after_the_seed_default(
    local_ray,  # noqa: ARG001
    tmp_path: Path,
    capsys,
) -> None:
    store, space = tmp_path / "store", tmp_path / "warm.yaml"
    space.write_text(SPACE)
    tiny = ["--folds", "2", "--epochs", "2", "--scheduler", "none", "--space", str(space)]
    tiny += ["--store", str(store)]
    assert main(["run", "--name", "a", "--trials", "4", "--seed", "3", *tiny]) == 0
    argv = ["run", "--name", "b", "--trials", "4", "--split-seed", "1", "--warm-start", "a"]
    assert main([*argv, "--top", "2", *tiny]) == 0
    storage = default_store_uris(store)[1]
    a = optuna.load_study(study_name="a", storage=storage)
    b = optuna.load_study(study_name="b", storage=storage)
    trials = sorted(b.trials, key=lambda t: t.number)
    best = sorted((t for t in a.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    # a's two best, but not the seed default (b's trial 0 already: both share the space)
    expected = [t.params for t in best[:2] if t.params != trials[0].params]
    assert [t.params for t in trials[1 : 1 + len(expected)]] == expected
    err = capsys.readouterr().err
    assert f"warm start from study a: {len(expected)} of its 2 best configurations" in err
    if len(expected) < 2:
        assert "it is the seed default, trial 0 already" in err
    assert len(b.trials) == 4 and all(t.state.name == "COMPLETE" for t in b.trials)
    assert len({json.dumps(t.params, sort_keys=True) for t in b.trials}) == 4
