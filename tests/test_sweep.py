"""End to end through `gloss run` on real R8 data with the tiny model: a grid, a protocol with an
Optuna search under ASHA, refusal to overwrite, and resumption that reruns nothing."""

import json
from pathlib import Path

import pytest
import yaml

from analysis import final_results, load_runs, summary_table
from analysis.select import unsearched
from study.cli import main

TINY_TRAINING = {"train_size": 48, "eval_size": 40, "max_length": 32, "batch_size": 16, "lr": 1e-3}


def write_spec(folder: Path, **spec) -> Path:
    path = folder / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def result_lines(folder: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in folder.rglob("result.json"))


@pytest.fixture(scope="module")
def grid_study(tmp_path_factory, data_dir, local_ray):
    """A 2-loss x 2-seed grid, fully fine-tuning the tiny BERT for two epochs."""
    folder = tmp_path_factory.mktemp("grid")
    spec = write_spec(
        folder,
        name="tiny-grid",
        kind="grid",
        model="tiny-bert",
        fidelity="full",
        datasets=["r8"],
        losses=["ce", "gloss"],
        seeds=[0, 1],
        training={**TINY_TRAINING, "epochs": 2},
    )
    code = main(["run", str(spec), "--storage", str(folder / "results"), "--data-dir", str(data_dir)])
    return code, spec, folder / "results" / "tiny-grid"


def test_grid_sweep_records_every_trial_and_epoch(grid_study):
    code, _, results = grid_study
    assert code == 0
    runs = load_runs(results)
    assert len(runs) == 4 * 2
    assert set(zip(runs["loss"], runs["seed"], strict=True)) == {
        ("ce", 0),
        ("ce", 1),
        ("gloss", 0),
        ("gloss", 1),
    }
    for column in ("dataset", "model", "fidelity", "study", "phase", "node", "config/loss_params/sigma"):
        assert runs[column].notna().any(), column
    assert (runs["study"] == "tiny-grid").all() and (runs["phase"] == "grid").all()
    final = final_results(runs)
    assert len(final) == 4 and (final["outcome"] == "completed").all()


def test_existing_study_is_not_overwritten_and_resume_reruns_nothing(grid_study, data_dir, capsys):
    _, spec, results = grid_study
    before = result_lines(results)
    args = ["run", str(spec), "--storage", str(results.parent), "--data-dir", str(data_dir)]
    assert main(args) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    assert result_lines(results) == before


def test_protocol_searches_under_asha_then_reruns_the_best_config(tmp_path, data_dir, local_ray):
    spec = write_spec(
        tmp_path,
        name="tiny-protocol",
        kind="protocol",
        model="tiny-bert",
        fidelity="frozen",
        datasets=["r8"],
        losses=["ce", {"name": "g+ce", "loss": "gloss", "params": {"propagation": "harmonic"}}],
        seeds=[0, 1],
        training={"train_size": 80, "eval_size": 60, "max_length": 32, "epochs": 4},
        differences=["budget"],
        search={
            "losses": ["g+ce"],
            "trials": 6,
            "max_concurrent": 2,
            "scheduler": "asha",
            "grace_period": 1,
            "reduction_factor": 2,
        },
    )
    assert main(["run", str(spec), "--storage", str(tmp_path), "--data-dir", str(data_dir)]) == 0
    final = final_results(load_runs(tmp_path / "tiny-protocol"))
    search = final[final["phase"] == "search"]
    assert len(search) == 6
    assert (search["outcome"] == "stopped").any(), "ASHA stops some trials early"
    finished = search[search["outcome"].isin(["completed", "early_stopped"])]
    best = finished.loc[finished["best_score"].idxmax()]
    assert set(search["seed"]) == {2}, "the search trains on a seed the final runs do not use"
    assert set(zip(final["loss"], final["loss_function"], strict=True)) == {("ce", "ce"), ("g+ce", "gloss")}
    assert (search["config/loss_params/propagation"] == "harmonic").all(), "a fixed value is not searched"
    reruns = final[(final["phase"] == "final") & (final["loss"] == "g+ce")]
    assert sorted(reruns["seed"]) == [0, 1]
    for column in ("config/lr", "config/loss_params/sigma", "config/loss_params/gamma"):
        assert (reruns[column] == best[column]).all(), column
    assert not unsearched(reruns).any()
    base = final[(final["phase"] == "final") & (final["loss"] == "ce")]
    assert len(base) == 2 and unsearched(base).all(), "ce was not searched: its runs say so"
    assert "(2, unsearched)" in summary_table(final).loc["r8", "ce"]


def test_a_search_over_a_small_finite_space_trains_each_configuration_once(tmp_path, data_dir, local_ray):
    """Through Ray Tune: a budget of 8 over 3 learning rates trains 3 trials, one per rate, and
    the phase ends (Tune waits for no trial that never comes)."""
    spec = write_spec(
        tmp_path,
        name="tiny-grid-search",
        kind="search",
        model="tiny-bert",
        fidelity="frozen",
        datasets=["r8"],
        losses=["ce"],
        seeds=[0],
        training={"train_size": 48, "eval_size": 40, "max_length": 32, "epochs": 1},
        search={"trials": 8, "lr": {"choice": [1e-3, 2e-3, 3e-3]}, "max_concurrent": 2},
    )
    assert (
        main(["run", str(spec), "--storage", str(tmp_path), "--data-dir", str(data_dir), "--no-report"]) == 0
    )
    search = final_results(load_runs(tmp_path / "tiny-grid-search"))
    assert sorted(search["config/lr"]) == [1e-3, 2e-3, 3e-3]


def test_dry_run_runs_nothing(tmp_path, data_dir, capsys):
    code = main(
        ["run", "demo", "--dry-run", "--storage", str(tmp_path / "none"), "--data-dir", str(data_dir)]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "search: 24 trials" in out and "final: 18 trials" in out
    assert "conditions shared by every row: batch_sampler random; lr searched over" in out
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "datasets=[r9]"], "unknown dataset 'r9' (did you mean 'r8'?)"),
        (
            ["--set", "loss_params.gloss.sigma=-1"],
            "loss_params.gloss.sigma (r8, gloss): -1.0 must be positive",
        ),
        (["--data-dir", "/nonexistent"], "data directory /nonexistent does not exist"),
        (["--max-concurrent", "0"], "--max-concurrent 0: give a number of trials >= 1."),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, data_dir, capsys):
    argv = [
        "run",
        "demo",
        "--dry-run",
        *(["--data-dir", str(data_dir)] if "--data-dir" not in args else []),
        *args,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gloss: error: ") and message in err and len(err.splitlines()) == 1


def test_records_are_json_lines_with_config(grid_study):
    _, _, results = grid_study
    first = next(results.rglob("result.json")).read_text().splitlines()[0]
    record = json.loads(first)
    assert record["config"]["model"] == "tiny-bert" and record["loss"] in ("ce", "gloss")
