"""The background metric writer against a temporary SQLite MLflow store (no Ray)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from mlflow.entities import Metric

from study.store import default_store_uris
from study.tracking import BATCH_LIMIT, MetricWriter, UnwrittenMetricsError, client_for

NEVER = 3600.0  # an interval the background thread does not reach within a test


class SpyClient:
    """An MlflowClient that counts ``log_batch`` calls and can fail the first ``failures``."""

    def __init__(self, client, failures: int = 0) -> None:
        self.client, self.failures, self.batches = client, failures, []

    def log_batch(self, run_id: str, metrics) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("tracking store unavailable")
        self.batches.append((run_id, len(metrics)))
        self.client.log_batch(run_id, metrics=metrics)


@pytest.fixture
def store(tmp_path: Path):
    client = client_for(default_store_uris(tmp_path)[0])
    experiment = client.create_experiment("e")
    runs = [client.create_run(experiment).info.run_id for _ in range(2)]
    return client, runs


def _epochs(steps, key: str = "val_loss") -> list[Metric]:
    return [Metric(key, float(step), 0, step) for step in steps]


def _steps(client, run_id: str, key: str = "val_loss") -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_many_epochs_of_a_run_are_written_as_one_batch_on_flush(store) -> None:
    client, (first, second) = store
    spy = SpyClient(client)
    writer = MetricWriter(spy, interval=NEVER)
    for step in range(50):
        writer.log(first, _epochs([step]))
        writer.log(second, _epochs([step]))
    assert _steps(client, first) == [] and writer.pending() == 100  # queued, not written
    writer.flush(first)
    assert _steps(client, first) == list(range(50)) and _steps(client, second) == []
    assert spy.batches == [(first, 50)]
    writer.close()
    assert _steps(client, second) == list(range(50)) and writer.pending() == 0
    assert spy.batches == [(first, 50), (second, 50)]


def test_the_thread_writes_without_being_asked(store) -> None:
    client, (run, _) = store
    writer = MetricWriter(client, interval=0.05)
    writer.log(run, _epochs(range(3)))
    deadline = time.monotonic() + 10
    while _steps(client, run) != [0, 1, 2] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _steps(client, run) == [0, 1, 2]
    writer.close()


def test_a_failed_write_is_retried_in_order_and_nothing_doubles(store) -> None:
    client, (run, _) = store
    spy = SpyClient(client, failures=1)
    writer = MetricWriter(spy, interval=NEVER)
    writer.log(run, _epochs(range(3)))
    writer.flush(run)  # fails: kept
    assert writer.pending() == 3 and _steps(client, run) == []
    writer.log(run, _epochs(range(3, 5)))
    writer.close()
    history = client.get_metric_history(run, "val_loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert spy.batches == [(run, 5)]


def test_close_says_when_metrics_could_not_be_written(store) -> None:
    client, (run, _) = store
    writer = MetricWriter(SpyClient(client, failures=10), interval=NEVER)
    writer.log(run, _epochs(range(2)))
    with pytest.raises(UnwrittenMetricsError, match="2 metrics"):
        writer.close()


def test_batches_respect_mlflows_limit(store) -> None:
    client, (run, _) = store
    spy = SpyClient(client)
    writer = MetricWriter(spy, interval=NEVER)
    writer.log(run, _epochs(range(BATCH_LIMIT + 5)))
    writer.close()
    assert spy.batches == [(run, BATCH_LIMIT), (run, 5)]
    assert len(_steps(client, run)) == BATCH_LIMIT + 5


def test_with_workers_the_runs_of_one_write_go_out_side_by_side(store) -> None:
    client, runs = store
    together = threading.Barrier(2, timeout=10)  # broken unless two writes overlap

    class ServerLike(SpyClient):
        def log_batch(self, run_id: str, metrics) -> None:
            together.wait()
            super().log_batch(run_id, metrics)

    spy = ServerLike(client)
    writer = MetricWriter(spy, interval=NEVER, workers=4)
    for run in runs:
        writer.log(run, _epochs(range(3)))
    writer.close()
    assert sorted(spy.batches) == sorted((run, 3) for run in runs)
    assert all(_steps(client, run) == [0, 1, 2] for run in runs)
