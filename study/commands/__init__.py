"""The subcommands of ``actmix-study``: study commands (run, resume, leaderboard,
export-best, spaces), ``suite run|status|report``, analysis (analyze, diagnose, report) and
the MLflow UI server.
"""

from __future__ import annotations

from study.commands._analysis import add_analysis_commands
from study.commands._study import (
    EXIT_NO_TRIAL,
    add_study_commands,
    print_interrupted,
    print_outcome,
)
from study.commands._suite import add_suite_commands
from study.commands._ui import DASHBOARD_HINT, serve_mlflow_ui, serve_optuna_dashboard

__all__ = [
    "DASHBOARD_HINT",
    "EXIT_NO_TRIAL",
    "add_analysis_commands",
    "add_study_commands",
    "add_suite_commands",
    "print_interrupted",
    "print_outcome",
    "serve_mlflow_ui",
    "serve_optuna_dashboard",
]
