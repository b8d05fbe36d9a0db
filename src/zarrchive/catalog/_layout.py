"""What must agree between a catalog's sources, and their reference columns.

Owns the layout of a source (its groups, the arrays along the concat dimension with what
decides how they decode, and the other arrays' whole metadata), the error that names how
two layouts differ, and the reference columns of the arrays along the concat dimension:
per source (:class:`_Packed`) and for all scanned sources in a few large blocks
(:class:`_RefTable`). Pure: numpy and plain values, no I/O; imports nothing else of the
catalog.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import (
    InvalidInputError,
    UnsupportedFeatureError,
)
from ..format import DELETED, NATIVE, VIRTUAL, Manifest
from ..importers._base import ImportedTree

#: attributes that change how stored values decode: they must agree across sources
_DECODE_ATTRS = ("scale_factor", "add_offset", "_FillValue", "missing_value", "_Unsigned", "dtype")


_MISSING = object()


def _dims(meta: Mapping[str, Any]) -> list[str]:
    return list(meta.get("dimension_names") or [])


def _chunk_shape(meta: Mapping[str, Any]) -> list[int]:
    grid = meta.get("chunk_grid") or {}
    if grid.get("name") != "regular":
        raise UnsupportedFeatureError(
            f"chunk grid {grid.get('name')!r} is not supported; only 'regular' grids are"
        )
    return list(grid["configuration"]["chunk_shape"])


def _is_index(path: str, meta: Mapping[str, Any]) -> bool:
    dims = _dims(meta)
    return len(dims) == 1 and dims[0] == path.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class _Varying:
    path: str
    axis: int
    chunk: int  # chunk length along the concat dimension
    ndim: int
    sig: str


@dataclass(frozen=True, slots=True)
class _Layout:
    """What must agree between sources (interned: equal layouts are one object)."""

    groups: tuple[str, ...]
    coord: str
    varying: tuple[_Varying, ...]
    static: tuple[tuple[str, str], ...]  # (path, canonical zarr.json)


def _varying_sig(meta: Mapping[str, Any], axis: int) -> str:
    shape = list(meta["shape"])
    shape[axis] = None
    attrs = meta.get("attributes") or {}
    decode = {k: attrs[k] for k in _DECODE_ATTRS if k in attrs}
    if " since " in str(attrs.get("units", "")):
        decode.update({k: attrs[k] for k in ("units", "calendar") if k in attrs})
    body = {
        "data_type": meta.get("data_type"),
        "codecs": meta.get("codecs"),
        "chunk_grid": meta.get("chunk_grid"),
        "fill_value": meta.get("fill_value"),
        "dimension_names": meta.get("dimension_names"),
        "storage_transformers": meta.get("storage_transformers") or [],
        "shape": shape,
        "attributes": decode,
    }
    return json.dumps(body, sort_keys=True, default=str)


def _layout_of(
    groups: Iterable[str], metas: Mapping[str, Mapping[str, Any]], dim: str, where: str
) -> _Layout:
    varying: list[_Varying] = []
    static: list[tuple[str, str]] = []
    for path in sorted(metas):
        meta = metas[path]
        dims = _dims(meta)
        if path == dim:
            continue
        if dim in dims:
            axis = dims.index(dim)
            varying.append(
                _Varying(
                    path, axis, int(_chunk_shape(meta)[axis]), len(dims), _varying_sig(meta, axis)
                )
            )
        else:
            static.append((path, json.dumps(meta, sort_keys=True, default=str)))
    if not varying:
        raise InvalidInputError(
            f"{where}: no variable has the dimension {dim!r}, so there is nothing to combine "
            "along it"
        )
    return _Layout(tuple(sorted(groups)), dim, tuple(varying), tuple(static))


_LABELS = {
    "data_type": "dtype",
    "codecs": "codecs",
    "chunk_grid": "chunking",
    "shape": "shape (apart from the concat dimension)",
    "fill_value": "fill value",
    "dimension_names": "dimensions",
    "storage_transformers": "storage transformers",
}


def _describe_difference(a: str, b: str) -> tuple[str, Any, Any]:
    da, db = json.loads(a), json.loads(b)
    for key in (*_LABELS, "attributes"):
        if da.get(key) != db.get(key):
            if key == "attributes":
                attrs_a, attrs_b = da.get(key) or {}, db.get(key) or {}
                for k in sorted(set(attrs_a) | set(attrs_b)):
                    if attrs_a.get(k, _MISSING) != attrs_b.get(k, _MISSING):
                        return f"attribute {k!r}", attrs_a.get(k), attrs_b.get(k)
            return _LABELS.get(key, key), da.get(key), db.get(key)
    for key in sorted(set(da) | set(db)):
        if da.get(key) != db.get(key):
            return key, da.get(key), db.get(key)
    return "metadata", None, None


def _layout_error(url: str, lay: _Layout, ref_name: str, ref: _Layout) -> InvalidInputError:
    mine = {v.path: ("v", v.sig) for v in lay.varying} | {p: ("s", s) for p, s in lay.static}
    theirs = {v.path: ("v", v.sig) for v in ref.varying} | {p: ("s", s) for p, s in ref.static}
    missing = sorted(set(theirs) - set(mine))
    if missing:
        return InvalidInputError(
            f"{url}: variable {missing[0]!r} is missing (it is in {ref_name}); every source "
            "of a catalog must have the same variables"
        )
    extra = sorted(set(mine) - set(theirs))
    if extra:
        return InvalidInputError(
            f"{url}: extra variable {extra[0]!r}, which {ref_name} does not have; every "
            "source of a catalog must have the same variables"
        )
    for path in sorted(mine):
        (ka, sa), (kb, sb) = mine[path], theirs[path]
        if ka != kb:
            return InvalidInputError(
                f"{url}: variable {path!r} {'has' if ka == 'v' else 'lacks'} the concat "
                f"dimension {lay.coord!r}, but in {ref_name} it "
                f"{'does not' if ka == 'v' else 'does'}"
            )
        if sa != sb:
            what, va, vb = _describe_difference(sa, sb)
            return InvalidInputError(
                f"{url}: variable {path!r} has {what} {va!r}, but {ref_name} has {vb!r}; "
                "every source of a catalog must store each variable the same way"
            )
    gm, gt = set(lay.groups), set(ref.groups)
    if gm != gt:
        diff = sorted(gm ^ gt)
        return InvalidInputError(
            f"{url}: group {diff[0]!r} is {'missing' if diff[0] in gt else 'extra'} compared "
            f"with {ref_name}"
        )
    return InvalidInputError(f"{url}: its structure differs from {ref_name}")


@dataclass(slots=True)
class _Packed:
    """The references of a source's varying arrays as one set of columns, rows grouped by
    array (``starts[k]:starts[k+1]`` are array k's)."""

    starts: np.ndarray
    coords: np.ndarray
    kind: np.ndarray
    loc: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    urls: list[str]
    checksums: list[str | None]
    inline: list[bytes]

    def manifest(self, k: int, ndim: int, axis: int, shift: int) -> Manifest:
        a, b = int(self.starts[k]), int(self.starts[k + 1])
        coords = self.coords[a:b, :ndim].astype(np.int64)
        coords[:, axis] += shift
        return Manifest(
            coords,
            self.kind[a:b],
            self.loc[a:b],
            self.offset[a:b],
            self.length[a:b],
            urls=self.urls,
            checksums=self.checksums,
            inline=self.inline,
        )


def _pack(tree: ImportedTree, layout: _Layout) -> _Packed:
    width = max(v.ndim for v in layout.varying)
    pos: dict[str, int] = {}
    checksums: list[str | None] = []
    inline: list[bytes] = []
    cols: list[tuple[np.ndarray, ...]] = []
    starts = [0]
    for v in layout.varying:
        m = tree.arrays[v.path].refs
        if (m.kind == NATIVE).any() or (m.kind == DELETED).any():
            raise UnsupportedFeatureError(f"array {v.path!r}: an importer returned native chunks")
        remap = np.empty(len(m.urls), dtype=np.int64)
        for i, (u, cs) in enumerate(zip(m.urls, m.checksums, strict=True)):
            j = pos.get(u)
            if j is None:
                j = pos[u] = len(checksums)
                checksums.append(cs)
            remap[i] = j
        loc = m.loc.astype(np.int64)
        is_v = m.kind == VIRTUAL
        loc = np.where(is_v, remap[np.where(is_v, loc, 0)] if len(remap) else 0, loc + len(inline))
        inline.extend(m.inline)
        coords = np.zeros((len(m), width), dtype=np.uint32)
        coords[:, : v.ndim] = m.coords
        cols.append((coords, m.kind, loc, m.offset, m.length))
        starts.append(starts[-1] + len(m))
    return _Packed(
        np.asarray(starts, dtype=np.int64),
        np.concatenate([c[0] for c in cols]),
        np.concatenate([c[1] for c in cols]).astype(np.uint8),
        np.concatenate([c[2] for c in cols]).astype(np.uint32),
        np.concatenate([c[3] for c in cols]).astype(np.uint64),
        np.concatenate([c[4] for c in cols]).astype(np.uint64),
        list(pos),
        checksums,
        inline,
    )


@dataclass(frozen=True, slots=True)
class _Rows:
    """Where a source's reference columns are in a :class:`_RefTable`."""

    block: int
    start: int
    stop: int
    starts: tuple[int, ...]
    urls: tuple[str, ...]
    checksums: tuple[str | None, ...]
    inline: tuple[bytes, ...]


class _RefTable:
    """The reference columns of every scanned source, in a few large arrays.

    Sources arrive one by one; their columns wait in a short list and are joined into one
    block every ``block_size`` sources, so no numpy array is kept per source: a catalog's
    memory grows by about the size of its references (a few hundred bytes per source).
    """

    def __init__(self, block_size: int = 256) -> None:
        self.block_size = block_size
        self._blocks: list[tuple[np.ndarray, ...]] = []
        self._pending: list[_Packed] = []
        self._rows = 0

    def add(self, packed: _Packed) -> _Rows:
        n = len(packed.kind)
        rows = _Rows(
            len(self._blocks),
            self._rows,
            self._rows + n,
            tuple(int(x) for x in packed.starts),
            tuple(packed.urls),
            tuple(packed.checksums),
            tuple(packed.inline),
        )
        self._pending.append(packed)
        self._rows += n
        if len(self._pending) >= self.block_size:
            self._seal()
        return rows

    def _seal(self) -> None:
        if not self._pending:
            return
        width = max(p.coords.shape[1] for p in self._pending)
        coords = np.zeros((self._rows, width), dtype=np.uint32)
        pos = 0
        for p in self._pending:
            coords[pos : pos + len(p.kind), : p.coords.shape[1]] = p.coords
            pos += len(p.kind)
        self._blocks.append(
            (
                coords,
                *(
                    np.concatenate([getattr(p, k) for p in self._pending])
                    for k in ("kind", "loc", "offset", "length")
                ),
            )
        )
        self._pending, self._rows = [], 0

    def packed(self, rows: _Rows) -> _Packed:
        if rows.block == len(self._blocks):
            self._seal()
        coords, kind, loc, offset, length = self._blocks[rows.block]
        a, b = rows.start, rows.stop
        return _Packed(
            np.asarray(rows.starts, dtype=np.int64),
            coords[a:b],
            kind[a:b],
            loc[a:b],
            offset[a:b],
            length[a:b],
            list(rows.urls),
            list(rows.checksums),
            list(rows.inline),
        )


def _same_pack(a: _Packed, b: _Packed) -> bool:
    """Whether ``a`` and ``b`` hold the same references (``b``'s coordinates may be padded
    with zero columns: a :class:`_RefTable` block is as wide as its widest source)."""
    width = a.coords.shape[1]
    return (
        a.urls == b.urls
        and a.checksums == b.checksums
        and a.inline == b.inline
        and np.array_equal(a.coords, b.coords[:, :width])
        and not b.coords[:, width:].any()
        and all(
            np.array_equal(getattr(a, k), getattr(b, k))
            for k in ("starts", "kind", "loc", "offset", "length")
        )
    )
