"""What a writable session changed: the working node tree and per-array chunk changes.

Pure values and functions, no I/O. A :class:`ChangeSet` starts from a base snapshot's nodes
and records every metadata write, delete, move and chunk write. Node ids are stable, so the
difference to the base (``transaction_log``) is computed by id: a move is a path change, an
attribute update a metadata change. ``rebase`` replays that difference on another snapshot,
which is how a session moves onto a branch tip that advanced under it.

Chunk changes of one array are kept as an ordered list of columnar :class:`Manifest` batches
(bulk virtual references arrive that way) plus a dict of single writes made since the last
batch; a later entry wins, and ``DELETED`` entries are tombstones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InvalidInputError, NotFoundError
from .format import (
    DELETED,
    INLINE,
    NATIVE,
    VIRTUAL,
    Manifest,
    Node,
    Snapshot,
    TransactionLog,
    new_id,
    parent_path,
)
from .zarr_keys import chunk_grid_shape

__all__ = ["ChangeSet", "ChunkChanges", "ChunkRef"]

_EMPTY_GROUP: dict[str, Any] = {"zarr_format": 3, "node_type": "group", "attributes": {}}


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """Where one chunk's bytes are (the result of a lookup)."""

    kind: int
    chunk_id: str = ""
    data: bytes = b""
    url: str = ""
    checksum: str | None = None
    offset: int = 0
    length: int = 0


def _ref_at(m: Manifest, i: int) -> ChunkRef:
    kind = int(m.kind[i])
    loc = int(m.loc[i])
    if kind == NATIVE:
        return ChunkRef(NATIVE, chunk_id=m.chunk_ids[loc], length=int(m.length[i]))
    if kind == INLINE:
        return ChunkRef(INLINE, data=m.inline[loc])
    if kind == VIRTUAL:
        return ChunkRef(
            VIRTUAL,
            url=m.urls[loc],
            checksum=m.checksums[loc],
            offset=int(m.offset[i]),
            length=int(m.length[i]),
        )
    return ChunkRef(DELETED)


def lookup(m: Manifest, coord: tuple[int, ...]) -> ChunkRef | None:
    i = m.find(coord)
    return None if i < 0 else _ref_at(m, i)


def lookup_many(
    m: Manifest, coords: np.ndarray, out: list[ChunkRef | None], todo: np.ndarray
) -> np.ndarray:
    """Fill ``out[j]`` for each ``j`` in ``todo`` whose ``coords[j]`` is in ``m``.

    Returns the indices of ``todo`` still without a reference.
    """
    rows = m.find_many(coords[todo])
    found = rows >= 0
    for j, i in zip(todo[found].tolist(), rows[found].tolist(), strict=True):
        out[j] = _ref_at(m, i)
    return todo[~found]


