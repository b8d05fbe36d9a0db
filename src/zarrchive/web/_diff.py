"""What changed between two commits, in the detail a diff page shows.

``AsyncRepo.diff`` says which nodes were added, deleted, moved or had their metadata or
chunks changed; :func:`diff_detail` adds, per changed node, each metadata field and
attribute with its old and new value side by side (:func:`meta_changes`, pure), and chunk
counts before and after. Must not import starlette or jinja2.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..format import Node
from ..history import Diff
from ._view import At, RepoView

__all__ = ["ChunkChange", "DiffDetail", "FieldChange", "NodeChange", "diff_detail", "meta_changes"]

_MAX_VALUE = 2000  # characters of one shown value


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str  # "shape", "codecs", "attributes.units", ...
    old: str | None  # JSON text; None: the field was absent
    new: str | None


@dataclass(frozen=True, slots=True)
class NodeChange:
    path: str
    kind: str
    old_path: str
    fields: tuple[FieldChange, ...]


@dataclass(frozen=True, slots=True)
class ChunkChange:
    path: str
    changed: int
    before: int
    after: int


@dataclass(frozen=True, slots=True)
class DiffDetail:
    a: At
    b: At
    diff: Diff
    added: tuple[tuple[str, str, int], ...]  # (path, kind, chunk count)
    deleted: tuple[tuple[str, str], ...]
    moved: tuple[tuple[str, str], ...]
    metadata: tuple[NodeChange, ...]
    chunks: tuple[ChunkChange, ...]

    @property
    def is_empty(self) -> bool:
        return self.diff.is_empty


def _text(value: Any) -> str:
    out = json.dumps(value, sort_keys=True, default=str, allow_nan=True)
    return out if len(out) <= _MAX_VALUE else out[: _MAX_VALUE - 1] + "…"


def meta_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """Fields of two ``zarr.json`` documents that differ; attributes one by one."""
    out: list[FieldChange] = []
    for key in sorted((set(old) | set(new)) - {"attributes"}):
        if old.get(key) != new.get(key) or (key in old) != (key in new):
            out.append(
                FieldChange(
                    key,
                    _text(old[key]) if key in old else None,
                    _text(new[key]) if key in new else None,
                )
            )
    old_attrs = old.get("attributes") or {}
    new_attrs = new.get("attributes") or {}
    for key in sorted(set(old_attrs) | set(new_attrs)):
        a, b = old_attrs.get(key), new_attrs.get(key)
        if (key in old_attrs) != (key in new_attrs) or _text(a) != _text(b):
            out.append(
                FieldChange(
                    f"attributes.{key}",
                    _text(a) if key in old_attrs else None,
                    _text(b) if key in new_attrs else None,
                )
            )
    return tuple(out)


def _chunk_count(node: Node | None) -> int:
    return 0 if node is None else sum(m.count for m in node.manifests)


async def diff_detail(view: RepoView, from_ref: str, to_ref: str) -> DiffDetail:
    repo = await view.repo()
    a, b = await view.at(from_ref), await view.at(to_ref)
    d = await repo.diff(a.commit, b.commit)
    nodes_a, nodes_b = a.session.nodes, b.session.nodes
    by_id_a = {n.id: n for n in nodes_a.values()}
    metadata = []
    for path in d.updated_metadata:
        new = nodes_b[path]
        old = by_id_a.get(new.id)
        if old is None:
            continue
        metadata.append(NodeChange(path, new.kind, old.path, meta_changes(old.meta, new.meta)))
    old_paths = {nb: na for na, nb in d.moved}
    chunks = []
    for path, n in d.updated_chunks.items():
        before = _chunk_count(nodes_a.get(old_paths.get(path, path)))
        chunks.append(ChunkChange(path, n, before, _chunk_count(nodes_b.get(path))))
    added = [(p, "group", 0) for p in d.new_groups]
    added += [(p, "array", _chunk_count(nodes_b.get(p))) for p in d.new_arrays]
    deleted = [(p, "group") for p in d.deleted_groups] + [(p, "array") for p in d.deleted_arrays]
    return DiffDetail(
        a,
        b,
        d,
        tuple(sorted(added)),
        tuple(sorted(deleted)),
        d.moved,
        tuple(metadata),
        tuple(chunks),
    )
