"""The cluster configs pass Ray's own validator offline and keep the promises the README makes."""

import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import REPO


def load(name: str) -> dict:
    config = prepare_config(yaml.safe_load((REPO / name).read_text()))
    validate_config(config)
    return config


def start_commands(config: dict) -> str:
    return " ".join(config["head_start_ray_commands"] + config["worker_start_ray_commands"])


def test_cloud_cluster_is_valid_and_safe():
    config = load("cluster.yaml")
    assert config["provider"]["type"] == "aws"
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"] == {"CPU": 0}, "the head takes no trials"
    workers = [t for name, t in config["available_node_types"].items() if name != config["head_node_type"]]
    assert workers and all(t["max_workers"] > t["min_workers"] for t in workers), "workers autoscale"
    assert "security_group" not in config["provider"], "no extra inbound ports"
    for worker in workers:
        node = worker["node_config"]
        assert node["IamInstanceProfile"], "workers reach the bucket with a profile of their own"
        assert node["ImageId"].startswith("ami-"), "a pinned GPU image with a current driver"
    assert any("torch.cuda.is_available()" in c for c in config["worker_setup_commands"])


def test_on_premises_cluster_is_valid():
    config = load("cluster-local.yaml")
    assert config["provider"]["type"] == "local" and config["provider"]["worker_ips"]
    assert "--num-cpus=0 --num-gpus=0" in " ".join(config["head_start_ray_commands"]), "head takes no trials"


def test_both_pin_the_project_ray_version_hide_the_dashboard_and_use_tokens():
    for name in ("cluster.yaml", "cluster-local.yaml"):
        config = load(name)
        assert config["docker"]["image"].startswith(f"rayproject/ray:{ray.__version__}-")
        commands = start_commands(config)
        assert "--dashboard-host=127.0.0.1" in commands and "0.0.0.0" not in commands
        assert any("pip install" in c and "gloss-study" in c for c in config["setup_commands"])
        assert "/home/ray/.ray/auth_token" in config["file_mounts"], "every node holds Ray's token"
        assert commands.count("RAY_AUTH_MODE=token") == 2, "head and workers start with token auth"
