"""Rank trials from MLflow and export the best configuration as a ``cv --config`` YAML."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml

from study.tags import TAG_DATASET, TAG_METRIC, TAG_MODE, TAG_MODEL, TAG_ROLE, TAG_STUDY

__all__ = ["Format", "best_per_model", "export_best", "format_frame", "study_trials"]

Format = Literal["table", "csv", "markdown", "json"]


def _search(uri: str, *, study: str | None = None) -> pd.DataFrame:
    import mlflow

    mlflow.set_tracking_uri(uri)
    role = f"tags.`{TAG_ROLE}` = 'trial'"
    if study is not None:
        if mlflow.get_experiment_by_name(study) is None:
            known = ", ".join(e.name for e in mlflow.search_experiments() if e.name != "Default")
            raise ValueError(f"no study named {study!r} at {uri}; known: {known or 'none'}")
        return mlflow.search_runs(experiment_names=[study], filter_string=role, max_results=50000)
    return mlflow.search_runs(search_all_experiments=True, filter_string=role, max_results=50000)


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


def _tidy(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per trial run with its objective value, whatever the metric is called."""
    if runs.empty:
        return pd.DataFrame(
            columns=[
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
        )
    rows = []
    for _, run in runs.iterrows():
        metric = run.get(f"tags.{TAG_METRIC}")
        std_key = f"metrics.{str(metric).removesuffix('_mean')}_std"
        rows.append(
            {
                "study": run.get(f"tags.{TAG_STUDY}"),
                "trial": run.get("tags.mlflow.runName"),
                "status": run.get("status"),
                "dataset": run.get(f"tags.{TAG_DATASET}"),
                "model": run.get(f"tags.{TAG_MODEL}"),
                "metric": metric,
                "mode": run.get(f"tags.{TAG_MODE}"),
                "value": float(run.get(f"metrics.{metric}", math.nan)),
                "std": float(run.get(std_key, math.nan)) if std_key in runs else math.nan,
                "run_id": run.get("run_id"),
            }
        )
    return pd.DataFrame(rows)


def study_trials(uri: str, study: str) -> pd.DataFrame:
    """Every trial of ``study``, best first, with a ``rank`` column."""
    ranked = _rank(_tidy(_search(uri, study=study)))
    return ranked.assign(rank=range(1, len(ranked) + 1))[
        ["rank", "trial", "status", "metric", "value", "std", "run_id"]
    ]


def best_per_model(uri: str, *, dataset: str | None = None) -> pd.DataFrame:
    """The best trial for each (dataset, model) across all studies in the store."""
    tidy = _tidy(_search(uri))
    if dataset is not None:
        tidy = tidy[tidy["dataset"] == dataset]
    tidy = tidy[tidy["status"] != "FAILED"]
    best = [_rank(group).iloc[:1] for _, group in tidy.groupby(["dataset", "model"], sort=True)]
    if not best:
        return tidy.iloc[:0]
    columns = ["dataset", "model", "metric", "value", "std", "study", "trial", "run_id"]
    return pd.concat(best, ignore_index=True)[columns]


def format_frame(frame: pd.DataFrame, fmt: Format = "table") -> str:
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return json.dumps(frame.to_dict(orient="records"), indent=2, default=str)
    if fmt == "markdown":
        headers = list(frame.columns)
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for row in frame.itertuples(index=False):
            lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
        return "\n".join(lines)
    from study.console import format_table

    return format_table(list(frame.columns), [list(row) for row in frame.itertuples(index=False)])


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def export_best(uri: str, study: str, out: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """Write the best finished trial's configuration (with provenance) for ``cv --config``."""
    from mlflow.tracking import MlflowClient

    trials = study_trials(uri, study)
    finished = trials[(trials["status"] == "FINISHED") & trials["value"].map(math.isfinite)]
    if finished.empty:
        raise ValueError(f"study {study!r} has no finished trial to export")
    best = finished.iloc[0]
    client = MlflowClient(tracking_uri=uri)
    config_text = client.download_artifacts(best["run_id"], "config.yaml")
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
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out, config


def _parent(client, run):
    return client.get_run(run.data.tags["mlflow.parentRunId"])


def _study_dataset(client, run) -> str:
    # the parent records the dataset spec the study was launched with (csv:/uci: included)
    return _parent(client, run).data.params.get("dataset", run.data.tags.get(TAG_DATASET))


def _study_param(client, run, name: str) -> Any:
    value = _parent(client, run).data.params.get(name)
    return int(value) if value is not None and value.lstrip("-").isdigit() else value
