"""The study's log: while a study runs, Ray's log lines (tracebacks of faults gloss handles among
them) and Python's warnings go to a file, so the terminal shows gloss's own lines only.

A study on a path keeps its log in its folder (`<storage>/<study>/driver.log`); a study in object
storage keeps it on this machine, under the gloss cache (logs/<study>.log). Each run appends."""

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from common.paths import cache_root
from common.storage import is_uri, local_path

LOG_NAME = "driver.log"
# Ray's own logger (propagation off, one handler writing to stderr), Python's warnings, and the
# trackers' loggers (MLflow's INFO lines, its database migrations through alembic).
CAPTURED = ("ray", "py.warnings", "mlflow", "alembic")


def log_location(root: str, study: str) -> Path:
    """Where the run's log goes: the study's folder, or this machine's cache for a URI."""
    if is_uri(root):
        return cache_root() / "logs" / f"{study}.log"
    return local_path(root) / LOG_NAME


@contextlib.contextmanager
def messages_to(path: Path, verbose: bool = False) -> Iterator[Path]:
    """Send Ray's log lines and Python's warnings to `path` for the block, then put the handlers
    back as they were; with `verbose` they stay on the terminal as well."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    with open(path, "a", encoding="utf-8") as log:
        log.write(f"\n=== gloss run at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
    loggers = [logging.getLogger(name) for name in CAPTURED]
    saved = [(logger.handlers[:], logger.propagate) for logger in loggers]
    logging.captureWarnings(True)
    for logger in loggers:
        terminal = logger.handlers or [logging.StreamHandler()]
        logger.handlers = [*terminal, handler] if verbose else [handler]
        logger.propagate = False
    try:
        with contextlib.nullcontext() if verbose else raylet_errors_to(logging.getLogger("ray.raylet")):
            yield path
    finally:
        logging.captureWarnings(False)
        for logger, (handlers, propagate) in zip(loggers, saved, strict=True):
            logger.handlers, logger.propagate = handlers, propagate
        handler.close()


@contextlib.contextmanager
def raylet_errors_to(logger: logging.Logger) -> Iterator[None]:
    """Ray's driver prints the errors its raylets publish (a worker that died, with a paragraph
    of advice) straight to stdout, from a thread of its own (ray._private.worker's
    listen_error_messages calls the module's print_to_stdstream), and has no public switch for
    it: for the block those lines go to `logger`, every other line as Ray prints it."""
    import ray._private.worker as ray_worker

    original = ray_worker.print_to_stdstream

    def to_log(data: dict, ignore_prefix: bool) -> None:
        if data.get("pid") != "raylet":
            return original(data, ignore_prefix)
        for line in data.get("lines", []):
            logger.warning(line)

    ray_worker.print_to_stdstream = to_log
    try:
        yield
    finally:
        ray_worker.print_to_stdstream = original
