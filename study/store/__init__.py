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
from study.store._space import (
    START_FLOOR,
    STOP_FLOOR,
    LowDiskSpace,
    check_free_space,
    disk_full_error,
    free_bytes,
    megabytes,
)

__all__ = [
    "DEFAULT_STORE",
    "START_FLOOR",
    "STOP_FLOOR",
    "TRACKING_URI_VARIABLE",
    "LowDiskSpace",
    "add_store_options",
    "check_free_space",
    "check_optuna_storage",
    "check_writable_file",
    "check_writable_folder",
    "default_store_uris",
    "disk_full_error",
    "environment_tracking_uri",
    "free_bytes",
    "manifest_path",
    "megabytes",
    "relocate",
    "relocate_mlflow_artifacts",
    "relocated",
    "store_flags",
    "store_folder",
    "store_lock",
    "tracking_uri",
]
