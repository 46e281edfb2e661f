"""Rank trials from MLflow and export the best configuration as a ``cv --config`` YAML."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import yaml

from actmix.config import XGBOOST, TrainConfig, config_from_dict, schedule_fractions
from study.tracking._client import client_for, search_all_runs, study_names, study_runs
from study.tracking._tags import (
    CONFIG_ARTIFACT,
    TAG_DATASET,
    TAG_METRIC,
    TAG_MODE,
    TAG_MODEL,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STAGE,
    TAG_STUDY,
    TAG_SUITE,
    TAG_TRIALS,
    trial_status,
)
from study.tracking.payload import std_key

if TYPE_CHECKING:
    from mlflow.entities import Experiment, Run
    from mlflow.tracking import MlflowClient

__all__ = [
    "Format",
    "best_configuration",
    "best_per_model",
    "export_best",
    "format_frame",
    "study_trials",
    "suite_finals",
]

Format = Literal["table", "csv", "markdown", "json"]

_COLUMNS = [
    "study",
    "trial",
    "status",
    "dataset",
    "model",
    "metric",
    "mode",
    "value",
    "std",
    "run_id",
]


def _search(uri: str, *, study: str | None = None) -> list[Run]:
    """Trial runs of ``study``, or of every study in the store; newest first."""
    client = client_for(uri)
    if study is not None:
        found = study_runs(client, study, "trial")
        if not found:
            known = ", ".join(study_names(client))
            raise ValueError(f"no study named {study!r} at {uri}; known: {known or 'none'}")
        return found
    experiments: list[Experiment] = client.search_experiments()
    return search_all_runs(
        client, [e.experiment_id for e in experiments], f"tags.`{TAG_ROLE}` = 'trial'"
    )


def _rank(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by the objective, direction-aware, non-finite values last."""
    if frame.empty:
        return frame
    mode = frame["mode"].iloc[0]
    key = frame["value"] if mode == "min" else -frame["value"]
    ordered = frame.assign(_key=key.where(key.map(math.isfinite), math.inf)).sort_values(
        "_key", kind="stable"
    )
    return ordered.drop(columns="_key").reset_index(drop=True)


def _tidy(runs: list[Run]) -> pd.DataFrame:
    """One row per trial run with its objective value, whatever the metric is called."""
    rows = []
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        metric = tags.get(TAG_METRIC)
        rows.append(
            {
                "study": tags.get(TAG_STUDY),
                "trial": run.info.run_name,
                "status": trial_status(run.info.status, tags),
                "dataset": tags.get(TAG_DATASET),
                "model": tags.get(TAG_MODEL),
                "metric": metric,
                "mode": tags.get(TAG_MODE),
                "value": float(metrics.get(metric, math.nan)) if metric else math.nan,
                "std": float(metrics.get(std_key(metric), math.nan)) if metric else math.nan,
                "run_id": run.info.run_id,
            }
        )
    return pd.DataFrame(rows, columns=_COLUMNS)


def study_trials(uri: str, study: str) -> pd.DataFrame:
    """Every trial of ``study``, best first, with a ``rank`` column."""
    ranked = _rank(_tidy(_search(uri, study=study)))
    return ranked.assign(rank=range(1, len(ranked) + 1))[
        ["rank", "trial", "status", "metric", "value", "std", "run_id"]
    ]


