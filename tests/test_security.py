"""Security: a local Ray listens on 127.0.0.1 only, without a dashboard and with token
authentication on; specs load with a safe YAML loader; checkpoints refuse pickled code; no secret
reaches result records or logs."""

import ipaddress
import os
import pickle
from pathlib import Path

import psutil
import pytest
import torch
import yaml

from study.cli import main
from study.spec import parse_yaml
from trainables.checkpoint import STATE_FILE, load_state, save_state
from trainables.errors import ConfigError


def is_loopback(ip: str) -> bool:
    """127.0.0.1, ::1, or IPv4 loopback mapped into IPv6 (::ffff:127.0.0.1)."""
    address = ipaddress.ip_address(ip)
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def ray_processes() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "ray" in " ".join(p.cmdline()).lower()]


def test_local_ray_listens_on_loopback_only_without_a_dashboard(local_ray):
    import ray

    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    processes = ray_processes()
    assert processes, "Ray's processes run under this test session"
    listening = [
        c for p in processes for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
    ]
    assert listening and all(is_loopback(c.laddr.ip) for c in listening), [c.laddr for c in listening]
    dashboards = [
        p.cmdline() for p in processes if any(part.endswith("dashboard.py") for part in p.cmdline())
    ]
    assert all("--disable-frontend" in command for command in dashboards), "no dashboard web UI"
    assert not any(c.laddr.port == 8265 for c in listening), "nothing serves the dashboard port"
    assert os.environ.get("RAY_AUTH_MODE", "token") != "disabled"
    assert (Path.home() / ".ray" / "auth_token").exists(), "Ray's token authentication is on"


def test_yaml_tags_that_run_code_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    text = f"name: !!python/object/apply:os.system ['touch {marker}']\nkind: grid\n"
    with pytest.raises(ConfigError, match=r"spec\.yaml:1:"):
        parse_yaml(text, "spec.yaml")
    assert not marker.exists()


class Payload:
    """Unpickling this would run a command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoints_load_weights_only(tmp_path):
    save_state({"epoch": 3, "model": {"w": torch.ones(2)}}, tmp_path)
    assert load_state(tmp_path)["epoch"] == 3
    marker = tmp_path / "pwned"
    with open(tmp_path / STATE_FILE, "wb") as handle:
        pickle.dump({"epoch": Payload(marker)}, handle)
    with pytest.raises(pickle.UnpicklingError):
        load_state(tmp_path)
    assert not marker.exists()


def test_no_secret_reaches_records_or_logs(tmp_path, data_dir, local_ray, monkeypatch):
    secrets = {"AWS_SECRET_ACCESS_KEY": "aws-secret-8c1f", "HF_TOKEN": "hf_secret_93ab"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    token = (Path.home() / ".ray" / "auth_token").read_text().strip()
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "secrets",
                "kind": "grid",
                "model": "tiny-bert",
                "datasets": ["r8"],
                "losses": ["ce"],
                "training": {"train_size": 40, "eval_size": 30, "max_length": 16, "epochs": 1},
            }
        )
    )
    assert main(["run", str(spec), "--storage", str(tmp_path / "out"), "--data-dir", str(data_dir)]) == 0
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert any(p.name == "result.json" for p in written)
    for path in written:
        content = path.read_bytes()
        for secret in [*secrets.values(), token]:
            assert secret.encode() not in content, f"{secret[:6]}... found in {path}"
