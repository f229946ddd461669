"""How gloss names a trial wherever a person reads it: its folder, its tracker run, its notices."""


def trial_folder_name(trial) -> str:
    """<dataset>-<row>-s<seed>-<trial id>, from a Tune trial (its config and id): the study's row
    name, as the records' `loss` (`r8-gloss_o+ce-s0-...`), which for a row named after its loss is
    the loss (`r8-gloss-s0-...`)."""
    config = trial.config
    row = config.get("method") or config["loss"]
    return f"{config['dataset']}-{row}-s{config['seed']}-{trial.trial_id}"
