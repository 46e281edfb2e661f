"""The study report: final-CV leaderboards, paired tests, Optuna history and importances.

Everything is read back from the stores a study wrote: ``stage=final`` runs (from
``cv --config`` or ``cv --experiment``) with their per-fold rows in ``cv_result.json``,
and each study's Optuna storage (recorded as the parent run's ``optuna_storage``
parameter). ``study/report/_study_html.py`` turns a :class:`Report` into files.

Every final run is listed, but a run is never chosen by its test score: on each dataset
the compared folds are those of the most recent ActMix final run (or of the most recent
run when there is none), and each model is represented in the paired tests and mean
ranks by its most recent final run on exactly those folds (same splits fingerprint,
which covers the data). Choosing the best run by test score and then testing it on the
same test folds would favour whichever model had more runs.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from actmix.comparison import PairedTest, holm, paired_wilcoxon
from actmix.metrics import Direction
from actmix.ranking import RankSummary, compare_ranks
from study.tracking import (
    RESULT_FILES,
    FinalRun,
    client_for,
    collect_final_runs,
    latest_parent_run,
    load_result_file,
    study_trials,
)

__all__ = [
    "RESULT_FILES",
    "Comparison",
    "FinalRun",
    "Report",
    "StudyHistory",
    "build_report",
    "collect_final_runs",
    "compare_on_dataset",
    "compared_runs",
    "load_history",
    "load_result_file",
]

REFERENCE_MODEL = "actmix"  # the model the paired tests are about
MIN_RANK_DATASETS = 3  # mean ranks over fewer datasets say little
TRIAL_BOARD_ROWS = 10


@dataclass(frozen=True, slots=True)
class StudyHistory:
    """The Optuna trials of one study and what their parameters mattered."""

    study: str
    objective: str
    direction: Direction
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


def load_history(
    uri: str, study: str, *, seed: int = 0, storage: str | None = None
) -> StudyHistory:
    """Read ``study``'s Optuna trials from ``storage``, by default the storage its parent
    run recorded (which names the old place of a store that was moved or copied since)."""
    import optuna

    client = client_for(uri)
    parent = latest_parent_run(client, study)
    if storage is None:
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
        direction="minimize" if loaded.direction.name == "MINIMIZE" else "maximize",
        numbers=tuple(t.number for t in complete),
        values=tuple(float(cast(float, t.value)) for t in complete),  # finite: see complete
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
    """ActMix against another model on the same folds; ``p_holm`` is Holm-corrected per dataset."""

    dataset: str
    reference: FinalRun
    other_model: str
    other: FinalRun | None
    test: PairedTest | None
    note: str | None = None
    p_holm: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "reference": self.reference.run_id,
            "reference_model": self.reference.model,
            "other_model": self.other_model,
            "other": self.other.run_id if self.other else None,
            "test": self.test.to_dict() if self.test else None,
            "p_holm": self.p_holm,
            "note": self.note,
        }


def _latest(runs: Sequence[FinalRun]) -> FinalRun:
    """The most recent run; among equal start times, the one listed last."""
    return max(enumerate(runs), key=lambda item: (item[1].started, item[0]))[1]


def compared_runs(runs: Sequence[FinalRun]) -> dict[str, FinalRun]:
    """``{model: run}`` compared on one dataset's runs: each model's latest on the same folds.

    The folds are those of the latest ActMix run, or of the latest run without one;
    models with no run on those folds are left out. Test scores play no part.
    """
    if not runs:
        return {}
    references = [run for run in runs if run.model == REFERENCE_MODEL]
    fingerprint = _latest(references or runs).fingerprint
    same_folds = [run for run in runs if run.fingerprint == fingerprint]
    models = sorted({run.model for run in same_folds})
    return {model: _latest([r for r in same_folds if r.model == model]) for model in models}


def compare_on_dataset(runs: Sequence[FinalRun]) -> list[Comparison]:
    """Paired Wilcoxon tests of ActMix against every other model of one dataset's runs.

    Uses :func:`compared_runs`; a model without a run on ActMix's folds gets a note
    instead of a test. p-values are Holm-corrected over the dataset's comparisons.
    """
    chosen = compared_runs(runs)
    reference = chosen.get(REFERENCE_MODEL)
    if reference is None:
        return []
    comparisons = []
    for model in sorted({run.model for run in runs} - {REFERENCE_MODEL}):
        other = chosen.get(model)
        if other is None:
            fingerprint = reference.fingerprint[:12]
            note = f"no {model} final run on the same folds and data (splits {fingerprint})"
            comparisons.append(Comparison(reference.dataset, reference, model, None, None, note))
            continue
        try:
            test = paired_wilcoxon(
                reference.per_fold, other.per_fold, lower_is_better=reference.lower_is_better
            )
        except ValueError as error:
            comparisons.append(
                Comparison(reference.dataset, reference, model, other, None, str(error))
            )
            continue
        comparisons.append(Comparison(reference.dataset, reference, model, other, test, test.note))
    adjusted = holm([c.test.p_value if c.test else None for c in comparisons])
    return [replace(c, p_holm=p) for c, p in zip(comparisons, adjusted, strict=True)]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the report shows, computed once; rendering is separate."""

    tracking_uri: str | None
    sources: tuple[str, ...]
    created: float
    runs: tuple[FinalRun, ...]
    comparisons: tuple[Comparison, ...]
    histories: tuple[StudyHistory, ...]
    ranking: RankSummary | None  # of the compared runs, on >= MIN_RANK_DATASETS datasets
    rank_note: str | None
    # validation leaderboards of studies that have no final run yet (records of study_trials)
    trial_boards: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def datasets(self) -> list[str]:
        return sorted({run.dataset for run in self.runs})

    @property
    def ranks(self) -> dict[str, float]:
        """Mean rank per model, best first; empty without a ranking."""
        return dict(self.ranking.mean_ranks) if self.ranking else {}

    def compared(self, dataset: str) -> dict[str, FinalRun]:
        """The dataset's runs that the paired tests and ranks use (:func:`compared_runs`)."""
        return compared_runs([run for run in self.runs if run.dataset == dataset])

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
            "leaderboards": {dataset: self._leaderboard_rows(dataset) for dataset in self.datasets},
            "comparisons": [c.to_dict() for c in self.comparisons],
            "mean_ranks": self.ranks,
            "ranking": self.ranking.to_dict() if self.ranking else None,
            "rank_note": self.rank_note,
            "studies": [h.to_dict() for h in self.histories],
            "trial_leaderboards": self.trial_boards,
        }

    def _leaderboard_rows(self, dataset: str) -> list[dict[str, Any]]:
        compared = {run.run_id for run in self.compared(dataset).values()}
        return [
            {**run.to_dict(), "compared": run.run_id in compared}
            for run in self.leaderboard(dataset)
        ]


