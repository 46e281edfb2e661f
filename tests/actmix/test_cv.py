import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from actmix.config import MLPConfig, RunConfig, TrainConfig
from actmix.cv import cross_validate, final_split_seed, summarise
from actmix.splits import make_folds
from actmix.types import Dataset
from actmix.xgb import XGBConfig
from tests.actmix.synthetic import make_classification_dataset, make_regression_dataset

SMALL = RunConfig(
    model="actmix",
    mlp=MLPConfig(widths=(16, 16), dropout=0.1),
    train=TrainConfig(epochs=6, batch_size=32, patience=3),
)


def _scramble_test_rows(dataset: Dataset, rows: np.ndarray, seed: int = 7) -> Dataset:
    """Replace every feature and target value of ``rows`` with garbage."""
    rng = np.random.default_rng(seed)
    numeric = dataset.numeric.copy()
    numeric.loc[rows] = rng.normal(1e3, 1e3, size=(len(rows), numeric.shape[1]))
    categorical = dataset.categorical.copy()
    categorical.loc[rows] = "never-seen"
    target = dataset.target.copy()
    if dataset.task == "regression":
        target.loc[rows] = rng.normal(-1e4, 1e3, size=len(rows))
    else:
        target.loc[rows] = rng.permutation(target.loc[rows].to_numpy())
    return Dataset(
        dataset.name,
        numeric,
        categorical,
        pd.Series(target),
        dataset.task,
        dataset.classes,
        dataset.source,
    )


@pytest.mark.parametrize("model", ["actmix", "xgboost"])
@pytest.mark.parametrize("make", [make_regression_dataset, make_classification_dataset])
def test_no_test_fold_row_reaches_fitting_early_stopping_or_preprocessing(model, make):
    dataset = make(240, seed=1)
    splits = make_folds(dataset, 3, seed=0)
    # short boosting runs that early stopping still ends (best rounds 18-76 of 80): the
    # test is about which rows reach fitting and early stopping, not about the trees
    xgb = XGBConfig(n_estimators=80, early_stopping_rounds=10, learning_rate=0.3)
    config = RunConfig(model=model, mlp=SMALL.mlp, train=SMALL.train, xgboost=xgb)
    clean = cross_validate(dataset, config, splits=splits, seeds=(0, 1), device="cpu")
    # scramble the test rows of fold 0 only: every member of fold 0 must be unaffected
    scrambled = _scramble_test_rows(dataset, splits.folds[0].test_idx)
    dirty = cross_validate(scrambled, config, splits=splits, seeds=(0, 1), device="cpu")
    for before, after in zip(clean.rows, dirty.rows, strict=True):
        if before["fold"] != 0:
            continue
        val_keys = [k for k in before if k.startswith("val_")] + ["best_epoch", "best_iteration"]
        for key in val_keys:
            if key in before:
                assert before[key] == after[key], key
    if model != "xgboost":
        for k, row in enumerate(clean.rows):
            if row["fold"] == 0:
                ours, theirs = clean.model.member(k), dirty.model.member(k)
                for name, tensor in ours.state_dict().items():
                    assert torch.equal(tensor, theirs.state_dict()[name]), name


def test_members_are_folds_times_seeds_and_summary_is_correct(tmp_path):
    dataset = make_regression_dataset(200, seed=2)
    result = cross_validate(dataset, SMALL, folds=4, seeds=(0, 5), device="cpu")
    assert [(r["fold"], r["seed"]) for r in result.rows] == [
        (f, s) for f in range(4) for s in (0, 5)
    ]
    assert result.model.members == 8
    values = np.array([r["test_rmse"] for r in result.rows])
    assert result.summary["test_rmse"]["mean"] == pytest.approx(values.mean())
    assert result.summary["test_rmse"]["std"] == pytest.approx(values.std(ddof=1))
    assert result.summary["test_rmse"]["max"] == pytest.approx(values.max())
    # regression metrics are in the target's original units (target ~ 10 + 3 * signal)
    assert 0.3 < result.summary["test_rmse"]["mean"] < 30
    path = result.save_json(tmp_path / "out" / "cv.json")
    saved = json.loads(path.read_text())
    assert saved["splits"]["fingerprint"] == make_folds(dataset, 4, 0).fingerprint()
    assert saved["config"]["model"] == "actmix" and len(saved["rows"]) == 8
    assert "torch" in saved["versions"]


def test_xgboost_and_mlp_see_the_same_folds():
    dataset = make_classification_dataset(240, seed=3, n_classes=3)
    splits = make_folds(dataset, 3, seed=4)
    mlp = cross_validate(
        dataset,
        RunConfig(model="relu", mlp=SMALL.mlp, train=SMALL.train),
        splits=splits,
        device="cpu",
    )
    short = XGBConfig(n_estimators=80, early_stopping_rounds=10, learning_rate=0.3)
    xgb = cross_validate(dataset, RunConfig(model="xgboost", xgboost=short), splits=splits)
    assert mlp.splits["fingerprint"] == xgb.splits["fingerprint"]
    assert {"test_accuracy", "test_f1_macro", "test_roc_auc", "test_log_loss"} <= set(xgb.summary)
    assert xgb.summary["test_accuracy"]["mean"] > 0.5


def test_bad_arguments():
    dataset = make_regression_dataset(60)
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        cross_validate(dataset, RunConfig(model="nope"))
    with pytest.raises(ValueError, match="seeds must be distinct"):
        cross_validate(dataset, SMALL, seeds=(1, 1))
    other = make_regression_dataset(80)
    with pytest.raises(ValueError, match="80 rows"):
        cross_validate(dataset, SMALL, splits=make_folds(other, 3, 0))


def test_summarise_ignores_nan():
    summary = summarise([{"a": 1.0}, {"a": float("nan")}, {"a": 3.0}], ["a"])
    # sample std of (1, 3): sqrt(((1 - 2)^2 + (3 - 2)^2) / (2 - 1)) = sqrt(2)
    assert summary["a"] == {"mean": 2.0, "std": pytest.approx(2**0.5), "min": 1.0, "max": 3.0}


def test_summarise_gives_no_spread_for_a_single_run():
    summary = summarise([{"a": 4.0}, {"a": float("nan")}], ["a"])
    assert summary["a"]["mean"] == 4.0 and math.isnan(summary["a"]["std"])


TINY = RunConfig(
    model="relu",
    mlp=MLPConfig(widths=(4,)),
    train=TrainConfig(epochs=1, batch_size=64, patience=1),
)


def test_final_cv_never_reuses_the_folds_the_configuration_was_tuned_on():
    dataset = make_regression_dataset(60, seed=4)
    assert final_split_seed(0) == 1 and final_split_seed(7) == 8

    def split_seed_of(config: RunConfig = TINY, **options) -> int:
        result = cross_validate(dataset, config, folds=2, device="cpu", **options)
        assert (
            result.splits["fingerprint"]
            == make_folds(dataset, 2, result.splits["seed"]).fingerprint()
        )
        return result.splits["seed"]

    exported = dataclasses.replace(TINY, provenance={"study": "s", "split_seed": 3})
    assert split_seed_of() == 0
    assert split_seed_of(tuned_with_split_seed=5) == 6
    # a configuration exported from a study records the study's seed: fresh folds by default
    assert split_seed_of(exported) == 4
    assert split_seed_of(exported, tuned_with_split_seed=5) == 6
    # an explicit split seed is the caller's decision
    assert split_seed_of(exported, split_seed=3) == 3
