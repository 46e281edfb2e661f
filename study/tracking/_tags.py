"""Names of the MLflow tags and artifacts a study writes (no Ray import: readers use them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

__all__ = [
    "CONFIG_ARTIFACT",
    "CURVES_ARTIFACT",
    "CV_RESULT_ARTIFACT",
    "MIXING_WEIGHTS_ARTIFACT",
    "MODEL_ARTIFACT",
    "SEED_DEFAULT_TRIAL",
    "STOPPED",
    "TAG_DATASET",
    "TAG_FAILURE_REASON",
    "TAG_INTERRUPTED",
    "TAG_LAST_ERROR",
    "TAG_METRIC",
    "TAG_MODE",
    "TAG_MODEL",
    "TAG_NODE_ID",
    "TAG_PARENT",
    "TAG_RESUMED_FROM_EPOCH",
    "TAG_RETRIES",
    "TAG_ROLE",
    "TAG_STAGE",
    "TAG_STOPPED_EARLY",
    "TAG_STUDY",
    "TAG_SUITE",
    "TAG_TRIALS",
    "TAG_TRIAL_ID",
    "TAG_TRIAL_INDEX",
    "Mode",
    "trial_run_name",
    "trial_status",
]

Mode = Literal["min", "max"]  # Tune's spelling of a direction: which objective value is best

TAG_ROLE: Final = "actmix.role"  # "study" (parent), "trial" (child), "final" (cv --config)
TAG_STUDY: Final = "actmix.study"
TAG_DATASET: Final = "actmix.dataset"
TAG_MODEL: Final = "actmix.model"
TAG_METRIC: Final = "actmix.metric"  # the objective key, e.g. val_rmse_mean
TAG_MODE: Final = "actmix.mode"  # a Mode
TAG_TRIAL_ID: Final = "trial_id"  # Tune's id: a restored study finds its runs by it
TAG_TRIAL_INDEX: Final = "actmix.trial_index"  # 0-based creation order (0: the baseline)
# on a parent run `extend` grew: the trials asked for in all (its "trials" param: the first
# launch's); one "extension.<k>" tag per extension says how many and when
TAG_TRIALS: Final = "actmix.trials"
TAG_PARENT: Final = "mlflow.parentRunId"
# runs of a suite: its name, and the stage of the run (study parent, final or reference)
TAG_SUITE: Final = "suite"
TAG_STAGE: Final = "stage"


def trial_run_name(index: int) -> str:
    """The MLflow run name of a study's trial ``index`` (0-based creation order)."""
    return f"trial-{index:04d}"


# every study's first trial is its search space's seed default (the baseline)
SEED_DEFAULT_TRIAL: Final = trial_run_name(0)

# set on trial runs as they happen
# "true": the scheduler (ASHA) ended the trial; the run ends FINISHED, as a stop that is
# part of the search is no failure (MLflow's UI shows KILLED as a red cross)
TAG_STOPPED_EARLY: Final = "stopped_early"
TAG_INTERRUPTED: Final = "interrupted"  # the stop signal that ended the study (parent
# run: "SIGINT"/"SIGTERM") or cut a trial short (trial run: "true"); removed on resume
TAG_FAILURE_REASON: Final = "failure_reason"  # why a FAILED run failed, one line
TAG_RETRIES: Final = "retries"  # how often Tune restarted the crashed trial
TAG_LAST_ERROR: Final = "last_error"  # the error of the latest retried crash
TAG_RESUMED_FROM_EPOCH: Final = "resumed_from_epoch"  # the checkpoint a restore continued from
TAG_NODE_ID: Final = "ray_node_id"  # the node that trained the trial

# a trial's outcome as the tool reports it: MLflow's status, with STOPPED for a trial the
# scheduler stopped early (FINISHED with the tag; KILLED with it in stores made before)
STOPPED: Final = "STOPPED"


def trial_status(status: str, tags: Mapping[str, str]) -> str:
    """A trial run's outcome: FINISHED (trained to the end), STOPPED (stopped early by the
    scheduler), FAILED, KILLED (cut short by a stop signal) or RUNNING."""
    if status in ("FINISHED", "KILLED") and tags.get(TAG_STOPPED_EARLY) == "true":
        return STOPPED
    return status


CONFIG_ARTIFACT: Final = "config.yaml"  # a trial's full RunConfig (``export`` reads it)
MODEL_ARTIFACT: Final = "model.pt"  # member 0, written by actmix.analysis.save_model
MIXING_WEIGHTS_ARTIFACT: Final = "mixing_weights.png"  # ActMix trials
CURVES_ARTIFACT: Final = "learned_curves.png"  # trials of other trainable activations
CV_RESULT_ARTIFACT: Final = "cv_result.json"  # a final run's per-fold rows (``CVResult.to_dict``)
