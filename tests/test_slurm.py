"""cluster/slurm.sbatch and `gloss slurm`.

Without SLURM: the script filled by `gloss slurm` runs against stand-ins for srun, scontrol,
python and gloss that record what they are asked, for a job of two nodes.

On a real one-node SLURM cluster on localhost (Debian's slurm-wlm and munge, installed by
`make test-cluster`; marked `cluster`): munged, slurmctld and slurmd run from a slurm.conf in a
scratch folder; studies go through `sbatch` as a user submits them. A study completes with every
trial's records; a study cancelled with `scancel` mid-way is finished by resubmitting with
--resume, without rerunning the trials that had finished. Everything started here (the daemons,
the job's Ray) is stopped at the end, found by a tag in its environment; never `ray stop`."""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from analysis import final_results, load_runs
from study.cli import main
from tests.conftest import REPO
from tests.processes import finished_trials, records, wait_for

SLURM_TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "scancel", "sinfo", "scontrol", "runuser")
missing = [tool for tool in SLURM_TOOLS if not shutil.which(tool)]


def on_slurm(test):
    """Mark a test that needs the real SLURM cluster (root, Debian's packages)."""
    test = pytest.mark.skipif(bool(missing), reason=f"needs {missing} (make test-cluster installs them)")(
        test
    )
    test = pytest.mark.skipif(os.geteuid() != 0, reason="starts slurmd and munged (root)")(test)
    return pytest.mark.cluster(test)


TEMPLATE = REPO / "cluster" / "slurm.sbatch"
TRAINING = {"train_size": 48, "eval_size": 40, "max_length": 32, "batch_size": 16, "lr": 1e-3}
FIRST = {
    "name": "slurm-first",
    "kind": "grid",
    "model": "tiny-bert",
    "fidelity": "frozen",
    "datasets": ["r8"],
    "losses": ["ce", "gloss"],
    "seeds": [0, 1],
    "training": {**TRAINING, "epochs": 2},
}
# Six trials one at a time, so that a cancel lands between trials that finished and some that did not:
# 200 epochs without early stopping take seconds even on a fast machine (3 epochs, a tenth of a
# second on CI's, ended the study before the cancel landed).
CANCELLED = {
    **FIRST,
    "name": "slurm-cancelled",
    "seeds": [0, 1, 2],
    "training": {**TRAINING, "epochs": 200, "patience": None},
}


def free_port(low: int = 20000, high: int = 30000) -> int:
    """A free TCP port above Ray's worker port range (10002-19999)."""
    while True:
        port = secrets.randbelow(high - low) + low
        with socket.socket() as probe, contextlib.suppress(OSError):
            probe.bind(("127.0.0.1", port))
            return port


