"""The byte envelope every repository object is stored in.

``b"ZRCH"`` magic, one byte naming the object type, a little-endian uint16 format version,
then a zstd-compressed msgpack body. Decoding checks all three so that a truncated, foreign or
newer-format object raises :class:`~zarrchive.errors.FormatError` instead of misreading.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import zstandard

from ..errors import FormatError

__all__ = ["FORMAT_VERSION", "ObjectType", "decode", "encode"]

MAGIC = b"ZRCH"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sBH")


class ObjectType:
    CONFIG = 1
    SNAPSHOT = 2
    MANIFEST = 3
    TRANSACTION = 4
    REF = 5
    SESSION = 6

    NAMES = {
        1: "config",
        2: "snapshot",
        3: "manifest",
        4: "transaction log",
        5: "ref",
        6: "session",
    }


_cctx = zstandard.ZstdCompressor(level=3)


def encode(obj_type: int, body: Any, *, level: int | None = None) -> bytes:
    """Serialise ``body`` (msgpack-able values) as an object of ``obj_type``."""
    packed = msgpack.packb(body, use_bin_type=True)
    cctx = _cctx if level is None else zstandard.ZstdCompressor(level=level)
    return _HEADER.pack(MAGIC, obj_type, FORMAT_VERSION) + cctx.compress(packed)


def decode(obj_type: int, data: bytes, *, what: str = "") -> Any:
    """Parse an object written by :func:`encode`, checking type and format version."""
    name = ObjectType.NAMES.get(obj_type, str(obj_type))
    label = f"{name} {what}".strip()
    if len(data) < _HEADER.size:
        raise FormatError(f"{label} is truncated ({len(data)} bytes); the object is corrupt")
    magic, seen_type, version = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FormatError(f"{label} is not a zarrchive object (bad magic {magic!r})")
    if seen_type != obj_type:
        seen = ObjectType.NAMES.get(seen_type, str(seen_type))
        raise FormatError(f"{label}: expected a {name} object, found a {seen} object")
    if version > FORMAT_VERSION:
        raise FormatError(
            f"{label} has format version {version}, newer than this zarrchive understands "
            f"({FORMAT_VERSION}); upgrade zarrchive to read this repository"
        )
    try:
        raw = zstandard.ZstdDecompressor().decompress(data[_HEADER.size :])
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except (zstandard.ZstdError, ValueError, msgpack.UnpackException) as exc:
        raise FormatError(f"{label} is corrupt: {exc}") from exc
