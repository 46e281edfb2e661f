"""Training-speed benchmark: trainable activations vs ReLU per step, three ways to train 10 folds.

1. One training step (forward, backward, ``MemberAdamW.step``) of a ReLU MLP and an
   ActMix MLP, widths 256-256-256, 16 inputs, batch 256 and 4096, one member: samples/s
   (median over interleaved timed windows) and training memory. The same at batch 256
   for APA, AGLU, PRePU and DiTAC (default options), each as a ratio to ReLU.
2. One epoch of 10-fold CV on power_plant with the seed's ActMix configuration
   (widths 128-128, batch 128): (a) ``fit`` with the 10 folds as one 10-member network,
   (b) 10 sequential single-member ``fit`` calls, (c) a conventional PyTorch loop
   (``DataLoader``, ``torch.optim.AdamW``, ``.item()`` per batch, validation DataLoader);
   the epoch's floors (matrix products alone, and ActMix's kernels alone); (a) with 2
   threads; the first fit of a fresh process (``benchmarks/trainer_folds.py``).
3. PASS/FAIL against the speed and memory targets (see benchmarks/README.md).

    .venv/bin/python benchmarks/trainer.py [--quick] [--threads N] [--out PATH] [--label TEXT]

``--out`` defaults to benchmarks/results/trainer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from trainer_folds import FULL, QUICK, Settings, benchmark_folds, first_fit, synchronize

from actmix import MLP
from actmix._kernels import COMPILE_ENV
from actmix.optim import MemberAdamW
from actmix.trainer import resolve_device

STEP_WIDTHS = (256, 256, 256)
STEP_INPUTS = 16
STEP_BATCHES = (256, 4096)
DROPOUT = 0.1  # the default configuration's, for the second memory figure
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
    synchronize(device)
    started = time.perf_counter()
    next(iter(steps.values()))()
    synchronize(device)
    per_window = max(2, int(settings.window_seconds / (time.perf_counter() - started)))
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(settings.windows):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(per_window):
                step()
            synchronize(device)
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
        synchronize(device)
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
        synchronize(device)
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
    steps: dict[str, Any],
    trainable: dict[str, Any],
    folds: dict[str, Any],
    startup: dict[str, Any] | None,
    targets: list[dict],
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
    for name in ("batched_fit", "batched_fit_2_threads", "sequential_fit", "dataloader_loop"):
        if name in folds:
            row = folds[name]
            print(
                f"  {name:<32}{row['folds']:>10}{row['samples_per_s']:>12,.0f}"
                f"{row['seconds']:>11.2f}"
            )
    floor, kernels = folds["matmul_floor_seconds"], folds["activation_floor_seconds"]
    print(f"  {'matrix products alone (floor)':<42}{'':>12}{floor:>11.2f}")
    print(f"  {'ActMix kernels alone':<42}{'':>12}{kernels:>11.2f}")
    print(
        f"  batched: {folds['batched_vs_lightning']:.1f}x the seed's Lightning trainer"
        f" ({folds['lightning_samples_per_s']:,} samples/s); efficiency with the ActMix"
        f" kernels in the floor: {folds['efficiency_with_activation']:.2f}"
    )
    if startup:
        for name, row in startup.items():
            print(
                f"  first fit of a fresh process, {name.replace('_', ' ')}:"
                f" {row['first_fit_s']:.1f} s (second: {row['second_fit_s']:.2f} s)"
            )
    print("\ntargets")
    for check in targets:
        verdict = "PASS" if check["passed"] else "FAIL"
        print(
            f"  {verdict}  {check['target']:<40} {check['value']:>7.2f}  (target {check['bound']})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--label", default="", help="what this run measures, kept in the JSON")
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
    # a fresh process per case: skipped in --quick runs (it compiles every kernel anew)
    startup = None if args.quick else first_fit(device)
    targets = check_targets(steps, trainable, folds)
    print_report(steps, trainable, folds, startup, targets)
    report = {
        "label": args.label,
        "quick": args.quick,
        "machine": machine,
        "measured": {
            "step": "forward + backward + MemberAdamW.step, one member, 16 inputs, MSE loss; "
            "median seconds per step over interleaved timed windows",
            "memory": "CPU: bytes of distinct storages saved for backward (input batch and "
            "parameters excluded) + parameters + gradients + Adam moments ('training_total'); "
            "CUDA: torch.cuda.max_memory_allocated over one step",
            "folds": "samples/s = training rows of one epoch / wall seconds of the whole "
            "run, validation pass included, median over repeats after a warm-up run; the "
            "ways take turns repeat by repeat",
            "first_fit": "a fresh Python process per case: seconds of its first and second "
            "batched fit, with an empty inductor cache and with this machine's",
        },
        "settings": {
            "windows": settings.windows,
            "fold_repeats": settings.fold_repeats,
            "timed_folds": settings.timed_folds,
        },
        "step": steps,
        "trainable_step": trainable,
        "folds": folds,
        "first_fit": startup,
        "targets": targets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
