"""Training-speed benchmark: trainable activations vs ReLU per step, three ways to train 10 folds.

1. One training step (forward, backward, ``MemberAdamW.step``) of a ReLU MLP and an
   ActMix MLP, widths 256-256-256, 16 inputs, batch 256 and 4096, one member: samples/s
   (median over interleaved timed windows) and training memory. The same at batch 256
   for APA, AGLU, PRePU and DiTAC (default options), each as a ratio to ReLU.
2. One epoch of 10-fold CV on power_plant with the seed's ActMix configuration
   (widths 128-128, batch 128): (a) ``fit`` with the 10 folds as one 10-member network,
   (b) 10 sequential single-member ``fit`` calls, (c) a conventional PyTorch loop
   (``DataLoader``, ``torch.optim.AdamW``, ``.item()`` per batch, validation DataLoader).
3. PASS/FAIL against the speed and memory targets (see benchmarks/README.md).

    .venv/bin/python benchmarks/trainer.py [--quick] [--threads N] [--out PATH]

``--out`` defaults to benchmarks/results/trainer.json.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import platform
import statistics
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
from actmix.activations.actmix import COMPILE_ENV
from actmix.optim import MemberAdamW
from actmix.trainer import resolve_device

STEP_WIDTHS = (256, 256, 256)
STEP_INPUTS = 16
STEP_BATCHES = (256, 4096)
DROPOUT = 0.1  # the default configuration's, for the second memory figure
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
TRAINABLE = ("apa", "aglu", "prepu", "ditac")  # the seed papers' activations
TRAINABLE_BATCH = 256
TARGETS = {
    "ditac_step_ratio_max": 3.0,
    "step_ratio_max": 1.3,
    "memory_ratio_max": 1.3,
    "batched_vs_sequential_min": 4.0,
    "batched_vs_dataloader_min": 5.5,
    # the matrix products alone over the batched epoch: what is not overhead
    "efficiency_min": 0.6,
}


@dataclass(frozen=True, slots=True)
class Settings:
    """How long to measure: full run or --quick smoke run."""

    windows: int  # timed windows per model, interleaved
    window_seconds: float  # rough length of one window
    fold_repeats: int  # timed repeats of each way to train the folds (median)
    timed_folds: int  # folds timed for the sequential and DataLoader ways


FULL = Settings(windows=9, window_seconds=0.6, fold_repeats=3, timed_folds=FOLDS)
QUICK = Settings(windows=3, window_seconds=0.15, fold_repeats=1, timed_folds=2)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- 1. one training step: ReLU vs ActMix -----------------------------------------------------


def _step_function(
    activation: str, batch: int, device: torch.device, *, dropout: float = 0.0
) -> tuple[Callable[[], None], MLP, MemberAdamW, torch.Tensor]:
    """A closure running one full training step; also returns model, optimizer and input."""
    model = MLP(STEP_INPUTS, 1, STEP_WIDTHS, activation, dropout=dropout, members=1, seed=0)
    model = model.to(device)
    decayed, not_decayed = model.parameter_groups()
    optimizer = MemberAdamW(decayed, not_decayed, members=1, weight_decay=1e-4, grad_clip=0.5)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, batch, STEP_INPUTS, generator=generator).to(device)
    y = torch.randn(1, batch, 1, generator=generator).to(device)
    stepping = torch.ones(1, dtype=torch.bool, device=device)

    def step() -> None:
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step(stepping, 1e-3)

    return step, model, optimizer, x


def _interleaved_windows(
    steps: dict[str, Callable[[], None]], settings: Settings, device: torch.device
) -> dict[str, list[float]]:
    """Seconds per step in each timed window; the models take turns window by window."""
    for step in steps.values():  # warm-up, includes any compilation
        for _ in range(3):
            step()
    _synchronize(device)
    started = time.perf_counter()
    next(iter(steps.values()))()
    _synchronize(device)
    per_window = max(2, int(settings.window_seconds / (time.perf_counter() - started)))
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(settings.windows):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(per_window):
                step()
            _synchronize(device)
            seconds[name].append((time.perf_counter() - started) / per_window)
    return seconds


def _storage_bytes(tensors: Sequence[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors`` (views and repeats count once)."""
    storages = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def _training_memory(
    model: MLP, optimizer: MemberAdamW, x: torch.Tensor, device: torch.device
) -> dict[str, int]:
    """What one step holds: saved activations, parameters, gradients, Adam state.

    On CUDA the allocator's peak over one step is reported too.
    """
    saved: list[torch.Tensor] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor)
        return tensor

    if device.type == "cuda":
        _synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(x).square().mean()
    # the input batch is data, and parameters are counted below
    parameters = list(model.parameters())
    counted = {t.untyped_storage().data_ptr() for t in [x, *parameters]}
    saved = [t for t in saved if t.untyped_storage().data_ptr() not in counted]
    optimizer.zero_grad()
    loss.backward()
    memory = {
        "saved_for_backward": _storage_bytes(saved),
        "parameters": _storage_bytes(parameters),
        "gradients": _storage_bytes([p.grad for p in parameters if p.grad is not None]),
        "optimizer_state": _storage_bytes([optimizer.exp_avg, optimizer.exp_avg_sq]),
    }
    memory["training_total"] = sum(memory.values())
    if device.type == "cuda":
        _synchronize(device)
        memory["cuda_peak_allocated"] = torch.cuda.max_memory_allocated(device)
    return memory


