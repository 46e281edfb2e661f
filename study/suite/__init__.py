"""Nested-CV suites: the suite file, its units of work and their records, the checks of a
whole suite before its first unit, the runner that tunes and retrains per outer fold, and
``--jobs N`` drivers side by side.
"""

from __future__ import annotations

from study.suite._file import (
    Protocol,
    Reference,
    StudyBudget,
    Suite,
    SuiteDataset,
    SuiteModel,
    load_suite,
    reference_config,
)
from study.suite._lock import LOCK_FILE, check_lock, determinants
from study.suite._records import TunedStudy, UnitKind, UnitRecord
from study.suite._runner import SuiteProgress, run_suite, suite_progress
from study.suite._units import (
    SESSIONS_FILE,
    Unit,
    claim_unit,
    read_sessions,
    read_trials,
    read_unit,
    record_session,
    record_session_start,
    suite_directory,
    suite_units,
    trials_path,
    write_unit,
)
from study.suite._workers import SuiteWorkersFailed, run_workers

__all__ = [
    "LOCK_FILE",
    "SESSIONS_FILE",
    "Protocol",
    "Reference",
    "StudyBudget",
    "Suite",
    "SuiteDataset",
    "SuiteModel",
    "SuiteProgress",
    "SuiteWorkersFailed",
    "TunedStudy",
    "Unit",
    "UnitKind",
    "UnitRecord",
    "check_lock",
    "claim_unit",
    "determinants",
    "load_suite",
    "read_sessions",
    "read_trials",
    "read_unit",
    "record_session",
    "record_session_start",
    "reference_config",
    "run_suite",
    "run_workers",
    "suite_directory",
    "suite_progress",
    "suite_units",
    "trials_path",
    "write_unit",
]
