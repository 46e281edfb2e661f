"""``fit``: train every member of a batched MLP on its own data, in one loop.

Data lives in tensors on the device; minibatches are index slices; metrics are
computed once per epoch on whole validation tensors. Member ``k`` draws its own
minibatches from its own generator and its dropout masks from a hash keyed by
its seed (``actmix._dropout``), so it trains exactly as a single-member run with
the same seed would. Members may also train with their own ``TrainConfig`` (one per
member: learning rate and its schedule, weight decay, gradient clip, patience,
temperature and entropy schedules), sharing only the epochs and the batch size.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from actmix._checkpoint import restore, snapshot
from actmix._dropout import epoch_dropout_keys
from actmix._early_stopping import EarlyStopping, MemberOutcome
from actmix._member_settings import SHARED_TRAIN_FIELDS, EpochSchedule, member_configs
from actmix._member_tensors import MemberTensors, stack_padded
from actmix.config import TrainConfig
from actmix.mlp import MLP
from actmix.optim import MemberAdamW
from actmix.preprocessing import effective_batch_size
from actmix.types import Task

__all__ = [
    "SHARED_TRAIN_FIELDS",
    "EpochRecord",
    "FitResult",
    "MemberData",
    "MemberOutcome",
    "fit",
    "member_configs",
    "predict",
    "resolve_device",
]

Device = str  # "auto" | "cpu" | "cuda" | "cuda:N"
_VAL_CHUNK = 8192  # rows per member per validation forward pass (bounds peak memory)


@dataclass(frozen=True, slots=True)
class MemberData:
    """One member's training and inner-validation rows.

    ``x_*: [n, features]`` float; ``y_*: [n]`` standardised float targets
    (regression) or int64 class codes (classification). ``target_std`` turns the
    standardised validation error back into original units for reporting.
    """

    x_train: np.ndarray | torch.Tensor
    y_train: np.ndarray | torch.Tensor
    x_val: np.ndarray | torch.Tensor
    y_val: np.ndarray | torch.Tensor
    seed: int
    target_std: float = 1.0


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """What ``on_epoch`` receives after each epoch (one value per member where a tuple)."""

    epoch: int
    metric: str
    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    val_metric: tuple[float, ...]
    best_val_metric: tuple[float, ...]
    trained: tuple[bool, ...]  # members that trained this epoch
    active: tuple[bool, ...]  # members that will train next epoch
    temperature: tuple[float, ...]
    entropy: tuple[float, ...] | None
    entropy_weight: tuple[float, ...]
    lr: tuple[float, ...]
    checkpoint: dict[str, Any] | None = None  # see fit(checkpoint_every=...)


@dataclass(frozen=True, slots=True)
class FitResult:
    """What ``fit`` returns.

    ``members``: one outcome per member, in model order.
    ``history``: one record per epoch run (from the resumed epoch on, after a resume).
    ``device``: where training ran (``"cpu"``, ``"cuda:0"``).
    ``seconds``: wall time of the whole call.
    """

    members: tuple[MemberOutcome, ...]
    history: tuple[EpochRecord, ...]
    device: str
    seconds: float


def resolve_device(device: Device = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; asking for a missing GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but no CUDA GPU is available; use 'cpu'")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}; valid: auto, cpu, cuda")
    return torch.device(device)


def _row_loss(output: torch.Tensor, target: torch.Tensor, task: Task) -> torch.Tensor:
    """Per-row loss ``[M, B]``: squared error or cross-entropy."""
    if task == "regression":
        return (output.squeeze(-1) - target).pow(2)
    members, rows, classes = output.shape
    return F.cross_entropy(output.reshape(-1, classes), target.reshape(-1), reduction="none").view(
        members, rows
    )


def _check_data(model: MLP, data: Sequence[MemberData], task: Task) -> None:
    if len(data) != model.members:
        raise ValueError(f"got data for {len(data)} members, model has {model.members}")
    in_features = model.spec["in_features"]
    for k, member in enumerate(data):
        if member.x_train.shape[1] > in_features or member.x_val.shape[1] > in_features:
            raise ValueError(f"member {k} has more features than the model's {in_features}")
        if len(member.y_train) == 0 or len(member.y_val) == 0:
            raise ValueError(f"member {k} has no training or no validation rows")
    if task == "regression" and model.spec["out_features"] != 1:
        raise ValueError("a regression model must have out_features=1")


# --- one epoch -----------------------------------------------------------------------------


def _penalties(model: MLP, entropy_weights: torch.Tensor | None) -> torch.Tensor | None:
    """The entropy penalty plus the activations' regularisers, ``[M]``; None if there are none."""
    total = model.regularization()
    if entropy_weights is not None:
        entropy = model.entropy()
        if entropy is not None:
            # where, not a product: a member without the penalty adds nothing, even 0 * nan
            weighted = torch.where(entropy_weights > 0, entropy_weights * entropy, 0.0)
            total = weighted if total is None else total + weighted
    return total


