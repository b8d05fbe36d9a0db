"""The zarrchive exception tree.

Every error raised on purpose by zarrchive derives from :class:`ZarrchiveError`, grouped by
what a caller would do about it. Each class also inherits the matching builtin so that code
written against plain Python (``except KeyError``) keeps working. This module imports nothing
from the rest of the package.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConflictError",
    "FormatError",
    "InvalidInputError",
    "NotFoundError",
    "ReadOnlyError",
    "SourceModifiedError",
    "StorageError",
    "UnauthorizedSourceError",
    "UnsupportedFeatureError",
    "ZarrchiveError",
]


class ZarrchiveError(Exception):
    """Base class of every error zarrchive raises on purpose."""


class NotFoundError(ZarrchiveError, KeyError):
    """A repository, branch, tag, commit, node or object does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ConflictError(ZarrchiveError):
    """Two writers changed the same thing, or a ref moved under a writer.

    ``conflicts`` lists one human-readable description per conflicting path or chunk region.
    """

    def __init__(self, message: str, conflicts: Iterable[str] = ()) -> None:
        self.conflicts: list[str] = list(conflicts)
        if self.conflicts:
            message = message + "\n  " + "\n  ".join(self.conflicts)
        super().__init__(message)


class ReadOnlyError(ZarrchiveError, PermissionError):
    """A write was attempted through a read-only session or store."""


class SourceModifiedError(ZarrchiveError):
    """A virtual chunk's source object changed (or vanished) since it was imported."""


class UnauthorizedSourceError(ZarrchiveError, PermissionError):
    """A virtual chunk points at a location the reader has not authorised."""


class UnsupportedFeatureError(ZarrchiveError, NotImplementedError):
    """The input uses a feature zarrchive cannot represent (yet)."""


class InvalidInputError(ZarrchiveError, ValueError):
    """An argument or document given by the caller is not valid."""


class FormatError(ZarrchiveError):
    """A repository object is corrupt, truncated, or written by a newer format version."""


class StorageError(ZarrchiveError, OSError):
    """The storage backend failed (I/O error, permissions, network)."""
