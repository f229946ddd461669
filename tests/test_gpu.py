"""GPUs that are used, or a clear error: a trial given a GPU that cannot use CUDA fails at once with
one sentence naming the node, and the study's summary shows it; a study asking for GPUs that no
node has and no autoscaler node type offers is refused before launch; precision resolves per
device, and fp16 trains with a gradient scaler whose skipped steps are not divergence and whose
state survives a checkpoint.

The CUDA tests need a torch without CUDA (this CPU machine): a local Ray started with a GPU
resource that does not exist stands for a GPU node whose torch cannot use it."""

import copy
import socket
from pathlib import Path

import pytest
import ray
import torch
import yaml

from analysis import final_results, load_runs
from common.errors import ConfigError, GlossError
from study.cli import main, print_summary
from study.gpu_check import autoscaler_offer, check_gpus
from study.launch import RunOptions, run_study
from study.ray_session import connect
from study.spec import spec_from_mapping
from study.study_plan import plan_study
from trainables.config import TrialConfig
from trainables.training.device import DeviceError, place, resolve_precision
from trainables.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
CPU_ONLY_TORCH = pytest.mark.skipif(torch.version.cuda is not None, reason="needs a torch built without CUDA")
NO_CUDA = (
    f"torch {torch.__version__} is built without CUDA (torch.version.cuda is None); "
    "install a CUDA build of torch there"
)
TINY = {
    "dataset": "r8",
    "model": "tiny-bert",
    "fidelity": "full",
    "train_size": 48,
    "eval_size": 40,
    "batch_size": 16,
    "max_length": 32,
    "lr": 5e-4,
    "epochs": 2,
}


def study_spec(data_dir, gpu: float) -> dict:
    return {
        "name": "gpu",
        "kind": "grid",
        "model": "tiny-bert",
        "fidelity": "full",
        "datasets": ["r8"],
        "losses": ["ce"],
        "training": {k: v for k, v in TINY.items() if k not in ("dataset", "model", "fidelity")}
        | {"data_dir": str(data_dir)},
        "resources": {"cpu": 1, "gpu": gpu},
        "max_failures": 0,
    }


@pytest.fixture
def ray_with_a_fake_gpu():
    """A local Ray (127.0.0.1) that believes it has one GPU; the shared one comes back after."""
    was_running = ray.is_initialized()
    ray.shutdown()
    ray.init(
        address="local",
        num_cpus=2,
        num_gpus=1,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="warning",
    )
    yield
    ray.shutdown()
    if was_running:
        connect(None, num_cpus=2)


@CPU_ONLY_TORCH
def test_trial_given_a_gpu_without_cuda_fails_at_once_naming_the_node(tmp_path, ray_with_a_fake_gpu, capsys):
    # No data where the trial would look: had it loaded data first, it would fail on that instead.
    spec = spec_from_mapping(study_spec(tmp_path / "no-data-here", gpu=1), "test")
    paths = run_study(plan_study(spec, None, None), RunOptions(str(tmp_path / "results")))
    final = final_results(load_runs(*paths))
    assert list(final["outcome"]) == ["failed"]
    sentence = (
        f"{socket.gethostname()} (127.0.0.1): the trial needs CUDA (resources.gpu is 1) but {NO_CUDA}, "
        "or set resources.gpu: 0 to train on the CPU."
    )
    assert final["error"].iloc[0] == sentence
    capsys.readouterr()
    print_summary(paths)
    assert f"trials not finished normally: 1 failed; first error: {sentence} (" in capsys.readouterr().out


@CPU_ONLY_TORCH
def test_local_study_asking_for_a_gpu_is_refused_before_any_trial(tmp_path, data_dir, local_ray, capsys):
    spec = tmp_path / "gpu.yaml"
    spec.write_text(yaml.safe_dump(study_spec(data_dir, gpu=1)))
    assert main(["run", str(spec), "--storage", str(tmp_path / "results")]) == 2
    assert capsys.readouterr().err == (
        f"gloss: error: resources.gpu: 1 GPU per trial, but on this machine {NO_CUDA}, "
        "join a GPU cluster with --address, or set resources.gpu: 0 to train on the CPU.\n"
    )
    assert not list(tmp_path.rglob("result.json")), "no trial started"


