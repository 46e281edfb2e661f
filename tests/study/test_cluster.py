"""A real two-node Ray cluster on loopback: a study through --address uses both nodes."""

import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.cluster, pytest.mark.ray, pytest.mark.slow]

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def two_node_cluster():
    # Ray 2.60 heads require an auth token: every process of this cluster (head, worker,
    # driver) gets the same fresh one, nothing is read from or written to ~/.ray
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }
    port = _free_port()
    address = f"127.0.0.1:{port}"
    started = []

    def start(*args: str) -> None:
        subprocess.run([RAY, "start", *args], check=True, env=env, capture_output=True, timeout=180)
        started.append(args)

    try:
        start(
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=1",
            "--include-dashboard=false",
            '--resources={"head_node": 1}',
        )
        start(
            f"--address={address}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=1",
            '--resources={"second_node": 1}',
        )
        yield address, env
    finally:
        # `ray stop` ends the Ray processes this test started (both nodes share the host)
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_study_through_address_runs_trials_on_both_nodes(two_node_cluster, tmp_path):
    address, env = two_node_cluster
    store = tmp_path / "store"
    command = [
        sys.executable,
        "-c",
        "import sys; from study.cli import main; sys.exit(main())",
        "run",
        "--name",
        "cluster",
        "--address",
        address,
        "--trials",
        "4",
        "--folds",
        "2",
        "--epochs",
        "6",
        "--scheduler",
        "none",
        "--max-concurrent",
        "2",
        "--store",
        str(store),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cluster")
    children = client.search_runs(
        [experiment.experiment_id], "tags.`actmix.role` = 'trial'", max_results=100
    )
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    nodes = {c.data.tags["ray_node_id"] for c in children}
    # one CPU per node and two trials at a time: both nodes must have run trials
    assert len(nodes) == 2, nodes


def test_cluster_configs_are_complete():
    root = Path(__file__).resolve().parents[2] / "cluster"
    for name in ("aws.yaml", "gcp.yaml"):
        config = yaml.safe_load((root / name).read_text())
        node_types = config["available_node_types"]
        assert config["head_node_type"] in node_types
        assert any(t.get("resources", {}).get("GPU") for t in node_types.values()), name
        assert any("pip install -e ~/actmix-study" in c for c in config["setup_commands"]), name
        assert config["file_mounts"]["~/actmix-study"] == "."


def test_ray_cli_is_installed():
    assert shutil.which(RAY) or Path(RAY).exists()
