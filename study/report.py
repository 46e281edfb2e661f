"""The study report: final-CV leaderboards, paired tests, Optuna history and importances.

Everything is read back from the stores a study wrote: ``stage=final`` runs (from
``cv --config`` or ``cv --experiment``) with their per-fold rows in ``cv_result.json``,
and each study's Optuna storage (recorded as the parent run's ``optuna_storage``
parameter). ``study/report_html.py`` turns a :class:`Report` into files.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actmix.comparison import PairedTest, fold_scores, mean_ranks, paired_wilcoxon
from actmix.metrics import primary_metric
from study.leaderboard import study_trials
from study.tags import CV_RESULT_ARTIFACT, TAG_ROLE

__all__ = [
    "Comparison",
    "FinalRun",
    "Report",
    "StudyHistory",
    "build_report",
    "collect_final_runs",
    "latest_parent_run",
    "load_history",
    "load_result_file",
]

REFERENCE_MODEL = "actmix"  # the model the paired tests are about
RESULT_FILES = "result files"  # the "experiment" of runs read from cv JSON files
_CV_RESULT_KEYS = {"dataset", "model", "rows", "seeds", "splits", "task"}
MIN_RANK_DATASETS = 3  # mean ranks over fewer datasets say little
TRIAL_BOARD_ROWS = 10


@dataclass(frozen=True, slots=True)
class FinalRun:
    """One final CV run: its test scores per (fold, seed) row and per fold."""

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

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else math.nan

    def better_than(self, other: FinalRun) -> bool:
        return self.mean < other.mean if self.lower_is_better else self.mean > other.mean

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
        }


def final_run_from_result(experiment: str, run_id: str, name: str, result: dict) -> FinalRun:
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
    )


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _experiments(client, names: list[str]) -> list:
    known = {e.name: e for e in client.search_experiments()}
    missing = [name for name in names if name not in known]
    if missing:
        listed = ", ".join(sorted(n for n in known if n != "Default")) or "none"
        raise ValueError(f"no study or experiment named {missing[0]!r}; known: {listed}")
    return [known[name] for name in names]


def collect_final_runs(uri: str, experiments: list[str]) -> list[FinalRun]:
    """Every finished ``stage=final`` run in ``experiments`` that has its per-fold rows."""
    client = _client(uri)
    found = _experiments(client, experiments)
    runs = []
    for experiment in found:
        listed = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`{TAG_ROLE}` = 'final' and attributes.status = 'FINISHED'",
            max_results=10000,
        )
        for run in listed:
            result = _cv_result(client, run.info.run_id)
            if result is not None:
                name = run.info.run_name or run.info.run_id
                runs.append(final_run_from_result(experiment.name, run.info.run_id, name, result))
    return runs


def _is_cv_result(data: Any) -> bool:
    """Whether ``data`` looks like ``CVResult.to_dict()``."""
    return isinstance(data, dict) and set(data) >= _CV_RESULT_KEYS


def _cv_result(client, run_id: str) -> dict | None:
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


def latest_parent_run(client, study: str):
    """The newest parent run of ``study`` (None when it has none); ValueError if unknown."""
    (experiment,) = _experiments(client, [study])
    parents = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{TAG_ROLE}` = 'study'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return parents[0] if parents else None


@dataclass(frozen=True, slots=True)
class StudyHistory:
    """The Optuna trials of one study and what their parameters mattered."""

    study: str
    objective: str
    direction: str  # minimize | maximize
    numbers: tuple[int, ...] = ()  # completed trials
    values: tuple[float, ...] = ()
    states: dict[str, int] = field(default_factory=dict)
    importances: dict[str, float] = field(default_factory=dict)
    note: str | None = None  # why importances (or the history) are missing

    @property
    def best_so_far(self) -> list[float]:
        pick = min if self.direction == "minimize" else max
        best, out = math.nan, []
        for value in self.values:
            best = value if math.isnan(best) else pick(best, value)
            out.append(best)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "objective": self.objective,
            "direction": self.direction,
            "trials": dict(zip(map(str, self.numbers), self.values, strict=True)),
            "states": self.states,
            "importances": self.importances,
            "note": self.note,
        }


def load_history(uri: str, study: str, *, seed: int = 0) -> StudyHistory:
    """Read ``study``'s Optuna trials from the storage its parent run recorded."""
    import optuna

    client = _client(uri)
    parent = latest_parent_run(client, study)
    storage = parent.data.params.get("optuna_storage") if parent else None
    objective = parent.data.params.get("objective", "objective") if parent else "objective"
    if storage is None:
        return StudyHistory(study, objective, "minimize", note="no study parent run")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        loaded = optuna.load_study(study_name=study, storage=storage)
    except (KeyError, ValueError, RuntimeError) as error:
        return StudyHistory(study, objective, "minimize", note=f"Optuna study unreadable: {error}")
    trials = loaded.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE" and _finite(t.value)]
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    importances, note = _importances(loaded, seed)
    return StudyHistory(
        study=study,
        objective=objective,
        direction=loaded.direction.name.lower(),
        numbers=tuple(t.number for t in complete),
        values=tuple(float(t.value) for t in complete),
        states=states,
        importances=importances,
        note=note,
    )


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _importances(study, seed: int) -> tuple[dict[str, float], str | None]:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    try:
        values = optuna.importance.get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=seed)
        )
    except (RuntimeError, ValueError) as error:
        # e.g. fewer than two completed trials, or no parameter that varied
        return {}, f"no parameter importances: {error}"
    if not values:
        return {}, "no parameter importances: no parameter varied between completed trials"
    return {name: float(v) for name, v in values.items()}, None


