import pytest

from study.environment import apply_environment_defaults


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray per test module, stopped by its own handle."""
    apply_environment_defaults()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield ray
    ray.shutdown()
