"""Catalog imports: many source files become one dataset along a dimension, in one commit.

``Repo.import_catalog(sources, path, concat_dim="time")`` takes a list of URLs, a glob, a
text file with one URL per line, or a JSON/YAML catalog, and builds one virtual dataset at
``path`` the way ``xarray.open_mfdataset(combine="by_coords")`` would combine the files;
``append_catalog`` adds later sources to such a dataset. The pipeline:

1. *Scan* every source with its format's importer (format recognised by magic bytes; Zarr v2
   stores are directories). This process scans, and so do ``workers - 1`` worker processes
   (spawned, see :func:`_scan_here_and_in_pool`) or the workers of a Dask ``client``. A
   scan returns what the catalog keeps of a source: its layout (what must agree between
   sources), the reference columns of its arrays along the concat dimension, digests of its
   small arrays without that dimension (decoded by zarr), and the stored numbers of its
   concat coordinate. Those are CF-decoded in this process, all sources with the same
   encoding at once (:func:`decode_raw_coordinates`: what xarray's open path gives, so
   files whose time units differ compare correctly). Sources already in the dataset (same
   URL and checksum in its manifests) are recognised by one ``stat`` and skipped without
   being read.
2. *Validate* before anything is written: same variables, dtypes, codecs, chunking and
   decoding attributes everywhere; the coordinate strictly increasing across sources ordered
   by their first value; every source but the last a whole number of chunks long along the
   dimension; variables without the dimension equal in every source (metadata, and decoded
   values when their chunks hold at most 1 MiB). Errors are :class:`InvalidInputError` naming
   the file and the reason.
3. *Write* in batches of ``batch_size`` sources: each variable's chunk coordinates are shifted
   by the chunks before it and added as one columnar manifest per variable (numpy only, no
   object per reference); the concat coordinate is re-encoded with the first source's units
   and calendar (xarray's CF encoding) and written as native chunks, as are the other
   dimension coordinates, so opening the dataset reads no source file. Each batch is one
   journal entry of a durable session (message ``import_catalog /PATH``), so a crashed run
   is continued by running it again: the active session for the same target is joined and
   the sources in it are skipped. The commit comes last; a failure leaves the branch as it
   was.

Until the order is known, scanned sources are held as rows of a few large column blocks
(:class:`_RefTable`), their layouts and digests interned: a few hundred bytes per source
beyond its references. The first source in order, whose groups, static arrays and
attributes the dataset takes, is scanned once more for its whole tree.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import hashlib
import importlib
import json
import math
import os
import posixpath
import sys
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import (
    InvalidInputError,
    NotFoundError,
    ReadOnlyError,
    UnsupportedFeatureError,
    ZarrchiveError,
)
from .format import DELETED, INLINE, NATIVE, VIRTUAL, Manifest
from .importers._base import ImportedTree
from .sources import (
    SourceReader,
    container_of,
    local_path,
    normalize_url,
    plan_requests,
    read_local_ranges,
)
from .zarr_keys import chunk_key_encoder
from .zarr_keys import join as join_path

if TYPE_CHECKING:
    from .repo import AsyncRepo
    from .session import Session

__all__ = [
    "CatalogReport",
    "ScanJob",
    "ScanResult",
    "import_catalog",
    "resolve_catalog",
    "scan_source",
]

#: non-dimension arrays whose chunks hold at most this many bytes are compared by value
HASH_LIMIT = 1 << 20
#: chunk length of the concat coordinate written as native chunks
COORD_CHUNK = 4096
DEFAULT_BATCH = 100
#: without an explicit ``workers``, one more scanning process per this many sources (the
#: calling process is the first; at most one per CPU and 8 in all)
_SOURCES_PER_WORKER = 64
_GLOB_CHARS = "*?["
#: attributes that change how stored values decode: they must agree across sources
_DECODE_ATTRS = ("scale_factor", "add_offset", "_FillValue", "missing_value", "_Unsigned", "dtype")
_CATALOG_KEYS = {"sources", "path", "concat_dim", "storage_options"}
#: bytes read from the start of a remote source to recognise it (see :func:`_detect`)
_REMOTE_HEAD = 64 * 1024
_MISSING = object()


# ---------------------------------------------------------------------------------- report
@dataclass(frozen=True, slots=True)
class CatalogReport:
    """What one ``import_catalog`` / ``append_catalog`` run did."""

    path: str
    #: sources added by the commit (including those a crashed earlier run had written)
    sources: int
    #: sources that were already in the dataset
    skipped: int
    #: chunk references the commit added or changed
    references: int
    #: bytes of source data those references point at
    bytes_referenced: int
    seconds: float
    #: the new commit, or None when there was nothing to add
    commit: str | None

    def __str__(self) -> str:
        where = f"/{self.path}"
        if self.commit is None:
            return (
                f"nothing to add to {where}: all {self.skipped} sources are already in it; "
                f"no commit made ({self.seconds:.1f} s)"
            )
        skipped = f", {self.skipped} already there" if self.skipped else ""
        return (
            f"{where}: {self.sources} sources added{skipped}; {self.references:,} chunk "
            f"references ({self.bytes_referenced:,} bytes) in {self.seconds:.1f} s; "
            f"commit {self.commit}"
        )


# ---------------------------------------------------------------------------------- catalog
@dataclass(frozen=True, slots=True)
class SourceSpec:
    url: str
    options: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    sources: tuple[SourceSpec, ...]
    path: str | None = None
    concat_dim: str | None = None


_FILESYSTEMS: dict[tuple[str, str], Any] = {}
_READER: list[SourceReader] = []


def _url_to_fs(url: str, options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """``fsspec.core.url_to_fs`` with one (synchronous) filesystem per protocol and options
    in this process: with ``skip_instance_cache`` every call would open a new client."""
    import fsspec

    if "::" in url:  # chained filesystems: nothing to share
        return fsspec.core.url_to_fs(url, **dict(options or {}))
    protocol = fsspec.utils.get_protocol(url)
    key = (protocol, repr(sorted((options or {}).items())))
    fs = _FILESYSTEMS.get(key)
    if fs is None:
        fs, path = fsspec.core.url_to_fs(url, **dict(options or {}))
        _FILESYSTEMS[key] = fs
        return fs, path
    fs.invalidate_cache()  # listings may have changed since the last call
    return fs, fs._strip_protocol(url)


def _process_reader() -> SourceReader:
    """One reader per process for ``stat`` (its async filesystems live on zarrchive's loop)."""
    if not _READER:
        _READER.append(SourceReader())
    return _READER[0]


def _merged(*options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for o in options:
        if o:
            out.update(o)
    return out or None


def _is_glob(s: str) -> bool:
    return any(c in s for c in _GLOB_CHARS)


def _expand_glob(pattern: str, options: Mapping[str, Any] | None) -> list[str]:
    fs, path = _url_to_fs(pattern, options)
    found = sorted(fs.glob(path))
    if not found:
        raise NotFoundError(f"the glob {pattern!r} matches no source")
    return [fs.unstrip_protocol(p) for p in found]


def _absolute(entry: str, base: str | None) -> str:
    """``entry`` resolved against the directory ``base`` (a local path or URL prefix)."""
    if "://" in entry or base is None or os.path.isabs(entry):
        return entry
    lp = local_path(base)
    if lp is not None:
        return os.path.join(lp, entry)
    return posixpath.join(base, entry)


def _specs(
    entries: Iterable[Any],
    options: Mapping[str, Any] | None,
    base: str | None,
    where: str,
) -> list[SourceSpec]:
    out: list[SourceSpec] = []
    for entry in entries:
        opts = options
        if isinstance(entry, Mapping):
            url = entry.get("url", entry.get("uri", entry.get("path")))
            extra = set(entry) - {"url", "uri", "path", "storage_options"}
            if extra or not isinstance(url, str):
                raise InvalidInputError(
                    f"{where}: a source entry must be a string or a mapping with 'url' (and "
                    f"optionally 'storage_options'), got {dict(entry)!r}"
                )
            so = entry.get("storage_options")
            if so is not None and not isinstance(so, Mapping):
                raise InvalidInputError(f"{where}: storage_options of {url!r} must be a mapping")
            opts = _merged(options, so)
        elif isinstance(entry, str | os.PathLike):
            url = os.fspath(entry)
        else:
            raise InvalidInputError(f"{where}: a source must be a URL or path, got {entry!r}")
        if not url.strip():
            raise InvalidInputError(f"{where}: empty source URL")
        url = _absolute(url.strip(), base)
        if _is_glob(url):
            out += [SourceSpec(normalize_url(u), opts) for u in _expand_glob(url, opts)]
        else:
            out.append(SourceSpec(normalize_url(url), opts))
    return out


def _catalog_from_doc(
    doc: Any, options: Mapping[str, Any] | None, base: str | None, where: str
) -> Catalog:
    if isinstance(doc, list):
        return Catalog(tuple(_specs(doc, options, base, where)))
    if not isinstance(doc, Mapping):
        raise InvalidInputError(f"{where}: a catalog must be a mapping or a list of sources")
    unknown = set(doc) - _CATALOG_KEYS
    if unknown:
        raise InvalidInputError(
            f"{where}: unknown catalog keys {sorted(unknown)}; a catalog has "
            f"{sorted(_CATALOG_KEYS)}"
        )
    if not isinstance(doc.get("sources"), list):
        raise InvalidInputError(f"{where}: the catalog needs a 'sources' list")
    so = doc.get("storage_options")
    if so is not None and not isinstance(so, Mapping):
        raise InvalidInputError(f"{where}: 'storage_options' must be a mapping")
    for key in ("path", "concat_dim"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise InvalidInputError(f"{where}: {key!r} must be a string")
    return Catalog(
        tuple(_specs(doc["sources"], _merged(options, so), base, where)),
        doc.get("path"),
        doc.get("concat_dim"),
    )


def _catalog_from_file(name: str, options: Mapping[str, Any] | None) -> Catalog:
    """A single source, a text file of URLs, or a JSON / YAML catalog file."""
    from .importers._detect import detect_format

    fs, path = _url_to_fs(name, options)
    try:
        if fs.isdir(path):
            return Catalog((SourceSpec(normalize_url(name), _merged(options)),))
        head = fs.cat_file(path, start=0, end=4096)
    except FileNotFoundError:
        raise NotFoundError(f"catalog or source {name!r} does not exist") from None
    try:
        detect_format(head)
        return Catalog((SourceSpec(normalize_url(name), _merged(options)),))
    except UnsupportedFeatureError:
        pass
    text = fs.cat_file(path).decode("utf-8", errors="replace")
    url = fs.unstrip_protocol(path) if "://" in name else os.path.abspath(path)
    base = posixpath.dirname(url) if "://" in url else os.path.dirname(url)
    lower = path.lower()
    if lower.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise InvalidInputError(
                f"{name} is a YAML catalog, but PyYAML is not installed; install pyyaml or "
                "write the catalog as JSON"
            ) from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"{name} is not valid YAML: {exc}") from exc
        return _catalog_from_doc(doc, options, base, name)
    if lower.endswith(".json") or text.lstrip().startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"{name} is not valid JSON: {exc}") from exc
        return _catalog_from_doc(doc, options, base, name)
    lines = [ln.strip() for ln in text.splitlines()]
    return Catalog(
        tuple(_specs([ln for ln in lines if ln and not ln.startswith("#")], options, base, name))
    )


def resolve_catalog(sources: Any, storage_options: Mapping[str, Any] | None = None) -> Catalog:
    """The sources (and catalog settings) described by ``sources``.

    ``sources``: a list of URLs or paths (or ``{"url": ..., "storage_options": ...}``
    mappings), a glob (local or fsspec URL), a text file with one URL per line (``#``
    comments; relative entries are relative to the file), a JSON or YAML catalog file or
    mapping with ``sources`` and optionally ``path``, ``concat_dim`` and ``storage_options``,
    or a single source. Globs inside lists and catalogs are expanded.
    """
    if isinstance(sources, os.PathLike):
        sources = os.fspath(sources)
    if isinstance(sources, str):
        if not sources:
            raise InvalidInputError("sources must not be empty")
        if _is_glob(sources):
            urls = _expand_glob(sources, storage_options)
            cat = Catalog(
                tuple(SourceSpec(normalize_url(u), _merged(storage_options)) for u in urls)
            )
        else:
            cat = _catalog_from_file(sources, storage_options)
    elif isinstance(sources, Mapping):
        cat = _catalog_from_doc(sources, storage_options, None, "catalog")
    elif isinstance(sources, Iterable) and not isinstance(sources, bytes):
        cat = Catalog(tuple(_specs(list(sources), storage_options, None, "sources")))
    else:
        raise InvalidInputError(
            f"sources must be a list of URLs, a glob, a text file or a catalog, got {sources!r}"
        )
    if not cat.sources:
        raise InvalidInputError("the catalog lists no sources")
    seen: set[str] = set()
    for spec in cat.sources:
        if spec.url in seen:
            raise InvalidInputError(f"source {spec.url} is listed more than once")
        seen.add(spec.url)
    return cat


# ---------------------------------------------------------------------------------- scanning
@dataclass(slots=True)
class ScanJob:
    """One source for a worker. ``known``: checksums of URLs of this source (the URL itself
    or, for a store, URLs below it) already in the dataset."""

    url: str
    options: dict[str, Any] | None
    concat_dim: str
    known: dict[str, str | None] = field(default_factory=dict)
    hash_limit: int = HASH_LIMIT
    #: send back only what the catalog keeps of a source (its layout and reference columns,
    #: not its tree): less to pickle and less work for the importing process
    compact: bool = False


@dataclass(slots=True)
class ScanResult:
    """What a worker sends back (picklable)."""

    url: str
    format: str = ""
    skipped: bool = False
    tree: ImportedTree | None = None
    #: decoded values of the concat coordinate (None while only ``raw`` is known)
    values: np.ndarray | None = None
    #: the concat coordinate's stored numbers (zarr-decoded, not CF-decoded): workers leave
    #: CF decoding to the importing process, which decodes all sources at once
    raw: np.ndarray | None = None
    #: the coordinate's decoded attributes and CF encoding (units, calendar, dtype)
    coord_attrs: dict[str, Any] = field(default_factory=dict)
    coord_encoding: dict[str, Any] = field(default_factory=dict)
    #: arrays without the concat dimension: digest of their decoded values (None: too big)
    digests: dict[str, str | None] = field(default_factory=dict)
    #: raw chunks of the dimension coordinates without the concat dimension (lat, lon, ...)
    index_chunks: dict[str, dict[tuple[int, ...], bytes]] = field(default_factory=dict)
    #: compact results (``ScanJob.compact``) carry these instead of ``tree``: what must agree
    #: between sources, the reference columns of the arrays along the concat dimension, and
    #: the concat coordinate's zarr.json
    layout: _Layout | None = None
    packed: _Packed | None = None
    coord_meta: dict[str, Any] | None = None


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


def _detect(url: str, options: Mapping[str, Any] | None) -> tuple[str, bytes]:
    """The source's format, and its first bytes (remote sources: the first 64 KiB, which
    often hold a small file's coordinates too; local ones: 4 KiB, enough to recognise it)."""
    from .importers._detect import detect_format

    path = local_path(url)
    try:
        if path is not None:
            if os.path.isdir(path):
                return _zarr_dir(url, os.listdir(path)), b""
            with open(path, "rb") as f:
                head = f.read(4096)
        else:  # reading first saves object stores a listing per file
            fs, p = _url_to_fs(url, options)
            try:
                head = fs.cat_file(p, start=0, end=_REMOTE_HEAD)
            except (FileNotFoundError, IsADirectoryError):
                if not fs.isdir(p):
                    raise FileNotFoundError(url) from None
                names = [posixpath.basename(x) for x in fs.ls(p, detail=False)]
                return _zarr_dir(url, names), b""
    except FileNotFoundError:
        raise NotFoundError(f"source {url} does not exist") from None
    except OSError as exc:
        raise InvalidInputError(f"source {url} cannot be read: {exc}") from exc
    return detect_format(head[:4096], where=url), bytes(head)


def _zarr_dir(url: str, names: Sequence[str]) -> str:
    if {".zgroup", ".zattrs", ".zmetadata", ".zarray"} & set(names):
        return "zarr_v2"
    raise UnsupportedFeatureError(
        f"{url} is a directory but not a Zarr v2 store (no .zgroup or .zattrs); list the "
        "files in it instead"
    )


def _importer(fmt: str, url: str) -> Any:
    from .repo import _MODULE_OF

    name = _MODULE_OF[fmt]
    try:
        return importlib.import_module(f"zarrchive.importers.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"zarrchive.importers.{name}":
            raise
        raise UnsupportedFeatureError(
            f"{url} is a {fmt} source, but this zarrchive has no {fmt} importer yet"
        ) from None


async def _scan_tree(job: ScanJob, fmt: str | None) -> ImportedTree | None:
    """The source's tree, or None when it is already in the dataset (``job.known``).
    ``fmt`` is None only for a URL in ``job.known``: a file, skipped or refused here."""
    reader = _process_reader()
    stats: dict[str, Any] = {}

    async def stat(u: str) -> Any:
        s = stats.get(u)
        if s is None:
            s = stats[u] = await reader.stat(u, job.options)
        return s

    if fmt != "zarr_v2":
        try:
            st = await stat(job.url)
        except FileNotFoundError:
            raise NotFoundError(f"source {job.url} does not exist") from None
        known = job.known.get(job.url, _MISSING)
        if known is not _MISSING:
            if known == st.checksum:
                return None
            raise InvalidInputError(_changed(job.url, known, st.checksum))
    assert fmt is not None
    tree = await _importer(fmt, job.url).scan(job.url, stat=stat, storage_options=job.options)
    if fmt == "zarr_v2" and job.known:
        urls: dict[str, str | None] = {}
        for path, arr in tree.arrays.items():
            if job.concat_dim in _dims(arr.meta) and path != job.concat_dim:
                urls.update(zip(arr.refs.urls, arr.refs.checksums, strict=True))
        seen = {u: cs for u, cs in urls.items() if u in job.known}
        for u, cs in seen.items():
            if job.known[u] != cs:
                raise InvalidInputError(_changed(u, job.known[u], cs))
        if seen and len(seen) == len(urls):
            return None
        if seen:
            raise InvalidInputError(
                f"{job.url}: {len(seen)} of its {len(urls)} chunk objects are already in the "
                "dataset and the others are not; the store changed since it was imported"
            )
    return tree


def _changed(url: str, old: Any, new: Any) -> str:
    return (
        f"{url} is already in the dataset but changed since it was imported (recorded "
        f"{old}, now {new}); a catalog import does not replace data: remove it from the "
        "catalog, or re-import the dataset"
    )


def _read_ranges(
    manifests: Mapping[str, Manifest],
    options: Mapping[str, Any] | None,
    head: tuple[str, bytes] = ("", b""),
) -> dict[str, dict[tuple[int, ...], bytes]]:
    """The bytes of every chunk of several arrays (``name -> references``) of one source.

    Blocking. Each local file is opened once (and its checksum checked against the one its
    references recorded); remote ranges are fetched in one ``cat_ranges`` call, except those
    within ``head`` (a remote URL and its first bytes, already read).
    """
    out: dict[str, dict[tuple[int, ...], bytes]] = {name: {} for name in manifests}
    local: dict[tuple[str, str | None], list[tuple[str, tuple[int, ...], int, int]]] = {}
    remote: list[tuple[str, tuple[int, ...], str, int, int]] = []
    for name, refs in manifests.items():
        kinds, locs = refs.kind.tolist(), refs.loc.tolist()
        offsets, lengths = refs.offset.tolist(), refs.length.tolist()
        for i, row in enumerate(refs.coords.tolist()):
            c = tuple(row)
            if kinds[i] == INLINE:
                out[name][c] = bytes(refs.inline[locs[i]])
            elif kinds[i] == VIRTUAL:
                url = refs.urls[locs[i]]
                path = local_path(url)
                if path is None and url == head[0] and offsets[i] + lengths[i] <= len(head[1]):
                    out[name][c] = head[1][offsets[i] : offsets[i] + lengths[i]]
                elif path is None:
                    remote.append((name, c, url, offsets[i], lengths[i]))
                else:
                    key = (path, refs.checksums[locs[i]])
                    local.setdefault(key, []).append((name, c, offsets[i], lengths[i]))
            else:
                raise UnsupportedFeatureError("an importer returned native chunks")
    for (path, checksum), items in local.items():
        data = read_local_ranges(path, [(off, n) for *_, off, n in items], checksum)
        for (name, c, _, _), d in zip(items, data, strict=True):
            out[name][c] = d
    if remote:
        _read_remote(remote, options, out)
    return out


def _read_remote(
    remote: Sequence[tuple[str, tuple[int, ...], str, int, int]],
    options: Mapping[str, Any] | None,
    out: dict[str, dict[tuple[int, ...], bytes]],
) -> None:
    """Remote ranges ``(name, coord, url, offset, length)`` into ``out``: ranges of one
    object close to each other (a file's small arrays usually are) share one request, and
    all requests go out in one ``cat_ranges`` call."""
    fs, _ = _url_to_fs(remote[0][2], options)
    by_url: dict[str, list[int]] = {}
    for i, r in enumerate(remote):
        by_url.setdefault(r[2], []).append(i)
    spans: list[tuple[str, int, int, list[int]]] = []
    for url, items in by_url.items():
        plan = plan_requests(
            [remote[i][3] for i in items], [remote[i][4] for i in items], 64 * 1024, 8 << 20
        )
        spans += [(url, start, end, [items[j] for j in members]) for start, end, members in plan]
    data = fs.cat_ranges(
        [fs._strip_protocol(u) for u, *_ in spans], [s[1] for s in spans], [s[2] for s in spans]
    )
    for (url, start, _, members), d in zip(spans, data, strict=True):
        if isinstance(d, BaseException):
            raise InvalidInputError(f"reading {url} failed: {d}") from d
        for i in members:
            name, c, _, offset, n = remote[i]
            piece = bytes(d[offset - start : offset - start + n])
            if len(piece) != n:
                raise InvalidInputError(f"{url} is shorter than its references say")
            out[name][c] = piece


#: parsed zarr metadata of the small arrays a worker decodes, by canonical zarr.json
_PARSED: dict[str, Any] = {}
#: digest of decoded values by metadata and chunk bytes (see :func:`_raw_key`)
_DIGESTS: dict[str, str] = {}
_CACHE_SIZE = 64


def _meta_key(meta: Mapping[str, Any]) -> str:
    return json.dumps(meta, sort_keys=True, default=str)


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = value


def _decode_plain(
    meta: Mapping[str, Any], chunks: Mapping[tuple[int, ...], bytes]
) -> np.ndarray | None:
    """The array's value when its only codec is ``bytes`` (plain numbers in C order, as the
    concat coordinate of most NetCDF files is stored) and every chunk is present; None when
    zarr has to decode it."""
    codecs = meta.get("codecs") or []
    if len(codecs) != 1 or codecs[0].get("name") != "bytes":
        return None
    try:
        dtype = np.dtype(meta["data_type"])
        grid = _chunk_shape(meta)
    except (TypeError, KeyError, UnsupportedFeatureError):
        return None
    if dtype.kind not in "biuf" or meta.get("storage_transformers"):
        return None
    shape = [int(n) for n in meta["shape"]]
    counts = [-(-n // c) for n, c in zip(shape, grid, strict=True)]
    if len(chunks) != math.prod(counts):
        return None
    endian = ((codecs[0].get("configuration") or {}).get("endian")) or "little"
    dtype = dtype.newbyteorder("<" if endian == "little" else ">")
    out = np.empty(
        [n * c for n, c in zip(counts, grid, strict=True)], dtype=dtype.newbyteorder("=")
    )
    for coord, data in chunks.items():
        if len(coord) != len(grid) or len(data) != dtype.itemsize * math.prod(grid):
            return None
        where = tuple(slice(i * c, (i + 1) * c) for i, c in zip(coord, grid, strict=True))
        out[where] = np.frombuffer(data, dtype=dtype).reshape(grid)
    # a copy: the view would keep the padded chunk (often 4 KiB for one value) alive
    return out[tuple(slice(0, n) for n in shape)].copy()


async def _decode_arrays(
    arrays: Mapping[str, tuple[Mapping[str, Any], Mapping[tuple[int, ...], bytes]]],
) -> dict[str, np.ndarray]:
    """Each array's whole value, decoded by zarr from its chunk bytes, all at once.

    The arrays are opened from their metadata parsed once per process (a catalog's sources
    share it), over a memory store holding the chunks: one zarr read per array, no files.
    """
    from zarr import AsyncArray
    from zarr.core.buffer import cpu
    from zarr.storage import MemoryStore, StorePath

    async def one(name: str, meta: Mapping[str, Any], chunks: Mapping[Any, bytes]) -> np.ndarray:
        key = _meta_key(meta)
        parsed = _PARSED.get(key)
        encode = chunk_key_encoder(meta)
        store = MemoryStore(
            {f"a/{encode(c)}": cpu.Buffer.from_bytes(data) for c, data in chunks.items()}
        )
        arr = AsyncArray(metadata=parsed or dict(meta), store_path=StorePath(store, "a"))
        if parsed is None:
            _remember(_PARSED, key, arr.metadata)
        return np.asarray(await arr.getitem(...))

    names = list(arrays)
    values = await asyncio.gather(*(one(n, *arrays[n]) for n in names))
    return dict(zip(names, values, strict=True))


def _memory_store(
    arrays: Mapping[str, tuple[Mapping[str, Any], Mapping[tuple[int, ...], bytes]]],
) -> Any:
    """A zarr MemoryStore holding ``name -> (zarr.json, chunk bytes)`` under a root group."""
    from zarr.core.buffer import cpu
    from zarr.storage import MemoryStore

    group = {"zarr_format": 3, "node_type": "group", "attributes": {}}
    d: dict[str, Any] = {"zarr.json": cpu.Buffer.from_bytes(json.dumps(group).encode())}
    for name, (meta, chunks) in arrays.items():
        d[f"{name}/zarr.json"] = cpu.Buffer.from_bytes(json.dumps(meta).encode())
        key = chunk_key_encoder(meta)
        for c, data in chunks.items():
            d[f"{name}/{key(c)}"] = cpu.Buffer.from_bytes(bytes(data))
    return MemoryStore(d)


def decode_coordinate(
    name: str, meta: Mapping[str, Any], chunks: Mapping[tuple[int, ...], bytes]
) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]]:
    """Decoded values, decoded attributes and CF encoding of a 1-d coordinate from its chunk
    bytes, as xarray reads it from the repository: its Zarr backend reads the attributes
    (``_FillValue`` included), CF decoding is xarray's (blocking: not on the I/O loop)."""
    import xarray as xr

    store = _memory_store({name: (meta, chunks)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_zarr(store, zarr_format=3, consolidated=False, chunks=None)
        var = ds[name].variable
        values = np.asarray(var.values)
    enc = {k: var.encoding[k] for k in ("units", "calendar", "dtype") if k in var.encoding}
    return values, dict(var.attrs), enc


def _cf_decode(
    name: str, raw: np.ndarray, attrs: Mapping[str, Any]
) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]]:
    """CF decoding of a 1-d coordinate's stored values, as ``xarray.open_dataset`` does it
    (``decode_cf_variables`` with its defaults) given the attributes its backend read."""
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decoded, _, _ = xr.conventions.decode_cf_variables(
            {name: xr.Variable((name,), raw, dict(attrs))}, {}
        )
        var = decoded[name]
        values = np.asarray(var.values)
    enc = {k: var.encoding[k] for k in ("units", "calendar", "dtype") if k in var.encoding}
    return values, dict(var.attrs), enc


def _backend_attrs(
    name: str, meta: Mapping[str, Any], chunks: Mapping[tuple[int, ...], bytes]
) -> dict[str, Any] | None:
    """The attributes xarray's Zarr backend gives the array before any CF decoding (its
    ``_FillValue`` handling included); None if this xarray does not expose them so."""
    try:
        from xarray.backends.zarr import ZarrStore

        store = ZarrStore.open_group(
            _memory_store({name: (meta, chunks)}), mode="r", zarr_format=3, consolidated=False
        )
        return dict(store.open_store_variable(name).attrs)
    except Exception:  # noqa: BLE001 - a private API moved: use xarray's whole open path
        return None


def _same_decoding(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    (va, aa, ea), (vb, ab, eb) = a, b
    if va.dtype != vb.dtype or va.shape != vb.shape or repr(aa) != repr(ab) or ea != eb:
        return False
    try:
        return bool(np.array_equal(va, vb, equal_nan=va.dtype.kind in "fcmM"))
    except TypeError:  # object arrays (cftime dates): no NaN to care about
        return bool(np.array_equal(va, vb))


#: what of a coordinate's zarr.json decides how its stored numbers decode
_DECODING_KEYS = ("data_type", "fill_value", "attributes", "dimension_names")


def decoding_key(meta: Mapping[str, Any]) -> str:
    return json.dumps({k: meta.get(k) for k in _DECODING_KEYS}, sort_keys=True, default=str)


def _plain(meta: Mapping[str, Any], raw: np.ndarray) -> tuple[dict[str, Any], dict[Any, bytes]]:
    """``meta`` and chunk bytes of a 1-d array holding ``raw`` in one uncompressed chunk: to
    xarray the same variable as the original array (same type, fill value, attributes)."""
    n = max(len(raw), 1)
    plain = {k: v for k, v in meta.items() if k not in ("codecs", "chunk_grid", "shape")}
    plain["shape"] = [len(raw)]
    plain["chunk_grid"] = {"name": "regular", "configuration": {"chunk_shape": [n]}}
    plain["chunk_key_encoding"] = {"name": "default", "configuration": {"separator": "/"}}
    plain["codecs"] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    data = np.zeros(n, dtype=raw.dtype)
    data[: len(raw)] = raw
    return plain, {(0,): data.astype(data.dtype.newbyteorder("<")).tobytes()}


def decode_raw_coordinates(
    name: str, meta: Mapping[str, Any], raws: Sequence[np.ndarray]
) -> list[tuple[np.ndarray, dict[str, Any], dict[str, Any]]]:
    """:func:`decode_coordinate` of many sources' concat coordinates that share
    :func:`decoding_key` (``raws``: their stored numbers), in one CF decoding.

    Opening each source's coordinate with xarray costs milliseconds, and importing xarray's
    time decoding into every worker process a second. Here the first source goes through
    xarray's whole open path; the others are CF-decoded together, from the attributes xarray's
    Zarr backend read for that first one, with ``xarray.conventions.decode_cf_variables``
    (what ``open_dataset`` runs). That is used only if it reproduces the whole path's result
    for the first source; otherwise each source goes through the whole path (slow, exact).
    Errors name no source: callers decode one by one to find it.
    """
    plain, chunks = _plain(meta, raws[0])
    whole = decode_coordinate(name, plain, chunks)
    if len(raws) == 1:
        return [whole]
    attrs = _backend_attrs(name, plain, chunks)
    if attrs is not None:
        with contextlib.suppress(Exception):  # the shortcut fails where the whole path works
            values, vattrs, enc = _cf_decode(name, np.concatenate(raws), attrs)
            n0 = len(raws[0])
            if values.shape == (sum(map(len, raws)),) and _same_decoding(
                whole, (values[:n0], vattrs, enc)
            ):
                out, pos = [], 0
                for r in raws:
                    out.append((values[pos : pos + len(r)], vattrs, enc))
                    pos += len(r)
                return out
    return [whole] + [decode_coordinate(name, *_plain(meta, r)) for r in raws[1:]]


def _hash_values(values: np.ndarray) -> str:
    h = hashlib.sha256(f"{values.dtype.str}{values.shape}".encode())
    if values.dtype.kind == "O":
        h.update(repr(values.tolist()).encode())
    else:
        h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def _digest(meta: Mapping[str, Any], chunks: Mapping[tuple[int, ...], bytes]) -> str:
    """A digest of an array's stored values (decoded by zarr, not CF-decoded; blocking)."""
    import zarr

    store = _memory_store({"a": (meta, chunks)})
    return _hash_values(np.asarray(zarr.open_array(store, path="a", mode="r")[...]))


def scan_source(job: ScanJob) -> ScanResult:
    """Scan one source (blocking; runs in a worker process, a thread or on a Dask worker)."""
    from ._sync import sync

    try:
        # a file already in the dataset is decided by one stat: no need to recognise it
        fmt, head = (None, b"") if job.url in job.known else _detect(job.url, job.options)
        tree = sync(_scan_tree(job, fmt))
        if tree is None:
            return ScanResult(job.url, fmt or "", skipped=True)
        assert fmt is not None
        return _describe(job, fmt, tree, head)
    except ZarrchiveError as exc:
        if job.url in str(exc):
            raise
        try:
            new = type(exc)(f"{job.url}: {exc}")
        except TypeError:
            raise exc from None
        raise new from exc
    except Exception as exc:
        raise InvalidInputError(f"{job.url}: scanning failed: {type(exc).__name__}: {exc}") from exc


def _describe(job: ScanJob, fmt: str, tree: ImportedTree, head: bytes = b"") -> ScanResult:
    """The concat coordinate's stored values and a digest of every small array without the
    concat dimension (their chunks read in one go and decoded together, without xarray)."""
    from ._sync import sync

    dim = job.concat_dim
    coord = tree.arrays.get(dim)
    if coord is None:
        raise InvalidInputError(
            f"{job.url} has no coordinate variable {dim!r}; the catalog is combined along it "
            "(pass concat_dim= to choose another dimension)"
        )
    if _dims(coord.meta) != [dim]:
        raise InvalidInputError(
            f"{job.url}: {dim!r} is not a 1-d coordinate along dimension {dim!r} "
            f"(its dimensions are {_dims(coord.meta)})"
        )
    digests: dict[str, str | None] = {}
    small = {dim: coord}
    for path, arr in tree.arrays.items():
        if dim in _dims(arr.meta):
            continue
        if int(arr.refs.length.sum()) > job.hash_limit:
            digests[path] = None
        else:
            small[path] = arr
    chunks = _read_ranges({p: a.refs for p, a in small.items()}, job.options, (job.url, head))
    # equal chunk bytes under equal metadata decode to equal values: a source's static arrays
    # (latitude, longitude, ...) are usually byte for byte those of the sources before it
    raw_keys = {p: _raw_key(a.meta, chunks[p]) for p, a in small.items() if p != dim}
    todo = {p: (small[p].meta, chunks[p]) for p, k in raw_keys.items() if k not in _DIGESTS}
    todo[dim] = (coord.meta, chunks[dim])
    decoded = {p: v for p, (m, c) in todo.items() if (v := _decode_plain(m, c)) is not None}
    rest = {p: mc for p, mc in todo.items() if p not in decoded}
    if rest:
        decoded.update(sync(_decode_arrays(rest)))
    res = ScanResult(job.url, fmt, tree=tree)
    if decoded[dim].dtype.kind in "biuf":
        res.raw = decoded[dim]
    else:  # strings, dates stored as such: decoded here, through xarray's whole open path
        res.values, res.coord_attrs, res.coord_encoding = decode_coordinate(
            dim, coord.meta, chunks[dim]
        )
    for path, key in raw_keys.items():
        if path in decoded:
            _remember(_DIGESTS, key, _hash_values(decoded[path]))
        digests[path] = _DIGESTS[key]
        if _is_index(path, small[path].meta):
            res.index_chunks[path] = chunks[path]
    res.digests = digests
    if job.compact:
        metas = {p: a.meta for p, a in tree.arrays.items()}
        res.layout = _layout_of(tree.groups, metas, dim, job.url)
        _check_steps(
            job.url, res.layout, metas, dim, len(res.values if res.raw is None else res.raw)
        )  # type: ignore[arg-type]
        res.packed = _pack(tree, res.layout)
        res.coord_meta = coord.meta
        res.tree = None
        res.index_chunks = {}
    return res


def _check_steps(
    url: str, layout: _Layout, metas: Mapping[str, Mapping[str, Any]], dim: str, steps: int
) -> None:
    for v in layout.varying:
        n = metas[v.path]["shape"][v.axis]
        if n != steps:
            raise InvalidInputError(
                f"{url}: variable {v.path!r} has {n} steps along {dim!r}, but the coordinate "
                f"has {steps}"
            )


def _raw_key(meta: Mapping[str, Any], chunks: Mapping[tuple[int, ...], bytes]) -> str:
    h = hashlib.sha256(_meta_key(meta).encode())
    for c in sorted(chunks):
        h.update(repr(c).encode())
        h.update(len(chunks[c]).to_bytes(8, "little"))
        h.update(chunks[c])
    return h.hexdigest()


# ---------------------------------------------------------------------------------- layouts
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


# ---------------------------------------------------------------------------------- packing
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


@dataclass(slots=True)
class _Source:
    url: str
    options: dict[str, Any] | None
    layout: _Layout
    digests: tuple[tuple[str, str | None], ...]
    table: _RefTable
    rows: _Rows
    #: the concat coordinate's decoded values (empty until :meth:`_Collector.decode`)
    values: np.ndarray
    #: its stored numbers, until decoded; and what decides how they decode
    raw: np.ndarray | None = None
    decoding: str = ""
    #: decoded attributes and CF encoding of the coordinate (shared by a decoding group)
    coord: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    #: the whole scan result: only the first source in order gets one (scanned again)
    result: ScanResult | None = None

    @property
    def extent(self) -> int:
        return len(self.values)

    @property
    def first(self) -> Any:
        return self.values[0]

    @property
    def units(self) -> Any:
        return self.coord[1].get("units")

    @property
    def refs(self) -> _Packed:
        return self.table.packed(self.rows)


class _Collector:
    """Packs scan results as they arrive: per source only its reference columns and its
    coordinate values are kept (no trees), so memory grows by bytes per source."""

    def __init__(self, dim: str) -> None:
        self.dim = dim
        self.sources: list[_Source] = []
        self.skipped: list[str] = []
        #: URL prefixes of the skipped sources (a file's folder, a store itself)
        self.skipped_prefixes: list[str] = []
        self._interned: dict[Any, Any] = {}
        self.table = _RefTable()
        #: decoding key -> the coordinate's zarr.json of the first source with it
        self._decoding_meta: dict[str, dict[str, Any]] = {}

    def _intern(self, value: Any) -> Any:
        return self._interned.setdefault(value, value)

    def add(self, res: ScanResult, options: dict[str, Any] | None) -> None:
        if res.skipped:
            self.skipped.append(res.url)
            self.skipped_prefixes.append(
                res.url.rstrip("/") + "/" if res.format == "zarr_v2" else container_of(res.url)
            )
            return
        if res.tree is not None:
            metas = {p: a.meta for p, a in res.tree.arrays.items()}
            layout = _layout_of(res.tree.groups, metas, self.dim, res.url)
            steps = res.values if res.values is not None else res.raw
            _check_steps(res.url, layout, metas, self.dim, len(steps))  # type: ignore[arg-type]
            packed, coord_meta = _pack(res.tree, layout), res.tree.arrays[self.dim].meta
        else:
            assert res.layout is not None and res.packed is not None
            assert res.coord_meta is not None
            layout, packed, coord_meta = res.layout, res.packed, res.coord_meta
        src = _Source(
            res.url,
            options,
            self._intern(layout),
            self._intern(tuple(sorted(res.digests.items()))),
            self.table,
            self.table.add(packed),
            _NO_VALUES,
        )
        if res.values is None:
            src.raw = res.raw
            src.decoding = self._intern(decoding_key(coord_meta))
            self._decoding_meta.setdefault(src.decoding, coord_meta)
        else:
            self._set_values(src, res.values, (res.coord_attrs, res.coord_encoding))
        self.sources.append(src)

    def decode(self) -> None:
        """CF-decode every source's coordinate, one batch per decoding key (blocking)."""
        groups: dict[str, list[_Source]] = {}
        for src in self.sources:
            if src.raw is not None:
                groups.setdefault(src.decoding, []).append(src)
        for key, members in groups.items():
            meta = self._decoding_meta[key]
            raws = [s.raw for s in members]
            try:
                decoded = decode_raw_coordinates(self.dim, meta, raws)  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - one by one, to name the source that fails
                decoded = []
                for src in members:
                    try:
                        decoded += decode_raw_coordinates(self.dim, meta, [src.raw])  # type: ignore[list-item]
                    except Exception as exc:
                        raise InvalidInputError(
                            f"{src.url}: its {self.dim!r} coordinate cannot be decoded: "
                            f"{type(exc).__name__}: {exc}"
                        ) from exc
            for src, (values, attrs, enc) in zip(members, decoded, strict=True):
                self._set_values(src, values, (attrs, enc))
                src.raw = None

    def _set_values(self, src: _Source, values: np.ndarray, coord: tuple[Any, Any]) -> None:
        if values.ndim != 1 or len(values) == 0:
            raise InvalidInputError(f"{src.url}: it has no steps along {self.dim!r}")
        if _has_missing(values):
            raise InvalidInputError(f"{src.url}: its {self.dim!r} coordinate has missing values")
        src.values = values
        src.coord = coord


_NO_VALUES = np.zeros(0)


def _has_missing(values: np.ndarray) -> bool:
    if values.dtype.kind in "mM":
        return bool(np.isnat(values).any())
    if values.dtype.kind in "fc":
        return bool(np.isnan(values).any())
    return any(v is None for v in values) if values.dtype.kind == "O" else False


def _lt(a: Any, b: Any) -> bool:
    try:
        return bool(a < b)
    except TypeError as exc:
        raise InvalidInputError(f"coordinate values {a!r} and {b!r} cannot be compared") from exc


# ---------------------------------------------------------------------------------- existing
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
    from .errors import UnauthorizedSourceError

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


# ---------------------------------------------------------------------------------- encoding
def encode_coordinate(
    name: str, values: np.ndarray, encoding: Mapping[str, Any]
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """``values`` CF-encoded with ``encoding`` (units, calendar, dtype), and the units and
    calendar attributes to store them under; None when the stored numbers would not decode
    back to exactly ``values`` under those attributes (xarray may silently pick other units
    when the requested ones cannot represent the values: that is caught here too)."""
    import xarray as xr

    var = xr.Variable((name,), values, encoding=dict(encoding))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            enc = xr.conventions.encode_cf_variable(var, name=name)
            attrs = {
                k: encoding[k] if k in encoding else enc.attrs[k]
                for k in ("units", "calendar")
                if k in encoding or k in enc.attrs
            }
            stored = xr.Variable((name,), np.asarray(enc.values), attrs)
            back = np.asarray(xr.conventions.decode_cf_variable(name, stored).values)
        except (ValueError, TypeError, OverflowError):
            return None
    if "dtype" in encoding and enc.dtype != np.dtype(encoding["dtype"]):
        return None
    if back.shape != values.shape or not bool(np.all(back == values)):
        return None
    return np.asarray(enc.values), attrs


def _coordinate_meta(
    name: str, encoded: np.ndarray, attrs: Mapping[str, Any], chunk: int
) -> dict[str, Any]:
    """The zarr.json xarray writes for the encoded coordinate (blocking)."""
    import xarray as xr
    import zarr
    from zarr.storage import MemoryStore

    store = MemoryStore()
    ds = xr.Dataset({name: xr.Variable((name,), encoded[:1], dict(attrs))})
    encoding = {
        name: {
            "chunks": (chunk,),
            "compressors": [zarr.codecs.ZstdCodec(level=3)],
            "_FillValue": None,
        }
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(store, zarr_format=3, consolidated=False, encoding=encoding)
    return json.loads(store._store_dict[f"{name}/zarr.json"].to_bytes())


def _encode_region(
    meta: Mapping[str, Any],
    existing: Mapping[tuple[int, ...], bytes],
    start: int,
    encoded: np.ndarray,
) -> dict[tuple[int, ...], bytes]:
    """Chunks covering ``start:start+len(encoded)`` of a 1-d array after writing there."""
    import zarr

    store = _memory_store({"a": (meta, existing)})
    arr = zarr.open_array(store, path="a", mode="r+", config={"write_empty_chunks": True})
    end = start + len(encoded)
    arr[start:end] = encoded
    chunk = _chunk_shape(meta)[0]
    key = chunk_key_encoder(meta)
    out = {}
    for c in range(start // chunk, (end - 1) // chunk + 1):
        out[(c,)] = store._store_dict[f"a/{key((c,))}"].to_bytes()
    return out


# ---------------------------------------------------------------------------------- progress
class _Progress:
    def __init__(self, enabled: bool) -> None:
        self._p: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._p = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )

    def __enter__(self) -> _Progress:
        if self._p is not None:
            self._p.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.stop()

    def task(self, description: str, total: int) -> Callable[[int], None]:
        if self._p is None:
            return lambda n: None
        tid = self._p.add_task(description, total=total)
        return lambda n: self._p.advance(tid, n)


def _stderr_is_tty() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


# ---------------------------------------------------------------------------------- running
async def _scan_all(
    jobs: Sequence[ScanJob],
    workers: int,
    client: Any,
    on_result: Callable[[ScanResult], None],
    warm_up: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Scan ``jobs`` (see :func:`_scan_here_and_in_pool`). ``warm_up`` is run meanwhile when
    worker processes or a cluster do the scanning; scanning only in this process, it is
    left to whoever needs its imports later (running it alongside would just slow both)."""
    processes = min(workers, len(jobs)) - 1
    if client is not None:
        warming = asyncio.ensure_future(warm_up()) if warm_up is not None else None
        try:
            if jobs:
                await _scan_on_client(client, jobs, on_result)
        finally:
            if warming is not None:
                await warming
        return
    queue = collections.deque(jobs)
    if processes < 1:
        while queue:
            on_result(await asyncio.to_thread(scan_source, queue.popleft()))
        return
    await _scan_here_and_in_pool(queue, processes, on_result, warm_up)


async def _scan_here_and_in_pool(
    queue: collections.deque[ScanJob],
    processes: int,
    on_result: Callable[[ScanResult], None],
    warm_up: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Scan the queue in this process and in ``processes`` worker processes at once.

    A worker is spawned (see :func:`_spawn_context`) and spends about a second importing
    zarr, h5py and zarrchive before it can scan; meanwhile this process runs ``warm_up``
    (its own slow imports), then scans too. Running both at once here would not help: the
    imports hold the GIL, and scanning, which hops between threads several times per
    source, would crawl. A worker is given sources only once it answered a first task
    (:func:`_worker_ready`), a few at a time so that it never waits for the next one.
    Sources are taken from the front of the queue by whoever is free; results are handed to
    ``on_result`` on this loop as they come. Workers that never answered (a small catalog is
    scanned before they are up) are stopped at the end, not waited for.
    """
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=processes, mp_context=_spawn_context())
    starting: set[asyncio.Future[Any]] = {
        asyncio.wrap_future(pool.submit(_worker_ready)) for _ in range(processes)
    }
    warming = asyncio.ensure_future(warm_up()) if warm_up is not None else None
    scanning: set[asyncio.Future[ScanResult]] = set()
    ready: set[int] = set()

    def feed() -> None:
        while queue and len(scanning) < _IN_FLIGHT * len(ready):
            scanning.add(asyncio.wrap_future(pool.submit(scan_source, queue.popleft())))

    async def here() -> None:
        if warming is not None:
            await warming
        while queue:
            on_result(await asyncio.to_thread(scan_source, queue.popleft()))

    local: asyncio.Future[None] | None = asyncio.ensure_future(here())
    try:
        while local is not None or scanning:
            waiting = scanning | starting | ({local} if local is not None else set())
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                if fut is local:
                    local = None
                    fut.result()
                elif fut in starting:
                    starting.discard(fut)
                    try:
                        ready.add(fut.result())
                    except BrokenProcessPool as exc:
                        raise _broken_pool() from exc
                else:
                    scanning.discard(fut)
                    try:
                        res = fut.result()
                    except BrokenProcessPool as exc:
                        raise _broken_pool() from exc
                    on_result(res)
            feed()
    except BaseException:
        if local is not None:
            local.cancel()
        for f in scanning | starting:
            f.cancel()
        _stop_pool(pool, ready)
        raise
    for f in starting:
        f.cancel()
    if starting:
        _stop_pool(pool, ready)
    else:
        await asyncio.to_thread(pool.shutdown)


#: sources handed to each worker process ahead of time
_IN_FLIGHT = 4


def _stop_pool(pool: Any, ready: set[int]) -> None:
    """Shut ``pool`` down without waiting; its workers that never answered (still importing,
    or stuck) are killed rather than left behind."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # gone after shutdown
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.pid not in ready and proc.is_alive():
            proc.kill()


def _worker_ready() -> int:
    """A worker's first task: proves that it is up and that zarr's loop runs in it; answers
    with its pid."""
    from ._sync import sync

    sync(asyncio.sleep(0))
    return os.getpid()


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _broken_pool() -> ZarrchiveError:
    return ZarrchiveError(
        "a scanning worker process died (a parsing library crashed?); rerun with workers=1 "
        "to find the source"
    )


async def _scan_on_client(
    client: Any, jobs: Sequence[ScanJob], on_result: Callable[[ScanResult], None]
) -> None:
    """Scan on a Dask cluster: ``client.map`` over the jobs; results are taken in order by a
    thread and handed to this loop one by one (only scan results travel back)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[ScanResult | None, BaseException | None]] = asyncio.Queue()
    stop = threading.Event()

    def run() -> None:
        futures = client.map(scan_source, list(jobs), pure=False)
        try:
            for fut in futures:
                if stop.is_set():
                    client.cancel(futures)
                    return
                loop.call_soon_threadsafe(queue.put_nowait, (fut.result(), None))
        except BaseException as exc:
            client.cancel(futures)
            loop.call_soon_threadsafe(queue.put_nowait, (None, exc))

    thread = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        for _ in range(len(jobs)):
            res, exc = await queue.get()
            if exc is not None:
                raise exc
            assert res is not None
            on_result(res)
    except BaseException:
        stop.set()  # the thread cancels what is left and ends; nobody waits for it
        raise
    await thread


_SPAWN_LOCK = threading.Lock()

try:
    from multiprocessing import context as _mp_context
    from multiprocessing import popen_spawn_posix as _popen_spawn
    from multiprocessing import spawn as _mp_spawn
except ImportError:  # pragma: no cover - Windows: plain spawn
    _popen_spawn = None
else:

    class _NoMainPopen(_popen_spawn.Popen):  # type: ignore[misc,name-defined]
        def _launch(self, process_obj: Any) -> None:
            original = _mp_spawn.get_preparation_data

            def preparation(name: str) -> dict[str, Any]:
                data = original(name)
                data.pop("init_main_from_path", None)
                data.pop("init_main_from_name", None)
                return data

            with _SPAWN_LOCK:
                _mp_spawn.get_preparation_data = preparation
                try:
                    super()._launch(process_obj)
                finally:
                    _mp_spawn.get_preparation_data = original

    class _NoMainProcess(_mp_context.SpawnProcess):  # type: ignore[misc,name-defined]
        @staticmethod
        def _Popen(process_obj: Any) -> Any:
            return _NoMainPopen(process_obj)

    class _NoMainContext(_mp_context.SpawnContext):  # type: ignore[misc,name-defined]
        Process = _NoMainProcess


def _spawn_context() -> Any:
    """A ``spawn`` multiprocessing context whose workers do not re-run the main script.

    Plain ``spawn`` imports the parent's ``__main__`` module in every worker (so that objects
    defined there unpickle), which re-executes a script's top-level code unless it is guarded
    by ``if __name__ == "__main__"``. The workers only run :func:`scan_source`, so the main
    module is left out of their preparation data (POSIX; elsewhere plain ``spawn``).

    ``fork`` would spare each worker a second of imports, but it is not safe here: the
    forked child has none of the parent's threads, and libraries that run their own (the
    tokio runtime of obstore, through which remote sources may have been read) then hang in
    it; zarr's and fsspec's loops can be restarted after a fork, theirs cannot.
    """
    if _popen_spawn is None:  # pragma: no cover
        import multiprocessing

        return multiprocessing.get_context("spawn")
    return _NoMainContext()


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
    from .changeset import ChunkRef

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


def _check_order(ordered: Sequence[_Source], ex: _Existing, dim: str) -> None:
    for src in ordered:
        v = src.values
        if len(v) > 1 and not bool(np.all(v[1:] > v[:-1])):
            bad = int(np.argmin(v[1:] > v[:-1]))
            raise InvalidInputError(
                f"{src.url}: its {dim!r} values are not strictly increasing ({v[bad]} is "
                f"followed by {v[bad + 1]})"
            )
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        if not _lt(prev.values[-1], cur.values[0]):
            dup = np.intersect1d(prev.values, cur.values)
            if len(dup):
                raise InvalidInputError(
                    f"{cur.url} and {prev.url} both have {dim} = {dup[0]}; a catalog must "
                    f"not repeat {dim!r} values"
                )
            raise InvalidInputError(
                f"{cur.url} overlaps {prev.url} along {dim!r}: it starts at {cur.values[0]}, "
                f"before {prev.url} ends at {prev.values[-1]}"
            )
    if ex.layout is not None and ordered and not _lt(ex.last, ordered[0].values[0]):
        first = ordered[0]
        raise InvalidInputError(
            f"{first.url} starts at {dim} = {first.values[0]}, which is not after the last "
            f"{dim!r} value already in /{ex.target} ({ex.last}); only sources later than the "
            "existing data can be added"
        )


async def _validate(
    ordered: list[_Source],
    ex: _Existing,
    dim: str,
    session: Session,
    reader: SourceReader,
) -> tuple[_Layout, str]:
    _check_order(ordered, ex, dim)
    if ex.layout is not None:
        ref_layout, ref_name = ex.layout, f"the dataset at /{ex.target}"
    else:
        ref_layout, ref_name = ordered[0].layout, ordered[0].url
    for src in ordered:
        if src.layout is not ref_layout and src.layout != ref_layout:
            raise _layout_error(src.url, src.layout, ref_name, ref_layout)
    # variables without the concat dimension: equal values everywhere
    ref_digests: dict[str, str | None] = {} if ex.layout is not None else dict(ordered[0].digests)
    for src in ordered:
        for path, digest in src.digests:
            if digest is None:
                continue
            if ex.layout is not None and path not in ref_digests:
                ref_digests[path] = await _existing_digest(session, ex, path, reader)
            want = ref_digests.get(path)
            if want is not None and want != digest:
                raise InvalidInputError(
                    f"{src.url}: variable {path!r} (which does not vary along {dim!r}) has "
                    f"other values than in {ref_name}; it must be the same in every source"
                )
    # whole chunks along the dimension
    for v in ref_layout.varying:
        if ex.layout is not None and ex.length % v.chunk:
            raise InvalidInputError(
                f"the dataset at /{ex.target} ends in a partial chunk of {v.path!r} along "
                f"{dim!r} ({ex.length} steps, chunks of {v.chunk}); nothing can be added "
                "after it"
            )
        for src in ordered[:-1]:
            if src.extent % v.chunk:
                raise InvalidInputError(
                    f"{src.url}: its {src.extent} steps along {dim!r} are not a whole number "
                    f"of chunks of {v.path!r} (chunks of {v.chunk}); only the last source in "
                    f"{dim!r} order may end in a partial chunk"
                )
    # differing time units are decoded for the coordinate, but not inside bounds variables
    units = {s.units for s in ordered} | ({ex.units} if ex.layout is not None else set())
    if len(units) > 1:
        first = ordered[0].result  # the earliest source keeps its whole scan
        bounds = None
        if first is not None and first.tree is not None:
            bounds = (first.tree.arrays[dim].meta.get("attributes") or {}).get("bounds")
        for v in ref_layout.varying:
            sig_units = (json.loads(v.sig).get("attributes") or {}).get("units")
            if v.path == bounds and sig_units is None:
                raise InvalidInputError(
                    f"the sources store {dim!r} in different units ({sorted(map(str, units))}), "
                    f"and its bounds variable {v.path!r} has no units of its own, so its "
                    "values cannot be combined without rewriting them"
                )
    return ref_layout, ref_name


def _count(session: Session, target: str) -> tuple[int, int]:
    changes = session.changes
    refs = nbytes = 0
    if changes is None:
        return 0, 0
    for node in _under(changes.nodes, target).values():
        ch = changes.chunk_changes(node.id) if node.kind == "array" else None
        if ch is None:
            continue
        m = ch.manifest()
        live = m.kind != DELETED
        refs += int(live.sum())
        nbytes += int(m.length[m.kind == VIRTUAL].sum())
    return refs, nbytes


async def import_catalog(
    repo: AsyncRepo,
    sources: Any,
    path: str | None,
    *,
    mode: str = "import",
    concat_dim: str = "time",
    workers: int | None = None,
    client: Any = None,
    message: str | None = None,
    batch_size: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> CatalogReport:
    """``AsyncRepo.import_catalog`` (``mode="import"``) and ``append_catalog``."""
    from .repo import _norm_path

    t0 = time.monotonic()
    cat = await asyncio.to_thread(resolve_catalog, sources, storage_options)
    if path is None:
        path = cat.path
    elif cat.path is not None and _norm_path(cat.path) != _norm_path(path):
        raise InvalidInputError(
            f"the catalog names path {cat.path!r} but {path!r} was given; give one of them"
        )
    if path is None:
        raise InvalidInputError("import_catalog needs a path (the group to build the dataset in)")
    target = _norm_path(path)
    dim = concat_dim
    if cat.concat_dim is not None and cat.concat_dim != concat_dim:
        if concat_dim != "time":
            raise InvalidInputError(
                f"the catalog names concat_dim {cat.concat_dim!r} but {concat_dim!r} was given"
            )
        dim = cat.concat_dim
    if not isinstance(dim, str) or not dim or "/" in dim:
        raise InvalidInputError(f"concat_dim must be a dimension name, got {dim!r}")
    if batch_size is None:
        batch_size = DEFAULT_BATCH
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise InvalidInputError(f"workers must be a positive integer, got {workers!r}")
    current = repo.session
    if not current.writable or current.branch is None:
        raise ReadOnlyError(
            "the current session is read-only (not on a branch tip); checkout a branch to "
            "import a catalog"
        )
    if current.has_changes:
        raise InvalidInputError(
            "the current session has uncommitted changes; commit or discard them before "
            "importing a catalog (it is committed on its own)"
        )
    branch = current.branch
    session = await _resume_or_start(repo, branch, target, mode)
    resumed = session.has_changes
    reader = SourceReader(
        {
            **repo.repository.sources.authorized,
            **{container_of(s.url): s.options for s in cat.sources},
        }
    )
    reader.container_options = dict(repo.repository.sources.container_options)
    ex = await _existing(session, target, dim, reader)
    if mode == "append" and ex.layout is None:
        raise NotFoundError(
            f"there is no dataset at /{target} to append to; use import_catalog to create it"
        )
    known_sorted = sorted(ex.known)
    jobs = [
        ScanJob(s.url, s.options, dim, _known_for(s.url, ex.known, known_sorted), compact=True)
        for s in cat.sources
    ]
    options_of = {s.url: s.options for s in cat.sources}
    if workers is None:
        # a worker process takes a second to start: small catalogs scan in this process only
        workers = min(_cpu_count(), 8, 1 + len(jobs) // _SOURCES_PER_WORKER)
    collector = _Collector(dim)
    with _Progress(_stderr_is_tty()) as progress:
        advance = progress.task(f"scanning {len(jobs)} sources", len(jobs))

        def on_result(res: ScanResult) -> None:
            collector.add(res, options_of.get(res.url))
            advance(1)

        # xarray's CF coding imports a second's worth of modules on first use (dask among
        # them, when installed): let that happen while workers start and scan
        await _scan_all(
            jobs, workers, client, on_result, lambda: asyncio.to_thread(_warm_up_cf, dim)
        )
        await asyncio.to_thread(collector.decode)
        new = collector.sources
        base_sorted = sorted(ex.base_known)
        in_base = [u for u in collector.skipped if _in(u, ex.base_known, base_sorted)]
        if new and mode == "import" and ex.base_has_data:
            raise InvalidInputError(
                f"/{target} already holds a dataset and {len(new)} of the given sources are "
                f"not in it (e.g. {new[0].url}); use append_catalog to add sources to an "
                "existing dataset"
            )
        added = len(new) + len(collector.skipped) - len(in_base)
        if not new and not resumed:
            _authorize_skipped(repo, collector, options_of)
            return CatalogReport(target, 0, len(in_base), 0, 0, time.monotonic() - t0, None)
        plan: _Plan | None = None
        if new:
            ordered = sorted(new, key=_SortKey)
            ordered[0].result = await _rescan(ordered[0], dim)
            layout, _ = await _validate(ordered, ex, dim, session, reader)
            plan = await _make_plan(session, target, dim, ordered, layout, ex)
            write = progress.task(f"writing {len(ordered)} sources", len(ordered))
            for batch in _batches(ordered, batch_size):
                await _keep_alive(session)
                await _write_batch(plan, batch)
                write(len(batch))
        refs, nbytes = _count(session, target)
        verb = "append_catalog" if mode == "append" else "import_catalog"
        commit_message = message or f"{verb} /{target}: {added} sources"
        commit_id = await session.commit(
            commit_message,
            author=repo.author,
            metadata={"catalog": {"path": target, "concat_dim": dim, "sources": added}},
        )
    repo._set_session(session)
    _authorize_skipped(repo, collector, options_of)
    return CatalogReport(
        target, added, len(in_base), refs, nbytes, time.monotonic() - t0, commit_id
    )


def _warm_up_cf(dim: str) -> None:
    """Encode and decode a time coordinate once, so that xarray's lazy imports are done."""
    with contextlib.suppress(Exception):
        values = np.array(["2000-01-01", "2000-01-02"], dtype="datetime64[ns]")
        encode_coordinate(dim, values, {"units": "days since 2000-01-01"})


async def _rescan(src: _Source, dim: str) -> ScanResult:
    """The whole scan result of ``src``, scanned again in this process.

    Only the first source in order is needed whole (its groups, static arrays and coordinate
    attributes become the dataset's); keeping every source's tree until the order is known
    would make memory grow with the catalog. The source must not have changed meanwhile.
    """
    res = await asyncio.to_thread(scan_source, ScanJob(src.url, src.options, dim))
    tree = res.tree
    same = tree is not None and res.values is None and res.raw is not None
    if same:
        assert tree is not None and res.raw is not None
        metas = {p: a.meta for p, a in tree.arrays.items()}
        layout = _layout_of(tree.groups, metas, dim, src.url)
        same = (
            layout == src.layout
            and _same_pack(_pack(tree, layout), src.refs)
            and tuple(sorted(res.digests.items())) == src.digests
            and decoding_key(tree.arrays[dim].meta) == src.decoding
            and len(res.raw) == src.extent
        )
    elif tree is not None and res.values is not None:
        same = bool(np.array_equal(res.values, src.values))
    if not same:
        raise InvalidInputError(
            f"{src.url} changed while the catalog was being imported; run the import again"
        )
    res.values = src.values
    res.coord_attrs, res.coord_encoding = src.coord
    return res


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


async def _keep_alive(session: Session) -> None:
    """Extend the session's life while a long import runs (it expires after a day)."""
    import datetime as dt

    from .journal import now_utc

    if session.expires - now_utc() < dt.timedelta(hours=12):
        await session.update_expiration(dt.timedelta(hours=24))


def _authorize_skipped(
    repo: AsyncRepo, collector: _Collector, options_of: Mapping[str, Any]
) -> None:
    """Let this process read the skipped sources too, as it reads the ones just written:
    the caller named them all (they were imported by an earlier run, maybe elsewhere)."""
    repo.repository.sources.authorize(
        {
            prefix: options_of.get(url)
            for url, prefix in zip(collector.skipped, collector.skipped_prefixes, strict=True)
        }
    )


def _in(url: str, known: Mapping[str, Any], ordered: list[str]) -> bool:
    """Whether ``url`` (a file, or a store with objects below it) is in ``known``."""
    if url in known:
        return True
    prefix = url.rstrip("/") + "/"
    i = bisect.bisect_left(ordered, prefix)
    return i < len(ordered) and ordered[i].startswith(prefix)


class _SortKey:
    """Orders sources by their first coordinate value (comparison errors are reported)."""

    __slots__ = ("v",)

    def __init__(self, src: _Source) -> None:
        self.v = src.first

    def __lt__(self, other: _SortKey) -> bool:
        return _lt(self.v, other.v)


async def _resume_or_start(repo: AsyncRepo, branch: str, target: str, mode: str) -> Session:
    """The active catalog session for ``target`` on ``branch`` (left by a run that did not
    finish), or a new one."""
    names = {f"import_catalog /{target}", f"append_catalog /{target}"}
    candidates = [
        s for s in await repo.list_active_sessions() if s.branch == branch and s.message in names
    ]
    for info in sorted(candidates, key=lambda s: s.created, reverse=True):
        with contextlib.suppress(ReadOnlyError, NotFoundError):
            return await repo.repository.join_session(info.id)
    return await repo.repository.session(
        branch, message=f"{mode}_catalog /{target}", author=repo.author
    )


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
