"""Facts of one array for its page: metadata, slice selectors, chunk kinds, sources, verify.

Chunk kinds come straight from the array's manifests, column by column (numpy, never one
Python object per chunk): native, virtual, inline, missing (never written: reads give the
fill value), and "not authorised" for virtual chunks whose source is outside every container
this server may read. Nothing here reads chunk data. Must not import starlette or jinja2.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..format import INLINE, NATIVE, VIRTUAL, Manifest, Node
from ..session import Session
from ..verify import VerifyReport, verify_sources
from ..zarr_keys import chunk_grid_shape
from ._view import At, RepoView, authorised

__all__ = [
    "KINDS",
    "ArrayInfo",
    "ChunkMap",
    "Selection",
    "SourceRow",
    "array_info",
    "chunk_map",
    "chunk_summary",
    "parse_selection",
    "verify_array",
]

#: chunk-map codes, in order: index = code
KINDS = ("missing", "native", "virtual", "inline", "not authorised")
MISSING, NATIVE_CODE, VIRTUAL_CODE, INLINE_CODE, UNAUTHORISED = range(5)
_CODE_OF_KIND = np.zeros(8, dtype=np.int8)
_CODE_OF_KIND[NATIVE], _CODE_OF_KIND[VIRTUAL], _CODE_OF_KIND[INLINE] = (
    NATIVE_CODE,
    VIRTUAL_CODE,
    INLINE_CODE,
)


@dataclass(frozen=True, slots=True)
class ArrayInfo:
    path: str
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    grid: tuple[int, ...]  # chunks along each dimension
    dims: tuple[str, ...]  # dimension names ("dim_N" where the array has none)
    named_dims: bool
    codecs: tuple[tuple[str, str], ...]  # (name, configuration as JSON)
    fill_value: str
    attributes: Mapping[str, Any]
    stored_chunks: int  # references held in the manifests

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def label(self) -> str:
        """``long_name [units]`` (or the array name) for axes and colour bars."""
        name = self.attributes.get("long_name") or self.attributes.get("standard_name")
        name = str(name) if name else self.path.rpartition("/")[2]
        units = self.attributes.get("units")
        return f"{name} [{units}]" if units else name


def _dtype_name(meta: Mapping[str, Any]) -> str:
    dtype = meta.get("data_type")
    if isinstance(dtype, dict):
        return str(dtype.get("name"))
    return str(dtype)


def array_info(node: Node) -> ArrayInfo:
    meta = node.meta
    shape = tuple(int(n) for n in meta.get("shape", ()))
    config = meta.get("chunk_grid", {}).get("configuration", {})
    chunks = tuple(int(c) for c in config.get("chunk_shape", shape))
    names = meta.get("dimension_names")
    dims = tuple(
        str(n) if n is not None else f"dim_{i}"
        for i, n in enumerate(names if names else [None] * len(shape))
    )
    codecs = tuple(
        (
            str(c.get("name")),
            json.dumps(c.get("configuration") or {}, sort_keys=True, default=str),
        )
        for c in meta.get("codecs", [])
        if isinstance(c, Mapping)
    )
    return ArrayInfo(
        path=node.path,
        shape=shape,
        dtype=_dtype_name(meta),
        chunks=chunks,
        grid=tuple(chunk_grid_shape(meta)),
        dims=dims,
        named_dims=bool(names),
        codecs=codecs,
        fill_value=json.dumps(meta.get("fill_value"), default=str),
        attributes=dict(node.attributes),
        stored_chunks=sum(m.count for m in node.manifests),
    )


@dataclass(frozen=True, slots=True)
class Selection:
    """Which 2-D (or 1-D) slice of an array the chunk map and the quick-look show.

    ``y`` and ``x`` are the plotted axes (``y`` is None for 1-D arrays, both None for 0-D);
    ``index`` holds the position along every other axis (0 on the plotted ones).
    """

    y: int | None
    x: int | None
    index: tuple[int, ...]

    def fixed(self) -> list[int]:
        return [a for a in range(len(self.index)) if a not in (self.y, self.x)]

    def query(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.y is not None:
            out["y"] = str(self.y)
        if self.x is not None:
            out["x"] = str(self.x)
        for a in self.fixed():
            out[f"i{a}"] = str(self.index[a])
        return out


def _axis(value: str | None, info: ArrayInfo, what: str) -> int | None:
    if value is None or value == "":
        return None
    if value in info.dims:
        return info.dims.index(value)
    try:
        axis = int(value)
    except ValueError:
        axis = -1
    if not 0 <= axis < info.ndim:
        raise InvalidInputError(
            f"{what}={value!r} is not a dimension of /{info.path}: use a name of "
            f"{list(info.dims)} or a number 0..{info.ndim - 1}"
        )
    return axis


def parse_selection(info: ArrayInfo, params: Mapping[str, str]) -> Selection:
    """The slice named by query parameters ``y``, ``x`` (axes: numbers or dimension names)
    and ``iN`` (the index along axis N); defaults: the last two axes, index 0 elsewhere."""
    n = info.ndim
    if n == 0:
        return Selection(None, None, ())
    y = _axis(params.get("y"), info, "y")
    x = _axis(params.get("x"), info, "x")
    if n == 1:
        return Selection(None, 0, (0,))
    if x is None:
        x = n - 1 if y != n - 1 else n - 2
    if y is None:
        y = n - 2 if x != n - 2 else n - 1
    if y == x:
        raise InvalidInputError(
            f"y and x must be two different dimensions of /{info.path}, both are {info.dims[x]!r}"
        )
    index = [0] * n
    for a in range(n):
        raw = params.get(f"i{a}")
        if a in (y, x) or raw is None or raw == "":
            continue
        try:
            i = int(raw)
        except ValueError:
            raise InvalidInputError(
                f"i{a}={raw!r}: the index along {info.dims[a]!r} must be an integer"
            ) from None
        if not 0 <= i < info.shape[a]:
            raise InvalidInputError(
                f"i{a}={i} is out of range for dimension {info.dims[a]!r} of /{info.path} "
                f"(size {info.shape[a]}); choose 0..{info.shape[a] - 1}"
            )
        index[a] = i
    return Selection(y, x, tuple(index))


@dataclass(frozen=True, slots=True)
class SourceRow:
    url: str
    checksum: str | None
    chunks: int
    authorised: bool


@dataclass(frozen=True, slots=True)
class ChunkSummary:
    counts: Mapping[str, int]  # whole array, by kind name (missing: never written)
    sources: tuple[SourceRow, ...]


async def _manifests(at: At, node: Node) -> list[tuple[tuple[int, ...], Manifest]]:
    repository = at.session.repository
    return [(m.region, await repository.get_manifest(m.id)) for m in node.manifests]


def _codes(m: Manifest, allowed: np.ndarray) -> np.ndarray:
    """Chunk-map code of every row of ``m`` (``allowed``: per URL of ``m``)."""
    codes = _CODE_OF_KIND[m.kind.astype(np.int64)]
    virtual = m.kind == VIRTUAL
    if virtual.any() and len(allowed):
        codes[virtual & ~allowed[np.minimum(m.loc, len(allowed) - 1).astype(np.int64)]] = (
            UNAUTHORISED
        )
    return codes


async def chunk_summary(view: RepoView, at: At, node: Node) -> ChunkSummary:
    info = array_info(node)
    total = int(np.prod(info.grid, dtype=np.int64)) if info.ndim else 1
    counts = np.zeros(len(KINDS), dtype=np.int64)
    sources: dict[tuple[str, str | None], int] = {}
    for _region, m in await _manifests(at, node):
        allowed = np.array([authorised(view.reader, u) for u in m.urls], dtype=bool)
        counts += np.bincount(_codes(m, allowed), minlength=len(KINDS))
        virtual = m.kind == VIRTUAL
        if virtual.any():
            per_url = np.bincount(m.loc[virtual].astype(np.int64), minlength=len(m.urls))
            for url, checksum, n in zip(m.urls, m.checksums, per_url.tolist(), strict=True):
                if n:
                    sources[(url, checksum)] = sources.get((url, checksum), 0) + n
    counts[MISSING] = max(total - int(counts[1:].sum()), 0)
    rows = tuple(
        SourceRow(url, checksum, n, authorised(view.reader, url))
        for (url, checksum), n in sorted(sources.items(), key=lambda kv: kv[0][0])
    )
    return ChunkSummary(dict(zip(KINDS, counts.tolist(), strict=True)), rows)


@dataclass(frozen=True, slots=True)
class ChunkMap:
    grid: np.ndarray  # (rows, columns) of codes, sampled by ``step``
    counts: Mapping[str, int]  # the whole slice, by kind name
    step: tuple[int, int]  # every step-th chunk drawn along (rows, columns)
    shape: tuple[int, int]  # chunks of the slice along (rows, columns)
    y_label: str
    x_label: str


async def chunk_map(view: RepoView, at: At, node: Node, sel: Selection) -> ChunkMap:
    """The chunk grid of the selected slice, coloured by kind."""
    info = array_info(node)
    grid_shape = info.grid
    gy = grid_shape[sel.y] if sel.y is not None else 1
    gx = grid_shape[sel.x] if sel.x is not None else 1
    grid = np.zeros((gy, gx), dtype=np.int8)
    fixed = sel.fixed()
    chunk_at = {a: sel.index[a] // max(info.chunks[a], 1) for a in fixed}
    for region, m in await _manifests(at, node):
        if not len(m):
            continue
        split = node.split or tuple(1 for _ in grid_shape)
        if any(region[a] != chunk_at[a] // max(split[a], 1) for a in fixed):
            continue  # a manifest of another slice
        coords = m.coords.astype(np.int64)
        mask = np.ones(len(m), dtype=bool)
        for a in fixed:
            mask &= coords[:, a] == chunk_at[a]
        if not mask.any():
            continue
        allowed = np.array([authorised(view.reader, u) for u in m.urls], dtype=bool)
        codes = _codes(m, allowed)[mask]
        rows = coords[mask, sel.y] if sel.y is not None else np.zeros(int(mask.sum()), np.int64)
        cols = coords[mask, sel.x] if sel.x is not None else np.zeros(int(mask.sum()), np.int64)
        inside = (rows < gy) & (cols < gx)
        grid[rows[inside], cols[inside]] = codes[inside]
    counts = np.bincount(grid.ravel(), minlength=len(KINDS))
    limit = view.limits.max_map_cells
    step = (-(-gy // limit), -(-gx // limit))
    return ChunkMap(
        grid=grid[:: step[0], :: step[1]],
        counts=dict(zip(KINDS, counts.tolist(), strict=True)),
        step=step,
        shape=(gy, gx),
        y_label=info.dims[sel.y] if sel.y is not None else "",
        x_label=info.dims[sel.x] if sel.x is not None else "",
    )


async def verify_array(at: At, node: Node) -> VerifyReport:
    """``verify`` restricted to one array: one stat per source object it references."""
    only = replace(at.session.base, nodes={node.path: node})
    session = Session(at.session.repository, only, branch=None, writable=False)
    return await verify_sources(session)
