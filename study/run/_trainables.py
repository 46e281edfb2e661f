"""Ray Tune function trainables: one trial = one configuration trained on every fold.

All folds x seeds of a trial train as one batched network (``actmix.fit`` with
members) and every epoch is reported to Tune: the mean and std over members of
each member's best inner-validation score so far (the model each member would
keep), plus train loss, temperature and entropy. The last report carries the
per-fold scores, epochs run and diverged members. Test rows are never scored here.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from actmix.activations import activation_curves
from actmix.config import XGBOOST, RunConfig
from actmix.cv import build_members, score_rows
from actmix.data import load_dataset
from actmix.metrics import fold_std, primary_metric
from actmix.nested import study_rows
from actmix.preprocessing import FoldArrays, prepare_fold
from actmix.splits import Splits, make_folds
from actmix.trainer import EpochRecord, fit
from actmix.types import Dataset, Task
from actmix.xgb import fit_xgboost_fold
from study.run._rungs import RungSpec
from study.run._threads import ThreadShare
from study.space import SearchSpace, config_from_sample
from study.tracking import Mode, payload, with_rendered_artifacts

__all__ = [
    "StudySettings",
    "epoch_metrics",
    "final_metrics",
    "load_checkpoint",
    "objective_name",
    "report",
    "train_trial",
    "trial_device",
]

_STATE_FILE = "state.pt"
_XGB_STATE_FILE = "folds.json"


@dataclass(frozen=True, slots=True)
class StudySettings:
    """What every trial of a study shares (sent once to the workers)."""

    dataset: str
    model: str
    space: SearchSpace
    folds: int
    seeds: tuple[int, ...]
    split_seed: int
    epochs: int
    target: str | None = None
    task: Task | None = None
    checkpoint_every: int = 5
    outer_folds: int | None = None  # nested CV: train on one outer fold's training rows
    outer_fold: int | None = None
    # packed studies: ASHA's rungs, shared by every pack (None: no early stopping by rungs)
    rungs: RungSpec | None = None
    # set inside a trial: its torch threads, following the node's free CPUs each epoch
    threads: ThreadShare | None = None


def objective_name(task: Task) -> tuple[str, Mode]:
    """``(metric key, mode)`` the study optimises, e.g. ``("val_rmse_mean", "min")``."""
    metric = primary_metric(task)
    return f"val_{metric.name}_mean", "min" if metric.direction == "minimize" else "max"


def _prepared(settings: StudySettings) -> tuple[Dataset, Splits, tuple[FoldArrays, ...]]:
    return _prepared_cached(
        settings.dataset,
        settings.target,
        settings.task,
        settings.folds,
        settings.split_seed,
        settings.outer_folds,
        settings.outer_fold,
    )


@functools.lru_cache(maxsize=4)
def _prepared_cached(
    spec: str,
    target: str | None,
    task: Task | None,
    folds: int,
    split_seed: int,
    outer_folds: int | None,
    outer_fold: int | None,
) -> tuple[Dataset, Splits, tuple[FoldArrays, ...]]:
    # cached per worker process: with reuse_actors, later trials skip loading and preprocessing
    dataset = study_rows(
        load_dataset(spec, target=target, task=task),
        outer_folds=outer_folds,
        outer_fold=outer_fold,
        split_seed=split_seed,
    )
    splits = make_folds(dataset, folds, split_seed)
    return dataset, splits, tuple(prepare_fold(dataset, fold) for fold in splits.folds)


def _finite_mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return float(np.mean(finite)), fold_std(finite)


def _per_fold(values: list[float], pairs, folds: int) -> list[float]:
    """Average member values over seeds, per fold."""
    by_fold: list[list[float]] = [[] for _ in range(folds)]
    for value, (fold, _) in zip(values, pairs, strict=True):
        by_fold[fold].append(value)
    return [_finite_mean_std(v)[0] for v in by_fold]


def _model_file(single) -> str:
    """A single-member model as ``save_model`` bytes, base64: the driver logs it as the
    run's ``model.pt``, so no shared storage between nodes is needed."""
    from actmix.analysis import save_model

    with tempfile.TemporaryDirectory() as directory:
        path = save_model(single, Path(directory) / "model.pt")
        return base64.b64encode(path.read_bytes()).decode("ascii")


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def trial_device() -> str:
    import ray

    # Ray hides GPUs it did not assign: use CUDA only when this trial got one
    return "cuda" if ray.get_gpu_ids() else "cpu"


