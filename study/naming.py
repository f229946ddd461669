"""How gloss names a trial wherever a person reads it: its folder, its tracker run, its notices."""

import json
from typing import Any

# A trial config (as JSON) -> the folder of the trial that ran it before a resume lost it from
# Tune's experiment state; the trial asked for again in its place resumes there
# (study/restored_search.py). Filled on the driver as a phase resumes.
RESUMED_FOLDERS: dict[str, str] = {}


def folder_name(config: dict[str, Any], trial_id: str) -> str:
    """<dataset>-<row>-s<seed>-<trial id>: the study's row name, as the records' `loss`
    (`r8-gloss_o+ce-s0-...`), which for a row named after its loss is the loss (`r8-gloss-s0-...`)."""
    row = config.get("method") or config["loss"]
    return f"{config['dataset']}-{row}-s{config['seed']}-{trial_id}"


def config_key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def resume_in_folder(config: dict[str, Any], folder: str) -> None:
    """Name the next trial of `config` after `folder`, where a trial Tune lost ran it, so that it
    continues there."""
    RESUMED_FOLDERS[config_key(config)] = folder


def trial_folder_name(trial) -> str:
    """A Tune trial's folder: that of the lost trial it replaces, else folder_name."""
    if RESUMED_FOLDERS and (folder := RESUMED_FOLDERS.get(config_key(trial.config))):
        return folder
    return folder_name(trial.config, trial.trial_id)
