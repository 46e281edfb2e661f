"""The answer of a suite: per-dataset tables, corrected tests, budget checks, ranks, knobs.

Everything here is computed from the suite's unit files (no MLflow, no Ray): outer-fold
scores are means over the retraining seeds; every comparison pairs the suite's focus
model with another row on the same outer folds (see :mod:`study.report._suite_stats`);
budget checks (:mod:`study.report._suite_checks`) say what the budget let the studies
do; knob importances are tested against a permutation null
(:mod:`study.report._suite_importance`). The answer sentence claims only what the
corrected test supports, and says which family its p-values are corrected over.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from dataclasses import dataclass
from typing import Any

from actmix.comparison import ALPHA
from actmix.cv import package_versions
from study.report._suite_checks import BudgetCheck, budget_checks, checks_sentence
from study.report._suite_data import DatasetResults, finite_mean, load_results
from study.report._suite_importance import (
    PERMUTATIONS,
    KnobImportances,
    knob_importances,
    knob_sentence,
)
from study.report._suite_stats import SuiteComparison, SuiteRanks, compare_dataset, suite_ranks
from study.store import DEFAULT_STORE, store_folder
from study.suite import Suite, check_lock, determinants, read_sessions, suite_directory

__all__ = ["DatasetResults", "SuiteReport", "TableRow", "build_suite_report"]


@dataclass(frozen=True, slots=True)
class TableRow:
    """One row of a dataset's table: a model's or reference's outer-fold scores."""

    model: str
    kind: str
    metric: str
    mean: float
    std: float
    outer_folds: int  # scores: repeats x outer folds

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class SuiteReport:
    """Everything ``report.json`` holds (see :meth:`to_dict` for the schema)."""

    suite: Suite
    results: list[dict[str, Any]]
    tables: dict[str, list[TableRow]]
    comparisons: list[SuiteComparison]
    ranks: SuiteRanks
    importances: KnobImportances
    checks: list[BudgetCheck]
    budget: dict[str, Any]
    answer: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite.name,
            "focus": self.suite.focus,
            "answer": self.answer,
            "protocol": dataclasses.asdict(self.suite.protocol),
            "results": self.results,
            "tables": {
                dataset: [row.to_json() for row in rows] for dataset, rows in self.tables.items()
            },
            "comparisons": [c.to_json() for c in self.comparisons],
            "ranks": self.ranks.to_json(),
            "importances": self.importances.to_json(),
            "budget_checks": [check.to_json() for check in self.checks],
            "budget": self.budget,
        }


def build_suite_report(
    suite: Suite, *, store: str = DEFAULT_STORE, permutations: int | None = None
) -> SuiteReport:
    """Read every done unit of ``suite`` and compute the report; ValueError if none is done.

    ``permutations``: of the knob-importance null (None: the module's default).
    """
    root = suite_directory(store_folder(store), suite)
    # units made for another suite file must not be reported under this one
    check_lock(root, determinants(suite), source=f"suite {suite.name}")
    per_dataset, results = load_results(suite, root)
    if not per_dataset:
        raise ValueError(f"suite {suite.name!r} has no finished unit in {root}; run it first")
    comparisons = [c for data in per_dataset.values() for c in compare_dataset(suite, data)]
    importances = knob_importances(
        suite.focus,
        per_dataset,
        permutations=PERMUTATIONS if permutations is None else permutations,
    )
    checks = budget_checks(suite, per_dataset)
    ranks = suite_ranks(suite, per_dataset)
    records = [record for data in per_dataset.values() for record in data.records]
    report = SuiteReport(
        suite=suite,
        results=results,
        tables={label: _table(suite, data) for label, data in per_dataset.items()},
        comparisons=comparisons,
        ranks=ranks,
        importances=importances,
        checks=checks,
        budget=_budget(suite, records, read_sessions(root)),
        answer="",
    )
    return dataclasses.replace(report, answer=_answer(report))


def _table(suite: Suite, data: DatasetResults) -> list[TableRow]:
    from actmix.metrics import fold_std

    rows = []
    for label in suite.labels:
        scores = data.fold_scores.get(label)
        if scores:
            values = list(scores.values())
            rows.append(
                TableRow(
                    label,
                    data.kinds[label],
                    data.metric,
                    finite_mean(values),
                    fold_std(values),
                    len(values),
                )
            )
    return rows