class ChunkChanges:
    """Chunk writes and deletes of one array in a session."""

    def __init__(self, ndim: int) -> None:
        self.ndim = ndim
        self.batches: list[Manifest] = []
        self.pending: dict[tuple[int, ...], ChunkRef] = {}

    def set(self, coord: tuple[int, ...], ref: ChunkRef) -> None:
        self.pending[coord] = ref

    def add_batch(self, manifest: Manifest) -> None:
        self._flush()
        self.batches.append(manifest)

    def _flush(self) -> None:
        if self.pending:
            self.batches.append(_manifest_of(self.pending, self.ndim))
            self.pending = {}

    def get(self, coord: tuple[int, ...]) -> ChunkRef | None:
        ref = self.pending.get(coord)
        if ref is not None:
            return ref
        for m in reversed(self.batches):
            ref = lookup(m, coord)
            if ref is not None:
                return ref
        return None

    def get_many(
        self, coords: np.ndarray, out: list[ChunkRef | None], todo: np.ndarray
    ) -> np.ndarray:
        """Bulk :meth:`get`: fill ``out`` for the rows ``todo`` of ``coords`` changed here.

        Returns the rows that this session did not change.
        """
        if self.pending:
            left = []
            for j in todo.tolist():
                ref = self.pending.get(tuple(coords[j].tolist()))
                if ref is None:
                    left.append(j)
                else:
                    out[j] = ref
            todo = np.asarray(left, dtype=np.int64)
        for m in reversed(self.batches):
            if not len(todo):
                break
            todo = lookup_many(m, coords, out, todo)
        return todo

    def manifest(self) -> Manifest:
        """All changes as one manifest (tombstones kept), later writes winning."""
        self._flush()
        if len(self.batches) != 1:
            self.batches = [Manifest.merge(self.batches, self.ndim, keep_deleted=True)]
        return self.batches[0]

    def __len__(self) -> int:
        return len(self.manifest())

    def __getstate__(self) -> dict[str, Any]:
        return {"ndim": self.ndim, "manifest": self.manifest().to_bytes()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.ndim = state["ndim"]
        self.batches = [Manifest.from_bytes(state["manifest"])]
        self.pending = {}


def _manifest_of(refs: Mapping[tuple[int, ...], ChunkRef], ndim: int) -> Manifest:
    n = len(refs)
    coords = np.array(list(refs.keys()), dtype=np.uint32).reshape(n, ndim)
    kind = np.empty(n, dtype=np.uint8)
    loc = np.zeros(n, dtype=np.uint32)
    offset = np.zeros(n, dtype=np.uint64)
    length = np.zeros(n, dtype=np.uint64)
    urls: dict[str, int] = {}
    checksums: list[str | None] = []
    chunk_ids: list[str] = []
    inline: list[bytes] = []
    for i, ref in enumerate(refs.values()):
        kind[i] = ref.kind
        if ref.kind == NATIVE:
            loc[i] = len(chunk_ids)
            chunk_ids.append(ref.chunk_id)
            length[i] = ref.length
        elif ref.kind == INLINE:
            loc[i] = len(inline)
            inline.append(ref.data)
            length[i] = len(ref.data)
        elif ref.kind == VIRTUAL:
            j = urls.get(ref.url)
            if j is None:
                j = urls[ref.url] = len(checksums)
                checksums.append(ref.checksum)
            loc[i] = j
            offset[i] = ref.offset
            length[i] = ref.length
    return Manifest(
        coords,
        kind,
        loc,
        offset,
        length,
        urls=list(urls),
        checksums=checksums,
        chunk_ids=chunk_ids,
        inline=inline,
    )


def _same_layout(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether chunk references of an array with metadata ``a`` stay valid under ``b``."""
    keys = ("data_type", "chunk_grid", "chunk_key_encoding", "codecs")
    return len(a["shape"]) == len(b["shape"]) and all(a.get(k) == b.get(k) for k in keys)


@dataclass
class ChangeSet:
    """The working tree of a writable session, relative to ``base``."""

    base: Snapshot
    nodes: dict[str, Node] = field(default_factory=dict)
    chunks: dict[str, ChunkChanges] = field(default_factory=dict)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: operations applied since the session last persisted them (see ``journal``)
    pending_ops: list[list[Any]] = field(default_factory=list)

    @classmethod
    def on(cls, base: Snapshot) -> ChangeSet:
        return cls(
            base=base,
            nodes=dict(base.nodes),
            containers={k: dict(v) for k, v in base.containers.items()},
        )

    def add_container(self, prefix: str, options: Mapping[str, Any]) -> None:
        """Record a virtual-chunk container (credential-free options only)."""
        merged = dict(self.containers.get(prefix, {}))
        merged.update(options)
        self.containers[prefix] = merged
        self.pending_ops.append(["cont", prefix, dict(options)])

    # ------------------------------------------------------------------ nodes
    def node(self, path: str) -> Node:
        try:
            return self.nodes[path]
        except KeyError:
            raise NotFoundError(f"no group or array at {path or '/'!r}") from None

    def descendants(self, path: str) -> list[str]:
        prefix = f"{path}/" if path else ""
        return [p for p in self.nodes if p != path and p.startswith(prefix)]

    def _ensure_parents(self, path: str) -> None:
        parent = parent_path(path)
        if parent is None:
            return
        node = self.nodes.get(parent)
        if node is None:
            self._ensure_parents(parent)
            self.nodes[parent] = Node(new_id(), parent, "group", dict(_EMPTY_GROUP))
        elif node.kind != "group":
            raise InvalidInputError(
                f"cannot put {path!r} inside {parent!r}: {parent!r} is an array, not a group"
            )

    def set_metadata(self, path: str, meta: dict[str, Any]) -> Node:
        """Create or update the node at ``path`` from its ``zarr.json`` document."""
        kind = meta["node_type"]
        old = self.nodes.get(path)
        self.pending_ops.append(["meta", path, meta])
        if old is not None and old.kind == kind:
            if kind == "array" and not _same_layout(old.meta, meta):
                self._delete(path)
                old = None
            else:
                node = old.with_(meta=meta)
                self.nodes[path] = node
                return node
        if old is not None:
            self._delete(path)
        self._ensure_parents(path)
        node = Node(new_id(), path, kind, meta)
        self.nodes[path] = node
        return node

    def delete(self, path: str) -> None:
        """Delete the node at ``path`` and everything below it."""
        self._delete(path)
        self.pending_ops.append(["del", path])

    def _delete(self, path: str) -> None:
        if path not in self.nodes:
            raise NotFoundError(f"no group or array at {path or '/'!r}")
        for p in [path, *self.descendants(path)]:
            node = self.nodes.pop(p)
            self.chunks.pop(node.id, None)

    def move(self, source: str, dest: str) -> None:
        """Rename ``source`` (and everything below it) to ``dest``; no chunk is touched."""
        if source == "":
            raise InvalidInputError("the root group cannot be moved")
        self.node(source)
        if dest in self.nodes:
            raise InvalidInputError(f"cannot move {source!r} to {dest!r}: {dest!r} exists")
        if dest == "" or dest.startswith(source + "/"):
            raise InvalidInputError(f"cannot move {source!r} into itself ({dest!r})")
        self._ensure_parents(dest)
        for p in [source, *self.descendants(source)]:
            node = self.nodes.pop(p)
            new_path = dest + p[len(source) :]
            self.nodes[new_path] = node.with_(path=new_path)
        self.pending_ops.append(["move", source, dest])

    # ------------------------------------------------------------------ chunks
    def _array(self, path: str) -> Node:
        node = self.node(path)
        if node.kind != "array":
            raise InvalidInputError(f"{path!r} is a group, not an array; it has no chunks")
        return node

    def set_chunk(self, path: str, coord: tuple[int, ...], ref: ChunkRef) -> None:
        node = self._array(path)
        # A delete may lie outside the grid: chunks written before the array shrank (zarr's
        # resize(delete_outside_chunks=False)) are still listed and must stay deletable.
        self._check_coords(
            node,
            np.asarray([coord], dtype=np.int64).reshape(1, len(coord)),
            check_grid=ref.kind != DELETED,
        )
        self.chunks.setdefault(node.id, ChunkChanges(len(coord))).set(coord, ref)
        self.pending_ops.append(
            [
                "chunk",
                path,
                list(coord),
                ref.kind,
                ref.chunk_id,
                ref.data,
                ref.url,
                ref.checksum,
                ref.offset,
                ref.length,
            ]
        )

    def add_refs(self, path: str, manifest: Manifest) -> None:
        node = self._array(path)
        self._check_coords(node, manifest.coords)
        self.chunks.setdefault(node.id, ChunkChanges(manifest.ndim)).add_batch(manifest)
        self.pending_ops.append(["refs", path, manifest])

    @staticmethod
    def _check_coords(node: Node, coords: np.ndarray, *, check_grid: bool = True) -> None:
        grid = chunk_grid_shape(node.meta)
        if coords.shape[1] != len(grid):
            raise InvalidInputError(
                f"chunk coordinates of {node.path!r} need {len(grid)} dimensions, "
                f"got {coords.shape[1]}"
            )
        if check_grid and len(coords) and len(grid):
            over = (coords.astype(np.int64) >= np.asarray(grid, dtype=np.int64)).any(axis=1)
            if over.any():
                bad = tuple(int(c) for c in coords[int(np.argmax(over))])
                raise InvalidInputError(
                    f"chunk {bad} is outside the chunk grid {grid} of {node.path!r}"
                )

    def chunk_changes(self, node_id: str) -> ChunkChanges | None:
        return self.chunks.get(node_id)

    def apply(self, op: list[Any]) -> None:
        """Re-apply one recorded operation (replaying a persisted session)."""
        name = op[0]
        if name == "meta":
            self.set_metadata(op[1], op[2])
        elif name == "del":
            self.delete(op[1])
        elif name == "move":
            self.move(op[1], op[2])
        elif name == "chunk":
            kind, chunk_id, data, url, checksum, offset, length = op[3:10]
            self.set_chunk(
                op[1], tuple(op[2]), ChunkRef(kind, chunk_id, data, url, checksum, offset, length)
            )
        elif name == "refs":
            self.add_refs(op[1], op[2])
        elif name == "cont":
            self.add_container(op[1], op[2])
        else:
            raise InvalidInputError(f"unknown session operation {name!r}")

    # ------------------------------------------------------------------ summaries
    def transaction_log(self) -> TransactionLog:
        """What changed relative to ``base``, by node id."""
        base_by_id = {n.id: n for n in self.base.nodes.values()}
        ours_by_id = {n.id: n for n in self.nodes.values()}
        new_groups, new_arrays, moved = [], [], []
        updated: dict[str, str] = {}
        for nid, node in ours_by_id.items():
            old = base_by_id.get(nid)
            if old is None:
                (new_groups if node.kind == "group" else new_arrays).append(node.path)
                continue
            if old.path != node.path:
                moved.append((old.path, node.path))
                updated[nid] = node.path
            elif old.meta != node.meta:
                updated[nid] = node.path
        deleted = {n.path: nid for nid, n in base_by_id.items() if nid not in ours_by_id}
        chunks = {
            nid: ch.manifest().coords
            for nid, ch in self.chunks.items()
            if nid in ours_by_id and len(ch)
        }
        return TransactionLog(
            new_groups=tuple(sorted(new_groups)),
            new_arrays=tuple(sorted(new_arrays)),
            deleted=deleted,
            updated_meta=updated,
            moved=tuple(sorted(moved)),
            chunks=chunks,
        )

    def has_changes(self) -> bool:
        return not self.transaction_log().is_empty() or self.containers != dict(
            self.base.containers
        )

    def rebase(self, onto: Snapshot) -> ChangeSet:
        """This change set replayed on ``onto`` (conflicts must be checked first)."""
        base_by_id = {n.id: n for n in self.base.nodes.values()}
        ours_by_id = {n.id: n for n in self.nodes.values()}
        nodes: dict[str, Node] = {}
        theirs_by_id = {n.id: n for n in onto.nodes.values()}
        for nid, node in theirs_by_id.items():
            if nid in base_by_id and nid not in ours_by_id:
                continue  # we deleted it
            nodes[node.path] = node
        for nid, node in ours_by_id.items():
            old = base_by_id.get(nid)
            if old is not None and old.path == node.path and old.meta == node.meta:
                continue  # unchanged by us: keep theirs
            current = theirs_by_id.get(nid)
            if current is not None:
                nodes.pop(current.path, None)
                node = node.with_(manifests=current.manifests, split=current.split)
            nodes[node.path] = node
        containers = {k: dict(v) for k, v in onto.containers.items()}
        for prefix, options in self.containers.items():
            containers.setdefault(prefix, {}).update(options)
        return ChangeSet(
            base=onto,
            nodes=nodes,
            chunks=dict(self.chunks),
            containers=containers,
            pending_ops=self.pending_ops,
        )

    def status_paths(self) -> tuple[list[str], list[str]]:
        """(modified, deleted) paths, for ``status``."""
        log = self.transaction_log()
        id_to_path = {n.id: n.path for n in self.nodes.values()}
        modified = set(log.new_groups) | set(log.new_arrays) | set(log.updated_meta.values())
        modified |= {id_to_path[nid] for nid in log.chunks}
        return sorted(modified), sorted(log.deleted)


def changed_ids(log: TransactionLog) -> Iterable[str]:
    return set(log.updated_meta) | set(log.chunks)
