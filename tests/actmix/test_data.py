"""Dataset loading: bundled facts from PROVENANCE.md, the UCI cache, CSV inference and errors."""

from __future__ import annotations

import urllib.error
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import ucimlrepo

from actmix.data import (
    BUNDLED_DATASETS,
    NUMERIC_SHARE,
    CoercedValuesWarning,
    check_dataset,
    describe_datasets,
    load_dataset,
)
from actmix.types import Dataset, Task

# --- bundled ------------------------------------------------------------------------------


def test_power_plant_matches_provenance() -> None:
    data = load_dataset("power_plant")
    assert (data.name, data.task, data.n_rows, data.classes) == (
        "power_plant",
        "regression",
        9568,
        (),
    )
    assert data.feature_names == ("AT", "V", "AP", "RH")
    assert data.categorical.shape == (9568, 0)
    assert (data.numeric.dtypes == np.float64).all()
    assert data.numeric.iloc[0].tolist() == [14.96, 41.76, 1024.07, 73.17]
    assert data.target.iloc[0] == 463.26
    assert data.target.mean() == pytest.approx(454.3650, abs=5e-5)
    assert (data.target.min(), data.target.max()) == (420.26, 495.76)
    assert data.source == "bundled:power_plant (UCI 294, doi:10.24432/C5002N)"


def test_adult_matches_provenance() -> None:
    data = load_dataset("adult")
    assert (data.task, data.n_rows, data.classes) == ("classification", 48842, ("<=50K", ">50K"))
    assert data.target.value_counts().to_dict() == {"<=50K": 37155, ">50K": 11687}
    integer_columns = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss"]
    assert list(data.numeric.columns) == [*integer_columns, "hours-per-week"]
    assert (data.numeric.dtypes == np.float64).all()
    assert len(data.categorical.columns) == 8
    missing = data.categorical.isna().sum()
    assert (missing["workclass"], missing["occupation"], missing["native-country"]) == (
        2799,
        2809,
        857,
    )
    assert not (data.categorical == "?").any().any()
    # Row 0 is adult.data's first row; row 32561 is adult.test's first row, label "<=50K.".
    assert data.numeric.loc[0, "fnlwgt"] == 77516.0
    assert data.categorical.loc[0, "workclass"] == "State-gov"
    assert data.numeric.loc[32561, "fnlwgt"] == 226802.0
    assert data.target.iloc[32561] == "<=50K"
    assert data.target_codes()[:3].tolist() == [0, 0, 0]


def test_magic_gamma_matches_provenance() -> None:
    data = load_dataset("magic_gamma")
    assert (data.task, data.n_rows, data.classes) == ("classification", 19020, ("g", "h"))
    assert data.target.value_counts().to_dict() == {"g": 12332, "h": 6688}
    assert data.numeric.shape == (19020, 10)
    assert data.numeric.iloc[0, :3].tolist() == [28.7967, 16.0021, 2.6449]


@pytest.mark.parametrize("name", BUNDLED_DATASETS)
def test_bundled_frames_share_a_range_index(name: str) -> None:
    data = load_dataset(name)
    for frame in (data.numeric, data.categorical, data.target):
        assert frame.index.equals(pd.RangeIndex(data.n_rows))


def test_describe_datasets_agrees_with_loaded_data() -> None:
    described = describe_datasets()
    assert [entry["name"] for entry in described] == list(BUNDLED_DATASETS)
    for entry in described:
        data = load_dataset(entry["name"])
        assert entry["rows"] == data.n_rows
        assert entry["features"] == len(data.feature_names)
        assert entry["task"] == data.task
        assert entry["source"] == data.source
        assert entry["doi"] in data.source


def test_bundled_target_cannot_be_changed() -> None:
    assert load_dataset("power_plant", target="PE").n_rows == 9568
    with pytest.raises(ValueError, match="fixed target 'PE'"):
        load_dataset("power_plant", target="AT")


def test_unknown_spec_names_the_valid_ones() -> None:
    with pytest.raises(ValueError) as caught:
        load_dataset("xyz")
    assert str(caught.value) == (
        "unknown dataset 'xyz'; valid: power_plant, adult, magic_gamma, uci:<id>, csv:<path>"
    )


