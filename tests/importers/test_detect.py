"""Recognising a source's format by its first bytes."""

from __future__ import annotations

import pytest

from zarrchive.errors import UnsupportedFeatureError
from zarrchive.importers._detect import detect_format

_GRIB2 = b"GRIB\x00\x00\x00\x02" + (1234).to_bytes(8, "big")
_GRIB1 = b"GRIB" + (1234).to_bytes(3, "big") + b"\x01"


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"CDF\x01" + bytes(100), "netcdf3"),
        (b"CDF\x02" + bytes(100), "netcdf3"),
        (b"\x89HDF\r\n\x1a\n" + bytes(100), "hdf5"),
        (bytes(512) + b"\x89HDF\r\n\x1a\n" + bytes(100), "hdf5"),  # a 512-byte user block
        (_GRIB2 + bytes(100), "grib"),
        (_GRIB1 + bytes(100), "grib"),
        (b"II*\x00" + bytes(100), "tiff"),
        (b"MM\x00+" + bytes(100), "tiff"),
        (b"****\r\r\nHRPA50 ECMF 010000\r\r\n" + _GRIB2 + bytes(100), "grib"),  # WMO heading
    ],
)
def test_formats(head: bytes, fmt: str) -> None:
    assert detect_format(head) == fmt


@pytest.mark.parametrize(
    "head",
    [
        b"# GRIB files\n/data/GRIB/gfs.t00z.pgrb2.0p25.f000\n/data/GRIB/gfs.t00z.pgrb2.0p25.f003\n",
        b"GRIB/2024/01/01.grib2\nGRIB/2024/01/02.grib2\n",  # a list starting with GRIB
        b"this README mentions GRIB2 and GRIB1 files",
        b"not a netCDF file",
        b"",
    ],
)
def test_text_is_not_a_format(head: bytes) -> None:
    with pytest.raises(UnsupportedFeatureError, match="unrecognised format"):
        detect_format(head, where="x")
