"""The concat coordinate's values, decoded and encoded as xarray does it.

Owns CF decoding of a coordinate's stored numbers (one source through xarray's whole open
path, many sources of one encoding at once), re-encoding the combined coordinate for the
dataset and the chunks and metadata it is written with, and digests of small arrays'
values. Blocking (xarray, zarr memory stores): callers run it off zarr's I/O loop. Imports
only :mod:`._layout` of the catalog.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..zarr_keys import chunk_key_encoder
from ._layout import _chunk_shape


def _memory_store(
    arrays: Mapping[str, tuple[Mapping[str, Any], Mapping[tuple[int, ...], bytes]]],
) -> Any:
    """A zarr MemoryStore holding ``name -> (zarr.json, chunk bytes)`` under a root group."""
    from zarr.buffer import cpu
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


def _warm_up_cf(dim: str) -> None:
    """Encode and decode a time coordinate once, so that xarray's lazy imports are done."""
    with contextlib.suppress(Exception):
        values = np.array(["2000-01-01", "2000-01-02"], dtype="datetime64[ns]")
        encode_coordinate(dim, values, {"units": "days since 2000-01-01"})
