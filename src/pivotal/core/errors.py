"""Errors a user can act on. Their message is one line naming what was wrong, where, and the fix; the CLI and the
API print it without a traceback. Anything else reaching the top is a bug."""

from __future__ import annotations


class PivotalError(Exception):
    """Base of every error whose message is meant for the user."""


class UserInputError(PivotalError, ValueError):
    """A bad argument, option or configuration value."""


class DataNotFound(PivotalError, LookupError):
    """The requested market data is not in the store."""


class StaleDataError(PivotalError):
    """A window's newest bar closed longer ago than the stated limit allows."""


class StoreBusy(PivotalError):
    """Another process holds the embedded store."""


class StoreUnavailable(PivotalError):
    """The configured store cannot be opened (server unreachable, unknown backend, disk full)."""
