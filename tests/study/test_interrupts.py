"""Stop signals around Tune's fit(), by hand: no Ray (the study-level test is in test_faults)."""

from __future__ import annotations

import os
import signal

import pytest

from study.system import stop_signals


@pytest.fixture
def handlers():
    """Test handlers as the ones "before": the second signal must reach them, not kill pytest."""
    seen: list[str] = []

    def before(number, frame):
        del frame
        seen.append(f"before:{signal.Signals(number).name}")

    saved = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    signal.signal(signal.SIGINT, before)
    signal.signal(signal.SIGTERM, before)
    yield seen
    for number, handler in saved.items():
        signal.signal(number, handler)


def _tune_started(seen: list[str]) -> None:
    """What Tune's fit() does: a SIGUSR1 handler that stops the run gracefully."""
    signal.signal(signal.SIGUSR1, lambda *_: seen.append("tune stops"))


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_stops_tune_gracefully_and_the_second_reaches_the_old_handler(
    handlers, number
):
    with stop_signals() as received:
        assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"  # Tune leaves SIGINT to us
        _tune_started(handlers)
        os.kill(os.getpid(), number)
        assert received.name == signal.Signals(number).name
        assert handlers == ["tune stops"]
        os.kill(os.getpid(), number)  # impatient: the handler from before takes it
        assert handlers == ["tune stops", f"before:{signal.Signals(number).name}"]
    assert "TUNE_DISABLE_SIGINT_HANDLER" not in os.environ
    assert signal.getsignal(signal.SIGINT).__name__ == "before"


def test_a_signal_before_tune_started_interrupts_at_once(handlers):
    signal.signal(signal.SIGUSR1, lambda *_: handlers.append("an earlier fit"))
    with pytest.raises(KeyboardInterrupt), stop_signals() as received:
        os.kill(os.getpid(), signal.SIGTERM)
    assert received.name == "SIGTERM"
    assert handlers == []  # the stale handler of an earlier fit() was not called


def test_without_a_signal_nothing_is_recorded_and_the_handlers_come_back(handlers):
    with stop_signals() as received:
        _tune_started(handlers)
    assert received.name is None and handlers == []
    assert signal.getsignal(signal.SIGTERM).__name__ == "before"


def test_sigterm_interrupts_like_ctrl_c_inside_the_block_only():
    import time

    from study.system import sigterm_interrupts

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted long before
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_signal_dropped_in_a_garbage_collector_callback_is_delivered_again():
    import sys
    import time
    import weakref

    from study.system import sigterm_interrupts

    class Thing:
        pass

    def callback(_reference) -> None:
        # the handler runs inside this callback, called from C: what it raises is dropped
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):
            pass

    hook = sys.unraisablehook
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), sigterm_interrupts():
        thing = Thing()
        reference = weakref.ref(thing, callback)
        del thing
        time.sleep(5)  # the signal comes again and interrupts this
    assert time.monotonic() - started < 4 and reference() is None
    assert sys.unraisablehook is hook