def tagged_pids(tag: str) -> list[int]:
    """Processes whose environment carries GLOSS_SLURM_TAG=tag: the daemons and the jobs started
    here, with everything they started (Ray's GCS, raylet, workers inherit the environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if f"GLOSS_SLURM_TAG={tag}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
    return found


@dataclass
class Slurm:
    folder: Path
    tag: str
    env: dict[str, str]

    def run(self, *command: str) -> str:
        return subprocess.run(command, env=self.env, check=True, capture_output=True, text=True).stdout

    def submit(self, spec: dict, *gloss_args: str) -> int:
        """`sbatch cluster/slurm.sbatch SPEC STORAGE ARGS` on one node of 2 CPUs, no GPU."""
        size = ["--nodes=1", "--cpus-per-task=2", "--gpus-per-node=0"]
        return self.sbatch(*size, str(TEMPLATE), str(self.spec(spec)), str(self.storage), *gloss_args)

    def submit_filled(self, spec: dict) -> int:
        """The script `gloss slurm` fills for a job of one node of 2 CPUs, submitted as it is."""
        script = self.folder / f"{spec['name']}.sbatch"
        size = ["--nodes", "1", "--cpus-per-task", "2", "--gpus-per-node", "0"]
        args = ["slurm", str(self.spec(spec)), "--storage", str(self.storage), *size, "--out", str(script)]
        assert main(args) == 0
        return self.sbatch(str(script))

    def spec(self, spec: dict) -> Path:
        path = self.folder / f"{spec['name']}.yaml"
        path.write_text(yaml.safe_dump(spec))
        return path

    def sbatch(self, *args: str) -> int:
        where = [f"--output={self.folder}/job-%j.log", f"--chdir={REPO}"]
        return int(self.run("sbatch", "--parsable", *where, *args).strip().split(";")[0])

    @property
    def storage(self) -> Path:
        return self.folder / "results"

    def fields(self, job: int) -> dict[str, str]:
        shown = self.run("scontrol", "show", "job", str(job)).split()
        return dict(item.split("=", 1) for item in shown if "=" in item)

    def state(self, job: int) -> str:
        fields = self.fields(job)
        return f"{fields['JobState']} {fields['ExitCode']}"

    def restarts(self, job: int) -> int:
        """How many times the job was requeued."""
        return int(self.fields(job)["Restarts"])

    def log(self, job: int, tail: int = 4000) -> str:
        path = self.folder / f"job-{job}.log"
        return path.read_text()[-tail:] if path.exists() else "(no log)"

    def wait_done(self, job: int, timeout_s: float) -> str:
        """The job's state and exit once it ended. A requeued job waits out SLURM's fixed
        back-off (its begin time is set about two minutes ahead); here it is started at once."""
        deadline = time.monotonic() + timeout_s
        live = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED")
        while (state := self.state(job)).split()[0] in live:
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job} still {state} after {timeout_s} s: {self.log(job)}")
            if self.fields(job).get("Reason") == "BeginTime":
                self.run("scontrol", "update", f"JobId={job}", "StartTime=now")
            time.sleep(2)
        return state


def start_munge(folder: Path, env: dict[str, str]) -> subprocess.Popen:
    """munged as the munge user (it refuses a socket folder it does not own), on a private socket."""
    home = folder / "munge"
    home.mkdir(mode=0o755)
    shutil.chown(home, "munge", "munge")
    command = ["runuser", "-u", "munge", "--", "munged", "--foreground", f"--socket={home}/socket"]
    command += [f"--pid-file={home}/pid", f"--log-file={home}/log", f"--seed-file={home}/seed"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def slurm_conf(folder: Path) -> str:
    ports = f"SlurmctldPort={free_port()}\nSlurmdPort={free_port()}"
    return f"""ClusterName=glosstest
SlurmctldHost=localhost
{ports}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={folder}/munge/socket
CredType=cred/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=10
MinJobAge=3600
NodeName=localhost CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def stop(folder: Path, tag: str, munged: subprocess.Popen) -> None:
    """Cancel the jobs, stop slurmd and slurmctld by their pid files and munged, then SIGKILL
    whatever carries the tag (a job's Ray processes that outlived it)."""
    for name in ("slurmd", "slurmctld"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((folder / f"{name}.pid").read_text()), signal.SIGTERM)
    munged.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        munged.wait(timeout=10)
    time.sleep(2)
    for pid in tagged_pids(tag):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def slurm(data_dir) -> Iterator[Slurm]:
    # A short path: Ray's socket paths under it must stay below 108 characters.
    folder = Path(tempfile.mkdtemp(prefix="gslurm-"))
    folder.chmod(0o755)
    tag = secrets.token_hex(4)
    for sub in ("state", "spool", "home/.ray"):
        (folder / sub).mkdir(parents=True)
    token = folder / "home" / ".ray" / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(folder / "home"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO),
        "SLURM_CONF": str(folder / "slurm.conf"),
        "GLOSS_SLURM_TAG": tag,
        "GLOSS_DATA_DIR": str(data_dir),
        "GLOSS_CACHE_DIR": os.environ.get("GLOSS_CACHE_DIR", str(folder / "cache")),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        # The template's parameters for a node that is this machine: Ray on 127.0.0.1 only
        # (the variable keeps every Ray address on loopback), ports nobody else uses.
        "GLOSS_HEAD_IP": "127.0.0.1",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "GLOSS_RAY_PORT": str(free_port()),
        "GLOSS_RAY_ARGS": " ".join(
            [f"--dashboard-agent-listen-port={free_port()}", f"--ray-client-server-port={free_port()}"]
        ),
    }
    (folder / "slurm.conf").write_text(slurm_conf(folder))
    munged = start_munge(folder, env)
    cluster = Slurm(folder, tag, env)
    try:
        wait_for(lambda: (folder / "munge" / "socket").exists(), 30, "munged's socket")
        cluster.run("slurmctld")
        cluster.run("slurmd", "-N", "localhost")
        wait_for(lambda: "idle" in cluster.run("sinfo", "-h", "-o", "%t"), 60, "an idle SLURM node")
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            cluster.run("scancel", "--full", "--partition=test")
        stop(folder, tag, munged)
        leftover = tagged_pids(tag)
        shutil.rmtree(folder, ignore_errors=True)
    assert not leftover, f"processes left behind: {leftover}"


