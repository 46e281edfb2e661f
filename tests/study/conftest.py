import os

import pytest

from actmix._kernels import COMPILE_ENV
from study.system import apply_environment_defaults


@pytest.fixture(autouse=True, scope="module")
def eager_kernels():
    """The study tests run the eager kernels (``ACTMIX_COMPILE=0``), inherited by the Ray
    workers and commands they start.

    They train tiny models for a few epochs in many fresh processes, where compiling
    ActMix's kernels and the optimizer update costs seconds per process and pays nothing
    back (a measured third of these tests' time). The compiled kernels are tested in
    tests/actmix, against the eager ones.
    """
    previous = os.environ.get(COMPILE_ENV)
    os.environ[COMPILE_ENV] = "0"
    yield
    if previous is None:
        os.environ.pop(COMPILE_ENV, None)
    else:
        os.environ[COMPILE_ENV] = previous


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray per test module, stopped by its own handle."""
    apply_environment_defaults()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield ray
    ray.shutdown()
