"""Errors a user can fix (exit code 2, one line) versus bugs (raised as-is)."""
from __future__ import annotations

__all__ = ["UsageError", "DataError", "PluginError"]


class UsageError(Exception):
    """Bad input a user can fix: unknown name, malformed option, conflicting run.

    The CLI prints ``harness: error: <message>`` on one line and exits with code 2. The message
    must name the culprit and, where useful, the accepted values.
    """


class DataError(UsageError):
    """A dataset file is missing, truncated or corrupt; the message names the file and the fix."""


class PluginError(UsageError):
    """A plugin could not be loaded or registered a broken component; the message names the plugin."""
