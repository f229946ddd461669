"""User-facing errors: one sentence naming the problem and the fix, shown without a traceback."""

import difflib
from collections.abc import Iterable


class GlossError(Exception):
    """Base class of every error a user can fix (bad spec, bad data, bad flag)."""


class ConfigError(GlossError, ValueError):
    """A configuration value or key is wrong."""


class DataError(GlossError):
    """A data directory or data file is missing or malformed."""


class StudyInterrupted(Exception):
    """A study stopped before its trials ended (Tune caught a signal and saved its state); not a
    user's mistake: `gloss run ... --resume` continues it."""


def suggest(word: object, options: Iterable[object]) -> str:
    """A ' (did you mean ...?)' hint naming the closest option, or '' when none is close."""
    candidates = [str(o) for o in options if str(o) != str(word)]
    close = difflib.get_close_matches(str(word), candidates, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
