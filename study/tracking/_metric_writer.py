"""Metric writes kept off Tune's event loop: queued per run, written in batches by a thread.

One ``log_batch`` into a SQLite MLflow store takes milliseconds; issued for every epoch of
every trial inside Tune's event loop, it makes a driver with dozens of concurrent trials
fall behind them. :class:`MetricWriter` only queues in ``log``; a background thread
writes each run's queue as one batch every ``interval`` seconds. ``flush(run_id)`` writes
a run's queue now and returns once it is stored (before the run is ended, and when its
trial checkpoints, so that a driver killed afterwards loses only epochs the restored
trial reports again); ``close()`` stops the thread and writes everything left.

``flush(run_id, timeout=...)`` waits at most ``timeout`` seconds and not at all while the
store is failing: with a tracking server down, MLflow's client retries one request for about
a minute, and the checkpoint hook must not hold Tune's event loop that long (the thread
writes the run's metrics once the store is back).

A failed write keeps its metrics queued, in order, for the next attempt and is logged
once; ``close()`` raises if metrics are still unwritten at the end. With ``workers`` > 1
the runs of one write go out side by side (an HTTP tracking server answers requests in
parallel; a SQLite store would only queue them on its lock), each run's batches in order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

__all__ = ["BATCH_LIMIT", "MetricWriter", "UnwrittenMetricsError"]

_logger = logging.getLogger(__name__)
BATCH_LIMIT = 1000  # metrics per log_batch call, MLflow's own limit


class UnwrittenMetricsError(RuntimeError):
    """Metrics that could not be written before the writer closed."""


class MetricWriter:
    """Queue metrics per MLflow run and write them from a background thread."""

    def __init__(self, client: MlflowClient, *, interval: float = 1.0, workers: int = 1) -> None:
        self._client = client
        self._interval = interval
        self._pool = ThreadPoolExecutor(workers, "mlflow-write") if workers > 1 else None
        self._pending: dict[str, list[Metric]] = {}
        self._queue_lock = threading.Lock()  # guards _pending
        # one write at a time: a flush returns only after a batch the thread took is stored
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._loop, name="mlflow-metric-writer")
        self._thread.daemon = True  # a killed driver must not hang on it
        self._thread.start()

    def log(self, run_id: str, metrics: Sequence[Metric]) -> None:
        """Queue ``metrics`` for ``run_id``; returns at once."""
        if metrics:
            with self._queue_lock:
                self._pending.setdefault(run_id, []).extend(metrics)

    def pending(self) -> int:
        """Metrics queued and not yet written."""
        with self._queue_lock:
            return sum(len(metrics) for metrics in self._pending.values())

    def flush(self, run_id: str | None = None, *, timeout: float | None = None) -> bool:
        """Write the queue of ``run_id`` (every queue when None); whether it is written.

        Without ``timeout`` it returns once written (or failed). With one, it waits at most
        ``timeout`` seconds, and returns at once while the store is failing; a write it
        stops waiting for goes on beside it.
        """
        if timeout is None:
            self._write(run_id)
            return True
        if self._failing:
            return False
        done = threading.Event()

        def write() -> None:
            self._write(run_id)
            done.set()

        threading.Thread(target=write, name="mlflow-flush", daemon=True).start()
        return done.wait(timeout)

    def close(self) -> None:
        """Stop the thread and write what is left; ``UnwrittenMetricsError`` if some fail."""
        self._stop.set()
        self._thread.join()
        self._write(None)
        if self._pool is not None:
            self._pool.shutdown()
        left = self.pending()
        if left:
            raise UnwrittenMetricsError(f"{left} metrics could not be written to MLflow")

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._write(None)

    def _take(self, run_id: str | None) -> dict[str, list[Metric]]:
        with self._queue_lock:
            if run_id is None:
                taken, self._pending = self._pending, {}
            else:
                queued = self._pending.pop(run_id, None)
                taken = {run_id: queued} if queued else {}
        return taken

    def _requeue(self, run_id: str, metrics: list[Metric]) -> None:
        # ahead of anything queued meanwhile: a run's metrics stay in order
        with self._queue_lock:
            self._pending[run_id] = metrics + self._pending.get(run_id, [])

    def _write(self, run_id: str | None) -> None:
        with self._write_lock:
            taken = self._take(run_id)
            if self._pool is None or len(taken) < 2:
                for run, metrics in taken.items():
                    self._write_run(run, metrics)
            else:
                list(self._pool.map(self._write_run, taken.keys(), taken.values()))

    def _write_run(self, run: str, metrics: list[Metric]) -> None:
        for start in range(0, len(metrics), BATCH_LIMIT):
            try:
                self._client.log_batch(run, metrics=metrics[start : start + BATCH_LIMIT])
            except Exception as error:  # the store is down: keep them for later
                if not self._failing:
                    _logger.warning("MLflow metric write failed, will retry: %s", error)
                self._failing = True
                self._requeue(run, metrics[start:])
                return
        self._failing = False
