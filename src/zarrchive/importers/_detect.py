"""Recognising a source's format by its first bytes (never by its file name)."""

from __future__ import annotations

from typing import Literal

from ..errors import UnsupportedFeatureError

__all__ = ["Format", "detect_format"]

Format = Literal["netcdf3", "hdf5", "grib", "tiff", "zarr_v2"]

_HDF5 = b"\x89HDF\r\n\x1a\n"


def detect_format(head: bytes, *, where: str = "") -> Format:
    """The format of a file from its first bytes (at least 8; 1024 or more is best).

    HDF5 files may carry a user block: their signature can also sit at 512, 1024, ... bytes.
    """
    if head[:3] == b"CDF" and head[3:4] in (b"\x01", b"\x02", b"\x05"):
        return "netcdf3"
    if head[:8] == _HDF5 or any(head[o : o + 8] == _HDF5 for o in (512, 1024, 2048)):
        return "hdf5"
    if _grib_at(head, 0):
        return "grib"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    # GRIB behind a header, e.g. a WMO bulletin heading
    i = head.find(b"GRIB", 1, 4096)
    while i != -1:
        if _grib_at(head, i):
            return "grib"
        i = head.find(b"GRIB", i + 1, 4096)
    raise UnsupportedFeatureError(
        f"{where or 'source'}: unrecognised format (first bytes {head[:8]!r}); zarrchive "
        "imports NetCDF3, NetCDF4/HDF5, GRIB, TIFF files and Zarr v2 stores"
    )


def _grib_at(head: bytes, i: int) -> bool:
    """Whether a GRIB indicator section starts at ``head[i]``: ``GRIB``, then the edition
    number (0-3, where the GRIB importer accepts it) in its 8th byte. Text that merely
    mentions GRIB (a list of ``.../GRIB/...`` paths) has a printable character there."""
    if head[i : i + 4] != b"GRIB":
        return False
    return len(head) < i + 8 or head[i + 7] in (0, 1, 2, 3)