def _ranks(runs: list[FinalRun]) -> tuple[RankSummary | None, str | None]:
    """Mean ranks, Friedman test and critical difference of the compared runs' means."""
    datasets = sorted({run.dataset for run in runs})
    if len(datasets) < MIN_RANK_DATASETS:
        return None, f"mean ranks need final runs on at least {MIN_RANK_DATASETS} datasets"
    scores, lower = {}, {}
    for dataset in datasets:
        chosen = compared_runs([run for run in runs if run.dataset == dataset])
        lower[dataset] = next(iter(chosen.values())).lower_is_better
        scores[dataset] = {model: run.mean for model, run in chosen.items()}
    try:
        summary = compare_ranks(scores, lower)
    except ValueError as error:
        return None, f"no mean ranks: {error}"
    # models whose only runs are on other folds never reach ``scores``: name them too
    left_out = ", ".join(sorted({run.model for run in runs} - set(summary.mean_ranks)))
    note = f"not ranked (no compared run on every dataset): {left_out}" if left_out else None
    return summary, note


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
    if sources and uri is None:
        raise ValueError("--study and --experiment are read from an MLflow store: give its uri")
    store = cast(str, uri)  # read below only when there are sources, so never None there
    # files first: a bad path fails before any store is read
    from_files = [load_result_file(path) for path in result_files]
    runs = (collect_final_runs(store, sources) if sources else []) + from_files
    if from_files:
        sources.append(f"{len(from_files)} result file(s)")
    comparisons = []
    for dataset in sorted({run.dataset for run in runs}):
        comparisons += compare_on_dataset([run for run in runs if run.dataset == dataset])
    ranking, rank_note = _ranks(runs)
    histories = tuple(load_history(store, study, seed=seed) for study in studies)
    with_final = {run.experiment for run in runs}
    boards = {
        study: study_trials(store, study).head(TRIAL_BOARD_ROWS).to_dict(orient="records")
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
        ranking=ranking,
        rank_note=rank_note,
        trial_boards=boards,
    )
