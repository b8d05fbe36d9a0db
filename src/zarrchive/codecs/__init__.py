"""Zarr v3 codecs that zarrchive's importers write into array metadata.

Importing this package registers every codec with zarr-python (``zarr.registry``), so that a
process that imported it can decode the arrays. Processes that only import zarr find them
through the ``zarr.codecs`` entry points in zarrchive's package metadata.

- ``zarrchive.grib`` (:class:`~zarrchive.codecs.grib.GribCodec`): one whole GRIB message per
  chunk, decoded with ecCodes.
- ``zarrchive.tiff`` (:class:`~zarrchive.codecs.tiff.TiffCodec`): one TIFF strip or tile.
"""

from __future__ import annotations

from .grib import GribCodec
from .tiff import TiffCodec

__all__ = ["GribCodec", "TiffCodec"]
