"""A real two-node Ray cluster on loopback: a study through --address uses both nodes."""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.study.processes import (
    descendants,
    free_port,
    kill_survivors,
    start_in_own_group,
    stop_group,
    study_command,
    wait_until,
)

pytestmark = [pytest.mark.cluster, pytest.mark.ray, pytest.mark.slow]

RAY = str(Path(sys.executable).with_name("ray"))


def _start_node(args: list[str], *, log: Path, env: Mapping[str, str]) -> subprocess.Popen:
    """``ray start --block``: the node lives in the process group this process leads."""
    node = start_in_own_group([RAY, "start", "--block", *args], log=log, env=env)
    wait_until(
        lambda: node.poll() is not None or "block forever" in log.read_text(),
        180,
        f"ray start {args[0]}",
    )
    assert node.poll() is None, log.read_text()[-3000:]
    return node


@pytest.fixture
def two_node_cluster(tmp_path):
    # Ray 2.60 heads require an auth token: every process of this cluster (head, worker,
    # driver) gets the same fresh one, nothing is read from or written to ~/.ray
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }
    port = free_port()
    address = f"127.0.0.1:{port}"
    # a head writes its address where a plain `ray.init()` on this host looks for a cluster
    # to join (<temp dir>/ray_current_cluster): never into everyone's /tmp/ray. Short,
    # as Ray's socket paths inside it must fit in 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    nodes: list[subprocess.Popen] = []
    spawned: dict[int, int] = {}
    try:
        nodes.append(
            _start_node(
                [
                    "--head",
                    f"--temp-dir={temp_dir}",
                    "--node-ip-address=127.0.0.1",
                    f"--port={port}",
                    "--num-cpus=1",
                    "--include-dashboard=false",
                    '--resources={"head_node": 1}',
                ],
                log=tmp_path / "head.log",
                env=env,
            )
        )
        nodes.append(
            _start_node(
                [
                    f"--address={address}",
                    "--node-ip-address=127.0.0.1",
                    "--num-cpus=1",
                    '--resources={"second_node": 1}',
                ],
                log=tmp_path / "worker.log",
                env=env,
            )
        )
        own_address_file = Path(temp_dir) / "ray_current_cluster"
        assert own_address_file.read_text().endswith(f":{port}"), "the head wrote it elsewhere"
        yield address, env
    finally:
        # this cluster's processes, and nobody else's Ray on this host
        for node in nodes:
            spawned.update(descendants(node.pid))
        for node in reversed(nodes):
            stop_group(node)
        outlived = kill_survivors(spawned, wait=30)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert not outlived, f"processes of the cluster outlived its nodes: {outlived}"


def test_study_through_address_runs_trials_on_both_nodes(two_node_cluster, tmp_path):
    address, env = two_node_cluster
    store = tmp_path / "store"
    command = study_command(
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
    )
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
