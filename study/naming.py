"""How gloss names a trial wherever a person reads it: its folder, its tracker run, its notices."""


def trial_folder_name(trial) -> str:
    """<dataset>-<loss>-s<seed>-<trial id>, from a Tune trial (its config and id)."""
    config = trial.config
    return f"{config['dataset']}-{config['loss']}-s{config['seed']}-{trial.trial_id}"
