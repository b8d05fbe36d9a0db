"""HDF5 datatypes and filter pipelines, for the HDF5 importer (:mod:`.hdf5`).

Which NumPy dtype holds a dataset's bytes (:func:`_dtype_of`), the dataset's HDF5 fill value
(:func:`_fill_value`), the numcodecs configurations of its filter pipeline in pipeline order
(:func:`_filters`: deflate, shuffle, fletcher32 and the hdf5plugin blosc and zstd filters;
the others refused), and ``H5Pget_chunk_opts`` called through ctypes in h5py's own HDF5
library, which h5py does not wrap (:func:`_chunk_opts`). What cannot be virtual raises
:class:`_Unsupported`, saying how the dataset could still be copied inline. Works on h5py
objects (h5py is imported where it is used); imports nothing from zarrchive, and never the
importer that uses it.
"""

from __future__ import annotations

import ctypes
import glob
import os
from typing import Any

import numpy as np

_FILTER_NAMES = {
    1: "deflate",
    2: "shuffle",
    3: "fletcher32",
    4: "szip",
    5: "nbit",
    6: "scaleoffset",
    307: "bzip2",
    32000: "lzf",
    32001: "blosc",
    32004: "lz4",
    32008: "bitshuffle",
    32013: "zfp",
    32015: "zstd",
    32017: "sz",
    32026: "blosc2",
}
_BLOSC_CNAMES = {0: "blosclz", 1: "lz4", 2: "lz4hc", 3: "snappy", 4: "zlib", 5: "zstd"}
_H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS = 0x0002


class _Unsupported(Exception):
    """Internal: this dataset cannot be virtual (``inline_as`` says how it can be copied)."""

    def __init__(self, reason: str, inline_as: str = "data") -> None:
        super().__init__(reason)
        self.reason = reason
        self.inline_as = inline_as


def _dtype_of(ds: Any) -> np.dtype[Any]:
    """The numpy dtype whose bytes are the dataset's, or :class:`_Unsupported`."""
    from h5py import h5t

    tid = ds.id.get_type()
    cls = tid.get_class()
    kinds = {
        h5t.INTEGER: "integer type",
        h5t.FLOAT: "float type",
        h5t.ARRAY: "array type",
        h5t.VLEN: "variable-length sequence type",
        h5t.REFERENCE: "reference type",
        h5t.OPAQUE: "opaque type",
        h5t.BITFIELD: "bitfield type",
        h5t.TIME: "time type",
        h5t.COMPOUND: "compound type",
    }
    try:
        dt = ds.dtype
    except (TypeError, ValueError) as exc:  # e.g. a compound holding HDF5 time members
        what = kinds.get(cls, f"HDF5 type class {cls}")
        raise _Unsupported(f"{what} that h5py cannot map to a NumPy type ({exc})", "") from exc
    if cls in (h5t.INTEGER, h5t.FLOAT):
        if dt.kind not in "iuf" or dt.shape:
            raise _Unsupported(f"{'integer' if cls == h5t.INTEGER else 'float'} type {dt}")
        if dt.itemsize > 8:
            # numpy's longdouble (x87 80-bit extended precision in 16 bytes): no Zarr v3
            # data type holds it, and converting would lose precision
            raise _Unsupported(
                f"{8 * dt.itemsize}-bit float ({tid.get_precision()}-bit precision, "
                "long double): Zarr v3 has no such data type",
                "",
            )
        if not tid.equal(h5t.py_create(dt)):
            raise _Unsupported(
                f"non-standard {'integer' if cls == h5t.INTEGER else 'float'} type "
                f"(precision {tid.get_precision()} bits in {tid.get_size()} bytes)"
            )
        return np.dtype(dt.str)
    if cls == h5t.STRING:
        if tid.is_variable_str():
            raise _Unsupported("variable-length strings", "vlen-str")
        if tid.get_strpad() == h5t.STR_SPACEPAD:
            # HDF5 turns the padding spaces into NULs when it reads them
            raise _Unsupported("space-padded fixed-length strings")
        return np.dtype(f"S{tid.get_size()}")
    if cls == h5t.ENUM:
        if dt == np.bool_ and tid.equal(h5t.py_create(dt)):
            return np.dtype(bool)
        raise _Unsupported(f"enum type ({tid.get_nmembers()} members)", "enum")
    if cls == h5t.COMPOUND or cls == getattr(h5t, "COMPLEX", -99):
        if dt.kind == "c":
            if cls != h5t.COMPOUND or tid.equal(h5t.py_create(dt)):
                return np.dtype(dt.str)
            # h5py reads it as complex, converting: its bytes are not numpy's complex
            raise _Unsupported("compound type not laid out as a complex number")
        raise _Unsupported("compound type", "")
    raise _Unsupported(kinds.get(cls, f"HDF5 type class {cls}"), "")


