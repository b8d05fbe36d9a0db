"""The storage interface: where repository objects live.

Storage is a flat key -> bytes map with exactly the operations the repository needs. Only
``put_if_absent`` must be atomic: it is the single primitive that concurrent writers rely on
(moving a branch, creating a tag). Everything else is written once under a fresh random key and
never rewritten. This module imports nothing from the rest of zarrchive but ``errors``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from ..errors import InvalidInputError

__all__ = ["Storage", "check_key"]


def check_key(key: str) -> str:
    """Validate a storage key: relative, '/'-separated, no empty, '.' or '..' segments."""
    if not key or key.startswith("/") or "\\" in key:
        raise InvalidInputError(f"invalid storage key {key!r}: keys are relative, '/'-separated")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidInputError(
                f"invalid storage key {key!r}: empty, '.' and '..' segments are not allowed"
            )
    return key


class Storage(ABC):
    """Async key/value storage of repository objects."""

    #: A URL-like description of where the objects live, for messages and reprs.
    location: str

    @abstractmethod
    async def get(self, key: str) -> bytes:
        """Return the whole object; raise ``NotFoundError`` when absent."""

    @abstractmethod
    async def get_range(self, key: str, start: int, length: int) -> bytes:
        """Return ``length`` bytes from ``start``; raise ``NotFoundError`` when absent."""

    @abstractmethod
    async def put(self, key: str, data: bytes) -> None:
        """Write an object (used for keys nobody else can be writing: fresh random ids)."""

    @abstractmethod
    async def put_if_absent(self, key: str, data: bytes) -> bool:
        """Atomically create ``key``; return False (and write nothing) if it already exists."""

    @abstractmethod
    def list(self, prefix: str) -> AsyncIterator[str]:
        """Yield every key that starts with ``prefix`` (a folder-like prefix ending in '/')."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove an object; absent keys are ignored."""

    async def exists(self, key: str) -> bool:
        """True when ``key`` is present."""
        from ..errors import NotFoundError

        try:
            await self.get_range(key, 0, 0)
        except NotFoundError:
            return False
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"
