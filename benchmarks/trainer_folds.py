"""Ten folds of power_plant trained three ways, against the floors of their real work.

Part of the training-speed benchmark (``benchmarks/trainer.py``, which runs it and
explains the figures): the batched ``fit``, sequential fits and a conventional
DataLoader loop; the epoch's matrix products alone and with ActMix's element-wise
kernels (the floors); the batched epoch at 1 and 2 threads; and the first ``fit``
of a fresh process, with and without inductor's on-disk cache.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from actmix import (
    MLP,
    FoldArrays,
    MemberData,
    TemperatureSchedule,
    TrainConfig,
    fit,
    load_dataset,
    make_folds,
    prepare_fold,
)
from actmix._dropout import dropout_mask, epoch_dropout_keys
from actmix._kernels import kernel_cache
from actmix.activations.actmix import (
    _alpha_layout,
    _mix_backward_recomputing_dropped,
    _mix_dropped,
    _mix_forward,
    _omega_tensor,
)

FOLDS = 10
# the seed's ActMix configuration (its README and defaults), trained for one epoch
SEED_WIDTHS = (128, 128)
SEED_DROPOUT = 0.1
SEED_ACTIVATION = {"relu_bias": 1.5, "omega_0": 1.0}
SEED_TRAIN = TrainConfig(
    epochs=1,
    batch_size=128,
    lr=1e-3,
    weight_decay=1e-4,
    grad_clip=0.5,
    temperature=TemperatureSchedule(initial=1.0, final=0.01, anneal_epochs=150),
)
# the seed's Lightning trainer on this configuration, measured on these machines
LIGHTNING_SAMPLES_PER_S = 7_600


@dataclass(frozen=True, slots=True)
class Settings:
    """How long to measure: full run or --quick smoke run."""

    windows: int  # timed windows per model, interleaved
    window_seconds: float  # rough length of one window
    fold_repeats: int  # timed repeats of each way to train the folds (median)
    timed_folds: int  # folds timed for the sequential and DataLoader ways


FULL = Settings(windows=9, window_seconds=0.6, fold_repeats=3, timed_folds=FOLDS)
QUICK = Settings(windows=3, window_seconds=0.15, fold_repeats=1, timed_folds=2)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- 2. ten folds of power_plant, three ways --------------------------------------------------


def _fold_arrays() -> list[FoldArrays]:
    dataset = load_dataset("power_plant")
    splits = make_folds(dataset, k=FOLDS, seed=0)
    return [prepare_fold(dataset, fold) for fold in splits.folds]


def _member(arrays: FoldArrays, seed: int) -> MemberData:
    return MemberData(
        x_train=arrays.x_train,
        y_train=arrays.y_train,
        x_val=arrays.x_val,
        y_val=arrays.y_val,
        seed=seed,
        target_std=arrays.target_std,
    )


def _seed_mlp(in_features: int, members: int, seeds: Sequence[int], **options: Any) -> MLP:
    return MLP(
        in_features,
        1,
        SEED_WIDTHS,
        "actmix",
        dropout=SEED_DROPOUT,
        members=members,
        activation_options=SEED_ACTIVATION,
        seed=list(seeds),
        **options,
    )


def train_batched(folds: Sequence[FoldArrays], device: torch.device) -> None:
    """(a) All folds as one ``len(folds)``-member network, one ``fit`` call."""
    widths = [arrays.n_features for arrays in folds]
    model = _seed_mlp(max(widths), len(folds), range(len(folds)), member_inputs=widths)
    members = [_member(arrays, seed) for seed, arrays in enumerate(folds)]
    fit(model, members, SEED_TRAIN, task="regression", device=device.type)


def train_sequential(folds: Sequence[FoldArrays], device: torch.device) -> None:
    """(b) One single-member ``fit`` call per fold."""
    for seed, arrays in enumerate(folds):
        model = _seed_mlp(arrays.n_features, 1, [seed])
        fit(model, [_member(arrays, seed)], SEED_TRAIN, task="regression", device=device.type)


def train_dataloader(folds: Sequence[FoldArrays], device: torch.device) -> None:
    """(c) The conventional loop: DataLoader batches, AdamW, ``.item()`` metrics per batch."""
    config = SEED_TRAIN
    for seed, arrays in enumerate(folds):
        torch.manual_seed(seed)  # dropout masks come from the global generator here
        train_loader = DataLoader(
            TensorDataset(torch.from_numpy(arrays.x_train), torch.from_numpy(arrays.y_train)),
            batch_size=config.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
        )
        val_loader = DataLoader(
            TensorDataset(torch.from_numpy(arrays.x_val), torch.from_numpy(arrays.y_val)),
            batch_size=config.batch_size,
        )
        model = _seed_mlp(arrays.n_features, 1, [seed]).to(device)
        decayed, not_decayed = model.parameter_groups()
        optimizer = torch.optim.AdamW(
            [
                {"params": decayed, "weight_decay": config.weight_decay},
                {"params": not_decayed, "weight_decay": 0.0},
            ],
            lr=config.lr,
        )
        for _epoch in range(config.epochs):
            model.set_temperature(config.temperature.initial)
            model.train()
            train_losses, train_errors = [], []
            for x, y in train_loader:
                x, y = x.to(device), y.to(device)
                prediction = model(x).squeeze(-1)
                loss = F.mse_loss(prediction, y)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                train_losses.append(loss.item())
                train_errors.append((prediction - y).abs().mean().item())
            model.eval()
            val_losses = []
            with torch.no_grad():
                for x, y in val_loader:
                    x, y = x.to(device), y.to(device)
                    val_losses.append(F.mse_loss(model(x).squeeze(-1), y).item())


def _median_seconds(run: Callable[[], None], repeats: int, device: torch.device) -> float:
    seconds = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        run()
        synchronize(device)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def matmul_floor(folds: Sequence[FoldArrays], device: torch.device, repeats: int) -> float:
    """Seconds of the batched epoch's matrix products alone: same shapes, same step count.

    Per training step a forward ``baddbmm`` per layer and, backward, one ``bmm`` for each
    weight gradient and one for each layer's input gradient (not the first layer's); per
    validation batch the forward products. Inputs are random: the values do not change
    the time of a product.
    """
    members, batch = len(folds), SEED_TRAIN.batch_size
    sizes = [max(arrays.n_features for arrays in folds), *SEED_WIDTHS, 1]
    train_steps = -(-max(len(a.y_train) for a in folds) // batch)
    val_steps = -(-max(len(a.y_val) for a in folds) // batch)
    generator = torch.Generator().manual_seed(0)

    def tensor(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device)

    weights = [tensor(members, a, b) for a, b in itertools.pairwise(sizes)]
    biases = [tensor(members, 1, b) for b in sizes[1:]]
    inputs = [tensor(members, batch, a) for a in sizes[:-1]]
    grads = [tensor(members, batch, b) for b in sizes[1:]]

    def epoch() -> None:
        for _ in range(train_steps):
            for x, w, b in zip(inputs, weights, biases, strict=True):
                torch.baddbmm(b, x, w)
            for layer, (x, w, g) in enumerate(zip(inputs, weights, grads, strict=True)):
                torch.bmm(x.transpose(1, 2), g)
                if layer:
                    torch.bmm(g, w.transpose(1, 2))
        for _ in range(val_steps):
            for x, w, b in zip(inputs, weights, biases, strict=True):
                torch.baddbmm(b, x, w)

    epoch()  # warm-up
    return _median_seconds(epoch, repeats, device)


def activation_floor(folds: Sequence[FoldArrays], device: torch.device, repeats: int) -> float:
    """Seconds of the batched epoch's ActMix kernels alone: same shapes, same call count.

    Per training step and hidden layer the fused forward (mixture and dropout) and the
    backward kernel (``grad_z``, ``grad_alpha`` and the recomputed mixture); per hidden
    layer one validation forward over every validation row. With the matrix products
    this is the work an epoch cannot avoid; the rest is per-step overhead.
    """
    members, batch = len(folds), SEED_TRAIN.batch_size
    train_steps = -(-max(len(a.y_train) for a in folds) // batch)
    val_rows = max(len(a.y_val) for a in folds)
    basis = ("sin", "tanh", "relu", "identity")
    generator = torch.Generator().manual_seed(0)
    calls = []
    for width in SEED_WIDTHS:
        z = torch.randn(members, batch, width, generator=generator).to(device)
        z_val = torch.randn(members, val_rows, width, generator=generator).to(device)
        logits = torch.randn(members, width, len(basis), generator=generator)
        alpha_t = _alpha_layout(torch.softmax(logits, dim=-1)).to(device)
        omega = _omega_tensor(1.0, z.dtype, device)
        keys = epoch_dropout_keys(range(members), 0, 1, 1, device)[0, :, 0]
        mask = dropout_mask(keys, SEED_DROPOUT, z)
        calls.append((z, z_val, alpha_t, omega, mask))

    def epoch() -> None:
        for _ in range(train_steps):
            for z, _, alpha_t, omega, mask in calls:
                kernel_cache.run(_mix_dropped, basis, z, alpha_t, omega, *mask, basis)
                kernel_cache.run(
                    _mix_backward_recomputing_dropped, basis, z, z, alpha_t, omega, *mask, basis
                )
        for _, z_val, alpha_t, omega, _ in calls:
            kernel_cache.run(_mix_forward, basis, z_val, alpha_t, omega, basis)

    epoch()  # warm-up, compiles
    return _median_seconds(epoch, repeats, device)


def _batched_with_threads(threads: int) -> Callable[[Sequence[FoldArrays], torch.device], None]:
    def train(folds: Sequence[FoldArrays], device: torch.device) -> None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            train_batched(folds, device)
        finally:
            torch.set_num_threads(previous)

    return train


def benchmark_folds(settings: Settings, device: torch.device) -> dict[str, Any]:
    """Samples/s (training rows of one epoch over the wall time, validation included).

    The ways take turns repeat by repeat, so a slow patch of a shared machine falls on
    all of them. With 2 or more CPUs the batched epoch is also timed with 2 threads.
    """
    folds = _fold_arrays()
    subset = folds[: settings.timed_folds]
    # (function, folds timed, folds of the untimed warm-up run: same shapes, compiles once)
    ways = {
        "batched_fit": (train_batched, folds, folds),
        "sequential_fit": (train_sequential, subset, folds[:1]),
        "dataloader_loop": (train_dataloader, subset, folds[:1]),
    }
    if (os.cpu_count() or 1) >= 2 and device.type == "cpu":
        ways["batched_fit_2_threads"] = (_batched_with_threads(2), folds, folds)
    for train, _, warmup in ways.values():
        train(warmup, device)
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(settings.fold_repeats):
        for name, (train, timed, _) in ways.items():
            run = functools.partial(train, timed, device)
            seconds[name].append(_median_seconds(run, 1, device))
    results: dict[str, Any] = {}
    for name, (_, timed, _) in ways.items():
        rows = sum(len(arrays.y_train) for arrays in timed)
        median = statistics.median(seconds[name])
        results[name] = {
            "folds": len(timed),
            "train_rows": rows,
            "seconds": median,
            "seconds_repeats": seconds[name],
            "samples_per_s": rows / median,
        }
    batched = results["batched_fit"]["samples_per_s"]
    results["batched_vs_sequential"] = batched / results["sequential_fit"]["samples_per_s"]
    results["batched_vs_dataloader"] = batched / results["dataloader_loop"]["samples_per_s"]
    results["batched_vs_lightning"] = batched / LIGHTNING_SAMPLES_PER_S
    results["lightning_samples_per_s"] = LIGHTNING_SAMPLES_PER_S
    if "batched_fit_2_threads" in results:
        results["two_threads_speedup"] = (
            results["batched_fit"]["seconds"] / results["batched_fit_2_threads"]["seconds"]
        )
    floor = matmul_floor(folds, device, settings.fold_repeats)
    kernels = activation_floor(folds, device, settings.fold_repeats)
    results["matmul_floor_seconds"] = floor
    results["activation_floor_seconds"] = kernels
    results["efficiency"] = floor / results["batched_fit"]["seconds"]
    results["efficiency_with_activation"] = (floor + kernels) / results["batched_fit"]["seconds"]
    return results


_FIRST_FIT = """
import json, sys, time, torch
sys.path.insert(0, {here!r})
import trainer_folds
torch.set_num_threads({threads})
folds = trainer_folds._fold_arrays()
device = torch.device({device!r})
seconds = []
for _ in range(2):
    started = time.perf_counter()
    trainer_folds.train_batched(folds, device)
    seconds.append(time.perf_counter() - started)
print(json.dumps(seconds))
"""


def first_fit(device: torch.device) -> dict[str, Any]:
    """The first and second batched ``fit`` of a fresh process (what a new trial pays),
    once with an empty inductor cache (compiling every kernel) and once with this
    machine's cache (filled by the runs before)."""
    code = _FIRST_FIT.format(
        here=str(Path(__file__).resolve().parent),
        threads=torch.get_num_threads(),
        device=device.type,
    )
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="inductor-cache-") as empty:
        for name, extra in (
            ("empty_cache", {"TORCHINDUCTOR_CACHE_DIR": empty}),
            ("warm_cache", {}),
        ):
            done = subprocess.run(
                [sys.executable, "-c", code],
                env={**os.environ, **extra},
                capture_output=True,
                text=True,
                check=True,
            )
            first, second = json.loads(done.stdout.strip().splitlines()[-1])
            results[name] = {"first_fit_s": first, "second_fit_s": second}
    return results
