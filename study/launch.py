"""Run a study's phases as Ray Tune experiments under <storage>/<study name>/<phase>, resuming
interrupted ones with Tuner.restore (finished trials are never rerun)."""

import math
import os
from dataclasses import dataclass
from typing import Any

from common.errors import GlossError, StudyInterrupted
from common.records import FINISHED, SEARCH_METRIC, SEARCH_MODE
from common.storage import filesystem, join, native_scheme
from study.interrupts import fit_watched
from study.naming import RESUMED_FOLDERS, trial_folder_name
from study.phase import Phase
from study.searchers import given_up
from study.spec import StudySpec
from study.study_plan import StudyPlan


@dataclass(frozen=True)
class RunOptions:
    """How to run: where results go, whether to resume, how many trials at once (overrides the
    spec's `max_concurrent`)."""

    storage: str
    resume: bool = False
    max_concurrent: int | None = None


def storage_root(storage: str, study: str) -> str:
    """<storage>/<study> as an absolute path or a URI such as s3://bucket/prefix/study."""
    return join(storage, study)


def run_study(plan: StudyPlan, options: RunOptions) -> list[str]:
    """Run the plan's phases in order, each as the experiments of its stages (a grown study's
    later stages add `<phase>+i` experiments of their new trials beside the earlier ones; a
    protocol's final phase is planned from every search experiment's results); returns the
    experiment folders."""
    spec = plan.spec
    root = storage_root(options.storage, spec.name)
    ran = list(plan.first)
    results = [run_phase(spec, phase, options, root) for phase in ran]
    if spec.kind == "protocol":
        final = plan.final(best_configs([result for grid in results for result in grid]))
        for phase in final:
            run_phase(spec, phase, options, root)
        ran += final
    return [join(root, phase.experiment) for phase in ran]


def run_phase(spec: StudySpec, phase: Phase, options: RunOptions, root: str):
    """One Tune experiment: restored when it exists and --resume is given, else started."""
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    from study.checkpoints import checkpoint_settings
    from study.progress import Progress
    from study.record_writers import record_writers
    from study.restored_search import RestoredSearch
    from study.tracking import tracker_callbacks
    from trainables.trainable import train_trial

    trainable = tune.with_resources(train_trial, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    storage = storage_arguments(root)
    path, custom_fs = f"{storage['storage_path']}/{phase.experiment}", storage.get("storage_filesystem")
    if tune.Tuner.can_restore(path, storage_filesystem=custom_fs):
        if not options.resume:
            raise GlossError(
                f"study '{spec.name}' already has a {phase.experiment} phase in {path}; pass --resume "
                "to continue it, or choose another --storage or study name."
            )
        tuner = tune.Tuner.restore(
            path, trainable=trainable, resume_errored=True, storage_filesystem=custom_fs
        )
    else:
        checkpoint_config, checkpoint_callbacks = checkpoint_settings(spec.checkpoint)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=RestoredSearch(
                    ConcurrencyLimiter(
                        phase.searcher(record=ended_early_record(root, phase.experiment)),
                        max_concurrent=live_trials(spec, phase, options),
                    )
                ),
                num_samples=phase.trials,
                metric=SEARCH_METRIC,
                mode=SEARCH_MODE,
                scheduler=scheduler(spec, phase) if phase.asha else None,
                reuse_actors=True,
                trial_dirname_creator=trial_folder_name,
                trial_name_creator=trial_folder_name,
            ),
            run_config=tune.RunConfig(
                name=phase.experiment,
                **storage,
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                checkpoint_config=checkpoint_config,
                callbacks=[
                    *checkpoint_callbacks,  # first: records a trial lacks are restored before written
                    *record_writers(),
                    Progress(phase.experiment, phase.trials, max(g.config.epochs for g in phase.groups)),
                    *tracker_callbacks(spec, phase.name, root),
                ],
                verbose=0,
            ),
        )
    RESUMED_FOLDERS.clear()  # filled by this phase's resume, if it is one
    results, interrupted = fit_watched(tuner.fit)
    planned = phase.trials - given_up(ended_early_record(root, phase.experiment))
    unended = results.num_terminated + results.num_errors < len(results)
    if interrupted or unended or len(results) < planned:
        raise StudyInterrupted(f"the {phase.experiment} experiment stopped before its trials ended")
    return results


def ended_early_record(root: str, experiment: str) -> str:
    """<root>/<experiment>-ended-early.json: the searches of an experiment that stopped before
    their budget, because their sampler proposed only configurations already trained."""
    return join(root, f"{experiment}-ended-early.json")


def storage_arguments(root: str) -> dict[str, Any]:
    """Ray's storage settings for `root`: the path or URI as it is where pyarrow resolves it,
    else the fsspec filesystem and the path on it."""
    if native_scheme(root):
        return {"storage_path": root}
    fs, path = filesystem(root)
    return {"storage_path": path, "storage_filesystem": fs}


def live_trials(spec: StudySpec, phase: Phase, options: RunOptions) -> int:
    """How many trials of the phase may be live at once: --max-concurrent, else the spec's
    max_concurrent, else all of them. The searcher runs behind a ConcurrencyLimiter of this
    size, and Tune keeps as many trials PENDING (TuneController._get_max_pending_trials reads the
    limiter), each a placement-group request the autoscaler sees; without a limiter a custom
    searcher gets one pending trial at a time, and a cluster grows one node at a time."""
    return options.max_concurrent or spec.max_concurrent or phase.trials


def scheduler(spec: StudySpec, phase: Phase):
    """ASHA on epochs, up to the phase's epoch budget (its trials' checked configs carry it);
    what it stops early is told to Optuna as pruned, not complete."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=max(group.config.epochs for group in phase.groups),
        grace_period=spec.search.grace_period,
        reduction_factor=spec.search.reduction_factor,
    )


def best_configs(results) -> dict[tuple[str, str], dict[str, Any]]:
    """Per dataset x row, the config of the search trial with the best validation score among
    those that completed or stopped early on their own (never a diverged, failed or
    scheduler-stopped one)."""
    best: dict[tuple[str, str], tuple[float, dict]] = {}
    for result in results:
        metrics = result.metrics or {}
        score = metrics.get(SEARCH_METRIC, math.nan)
        if result.error or metrics.get("status") not in FINISHED or not math.isfinite(score):
            continue
        key = (result.config["dataset"], result.config.get("method") or result.config["loss"])
        if key not in best or score > best[key][0]:
            best[key] = (score, result.config)
    return {key: config for key, (_, config) in best.items()}


def warm_caches(spec: StudySpec) -> None:
    """Build tokenisation and embedding caches here, once per dataset and with a visible progress
    bar, before local trials start (on a cluster each node builds its own under a lock)."""
    import torch

    from study.plan import base_config
    from trainables.training.prepare import prepare_data

    for dataset in spec.datasets:
        config = base_config(spec, dataset, spec.rows[0], spec.seeds[0], "warm-up")
        device = torch.device("cuda" if torch.cuda.is_available() and spec.resources.gpu else "cpu")
        torch.set_num_threads(os.cpu_count() or 1)
        prepare_data(config, device)
