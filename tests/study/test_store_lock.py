"""Two drivers creating a brand-new store at the same moment (no Ray: the schema step)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient

from study.store import default_store_uris, store_lock


def _first_use(store: str, barrier, name: str) -> None:
    """What `run` does with a new store before its study starts: schemas, then a study run."""
    from study.run import create_schemas
    from study.tracking import open_study_run

    mlflow_uri, optuna_uri = default_store_uris(Path(store))
    barrier.wait()  # both drivers reach the new store together
    with store_lock(Path(store)):
        create_schemas(mlflow_uri, optuna_uri)
        open_study_run(mlflow_uri, name, artifact_location=None, params={}, tags={})


def test_two_drivers_on_a_new_store_at_once_both_get_their_study(tmp_path: Path) -> None:
    store = tmp_path / "new-store"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    drivers = [
        context.Process(target=_first_use, args=(str(store), barrier, f"twin-{index}"))
        for index in range(2)
    ]
    for driver in drivers:
        driver.start()
    for driver in drivers:
        driver.join(timeout=120)
    assert [driver.exitcode for driver in drivers] == [0, 0]
    mlflow_uri, optuna_uri = default_store_uris(store)
    client = MlflowClient(mlflow_uri)
    assert {e.name for e in client.search_experiments()} >= {"twin-0", "twin-1"}
    assert optuna.get_all_study_summaries(optuna_uri) == []  # the schema is there, and whole


def test_the_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    import fcntl

    with store_lock(tmp_path), (tmp_path / ".lock").open("a") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise AssertionError("a second holder got the lock")
        except BlockingIOError:
            pass
    with (tmp_path / ".lock").open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
