"""A resumed phase's searcher, made to agree with the trials Tune restored.

Tune saves a snapshot of an experiment as separate files (the trials' states, its search
generator's counters with the concurrency limiter's live trials, the searcher itself) and copies
them to storage one by one; it restores the trials from storage and the searcher from the
driver's own copy of the files, where a previous driver on this machine may have left newer ones.
A driver killed during a copy so leaves files from two snapshots. Resumed from a searcher state
newer than the trial states, Tune believed it had created trials it no longer had: the phase
ended with them never run (exit 130 on every resume), or waited with its limiter full of them.
From an older searcher state, it would suggest again trials Tune already has.

The trials Tune restored are the truth (they are what it runs). RestoredSearch, once Tune has
restored it, waits for them: the first step of the run hands them over (CatchUpWithStorage, in
study/checkpoints.py, before Tune asks for any new trial), and it sets its trial count and live
trials from them and has the searcher reconcile (tests/test_search_snapshots.py)."""

from ray.tune.search import Searcher, SearchGenerator

from study.searchers import RestoredTrial, set_live

# The search restored in this driver and not yet reconciled: Tune restores it before the run's
# first step, and creates no trial before that step's callbacks.
awaiting: list["RestoredSearch"] = []


class RestoredSearch(SearchGenerator):
    """Tune's search generator for `searcher` (a ConcurrencyLimiter around the phase's searcher),
    reconciled with the restored trials when Tune restores it."""

    def has_checkpoint(self, dirpath: str) -> bool:
        """Always: a state copied without the searcher's files is reconciled from the start."""
        return True

    def restore_from_dir(self, dirpath: str) -> None:
        if super().has_checkpoint(dirpath):
            super().restore_from_dir(dirpath)
        awaiting[:] = [self]

    def reconcile(self, trials: dict[str, RestoredTrial]) -> None:
        """Count exactly `trials` as created, their unended ones as live, and have the searcher
        agree with them."""
        self._counter, self._finished = len(trials), False
        set_live(self.searcher, {trial_id for trial_id, trial in trials.items() if not trial.ended})
        base: Searcher = self.searcher
        while hasattr(base, "searcher"):
            base = base.searcher
        base.reconcile(trials)


def reconcile_restored_search(trials: list) -> None:
    """Hand the Tune trials of a resumed run to the search Tune restored for it, if any."""
    if awaiting:
        restored = {t.trial_id: RestoredTrial(t.config, t.status == t.TERMINATED) for t in trials}
        awaiting.pop().reconcile(restored)
