"""The read model behind the pages: one repository, opened read-only on the server's loop.

:class:`RepoView` opens its own :class:`~zarrchive.repository.Repository` over the storage of
the repo it is given (a pickled copy: a fresh storage object, bound to the event loop the
server runs on, as zarrchive's storage clients must be), authorised for the same virtual-chunk
containers plus those passed with ``--authorize``. Pages read through an
:class:`~zarrchive.AsyncRepo` over it whose session is read-only, and every other session it
opens is ``for_writing=False``: nothing here can write to the repository.

Also here: the facts of the overview page (refs, sessions, object sizes by kind, containers).
Must not import starlette or jinja2: pages render what this returns.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, UnauthorizedSourceError
from ..history import CommitInfo
from ..journal import SessionInfo
from ..repository import Repository
from ..session import Session
from ..sources import SourceReader, public_options
from ..storage import FsspecStorage, LocalStorage, MemoryStorage, Storage

if TYPE_CHECKING:
    from ..repo import AsyncRepo, Repo

__all__ = ["At", "Limits", "ObjectSizes", "Overview", "RepoView", "authorised"]

#: object kinds of a repository, by the first segment of their storage keys
_KINDS = ("config", "snapshots", "transactions", "manifests", "chunks", "refs", "sessions")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of the work one image request may do (the page says when one was reached)."""

    #: most samples along each plotted axis: the quick-look's resolution
    max_samples: int = 800
    #: most chunks one quick-look reads (beyond it the sampling gets coarser)
    max_chunks: int = 4096
    #: most decoded bytes one quick-look reads (beyond it the plotted extent is cut)
    max_bytes: int = 256 << 20
    #: reading stops after this many seconds; what was read is plotted, the rest left blank
    max_seconds: float = 10.0
    #: most cells a chunk map draws along each axis (larger grids are sampled)
    max_map_cells: int = 1024


@dataclass(frozen=True, slots=True)
class At:
    """A ref as a URL names it (branch, tag or commit id) and the read-only session on it."""

    ref: str
    commit: str
    branch: str | None
    session: Session


@dataclass(frozen=True, slots=True)
class ObjectSizes:
    """Objects of a repository by kind: ``kind -> (count, bytes or None when unknown)``."""

    kinds: Mapping[str, tuple[int, int | None]]
    truncated: bool = False  # listing stopped at ``RepoView.max_listed`` objects

    @property
    def total(self) -> tuple[int, int | None]:
        counts = sum(c for c, _ in self.kinds.values())
        sizes = [s for _, s in self.kinds.values()]
        return counts, None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)


@dataclass(frozen=True, slots=True)
class Container:
    prefix: str
    options: Mapping[str, Any]
    authorised: bool
    where: tuple[str, ...]  # "config" and/or the refs whose tip commit records it


@dataclass(frozen=True, slots=True)
class Overview:
    location: str
    chunkstore: str | None
    inline_threshold: int
    manifest_split_size: int
    format_version: int
    branches: list[tuple[str, CommitInfo]]
    tags: list[tuple[str, CommitInfo]]
    sessions: list[SessionInfo]
    sizes: ObjectSizes
    containers: list[Container] = field(default_factory=list)
    authorised: tuple[str, ...] = ()


def authorised(reader: SourceReader, url: str) -> bool:
    """Whether a virtual chunk at ``url`` may be read: the very check a read makes (as
    ``verify`` does), without touching the source."""
    try:
        reader._container(url)
    except UnauthorizedSourceError:
        return False
    return True


def _fresh(storage: Storage) -> Storage:
    """A copy of ``storage`` for this server's loop (storages pickle by location)."""
    try:
        copy = pickle.loads(pickle.dumps(storage))
    except (pickle.PicklingError, TypeError, AttributeError):
        return storage
    return copy if isinstance(copy, Storage) else storage


