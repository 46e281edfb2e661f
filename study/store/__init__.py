"""Where a study's files live (the store folder, its SQLite URIs, manifests), whether a
command may write there, and a moved store's old locations pointed at the new ones.
No Ray, MLflow or Optuna import.
"""

from __future__ import annotations

from study.store._checks import (
    check_optuna_storage,
    check_writable_file,
    check_writable_folder,
    store_lock,
)
from study.store._paths import (
    DEFAULT_STORE,
    TRACKING_URI_VARIABLE,
    add_store_options,
    default_store_uris,
    environment_tracking_uri,
    manifest_path,
    store_flags,
    store_folder,
    tracking_uri,
)
from study.store._relocation import relocate, relocate_mlflow_artifacts, relocated

__all__ = [
    "DEFAULT_STORE",
    "TRACKING_URI_VARIABLE",
    "add_store_options",
    "check_optuna_storage",
    "check_writable_file",
    "check_writable_folder",
    "default_store_uris",
    "environment_tracking_uri",
    "manifest_path",
    "relocate",
    "relocate_mlflow_artifacts",
    "relocated",
    "store_flags",
    "store_folder",
    "store_lock",
    "tracking_uri",
]
