"""A trial's CPU threads follow the free trial slots of its node.

A trial starts with the CPUs Ray gave it. When CPUs of a one-node Ray stay free for two
epochs in a row (the study's last trials, or a pack running alone while the slot beside
it is empty), the trial takes them as extra torch threads, and gives them back as soon
as another trial holds them. Training is the same with any number of threads (a test
in ``tests/actmix/test_trainer.py`` checks it bit for bit), so this changes time only.
On a cluster a trial keeps its own CPUs: free CPUs may be on another node.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["ThreadShare", "free_cpus_of_one_node"]


def free_cpus_of_one_node() -> int:
    """CPUs no trial holds, on a one-node Ray (0 on a cluster or outside Ray)."""
    import ray

    if not ray.is_initialized():
        return 0
    return int(ray.available_resources().get("CPU", 0.0))


class ThreadShare:
    """``update()`` once per epoch; the current thread count is ``threads``."""

    def __init__(
        self, own: int, *, free: Callable[[], int] | None = None, cpus: int | None = None
    ) -> None:
        import torch

        self.own = max(1, own)
        self.cpus = (
            cpus
            or (
                len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
            )
            or 1
        )
        self.free = free if free is not None else _one_node_free()
        self.threads = self.own
        self._seen = self.own  # what the previous epoch would have taken
        torch.set_num_threads(self.threads)

    def update(self) -> int:
        import torch

        wanted = min(self.cpus, self.own + max(0, self.free()))
        # more threads only when the CPUs stayed free since the last epoch; fewer at once
        target = wanted if wanted <= self.threads or wanted == self._seen else self.threads
        self._seen = wanted
        if target != self.threads:
            self.threads = target
            torch.set_num_threads(target)
        return self.threads


def _one_node_free() -> Callable[[], int]:
    import ray

    if not ray.is_initialized() or len([n for n in ray.nodes() if n.get("Alive")]) != 1:
        return lambda: 0
    return free_cpus_of_one_node
