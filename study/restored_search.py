"""A resumed phase's searcher, made to agree with the trials Tune restored.

Tune saves a snapshot of an experiment as three files (the trials' states, its search
generator's counters with the concurrency limiter's live trials, the searcher itself) and copies
them to storage together but not atomically: a driver killed during the copy leaves files from
two snapshots. Resumed from a searcher state newer than the trial states, Tune believed it had
created trials it no longer had: the phase ended with them never run (exit 130 on every
resume), or waited forever on a limiter full of them. From an older searcher state, it would
suggest again trials Tune already has.

The trial states are the truth (they are what Tune runs): RestoredSearch, after Tune restores it,
sets its trial count and live trials from them and has the searcher reconcile
(tests/test_search_snapshots.py)."""

import glob
import json
import os

from ray.tune.search import Searcher, SearchGenerator

from study.searchers import RestoredTrial, set_live

EXPERIMENT_STATE = "experiment_state-*.json"


class RestoredSearch(SearchGenerator):
    """Tune's search generator for `searcher` (at most `max_concurrent` trials live), which
    reconciles itself with the restored trials when Tune restores it."""

    def has_checkpoint(self, dirpath: str) -> bool:
        """Always: a state copied without the searcher's files is reconciled from the start."""
        return True

    def restore_from_dir(self, dirpath: str) -> None:
        if super().has_checkpoint(dirpath):
            super().restore_from_dir(dirpath)
        trials = restored_trials(dirpath)
        self._counter, self._finished = len(trials), False
        set_live(self.searcher, {trial_id for trial_id, trial in trials.items() if not trial.ended})
        base: Searcher = self.searcher
        while hasattr(base, "searcher"):
            base = base.searcher
        base.reconcile(trials)


def restored_trials(dirpath: str) -> dict[str, RestoredTrial]:
    """The trials of the newest experiment state in `dirpath` (the driver's copy of the one Tune
    restored, chosen as Tune chooses it: the greatest name), by trial id."""
    states = sorted(glob.glob(os.path.join(dirpath, EXPERIMENT_STATE)))
    if not states:
        return {}
    with open(states[-1]) as handle:
        trial_data = json.load(handle)["trial_data"]
    trials = {}
    for trial_state, _ in trial_data:
        trial = json.loads(trial_state)
        trials[trial["trial_id"]] = RestoredTrial(trial["config"], trial["status"] == "TERMINATED")
    return trials
