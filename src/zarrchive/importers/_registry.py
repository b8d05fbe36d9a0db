"""The importer registry: the formats zarrchive imports, how each is recognised, which module
scans it and which ``Repo`` methods take it.

Owns format detection and dispatch for everything above the importers: :func:`sniff`
recognises a source (a file by its first bytes, a store by the names in its directory; never
by a file name), :func:`detect_format` does the same from bytes already read, and
:func:`scanner` gives a format's :class:`~._base.Scanner`. ``repo.py`` and the catalog call
these and hold no table of formats of their own. A format's module is imported only when a
source of that format is scanned, so recognising a file needs no h5py, ecCodes or tifffile.
Imports only ``errors``, ``sources`` and ``_sync`` of zarrchive (never a format module at
import time, nor the session, repository or catalog).
"""

from __future__ import annotations

import importlib
import os
import posixpath
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, cast

from ..errors import InvalidInputError, NotFoundError, UnsupportedFeatureError
from ..sources import local_path
from ._base import Scanner

__all__ = [
    "FORMATS",
    "HEAD_BYTES",
    "FormatSpec",
    "detect_format",
    "formats_for",
    "scanner",
    "sniff",
]

#: bytes of a file's start that recognising it reads
HEAD_BYTES = 4096


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """One importable format; ``name`` is also its module under ``zarrchive.importers``."""

    name: str
    #: what messages call it
    label: str
    #: the ``Repo`` methods that import it; the first one is named for it (messages point there)
    methods: tuple[str, ...]
    #: a file format's test on a file's first bytes (up to :data:`HEAD_BYTES`); None: a store
    magic: Callable[[bytes], bool] | None = None
    #: a store format's test on the names in its top directory; None: a file format
    listing: Callable[[Collection[str]], bool] | None = None
    #: its ``scan`` takes ``prefetched=``: the file's first bytes, when they were read already
    prefetched: bool = False

    @property
    def store(self) -> bool:
        """A directory (or object prefix) of many objects, not one file."""
        return self.magic is None


_HDF5 = b"\x89HDF\r\n\x1a\n"


def _netcdf3(head: bytes) -> bool:
    return head[:3] == b"CDF" and head[3:4] in (b"\x01", b"\x02", b"\x05")


def _hdf5(head: bytes) -> bool:
    """HDF5 files may carry a user block: their signature can also sit at 512, 1024, ..."""
    return any(head[o : o + 8] == _HDF5 for o in (0, 512, 1024, 2048))


def _tiff(head: bytes) -> bool:
    return head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _grib(head: bytes) -> bool:
    """At the start, or behind a header (e.g. a WMO bulletin heading)."""
    i = head.find(b"GRIB", 0, HEAD_BYTES)
    while i != -1:
        if _grib_at(head, i):
            return True
        i = head.find(b"GRIB", i + 1, HEAD_BYTES)
    return False


def _grib_at(head: bytes, i: int) -> bool:
    """Whether a GRIB indicator section starts at ``head[i]``: ``GRIB``, then the edition
    number (0-3, where the GRIB importer accepts it) in its 8th byte. Text that merely
    mentions GRIB (a list of ``.../GRIB/...`` paths) has a printable character there."""
    if head[i : i + 4] != b"GRIB":
        return False
    return len(head) < i + 8 or head[i + 7] in (0, 1, 2, 3)


def _zarr_v2(names: Collection[str]) -> bool:
    return bool({".zgroup", ".zattrs", ".zmetadata", ".zarray"} & set(names))


#: every format, in the order :func:`detect_format` tries them (GRIB last: its signature may
#: sit behind a header, where another format's could not). A new format is a module with a
#: ``scan`` (see :class:`~._base.Scanner`) and one line here.
FORMATS: dict[str, FormatSpec] = {
    f.name: f
    for f in (
        FormatSpec("netcdf3", "NetCDF3", ("add_virtual_netcdf",), magic=_netcdf3),
        FormatSpec(
            "hdf5",
            "NetCDF4/HDF5",
            ("add_virtual_hdf", "add_virtual_netcdf"),
            magic=_hdf5,
            prefetched=True,
        ),
        FormatSpec("tiff", "TIFF", ("add_virtual_tiff",), magic=_tiff),
        FormatSpec("grib", "GRIB", ("add_virtual_grib",), magic=_grib),
        FormatSpec("zarr_v2", "Zarr v2", ("add_virtual_zarr",), listing=_zarr_v2),
    )
}


def formats_for(method: str) -> tuple[str, ...]:
    """The formats that ``Repo.<method>`` imports (``"add_virtual_netcdf"``: netcdf3, hdf5)."""
    return tuple(f.name for f in FORMATS.values() if method in f.methods)


def _supported() -> str:
    files = [f.label for f in FORMATS.values() if not f.store]
    stores = [f.label for f in FORMATS.values() if f.store]
    return f"zarrchive imports {', '.join(files)} files and {', '.join(stores)} stores"


def detect_format(head: bytes, *, where: str = "") -> str:
    """The format of a file from its first bytes (at least 8; 1024 or more is best)."""
    for f in FORMATS.values():
        if f.magic is not None and f.magic(head):
            return f.name
    raise UnsupportedFeatureError(
        f"{where or 'source'}: unrecognised format (first bytes {head[:8]!r}); {_supported()}"
    )


def _store_format(url: str, names: Collection[str]) -> str:
    for f in FORMATS.values():
        if f.listing is not None and f.listing(names):
            return f.name
    stores = " or ".join(f.label for f in FORMATS.values() if f.store)
    raise InvalidInputError(
        f"{url!r} is a directory but not a {stores} store (no .zgroup, .zattrs, .zarray or "
        ".zmetadata in it); give a file or a store, or list the files in it instead"
    )


def sniff(url: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """The format of the source at ``url`` (a local path, ``file://`` or fsspec URL).

    Blocking: reads the first :data:`HEAD_BYTES` of a file, or lists a directory. Raises
    :class:`NotFoundError` when there is nothing at ``url``, :class:`InvalidInputError` when
    it cannot be read or is a directory but not a store, and
    :class:`UnsupportedFeatureError` when its format is none of :data:`FORMATS`.
    """
    path = local_path(url)
    try:
        if path is not None:
            if os.path.isdir(path):
                return _store_format(url, os.listdir(path))
            with open(path, "rb") as f:
                head = f.read(HEAD_BYTES)
        else:  # reading first saves object stores a listing per file
            import fsspec

            fs, p = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
            try:
                head = fs.cat_file(p, start=0, end=HEAD_BYTES)
            except (FileNotFoundError, IsADirectoryError):
                fs.invalidate_cache()  # the listing may be older than the store
                if not fs.isdir(p):
                    raise FileNotFoundError(url) from None
                names = [posixpath.basename(x.rstrip("/")) for x in fs.ls(p, detail=False)]
                return _store_format(url, names)
    except FileNotFoundError:
        raise NotFoundError(f"source {url!r} does not exist") from None
    except OSError as exc:
        raise InvalidInputError(f"source {url!r} cannot be read: {exc}") from exc
    return detect_format(bytes(head), where=url)


def scanner(name: str) -> Scanner:
    """The ``scan`` of format ``name``'s module (imported now, with its libraries)."""
    if name not in FORMATS:
        raise InvalidInputError(f"unknown format {name!r}; the formats are {sorted(FORMATS)}")
    module = importlib.import_module(f"{__package__}.{name}")
    return cast(Scanner, module.scan)
