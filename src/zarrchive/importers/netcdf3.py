"""Importer for NetCDF classic files: CDF-1 (classic), CDF-2 (64-bit offset), CDF-5 (64-bit data).

The header is parsed here, by hand, from the format specification (magic, numrecs, dimension
list, global attributes, variable list with name, dimension ids, attributes, type, vsize and
begin): it is short and fixed, and neither library that could parse it measures correct.
``scipy.io.netcdf_file`` sizes records from the header's ``vsize`` fields and so mishandles the
one case the specification singles out - with exactly one record variable, records are *not*
padded to 4 bytes: scipy cannot open such a file written by netCDF-C when a record is not a
multiple of 4 bytes - and it reads no CDF-5, decodes names as Latin-1 and reads the data
while opening. kerchunk's ``NetCDF3ToZarr`` builds on it: for that single-record-variable file
it emits padded offsets (wrong data; the last reference runs past the end of the file), it
refuses CDF-5 and fails on an integer variable whose ``_FillValue`` is NaN. Parsing here reads
the header only (growing ranged reads from the start of the file, never a data byte), through
``open`` for local files and fsspec otherwise; the results are checked against netCDF-C.

Layout, as netCDF-C computes it (the header's ``vsize`` is ignored: it overflows for variables
over 4 GiB and some writers store it unpadded):

- a non-record variable is one virtual chunk of ``prod(shape) * itemsize`` bytes at ``begin``;
  one larger than ``max_chunk_bytes`` (default 16 MiB) is split along its first axis when the
  last, partial chunk's full extent still lies inside the file (Zarr reads edge chunks whole);
- a record variable has chunk shape ``(1, ...)``: record ``i`` is at ``begin + i * recsize``,
  its length the variable's unpadded slab size; ``recsize`` is the sum of the record
  variables' slab sizes each rounded up to 4 bytes, except with exactly one record variable,
  where it is the unpadded slab size;
- the record dimension's length is ``numrecs``, or, when numrecs is STREAMING (all bits set),
  the number of complete records the file holds.

Data is big-endian (``bytes`` codec with ``endian: big``). char variables are Zarr arrays of
``S1`` with the file's dimensions, exactly as xarray's scipy and netCDF4 engines present them
before decoding, so xarray's own character decoding (a trailing char dimension concatenated
into fixed-width strings) happens identically when the repository is read. Attributes are
copied with numpy values turned into JSON (char attributes as text, trailing NULs stripped,
invalid UTF-8 replaced, like xarray's scipy engine). Masking follows xarray's NetCDF engines:
only an explicit ``_FillValue`` masks (carried as xarray's zarr ``_FillValue`` attribute); the
type's default fill value is the Zarr ``fill_value`` but never a mask; an integer variable's
NaN (or non-integral) ``_FillValue`` is dropped, as xarray drops it.

Known differences from xarray's NetCDF engines, all from attributes being JSON in Zarr: float32
``scale_factor``/``add_offset`` unpack to float64 (xarray picks the unpacked type from the
attribute's Python type, and JSON numbers come back as Python floats); a char variable's
``_FillValue`` is kept only as the Zarr ``fill_value`` (xarray's zarr backend cannot decode a
bytes ``_FillValue``). NaN and infinite attribute values stay floats (zarr-python writes the
JSON tokens ``NaN`` / ``Infinity``). The unlimited dimension is not marked as such.

Options: ``max_chunk_bytes`` (int or None for never splitting). Errors: corrupt or truncated
files raise :class:`InvalidInputError` (naming every variable that lies past the end of a
truncated file); variable names Zarr cannot hold (``__*``, ``zarr.json``) raise
:class:`UnsupportedFeatureError`; failures to read the source raise :class:`StorageError`.
"""

from __future__ import annotations

import base64
import math
import struct
import unicodedata
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._sync import offload
from ..errors import (
    InvalidInputError,
    NotFoundError,
    StorageError,
    UnsupportedFeatureError,
    ZarrchiveError,
)
from ..format import Manifest
from ..sources import local_path
from ._base import ImportedArray, ImportedTree, StatFn
from ._shapes import largest_divisor
from ._v2meta import convert_array

