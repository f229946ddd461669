"""`gloss run` holds Ray for its study only: a local Ray it started stops when the trials have
ended (not at interpreter exit), and a Ray that was already connected (a notebook's, the test
session's) is left running."""

import subprocess
import sys

import psutil
import ray

from study.ray_session import connected
from tests.processes import REPO

STARTS_AND_LEAVES = """
import os, psutil, ray
from study.ray_session import connected, prepare_environment
prepare_environment(None)
with connected(None):
    raylets = [p for p in psutil.Process().children(recursive=True) if p.name() == "raylet"]
    print(len(raylets), flush=True)
print(ray.is_initialized(), any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in raylets))
"""


def test_a_ray_the_run_started_stops_when_its_block_ends():
    out = subprocess.run([sys.executable, "-c", STARTS_AND_LEAVES], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "False", "False"]  # one raylet while connected, none after


def test_a_ray_already_connected_is_left_running(local_ray):
    with connected(None):
        assert ray.is_initialized()
    assert ray.is_initialized()
    assert ray.get(ray.put(7)) == 7
    assert psutil.Process().children(recursive=True), "the shared Ray's processes are still there"