def train_trial(config: dict[str, Any], settings: StudySettings) -> None:
    """Ray Tune function trainable for every model family (MLPs and XGBoost)."""
    import torch
    from ray import tune

    context = tune.get_context()
    cpus = context.get_trial_resources().required_resources.get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))
    settings = dataclasses.replace(settings, threads=ThreadShare(int(cpus)))

    dataset, splits, fold_arrays = _prepared(settings)
    if payload.is_pack(config):
        from study.run._pack_trainable import train_pack  # it builds on this module

        train_pack(config, settings, dataset, fold_arrays)
        return
    run_config = config_from_sample(
        settings.space, config, base=RunConfig(), epochs=settings.epochs, model=settings.model
    )
    if run_config.model == XGBOOST:
        _train_xgboost(run_config, settings, dataset, splits, fold_arrays, n_jobs=max(1, int(cpus)))
    else:
        _train_mlp(run_config, settings, dataset, fold_arrays)


def report(
    metrics: dict[str, Any], state: dict[str, Any] | list[list[float]] | None, filename: str
) -> None:
    """``tune.report``, with a checkpoint written to a temporary directory when given.

    ``state``: a trainer state (``torch.save``) or, for a ``.json`` file, JSON data
    such as XGBoost's finished ``[fold, seed, score, best_iteration]`` rows.
    """
    import torch
    from ray import tune

    if state is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / filename
        if filename.endswith(".json"):
            path.write_text(json.dumps(state))
        else:
            torch.save(state, path)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def load_checkpoint(filename: str) -> Any:
    import torch
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        path = Path(directory) / filename
        if filename.endswith(".json"):
            return json.loads(path.read_text())
        return torch.load(path, weights_only=True)


def _train_mlp(config: RunConfig, settings: StudySettings, dataset: Dataset, fold_arrays) -> None:
    batched = build_members(dataset, config, fold_arrays, settings.seeds)
    resume_from = load_checkpoint(_STATE_FILE)
    # said once, in the first report after a restore, so the run records where it went on
    pending = {} if resume_from is None else {payload.RESUMED_FROM_EPOCH: int(resume_from["epoch"])}
    members = list(range(batched.model.members))

    def on_epoch(_epoch: int, record: EpochRecord) -> None:
        metrics = {**epoch_metrics(record, members, dataset.task), **pending}
        if settings.threads is not None:
            metrics[payload.THREADS] = settings.threads.update()
        pending.clear()
        report(metrics, record.checkpoint, _STATE_FILE)

    result = fit(
        batched.model,
        batched.data,
        config.train,
        task=dataset.task,
        on_epoch=on_epoch,
        device=trial_device(),
        checkpoint_every=settings.checkpoint_every,
        resume_from=resume_from,
    )
    final = final_metrics(
        batched.model, result.members, members, batched.pairs, len(fold_arrays), dataset.task
    )
    report(with_rendered_artifacts(final, model=settings.model), None, _STATE_FILE)


def epoch_metrics(record: EpochRecord, members: list[int], task: Task) -> dict[str, Any]:
    """One epoch's report of the configuration trained by ``members`` of the network."""
    name = primary_metric(task).name
    key, _ = objective_name(task)
    mean, std = _finite_mean_std([record.best_val_metric[k] for k in members])
    trained = [record.val_metric[k] for k in members if record.trained[k]]
    first = members[0]
    metrics = {
        payload.EPOCH: record.epoch,
        key: mean,
        f"val_{name}_std": std,
        f"val_{name}_epoch_mean": _finite_mean_std(trained)[0],
        payload.TRAIN_LOSS: _finite_mean_std([record.train_loss[k] for k in members])[0],
        # one configuration for all these members: the first one's schedule is its own
        payload.TEMPERATURE: record.temperature[first],
        payload.LR: record.lr[first],
        payload.MEMBERS_TRAINING: sum(record.active[k] for k in members),
    }
    if record.entropy is not None:
        metrics[payload.ENTROPY] = _finite_mean_std([record.entropy[k] for k in members])[0]
    return metrics


