"""Before any trial: the study's storage is writable here, and on a cluster readable and writable
from every alive node, so no trial dies at its first checkpoint.

Ray writes each trial's checkpoints from the node that runs it; a folder on the head that a
worker cannot see, or a bucket a worker has no credentials for, fails only then. One task per
node (pinned to it, needing no CPU, so a head that takes no trials is checked too) reads the
driver's marker and writes its own; the driver then reads every node's marker back."""

import secrets
import socket

import pyarrow.fs

from common.errors import ConfigError
from common.storage import exists, filesystem, is_uri, join, read_bytes, write_bytes

CHECK_FOLDER = ".gloss-storage-check"
TIMEOUT_S = 120.0


def check_writable(root: str) -> None:
    """Write, read and delete a marker under the study's root from this machine."""
    marker = join(root, CHECK_FOLDER, f"driver-{secrets.token_hex(4)}")
    try:
        write_bytes(marker, b"gloss")
        read_bytes(marker)
        _remove(join(root, CHECK_FOLDER))
    except (OSError, pyarrow.ArrowException) as error:
        raise ConfigError(
            f"storage: cannot write to {root} ({_reason(error)}); choose a writable "
            f"{'bucket URI and credentials' if is_uri(root) else 'folder'} with --storage."
        ) from None


def check_nodes_share(root: str) -> None:
    """Every alive node reads a marker the driver wrote under `root` and writes its own, which
    the driver reads back; the first node that cannot is named with the fix."""
    import ray

    folder = join(root, CHECK_FOLDER, secrets.token_hex(6))
    write_bytes(join(folder, "driver"), b"gloss")
    try:
        nodes = [node for node in ray.nodes() if node["Alive"]]
        probes = [_probe_on(node["NodeID"]).remote(folder) for node in nodes]
        try:
            answers = ray.get(probes, timeout=TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise ConfigError(
                f"storage: some nodes did not answer a storage check of {root} within {TIMEOUT_S:.0f} s; "
                "check that every node is healthy (`ray status`)."
            ) from None
        for node, (host, problem) in zip(nodes, answers, strict=True):
            if problem is None and not exists(join(folder, f"node-{node['NodeID']}")):
                problem = "its marker never reached the driver"
            if problem is not None:
                raise ConfigError(_unshared(root, node["NodeManagerAddress"], host, problem))
    finally:
        _remove(folder)


def _probe_on(node_id: str):
    """The check as a Ray task pinned to one node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    strategy = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
    return ray.remote(num_cpus=0, max_retries=0, scheduling_strategy=strategy)(probe_storage)


def probe_storage(folder: str) -> tuple[str, str | None]:
    """On one node: read the driver's marker and write this node's; (hostname, problem or None)."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    try:
        if not exists(join(folder, "driver")):
            return socket.gethostname(), "the driver's marker is not there"
        write_bytes(join(folder, f"node-{node_id}"), b"gloss")
    except (OSError, pyarrow.ArrowException) as error:
        return socket.gethostname(), _reason(error)
    return socket.gethostname(), None


def _unshared(root: str, address: str, host: str, problem: str) -> str:
    if is_uri(root):
        fix = (
            "give that node credentials for the bucket (an instance profile or role, see cluster.yaml) "
            "and the same AWS_ENDPOINT_URL, or choose a store every node can reach"
        )
    else:
        fix = (
            "use --storage s3://BUCKET/PREFIX (any URI every node reaches) or a folder every node "
            "mounts at the same path (NFS)"
        )
    return f"storage: node {address} ({host}) cannot use {root} ({problem}); {fix}."


def _reason(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


def _remove(location: str) -> None:
    fs, path = filesystem(location)
    try:
        fs.delete_dir(path)
    except (OSError, pyarrow.ArrowException):
        if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
            raise
