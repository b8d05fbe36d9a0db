"""Writing sorted sources into the session, a batch at a time.

Owns the plan of a write (the dataset's metadata, its length so far, the coordinate's
encoding) and each batch: reference columns shifted along the concat dimension and added
as one manifest per array, the concat coordinate rewritten as native chunks from the
previous end, one journal entry per batch. Writes only to the session it is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from ..format import INLINE, NATIVE, Manifest
from ..sources import container_of
from ..zarr_keys import join as join_path
from ._collect import _Source
from ._coords import _coordinate_meta, _encode_region, encode_coordinate
from ._layout import _chunk_shape, _dims, _Layout
from ._scan import ScanResult
from ._target import _Existing

if TYPE_CHECKING:
    from ..session import Session


#: chunk length of the concat coordinate written as native chunks
COORD_CHUNK = 4096


@dataclass(slots=True)
class _Plan:
    session: Session
    target: str
    dim: str
    layout: _Layout
    metas: dict[str, dict[str, Any]]
    length: int
    coord_meta: dict[str, Any]
    encoding: dict[str, Any]
    template: ScanResult | None  # set for a fresh dataset: its groups and static arrays
    template_options: dict[str, Any] | None = None


async def _write_batch(plan: _Plan, batch: Sequence[_Source]) -> None:
    """Add ``batch`` (in order) after the dataset's current end; one journal entry."""
    session = plan.session
    changes = session.changes
    assert changes is not None
    target, dim = plan.target, plan.dim
    #: container -> (one URL in it, storage options)
    registered: dict[str, tuple[str, Mapping[str, Any]]] = {}
    if plan.template is not None:
        tree = plan.template.tree
        assert tree is not None
        for rel, meta in sorted(tree.groups.items()):
            session.set_metadata(join_path(target, rel), meta)
        for path, _sig in plan.layout.static:
            arr = tree.arrays[path]
            full = join_path(target, path)
            session.set_metadata(full, arr.meta)
            chunks = plan.template.index_chunks.get(path)
            if chunks is not None:
                for c, data in chunks.items():
                    await _put_native(session, full, c, data)
            elif len(arr.refs):
                changes.add_refs(full, arr.refs)
                url = plan.template.url
                registered.setdefault(container_of(url), (url, plan.template_options or {}))
        plan.template = None
    start = plan.length
    end = start + sum(s.extent for s in batch)
    for k, v in enumerate(plan.layout.varying):
        full = join_path(target, v.path)
        meta = dict(plan.metas[v.path])
        shape = list(meta["shape"])
        shape[v.axis] = end
        meta["shape"] = shape
        plan.metas[v.path] = meta
        session.set_metadata(full, meta)
        parts = []
        pos = start
        for src in batch:
            parts.append(src.refs.manifest(k, v.ndim, v.axis, pos // v.chunk))
            pos += src.extent
        merged = Manifest.merge(parts, v.ndim)
        if len(merged):
            changes.add_refs(full, merged)
    # containers are recorded per source (a file's folder, a store's parent folder), not per
    # chunk object: a Zarr v2 store would otherwise add one per variable
    for src in batch:
        registered.setdefault(container_of(src.url), (src.url, src.options or {}))
    if registered:
        session.register_sources(
            [u for u, _ in registered.values()],
            {p: dict(o) for p, (_, o) in registered.items() if o},
        )
    # the concat coordinate: native chunks, rewritten from the dataset's previous end
    full = join_path(target, dim)
    meta = dict(plan.coord_meta)
    meta["shape"] = [end]
    plan.coord_meta = meta
    session.set_metadata(full, meta)
    values = np.concatenate([s.values for s in batch])
    encoded = encode_coordinate(dim, values, plan.encoding)
    if encoded is None:  # checked during validation
        raise InvalidInputError(f"{dim!r} values cannot be encoded with {plan.encoding}")
    chunk = _chunk_shape(meta)[0]
    existing: dict[tuple[int, ...], bytes] = {}
    if start % chunk:
        old = await session.read_chunk(full, (start // chunk,))
        if old is not None:
            existing[(start // chunk,)] = old
    new = await asyncio.to_thread(_encode_region, meta, existing, start, encoded[0])
    for c, data in new.items():
        await _put_native(session, full, c, data)
    plan.length = end
    await session.flush()


async def _put_native(session: Session, path: str, coord: tuple[int, ...], data: bytes) -> None:
    """Store one chunk as native (or inline) data without persisting the journal yet."""
    from ..changeset import ChunkRef

    changes = session.changes
    assert changes is not None
    repo = session.repository
    if len(data) <= repo.config.inline_threshold:
        ref = ChunkRef(INLINE, data=bytes(data))
    else:
        ref = ChunkRef(NATIVE, chunk_id=await repo.write_native_chunk(data), length=len(data))
    changes.set_chunk(path, tuple(coord), ref)


def _batches(items: Sequence[_Source], size: int) -> Iterator[Sequence[_Source]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def _make_plan(
    session: Session,
    target: str,
    dim: str,
    ordered: list[_Source],
    layout: _Layout,
    ex: _Existing,
) -> _Plan:
    values = np.concatenate([s.values for s in ordered])
    if ex.layout is not None:
        assert ex.coord_meta is not None
        if encode_coordinate(dim, values, ex.encoding) is None:
            raise InvalidInputError(
                f"the {dim!r} values of the new sources cannot be stored exactly in the "
                f"encoding of the existing dataset at /{target} ({ex.encoding})"
            )
        return _Plan(
            session,
            target,
            dim,
            layout,
            dict(ex.metas),
            ex.length,
            ex.coord_meta,
            ex.encoding,
            None,
        )
    first = ordered[0].result
    assert first is not None and first.tree is not None
    tries = [dict(first.coord_encoding)]
    tries.append(
        {k: v for k, v in first.coord_encoding.items() if k != "dtype"} | {"dtype": np.dtype("f8")}
    )
    tries.append({})
    for encoding in tries:
        out = encode_coordinate(dim, values, encoding)
        if out is not None:
            break
    else:
        raise InvalidInputError(f"the {dim!r} values of the catalog cannot be encoded")
    encoded, cf_attrs = out
    encoding = {**cf_attrs, "dtype": encoded.dtype}
    attrs = {k: v for k, v in first.coord_attrs.items() if k not in ("units", "calendar")}
    attrs.update(cf_attrs)
    chunk = max(COORD_CHUNK, _chunk_shape(first.tree.arrays[dim].meta)[0])
    coord_meta = await asyncio.to_thread(_coordinate_meta, dim, encoded, attrs, chunk)
    metas = {v.path: dict(first.tree.arrays[v.path].meta) for v in layout.varying}
    for meta in metas.values():
        axis = _dims(meta).index(dim)
        shape = list(meta["shape"])
        shape[axis] = 0
        meta["shape"] = shape
    return _Plan(
        session, target, dim, layout, metas, 0, coord_meta, encoding, first, ordered[0].options
    )