def best_per_model(
    uri: str, *, dataset: str | None = None, suite: str | None = None, params: bool = False
) -> pd.DataFrame:
    """The best trial for each (dataset, model) across the studies in the store.

    By default the studies a user ran (``run``); with ``suite``, the studies of that suite
    instead (one per dataset x model x outer fold, their datasets under the suite's
    labels). Each row says the study's budget (trials x inner folds x epochs); with
    ``params``, the winning trial's parameters as JSON.
    """
    client = client_for(uri)
    parents = {run.info.run_id: run for run in _study_parents(client)}
    if suite is not None:
        known = sorted(
            {p.data.tags[TAG_SUITE] for p in parents.values() if TAG_SUITE in p.data.tags}
        )
        if suite not in known:
            raise ValueError(
                f"no suite named {suite!r} at {uri}; known: {', '.join(known) or 'none'}"
            )
    runs = [
        run
        for run in _search(uri)
        if (parent := parents.get(run.data.tags.get(TAG_PARENT, ""))) is not None
        and parent.data.tags.get(TAG_SUITE) == suite
    ]
    tidy = _tidy(runs)
    if dataset is not None:
        tidy = tidy[tidy["dataset"] == dataset]
    tidy = tidy[tidy["status"] != "FAILED"]
    best = [_rank(group).iloc[:1] for _, group in tidy.groupby(["dataset", "model"], sort=True)]
    columns = ["dataset", "model", "metric", "value", "std", "budget", "study", "trial", "run_id"]
    if not best:
        return tidy.iloc[:0].assign(budget=[])[columns]
    frame = pd.concat(best, ignore_index=True)
    by_id = {run.info.run_id: run for run in runs}
    frame["budget"] = [_budget(parents[by_id[r].data.tags[TAG_PARENT]]) for r in frame["run_id"]]
    if params:
        frame["params"] = [
            json.dumps(dict(sorted(by_id[r].data.params.items())), separators=(",", ":"))
            for r in frame["run_id"]
        ]
        columns.append("params")
    return frame[columns]


def suite_finals(uri: str, suite: str, *, dataset: str | None = None) -> pd.DataFrame:
    """A suite's retrained models and references scored on the outer-test rows: per
    (dataset, row) the mean and std of the primary test metric over its outer folds (and
    repeats), best first within each dataset. ``suite report`` tests the differences."""
    from actmix.metrics import get_metric

    client = client_for(uri)
    experiment = client.get_experiment_by_name(suite)
    runs = (
        []
        if experiment is None
        else search_all_runs(client, [experiment.experiment_id], f"tags.`{TAG_SUITE}` = '{suite}'")
    )
    runs = [run for run in runs if run.data.tags.get(TAG_STAGE) in ("final", "reference")]
    if not runs:
        raise ValueError(f"no final or reference runs of a suite named {suite!r} at {uri}")
    rows = []
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        # the primary metric comes first among a task's metrics: RMSE, else accuracy
        key = next((k for k in ("test_rmse_mean", "test_accuracy_mean") if k in metrics), None)
        if key is None:
            continue
        rows.append(
            {
                "dataset": tags.get("dataset"),
                "model": tags.get("model"),
                "stage": tags[TAG_STAGE],
                "metric": key.removesuffix("_mean"),
                "value": float(metrics[key]),
            }
        )
    table = pd.DataFrame(rows)
    if dataset is not None:
        table = table[table["dataset"] == dataset]
    grouped = table.groupby(["dataset", "model", "stage", "metric"], sort=True)["value"]
    frame = grouped.agg(value="mean", std="std", outer_folds="count").reset_index()
    ordered = []
    for _, group in frame.groupby("dataset", sort=True):
        lower = get_metric(group["metric"].iloc[0].removeprefix("test_")).direction == "minimize"
        ordered.append(group.sort_values("value", ascending=lower, kind="stable"))
    return pd.concat(ordered, ignore_index=True)


def _study_parents(client: MlflowClient) -> list[Run]:
    experiments = [e.experiment_id for e in client.search_experiments()]
    return search_all_runs(client, experiments, f"tags.`{TAG_ROLE}` = 'study'")


def _budget(parent: Run) -> str:
    """``trials x folds x epochs`` of a study, from its parent run (trials: with those
    `extend` added)."""
    found = dict(parent.data.params)
    if TAG_TRIALS in parent.data.tags:
        found["trials"] = parent.data.tags[TAG_TRIALS]
    return "x".join(found.get(name, "?") for name in ("trials", "folds", "epochs"))


