"""Driver load benchmark: does one study driver keep up with many concurrent trials?

A real study (``study.run.run_study``: Tuner, the Optuna searcher on its RDB storage,
the MLflow callback and its background metric writer) whose trainable sleeps instead of
training but reports what a real ActMix trial reports: every epoch the objective, its std
and the curve metrics, a checkpoint every 5 epochs, and a final report with per-fold
scores, a model file and mixing weights of realistic size. Ray gets ``--concurrent``
logical CPUs on this machine, so that many trials run at once.

It prints and writes JSON (default ``benchmarks/results/driver.json``):

- results offered per second (concurrent / epoch seconds) and processed per second;
- report -> driver latency (a worker's ``tune.report`` until the driver's callback has it)
  and the callback's own time, median / p99 / max;
- driver -> MLflow latency of a metric (queued until stored), p99;
- driver CPU seconds per result; the tuning time (first result to last) and the study's
  wall time (Ray's trial start-up included) against the ideal (trials x epochs x epoch
  seconds / concurrent);
- Tune's "performance bottleneck" warnings, at Tune's default threshold (0.5 s);
- the count check: every epoch of every trial in MLflow exactly once, every trial in
  Optuna once and COMPLETE;
- with ``--searcher``: Optuna's suggestion latency after 100, 500 and 2,000 finished trials.

    .venv/bin/python benchmarks/driver.py [--concurrent 64] [--epochs 20] [--epoch-seconds 0.2]
        [--rounds 2] [--tracking-uri URI] [--searcher] [--out PATH]
"""

from __future__ import annotations

import os

# measured against Tune's own warning threshold, not the study's quieter default
os.environ["TUNE_WARN_THRESHOLD_S"] = "0.5"

import argparse
import base64
import json
import logging
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_EPOCH_SECONDS = "ACTMIX_BENCH_EPOCH_SECONDS"
_REPORTED_AT = "reported_at"


def synthetic_trial(config: dict[str, Any], settings: Any) -> None:
    """Sleeps ``$ACTMIX_BENCH_EPOCH_SECONDS`` per epoch; reports like a real ActMix trial."""
    import ray
    from ray import tune

    from actmix.analysis import save_model
    from actmix.mlp import MLP
    from study.tracking import payload, with_rendered_artifacts

    del config
    seconds = float(os.environ[_EPOCH_SECONDS])
    objective, members = "val_rmse_mean", len(settings.seeds) * settings.folds
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = json.loads((Path(directory) / "state.json").read_text())["epoch"] + 1
    rng = np.random.default_rng(start)
    for epoch in range(start, settings.epochs):
        time.sleep(seconds)
        metrics = {
            payload.EPOCH: epoch,
            objective: 4.0 + 1.0 / (epoch + 1) + 0.01 * rng.random(),
            payload.std_key(objective): 0.1,
            payload.TRAIN_LOSS: 20.0 / (epoch + 1),
            payload.TEMPERATURE: 1.0,
            payload.ENTROPY: 1.2,
            payload.LR: 1e-3,
            payload.MEMBERS_TRAINING: members,
            _REPORTED_AT: time.time(),
        }
        if epoch == settings.epochs - 1:
            with tempfile.TemporaryDirectory() as directory:
                model = MLP(4, 1, (128, 128), "actmix", seed=0)
                data = save_model(model, Path(directory) / "model.pt").read_bytes()
            weights = np.full((2, 128, 4), 0.25)
            metrics |= {
                payload.FINAL: True,
                payload.FOLD_SCORES: [metrics[objective]] * settings.folds,
                payload.EPOCHS_RUN: [settings.epochs] * members,
                payload.DIVERGED_MEMBERS: 0,
                payload.NODE_ID: ray.get_runtime_context().get_node_id(),
                payload.MODEL_FILE: base64.b64encode(data).decode("ascii"),
                payload.MIXING_WEIGHTS: weights.tolist(),
                payload.BASIS: ["sin", "tanh", "relu", "identity"],
            }
            metrics = with_rendered_artifacts(metrics, model="actmix")  # as a real trial does
        if (epoch + 1) % settings.checkpoint_every == 0:
            with tempfile.TemporaryDirectory() as directory:
                (Path(directory) / "state.json").write_text(json.dumps({"epoch": epoch}))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(metrics)


