"""A real S3-compatible HTTP server for tests: moto's standalone server in its own process, on
127.0.0.1 (or on a test host's address inside a network namespace), with one bucket made.

Clients find it the standard way, through AWS_ENDPOINT_URL and dummy credentials, so the code
under test talks to it exactly as it would talk to AWS, MinIO or Ceph."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "gloss-test",
    "AWS_SECRET_ACCESS_KEY": "gloss-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass(frozen=True)
class S3Server:
    """A running server: its endpoint, its bucket, and the environment a client needs."""

    endpoint: str
    bucket: str
    credentials_file: Path

    @property
    def env(self) -> dict[str, str]:
        """What a client needs: the endpoint, the region, and the keys in a credentials file, as
        gloss asks (keys in the environment would reach Ray's logs)."""
        return {
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_file),
            "AWS_DEFAULT_REGION": CREDENTIALS["AWS_DEFAULT_REGION"],
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under `prefix` in the bucket."""
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, **_boto_credentials())
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_until_listening(host: str, port: int, process: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with status {process.returncode}")
        with contextlib.suppress(OSError):
            socket.create_connection((host, port), timeout=1).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"moto server did not listen on {host}:{port} within {timeout_s} s")


@contextlib.contextmanager
def s3_server(
    log: Path, bucket: str = "gloss-test", host: str = "127.0.0.1", prefix: tuple[str, ...] = ()
) -> Iterator[S3Server]:
    """Start moto's server (`prefix` runs it inside a namespace, e.g. `ip netns exec NAME`), make
    `bucket`, and stop the server when the block ends."""
    port = free_port("127.0.0.1") if host == "127.0.0.1" else 9000
    command = [*prefix, sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=_server_env())
    try:
        if not prefix:
            wait_until_listening(host, port, process)
        server = S3Server(f"http://{host}:{port}", bucket, write_credentials(log.parent / "aws-credentials"))
        _make_bucket(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_credentials(path: Path, secret: str = CREDENTIALS["AWS_SECRET_ACCESS_KEY"]) -> Path:
    """Keys as the default profile of an AWS credentials file, readable by its owner only (moto
    takes any secret)."""
    path.touch(mode=0o600)
    path.write_text(
        f"[default]\naws_access_key_id = {CREDENTIALS['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {secret}\n"
    )
    return path


def _server_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}


def _make_bucket(server: S3Server, process: subprocess.Popen, timeout_s: float = 30) -> None:
    """Create the bucket, retrying while a server in another namespace starts."""
    import boto3
    import botocore.exceptions

    client = boto3.client("s3", endpoint_url=server.endpoint, **_boto_credentials())
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.create_bucket(Bucket=server.bucket)
            return
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
