"""Zarr v2 metadata (``.zarray`` / ``.zattrs`` / ``.zgroup``) to Zarr v3 ``zarr.json``.

Parsing is zarr-python's own (``ArrayV2Metadata.from_dict``: dtypes, fill values, numcodecs
codecs) and so is the output (``ArrayV3Metadata`` serialised by zarr). What is ours is the
codec order: zarr's migration helper refuses v2 *filters* that work on bytes, but HDF5's
shuffle is exactly such a filter (kerchunk writes ``filters=[shuffle], compressor=zlib``), so
bytes-to-bytes filters are placed after the ``bytes`` codec, where they act on the same bytes
as in v2. Also ours: dimension names from ``_ARRAY_DIMENSIONS``, and the v2 fill value carried
as xarray's ``_FillValue`` attribute so that xarray masks exactly as it does for v2 (xarray
ignores a v3 array's ``fill_value`` for masking). Pure: no I/O.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec, BytesBytesCodec, Codec

from .._zarr import ArrayV2Metadata, ArrayV3Metadata, array_document
from ..errors import InvalidInputError, UnsupportedFeatureError

__all__ = ["convert_array", "convert_group", "xarray_fill_value"]


def convert_group(zattrs: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"zarr_format": 3, "node_type": "group", "attributes": dict(zattrs or {})}


def xarray_fill_value(value: Any, dtype: np.dtype[Any]) -> Any:
    """``value`` encoded the way xarray's zarr v3 backend decodes ``_FillValue``."""
    if dtype.kind == "f":
        return base64.standard_b64encode(struct.pack("<d", float(value))).decode()
    if dtype.kind == "c":
        c = complex(value)
        return [
            base64.standard_b64encode(struct.pack("<d", c.real)).decode(),
            base64.standard_b64encode(struct.pack("<d", c.imag)).decode(),
        ]
    if dtype.kind == "S":
        raw = value if isinstance(value, bytes) else str(value).encode()
        return base64.standard_b64encode(raw).decode()
    if dtype.kind == "b":
        return bool(value)
    if dtype.kind in "iu":
        return int(value)
    return value


def _codec_v3(codec: Any, where: str, itemsize: int = 1) -> Codec:
    from zarr.registry import get_codec_class

    codec_id = codec.codec_id
    if codec_id == "blosc":
        from zarr.codecs import BloscCodec, BloscShuffle

        shuffle = codec.shuffle
        if shuffle == -1:  # numcodecs AUTOSHUFFLE: bit shuffle for 1-byte items, else byte
            shuffle = 2 if itemsize == 1 else 1
        return BloscCodec(
            typesize=itemsize,
            cname=codec.cname,
            clevel=codec.clevel,
            shuffle=BloscShuffle.from_int(shuffle),
            blocksize=codec.blocksize,
        )
    if codec_id == "vlen-utf8":
        from zarr.codecs import VLenUTF8Codec

        return VLenUTF8Codec()
    if codec_id == "vlen-bytes":
        from zarr.codecs import VLenBytesCodec

        return VLenBytesCodec()
    native = {"zstd": "zstd", "gzip": "gzip", "crc32c": "crc32c"}
    if codec_id in native:
        cfg = {k: v for k, v in codec.get_config().items() if k != "id"}
        if codec_id == "zstd":
            cfg = {"level": cfg.get("level", 0), "checksum": bool(cfg.get("checksum", False))}
        if codec_id == "gzip":
            cfg = {"level": cfg.get("level", 1)}
        return get_codec_class(native[codec_id]).from_dict(
            {"name": native[codec_id], "configuration": cfg}
        )
    name = f"numcodecs.{codec_id}"
    try:
        cls = get_codec_class(name)
    except KeyError as exc:
        raise UnsupportedFeatureError(
            f"{where}: codec {codec_id!r} has no Zarr v3 equivalent that zarr-python can "
            "decode; install the package that registers it, or import without this array"
        ) from exc
    return cls.from_dict({"name": name, "configuration": codec.get_config()})


def _check_codecs_known(zarray: Mapping[str, Any], where: str) -> None:
    """An unknown codec id is an unsupported feature, not invalid metadata."""
    from numcodecs import get_codec
    from numcodecs.errors import UnknownCodecError

    specs = [("compressor", zarray.get("compressor"))]
    filters = zarray.get("filters")
    if isinstance(filters, list):
        specs += [("filter", f) for f in filters]
    for role, spec in specs:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("id"), str):
            continue  # left to zarr's own validation
        try:
            get_codec(dict(spec))
        except UnknownCodecError:
            raise UnsupportedFeatureError(
                f"{where}: {role} codec {spec['id']!r} is not registered with numcodecs, so "
                "its chunks cannot be decoded; install the package that provides it, or "
                "import without this array"
            ) from None
        except (TypeError, ValueError):
            continue  # a known codec with a bad configuration: zarr reports it below


