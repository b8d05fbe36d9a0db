"""Sessions: a view of one snapshot, read-only or writable, and the commit procedure.

A read-only session serves a snapshot. A writable session also holds a :class:`ChangeSet`;
native chunks it writes go to storage at once (under fresh ids), everything else stays in the
change set until ``commit``. Commit writes manifests, the transaction log and the snapshot, and
only then moves the branch with one atomic create, so a failure at any point leaves the branch
on a complete commit. When another writer moved the branch first, the session rebases onto the
new tip (after checking for conflicts) and tries again with jittered exponential back-off.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import refs
from .changeset import ChangeSet, ChunkRef, lookup, lookup_many
from .conflicts import find_conflicts
from .errors import ConflictError, InvalidInputError, NotFoundError, ReadOnlyError
from .format import (
    DELETED,
    INLINE,
    NATIVE,
    Manifest,
    ManifestRef,
    Node,
    Snapshot,
    TransactionLog,
    new_id,
    region_of,
    split_shape,
)
from .format.manifest import linear_keys
from .journal import Journal, SessionInfo, check_expiry, now_utc
from .sources import container_of, normalize_url, public_options
from .zarr_keys import chunk_grid_shape
from .zarr_keys import join as join_path

if TYPE_CHECKING:
    from .importers._base import ImportedTree
    from .repository import Repository

__all__ = ["Session"]

_MAX_COMMIT_ATTEMPTS = 50



def _without_deleted(refs: list[ChunkRef | None]) -> list[ChunkRef | None]:
    return [None if r is not None and r.kind == DELETED else r for r in refs]

class Session:
    """A read-only or writable view of one snapshot."""

    def __init__(
        self,
        repository: Repository,
        snapshot: Snapshot,
        *,
        branch: str | None,
        writable: bool,
        session_id: str | None = None,
        expires_in: dt.timedelta | float | None = None,
        message: str | None = None,
        author: str = "",
    ) -> None:
        if writable and branch is None:
            raise InvalidInputError("a writable session needs a branch")
        self.repository = repository
        self.branch = branch
        self.writable = writable
        self.commit_attempts = 0
        self.message = message
        self.author = author
        self._expires_in = check_expiry(expires_in)
        self._new_identity(session_id)
        self._snapshot = snapshot
        self._flush_lock: asyncio.Lock | None = None
        self.changes: ChangeSet | None = ChangeSet.on(snapshot) if writable else None
        repository.sources.container_options.update(
            {k: dict(v) for k, v in snapshot.containers.items()}
        )

    def _new_identity(self, session_id: str | None = None) -> None:
        self.id = session_id or new_id()
        self.created = now_utc()
        self.expires = self.created + self._expires_in
        self.journal = Journal(self.repository.storage, self.id) if self.writable else None

    def info(self) -> SessionInfo:
        return SessionInfo(
            id=self.id,
            branch=self.branch or "",
            base=self.snapshot_id,
            author=self.author,
            message=self.message,
            created=self.created,
            expires=self.expires,
            state="active" if self.writable else "read-only",
        )

    # ------------------------------------------------------------------ durability
    async def flush(self) -> None:
        """Persist every change made so far (called before a write is acknowledged)."""
        changes = self.changes
        if changes is None or not changes.pending_ops:
            return
        if self.journal is None:  # a fork: its changes persist when merged and committed
            changes.pending_ops.clear()
            return
        if self._flush_lock is None:
            self._flush_lock = asyncio.Lock()
        async with self._flush_lock:
            ops = changes.pending_ops[:]
            if not ops:
                return
            del changes.pending_ops[: len(ops)]
            try:
                self._check_alive()
                if not self.journal.started:
                    await self.journal.start(self.info())
                await self.journal.append(ops)
            except BaseException:
                changes.pending_ops[:0] = ops
                raise

    def _check_alive(self) -> None:
        if now_utc() >= self.expires:
            raise ReadOnlyError(
                f"session {self.id} expired at {self.expires:%Y-%m-%d %H:%M:%S} UTC; its "
                "changes can no longer be written or committed (update_expiration earlier, "
                "or start a new session)"
            )

    # ------------------------------------------------------------------ distributed writes
    def fork(self) -> Session:
        """A picklable writable session on the same base, for one worker of many.

        Workers (threads, processes, Dask tasks) write chunks of disjoint regions through
        ``ZarrchiveStore(fork)``; their native chunks go straight to storage. Send the forks
        back and ``merge`` them into this session, then commit once. Forks may only write
        chunks (and virtual references), not change metadata.
        """
        changes = self._writable()
        fork = Session(
            self.repository, changes.base, branch=self.branch, writable=True, author=self.author
        )
        fork.changes = ChangeSet.on(changes.base)
        fork.changes.nodes = dict(changes.nodes)  # sees arrays created before forking
        fork.journal = None
        return fork

    def merge(self, *forks: Session) -> None:
        """Fold the chunk changes of ``forks`` into this session (all or nothing).

        Raises ``ConflictError`` when two forks, or a fork and this session, wrote the same
        chunk, and ``InvalidInputError`` when a fork changed metadata.
        """
        changes = self._writable()
        ids = {n.id: n.path for n in changes.nodes.values()}
        written: dict[str, list[np.ndarray]] = {
            nid: [ch.manifest().coords] for nid, ch in changes.chunks.items()
        }
        batches: list[tuple[str, Manifest]] = []
        for fork in forks:
            if fork.changes is None:
                raise InvalidInputError("only writable forks can be merged")
            if fork.changes.base.id != changes.base.id:
                raise InvalidInputError(
                    f"fork {fork.id} started at commit {fork.changes.base.id}, this session is "
                    f"at {changes.base.id}; fork again after fast_forward"
                )
            for path, node in fork.changes.nodes.items():
                mine = changes.nodes.get(path)
                if mine is None or mine.id != node.id or mine.meta != node.meta:
                    raise InvalidInputError(
                        f"fork {fork.id} changed the metadata of {path!r}; forks may only write "
                        "chunks — create arrays before forking"
                    )
            for nid, ch in fork.changes.chunks.items():
                if nid not in ids:
                    raise InvalidInputError(f"fork {fork.id} wrote chunks of a deleted array")
                m = ch.manifest()
                for earlier in written.get(nid, []):
                    common = find_conflicts(
                        TransactionLog(chunks={nid: m.coords}),
                        ids,
                        TransactionLog(chunks={nid: earlier}),
                        ids,
                    )
                    if common:
                        raise ConflictError("forks wrote the same chunks", common)
                written.setdefault(nid, []).append(m.coords)
                batches.append((ids[nid], m))
        for path, m in batches:
            changes.add_refs(path, m)

    async def switch_branch(self, name: str) -> None:
        """Continue this session's changes on branch ``name`` (which starts at its base)."""
        changes = self._writable()
        self.branch = name
        changes.pending_ops.append(["branch", name])
        if self.journal is not None and self.journal.started:
            await self.flush()

    async def update_expiration(self, expires_in: dt.timedelta | float) -> dt.datetime:
        """Let the session live ``expires_in`` from now (at most 7 days).

        An expired session cannot be revived: garbage collection may already have removed
        what it wrote.
        """
        self._writable()
        self._check_alive()
        self._expires_in = check_expiry(expires_in)
        self.expires = now_utc() + self._expires_in
        assert self.journal is not None
        if self.journal.started:
            await self.journal.set_expiry(self.expires)
        return self.expires

    async def abandon(self) -> None:
        """Give the session up: its changes are dropped and it can no longer commit."""
        changes = self._writable()
        if self.journal is not None and self.journal.started:
            await self.journal.mark("abandoned", {"time": now_utc().isoformat()})
        self.changes = None
        self.writable = False
        self._snapshot = changes.base

    async def replay(self) -> None:
        """Rebuild the change set from the persisted journal (``join_session``)."""
        changes = self._writable()
        assert self.journal is not None
        for op in await self.journal.entries():
            if op[0] == "rebase":
                changes = changes.rebase(await self.repository.get_snapshot(op[1]))
            elif op[0] == "branch":
                self.branch = op[1]
            else:
                changes.apply(op)
        changes.pending_ops.clear()
        self.changes = changes

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_flush_lock"] = None  # locks belong to one event loop, in one process
        return state

    def __repr__(self) -> str:
        mode = "writable" if self.writable else "read-only"
        where = f"branch {self.branch!r}" if self.branch else "detached"
        return f"<Session {self.id} {mode} on {where} at {self.snapshot_id}>"

    # ------------------------------------------------------------------ state
    @property
    def snapshot_id(self) -> str:
        """The commit this session started from (its base)."""
        return self.changes.base.id if self.changes is not None else self._snapshot.id

    @property
    def base(self) -> Snapshot:
        return self.changes.base if self.changes is not None else self._snapshot

    @property
    def nodes(self) -> Mapping[str, Node]:
        return self.changes.nodes if self.changes is not None else self._snapshot.nodes

    def node(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def _writable(self) -> ChangeSet:
        if self.changes is None:
            raise ReadOnlyError(
                "this session is read-only (it is not on a branch tip); "
                "use checkout(branch) to get a writable session"
            )
        return self.changes

    @property
    def has_changes(self) -> bool:
        return self.changes is not None and self.changes.has_changes()

    # ------------------------------------------------------------------ metadata
    def set_metadata(self, path: str, meta: dict[str, Any]) -> None:
        self._writable().set_metadata(path, meta)

    def delete_node(self, path: str) -> None:
        self._writable().delete(path)

    def move(self, source: str, dest: str) -> None:
        self._writable().move(source, dest)

    # ------------------------------------------------------------------ chunks
    async def chunk_ref(self, path: str, coord: tuple[int, ...]) -> ChunkRef | None:
        """Where chunk ``coord`` of array ``path`` lives, or None if it was never written."""
        node = self.nodes.get(path)
        if node is None or node.kind != "array":
            return None
        if self.changes is not None:
            ch = self.changes.chunk_changes(node.id)
            if ch is not None:
                ref = ch.get(coord)
                if ref is not None:
                    return None if ref.kind == DELETED else ref
        if not node.manifests:
            return None
        region = tuple(c // s for c, s in zip(coord, node.split, strict=True))
        for mref in node.manifests:
            if mref.region == region:
                manifest = await self.repository.get_manifest(mref.id)
                return lookup(manifest, coord)
        return None

    async def chunk_refs(self, path: str, coords: np.ndarray) -> list[ChunkRef | None]:
        """Bulk :meth:`chunk_ref`: the references of chunks ``coords`` (n, ndim) of ``path``.

        One vectorised manifest lookup per region instead of one search per chunk; this is
        what whole-variable reads use.
        """
        coords = np.asarray(coords, dtype=np.int64)
        out: list[ChunkRef | None] = [None] * len(coords)
        node = self.nodes.get(path)
        if node is None or node.kind != "array" or not len(coords):
            return out
        todo = np.arange(len(coords), dtype=np.int64)
        if self.changes is not None:
            ch = self.changes.chunk_changes(node.id)
            if ch is not None:
                todo = ch.get_many(coords, out, todo)
        if not node.manifests or not len(todo):
            return _without_deleted(out)
        regions = coords[todo] // np.asarray(node.split, dtype=np.int64)
        for mref in node.manifests:
            mine = np.all(regions == np.asarray(mref.region, dtype=np.int64), axis=1)
            if mine.any():
                manifest = await self.repository.get_manifest(mref.id)
                lookup_many(manifest, coords, out, todo[mine])
        return _without_deleted(out)

    async def read_chunk(self, path: str, coord: tuple[int, ...]) -> bytes | None:
        ref = await self.chunk_ref(path, coord)
        if ref is None:
            return None
        return await self.repository.read_ref(ref)

    async def write_chunk(self, path: str, coord: tuple[int, ...], data: bytes) -> None:
        changes = self._writable()
        changes._array(path)
        if len(data) <= self.repository.config.inline_threshold:
            ref = ChunkRef(INLINE, data=bytes(data))
        else:
            chunk_id = await self.repository.write_native_chunk(data)
            ref = ChunkRef(NATIVE, chunk_id=chunk_id, length=len(data))
        changes.set_chunk(path, coord, ref)
        await self.flush()

    def delete_chunk(self, path: str, coord: tuple[int, ...]) -> None:
        self._writable().set_chunk(path, coord, ChunkRef(DELETED))

    def set_virtual_refs(
        self,
        array_path: str,
        chunk_coords: np.ndarray,
        urls: str | Sequence[str] | np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        *,
        checksums: Mapping[str, str | None] | None = None,
    ) -> int:
        """Point many chunks of ``array_path`` at byte ranges of source objects at once."""
        changes = self._writable()
        node = changes._array(array_path)
        ndim = len(node.meta["shape"])
        coords = np.asarray(chunk_coords)
        if coords.ndim == 1 and ndim == 1:
            coords = coords.reshape(-1, 1)
        if coords.ndim != 2 or coords.shape[1] != ndim:
            raise InvalidInputError(
                f"chunk_coords must have shape (n, {ndim}) for {array_path!r}, got {coords.shape}"
            )
        if len(coords) and (coords.min() < 0):
            raise InvalidInputError("chunk coordinates must not be negative")
        n = len(coords)
        offsets = np.asarray(offsets)
        lengths = np.asarray(lengths)
        if offsets.shape != (n,) or lengths.shape != (n,):
            raise InvalidInputError(
                f"offsets and lengths must have shape ({n},), got {offsets.shape} and "
                f"{lengths.shape}"
            )
        if isinstance(urls, str):
            table, index = [urls], np.zeros(n, dtype=np.uint32)
        else:
            import pandas as pd

            url_arr = np.asarray(urls, dtype=object)
            if url_arr.shape != (n,):
                raise InvalidInputError(
                    f"urls must be one string or {n} strings, got shape {url_arr.shape}"
                )
            codes, uniques = pd.factorize(url_arr)
            if len(codes) and codes.min() < 0:
                raise InvalidInputError("urls must not contain missing values")
            table, index = [str(u) for u in uniques], codes
        given = table
        table = [normalize_url(u) for u in given]
        cs = [None if checksums is None else checksums.get(u) for u in given]
        manifest = Manifest.virtual(coords, index, offsets, lengths, table, cs)
        changes.add_refs(array_path, manifest)
        self.register_sources(table)
        return n

    def register_sources(
        self, urls: Iterable[str], options: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        """Record the containers of ``urls`` in the commit and authorise this process.

        ``options`` maps a container prefix to its storage options; only their public part
        (endpoint, region, anonymous) is recorded, credentials stay with this reader.
        """
        changes = self._writable()
        prefixes = {container_of(u) for u in urls}
        for prefix in prefixes:
            opts = (options or {}).get(prefix, {})
            changes.add_container(prefix, public_options(opts))
            self.repository.sources.container_options.setdefault(prefix, {}).update(
                public_options(opts)
            )
        self.repository.sources.authorize({p: (options or {}).get(p) for p in prefixes})

    def ingest(self, tree: ImportedTree, path: str, *, overwrite: bool = False) -> None:
        """Put an importer's tree of groups and arrays at ``path``, all or nothing."""
        changes = self._writable()
        clashes = [
            join_path(path, rel) for rel in tree.arrays if join_path(path, rel) in changes.nodes
        ] + [
            join_path(path, rel)
            for rel in tree.groups
            if changes.nodes.get(join_path(path, rel), None) is not None
            and changes.nodes[join_path(path, rel)].kind != "group"
        ]
        if path and path in changes.nodes and path not in clashes:
            clashes.append(path)
        if clashes and not overwrite:
            raise InvalidInputError(
                f"cannot import at {path or '/'!r}: a group or array already exists at "
                f"{', '.join(repr(c) for c in sorted(clashes))}; import to another path, or "
                "pass overwrite=True to replace it"
            )
        saved_nodes, saved_chunks = dict(changes.nodes), dict(changes.chunks)
        saved_containers = {k: dict(v) for k, v in changes.containers.items()}
        try:
            for clash in sorted(clashes, key=len):
                if clash in changes.nodes:
                    changes.delete(clash)
            for rel, meta in sorted(tree.groups.items()):
                changes.set_metadata(join_path(path, rel), meta)
            for rel, arr in sorted(tree.arrays.items()):
                full = join_path(path, rel)
                changes.set_metadata(full, arr.meta)
                if len(arr.refs):
                    changes.add_refs(full, arr.refs)
            self.register_sources(tree.urls(), tree.source_options)
        except BaseException:
            changes.nodes, changes.chunks = saved_nodes, saved_chunks
            changes.containers = saved_containers
            raise

    async def chunk_coords(self, path: str) -> np.ndarray:
        """Coordinates (n, ndim) of every chunk of array ``path`` that has data."""
        node = self.nodes.get(path)
        if node is None or node.kind != "array":
            return np.zeros((0, 0), dtype=np.uint32)
        ndim = len(node.meta["shape"])
        parts = [await self.repository.get_manifest(m.id) for m in node.manifests]
        if self.changes is not None:
            ch = self.changes.chunk_changes(node.id)
            if ch is not None:
                parts.append(ch.manifest())
                return Manifest.merge(parts, ndim).coords
        if len(parts) == 1:
            return parts[0].coords
        return (
            np.concatenate([p.coords for p in parts])
            if parts
            else np.zeros((0, ndim), dtype=np.uint32)
        )

    # ------------------------------------------------------------------ history
    async def _logs_since(self, tip: str) -> list[tuple[Any, Snapshot]]:
        """Transaction logs and snapshots of commits after our base up to ``tip``."""
        base = self.snapshot_id
        out = []
        sid: str | None = tip
        while sid != base:
            if sid is None:
                raise ConflictError(
                    f"branch {self.branch!r} no longer descends from commit {base} (it was "
                    "reset); this session's changes cannot be rebased onto it"
                )
            snap = await self.repository.get_snapshot(sid)
            out.append((await self.repository.get_transaction_log(sid), snap))
            sid = snap.parent
        return out

    async def _rebase_onto(self, tip: str) -> None:
        changes = self._writable()
        ours = changes.transaction_log()
        our_paths = {n.id: n.path for n in changes.nodes.values()}
        our_paths.update({nid: p for p, nid in ours.deleted.items()})
        conflicts: list[str] = []
        for log, snap in await self._logs_since(tip):
            their_paths = {n.id: n.path for n in snap.nodes.values()}
            their_paths.update({nid: p for p, nid in log.deleted.items()})
            conflicts += find_conflicts(ours, our_paths, log, their_paths)
        if conflicts:
            raise ConflictError(
                f"cannot rebase onto the tip of branch {self.branch!r} ({tip}): "
                "both sides changed the same things",
                sorted(set(conflicts)),
            )
        self.changes = changes.rebase(await self.repository.get_snapshot(tip))
        self.changes.pending_ops.append(["rebase", tip])

    async def fast_forward(self) -> str:
        """Move this session's base to its branch tip, keeping its changes."""
        self._writable()
        assert self.branch is not None
        tip = await refs.branch_tip(self.repository.storage, self.branch)
        if tip.snapshot != self.snapshot_id:
            await self._rebase_onto(tip.snapshot)  # type: ignore[arg-type]
            await self.flush()  # a joined session must continue from the new base too
        return self.snapshot_id

    async def commit(
        self,
        message: str,
        *,
        author: str,
        metadata: Mapping[str, Any] | None = None,
        auto_ff: bool = True,
        allow_empty: bool = False,
    ) -> str:
        """Write the session's changes as a new commit on its branch; return the commit id."""
        changes = self._writable()
        assert self.branch is not None
        if not isinstance(message, str) or not message.strip():
            raise InvalidInputError("a commit needs a non-empty message")
        if not allow_empty and not changes.has_changes():
            raise InvalidInputError(
                f"nothing to commit: this session has no changes since commit {self.snapshot_id}"
            )
        storage = self.repository.storage
        self._check_alive()
        assert self.journal is not None
        if self.journal.started:
            for marker in ("abandoned", "committed"):
                if await storage.exists(self.journal.prefix + marker):
                    raise ReadOnlyError(
                        f"session {self.id} was {marker} (possibly by another process); "
                        "it can no longer commit"
                    )
        delay = 0.01
        for attempt in range(_MAX_COMMIT_ATTEMPTS):
            self.commit_attempts = attempt + 1
            tip = await refs.branch_tip(storage, self.branch)
            if tip.snapshot != self.snapshot_id:
                if not auto_ff:
                    raise ConflictError(
                        f"branch {self.branch!r} moved to {tip.snapshot} since this session "
                        f"started at {self.snapshot_id}; call fast_forward() and commit again, "
                        "or commit with auto_ff=True"
                    )
                await self._rebase_onto(tip.snapshot)  # type: ignore[arg-type]
            snapshot = await self._write_commit(message, author, metadata or {})
            if await refs.move_branch(storage, self.branch, tip.seq, snapshot.id):
                if self.journal.started:
                    await self.journal.mark("committed", {"commit": snapshot.id})
                self._snapshot = snapshot
                self._new_identity()
                self.changes = ChangeSet.on(snapshot)
                self.repository.cache_snapshot(snapshot)
                return snapshot.id
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)
        raise ConflictError(
            f"gave up committing to branch {self.branch!r} after {_MAX_COMMIT_ATTEMPTS} "
            "attempts: other writers kept moving it"
        )

    async def _write_commit(
        self, message: str, author: str, metadata: Mapping[str, Any]
    ) -> Snapshot:
        changes = self._writable()
        repo = self.repository
        writes: list[tuple[str, Manifest]] = []
        nodes: dict[str, Node] = {}
        for path, node in changes.nodes.items():
            ch = changes.chunk_changes(node.id)
            if node.kind == "array" and ch is not None and len(ch):
                node = await self._merge_chunks(node, ch.manifest(), writes)
            nodes[path] = node
        snapshot = Snapshot(
            id=new_id(),
            parent=self.snapshot_id,
            message=message,
            author=author,
            metadata=dict(metadata),
            nodes=nodes,
            containers=dict(changes.containers),
            session=self.id,
        )
        log = changes.transaction_log()
        await asyncio.gather(*(repo.put_manifest(mid, m) for mid, m in writes))
        await repo.storage.put(f"transactions/{snapshot.id}", log.to_bytes())
        await repo.storage.put(f"snapshots/{snapshot.id}", snapshot.to_bytes())
        return snapshot

    async def _merge_chunks(
        self, node: Node, changed: Manifest, writes: list[tuple[str, Manifest]]
    ) -> Node:
        """Fold chunk changes into the node's per-region manifests (new manifests only)."""
        ndim = changed.ndim
        split = node.split or split_shape(
            chunk_grid_shape(node.meta), self.repository.config.manifest_split_size
        )
        regions = region_of(changed.coords, split)
        (rkey,) = linear_keys(regions)
        keys, first, inverse = np.unique(rkey, return_index=True, return_inverse=True)
        existing = {m.region: m for m in node.manifests}
        for k in range(len(keys)):
            region = tuple(int(r) for r in regions[first[k]])
            part = changed if len(keys) == 1 else changed.select(inverse == k)
            old = existing.pop(region, None)
            if old is None:
                merged = part.select(part.kind != DELETED) if (part.kind == DELETED).any() else part
            else:
                merged = Manifest.merge([await self.repository.get_manifest(old.id), part], ndim)
            if len(merged):
                mid = new_id()
                writes.append((mid, merged))
                existing[region] = ManifestRef(mid, region, len(merged))
        manifests = tuple(sorted(existing.values(), key=lambda m: m.region))
        return node.with_(manifests=manifests, split=tuple(split))

    # ------------------------------------------------------------------ status
    def status(self) -> tuple[list[str], list[str]]:
        if self.changes is None:
            return [], []
        return self.changes.status_paths()

    async def discard_changes(self) -> None:
        """Drop every uncommitted change; the persisted session is marked abandoned."""
        changes = self._writable()
        if self.journal is not None and self.journal.started:
            await self.journal.mark("abandoned", {"time": now_utc().isoformat()})
        self._new_identity()
        self.changes = ChangeSet.on(changes.base)


def warn_detached(ref: str, snapshot: str) -> None:
    warnings.warn(
        f"checked out {ref!r} (commit {snapshot}), which is not the tip of a branch: the "
        "session is read-only; checkout a branch name to make changes",
        UserWarning,
        stacklevel=4,
    )


def not_found_ref(ref: str) -> NotFoundError:
    return NotFoundError(
        f"no branch, tag or commit named {ref!r}; list them with repo.branches, repo.tags "
        "and repo.commit_log"
    )
