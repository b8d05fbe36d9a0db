"""Reading the bytes of virtual chunks from their source objects.

A virtual chunk names a URL and a byte range. Local files (``file://`` URLs or absolute paths)
are read with ``os.pread`` in a worker thread; every other URL through an fsspec async
filesystem (one per protocol and options, created on first use). A source that is missing or
shorter than the recorded range raises :class:`SourceModifiedError`: a virtual chunk never
silently turns into the fill value.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import fsspec
from fsspec.asyn import AsyncFileSystem

from .errors import SourceModifiedError, StorageError

__all__ = ["SourceReader", "local_path"]


def local_path(url: str) -> str | None:
    """The filesystem path of a local source URL, or None for remote URLs."""
    if url.startswith("file://"):
        return url[len("file://") :]
    if "://" not in url:
        return url
    return None


def _pread(path: str, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


class SourceReader:
    """Fetches byte ranges of source objects; ``storage_options`` per URL protocol."""

    def __init__(self, storage_options: dict[str, dict[str, Any]] | None = None) -> None:
        self.storage_options = dict(storage_options or {})
        self._filesystems: dict[str, AsyncFileSystem] = {}

    def _fs(self, protocol: str) -> AsyncFileSystem:
        fs = self._filesystems.get(protocol)
        if fs is None:
            cls = fsspec.get_filesystem_class(protocol)
            opts = self.storage_options.get(protocol, {})
            if issubclass(cls, AsyncFileSystem):
                fs = cls(asynchronous=True, **opts)
            else:
                from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

                fs = AsyncFileSystemWrapper(cls(**opts), asynchronous=True)
            self._filesystems[protocol] = fs
        return fs

    async def read(self, url: str, offset: int, length: int) -> bytes:
        """``length`` bytes of ``url`` from ``offset``."""
        path = local_path(url)
        try:
            if path is not None:
                data = await asyncio.to_thread(_pread, path, offset, length)
            else:
                protocol = fsspec.utils.get_protocol(url)
                data = bytes(
                    await self._fs(protocol)._cat_file(url, start=offset, end=offset + length)
                )
        except FileNotFoundError as exc:
            raise SourceModifiedError(
                f"virtual chunk source {url!r} no longer exists; restore it, or re-import the "
                "dataset from where the file lives now"
            ) from exc
        except OSError as exc:
            raise StorageError(f"reading virtual chunk source {url!r} failed: {exc}") from exc
        if len(data) != length:
            raise SourceModifiedError(
                f"virtual chunk source {url!r} is shorter than recorded: wanted bytes "
                f"{offset}-{offset + length}, got {len(data)}; the file changed since import"
            )
        return data
