"""Storage on any fsspec filesystem (S3, GCS, Azure, HTTP, ...).

Atomic create uses the filesystem's exclusive-write mode (``_pipe_file(..., mode="create")``,
which s3fs sends as ``If-None-Match: *`` and gcsfs as a generation precondition). A filesystem
that has no such mode cannot serve concurrent writers safely; ``atomic_create`` says which, and
single-writer use still works. Synchronous filesystems are wrapped with fsspec's own
``AsyncFileSystemWrapper``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import fsspec
from fsspec.asyn import AsyncFileSystem

from ..errors import NotFoundError, StorageError
from ._base import Storage, check_key

__all__ = ["FsspecStorage"]


class FsspecStorage(Storage):
    """Objects below ``url`` on an fsspec filesystem."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.location = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        protocol = fsspec.utils.get_protocol(url)
        cls = fsspec.get_filesystem_class(protocol)
        # refs are found by listing: a cached listing would hide other writers' commits
        options = {"use_listings_cache": False, "skip_instance_cache": True}
        options.update(self.storage_options)
        if issubclass(cls, AsyncFileSystem):
            fs = cls(asynchronous=True, **options)
        else:
            from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

            fs = AsyncFileSystemWrapper(cls(**self.storage_options), asynchronous=True)
        self.fs: AsyncFileSystem = fs
        self.root = fs._strip_protocol(url).rstrip("/")
        try:
            params = inspect.signature(fs._pipe_file).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        self.atomic_create = "mode" in params

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.location, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], state["storage_options"])  # type: ignore[misc]

    def _path(self, key: str) -> str:
        return f"{self.root}/{check_key(key)}"

    async def get(self, key: str) -> bytes:
        try:
            return bytes(await self.fs._cat_file(self._path(key)))
        except FileNotFoundError:
            raise NotFoundError(f"object {key!r} not found in {self.location}") from None
        except OSError as exc:
            raise StorageError(f"reading {key!r} from {self.location} failed: {exc}") from exc

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        if length == 0:
            if not await self.exists(key):
                raise NotFoundError(f"object {key!r} not found in {self.location}")
            return b""
        try:
            return bytes(await self.fs._cat_file(self._path(key), start=start, end=start + length))
        except FileNotFoundError:
            raise NotFoundError(f"object {key!r} not found in {self.location}") from None
        except OSError as exc:
            raise StorageError(f"reading {key!r} from {self.location} failed: {exc}") from exc

    async def put(self, key: str, data: bytes) -> None:
        try:
            await self.fs._pipe_file(self._path(key), bytes(data))
        except OSError as exc:
            raise StorageError(f"writing {key!r} to {self.location} failed: {exc}") from exc

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        try:
            if self.atomic_create:
                await self.fs._pipe_file(path, bytes(data), mode="create")
            else:
                if await self.fs._exists(path):
                    return False
                await self.fs._pipe_file(path, bytes(data))
        except FileExistsError:
            return False
        except OSError as exc:
            raise StorageError(f"creating {key!r} in {self.location} failed: {exc}") from exc
        return True

    async def list(self, prefix: str) -> AsyncIterator[str]:
        folder, _, _ = prefix.rpartition("/")
        base = f"{self.root}/{folder}" if folder else self.root
        self.fs.invalidate_cache(base)
        try:
            found = await self.fs._find(base)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"listing {prefix!r} in {self.location} failed: {exc}") from exc
        cut = len(self.root) + 1
        for path in sorted(found):
            key = path[cut:]
            if key.startswith(prefix):
                yield key

    async def delete(self, key: str) -> None:
        try:
            await self.fs._rm_file(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"deleting {key!r} in {self.location} failed: {exc}") from exc

    async def exists(self, key: str) -> bool:
        try:
            return bool(await self.fs._exists(self._path(key)))
        except OSError as exc:
            raise StorageError(f"checking {key!r} in {self.location} failed: {exc}") from exc
