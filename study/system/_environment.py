"""Environment defaults for Ray, Tune and MLflow, applied once before any of them starts.

The CLI applies them first thing; ``run_study`` applies them again before it starts
Ray, for callers that skip the CLI. A variable the user has set is left alone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

__all__ = ["ENVIRONMENT_DEFAULTS", "apply_environment_defaults"]

ENVIRONMENT_DEFAULTS: dict[str, str] = {
    # artifact-upload progress bars would interleave with the trial table
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # with a tracking server MLflow prints two "View run/experiment at" lines for every run
    # it ends, 2 x trials lines between the study's own; the summary names the parent run
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # no usage reports from a research cluster (nor the prompt about them)
    "RAY_USAGE_STATS_ENABLED": "0",
    # Tune's TensorBoard logger chokes on list-valued final results (per-fold scores);
    # the JSON and CSV loggers the study needs are added explicitly
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # checkpoint-sync warnings are noise for trials this small
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # Tune's new output engine prints its configuration box and tables even at verbose=0;
    # the study prints its own progress lines
    "RAY_AIR_NEW_OUTPUT": "0",
    # "may be a performance bottleneck" fires at 0.5 s, which one MLflow SQLite write on a
    # busy machine takes; nothing a user can act on below several seconds
    "TUNE_WARN_THRESHOLD_S": "5",
}


# INFO lines of the libraries that say nothing a user acts on ("Creating initial MLflow
# database tables...", "A new study created in RDB with name: ..."): WARNING and up only
QUIET_LOGGERS = (
    "alembic",
    "mlflow.store.db.utils",
    "optuna.storages._in_memory",
    "optuna.storages._rdb.storage",
    "optuna.storages.journal._storage",
)


# WARNING lines too: Tune's result grid, built at the end of fit(), reads each trial's own
# result files, which a study never uses (its results are in MLflow), and warns "Failed
# to fetch metrics ... FileNotFoundError" on every resume for trials whose files a killed
# driver never wrote: ERROR and up only
SILENT_LOGGERS = ("ray.tune.analysis.experiment_analysis",)


def apply_environment_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set every ``ENVIRONMENT_DEFAULTS`` entry the user has not set (in ``os.environ``),
    and quiet the library loggers of ``QUIET_LOGGERS`` (and ``SILENT_LOGGERS``)."""
    target = os.environ if environ is None else environ
    for name, value in ENVIRONMENT_DEFAULTS.items():
        target.setdefault(name, value)
    for logger in QUIET_LOGGERS:
        logging.getLogger(logger).setLevel(logging.WARNING)
    for logger in SILENT_LOGGERS:
        logging.getLogger(logger).setLevel(logging.ERROR)
