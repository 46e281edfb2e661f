"""The answer of a suite: per-dataset tables, paired tests, ranks and knob importances.

Everything here is computed from the suite's unit files (no MLflow, no Ray): outer-fold
scores are means over the retraining seeds; every comparison pairs the suite's focus
model (tuned ActMix by default) with another row on the same outer folds. Two tests
per pair: a Wilcoxon signed-rank test on the outer-fold scores (only with at least six
folds, below which it cannot reach p < 0.05) and a paired bootstrap over rows of the
pooled out-of-fold predictions. Each family of p-values is Holm-corrected within its
dataset. The direction of a difference comes from its mean, never from counting wins.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from actmix.comparison import ALPHA, PairedTest, holm, paired_bootstrap, paired_wilcoxon
from actmix.cv import package_versions
from actmix.data import load_dataset
from actmix.metrics import fold_std
from actmix.ranking import RankSummary, compare_ranks
from study.store import DEFAULT_STORE, store_folder
from study.suite import Suite, UnitRecord, read_sessions, read_unit, suite_directory, suite_units

__all__ = ["DatasetResults", "SuiteReport", "build_suite_report"]

_BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True, slots=True)
class DatasetResults:
    """One dataset's outer-fold scores and pooled out-of-fold predictions per row label."""

    label: str
    metric: str
    lower_is_better: bool
    fingerprint: str
    fold_scores: dict[str, dict[int, float]]  # label -> outer fold -> mean over seeds
    kinds: dict[str, str]  # label -> tuned | reference
    y_true: np.ndarray  # [n] targets (regression) or class codes, dataset row order
    oof: dict[str, np.ndarray]  # label -> seed-mean predictions in dataset row order


@dataclass(frozen=True, slots=True)
class SuiteReport:
    """Everything ``report.json`` holds (see :meth:`to_dict` for the schema)."""

    suite: Suite
    results: list[dict[str, Any]]
    tables: dict[str, list[dict[str, Any]]]
    comparisons: list[dict[str, Any]]
    ranks: RankSummary | None
    ranks_note: str | None
    importances: list[dict[str, Any]]
    budget: dict[str, Any]
    answer: str

    def to_dict(self) -> dict[str, Any]:
        ranks = self.ranks.to_dict() if self.ranks else {"mean_ranks": {}, "friedman_p": None}
        return {
            "suite": self.suite.name,
            "focus": self.suite.focus,
            "answer": self.answer,
            "results": self.results,
            "tables": self.tables,
            "comparisons": self.comparisons,
            "ranks": {**ranks, "note": self.ranks_note},
            "importances": self.importances,
            "budget": self.budget,
        }


