import os

import pytest


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray per test module, stopped by its own handle."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield ray
    ray.shutdown()
