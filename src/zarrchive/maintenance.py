"""Maintenance: expiring old commits and collecting the objects nothing reaches any more.

This module owns the ``expired/SNAPSHOT_ID`` markers and the two maintenance operations;
``Repository.get_snapshot`` and ``Repository.ancestry`` only consult the markers.

Rules:

* Nothing is ever rewritten. Expiring a commit creates ``expired/SNAPSHOT_ID`` (with
  ``put_if_absent``); the snapshot object itself stays until :func:`garbage_collect` removes
  it. Reading an expired commit raises :class:`ExpiredCommitError` (a ``NotFoundError``), and
  history walks stop cleanly before it. Markers are never deleted (except to undo one that
  lost a race with a new ref, see below), so a child whose parent was expired and collected
  still ends its history cleanly.
* :func:`expire_snapshots` never expires a branch tip, a tag target, the base of an active
  session, a commit a session rebased onto, or any commit on the path from an active
  session's base to its branch tip (committing walks that path to rebase). If a ref or a
  session appears at a commit while it is being expired, the marker is removed again.
* :func:`garbage_collect` deletes only what no root reaches. Roots: branch tips, tag targets,
  and the bases (and rebase targets) of live sessions (active, or expired less than
  ``grace`` ago, since an expired session can still be extended by its holder). Reachable:
  every root, its ancestors up to the first expired one, every manifest of those snapshots,
  every native chunk in those manifests, and every native chunk named by a live session's
  journal. Everything else under ``snapshots/``, ``transactions/``, ``manifests/`` and
  ``chunks/`` (in ``repository.chunk_storage``) is deleted, except objects younger than
  ``grace``: a writer stores chunks before the journal entry naming them, and manifests,
  transaction logs and snapshots before the branch moves to them. Objects whose age the
  backend cannot tell (the in-memory backend) count as young unless ``grace`` is zero.
  Keys that are not ids are never touched, nor are ``config``, ``refs/`` or ``expired/``.
  Journals of committed, abandoned and expired (for longer than ``grace``) sessions are
  deleted too, their ``session`` object first so a half-deleted one is never listed.
* Running :func:`garbage_collect` while someone resets a branch to a commit no ref reaches is
  a race it cannot win; the set of roots is re-read before deleting, which only narrows it.
  A chunkstore shared between repositories must not be collected.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import refs
from .errors import InvalidInputError, NotFoundError
from .format import NATIVE, Manifest, ObjectType, Snapshot, encode, is_id
from .journal import SessionInfo, decode_ops, list_sessions, now_utc
from .storage import FsspecStorage, LocalStorage, MemoryStorage, Storage

if TYPE_CHECKING:
    from .repository import Repository

__all__ = [
    "DEFAULT_GRACE",
    "ExpiredCommitError",
    "GCReport",
    "expire_snapshots",
    "expired_key",
    "garbage_collect",
    "is_expired",
]

DEFAULT_GRACE = dt.timedelta(hours=1)
_KINDS = ("snapshots", "transactions", "manifests", "chunks")
_PARALLEL = 32


class ExpiredCommitError(NotFoundError):
    """The commit was expired by :func:`expire_snapshots`; its history is gone."""

    def __init__(self, snapshot_id: str) -> None:
        super().__init__(
            f"commit {snapshot_id!r} was expired (expire_snapshots) and can no longer be read"
        )
        self.snapshot_id = snapshot_id


def expired_key(snapshot_id: str) -> str:
    return f"expired/{snapshot_id}"


async def is_expired(storage: Storage, snapshot_id: str) -> bool:
    """True when ``snapshot_id`` carries an expiry marker."""
    try:
        return await storage.exists(expired_key(snapshot_id))
    except InvalidInputError:
        return False


async def _expired_ids(storage: Storage) -> set[str]:
    return {k[len("expired/") :] async for k in storage.list("expired/")}


def _utc(when: dt.datetime | str) -> dt.datetime:
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when)
    if not isinstance(when, dt.datetime):
        raise InvalidInputError(f"expected a datetime, got {when!r}")
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _grace(grace: dt.timedelta | float) -> dt.timedelta:
    delta = grace if isinstance(grace, dt.timedelta) else dt.timedelta(seconds=float(grace))
    if delta < dt.timedelta(0):
        raise InvalidInputError(f"grace must not be negative, got {delta}")
    return delta


async def _gather(coros: Iterable[Any]) -> list[Any]:
    sem = asyncio.Semaphore(_PARALLEL)

    async def one(c: Any) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


# ---------------------------------------------------------------------- history walks
class _History:
    """Snapshots read straight from storage (expired ones too), memoised."""

    def __init__(self, storage: Storage, expired: set[str]) -> None:
        self.storage = storage
        self.expired = expired
        self.snaps: dict[str, Snapshot | None] = {}

    async def load(self, sid: str) -> Snapshot | None:
        if sid not in self.snaps:
            try:
                data = await self.storage.get(f"snapshots/{sid}")
                self.snaps[sid] = Snapshot.from_bytes(data, what=sid)
            except (NotFoundError, InvalidInputError):
                self.snaps[sid] = None
        return self.snaps[sid]

    async def walk(self, root: str) -> list[Snapshot]:
        """``root`` and its ancestors up to (not including) the first expired one."""
        out: list[Snapshot] = []
        sid: str | None = root
        while sid is not None and (sid == root or sid not in self.expired):
            snap = await self.load(sid)
            if snap is None:
                break
            out.append(snap)
            sid = snap.parent
        return out

    async def path(self, tip: str, base: str) -> list[str] | None:
        """Commit ids from ``tip`` back to ``base`` (inclusive), or None if not an ancestor."""
        ids = []
        for snap in await self.walk(tip):
            ids.append(snap.id)
            if snap.id == base:
                return ids
        return None


@dataclass(frozen=True, slots=True)
class _Live:
    """A session whose journal and base must be kept."""

    info: SessionInfo
    rebased: tuple[str, ...]  # commits it rebased onto (journal "rebase" ops)
    chunks: frozenset[str]  # native chunk ids its journal names


async def _read_journal(storage: Storage, info: SessionInfo) -> _Live:
    keys = sorted([k async for k in storage.list(f"sessions/{info.id}/journal/")])
    blobs = await _gather(storage.get(k) for k in keys)
    rebased: list[str] = []
    chunks: set[str] = set()
    for key, data in zip(keys, blobs, strict=True):
        for op in decode_ops(data, key):
            if op[0] == "rebase":
                rebased.append(op[1])
            elif op[0] == "chunk" and op[3] == NATIVE and op[4]:
                chunks.add(op[4])
            elif op[0] == "refs":
                chunks |= _native_ids(op[2])
    return _Live(info, tuple(rebased), frozenset(chunks))


def _native_ids(manifest: Manifest) -> set[str]:
    if not len(manifest.chunk_ids):
        return set()
    used = np.unique(manifest.loc[manifest.kind == NATIVE])
    return {manifest.chunk_ids[i] for i in used.tolist()}


def _is_live(info: SessionInfo, now: dt.datetime, grace: dt.timedelta) -> bool:
    if info.state == "active":
        return True
    return info.state == "expired" and info.expires + grace > now


# ---------------------------------------------------------------------- expire
async def expire_snapshots(repository: Repository, older_than: dt.datetime) -> set[str]:
    """Expire every commit made before ``older_than`` that nothing needs; return their ids.

    Kept: branch tips, tag targets, bases of active sessions, the commits they rebased onto
    and every commit from an active session's base to its branch tip. Only commits in the
    history of a branch, tag or active session are considered (the rest is garbage anyway).
    A naive ``older_than`` is taken as UTC. Returns the commits this call expired.
    """
    cutoff = _utc(older_than)
    storage = repository.storage
    expired = await _expired_ids(storage)
    history = _History(storage, expired)
    branches = await refs.list_branches(storage)
    tags = await refs.list_tags(storage)
    sessions = [s for s in await list_sessions(storage) if s.state == "active"]
    protected = set(branches.values()) | set(tags.values())
    roots = set(protected)
    for live in [await _read_journal(storage, s) for s in sessions]:
        base = live.info.base
        protected |= {base, *live.rebased}
        roots.add(base)
        tip = branches.get(live.info.branch)
        if tip is not None:
            protected |= set(await history.path(tip, base) or ())

    candidates: set[str] = set()
    for root in sorted(roots):
        for snap in await history.walk(root):
            if snap.id not in protected and _utc(snap.time) < cutoff:
                candidates.add(snap.id)
    candidates -= expired

    created = await _gather(
        storage.put_if_absent(expired_key(sid), _marker(sid, cutoff)) for sid in sorted(candidates)
    )
    marked = {sid for sid, ok in zip(sorted(candidates), created, strict=True) if ok}

    # a ref or session that appeared meanwhile at a marked commit wins: undo its marker
    now_needed = set((await refs.list_branches(storage)).values())
    now_needed |= set((await refs.list_tags(storage)).values())
    now_needed |= {s.base for s in await list_sessions(storage) if s.state == "active"}
    for sid in sorted(marked & now_needed):
        await storage.delete(expired_key(sid))
        marked.discard(sid)
    cache = getattr(repository, "_snapshots", None)  # this process must see them expired now
    for sid in marked if cache is not None else ():
        cache.data.pop(sid, None)
    return marked


def _marker(snapshot_id: str, cutoff: dt.datetime) -> bytes:
    return encode(
        ObjectType.REF,
        {
            "expired": snapshot_id,
            "older_than": cutoff.isoformat(),
            "time": now_utc().isoformat(),
        },
    )


# ---------------------------------------------------------------------- listings
@dataclass(frozen=True, slots=True)
class _Obj:
    key: str
    size: int | None
    modified: dt.datetime | None


def _as_time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return _utc(value)
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    try:
        return _utc(str(value))
    except ValueError:
        return None


async def _objects(storage: Storage, prefix: str) -> dict[str, _Obj]:
    """Objects under ``prefix`` with their size and modification time, where cheap."""
    out: dict[str, _Obj] = {}
    if isinstance(storage, FsspecStorage):
        base = f"{storage.root}/{prefix.rstrip('/')}"
        storage.fs.invalidate_cache(base)
        try:
            found = await storage.fs._find(base, detail=True)
        except FileNotFoundError:
            return out
        cut = len(storage.root) + 1
        for path, info in found.items():
            key = path[cut:]
            if key.startswith(prefix) and info.get("type", "file") != "directory":
                modified = next(
                    (info[k] for k in ("LastModified", "mtime", "created") if info.get(k)), None
                )
                size = info.get("size")
                out[key] = _Obj(key, None if size is None else int(size), _as_time(modified))
        return out
    async for key in storage.list(prefix):
        size: int | None = None
        modified: dt.datetime | None = None
        if isinstance(storage, LocalStorage):
            try:
                st = os.stat(storage._path(key))
            except FileNotFoundError:
                continue
            size, modified = st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)
        elif isinstance(storage, MemoryStorage):
            data = storage._data.get(key)
            size = None if data is None else len(data)
        out[key] = _Obj(key, size, modified)
    return out


# ---------------------------------------------------------------------- garbage collection
@dataclass(frozen=True)
class GCReport:
    """What :func:`garbage_collect` deleted (or, with ``dry_run``, would delete).

    Each kind holds full storage keys (``"chunks/ID"``, ...); ``sessions`` every key of the
    removed session journals. ``kept_young``: unreferenced objects kept because they are
    younger than the grace period (or of unknown age).
    """

    dry_run: bool
    snapshots: frozenset[str] = frozenset()
    transactions: frozenset[str] = frozenset()
    manifests: frozenset[str] = frozenset()
    chunks: frozenset[str] = frozenset()
    sessions: frozenset[str] = frozenset()
    bytes_freed: int = 0
    kept_young: frozenset[str] = frozenset()

    @property
    def keys(self) -> frozenset[str]:
        """Every key deleted (or to be deleted)."""
        return self.snapshots | self.transactions | self.manifests | self.chunks | self.sessions

    @property
    def counts(self) -> dict[str, int]:
        return {
            "snapshots": len(self.snapshots),
            "transactions": len(self.transactions),
            "manifests": len(self.manifests),
            "chunks": len(self.chunks),
            "session objects": len(self.sessions),
        }

    def __len__(self) -> int:
        return len(self.keys)

    def __str__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        head = "garbage collection" + (" (dry run: nothing was deleted)" if self.dry_run else "")
        lines = [head]
        lines += [f"  {kind:<16} {n:>8}" for kind, n in self.counts.items()]
        lines.append(f"  {verb} {len(self)} objects, {_human(self.bytes_freed)}")
        if self.kept_young:
            lines.append(
                f"  kept {len(self.kept_young)} unreferenced objects younger than the grace period"
            )
        return "\n".join(lines)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@dataclass(frozen=True, slots=True)
class _Reachable:
    roots: frozenset[str]
    live: frozenset[str]  # ids of live sessions
    snapshots: frozenset[str]
    manifests: frozenset[str]
    chunks: frozenset[str]


async def _roots(
    storage: Storage, now: dt.datetime, grace: dt.timedelta
) -> tuple[set[str], list[SessionInfo], list[SessionInfo]]:
    roots = set((await refs.list_branches(storage)).values())
    roots |= set((await refs.list_tags(storage)).values())
    sessions = await list_sessions(storage)
    live = [s for s in sessions if _is_live(s, now, grace)]
    return roots, live, sessions


async def _reachable(repository: Repository, now: dt.datetime, grace: dt.timedelta) -> _Reachable:
    storage = repository.storage
    roots, live_infos, _ = await _roots(storage, now, grace)
    lives = [await _read_journal(storage, s) for s in live_infos]
    for live in lives:
        roots |= {live.info.base, *live.rebased}
    history = _History(storage, await _expired_ids(storage))
    snaps: dict[str, Snapshot] = {}
    for root in sorted(roots):
        for snap in await history.walk(root):
            snaps[snap.id] = snap
    manifests = {m.id for s in snaps.values() for n in s.nodes.values() for m in n.manifests}

    async def natives(mid: str) -> set[str]:
        try:
            data = await storage.get(f"manifests/{mid}")
        except NotFoundError:
            return set()  # already gone: nothing it named can be read anyway
        return _native_ids(Manifest.from_bytes(data, what=mid))

    chunks: set[str] = set()
    for found in await _gather(natives(mid) for mid in sorted(manifests)):
        chunks |= found
    for live in lives:
        chunks |= live.chunks
    return _Reachable(
        roots=frozenset(roots),
        live=frozenset(s.id for s in live_infos),
        snapshots=frozenset(snaps),
        manifests=frozenset(manifests),
        chunks=frozenset(chunks),
    )


async def garbage_collect(
    repository: Repository,
    *,
    dry_run: bool = False,
    grace: dt.timedelta | float = DEFAULT_GRACE,
) -> GCReport:
    """Delete every snapshot, transaction log, manifest, chunk and dead session journal that
    no branch, tag or live session reaches; with ``dry_run`` only report what would go.

    ``grace`` (timedelta or seconds): unreferenced objects younger than this are kept, since
    a concurrent writer may be about to reference them.
    """
    grace = _grace(grace)
    now = now_utc()
    storage, chunk_storage = repository.storage, repository.chunk_storage
    reach = await _reachable(repository, now, grace)
    for _ in range(3):  # refs or sessions that moved while we looked: look again
        roots, live_infos, _ = await _roots(storage, now, grace)
        bases = {s.base for s in live_infos}
        if roots | bases <= reach.roots and {s.id for s in live_infos} <= reach.live:
            break
        reach = await _reachable(repository, now, grace)

    keep = {
        "snapshots": reach.snapshots,
        "transactions": reach.snapshots,
        "manifests": reach.manifests,
        "chunks": reach.chunks,
    }
    doomed: dict[str, list[_Obj]] = {}
    young: set[str] = set()
    for kind in _KINDS:
        where = chunk_storage if kind == "chunks" else storage
        doomed[kind] = []
        for key, obj in sorted((await _objects(where, f"{kind}/")).items()):
            oid = key[len(kind) + 1 :]
            if not is_id(oid) or oid in keep[kind]:
                continue
            if _too_young(obj, now, grace):
                young.add(key)
            else:
                doomed[kind].append(obj)

    _, _, sessions = await _roots(storage, now, grace)
    known = {s.id: s for s in sessions}
    by_session: dict[str, list[_Obj]] = {}
    for key, obj in (await _objects(storage, "sessions/")).items():
        by_session.setdefault(key.split("/")[1], []).append(obj)
    dead_sessions: list[list[_Obj]] = []
    for sid, objs in sorted(by_session.items()):
        if sid in reach.live:
            continue
        info = known.get(sid)
        if info is not None:
            dead = info.state in ("committed", "abandoned") or (
                info.state == "expired" and not _is_live(info, now, grace)
            )
        else:  # no session object: being created, or half-deleted by an earlier collection
            dead = not any(_too_young(o, now, grace) for o in objs)
        if dead:
            first = f"sessions/{sid}/session"
            dead_sessions.append(sorted(objs, key=lambda o: (o.key != first, o.key)))

    if not dry_run:
        for kind in _KINDS:
            where = chunk_storage if kind == "chunks" else storage
            await _gather(where.delete(o.key) for o in doomed[kind])
        for objs in dead_sessions:
            await storage.delete(objs[0].key)  # the session object first: no longer listed
            await _gather(storage.delete(o.key) for o in objs[1:])

    all_doomed = [o for kind in _KINDS for o in doomed[kind]] + [
        o for objs in dead_sessions for o in objs
    ]
    return GCReport(
        dry_run=dry_run,
        snapshots=frozenset(o.key for o in doomed["snapshots"]),
        transactions=frozenset(o.key for o in doomed["transactions"]),
        manifests=frozenset(o.key for o in doomed["manifests"]),
        chunks=frozenset(o.key for o in doomed["chunks"]),
        sessions=frozenset(o.key for objs in dead_sessions for o in objs),
        bytes_freed=sum(o.size or 0 for o in all_doomed),
        kept_young=frozenset(young),
    )


def _too_young(obj: _Obj, now: dt.datetime, grace: dt.timedelta) -> bool:
    if grace <= dt.timedelta(0):
        return False
    if obj.modified is None:
        return True  # age unknown: keep it
    return obj.modified > now - grace
