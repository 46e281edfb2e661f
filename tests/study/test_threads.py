"""A trial's threads follow the free CPUs of its node (no Ray: the free count is given)."""

from __future__ import annotations

import torch

from study.run._threads import ThreadShare


def test_threads_grow_into_cpus_free_two_epochs_running_and_shrink_at_once():
    previous = torch.get_num_threads()
    free = iter([1, 1, 0, 1, 1, 5, 0])
    try:
        share = ThreadShare(1, free=lambda: next(free), cpus=4)
        assert torch.get_num_threads() == 1
        seen = [share.update() for _ in range(7)]
        # free once: wait; free again: take it; taken back: give it up; 5 free: capped at 4
        assert seen == [1, 2, 1, 1, 2, 2, 1]
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


def test_a_trial_outside_ray_keeps_its_own_cpus():
    previous = torch.get_num_threads()
    try:
        share = ThreadShare(2, cpus=8)
        assert [share.update() for _ in range(3)] == [2, 2, 2]
    finally:
        torch.set_num_threads(previous)