@on_slurm
def test_a_study_submitted_by_gloss_slurm_completes_with_every_trials_records_and_its_report(slurm):
    job = slurm.submit_filled(FIRST)
    assert slurm.wait_done(job, 300) == "COMPLETED 0:0", slurm.log(job)
    study = slurm.storage / FIRST["name"]
    trials = records(study)
    assert len(trials) == 4, slurm.log(job)
    assert len(finished_trials(study)) == 4
    for rows in trials.values():
        assert [row["epoch"] for row in rows if "epoch" in row][-1] == 2
    assert "all 1 Ray nodes joined" in slurm.log(job)
    assert (study / "report" / "report.html").is_file(), slurm.log(job)


@on_slurm
def test_a_cancelled_study_is_finished_by_resubmitting_with_resume(slurm):
    study = slurm.storage / CANCELLED["name"]
    job = slurm.submit(CANCELLED, "--no-report", "--max-concurrent", "1")
    wait_for(lambda: len(finished_trials(study)) >= 2, 300, f"two finished trials: {slurm.log(job)}")
    slurm.run("scancel", str(job))
    assert slurm.wait_done(job, 120).startswith("CANCELLED")
    before = finished_trials(study)
    assert 2 <= len(before) < 6, "the cancel came after the study ended"

    resumed = slurm.submit(CANCELLED, "--no-report", "--max-concurrent", "1", "--resume")
    assert slurm.wait_done(resumed, 300) == "COMPLETED 0:0", slurm.log(resumed)
    after = finished_trials(study)
    assert len(after) == 6, slurm.log(resumed)
    for trial, text in before.items():
        assert after[trial] == text, f"{trial.name} was rerun"


