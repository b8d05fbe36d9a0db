"""A repository at one storage location: config, object reads with caches, ref resolution.

``Repository`` owns the storage backends (metadata, and native chunks when a separate
chunkstore is configured), reads and caches snapshots, manifests and transaction logs, writes
native chunks, resolves branch / tag / commit names, and opens :class:`Session` objects. It
knows nothing about zarr's store interface or the user-facing ``Repo``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import refs
from .changeset import ChunkRef
from .errors import InvalidInputError, NotFoundError, ReadOnlyError
from .format import (
    INLINE,
    NATIVE,
    VIRTUAL,
    Manifest,
    Node,
    RepositoryConfig,
    Snapshot,
    TransactionLog,
    is_id,
    new_id,
)
from .journal import now_utc, read_info
from .maintenance import ExpiredCommitError, is_expired
from .session import Session, not_found_ref, warn_detached
from .sources import SourceReader
from .storage import Storage, storage_for

__all__ = ["Repository", "ResolvedRef"]

_CONFIG_KEY = "config"
_ROOT_META = {"zarr_format": 3, "node_type": "group", "attributes": {}}


@dataclass(frozen=True, slots=True)
class ResolvedRef:
    snapshot: str
    branch: str | None  # set when ref names a branch (so the session can write)


class _LRU:
    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self.data: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> Any:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.max_items:
            self.data.popitem(last=False)


class Repository:
    """Low-level access to one repository."""

    def __init__(
        self,
        storage: Storage,
        config: RepositoryConfig,
        *,
        storage_options: dict[str, Any] | None = None,
        authorize_virtual: Mapping[str, Mapping[str, Any] | None] | Iterable[str] | None = None,
    ) -> None:
        self.storage = storage
        self.config = config
        self.storage_options = storage_options
        self.chunk_storage = (
            storage_for(config.chunkstore, storage_options) if config.chunkstore else storage
        )
        self.sources = SourceReader(authorize_virtual)
        self._snapshots = _LRU(256)
        self._manifests = _LRU(64)
        self._logs = _LRU(256)

    def __repr__(self) -> str:
        return f"<Repository at {self.storage.location}>"

    def __getstate__(self) -> dict[str, Any]:
        # caches and open source filesystems are not part of a repository's identity
        return {
            "storage": self.storage,
            "config": self.config,
            "storage_options": self.storage_options,
            "sources": self.sources,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["storage"],
            state["config"],
            storage_options=state["storage_options"],
        )
        self.sources = state["sources"]

    @property
    def location(self) -> str:
        return self.storage.location

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def create(
        cls,
        location: str | os.PathLike[str] | Storage,
        *,
        storage_options: dict[str, Any] | None = None,
        config: RepositoryConfig | None = None,
        author: str = "",
    ) -> Repository:
        storage = storage_for(location, storage_options)
        config = config or RepositoryConfig()
        if await storage.exists(_CONFIG_KEY):
            raise InvalidInputError(
                f"a zarrchive repository already exists at {storage.location}; "
                "open it with Repo.open instead"
            )
        root = Node(new_id(), "", "group", dict(_ROOT_META))
        snapshot = Snapshot(
            id=new_id(),
            parent=None,
            message="Repository initialized",
            author=author,
            nodes={"": root},
        )
        await storage.put(f"transactions/{snapshot.id}", TransactionLog().to_bytes())
        await storage.put(f"snapshots/{snapshot.id}", snapshot.to_bytes())
        if not await storage.put_if_absent(_CONFIG_KEY, config.to_bytes()):
            raise InvalidInputError(
                f"a zarrchive repository was created at {storage.location} concurrently"
            )
        await refs.create_branch(storage, "main", snapshot.id)
        repo = cls(storage, config, storage_options=storage_options)
        repo.cache_snapshot(snapshot)
        return repo

    @classmethod
    async def open(
        cls,
        location: str | os.PathLike[str] | Storage,
        *,
        storage_options: dict[str, Any] | None = None,
        authorize_virtual: Mapping[str, Mapping[str, Any] | None] | Iterable[str] | None = None,
    ) -> Repository:
        storage = storage_for(location, storage_options)
        try:
            data = await storage.get(_CONFIG_KEY)
        except NotFoundError:
            raise NotFoundError(
                f"no zarrchive repository at {storage.location}; create one with "
                "Repo.create(location) or Repo.open_or_create(location)"
            ) from None
        return cls(
            storage,
            RepositoryConfig.from_bytes(data),
            storage_options=storage_options,
            authorize_virtual=authorize_virtual,
        )

    @classmethod
    async def exists(
        cls, location: str | os.PathLike[str] | Storage, storage_options: dict[str, Any] | None
    ) -> bool:
        return await storage_for(location, storage_options).exists(_CONFIG_KEY)

    # ------------------------------------------------------------------ objects
    def cache_snapshot(self, snapshot: Snapshot) -> None:
        self._snapshots.put(snapshot.id, snapshot)

    async def get_snapshot(self, snapshot_id: str) -> Snapshot:
        snap = self._snapshots.get(snapshot_id)
        if snap is None:
            data, expired = await asyncio.gather(
                self.storage.get(f"snapshots/{snapshot_id}"),
                is_expired(self.storage, snapshot_id),
                return_exceptions=True,
            )
            if expired is True:
                raise ExpiredCommitError(snapshot_id)
            if isinstance(data, NotFoundError | InvalidInputError):
                raise NotFoundError(f"commit {snapshot_id!r} does not exist") from None
            for outcome in (data, expired):
                if isinstance(outcome, BaseException):
                    raise outcome
            snap = Snapshot.from_bytes(data, what=snapshot_id)  # type: ignore[arg-type]
            self._snapshots.put(snapshot_id, snap)
        return snap

    async def get_transaction_log(self, snapshot_id: str) -> TransactionLog:
        log = self._logs.get(snapshot_id)
        if log is None:
            data = await self.storage.get(f"transactions/{snapshot_id}")
            log = TransactionLog.from_bytes(data, what=snapshot_id)
            self._logs.put(snapshot_id, log)
        return log

    async def get_manifest(self, manifest_id: str) -> Manifest:
        m = self._manifests.get(manifest_id)
        if m is None:
            data = await self.storage.get(f"manifests/{manifest_id}")
            m = Manifest.from_bytes(data, what=manifest_id).sorted()
            self._manifests.put(manifest_id, m)
        return m

    async def put_manifest(self, manifest_id: str, manifest: Manifest) -> None:
        await self.storage.put(f"manifests/{manifest_id}", manifest.to_bytes())
        self._manifests.put(manifest_id, manifest)

    async def write_native_chunk(self, data: bytes) -> str:
        chunk_id = new_id()
        await self.chunk_storage.put(f"chunks/{chunk_id}", bytes(data))
        return chunk_id

    async def read_ref(self, ref: ChunkRef, start: int = 0, length: int | None = None) -> bytes:
        """The chunk's bytes, or ``length`` of them from ``start`` (clipped to the chunk)."""
        size = len(ref.data) if ref.kind == INLINE else ref.length
        start = min(max(start, 0), size)
        length = size - start if length is None else max(0, min(length, size - start))
        if ref.kind == INLINE:
            return ref.data[start : start + length]
        if ref.kind == NATIVE:
            key = f"chunks/{ref.chunk_id}"
            if start == 0 and length == size:
                return await self.chunk_storage.get(key)
            return await self.chunk_storage.get_range(key, start, length)
        if ref.kind == VIRTUAL:
            return await self.sources.read(ref.url, ref.offset + start, length, ref.checksum)
        raise NotFoundError("chunk was deleted")

    # ------------------------------------------------------------------ refs
    async def resolve(self, ref: str) -> ResolvedRef:
        """Branch name, tag name or commit id -> snapshot id (and branch, if a branch)."""
        if not isinstance(ref, str) or not ref:
            raise InvalidInputError(f"a ref must be a branch, tag or commit id, got {ref!r}")
        try:
            tip = await refs.branch_tip(self.storage, ref)
            return ResolvedRef(tip.snapshot, ref)  # type: ignore[arg-type]
        except (NotFoundError, InvalidInputError):
            pass
        try:
            return ResolvedRef(await refs.tag_target(self.storage, ref), None)
        except (NotFoundError, InvalidInputError):
            pass
        if is_id(ref):
            await self.get_snapshot(ref)
            return ResolvedRef(ref, None)
        raise not_found_ref(ref)

    async def session(
        self,
        ref: str = "main",
        *,
        for_writing: bool = True,
        expires_in: Any = None,
        message: str | None = None,
        author: str = "",
    ) -> Session:
        resolved = await self.resolve(ref)
        snapshot = await self.get_snapshot(resolved.snapshot)
        if resolved.branch is None and for_writing:
            warn_detached(ref, resolved.snapshot)
        writable = for_writing and resolved.branch is not None
        return Session(
            self,
            snapshot,
            branch=resolved.branch,
            writable=writable,
            expires_in=expires_in,
            message=message,
            author=author,
        )

    async def join_session(self, session_id: str) -> Session:
        """Continue a persisted writable session (in this or another process)."""
        info = await read_info(self.storage, session_id)
        if info.state != "active":
            raise ReadOnlyError(
                f"session {session_id} is {info.state} and cannot be joined; start a new one"
            )
        session = Session(
            self,
            await self.get_snapshot(info.base),
            branch=info.branch,
            writable=True,
            session_id=session_id,
            expires_in=max(info.expires - now_utc(), dt.timedelta(seconds=1)),
            message=info.message,
            author=info.author,
        )
        session.created, session.expires = info.created, info.expires
        await session.replay()
        # the writer may have died between moving the branch and marking the session
        # committed; the branch (as the journal left it) then holds a commit made by it
        try:
            tip = await refs.branch_tip(self.storage, session.branch or info.branch)
        except NotFoundError:
            return session  # the branch was deleted: nothing of this session landed on it
        async for snap in self.ancestry(tip.snapshot):  # type: ignore[arg-type]
            if snap.session == session_id:
                raise ReadOnlyError(
                    f"session {session_id} is committed (as {snap.id}) and cannot be "
                    "joined; start a new one"
                )
            if snap.id in (info.base, session.snapshot_id):
                break
        return session

    async def ancestry(self, snapshot_id: str) -> AsyncIterator[Snapshot]:
        sid: str | None = snapshot_id
        while sid is not None:
            try:
                snap = await self.get_snapshot(sid)
            except ExpiredCommitError:
                if sid == snapshot_id:
                    raise
                return  # history ends where commits were expired (maintenance.py)
            yield snap
            sid = snap.parent