__all__ = ["Header", "Variable", "parse_header", "scan"]

NC_DIMENSION, NC_VARIABLE, NC_ATTRIBUTE = 10, 11, 12
NC_CHAR = 2
DEFAULT_MAX_CHUNK_BYTES = 16 * 2**20

#: nc_type -> (numpy dtype as stored, the type's default fill value)
TYPES: dict[int, tuple[np.dtype[Any], Any]] = {
    1: (np.dtype("i1"), -127),
    2: (np.dtype("S1"), b"\x00"),
    3: (np.dtype(">i2"), -32767),
    4: (np.dtype(">i4"), -2147483647),
    5: (np.dtype(">f4"), 9.969209968386869e36),
    6: (np.dtype(">f8"), 9.969209968386869e36),
    # CDF-5 only
    7: (np.dtype("u1"), 255),
    8: (np.dtype(">u2"), 65535),
    9: (np.dtype(">u4"), 4294967295),
    10: (np.dtype(">i8"), -9223372036854775806),
    11: (np.dtype(">u8"), 18446744073709551614),
}


@dataclass(slots=True)
class Attribute:
    nc_type: int
    #: bytes for NC_CHAR, else a 1-d numpy array in the file's byte order
    value: Any


@dataclass(slots=True)
class Variable:
    name: str
    dimids: list[int]
    attrs: dict[str, Attribute]
    nc_type: int
    vsize: int
    begin: int
    #: filled in by :meth:`Header.layout`
    shape: tuple[int, ...] = ()
    is_record: bool = False
    slab: int = 0  # bytes of one record (record variables) or of the whole variable

    @property
    def dtype(self) -> np.dtype[Any]:
        return TYPES[self.nc_type][0]


@dataclass(slots=True)
class Header:
    version: int
    numrecs: int
    streaming: bool
    dims: list[tuple[str, int]]
    attrs: dict[str, Attribute]
    variables: list[Variable]
    size: int  # bytes of the header itself
    recsize: int = 0
    record_dim: int | None = None
    record_vars: list[Variable] = field(default_factory=list)

    def layout(self, file_size: int, where: str) -> None:
        """Shapes, slab sizes, the record size and (for STREAMING) the record count."""
        unlimited = [i for i, (_, n) in enumerate(self.dims) if n == 0]
        if len(unlimited) > 1:
            raise InvalidInputError(
                f"{where}: more than one unlimited dimension "
                f"({', '.join(self.dims[i][0] for i in unlimited)}); the file is corrupt"
            )
        self.record_dim = unlimited[0] if unlimited else None
        seen: set[str] = set()
        for var in self.variables:
            if var.name in seen:
                raise InvalidInputError(f"{where}: two variables are named {var.name!r}")
            seen.add(var.name)
            for pos, d in enumerate(var.dimids):
                if d >= len(self.dims):
                    raise InvalidInputError(
                        f"{where}: variable {var.name!r} uses dimension id {d}, but the file "
                        f"defines {len(self.dims)} dimensions"
                    )
                if d == self.record_dim and pos != 0:
                    raise InvalidInputError(
                        f"{where}: variable {var.name!r} uses the unlimited dimension in "
                        f"position {pos}; only the first dimension may be unlimited"
                    )
            var.is_record = bool(var.dimids) and var.dimids[0] == self.record_dim
            fixed = var.dimids[1:] if var.is_record else var.dimids
            var.slab = math.prod(self.dims[d][1] for d in fixed) * var.dtype.itemsize
            if var.begin < self.size:
                raise InvalidInputError(
                    f"{where}: variable {var.name!r} begins at byte {var.begin}, inside the "
                    f"{self.size}-byte header; the file is corrupt"
                )
        self.record_vars = [v for v in self.variables if v.is_record]
        if len(self.record_vars) == 1:
            self.recsize = self.record_vars[0].slab  # the one case without padding
        else:
            self.recsize = sum(_round4(v.slab) for v in self.record_vars)
        if self.streaming:
            self.numrecs = self._records_in(file_size)
        for var in self.variables:
            shape = [self.dims[d][1] for d in var.dimids]
            if var.is_record:
                shape[0] = self.numrecs
            var.shape = tuple(shape)

    def _records_in(self, file_size: int) -> int:
        """How many complete records a file of ``file_size`` bytes holds."""
        if not self.record_vars or self.recsize == 0:
            return 0
        last = max(v.begin + v.slab for v in self.record_vars)
        if last > file_size:
            return 0
        return (file_size - last) // self.recsize + 1


