"""A Ray cluster on this machine whose nodes share nothing but a network and an object store.

Each test host is a network namespace on a private bridge, with an address chosen here; each Ray
node also runs in its own mount namespace with a private tmpfs on /tmp and its HOME inside it, so
a folder one node writes is invisible to the others, as on separate machines. An S3-compatible
server (moto) runs on a host of its own and is the only storage every node can reach. Nodes get
their own credentials and Ray's token in their environment, as a real cluster's nodes would.

Traffic stays on the bridge's addresses. `close` kills every process in every namespace and
removes the namespaces and links, also after a failure; `leftovers` lists any that remain."""

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.s3_server import S3Server, s3_server

RAY_PORT = 6379
PREFIX = "gls"


@dataclass(frozen=True)
class Host:
    """A test host: its namespace, its address on the bridge, its root-side link."""

    name: str
    address: str

    @property
    def link(self) -> str:
        return f"{self.name}-v"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def namespace_pids(host: Host) -> list[int]:
    found = ip("netns", "pids", host.name, check=False).stdout.split()
    return [int(pid) for pid in found]


def leftovers() -> list[str]:
    """Namespaces and links of earlier runs (all names start with the prefix)."""
    names = ip("netns", "list", check=False).stdout.split()
    links = ip("-o", "link", "show", check=False).stdout.split("\n")
    return [n for n in names if n.startswith(PREFIX)] + [
        line.split(":")[1].strip().split("@")[0] for line in links if f": {PREFIX}" in line
    ]


