"""Fault injection for tests, loaded by every Python process started with this folder on
PYTHONPATH (the `gloss` driver, Ray's workers): when GLOSS_TEST_KILL_DIR is set, a trial whose
identity hashes into the chosen share SIGKILLs its own process at a seeded step of its first
attempt, as a crashed node or an out-of-memory kill would. The patch is applied when the
training loop is first imported; nothing here runs otherwise."""

import importlib.abc
import importlib.machinery
import os
import sys

TARGET = "trainables.training.trainer"


def patch(module) -> None:
    import hashlib
    import signal
    from pathlib import Path

    optimise = module.Trainer._optimise
    every = int(os.environ.get("GLOSS_TEST_KILL_EVERY", "10"))
    folder = Path(os.environ["GLOSS_TEST_KILL_DIR"])

    def killing(self, loss, step):
        config = self.config
        name = f"{config.dataset}-{config.loss}-s{config.seed}-{config.phase}"
        digest = int(hashlib.md5(name.encode()).hexdigest(), 16)
        at_epoch = 1 + digest // every % config.epochs
        at_step = digest // (every * config.epochs) % 3
        marker = folder / name
        if digest % every == 0 and (self.epoch, step) == (at_epoch, at_step) and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return optimise(self, loss, step)

    module.Trainer._optimise = killing


class PatchOnImport(importlib.abc.MetaPathFinder):
    """Run `patch` on the training loop's module right after it is first executed."""

    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        execute = spec.loader.exec_module

        def exec_and_patch(module):
            execute(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


if os.environ.get("GLOSS_TEST_KILL_DIR"):
    sys.meta_path.insert(0, PatchOnImport())
