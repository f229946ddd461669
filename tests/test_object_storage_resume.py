"""Resume on object storage: `gloss run --storage s3://...` against a real S3-compatible server on
127.0.0.1, the driver SIGKILLed once a trial has finished, then `--resume`: the finished trial's
records in the bucket are untouched and every trial completes."""

import json
import signal

import pyarrow.fs
import pytest
import yaml

from tests.processes import start_gloss, wait_for
from tests.s3_server import CREDENTIALS, s3_server

pytestmark = pytest.mark.faults  # a minute each: `make test-cluster` runs them

SPEC = {
    "name": "s3-resume",
    "kind": "grid",
    "model": "tiny-bert",
    "fidelity": "frozen",
    "datasets": ["r8"],
    "losses": ["ce", "gloss"],
    "seeds": [0, 1],
    "training": {"train_size": 120, "eval_size": 60, "max_length": 32, "epochs": 6, "patience": None},
}


def trial_records(fs: pyarrow.fs.FileSystem, root: str) -> dict[str, bytes]:
    """Each trial's result.json under `root` in the bucket, as bytes."""
    selector = pyarrow.fs.FileSelector(root, recursive=True, allow_not_found=True)
    found = {}
    for info in fs.get_file_info(selector):
        if info.path.endswith("/result.json"):
            with fs.open_input_stream(info.path) as handle:
                found[info.path] = handle.read()
    return found


def finished(records: dict[str, bytes]) -> dict[str, bytes]:
    done = {}
    for path, text in records.items():
        lines = [line for line in text.decode().splitlines() if line.strip()]
        if lines and json.loads(lines[-1]).get("status") == "completed":
            done[path] = text
    return done


def test_killed_driver_resumes_on_object_storage(tmp_path, data_dir):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    with s3_server(tmp_path / "s3.log") as s3:
        fs = pyarrow.fs.S3FileSystem(
            endpoint_override=s3.endpoint,
            access_key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        root = f"{s3.bucket}/studies/s3-resume"
        args = ["run", str(spec), "--storage", s3.uri("studies"), "--data-dir", str(data_dir)]
        args += ["--max-concurrent", "1", "--no-report"]
        driver = start_gloss(args, tmp_path / "first.log", env=s3.env)
        wait_for(lambda: finished(trial_records(fs, root)), 300, "a finished trial's records in the bucket")
        before = finished(trial_records(fs, root))
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=60)

        resumed = start_gloss([*args, "--resume"], tmp_path / "second.log", env=s3.env)
        assert resumed.wait(timeout=400) == 0, (tmp_path / "second.log").read_text()[-3000:]
        after = trial_records(fs, root)
    assert len(after) == 4 and len(finished(after)) == 4, "every trial completed, none twice"
    for path, text in before.items():
        assert after[path] == text, f"{path} was rerun"