def test_cluster_without_gpus_or_autoscaler_config_is_refused(
    tmp_path, data_dir, local_ray, capsys, monkeypatch
):
    """`--address auto` joins the running local Ray (no GPU); no ~/ray_bootstrap_config.yaml here."""
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = tmp_path / "gpu.yaml"
    spec.write_text(yaml.safe_dump(study_spec(data_dir, gpu=1)))
    assert main(["run", str(spec), "--address", "auto", "--storage", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err == (
        "gloss: error: resources.gpu: 1 GPU per trial, but the nodes of the Ray cluster at auto have at "
        "most 0 GPU and no autoscaler config is readable here (~/ray_bootstrap_config.yaml, on a `ray up` "
        "head); start a GPU worker, run gloss on the head (`ray job submit`), or set resources.gpu: 0 to "
        "train on the CPU.\n"
    )
    assert not list(tmp_path.rglob("result.json"))


def filled_out(node_resources: dict) -> dict:
    """cluster.yaml as `ray up` leaves it on the head: the GPU worker's resources filled in."""
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    config["available_node_types"]["gpu_worker"]["resources"] = node_resources
    return config


def test_autoscaler_node_types_decide_when_no_gpu_node_is_alive(tmp_path, local_ray, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    bootstrap = tmp_path / "ray_bootstrap_config.yaml"
    bootstrap.write_text(yaml.safe_dump(filled_out({"CPU": 8, "GPU": 1})))
    check_gpus(1, "auto")  # g5.2xlarge workers may still come: accepted
    bootstrap.write_text(yaml.safe_dump(filled_out({"CPU": 8})))
    with pytest.raises(GlossError, match=r"its autoscaler \(~/ray_bootstrap_config.yaml\) has no node type"):
        check_gpus(1, "auto")
    check_gpus(0, "auto")


def test_autoscaler_offer_reads_node_types_and_limits():
    assert autoscaler_offer(filled_out({"CPU": 8, "GPU": 1}), 1) == "yes"
    assert autoscaler_offer(filled_out({"CPU": 8, "GPU": 1}), 2) == "no", "a trial's GPUs sit on one node"
    assert autoscaler_offer(filled_out({"CPU": 8, "GPU": 4}), 0.5) == "yes"
    assert autoscaler_offer(filled_out({"CPU": 8}), 1) == "no", "the head type never counts"
    assert autoscaler_offer(filled_out({}), 1) == "unknown", "resources detected when the node starts"
    assert autoscaler_offer({**filled_out({"GPU": 1}), "max_workers": 0}, 1) == "no"
    assert autoscaler_offer(None, 1) == "no"


def test_precision_is_validated_in_the_config():
    assert TrialConfig.from_dict({"dataset": "r8", "precision": "fp16"}).precision == "fp16"
    with pytest.raises(
        ConfigError, match="precision: 'fp8' is not allowed; choose one of 'auto', 'bf16', 'fp16'"
    ):
        TrialConfig.from_dict({"dataset": "r8", "precision": "fp8"})


@pytest.mark.parametrize(
    ("requested", "device", "bf16", "expected"),
    [
        ("auto", "cpu", "native", "fp32"),
        ("auto", "cuda", "native", "bf16"),  # A100, H100, L4, A10G
        ("auto", "cuda", "emulated", "fp16"),  # T4, V100: bf16 only through float32
        ("auto", "cuda", "none", "fp16"),
        ("bf16", "cuda", "emulated", "bf16"),
        ("bf16", "cpu", "native", "bf16"),
        ("fp16", "cpu", "native", "fp16"),
        ("fp16", "cuda", "native", "fp16"),
        ("fp32", "cuda", "native", "fp32"),
    ],
)
def test_precision_resolves_from_the_device(requested, device, bf16, expected):
    assert resolve_precision(requested, device, bf16) == expected


def test_bf16_on_a_card_without_it_is_refused():
    with pytest.raises(
        ValueError, match="precision: bf16 is not supported by Tesla P100; set precision: fp16"
    ):
        resolve_precision("bf16", "cuda", "none", "Tesla P100")


@CPU_ONLY_TORCH
def test_placement_without_cuda():
    assert place("auto", "auto", gpus=0).record() == {"device": "cpu", "gpu_name": "", "precision": "fp32"}
    assert place("auto", "auto").device.type == "cpu", "outside Ray, auto uses CUDA only when it works"
    with pytest.raises(DeviceError) as caught:
        place("cuda", "auto", node="n1")
    sentence = (
        f"n1: the trial needs CUDA (its config says device: cuda) but {NO_CUDA}, "
        "or set device: cpu to train on the CPU."
    )
    assert caught.value.sentence == sentence
    assert str(caught.value).splitlines()[-1] == sentence, "the traceback's last line is the sentence"


def test_fp16_skips_overflowing_steps_without_diverging_and_resumes_exactly(data_dir):
    config = TrialConfig.from_dict({**TINY, "precision": "fp16", "data_dir": str(data_dir)})
    uninterrupted = Trainer(config)
    # A loss scale of 2**20 overflows this model's fp16 gradients; GradScaler must back off.
    uninterrupted.scaler.load_state_dict({**uninterrupted.scaler.state_dict(), "scale": 2.0**20})
    head = uninterrupted.run_epoch()
    state = copy.deepcopy(uninterrupted.state_dict())
    tail = uninterrupted.run_epoch()
    assert [head["status"], tail["status"]] == ["running", "completed"]
    assert {(r["device"], r["gpu_name"], r["precision"]) for r in (head, tail)} == {("cpu", "", "fp16")}
    skipped = [head["skipped_steps"], tail["skipped_steps"]]
    assert skipped[0] > 0 and skipped[1] > 0, skipped
    steps = 2 * len(uninterrupted.batches)
    assert uninterrupted.scheduler.last_epoch == steps - sum(skipped), "the schedule follows taken steps"
    assert state["scaler"]["scale"] == 2.0**20 / 2 ** skipped[0]

    resumed = Trainer(config)
    resumed.load_state_dict(state)
    timing = {"epoch_time_s", "train_time_s", "samples_per_s", "peak_memory_mb"}
    assert without(timing, resumed.run_epoch()) == without(timing, tail)


def without(keys: set[str], record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in keys}


def test_fp16_divergence_is_still_reported(data_dir):
    config = {**TINY, "precision": "fp16", "lr": 1e8, "max_grad_norm": None, "data_dir": str(data_dir)}
    last = list(Trainer(TrialConfig.from_dict(config)).run())[-1]
    assert last["status"] == "diverged" and "non-finite" in last["diverged_reason"]
