"""Names of the MLflow tags and artifacts a study writes (no Ray import: readers use them)."""

from __future__ import annotations

__all__ = [
    "CV_RESULT_ARTIFACT",
    "TAG_DATASET",
    "TAG_METRIC",
    "TAG_MODE",
    "TAG_MODEL",
    "TAG_PARENT",
    "TAG_ROLE",
    "TAG_STUDY",
    "TAG_TRIAL_ID",
]

TAG_ROLE = "actmix.role"  # "study" (parent), "trial" (child), "final" (cv --config)
TAG_STUDY = "actmix.study"
TAG_DATASET = "actmix.dataset"
TAG_MODEL = "actmix.model"
TAG_METRIC = "actmix.metric"  # the objective key, e.g. val_rmse_mean
TAG_MODE = "actmix.mode"  # min | max
TAG_TRIAL_ID = "trial_id"
TAG_PARENT = "mlflow.parentRunId"
CV_RESULT_ARTIFACT = "cv_result.json"  # a final run's per-fold rows (``CVResult.to_dict``)
