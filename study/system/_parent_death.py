"""Child processes that must not outlive the command that started them.

A child in a session of its own does not get the terminal's signals (its parent
forwards them exactly once), so nothing would stop it when the parent is killed
with SIGKILL. Linux can send it a signal when that happens (``PR_SET_PDEATHSIG``);
the child asks for it itself, at start-up, because a ``preexec_fn`` is unsafe in a
parent with threads (Ray's driver has many).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int, signal_number: int = signal.SIGTERM) -> bool:
    """Have the kernel send ``signal_number`` when the parent dies; False if it is gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal_number, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # a parent that died before the request was made sends nothing: we were re-parented
    return os.getppid() == parent_pid
