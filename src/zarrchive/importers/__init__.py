"""Importers: one module per source format, each returning an :class:`ImportedTree`.

The registry (:mod:`._registry`) is the one place that knows the formats: :func:`sniff`
recognises a source, :func:`scanner` gives its format's ``scan``, and ``Repo`` and the
catalog go through both. Each format has one name, used for its module, in the registry and
in messages: ``netcdf3``, ``hdf5``, ``grib``, ``tiff``, ``zarr_v2`` (kerchunk reference sets
are not sniffed: ``Repo.add_kerchunk_references`` reads them with :mod:`.kerchunk`).

A new format is one module here (``name.py`` with an ``async def scan(url, *, stat,
storage_options=None, **options) -> ImportedTree``, see :class:`Scanner`) plus one
:class:`FormatSpec` line in ``_registry.FORMATS`` (its magic-bytes test, or its directory
test for a store, and the ``Repo`` methods that take it). Catalog imports then recognise and
scan it; a ``Repo.add_virtual_<name>`` method, if it gets one, is a one-line wrapper over
``AsyncRepo._add_virtual`` and shows up in the CLI's ``import`` kinds by itself.

Importers never import each other, the session, the repository or the catalog, and leave
``ImportedTree.source_options`` to their caller (who knows the credentials it was given).
"""

from ._base import ImportedArray, ImportedTree, ImportSummary, Scanner, StatFn
from ._registry import FORMATS, HEAD_BYTES, FormatSpec, detect_format, formats_for, scanner, sniff

__all__ = [
    "FORMATS",
    "HEAD_BYTES",
    "FormatSpec",
    "ImportSummary",
    "ImportedArray",
    "ImportedTree",
    "Scanner",
    "StatFn",
    "detect_format",
    "formats_for",
    "scanner",
    "sniff",
]
