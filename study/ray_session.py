"""Connect to Ray: a local instance that listens on 127.0.0.1 only (dashboard off unless asked),
or an existing cluster at --address."""

import contextlib
import os
import socket
from collections.abc import Iterator

from common.errors import GlossError

LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# Where an S3-compatible store is and which region: settings, not secrets, so the driver hands
# them to every trial on the cluster. Credentials stay with each node (its instance profile).
FORWARDED = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION")
# Ray Tune copies these from the driver's environment into every trial's runtime_env
# (ray/tune/execution/class_cache.py, ENV_VARS_TO_PROPAGATE), and Ray's runtime-env agent writes
# each runtime_env, values included, to logs/runtime_env_agent.log on every node: secrets that a
# run must not hold in its environment.
COPIED_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
# Ray calls this with each trial's W&B run in its logging actor (see study.tracking); a local Ray
# inherits it from the driver, a cluster's head from its own environment.
WANDB_HOOK = ("WANDB_PROCESS_RUN_INFO_HOOK", "study.tracking.finish_waits_for_wandb")


def prepare_environment(address: str | None) -> None:
    """Before Ray is imported (it reads these at import time): gloss's folders become absolute
    for the trials, a local Ray binds to loopback only, and Tune's console tables give way to
    gloss's progress line."""
    for name in ("GLOSS_DATA_DIR", "GLOSS_CACHE_DIR"):  # trials run in their own folders
        if os.environ.get(name):
            os.environ[name] = os.path.abspath(os.path.expanduser(os.environ[name]))
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports leave the machine
    os.environ.setdefault(*WANDB_HOOK)  # W&B runs are written whole before Ray ends their actor
    # A reused trial actor waits for the previous trial's thread to end (ASHA stopped it) at most
    # this long; Tune's 2 s default loses the next trial on a busy machine.
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", "60")
    # With frequent checkpoints (every epoch by default) and short frozen-fidelity epochs Tune
    # snapshots its experiment state often, which is cheap locally and needs no warning each time.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's default loggers off: run_phase adds the JSON (result.json, what gloss's analysis reads)
    # and CSV loggers itself, and TensorBoard only when `tracking` asks for it.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    if address is None:
        os.environ[LOCAL_ONLY] = "0"


def refuse_copied_secrets() -> None:
    """Refuse, before any compute, a run whose environment holds a secret Ray would write to its
    logs; the same keys in a credentials file reach every trial (AWS's own client chain reads it)
    and no log."""
    found = [name for name in COPIED_SECRETS if os.environ.get(name)]
    if found:
        raise GlossError(
            f"{', '.join(found)} is set, and Ray Tune copies it into every trial's runtime_env, which "
            "Ray writes to its logs on every node; unset it (and AWS_ACCESS_KEY_ID) and keep the keys "
            "in a credentials file instead (`aws configure` writes ~/.aws/credentials; AWS_PROFILE or "
            "AWS_SHARED_CREDENTIALS_FILE chooses one), or use the nodes' instance role."
        )


def connect(address: str | None, *, dashboard: bool = False, num_cpus: int | None = None) -> None:
    """Start a local Ray, or join the cluster at `address` ('auto' or HOST:PORT)."""
    import ray

    if address not in (None, "auto"):
        check_reachable(address)
    if ray.is_initialized():
        return
    if address is None:
        ray.init(
            address="local",  # a new Ray of our own, never another cluster running here
            num_cpus=num_cpus,
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            log_to_driver=False,
            logging_level="warning",
        )
        return
    forwarded = {name: os.environ[name] for name in FORWARDED if os.environ.get(name)}
    try:
        ray.init(
            address=address,
            log_to_driver=False,
            logging_level="warning",
            runtime_env={"env_vars": forwarded} if forwarded else None,
        )
    except (ConnectionError, RuntimeError, ray.exceptions.AuthenticationError) as error:
        if not token_refused(error):
            raise GlossError(unreachable(address, str(error).splitlines()[0])) from None
        raise GlossError(
            f"the Ray cluster at {address} refused this client's token; give this machine the "
            "cluster's token (copy the head's ~/.ray/auth_token here, or set RAY_AUTH_TOKEN) and "
            "set RAY_AUTH_MODE=token."
        ) from None


@contextlib.contextmanager
def connected(address: str | None, *, dashboard: bool = False) -> Iterator[None]:
    """Connected to Ray for the block (see `connect`). A connection the block made ends with it:
    a local Ray stops as soon as the study's trials have, not at interpreter exit, where Ray
    first sleeps half a second for log lines this driver does not print. A Ray already
    connected (a notebook's, a test's) is left as it was."""
    import ray

    ours = not ray.is_initialized()
    connect(address, dashboard=dashboard)
    try:
        yield
    finally:
        if ours:
            ray.shutdown()


def token_refused(error: BaseException | None) -> bool:
    """Whether Ray's connection error, or an error it wraps, is the cluster refusing the token
    (Ray 2.60 reports a missing token as a failed connection whose cause names it)."""
    while error is not None:
        if "InvalidAuthToken" in str(error) or type(error).__name__ == "AuthenticationError":
            return True
        error = error.__cause__ or error.__context__
    return False


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, before Ray's long retries, when nothing listens at HOST:PORT."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise GlossError(f"--address {address}: write HOST:PORT (e.g. 10.0.0.5:6379) or auto.")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise GlossError(unreachable(address, error.strerror or str(error))) from None


def unreachable(address: str, reason: str) -> str:
    return (
        f"cannot reach a Ray cluster at {address} ({reason}); start one with `ray up cluster.yaml` "
        "or `ray start --head`, or drop --address to run on this machine."
    )
