"""Transaction logs: what one commit changed.

Recorded beside each snapshot so that ``status``, ``diff`` and conflict detection need not
compare whole trees: paths of new groups and arrays, deleted paths (with the ids of the nodes
they held), node ids whose metadata or attributes changed, moves, and per array node id the
chunk coordinates written or deleted. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import FormatError
from ._envelope import ObjectType, decode, encode

__all__ = ["TransactionLog"]


@dataclass(frozen=True, slots=True)
class TransactionLog:
    new_groups: tuple[str, ...] = ()
    new_arrays: tuple[str, ...] = ()
    deleted: Mapping[str, str] = field(default_factory=dict)  # path -> node id
    updated_meta: Mapping[str, str] = field(default_factory=dict)  # node id -> path
    moved: tuple[tuple[str, str], ...] = ()
    chunks: Mapping[str, np.ndarray] = field(default_factory=dict)  # node id -> (n, ndim)

    def is_empty(self) -> bool:
        return not (
            self.new_groups
            or self.new_arrays
            or self.deleted
            or self.updated_meta
            or self.moved
            or any(len(c) for c in self.chunks.values())
        )

    def to_bytes(self) -> bytes:
        body = {
            "new_groups": list(self.new_groups),
            "new_arrays": list(self.new_arrays),
            "deleted": dict(self.deleted),
            "updated_meta": dict(self.updated_meta),
            "moved": [list(m) for m in self.moved],
            "chunks": {
                k: [
                    int(v.shape[1]),
                    int(v.shape[0]),
                    np.ascontiguousarray(v, dtype=np.uint32).tobytes(),
                ]
                for k, v in self.chunks.items()
            },
        }
        return encode(ObjectType.TRANSACTION, body)

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str = "") -> TransactionLog:
        body = decode(ObjectType.TRANSACTION, data, what=what)
        try:
            chunks = {
                k: np.frombuffer(raw, dtype=np.uint32).reshape(n, ndim)
                if ndim
                else np.zeros((n, 0), dtype=np.uint32)
                for k, (ndim, n, raw) in body["chunks"].items()
            }
            return cls(
                new_groups=tuple(body["new_groups"]),
                new_arrays=tuple(body["new_arrays"]),
                deleted=body["deleted"],
                updated_meta=body["updated_meta"],
                moved=tuple(tuple(m) for m in body["moved"]),  # type: ignore[misc]
                chunks=chunks,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"transaction log {what} is corrupt: {exc}") from exc