def test_unknown_task_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        load_dataset("adult", task="ranking")  # type: ignore[arg-type]


# --- uci: ---------------------------------------------------------------------------------


class FakeFetch:
    """Stands in for ``ucimlrepo.fetch_ucirepo`` and counts its calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, *, id: int) -> SimpleNamespace:
        self.calls.append(id)
        features = pd.DataFrame(
            {
                "size": [1.5, 2.5, 3.5, 4.5],
                "colour": ["red", "?", "blue", "red"],
                "postcode": ["0150", "5003", "0010", "9990"],  # text that looks like numbers
            }
        )
        targets = pd.DataFrame({"kind": ["b", "a", "b", None], "weight": [1.0, 2.0, 3.0, 4.0]})
        variables = pd.DataFrame(
            {
                "name": ["size", "colour", "postcode", "kind", "weight"],
                "role": ["Feature", "Feature", "Feature", "Target", "Target"],
                "type": ["Continuous", "Categorical", "Categorical", "Categorical", "Continuous"],
            }
        )
        return SimpleNamespace(
            data=SimpleNamespace(features=features, targets=targets),
            variables=variables,
            metadata={"name": "Toy", "doi": "10.0/toy"},
        )


@pytest.fixture
def fake_fetch(monkeypatch: pytest.MonkeyPatch) -> FakeFetch:
    fake = FakeFetch()
    monkeypatch.setattr(ucimlrepo, "fetch_ucirepo", fake)
    return fake


def test_uci_builds_the_dataset_from_features_and_first_target(
    fake_fetch: FakeFetch, tmp_path: Path
) -> None:
    data = load_dataset("uci:7", cache_dir=tmp_path)
    assert (data.name, data.task, data.classes) == ("uci-7", "classification", ("a", "b"))
    # The row without "kind" is dropped; the other target column is not a feature.
    assert data.target.tolist() == ["b", "a", "b"]
    assert data.feature_names == ("size", "colour", "postcode")
    assert data.numeric["size"].tolist() == [1.5, 2.5, 3.5]
    assert data.categorical["colour"].tolist()[0::2] == ["red", "blue"]
    assert pd.isna(data.categorical["colour"].iloc[1])
    assert data.source == "uci:7 (Toy, doi:10.0/toy)"
    assert fake_fetch.calls == [7]


def test_uci_second_load_reads_the_cache(fake_fetch: FakeFetch, tmp_path: Path) -> None:
    first = load_dataset("uci:7", cache_dir=tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["uci-7.csv.gz", "uci-7.json"]
    second = load_dataset("uci:7", cache_dir=tmp_path)
    assert fake_fetch.calls == [7]
    pd.testing.assert_frame_equal(first.numeric, second.numeric)
    pd.testing.assert_frame_equal(first.categorical, second.categorical)
    pd.testing.assert_series_equal(first.target, second.target)


def test_uci_cached_strings_keep_their_text(fake_fetch: FakeFetch, tmp_path: Path) -> None:
    load_dataset("uci:7", cache_dir=tmp_path)
    cached = load_dataset("uci:7", cache_dir=tmp_path)
    assert cached.categorical["postcode"].tolist() == ["0150", "5003", "0010"]
    assert len(fake_fetch.calls) == 1


def test_uci_target_may_name_another_target_column(fake_fetch: FakeFetch, tmp_path: Path) -> None:
    data = load_dataset("uci:7", target="weight", cache_dir=tmp_path)
    assert (data.task, data.n_rows) == ("regression", 4)
    assert data.target.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert data.feature_names == ("size", "colour", "postcode")
    with pytest.raises(ValueError, match="columns: kind, weight"):
        load_dataset("uci:7", target="size", cache_dir=tmp_path)
    assert fake_fetch.calls == [7]


def test_uci_cache_directory_comes_from_the_environment(
    fake_fetch: FakeFetch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTMIX_CACHE", str(tmp_path / "from-env"))
    load_dataset("uci:7")
    assert (tmp_path / "from-env" / "uci-7.csv.gz").is_file()
    # An explicit cache_dir wins over the environment.
    load_dataset("uci:7", cache_dir=tmp_path / "explicit")
    assert (tmp_path / "explicit" / "uci-7.json").is_file()
    assert fake_fetch.calls == [7, 7]


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("Error connecting to server"),
        urllib.error.URLError("Name or service not known"),
        ucimlrepo.fetch.DatasetNotFoundError("Dataset not found\nin repository"),
    ],
)
def test_uci_fetch_failure_is_one_line_connection_error(
    error: Exception, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fetch(*, id: int) -> None:  # noqa: ARG001
        raise error

    monkeypatch.setattr(ucimlrepo, "fetch_ucirepo", failing_fetch)
    with pytest.raises(ConnectionError) as caught:
        load_dataset("uci:294", cache_dir=tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert "UCI repository" in message
    assert "294" in message
    assert "power_plant, adult, magic_gamma" in message
    assert "csv:<path>" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec", ["uci:abc", "uci:", "uci:1.5", "uci:-3"])
def test_uci_id_must_be_a_positive_integer(spec: str, fake_fetch: FakeFetch) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        load_dataset(spec)
    assert fake_fetch.calls == []


# --- csv: ---------------------------------------------------------------------------------


def write_csv(path: Path, text: str) -> str:
    path.write_text(text)
    return f"csv:{path}"


def test_csv_float_target_is_regression(tmp_path: Path) -> None:
    spec = write_csv(tmp_path / "houses.csv", "rooms,city,price\n3,Oslo,1.5\n4,Bergen,2.25\n")
    data = load_dataset(spec, target="price")
    assert (data.name, data.task, data.classes) == ("houses", "regression", ())
    assert data.target.tolist() == [1.5, 2.25]
    assert data.numeric["rooms"].dtype == np.float64
    assert data.categorical["city"].tolist() == ["Oslo", "Bergen"]


def test_csv_string_target_is_classification(tmp_path: Path) -> None:
    spec = write_csv(tmp_path / "pets.csv", "weight,kind\n4.0,dog\n3.5,cat\n5.0,dog\n")
    data = load_dataset(spec, target="kind")
    assert (data.task, data.classes) == ("classification", ("cat", "dog"))
    assert data.target_codes().tolist() == [1, 0, 1]


def test_csv_small_integer_target_is_classification(tmp_path: Path) -> None:
    rows = "".join(f"{index}.5,{index % 3}\n" for index in range(12))
    data = load_dataset(write_csv(tmp_path / "labels.csv", "x,y\n" + rows), target="y")
    assert (data.task, data.classes) == ("classification", ("0", "1", "2"))
    assert data.target.iloc[:4].tolist() == ["0", "1", "2", "0"]


def test_csv_integer_target_with_many_values_is_regression(tmp_path: Path) -> None:
    rows = "".join(f"{index},{index * 7}\n" for index in range(30))
    data = load_dataset(write_csv(tmp_path / "counts.csv", "x,y\n" + rows), target="y")
    assert data.task == "regression"


def test_csv_numeric_classes_sort_by_value(tmp_path: Path) -> None:
    rows = "".join(f"{index},{(2, 10, 1)[index % 3]}\n" for index in range(9))
    data = load_dataset(write_csv(tmp_path / "codes.csv", "x,y\n" + rows), target="y")
    assert data.classes == ("1", "2", "10")


def test_csv_given_task_overrides_inference(tmp_path: Path) -> None:
    rows = "".join(f"{index},{index % 2}\n" for index in range(10))
    spec = write_csv(tmp_path / "binary.csv", "x,y\n" + rows)
    assert load_dataset(spec, target="y").task == "classification"
    data = load_dataset(spec, target="y", task="regression")
    assert (data.task, data.target.dtype, data.target.iloc[1]) == ("regression", np.float64, 1.0)


def test_csv_regression_rejects_text_target(tmp_path: Path) -> None:
    spec = write_csv(tmp_path / "pets.csv", "weight,kind\n4.0,dog\n3.5,cat\n5.0,7\n")
    with pytest.raises(ValueError, match=r"column 'kind'.*'dog', 'cat'"):
        load_dataset(spec, target="kind", task="regression")


def test_csv_rows_without_target_are_dropped(tmp_path: Path) -> None:
    spec = write_csv(tmp_path / "gaps.csv", "x,colour,y\n1,red,0.5\n2,?,\n3,,1.5\n4,?,?\n")
    data = load_dataset(spec, target="y")
    assert data.numeric["x"].tolist() == [1.0, 3.0]
    assert data.target.tolist() == [0.5, 1.5]
    assert data.categorical["colour"].iloc[0] == "red"
    assert pd.isna(data.categorical["colour"].iloc[1])
    assert data.numeric.index.equals(pd.RangeIndex(2))
    assert data.categorical.index.equals(pd.RangeIndex(2))


def test_csv_question_mark_is_missing_in_categories(tmp_path: Path) -> None:
    spec = write_csv(tmp_path / "marks.csv", "colour,y\nred,1.5\n?,2.5\nblue,3.25\n")
    data = load_dataset(spec, target="y")
    assert data.categorical["colour"].isna().tolist() == [False, True, False]


def test_csv_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(FileNotFoundError, match=r"nowhere\.csv"):
        load_dataset(f"csv:{missing}", target="y")


@pytest.mark.parametrize("target", [None, "prize"])
def test_csv_target_must_name_a_column(tmp_path: Path, target: str | None) -> None:
    spec = write_csv(tmp_path / "houses.csv", "rooms,city,price\n3,Oslo,1.5\n")
    with pytest.raises(ValueError, match="columns: rooms, city, price"):
        load_dataset(spec, target=target)


def test_csv_empty_file_names_the_path(tmp_path: Path) -> None:
    spec = write_csv(tmp_path / "empty.csv", "")
    with pytest.raises(ValueError, match=r"empty\.csv"):
        load_dataset(spec, target="y")


def test_csv_header_only_file_names_the_path(tmp_path: Path) -> None:
    spec = write_csv(tmp_path / "header.csv", "x,y\n")
    with pytest.raises(ValueError, match=r"header\.csv.*no data rows"):
        load_dataset(spec, target="y")


def test_csv_unreadable_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"binary\.csv\.gz"):
        load_dataset(f"csv:{path}", target="y")


# --- column typing and dataset checks ------------------------------------------------------


def _measurements_csv(path: Path, radius: list[str]) -> str:
    """A CSV with the given 'mean radius' cells, a clean numeric column and a text target."""
    lines = ["mean radius,texture,diagnosis"]
    lines += [f"{cell},{index * 0.5},{'MB'[index % 2]}" for index, cell in enumerate(radius)]
    return write_csv(path, "\n".join(lines) + "\n")


def test_csv_stray_token_in_numeric_column_becomes_missing(tmp_path: Path) -> None:
    radius = [f"{10 + index * 0.25}" for index in range(40)]
    radius[7] = "unknown"
    spec = _measurements_csv(tmp_path / "cancer.csv", radius)
    with pytest.warns(CoercedValuesWarning) as caught:
        data = load_dataset(spec, target="diagnosis")
    assert data.feature_names == ("mean radius", "texture")
    assert data.categorical.shape == (40, 0)
    values = data.numeric["mean radius"]
    assert values.dtype == np.float64 and values.isna().tolist() == [i == 7 for i in range(40)]
    assert values.iloc[8] == 12.0
    message = str(caught[0].message)
    assert "'mean radius'" in message and "1 non-numeric cell" in message
    assert "'unknown'" in message and "97.5%" in message
    assert len(caught) == 1  # the clean columns say nothing


@pytest.mark.parametrize(
    ("tokens", "numeric"),
    [(1, True), (2, False)],  # 19 of 20 numbers is exactly 95 %; 18 of 20 is 90 %
)
def test_csv_numeric_share_threshold(tmp_path: Path, tokens: int, numeric: bool) -> None:
    radius = [str(index) for index in range(20 - tokens)] + ["n/a?"] * tokens
    spec = _measurements_csv(tmp_path / "cancer.csv", radius)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(spec, target="diagnosis")
    assert NUMERIC_SHARE == 0.95
    assert ("mean radius" in data.numeric.columns) is numeric
    assert ("mean radius" in data.categorical.columns) is not numeric
    assert len(caught) == int(numeric)
    if not numeric:
        assert data.categorical["mean radius"].iloc[-1] == "n/a?"


def test_missing_cells_do_not_count_against_the_numeric_share(tmp_path: Path) -> None:
    radius = ["", "?", "NA", "1.5", "2.5", "3.5"]
    spec = _measurements_csv(tmp_path / "gaps.csv", radius)
    data = load_dataset(spec, target="diagnosis")
    assert data.numeric["mean radius"].tolist()[3:] == [1.5, 2.5, 3.5]
    assert data.numeric["mean radius"].isna().sum() == 3


@pytest.mark.parametrize("cell", ["inf", "-inf"])
def test_csv_infinite_feature_names_the_column(tmp_path: Path, cell: str) -> None:
    radius = [str(index) for index in range(10)]
    radius[4] = cell
    spec = _measurements_csv(tmp_path / "cancer.csv", radius)
    with pytest.raises(ValueError, match=r"infinite values in feature column\(s\) 'mean radius'"):
        load_dataset(spec, target="diagnosis")


def test_infinite_token_in_a_mostly_numeric_column_is_refused(tmp_path: Path) -> None:
    radius = [str(index) for index in range(30)]
    radius[3], radius[5] = "inf", "unknown"  # the column parses as numbers, inf included
    spec = _measurements_csv(tmp_path / "cancer.csv", radius)
    with pytest.warns(CoercedValuesWarning), pytest.raises(ValueError, match="'mean radius'"):
        load_dataset(spec, target="diagnosis")


@pytest.mark.parametrize("task", ["classification", None])
def test_single_class_target_is_refused(tmp_path: Path, task: str | None) -> None:
    rows = "".join(f"{index},1\n" for index in range(12))
    spec = write_csv(tmp_path / "constant.csv", "x,y\n" + rows)
    with pytest.raises(ValueError, match=r"at least two classes.*target 'y' has only \['1'\]"):
        load_dataset(spec, target="y", task=task)  # type: ignore[arg-type]


def _tiny_dataset(numeric: dict[str, list[float]], target: list[Any], task: Task) -> Dataset:
    classes = tuple(sorted(set(target))) if task == "classification" else ()
    return Dataset(
        name="tiny",
        numeric=pd.DataFrame(numeric),
        categorical=pd.DataFrame(index=range(len(target))),
        target=pd.Series(target, name="y"),
        task=task,
        classes=classes,
        source="test",
    )


def test_check_dataset_accepts_a_trainable_dataset() -> None:
    check_dataset(_tiny_dataset({"a": [1.0, np.nan, 3.0]}, [0.5, 1.5, 2.5], "regression"))
    check_dataset(_tiny_dataset({"a": [1.0, 2.0, 3.0]}, ["x", "y", "x"], "classification"))


@pytest.mark.parametrize(
    ("numeric", "target", "task", "message"),
    [
        (
            {"a": [1.0, 2.0, 3.0], "b": [np.inf, -np.inf, 1.0]},
            [0.0, 1.0, 2.0],
            "regression",
            r"'tiny' has infinite values in feature column\(s\) 'b' \(2 rows\)",
        ),
        ({"a": [1.0, 2.0, 3.0]}, [0.0, np.nan, 2.0], "regression", "1 missing or infinite"),
        ({"a": [1.0, 2.0, 3.0]}, [0.0, np.inf, 2.0], "regression", "1 missing or infinite"),
        ({"a": [1.0, 2.0, 3.0]}, ["x", "x", "x"], "classification", "at least two classes"),
    ],
)
def test_check_dataset_refuses_untrainable_data(
    numeric: dict[str, list[float]], target: list[Any], task: Task, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_dataset(_tiny_dataset(numeric, target, task))
