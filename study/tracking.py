"""Experiment trackers (TensorBoard, MLflow, W&B) through Ray Tune's own logger callbacks.

Each tracker's package is imported only inside its function, so a study that asks for none
imports none of them; a requested tracker whose package is missing is refused before any trial."""

import importlib.util
import os
import typing
from typing import Any

from common.errors import ConfigError, GlossError, suggest
from common.storage import is_uri, local_path
from study.naming import trial_folder_name
from study.spec import StudySpec, Tracker

TRACKERS: tuple[str, ...] = typing.get_args(Tracker)
# The module each tracker needs, and the pip package that provides it.
PACKAGES = {
    "tensorboard": ("tensorboardX", "tensorboardX"),
    "mlflow": ("mlflow", "mlflow-skinny"),
    "wandb": ("wandb", "wandb"),
}
TAGS = ("study", "dataset", "loss", "seed", "phase")  # what tells a tracker's runs apart
OFFLINE_MODES = ("offline", "disabled", "dryrun")


def parse_tracking_flag(value: str) -> tuple[str, ...]:
    """`--tracking mlflow,wandb` as a tuple of tracker names; `none` or '' turns the spec's off."""
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if names in ((), ("none",)):
        return ()
    for name in names:
        if name not in TRACKERS:
            raise ConfigError(
                f"--tracking {value}: '{name}' is not a tracker; choose from {', '.join(TRACKERS)} "
                f"(comma-separated){suggest(name, TRACKERS)}."
            )
    return tuple(dict.fromkeys(names))


def check_trackers(trackers: tuple[str, ...], root: str) -> None:
    """Refuse, before any trial, a tracker whose package is missing or whose destination is unset."""
    for name in trackers:
        module, package = PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise GlossError(
                f"tracking: {name} needs the {package} package; install it with "
                f"pip install -e '.[tracking]' in a checkout (or pip install {package})."
            )
    if "mlflow" in trackers and is_uri(root) and not os.environ.get("MLFLOW_TRACKING_URI"):
        raise GlossError(
            f"tracking: mlflow with storage {root} needs a tracking server; set MLFLOW_TRACKING_URI "
            "(e.g. http://host:5000)."
        )
    if "wandb" in trackers and not wandb_credentials():
        raise GlossError(
            "tracking: wandb found no API key; set WANDB_API_KEY (or run `wandb login`), or set "
            "WANDB_MODE=offline to write runs locally."
        )


def tracker_callbacks(spec: StudySpec, phase: str, root: str) -> list[Any]:
    """Ray Tune logger callbacks for the spec's trackers, in the order given."""
    build = {"tensorboard": tensorboard_callback, "mlflow": mlflow_callback, "wandb": wandb_callback}
    return [build[name](spec, phase, root) for name in spec.tracking]


def tensorboard_callback(spec: StudySpec, phase: str, root: str) -> Any:
    """Tune's TensorBoardX logger: event files inside each trial's folder, one scalar per metric
    (`ray/tune/<metric>`) per epoch."""
    from ray.tune.logger import TBXLoggerCallback

    return TBXLoggerCallback()


def mlflow_tracking_uri(root: str) -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite database in the study's folder (MLflow refuses
    a plain folder store)."""
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    folder = local_path(root)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def mlflow_callback(spec: StudySpec, phase: str, root: str) -> Any:
    """Tune's MLflow logger: one experiment per study, one run per trial named as the trial (launch
    names trials as their folders), with the trial's configuration as parameters, every epoch's
    metrics as history (step = epoch), and its identity (study, dataset, loss, seed, phase) and
    folder name as tags."""
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    class IdentifiedMLflowLogger(MLflowLoggerCallback):
        """Tags each trial's run with its identity and folder (the callback's tags are otherwise
        shared by all runs)."""

        def log_trial_start(self, trial) -> None:
            self.tags = {
                **(self.tags or {}),
                **identity(trial.config),
                "trial_folder": trial_folder_name(trial),
            }
            super().log_trial_start(trial)

    return IdentifiedMLflowLogger(tracking_uri=mlflow_tracking_uri(root), experiment_name=spec.name)


def wandb_callback(spec: StudySpec, phase: str, root: str) -> Any:
    """Tune's W&B logger: project = WANDB_PROJECT or the study's name, group = phase, run name =
    the trial's name (launch names trials as their folders), the trial's configuration (identity
    included) as the run's config. WANDB_MODE is passed on as the user set it.

    With storage on a local or shared path, W&B writes straight into the trial's folder there
    (offline runs land in <trial folder>/wandb/): Tune's logging actor otherwise writes into the
    driver's staging folder, which Tune copies to storage when the trial ends, while `wandb.finish`
    is still writing, so the copy lost the last records. With an object store, W&B writes to its
    server (online) or to the staging folder (offline)."""
    from ray.air.integrations.wandb import WandbLoggerCallback

    class NamedWandbLogger(WandbLoggerCallback):
        """On local storage, writes each trial's run into its folder (the callback's kwargs go to
        wandb.init)."""

        def log_trial_start(self, trial) -> None:
            if not is_uri(root):
                self.kwargs["dir"] = trial.path
            super().log_trial_start(trial)

    return NamedWandbLogger(
        project=os.environ.get("WANDB_PROJECT") or spec.name,
        group=phase,
        mode=os.environ.get("WANDB_MODE"),
    )


def finish_waits_for_wandb(run: Any) -> None:
    """Ray's WANDB_PROCESS_RUN_INFO_HOOK (ray_session sets it), called with each trial's W&B run
    inside Ray's logging actor. Ray kills that actor as soon as `wandb.finish` returns, while
    wandb-core may still be writing the run (offline runs were left with an empty transaction log
    on a loaded machine), so finishing the run here also waits for wandb-core (`wandb.teardown`)."""
    import wandb

    finish = run.finish

    def finish_and_wait(*args: Any, **kwargs: Any) -> None:
        finish(*args, **kwargs)
        wandb.teardown()

    run.finish = finish_and_wait


def identity(config: dict[str, Any]) -> dict[str, str]:
    """A trial's identity as string tags."""
    return {key: str(config[key]) for key in TAGS if key in config}


def wandb_credentials() -> bool:
    """True when W&B may run: offline or disabled mode, an API key, or a `wandb login`."""
    if os.environ.get("WANDB_MODE") in OFFLINE_MODES or os.environ.get("WANDB_API_KEY"):
        return True
    import wandb

    return wandb.login(prompt=False, verify=False)  # finds a stored key; contacts no server
