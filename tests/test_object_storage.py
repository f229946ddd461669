"""Studies in object storage, end to end against a real S3 server (moto, on 127.0.0.1): `gloss run
--storage s3://...` ends with its summary and writes its report into the bucket; load_runs reads
the records straight from the bucket (never a checkpoint) into the frame a local copy gives,
through a local cache; `gloss analyze` takes the URI.

Which objects were read is taken from the server's own request log, not from the client."""

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pandas as pd
import pytest

from analysis import final_results, load_runs, summary_table
from analysis.cache import cache_root
from study.cli import main
from tests.conftest import REPO
from tests.s3_server import S3Server, _boto_credentials, s3_server
from tests.test_sweep import TINY_TRAINING, write_spec

STUDY = "tiny-s3"
PREFIX = f"studies/{STUDY}"
GET = re.compile(r"GET /(?P<key>[^ ?]+) HTTP")  # lines may carry colour codes


@dataclass(frozen=True)
class StoredStudy:
    server: S3Server
    run: subprocess.CompletedProcess
    log: Path

    @property
    def uri(self) -> str:
        return self.server.uri(PREFIX)

    def client(self):
        return boto3.client("s3", endpoint_url=self.server.endpoint, **_boto_credentials())

    def reads(self, action) -> tuple[object, list[str]]:
        """What `action()` returns, and the study's objects the server sent meanwhile (GETs of
        object keys; listings have no key). The server logs each request before answering it."""
        start = self.log.stat().st_size
        value = action()
        with open(self.log, "rb") as handle:
            handle.seek(start)
            lines = handle.read().decode(errors="replace").splitlines()
        bucket = f"{self.server.bucket}/"
        keys = [m["key"].removeprefix(bucket) for line in lines if (m := GET.search(line))]
        return value, [key for key in keys if key.startswith("studies/")]


@pytest.fixture(scope="module")
def stored(tmp_path_factory, data_dir):
    """A 2-loss x 2-seed grid of the tiny BERT that saves test embeddings, run by `gloss run` in
    its own process straight into the bucket; this process then talks to the same server, with
    an analysis cache of its own (the run's cache stays with the run)."""
    folder = tmp_path_factory.mktemp("object-storage")
    spec = write_spec(
        folder,
        name=STUDY,
        kind="grid",
        model="tiny-bert",
        fidelity="full",
        datasets=["r8"],
        losses=["ce", "gloss"],
        seeds=[0, 1],
        training={**TINY_TRAINING, "epochs": 2, "save_embeddings": True},
    )
    with s3_server(folder / "moto.log") as server, pytest.MonkeyPatch.context() as patch:
        python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        args = ["run", str(spec), "--storage", server.uri("studies"), "--data-dir", str(data_dir)]
        run = subprocess.run(
            [sys.executable, "-m", "study.cli", *args],
            cwd=REPO,
            env={**os.environ, **server.env, "PYTHONPATH": python_path},
            capture_output=True,
            text=True,
            timeout=600,
        )
        for name, value in server.env.items():
            patch.setenv(name, value)
        patch.setenv("GLOSS_CACHE_DIR", str(folder / "analysis-cache"))
        yield StoredStudy(server, run, folder / "moto.log")


@pytest.fixture(scope="module")
def local_copy(stored, tmp_path_factory) -> Path:
    """Every object of the study (checkpoints too, not the report), downloaded with boto3."""
    folder = tmp_path_factory.mktemp("copy") / STUDY
    client = stored.client()
    for key in stored.server.keys(PREFIX + "/"):
        relative = key.removeprefix(PREFIX + "/")
        if not relative.startswith("report/") and not key.endswith("/"):
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            client.download_file(stored.server.bucket, key, str(folder / relative))
    return folder


