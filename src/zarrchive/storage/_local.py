"""Local-directory storage: the embedded default.

Writes go to a temporary file in the target folder and are published with ``os.replace``
(atomic on POSIX), so a reader never sees a half-written object and a crash leaves at worst a
stray ``.tmp-*`` file. ``put_if_absent`` publishes with ``os.link``, which fails atomically when
the target exists, so two processes racing to move a branch cannot both win. Keys that would
escape the root directory are refused.
"""

from __future__ import annotations

import asyncio
import errno
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from ..errors import InvalidInputError, NotFoundError, StorageError
from ._base import Storage, check_key

__all__ = ["LocalStorage"]

_TMP_PREFIX = ".tmp-"


class LocalStorage(Storage):
    """Objects as files below ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.location = str(self.root)

    def _path(self, key: str) -> Path:
        check_key(key)
        if any(part.startswith(_TMP_PREFIX) for part in key.split("/")):
            raise InvalidInputError(f"invalid storage key {key!r}: reserved prefix {_TMP_PREFIX!r}")
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise InvalidInputError(
                f"storage key {key!r} escapes the repository directory {self.root}"
            )
        return path

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"object {key!r} not found in {self.location}") from None
        except IsADirectoryError:
            raise NotFoundError(f"object {key!r} not found in {self.location}") from None
        except OSError as exc:
            raise StorageError(f"reading {path} failed: {exc}") from exc

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"object {key!r} not found in {self.location}") from None
        except OSError as exc:
            raise StorageError(f"reading {path} failed: {exc}") from exc
        try:
            return os.pread(fd, length, start) if length else b""
        finally:
            os.close(fd)

    def _write_tmp(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return tmp

    async def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            tmp = self._write_tmp(path, data)
            os.replace(tmp, path)
        except OSError as exc:
            raise StorageError(f"writing {path} failed: {exc}") from exc

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        try:
            tmp = self._write_tmp(path, data)
        except OSError as exc:
            raise StorageError(f"writing {path} failed: {exc}") from exc
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                return False
            raise StorageError(f"creating {path} failed: {exc}") from exc
        finally:
            os.unlink(tmp)

    async def list(self, prefix: str) -> AsyncIterator[str]:
        # walk only the folder the prefix names, then filter by the remainder
        folder, _, _ = prefix.rpartition("/")
        base = self.root / folder if folder else self.root
        keys = await asyncio.to_thread(self._walk, base)
        for key in keys:
            if key.startswith(prefix):
                yield key

    def _walk(self, base: Path) -> list[str]:
        out: list[str] = []
        root_len = len(str(self.root)) + 1
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if not name.startswith(_TMP_PREFIX):
                    out.append(os.path.join(dirpath, name)[root_len:].replace(os.sep, "/"))
        return out

    async def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"deleting {key!r} in {self.location} failed: {exc}") from exc

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()
