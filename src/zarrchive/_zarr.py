"""Everything zarrchive takes from zarr-python's private modules (``zarr.core.*`` and
``zarr.codecs.numcodecs._codecs``), in one place.

Written for zarr-python 3.1 (``zarr>=3.1,<3.2`` in ``pyproject.toml``). zarr does not promise
these names across releases; following a new release means checking this one file (its
imports, :data:`STOCK_PIPELINE`, :func:`numcodecs_wrappers`, :func:`array_document`), and
running ``tests/test_pipeline.py``: :mod:`zarrchive.pipeline` also reads private *attributes*
of zarr's codec objects (``_codec``, ``_gzip_codec``, ``_zstd_codec``, ``_blosc_codec``,
``_decode_sync``), each through ``getattr`` with a fallback to zarr's own read path, so a
release that renames them makes batched reads slower, not wrong.

What zarr exports publicly is imported from there by the modules that use it, not through
this one: buffers from ``zarr.abc.buffer`` and ``zarr.buffer`` (``default_buffer_prototype``,
``cpu``), data types from ``zarr.dtype``, codecs from ``zarr.abc.codec`` and ``zarr.codecs``,
registration from ``zarr.registry``, stores from ``zarr.abc.store`` and ``zarr.storage``.

Imports only zarr: every zarrchive module may import it.
"""

from __future__ import annotations

import json
from typing import Any

from zarr.buffer import default_buffer_prototype
from zarr.core.array_spec import ArraySpec
from zarr.core.chunk_grids import ChunkGrid
from zarr.core.codec_pipeline import BatchedCodecPipeline, fill_value_or_default
from zarr.core.common import JSON, parse_named_configuration
from zarr.core.dtype.wrapper import TBaseDType, TBaseScalar
from zarr.core.metadata.v2 import ArrayV2Metadata
from zarr.core.metadata.v3 import ArrayV3Metadata
from zarr.core.sync import sync

__all__ = [
    "JSON",
    "STOCK_PIPELINE",
    "ArraySpec",
    "ArrayV2Metadata",
    "ArrayV3Metadata",
    "BatchedCodecPipeline",
    "ChunkGrid",
    "TBaseDType",
    "TBaseScalar",
    "array_document",
    "fill_value_or_default",
    "numcodecs_wrappers",
    "parse_named_configuration",
    "sync",
]

#: ``codec_pipeline.path`` in zarr's default configuration: its stock pipeline
STOCK_PIPELINE = "zarr.core.codec_pipeline.BatchedCodecPipeline"


def numcodecs_wrappers() -> Any:
    """zarr's (private) numcodecs wrapper module, or None if zarr moved it."""
    try:
        from zarr.codecs.numcodecs import _codecs
    except ImportError:  # then those codecs take zarr's own path
        return None
    return _codecs


def array_document(metadata: ArrayV3Metadata) -> dict[str, Any]:
    """The ``zarr.json`` document of ``metadata``, as zarr serialises it."""
    raw = metadata.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()
    document: dict[str, Any] = json.loads(raw)
    return document
