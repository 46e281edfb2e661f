"""``fit``: train every member of a batched MLP on its own data, in one loop.

Data lives in tensors on the device; minibatches are index slices; metrics are
computed once per epoch on whole validation tensors. Member ``k`` draws its own
minibatches (and dropout masks) from its own generator, so it trains exactly as
a single-member run with the same seed would.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from actmix.config import TrainConfig
from actmix.mlp import MLP
from actmix.optim import MemberAdamW
from actmix.schedules import entropy_weight_at, learning_rate_at, temperature_at
from actmix.types import Task

__all__ = [
    "EpochRecord",
    "FitResult",
    "MemberData",
    "MemberOutcome",
    "fit",
    "predict",
    "resolve_device",
]

Device = str  # "auto" | "cpu" | "cuda" | "cuda:N"
_VAL_CHUNK = 8192  # rows per member per validation forward pass (bounds peak memory)
_DROPOUT_STREAM = 1_000_003  # offsets a member's dropout generator from its shuffling one


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
    active: tuple[bool, ...]
    temperature: float
    entropy: tuple[float, ...] | None
    entropy_weight: float
    lr: float


@dataclass(frozen=True, slots=True)
class MemberOutcome:
    best_epoch: int
    epochs_run: int
    best_val_loss: float
    best_val_metric: float
    diverged_epoch: int | None = None
    diverged_reason: str | None = None

    @property
    def diverged(self) -> bool:
        return self.diverged_epoch is not None


@dataclass(frozen=True, slots=True)
class FitResult:
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


def _stack(
    arrays: Sequence[np.ndarray | torch.Tensor], features: int | None, dtype, device
) -> torch.Tensor:
    """Stack per-member arrays into ``[M, rows_max(, features)]``, zero-padded."""
    tensors = [torch.as_tensor(a) for a in arrays]
    rows = max(t.shape[0] for t in tensors)
    shape = (len(tensors), rows) if features is None else (len(tensors), rows, features)
    out = torch.zeros(shape, dtype=dtype)
    for k, t in enumerate(tensors):
        if features is None:
            out[k, : t.shape[0]] = t
        else:
            out[k, : t.shape[0], : t.shape[1]] = t
    return out.to(device)


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
def predict(
    model: MLP, inputs: Sequence[np.ndarray | torch.Tensor], *, task: Task
) -> list[np.ndarray]:
    """Eval-mode predictions per member: ``[n_k]`` values or ``[n_k, C]`` probabilities.

    ``inputs`` holds one ``[n_k, features]`` array per member (row counts may differ).
    """
    if len(inputs) != model.members:
        raise ValueError(f"got inputs for {len(inputs)} members, model has {model.members}")
    device = next(model.parameters()).device
    x = _stack(inputs, model.spec["in_features"], torch.float32, device)
    was_training = model.training
    model.eval()
    parts = [model(x[:, start : start + _VAL_CHUNK]) for start in range(0, x.shape[1], _VAL_CHUNK)]
    model.train(was_training)
    output = torch.cat(parts, dim=1)
    output = output.squeeze(-1) if task == "regression" else torch.softmax(output, dim=-1)
    return [output[k, : len(inputs[k])].double().cpu().numpy() for k in range(model.members)]


def fit(
    model: MLP,
    data: Sequence[MemberData],
    config: TrainConfig,
    *,
    task: Task,
    on_epoch: Callable[[int, EpochRecord], None] | None = None,
    device: Device = "auto",
) -> FitResult:
    """Train ``model`` (all members at once) and restore each member's best epoch.

    Early stopping watches each member's inner-validation loss with its own
    patience. A member whose loss turns non-finite is marked diverged and frozen
    at its best state; the others continue.
    """
    started = time.perf_counter()
    _check_data(model, data, task)
    target_device = resolve_device(device)
    model.to(target_device)
    members, in_features = model.members, model.spec["in_features"]
    y_dtype = torch.float32 if task == "regression" else torch.int64

    x_train = _stack([d.x_train for d in data], in_features, torch.float32, target_device)
    y_train = _stack([d.y_train for d in data], None, y_dtype, target_device)
    x_val = _stack([d.x_val for d in data], in_features, torch.float32, target_device)
    y_val = _stack([d.y_val for d in data], None, y_dtype, target_device)
    train_rows = [len(d.y_train) for d in data]
    val_rows = torch.tensor([len(d.y_val) for d in data], device=target_device)
    scale = torch.tensor([d.target_std for d in data], device=target_device)

    batch = config.batch_size
    member_steps = [math.ceil(n / batch) for n in train_rows]
    steps = max(member_steps)
    member_index = torch.arange(members, device=target_device)[:, None]
    shufflers = [torch.Generator().manual_seed(d.seed) for d in data]
    dropout_generators = [
        torch.Generator(device=target_device).manual_seed(d.seed + _DROPOUT_STREAM) for d in data
    ]

    decayed, not_decayed = model.parameter_groups()
    optimizer = MemberAdamW(
        decayed,
        not_decayed,
        members=members,
        weight_decay=config.weight_decay,
        grad_clip=config.grad_clip,
    )
    best_state = {name: t.detach().clone() for name, t in model.state_dict().items()}
    best_loss = [math.inf] * members
    best_metric = [math.nan] * members
    best_epoch = [0] * members
    epochs_run = [0] * members
    diverged: dict[int, tuple[int, str]] = {}
    active = [True] * members
    history: list[EpochRecord] = []

    for epoch in range(config.epochs):
        if not any(active):
            break
        temperature = temperature_at(epoch, config.temperature)
        entropy_weight = entropy_weight_at(epoch, config.entropy)
        lr = learning_rate_at(
            epoch, lr=config.lr, epochs=config.epochs, eta_min_factor=config.eta_min_factor
        )
        model.set_temperature(temperature)
        model.train()

        # each member's permutation of its own rows, padded to steps * batch
        order = torch.zeros(members, steps * batch, dtype=torch.int64)
        for k in range(members):
            if active[k]:
                order[k, : train_rows[k]] = torch.randperm(train_rows[k], generator=shufflers[k])
        order = order.to(target_device)
        valid = (torch.arange(steps * batch)[None, :] < torch.tensor(train_rows)[:, None]).to(
            target_device
        )
        stepping_by_step = torch.tensor(
            [[active[k] and s < member_steps[k] for k in range(members)] for s in range(steps)],
            device=target_device,
        )
        loss_sum = torch.zeros(members, device=target_device)
        nonfinite = torch.zeros(members, dtype=torch.bool, device=target_device)

        for step in range(steps):
            columns = slice(step * batch, (step + 1) * batch)
            index = order[:, columns]
            mask = valid[:, columns].to(torch.float32)
            stepping = stepping_by_step[step]
            generators = [
                g if active[k] and step < member_steps[k] else None
                for k, g in enumerate(dropout_generators)
            ]
            output = model(x_train[member_index, index], generators=generators)
            row_loss = _row_loss(output, y_train[member_index, index], task)
            counts = mask.sum(dim=1)
            data_loss = (row_loss * mask).sum(dim=1) / counts.clamp(min=1.0)
            total = data_loss
            if entropy_weight > 0:
                entropy = model.entropy()
                if entropy is not None:
                    total = total + entropy_weight * entropy
            regularization = model.regularization()
            if regularization is not None:
                total = total + regularization
            optimizer.zero_grad()
            total.sum().backward()
            optimizer.step(stepping, lr)
            loss_sum += torch.where(stepping, data_loss.detach() * counts, 0.0)
            nonfinite |= stepping & ~torch.isfinite(total.detach())

        model.eval()
        with torch.no_grad():
            val_loss, val_metric = _evaluate(model, x_val, y_val, val_rows, task, scale)
            entropy = model.entropy()
        train_loss = (loss_sum / torch.tensor(train_rows, device=target_device)).tolist()
        val_loss_list, val_metric_list = val_loss.tolist(), val_metric.tolist()
        nonfinite_list = nonfinite.tolist()

        improved = [False] * members
        for k in range(members):
            if not active[k]:
                continue
            epochs_run[k] = epoch + 1
            if nonfinite_list[k] or not math.isfinite(val_loss_list[k]):
                reason = (
                    "non-finite training loss"
                    if nonfinite_list[k]
                    else "non-finite validation loss"
                )
                diverged[k] = (epoch, reason)
                active[k] = False
            elif val_loss_list[k] < best_loss[k]:
                best_loss[k], best_metric[k], best_epoch[k] = (
                    val_loss_list[k],
                    val_metric_list[k],
                    epoch,
                )
                improved[k] = True
            elif epoch - best_epoch[k] >= config.patience:
                active[k] = False
        if any(improved):
            chosen = torch.tensor(improved, device=target_device)
            for name, tensor in model.state_dict().items():
                view = chosen.view(-1, *([1] * (tensor.dim() - 1)))
                best_state[name] = torch.where(view, tensor.detach(), best_state[name])

        record = EpochRecord(
            epoch=epoch,
            metric="rmse" if task == "regression" else "accuracy",
            train_loss=tuple(train_loss),
            val_loss=tuple(val_loss_list),
            val_metric=tuple(val_metric_list),
            active=tuple(k not in diverged and epochs_run[k] == epoch + 1 for k in range(members)),
            temperature=temperature,
            entropy=None if entropy is None else tuple(entropy.tolist()),
            entropy_weight=entropy_weight,
            lr=lr,
        )
        history.append(record)
        if on_epoch is not None:
            on_epoch(epoch, record)

    model.load_state_dict(best_state)
    model.eval()
    outcomes = tuple(
        MemberOutcome(
            best_epoch=best_epoch[k],
            epochs_run=epochs_run[k],
            best_val_loss=best_loss[k],
            best_val_metric=best_metric[k],
            diverged_epoch=diverged.get(k, (None, None))[0],
            diverged_reason=diverged.get(k, (None, None))[1],
        )
        for k in range(members)
    )
    return FitResult(
        members=outcomes,
        history=tuple(history),
        device=str(target_device),
        seconds=time.perf_counter() - started,
    )
