"""``fit``: train every member of a batched MLP on its own data, in one loop.

Data lives in tensors on the device; minibatches are index slices; metrics are
computed once per epoch on whole validation tensors. Member ``k`` draws its own
minibatches (and dropout masks) from its own generator, so it trains exactly as
a single-member run with the same seed would.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    best_val_metric: tuple[float, ...]
    trained: tuple[bool, ...]  # members that trained this epoch
    active: tuple[bool, ...]  # members that will train next epoch
    temperature: float
    entropy: tuple[float, ...] | None
    entropy_weight: float
    lr: float
    checkpoint: dict[str, Any] | None = None  # see fit(checkpoint_every=...)


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


@dataclass
class _Progress:
    """Per-member bookkeeping of early stopping and divergence (plain values, checkpointable)."""

    best_loss: list[float]
    best_metric: list[float]
    best_epoch: list[int]
    epochs_run: list[int]
    active: list[bool]
    diverged: dict[int, tuple[int, str]]

    @classmethod
    def fresh(cls, members: int) -> _Progress:
        return cls(
            [math.inf] * members,
            [math.nan] * members,
            [0] * members,
            [0] * members,
            [True] * members,
            {},
        )

    def to_dict(self) -> dict[str, Any]:
        # copies: the live lists keep changing after a snapshot is taken
        return {
            "best_loss": list(self.best_loss),
            "best_metric": list(self.best_metric),
            "best_epoch": list(self.best_epoch),
            "epochs_run": list(self.epochs_run),
            "active": list(self.active),
            "diverged": [[k, epoch, reason] for k, (epoch, reason) in self.diverged.items()],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> _Progress:
        diverged = {int(k): (int(epoch), str(reason)) for k, epoch, reason in state["diverged"]}
        return cls(
            list(state["best_loss"]),
            list(state["best_metric"]),
            list(state["best_epoch"]),
            list(state["epochs_run"]),
            list(state["active"]),
            diverged,
        )

    def update(
        self,
        epoch: int,
        val_loss: list[float],
        val_metric: list[float],
        nonfinite: list[bool],
        patience: int,
    ) -> list[bool]:
        """Advance early stopping by one epoch; returns which members improved."""
        improved = [False] * len(self.active)
        for k, running in enumerate(self.active):
            if not running:
                continue
            self.epochs_run[k] = epoch + 1
            if nonfinite[k] or not math.isfinite(val_loss[k]):
                reason = (
                    "non-finite training loss" if nonfinite[k] else "non-finite validation loss"
                )
                self.diverged[k] = (epoch, reason)
                self.active[k] = False
            elif val_loss[k] < self.best_loss[k]:
                self.best_loss[k], self.best_metric[k] = val_loss[k], val_metric[k]
                self.best_epoch[k] = epoch
                improved[k] = True
            elif epoch - self.best_epoch[k] >= patience:
                self.active[k] = False
        return improved

    def outcomes(self) -> tuple[MemberOutcome, ...]:
        return tuple(
            MemberOutcome(
                best_epoch=self.best_epoch[k],
                epochs_run=self.epochs_run[k],
                best_val_loss=self.best_loss[k],
                best_val_metric=self.best_metric[k],
                diverged_epoch=self.diverged[k][0] if k in self.diverged else None,
                diverged_reason=self.diverged[k][1] if k in self.diverged else None,
            )
            for k in range(len(self.active))
        )


def fit(
    model: MLP,
    data: Sequence[MemberData],
    config: TrainConfig,
    *,
    task: Task,
    on_epoch: Callable[[int, EpochRecord], None] | None = None,
    device: Device = "auto",
    checkpoint_every: int = 0,
    resume_from: Mapping[str, Any] | None = None,
) -> FitResult:
    """Train ``model`` (all members at once) and restore each member's best epoch.

    Early stopping watches each member's inner-validation loss with its own
    patience. A member whose loss turns non-finite is marked diverged and frozen
    at its best state; the others continue.

    With ``checkpoint_every=n``, every n-th epoch's record carries ``checkpoint``:
    a dict of tensors and plain values (``torch.save``-able, loadable with
    ``weights_only=True``). Passing it back as ``resume_from`` continues training
    exactly where it stopped: same weights, optimiser moments, early-stopping
    counters and random streams.
    """
    started = time.perf_counter()
    _check_data(model, data, task)
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
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
    valid = (torch.arange(steps * batch)[None, :] < torch.tensor(train_rows)[:, None]).to(
        target_device
    )
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
    progress = _Progress.fresh(members)
    first_epoch = 0
    if resume_from is not None:
        first_epoch = _restore(
            resume_from, model, optimizer, best_state, shufflers, dropout_generators
        )
        progress = _Progress.from_dict(resume_from["progress"])
    history: list[EpochRecord] = []

    for epoch in range(first_epoch, config.epochs):
        active = progress.active
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
            # members without a minibatch this step draw no dropout noise, as in a single run
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
        was_active = list(active)
        improved = progress.update(
            epoch, val_loss.tolist(), val_metric.tolist(), nonfinite.tolist(), config.patience
        )
        if any(improved):
            chosen = torch.tensor(improved, device=target_device)
            for name, tensor in model.state_dict().items():
                view = chosen.view(-1, *([1] * (tensor.dim() - 1)))
                best_state[name] = torch.where(view, tensor.detach(), best_state[name])

        checkpoint = None
        if checkpoint_every and ((epoch + 1) % checkpoint_every == 0 or epoch + 1 == config.epochs):
            checkpoint = _snapshot(
                epoch + 1, model, optimizer, best_state, progress, shufflers, dropout_generators
            )
        record = EpochRecord(
            epoch=epoch,
            metric="rmse" if task == "regression" else "accuracy",
            train_loss=tuple((loss_sum / torch.tensor(train_rows, device=target_device)).tolist()),
            val_loss=tuple(val_loss.tolist()),
            val_metric=tuple(val_metric.tolist()),
            best_val_metric=tuple(progress.best_metric),
            trained=tuple(was_active),
            active=tuple(progress.active),
            temperature=temperature,
            entropy=None if entropy is None else tuple(entropy.tolist()),
            entropy_weight=entropy_weight,
            lr=lr,
            checkpoint=checkpoint,
        )
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


def _snapshot(
    next_epoch: int,
    model: MLP,
    optimizer: MemberAdamW,
    best_state: dict[str, torch.Tensor],
    progress: _Progress,
    shufflers: Sequence[torch.Generator],
    dropout_generators: Sequence[torch.Generator],
) -> dict[str, Any]:
    def cpu(tensors):
        return [t.detach().cpu().clone() for t in tensors]

    return {
        "epoch": next_epoch,
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "best_state": {k: v.cpu().clone() for k, v in best_state.items()},
        "optimizer": {
            "steps": optimizer.steps.cpu().clone(),
            "exp_avg": cpu(optimizer.exp_avg),
            "exp_avg_sq": cpu(optimizer.exp_avg_sq),
        },
        "progress": progress.to_dict(),
        "shufflers": [g.get_state() for g in shufflers],
        "dropout_generators": [g.get_state() for g in dropout_generators],
    }


def _restore(
    state: Mapping[str, Any],
    model: MLP,
    optimizer: MemberAdamW,
    best_state: dict[str, torch.Tensor],
    shufflers: Sequence[torch.Generator],
    dropout_generators: Sequence[torch.Generator],
) -> int:
    """Load a ``_snapshot`` into the live objects; returns the epoch to continue from."""
    if len(state["shufflers"]) != len(shufflers):
        raise ValueError(
            f"checkpoint has {len(state['shufflers'])} members, the model has {len(shufflers)}"
        )
    device = optimizer.steps.device
    model.load_state_dict(state["model"])
    for name, tensor in state["best_state"].items():
        best_state[name] = tensor.to(device)
    optimizer.steps.copy_(state["optimizer"]["steps"])
    for live, saved in zip(optimizer.exp_avg, state["optimizer"]["exp_avg"], strict=True):
        live.copy_(saved)
    for live, saved in zip(optimizer.exp_avg_sq, state["optimizer"]["exp_avg_sq"], strict=True):
        live.copy_(saved)
    for generator, saved in zip(shufflers, state["shufflers"], strict=True):
        generator.set_state(saved)
    for generator, saved in zip(dropout_generators, state["dropout_generators"], strict=True):
        generator.set_state(saved)
    return int(state["epoch"])