def _budget(suite: Suite, records: list[Any], sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """What the result cost (wall time of the `suite run` sessions and the units' own time)
    and what it ran on, as recorded when the units ran; the rendering machine beside."""
    recorded = [r.provenance for r in records if r.provenance is not None]
    ran_on: dict[str, dict[str, Any]] = {}
    for found in recorded:  # one entry per distinct commit, machine and versions
        key = repr((found["commit"], found["machine"], found["versions"]))
        entry = ran_on.setdefault(
            key, {**{k: found[k] for k in ("commit", "machine", "versions")}, "units": 0}
        )
        entry["units"] += 1
        entry["first"] = min(entry.get("first", found["recorded"]), found["recorded"])
        entry["last"] = max(entry.get("last", found["recorded"]), found["recorded"])
    sessions = _with_killed_estimates(sessions, recorded)
    return {
        "suite_file": suite.text,
        "suite_sha256": suite.sha256,
        "units": len(records),
        "wall_seconds": round(sum(s["seconds"] for s in sessions), 1) if sessions else None,
        "sessions": len(sessions),
        # killed (-9) sessions count up to their last finished unit: a lower bound
        "sessions_killed": sum(not s.get("ended", True) for s in sessions),
        "session_log": sessions,
        "unit_seconds": round(sum(r.seconds for r in records), 1),
        "ran_on": list(ran_on.values()),
        "not_recorded": len(records) - len(recorded),  # units from before provenance
        "rendered_on": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "versions": package_versions(),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    }


def _epoch(stamp: str) -> float:
    """Seconds since the epoch of a local ``%Y-%m-%dT%H:%M:%S`` stamp, with or without an
    offset (``+0000``) after it."""
    import datetime

    parsed = datetime.datetime.fromisoformat(stamp)
    return parsed.timestamp() if parsed.tzinfo else time.mktime(parsed.timetuple())


def _with_killed_estimates(
    sessions: list[dict[str, Any]], recorded: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Sessions killed before their end line get ``seconds``: from their start to the last
    unit recorded before the next session began (0 without one), ``estimated`` True, and
    ``done_before``/``done_after`` counted from the recorded units (a lower bound where
    some units ran before units recorded their provenance)."""
    starts = [_epoch(s["started"]) for s in sessions]
    finished = sorted(_epoch(found["recorded"]) for found in recorded)
    out = []
    for index, session in enumerate(sessions):
        if session["seconds"] is not None:
            out.append(session)
            continue
        begin = starts[index]
        end = starts[index + 1] if index + 1 < len(starts) else float("inf")
        inside = [t for t in finished if begin <= t < end]
        seconds = round(max(inside) - begin, 1) if inside else 0.0
        before = sum(t < begin for t in finished)
        out.append(
            {
                **session,
                "seconds": seconds,
                "estimated": True,
                "done_before": before,
                "done_after": before + len(inside),
            }
        )
    return out


def _answer(report: SuiteReport) -> str:
    """The checks first, then one sentence per dataset from the Holm-corrected corrected
    t-test, the ranks, and what may be said about the knobs."""
    suite = report.suite
    sentences = [checks_sentence(report.checks)]
    for dataset in report.tables:
        tests = [c for c in report.comparisons if c.dataset == dataset]
        if not tests:
            sentences.append(f"{dataset}: not enough finished outer folds to compare.")
            continue
        better = [c.b for c in tests if c.significant and c.test.better == "a"]
        worse = [c.b for c in tests if c.significant and c.test.better == "b"]
        even = [c.b for c in tests if not c.significant]
        parts = []
        if better:
            parts.append(f"better than {', '.join(better)}")
        if worse:
            parts.append(f"worse than {', '.join(worse)}")
        if even:
            parts.append(f"not distinguishable from {', '.join(even)}")
        sentences.append(f"{dataset}: tuned {suite.focus} is {'; '.join(parts)}.")
    protocol = suite.protocol
    scores = protocol.outer_folds * protocol.repeats
    sentences.append(
        f"(Corrected resampled t-test on {scores} outer-fold scores per model "
        f"({protocol.repeats} x {protocol.outer_folds} folds), Holm-corrected over the "
        f"comparisons within each dataset, alpha {ALPHA}.)"
    )
    tuned = report.ranks.tuned
    if tuned is not None:
        order = ", ".join(f"{m} {r:.2f}" for m, r in tuned.mean_ranks.items())
        friedman = tuned.friedman.p_value
        tested = "not testable" if friedman is None else f"Friedman p = {friedman:.3f}"
        sentences.append(f"Mean ranks of the tuned models (1 = best): {order} ({tested}).")
    sentences.append(knob_sentence(suite.focus, report.importances))
    return " ".join(sentences)
