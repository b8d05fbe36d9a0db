"""Export of one commit as a kerchunk reference set (spec version 1).

This module owns everything ``Repo.export_kerchunk`` does: turning each node's Zarr v3
``zarr.json`` into Zarr v2 ``.zgroup`` / ``.zarray`` / ``.zattrs`` documents (data type and
byte order, codecs as v2 filters and compressor, fill value, memory order, dimension names as
``_ARRAY_DIMENSIONS``), turning manifest columns into chunk references in bulk (virtual chunks
to ``[url, offset, length]``, inline chunks to ``"base64:..."`` strings, native chunks to
``[url of chunks/<id>, 0, length]`` in the repository's chunk storage), and writing the result
as a JSON file (with consolidated ``.zmetadata``) or as a kerchunk parquet reference directory
(kerchunk's own ``refs_to_dataframe``).

The output needs nothing of zarrchive to be read: fsspec's ``ReferenceFileSystem`` plus zarr
(``zarr_format=2``) or xarray open it. Whatever Zarr v2 cannot express (sharding, codecs with
no numcodecs equivalent, an in-memory repository's native chunks) raises
:class:`UnsupportedFeatureError` naming the array and the feature.

Fill values follow what xarray expects of Zarr v2, where ``fill_value`` is the missing-value
marker (see :func:`_v2_fill_value`), so xarray reads the export as it reads the repository.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from struct import error as struct_error
from struct import unpack
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidInputError, UnsupportedFeatureError
from .format import DELETED, INLINE, NATIVE, VIRTUAL, Manifest, Node, Snapshot
from .storage import FsspecStorage, LocalStorage, MemoryStorage, Storage

if TYPE_CHECKING:
    from .repository import Repository

__all__ = [
    "chunk_refs",
    "export_kerchunk",
    "kerchunk_refs",
    "node_metadata_v2",
    "write_json",
    "write_parquet",
]

FORMATS = ("json", "parquet")

# ---------------------------------------------------------------------------- data types

_SIMPLE_DTYPES = {
    "bool": "b1",
    "int8": "i1",
    "uint8": "u1",
    "int16": "i2",
    "uint16": "u2",
    "int32": "i4",
    "uint32": "u4",
    "int64": "i8",
    "uint64": "u8",
    "float16": "f2",
    "float32": "f4",
    "float64": "f8",
    "complex64": "c8",
    "complex128": "c16",
}
_VLEN_DTYPES = {"string": "vlen-utf8", "variable_length_utf8": "vlen-utf8"}
_VLEN_DTYPES.update({"variable_length_bytes": "vlen-bytes", "bytes": "vlen-bytes"})
_RAW_BITS = re.compile(r"^r(\d+)$")

# codecs that turn the array into bytes, and the core v3 bytes-to-bytes codecs
_ARRAY_TO_BYTES = ("bytes", "vlen-utf8", "vlen-bytes")
_BLOSC_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


def _where(path: str) -> str:
    return f"array {path or '/'!r}"


def _unsupported(path: str, what: str) -> UnsupportedFeatureError:
    return UnsupportedFeatureError(
        f"cannot export {_where(path)} as kerchunk references: {what} has no Zarr v2 equivalent"
    )


def _dtype_name(data_type: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(data_type, str):
        return data_type, {}
    if isinstance(data_type, Mapping) and isinstance(data_type.get("name"), str):
        return data_type["name"], data_type.get("configuration") or {}
    return repr(data_type), {}


def _v2_dtype(path: str, data_type: Any, endian: str | None) -> tuple[str, str | None]:
    """The v2 dtype string of a v3 data type, and the object codec id it needs (vlen types)."""
    name, config = _dtype_name(data_type)
    e = ">" if endian == "big" else "<"
    if name in _SIMPLE_DTYPES:
        code = _SIMPLE_DTYPES[name]
        return ("|" if code[1:] == "1" else e) + code, None
    if name in _VLEN_DTYPES:
        return "|O", _VLEN_DTYPES[name]
    m = _RAW_BITS.match(name)
    if m and int(m.group(1)) % 8 == 0 and int(m.group(1)) > 0:
        return f"|V{int(m.group(1)) // 8}", None
    try:
        if name == "raw_bytes":
            return f"|V{int(config['length_bytes'])}", None
        if name == "null_terminated_bytes":
            return f"|S{int(config['length_bytes'])}", None
        if name == "fixed_length_utf32":
            return f"{e}U{int(config['length_bytes']) // 4}", None
        if name in ("numpy.datetime64", "numpy.timedelta64"):
            unit = str(config.get("unit", "generic"))
            scale = int(config.get("scale_factor", 1))
            letter = "M" if name == "numpy.datetime64" else "m"
            if unit == "generic":
                return f"{e}{letter}8", None
            return f"{e}{letter}8[{scale if scale != 1 else ''}{unit}]", None
    except (KeyError, TypeError, ValueError):
        pass
    raise _unsupported(path, f"data type {name!r}")


def _float_fill(path: str, value: Any, dtype: np.dtype[Any]) -> Any:
    if isinstance(value, str):
        if value in ("NaN", "Infinity", "-Infinity"):
            return value
        if value.startswith("0x"):
            raw = bytes.fromhex(value[2:])
            value = np.frombuffer(raw, dtype=dtype.newbyteorder(">"))[0].item()
        else:
            raise _unsupported(path, f"fill value {value!r}")
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
    return value


def _v2_fill(path: str, fill: Any, dtype: str) -> Any:
    """A v3 ``fill_value`` as a v2 ``.zarray`` expects it (NaN as "NaN", bytes as base64)."""
    if fill is None:
        return None
    dt = np.dtype(dtype)
    kind = dt.kind
    if kind == "b":
        return bool(fill)
    if kind in "Mm" and fill == "NaT":
        return int(np.iinfo(np.int64).min)
    if kind in "iuMm":
        if not isinstance(fill, int | float):
            raise _unsupported(path, f"fill value {fill!r}")
        return int(fill)
    if kind == "f":
        return _float_fill(path, fill, dt)
    if kind == "c":
        part = np.dtype(f"f{dt.itemsize // 2}")
        if isinstance(fill, Sequence) and not isinstance(fill, str) and len(fill) == 2:
            return [_float_fill(path, p, part) for p in fill]
        raise _unsupported(path, f"complex fill value {fill!r}")
    if kind == "V" and isinstance(fill, Sequence) and not isinstance(fill, str):
        return base64.standard_b64encode(bytes(int(b) for b in fill)).decode("ascii")
    return fill  # strings, base64 bytes: the same in both formats


def _is_zero(x: Any) -> bool:
    if isinstance(x, bool):
        return x is False
    return isinstance(x, int | float) and x == 0 and math.copysign(1.0, x) > 0


def _is_default(fill: Any, dtype: str) -> bool:
    """True when ``fill`` is what Zarr reads a null v2 fill value as for ``dtype``.

    That is zero for numbers, False, NaT for datetimes and timedeltas, empty strings, and
    all-zero bytes.
    """
    kind = np.dtype(dtype).kind
    if kind in "biuf":
        return _is_zero(fill)
    if kind == "c":
        return isinstance(fill, list | tuple) and len(fill) == 2 and all(map(_is_zero, fill))
    if kind in "Mm":
        return isinstance(fill, int) and fill == np.iinfo(np.int64).min
    if kind in "UO":  # fixed and variable-length strings, variable-length bytes
        return fill == ""
    if isinstance(fill, list | tuple):  # raw bits as a list of byte values
        return all(b == 0 for b in fill)
    if isinstance(fill, str):  # bytes types: base64
        try:
            return not any(base64.standard_b64decode(fill))
        except ValueError:
            return False
    return False


def _xarray_fill(value: Any, dtype: str) -> Any:
    """Decode xarray's ``_FillValue`` attribute of a Zarr v3 array (floats as base64)."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return unpack("<d", base64.standard_b64decode(value))[0]
    if dt.kind == "c":
        re_, im = (unpack("<d", base64.standard_b64decode(v))[0] for v in value)
        return [re_, im]
    if dt.kind in "biu":
        if isinstance(value, bool | int | float):
            return value
        raise TypeError(value)
    if dt.kind in "SUO" and isinstance(value, str):
        return value
    raise TypeError(value)


