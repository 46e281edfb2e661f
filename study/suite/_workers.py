"""``suite run --jobs N``: N suite drivers side by side on one Ray, as one command.

Each worker is ``actmix-study suite run`` itself, connected to the Ray this command
started or joined, with a hidden ``--worker-of PID``; the units' claims keep the
workers apart (see :mod:`study.suite._units`). Workers run in sessions of their own, so
a terminal's Ctrl-C reaches only this command, which forwards every stop signal to
each worker exactly once (one signal: stop gracefully, two: at once). A worker whose
parent dies gets SIGTERM from the kernel and stops as after a Ctrl-C. Their output is
relayed line by line, each line prefixed with the worker's number.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from study.system import EXIT_INTERRUPTED, StopSignal, StudyInterrupted

if TYPE_CHECKING:
    from study.suite._file import Suite

__all__ = ["SuiteWorkersFailed", "run_workers"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SuiteWorkersFailed(RuntimeError):
    """A worker of ``suite run --jobs`` ended with an error (its output says which)."""


def run_workers(
    suite: Suite,
    *,
    jobs: int,
    store: Path,
    tracking_uri: str | None,
    address: str,
    report: Callable[[str], None],
) -> None:
    """Run ``jobs`` workers on ``suite`` until all have stopped; raise if any failed."""
    command = [
        sys.executable,
        "-m",
        "study.cli",
        "suite",
        "run",
        str(Path(suite.path).resolve()),
        "--store",
        str(store),
        "--address",
        address,
        "--jobs",
        str(jobs),  # a worker with --worker-of runs units itself, sized as one of `jobs`
        "--worker-of",
        str(os.getpid()),
    ]
    if tracking_uri is not None:
        command += ["--tracking-uri", tracking_uri]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # lines arrive as they are printed
    workers: list[subprocess.Popen[str]] = []
    relays: list[threading.Thread] = []
    received = StopSignal()
    with _forwarded_signals(workers, received):
        for number in range(1, jobs + 1):
            if received.name is not None:
                break  # stopped while starting: start no more
            worker = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                start_new_session=True,
            )
            workers.append(worker)
            if worker.stdout is not None:
                relay = threading.Thread(
                    target=_relay, args=(worker.stdout, f"[{number}] ", report), daemon=True
                )
                relay.start()
                relays.append(relay)
        codes = [worker.wait() for worker in workers]
    for relay in relays:
        relay.join()
    if received.name is not None or EXIT_INTERRUPTED in codes:
        raise StudyInterrupted(f"suite {suite.name}", received.name or "SIGINT")
    failed = [f"worker {n} exited with {code}" for n, code in enumerate(codes, 1) if code != 0]
    if failed:
        raise SuiteWorkersFailed(f"suite {suite.name}: {', '.join(failed)} (output above)")


def _relay(stream: IO[str], prefix: str, report: Callable[[str], None]) -> None:
    for line in stream:
        report(prefix + line.rstrip("\n"))


@contextmanager
def _forwarded_signals(
    workers: Sequence[subprocess.Popen[str]], received: StopSignal
) -> Iterator[None]:
    """While the workers run, pass SIGINT and SIGTERM on to each of them, once per arrival."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(number: int, _frame: object) -> None:
        received.name = received.name or signal.Signals(number).name
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(number)

    previous = {number: signal.signal(number, forward) for number in _SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
