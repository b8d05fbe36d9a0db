"""Storage backends and :func:`storage_for`, which picks one for a location.

``memory://name`` -> :class:`MemoryStorage`; a plain path or ``file://`` URL ->
:class:`LocalStorage` (the embedded default); any other URL -> :class:`FsspecStorage`.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidInputError
from ._base import Storage
from ._fsspec import FsspecStorage
from ._local import LocalStorage
from ._memory import MemoryStorage

__all__ = ["FsspecStorage", "LocalStorage", "MemoryStorage", "Storage", "storage_for"]


def storage_for(
    location: str | os.PathLike[str] | Storage, storage_options: dict[str, Any] | None = None
) -> Storage:
    """Return the storage backend for ``location``."""
    if isinstance(location, Storage):
        return location
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str) or not location:
        raise InvalidInputError(
            f"repository location must be a path or URL string, got {location!r}"
        )
    if location.startswith("memory://"):
        if storage_options:
            raise InvalidInputError("memory:// repositories take no storage_options")
        return MemoryStorage(location[len("memory://") :])
    if location.startswith("file://"):
        return LocalStorage(location[len("file://") :])
    if "://" not in location:
        return LocalStorage(location)
    return FsspecStorage(location, storage_options)