def _v2_fill_value(path: str, meta: Mapping[str, Any], dtype: str) -> tuple[Any, bool]:
    """The v2 ``fill_value`` of a v3 array, and whether it came from ``_FillValue``.

    Readers of Zarr v2 (xarray in particular) take ``fill_value`` as the missing-value marker,
    where Zarr v3 readers do not. So that both views of the data agree: an xarray
    ``_FillValue`` attribute becomes the fill value (as xarray itself writes Zarr v2), a fill
    value that is what Zarr reads a null fill as (zero, NaT, "") becomes null, and anything
    else is converted as it is (NaN as "NaN", ...).
    """
    attrs = meta.get("attributes") or {}
    if "_FillValue" in attrs:
        try:
            return _v2_fill(path, _xarray_fill(attrs["_FillValue"], dtype), dtype), True
        except (TypeError, ValueError, struct_error):
            pass
    fill = meta.get("fill_value")
    if _is_default(fill, dtype):
        return None, False
    return _v2_fill(path, fill, dtype), False


# ---------------------------------------------------------------------------- codecs


def _codec(path: str, c: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(c, str):
        return c, {}
    if isinstance(c, Mapping) and isinstance(c.get("name"), str):
        return c["name"], dict(c.get("configuration") or {})
    raise _unsupported(path, f"codec {c!r}")


def _numcodecs_config(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """A v3 ``numcodecs.<id>`` codec as the numcodecs config v2 uses."""
    return {"id": name[len("numcodecs.") :], **config}


def _bytes_codec_v2(path: str, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    if name == "zstd":
        out: dict[str, Any] = {"id": "zstd", "level": int(config.get("level", 0))}
        if config.get("checksum"):
            out["checksum"] = True
        return out
    if name == "gzip":
        return {"id": "gzip", "level": int(config.get("level", 5))}
    if name == "blosc":
        shuffle = config.get("shuffle", "noshuffle")
        if isinstance(shuffle, str):
            if shuffle not in _BLOSC_SHUFFLE:
                raise _unsupported(path, f"blosc shuffle {shuffle!r}")
            shuffle = _BLOSC_SHUFFLE[shuffle]
        return {
            "id": "blosc",
            "cname": config.get("cname", "zstd"),
            "clevel": int(config.get("clevel", 5)),
            "shuffle": int(shuffle),
            "blocksize": int(config.get("blocksize", 0)),
        }
    if name == "crc32c":
        return {"id": "crc32c"}
    if name.startswith("numcodecs."):
        return _numcodecs_config(name, config)
    if name == "sharding_indexed":
        raise _unsupported(path, "sharding (codec 'sharding_indexed')")
    raise _unsupported(path, f"codec {name!r}")


def _codecs_v2(
    path: str, meta: Mapping[str, Any]
) -> tuple[str | None, str, list[dict[str, Any]], dict[str, Any] | None, str | None]:
    """(endian, order, filters, compressor, object codec id) for a v3 codec chain."""
    codecs = [_codec(path, c) for c in meta.get("codecs") or []]
    names = [n for n, _ in codecs]
    if "sharding_indexed" in names:
        raise _unsupported(path, "sharding (codec 'sharding_indexed')")
    ab = next((i for i, n in enumerate(names) if n in _ARRAY_TO_BYTES), None)
    if ab is None:
        odd = [n for n in names if n != "transpose" and not n.startswith("numcodecs.")]
        what = repr(odd[0]) if odd else "(none) " + repr(names)
        raise _unsupported(path, f"array-to-bytes codec {what}")
    ndim = len(meta["shape"])
    order = "C"
    filters: list[dict[str, Any]] = []
    for i, (name, config) in enumerate(codecs[:ab]):
        if name == "transpose":
            perm = [int(p) for p in config.get("order", [])]
            if perm == list(range(ndim)):
                continue
            if perm == list(range(ndim))[::-1] and i == 0:
                order = "F"
                continue
            raise _unsupported(path, f"codec 'transpose' with order {perm}")
        if not name.startswith("numcodecs."):
            raise _unsupported(path, f"array-to-array codec {name!r}")
        filters.append(_numcodecs_config(name, config))
    name, config = codecs[ab]
    endian: str | None = None
    object_codec: str | None = None
    if name == "bytes":
        endian = config.get("endian")
    else:
        object_codec = name
    after = []
    for name, config in codecs[ab + 1 :]:
        if name in _ARRAY_TO_BYTES or name == "transpose":
            raise _unsupported(path, f"codec {name!r} after the array-to-bytes codec")
        after.append(_bytes_codec_v2(path, name, config))
    if endian == "big" and filters:
        raise _unsupported(path, "big-endian storage after array-to-array filters")
    if object_codec is not None:
        filters.append({"id": object_codec})
    filters.extend(after[:-1])
    compressor = after[-1] if after else None
    return endian, order, filters, compressor, object_codec


# ---------------------------------------------------------------------------- metadata


def _array_v2(path: str, meta: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if meta.get("storage_transformers"):
        raise _unsupported(path, "storage transformers")
    grid = meta.get("chunk_grid") or {}
    if grid.get("name") != "regular":
        raise _unsupported(path, f"chunk grid {grid.get('name')!r}")
    shape = [int(s) for s in meta["shape"]]
    chunks = [int(c) for c in grid["configuration"]["chunk_shape"]]
    endian, order, filters, compressor, object_codec = _codecs_v2(path, meta)
    dtype, needs = _v2_dtype(path, meta["data_type"], endian)
    if needs != object_codec:
        what = f"codec {object_codec!r}" if object_codec else "its codecs"
        raise _unsupported(path, f"data type {_dtype_name(meta['data_type'])[0]!r} with {what}")
    fill, from_attrs = _v2_fill_value(path, meta, dtype)
    zarray = {
        "zarr_format": 2,
        "shape": shape,
        "chunks": chunks,
        "dtype": dtype,
        "compressor": compressor,
        "fill_value": fill,
        "order": order,
        "filters": filters or None,
        "dimension_separator": ".",
    }
    attrs = dict(meta.get("attributes") or {})
    if from_attrs:  # Zarr v2 keeps it in fill_value only, as xarray writes it
        del attrs["_FillValue"]
    names = meta.get("dimension_names")
    if names is None and not shape:
        names = []
    if names is not None and all(isinstance(n, str) for n in names):
        attrs["_ARRAY_DIMENSIONS"] = list(names)
    return zarray, attrs


def node_metadata_v2(node: Node) -> dict[str, dict[str, Any]]:
    """The Zarr v2 documents of one node, keyed by store key (``a/b/.zarray``, ...)."""
    prefix = f"{node.path}/" if node.path else ""
    if node.kind == "array":
        zarray, attrs = _array_v2(node.path, node.meta)
        docs = {f"{prefix}.zarray": zarray}
    else:
        attrs = dict(node.meta.get("attributes") or {})
        docs = {f"{prefix}.zgroup": {"zarr_format": 2}}
    if attrs:
        docs[f"{prefix}.zattrs"] = attrs
    return docs


# ---------------------------------------------------------------------------- chunk refs


def native_chunk_base(storage: Storage) -> str | None:
    """URL prefix of native chunk objects (``.../chunks/``), or None when unreachable."""
    if isinstance(storage, LocalStorage):
        return f"file://{storage.root.as_posix()}/chunks/"
    if isinstance(storage, FsspecStorage):
        return f"{storage.location}/chunks/"
    return None


def _source_url(url: str) -> str:
    if "://" in url:
        return url
    return "file://" + os.path.abspath(url)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of small acyclic lists
    (it would otherwise rescan them over and over: about half the time of an export)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _chunk_keys(prefix: str, coords: np.ndarray) -> list[str]:
    ndim = coords.shape[1]
    if ndim == 0:
        return [f"{prefix}0"] * coords.shape[0]
    if ndim == 1:
        return [f"{prefix}{c}" for c in coords[:, 0].tolist()]
    fmt = prefix + ".".join(["%d"] * ndim)
    return [fmt % tuple(row) for row in coords.tolist()]


def chunk_refs(
    path: str, manifest: Manifest, native_base: str | None, where: str = ""
) -> tuple[list[str], list[Any]]:
    """Kerchunk keys and values of the chunks in ``manifest``, built column-wise."""
    if (manifest.kind == DELETED).any():
        manifest = manifest.select(manifest.kind != DELETED)
    n = len(manifest)
    keys = _chunk_keys(f"{path}/" if path else "", manifest.coords)
    values: list[Any] = [None] * n
    kind, loc = manifest.kind, manifest.loc

    idx = np.flatnonzero(kind == VIRTUAL)
    if len(idx) == n:  # the common case: all virtual, no scatter needed
        table = np.asarray([_source_url(u) for u in manifest.urls], dtype=object)
        cols = (table[loc].tolist(), manifest.offset.tolist(), manifest.length.tolist())
        return keys, list(map(list, zip(*cols, strict=True)))
    if len(idx):
        table = np.asarray([_source_url(u) for u in manifest.urls], dtype=object)
        for i, u, o, ln in zip(
            idx.tolist(),
            table[loc[idx]].tolist(),
            manifest.offset[idx].tolist(),
            manifest.length[idx].tolist(),
            strict=True,
        ):
            values[i] = [u, o, ln]

    idx = np.flatnonzero(kind == NATIVE)
    if len(idx):
        if native_base is None:
            raise UnsupportedFeatureError(
                f"cannot export {_where(path)} as kerchunk references: its native chunks are "
                f"in {where or 'a storage'} that nothing outside this process can read; "
                "export from a repository on a local directory or object storage"
            )
        table = np.asarray(manifest.chunk_ids, dtype=object)
        for i, cid, ln in zip(
            idx.tolist(), table[loc[idx]].tolist(), manifest.length[idx].tolist(), strict=True
        ):
            values[i] = [native_base + cid, 0, ln]

    idx = np.flatnonzero(kind == INLINE)
    if len(idx):
        encoded = ["base64:" + base64.b64encode(b).decode("ascii") for b in manifest.inline]
        for i, j in zip(idx.tolist(), loc[idx].tolist(), strict=True):
            values[i] = encoded[j]
    return keys, values


# ---------------------------------------------------------------------------- assembling


async def _array_refs(
    repository: Repository,
    node: Node,
    native_base: str | None,
    where: str,
    gate: asyncio.Semaphore,
) -> tuple[list[str], list[Any]]:
    async def load(manifest_id: str) -> Manifest:
        async with gate:
            return await repository.get_manifest(manifest_id)

    manifests = await asyncio.gather(*(load(m.id) for m in node.manifests))
    keys: list[str] = []
    values: list[Any] = []
    with _no_gc():
        for manifest in manifests:
            k, v = chunk_refs(node.path, manifest, native_base, where)
            keys += k
            values += v
    return keys, values


async def _collect(
    repository: Repository, snapshot: Snapshot
) -> tuple[dict[str, dict[str, Any]], list[tuple[Node, list[str], list[Any]]]]:
    """(v2 metadata documents by key, chunk keys and values per array) of a snapshot."""
    nodes = [snapshot.nodes[p] for p in sorted(snapshot.nodes)]
    meta: dict[str, dict[str, Any]] = {}
    for node in nodes:
        meta.update(node_metadata_v2(node))  # converts (and validates) everything first
    storage = repository.chunk_storage
    native_base = native_chunk_base(storage)
    where = (
        f"an in-memory repository ({storage.location})"
        if isinstance(storage, MemoryStorage)
        else f"storage {storage.location!r}"
    )
    gate = asyncio.Semaphore(16)
    arrays = [n for n in nodes if n.kind == "array"]
    refs = await asyncio.gather(
        *(_array_refs(repository, n, native_base, where, gate) for n in arrays)
    )
    return meta, [(n, k, v) for n, (k, v) in zip(arrays, refs, strict=True)]


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


def kerchunk_refs(
    meta: Mapping[str, Mapping[str, Any]],
    chunks: Sequence[tuple[Node, list[str], list[Any]]],
) -> dict[str, Any]:
    """A version-1 kerchunk reference set, with consolidated metadata (``.zmetadata``)."""
    refs: dict[str, Any] = {key: _dumps(doc) for key, doc in meta.items()}
    refs[".zmetadata"] = _dumps({"zarr_consolidated_format": 1, "metadata": dict(meta)})
    with _no_gc():
        for _node, keys, values in chunks:
            refs.update(zip(keys, values, strict=True))
    return {"version": 1, "refs": refs}


def write_json(refs: Mapping[str, Any], target: str, storage_options: dict[str, Any]) -> None:
    import fsspec

    text = json.dumps(refs, separators=(",", ":"))
    with fsspec.open(target, "w", **storage_options) as f:
        f.write(text)


def write_parquet(
    meta: Mapping[str, Mapping[str, Any]],
    chunks: Sequence[tuple[Node, list[str], list[Any]]],
    target: str,
    storage_options: dict[str, Any],
    record_size: int = 100_000,
) -> None:
    """Write a kerchunk parquet reference directory with ``kerchunk.df.refs_to_dataframe``.

    kerchunk writes through fsspec's ``LazyReferenceMapper`` with fastparquet, which is also
    what fsspec's ``ReferenceFileSystem`` reads such a directory with.
    """
    import importlib.util

    import fsspec

    missing = [m for m in ("kerchunk", "fastparquet") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"exporting kerchunk parquet references needs {' and '.join(missing)}: "
            f"pip install {' '.join(missing)}"
        )
    from kerchunk.df import refs_to_dataframe

    for node, keys, _ in chunks:
        if not node.path and keys:
            raise UnsupportedFeatureError(
                "cannot export a root array as parquet kerchunk references (the parquet "
                "layout keeps chunk references in per-array folders); use format='json'"
            )
    fs, root = fsspec.core.url_to_fs(target, **storage_options)
    root = root.rstrip("/")
    if fs.exists(root):
        if not fs.isdir(root):
            raise InvalidInputError(f"parquet export target {target!r} exists and is a file")
        if fs.ls(root, detail=False) and not fs.exists(f"{root}/.zmetadata"):
            raise InvalidInputError(
                f"parquet export target {target!r} is a non-empty directory that is not a "
                "kerchunk parquet reference set; refusing to replace it"
            )
    refs: dict[str, Any] = {key: _dumps(doc) for key, doc in meta.items()}
    with _no_gc():
        for _node, keys, values in chunks:
            refs.update(zip(keys, values, strict=True))
    grids = [math.prod(_grid(n.meta)) for n, keys, _ in chunks if keys]
    record_size = max(1, min(record_size, max(grids, default=1)))
    refs_to_dataframe(
        refs, target, storage_options=storage_options or None, record_size=record_size
    )


def _grid(meta: Mapping[str, Any]) -> list[int]:
    shape = meta["shape"]
    chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
    return [math.ceil(s / c) if c else 0 for s, c in zip(shape, chunks, strict=True)] or [1]


async def export_kerchunk(
    repository: Repository,
    snapshot_id: str,
    target: str | os.PathLike[str] | None = None,
    *,
    format: str = "json",
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any] | str | os.PathLike[str]:
    """Export commit ``snapshot_id``; see :meth:`zarrchive.AsyncRepo.export_kerchunk`."""
    if format not in FORMATS:
        raise InvalidInputError(f"format must be one of {FORMATS}, got {format!r}")
    if target is None and format != "json":
        raise InvalidInputError(f"format={format!r} needs a target directory to write to")
    snapshot = await repository.get_snapshot(snapshot_id)
    meta, chunks = await _collect(repository, snapshot)
    options = dict(storage_options or {})
    if format == "parquet":
        assert target is not None
        await asyncio.to_thread(write_parquet, meta, chunks, os.fspath(target), options)
        return target
    refs = kerchunk_refs(meta, chunks)
    if target is None:
        return refs
    await asyncio.to_thread(write_json, refs, os.fspath(target), options)
    return target
