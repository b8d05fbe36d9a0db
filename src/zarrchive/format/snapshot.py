"""Snapshots: the node tree of one commit.

A snapshot maps each path of the hierarchy to a :class:`Node`: a stable random id (kept across
moves), whether it is a group or an array, its Zarr v3 ``zarr.json`` document, and for arrays
the manifests that hold its chunk references, one per region of the chunk grid. The snapshot
also records its parent, message, author, time and user metadata, and the virtual-chunk
containers its references point into; its id is the commit id.
Paths are zarr store paths: ``""`` is the root, ``"a/b"`` a descendant. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..errors import FormatError
from ._envelope import ObjectType, decode, encode

__all__ = ["ManifestRef", "Node", "Snapshot", "parent_path"]


def parent_path(path: str) -> str | None:
    """The parent of a store path (``None`` for the root)."""
    if path == "":
        return None
    return path.rpartition("/")[0]


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """One manifest of an array: the grid region it covers and how many refs it holds."""

    id: str
    region: tuple[int, ...]
    count: int


@dataclass(frozen=True, slots=True)
class Node:
    """A group or array of the hierarchy."""

    id: str
    path: str
    kind: Literal["group", "array"]
    meta: Mapping[str, Any]
    manifests: tuple[ManifestRef, ...] = ()
    split: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def attributes(self) -> Mapping[str, Any]:
        return self.meta.get("attributes", {}) or {}

    def with_(self, **changes: Any) -> Node:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "kind": self.kind,
            "meta": dict(self.meta),
            "manifests": [[m.id, list(m.region), m.count] for m in self.manifests],
            "split": list(self.split),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Node:
        return cls(
            id=d["id"],
            path=d["path"],
            kind=d["kind"],
            meta=d["meta"],
            manifests=tuple(ManifestRef(m[0], tuple(m[1]), int(m[2])) for m in d["manifests"]),
            split=tuple(d["split"]),
        )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state of the whole hierarchy at one commit."""

    id: str
    parent: str | None
    message: str
    author: str
    time: str = field(default_factory=_now)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    nodes: Mapping[str, Node] = field(default_factory=dict)
    #: virtual-chunk containers (URL prefix -> credential-free options) the commit refers to
    containers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: id of the session that made this commit (lets a re-joined session see it landed)
    session: str | None = None

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def get(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def children(self, path: str) -> list[Node]:
        return [n for n in self.nodes.values() if parent_path(n.path) == path and n.path != path]

    def to_bytes(self) -> bytes:
        body = {
            "id": self.id,
            "parent": self.parent,
            "message": self.message,
            "author": self.author,
            "time": self.time,
            "metadata": dict(self.metadata),
            "nodes": [n.to_dict() for n in self.nodes.values()],
            "containers": {k: dict(v) for k, v in self.containers.items()},
            "session": self.session,
        }
        return encode(ObjectType.SNAPSHOT, body)

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str = "") -> Snapshot:
        body = decode(ObjectType.SNAPSHOT, data, what=what)
        try:
            nodes = {n["path"]: Node.from_dict(n) for n in body["nodes"]}
            return cls(
                id=body["id"],
                parent=body["parent"],
                message=body["message"],
                author=body["author"],
                time=body["time"],
                metadata=body["metadata"],
                nodes=nodes,
                containers=body.get("containers", {}),
                session=body.get("session"),
            )
        except (KeyError, TypeError, IndexError) as exc:
            raise FormatError(f"snapshot {what} is corrupt: missing {exc}") from exc