def _fill_value(ds: Any, dtype: np.dtype[Any], default_zero: bool = False) -> Any:
    try:
        value = ds.fillvalue
    except Exception:  # noqa: BLE001 - HDF5 then fills with zeros
        value = None
    if value is None:
        return np.zeros((), dtype=dtype).item() if default_zero else None
    try:
        return np.asarray(value).astype(dtype).reshape(()).item()
    except (TypeError, ValueError):
        return None


def _filters(dcpl: Any, itemsize: int, path: str) -> list[dict[str, Any]]:
    """numcodecs configurations of the dataset's filter pipeline, in pipeline order."""
    out: list[dict[str, Any]] = []
    for i in range(dcpl.get_nfilters()):
        code, _flags, cd, name = dcpl.get_filter(i)
        cd = [int(v) for v in cd]
        label = _FILTER_NAMES.get(code) or (name.decode("utf-8", "replace").split(";")[0] or "?")
        if code == 1:
            out.append({"id": "zlib", "level": cd[0] if cd and 0 <= cd[0] <= 9 else 1})
        elif code == 2:
            out.append({"id": "shuffle", "elementsize": cd[0] if cd and cd[0] > 0 else itemsize})
        elif code == 3:
            out.append({"id": "fletcher32"})
        elif code == 32001:
            cname = _BLOSC_CNAMES.get(cd[6] if len(cd) > 6 else 0)
            if cname is None:
                raise _Unsupported(f"blosc filter with unknown compressor code {cd[6]}")
            out.append(
                {
                    "id": "blosc",
                    "cname": cname,
                    "clevel": cd[4] if len(cd) > 4 else 5,
                    "shuffle": cd[5] if len(cd) > 5 and cd[5] in (0, 1, 2) else 1,
                    "blocksize": 0,
                }
            )
        elif code == 32015:
            out.append({"id": "zstd", "level": cd[0] if cd else 3})
        elif code in (4, 5, 6):
            raise _Unsupported(f"HDF5 {label} filter (id {code}) has no Zarr v3 codec")
        elif code in (32004, 32008):
            raise _Unsupported(
                f"HDF5 {label} filter (id {code}): its HDF5 framing has no Zarr v3 codec"
            )
        else:
            raise _Unsupported(f"HDF5 filter {label!r} (id {code}) has no Zarr v3 codec")
    return out


_LIBHDF5: Any = None


def _chunk_opts(dcpl: Any) -> int | None:
    """``H5Pget_chunk_opts`` of h5py's own HDF5 library (h5py does not wrap it).

    None when the library cannot be found (the option is then assumed unset, its default).
    """
    global _LIBHDF5
    if _LIBHDF5 is None:
        _LIBHDF5 = False
        try:
            import h5py

            candidates = []
            try:
                with open("/proc/self/maps") as maps:
                    candidates = sorted(
                        {
                            line.split()[-1]
                            for line in maps
                            if "libhdf5" in line and "_hl" not in line.rsplit("/", 1)[-1]
                        }
                    )
            except OSError:
                pass
            pkg = os.path.dirname(h5py.__file__)
            mine = [c for c in candidates if "h5py" in c]
            if not mine:
                for pattern in ("../h5py.libs/libhdf5-*", ".dylibs/libhdf5.*", "hdf5.dll"):
                    mine = [p for p in glob.glob(os.path.join(pkg, pattern)) if "_hl" not in p]
                    if mine:
                        break
            if not mine and len(candidates) == 1:
                mine = candidates
            if mine:
                lib = ctypes.CDLL(mine[0])
                fn = lib.H5Pget_chunk_opts
                fn.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_uint)]
                fn.restype = ctypes.c_int
                _LIBHDF5 = fn
        except (OSError, AttributeError):
            _LIBHDF5 = False
    if not _LIBHDF5:
        return None
    opts = ctypes.c_uint(0)
    if _LIBHDF5(dcpl.id, ctypes.byref(opts)) < 0:
        return None
    return int(opts.value)
