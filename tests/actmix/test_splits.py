"""Fold layout: disjoint parts, full coverage, stratification, determinism, file round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from actmix.data import load_dataset
from actmix.splits import Fold, Splits, data_hash, make_folds
from tests.actmix.synthetic import make_classification_dataset, make_regression_dataset

DATASETS = {
    "regression": make_regression_dataset(203, seed=0),
    "binary": make_classification_dataset(203, seed=0, n_classes=2),
    "multiclass": make_classification_dataset(203, seed=0, n_classes=3),
}


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("holdout", [0.0, 0.2])
def test_every_row_used_once_per_fold_and_test_folds_partition(name: str, holdout: float) -> None:
    dataset = DATASETS[name]
    splits = make_folds(dataset, k=4, seed=3, holdout=holdout)
    everything = np.arange(dataset.n_rows)
    assert len(splits.folds) == 4
    assert (splits.holdout_idx.size > 0) == (holdout > 0)
    for fold in splits.folds:
        parts = [fold.train_idx, fold.val_idx, fold.test_idx, splits.holdout_idx]
        assert all(part.dtype == np.int64 for part in parts)
        assert all(np.array_equal(part, np.sort(part)) for part in parts)
        assert np.array_equal(np.sort(np.concatenate(parts)), everything)
    tests = np.concatenate([fold.test_idx for fold in splits.folds])
    assert np.array_equal(np.sort(tests), np.setdiff1d(everything, splits.holdout_idx))


def test_sizes_follow_the_fractions() -> None:
    splits = make_folds(DATASETS["regression"], k=4, seed=0, inner_val=0.25, holdout=0.2)
    assert splits.holdout_idx.size == 41  # ceil(0.2 * 203)
    for fold in splits.folds:
        training_part = fold.train_idx.size + fold.val_idx.size
        assert fold.test_idx.size in (40, 41)  # 162 rows over 4 folds
        assert fold.val_idx.size == int(np.ceil(0.25 * training_part))


@pytest.mark.parametrize("name", ["binary", "multiclass"])
def test_stratification_keeps_class_ratios(name: str) -> None:
    dataset = DATASETS[name]
    codes = dataset.target_codes()
    splits = make_folds(dataset, k=4, seed=1, holdout=0.2)

    def assert_ratio_kept(rows: np.ndarray, population: np.ndarray) -> None:
        counts = np.bincount(codes[rows], minlength=dataset.n_classes)
        expected = np.bincount(codes[population], minlength=dataset.n_classes)
        expected = expected * rows.size / population.size
        assert np.all(np.abs(counts - expected) <= 1), (counts, expected)

    everything = np.arange(dataset.n_rows)
    assert_ratio_kept(splits.holdout_idx, everything)
    pool = np.setdiff1d(everything, splits.holdout_idx)
    for fold in splits.folds:
        assert_ratio_kept(fold.test_idx, pool)
        training_part = np.union1d(fold.train_idx, fold.val_idx)
        assert_ratio_kept(fold.val_idx, training_part)


@pytest.mark.parametrize("name", DATASETS)
def test_deterministic_per_seed_and_different_across_seeds(name: str) -> None:
    dataset = DATASETS[name]
    first = make_folds(dataset, k=3, seed=7, holdout=0.1)
    again = make_folds(dataset, k=3, seed=7, holdout=0.1)
    other = make_folds(dataset, k=3, seed=8, holdout=0.1)
    assert first.fingerprint() == again.fingerprint()
    for a, b in zip(first.folds, again.folds, strict=True):
        assert np.array_equal(a.test_idx, b.test_idx) and np.array_equal(a.val_idx, b.val_idx)
    assert other.fingerprint() != first.fingerprint()
    assert not np.array_equal(other.folds[0].test_idx, first.folds[0].test_idx)


def test_inner_validation_differs_between_folds_of_one_seed() -> None:
    # Each fold carves its inner validation with seed + fold index, not one shared stream.
    splits = make_folds(DATASETS["regression"], k=3, seed=0)
    val_shares = [
        fold.val_idx.size / (fold.val_idx.size + fold.train_idx.size) for fold in splits.folds
    ]
    assert all(abs(share - 0.15) < 0.01 for share in val_shares)
    assert len({tuple(fold.val_idx[:5]) for fold in splits.folds}) == 3


@pytest.mark.parametrize("filename", ["splits.npz", "splits_without_suffix"])
def test_save_load_round_trip_is_byte_identical(tmp_path, filename: str) -> None:
    splits = make_folds(DATASETS["multiclass"], k=3, seed=2, inner_val=0.2, holdout=0.15)
    path = tmp_path / filename
    splits.save(path)
    assert path.exists()  # saved at exactly the given path, no ".npz" appended
    loaded = Splits.load(path)
    assert loaded.fingerprint() == splits.fingerprint()
    assert (
        loaded.k,
        loaded.seed,
        loaded.inner_val,
        loaded.holdout,
        loaded.n_rows,
        loaded.task,
    ) == (
        3,
        2,
        0.2,
        0.15,
        203,
        "classification",
    )
    assert loaded.holdout_idx.tobytes() == splits.holdout_idx.tobytes()
    for original, reloaded in zip(splits.folds, loaded.folds, strict=True):
        for part in ("train_idx", "val_idx", "test_idx"):
            assert getattr(reloaded, part).dtype == np.int64
            assert getattr(reloaded, part).tobytes() == getattr(original, part).tobytes()


def test_fingerprint_changes_when_one_row_moves() -> None:
    splits = make_folds(DATASETS["regression"], k=2, seed=0)
    a, b = splits.folds
    # Swap one training row of fold 0 with one of its validation rows: still a valid layout.
    train = np.sort(np.append(np.delete(a.train_idx, 0), a.val_idx[0]))
    val = np.sort(np.append(np.delete(a.val_idx, 0), a.train_idx[0]))
    moved = Splits(
        folds=(Fold(0, train, val, a.test_idx), b),
        holdout_idx=splits.holdout_idx,
        k=2,
        seed=0,
        inner_val=0.15,
        holdout=0.0,
        n_rows=splits.n_rows,
        task="regression",
    )
    assert moved.fingerprint() != splits.fingerprint()


def test_load_rejects_corrupt_and_inconsistent_files(tmp_path) -> None:
    splits = make_folds(DATASETS["regression"], k=3, seed=0)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match=r"garbage\.npz"):
        Splits.load(garbage)

    good = tmp_path / "good.npz"
    splits.save(good)
    with np.load(good) as archive:
        contents = {name: archive[name] for name in archive.files}

    tampered = dict(contents, fold0_test=contents["fold0_test"][1:])  # one row lost
    path = tmp_path / "tampered.npz"
    np.savez(path, **tampered)
    with pytest.raises(ValueError, match=r"tampered\.npz is not a valid splits file"):
        Splits.load(path)

    missing = {name: value for name, value in contents.items() if name != "fold2_val"}
    path = tmp_path / "missing.npz"
    np.savez(path, **missing)
    with pytest.raises(ValueError, match="fold2_val"):
        Splits.load(path)

    with pytest.raises(FileNotFoundError, match=r"nowhere\.npz"):
        Splits.load(tmp_path / "nowhere.npz")


def test_fold_arrays_are_read_only_copies() -> None:
    rows = np.array([0, 1, 2])
    fold = Fold(0, rows, np.array([3]), np.array([4]))
    rows[0] = 99
    assert fold.train_idx[0] == 0
    with pytest.raises(ValueError, match="read-only"):
        fold.train_idx[0] = 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"k": 1}, "folds must be >= 2, got 1"),
        ({"k": 0}, "folds must be >= 2, got 0"),
        ({"k": 2.5}, "folds must be an integer >= 2, got 2.5"),
        ({"inner_val": 0.0}, r"inner_val must be in \(0, 1\), got 0.0"),
        ({"inner_val": 1.0}, r"inner_val must be in \(0, 1\), got 1.0"),
        ({"holdout": -0.1}, r"holdout must be in \[0, 1\), got -0.1"),
        ({"holdout": 1.0}, r"holdout must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_options_name_the_value(options: dict, message: str) -> None:
    arguments = {"k": 3, "seed": 0} | options
    with pytest.raises(ValueError, match=message):
        make_folds(DATASETS["binary"], **arguments)


def test_too_many_folds_for_rows_or_smallest_class() -> None:
    with pytest.raises(ValueError, match=r"folds must be <= the 10 rows .* got 11"):
        make_folds(make_regression_dataset(10, seed=0), k=11, seed=0)
    dataset = make_classification_dataset(40, seed=0, n_classes=2)
    codes = dataset.target_codes()
    # Keep only three rows of class_1 so that 4 folds cannot each hold one.
    keep = np.concatenate([np.flatnonzero(codes == 0), np.flatnonzero(codes == 1)[:3]])
    small = type(dataset)(
        name=dataset.name,
        numeric=dataset.numeric.iloc[keep].reset_index(drop=True),
        categorical=dataset.categorical.iloc[keep].reset_index(drop=True),
        target=dataset.target.iloc[keep].reset_index(drop=True),
        task="classification",
        classes=dataset.classes,
        source="synthetic",
    )
    with pytest.raises(ValueError, match=r"smallest class count .*'class_1' has 3 rows.* got 4"):
        make_folds(small, k=4, seed=0)


def _write_csv(path, frame) -> str:
    frame.to_csv(path, index=False)
    return f"csv:{path}"


def test_fingerprint_covers_the_data_not_only_the_row_count(tmp_path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=60).round(3),
            "kind": rng.choice(["a", "b", "c"], size=60),
            "price": rng.normal(size=60).round(3),
        }
    )
    first = tmp_path / "one" / "houses.csv"
    second = tmp_path / "two" / "houses.csv"  # same name, same rows, one cell changed
    first.parent.mkdir()
    second.parent.mkdir()
    changed = frame.copy()
    changed.loc[17, "size"] += 1.0
    spec = _write_csv(first, frame)
    original = make_folds(load_dataset(spec, target="price"), k=3, seed=0)
    reloaded = make_folds(load_dataset(spec, target="price"), k=3, seed=0)
    other = make_folds(load_dataset(_write_csv(second, changed), target="price"), k=3, seed=0)
    assert reloaded.fingerprint() == original.fingerprint()
    assert reloaded.data_hash == original.data_hash
    # the row indices are identical: only the data hash tells the two files apart
    for a, b in zip(original.folds, other.folds, strict=True):
        assert np.array_equal(a.test_idx, b.test_idx) and np.array_equal(a.val_idx, b.val_idx)
    assert other.fingerprint() != original.fingerprint()
    label_changed = frame.copy()
    label_changed.loc[3, "kind"] = "z"
    third = tmp_path / "three" / "houses.csv"
    third.parent.mkdir()
    relabelled = load_dataset(_write_csv(third, label_changed), target="price")
    assert make_folds(relabelled, k=3, seed=0).fingerprint() != original.fingerprint()
    with pytest.raises(ValueError, match="other data"):
        original.check_dataset(relabelled)
    original.check_dataset(load_dataset(spec, target="price"))


def test_data_hash_is_canonical_for_missing_values_and_signed_zero() -> None:
    dataset = DATASETS["regression"]
    numeric = dataset.numeric.copy()
    numeric.iloc[0, 0] = -0.0
    zero = type(dataset)(**{**_fields(dataset), "numeric": numeric})
    positive = numeric.copy()
    positive.iloc[0, 0] = 0.0
    assert data_hash(zero) == data_hash(type(dataset)(**{**_fields(dataset), "numeric": positive}))
    categorical = dataset.categorical.copy()
    categorical["color"] = categorical["color"].where(categorical["color"].notna(), None)
    assert data_hash(type(dataset)(**{**_fields(dataset), "categorical": categorical})) == (
        data_hash(dataset)
    )
    # the same values under another name or source are the same data
    renamed = type(dataset)(**{**_fields(dataset), "name": "other", "source": "csv:x.csv"})
    assert data_hash(renamed) == data_hash(dataset)
    target = dataset.target.copy()
    target.iloc[5] += 1e-9
    assert data_hash(type(dataset)(**{**_fields(dataset), "target": target})) != data_hash(dataset)


def _fields(dataset) -> dict:
    return {name: getattr(dataset, name) for name in dataset.__dataclass_fields__}


def test_saved_splits_keep_their_data_hash_and_old_files_still_load(tmp_path) -> None:
    splits = make_folds(DATASETS["binary"], k=3, seed=0)
    assert splits.data_hash == data_hash(DATASETS["binary"])
    splits.save(tmp_path / "new.npz")
    assert Splits.load(tmp_path / "new.npz").data_hash == splits.data_hash
    # a format-1 file (no data hash) keeps the fingerprint it was saved with
    with np.load(tmp_path / "new.npz") as archive:
        contents = {name: archive[name] for name in archive.files}
    meta = json.loads(str(contents.pop("meta")))
    legacy = Splits(**{**_splits_fields(splits), "data_hash": ""})
    meta |= {"format_version": 1, "fingerprint": legacy.fingerprint()}
    del meta["data_hash"]
    np.savez(tmp_path / "old.npz", meta=np.array(json.dumps(meta)), **contents)
    loaded = Splits.load(tmp_path / "old.npz")
    assert loaded.data_hash == "" and loaded.fingerprint() == legacy.fingerprint()
    assert legacy.fingerprint() != splits.fingerprint()


def _splits_fields(splits: Splits) -> dict:
    return {name: getattr(splits, name) for name in Splits.__dataclass_fields__}