def test_run_ends_with_the_summary_and_writes_the_report_into_the_bucket(stored, local_copy):
    assert stored.run.returncode == 0, stored.run.stderr[-3000:]
    expected = summary_table(final_results(load_runs(local_copy))).to_string()
    assert expected in stored.run.stdout
    assert f"report: {stored.uri}/report/report.html" in stored.run.stdout
    keys = set(stored.server.keys(f"{PREFIX}/report/"))
    for name in ("report.html", "figures/convergence.png", "figures/embeddings.svg", "tables/results.md"):
        assert f"{PREFIX}/report/{name}" in keys, name
    page = stored.client().get_object(Bucket=stored.server.bucket, Key=f"{PREFIX}/report/report.html")
    html = page["Body"].read().decode()
    assert "<h2>Test embeddings" in html and "data:image/png;base64," in html


def test_load_runs_reads_records_only_into_the_frame_of_a_local_copy(
    stored, local_copy, tmp_path, monkeypatch
):
    monkeypatch.setenv("GLOSS_CACHE_DIR", str(tmp_path))  # nothing cached: every trial is read
    checkpoints = [k for k in stored.server.keys(PREFIX + "/") if "/checkpoint_" in k]
    assert any(k.endswith("test_embeddings.npz") for k in checkpoints), "checkpoints are in the bucket"
    remote, read = stored.reads(lambda: load_runs(stored.uri))
    assert not [key for key in read if "/checkpoint_" in key], "no checkpoint object is read"
    assert sorted(k for k in read if k.endswith("result.json")) == sorted(
        {k for k in stored.server.keys(PREFIX + "/") if k.endswith("result.json")}
    ), "each trial's result.json is read"
    assert len(remote["trial_dir"].unique()) == 4 and len(remote) == 4 * 2
    assert remote["trial_dir"].str.startswith(stored.uri + "/grid/").all()
    local = load_runs(local_copy)
    as_local = remote.assign(trial_dir=remote["trial_dir"].str.replace(stored.uri, str(local_copy)))
    pd.testing.assert_frame_equal(as_local, local)


def test_a_second_load_comes_from_the_local_cache_and_rereads_a_changed_trial_alone(stored):
    first = load_runs(stored.uri)
    assert list((cache_root() / "analysis").glob("*/runs.parquet")), "cached under the gloss cache"
    again, read = stored.reads(lambda: load_runs(stored.uri))
    pd.testing.assert_frame_equal(again, first)
    assert read == [], "only listed"
    trial = sorted(first["trial_dir"].unique())[0]
    key = trial.removeprefix(stored.server.uri() + "/") + "/error.txt"
    stored.client().put_object(
        Bucket=stored.server.bucket, Key=key, Body=b"Failure # 1 (x)\nTraceback\nValueError: boom\n"
    )
    try:
        changed, read = stored.reads(lambda: load_runs(stored.uri))
    finally:
        stored.client().delete_object(Bucket=stored.server.bucket, Key=key)
    assert {k.rsplit("/", 1)[0] for k in read} == {key.rsplit("/", 1)[0]}, "that trial alone"
    assert final_results(changed).set_index("trial_dir").loc[trial, "restarts"] == 1, "a fault it survived"
    assert load_runs(stored.uri)["error"].eq("").all(), "the removed error file is noticed"


def test_analyze_takes_the_uri_and_reads_only_the_embeddings_it_shows(stored, tmp_path, capsys):
    code, read = stored.reads(lambda: main(["analyze", stored.uri, "--out", str(tmp_path / "report")]))
    assert code == 0
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<h2>Test embeddings" in page and (tmp_path / "report" / "figures" / "embeddings.png").exists()
    fetched = {k for k in read if "/checkpoint_" in k}
    assert fetched and all(k.endswith("/test_embeddings.npz") for k in fetched)
    assert len({k.split("/checkpoint_")[0] for k in fetched}) == 2, "one trial per loss"
    assert f"report: {tmp_path / 'report' / 'report.html'}" in capsys.readouterr().out


def test_a_missing_study_uri_is_refused_with_one_line(stored, capsys):
    assert main(["analyze", stored.server.uri("studies", "no-such-study")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gloss: error: ") and "no such study URI" in err and len(err.splitlines()) == 1