STANDINS = {
    # srun: record the call, drop srun's options (up to `-w NODE`) and run the command as a step
    # would: `hostname --ip-address` answers IPv6 and IPv4 addresses, `ray start` (the stand-in
    # below) blocks as the real one does, `bash -c SETUP...` runs; SETUP_MARK is dropped from the
    # step's environment, as on a site whose steps do not inherit the batch shell's.
    "srun": 'echo "srun $*" >> "$CALLS"\n'
    "while [[ $# -gt 0 && $1 != -w ]]; do shift; done; shift 2\n"
    'case "$1" in hostname) echo "fe80::1 10.9.8.7 192.168.0.2";; *) exec env -u SETUP_MARK "$@";; esac',
    "ray": 'echo "ray $* (SETUP_MARK=${SETUP_MARK:-})" >> "$CALLS"\nexec sleep 60',
    "scontrol": 'echo "scontrol $*" >> "$CALLS"\n[[ $1 != show ]] || printf "node-a\\nnode-b\\n"',
    # python: the number of Ray nodes alive, those whose `ray start` ran (or ALIVE)
    "python": 'echo "${ALIVE:-$(grep -c "^ray start" "$CALLS")}"',
    # gloss: record the call; with STOPPABLE, run until SIGINT and exit 130 as gloss does (or
    # INT_EXIT: a study that ended anyway, or one refused).
    "gloss": 'echo "gloss $* (RAY_AUTH_MODE=$RAY_AUTH_MODE token=$RAY_AUTH_TOKEN_PATH)" >> "$CALLS"\n'
    'echo "gloss sees SETUP_MARK=${SETUP_MARK:-}" >> "$CALLS"\n'
    "if [[ -n ${STOPPABLE:-} ]]; then\n"
    "  sleep 60 & sleeper=$!\n"
    '  trap \'kill $sleeper; echo "gloss stopped by SIGINT" >> "$CALLS"; exit "${INT_EXIT:-130}"\' INT\n'
    "  wait\n"
    "fi\n"
    'exit "${EXIT_CODE:-0}"',
}