def benchmark_steps(settings: Settings, device: torch.device) -> dict[str, Any]:
    """ReLU vs ActMix: per-step time, samples/s and training memory for each batch size."""
    results: dict[str, Any] = {}
    for batch in STEP_BATCHES:
        built = {name: _step_function(name, batch, device) for name in ("relu", "actmix")}
        seconds = _interleaved_windows({n: b[0] for n, b in built.items()}, settings, device)
        entry: dict[str, Any] = {}
        for name, (_, model, optimizer, x) in built.items():
            median = statistics.median(seconds[name])
            entry[name] = {
                "ms_per_step": 1e3 * median,
                "samples_per_s": batch / median,
                "ms_per_step_windows": [1e3 * s for s in seconds[name]],
                "memory_bytes": _training_memory(model, optimizer, x, device),
            }
        pairwise = [a / r for a, r in zip(seconds["actmix"], seconds["relu"], strict=True)]
        entry["step_ratio"] = entry["actmix"]["ms_per_step"] / entry["relu"]["ms_per_step"]
        entry["step_ratio_pairwise_median"] = statistics.median(pairwise)
        memory_key = "cuda_peak_allocated" if device.type == "cuda" else "training_total"
        entry["memory_ratio"] = (
            entry["actmix"]["memory_bytes"][memory_key] / entry["relu"]["memory_bytes"][memory_key]
        )
        # with dropout both keep a mask and the masked output per layer; ReLU also keeps
        # its output and ActMix its input, so the extra tensor ActMix has without dropout
        # is matched (the default configuration trains with dropout 0.1)
        dropped = {}
        for name in ("relu", "actmix"):
            _, model, optimizer, x = _step_function(name, batch, device, dropout=DROPOUT)
            dropped[name] = _training_memory(model.train(), optimizer, x, device)
        entry["memory_bytes_with_dropout"] = dropped
        entry["memory_ratio_with_dropout"] = (
            dropped["actmix"][memory_key] / dropped["relu"][memory_key]
        )
        results[str(batch)] = entry
    return results


def benchmark_trainable_steps(settings: Settings, device: torch.device) -> dict[str, Any]:
    """Per-step time of each seed-paper activation against ReLU (interleaved windows)."""
    names = ("relu", *TRAINABLE)
    built = {name: _step_function(name, TRAINABLE_BATCH, device) for name in names}
    seconds = _interleaved_windows({n: b[0] for n, b in built.items()}, settings, device)
    relu = statistics.median(seconds["relu"])
    results: dict[str, Any] = {"batch": TRAINABLE_BATCH}
    for name, (_, model, optimizer, x) in built.items():
        median = statistics.median(seconds[name])
        results[name] = {
            "ms_per_step": 1e3 * median,
            "samples_per_s": TRAINABLE_BATCH / median,
            "step_ratio": median / relu,
            "step_ratio_pairwise_median": statistics.median(
                a / r for a, r in zip(seconds[name], seconds["relu"], strict=True)
            ),
            "memory_bytes": _training_memory(model, optimizer, x, device),
        }
    return results


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
        _synchronize(device)
        started = time.perf_counter()
        run()
        _synchronize(device)
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


def benchmark_folds(settings: Settings, device: torch.device) -> dict[str, Any]:
    """Samples/s (training rows of one epoch over the wall time, validation included)."""
    folds = _fold_arrays()
    subset = folds[: settings.timed_folds]
    # (function, folds timed, folds of the untimed warm-up run: same shapes, compiles once)
    ways = {
        "batched_fit": (train_batched, folds, folds),
        "sequential_fit": (train_sequential, subset, folds[:1]),
        "dataloader_loop": (train_dataloader, subset, folds[:1]),
    }
    results: dict[str, Any] = {}
    for name, (train, timed, warmup) in ways.items():
        train(warmup, device)
        run = functools.partial(train, timed, device)
        seconds = _median_seconds(run, settings.fold_repeats, device)
        rows = sum(len(arrays.y_train) for arrays in timed)
        results[name] = {
            "folds": len(timed),
            "train_rows": rows,
            "seconds": seconds,
            "samples_per_s": rows / seconds,
        }
    batched = results["batched_fit"]["samples_per_s"]
    results["batched_vs_sequential"] = batched / results["sequential_fit"]["samples_per_s"]
    results["batched_vs_dataloader"] = batched / results["dataloader_loop"]["samples_per_s"]
    floor = matmul_floor(folds, device, settings.fold_repeats)
    results["matmul_floor_seconds"] = floor
    results["efficiency"] = floor / results["batched_fit"]["seconds"]
    return results


