"""``torch_threads``: a block's thread count, restored afterwards, bad counts refused."""

import pytest
import torch

from actmix._threads import torch_threads


def test_the_block_gets_its_threads_and_the_setting_comes_back():
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    with torch_threads(wanted):
        assert torch.get_num_threads() == wanted
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(wanted):
        raise RuntimeError("the block failed")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -1, True])
def test_a_thread_count_below_one_is_refused(bad):
    with pytest.raises(ValueError, match="threads must be >= 1"), torch_threads(bad):
        pass
