"""What a study is asked for: one dataclass, its defaults and its checks.

The CLI derives the options of ``run`` (and their defaults) from :class:`StudyRequest`;
checks live here once and name the field, and the CLI turns a field name into its
flag spelling (``split_seed`` -> ``--split-seed``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Literal

from actmix.config import DEFAULT_DATASET
from actmix.types import Task
from study.store import DEFAULT_STORE
from study.system import RequestError

__all__ = ["RequestError", "SchedulerKind", "StudyRequest", "request_default"]

SchedulerKind = Literal["asha", "none"]  # ASHA early stopping on epochs, or none

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True, slots=True)
class StudyRequest:
    """A study: dataset, model family, search space, budget and where it is stored.

    Every default is the embedded small study that ``make study`` runs.
    """

    name: str | None = None  # MLflow experiment, Optuna study and Ray experiment name
    experiment: str | None = None  # MLflow experiment of the study's runs; None: ``name``
    dataset: str = DEFAULT_DATASET  # bundled name, uci:<id> or csv:<path>
    target: str | None = None  # target column of a csv: dataset
    task: Task | None = None  # None: inferred from the target
    model: str | None = None  # activation name or xgboost; None: the space's model
    space: str | None = None  # a YAML path or a bundled space name; None: the model's
    trials: int = 12  # number of trials
    n_startup_trials: int = 10  # TPE's random start-up trials (Optuna's default) before it models
    folds: int = 5  # inner folds per trial
    seeds: int = 1  # training seeds per fold
    split_seed: int = 0  # seed of the fold split
    epochs: int = 40  # maximum epochs per trial
    max_concurrent: int = 2  # trials at once (packs at once with --pack)
    pack: int = 1  # configurations trained together as one network per trial
    time_budget: float | None = None  # seconds after which no new trial starts
    scheduler: SchedulerKind = "asha"  # early stopping of weak trials
    grace_period: int = 10  # ASHA: epochs before a trial can be stopped
    reduction_factor: float = 3.0  # ASHA: keep the best 1/reduction_factor at each rung
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # may be fractional, e.g. 0.25
    address: str | None = None  # a running Ray cluster; None: start a local Ray
    store: str = DEFAULT_STORE  # folder of the local stores
    tracking_uri: str | None = None  # None: SQLite in the store
    optuna_storage: str | None = None  # None: SQLite in the store
    seed: int = 0  # TPE sampler seed and first training seed
    max_failures: int = 1  # retries of a trial that crashed
    checkpoint_every: int = 5  # epochs between trial checkpoints
    outer_folds: int | None = None  # nested CV: the study sees only outer-training rows ...
    outer_fold: int | None = None  # ... of this outer fold (0-based) of `outer_folds`
    warm_start: str | None = None  # a study (same store and model) whose best configurations
    warm_start_top: int = 5  # ... the first this many, are tried first, after the baseline

    def __post_init__(self) -> None:
        at_least = {
            "trials": 1,
            "n_startup_trials": 0,
            "folds": 2,
            "seeds": 1,
            "epochs": 1,
            "max_concurrent": 1,
            "pack": 1,
            "grace_period": 1,
            "max_failures": 0,
            "seed": 0,
            "split_seed": 0,
            "checkpoint_every": 1,
            "warm_start_top": 1,
        }
        for field, minimum in at_least.items():
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool):
                raise RequestError(field, f"must be an integer, got {value!r}")
            if value < minimum:
                raise RequestError(field, f"must be >= {minimum}, got {value}")
        if not self.cpus_per_trial > 0:
            raise RequestError("cpus_per_trial", f"must be > 0, got {self.cpus_per_trial}")
        if not self.gpus_per_trial >= 0:
            raise RequestError("gpus_per_trial", f"must be >= 0, got {self.gpus_per_trial}")
        if not self.reduction_factor > 1:
            raise RequestError("reduction_factor", f"must be > 1, got {self.reduction_factor}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise RequestError("time_budget", f"must be > 0 seconds, got {self.time_budget}")
        if self.scheduler not in ("asha", "none"):
            raise RequestError("scheduler", f"must be asha or none, got {self.scheduler!r}")
        if self.task not in (None, "regression", "classification"):
            raise RequestError("task", f"must be regression or classification, got {self.task!r}")
        if self.name is not None and not _NAME.match(self.name):
            raise RequestError(
                "name",
                f"{self.name!r} is not valid: use letters, digits, '.', '_' or '-' (max 100)",
            )
        if self.experiment is not None and not _NAME.match(self.experiment):
            raise RequestError(
                "experiment",
                f"{self.experiment!r} is not valid: use letters, digits, '.', '_' or '-' (max 100)",
            )
        if self.warm_start is not None and not _NAME.match(self.warm_start):
            raise RequestError("warm_start", f"{self.warm_start!r} is not a study name")
        if self.warm_start is not None and self.pack > 1:
            raise RequestError("warm_start", "cannot be combined with --pack above 1 yet")
        if (self.outer_folds is None) != (self.outer_fold is None):
            raise RequestError("outer_fold", "and outer_folds must be given together")
        if self.outer_folds is not None and self.outer_fold is not None:
            if self.outer_folds < 2:
                raise RequestError("outer_folds", f"must be >= 2, got {self.outer_folds}")
            if not 0 <= self.outer_fold < self.outer_folds:
                raise RequestError(
                    "outer_fold", f"must be in 0..{self.outer_folds - 1}, got {self.outer_fold}"
                )

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> StudyRequest:
        """Build from a mapping (a manifest, parsed options); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown study setting(s): {', '.join(unknown)}")
        return cls(**values)


def request_default(field: str) -> Any:
    """The default of one :class:`StudyRequest` field (the CLI shows and uses it)."""
    for item in dataclasses.fields(StudyRequest):
        if item.name == field:
            return item.default
    raise KeyError(field)