@dataclass(frozen=True, slots=True)
class Comparison:
    """Best ActMix against the best run of another model on the same folds."""

    dataset: str
    reference: FinalRun
    other_model: str
    other: FinalRun | None
    test: PairedTest | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "reference": self.reference.run_id,
            "reference_model": self.reference.model,
            "other_model": self.other_model,
            "other": self.other.run_id if self.other else None,
            "test": self.test.to_dict() if self.test else None,
            "note": self.note,
        }


def _best(runs: list[FinalRun]) -> FinalRun:
    best = runs[0]
    for run in runs[1:]:
        if run.better_than(best):
            best = run
    return best


def compare_on_dataset(runs: list[FinalRun]) -> list[Comparison]:
    """Paired tests of the dataset's best ActMix run against each other model's best run.

    Only runs on the same folds (splits fingerprint) as the ActMix run are paired; a model
    that has none gets a comparison with a note instead of a test.
    """
    references = [run for run in runs if run.model == REFERENCE_MODEL]
    if not references:
        return []
    reference = _best(references)
    comparisons = []
    for model in sorted({run.model for run in runs} - {REFERENCE_MODEL}):
        fingerprint = reference.fingerprint
        same_folds = [r for r in runs if r.model == model and r.fingerprint == fingerprint]
        if not same_folds:
            note = f"no {model} final run on the same folds (splits {fingerprint[:12]})"
            comparisons.append(Comparison(reference.dataset, reference, model, None, None, note))
            continue
        other = _best(same_folds)
        try:
            test = paired_wilcoxon(
                reference.per_fold, other.per_fold, lower_is_better=reference.lower_is_better
            )
        except ValueError as error:
            comparisons.append(
                Comparison(reference.dataset, reference, model, other, None, str(error))
            )
            continue
        comparisons.append(Comparison(reference.dataset, reference, model, other, test))
    return comparisons


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the report shows, computed once; rendering is separate."""

    tracking_uri: str | None
    sources: tuple[str, ...]
    created: float
    runs: tuple[FinalRun, ...]
    comparisons: tuple[Comparison, ...]
    histories: tuple[StudyHistory, ...]
    ranks: dict[str, float]
    dataset_ranks: dict[str, dict[str, float]]
    rank_note: str | None
    # validation leaderboards of studies that have no final run yet (records of study_trials)
    trial_boards: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def datasets(self) -> list[str]:
        return sorted({run.dataset for run in self.runs})

    def leaderboard(self, dataset: str) -> list[FinalRun]:
        """The dataset's final runs, best first."""
        runs = [run for run in self.runs if run.dataset == dataset]
        sign = 1.0 if runs and runs[0].lower_is_better else -1.0
        return sorted(runs, key=lambda r: sign * r.mean if math.isfinite(r.mean) else math.inf)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri,
            "sources": list(self.sources),
            "created": self.created,
            "leaderboards": {
                dataset: [run.to_dict() for run in self.leaderboard(dataset)]
                for dataset in self.datasets
            },
            "comparisons": [c.to_dict() for c in self.comparisons],
            "mean_ranks": self.ranks,
            "dataset_ranks": self.dataset_ranks,
            "rank_note": self.rank_note,
            "studies": [h.to_dict() for h in self.histories],
            "trial_leaderboards": self.trial_boards,
        }


