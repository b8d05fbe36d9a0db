"""The Zarr v3 store over a session.

``ZarrchiveStore`` implements :class:`zarr.abc.store.Store`. ``zarr.json`` keys are served
from (and written to) the session's node tree; every other key is resolved to an array and a
chunk coordinate with the array's chunk key encoding, and then through the manifests (or the
session's uncommitted changes) to native, inline or virtual bytes. Listing builds chunk keys
in bulk from manifest columns. This module knows nothing of the user-facing ``Repo``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from zarr.abc.buffer import Buffer, BufferPrototype
from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)

from .changeset import ChunkRef
from .errors import InvalidInputError, ReadOnlyError, UnsupportedFeatureError
from .format import INLINE, Node
from .session import Session
from .zarr_keys import (
    META_KEY,
    chunk_key_decoder,
    chunk_keys,
    is_v2_key,
    join,
    validate_metadata,
)

__all__ = ["ZarrchiveStore"]


class _StoreReadOnlyError(ReadOnlyError, ValueError):
    """A write through a read-only store.

    Also a ``ValueError``: zarr's ``Store`` contract raises ``ValueError`` for writes to a
    store opened read-only, and zarr code (and its store test-suite) relies on that.
    """


def _meta_path(key: str) -> str | None:
    if key == META_KEY:
        return ""
    if key.endswith("/" + META_KEY) and len(key) > len(META_KEY) + 1:
        return key[: -len(META_KEY) - 1]
    return None


def _slice(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return data[max(len(data) - byte_range.suffix, 0) :]
    raise TypeError(f"Unexpected byte_range, got {byte_range!r}")


def _ref_size(ref: ChunkRef) -> int:
    return len(ref.data) if ref.kind == INLINE else ref.length


class ZarrchiveStore(Store):
    """A Zarr v3 store over a zarrchive :class:`Session`."""

    supports_writes = True  # type: ignore[assignment]
    supports_deletes = True  # type: ignore[assignment]
    supports_listing = True  # type: ignore[assignment]
    supports_partial_writes = False  # type: ignore[assignment]

    def __init__(self, session: Session, *, read_only: bool | None = None) -> None:
        if read_only is None:
            read_only = not session.writable
        if not read_only and not session.writable:
            raise ReadOnlyError(
                "cannot open a writable store over a read-only session; checkout a branch"
            )
        super().__init__(read_only=read_only)
        self.session = session
        self._decoders: dict[tuple[str, int], Any] = {}

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "writable"
        return f"<ZarrchiveStore {mode} {self.session!r}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ZarrchiveStore)
            and other.session.id == self.session.id
            and other.read_only == self.read_only
        )

    __hash__ = None  # type: ignore[assignment]

    def with_read_only(self, read_only: bool = False) -> ZarrchiveStore:
        return ZarrchiveStore(self.session, read_only=read_only)

    def _check_writable(self) -> None:
        if self.read_only:
            raise _StoreReadOnlyError(
                "store was opened in read-only mode and does not support writing: the session "
                "is not on a branch tip, or the store was opened read-only; checkout a branch "
                "to write"
            )

    # ------------------------------------------------------------------ key resolution
    def _decoder(self, node: Node) -> Any:
        k = (node.id, id(node.meta))
        dec = self._decoders.get(k)
        if dec is None:
            if len(self._decoders) > 4096:
                self._decoders.clear()
            dec = self._decoders[k] = chunk_key_decoder(node.meta)
        return dec

    def _chunk(self, key: str) -> tuple[str, tuple[int, ...]] | None:
        nodes = self.session.nodes
        parts = key.split("/")
        for i in range(len(parts) - 1, -1, -1):
            path = "/".join(parts[:i])
            node = nodes.get(path)
            if node is None:
                continue
            if node.kind != "array":
                return None
            coords = self._decoder(node)("/".join(parts[i:]))
            return None if coords is None else (path, coords)
        return None

    # ------------------------------------------------------------------ reads
    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        if byte_range is not None and not isinstance(
            byte_range, RangeByteRequest | OffsetByteRequest | SuffixByteRequest
        ):
            raise TypeError(f"Unexpected byte_range, got {byte_range!r}")
        path = _meta_path(key)
        if path is not None:
            node = self.session.node(path)
            if node is None:
                return None
            data = json.dumps(node.meta).encode()
            return prototype.buffer.from_bytes(_slice(data, byte_range))
        target = self._chunk(key)
        if target is None:
            return None
        ref = await self.session.chunk_ref(*target)
        if ref is None:
            return None
        read = self.session.repository.read_ref
        if byte_range is None:
            data = await read(ref)
        elif isinstance(byte_range, RangeByteRequest):
            data = await read(ref, byte_range.start, byte_range.end - byte_range.start)
        elif isinstance(byte_range, OffsetByteRequest):
            data = await read(ref, byte_range.offset)
        else:
            size = _ref_size(ref)
            data = await read(ref, max(size - byte_range.suffix, 0))
        return prototype.buffer.from_bytes(data)

    async def getsize(self, key: str) -> int:
        path = _meta_path(key)
        if path is not None:
            node = self.session.node(path)
            if node is not None:
                return len(json.dumps(node.meta).encode())
        else:
            target = self._chunk(key)
            ref = None if target is None else await self.session.chunk_ref(*target)
            if ref is not None:
                return _ref_size(ref)
        raise FileNotFoundError(key)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        path = _meta_path(key)
        if path is not None:
            return self.session.node(path) is not None
        target = self._chunk(key)
        return target is not None and await self.session.chunk_ref(*target) is not None

    # ------------------------------------------------------------------ writes
    async def set(self, key: str, value: Buffer) -> None:
        self._check_writable()
        if not isinstance(value, Buffer):
            raise TypeError(f"ZarrchiveStore.set takes a zarr Buffer, got {type(value).__name__}")
        if is_v2_key(key):
            raise UnsupportedFeatureError(
                f"cannot write {key!r}: zarrchive repositories hold Zarr v3 hierarchies; "
                "create groups and arrays with zarr_format=3"
            )
        path = _meta_path(key)
        if path is not None:
            if path and any(p in ("", ".", "..") for p in path.split("/")):
                raise InvalidInputError(
                    f"cannot write {key!r}: node paths must not have empty, '.' or '..' parts"
                )
            try:
                doc = json.loads(value.to_bytes())
            except ValueError as exc:
                raise InvalidInputError(f"{key}: not a JSON document ({exc})") from exc
            self.session.set_metadata(path, validate_metadata(key, doc))
            await self.session.flush()
            return
        target = self._chunk(key)
        if target is None:
            raise InvalidInputError(
                f"cannot write {key!r}: it is neither a zarr.json document nor a chunk key of "
                "an existing array; write the array's zarr.json first"
            )
        await self.session.write_chunk(*target, value.to_bytes())

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        if not await self.exists(key):
            await self.set(key, value)

    async def delete(self, key: str) -> None:
        self._check_writable()
        path = _meta_path(key)
        if path is not None:
            if self.session.node(path) is not None:
                self.session.delete_node(path)
                await self.session.flush()
            return
        target = self._chunk(key)
        if target is not None and await self.session.chunk_ref(*target) is not None:
            self.session.delete_chunk(*target)
            await self.session.flush()

    async def delete_dir(self, prefix: str) -> None:
        self._check_writable()
        path = prefix.rstrip("/")
        if not path:
            await self.clear()
            return
        if self.session.node(path) is not None:
            self.session.delete_node(path)
            await self.session.flush()
            return
        for p in sorted(p for p in self.session.nodes if p.startswith(path + "/")):
            if p in self.session.nodes:
                self.session.delete_node(p)
        keys = [k async for k in self.list_prefix(path + "/")]
        for key in keys:
            await self.delete(key)
        await self.session.flush()

    async def clear(self) -> None:
        self._check_writable()
        for path in sorted(self.session.nodes):
            if path in self.session.nodes:
                self.session.delete_node(path)
        await self.session.flush()

    # ------------------------------------------------------------------ listing
    async def _node_keys(self, node: Node) -> list[str]:
        keys = [join(node.path, META_KEY)]
        if node.kind == "array":
            coords = await self.session.chunk_coords(node.path)
            if len(coords):
                prefix = f"{node.path}/" if node.path else ""
                keys.extend(prefix + k for k in chunk_keys(node.meta, coords))
        return keys

    async def list(self) -> AsyncIterator[str]:
        for node in list(self.session.nodes.values()):
            for key in await self._node_keys(node):
                yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for node in list(self.session.nodes.values()):
            node_prefix = f"{node.path}/" if node.path else ""
            if not (node_prefix.startswith(prefix) or prefix.startswith(node_prefix)):
                continue
            for key in await self._node_keys(node):
                if key.startswith(prefix):
                    yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        base = prefix.rstrip("/")
        start = f"{base}/" if base else ""
        seen: set[str] = set()
        async for key in self.list_prefix(start):
            head = key[len(start) :].partition("/")[0]
            if head and head not in seen:
                seen.add(head)
                yield head

    def __getstate__(self) -> dict[str, Any]:
        return {"session": self.session, "read_only": self.read_only}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["session"], read_only=state["read_only"])  # type: ignore[misc]
