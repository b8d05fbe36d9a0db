"""Value types that describe history: commits, status and diffs, with readable reprs.

Also the pure computation of a diff between two snapshots' manifests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .format import INLINE, NATIVE, VIRTUAL, Manifest, Snapshot
from .format.manifest import linear_keys

__all__ = ["CommitInfo", "CommitLog", "Diff", "Status", "changed_chunks"]


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """One commit of the log."""

    id: str
    parent_id: str | None
    author: str
    time: dt.datetime
    message: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, snap: Snapshot) -> CommitInfo:
        return cls(
            snap.id,
            snap.parent,
            snap.author,
            dt.datetime.fromisoformat(snap.time),
            snap.message,
            dict(snap.metadata),
        )

    def __str__(self) -> str:
        return f"{self.id}  {self.time:%Y-%m-%d %H:%M:%S}  {self.author}  {self.message}"


class CommitLog(list[CommitInfo]):
    """Commits, newest first."""

    def __str__(self) -> str:
        return "\n".join(str(c) for c in self) if self else "(no commits)"

    def __repr__(self) -> str:
        return f"<CommitLog {len(self)} commits>\n{self}"


@dataclass(frozen=True, slots=True)
class Status:
    """Uncommitted changes of the current session."""

    session_id: str
    branch: str | None
    base_commit: str
    writable: bool
    modified: tuple[str, ...]
    deleted: tuple[str, ...]

    @property
    def has_changes(self) -> bool:
        return bool(self.modified or self.deleted)

    def __str__(self) -> str:
        where = f"branch {self.branch}" if self.branch else "detached (read-only)"
        lines = [f"session {self.session_id} on {where} at commit {self.base_commit}"]
        if not self.has_changes:
            lines.append("no uncommitted changes")
        for p in self.modified:
            lines.append(f"  modified: /{p}")
        for p in self.deleted:
            lines.append(f"  deleted:  /{p}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True, slots=True)
class Diff:
    """What changed from one commit to another."""

    from_commit: str
    to_commit: str
    new_groups: tuple[str, ...] = ()
    new_arrays: tuple[str, ...] = ()
    deleted_groups: tuple[str, ...] = ()
    deleted_arrays: tuple[str, ...] = ()
    updated_metadata: tuple[str, ...] = ()
    moved: tuple[tuple[str, str], ...] = ()
    updated_chunks: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (
            self.new_groups
            or self.new_arrays
            or self.deleted_groups
            or self.deleted_arrays
            or self.updated_metadata
            or self.moved
            or self.updated_chunks
        )

    def __str__(self) -> str:
        lines = [f"diff {self.from_commit}..{self.to_commit}"]
        for label, paths in (
            ("new group", self.new_groups),
            ("new array", self.new_arrays),
            ("deleted group", self.deleted_groups),
            ("deleted array", self.deleted_arrays),
            ("metadata", self.updated_metadata),
        ):
            lines += [f"  {label}: /{p}" for p in paths]
        lines += [f"  moved: /{a} -> /{b}" for a, b in self.moved]
        lines += [f"  chunks: /{p} ({n} changed)" for p, n in self.updated_chunks.items()]
        if self.is_empty:
            lines.append("  (no changes)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def _identity(m: Manifest) -> tuple[np.ndarray, np.ndarray]:
    """Per row: a linear coordinate key (on a shared grid) and a hash of where it points."""
    table_hash = np.zeros(len(m), dtype=np.int64)
    for kind, table in ((VIRTUAL, m.urls), (NATIVE, m.chunk_ids), (INLINE, m.inline)):
        mask = m.kind == kind
        if mask.any():
            hashes = np.array([hash((kind, t)) for t in table], dtype=np.int64)
            table_hash[mask] = hashes[m.loc[mask].astype(np.int64)]
    h = table_hash ^ (m.offset.astype(np.int64) * 1_000_003) ^ m.length.astype(np.int64)
    return m.coords, h


def changed_chunks(a: Manifest, b: Manifest) -> int:
    """Number of chunk coordinates whose reference differs between ``a`` and ``b``."""
    ca, ha = _identity(a)
    cb, hb = _identity(b)
    both = np.concatenate([ca, cb]).astype(np.int64)
    if both.shape[1] == 0:
        return int(len(ca) != len(cb) or (len(ca) and ha[0] != hb[0]))
    if not len(both):
        return 0
    ka, kb = linear_keys(ca, cb)
    rows_a = set(zip(ka.tolist(), ha.tolist(), strict=True))
    rows_b = set(zip(kb.tolist(), hb.tolist(), strict=True))
    return len({k for k, _ in rows_a ^ rows_b})