def _round4(n: int) -> int:
    return n + (-n % 4)


# ---------------------------------------------------------------------- header parsing
class _Cursor:
    """Sequential big-endian reads from the start of a file, fetching as needed."""

    def __init__(self, f: Any, file_size: int, where: str) -> None:
        self.f = f
        self.file_size = file_size
        self.where = where
        self.buf = bytearray()
        self.pos = 0

    def _need(self, n: int) -> None:
        end = self.pos + n
        if end > self.file_size:
            raise InvalidInputError(
                f"{self.where}: the header ends early (needs byte {end}, the file has "
                f"{self.file_size}); the file is truncated or not a NetCDF classic file"
            )
        while len(self.buf) < end:
            want = min(self.file_size, max(end, 2 * len(self.buf), 65536)) - len(self.buf)
            self.f.seek(len(self.buf))
            chunk = self.f.read(want)
            if not chunk:
                raise InvalidInputError(
                    f"{self.where}: the file ended at byte {len(self.buf)} while reading the "
                    "header; it is truncated"
                )
            self.buf += chunk

    def read(self, n: int) -> bytes:
        self._need(n)
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def skip_padding(self, n: int) -> None:
        pad = -n % 4
        if pad:
            self._need(pad)
            self.pos += pad

    def int32(self) -> int:
        return int(struct.unpack(">i", self.read(4))[0])

    def uint32(self) -> int:
        return int(struct.unpack(">I", self.read(4))[0])

    def int64(self) -> int:
        return int(struct.unpack(">q", self.read(8))[0])

    def uint64(self) -> int:
        return int(struct.unpack(">Q", self.read(8))[0])

    def remaining(self) -> int:
        return self.file_size - self.pos


