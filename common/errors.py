"""User-facing errors: one sentence naming the problem and the fix, shown without a traceback."""


class GlossError(Exception):
    """Base class of every error a user can fix (bad spec, bad data, bad flag)."""


class ConfigError(GlossError, ValueError):
    """A configuration value or key is wrong."""


class DataError(GlossError):
    """A data directory or data file is missing or malformed."""


class StudyInterrupted(Exception):
    """A study stopped before its trials ended (Tune caught a signal and saved its state); not a
    user's mistake: `gloss run ... --resume` continues it."""
