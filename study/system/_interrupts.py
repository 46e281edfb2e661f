"""Ctrl-C and SIGTERM during a study: stop gracefully once, then hard; never look finished.

Ray Tune catches SIGINT itself: it ends the run, saves its state and returns from
``fit()`` as if the study were done, so the caller could not tell (and SIGTERM it does
not catch at all). While Tune runs, :func:`stop_signals` takes SIGINT and SIGTERM,
records which arrived and hands over to the graceful stop Tune also listens for
(its SIGUSR1 handler); a second signal gets the handler that was there before
(``KeyboardInterrupt`` for SIGINT, termination for SIGTERM). Signal handlers can only
be set from the main thread; elsewhere the context does nothing.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

__all__ = [
    "EXIT_INTERRUPTED",
    "StopSignal",
    "StudyInterrupted",
    "request_stop",
    "sigterm_interrupts",
    "stop_signals",
]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_TUNE_SIGINT = "TUNE_DISABLE_SIGINT_HANDLER"  # read by Tune when fit() starts


class StudyInterrupted(KeyboardInterrupt):
    """A study stopped by a signal, its state saved: ``resume`` continues it."""

    def __init__(self, study: str, signal_name: str) -> None:
        super().__init__(f"study {study} interrupted by {signal_name}")
        self.study = study
        self.signal_name = signal_name


@dataclass
class StopSignal:
    """Which stop signal arrived inside :func:`stop_signals`, if any (e.g. ``"SIGINT"``)."""

    name: str | None = None


# the graceful stops of the stop_signals blocks running now (innermost last)
_STOPS: list[Callable[[str, FrameType | None], None]] = []


def request_stop(reason: str) -> bool:
    """Stop the running study as a Ctrl-C would (state saved, resumable), ``reason`` taking
    the signal's place in what it says; False when no study runs in this thread."""
    if not _STOPS or threading.current_thread() is not threading.main_thread():
        return False
    _STOPS[-1](reason, None)
    return True


@contextmanager
def stop_signals() -> Iterator[StopSignal]:
    """Catch SIGINT and SIGTERM around ``Tuner.fit()``; see the module docstring."""
    received = StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {number: signal.getsignal(number) for number in _SIGNALS}
    # a SIGUSR1 handler left by an earlier fit() would set that run's (finished) event
    previous_usr1 = signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    previous_tune = os.environ.get(_TUNE_SIGINT)

    def stop(reason: str, frame: FrameType | None) -> None:
        received.name = reason
        for other, handler in previous.items():
            signal.signal(other, handler)  # the next signal stops at once
        tune_stop = signal.getsignal(signal.SIGUSR1)
        if not callable(tune_stop):
            raise KeyboardInterrupt  # Tune has not started yet: nothing to stop gracefully
        tune_stop(signal.SIGUSR1, frame)

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop(signal.Signals(number).name, frame)

    for number in _SIGNALS:
        signal.signal(number, on_signal)
    os.environ[_TUNE_SIGINT] = "1"
    _STOPS.append(stop)
    try:
        yield received
    finally:
        _STOPS.remove(stop)
        for number, handler in previous.items():
            signal.signal(number, handler)
        if previous_usr1 is not None:  # None: a handler set outside Python, left as is
            signal.signal(signal.SIGUSR1, previous_usr1)
        if previous_tune is None:
            os.environ.pop(_TUNE_SIGINT, None)
        else:
            os.environ[_TUNE_SIGINT] = previous_tune


@contextmanager
def sigterm_interrupts(
    interruption: Callable[[], KeyboardInterrupt] = KeyboardInterrupt,
) -> Iterator[None]:
    """SIGTERM raises ``interruption()`` in the block, as Ctrl-C raises KeyboardInterrupt.

    A command then ends the same way for both, also outside a study (loading data,
    starting Ray, a suite's retraining); :func:`stop_signals` takes over inside one.
    SIGINT with Python's default handler gets the same handler with ``KeyboardInterrupt``.
    A signal that arrives while the garbage collector runs a callback (a finalizer, a
    weakref callback) would raise where Python prints the exception and drops it
    ("Exception ignored in ..."); ``sys.unraisablehook`` sees that, and the signal is
    delivered again a moment later, in the code the callback interrupted.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    last: list[int] = []  # the signal whose handler raised last

    def handler(raised: Callable[[], KeyboardInterrupt]) -> Callable[..., None]:
        def interrupt(number: int, _frame: FrameType | None) -> None:
            last[:] = [number]
            raise raised()

        return interrupt

    previous_hook = sys.unraisablehook

    def unraisable(info: Any) -> None:
        if isinstance(info.exc_value, KeyboardInterrupt) and last:
            threading.Timer(0.05, os.kill, (os.getpid(), last[0])).start()
            return
        previous_hook(info)

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, handler(interruption))}
    # SIGINT ignored (a background job) or handled by someone else is left alone
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, handler(KeyboardInterrupt))
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for number, handler_before in previous.items():
            signal.signal(number, handler_before)
