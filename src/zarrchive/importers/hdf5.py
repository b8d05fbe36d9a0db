"""Importer for HDF5 files, NetCDF4 included: groups, datasets and attributes as Zarr v3.

Owns the HDF5 / NetCDF4 side of ``add_virtual_hdf`` and ``add_virtual_netcdf``. Parsing is
h5py's: object headers, datatypes, filter pipelines and fill values through its high- and
low-level APIs, chunk locations from ``DatasetID.chunk_iter`` (one call per dataset, which
HDF5 answers from the chunk index without touching chunk data; ``get_chunk_info`` is the
fallback for HDF5 < 1.12.3). Only metadata is read, except for compact datasets (their bytes
live in the object header and are copied inline), chunks at most ``inline_threshold`` bytes
and, on request, small datasets that cannot be virtual. kerchunk is not used: its HDF5
translator is slow on deep hierarchies, can deadlock on attributes holding h5py objects, and
reads compact datasets back as fill values.

What becomes what:

- every HDF5 group is a group (the root, with the file's attributes, is the import point);
  every dataset an array at the same path (NetCDF4's ``_nc4_non_coord_`` name prefix
  dropped; names that are not UTF-8 decoded with U+FFFD). Dimension-scale datasets "without
  data" (NetCDF4 dimensions that are not variables) are left out but still name dimensions.
  Committed datatypes are not data; datasets with a null dataspace (no data at all) and
  further links to an already imported group (which could form cycles) are left out with a
  warning.
- like netCDF-C and h5netcdf, an array is as long as its dimensions: a dataset shorter than
  its (unlimited) dimension reads as the HDF5 fill value past its end.
- chunked datasets keep their chunk grid, one virtual reference per allocated chunk;
  contiguous ones are one chunk, or several virtual chunks along the first axis when larger
  than ``contiguous_chunk_size`` and the first axis divides evenly; compact datasets are one
  inline chunk. Unallocated chunks read as the dataset's HDF5 fill value (the v3
  ``fill_value``), exactly as h5py reads them.
- filters map to codecs in pipeline order: deflate -> ``numcodecs.zlib``, shuffle ->
  ``numcodecs.shuffle`` (element size from the filter's own parameter), fletcher32 ->
  ``numcodecs.fletcher32`` (same checksum and layout as HDF5's), and the hdf5plugin filters
  whose framing a Zarr v3 codec reads: blosc (32001) -> ``blosc``, zstd (32015) -> ``zstd``.
- dimension names follow h5netcdf (for files written by netCDF-C, the names netCDF-C
  gives): NetCDF4 ``_Netcdf4Coordinates`` / ``_Netcdf4Dimid``, ``DIMENSION_LIST``
  references, a dimension scale's own name, and for axes without a scale ``phony_dim_N``
  numbered the way ``h5netcdf.File(phony_dims="sort")`` numbers them. This is hand-written
  because no library exposes the naming without opening the file a second time.
- ``H5Pget_chunk_opts`` (is a dataset's partial edge chunk stored unfiltered?) is called
  through ctypes in h5py's own HDF5 library, which h5py does not wrap; where that library
  cannot be found the option is taken as unset, its default.
- attributes: the hidden NetCDF4 / dimension-scale ones (``_Netcdf4Dimid``,
  ``_Netcdf4Coordinates``, ``_nc3_strict``, ``_NCProperties``, ``DIMENSION_LIST``,
  ``REFERENCE_LIST``, ``CLASS``, ``NAME``) are dropped as h5netcdf drops them; the rest become
  JSON as h5netcdf returns them: numpy scalars and one-element arrays -> numbers, arrays ->
  (nested) lists, fixed-length strings -> str, empty attributes -> ``""`` or ``[]``. NaN and
  infinities stay floats (zarr-python writes them as the JSON tokens ``NaN`` /
  ``Infinity`` and reads them back as floats). ``_FillValue`` is kept only where the file
  has it, encoded the way xarray's Zarr v3 backend decodes it, so xarray masks exactly what
  it masks reading the file (and never masks by the HDF5 fill value alone). Attributes that
  JSON cannot hold (references, compound, complex) are left out with a warning.

  JSON has one number type: a float32 ``scale_factor`` / ``add_offset`` comes back as a
  Python float, so xarray unpacks such variables to float64 where reading the file gives
  float32 (the values agree to float32 precision).

What raises :class:`UnsupportedFeatureError` (naming every such dataset and the reason):
variable-length strings, enum (other than h5py's bool), compound (other than complex),
array, variable-length sequence, reference, opaque, bitfield and time types; integers and
floats of non-standard precision; the szip, n-bit and scale-offset filters, the LZ4 and
bitshuffle plugins (their HDF5 framing has no Zarr v3 codec) and unknown filters; chunks
stored with a filter skipped (nonzero ``filter_mask``) or partial edge chunks stored
unfiltered (``H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS``); external raw-data files, virtual
datasets, external links and dangling soft links.

Corrupt files raise :class:`InvalidInputError` (h5py's exceptions wrapped): chunks off the
chunk grid or past the end of the file, unfiltered chunks of the wrong size, contiguous data
of the wrong size.

Options: ``on_unsupported`` (``"raise"``; ``"skip"`` leaves such datasets out, ``"inline"``
copies those of at most 64 KiB, read and decoded with h5py, into the repository as inline
chunks and leaves out the rest; both issue one ``UserWarning`` naming every dataset
concerned), ``inline_threshold`` (bytes: chunks up to this size are copied inline, default 0)
``contiguous_chunk_size`` (bytes, default 8 MiB; 0 keeps contiguous datasets whole) and
``prefetched`` (the remote file's first bytes, when the caller has read them already, as a
catalog import does to recognise the file: a file no longer than them is parsed from
memory, sparing an open and a read of its own).

Datatypes and filter pipelines are read by :mod:`._hdf5_filters`, attributes by
:mod:`._hdf5_attrs`; this module walks the file and builds the tree.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._sync import offload
from ..errors import InvalidInputError, NotFoundError, UnsupportedFeatureError, ZarrchiveError
from ..format import INLINE, Manifest
from ..sources import local_path
from ._base import ImportedArray, ImportedTree, StatFn
from ._hdf5_attrs import _attr_read, _NotJson, _ObjAttrs, _read_attrs
from ._hdf5_filters import (
    _FILTER_NAMES,
    _H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS,
    _chunk_opts,
    _dtype_of,
    _fill_value,
    _filters,
    _Unsupported,
)
from ._shapes import largest_divisor
from ._v2meta import convert_array, convert_group

__all__ = ["INLINE_UNSUPPORTED_MAX", "OnUnsupported", "scan"]

OnUnsupported = Literal["raise", "skip", "inline"]

#: ``on_unsupported="inline"`` copies datasets up to this many bytes (decoded)
INLINE_UNSUPPORTED_MAX = 64 * 1024
_DEFAULT_CONTIGUOUS_CHUNK = 8 * 1024 * 1024
_MAX_LISTED = 50  # objects named in an error (warnings name them all)

_NOT_A_VARIABLE = b"This is a netCDF dimension but not a netCDF variable"
_NON_COORD = "_nc4_non_coord_"


# ---------------------------------------------------------------------- entry point
async def scan(
    url: str,
    *,
    stat: StatFn,
    storage_options: Mapping[str, Any] | None = None,
    on_unsupported: OnUnsupported = "raise",
    inline_threshold: int = 0,
    contiguous_chunk_size: int | None = _DEFAULT_CONTIGUOUS_CHUNK,
    prefetched: bytes = b"",
    **unknown: Any,
) -> ImportedTree:
    """Scan the HDF5 / NetCDF4 file at ``url`` into an :class:`ImportedTree`."""
    if unknown:
        raise InvalidInputError(
            f"unknown option(s) for HDF5 / NetCDF4 import: {', '.join(sorted(unknown))}; "
            "the options are on_unsupported, inline_threshold, contiguous_chunk_size and "
            "prefetched"
        )
    if on_unsupported not in ("raise", "skip", "inline"):
        raise InvalidInputError(
            f"on_unsupported must be 'raise', 'skip' or 'inline', got {on_unsupported!r}"
        )
    for name, value in (
        ("inline_threshold", inline_threshold),
        ("contiguous_chunk_size", contiguous_chunk_size or 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInputError(f"{name} must be a non-negative integer, got {value!r}")
    try:
        st = await stat(url)
    except FileNotFoundError:
        raise NotFoundError(f"source {url!r} does not exist") from None
    options = _Options(on_unsupported, inline_threshold, contiguous_chunk_size or 0)
    parsed = await offload(_parse_file, url, storage_options, options, st.size, prefetched)

    if parsed.problems and on_unsupported == "raise":
        n = len(parsed.problems)
        listing = "; ".join(f"/{p.path}: {p.reason}" for p in parsed.problems[:_MAX_LISTED])
        if n > _MAX_LISTED:
            listing += f"; and {n - _MAX_LISTED} more"
        raise UnsupportedFeatureError(
            f"{url}: {n} HDF5 object{'s' if n > 1 else ''} cannot be imported as virtual "
            f"chunks: {listing}. Pass on_unsupported='skip' to leave them out, or "
            f"'inline' to copy those of at most {INLINE_UNSUPPORTED_MAX // 1024} KiB into "
            "the repository"
        )

    tree = ImportedTree(groups=parsed.groups)
    checksum = st.checksum
    for path, arr in parsed.arrays.items():
        ndim = len(arr.meta["shape"])
        parts = []
        if len(arr.offsets):
            ends = arr.offsets + arr.lengths
            if int(ends.max()) > st.size or int(arr.offsets.min()) < 0:
                i = int(np.argmax(ends))
                raise InvalidInputError(
                    f"{url}: dataset /{path} has a chunk at bytes {int(arr.offsets[i])}-"
                    f"{int(ends[i])}, past the end of the file ({st.size} bytes); the file is "
                    "truncated or corrupt"
                )
            parts.append(
                Manifest.virtual(
                    arr.coords.reshape(len(arr.offsets), ndim),
                    np.zeros(len(arr.offsets), dtype=np.int64),
                    arr.offsets,
                    arr.lengths,
                    [url],
                    [checksum],
                )
            )
        if arr.inline:
            n = len(arr.inline)
            parts.append(
                Manifest(
                    np.array([c for c, _ in arr.inline], dtype=np.int64).reshape(n, ndim),
                    np.full(n, INLINE, dtype=np.uint8),
                    np.arange(n),
                    np.zeros(n, dtype=np.int64),
                    np.array([len(d) for _, d in arr.inline], dtype=np.int64),
                    inline=[d for _, d in arr.inline],
                )
            )
        if len(parts) == 1:  # one table, one reference per chunk: nothing to merge
            refs = parts[0]
        else:
            refs = Manifest.merge(parts, ndim) if parts else Manifest.empty(ndim)
        tree.arrays[path] = ImportedArray(arr.meta, refs)

    notes = []
    if parsed.problems:
        skipped = [p for p in parsed.problems if p.path not in parsed.inlined]
        if parsed.inlined:
            notes.append(
                f"copied {len(parsed.inlined)} dataset(s) inline (read with h5py) because they "
                "cannot be virtual: "
                + ", ".join(
                    f"/{p.path} ({p.reason})" for p in parsed.problems if p.path in parsed.inlined
                )
            )
        if skipped:
            notes.append(
                f"left out {len(skipped)} object(s) that cannot be imported: "
                + ", ".join(f"/{p.path} ({p.reason}{p.why_not_inlined})" for p in skipped)
            )
    if parsed.notes:
        notes.extend(parsed.notes)
    if notes:
        warnings.warn(f"{url}: " + "; ".join(notes), UserWarning, stacklevel=2)
    return tree


# ---------------------------------------------------------------------- parsing
@dataclass(frozen=True, slots=True)
class _Options:
    on_unsupported: str
    inline_threshold: int
    contiguous_chunk_size: int


@dataclass(slots=True)
class _Problem:
    path: str
    reason: str
    #: what to read it as when inlining: "data", "vlen-str", "enum", or "" (cannot)
    inline_as: str
    why_not_inlined: str = ""


@dataclass(slots=True)
class _Array:
    meta: dict[str, Any]
    coords: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    inline: list[tuple[tuple[int, ...], bytes]] = field(default_factory=list)


@dataclass(slots=True)
class _Parsed:
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrays: dict[str, _Array] = field(default_factory=dict)
    problems: list[_Problem] = field(default_factory=list)
    inlined: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def _parse_file(
    url: str,
    storage_options: Mapping[str, Any] | None,
    options: _Options,
    size: int | None = None,
    prefetched: bytes = b"",
) -> _Parsed:
    """The file's groups, arrays and problems (runs in a worker thread: h5py blocks).

    ``size``: the source's size from its stat (spares remote filesystems a second request).
    ``prefetched``: the remote file's first bytes, if the caller read them already; a file
    no longer than them is parsed from memory, without a request of its own.
    """
    import h5py

    path = local_path(url)
    handles: list[Any] = []
    try:
        try:
            if path is not None:
                raw = open(path, "rb")  # noqa: SIM115 - closed below
                handles.append(raw)
                f = _open_local(h5py, path)
            elif size is not None and len(prefetched) >= size:
                raw = io.BytesIO(prefetched[:size])
                handles.append(raw)
                f = h5py.File(raw, "r", locking=False)
            else:
                import fsspec

                fs, fs_path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
                try:  # HDF5 metadata is scattered: cache whole blocks, not a read-ahead window
                    raw = fs.open(
                        fs_path, "rb", cache_type="blockcache", block_size=1 << 19, size=size
                    )
                except TypeError:
                    raw = fs.open(fs_path, "rb")
                handles.append(raw)
                f = h5py.File(raw, "r", locking=False)
        except FileNotFoundError:
            raise NotFoundError(f"source {url!r} does not exist") from None
        except OSError as exc:
            raise InvalidInputError(
                f"{url} cannot be opened as an HDF5 / NetCDF4 file: {exc}"
            ) from exc
        handles.append(f)

        def read_raw(offset: int, length: int) -> bytes:
            raw.seek(offset)
            data = raw.read(length)
            if len(data) != length:
                raise InvalidInputError(
                    f"{url}: bytes {offset}-{offset + length} lie past the end of the file"
                )
            return bytes(data)

        return _Walker(f, url, options, read_raw).walk()
    except ZarrchiveError:
        raise
    except RecursionError as exc:
        raise InvalidInputError(f"{url}: the HDF5 structure is too deeply nested") from exc
    except Exception as exc:  # h5py raises OSError, KeyError, ValueError, RuntimeError, ...
        raise InvalidInputError(
            f"{url} is not a readable HDF5 / NetCDF4 file (corrupt or truncated?): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        for h in reversed(handles):
            try:
                h.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken file must not mask
                pass


def _open_local(h5py: Any, path: str) -> Any:
    """``h5py.File(path, "r")`` without file locking (a read needs none, and locks fail on
    some network filesystems). HDF5 refuses to open a file a second time in one process
    with other locking flags than the first time (xarray's h5netcdf or netCDF4 engine may
    hold it open with the defaults): then it is opened with the defaults too."""
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        if "locking flag" not in str(exc):
            raise
        return h5py.File(path, "r")


@dataclass(slots=True)
class _Dim:
    name: str
    phony: bool
    dimid: int = -1
    size: int = 0
    unlimited: bool = False
    ds: Any = None  # the scale dataset (unlimited sizes are computed from its users)
    _resolved: bool = False

    def current_size(self, f: Any) -> int:
        if self.unlimited and not self._resolved:
            self._resolved = True
            from h5py import h5a, h5r

            try:
                if h5a.exists(self.ds.id, b"REFERENCE_LIST"):
                    users, _ = _attr_read(h5a.open(self.ds.id, b"REFERENCE_LIST"))
                    for ref, axis in np.asarray(users).reshape(-1).tolist():
                        shape = h5r.dereference(ref, f.id).shape
                        self.size = max(self.size, int(shape[int(axis)]))
            except Exception:  # noqa: BLE001 - a broken REFERENCE_LIST only loses this hint
                pass
        return self.size

    @property
    def maxsize(self) -> int | None:
        return None if self.unlimited else self.size


@dataclass(slots=True)
class _GroupDims:
    parent: _GroupDims | None
    dims: dict[str, _Dim] = field(default_factory=dict)

    def chain(self) -> list[_GroupDims]:
        """This group and its ancestors, root first."""
        out = []
        g: _GroupDims | None = self
        while g is not None:
            out.append(g)
            g = g.parent
        return out[::-1]

    def find(self, name: str) -> bool:
        return any(name in g.dims for g in self.chain())

    def size_of(self, name: str, f: Any) -> int:
        """Size of dimension ``name`` as seen from this group (0 if it is not defined)."""
        g: _GroupDims | None = self
        while g is not None:
            d = g.dims.get(name)
            if d is not None:
                return d.current_size(f)
            g = g.parent
        return 0


def _text(name: str | bytes) -> str:
    """An HDF5 name as text (h5py gives bytes for names that are not valid UTF-8)."""
    return name if isinstance(name, str) else name.decode("utf-8", "replace")


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _is_scale(raw: Mapping[str, Any]) -> bool:
    cls = raw.get("CLASS")
    if isinstance(cls, np.ndarray) and cls.size == 1:
        cls = cls.reshape(()).item()
    if isinstance(cls, str):
        cls = cls.encode()
    return cls == b"DIMENSION_SCALE"


def _not_a_variable(raw: Mapping[str, Any]) -> bool:
    name = raw.get("NAME", b"")
    if isinstance(name, np.ndarray) and name.size == 1:
        name = name.reshape(()).item()
    if isinstance(name, str):
        name = name.encode("utf-8", "replace")
    return isinstance(name, bytes) and _NOT_A_VARIABLE in name


class _Walker:
    """One pass over the file: groups in h5netcdf's order, datasets, dimensions."""

    def __init__(
        self, f: Any, url: str, options: _Options, read_raw: Callable[[int, int], bytes]
    ) -> None:
        self.f = f
        self.url = url
        self.options = options
        self.read_raw = read_raw
        self.out = _Parsed()
        self.real_dims = 0  # h5netcdf's running dimension id
        self.phony_dims = 0
        self.dropped_attrs: list[str] = []

    # ------------------------------------------------------------------ walk
    def walk(self) -> _Parsed:
        import h5py
        from h5py import h5i, h5l, h5o

        f = self.f
        root_key = _obj_key(f)
        visited_groups = {root_key}
        stack: list[tuple[str, Any, _GroupDims | None]] = [("", f, None)]
        while stack:
            path, grp, parent_dims = stack.pop()
            gdims = _GroupDims(parent_dims)
            self.out.groups[path] = convert_group(self._attrs(_read_attrs(grp.id), path))
            datasets: list[tuple[str, Any, _ObjAttrs]] = []
            phony: Counter[int] = Counter()
            children: list[tuple[str, Any]] = []
            for name in grp:
                where = _join(path, _text(name))
                # the low-level API: h5py's high-level one fails on names that are not UTF-8
                bname = name.encode() if isinstance(name, str) else name
                info = grp.id.links.get_info(bname)
                if info.type == h5l.TYPE_EXTERNAL:
                    target = b":".join(grp.id.links.get_val(bname))
                    self._problem(where, f"external link to {_text(target)}", "")
                    continue
                try:
                    oid = h5o.open(grp.id, bname)
                except Exception:
                    if info.type == h5l.TYPE_SOFT:
                        target = grp.id.links.get_val(bname)
                        self._problem(where, f"dangling soft link to {_text(target)}", "")
                        continue
                    raise
                kind = h5i.get_type(oid)
                if kind == h5i.GROUP:
                    obj = h5py.Group(oid)
                elif kind == h5i.DATASET:
                    obj = h5py.Dataset(oid)
                else:
                    continue  # committed datatypes are not data
                if isinstance(obj, h5py.Group):
                    key = _obj_key(obj)
                    if key in visited_groups:
                        self.out.notes.append(
                            f"/{where} is another link to an already imported group: left out"
                        )
                        continue
                    visited_groups.add(key)
                    children.append((name, obj))
                elif isinstance(obj, h5py.Dataset):
                    if obj.shape is None:
                        self.out.notes.append(
                            f"/{where} has a null dataspace (no data, not even a fill value): "
                            "left out"
                        )
                        continue
                    attrs = _read_attrs(oid)
                    raw = attrs.raw
                    if _is_scale(raw):
                        self.real_dims += 1
                        shape = obj.shape or ()
                        maxshape = obj.maxshape or ()
                        dimid = raw.get("_Netcdf4Dimid", self.real_dims - 1)
                        try:
                            dimid = int(np.asarray(dimid).reshape(-1)[0])
                        except (TypeError, ValueError, IndexError):
                            dimid = self.real_dims - 1
                        gdims.dims[_text(name)] = _Dim(
                            _text(name),
                            False,
                            dimid,
                            int(shape[0]) if shape else 0,
                            bool(maxshape) and maxshape[0] is None and len(maxshape) == 1,
                            obj,
                        )
                        if not _not_a_variable(raw):
                            datasets.append((name, obj, attrs))
                    else:
                        if obj.ndim and self._unlabeled(raw, obj.ndim):
                            phony |= Counter(int(s) for s in obj.shape)
                        datasets.append((name, obj, attrs))
            labeled = Counter(d.maxsize for d in gdims.dims.values() if not d.phony)
            for size, count in phony.items():
                for _ in range(labeled[size], count):
                    self._new_phony(gdims, size)
            for name, ds, ds_attrs in datasets:
                out_name = _text(name)
                if out_name.startswith(_NON_COORD):
                    out_name = out_name[len(_NON_COORD) :]
                self._dataset(_join(path, out_name), ds, ds_attrs, gdims, _text(name))
            for name, obj in reversed(children):
                stack.append((_join(path, _text(name)), obj, gdims))
        if self.dropped_attrs:
            self.out.notes.append(
                "left out attributes that JSON cannot hold: " + ", ".join(self.dropped_attrs)
            )
        return self.out

    def _new_phony(self, gdims: _GroupDims, size: int) -> str:
        """A new phony dimension of ``size`` in this group, numbered like h5netcdf's."""
        name = f"phony_dim_{self.phony_dims + self.real_dims}"
        self.phony_dims += 1
        gdims.dims[name] = _Dim(name, True, size=size)
        return name

    @staticmethod
    def _unlabeled(raw: Mapping[str, Any], ndim: int) -> bool:
        counts = _scale_counts(raw.get("DIMENSION_LIST"), ndim)
        return all(c == 0 for c in counts)

    def _problem(self, path: str, reason: str, inline_as: str) -> None:
        self.out.problems.append(_Problem(path, reason, inline_as))

    # ------------------------------------------------------------------ attributes
    def _attrs(self, attrs: _ObjAttrs, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in attrs.plain.items():
            if isinstance(value, _NotJson):
                self.dropped_attrs.append(f"/{path}@{_text(name)} ({value})")
                continue
            out[_text(name)] = value
        return out

    # ------------------------------------------------------------------ dimensions
    def _dims(self, ds: Any, raw: Mapping[str, Any], gdims: _GroupDims, h5name: str) -> list[str]:
        ndim = ds.ndim
        if ndim == 0:
            return []
        if "_Netcdf4Coordinates" in raw and _is_scale(raw):
            order: dict[int, str] = {}
            for g in gdims.chain():
                for name, d in g.dims.items():
                    if not d.phony:
                        order[d.dimid] = name
            try:
                ids = [int(i) for i in np.asarray(raw["_Netcdf4Coordinates"]).reshape(-1)]
            except (TypeError, ValueError):
                ids = []
            names = [order.get(i) for i in ids]
            if len(names) == ndim and all(n is not None for n in names):
                return [str(n) for n in names]
        refs = _scale_refs(raw.get("DIMENSION_LIST"), ndim)
        if refs and all(refs):
            names = [self._ref_name(r[-1]) for r in refs]
            if all(n is not None for n in names):
                return [str(n) for n in names]
        if ndim == 1 and gdims.find(h5name):
            return [h5name]
        dims: list[str] = []
        used: Counter[int] = Counter()
        for axis in range(ndim):
            axis_refs = refs[axis] if refs else []
            name = self._ref_name(axis_refs[0]) if axis_refs else None
            if name is None:
                size = int(ds.shape[axis])
                candidates = [n for n, d in gdims.dims.items() if d.current_size(self.f) == size]
                k = used[size]
                used[size] += 1
                name = candidates[k] if k < len(candidates) else self._new_phony(gdims, size)
            dims.append(name)
        return dims

    def _ref_name(self, ref: Any) -> str | None:
        from h5py import h5r

        try:  # the name alone: opening the object as ``self.f[ref]`` costs 5x more
            name = h5r.get_name(ref, self.f.id)
        except Exception:  # noqa: BLE001 - a dangling reference names no dimension
            return None
        return None if name is None else _text(name).split("/")[-1]

    # ------------------------------------------------------------------ datasets
    def _dataset(self, path: str, ds: Any, read: _ObjAttrs, gdims: _GroupDims, h5name: str) -> None:
        attrs = self._attrs(read, path)
        attrs.pop("_ARRAY_DIMENSIONS", None)
        dims = self._dims(ds, read.raw, gdims, h5name)
        # like netCDF-C and h5netcdf, a variable is as long as its dimensions: a dataset
        # shorter than its (unlimited) dimension reads as the fill value beyond its end
        shape = tuple(
            max(int(s), gdims.size_of(d, self.f)) for s, d in zip(ds.shape, dims, strict=True)
        )
        try:
            self.out.arrays[path] = self._virtual(path, ds, shape, dims, attrs)
        except _Unsupported as exc:
            self._problem(path, exc.reason, exc.inline_as)
            if self.options.on_unsupported == "inline":
                problem = self.out.problems[-1]
                try:
                    self.out.arrays[path] = self._materialise(path, ds, shape, dims, attrs, exc)
                    self.out.inlined.add(path)
                except _Unsupported as why:
                    problem.why_not_inlined = f"; not inlined: {why.reason}"

    def _virtual(
        self,
        path: str,
        ds: Any,
        shape: tuple[int, ...],
        dims: list[str],
        attrs: dict[str, Any],
    ) -> _Array:
        """The dataset as virtual (and inline) chunks; ``shape`` may exceed the dataset's."""
        from h5py import h5d

        dtype = _dtype_of(ds)
        h5shape = tuple(int(s) for s in ds.shape)
        dcpl = ds.id.get_create_plist()
        layout = dcpl.get_layout()
        fill = _fill_value(ds, dtype)
        ndim = len(h5shape)
        nbytes = math.prod(h5shape) * dtype.itemsize
        empty = _Array({}, np.zeros((0, ndim), np.int64), _I64_0, _I64_0)
        if layout == h5d.VIRTUAL:
            raise _Unsupported("virtual dataset (its data lives in other datasets)")
        if dcpl.get_external_count() > 0:
            raise _Unsupported("raw data stored in external files")
        if layout == h5d.COMPACT:
            chunks = tuple(max(1, s) for s in h5shape)
            arr = empty
            arr.meta = _array_meta(path, shape, chunks, dtype, fill, [], dims, attrs)
            if nbytes:
                data = np.ascontiguousarray(ds[()], dtype=dtype).tobytes()
                if len(data) != nbytes:
                    raise InvalidInputError(f"/{path}: compact data has the wrong size")
                arr.inline.append(((0,) * ndim, data))
            return arr
        if layout == h5d.CONTIGUOUS:
            offset = ds.id.get_offset()
            rows = self._contiguous_rows(h5shape, dtype.itemsize)
            chunks = (rows, *h5shape[1:]) if rows else tuple(max(1, s) for s in h5shape)
            arr = empty
            arr.meta = _array_meta(path, shape, chunks, dtype, fill, [], dims, attrs)
            if offset is None or nbytes == 0:
                return arr  # never written: every element is the fill value
            size = ds.id.get_storage_size()
            if size != nbytes:
                raise InvalidInputError(
                    f"/{path}: contiguous storage of {size} bytes for {nbytes} bytes of data"
                )
            if rows:
                n = h5shape[0] // rows
                step = rows * (nbytes // h5shape[0])
                coords = np.zeros((n, ndim), dtype=np.int64)
                coords[:, 0] = np.arange(n)
                offsets = offset + step * np.arange(n, dtype=np.int64)
                lengths = np.full(n, step, dtype=np.int64)
            else:
                coords = np.zeros((1, ndim), dtype=np.int64)
                offsets = np.array([offset], dtype=np.int64)
                lengths = np.array([nbytes], dtype=np.int64)
            return self._with_inlining(arr, coords, offsets, lengths, None)
        if layout != h5d.CHUNKED:
            raise InvalidInputError(f"/{path}: unknown storage layout {layout}")
        chunks = tuple(int(c) for c in dcpl.get_chunk())
        if len(chunks) != ndim or min(chunks, default=1) < 1:
            raise InvalidInputError(f"/{path}: chunk shape {chunks} does not fit shape {shape}")
        filters = _filters(dcpl, dtype.itemsize, path)
        if filters and any(s % c for s, c in zip(h5shape, chunks, strict=True)):
            opts = _chunk_opts(dcpl)
            if opts is not None and opts & _H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS:
                raise _Unsupported(
                    "partial edge chunks are stored unfiltered "
                    "(H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS)"
                )
        arr = empty
        arr.meta = _array_meta(path, shape, chunks, dtype, fill, filters, dims, attrs)
        if nbytes == 0:
            return arr
        starts, masks, offsets, lengths = _chunk_table(ds, ndim)
        nfilters = dcpl.get_nfilters()
        if nfilters and len(masks):
            bad = (masks & ((1 << nfilters) - 1)) != 0
            if bad.any():
                i = int(np.argmax(bad))
                skipped = [
                    _FILTER_NAMES.get(dcpl.get_filter(k)[0], str(dcpl.get_filter(k)[0]))
                    for k in range(nfilters)
                    if int(masks[i]) >> k & 1
                ]
                raise _Unsupported(
                    f"{int(bad.sum())} chunk(s) stored with filter(s) skipped (e.g. the chunk "
                    f"at {tuple(int(v) for v in starts[i])} skipped {', '.join(skipped)})"
                )
        # without a compressing filter every stored chunk has one exact size (edge chunks are
        # stored whole): anything else is a corrupt file (HDF5 itself would pad with zeros)
        if all(c["id"] in ("shuffle", "fletcher32") for c in filters) and len(lengths):
            exact = math.prod(chunks) * dtype.itemsize + 4 * sum(
                c["id"] == "fletcher32" for c in filters
            )
            wrong = lengths != exact
            if wrong.any():
                i = int(np.argmax(wrong))
                raise InvalidInputError(
                    f"/{path}: a chunk of {int(lengths[i])} bytes where "
                    f"{'unfiltered' if not filters else 'shuffled / checksummed'} chunks have "
                    f"{exact} bytes; the file is corrupt"
                )
        chunk_arr = np.asarray(chunks, dtype=np.int64)
        if len(starts) and ((starts % chunk_arr).any() or (starts < 0).any()):
            raise InvalidInputError(f"/{path}: chunk offsets do not lie on the chunk grid")
        coords = starts // chunk_arr if len(starts) else np.zeros((0, ndim), dtype=np.int64)
        grid = np.array([-(-s // c) for s, c in zip(h5shape, chunks, strict=True)], np.int64)
        inside = (coords < grid).all(axis=1) if ndim else np.ones(len(coords), dtype=bool)
        if shape != h5shape and dcpl.get_fill_time() == h5d.FILL_TIME_NEVER:
            ragged = [a for a in range(ndim) if shape[a] > h5shape[a] and h5shape[a] % chunks[a]]
            if ragged and len(coords) and (coords[:, ragged] == grid[ragged] - 1).any():
                raise _Unsupported(
                    "the dataset is shorter than its dimension and its last chunk is only "
                    "partly written, with no fill value (fill time NEVER): the rest of that "
                    "chunk is undefined"
                )
        keep = inside & (lengths > 0)
        if not keep.all():
            coords, offsets, lengths, starts = (
                coords[keep],
                offsets[keep],
                lengths[keep],
                starts[keep],
            )
        return self._with_inlining(arr, coords, offsets, lengths, (ds, starts))

    def _contiguous_rows(self, shape: tuple[int, ...], itemsize: int) -> int:
        """Rows per virtual chunk when splitting a large contiguous dataset (0: don't)."""
        target = self.options.contiguous_chunk_size
        if not target or not shape or shape[0] < 2:
            return 0
        row = math.prod(shape[1:]) * itemsize
        total = row * shape[0]
        if total <= target or row == 0:
            return 0
        best = largest_divisor(shape[0], min(shape[0] - 1, max(1, target // row)))
        # a split into tiny chunks (an awkward first axis) is worse than one chunk
        return best if best and best * row * 8 >= target else 0

    def _with_inlining(
        self,
        arr: _Array,
        coords: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        chunked: tuple[Any, np.ndarray] | None,
    ) -> _Array:
        threshold = self.options.inline_threshold
        small = lengths <= threshold if threshold else np.zeros(len(lengths), dtype=bool)
        for i in np.flatnonzero(small):
            if chunked is not None:
                ds, starts = chunked
                _, data = ds.id.read_direct_chunk(tuple(int(v) for v in starts[i]))
                data = bytes(data)
            else:
                data = self.read_raw(int(offsets[i]), int(lengths[i]))
            arr.inline.append((tuple(int(v) for v in coords[i]), data))
        keep = ~small
        arr.coords = coords[keep].astype(np.int64)
        arr.offsets = offsets[keep].astype(np.int64)
        arr.lengths = lengths[keep].astype(np.int64)
        return arr

    # ------------------------------------------------------------------ inlining
    def _materialise(
        self,
        path: str,
        ds: Any,
        shape: tuple[int, ...],
        dims: list[str],
        attrs: dict[str, Any],
        why: _Unsupported,
    ) -> _Array:
        if not why.inline_as:
            raise _Unsupported("it has no Zarr v3 representation")
        h5shape = tuple(int(s) for s in ds.shape)
        n = math.prod(h5shape)
        itemsize = 16 if why.inline_as == "vlen-str" else ds.dtype.itemsize
        if n * itemsize > INLINE_UNSUPPORTED_MAX:
            raise _Unsupported(
                f"{n * itemsize:,} bytes, more than {INLINE_UNSUPPORTED_MAX // 1024} KiB"
            )
        try:
            import hdf5plugin  # noqa: F401 - registers the plugin filters with h5py's HDF5
        except ImportError:
            pass
        chunks = tuple(max(1, s) for s in h5shape)
        arr = _Array({}, np.zeros((0, len(shape)), np.int64), _I64_0, _I64_0)
        try:
            if why.inline_as == "vlen-str":
                values = np.asarray(ds.asstr(errors="replace")[()], dtype=object)
                values = values.reshape(h5shape)
                arr.meta = _array_meta(
                    path,
                    shape,
                    chunks,
                    np.dtype(object),
                    None,
                    [{"id": "vlen-utf8"}],
                    dims,
                    attrs,
                )
                if n:
                    from numcodecs import VLenUTF8

                    arr.inline.append(
                        ((0,) * len(shape), bytes(VLenUTF8().encode(values.reshape(-1))))
                    )
                return arr
            dtype = np.dtype(ds.dtype.str)  # enums: their base integer type
            if dtype.kind not in "biufcS":
                raise _Unsupported(f"data type {ds.dtype} has no Zarr v3 representation")
            values = np.asarray(ds[()])
        except _Unsupported:
            raise
        except Exception as exc:  # noqa: BLE001 - h5py cannot decode it either
            raise _Unsupported(f"h5py cannot read it ({type(exc).__name__}: {exc})") from exc
        fill = _fill_value(ds, dtype, default_zero=True)
        arr.meta = _array_meta(path, shape, chunks, dtype, fill, [], dims, attrs)
        if n:
            arr.inline.append(
                ((0,) * len(shape), np.ascontiguousarray(values, dtype=dtype).tobytes())
            )
        return arr


_I64_0 = np.zeros(0, dtype=np.int64)


def _obj_key(obj: Any) -> tuple[Any, ...]:
    from h5py import h5o

    info = h5o.get_info(obj.id)
    token = getattr(info, "token", None)
    return (info.fileno, token if token is not None else info.addr)


def _scale_counts(dimlist: Any, ndim: int) -> list[int]:
    if dimlist is None:
        return [0] * ndim
    try:
        counts = [len(np.asarray(refs).reshape(-1)) for refs in np.asarray(dimlist).reshape(-1)]
    except (TypeError, ValueError):
        return [0] * ndim
    return counts if len(counts) == ndim else [0] * ndim


def _scale_refs(dimlist: Any, ndim: int) -> list[list[Any]]:
    if dimlist is None:
        return []
    try:
        refs = [list(np.asarray(r).reshape(-1)) for r in np.asarray(dimlist).reshape(-1)]
    except (TypeError, ValueError):
        return []
    return refs if len(refs) == ndim else []


def _chunk_table(ds: Any, ndim: int) -> tuple[np.ndarray, ...]:
    """(chunk start offsets (n, ndim), filter masks, byte offsets, sizes) of allocated chunks."""
    starts: list[tuple[int, ...]] = []
    masks: list[int] = []
    offsets: list[int] = []
    sizes: list[int] = []

    def visit(info: Any) -> None:
        starts.append(info.chunk_offset)
        masks.append(info.filter_mask)
        offsets.append(info.byte_offset)
        sizes.append(info.size)

    dsid = ds.id
    try:
        dsid.chunk_iter(visit)
    except (AttributeError, NotImplementedError):  # HDF5 < 1.12.3
        for i in range(dsid.get_num_chunks()):
            visit(dsid.get_chunk_info(i))
    n = len(offsets)
    return (
        np.array(starts, dtype=np.int64).reshape(n, ndim),
        np.array(masks, dtype=np.int64),
        np.array([o if o is not None else -1 for o in offsets], dtype=np.int64),
        np.array(sizes, dtype=np.int64),
    )


_META_CACHE: dict[str, dict[str, Any]] = {}


# ---------------------------------------------------------------------- metadata
def _v2_fill(value: Any, dtype: np.dtype[Any]) -> Any:
    """``value`` as a Zarr v2 ``fill_value`` (JSON)."""
    import base64

    if value is None:
        return None
    if dtype.kind == "f":
        v = float(value)
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if dtype.kind == "c":
        return [
            _v2_fill(complex(value).real, np.dtype("f8")),
            _v2_fill(complex(value).imag, np.dtype("f8")),
        ]
    if dtype.kind == "S":
        raw = value if isinstance(value, bytes) else bytes(value)
        return base64.standard_b64encode(raw).decode()
    if dtype.kind == "b":
        return bool(value)
    if dtype.kind in "iu":
        return int(value)
    return None


def _array_meta(
    path: str,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dtype: np.dtype[Any],
    fill: Any,
    filters: list[dict[str, Any]],
    dims: list[str],
    attrs: dict[str, Any],
) -> dict[str, Any]:
    """The Zarr v3 ``zarr.json`` of one dataset (codecs and fill value via ``_v2meta``)."""
    where = f"/{path}"
    zattrs: dict[str, Any] = {"_ARRAY_DIMENSIONS": list(dims)}
    has_fill_attr = "_FillValue" in attrs
    if has_fill_attr:
        fv = attrs["_FillValue"]
        if dtype.kind in "iufcb":
            try:
                np.asarray(fv).astype(dtype, casting="unsafe")
                if isinstance(fv, list | str):
                    raise TypeError
            except (TypeError, ValueError, OverflowError):
                raise InvalidInputError(
                    f"{where}: _FillValue {fv!r} is not a single value of type {dtype}"
                ) from None
        zattrs["_FillValue"] = fv
    zarray = {
        "zarr_format": 2,
        "shape": list(shape),
        "chunks": list(chunks),
        "dtype": "|O" if dtype.kind == "O" else dtype.str,
        "fill_value": _v2_fill(fill, dtype),
        "order": "C",
        "filters": filters or None,
        "compressor": None,
        "dimension_separator": "/",
    }
    # files hold many datasets of the same layout: convert each layout once (zarr's
    # metadata classes cost about a millisecond per array)
    key = json.dumps([zarray, zattrs.get("_FillValue", None), has_fill_attr, len(dims)])
    cached = _META_CACHE.get(key)
    if cached is None:
        placeholder = {**zattrs, "_ARRAY_DIMENSIONS": [f"d{i}" for i in range(len(dims))]}
        try:
            cached = convert_array(zarray, placeholder, where)
        except (TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, ZarrchiveError):
                raise
            raise InvalidInputError(f"{where}: cannot express this dataset: {exc}") from exc
        if len(_META_CACHE) > 4096:
            _META_CACHE.clear()
        _META_CACHE[key] = cached
    doc = json.loads(json.dumps(cached))
    doc["dimension_names"] = list(dims)
    converted = doc.get("attributes") or {}
    out = {k: v for k, v in attrs.items() if k != "_FillValue"}
    if has_fill_attr and "_FillValue" in converted:
        out["_FillValue"] = converted["_FillValue"]
    doc["attributes"] = out
    return doc