@dataclass
class NetnsCluster:
    """A head (takes no trials), `workers` worker nodes of one CPU, and an S3 host."""

    scratch: Path
    workers: int = 2
    subnet: str = field(default_factory=lambda: f"10.231.{secrets.randbelow(200) + 20}")
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    hosts: dict[str, Host] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    s3: S3Server | None = None

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.tag}br"

    @property
    def head(self) -> Host:
        return self.hosts["head"]

    @property
    def address(self) -> str:
        return f"{self.head.address}:{RAY_PORT}"

    def worker(self, index: int) -> Host:
        return self.hosts[f"w{index}"]

    # -- network ---------------------------------------------------------------------------------
    def add_host(self, role: str, last_octet: int) -> Host:
        host = Host(f"{PREFIX}{self.tag}{role}", f"{self.subnet}.{last_octet}")
        ip("netns", "add", host.name)
        ip("link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", host.name)
        ip("link", "set", host.link, "master", self.bridge, "up")
        inside = ("netns", "exec", host.name, "ip")
        ip(*inside, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip(*inside, "link", "set", "eth0", "up")
        ip(*inside, "link", "set", "lo", "up")
        self.hosts[role] = host
        return host

    def build_network(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        self.add_host("s3", 5)
        self.add_host("head", 10)
        for index in range(1, self.workers + 1):
            self.add_host(f"w{index}", 10 + index)

    # -- processes -------------------------------------------------------------------------------
    def node_env(self) -> dict[str, str]:
        """What a node of a real cluster would have: its own credentials and settings, Ray's
        token, the data folder, the project's Python on PATH; nothing from this test process."""
        bin_dir = str(Path(sys.executable).parent)
        return {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp/home",
            "LANG": "C.UTF-8",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_USAGE_STATS_ENABLED": "0",
            "GLOSS_DATA_DIR": os.environ["GLOSS_DATA_DIR"],
            "GLOSS_CACHE_DIR": "/tmp/gloss-cache",
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            **self.s3.env,
        }

    def in_host(self, host: Host, command: list[str]) -> list[str]:
        """`command` inside `host`'s network namespace and a fresh mount namespace whose /tmp is
        a private tmpfs (HOME lives there)."""
        script = f'hostname {host.name} && mount -t tmpfs tmpfs /tmp && mkdir -p "$HOME" && exec "$@"'
        private = ["unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c", script, "sh"]
        return ["ip", "netns", "exec", host.name, *private, *command]

    def start_node(self, role: str, *ray_args: str) -> None:
        host = self.hosts[role]
        command = ["ray", "start", "--block", f"--node-ip-address={host.address}", *ray_args]
        with open(self.scratch / f"{role}.log", "w") as log:
            self.processes[role] = subprocess.Popen(
                self.in_host(host, command), stdout=log, stderr=subprocess.STDOUT, env=self.node_env()
            )

    def start(self) -> None:
        self.build_network()
        self.s3 = self._start_s3()
        self.start_node(
            "head",
            "--head",
            f"--port={RAY_PORT}",
            "--num-cpus=0",
            "--num-gpus=0",
            "--include-dashboard=false",
        )
        self.wait_for_nodes(1)
        for index in range(1, self.workers + 1):
            self.start_node(f"w{index}", f"--address={self.address}", "--num-cpus=1", "--num-gpus=0")
        self.wait_for_nodes(1 + self.workers)

    def _start_s3(self) -> S3Server:
        host = self.hosts["s3"]
        context = s3_server(
            self.scratch / "s3.log", host=host.address, prefix=("ip", "netns", "exec", host.name)
        )
        self._s3_context = context
        return context.__enter__()

    def on_head(self, command: list[str]) -> list[str]:
        """`command` inside the head's namespaces (its network and its private /tmp), as a
        driver on the head machine runs."""
        pid = self.processes["head"].pid
        return ["nsenter", f"--target={pid}", "--net", "--mount", "--uts", "--", *command]

    def head_path(self, path: str) -> Path:
        """A path inside the head's private mount namespace, seen from here."""
        return Path(f"/proc/{self.processes['head'].pid}/root") / path.lstrip("/")

    def driver(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        """`gloss ARGS` on the head, joined to the cluster with the token (unless `env` says
        otherwise)."""
        command = self.on_head([sys.executable, "-m", "study.cli", *args])
        repo = Path(__file__).resolve().parents[2]
        with open(log, "w") as handle:
            return subprocess.Popen(
                command, cwd=repo, stdout=handle, stderr=subprocess.STDOUT, env=env or self.node_env()
            )

    def alive_nodes(self) -> int:
        probe = "import ray; ray.init(address='auto'); print(sum(n['Alive'] for n in ray.nodes()))"
        run = subprocess.run(
            self.on_head([sys.executable, "-c", probe]),
            capture_output=True,
            text=True,
            env={**self.node_env(), "RAY_ADDRESS": self.address},
            timeout=60,
        )
        return int(run.stdout.split()[-1]) if run.returncode == 0 and run.stdout.split() else 0

    def wait_for_nodes(self, count: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while self.alive_nodes() < count:
            for role, process in self.processes.items():
                if process.poll() is not None:
                    log = (self.scratch / f"{role}.log").read_text()[-2000:]
                    raise RuntimeError(f"Ray node {role} exited: {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"fewer than {count} Ray nodes alive after {timeout_s} s")
            time.sleep(1)

    def kill_host(self, role: str) -> None:
        """SIGKILL every process of one host at once: its raylet, its workers, everything."""
        for pid in namespace_pids(self.hosts[role]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        for role in self.hosts:
            self.kill_host(role)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        if self.s3 is not None:
            with contextlib.suppress(Exception):
                self._s3_context.__exit__(None, None, None)
        for host in self.hosts.values():
            ip("link", "del", host.link, check=False)
            ip("netns", "del", host.name, check=False)
        ip("link", "del", self.bridge, check=False)


@contextlib.contextmanager
def netns_cluster(scratch: Path, workers: int = 2) -> Iterator[NetnsCluster]:
    """A started cluster, always torn down."""
    scratch.mkdir(parents=True, exist_ok=True)
    cluster = NetnsCluster(scratch, workers)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


def available() -> str:
    """Why this machine cannot host the test cluster, or '' when it can."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    missing = [tool for tool in ("ip", "unshare", "nsenter") if shutil.which(tool) is None]
    return f"needs {', '.join(missing)}" if missing else ""