def _legacy_text_fill(zarray: Mapping[str, Any]) -> Mapping[str, Any]:
    """A number as the fill value of a fixed-width bytes (``S``) or text (``U``) array, as
    older zarr-python 2 versions wrote it (``"fill_value": 0``), in the form zarr-python 3
    parses: zarr 2 reads it as ``numpy.array(0, dtype)``, i.e. ``b"0"`` / ``"0"``."""
    fill = zarray.get("fill_value")
    dtype = zarray.get("dtype")
    if not isinstance(fill, int | float) or isinstance(fill, bool) or not isinstance(dtype, str):
        return zarray
    try:
        native = np.dtype(dtype)
    except TypeError:
        return zarray
    if native.kind == "S":
        raw = np.array(fill, dtype=native)[()]
        return {**zarray, "fill_value": base64.standard_b64encode(raw).decode()}
    if native.kind == "U":
        return {**zarray, "fill_value": str(np.array(fill, dtype=native)[()])}
    return zarray


def convert_array(
    zarray: Mapping[str, Any], zattrs: Mapping[str, Any] | None, where: str
) -> dict[str, Any]:
    """The Zarr v3 ``zarr.json`` document equivalent to a v2 array's metadata."""
    attrs = dict(zattrs or {})
    _check_codecs_known(zarray, where)
    zarray = _legacy_text_fill(zarray)
    try:
        v2 = ArrayV2Metadata.from_dict({**dict(zarray), "attributes": {}})
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInputError(f"{where}: invalid Zarr v2 array metadata: {exc}") from exc
    from zarr.codecs import BytesCodec, TransposeCodec

    ndim = len(v2.shape)
    array_array: list[Codec] = []
    serializer: Codec | None = None
    bytes_bytes: list[Codec] = []
    if v2.order == "F" and ndim > 1:
        array_array.append(TransposeCodec(order=list(range(ndim - 1, -1, -1))))
    for f in v2.filters or ():
        c = _codec_v3(f, where)
        if isinstance(c, ArrayBytesCodec):
            if serializer is not None or bytes_bytes:
                raise UnsupportedFeatureError(
                    f"{where}: filter {f.codec_id!r} cannot follow others"
                )
            serializer = c
        elif isinstance(c, ArrayArrayCodec):
            if bytes_bytes:
                raise UnsupportedFeatureError(
                    f"{where}: array filter {f.codec_id!r} after a bytes filter has no Zarr v3 "
                    "equivalent"
                )
            array_array.append(c)
        elif isinstance(c, BytesBytesCodec):
            bytes_bytes.append(c)
    if serializer is None:
        endian = getattr(v2.dtype, "endianness", None)
        serializer = BytesCodec(endian=endian) if endian is not None else BytesCodec(endian=None)
    if v2.compressor is not None:
        c = _codec_v3(v2.compressor, where, v2.dtype.to_native_dtype().itemsize)
        if not isinstance(c, BytesBytesCodec):
            raise UnsupportedFeatureError(
                f"{where}: compressor {v2.compressor.codec_id!r} is not a bytes-to-bytes codec"
            )
        bytes_bytes.append(c)

    dims = attrs.pop("_ARRAY_DIMENSIONS", None)
    if dims is not None:
        if (
            not isinstance(dims, list)
            or len(dims) != ndim
            or not all(isinstance(d, str) for d in dims)
        ):
            raise InvalidInputError(
                f"{where}: _ARRAY_DIMENSIONS must list {ndim} dimension names, got {dims!r}"
            )
    native = v2.dtype.to_native_dtype()
    if native.kind == "S":
        # xarray's zarr v3 backend can write but not read ``_FillValue`` of fixed-width
        # bytes (FillValueCoder.decode raises for kind "S", so the whole group would fail to
        # open); the fill value stays in the v3 array's ``fill_value``.
        attrs.pop("_FillValue", None)
    elif v2.fill_value is not None and "_FillValue" not in attrs and native.kind in "fciub":
        attrs["_FillValue"] = xarray_fill_value(v2.fill_value, native)
    elif "_FillValue" in attrs and native.kind in "fc":
        attrs["_FillValue"] = xarray_fill_value(attrs["_FillValue"], native)
    _check_json_attrs(attrs, where)

    fill = v2.fill_value if v2.fill_value is not None else v2.dtype.default_scalar()
    try:
        v3 = ArrayV3Metadata(
            shape=v2.shape,
            data_type=v2.dtype,
            chunk_grid={"name": "regular", "configuration": {"chunk_shape": list(v2.chunks)}},
            chunk_key_encoding={"name": "default", "configuration": {"separator": "/"}},
            fill_value=fill,
            codecs=[*array_array, serializer, *bytes_bytes],
            attributes=attrs,
            dimension_names=dims,
        )
        document = array_document(v3)
    except (ValueError, TypeError) as exc:
        raise UnsupportedFeatureError(
            f"{where}: cannot express this array in Zarr v3: {exc}"
        ) from exc
    return document


def _check_json_attrs(attrs: Mapping[str, Any], where: str) -> None:
    """Attributes must survive JSON. NaN and infinities stay floats, as xarray shows them
    reading the source (zarr-python writes them as the JSON tokens ``NaN`` / ``Infinity``
    and reads them back as floats, as the HDF5 importer relies on too)."""
    try:
        json.dumps(attrs)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: attributes are not JSON-serialisable: {exc}") from exc
