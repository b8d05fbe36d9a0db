"""Zarr v3 key arithmetic: node paths, which node a store key names, chunk keys <-> coordinates.

Pure functions over paths and ``zarr.json`` documents; no I/O. Supports the two chunk key
encodings of the Zarr v3 spec (``default`` with '/' or '.' separators, and ``v2``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import InvalidInputError, UnsupportedFeatureError

__all__ = [
    "META_KEY",
    "chunk_grid_shape",
    "chunk_key_decoder",
    "chunk_key_encoder",
    "chunk_keys",
    "join",
    "normalize_path",
    "validate_metadata",
]

META_KEY = "zarr.json"
_V2_KEYS = (".zarray", ".zgroup", ".zattrs", ".zmetadata")


def normalize_path(path: str) -> str:
    """A node path as the repository keys it: no leading, trailing or doubled ``/``
    (``""`` is the root). Refuses ``.``, ``..`` and names starting with ``__``."""
    if not isinstance(path, str):
        raise InvalidInputError(f"a path must be a string, got {path!r}")
    parts = [p for p in path.strip("/").split("/") if p]
    for p in parts:
        if p in (".", "..") or p.startswith("__"):
            raise InvalidInputError(f"invalid node name {p!r} in path {path!r}")
    return "/".join(parts)


def join(path: str, name: str) -> str:
    """``path/name`` for store paths, where either may be the root ``""``."""
    if not name:
        return path
    return f"{path}/{name}" if path else name


def _encoding(meta: Mapping[str, Any]) -> tuple[str, str]:
    enc = meta.get("chunk_key_encoding") or {"name": "default"}
    name = enc.get("name", "default")
    sep = (enc.get("configuration") or {}).get("separator")
    if name == "default":
        return "default", sep or "/"
    if name == "v2":
        return "v2", sep or "."
    raise UnsupportedFeatureError(f"chunk key encoding {name!r} is not supported")


def chunk_key_decoder(meta: Mapping[str, Any]) -> Callable[[str], tuple[int, ...] | None]:
    """A function mapping a chunk key (relative to its array) to coordinates, or None."""
    name, sep = _encoding(meta)
    ndim = len(meta["shape"])

    def decode(key: str) -> tuple[int, ...] | None:
        if name == "default":
            if ndim == 0:
                return () if key == "c" else None
            if not key.startswith("c" + sep):
                return None
            parts = key[2:].split(sep)
        else:
            if ndim == 0:
                return () if key == "0" else None
            parts = key.split(sep)
        if len(parts) != ndim or not all(p.isdigit() for p in parts):
            return None
        return tuple(int(p) for p in parts)

    return decode


def chunk_key_encoder(meta: Mapping[str, Any]) -> Callable[[Sequence[int]], str]:
    name, sep = _encoding(meta)

    def encode(coords: Sequence[int]) -> str:
        if name == "default":
            return "c" + "".join(f"{sep}{c}" for c in coords)
        return sep.join(str(c) for c in coords) if len(coords) else "0"

    return encode


def chunk_keys(meta: Mapping[str, Any], coords: np.ndarray) -> list[str]:
    """Chunk keys (relative to the array) for rows of ``coords``, built in bulk."""
    name, sep = _encoding(meta)
    rows = coords.tolist()
    if coords.shape[1] == 0:
        return ["c" if name == "default" else "0"] * len(rows)
    fmt = sep.join(["%d"] * coords.shape[1])
    if name == "default":
        fmt = "c" + sep + fmt
    return [fmt % tuple(r) for r in rows]


def chunk_grid_shape(meta: Mapping[str, Any]) -> tuple[int, ...]:
    """Number of chunks along each dimension."""
    shape = meta["shape"]
    grid = meta.get("chunk_grid") or {}
    if grid.get("name") != "regular":
        raise UnsupportedFeatureError(
            f"chunk grid {grid.get('name')!r} is not supported; only 'regular' grids are"
        )
    chunks = grid["configuration"]["chunk_shape"]
    return tuple(math.ceil(s / c) if c else 0 for s, c in zip(shape, chunks, strict=True))


def validate_metadata(key: str, doc: Any) -> dict[str, Any]:
    """Check that ``doc`` is a Zarr v3 group or array document; return it as a dict."""
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{key}: a zarr.json document must be a JSON object")
    if doc.get("zarr_format") != 3:
        raise InvalidInputError(
            f"{key}: zarr_format must be 3 (got {doc.get('zarr_format')!r}); zarrchive "
            "repositories are Zarr v3 hierarchies"
        )
    node_type = doc.get("node_type")
    if node_type == "group":
        return doc
    if node_type != "array":
        raise InvalidInputError(f"{key}: node_type must be 'group' or 'array', got {node_type!r}")
    for field in ("shape", "data_type", "chunk_grid", "codecs"):
        if field not in doc:
            raise InvalidInputError(f"{key}: array metadata lacks the {field!r} field")
    if not isinstance(doc["shape"], list) or not all(
        isinstance(s, int) and s >= 0 for s in doc["shape"]
    ):
        raise InvalidInputError(f"{key}: shape must be a list of non-negative integers")
    chunk_grid_shape(doc)
    _encoding(doc)
    return doc


def is_v2_key(key: str) -> bool:
    return key.rpartition("/")[2] in _V2_KEYS
