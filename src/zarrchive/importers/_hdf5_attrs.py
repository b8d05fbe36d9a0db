"""HDF5 attributes, read for the HDF5 importer (:mod:`.hdf5`).

:func:`_read_attrs` reads every attribute of one object in one low-level pass, in the file's
attribute order. The hidden NetCDF4 / dimension-scale attributes (``_HIDDEN_ATTRS``) are left
out as h5netcdf leaves them out, except that those naming dimensions (``_RAW_ATTRS``) are kept
raw for the importer's dimension naming; the others become JSON as h5netcdf returns them
(:func:`_attr_json`), or a :class:`_NotJson` saying why they cannot. Works on h5py objects
(h5py is imported where it is used); imports nothing from zarrchive, and never the importer
that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

_HIDDEN_ATTRS = frozenset(
    {
        "REFERENCE_LIST",
        "CLASS",
        "DIMENSION_LIST",
        "NAME",
        "_Netcdf4Dimid",
        "_Netcdf4Coordinates",
        "_nc3_strict",
        "_NCProperties",
    }
)

#: the hidden attributes that name dimensions: read raw, kept out of the JSON attributes
_RAW_ATTRS = frozenset({"CLASS", "NAME", "DIMENSION_LIST", "_Netcdf4Dimid", "_Netcdf4Coordinates"})


@dataclass(slots=True)
class _ObjAttrs:
    """One object's attributes, read in one low-level pass: ``raw`` the dimension hints
    (unreadable ones absent), ``plain`` the others as JSON, or :class:`_NotJson` why not."""

    raw: dict[str, Any] = field(default_factory=dict)
    plain: dict[str | bytes, Any] = field(default_factory=dict)


def _read_attrs(oid: Any) -> _ObjAttrs:
    """Every attribute of the object ``oid`` (a low-level h5py ID).

    Through h5py's low-level API, in the file's attribute order (creation order where the
    file tracks it, else by name, as ``obj.attrs`` iterates): each attribute is opened
    once, and its type and shape are asked for once. ``h5py.AttributeManager`` opens an
    attribute again for each of these, and the scan of a NetCDF4 file spent most of its time
    there. Values are read as ``AttributeManager.__getitem__`` reads them.
    """
    from h5py import h5, h5a, h5f, h5g, h5p

    if isinstance(oid, h5f.FileID):  # the root group's own properties say how it orders
        oid = h5g.open(oid, b"/")
    cpl = oid.get_create_plist()
    tracked = cpl.get_attr_creation_order() & h5p.CRT_ORDER_TRACKED
    names: list[bytes] = []
    h5a.iterate(
        oid,
        lambda name, *_: names.append(name),
        index_type=h5.INDEX_CRT_ORDER if tracked else h5.INDEX_NAME,
    )
    out = _ObjAttrs()
    for bname in names:
        try:
            name: str | bytes = bname.decode("utf-8")
        except UnicodeDecodeError:
            name = bname
        if name in _HIDDEN_ATTRS:
            if name in _RAW_ATTRS:
                try:
                    out.raw[name] = _attr_read(h5a.open(oid, bname))[0]
                except Exception:  # noqa: BLE001, S112 - an unreadable hint is no hint
                    continue
            continue
        try:
            out.plain[name] = _attr_json(*_attr_read(h5a.open(oid, bname)))
        except _NotJson as exc:
            out.plain[name] = exc
        except Exception as exc:  # noqa: BLE001 - h5py cannot read this attribute's type
            out.plain[name] = _NotJson(f"unreadable: {type(exc).__name__}")
    return out


class _NotJson(Exception):
    pass


def _attr_read(attr: Any) -> tuple[Any, np.dtype[Any]]:
    """The value of the open attribute ``attr`` and its numpy type, as h5py's
    ``AttributeManager.__getitem__`` reads it (``h5py.Empty`` for an empty dataspace)."""
    import h5py
    from h5py import h5t

    dtype = attr.dtype
    shape = attr.shape
    if shape is None:
        return h5py.Empty(dtype), dtype
    mtype = h5t.py_create(dtype)
    base = dtype
    if dtype.subdtype is not None:  # numpy has no top-level array type: a wider array
        base, sub = dtype.subdtype
        shape = shape + sub
    arr = np.zeros(shape, dtype=base)
    attr.read(arr, mtype=mtype)
    sinfo = h5t.check_string_dtype(base)
    if sinfo is not None and sinfo.length is None:
        arr = np.array(
            [b.decode("utf-8", "surrogateescape") for b in arr.flat], dtype=base
        ).reshape(arr.shape)
    return (arr[()] if arr.ndim == 0 else arr), dtype


def _attr_json(value: Any, dtype: np.dtype[Any]) -> Any:
    """An attribute's value (from :func:`_attr_read`) as JSON, or :class:`_NotJson`."""
    import h5py

    if isinstance(value, h5py.Empty):
        return "" if h5py.check_string_dtype(value.dtype) is not None else []
    sinfo = h5py.check_string_dtype(dtype)
    if sinfo is not None:
        return _to_json(value, sinfo.encoding)
    if h5py.check_ref_dtype(dtype) is not None:
        raise _NotJson("object reference")
    return _to_json(value, "utf-8")


def _to_json(value: Any, encoding: str) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "Vc":
            raise _NotJson(f"{value.dtype} values")
        if value.ndim == 0 or (value.ndim == 1 and value.size == 1):
            return _to_json(value.reshape(-1)[0], encoding)
        return [_to_json(v, encoding) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode(encoding if encoding != "ascii" else "utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    if isinstance(value, str):
        return value
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer | int):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value)
    if isinstance(value, list | tuple):
        return [_to_json(v, encoding) for v in value]
    raise _NotJson(f"{type(value).__name__} values")
