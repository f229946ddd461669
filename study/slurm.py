"""`gloss slurm`: cluster/slurm.sbatch with the job's size and the study's arguments filled in, so
a user submits one file (or lets `--submit` hand it to sbatch) instead of editing the template."""

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from analysis.storage import is_uri
from common.errors import GlossError

TEMPLATE = Path(__file__).resolve().parents[1] / "cluster" / "slurm.sbatch"


@dataclass(frozen=True)
class Job:
    """What the filled script runs: the study and the allocation it asks SLURM for."""

    spec: str
    storage: str
    gloss_args: tuple[str, ...] = ()
    nodes: int | None = None
    cpus_per_task: int | None = None
    gpus_per_node: int | None = None
    time: str | None = None


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


def fill(job: Job, template: str) -> str:
    """The template with the job's #SBATCH values and the study's parameters set (as the
    environment variables its header documents, right after the #SBATCH lines)."""
    values = {
        "nodes": job.nodes,
        "cpus-per-task": job.cpus_per_task,
        "gpus-per-node": job.gpus_per_node,
        "time": job.time,
    }
    for option, value in values.items():
        if value is not None:
            line = f"#SBATCH --{option}={value}"
            template = re.sub(rf"^#SBATCH --{option}=.*$", line, template, flags=re.M)
    parameters = (
        f"export GLOSS_SPEC={shlex.quote(job.spec)}\n"
        f"export GLOSS_STORAGE={shlex.quote(job.storage)}\n"
        f"export GLOSS_ARGS={shlex.quote(shlex.join(job.gloss_args))}\n"
    )
    return template.replace("set -euo pipefail\n", parameters + "set -euo pipefail\n", 1)


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
