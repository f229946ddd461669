"""Security: a local Ray listens on 127.0.0.1 only, without a dashboard and with token
authentication on; specs load with a safe YAML loader; checkpoints refuse pickled code; keys in the
environment, which Ray Tune copies into every trial's runtime_env and Ray logs, are refused before
any compute; with keys in a credentials file and tokens in its environment, a real `gloss run` on
object storage writes none of them to the bucket, its report, its temporary files or Ray's logs."""

import contextlib
import ipaddress
import os
import pickle
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import torch
import yaml

from common.errors import ConfigError
from study.ray_session import COPIED_SECRETS, FORWARDED
from study.spec import parse_yaml
from tests.processes import start_gloss
from tests.s3_server import _boto_credentials, s3_server, write_credentials
from trainables.checkpoint import STATE_FILE, load_state, save_state


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


def secrets_found(roots: list[Path], values: dict[str, str]) -> set[tuple[Path, str]]:
    """(file, secret name) for every regular file under `roots` whose bytes contain a secret."""
    found = set()
    for path in (p for root in roots for p in root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            content = path.read_bytes()
            found |= {(path, name) for name, value in values.items() if value.encode() in content}
    return found


def workers_holding(gloss: subprocess.Popen, values: dict[str, str]) -> set[str]:
    """Until `gloss` ends, the titles of its Ray worker processes whose environment holds `values`."""
    titles = set()
    while gloss.poll() is None:
        with contextlib.suppress(psutil.Error):
            for process in psutil.Process(gloss.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    title = " ".join(process.cmdline())
                    environment = process.environ()
                    if title.startswith("ray::") and all(environment.get(k) == v for k, v in values.items()):
                        titles.add(title.split()[0])
        time.sleep(0.1)
    return titles


def secrets_spec(folder: Path) -> Path:
    spec = folder / "spec.yaml"
    training = {"train_size": 48, "eval_size": 40, "max_length": 32, "batch_size": 16, "epochs": 1}
    study = {"name": "secrets", "kind": "grid", "model": "tiny-bert", "datasets": ["r8"], "losses": ["ce"]}
    spec.write_text(yaml.safe_dump({**study, "training": training}))
    return spec


def test_ray_tune_would_copy_aws_keys_into_every_trials_runtime_env(monkeypatch):
    """The leak gloss guards against, shown on Ray itself (the control for the refusal below):
    with a key in the driver's environment, Tune's actor class carries it in its runtime_env,
    which Ray's runtime-env agent logs on every node."""
    from ray.tune.execution.class_cache import ENV_VARS_TO_PROPAGATE, _ActorClassCache

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "planted-secret")
    remote = _ActorClassCache().get(Payload)
    assert remote._default_options["runtime_env"]["env_vars"]["AWS_SECRET_ACCESS_KEY"] == "planted-secret"
    copied = {name for name in ENV_VARS_TO_PROPAGATE if re.search("SECRET|TOKEN|PASSWORD", name)}
    assert copied <= set(COPIED_SECRETS), "gloss refuses every secret Ray Tune copies"


def test_keys_in_the_environment_are_refused_before_any_compute(tmp_path, data_dir):
    log, temp = tmp_path / "gloss.log", tmp_path / "ray-temp"
    env = {"AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(24), "RAY_TMPDIR": str(temp)}
    args = ["run", str(secrets_spec(tmp_path)), "--storage", str(tmp_path / "out")]
    args += ["--data-dir", str(data_dir)]
    assert start_gloss(args, log, env=env).wait(timeout=120) == 2, log.read_text()[-3000:]
    errors = [line for line in log.read_text().splitlines() if line.startswith("gloss: error:")]
    assert len(errors) == 1 and "AWS_SECRET_ACCESS_KEY is set" in errors[0], log.read_text()
    assert "credentials file" in errors[0]
    assert not (tmp_path / "out" / "secrets").exists() and not temp.exists(), "nothing ran"
    assert env["AWS_SECRET_ACCESS_KEY"] not in log.read_text()


def test_forwarded_variables_hold_no_secret(monkeypatch):
    """What `--address` hands every trial through the job's runtime_env: endpoint and region
    only, whatever secrets the driver's environment holds (control: a forwarded secret is found)."""
    import ray

    from study import ray_session

    values = {name: secrets.token_hex(8) for name in (*COPIED_SECRETS, "AWS_ACCESS_KEY_ID", "HF_TOKEN")}
    for name, value in {**values, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)
    seen = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.append(kwargs["runtime_env"]))

    def leaked() -> set[str]:
        seen.clear()
        ray_session.connect("auto")
        forwarded = seen[0]["env_vars"]
        return {name for name, value in values.items() if value in forwarded.values()}

    assert leaked() == set() and set(seen[0]["env_vars"]) <= set(FORWARDED)
    monkeypatch.setattr(ray_session, "FORWARDED", (*FORWARDED, "AWS_SECRET_ACCESS_KEY"))
    assert leaked() == {"AWS_SECRET_ACCESS_KEY"}


def test_no_secret_reaches_the_bucket_the_report_or_rays_logs(tmp_path, data_dir):
    """A run on object storage whose keys are in a credentials file: the trials write to the
    bucket with them, and no key, token or Ray token is written anywhere it leaves files."""
    token_file = Path.home() / ".ray" / "auth_token"
    # The run's own temporary folder, Ray's included (a short path: Ray's sockets live there).
    temp = Path(tempfile.mkdtemp(prefix="gloss-sec-", dir="/tmp"))
    try:
        with s3_server(tmp_path / "s3.log") as server:
            values = {
                "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(24),
                "HF_TOKEN": f"hf_{secrets.token_hex(16)}",
            }
            keys = tmp_path / "keys" / "credentials"
            keys.parent.mkdir()
            write_credentials(keys, secret=values["AWS_SECRET_ACCESS_KEY"])
            if token_file.exists():
                values["ray auth token"] = token_file.read_text().strip()
            env = {
                **server.env,
                "AWS_SHARED_CREDENTIALS_FILE": str(keys),
                "HF_TOKEN": values["HF_TOKEN"],
                "RAY_TMPDIR": str(temp),
                "TMPDIR": str(temp),
            }
            log = temp / "gloss.log"
            args = ["run", str(secrets_spec(tmp_path)), "--storage", server.uri("studies")]
            gloss = start_gloss([*args, "--data-dir", str(data_dir)], log, env=env)
            holders = workers_holding(gloss, {"HF_TOKEN": values["HF_TOKEN"]})
            assert gloss.wait(timeout=300) == 0, log.read_text()[-3000:]
            assert holders, "Ray's workers ran with the token in their environment"
            bucket = download(server, "studies/secrets", tmp_path / "bucket")
        assert list(bucket.rglob("result.json")) and list(bucket.rglob("report.html")), "trials used the keys"
        # Each log once, by its real path (session_latest is a link to the session folder).
        ray_logs = sorted({p.resolve() for p in temp.glob("ray/session_*/logs/*") if p.is_file()})
        assert any(p.name == "runtime_env_agent.log" for p in ray_logs), "Ray's session is in this folder"
        roots = [bucket, temp]
        leaked = secrets_found(roots, values)
        # Control: secrets planted in the middle of a Ray log and in a record are found there.
        planted_log = max(ray_logs, key=lambda p: p.stat().st_size)
        content = planted_log.read_bytes()
        planted_log.write_bytes(
            content[: len(content) // 2] + values["HF_TOKEN"].encode() + content[len(content) // 2 :]
        )
        record = next(bucket.rglob("result.json"))
        record.write_bytes(record.read_bytes() + values["AWS_SECRET_ACCESS_KEY"].encode())
        planted = {(planted_log, "HF_TOKEN"), (record, "AWS_SECRET_ACCESS_KEY")}
        assert secrets_found(roots, values) == leaked | planted
        assert leaked == set()
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def download(server, prefix: str, folder: Path) -> Path:
    """Every object under `prefix` in the server's bucket, as files under `folder`."""
    import boto3

    client = boto3.client("s3", endpoint_url=server.endpoint, **_boto_credentials())
    for key in (key for key in server.keys(prefix + "/") if not key.endswith("/")):  # not folder markers
        target = folder / key.removeprefix(prefix + "/")
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(server.bucket, key, str(target))
    return folder
