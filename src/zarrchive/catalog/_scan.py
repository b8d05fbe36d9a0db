"""Scanning one source: what a worker (a process, a thread or a Dask task) does.

Owns :func:`scan_source`: recognise the source, skip it if the dataset already holds it
unchanged, scan it with its format's importer, read its concat coordinate and its small
arrays in one go and decode them without xarray, and return what the catalog keeps of it
(:class:`ScanResult`, compact when asked). Blocking; its async part runs on zarr's I/O loop
through :func:`zarrchive._sync.sync`. Must not import the importing side of the catalog
(:mod:`._collect`, :mod:`._run`, ...).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import (
    InvalidInputError,
    NotFoundError,
    UnsupportedFeatureError,
    ZarrchiveError,
)
from ..format import INLINE, VIRTUAL, Manifest
from ..importers import FORMATS, HEAD_BYTES, ImportedTree, detect_format, scanner, sniff
from ..sources import (
    SourceReader,
    local_path,
    plan_requests,
    read_local_ranges,
)
from ..zarr_keys import chunk_key_encoder
from ._coords import _hash_values, decode_coordinate
from ._layout import (
    _MISSING,
    _chunk_shape,
    _dims,
    _is_index,
    _Layout,
    _layout_of,
    _pack,
    _Packed,
)
from ._resolve import _url_to_fs

#: non-dimension arrays whose chunks hold at most this many bytes are compared by value
HASH_LIMIT = 1 << 20


#: bytes read from the start of a remote source (see :func:`_prefetch`): as much as the HDF5
#: importer's first read, so that a small file needs no other request
_REMOTE_HEAD = 512 * 1024


_READER: list[SourceReader] = []


def _process_reader() -> SourceReader:
    """One reader per process for ``stat`` (its async filesystems live on zarrchive's loop)."""
    if not _READER:
        _READER.append(SourceReader())
    return _READER[0]


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
    #: a remote source's stat and first bytes, read in that order by :func:`scan_sources`
    prefetched: tuple[Any, bytes] | None = None


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


async def _scan_tree(
    job: ScanJob, fmt: str | None, head: bytes = b"", first: Any = None
) -> ImportedTree | None:
    """The source's tree, or None when it is already in the dataset (``job.known``).
    ``fmt`` is None only for a URL in ``job.known``: a file, skipped or refused here.
    ``first``: the source's stat, taken before ``head`` was read (then ``head`` may stand in
    for the importer's own first read)."""
    reader = _process_reader()
    stats: dict[str, Any] = {} if first is None else {job.url: first}

    async def stat(u: str) -> Any:
        s = stats.get(u)
        if s is None:
            s = stats[u] = await reader.stat(u, job.options)
        return s

    if fmt is None or not FORMATS[fmt].store:  # a store's objects: stat-ed by its importer
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
    spec = FORMATS[fmt]
    extra = {"prefetched": head} if spec.prefetched and head and first is not None else {}
    tree = await scanner(fmt)(job.url, stat=stat, storage_options=job.options, **extra)
    if spec.store and job.known:
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
    from zarr.buffer import cpu
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


#: set in a catalog's own worker processes (see :func:`scanning_process`)
_OWN_PROCESS: list[bool] = [False]


def scanning_process() -> None:
    """Declare this process a catalog's scanning worker: zarr's loop here serves nobody else,
    so a local source is parsed on it directly (:func:`zarrchive._sync.blocking_allowed`)
    instead of in a thread."""
    _OWN_PROCESS[0] = True


def scan_source(job: ScanJob) -> ScanResult:
    """Scan one source (blocking; runs in a worker process, a thread or on a Dask worker)."""
    from .._sync import blocking_allowed, sync

    try:
        remote = local_path(job.url) is None
        prefetched = job.prefetched
        if prefetched is None and remote and job.url not in job.known:
            prefetched = sync(_prefetch(job))
        fmt: str | None
        if prefetched is not None:
            first, head = prefetched
            fmt = detect_format(head[:HEAD_BYTES], where=job.url)
        else:  # local, a store, already in the dataset, or not readable (sniff says why)
            first, head = None, b""
            # a file already in the dataset is decided by one stat: no need to recognise it
            fmt = None if job.url in job.known else sniff(job.url, job.options)
        # remote sources never: their parse waits for the network (maybe through this loop)
        inline = _OWN_PROCESS[0] and not remote
        with blocking_allowed(inline):
            tree = sync(_scan_tree(job, fmt, head, first))
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


#: remote sources whose stat and first bytes one process fetches at once
PREFETCH_CONCURRENCY = 16


async def _prefetch(job: ScanJob) -> tuple[Any, bytes] | None:
    """A remote source's stat, then its first bytes; None where that does not apply (a
    store, a missing object: :func:`scan_source` then finds out and says so).

    The version before the bytes: a source replaced in between then has bytes newer than
    its recorded version, which reads detect, not the other way round."""
    reader = _process_reader()
    try:
        st = await reader.stat(job.url, job.options)
        if not st.size:
            return None
        fs = reader._fs(job.url, dict(job.options or {}))
        head = await fs._cat_file(job.url, start=0, end=min(st.size, _REMOTE_HEAD))
    except (OSError, ValueError):
        return None
    return st, bytes(head)


async def _prefetch_all(jobs: Sequence[ScanJob]) -> list[tuple[Any, bytes] | None]:
    sem = asyncio.Semaphore(PREFETCH_CONCURRENCY)

    async def one(job: ScanJob) -> tuple[Any, bytes] | None:
        if local_path(job.url) is not None or job.url in job.known:
            return None
        async with sem:
            return await _prefetch(job)

    return list(await asyncio.gather(*(one(j) for j in jobs)))


def scan_sources(jobs: Sequence[ScanJob]) -> list[ScanResult]:
    """:func:`scan_source` of each job, in order (blocking). The remote ones' stats and first
    bytes are fetched first, all at once: their round trips overlap instead of adding up,
    and the parses that follow need no more requests for small files."""
    from .._sync import sync

    if any(local_path(j.url) is None for j in jobs):
        got = sync(_prefetch_all(jobs))
        jobs = [
            j if p is None else dataclasses.replace(j, prefetched=p)
            for j, p in zip(jobs, got, strict=True)
        ]
    return [scan_source(j) for j in jobs]


def _describe(job: ScanJob, fmt: str, tree: ImportedTree, head: bytes = b"") -> ScanResult:
    """The concat coordinate's stored values and a digest of every small array without the
    concat dimension (their chunks read in one go and decoded together, without xarray)."""
    from .._sync import sync

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
