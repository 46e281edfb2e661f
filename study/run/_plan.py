"""A validated study: everything resolved and checked before Ray starts or a byte is written.

``make_plan`` loads the dataset (and, for nested CV, keeps only the outer fold's
training rows), checks the search space against the model, resolves the stores and
checks that the tracking server and the Ray address answer.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actmix.activations import make_activation
from actmix.config import XGBOOST, RunConfig
from actmix.data import load_dataset
from actmix.nested import study_rows
from actmix.splits import make_folds
from actmix.types import Task
from study.request import RequestError, StudyRequest
from study.run._rungs import RungSpec
from study.run._trainables import StudySettings, objective_name
from study.run._warm import WarmStart, warm_start
from study.space import (
    SearchSpace,
    absolute_space,
    baseline_point,
    config_from_sample,
    load_space,
    space_for_model,
)
from study.store import (
    check_optuna_storage,
    check_writable_folder,
    default_store_uris,
    manifest_path,
)
from study.system import local_gpu_count
from study.tracking import Mode, check_tracking_uri

__all__ = ["StudyPlan", "check_ray_address", "make_plan"]


@dataclass(frozen=True, slots=True)
class StudyPlan:
    """A validated request with everything resolved."""

    request: StudyRequest  # as asked, with the store, space and csv: paths made absolute
    name: str  # the study name (given, or <dataset>-<model>-<time>)
    model: str  # activation name or xgboost
    space: SearchSpace
    dataset_name: str
    task: Task
    objective: str  # the metric key the study optimises, e.g. val_rmse_mean
    mode: Mode
    store: Path  # absolute folder of the local stores
    tracking_uri: str
    optuna_storage: str
    baseline: dict[str, Any]  # trial 0: the space's baseline point
    # `extend` runs k > 0: request.trials more trials in a Tune experiment of their own,
    # whose runs are named from first_index on (the trials the study had before)
    extension: int = 0
    first_index: int = 0
    warm: WarmStart | None = None  # another study's best configurations, tried first

    @property
    def experiment(self) -> str:
        """The MLflow experiment of the study's runs (a suite shares one)."""
        return self.request.experiment or self.name

    @property
    def tune_name(self) -> str:
        """The Ray Tune experiment of this launch (each extension has its own)."""
        return self.name if self.extension == 0 else f"{self.name}-extend{self.extension}"

    @property
    def manifest(self) -> Path:
        return manifest_path(self.store, self.name)

    @property
    def ray_path(self) -> Path:
        return self.store / "ray"

    @property
    def packs(self) -> int:
        """Tune trials the study runs: one per pack of up to ``pack`` configurations."""
        return -(-self.request.trials // self.request.pack)

    def rungs(self) -> RungSpec | None:
        """ASHA's rungs of a packed study (packs are stopped per configuration, not by Tune)."""
        request = self.request
        if request.pack == 1 or request.scheduler != "asha":
            return None
        return RungSpec(
            board=f"actmix-rungs-{self.name}",
            grace_period=request.grace_period,
            reduction_factor=request.reduction_factor,
            max_t=request.epochs + 1,
            mode=self.mode,
        )

    def settings(self) -> StudySettings:
        request = self.request
        return StudySettings(
            dataset=request.dataset,
            model=self.model,
            space=self.space,
            folds=request.folds,
            seeds=tuple(range(request.seed, request.seed + request.seeds)),
            split_seed=request.split_seed,
            epochs=request.epochs,
            target=request.target,
            task=request.task,
            checkpoint_every=request.checkpoint_every,
            outer_folds=request.outer_folds,
            outer_fold=request.outer_fold,
            rungs=self.rungs(),
        )


def _absolute_dataset(spec: str) -> str:
    # Tune runs trials in their own working directories: a relative CSV path must not
    # depend on where the driver was started
    if spec.startswith("csv:"):
        return "csv:" + str(Path(spec.removeprefix("csv:")).expanduser().resolve())
    return spec


def check_ray_address(address: str, *, timeout: float = 5.0) -> None:
    """Fail fast when a Ray address does not answer (``ray.init`` would wait for minutes)."""
    if address == "auto":
        return  # ray.init finds the local cluster file or says there is none, at once
    if address.startswith("ray://"):
        # Ray Client drops the driver's connection on network hiccups and is not installed
        # with ray[tune]; Ray's own advice for Tune is a driver on the cluster
        raise ValueError(
            f"--address {address}: Ray Client (ray://) is not supported; run the study on the "
            "head node with --address auto, or give the head's HOST:PORT (default port 6379)"
        )
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"bad --address {address!r}; expected auto or HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except OSError as error:
        raise ConnectionError(
            f"cannot reach Ray at {address} ({error.strerror or error}); start one with "
            "`ray start --head` or `ray up`, or leave out --address for a local Ray"
        ) from None


def _check_local_gpus(gpus_per_trial: float) -> None:
    """Without ``--address`` the study starts a local Ray: refuse GPUs this machine lacks."""
    ray = sys.modules.get("ray")
    if gpus_per_trial <= 0 or (ray is not None and ray.is_initialized()):
        return  # no GPU asked for, or the caller's own Ray, which _check_resources asks
    available = local_gpu_count()
    if available < gpus_per_trial:
        raise RequestError(
            "gpus_per_trial",
            f"{gpus_per_trial:g} asked for, but this machine has {available} GPU(s) for a "
            "local Ray; use --gpus-per-trial 0, or --address of a cluster with GPU workers",
        )


def make_plan(request: StudyRequest) -> StudyPlan:
    """Validate everything that can be checked without Ray; write nothing."""
    # absolute paths: trials run in their own folders, and `resume` may run from anywhere
    request = dataclasses.replace(
        request,
        dataset=_absolute_dataset(request.dataset),
        space=absolute_space(request.space) if request.space else None,
    )
    space = load_space(request.space) if request.space else None
    model = request.model or (space.model if space else "actmix")
    space = space or space_for_model(model)
    if (model == XGBOOST) != (space.model == XGBOOST):
        raise ValueError(
            f"search space {space.path} is for model {space.model!r}, which cannot train {model!r}"
        )
    dataset = study_rows(
        load_dataset(request.dataset, target=request.target, task=request.task),
        outer_folds=request.outer_folds,
        outer_fold=request.outer_fold,
        split_seed=request.split_seed,
    )
    make_folds(dataset, request.folds, request.split_seed)  # too few rows/classes fail here
    if request.pack > 1 and model == XGBOOST:
        raise RequestError("pack", "xgboost trials are not packed; leave out --pack")
    baseline = baseline_point(space, RunConfig(model=model), epochs=request.epochs)
    if model != XGBOOST:
        # bad activation options (e.g. a fixed omega_0 <= 0) fail here, not in every trial
        first = config_from_sample(
            space, baseline, base=RunConfig(), epochs=request.epochs, model=model
        )
        make_activation(model, 2, 1, **first.mlp.activation)
    objective, mode = objective_name(dataset.task)
    name = request.name or f"{dataset.name}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"
    store = check_writable_folder(request.store, field="store")
    request = dataclasses.replace(request, store=str(store))
    mlflow_uri, optuna_uri = default_store_uris(store)
    tracking_uri = request.tracking_uri or mlflow_uri
    check_tracking_uri(tracking_uri)
    if request.optuna_storage:
        check_optuna_storage(request.optuna_storage)
    if request.address:
        check_ray_address(request.address)
    else:
        _check_local_gpus(request.gpus_per_trial)
    optuna_storage = request.optuna_storage or optuna_uri
    warm = None
    if request.warm_start is not None:
        if request.tracking_uri is None and not (store / "mlflow.db").is_file():
            # the store has no studies, and reading one must not create its database
            raise ValueError(f"--warm-start: no study named {request.warm_start!r} in {store}")
        warm = warm_start(
            request.warm_start,
            request.warm_start_top,
            space=space,
            model=model,
            tracking_uri=tracking_uri,
            optuna_storage=optuna_storage,
            baseline=baseline,
        )
    return StudyPlan(
        request=request,
        name=name,
        model=model,
        space=space,
        dataset_name=dataset.name,
        task=dataset.task,
        objective=objective,
        mode=mode,
        store=store,
        tracking_uri=tracking_uri,
        optuna_storage=optuna_storage,
        baseline=baseline,
        warm=warm,
    )
