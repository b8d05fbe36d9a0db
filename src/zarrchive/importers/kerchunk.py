"""Importer for kerchunk reference sets (JSON, compressed JSON, parquet; spec 0 and 1).

A reference set maps Zarr v2 keys to values: metadata documents, inline data (text or
``base64:``), whole-object references ``[url]`` or ranges ``[url, offset, length]``. Spec 1
adds ``templates`` (substituted into URLs) and ``gen`` (references generated from jinja2
expressions over integer ranges). Parquet reference directories (kerchunk's
``refs_to_dataframe`` layout: ``.zmetadata`` with ``record_size``, then
``VAR/refs.N.parq`` with columns path / offset / size / raw, one row per chunk in C order)
are read column-wise with pandas rather than one key at a time.

The result is an :class:`ImportedTree` of Zarr v3 documents (converted by ``_v2meta``) with
one columnar manifest per array. Missing sources, whole-object sizes and checksums are
resolved by one stat per source object, through the caller's ``stat`` function, so this
module does no I/O of its own beyond reading the reference set.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping
from typing import Any

import fsspec

from ..errors import InvalidInputError, NotFoundError, UnsupportedFeatureError
from ._v2tree import scan_mapping

__all__ = ["load_references", "scan_references"]

#: the reference set, once loaded, is a flat Zarr v2 mapping like any other
scan_references = scan_mapping


# ---------------------------------------------------------------------- loading
def load_references(
    refs: Mapping[str, Any] | str | os.PathLike[str],
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The reference set as a flat ``key -> value`` dict, templates and gen expanded.

    Returns the dict and the directory the set was read from (for relative local URLs).
    """
    if isinstance(refs, Mapping):
        return _expand(dict(refs)), None
    if isinstance(refs, os.PathLike):
        refs = os.fspath(refs)
    if not isinstance(refs, str):
        raise InvalidInputError(
            f"refs must be a dict, a JSON file path/URL or a parquet reference directory, "
            f"got {type(refs).__name__}"
        )
    opts = dict(storage_options or {})
    fs, path = fsspec.core.url_to_fs(refs, **opts)
    base = os.path.dirname(path) if fs.protocol in ("file", ("file", "local")) else None
    if fs.isdir(path):
        # like a JSON file, a parquet set (a directory) resolves relative URLs against the
        # directory that holds it
        parent = os.path.dirname(path.rstrip("/")) if base is not None else None
        return _load_parquet(fs, path), parent
    try:
        with fsspec.open(refs, "rb", compression="infer", **opts) as f:
            raw = f.read()
    except FileNotFoundError:
        raise NotFoundError(f"reference file {refs!r} does not exist") from None
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidInputError(
            f"{refs!r} is not a JSON kerchunk reference set ({exc}); parquet reference sets "
            "are directories"
        ) from exc
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{refs!r}: a reference set must be a JSON object")
    return _expand(doc), base


def _expand(doc: dict[str, Any]) -> dict[str, Any]:
    version = doc.get("version")
    if version is None:
        return doc
    if version != 1:
        raise UnsupportedFeatureError(
            f"kerchunk reference spec version {version!r} is not supported (0 and 1 are)"
        )
    templates = {k: str(v) for k, v in (doc.get("templates") or {}).items()}
    out: dict[str, Any] = {}
    for key, value in (doc.get("refs") or {}).items():
        if isinstance(value, list) and value and isinstance(value[0], str) and "{{" in value[0]:
            value = [_render(value[0], templates), *value[1:]]
        out[key] = value
    for spec in doc.get("gen") or ():
        out.update(_generate(spec, templates))
    return out


def _render(text: str, context: Mapping[str, Any]) -> str:
    if "{%" not in text:
        simple = text
        for name, value in context.items():
            simple = simple.replace("{{" + name + "}}", str(value))
            simple = simple.replace("{{ " + name + " }}", str(value))
        if "{{" not in simple:
            return simple
    import jinja2.sandbox

    return jinja2.sandbox.SandboxedEnvironment().from_string(text).render(**context)


def _generate(spec: Mapping[str, Any], templates: Mapping[str, str]) -> dict[str, Any]:
    try:
        dims = spec["dimensions"]
        names = list(dims)
        ranges = []
        for name in names:
            d = dims[name]
            if isinstance(d, list):
                ranges.append(d)
            else:
                ranges.append(range(d.get("start", 0), d["stop"], d.get("step", 1)))
        out: dict[str, Any] = {}
        for values in itertools.product(*ranges):
            ctx = {**templates, **dict(zip(names, values, strict=True))}
            key = _render(spec["key"], ctx)
            url = _render(spec["url"], ctx)
            if "offset" in spec and "length" in spec:
                out[key] = [
                    url,
                    int(_render(str(spec["offset"]), ctx)),
                    int(_render(str(spec["length"]), ctx)),
                ]
            else:
                out[key] = [url]
        return out
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"invalid 'gen' entry {dict(spec)!r}: {exc}") from exc


def _load_parquet(fs: Any, path: str) -> dict[str, Any]:
    import pandas as pd

    try:
        meta = json.loads(fs.cat_file(f"{path}/.zmetadata"))
        record_size = int(meta["record_size"])
        metadata = meta["metadata"]
    except FileNotFoundError:
        raise InvalidInputError(
            f"{path!r} is a directory but not a kerchunk parquet reference set (no .zmetadata)"
        ) from None
    except (KeyError, ValueError) as exc:
        raise InvalidInputError(
            f"{path}/.zmetadata is not kerchunk parquet metadata: {exc}"
        ) from exc
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        out[key] = value
    for key in metadata:
        if not key.endswith("/.zarray"):
            continue
        var = key[: -len("/.zarray")]
        zarray = metadata[key]
        zarray = json.loads(zarray) if isinstance(zarray, str | bytes) else zarray
        files = (
            sorted(
                (p for p in fs.ls(f"{path}/{var}", detail=False) if p.endswith(".parq")),
                key=lambda p: int(p.rsplit(".", 2)[-2]),
            )
            if fs.exists(f"{path}/{var}")
            else []
        )
        frames = []
        for p in files:
            with fs.open(p, "rb") as f:
                df = pd.read_parquet(f)
            df["_record"] = int(p.rsplit(".", 2)[-2])
            frames.append(df)
        if not frames:
            continue
        out[f"{var}/.__columns__"] = (zarray, pd.concat(frames), record_size)
    return out


# ---------------------------------------------------------------------- scanning