def _epoch_batches(
    tensors: MemberTensors, shufflers: Sequence[torch.Generator], training: Sequence[bool]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every minibatch of one epoch, gathered at once: ``x: [M, steps * batch, features]``
    and ``y: [M, steps * batch]``, in each training member's own shuffled order."""
    members = len(training)
    # each member's permutation of its own rows, padded to steps * batch
    order = torch.zeros(members, tensors.steps * tensors.batch_size, dtype=torch.int64)
    for k in range(members):
        if training[k]:
            member_rows = tensors.train_rows[k]
            order[k, :member_rows] = torch.randperm(member_rows, generator=shufflers[k])
    rows = (tensors.member_index, order.to(tensors.x_train.device))
    return tensors.x_train[rows], tensors.y_train[rows]


def _train_epoch(
    model: MLP,
    tensors: MemberTensors,
    optimizer: MemberAdamW,
    shufflers: Sequence[torch.Generator],
    dropout_keys: torch.Tensor,
    training: Sequence[bool],
    schedule: EpochSchedule,
    task: Task,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over the ``training`` members' rows; ``dropout_keys: [steps, M, layers]``.

    Returns the mean training loss ``[M]`` and which members met a non-finite loss ``[M]``.
    """
    model.train()
    batch, device = tensors.batch_size, tensors.x_train.device
    x_epoch, y_epoch = _epoch_batches(tensors, shufflers, training)
    has_batch = [
        [training[k] and step < tensors.member_steps[k] for k in range(len(training))]
        for step in range(tensors.steps)
    ]
    stepping_by_step = torch.tensor(has_batch, device=device)
    # real rows of training members weigh 1, padding and resting members 0
    weights = tensors.valid * torch.tensor(training, device=device)[:, None]
    rows_by_step = weights.view(len(training), tensors.steps, batch).sum(dim=2)
    inverse_rows = 1.0 / rows_by_step.clamp(min=1.0)
    loss_sum = torch.zeros(len(training), device=device)
    # summed over the epoch: non-finite at the end iff some step's loss was
    total_sum = torch.zeros(len(training), device=device)
    for step in range(tensors.steps):
        columns = slice(step * batch, (step + 1) * batch)
        stepping = stepping_by_step[step]
        output = model(x_epoch[:, columns], dropout_keys=dropout_keys[step])
        row_loss = _row_loss(output, y_epoch[:, columns], task) * weights[:, columns]
        summed = row_loss.sum(dim=1)
        total = summed * inverse_rows[:, step]
        penalties = _penalties(model, schedule.weights)
        if penalties is not None:
            total = total + penalties
        optimizer.zero_grad()
        total.sum().backward()
        optimizer.step(stepping, schedule.lr)
        loss_sum += summed.detach()
        total_sum += torch.where(stepping, total.detach(), 0.0)
    return loss_sum / torch.tensor(tensors.train_rows, device=device), ~torch.isfinite(total_sum)


class _Validation(NamedTuple):
    loss: torch.Tensor  # [M], standardised units
    metric: torch.Tensor  # [M], RMSE in original units or accuracy
    entropy: torch.Tensor | None  # [M], mixing entropy where the activation mixes


def _evaluate(
    model: MLP,
    x: torch.Tensor,
    y: torch.Tensor,
    rows: torch.Tensor,
    task: Task,
    scale: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation loss and primary metric per member ``[M]`` on whole padded tensors."""
    loss_sum = torch.zeros(model.members, device=x.device)
    hits = torch.zeros(model.members, device=x.device)
    valid = torch.arange(x.shape[1], device=x.device)[None, :] < rows[:, None]
    for start in range(0, x.shape[1], _VAL_CHUNK):
        part = slice(start, start + _VAL_CHUNK)
        output = model(x[:, part])
        mask = valid[:, part].to(output.dtype)
        loss_sum += (_row_loss(output, y[:, part], task) * mask).sum(dim=1)
        if task == "classification":
            hits += ((output.argmax(dim=-1) == y[:, part]).to(mask.dtype) * mask).sum(dim=1)
    loss = loss_sum / rows
    metric = loss.sqrt() * scale if task == "regression" else hits / rows
    return loss, metric


@torch.no_grad()
def _validate(model: MLP, tensors: MemberTensors, task: Task) -> _Validation:
    model.eval()
    loss, metric = _evaluate(
        model, tensors.x_val, tensors.y_val, tensors.val_rows, task, tensors.target_std
    )
    return _Validation(loss, metric, model.entropy())


def _keep_improved(
    best_state: dict[str, torch.Tensor], model: MLP, improved: Sequence[bool]
) -> None:
    """Copy the current weights of the members that ``improved`` into ``best_state``."""
    if not any(improved):
        return
    chosen = torch.tensor(improved, device=next(model.parameters()).device)
    for name, tensor in model.state_dict().items():
        view = chosen.view(-1, *([1] * (tensor.dim() - 1)))
        best_state[name] = torch.where(view, tensor.detach(), best_state[name])


def _epoch_record(
    epoch: int,
    task: Task,
    schedule: EpochSchedule,
    trained: tuple[bool, ...],
    train_loss: torch.Tensor,
    validation: _Validation,
    progress: EarlyStopping,
) -> EpochRecord:
    return EpochRecord(
        epoch=epoch,
        metric="rmse" if task == "regression" else "accuracy",
        train_loss=tuple(train_loss.tolist()),
        val_loss=tuple(validation.loss.tolist()),
        val_metric=tuple(validation.metric.tolist()),
        best_val_metric=tuple(progress.best_metric),
        trained=trained,
        active=tuple(progress.active),
        temperature=schedule.temperature,
        entropy=None if validation.entropy is None else tuple(validation.entropy.tolist()),
        entropy_weight=schedule.entropy_weight,
        lr=schedule.lr,
    )


# --- the training loop ---------------------------------------------------------------------


def fit(
    model: MLP,
    data: Sequence[MemberData],
    config: TrainConfig | Sequence[TrainConfig],
    *,
    task: Task,
    on_epoch: Callable[[int, EpochRecord], None] | None = None,
    device: Device = "auto",
    checkpoint_every: int = 0,
    resume_from: Mapping[str, Any] | None = None,
    stop: Callable[[int, EpochRecord], Iterable[int]] | None = None,
) -> FitResult:
    """Train ``model`` (all members at once) and restore each member's best epoch.

    ``config``: one ``TrainConfig`` for every member, or one per member (they must share
    ``SHARED_TRAIN_FIELDS``); member k then trains as it would alone with its own.
    Early stopping watches each member's inner-validation loss with its own
    patience. A member whose loss turns non-finite is marked diverged and frozen
    at its best state; the others continue.

    With ``checkpoint_every=n``, every n-th epoch's record carries ``checkpoint``:
    a dict of tensors and plain values (``torch.save``-able, loadable with
    ``weights_only=True``). Passing it back as ``resume_from`` continues training
    exactly where it stopped: same weights, optimiser moments, early-stopping
    counters and random streams.

    ``stop(epoch, record)``, called after each epoch before its checkpoint, names members
    to stop from outside (a scheduler stopping a configuration of a pack): they keep
    their best epoch and stop training, as if their patience had run out. An epoch that
    stopped members carries a checkpoint whatever ``checkpoint_every`` says, so a caller
    can continue without them (``actmix.packs.select_members``) and free their compute.
    """
    started = time.perf_counter()
    _check_data(model, data, task)
    configs = member_configs(config, model.members)
    shared = configs[0]
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    target_device = resolve_device(device)
    model.to(target_device)
    # small data takes several steps per epoch, not one (see effective_batch_size)
    batch_size = effective_batch_size(shared.batch_size, min(len(d.y_train) for d in data))
    tensors = MemberTensors.build(data, model.spec["in_features"], task, batch_size, target_device)
    shufflers = [torch.Generator().manual_seed(d.seed) for d in data]
    decayed, not_decayed = model.parameter_groups()
    optimizer = MemberAdamW(
        decayed,
        not_decayed,
        members=model.members,
        weight_decay=[c.weight_decay for c in configs],
        grad_clip=[c.grad_clip for c in configs],
    )
    best_state = {name: t.detach().clone() for name, t in model.state_dict().items()}
    progress, first_epoch = EarlyStopping.fresh(model.members), 0
    if resume_from is not None:
        first_epoch, progress = restore(resume_from, model, optimizer, best_state, shufflers)
    history: list[EpochRecord] = []

    patience = [c.patience for c in configs]
    for epoch in range(first_epoch, shared.epochs):
        if not any(progress.active):
            break
        schedule = EpochSchedule.at(epoch, configs, target_device)
        model.set_temperature(torch.tensor(schedule.temperature, device=target_device))
        trained = tuple(progress.active)
        dropout_keys = epoch_dropout_keys(
            model.seeds, epoch, tensors.steps, len(model.activations), target_device
        )
        train_loss, nonfinite = _train_epoch(
            model, tensors, optimizer, shufflers, dropout_keys, trained, schedule, task
        )
        validation = _validate(model, tensors, task)
        improved = progress.update(
            epoch,
            validation.loss.tolist(),
            validation.metric.tolist(),
            nonfinite.tolist(),
            patience,
        )
        _keep_improved(best_state, model, improved)
        record = _epoch_record(epoch, task, schedule, trained, train_loss, validation, progress)
        stopped = list(stop(epoch, record)) if stop is not None else []
        if stop is not None:
            for member in stopped:
                progress.stop(member)
            record = dataclasses.replace(record, active=tuple(progress.active))
        due = checkpoint_every and (
            (epoch + 1) % checkpoint_every == 0 or epoch + 1 == shared.epochs
        )
        if due or stopped:
            checkpoint = snapshot(epoch + 1, model, optimizer, best_state, progress, shufflers)
            record = dataclasses.replace(record, checkpoint=checkpoint)
        history.append(record)
        if on_epoch is not None:
            on_epoch(epoch, record)

    model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        members=progress.outcomes(),
        history=tuple(history),
        device=str(target_device),
        seconds=time.perf_counter() - started,
    )


@torch.no_grad()
def predict(
    model: MLP, inputs: Sequence[np.ndarray | torch.Tensor], *, task: Task
) -> list[np.ndarray]:
    """Eval-mode predictions per member: ``[n_k]`` values or ``[n_k, C]`` probabilities.

    ``inputs`` holds one ``[n_k, features]`` array per member (row counts may differ).
    """
    if len(inputs) != model.members:
        raise ValueError(f"got inputs for {len(inputs)} members, model has {model.members}")
    device = next(model.parameters()).device
    x = stack_padded(inputs, model.spec["in_features"], torch.float32, device)
    was_training = model.training
    model.eval()
    parts = [model(x[:, start : start + _VAL_CHUNK]) for start in range(0, x.shape[1], _VAL_CHUNK)]
    model.train(was_training)
    output = torch.cat(parts, dim=1)
    output = output.squeeze(-1) if task == "regression" else torch.softmax(output, dim=-1)
    return [output[k, : len(inputs[k])].double().cpu().numpy() for k in range(model.members)]
