"""One driver per study: a lease in the study's storage (holder, host, pid, heartbeat).

A second `gloss run` of the same study (a resubmitted cluster job, a second terminal) is refused
while the first one's heartbeat goes on. A lease whose heartbeat has stopped, or whose holder is a
process of this machine that no longer exists, is taken over; `--take-over` takes a live one.
Object stores offer no atomic create-if-absent through pyarrow, so acquiring writes the lease,
waits for concurrent writers to land, and reads it back: the last writer holds it. Every
heartbeat reads the lease first, so a driver that lost it learns so and stops."""

import _thread
import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from common.atomic import running
from common.errors import GlossError, StudyInterrupted
from common.storage import exists, filesystem, is_uri, join, read_bytes, write_bytes

LEASE_FILE = ".gloss-lease.json"
HEARTBEAT_S = 20.0
STALE_AFTER_S = 90.0
#: How long acquiring waits for concurrent writers to land before reading the lease back.
SETTLE_S = {"uri": 2.0, "local": 0.2}


class LeaseLost(GlossError):
    """Another driver took this study over while this one ran."""


@dataclass(frozen=True)
class Lease:
    holder: str
    host: str
    pid: int
    started: float
    heartbeat: float

    def describe(self, now: float) -> str:
        return f"pid {self.pid} on {self.host}, last heartbeat {now - self.heartbeat:.0f} s ago"

    def alive(self, now: float, stale_after_s: float) -> bool:
        """Whether the holder may still run: a recent heartbeat, unless it is a process of this
        machine that is gone."""
        if self.host == socket.gethostname() and not running(self.pid):
            return False
        return now - self.heartbeat < stale_after_s


def read_lease(root: str) -> Lease | None:
    """The study's lease, or None when there is none (or it is unreadable)."""
    location = join(root, LEASE_FILE)
    if not exists(location):
        return None
    with contextlib.suppress(ValueError, TypeError, KeyError):
        return Lease(**json.loads(read_bytes(location)))
    return None


class StudyLease:
    """Hold the lease of the study at `root` while the block runs."""

    def __init__(self, root: str, take_over: bool = False, stale_after_s: float = STALE_AFTER_S) -> None:
        self.root, self.take_over, self.stale_after_s = root, take_over, stale_after_s
        self.holder = uuid.uuid4().hex
        self.started = time.time()
        self.stop = threading.Event()
        self.lost: str | None = None

    def _write(self) -> None:
        lease = Lease(self.holder, socket.gethostname(), os.getpid(), self.started, time.time())
        write_bytes(join(self.root, LEASE_FILE), json.dumps(asdict(lease)).encode())

    def acquire(self) -> None:
        """Take the lease or refuse in one line naming its holder."""
        current = read_lease(self.root)
        if current and not self.take_over and current.alive(time.time(), self.stale_after_s):
            raise GlossError(self._held_by(current))
        self._write()
        time.sleep(SETTLE_S["uri" if is_uri(self.root) else "local"])
        winner = read_lease(self.root)
        if winner is None or winner.holder != self.holder:
            raise GlossError(self._held_by(winner) if winner else f"{self.root}: the study lease vanished.")

    def _held_by(self, lease: Lease) -> str:
        return (
            f"study {self.root} is being run by another driver ({lease.describe(time.time())}); "
            "wait for it to end, or pass --take-over if it is gone."
        )

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            current = read_lease(self.root)
            if current is None or current.holder != self.holder:
                self.lost = current.describe(time.time()) if current else "the lease was removed"
                _thread.interrupt_main()  # Tune stops as on Ctrl-C, saving its state
                return
            self._write()

    def release(self) -> None:
        self.stop.set()
        current = read_lease(self.root)
        if current is not None and current.holder == self.holder:
            fs, path = filesystem(join(self.root, LEASE_FILE))
            fs.delete_file(path)


@contextlib.contextmanager
def study_lease(root: str, take_over: bool = False) -> Iterator[StudyLease]:
    """Hold the lease for the block, beating in a daemon thread; released at the end."""
    lease = StudyLease(root, take_over)
    lease.acquire()
    beat = threading.Thread(target=lease._beat, name="gloss-lease", daemon=True)
    beat.start()
    try:
        yield lease
    except (KeyboardInterrupt, StudyInterrupted):
        if lease.lost:
            raise LeaseLost(
                f"study {root} was taken over by another driver ({lease.lost}); this driver stopped."
            ) from None
        raise
    finally:
        lease.release()
