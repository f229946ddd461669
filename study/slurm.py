"""`gloss slurm`: cluster/slurm.sbatch with the job's size, the site's options and the study's
arguments filled in, so a user submits one file (or lets `--submit` hand it to sbatch) instead of
editing the template. What the spec's trials need is checked against the request here, before the
job waits in the queue."""

import math
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from common.errors import GlossError
from common.storage import is_uri
from study.spec import Resources

TEMPLATE = Path(__file__).resolve().parents[1] / "cluster" / "slurm.sbatch"
TEMPLATE_CPUS = 8  # the template's --cpus-per-task
TEMPLATE_SIGNAL_BEFORE_S = 300  # the template's --signal=B:USR1@300


@dataclass(frozen=True)
class Job:
    """What the filled script runs: the study, the allocation it asks SLURM for and the site's
    options. None keeps the template's value; `gpus_per_node` 0 requests no GPU at all."""

    spec: str
    storage: str
    name: str = "gloss"
    gloss_args: tuple[str, ...] = ()
    nodes: int | None = None
    cpus_per_task: int | None = None
    gpus_per_node: int | None = None
    time: str | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    mem: str | None = None
    sbatch_lines: tuple[str, ...] = ()
    setup: str | None = None
    signal_before_s: int | None = None


def shared_storage(storage: str, nodes: int | None) -> str:
    """The storage as every node reads it: a URI as given, a folder as an absolute path; /tmp,
    private to each node, is refused for a job of several nodes (the template's default is 2)
    before the job waits in the queue."""
    if is_uri(storage):
        return storage
    path = Path(storage).expanduser().resolve()
    if nodes != 1 and (path == Path("/tmp") or Path("/tmp") in path.parents):
        raise GlossError(
            f"--storage {storage}: /tmp is private to each node; give a folder every node shares "
            "(your home, the cluster's scratch) or a bucket."
        )
    return str(path)


def node_size(resources: Resources, cpus_per_task: int | None, gpus_per_node: int | None) -> tuple[int, int]:
    """CPUs and GPUs per node: as asked, else enough for one trial (the template's 8 CPUs at
    least; GPUs only for a spec whose trials use them). A request too small for one trial is
    refused naming the option and the fix."""
    cpus = cpus_per_task if cpus_per_task is not None else max(TEMPLATE_CPUS, math.ceil(resources.cpu))
    if cpus < resources.cpu:
        raise GlossError(
            f"--cpus-per-task {cpus}: each trial of the spec needs {resources.cpu:g} CPUs; give "
            f"--cpus-per-task {math.ceil(resources.cpu)} or more."
        )
    needed = math.ceil(resources.gpu)
    gpus = gpus_per_node if gpus_per_node is not None else needed
    if gpus < resources.gpu:
        raise GlossError(
            f"--gpus-per-node {gpus}: each trial of the spec needs {resources.gpu:g} GPU; give "
            f"--gpus-per-node {needed} or more (or set resources.gpu: 0 in the spec to run on CPUs)."
        )
    return cpus, gpus


def time_limit_s(limit: str) -> int | None:
    """A SLURM time limit in seconds (M, M:S, H:M:S, D-H, D-H:M or D-H:M:S), None for none."""
    if limit.upper() in ("UNLIMITED", "INFINITE"):
        return None
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", limit)
    if not match:
        raise GlossError(f"--time {limit}: give minutes, H:MM:SS or D-HH:MM:SS, as sbatch takes it.")
    days, first, second, third = match.groups()
    if days is None and third is None:  # M or M:S
        hours, minutes, seconds = 0, int(first), int(second or 0)
    else:  # H:M:S, D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


def check_sbatch_line(line: str) -> str:
    """An extra `#SBATCH` line as the user gave it (`--constraint=a100` or the whole line)."""
    option = line.removeprefix("#SBATCH").strip()
    if not option.startswith("-") or "\n" in option:
        raise GlossError(
            f"--sbatch-line {line!r}: give one sbatch option, e.g. --sbatch-line=--constraint=a100."
        )
    return f"#SBATCH {option}"


def check_continuation(time: str | None, signal_before_s: int | None) -> None:
    """The stop signal must come after the job starts: a time limit no longer than the signal's
    lead would stop every allocation before it runs anything."""
    lead = signal_before_s if signal_before_s is not None else TEMPLATE_SIGNAL_BEFORE_S
    if signal_before_s is not None and not 10 <= signal_before_s <= 65535:
        raise GlossError(f"--signal-before {signal_before_s}: give seconds between 10 and 65535.")
    limit = time_limit_s(time) if time is not None else None
    if limit is not None and limit <= lead:
        raise GlossError(
            f"--time {time}: the job is told to stop {lead} s before its limit, so it would never run; "
            "give a longer --time or a smaller --signal-before."
        )


def fill(job: Job, template: str) -> str:
    """The template with the job's #SBATCH values and the study's parameters set (as the
    environment variables its header documents, right after the #SBATCH lines)."""
    values = {
        "job-name": job.name,
        "nodes": job.nodes,
        "cpus-per-task": job.cpus_per_task,
        "gpus-per-node": job.gpus_per_node or None,
        "time": job.time,
        "signal": f"B:USR1@{job.signal_before_s}" if job.signal_before_s is not None else None,
    }
    for option, value in values.items():
        if value is not None:
            line = f"#SBATCH --{option}={value}"
            template = re.sub(rf"^#SBATCH --{option}=.*$", lambda _, line=line: line, template, flags=re.M)
    if job.gpus_per_node == 0:
        template = re.sub(r"^#SBATCH --gpus-per-node=.*\n", "", template, flags=re.M)
    site = {"partition": job.partition, "account": job.account, "qos": job.qos, "mem": job.mem}
    added = [f"#SBATCH --{option}={value}" for option, value in site.items() if value is not None]
    added += [check_sbatch_line(line) for line in job.sbatch_lines]
    parameters = [
        f"export GLOSS_SPEC={shlex.quote(job.spec)}",
        f"export GLOSS_STORAGE={shlex.quote(job.storage)}",
        f"export GLOSS_ARGS={shlex.quote(shlex.join(job.gloss_args))}",
    ]
    if job.setup:
        parameters.append(f"export GLOSS_SETUP={shlex.quote(job.setup)}")
    head = "".join(f"{line}\n" for line in [*added, *parameters])
    return template.replace("set -euo pipefail\n", head + "set -euo pipefail\n", 1)


def write_script(job: Job, out: Path) -> Path:
    """Write the filled script to `out` (executable) and return its path."""
    if not TEMPLATE.is_file():
        raise GlossError(f"{TEMPLATE} is missing: run `gloss slurm` from a checkout of the project.")
    out.write_text(fill(job, TEMPLATE.read_text()))
    out.chmod(0o755)
    return out


def submit(script: Path) -> str:
    """`sbatch SCRIPT`; its answer ("Submitted batch job N") or a one-line refusal."""
    if shutil.which("sbatch") is None:
        raise GlossError("sbatch is not on PATH: run `gloss slurm --submit` on the cluster's login node.")
    done = subprocess.run(["sbatch", str(script)], capture_output=True, text=True)
    if done.returncode != 0:
        raise GlossError(f"sbatch refused {script}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()
