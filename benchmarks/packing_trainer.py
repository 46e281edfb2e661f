"""Packs at the trainer level: K configurations trained as one network against one by one.

The same K ActMix configurations (they differ in learning rate, weight decay, dropout,
relu bias, omega_0 and the temperature schedule; they share widths 128-128, batch size
and epochs) over the same inner folds of power_plant, trained either as one pack
(``actmix.packs.build_pack`` + ``fit``) or one configuration after another
(``build_members`` + ``fit`` each), alternating, on one thread. Reported:
configuration-epochs per second of each way and their ratio per K. This is the
trainer's part of the gain only: a packed study also saves per-trial start-up and
bookkeeping (see issue "Every core-hour counts"), which this does not measure.

    python benchmarks/packing_trainer.py [--quick] [--out FILE] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from actmix import load_dataset, make_folds, prepare_fold
from actmix.config import MLPConfig, RunConfig, TemperatureSchedule, TrainConfig
from actmix.cv import build_members
from actmix.packs import build_pack
from actmix.trainer import fit


def configurations(k: int, epochs: int) -> list[RunConfig]:
    """K configurations spread over the knobs a pack lets each member keep."""
    train = TrainConfig(epochs=epochs, batch_size=128, patience=epochs + 1)
    configs = []
    for index in range(k):
        share = index / max(1, k - 1)
        configs.append(
            RunConfig(
                model="actmix",
                mlp=MLPConfig(
                    widths=(128, 128),
                    dropout=0.05 + 0.2 * share,
                    activation={"relu_bias": 3.0 * share, "omega_0": 0.5 + 5.0 * share},
                ),
                train=dataclasses.replace(
                    train,
                    lr=1e-3 * (1 + 4 * share),
                    weight_decay=1e-4 * (1 + 9 * share),
                    temperature=TemperatureSchedule(
                        initial=1.0 + share, final=0.1, anneal_epochs=epochs
                    ),
                ),
            )
        )
    return configs


def _packed(dataset, configs, arrays, device: str) -> float:
    pack = build_pack(dataset, configs, arrays, seeds=[0])
    started = time.perf_counter()
    fit(pack.model, pack.data, pack.train, task=dataset.task, device=device)
    return time.perf_counter() - started


def _one_by_one(dataset, configs, arrays, device: str) -> float:
    seconds = 0.0
    for config in configs:
        members = build_members(dataset, config, arrays, [0])
        started = time.perf_counter()
        fit(members.model, members.data, config.train, task=dataset.task, device=device)
        seconds += time.perf_counter() - started
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: K 1 and 2, one round")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per K")
    parser.add_argument("--folds", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a trial's share of a 2-core machine
    dataset = load_dataset("power_plant")
    splits = make_folds(dataset, args.folds, 0)
    arrays = [prepare_fold(dataset, fold) for fold in splits.folds]
    ks = (1, 2) if args.quick else (1, 2, 4, 8)
    rounds = 1 if args.quick else args.rounds
    rows: list[dict[str, Any]] = []
    for k in ks:
        configs = configurations(k, args.epochs)
        # a new member count or per-member layout compiles kernels once: untimed
        warm = configurations(k, 1)
        _packed(dataset, warm, arrays, args.device)
        _one_by_one(dataset, warm[:1], arrays, args.device)
        packed, alone = [], []
        for _ in range(rounds):  # alternating, so drift in the machine hits both
            packed.append(_packed(dataset, configs, arrays, args.device))
            alone.append(_one_by_one(dataset, configs, arrays, args.device))
        work = k * args.epochs  # configuration-epochs
        row = {
            "k": k,
            "folds": args.folds,
            "epochs": args.epochs,
            "packed_seconds": statistics.median(packed),
            "one_by_one_seconds": statistics.median(alone),
            "packed_config_epochs_per_s": work / statistics.median(packed),
            "one_by_one_config_epochs_per_s": work / statistics.median(alone),
        }
        row["packed_vs_one_by_one"] = row["one_by_one_seconds"] / row["packed_seconds"]
        rows.append(row)
        print(
            f"K={k}: packed {row['packed_config_epochs_per_s']:.2f} config-epochs/s, one by "
            f"one {row['one_by_one_config_epochs_per_s']:.2f}: "
            f"{row['packed_vs_one_by_one']:.2f}x",
            flush=True,
        )
    result = {
        "benchmark": "packing_trainer",
        "dataset": "power_plant",
        "device": args.device,
        "threads": 1,
        "rounds": rounds,
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "torch": torch.__version__,
        "rows": rows,
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
