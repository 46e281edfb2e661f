"""Reports: a study's (final-CV leaderboards, paired tests, history, importances) and a
suite's (per-dataset tables, corrected tests, budget checks, ranks, knobs), written as
JSON, HTML, Markdown and PNGs.

The room's modules: ``_render`` (numbers, p-values, HTML tables: one way for every
report); ``_study`` and ``_study_html`` (a study's report); ``_suite_data`` (a suite's
unit files read back), ``_suite_stats`` (comparisons and ranks), ``_suite_checks``
(budget checks), ``_suite_importance`` (knob importances against a permutation null),
``_suite`` (the report and its answer), ``_suite_html`` and ``_suite_markdown`` (its
files, both rendered from ``report.json``).
"""

from __future__ import annotations

from study.report._study import (
    RESULT_FILES,
    Comparison,
    FinalRun,
    Report,
    StudyHistory,
    build_report,
    collect_final_runs,
    compare_on_dataset,
    compared_runs,
    load_history,
    load_result_file,
)
from study.report._study_html import verdict, write_report
from study.report._suite import DatasetResults, SuiteReport, build_suite_report
from study.report._suite_html import write_suite_report
from study.report._suite_markdown import markers, render_markdown, replace_block

__all__ = [
    "RESULT_FILES",
    "Comparison",
    "DatasetResults",
    "FinalRun",
    "Report",
    "StudyHistory",
    "SuiteReport",
    "build_report",
    "build_suite_report",
    "collect_final_runs",
    "compare_on_dataset",
    "compared_runs",
    "load_history",
    "load_result_file",
    "markers",
    "render_markdown",
    "replace_block",
    "verdict",
    "write_report",
    "write_suite_report",
]
