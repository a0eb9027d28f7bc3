"""The one exception type for mistakes a user can fix (bad file, bad flag, bad preset field)."""

from __future__ import annotations


class HwsimError(Exception):
    """A user-facing error: the message names the file, node, dimension or field and what would fix it.

    The CLI prints ``error: <message>`` on one line and exits with status 2 (no traceback unless ``--debug``).
    """


class HwsimWarning(UserWarning):
    """Something a user should know that does not stop the run (the CLI prints ``warning: <message>``)."""
