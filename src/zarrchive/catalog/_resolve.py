"""Which sources a catalog names.

Owns turning what a user passes as ``sources`` (URLs, a glob, a text file of URLs, a
JSON/YAML catalog or mapping) into a :class:`Catalog`: normalised URLs with their storage
options, and the catalog's own ``path`` and ``concat_dim``. Also the fsspec filesystems of
this process for those listings (and the scans' small reads). Imports nothing else of the
catalog.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import (
    InvalidInputError,
    NotFoundError,
    UnsupportedFeatureError,
)
from ..sources import (
    local_path,
    normalize_url,
)

_GLOB_CHARS = "*?["


_CATALOG_KEYS = {"sources", "path", "concat_dim", "storage_options"}


@dataclass(frozen=True, slots=True)
class SourceSpec:
    url: str
    options: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    sources: tuple[SourceSpec, ...]
    path: str | None = None
    concat_dim: str | None = None


_FILESYSTEMS: dict[tuple[str, str], Any] = {}


def _url_to_fs(url: str, options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """``fsspec.core.url_to_fs`` with one (synchronous) filesystem per protocol and options
    in this process: with ``skip_instance_cache`` every call would open a new client."""
    import fsspec

    if "::" in url:  # chained filesystems: nothing to share
        return fsspec.core.url_to_fs(url, **dict(options or {}))
    protocol = fsspec.utils.get_protocol(url)
    key = (protocol, repr(sorted((options or {}).items())))
    fs = _FILESYSTEMS.get(key)
    if fs is None:
        fs, path = fsspec.core.url_to_fs(url, **dict(options or {}))
        _FILESYSTEMS[key] = fs
        return fs, path
    fs.invalidate_cache()  # listings may have changed since the last call
    return fs, fs._strip_protocol(url)


def _merged(*options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for o in options:
        if o:
            out.update(o)
    return out or None


def _is_glob(s: str) -> bool:
    return any(c in s for c in _GLOB_CHARS)


def _expand_glob(pattern: str, options: Mapping[str, Any] | None) -> list[str]:
    fs, path = _url_to_fs(pattern, options)
    found = sorted(fs.glob(path))
    if not found:
        raise NotFoundError(f"the glob {pattern!r} matches no source")
    return [fs.unstrip_protocol(p) for p in found]


def _absolute(entry: str, base: str | None) -> str:
    """``entry`` resolved against the directory ``base`` (a local path or URL prefix)."""
    if "://" in entry or base is None or os.path.isabs(entry):
        return entry
    lp = local_path(base)
    if lp is not None:
        return os.path.join(lp, entry)
    return posixpath.join(base, entry)


def _specs(
    entries: Iterable[Any],
    options: Mapping[str, Any] | None,
    base: str | None,
    where: str,
) -> list[SourceSpec]:
    out: list[SourceSpec] = []
    for entry in entries:
        opts = options
        if isinstance(entry, Mapping):
            url = entry.get("url", entry.get("uri", entry.get("path")))
            extra = set(entry) - {"url", "uri", "path", "storage_options"}
            if extra or not isinstance(url, str):
                raise InvalidInputError(
                    f"{where}: a source entry must be a string or a mapping with 'url' (and "
                    f"optionally 'storage_options'), got {dict(entry)!r}"
                )
            so = entry.get("storage_options")
            if so is not None and not isinstance(so, Mapping):
                raise InvalidInputError(f"{where}: storage_options of {url!r} must be a mapping")
            opts = _merged(options, so)
        elif isinstance(entry, str | os.PathLike):
            url = os.fspath(entry)
        else:
            raise InvalidInputError(f"{where}: a source must be a URL or path, got {entry!r}")
        if not url.strip():
            raise InvalidInputError(f"{where}: empty source URL")
        url = _absolute(url.strip(), base)
        if _is_glob(url):
            out += [SourceSpec(normalize_url(u), opts) for u in _expand_glob(url, opts)]
        else:
            out.append(SourceSpec(normalize_url(url), opts))
    return out


def _catalog_from_doc(
    doc: Any, options: Mapping[str, Any] | None, base: str | None, where: str
) -> Catalog:
    if isinstance(doc, list):
        return Catalog(tuple(_specs(doc, options, base, where)))
    if not isinstance(doc, Mapping):
        raise InvalidInputError(f"{where}: a catalog must be a mapping or a list of sources")
    unknown = set(doc) - _CATALOG_KEYS
    if unknown:
        raise InvalidInputError(
            f"{where}: unknown catalog keys {sorted(unknown)}; a catalog has "
            f"{sorted(_CATALOG_KEYS)}"
        )
    if not isinstance(doc.get("sources"), list):
        raise InvalidInputError(f"{where}: the catalog needs a 'sources' list")
    so = doc.get("storage_options")
    if so is not None and not isinstance(so, Mapping):
        raise InvalidInputError(f"{where}: 'storage_options' must be a mapping")
    for key in ("path", "concat_dim"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise InvalidInputError(f"{where}: {key!r} must be a string")
    return Catalog(
        tuple(_specs(doc["sources"], _merged(options, so), base, where)),
        doc.get("path"),
        doc.get("concat_dim"),
    )


#: names that say "a source", whatever its first bytes (the others may be lists or catalogs)
_DATA_SUFFIXES = (
    ".nc",
    ".nc3",
    ".nc4",
    ".cdf",
    ".h5",
    ".hdf5",
    ".he5",
    ".grib",
    ".grib2",
    ".grb",
    ".grb2",
    ".tif",
    ".tiff",
    ".zarr",
)


def _catalog_from_file(name: str, options: Mapping[str, Any] | None) -> Catalog:
    """A single source, a text file of URLs, or a JSON / YAML catalog file."""
    from ..importers import detect_format

    fs, path = _url_to_fs(name, options)
    try:
        if fs.isdir(path):
            return Catalog((SourceSpec(normalize_url(name), _merged(options)),))
        head = fs.cat_file(path, start=0, end=4096)
    except FileNotFoundError:
        raise NotFoundError(f"catalog or source {name!r} does not exist") from None
    try:
        detect_format(head)
        return Catalog((SourceSpec(normalize_url(name), _merged(options)),))
    except UnsupportedFeatureError:
        # named like a data file: a broken source (its scan says why), not a list of URLs
        if path.lower().endswith(_DATA_SUFFIXES):
            return Catalog((SourceSpec(normalize_url(name), _merged(options)),))
    text = fs.cat_file(path).decode("utf-8", errors="replace")
    url = fs.unstrip_protocol(path) if "://" in name else os.path.abspath(path)
    base = posixpath.dirname(url) if "://" in url else os.path.dirname(url)
    lower = path.lower()
    if lower.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise InvalidInputError(
                f"{name} is a YAML catalog, but PyYAML is not installed; install pyyaml or "
                "write the catalog as JSON"
            ) from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"{name} is not valid YAML: {exc}") from exc
        return _catalog_from_doc(doc, options, base, name)
    if lower.endswith(".json") or text.lstrip().startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"{name} is not valid JSON: {exc}") from exc
        return _catalog_from_doc(doc, options, base, name)
    lines = [ln.strip() for ln in text.splitlines()]
    return Catalog(
        tuple(_specs([ln for ln in lines if ln and not ln.startswith("#")], options, base, name))
    )


def resolve_catalog(sources: Any, storage_options: Mapping[str, Any] | None = None) -> Catalog:
    """The sources (and catalog settings) described by ``sources``.

    ``sources``: a list of URLs or paths (or ``{"url": ..., "storage_options": ...}``
    mappings), a glob (local or fsspec URL), a text file with one URL per line (``#``
    comments; relative entries are relative to the file), a JSON or YAML catalog file or
    mapping with ``sources`` and optionally ``path``, ``concat_dim`` and ``storage_options``,
    or a single source. Globs inside lists and catalogs are expanded.
    """
    if isinstance(sources, os.PathLike):
        sources = os.fspath(sources)
    if isinstance(sources, str):
        if not sources:
            raise InvalidInputError("sources must not be empty")
        if _is_glob(sources):
            urls = _expand_glob(sources, storage_options)
            cat = Catalog(
                tuple(SourceSpec(normalize_url(u), _merged(storage_options)) for u in urls)
            )
        else:
            cat = _catalog_from_file(sources, storage_options)
    elif isinstance(sources, Mapping):
        cat = _catalog_from_doc(sources, storage_options, None, "catalog")
    elif isinstance(sources, Iterable) and not isinstance(sources, bytes):
        cat = Catalog(tuple(_specs(list(sources), storage_options, None, "sources")))
    else:
        raise InvalidInputError(
            f"sources must be a list of URLs, a glob, a text file or a catalog, got {sources!r}"
        )
    if not cat.sources:
        raise InvalidInputError("the catalog lists no sources")
    seen: set[str] = set()
    for spec in cat.sources:
        if spec.url in seen:
            raise InvalidInputError(f"source {spec.url} is listed more than once")
        seen.add(spec.url)
    return cat
