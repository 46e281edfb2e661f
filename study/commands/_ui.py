"""The servers behind ``actmix-study ui`` (MLflow) and ``dashboard`` (optuna-dashboard),
which never outlive the command.

``mlflow server`` runs uvicorn as a child of its own, so a server is a process tree.
The tree gets its own process group, started and ended by a small supervisor (this
module run with ``python -m``). The command stops the supervisor when it exits; when it
dies without a chance to (SIGKILL), the kernel sends the supervisor SIGTERM instead
(Linux ``PR_SET_PDEATHSIG``), and either way the supervisor ends the whole group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from study.system import die_with_parent

__all__ = ["DASHBOARD_HINT", "serve_mlflow_ui", "serve_optuna_dashboard"]

STOP_GRACE_SECONDS = 30.0


class _StopRequested(Exception):
    """SIGTERM reached the supervisor."""


def serve_mlflow_ui(uri: str, *, host: str, port: int) -> int:
    """Serve the MLflow UI over ``uri`` until interrupted; 0, or the server's exit code."""
    server = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # MLflow's job execution (GenAI jobs, trace roll-ups) serves nothing a study shows and
    # would add seven consumer processes to the tree
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return _serve(server, env)


DASHBOARD_HINT = "pip install 'actmix-study[dashboard]' (or pip install optuna-dashboard)"


def serve_optuna_dashboard(storage: str, *, host: str, port: int) -> int:
    """Serve optuna-dashboard over the Optuna ``storage`` until interrupted."""
    from importlib.metadata import entry_points

    found = list(entry_points(group="console_scripts", name="optuna-dashboard"))
    if not found:
        raise ValueError(f"optuna-dashboard is not installed: {DASHBOARD_HINT}")
    # its console script, as the package declares it, run by this interpreter (the
    # package has no __main__, and its script may not be on PATH)
    module, _, function = found[0].value.partition(":")
    code = f"import sys; from {module} import {function} as main; sys.exit(main())"
    server = [sys.executable, "-c", code, storage, "--host", host, "--port", str(port)]
    return _serve(server, dict(os.environ))


def _serve(server: list[str], env: dict[str, str]) -> int:
    """Run ``server`` under the supervisor until interrupted; 0, or its exit code."""
    # lists, never shell strings: user paths are not interpolated; a session of its own,
    # so a terminal's Ctrl-C reaches only this command, which then stops the supervisor
    supervisor = subprocess.Popen(
        [sys.executable, "-m", __name__, str(os.getpid()), *server],
        env=env,
        start_new_session=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return supervisor.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        # the supervisor's own stop is bounded by STOP_GRACE_SECONDS
        supervisor.terminate()
        supervisor.wait()


def _supervise(parent_pid: int, command: Sequence[str]) -> int:
    """Run ``command`` in a process group of its own until it exits or SIGTERM arrives."""
    signal.signal(signal.SIGTERM, _raise_stop_requested)
    if not die_with_parent(parent_pid):
        return 0
    server = None
    try:
        server = subprocess.Popen(command, start_new_session=True)
        return server.wait()
    except _StopRequested:
        return 0
    finally:
        if server is not None:
            # a second SIGTERM (the parent's, then its death signal) must not cut the stop short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _stop_group(server)


def _raise_stop_requested(*_: object) -> None:
    raise _StopRequested


def _stop_group(leader: subprocess.Popen) -> None:
    """SIGTERM to the leader's process group; SIGKILL whatever outlives the leader's grace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        leader.wait(timeout=STOP_GRACE_SECONDS)
    # the leader (mlflow server) waits for uvicorn; anything still left of the group is stuck
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader.pid, signal.SIGKILL)
    leader.wait()


if __name__ == "__main__":
    sys.exit(_supervise(int(sys.argv[1]), sys.argv[2:]))