def final_metrics(
    model,
    outcomes,
    members: list[int],
    pairs: Sequence[tuple[int, int]],
    folds: int,
    task: Task,
) -> dict[str, Any]:
    """The final report of the configuration trained by ``members`` (their ``(fold, seed)``
    in ``pairs``), its figures drawn from the first of them."""
    name = primary_metric(task).name
    key, _ = objective_name(task)
    mine = [outcomes[k] for k in members]
    best = [outcome.best_val_metric for outcome in mine]
    diverged = [i for i, outcome in enumerate(mine) if outcome.diverged]
    mean, std = _finite_mean_std(best)
    epoch = {
        payload.EPOCH: max(outcome.epochs_run for outcome in mine),
        key: mean if len(diverged) < len(best) else math.nan,
        f"val_{name}_std": std,
    }
    reason = None
    if diverged:
        outcome = mine[diverged[0]]
        reason = (
            f"{len(diverged)}/{len(best)} members diverged "
            f"({outcome.diverged_reason} at epoch {outcome.diverged_epoch})"
        )
    single = model.member(members[0]).cpu()
    grid: list[float] | None = None
    curves: list[Any] | None = None
    mixing_weights: list[Any] | None = None
    basis: list[str] | None = None
    trainable_shape = any(p.numel() for p in single.activations.parameters())
    mixing = single.mixing_weights()
    if mixing is None and trainable_shape:
        # learned shapes of a few neurons (the first member), plotted for the run
        points = np.linspace(-3.0, 3.0, 121)
        grid = points.tolist()
        curves = [curve.tolist() for curve in activation_curves(single, points, neurons=4)]
    if mixing is not None:
        # the first member (fold 0, first seed), plotted as the trial's heatmap
        mixing_weights = [layer[0].detach().cpu().tolist() for layer in mixing]
        described = single.activation_layers()[0].describe()
        basis = [str(name) for name in cast(list, described["basis"])]
    final = payload.FinalReport(
        fold_scores=_per_fold(best, pairs, folds),
        diverged_members=len(diverged),
        node_id=_node_id(),
        epochs_run=[outcome.epochs_run for outcome in mine],
        diverged_reason=reason,
        model_file=_model_file(single),
        mixing_weights=mixing_weights,
        basis=basis,
        curve_grid=grid,
        curves=curves,
    )
    return {**epoch, **final.to_report()}


def _train_xgboost(
    config: RunConfig,
    settings: StudySettings,
    dataset: Dataset,
    splits: Splits,
    fold_arrays,
    *,
    n_jobs: int,
) -> None:
    name = primary_metric(dataset.task).name
    key, _ = objective_name(dataset.task)
    # finished (fold, seed) scores survive a restore in a small JSON checkpoint
    done: list[list[float]] = load_checkpoint(_XGB_STATE_FILE) or []
    pairs = [(fold, seed) for fold in range(len(fold_arrays)) for seed in settings.seeds]
    for fold, seed in pairs[len(done) :]:
        outcome = fit_xgboost_fold(
            fold_arrays[fold],
            dataset.task,
            dataset.n_classes,
            config.xgboost,
            seed=seed,
            n_jobs=n_jobs,
        )
        scores = score_rows(dataset, splits.folds[fold].val_idx, outcome.val_prediction, "val")
        done.append([fold, seed, scores[f"val_{name}"], outcome.best_iteration])
        mean, std = _finite_mean_std([row[2] for row in done])
        report(
            {
                payload.EPOCH: len(done),
                key: mean,
                f"val_{name}_std": std,
                payload.BEST_ITERATION: outcome.best_iteration,
            },
            done,
            _XGB_STATE_FILE,
        )
    values = [row[2] for row in done]
    mean, std = _finite_mean_std(values)
    report(
        {
            payload.EPOCH: len(done),
            key: mean,
            f"val_{name}_std": std,
            **payload.FinalReport(
                fold_scores=_per_fold(values, pairs, len(fold_arrays)),
                diverged_members=0,
                node_id=_node_id(),
                best_iterations=[int(row[3]) for row in done],
            ).to_report(),
        },
        None,
        _XGB_STATE_FILE,
    )
