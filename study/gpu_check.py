"""Refuse, before launch, a study whose trials ask for GPUs they can never get, instead of leaving
them pending forever (or, locally, failing one by one).

On a cluster, GPUs can come from a node that is alive now or from a node type the autoscaler may
still launch (cluster.yaml's GPU workers start at min_workers 0, so none is alive when the study
starts). Ray 2.60 gives a driver no API for the autoscaler's node types: the autoscaler reads them
from `~/ray_bootstrap_config.yaml`, the file `ray up` writes on the head (with the resources of
each cloud instance type filled in) and that Tune itself reads to tell an autoscaling cluster
(`ray.tune.execution.cluster_info`). A driver started on the head (`ray job submit`, or
`--address auto` there) can read it; elsewhere only the alive nodes count. (The cluster config
Ray can keep in GCS, read by `ray._private.state.state.get_cluster_config()`, is private, and
nothing in Ray 2.60 writes it for a `ray up` cluster.)"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from common.errors import GlossError

BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"
CPU_FIX = "set resources.gpu: 0 to train on the CPU."
Offer = Literal["yes", "no", "unknown"]


def check_gpus(gpus: float, address: str | None) -> None:
    """Raise GlossError when trials asking for `gpus` GPUs each can never run: locally, when torch
    here cannot use CUDA; anywhere, when no alive Ray node has that many GPUs and (on a cluster)
    no autoscaler node type offers them. Call after connecting to Ray."""
    if gpus <= 0:
        return
    if address is None:
        from trainables.training.device import cuda_problem

        if problem := cuda_problem():
            cause, fix = problem
            raise GlossError(
                f"resources.gpu: {gpus:g} GPU per trial, but on this machine {cause}; "
                f"{fix}, join a GPU cluster with --address, or {CPU_FIX}"
            )
    if (most := most_gpus_on_a_node()) >= gpus:
        return
    config = read_bootstrap_config() if address is not None else None
    if address is None or autoscaler_offer(config, gpus) == "no":
        raise GlossError(no_gpu_message(gpus, most, address, config is not None))


def most_gpus_on_a_node() -> float:
    """The most GPUs any alive node of the connected Ray cluster has."""
    import ray

    return max((node["Resources"].get("GPU", 0) for node in ray.nodes() if node["Alive"]), default=0)


def read_bootstrap_config() -> dict[str, Any] | None:
    """The autoscaler's config on this machine (a cluster's head), or None where there is none."""
    path = Path(BOOTSTRAP_CONFIG).expanduser()
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text()) or {}  # `ray up` writes it as JSON, a subset of YAML


def autoscaler_offer(config: Mapping[str, Any] | None, gpus: float) -> Offer:
    """Whether the autoscaler may launch a worker with `gpus` GPUs: 'yes', 'no', or 'unknown'
    when a node type it may launch leaves its resources to be detected when the node starts
    (then only a running node can tell)."""
    if config is None:
        return "no"
    limit = config.get("max_workers", 2)  # Ray's default for the cluster-wide limit
    offer: Offer = "no"
    for name, node_type in (config.get("available_node_types") or {}).items():
        if name == config.get("head_node_type") or min(node_type.get("max_workers", limit), limit) <= 0:
            continue
        resources = node_type.get("resources") or {}
        if resources.get("GPU", 0) >= gpus:
            return "yes"
        if not resources:
            offer = "unknown"
    return offer


def no_gpu_message(gpus: float, most: float, address: str | None, autoscaler_config: bool) -> str:
    """One line: no node has the GPUs, why the autoscaler cannot add one, and the fixes."""
    need = f"resources.gpu: {gpus:g} GPU per trial, but"
    if address is None:
        return f"{need} Ray sees {most:g} GPU on this machine (`nvidia-smi` lists them); {CPU_FIX}"
    if autoscaler_config:
        why = f"its autoscaler ({BOOTSTRAP_CONFIG}) has no node type with {gpus:g} GPU"
        fix = "add a GPU worker type to the cluster config (`ray up` it again)"
    else:
        why = f"no autoscaler config is readable here ({BOOTSTRAP_CONFIG}, on a `ray up` head)"
        fix = "start a GPU worker, run gloss on the head (`ray job submit`),"
    nodes = f"the nodes of the Ray cluster at {address} have at most {most:g} GPU"
    return f"{need} {nodes} and {why}; {fix} or {CPU_FIX}"