def build_suite_report(suite: Suite, *, store: str = DEFAULT_STORE) -> SuiteReport:
    """Read every done unit of ``suite`` and compute the report; ValueError if none is done."""
    root = suite_directory(store_folder(store), suite)
    results: list[dict[str, Any]] = []
    per_dataset: dict[str, DatasetResults] = {}
    records: list[UnitRecord] = []
    seconds = 0.0
    for entry in suite.datasets:
        loaded = [(u, read_unit(root, u)) for u in suite_units(suite) if u.dataset == entry]
        done = [(u, found) for u, found in loaded if found is not None]
        if not done:
            continue
        dataset = load_dataset(entry.spec, target=entry.target, task=entry.task)
        y_true = (
            dataset.target_codes()
            if dataset.task == "classification"
            else dataset.target.to_numpy(dtype=float)
        )
        first_record = done[0][1][0]
        data = DatasetResults(
            label=entry.label,
            metric=first_record.metric,
            lower_is_better=first_record.direction == "minimize",
            fingerprint=first_record.fingerprint,
            fold_scores={},
            kinds={},
            y_true=y_true,
            oof={},
        )
        for unit, (record, arrays) in done:
            if record.fingerprint != data.fingerprint:
                raise ValueError(
                    f"{unit.path(root)} was scored on other outer folds (fingerprint "
                    f"{record.fingerprint} != {data.fingerprint}); remove it and rerun"
                )
            records.append(record)
            seconds += record.seconds
            key = f"test_{record.metric}"
            values = record.test_values()
            data.fold_scores.setdefault(unit.label, {})[unit.outer_fold] = _finite_mean(values)
            data.kinds[unit.label] = unit.kind
            prediction = arrays["prediction"].mean(axis=0)
            pooled = data.oof.setdefault(
                unit.label, np.full((dataset.n_rows, *prediction.shape[1:]), np.nan)
            )
            pooled[arrays["test_idx"]] = prediction
            for row in record.rows:
                results.append(
                    {
                        "dataset": entry.label,
                        "model": unit.label,
                        "kind": unit.kind,
                        "outer_fold": unit.outer_fold,
                        "seed": row["seed"],
                        "metric": record.metric,
                        "value": float(row[key]),
                    }
                )
        per_dataset[entry.label] = data
    if not per_dataset:
        raise ValueError(f"suite {suite.name!r} has no finished unit in {root}; run it first")
    comparisons = [c for data in per_dataset.values() for c in _compare(suite, data)]
    ranks, ranks_note = _ranks(suite, per_dataset)
    importances = _importances(suite, records)
    report = SuiteReport(
        suite=suite,
        results=results,
        tables={label: _table(suite, data) for label, data in per_dataset.items()},
        comparisons=comparisons,
        ranks=ranks,
        ranks_note=ranks_note,
        importances=importances,
        budget=_budget(suite, seconds, len(records), read_sessions(root)),
        answer="",
    )
    return _with_answer(report)


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _table(suite: Suite, data: DatasetResults) -> list[dict[str, Any]]:
    rows = []
    for label in suite.labels:
        scores = data.fold_scores.get(label)
        if not scores:
            continue
        values = list(scores.values())
        rows.append(
            {
                "model": label,
                "kind": data.kinds[label],
                "metric": data.metric,
                "mean": _finite_mean(values),
                "std": fold_std(values),
                "outer_folds": len(values),
            }
        )
    return rows


def _complete(suite: Suite, data: DatasetResults, label: str) -> bool:
    return len(data.fold_scores.get(label, {})) == suite.protocol.outer_folds


def _compare(suite: Suite, data: DatasetResults) -> list[dict[str, Any]]:
    """The focus model against every other complete row; Holm within each test family."""
    focus = suite.focus
    if not _complete(suite, data, focus):
        return []
    others = [label for label in suite.labels if label != focus and _complete(suite, data, label)]
    tests: list[tuple[str, PairedTest]] = []
    for index, other in enumerate(others):
        tests.append(
            (
                other,
                paired_wilcoxon(
                    data.fold_scores[focus],
                    data.fold_scores[other],
                    lower_is_better=data.lower_is_better,
                ),
            )
        )
        tests.append(
            (
                other,
                paired_bootstrap(
                    data.y_true,
                    data.oof[focus],
                    data.oof[other],
                    metric="rmse" if data.metric == "rmse" else "accuracy",
                    seed=suite.protocol.split_seed + index,
                    n_resamples=_BOOTSTRAP_RESAMPLES,
                ),
            )
        )
    rows = []
    for family in ("wilcoxon", "bootstrap"):
        chosen = [(other, test) for other, test in tests if test.test == family]
        adjusted = holm([test.p_value for _, test in chosen])
        for (other, test), p_holm in zip(chosen, adjusted, strict=True):
            rows.append(
                {
                    "dataset": data.label,
                    "a": focus,
                    "b": other,
                    "b_kind": data.kinds[other],
                    **test.to_dict(),
                    "p_holm": p_holm,
                    "significant": p_holm is not None and p_holm < ALPHA,
                }
            )
    return rows


def _ranks(
    suite: Suite, per_dataset: Mapping[str, DatasetResults]
) -> tuple[RankSummary | None, str | None]:
    scores = {
        label: {
            model: _finite_mean(list(folds.values()))
            for model, folds in data.fold_scores.items()
            if _complete(suite, data, model)
        }
        for label, data in per_dataset.items()
    }
    directions = {label: data.lower_is_better for label, data in per_dataset.items()}
    try:
        return compare_ranks(scores, directions), None
    except ValueError as error:
        return None, f"no ranks: {error}"