# --- 3. targets, report -----------------------------------------------------------------------


def check_targets(
    steps: dict[str, Any], trainable: dict[str, Any], folds: dict[str, Any]
) -> list[dict[str, Any]]:
    """One record per target: value, bound and whether it is met."""
    batch = trainable["batch"]
    checks = [
        (
            f"ditac/relu step time, batch {batch}",
            trainable["ditac"]["step_ratio"],
            "ditac_step_ratio_max",
        )
    ]
    for batch, entry in steps.items():
        checks += [
            (f"actmix/relu step time, batch {batch}", entry["step_ratio"], "step_ratio_max"),
            (f"actmix/relu memory, batch {batch}", entry["memory_ratio"], "memory_ratio_max"),
        ]
    checks += [
        ("batched vs sequential fits", folds["batched_vs_sequential"], "batched_vs_sequential_min"),
        ("batched vs DataLoader loop", folds["batched_vs_dataloader"], "batched_vs_dataloader_min"),
        ("batched epoch efficiency (floor/time)", folds["efficiency"], "efficiency_min"),
    ]
    records = []
    for name, value, key in checks:
        bound, at_most = TARGETS[key], key.endswith("_max")
        records.append(
            {
                "target": name,
                "value": value,
                "bound": f"{'<=' if at_most else '>='} {bound}",
                "passed": value <= bound if at_most else value >= bound,
            }
        )
    return records


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_description(device: torch.device) -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "actmix_compile": os.environ.get(COMPILE_ENV, "1 (default)"),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def _step_row(label: str, row: dict[str, Any]) -> str:
    memory = row["memory_bytes"]
    shown = memory.get("cuda_peak_allocated", memory["training_total"]) / 2**20
    return f"{label:<34}{row['ms_per_step']:>10.2f}{row['samples_per_s']:>12,.0f}{shown:>11.2f}"


def print_report(
    steps: dict[str, Any], trainable: dict[str, Any], folds: dict[str, Any], targets: list[dict]
) -> None:
    print(f"\n{'step (widths 256-256-256)':<34}{'ms/step':>10}{'samples/s':>12}{'memory MB':>11}")
    for batch, entry in steps.items():
        for name in ("relu", "actmix"):
            print(_step_row(f"  {name}, batch {batch}", entry[name]))
        ratio = entry["memory_ratio_with_dropout"]
        print(f"  (memory actmix/relu with dropout {DROPOUT}, batch {batch}: {ratio:.2f}x)")
    for name in ("relu", *TRAINABLE):
        row = trainable[name]
        label = f"  {name}, batch {trainable['batch']} ({row['step_ratio']:.2f}x relu)"
        print(_step_row(label, row))
    print(f"\n{'10-fold power_plant, 1 epoch':<34}{'folds':>10}{'samples/s':>12}{'seconds':>11}")
    for name in ("batched_fit", "sequential_fit", "dataloader_loop"):
        row = folds[name]
        print(
            f"  {name:<32}{row['folds']:>10}{row['samples_per_s']:>12,.0f}{row['seconds']:>11.2f}"
        )
    floor = folds["matmul_floor_seconds"]
    print(f"  {'matrix products alone (floor)':<42}{'':>12}{floor:>11.2f}")
    print("\ntargets")
    for check in targets:
        verdict = "PASS" if check["passed"] else "FAIL"
        print(
            f"  {verdict}  {check['target']:<40} {check['value']:>7.2f}  (target {check['bound']})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/trainer.json"))
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: its own)"
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else FULL
    device = resolve_device(args.device)

    machine = machine_description(device)
    steps = benchmark_steps(settings, device)
    trainable = benchmark_trainable_steps(settings, device)
    folds = benchmark_folds(settings, device)
    targets = check_targets(steps, trainable, folds)
    print_report(steps, trainable, folds, targets)
    report = {
        "quick": args.quick,
        "machine": machine,
        "measured": {
            "step": "forward + backward + MemberAdamW.step, one member, 16 inputs, MSE loss; "
            "median seconds per step over interleaved timed windows",
            "memory": "CPU: bytes of distinct storages saved for backward (input batch and "
            "parameters excluded) + parameters + gradients + Adam moments ('training_total'); "
            "CUDA: torch.cuda.max_memory_allocated over one step",
            "folds": "samples/s = training rows of one epoch / wall seconds of the whole "
            "run, validation pass included, median over repeats after a warm-up run",
        },
        "settings": {
            "windows": settings.windows,
            "fold_repeats": settings.fold_repeats,
            "timed_folds": settings.timed_folds,
        },
        "step": steps,
        "trainable_step": trainable,
        "folds": folds,
        "targets": targets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
