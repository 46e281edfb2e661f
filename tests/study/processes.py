"""Processes a test starts, found and stopped through their pids, never by name (Linux /proc).

On a shared machine other people's Ray nodes, servers and browsers run next to the tests:
a test starts what it needs in a process group of its own, finds what that group spawned
by walking the process tree down from its own child, and ends only that.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = [
    "answers",
    "descendants",
    "free_port",
    "is_running",
    "kill_survivors",
    "signal_when_ready",
    "start_in_own_group",
    "stop_group",
    "study_command",
    "wait_until",
]

T = TypeVar("T")


def study_command(*argv: str) -> list[str]:
    """``actmix-study ARGV`` with this interpreter, whether or not the script is on PATH.

    The command takes SIGINT as a terminal's foreground command does, even when the tests
    run in a background job (``make test &``), whose children inherit SIGINT ignored.
    """
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from study.cli import main; sys.exit(main())"
    )
    return [sys.executable, "-c", code, *argv]


def answers(url: str) -> bool:
    """Whether an HTTP server answers ``url`` with 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check: Callable[[], T], timeout: float, what: str, *, every: float = 0.5) -> T:
    """Poll ``check`` until it returns something truthy; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def start_in_own_group(
    command: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen:
    """Start ``command`` as the leader of a new session (so of a new process group)."""
    with log.open("w") as output:
        return subprocess.Popen(
            list(command),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            start_new_session=True,
        )


def signal_when_ready(
    command: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str],
    ready: Callable[[str], bool],
    what: str,
    stop: signal.Signals,
    to_group: bool = True,
    timeout: float = 240.0,
    grace: float = 60.0,
) -> tuple[int, list[int]]:
    """Start ``command`` in a group of its own; once ``ready(output)``, send it ``stop``
    (to the whole group, or to the command alone) and wait for it to exit.

    Returns the exit code and the pids of what it spawned that outlived it by ``grace``
    seconds (killed then). The command must still run when it is ready.
    """
    driver = start_in_own_group(command, log=log, env=env)
    spawned: dict[int, int] = {}
    survivors: list[int] = []
    try:
        wait_until(lambda: driver.poll() is not None or ready(log.read_text()), timeout, what)
        assert driver.poll() is None, log.read_text()[-3000:]
        spawned = descendants(driver.pid)
        if to_group:
            os.killpg(driver.pid, stop)
        else:
            driver.send_signal(stop)
        code = driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
            driver.wait()
        survivors = kill_survivors(spawned, wait=grace)  # workers with groups of their own
    return code, survivors


def stop_group(leader: subprocess.Popen, *, grace: float = 60.0) -> None:
    """SIGTERM to the group ``leader`` heads, SIGKILL to what is left of it after ``grace``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        leader.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader.pid, signal.SIGKILL)
    leader.wait()


def descendants(pid: int) -> dict[int, int]:
    """Every live process below ``pid`` in the process tree, as ``{pid: start time}``.

    The start time (in clock ticks since boot) tells a process from a later one that
    reuses its pid.
    """
    found: dict[int, int] = {}
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                for child in map(int, (task / "children").read_text().split()):
                    started = _start_time(child)
                    if started is not None and child not in found:
                        found[child] = started
                        pending.append(child)
    return found


def is_running(pid: int, start_time: int) -> bool:
    """Whether the process ``pid`` that started at ``start_time`` still runs (zombies do not)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == start_time


def kill_survivors(processes: Mapping[int, int], *, wait: float) -> list[int]:
    """Give ``processes`` (``{pid: start time}``) ``wait`` s to end, then SIGKILL the rest.

    Returns the pids that were still running: a test asserts there were none.
    """
    with contextlib.suppress(AssertionError):
        wait_until(
            lambda: not any(is_running(pid, started) for pid, started in processes.items()),
            wait,
            "processes to end",
            every=0.2,
        )
    survivors = [pid for pid, started in processes.items() if is_running(pid, started)]
    for pid in survivors:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return survivors


def _start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None or fields[0] == "Z" else int(fields[19])


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` from the state field on (the name before it may hold spaces)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()