def _importances(suite: Suite, records: list[UnitRecord]) -> list[dict[str, Any]]:
    """fANOVA importances of the focus model's studies, averaged over outer folds."""
    by_dataset: dict[str, dict[str, list[float]]] = {}
    for record in records:
        if record.label != suite.focus or record.study is None or not record.study.importances:
            continue
        params = by_dataset.setdefault(record.dataset, {})
        for param, value in record.study.importances.items():
            params.setdefault(param, []).append(float(value))
    rows = []
    for dataset, params in by_dataset.items():
        for param, values in sorted(params.items(), key=lambda item: -float(np.mean(item[1]))):
            rows.append(
                {
                    "dataset": dataset,
                    "param": param,
                    "importance": float(np.mean(values)),
                    "studies": len(values),
                }
            )
    return rows


def _budget(
    suite: Suite, seconds: float, units: int, sessions: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the result cost: wall time of the `suite run` sessions (Ray start-up and all)
    and the units' own time, on which machine."""
    import os

    return {
        "suite_file": suite.text,
        "suite_sha256": suite.sha256,
        "units": units,
        "wall_seconds": round(sum(s["seconds"] for s in sessions), 1) if sessions else None,
        "sessions": len(sessions),
        "unit_seconds": round(seconds, 1),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "versions": package_versions(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _with_answer(report: SuiteReport) -> SuiteReport:
    """One sentence per dataset on tuned focus vs each row, from the Holm-corrected bootstrap."""
    focus = report.suite.focus
    sentences = []
    for dataset in report.tables:
        tests = [
            c for c in report.comparisons if c["dataset"] == dataset and c["test"] == "bootstrap"
        ]
        if not tests:
            sentences.append(f"{dataset}: not enough finished outer folds to compare.")
            continue
        better = [c["b"] for c in tests if c["significant"] and c["better"] == "a"]
        worse = [c["b"] for c in tests if c["significant"] and c["better"] == "b"]
        even = [c["b"] for c in tests if not c["significant"]]
        parts = []
        if better:
            parts.append(f"better than {', '.join(better)}")
        if worse:
            parts.append(f"worse than {', '.join(worse)}")
        if even:
            parts.append(f"not distinguishable from {', '.join(even)}")
        sentences.append(f"{dataset}: tuned {focus} is {'; '.join(parts)}.")
    sentences.append(
        f"(Paired bootstrap over pooled out-of-fold predictions, Holm-corrected within each "
        f"dataset, alpha {ALPHA}.)"
    )
    if report.ranks is not None:
        order = ", ".join(f"{m} {r:.2f}" for m, r in report.ranks.mean_ranks.items())
        sentences.append(f"Mean ranks across datasets (1 = best): {order}.")
    knobs = _knob_sentence(focus, report.importances)
    if knobs:
        sentences.append(knobs)
    answer = " ".join(sentences)
    return SuiteReport(**{**_fields(report), "answer": answer})


def _knob_sentence(focus: str, importances: list[dict[str, Any]]) -> str:
    """The focus model's three most important knobs, against an even share of importance."""
    by_param: dict[str, list[float]] = {}
    for row in importances:
        by_param.setdefault(row["param"], []).append(row["importance"])
    if not by_param:
        return ""
    means = sorted(
        ((sum(v) / len(v), param) for param, v in by_param.items()), key=lambda item: -item[0]
    )
    top = ", ".join(f"{param} {value:.2f}" for value, param in means[:3])
    return (
        f"Knobs of {focus} by fANOVA importance (mean over datasets): {top}; an even share "
        f"among its {len(means)} tuned parameters would be {1 / len(means):.2f} each."
    )


def _fields(report: SuiteReport) -> dict[str, Any]:
    return {name: getattr(report, name) for name in SuiteReport.__dataclass_fields__}