def start_filled_script(
    tmp_path: Path, script: Path, token: Path, **env: str
) -> tuple[subprocess.Popen, Path]:
    """Start `script` as sbatch would on the first of two nodes (4 CPUs, 2 GPUs each), with the
    stand-ins on PATH and `env` added; the process and the file of calls they record."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STANDINS.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CALLS": str(calls),
        "RAY_AUTH_TOKEN_PATH": str(token),
        "SLURM_JOB_ID": "77",
        "SLURM_JOB_NODELIST": "node-[a-b]",
        "SLURM_CPUS_PER_TASK": "4",
        "SLURM_GPUS_PER_NODE": "a100:2",
        **env,
    }
    job = subprocess.Popen(
        ["bash", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return job, calls


def run_filled_script(
    tmp_path: Path, script: Path, token: Path, **env: str
) -> tuple[subprocess.CompletedProcess, str]:
    """Run `script` with the stand-ins to its end; its exit and the calls they recorded."""
    job, calls = start_filled_script(tmp_path, script, token, **env)
    out, err = job.communicate(timeout=120)
    return subprocess.CompletedProcess(job.args, job.returncode, out, err), calls.read_text()


def test_gloss_slurm_fills_the_template_and_the_script_starts_ray_on_every_node(tmp_path):
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(FIRST))
    script = tmp_path / "job.sbatch"
    args = ["slurm", str(spec), "--storage", "s3://bucket/gloss", "--nodes", "2", "--time", "1:00:00"]
    continuing = ["--resume", "--take-over", "--max-concurrent", "3"]
    assert main([*args, "--gpus-per-node", "2", *continuing, "--out", str(script)]) == 0
    text = script.read_text()
    for line in ("--nodes=2", "--time=1:00:00", "--gpus-per-node=2", "--cpus-per-task=8"):
        assert f"\n#SBATCH {line}\n" in text, line
    token = tmp_path / "token"
    token.write_text("secret")

    done, calls = run_filled_script(tmp_path, script, token)

    assert done.returncode == 0, done.stderr
    lines = calls.splitlines()
    assert lines[:2] == [
        "scontrol show hostnames node-[a-b]",
        "srun --nodes=1 --ntasks=1 -w node-a hostname --ip-address",
    ]
    head, worker = (line for line in lines if line.startswith("srun") and "ray start" in line)
    assert head.startswith("srun --nodes=1 --ntasks=1 --cpus-per-task=4 -w node-a ray start --head")
    assert "--node-ip-address=10.9.8.7 --port=6379" in head
    assert worker.startswith("srun --nodes=1 --ntasks=1 --cpus-per-task=4 -w node-b ray start")
    assert "--address=10.9.8.7:6379" in worker
    for line in (head, worker):
        assert "--block --num-cpus=4 --num-gpus=2" in line
    assert lines[-2] == (
        f"gloss run {spec} --address 10.9.8.7:6379 --storage s3://bucket/gloss --resume --take-over "
        f"--max-concurrent 3 (RAY_AUTH_MODE=token token={token})"
    )


def test_the_script_without_its_parameters_or_a_token_starts_nothing(tmp_path):
    done, calls = run_filled_script(tmp_path, TEMPLATE, tmp_path / "absent")
    assert done.returncode == 2 and "SPEC STORAGE" in done.stderr and calls == ""
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(FIRST))
    script = tmp_path / "job.sbatch"
    assert main(["slurm", str(spec), "--storage", "s3://bucket/gloss", "--out", str(script)]) == 0
    (tmp_path / "bin").rename(tmp_path / "bin-first")
    (tmp_path / "calls").unlink()
    done, calls = run_filled_script(tmp_path, script, tmp_path / "absent")
    assert done.returncode == 2 and "no Ray token at" in done.stderr and calls == ""


def test_gloss_slurm_refuses_tmp_storage_for_several_nodes(tmp_path, capsys):
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(FIRST))
    script = tmp_path / "job.sbatch"
    assert main(["slurm", str(spec), "--storage", "/tmp/results", "--out", str(script)]) == 2
    assert "--storage /tmp/results" in capsys.readouterr().err and not script.exists()


def spec_file(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_cpu_spec_requests_no_gpu_and_the_site_options_land_before_the_first_command(tmp_path):
    script = tmp_path / "job.sbatch"
    args = ["slurm", str(spec_file(tmp_path, FIRST)), "--storage", "s3://bucket/gloss", "--out", str(script)]
    site = ["--partition", "short", "--account", "proj42", "--qos", "debug", "--mem", "16G", "--time", "30"]
    extra = ["--sbatch-line=--constraint=skylake", "--sbatch-line", "#SBATCH --mail-type=END"]
    assert main([*args, *site, *extra, "--signal-before", "120"]) == 0
    lines = script.read_text().splitlines()
    # sbatch reads #SBATCH lines up to the first command only.
    first_command = next(i for i, line in enumerate(lines) if line.strip() and not line.startswith("#"))
    directives = [
        line.removeprefix("#SBATCH ") for line in lines[:first_command] if line.startswith("#SBATCH")
    ]
    assert not [line for line in directives if "gpu" in line or "gres" in line], directives
    for expected in [
        "--job-name=slurm-first",
        "--partition=short",
        "--account=proj42",
        "--qos=debug",
        "--mem=16G",
        "--time=30",
        "--constraint=skylake",
        "--mail-type=END",
        "--signal=B:USR1@120",
        "--requeue",
        "--open-mode=append",
    ]:
        assert expected in directives, expected
    assert not [line for line in lines[first_command:] if line.startswith("#SBATCH")]


def test_a_gpu_spec_asks_for_its_gpus_and_is_refused_on_a_cpu_request(tmp_path, capsys):
    spec = str(spec_file(tmp_path, {**FIRST, "name": "on-gpus", "resources": {"cpu": 2, "gpu": 1}}))
    script = tmp_path / "job.sbatch"
    assert main(["slurm", spec, "--storage", "s3://bucket/gloss", "--out", str(script)]) == 0
    assert "\n#SBATCH --gpus-per-node=1\n" in script.read_text()
    script.unlink()
    args = ["slurm", spec, "--storage", "s3://bucket/gloss", "--gpus-per-node", "0", "--out", str(script)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--gpus-per-node 0" in err and "--gpus-per-node 1 or more" in err
    assert not script.exists()


def test_a_time_limit_within_the_signals_lead_is_refused(tmp_path, capsys):
    spec = str(spec_file(tmp_path, FIRST))
    script = tmp_path / "job.sbatch"
    args = ["slurm", spec, "--storage", "s3://bucket/gloss", "--out", str(script)]
    assert main([*args, "--time", "5", "--signal-before", "300"]) == 2  # 5 minutes, told to stop at 0
    err = capsys.readouterr().err
    assert "--time 5" in err and "--signal-before" in err and not script.exists()
    assert main([*args, "--time", "5", "--signal-before", "240"]) == 0
    assert main([*args, "--time", "0-01", "--signal-before", "3600"]) == 2  # D-H: an hour
    assert main([*args, "--time", "1-00", "--signal-before", "3600"]) == 0  # a day


def test_an_sbatch_line_that_is_not_an_option_is_refused(tmp_path, capsys):
    script = tmp_path / "job.sbatch"
    args = ["slurm", str(spec_file(tmp_path, FIRST)), "--storage", "s3://bucket/gloss", "--out", str(script)]
    assert main([*args, "--sbatch-line", "constraint=a100"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--sbatch-line=--constraint=a100" in err and not script.exists()


def test_the_setup_line_runs_before_gloss_and_in_every_nodes_step(tmp_path):
    script = tmp_path / "job.sbatch"
    args = ["slurm", str(spec_file(tmp_path, FIRST)), "--storage", "s3://bucket/gloss", "--nodes", "2"]
    assert main([*args, "--setup", "export SETUP_MARK=on", "--out", str(script)]) == 0
    token = tmp_path / "token"
    token.write_text("secret")
    done, calls = run_filled_script(tmp_path, script, token)
    assert done.returncode == 0, done.stderr
    started = [line for line in calls.splitlines() if line.startswith("ray start")]
    assert len(started) == 2 and all(line.endswith("(SETUP_MARK=on)") for line in started), calls
    assert "gloss sees SETUP_MARK=on" in calls


def test_without_a_setup_line_the_steps_get_nothing_from_it(tmp_path):
    """The control of the test above: the srun stand-in does drop SETUP_MARK from the steps."""
    token = tmp_path / "token"
    token.write_text("secret")
    parameters = {"GLOSS_SPEC": "smoke", "GLOSS_STORAGE": "s3://bucket/gloss", "SETUP_MARK": "on"}
    done, calls = run_filled_script(tmp_path, TEMPLATE, token, **parameters)
    assert done.returncode == 0, done.stderr
    started = [line for line in calls.splitlines() if line.startswith("ray start")]
    assert len(started) == 2 and all(line.endswith("(SETUP_MARK=)") for line in started), calls


def stop_with_usr1(tmp_path: Path, after: str, **env: str) -> tuple[subprocess.CompletedProcess, str]:
    """Run the template with the stand-ins, send the batch shell USR1 (SLURM's --signal) once
    `after` is among the calls, and let it end."""
    token = tmp_path / "token"
    token.write_text("secret")
    parameters = {"GLOSS_SPEC": "smoke", "GLOSS_STORAGE": "s3://bucket/gloss"}
    job, calls = start_filled_script(tmp_path, TEMPLATE, token, **parameters, **env)
    wait_for(lambda: after in calls.read_text(), 60, f"{after!r} among the calls")
    job.send_signal(signal.SIGUSR1)
    out, err = job.communicate(timeout=60)
    return subprocess.CompletedProcess(job.args, job.returncode, out, err), calls.read_text()


@pytest.mark.parametrize(
    ("driver_exit", "requeued", "job_exit"),
    [(130, True, 0), (0, False, 0), (1, False, 1), (2, False, 2)],
    ids=["stopped", "done-anyway", "trials-failed", "bad-input"],
)
def test_usr1_stops_the_driver_with_sigint_and_requeues_only_a_stopped_study(
    tmp_path, driver_exit, requeued, job_exit
):
    done, calls = stop_with_usr1(tmp_path, "gloss run", STOPPABLE="1", INT_EXIT=str(driver_exit))
    assert "gloss stopped by SIGINT" in calls, (calls, done.stderr)
    assert ("scontrol requeue 77" in calls) == requeued, calls
    assert done.returncode == job_exit, done.stderr


def test_usr1_before_the_driver_starts_requeues_the_job_without_running_it(tmp_path):
    done, calls = stop_with_usr1(tmp_path, "ray start", ALIVE="1")  # the nodes never all join
    assert done.returncode == 0 and "came before the study started" in done.stdout
    assert "gloss run" not in calls and "scontrol requeue 77" in calls


def test_a_requeued_job_resumes_the_study_taking_over_its_lease(tmp_path):
    token = tmp_path / "token"
    token.write_text("secret")
    parameters = {"GLOSS_SPEC": "smoke", "GLOSS_STORAGE": "s3://bucket/gloss"}
    done, calls = run_filled_script(tmp_path, TEMPLATE, token, **parameters, SLURM_RESTART_COUNT="2")
    assert done.returncode == 0 and "allocation 3" in done.stdout, done.stderr
    (line,) = [line for line in calls.splitlines() if line.startswith("gloss run")]
    assert line.startswith(
        "gloss run smoke --address 10.9.8.7:6379 --storage s3://bucket/gloss --resume --take-over ("
    )
    (tmp_path / "first").mkdir()
    done, calls = run_filled_script(
        tmp_path / "first", TEMPLATE, token, **parameters, SLURM_RESTART_COUNT="0"
    )
    assert done.returncode == 0 and "allocation 1" in done.stdout and "--resume" not in calls


# Eight hundred trials (400 seeds x 2 losses), one at a time, for 2-minute allocations told to
# stop 30 s before their limit: after start-up (Ray, the driver, Tune's restore; 20 s to a
# minute) an allocation trains for 70 s at most, up to about 250 trials on an idle machine (two
# allocations finished all 400 trials of the 200-seed version there), so no two of them finish
# the study; on a loaded machine it takes more allocations.
SEEDS = 400
CONTINUED = {**FIRST, "name": "slurm-continued", "seeds": list(range(SEEDS))}


@on_slurm
def test_a_study_longer_than_the_time_limit_continues_over_three_allocations_running_nothing_twice(slurm):
    script = slurm.folder / "continued.sbatch"
    spec = slurm.spec(CONTINUED)
    size = ["--nodes", "1", "--cpus-per-task", "2", "--time", "2", "--signal-before", "30"]
    args = ["slurm", str(spec), "--storage", str(slurm.storage), *size, "--max-concurrent", "1"]
    assert main([*args, "--out", str(script)]) == 0
    job = slurm.sbatch(str(script), str(spec), str(slurm.storage), "--max-concurrent", "1", "--no-report")

    assert slurm.wait_done(job, 2400) == "COMPLETED 0:0", slurm.log(job)
    allocations = slurm.restarts(job) + 1
    assert allocations >= 3, slurm.log(job)
    log = slurm.log(job, tail=10**7)
    assert log.count("the job requeues itself") == allocations - 1, log
    trials = records(slurm.storage / CONTINUED["name"] / "grid")
    assert len(trials) == 2 * SEEDS, sorted(trial.name for trial in trials)  # one folder per trial
    # A stop between Tune logging an epoch and registering its checkpoint makes the running trial
    # train that epoch again from its previous checkpoint (analysis.load.latest_per_epoch): at most
    # one epoch per stop, one trial running at a time. Nothing else runs twice.
    replayed = 0
    for trial, rows in trials.items():
        epochs = [row["epoch"] for row in rows if "epoch" in row]
        assert list(dict.fromkeys(epochs)) == [1, 2], f"{trial.name} recorded epochs {epochs}"
        replayed += len(epochs) - 2
    assert replayed <= allocations - 1, f"{replayed} epochs trained again over {allocations} allocations"
    final = final_results(load_runs(slurm.storage / CONTINUED["name"]))
    assert len(final) == 2 * SEEDS and (final["outcome"] == "completed").all()
    assert final["epochs_run"].eq(2).all() and final["replayed_epochs"].sum() == replayed
