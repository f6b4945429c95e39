"""Exceptions wq raises, and the exit code each maps to on the command line."""


class WqError(Exception):
    """Base class: every error wq raises on purpose."""

    exit_code = 1


class ConfigError(WqError):
    """Bad input from the user (flags, URL, items file). Retrying will not help."""

    exit_code = 2


class RedisUnavailable(WqError):
    """Redis stayed unreachable for longer than the retry budget."""


class SeedTimeout(WqError):
    """The run was never marked as seeded within the wait budget."""


class SourceChanged(WqError):
    """The list being adopted changed while it was copied; adopting it again may work."""