class _Parser:
    def __init__(self, cur: _Cursor) -> None:
        self.cur = cur
        self.where = cur.where
        self.version = 0

    def bad(self, what: str) -> InvalidInputError:
        return InvalidInputError(
            f"{self.where}: {what} (header byte {self.cur.pos}); the file is corrupt"
        )

    def non_neg(self, what: str) -> int:
        n = self.cur.int64() if self.version == 5 else self.cur.int32()
        if n < 0:
            raise self.bad(f"negative {what} {n}")
        return n

    def count(self, what: str, min_bytes: int) -> int:
        n = self.non_neg(what)
        if n * min_bytes > self.cur.remaining():
            raise self.bad(f"{what} {n} cannot fit in the rest of the file")
        return n

    def name(self, what: str) -> str:
        n = self.count(f"{what} name length", 1)
        if n == 0:
            raise self.bad(f"empty {what} name")
        raw = self.cur.read(n)
        self.cur.skip_padding(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")  # names predating the UTF-8 rule (as scipy reads them)

    def list_header(self, tag: int, what: str, min_bytes: int) -> int:
        got = self.cur.int32()
        n = self.count(f"number of {what}", min_bytes)
        if got == 0:
            if n != 0:
                raise self.bad(f"absent {what} list with {n} elements")
            return 0
        if got != tag:
            raise self.bad(f"expected the {what} list tag {tag}, found {got}")
        return n

    def parse(self) -> Header:
        cur = self.cur
        magic = cur.read(4)
        if magic[:3] != b"CDF" or magic[3] not in (1, 2, 5):
            raise InvalidInputError(
                f"{self.where}: not a NetCDF classic file (first bytes {magic!r}; expected "
                "b'CDF' and version 1, 2 or 5)"
            )
        self.version = magic[3]
        if self.version == 5:
            numrecs = cur.uint64()
            streaming = numrecs == 2**64 - 1
        else:
            numrecs = cur.uint32()
            streaming = numrecs == 2**32 - 1
        word = 8 if self.version == 5 else 4
        dims: list[tuple[str, int]] = []
        for _ in range(self.list_header(NC_DIMENSION, "dimensions", 2 * word)):
            name = self.name("dimension")
            dims.append((name, self.non_neg(f"length of dimension {name!r}")))
        names = [d[0] for d in dims]
        if len(set(names)) != len(names):
            raise self.bad("duplicate dimension names")
        gatts = self.attributes("global")
        variables = []
        for _ in range(self.list_header(NC_VARIABLE, "variables", 4 * word + 12)):
            variables.append(self.variable())
        return Header(
            version=self.version,
            numrecs=0 if streaming else numrecs,
            streaming=streaming,
            dims=dims,
            attrs=gatts,
            variables=variables,
            size=cur.pos,
        )

    def attributes(self, owner: str) -> dict[str, Attribute]:
        word = 8 if self.version == 5 else 4
        out: dict[str, Attribute] = {}
        for _ in range(self.list_header(NC_ATTRIBUTE, f"{owner} attributes", 2 * word + 4)):
            name = self.name("attribute")
            nc_type = self.cur.int32()
            if nc_type not in TYPES or (nc_type > 6 and self.version != 5):
                raise self.bad(f"attribute {name!r} of {owner} has unknown type {nc_type}")
            dtype = TYPES[nc_type][0]
            n = self.count(f"length of attribute {name!r}", dtype.itemsize)
            raw = self.cur.read(n * dtype.itemsize)
            self.cur.skip_padding(n * dtype.itemsize)
            out[name] = Attribute(
                nc_type, raw if nc_type == NC_CHAR else np.frombuffer(raw, dtype=dtype)
            )
        return out

    def variable(self) -> Variable:
        name = self.name("variable")
        word = 8 if self.version == 5 else 4
        ndims = self.count(f"rank of variable {name!r}", word)
        dimids = [self.non_neg(f"dimension id of variable {name!r}") for _ in range(ndims)]
        attrs = self.attributes(f"variable {name!r}")
        nc_type = self.cur.int32()
        if nc_type not in TYPES or (nc_type > 6 and self.version != 5):
            raise self.bad(f"variable {name!r} has unknown type {nc_type}")
        vsize = self.cur.uint64() if self.version == 5 else self.cur.uint32()
        begin = self.cur.int32() if self.version == 1 else self.cur.int64()
        if begin < 0:
            raise self.bad(f"variable {name!r} begins at negative offset {begin}")
        return Variable(name, dimids, attrs, nc_type, vsize, begin)


def parse_header(f: Any, file_size: int, where: str = "source") -> Header:
    """The header of a NetCDF classic file open for binary reading, laid out for a file of
    ``file_size`` bytes. Raises :class:`InvalidInputError` for anything malformed."""
    header = _Parser(_Cursor(f, file_size, where)).parse()
    header.layout(file_size, where)
    return header


class _RangeFile:
    """``seek``/``read`` as one ranged GET each (no read-ahead of a whole block)."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path, self.pos = fs, path, 0

    def seek(self, pos: int) -> None:
        self.pos = pos

    def read(self, n: int) -> bytes:
        data = bytes(self.fs.cat_file(self.path, start=self.pos, end=self.pos + n))
        self.pos += len(data)
        return data


def _read_header(
    url: str, file_size: int, storage_options: Mapping[str, Any] | None, where: str
) -> Header:
    path = local_path(url)
    try:
        if path is not None:
            with open(path, "rb") as f:
                return parse_header(f, file_size, where)
        import fsspec

        try:
            fs, remote = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
            return parse_header(_RangeFile(fs, remote), file_size, where)
        except (ZarrchiveError, OSError):
            raise
        except Exception as exc:  # client libraries' own errors (botocore, aiohttp, ...)
            raise StorageError(f"cannot read the header of {url!r}: {exc!r}") from exc
    except FileNotFoundError:
        raise NotFoundError(f"source {url!r} does not exist") from None
    except (IsADirectoryError, NotADirectoryError) as exc:
        raise InvalidInputError(f"{url!r} is not a file: {exc}") from exc
    except OSError as exc:
        raise StorageError(f"cannot read the header of {url!r}: {exc}") from exc


# ---------------------------------------------------------------------- metadata
def _json_number(x: Any) -> Any:
    v = x.item() if isinstance(x, np.generic) else x
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def _json_attr(att: Attribute) -> Any:
    """An attribute as JSON: text, a number or a list of numbers (NaN and infinities stay
    floats, as xarray's NetCDF engines show them)."""
    if att.nc_type == NC_CHAR:
        return att.value.rstrip(b"\x00").decode("utf-8", "replace")
    values = att.value.tolist()
    return values[0] if len(values) == 1 else values


def _fill(var: Variable, where: str) -> tuple[Any, Any]:
    """(the Zarr fill value, xarray's ``_FillValue`` or None) of a variable.

    Like xarray's NetCDF engines: only an explicit ``_FillValue`` masks; an integer
    variable's NaN or non-integral ``_FillValue`` cannot match any value and is dropped.
    """
    dtype, default = TYPES[var.nc_type]
    att = var.attrs.get("_FillValue")
    if var.nc_type == NC_CHAR:
        if att is not None and att.nc_type == NC_CHAR and att.value[:1]:
            return att.value[:1], None
        return default, None
    if att is None or att.nc_type == NC_CHAR or len(att.value) == 0:
        return default, None
    if len(att.value) > 1:
        warnings.warn(
            f"{where}: variable {var.name!r} has {len(att.value)} _FillValue values; only the "
            "first is kept as the mask value",
            UserWarning,
            stacklevel=3,
        )
    value = att.value[0].item()
    if dtype.kind == "f":
        return float(value), float(value)
    if not (isinstance(value, int) or (math.isfinite(value) and float(value).is_integer())):
        return default, None
    value = int(value)
    info = np.iinfo(dtype)
    if not info.min <= value <= info.max:
        return default, None
    return value, value


def _v2_fill(value: Any, dtype: np.dtype[Any]) -> Any:
    if dtype.kind == "S":
        return base64.standard_b64encode(value).decode()
    if dtype.kind == "f":
        return _json_number(float(value))
    return int(value)


_RESERVED = ("zarr.json",)


def _check_name(name: str, where: str) -> None:
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidInputError(
            f"{where}: variable name {name!r} contains control characters, which NetCDF names "
            "cannot hold; the file is corrupt"
        )
    if name in (".", "..") or name.startswith("__") or "/" in name or name in _RESERVED:
        raise UnsupportedFeatureError(
            f"{where}: variable {name!r} has a name that cannot be a Zarr node name ('.', "
            "'..', names starting with '__', containing '/' or equal to 'zarr.json'); rename "
            "it in the file (e.g. with ncrename) before importing"
        )


def _array_meta(header: Header, var: Variable, chunks: tuple[int, ...], where: str) -> dict:
    dtype = var.dtype
    fill, xr_fill = _fill(var, where)
    attrs: dict[str, Any] = {
        name: _json_attr(att) for name, att in var.attrs.items() if name != "_FillValue"
    }
    attrs["_ARRAY_DIMENSIONS"] = [header.dims[d][0] for d in var.dimids]
    if xr_fill is not None:
        attrs["_FillValue"] = xr_fill
    zarray = {
        "zarr_format": 2,
        "shape": list(var.shape),
        "chunks": list(chunks),
        "dtype": dtype.str,
        "fill_value": _v2_fill(fill, dtype),
        "order": "C",
        "filters": None,
        "compressor": None,
    }
    meta = convert_array(zarray, attrs, where=f"{where}: variable {var.name!r}")
    if xr_fill is None:
        # convert_array turns a v2 fill value into xarray's _FillValue (a mask); NetCDF's
        # default fill value is no mask unless the file says so
        meta.get("attributes", {}).pop("_FillValue", None)
    return meta


# ---------------------------------------------------------------------- references
def _chunking(
    header: Header, var: Variable, file_size: int, max_chunk_bytes: int | None
) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, int]:
    """(chunk shape, chunk coordinates, offsets, length of every chunk)."""
    ndim = len(var.shape)
    if var.is_record:
        n = var.shape[0]
        coords = np.zeros((n, ndim), dtype=np.int64)
        coords[:, 0] = np.arange(n)
        offsets = var.begin + np.arange(n, dtype=np.int64) * header.recsize
        return (1, *var.shape[1:]), coords, offsets, var.slab
    whole = (np.zeros((1, ndim), dtype=np.int64), np.array([var.begin], dtype=np.int64))
    if ndim == 0 or max_chunk_bytes is None or var.slab <= max_chunk_bytes or var.shape[0] < 2:
        return var.shape, *whole, var.slab
    rows = var.shape[0]
    row = var.slab // rows
    k = max(1, max_chunk_bytes // row)
    if k >= rows:
        return var.shape, *whole, var.slab
    if var.begin + -(-rows // k) * k * row > file_size:
        # Zarr reads an edge chunk whole, and here the last one would run past the end of the
        # file: use the largest divisor of the row count that keeps chunks at least 1/16 of
        # the target size, or else one chunk
        k = largest_divisor(rows, k)
        if k < max(1, (max_chunk_bytes // row) // 16):
            return var.shape, *whole, var.slab
    n = -(-rows // k)
    coords = np.zeros((n, ndim), dtype=np.int64)
    coords[:, 0] = np.arange(n)
    offsets = var.begin + np.arange(n, dtype=np.int64) * (k * row)
    return (k, *var.shape[1:]), coords, offsets, k * row


def build_tree(
    header: Header,
    url: str,
    file_size: int,
    checksum: str | None,
    *,
    max_chunk_bytes: int | None = DEFAULT_MAX_CHUNK_BYTES,
) -> ImportedTree:
    """The :class:`ImportedTree` of a parsed header: the root group and one array per
    variable, every chunk a virtual reference into ``url``."""
    where = url
    tree = ImportedTree()
    tree.groups[""] = {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {name: _json_attr(att) for name, att in header.attrs.items()},
    }
    past_end = []
    for var in header.variables:
        _check_name(var.name, where)
        n = var.shape[0] if var.is_record else 1
        end = var.begin + (n - 1) * header.recsize + var.slab if n else 0
        if end > file_size:
            past_end.append(f"{var.name!r} (to byte {end})")
    if past_end:
        raise InvalidInputError(
            f"{where}: the file has {file_size} bytes, but the header places data of "
            f"variable(s) {', '.join(past_end)} beyond its end (with {header.numrecs} "
            "records); it is truncated or corrupt"
        )
    for var in header.variables:
        chunks, coords, offsets, length = _chunking(header, var, file_size, max_chunk_bytes)
        meta = _array_meta(header, var, chunks, where)
        refs = Manifest.virtual(
            coords,
            np.zeros(len(offsets), dtype=np.int64),
            offsets,
            np.full(len(offsets), length, dtype=np.int64),
            urls=[url],
            checksums=[checksum],
        )
        tree.arrays[var.name] = ImportedArray(meta, refs)
    return tree


async def scan(
    url: str,
    *,
    stat: StatFn,
    storage_options: Mapping[str, Any] | None = None,
    max_chunk_bytes: int | None = DEFAULT_MAX_CHUNK_BYTES,
    **options: Any,
) -> ImportedTree:
    """Scan a NetCDF classic file (CDF-1, CDF-2 or CDF-5) into an :class:`ImportedTree`.

    Reads only the header. ``max_chunk_bytes``: non-record variables larger than this are
    split along their first axis (None: one chunk per non-record variable).
    """
    if options:
        raise InvalidInputError(
            f"unknown option(s) {', '.join(sorted(options))} for NetCDF classic files; the "
            "importer accepts max_chunk_bytes"
        )
    if max_chunk_bytes is not None and (
        isinstance(max_chunk_bytes, bool)
        or not isinstance(max_chunk_bytes, int)
        or max_chunk_bytes < 1
    ):
        raise InvalidInputError(
            f"max_chunk_bytes must be a positive integer or None, got {max_chunk_bytes!r}"
        )
    try:
        st = await stat(url)
    except FileNotFoundError:
        raise NotFoundError(f"source {url!r} does not exist") from None
    header = await offload(_read_header, url, st.size, storage_options, url)
    tree = build_tree(header, url, st.size, st.checksum, max_chunk_bytes=max_chunk_bytes)
    return tree
