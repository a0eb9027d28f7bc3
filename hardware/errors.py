"""The one exception type for mistakes a user can fix (bad file, bad flag, bad preset field)."""

from __future__ import annotations


class HwsimError(Exception):
    """A user-facing error: the message names the file, node, dimension or field and what would fix it.

    The CLI prints ``error: <message>`` on one line and exits with status 2 (no traceback unless ``--debug``).
    """


class HwsimWarning(UserWarning):
    """Something a user should know that does not stop the run (the CLI prints ``warning: <message>``)."""


class DoesNotFit(HwsimError):
    """A model (weights plus its largest KV cache) does not fit a target's memory: both sizes in bytes."""

    def __init__(self, message: str, required_bytes: int, capacity_bytes: int) -> None:
        super().__init__(message)
        self.required_bytes = required_bytes
        self.capacity_bytes = capacity_bytes


def unreadable(err: BaseException, expected: str = "a text file") -> str:
    """Why a file could not be read, in a user's words (no Python exception names): ``no such file``, ``permission
    denied``, ``not <expected> (binary data)``, or the system's message."""
    if isinstance(err, UnicodeDecodeError):
        return f"not {expected} (binary data at byte {err.start})"
    if isinstance(err, FileNotFoundError):
        return "no such file"
    if isinstance(err, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return str(err)
