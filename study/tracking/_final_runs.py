"""Final CV runs read back for the report: from MLflow (``stage=final``) or ``cv --out`` files.

A :class:`FinalRun` holds one run's test scores per (fold, seed) row and per fold, with
the splits fingerprint (folds and data) that decides which runs may be paired.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actmix.comparison import fold_scores
from actmix.metrics import fold_std, primary_metric
from study.tracking._client import client_for, search_all_runs
from study.tracking._tags import CV_RESULT_ARTIFACT, TAG_ROLE

__all__ = [
    "RESULT_FILES",
    "FinalRun",
    "collect_final_runs",
    "experiments_named",
    "final_run_from_result",
    "load_result_file",
]

RESULT_FILES = "result files"  # the "experiment" of runs read from cv JSON files
_CV_RESULT_KEYS = {"dataset", "model", "rows", "seeds", "splits", "task"}


@dataclass(frozen=True, slots=True)
class FinalRun:
    """One final CV run: its test scores per (fold, seed) row and per fold.

    ``started`` (seconds since the epoch) orders runs: the MLflow run's start time, or
    the modification time of a result file.
    """

    experiment: str
    run_id: str
    name: str
    dataset: str
    model: str
    task: str
    metric: str
    lower_is_better: bool
    fingerprint: str
    folds: int
    seeds: tuple[int, ...]
    values: tuple[float, ...]
    per_fold: dict[int, float]
    started: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        return fold_std(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "run_id": self.run_id,
            "name": self.name,
            "dataset": self.dataset,
            "model": self.model,
            "task": self.task,
            "metric": self.metric,
            "lower_is_better": self.lower_is_better,
            "mean": self.mean,
            "std": self.std,
            "n": len(self.values),
            "folds": self.folds,
            "seeds": list(self.seeds),
            "splits_fingerprint": self.fingerprint,
            "per_fold": {str(k): v for k, v in self.per_fold.items()},
            "started": self.started,
        }


def final_run_from_result(
    experiment: str, run_id: str, name: str, result: dict[str, Any], *, started: float
) -> FinalRun:
    """A :class:`FinalRun` from a ``CVResult.to_dict()`` (the ``cv_result.json`` artifact)."""
    metric = primary_metric(result["task"])
    key = f"test_{metric.name}"
    rows = result["rows"]
    values = tuple(float(row[key]) for row in rows if math.isfinite(float(row[key])))
    return FinalRun(
        experiment=experiment,
        run_id=run_id,
        name=name,
        dataset=result["dataset"],
        model=result["model"],
        task=result["task"],
        metric=metric.name,
        lower_is_better=metric.direction == "minimize",
        fingerprint=result["splits"]["fingerprint"],
        folds=int(result["splits"]["k"]),
        seeds=tuple(result["seeds"]),
        values=values,
        per_fold=fold_scores(rows, key),
        started=started,
    )


def experiments_named(client: Any, names: list[str]) -> list[Any]:
    """The MLflow experiments called ``names``, where a study of a suite stands for its
    suite's experiment; ValueError naming the first unknown one."""
    from study.tracking._client import study_names, study_runs

    known = {e.name: e for e in client.search_experiments()}
    found = []
    for name in names:
        if name in known:
            found.append(known[name])
            continue
        parents = study_runs(client, name, "study")
        if not parents:
            listed = sorted({*(n for n in known if n != "Default"), *study_names(client)})
            raise ValueError(
                f"no study or experiment named {name!r}; known: {', '.join(listed) or 'none'}"
            )
        found.append(client.get_experiment(parents[0].info.experiment_id))
    return list({e.experiment_id: e for e in found}.values())


def collect_final_runs(uri: str, experiments: list[str]) -> list[FinalRun]:
    """Every finished ``stage=final`` run in ``experiments`` that has its per-fold rows."""
    client = client_for(uri)
    found = experiments_named(client, experiments)
    runs = []
    for experiment in found:
        listed = search_all_runs(
            client,
            [experiment.experiment_id],
            f"tags.`{TAG_ROLE}` = 'final' and attributes.status = 'FINISHED'",
        )
        for run in listed:
            result = _cv_result(client, run.info.run_id)
            if result is not None:
                name = run.info.run_name or run.info.run_id
                started = run.info.start_time / 1000
                runs.append(
                    final_run_from_result(
                        experiment.name, run.info.run_id, name, result, started=started
                    )
                )
    return runs


def _is_cv_result(data: Any) -> bool:
    """Whether ``data`` looks like ``CVResult.to_dict()``."""
    return isinstance(data, dict) and set(data) >= _CV_RESULT_KEYS


def _cv_result(client: Any, run_id: str) -> dict[str, Any] | None:
    names = [entry.path for entry in client.list_artifacts(run_id) if not entry.is_dir]
    # runs logged before the artifact had a fixed name carry the local file's name
    candidates = [CV_RESULT_ARTIFACT] if CV_RESULT_ARTIFACT in names else names
    for name in candidates:
        if name.endswith(".json"):
            with tempfile.TemporaryDirectory() as directory:
                path = Path(client.download_artifacts(run_id, name, directory))
                data = json.loads(path.read_text())
            if _is_cv_result(data):
                return data
    return None


def load_result_file(path: str | os.PathLike[str]) -> FinalRun:
    """A final run from a ``cv`` JSON result file (``actmix-study cv --out``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no cv result file {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not JSON ({error})") from None
    if not _is_cv_result(data):
        raise ValueError(f"{path} is not a cv result (written by `actmix-study cv --out`)")
    return final_run_from_result(
        RESULT_FILES, str(path), path.stem, data, started=path.stat().st_mtime
    )