def _ranks(
    runs: list[FinalRun],
) -> tuple[dict[str, float], dict[str, dict[str, float]], str | None]:
    datasets = sorted({run.dataset for run in runs})
    if len(datasets) < MIN_RANK_DATASETS:
        return {}, {}, f"mean ranks need final runs on at least {MIN_RANK_DATASETS} datasets"
    scores, lower = {}, {}
    for dataset in datasets:
        on_dataset = [run for run in runs if run.dataset == dataset]
        lower[dataset] = on_dataset[0].lower_is_better
        scores[dataset] = {
            model: _best([r for r in on_dataset if r.model == model]).mean
            for model in {r.model for r in on_dataset}
        }
    try:
        means, per_dataset = mean_ranks(scores, lower)
    except ValueError as error:
        return {}, {}, f"no mean ranks: {error}"
    left_out = sorted(set().union(*map(set, scores.values())) - set(means))
    note = f"not on every dataset, so not ranked: {', '.join(left_out)}" if left_out else None
    return means, per_dataset, note


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
    return final_run_from_result(RESULT_FILES, str(path), path.stem, data)


def build_report(
    uri: str | None,
    *,
    studies: list[str],
    experiments: list[str],
    result_files: Sequence[str | os.PathLike[str]] = (),
    seed: int = 0,
) -> Report:
    """Final runs from ``studies``, ``experiments`` and ``result_files``; studies' histories.

    ``uri`` may be None when only result files are given (no MLflow store is read).
    """
    sources = list(dict.fromkeys([*studies, *experiments]))
    if not sources and not result_files:
        raise ValueError("name at least one --study, --experiment or --results file")
    # files first: a bad path fails before any store is read
    from_files = [load_result_file(path) for path in result_files]
    runs = (collect_final_runs(uri, sources) if sources else []) + from_files
    if from_files:
        sources.append(f"{len(from_files)} result file(s)")
    comparisons = []
    for dataset in sorted({run.dataset for run in runs}):
        comparisons += compare_on_dataset([run for run in runs if run.dataset == dataset])
    means, per_dataset, rank_note = _ranks(runs)
    histories = tuple(load_history(uri, study, seed=seed) for study in studies)
    with_final = {run.experiment for run in runs}
    boards = {
        study: study_trials(uri, study).head(TRIAL_BOARD_ROWS).to_dict(orient="records")
        for study in studies
        if study not in with_final
    }
    return Report(
        tracking_uri=uri,
        sources=tuple(sources),
        created=time.time(),
        runs=tuple(runs),
        comparisons=tuple(comparisons),
        histories=histories,
        ranks=means,
        dataset_ranks=per_dataset,
        rank_note=rank_note,
        trial_boards=boards,
    )
