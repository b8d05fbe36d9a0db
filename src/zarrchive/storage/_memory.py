"""In-memory storage: a dict per name, shared within the process (``memory://name``).

Used for tests and scratch repositories. Atomic create is a dict insert under a lock-free
check: all coroutines run on one event loop, so there is no interleaving inside a method.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

from ..errors import NotFoundError
from ._base import Storage, check_key

__all__ = ["MemoryStorage"]

_REGISTRY: dict[str, dict[str, bytes]] = {}
_LOCK = threading.Lock()


class MemoryStorage(Storage):
    """Objects kept in a process-wide dict named ``name``."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.location = f"memory://{name}"
        with _LOCK:
            self._data = _REGISTRY.setdefault(name, {})

    def __getstate__(self) -> dict[str, str]:
        # pickle by name: the unpickled storage must share the process-wide dict, not a copy
        return {"name": self.name}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__init__(state["name"])  # type: ignore[misc]

    async def get(self, key: str) -> bytes:
        try:
            return self._data[check_key(key)]
        except KeyError:
            raise NotFoundError(f"object {key!r} not found in {self.location}") from None

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        data = await self.get(key)
        return data[start : start + length]

    async def put(self, key: str, data: bytes) -> None:
        self._data[check_key(key)] = bytes(data)

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        with _LOCK:
            if check_key(key) in self._data:
                return False
            self._data[key] = bytes(data)
            return True

    async def list(self, prefix: str) -> AsyncIterator[str]:
        for key in [k for k in self._data if k.startswith(prefix)]:
            yield key

    async def delete(self, key: str) -> None:
        self._data.pop(check_key(key), None)

    async def exists(self, key: str) -> bool:
        return check_key(key) in self._data

    @staticmethod
    def forget(name: str) -> None:
        """Drop the named in-memory repository (tests use fresh names instead)."""
        with _LOCK:
            _REGISTRY.pop(name, None)
