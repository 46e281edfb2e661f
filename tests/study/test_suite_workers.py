"""Side-by-side suite drivers: unit claims and the signals ``suite run --jobs`` forwards.

The end-to-end runs are in ``test_suite.py`` (the tiny suite runs with ``jobs=2``, the
killed suite is resumed with ``--jobs 2``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from study.cli import main
from study.suite import claim_unit, load_suite, run_suite, suite_units
from study.suite._workers import _forwarded_signals
from tests.study.processes import wait_until

SUITE = """
name: pair
datasets: [power_plant]
models: [relu]
protocol: {outer_folds: 2, inner_folds: 2, seeds: 1}
study: {trials: 2, epochs: 2}
"""


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "pair.yaml"
    path.write_text(SUITE)
    return load_suite(path)


def test_a_claimed_unit_is_refused_to_everyone_else_until_released(tmp_path, suite):
    first, second = list(suite_units(suite))[:2]
    with claim_unit(tmp_path, first) as mine:
        assert mine
        with claim_unit(tmp_path, first) as again:  # another open file: another driver
            assert not again
        with claim_unit(tmp_path, second) as other:
            assert other
    with claim_unit(tmp_path, first) as after:
        assert after


def test_the_claim_of_a_killed_driver_is_free_at_once(tmp_path, suite):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from study.suite import claim_unit, load_suite, suite_units
                unit = next(iter(suite_units(load_suite({suite.path!r}))))
                with claim_unit(Path({str(tmp_path)!r}), unit) as mine:
                    print("held" if mine else "refused", flush=True)
                    time.sleep(600)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        unit = next(iter(suite_units(suite)))
        with claim_unit(tmp_path, unit) as mine:
            assert not mine
        holder.kill()  # SIGKILL: no chance to release anything
        holder.wait()
        with claim_unit(tmp_path, unit) as mine:
            assert mine
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


_COUNTING_CHILD = textwrap.dedent(
    """
    import signal, sys, time
    out = sys.argv[1]
    def note(number, frame):
        with open(out, "a") as handle:
            handle.write(signal.Signals(number).name + "\\n")
    signal.signal(signal.SIGINT, note)
    signal.signal(signal.SIGTERM, note)
    open(out + ".ready", "w").close()
    time.sleep(60)
    """
)


def test_each_stop_signal_reaches_each_worker_exactly_once(tmp_path):
    from study.system import StopSignal

    logs = [tmp_path / f"worker{n}.log" for n in (1, 2)]
    workers = [
        subprocess.Popen([sys.executable, "-c", _COUNTING_CHILD, str(log)], start_new_session=True)
        for log in logs
    ]
    try:
        for log in logs:
            wait_until(lambda log=log: Path(f"{log}.ready").exists(), 30, "worker ready")
        received = StopSignal()
        before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        with _forwarded_signals(workers, received):
            os.kill(os.getpid(), signal.SIGINT)  # what a terminal's Ctrl-C does to us
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGTERM)
            for log in logs:
                wait_until(
                    lambda log=log: log.exists() and len(log.read_text().split()) == 2,
                    10,
                    "two forwarded signals",
                )
        assert received.name == "SIGINT"  # the first one names the stop
        for log in logs:
            assert log.read_text().split() == ["SIGINT", "SIGTERM"]
        # the handlers are ours no more once the workers are done
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()


def test_jobs_below_one_is_refused_before_anything_is_written(tmp_path, suite, capsys):
    store = tmp_path / "store"
    with pytest.raises(ValueError, match="--jobs must be an integer >= 1, got 0"):
        run_suite(suite, store=str(store), jobs=0)
    code = main(["suite", "run", suite.path, "--store", str(store), "--jobs", "0"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "actmix-study: error: --jobs must be an integer >= 1, got 0"
    ]
    assert not store.exists()