class RepoView:
    """Read-only access to one repository for the pages of one app (one event loop)."""

    #: object listing for the overview's sizes stops here (and says so)
    max_listed = 1_000_000
    #: seconds the overview's sizes are reused before the storage is listed again
    sizes_ttl = 30.0

    def __init__(
        self,
        repo: AsyncRepo | Repo,
        *,
        authorize: Iterable[str] | None = None,
        limits: Limits | None = None,
    ) -> None:
        from ..repo import AsyncRepo

        self._source: AsyncRepo = repo if isinstance(repo, AsyncRepo) else repo.async_repo
        self._extra = list(authorize or [])
        # fail now, not on the first request, when a prefix is not a URL prefix
        SourceReader(self._extra)
        self.limits = limits or Limits()
        self._repo: AsyncRepo | None = None
        self._opening: asyncio.Lock | None = None
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._sizes: tuple[float, ObjectSizes] | None = None

    @property
    def location(self) -> str:
        return self._source.repository.location

    async def repo(self) -> AsyncRepo:
        """The read-only :class:`AsyncRepo` the pages use (opened on first use)."""
        if self._repo is not None:
            return self._repo
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._repo is None:
                self._repo = await self._open()
        return self._repo

    async def _open(self) -> AsyncRepo:
        from ..repo import AsyncRepo

        base = self._source.repository
        repository = await Repository.open(
            _fresh(base.storage),
            storage_options=base.storage_options,
            authorize_virtual=base.sources.authorized,
        )
        repository.sources.authorize(self._extra)
        start = self._source.session.snapshot_id
        session = await repository.session(start, for_writing=False)
        return AsyncRepo(repository, session, author=self._source.author)

    @property
    def reader(self) -> SourceReader:
        assert self._repo is not None, "await repo() first"
        return self._repo.repository.sources

    # ------------------------------------------------------------------ refs and sessions
    async def at(self, ref: str) -> At:
        """The read-only session on ``ref``; raises ``NotFoundError`` for unknown refs."""
        repo = await self.repo()
        resolved = await repo.repository.resolve(ref)
        session = self._sessions.get(resolved.snapshot)
        if session is None:
            session = await repo.repository.session(resolved.snapshot, for_writing=False)
            self._sessions[resolved.snapshot] = session
            while len(self._sessions) > 32:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(resolved.snapshot)
        return At(ref, resolved.snapshot, resolved.branch, session)

    async def commit_info(self, commit: str) -> CommitInfo:
        repo = await self.repo()
        return CommitInfo.of(await repo.repository.get_snapshot(commit))

    async def refs_by_commit(self) -> dict[str, list[tuple[str, str]]]:
        """commit id -> [("branch" or "tag", name)] of the refs pointing at it."""
        repo = await self.repo()
        out: dict[str, list[tuple[str, str]]] = {}
        for name, commit in (await repo.get_branches()).items():
            out.setdefault(commit, []).append(("branch", name))
        for name, commit in (await repo.get_tags()).items():
            out.setdefault(commit, []).append(("tag", name))
        return out

    # ------------------------------------------------------------------ overview
    async def overview(self) -> Overview:
        repo = await self.repo()
        repository = repo.repository
        branches = await repo.get_branches()
        tags = await repo.get_tags()
        infos = {c: await self.commit_info(c) for c in {*branches.values(), *tags.values()}}
        config = repository.config
        return Overview(
            location=repository.location,
            chunkstore=config.chunkstore,
            inline_threshold=config.inline_threshold,
            manifest_split_size=config.manifest_split_size,
            format_version=config.format_version,
            branches=[(n, infos[c]) for n, c in branches.items()],
            tags=[(n, infos[c]) for n, c in tags.items()],
            sessions=await repo.list_active_sessions(),
            sizes=await self.sizes(),
            containers=await self._containers(branches, tags),
            authorised=tuple(sorted(repository.sources.authorized)),
        )

    async def _containers(
        self, branches: Mapping[str, str], tags: Mapping[str, str]
    ) -> list[Container]:
        repo = await self.repo()
        found: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for prefix, options in repo.repository.config.virtual_containers.items():
            found[prefix] = (public_options(options), ["config"])
        for kind, refs in (("branch", branches), ("tag", tags)):
            for name, commit in refs.items():
                snap = await repo.repository.get_snapshot(commit)
                for prefix, recorded in snap.containers.items():
                    entry = found.setdefault(prefix, (public_options(recorded), []))
                    entry[1].append(f"{kind} {name}")
        return [
            Container(p, o, authorised(self.reader, p), tuple(w))
            for p, (o, w) in sorted(found.items())
        ]

    async def sizes(self) -> ObjectSizes:
        """Objects by kind with their sizes (cached for :attr:`sizes_ttl` seconds)."""
        now = time.monotonic()
        if self._sizes is not None and now - self._sizes[0] < self.sizes_ttl:
            return self._sizes[1]
        repo = await self.repo()
        repository = repo.repository
        kinds, truncated = await _object_sizes(repository.storage, self.max_listed)
        if repository.chunk_storage is not repository.storage:
            chunks, more = await _object_sizes(repository.chunk_storage, self.max_listed)
            kinds["chunks"] = chunks.get("chunks", (0, 0))
            truncated = truncated or more
        sizes = ObjectSizes(dict(kinds), truncated)
        self._sizes = (now, sizes)
        return sizes


async def _object_sizes(
    storage: Storage, limit: int
) -> tuple[dict[str, tuple[int, int | None]], bool]:
    """Count and size the objects of ``storage`` by kind, listing at most ``limit`` of them.

    Local directories are walked with ``os.stat``, fsspec storage listed with sizes in one
    ``find``, memory storage measured directly; other backends give counts only.
    """
    counts: dict[str, list[int]] = {}
    known_sizes = True
    seen = 0

    def add(key: str, size: int | None) -> None:
        kind = key.partition("/")[0]
        if kind not in _KINDS:
            kind = "other"
        entry = counts.setdefault(kind, [0, 0])
        entry[0] += 1
        entry[1] += size or 0

    if isinstance(storage, LocalStorage):

        def walk() -> int:
            n = 0
            for dirpath, _dirs, files in os.walk(storage.root):
                for name in files:
                    if name.startswith(".tmp-"):
                        continue
                    full = os.path.join(dirpath, name)
                    try:
                        size = os.stat(full).st_size
                    except FileNotFoundError:
                        continue
                    add(os.path.relpath(full, storage.root).replace(os.sep, "/"), size)
                    n += 1
                    if n >= limit:
                        return n
            return n

        seen = await asyncio.to_thread(walk)
    elif isinstance(storage, FsspecStorage):
        try:
            found = await storage.fs._find(storage.root, detail=True)
        except FileNotFoundError:
            found = {}
        cut = len(storage.root) + 1
        for path, info in sorted(found.items())[:limit]:
            add(path[cut:], int(info.get("size") or 0))
            seen += 1
    else:
        async for key in storage.list(""):
            size = len(await storage.get(key)) if isinstance(storage, MemoryStorage) else None
            known_sizes = known_sizes and size is not None
            add(key, size)
            seen += 1
            if seen >= limit:
                break
    out = {k: (c, s if known_sizes else None) for k, (c, s) in sorted(counts.items())}
    return out, seen >= limit


def ensure_array(at: At, path: str) -> Any:
    """The array node at ``path`` of ``at``'s commit, or ``NotFoundError``."""
    node = at.session.nodes.get(path)
    if node is None or node.kind != "array":
        what = "a group, not an array" if node is not None else "no such array"
        raise NotFoundError(f"/{path} at {at.ref} ({at.commit}): {what}")
    return node
