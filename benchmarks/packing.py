"""Packed trials end to end: the same study through `actmix-study run`, packed and unpacked.

One ActMix study on power_plant (2 inner folds), run once per pack size K (K = 1 is
unpacked) and repeated in alternation, so drift in the machine hits every K alike. The
study is random search over the knobs pack-mates may vary (learning rate, weight decay,
dropout, the temperature schedule, relu bias, omega_0, the entropy penalty; widths,
batch size and basis fixed) with no early stopping, so every K trains exactly the same
configurations for the same epochs (checked, and said in the JSON). Reported per K:

- configuration-epochs per second over the whole command (Ray start-up included) and
  over the study itself (first trial start to last trial end, from MLflow);
- ``packed_vs_unpacked``: K's rate over K = 1's, both ways;
- the best objective against the study's wall time, so that a search that gets
  further per hour shows as such.

    python benchmarks/packing.py [--quick] [--out FILE] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SPACE = """\
description: per-member knobs of ActMix only (the network fixed), for the packing benchmark
model: actmix
params:
  train.lr: {loguniform: [1.0e-4, 1.0e-2]}
  train.weight_decay: {zero_or_loguniform: [1.0e-6, 1.0e-2]}
  mlp.dropout: {uniform: [0.0, 0.3]}
  train.temperature.initial: {loguniform: [0.3, 3.0]}
  train.temperature.final_fraction: {loguniform: [0.005, 1.0]}
  train.temperature.anneal_fraction: {uniform: [0.1, 1.0]}
  train.temperature.schedule: {choice: [linear, exponential, cosine]}
  mlp.activation.relu_bias: {uniform: [0.0, 3.0]}
  mlp.activation.omega_0: {loguniform: [0.5, 30.0]}
  train.entropy.lambda_max: {zero_or_loguniform: [1.0e-4, 1.0e-1]}
  train.entropy.warmup_fraction: {uniform: [0.0, 0.5]}
"""
MAX_CONCURRENT = 2  # trials (packs) at once: one per core of the 2-core machine


def _run_study(
    store: Path, space: Path, *, k: int, trials: int, epochs: int, folds: int, device: str
) -> dict[str, Any]:
    name = f"pack{k}"
    command = [sys.executable, "-m", "study.cli", "run", "--name", name, "--space", str(space)]
    command += ["--trials", str(trials), "--n-startup-trials", str(trials)]
    command += ["--epochs", str(epochs), "--folds", str(folds), "--scheduler", "none"]
    command += ["--max-concurrent", str(MAX_CONCURRENT), "--pack", str(k)]
    command += ["--store", str(store), "--seed", "0"]
    if device == "cuda":
        command += ["--gpus-per-trial", str(1 / MAX_CONCURRENT)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"K={k}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return {"command_seconds": seconds, **_from_stores(store, name)}


def _from_stores(store: Path, name: str) -> dict[str, Any]:
    """The study's own span and best-so-far curve (MLflow), and its configurations (Optuna)."""
    import optuna
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], "tags.`actmix.role` = 'trial'")
    start = min(run.info.start_time for run in runs) / 1000
    ends = sorted(
        (run.info.end_time / 1000 - start, run.data.metrics.get("val_rmse_mean", float("nan")))
        for run in runs
    )
    curve, best = [], float("inf")
    for seconds, value in ends:
        best = min(best, value)
        curve.append([round(seconds, 2), best])
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{store / 'optuna.db'}")
    configurations = [sorted(trial.params.items()) for trial in study.trials]
    return {
        "study_seconds": ends[-1][0],
        "best_value": best,
        "best_vs_seconds": curve,
        "configurations": json.dumps(configurations, sort_keys=True),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: K 1 and 2, tiny study")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per K")
    args = parser.parse_args(argv)
    ks = (1, 2) if args.quick else (1, 2, 4, 8)
    trials, epochs = (4, 2) if args.quick else (args.trials, args.epochs)
    rounds = 1 if args.quick else args.rounds
    measured: dict[int, list[dict[str, Any]]] = {k: [] for k in ks}
    with tempfile.TemporaryDirectory() as directory:
        space = Path(directory) / "space.yaml"
        space.write_text(SPACE)
        for round_ in range(rounds):
            for k in ks:  # alternating: every K once per round
                store = Path(directory) / f"round{round_}-k{k}"
                run = _run_study(
                    store,
                    space,
                    k=k,
                    trials=trials,
                    epochs=epochs,
                    folds=args.folds,
                    device=args.device,
                )
                measured[k].append(run)
                print(
                    f"round {round_}, K={k}: {run['command_seconds']:.1f} s command, "
                    f"{run['study_seconds']:.1f} s study, best {run['best_value']:.4f}",
                    flush=True,
                )
    configurations = {run["configurations"] for runs in measured.values() for run in runs}
    work = trials * epochs  # configuration-epochs of every run
    rows = []
    for k, runs in measured.items():
        command = statistics.median(run["command_seconds"] for run in runs)
        study = statistics.median(run["study_seconds"] for run in runs)
        rows.append(
            {
                "k": k,
                "command_seconds": command,
                "study_seconds": study,
                "command_config_epochs_per_s": work / command,
                "study_config_epochs_per_s": work / study,
                "best_value": runs[0]["best_value"],
                "best_vs_seconds": runs[0]["best_vs_seconds"],
            }
        )
    unpacked = rows[0]
    for row in rows:
        row["packed_vs_unpacked"] = unpacked["command_seconds"] / row["command_seconds"]
        row["packed_vs_unpacked_study"] = unpacked["study_seconds"] / row["study_seconds"]
        print(
            f"K={row['k']}: {row['command_config_epochs_per_s']:.2f} config-epochs/s end to "
            f"end ({row['packed_vs_unpacked']:.2f}x), {row['study_config_epochs_per_s']:.2f} "
            f"in the study ({row['packed_vs_unpacked_study']:.2f}x)",
            flush=True,
        )
    result = {
        "benchmark": "packing",
        "dataset": "power_plant",
        "device": args.device,
        "trials": trials,
        "epochs": epochs,
        "folds": args.folds,
        "max_concurrent": MAX_CONCURRENT,
        "rounds": rounds,
        "same_configurations": len(configurations) == 1,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
        },
        "rows": rows,
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0 if result["same_configurations"] else 1


if __name__ == "__main__":
    sys.exit(main())
