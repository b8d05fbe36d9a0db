"""The dataset already at the target path: what an append or a resumed import builds on.

Owns reading the target from a session (its layout, length, last coordinate value, CF
encoding, and every source URL and checksum its manifests hold) and comparing static
arrays with it. Reads, never writes.
"""

from __future__ import annotations

import asyncio
import bisect
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import (
    InvalidInputError,
    ZarrchiveError,
)
from ..format import VIRTUAL
from ..sources import SourceReader
from ..zarr_keys import join as join_path
from ._coords import _digest, decode_coordinate
from ._layout import _dims, _Layout, _layout_of
from ._scan import HASH_LIMIT

if TYPE_CHECKING:
    from ..session import Session


@dataclass(slots=True)
class _Existing:
    """The target in the session (committed base plus a resumed session's changes)."""

    target: str
    layout: _Layout | None = None
    metas: dict[str, dict[str, Any]] = field(default_factory=dict)
    length: int = 0
    last: Any = None
    encoding: dict[str, Any] = field(default_factory=dict)
    units: Any = None
    coord_meta: dict[str, Any] | None = None
    #: url -> checksum of every source URL in the target's arrays (session view)
    known: dict[str, str | None] = field(default_factory=dict)
    #: the same, in the session's base commit
    base_known: dict[str, str | None] = field(default_factory=dict)
    base_has_data: bool = False
    digests: dict[str, str | None] = field(default_factory=dict)


def _under(nodes: Mapping[str, Any], target: str) -> dict[str, Any]:
    prefix = f"{target}/" if target else ""
    out = {}
    for p, n in nodes.items():
        if p == target:
            out[""] = n
        elif p.startswith(prefix):
            out[p[len(prefix) :]] = n
    return out


async def _known_urls(
    session: Session, nodes: Mapping[str, Any], with_changes: bool
) -> dict[str, str | None]:
    known: dict[str, str | None] = {}
    repo = session.repository
    for node in nodes.values():
        if node.kind != "array":
            continue
        parts = [await repo.get_manifest(m.id) for m in node.manifests]
        if with_changes and session.changes is not None:
            ch = session.changes.chunk_changes(node.id)
            if ch is not None:
                parts.append(ch.manifest())
        for m in parts:
            known.update(zip(m.urls, m.checksums, strict=True))
    return known


async def _session_chunks(
    session: Session, path: str, reader: SourceReader
) -> dict[tuple[int, ...], bytes]:
    from ..errors import UnauthorizedSourceError

    coords = await session.chunk_coords(path)

    async def one(c: tuple[int, ...]) -> tuple[tuple[int, ...], bytes]:
        ref = await session.chunk_ref(path, c)
        assert ref is not None
        if ref.kind == VIRTUAL:
            try:
                return c, await reader.read(ref.url, ref.offset, ref.length, ref.checksum)
            except UnauthorizedSourceError:
                return c, await session.repository.read_ref(ref)
        return c, await session.repository.read_ref(ref)

    pairs = await asyncio.gather(*(one(tuple(int(x) for x in row)) for row in coords.tolist()))
    return dict(pairs)


async def _existing(session: Session, target: str, dim: str, reader: SourceReader) -> _Existing:
    ex = _Existing(target)
    nodes = _under(session.nodes, target)
    base_nodes = _under(session.base.nodes, target)
    top = nodes.get("")
    if top is not None and top.kind == "array":
        raise InvalidInputError(f"/{target} is an array; a catalog is imported into a group")
    ex.base_has_data = any(n.kind == "array" for n in base_nodes.values())
    ex.base_known = await _known_urls(session, base_nodes, with_changes=False)
    ex.known = await _known_urls(session, nodes, with_changes=True)
    arrays = {p: n for p, n in nodes.items() if n.kind == "array"}
    if not arrays:
        return ex
    where = f"the dataset at /{target}"
    coord = arrays.get(dim)
    if coord is None or _dims(coord.meta) != [dim]:
        raise InvalidInputError(
            f"{where} has no 1-d coordinate {dim!r}, so nothing can be added along it; "
            "import the catalog into another path"
        )
    groups = [p for p, n in nodes.items() if n.kind == "group"]
    ex.layout = _layout_of(groups, {p: n.meta for p, n in arrays.items()}, dim, where)
    ex.metas = {v.path: dict(arrays[v.path].meta) for v in ex.layout.varying}
    ex.length = int(coord.meta["shape"][0])
    for v in ex.layout.varying:
        if ex.metas[v.path]["shape"][v.axis] != ex.length:
            raise InvalidInputError(
                f"{where}: variable {v.path!r} has {ex.metas[v.path]['shape'][v.axis]} steps "
                f"along {dim!r} but the coordinate has {ex.length}; it was not built by a "
                "catalog import and cannot be appended to"
            )
    ex.coord_meta = dict(coord.meta)
    full = join_path(target, dim)
    try:
        chunks = await _session_chunks(session, full, reader)
    except ZarrchiveError as exc:
        raise InvalidInputError(
            f"the {dim!r} coordinate of {where} cannot be read ({exc}); open the repository "
            "with authorize_virtual for its sources"
        ) from exc
    values, _attrs, enc = await asyncio.to_thread(decode_coordinate, dim, coord.meta, chunks)
    if len(values) != ex.length:
        raise InvalidInputError(f"the {dim!r} coordinate of {where} has missing chunks")
    ex.last = values[-1] if len(values) else None
    ex.encoding = enc
    ex.units = enc.get("units")
    return ex


async def _existing_digest(
    session: Session, ex: _Existing, path: str, reader: SourceReader
) -> str | None:
    if path in ex.digests:
        return ex.digests[path]
    full = join_path(ex.target, path)
    node = session.nodes[full]
    digest: str | None = None
    parts = [await session.repository.get_manifest(m.id) for m in node.manifests]
    changed = session.changes.chunk_changes(node.id) if session.changes is not None else None
    if changed is not None:
        parts.append(changed.manifest())
    if sum(int(m.length.sum()) for m in parts) <= HASH_LIMIT:
        try:
            chunks = await _session_chunks(session, full, reader)
            digest = await asyncio.to_thread(_digest, node.meta, chunks)
        except ZarrchiveError as exc:
            warnings.warn(
                f"cannot read /{full} to compare it with the new sources ({exc}); only its "
                "metadata was compared",
                UserWarning,
                stacklevel=2,
            )
    ex.digests[path] = digest
    return digest


def _known_for(
    url: str, known: Mapping[str, str | None], ordered: list[str]
) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    if url in known:
        out[url] = known[url]
    prefix = url.rstrip("/") + "/"
    i = bisect.bisect_left(ordered, prefix)
    while i < len(ordered) and ordered[i].startswith(prefix):
        out[ordered[i]] = known[ordered[i]]
        i += 1
    return out


def _in(url: str, known: Mapping[str, Any], ordered: list[str]) -> bool:
    """Whether ``url`` (a file, or a store with objects below it) is in ``known``."""
    if url in known:
        return True
    prefix = url.rstrip("/") + "/"
    i = bisect.bisect_left(ordered, prefix)
    return i < len(ordered) and ordered[i].startswith(prefix)
