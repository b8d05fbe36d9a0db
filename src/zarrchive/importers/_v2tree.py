"""A flat Zarr v2 key -> value mapping (reference set or store listing) -> ImportedTree.

Shared by the kerchunk and Zarr v2 importers (both describe a Zarr v2 hierarchy as keys):
metadata documents become Zarr v3 (``_v2meta``), chunk keys are parsed with each array's
dimension separator into coordinates, values become inline data or virtual references
(``[url]`` whole objects or ``[url, offset, length]``), and every source object is stat-ed
once through the caller's ``stat`` for its checksum (and, for whole objects, its size).
Ranges past the end of a source are refused. Pure apart from those ``stat`` calls.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import numpy as np

from ..errors import InvalidInputError, NotFoundError, UnsupportedFeatureError
from ..format import INLINE, VIRTUAL, Manifest
from ..sources import SourceStat, normalize_url
from ..zarr_keys import chunk_grid_shape
from ._base import ImportedArray, ImportedTree
from ._v2meta import convert_array, convert_group

__all__ = ["scan_mapping"]

StatFn = Callable[[str], Awaitable[SourceStat]]
_META = (".zarray", ".zgroup", ".zattrs")


def _json_doc(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("base64:"):
        value = base64.b64decode(value[7:])
    try:
        doc = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"reference {key!r} is not a JSON metadata document") from exc
    if not isinstance(doc, dict):
        raise InvalidInputError(f"reference {key!r} is not a JSON object")
    return doc


def _decode_inline(key: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if value.startswith("base64:"):
        try:
            return base64.b64decode(value[7:], validate=True)
        except ValueError as exc:
            raise InvalidInputError(f"reference {key!r}: invalid base64 data") from exc
    return value.encode()


class _ArrayRefs:
    def __init__(self, path: str, meta: dict[str, Any], sep: str, *, explicit: bool) -> None:
        self.path = path
        self.meta = meta
        self.sep = sep
        #: the metadata names its separator; without one, "/" keys are also chunk keys (zarr
        #: 2's NestedDirectoryStore wrote nested keys before .zarray could say so)
        self.explicit = explicit
        self.seps_seen: set[str] = set()
        self.ndim = len(meta["shape"])
        self.grid = chunk_grid_shape(meta)
        self.coords: list[tuple[int, ...]] = []
        self.kind: list[int] = []
        self.url: list[str] = []
        self.offset: list[int] = []
        self.length: list[int] = []
        self.inline: list[bytes] = []
        self.columns: list[Manifest] = []

    def coord(self, key: str, rest: str) -> tuple[int, ...]:
        parts = [] if self.ndim == 0 else rest.split(self.sep)
        if self.ndim == 0 and rest not in ("0", ""):
            raise InvalidInputError(f"reference {key!r} is not a chunk of 0-d array {self.path!r}")
        if self.ndim > 1 and not self.explicit:
            sep = self.sep
            if len(parts) != self.ndim and self.sep == ".":
                parts, sep = rest.split("/"), "/"
            self.seps_seen.add(sep)
            if len(self.seps_seen) > 1:
                raise InvalidInputError(
                    f"array {self.path!r} has chunk keys separated both by '.' and by '/' "
                    f"(e.g. {key!r}) and its metadata names no dimension_separator"
                )
        if len(parts) != self.ndim or not all(p.isdigit() for p in parts):
            raise UnsupportedFeatureError(
                f"reference {key!r} is neither metadata nor a chunk key of array {self.path!r}"
            )
        c = tuple(int(p) for p in parts)
        if any(ci >= g for ci, g in zip(c, self.grid, strict=True)):
            raise InvalidInputError(
                f"reference {key!r} lies outside the chunk grid {self.grid} of {self.path!r}"
            )
        return c


async def scan_mapping(
    flat: Mapping[str, Any],
    *,
    stat: StatFn,
    base_dir: str | None = None,
    remote_protocol: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    max_concurrency: int = 32,
) -> ImportedTree:
    """Turn a flat reference mapping into an :class:`ImportedTree`."""
    meta_docs: dict[str, dict[str, Any]] = {}
    if ".zmetadata" in flat:
        consolidated = _json_doc(".zmetadata", flat[".zmetadata"]).get("metadata", {})
        for key, value in consolidated.items():
            meta_docs[key] = _json_doc(key, value)
    chunk_items: list[tuple[str, Any]] = []
    column_sets: list[tuple[str, Any]] = []
    for key, value in flat.items():
        leaf = key.rpartition("/")[2]
        if key == ".zmetadata":
            continue
        if leaf in _META:
            meta_docs[key] = _json_doc(key, value)
        elif leaf == ".__columns__":
            column_sets.append((key.rpartition("/")[0], value))
        else:
            chunk_items.append((key, value))

    tree = ImportedTree()
    arrays: dict[str, _ArrayRefs] = {}
    for key, doc in meta_docs.items():
        path, _, leaf = key.rpartition("/")
        attrs = meta_docs.get(f"{path}/.zattrs" if path else ".zattrs")
        if leaf == ".zarray":
            v3 = convert_array(doc, attrs, where=f"/{path}")
            sep = doc.get("dimension_separator")
            arrays[path] = _ArrayRefs(path, v3, sep or ".", explicit=bool(sep))
        elif leaf == ".zgroup":
            tree.groups[path] = convert_group(attrs)
    for path in list(arrays) + list(tree.groups):
        parent = path
        while parent:
            parent = parent.rpartition("/")[0]
            if parent not in tree.groups and parent not in arrays:
                attrs = meta_docs.get(f"{parent}/.zattrs" if parent else ".zattrs")
                tree.groups[parent] = convert_group(attrs)
    for key in meta_docs:
        path, _, leaf = key.rpartition("/")
        if leaf == ".zattrs" and path not in arrays and path not in tree.groups:
            tree.groups[path] = convert_group(meta_docs[key])

    def owner(key: str) -> tuple[_ArrayRefs, str]:
        parts = key.split("/")
        for i in range(len(parts) - 1, -1, -1):
            arr = arrays.get("/".join(parts[:i]))
            if arr is not None:
                return arr, "/".join(parts[i:])
        raise UnsupportedFeatureError(
            f"reference {key!r} is neither a metadata document nor a chunk of any array in "
            "the reference set"
        )

    def fix_url(u: Any, key: str) -> str:
        if not isinstance(u, str) or not u:
            raise InvalidInputError(f"reference {key!r} has no source URL")
        if "://" not in u and remote_protocol:
            u = f"{remote_protocol}://{u}"
        return normalize_url(u, base_dir)

    for key, value in chunk_items:
        arr, rest = owner(key)
        c = arr.coord(key, rest)
        if isinstance(value, str | bytes):
            arr.coords.append(c)
            arr.kind.append(INLINE)
            arr.url.append("")
            arr.offset.append(0)
            data = _decode_inline(key, value)
            arr.length.append(len(data))
            arr.inline.append(data)
        elif isinstance(value, list | tuple) and len(value) in (1, 3):
            arr.coords.append(c)
            arr.kind.append(VIRTUAL)
            arr.url.append(fix_url(value[0], key))
            if len(value) == 3:
                if not all(isinstance(v, int) and v >= 0 for v in value[1:]):
                    raise InvalidInputError(
                        f"reference {key!r}: offset and length must be non-negative integers"
                    )
                arr.offset.append(int(value[1]))
                arr.length.append(int(value[2]))
            else:
                arr.offset.append(0)
                arr.length.append(-1)  # whole object: size comes from the stat
            arr.inline.append(b"")
        else:
            raise InvalidInputError(
                f"reference {key!r} must be data, [url] or [url, offset, length]; got {value!r}"
            )

    for path, (_zarray, df, record_size) in column_sets:
        arr = arrays.get(path)
        if arr is None:
            continue
        arr.columns.append(_columns_manifest(arr, df, record_size, fix_url))

    # one stat per source object: existence, whole-object sizes, checksums
    urls = sorted(
        {u for a in arrays.values() for u in a.url if u}
        | {u for a in arrays.values() for m in a.columns for u in m.urls}
    )
    sem = asyncio.Semaphore(max_concurrency)

    async def one(u: str) -> SourceStat:
        async with sem:
            try:
                return await stat(u)
            except FileNotFoundError:
                raise NotFoundError(
                    f"source {u!r} named in the reference set does not exist"
                ) from None

    stats = dict(zip(urls, await asyncio.gather(*(one(u) for u in urls)), strict=True))
    checksums = {u: s.checksum for u, s in stats.items()}

    for path, arr in arrays.items():
        parts = [m for m in arr.columns]
        if arr.coords:
            parts.append(_rows_manifest(arr, stats))
        for m in parts:
            m.checksums = [checksums.get(u) for u in m.urls]
            _check_ranges(path, m, stats)
        refs = Manifest.merge(parts, arr.ndim) if parts else Manifest.empty(arr.ndim)
        tree.arrays[path] = ImportedArray(arr.meta, refs)
    return tree


def _rows_manifest(arr: _ArrayRefs, stats: Mapping[str, SourceStat]) -> Manifest:
    n = len(arr.coords)
    coords = np.array(arr.coords, dtype=np.int64).reshape(n, arr.ndim)
    table: dict[str, int] = {}
    loc = np.zeros(n, dtype=np.int64)
    inline: list[bytes] = []
    length = np.array(arr.length, dtype=np.int64)
    for i in range(n):
        if arr.kind[i] == VIRTUAL:
            u = arr.url[i]
            loc[i] = table.setdefault(u, len(table))
            if length[i] < 0:
                length[i] = stats[u].size
        else:
            loc[i] = len(inline)
            inline.append(arr.inline[i])
    return Manifest(
        coords,
        np.array(arr.kind, dtype=np.uint8),
        loc,
        np.array(arr.offset, dtype=np.int64),
        length,
        urls=list(table),
        inline=inline,
    )


def _columns_manifest(arr: _ArrayRefs, df: Any, record_size: int, fix_url: Any) -> Manifest:
    import pandas as pd

    grid = arr.grid
    # row j of record file r is chunk r * record_size + j, counting in C order
    rows = df.groupby("_record").cumcount().to_numpy()
    index = df["_record"].to_numpy(np.int64) * record_size + rows
    total = int(np.prod(grid)) if grid else 1
    keep_idx = index < total
    path = df["path"].to_numpy(object)
    raw = df["raw"].to_numpy(object) if "raw" in df else np.full(len(df), None, object)
    has_raw = pd.notna(raw) & keep_idx
    has_path = pd.notna(path) & ~has_raw & keep_idx
    # the last record file is padded to record_size rows: rows past the grid are not chunks
    coords_all = np.zeros((len(index), len(grid)), dtype=np.int64)
    if grid:
        coords_all[keep_idx] = np.stack(np.unravel_index(index[keep_idx], grid), axis=1)
    vpath = path[has_path]
    codes, uniques = pd.factorize(vpath)
    urls = [fix_url(u, f"{arr.path}/...") for u in uniques]
    v = Manifest(
        coords_all[has_path],
        np.full(int(has_path.sum()), VIRTUAL, dtype=np.uint8),
        codes,
        df["offset"].to_numpy(np.int64)[has_path],
        df["size"].to_numpy(np.int64)[has_path],
        urls=urls,
    )
    inline = [bytes(b) for b in raw[has_raw]]
    i = Manifest(
        coords_all[has_raw],
        np.full(len(inline), INLINE, dtype=np.uint8),
        np.arange(len(inline)),
        np.zeros(len(inline), dtype=np.int64),
        np.array([len(b) for b in inline], dtype=np.int64),
        inline=inline,
    )
    return Manifest.merge([v, i], arr.ndim)


def _check_ranges(path: str, m: Manifest, stats: Mapping[str, SourceStat]) -> None:
    if not len(m.urls):
        return
    sizes = np.array([stats[u].size for u in m.urls], dtype=np.int64)
    v = m.kind == VIRTUAL
    ends = m.offset[v].astype(np.int64) + m.length[v].astype(np.int64)
    over = ends > sizes[m.loc[v].astype(np.int64)]
    if over.any():
        i = int(np.argmax(over))
        url = m.urls[int(m.loc[v][i])]
        raise InvalidInputError(
            f"a reference of /{path} reads bytes {int(m.offset[v][i])}-{int(ends[i])} of "
            f"{url!r}, which has only {stats[url].size} bytes; the reference set does not "
            "match the file"
        )
