"""Chunk manifests: the chunk references of one array region, as columns.

A manifest is a handful of numpy arrays of equal length N, one entry per chunk:
``coords`` (N, ndim) chunk-grid coordinates, ``kind`` (native / virtual / inline), ``loc``
(index into the table of that kind: source URLs, native chunk ids or inline payloads),
``offset`` and ``length`` (the byte range; for native and inline chunks offset is 0 and length
the size). Source URLs carry the checksum recorded when they were imported (size plus ETag or
mtime) in a parallel table, so a checksum is stored once per source object, not per chunk.

Everything here is vectorised: building, merging (later entries win), looking up and encoding
a million references never creates a Python object per reference. On disk the columns are
sorted by chunk, delta-encoded (coordinates, and offsets relative to the end of the previous
range), byte-shuffled and zstd-compressed, which brings a typical virtual reference to 2-3
bytes. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import FormatError, InvalidInputError
from ._envelope import ObjectType, decode, encode

__all__ = [
    "DELETED",
    "INLINE",
    "NATIVE",
    "VIRTUAL",
    "Manifest",
    "linear_keys",
    "region_of",
    "split_shape",
]

NATIVE, VIRTUAL, INLINE, DELETED = 0, 1, 2, 3
_KIND_NAMES = {NATIVE: "native", VIRTUAL: "virtual", INLINE: "inline", DELETED: "deleted"}


def split_shape(grid_shape: Sequence[int], target: int) -> tuple[int, ...]:
    """Shape, in chunks, of the grid regions that each get their own manifest.

    Inner dimensions are kept whole where possible and outer ones split, so a region holds at
    most ``target`` chunks (at least one chunk per dimension).
    """
    block: list[int] = []
    inner = 1
    for extent in reversed([max(1, int(n)) for n in grid_shape]):
        size = min(extent, max(1, target // inner))
        block.append(size)
        inner *= size
    return tuple(reversed(block))


def region_of(coords: np.ndarray, split: Sequence[int]) -> np.ndarray:
    """Region index (N, ndim) of each chunk coordinate row."""
    if len(split) == 0:
        return np.zeros((len(coords), 0), dtype=np.int64)
    return coords.astype(np.int64, copy=False) // np.asarray(split, dtype=np.int64)


def _strides(extent: np.ndarray) -> np.ndarray:
    strides = np.ones(len(extent), dtype=np.int64)
    for i in range(len(extent) - 2, -1, -1):
        strides[i] = strides[i + 1] * max(int(extent[i + 1]), 1)
    return strides


def linear_keys(*coords: np.ndarray) -> list[np.ndarray]:
    """C-order int64 keys of coordinate rows (n, ndim), on one grid that fits them all.

    Rows of different arrays get equal keys exactly when they are equal, so keys can be
    sorted, deduplicated and intersected across arrays.
    """
    ndim = coords[0].shape[1]
    nonempty = [c for c in coords if len(c)]
    if ndim == 0 or not nonempty:
        return [np.zeros(len(c), dtype=np.int64) for c in coords]
    extent = np.max([c.max(axis=0) for c in nonempty], axis=0).astype(np.int64) + 1
    strides = _strides(extent)
    return [c.astype(np.int64) @ strides for c in coords]


def _shuffle(arr: np.ndarray) -> bytes:
    a = np.ascontiguousarray(arr)
    return a.view(np.uint8).reshape(-1, a.dtype.itemsize).T.tobytes()


def _unshuffle(data: bytes, dtype: np.dtype[Any], n: int) -> np.ndarray:
    dt = np.dtype(dtype)
    planes = np.frombuffer(data, dtype=np.uint8)
    if planes.size != n * dt.itemsize:
        raise FormatError(f"manifest column has {planes.size} bytes, expected {n * dt.itemsize}")
    return planes.reshape(dt.itemsize, n).T.copy().view(dt).reshape(n)


class Manifest:
    """Chunk references of (a region of) one array, as parallel numpy columns."""

    __slots__ = (
        "_bounds",
        "_keys",
        "_pystrides",
        "_strides",
        "checksums",
        "chunk_ids",
        "coords",
        "inline",
        "kind",
        "length",
        "loc",
        "offset",
        "urls",
    )

    def __init__(
        self,
        coords: np.ndarray,
        kind: np.ndarray,
        loc: np.ndarray,
        offset: np.ndarray,
        length: np.ndarray,
        *,
        urls: Sequence[str] = (),
        checksums: Sequence[str | None] | None = None,
        chunk_ids: Sequence[str] = (),
        inline: Sequence[bytes] = (),
    ) -> None:
        coords = np.asarray(coords)
        if coords.ndim != 2:
            raise InvalidInputError(f"chunk coordinates must be 2-d (n, ndim), got {coords.shape}")
        n = coords.shape[0]
        self.coords = coords.astype(np.uint32, copy=False)
        self.kind = np.asarray(kind, dtype=np.uint8).reshape(n)
        self.loc = np.asarray(loc, dtype=np.uint32).reshape(n)
        self.offset = np.asarray(offset, dtype=np.uint64).reshape(n)
        self.length = np.asarray(length, dtype=np.uint64).reshape(n)
        self.urls = list(urls)
        self.checksums = list(checksums) if checksums is not None else [None] * len(self.urls)
        self.chunk_ids = list(chunk_ids)
        self.inline = list(inline)
        self._keys: np.ndarray | None = None
        self._strides: np.ndarray | None = None
        self._bounds: tuple[int, ...] = ()
        self._pystrides: tuple[int, ...] = ()
        if len(self.checksums) != len(self.urls):
            raise InvalidInputError("checksums must be given once per source URL")

    # ------------------------------------------------------------------ building
    @classmethod
    def empty(cls, ndim: int) -> Manifest:
        z = np.zeros(0, dtype=np.uint64)
        return cls(np.zeros((0, ndim), dtype=np.uint32), z, z, z, z)

    @classmethod
    def virtual(
        cls,
        coords: np.ndarray,
        url_index: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        urls: Sequence[str],
        checksums: Sequence[str | None] | None = None,
    ) -> Manifest:
        """Virtual references; ``url_index[i]`` indexes ``urls``."""
        coords = np.asarray(coords)
        n = coords.shape[0]
        url_index = np.asarray(url_index)
        if n and (url_index.min() < 0 or url_index.max() >= len(urls)):
            raise InvalidInputError("url index out of range of the urls table")
        offsets = np.asarray(offsets)
        lengths = np.asarray(lengths)
        if n and (offsets.min() < 0 or lengths.min() < 0):
            raise InvalidInputError("virtual chunk offsets and lengths must not be negative")
        return cls(
            coords,
            np.full(n, VIRTUAL, dtype=np.uint8),
            url_index,
            offsets,
            lengths,
            urls=urls,
            checksums=checksums,
        )

    @classmethod
    def single(
        cls,
        coord: Sequence[int],
        kind: int,
        *,
        chunk_id: str = "",
        data: bytes = b"",
        url: str = "",
        checksum: str | None = None,
        offset: int = 0,
        length: int = 0,
    ) -> Manifest:
        """One reference (the changeset uses these for individual chunk writes)."""
        c = np.asarray([list(coord)], dtype=np.uint32).reshape(1, len(coord))
        if kind == NATIVE:
            return cls(c, [NATIVE], [0], [0], [length], chunk_ids=[chunk_id])
        if kind == INLINE:
            return cls(c, [INLINE], [0], [0], [len(data)], inline=[bytes(data)])
        if kind == VIRTUAL:
            return cls(c, [VIRTUAL], [0], [offset], [length], urls=[url], checksums=[checksum])
        return cls(c, [DELETED], [0], [0], [0])

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    @property
    def ndim(self) -> int:
        return int(self.coords.shape[1])

    def __repr__(self) -> str:
        counts = {
            _KIND_NAMES[k]: int(c)
            for k, c in zip(*np.unique(self.kind, return_counts=True), strict=True)
        }
        return f"<Manifest {len(self)} refs {counts} from {len(self.urls)} sources>"

    # ------------------------------------------------------------------ lookup
    def _index(self) -> tuple[np.ndarray, np.ndarray]:
        if self._keys is None:
            extent = (
                self.coords.max(axis=0).astype(np.int64) + 1
                if len(self)
                else np.ones(self.ndim, dtype=np.int64)
            )
            self._strides = _strides(extent)
            self._bounds = tuple(int(n) for n in extent) if len(self) else (0,) * self.ndim
            self._pystrides = tuple(int(n) for n in self._strides)
            keys = (
                self.coords.astype(np.int64) @ self._strides
                if self.ndim
                else np.zeros(len(self), dtype=np.int64)
            )
            if len(keys) > 1 and not np.all(keys[1:] > keys[:-1]):
                order = np.argsort(keys, kind="stable")
                self._sort_by(order)
                keys = keys[order]
            self._keys = keys
        assert self._strides is not None
        return self._keys, self._strides

    def _sort_by(self, order: np.ndarray) -> None:
        self.coords = self.coords[order]
        self.kind = self.kind[order]
        self.loc = self.loc[order]
        self.offset = self.offset[order]
        self.length = self.length[order]

    def find(self, coord: Sequence[int]) -> int:
        """Row of chunk ``coord``, or -1 when this manifest has no reference for it.

        Plain Python arithmetic: a store looks up one chunk per call, and numpy's per-call
        overhead would be most of the cost.
        """
        if len(coord) != self.ndim:
            return -1
        keys, strides = self._index()
        if not len(keys):
            return -1
        key = 0
        for c, n, s in zip(coord, self._bounds, self._pystrides, strict=True):
            if not 0 <= c < n:
                return -1
            key += c * s
        i = int(keys.searchsorted(key))
        return i if i < len(keys) and keys[i] == key else -1

    def find_many(self, coords: np.ndarray) -> np.ndarray:
        """Rows of chunk coordinates ``coords`` (n, ndim); -1 where there is no reference."""
        coords = np.asarray(coords, dtype=np.int64)
        if coords.ndim != 2 or coords.shape[1] != self.ndim:
            raise InvalidInputError(
                f"chunk coordinates of shape {coords.shape} do not fit a {self.ndim}-d manifest"
            )
        rows = np.full(len(coords), -1, dtype=np.int64)
        keys, strides = self._index()
        if not len(keys) or not len(coords):
            return rows
        inside = np.all((coords >= 0) & (coords < np.asarray(self._bounds, np.int64)), axis=1)
        want = coords[inside] @ strides if self.ndim else np.zeros(int(inside.sum()), np.int64)
        pos = np.minimum(keys.searchsorted(want), len(keys) - 1)
        hit = keys[pos] == want
        idx = np.flatnonzero(inside)
        rows[idx[hit]] = pos[hit]
        return rows

    def sorted(self) -> Manifest:
        """This manifest with rows in chunk order (in place; returns self)."""
        self._index()
        return self

    # ------------------------------------------------------------------ combining
    @classmethod
    def merge(cls, parts: Sequence[Manifest], ndim: int, *, keep_deleted: bool = False) -> Manifest:
        """Combine ``parts``; for a chunk present in several, the last part wins.

        Entries of kind ``DELETED`` remove the chunk (or, with ``keep_deleted``, stay as
        tombstones so that the result can itself be merged over an older manifest). Tables are
        compacted to what the surviving rows use.
        """
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(ndim)
        for p in parts:
            if p.ndim != ndim:
                raise InvalidInputError(
                    f"chunk coordinates have {p.ndim} dimensions, the array has {ndim}"
                )
        url_pos: dict[str, int] = {}
        urls: list[str] = []
        checksums: list[str | None] = []
        chunk_ids: list[str] = []
        inline: list[bytes] = []
        locs = []
        for p in parts:
            loc = p.loc.astype(np.int64)
            if p.urls:
                remap = np.empty(len(p.urls), dtype=np.int64)
                for i, (u, cs) in enumerate(zip(p.urls, p.checksums, strict=True)):
                    j = url_pos.get(u)
                    if j is None:
                        j = url_pos[u] = len(urls)
                        urls.append(u)
                        checksums.append(cs)
                    elif cs is not None:
                        checksums[j] = cs  # the newer import's checksum wins
                    remap[i] = j
                is_v = p.kind == VIRTUAL
                loc = np.where(is_v, remap[np.where(is_v, loc, 0)], loc)
            loc = np.where(p.kind == NATIVE, loc + len(chunk_ids), loc)
            loc = np.where(p.kind == INLINE, loc + len(inline), loc)
            chunk_ids.extend(p.chunk_ids)
            inline.extend(p.inline)
            locs.append(loc)
        coords = np.concatenate([p.coords for p in parts])
        kind = np.concatenate([p.kind for p in parts])
        loc = np.concatenate(locs)
        offset = np.concatenate([p.offset for p in parts])
        length = np.concatenate([p.length for p in parts])

        (keys,) = linear_keys(coords)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        last = np.ones(len(keys), dtype=bool)
        last[:-1] = keys[1:] != keys[:-1]
        take = order[last]
        if not keep_deleted:
            take = take[kind[take] != DELETED]
        merged = cls(
            coords[take],
            kind[take],
            loc[take],
            offset[take],
            length[take],
            urls=urls,
            checksums=checksums,
            chunk_ids=chunk_ids,
            inline=inline,
        )
        return merged._compacted()

    def _compacted(self) -> Manifest:
        """Drop table entries no row refers to, renumbering ``loc``."""
        loc = self.loc.astype(np.int64)
        new_loc = loc.copy()
        tables: dict[int, list[Any]] = {}
        for kind, table in ((VIRTUAL, self.urls), (NATIVE, self.chunk_ids), (INLINE, self.inline)):
            mask = self.kind == kind
            used, inverse = np.unique(loc[mask], return_inverse=True)
            new_loc[mask] = inverse
            tables[kind] = [table[i] for i in used.tolist()]
            if kind == VIRTUAL:
                checksums = [self.checksums[i] for i in used.tolist()]
        self.loc = new_loc.astype(np.uint32)
        self.urls = tables[VIRTUAL]
        self.checksums = checksums
        self.chunk_ids = tables[NATIVE]
        self.inline = tables[INLINE]
        return self

    def select(self, mask: np.ndarray) -> Manifest:
        """The rows where ``mask`` is true (tables compacted)."""
        m = Manifest(
            self.coords[mask],
            self.kind[mask],
            self.loc[mask],
            self.offset[mask],
            self.length[mask],
            urls=self.urls,
            checksums=self.checksums,
            chunk_ids=self.chunk_ids,
            inline=self.inline,
        )
        return m._compacted()

    # ------------------------------------------------------------------ encoding
    def to_bytes(self) -> bytes:
        self._index()
        n = len(self)
        coords = self.coords.astype(np.int64)
        if n:
            coords = np.diff(coords, axis=0, prepend=np.zeros((1, self.ndim), dtype=np.int64))
        off = self.offset.astype(np.int64)
        ends = off + self.length.astype(np.int64)
        delta = off.copy()
        if n > 1:
            delta[1:] = off[1:] - ends[:-1]
        body = {
            "n": n,
            "ndim": self.ndim,
            "coords": _shuffle(np.ascontiguousarray(coords.T)),
            "kind": self.kind.tobytes(),
            "loc": _shuffle(self.loc),
            "offset": _shuffle(delta),
            "length": _shuffle(self.length),
            "urls": self.urls,
            "checksums": self.checksums,
            "chunk_ids": self.chunk_ids,
            "inline": self.inline,
        }
        return encode(ObjectType.MANIFEST, body)

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str = "") -> Manifest:
        body = decode(ObjectType.MANIFEST, data, what=what)
        try:
            n, ndim = int(body["n"]), int(body["ndim"])
            coords = _unshuffle(body["coords"], np.dtype(np.int64), n * ndim).reshape(ndim, n).T
            coords = np.cumsum(coords, axis=0) if n else coords
            kind = np.frombuffer(body["kind"], dtype=np.uint8).copy()
            loc = _unshuffle(body["loc"], np.dtype(np.uint32), n)
            length = _unshuffle(body["length"], np.dtype(np.uint64), n)
            delta = _unshuffle(body["offset"], np.dtype(np.int64), n)
            if n:
                prev_len = np.zeros(n, dtype=np.int64)
                prev_len[1:] = length[:-1].astype(np.int64)
                offset = np.cumsum(delta + prev_len)
            else:
                offset = delta
            m = cls(
                coords,
                kind,
                loc,
                offset,
                length,
                urls=body["urls"],
                checksums=body["checksums"],
                chunk_ids=body["chunk_ids"],
                inline=body["inline"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"manifest {what} is corrupt: {exc}") from exc
        if len(m.kind) != n:
            raise FormatError(f"manifest {what} is corrupt: column lengths differ")
        for kind, table in ((VIRTUAL, m.urls), (NATIVE, m.chunk_ids), (INLINE, m.inline)):
            sel = m.loc[m.kind == kind]
            if len(sel) and int(sel.max()) >= len(table):
                raise FormatError(f"manifest {what} is corrupt: reference past its table")
        return m