def format_frame(frame: pd.DataFrame, fmt: Format = "table") -> str:
    """``frame`` as text to print: no trailing newline; JSON has ``null`` for a missing value."""
    if fmt == "csv":
        return frame.to_csv(index=False, lineterminator="\n").removesuffix("\n")
    if fmt == "json":
        records = [
            {key: _json_value(value) for key, value in record.items()}
            for record in frame.to_dict(orient="records")
        ]
        return json.dumps(records, indent=2, default=str, allow_nan=False)
    if fmt == "markdown":
        headers = list(frame.columns)
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for row in frame.itertuples(index=False):
            lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
        return "\n".join(lines)
    from study.system import format_table

    return format_table(list(frame.columns), [list(row) for row in frame.itertuples(index=False)])


def _json_value(value: Any) -> Any:
    # strict JSON has no NaN or Infinity: a value that is not there is null
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return None if value is pd.NA or value is pd.NaT else value


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def best_configuration(uri: str, study: str) -> dict[str, Any]:
    """The best finished trial's configuration, with its provenance: what ``cv --config``
    reads. ValueError when the study has no finished trial."""
    return top_configurations(uri, study, 1)[0]


def top_configurations(uri: str, study: str, k: int) -> list[dict[str, Any]]:
    """The configurations of the ``k`` best finished trials (fewer if the study has fewer),
    best first, each as :func:`best_configuration` gives it. ValueError when none finished."""
    trials = study_trials(uri, study)
    finished = trials[(trials["status"] == "FINISHED") & trials["value"].map(math.isfinite)]
    if finished.empty:
        raise ValueError(f"study {study!r} has no finished trial to export")
    client = client_for(uri)
    return [_configuration(client, uri, study, row) for _, row in finished.head(k).iterrows()]


def _configuration(client: MlflowClient, uri: str, study: str, best: pd.Series) -> dict[str, Any]:
    """The configuration of trial ``best`` (a row of :func:`study_trials`), with provenance."""
    config_text = client.download_artifacts(best["run_id"], CONFIG_ARTIFACT)
    config = yaml.safe_load(Path(config_text).read_text())
    run = client.get_run(best["run_id"])
    config["dataset"] = _study_dataset(client, run)
    config["provenance"] = {
        "study": study,
        "trial": best["trial"],
        "run_id": best["run_id"],
        "tracking_uri": uri,
        "objective": best["metric"],
        "value": float(best["value"]),
        "split_seed": _study_param(client, run, "split_seed"),
        "target": _study_param(client, run, "target"),
        "task": _study_param(client, run, "task"),
    }
    if config.get("model") != XGBOOST:
        # `cv --config --epochs N` keeps these fractions; they are written here for readers
        train = config_from_dict(TrainConfig, config.get("train") or {}, source=study)
        config["provenance"]["tuned_epochs"] = train.epochs
        config["provenance"]["schedule_fractions"] = {
            key: round(value, 6) for key, value in schedule_fractions(train).items()
        }
    return config


def export_best(
    uri: str, study: str, out: str | os.PathLike, *, top_k: int | None = None
) -> tuple[Path, dict[str, Any]]:
    """Write :func:`best_configuration` as YAML to ``out``; the path and what it holds.

    With ``top_k``: ``{"ensemble": [...]}``, the ``top_k`` best configurations (fewer if
    fewer finished), best first, each with its provenance: ``cv --config`` evaluates their
    ensemble."""
    if top_k is not None and top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {top_k}")
    if top_k is None:
        config = best_configuration(uri, study)
    else:
        config = {"ensemble": top_configurations(uri, study, top_k)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out, config


def _parent(client: MlflowClient, run: Run) -> Run:
    return client.get_run(run.data.tags[TAG_PARENT])


def _study_dataset(client: MlflowClient, run: Run) -> str | None:
    # the parent records the dataset spec the study was launched with (csv:/uci: included)
    return _parent(client, run).data.params.get("dataset", run.data.tags.get(TAG_DATASET))


def _study_param(client: MlflowClient, run: Run, name: str) -> Any:
    value = _parent(client, run).data.params.get(name)
    return int(value) if value is not None and value.lstrip("-").isdigit() else value
