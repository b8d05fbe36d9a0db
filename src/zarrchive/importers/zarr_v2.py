"""Importer for Zarr v2 stores: every chunk object becomes a whole-object virtual reference.

The store (a local directory or any fsspec URL) is listed once; the listing also gives each
chunk object's size and version (ETag or mtime), so no object is opened or stat-ed twice.
Metadata comes from consolidated ``.zmetadata`` when present (``consolidated=None``, the
default), or from the ``.zgroup`` / ``.zarray`` / ``.zattrs`` documents. From there the store
is a flat Zarr v2 mapping, turned into a tree by ``_v2tree`` exactly like a kerchunk reference
set, with metadata converted to Zarr v3 by zarr-python's own parsing (``_v2meta``).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from typing import Any

import fsspec

from ..errors import InvalidInputError, NotFoundError
from ..sources import SourceStat, _local_stat, _remote_stat, local_path
from ._base import ImportedTree, StatFn
from ._v2tree import scan_mapping

__all__ = ["scan"]

_META = (".zarray", ".zgroup", ".zattrs", ".zmetadata")


def _list(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str, dict[str, Any]]:
    fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    root = root.rstrip("/")
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        raise NotFoundError(f"Zarr store {url!r} does not exist") from None
    cut = len(root) + 1
    return fs, root, {path[cut:]: info for path, info in found.items() if path != root}


async def scan(
    url: str,
    *,
    stat: StatFn,
    storage_options: Mapping[str, Any] | None = None,
    consolidated: bool | None = None,
) -> ImportedTree:
    """Scan the Zarr v2 store at ``url``.

    ``consolidated``: use ``.zmetadata`` (True: required; None: when present; False: never).
    """
    fs, root, listing = await asyncio.to_thread(_list, url, storage_options)
    if not listing:
        raise NotFoundError(f"Zarr store {url!r} is empty or does not exist")
    if "zarr.json" in listing:
        raise InvalidInputError(
            f"{url!r} is a Zarr v3 store; zarrchive imports Zarr v2 stores as virtual "
            "references (copy a v3 hierarchy in through zarr instead)"
        )
    has_consolidated = ".zmetadata" in listing
    if consolidated and not has_consolidated:
        raise NotFoundError(f"Zarr store {url!r} has no consolidated metadata (.zmetadata)")
    use_consolidated = has_consolidated and consolidated is not False
    if not use_consolidated and not any(k.rpartition("/")[2] in _META for k in listing):
        raise InvalidInputError(f"{url!r} is not a Zarr v2 store (no .zgroup or .zarray)")

    def read_json(key: str) -> Any:
        try:
            return json.loads(fs.cat_file(f"{root}/{key}"))
        except ValueError as exc:
            raise InvalidInputError(f"{url}/{key} is not valid JSON: {exc}") from exc

    flat: dict[str, Any] = {}
    if use_consolidated:
        meta = await asyncio.to_thread(read_json, ".zmetadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("metadata"), dict):
            raise InvalidInputError(f"{url}/.zmetadata is not consolidated Zarr v2 metadata")
        flat.update(meta["metadata"])
    else:
        keys = [k for k in listing if k.rpartition("/")[2] in _META[:3]]
        docs = await asyncio.gather(*(asyncio.to_thread(read_json, k) for k in keys))
        flat.update(zip(keys, docs, strict=True))

    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    local = protocol in ("file", "local")
    base = url.rstrip("/")
    stats: dict[str, SourceStat] = {}
    for key, info in listing.items():
        if key.rpartition("/")[2] in _META or key.rpartition("/")[2].startswith("."):
            continue
        chunk_url = f"{base}/{key}"
        flat[key] = [chunk_url]
        if not local:
            stats[chunk_url] = _remote_stat(info)

    async def listed_stat(u: str) -> SourceStat:
        if u in stats:
            return stats[u]
        path = local_path(u)
        if path is not None:
            return _local_stat(os.stat(path))
        return await stat(u)

    return await scan_mapping(flat, stat=listed_stat, storage_options=storage_options)
