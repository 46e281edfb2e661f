"""Keys of what a trial reports to Tune: written by the trainable, read by the MLflow side.

Every ``tune.report`` of ``study.run._trainables`` is a flat dict. Per epoch it holds
``EPOCH``, the objective and its std (``val_<metric>_mean``/``_std``) and the
values in ``CURVE_METRICS``; the first report after a restore adds
``RESUMED_FROM_EPOCH``. The last report of a trial has ``FINAL: True`` and the
per-trial outcome: ``FOLD_SCORES``, ``DIVERGED_MEMBERS`` (always present, so a
logged ``diverged_members`` metric means the trial got to its end), ``NODE_ID``,
and for MLPs ``ARTIFACTS``: the files of the trial's MLflow run (model file, mixing-weight
heatmap or learned curves), rendered on the worker from ``MODEL_FILE`` plus either
``MIXING_WEIGHTS``/``BASIS`` (ActMix) or ``CURVE_GRID``/``CURVES`` (other trainable
activations), so that the driver only writes bytes. No Ray import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ARTIFACTS",
    "BASIS",
    "BEST_ITERATION",
    "BEST_ITERATIONS",
    "CURVES",
    "CURVE_GRID",
    "CURVE_METRICS",
    "DIVERGED_MEMBERS",
    "DIVERGED_REASON",
    "ENTROPY",
    "EPOCH",
    "EPOCHS_RUN",
    "FINAL",
    "FOLD_SCORES",
    "LR",
    "MEMBERS_TRAINING",
    "MIXING_WEIGHTS",
    "MODEL_FILE",
    "NODE_ID",
    "PACK",
    "PACK_CONFIGS",
    "PACK_NUMBERS",
    "PRUNED",
    "RESUMED_FROM_EPOCH",
    "TEMPERATURE",
    "THREADS",
    "TRAIN_LOSS",
    "FinalReport",
    "fold_score_key",
    "is_final",
    "is_pack",
    "pack_slots",
    "reached_final_report",
    "std_key",
]

# --- every epoch ---------------------------------------------------------------------------
EPOCH: Final = "epoch"  # the MLflow step; xgboost: the number of (fold, seed) fits done
RESUMED_FROM_EPOCH: Final = "resumed_from_epoch"  # first report after a checkpoint restore
TRAIN_LOSS: Final = "train_loss"
TEMPERATURE: Final = "temperature"
ENTROPY: Final = "entropy"
LR: Final = "lr"
MEMBERS_TRAINING: Final = "members_training"  # members not yet stopped early or diverged
THREADS: Final = "threads"  # torch threads the trial trains with (they follow free CPUs)
BEST_ITERATION: Final = "best_iteration"  # xgboost: of the last (fold, seed) fit

# per-epoch values worth a curve in MLflow (besides every numeric val_* key)
CURVE_METRICS: Final = frozenset(
    {TRAIN_LOSS, TEMPERATURE, ENTROPY, LR, MEMBERS_TRAINING, BEST_ITERATION, THREADS}
)

# --- packed trials (``run --pack K``) -------------------------------------------------------
# A packed Tune trial trains several configurations (each its own Optuna trial and MLflow
# run) as one network. Its config is ``{PACK_CONFIGS: [sample, ...], PACK_NUMBERS: [Optuna
# trial number, ...]}``; each of its reports carries ``PACK``: one entry per configuration,
# the dict an unpacked trial of that configuration would have reported (its last one with
# ``FINAL``), or None when the configuration has nothing new (it ended earlier).
PACK_CONFIGS: Final = "configs"
PACK_NUMBERS: Final = "numbers"
PACK: Final = "pack"
PRUNED: Final = "pruned"  # True in a configuration's entry: ASHA stopped it at this report

# --- the final report ----------------------------------------------------------------------
FINAL: Final = "final"  # True on the last report only
FOLD_SCORES: Final = "fold_scores"  # [folds] best validation score, mean over seeds
EPOCHS_RUN: Final = "epochs_run"  # [members]
BEST_ITERATIONS: Final = "best_iterations"  # xgboost: [folds x seeds]
DIVERGED_MEMBERS: Final = "diverged_members"  # count; 0 for xgboost
DIVERGED_REASON: Final = "diverged_reason"  # only when a member diverged
NODE_ID: Final = "node_id"  # the Ray node that trained the trial
MODEL_FILE: Final = "model_file"  # member 0 as actmix.analysis.save_model bytes, base64
MIXING_WEIGHTS: Final = "mixing_weights"  # ActMix, member 0: per layer [neurons, K]
BASIS: Final = "basis"  # ActMix: the K basis names
CURVE_GRID: Final = "curve_grid"  # [points] pre-activation values
CURVES: Final = "curves"  # per layer [neurons, points]: learned activation shapes
# what the final report carries instead of the five above: {file name: base64 bytes}
ARTIFACTS: Final = "artifacts"


@dataclass(frozen=True, slots=True)
class FinalReport:
    """What a trial's last report adds to its epoch's keys, typed.

    ``to_report`` flattens it into the dict ``tune.report`` carries (keys: the field names,
    the constants above, and ``FINAL``), ``from_report`` reads it back from such a dict;
    fields left None are not sent.
    """

    fold_scores: list[float]
    diverged_members: int
    node_id: str | None = None
    epochs_run: list[int] | None = None
    best_iterations: list[int] | None = None
    diverged_reason: str | None = None
    model_file: str | None = None
    mixing_weights: list[Any] | None = None
    basis: list[str] | None = None
    curve_grid: list[float] | None = None
    curves: list[Any] | None = None
    artifacts: dict[str, str] | None = None

    def to_report(self) -> dict[str, Any]:
        sent = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if getattr(self, field.name) is not None
        }
        return {**sent, FINAL: True}

    @classmethod
    def from_report(cls, result: Mapping[str, Any]) -> FinalReport:
        """The final part of ``result``; ValueError if it is not a final report."""
        if not is_final(result):
            raise ValueError("not a final report")
        names = [field.name for field in dataclasses.fields(cls)]
        return cls(**{name: result[name] for name in names if name in result})


def is_final(result: Mapping[str, Any]) -> bool:
    """Whether ``result`` is a trial's last report."""
    return bool(result.get(FINAL))


def is_pack(config: Mapping[str, Any]) -> bool:
    """Whether a Tune trial's config is a pack of configurations."""
    return PACK_CONFIGS in config and PACK_NUMBERS in config


def pack_slots(result: Mapping[str, Any], size: int) -> list[Mapping[str, Any] | None]:
    """The per-configuration entries of a packed trial's report (all None if it has none)."""
    slots = result.get(PACK)
    if slots is None:
        return [None] * size
    if len(slots) != size:
        raise ValueError(f"a report of a pack of {size} carries {len(slots)} entries")
    return list(slots)


def reached_final_report(logged_metrics: Mapping[str, float]) -> bool:
    """Whether a trial run's logged metrics include its final report (see the module doc)."""
    return DIVERGED_MEMBERS in logged_metrics


def std_key(objective: str) -> str:
    """``val_rmse_mean`` -> ``val_rmse_std``: the spread over members of the objective."""
    return f"{objective.removesuffix('_mean')}_std"


def fold_score_key(objective: str, fold: int) -> str:
    """``val_rmse_mean``, 0 -> ``fold0_val_rmse``: the MLflow metric of one fold's score."""
    return f"fold{fold}_{objective.removesuffix('_mean')}"