class _Samples:
    """Thread-safe lists of measured seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, list[float]] = {}

    def add(self, name: str, value: float) -> None:
        with self._lock:
            self.values.setdefault(name, []).append(value)

    def summary(self, name: str) -> dict[str, float | int | None]:
        values = sorted(self.values.get(name, []))
        if not values:
            return {"n": 0, "median": None, "p99": None, "max": None}
        p99 = values[min(len(values) - 1, int(0.99 * len(values)))]
        return {
            "n": len(values),
            "median": round(statistics.median(values), 4),
            "p99": round(p99, 4),
            "max": round(values[-1], 4),
        }


def _instrument(samples: _Samples) -> None:
    """Time the callback and the metric writer from the outside (no study code changes)."""
    from study.tracking import MetricWriter, MlflowTrialLogger
    from study.tracking import _trial_runs as trial_runs

    original = MlflowTrialLogger.on_trial_result

    def on_trial_result(self, iteration, trials, trial, result, **info):
        received = time.time()
        if _REPORTED_AT in result:
            samples.add("report_to_driver", received - result[_REPORTED_AT])
            samples.add("received_at", received)
        began = time.perf_counter()
        original(self, iteration, trials, trial, result, **info)
        samples.add("callback", time.perf_counter() - began)

    MlflowTrialLogger.on_trial_result = on_trial_result  # type: ignore[method-assign]

    class _Recording:
        def __init__(self, client: Any) -> None:
            self._client = client

        def log_batch(self, run_id: str, metrics: Any) -> None:
            self._client.log_batch(run_id, metrics=metrics)
            stored = time.time()
            for metric in metrics:
                if metric.key == "val_rmse_mean":
                    samples.add("driver_to_mlflow", stored - metric.timestamp / 1000)

    class _TimedWriter(MetricWriter):
        def __init__(self, client: Any, **kwargs: Any) -> None:
            super().__init__(_Recording(client), **kwargs)

    trial_runs.MetricWriter = _TimedWriter  # type: ignore[misc]


class _BottleneckCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "bottleneck" in record.getMessage():
            self.count += 1


def _counts(uri: str, study: str, trials: int, epochs: int, optuna_url: str) -> dict[str, Any]:
    import optuna

    from study.tracking import client_for, study_runs

    client = client_for(uri)
    runs = study_runs(client, study, "trial")
    exact = 0
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_rmse_mean")]
        exact += sorted(steps) == list(range(epochs))
    states = [t.state.name for t in optuna.load_study(study_name=study, storage=optuna_url).trials]
    return {
        "mlflow_trial_runs": len(runs),
        "runs_with_every_epoch_once": exact,
        "optuna_trials": len(states),
        "optuna_complete": states.count("COMPLETE"),
        "all_landed_once": len(runs) == trials == exact == states.count("COMPLETE"),
    }


def _load_study(args: argparse.Namespace, store: Path) -> dict[str, Any]:
    import ray

    import study.run._runner
    from study.request import StudyRequest
    from study.store import default_store_uris

    os.environ[_EPOCH_SECONDS] = str(args.epoch_seconds)
    samples = _Samples()
    _instrument(samples)
    bottlenecks = _BottleneckCounter()
    logging.getLogger("ray").addHandler(bottlenecks)
    study.run._runner.train_trial = synthetic_trial  # type: ignore[assignment]
    ray.init(
        num_cpus=args.concurrent,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        runtime_env={"env_vars": {_EPOCH_SECONDS: str(args.epoch_seconds)}},
    )
    trials = args.concurrent * args.rounds
    request = StudyRequest(
        name="load",
        trials=trials,
        max_concurrent=args.concurrent,
        epochs=args.epochs,
        folds=2,
        scheduler="none",
        store=str(store),
        tracking_uri=args.tracking_uri,
    )
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        outcome = study.run._runner.run_study(request, report=lambda _line: None)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        ray.shutdown()
    results = trials * args.epochs
    ideal = trials * args.epochs * args.epoch_seconds / args.concurrent
    received = samples.values.get("received_at", [0.0])
    # from the first result the driver had to the last: the tuning loop, without start-up
    tuning = max(received) - min(received) + args.epoch_seconds
    uri = outcome.tracking_uri
    return {
        "trials": trials,
        "offered_per_s": round(args.concurrent / args.epoch_seconds, 1),
        "processed_per_s": round(results / tuning, 1),
        "results": results,
        "wall_s": round(wall, 1),
        "tuning_s": round(tuning, 1),
        "ideal_s": round(ideal, 1),
        "driver_cpu_s_per_result": round(cpu / results, 5),
        "report_to_driver_s": samples.summary("report_to_driver"),
        "callback_s": samples.summary("callback"),
        "driver_to_mlflow_s": samples.summary("driver_to_mlflow"),
        "bottleneck_warnings": bottlenecks.count,
        "counts": _counts(uri, "load", trials, args.epochs, default_store_uris(store)[1]),
    }


def _searcher_latency(sizes: Sequence[int], store: Path) -> dict[str, float]:
    """Median seconds of one suggestion after ``n`` finished trials (RDB SQLite storage)."""
    import optuna

    from actmix.config import RunConfig
    from study.run import OptunaSearcher
    from study.space import baseline_point, load_space, suggest_params

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space("actmix")
    latency = {}
    for size in sizes:
        url = f"sqlite:///{store / f'searcher-{size}.db'}"
        source = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=size))
        for _ in range(size):  # finished trials at random points, copied in one go
            trial = source.ask()
            suggest_params(space, trial)
            source.tell(trial, float(np.random.default_rng(trial.number).random()))
        storage = optuna.storages.RDBStorage(url)
        sampler = optuna.samplers.TPESampler(seed=0, multivariate=True)
        searcher = OptunaSearcher(
            space,
            metric="val_rmse_mean",
            mode="min",
            baseline=baseline_point(space, RunConfig(), epochs=20),
            sampler=sampler,
            storage=storage,
            study_name="latency",
        )
        searcher.suggest("baseline")  # the enqueued baseline is not a sample
        optuna.load_study(study_name="latency", storage=storage).add_trials(source.trials)
        times = []
        for index in range(3):
            began = time.perf_counter()
            searcher.suggest(f"probe-{index}")
            times.append(time.perf_counter() - began)
        latency[str(size)] = round(statistics.median(times), 3)
    return latency


def _commit() -> str | None:
    """The checkout's commit, so a committed result names the code it measured."""
    import subprocess

    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return found.stdout.strip() or None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrent", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--epoch-seconds", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=2, help="trials = concurrent x rounds")
    parser.add_argument("--tracking-uri", help="default: SQLite in a temporary store")
    parser.add_argument("--searcher", action="store_true", help="also time Optuna suggestions")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "driver.json"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        store = Path(directory)
        report: dict[str, Any] = {
            "settings": {
                "concurrent": args.concurrent,
                "epochs": args.epochs,
                "epoch_seconds": args.epoch_seconds,
                "rounds": args.rounds,
                "tracking_uri": args.tracking_uri or "sqlite (default store)",
            },
            "commit": _commit(),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "load": _load_study(args, store),
        }
        if args.searcher:
            report["searcher_suggest_s"] = _searcher_latency((100, 500, 2000), store)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    json.dump(report, sys.stdout, indent=2)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
