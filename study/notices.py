"""One line for each fault a trial meets, in gloss's words, while Ray's traceback goes to the
study's log (study.run_log)."""

from pathlib import Path

from study.naming import trial_folder_name


def fault(trial) -> str:
    """What ended the trial's last attempt, in a few words: 'worker lost' when its process or
    node died (Ray's actor error), else the last line of the exception Tune saved for it."""
    import cloudpickle
    from ray.exceptions import RayActorError

    if not trial.pickled_error_file or not Path(trial.pickled_error_file).is_file():
        return "failed"
    with open(trial.pickled_error_file, "rb") as handle:
        error = cloudpickle.load(handle)  # written by this driver's Tune a moment ago
    if isinstance(error, RayActorError):
        return "worker lost"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:120] if lines else type(error).__name__


def recovery_notice(trial) -> str:
    """One line for a trial Tune restarts after a fault, e.g. 'r8-ce-s0-1a2b3c4d: worker lost on
    10.0.0.7, restarting from its epoch 4 checkpoint (1 of 3 restarts)'."""
    node = (trial.last_result or {}).get("node_ip") or "its node"
    checkpoint = trial.latest_checkpoint_result
    epoch = checkpoint.metrics.get("epoch") if checkpoint else None
    start = f"restarting from its epoch {epoch} checkpoint" if epoch else "restarting from the start"
    allowed = "unlimited" if trial.max_failures < 0 else str(trial.max_failures)
    restarts = f"{trial.num_failures} of {allowed} restarts"
    return f"{trial_folder_name(trial)}: {fault(trial)} on {node}, {start} ({restarts})"


def failure_notice(trial) -> str:
    """One line for a trial that ended on an error Tune gives up on."""
    return f"{trial_folder_name(trial)}: failed ({fault(trial)})"
