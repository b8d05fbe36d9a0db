"""Scanned sources, held in the importing process until their order is known.

Owns :class:`_Collector` (results packed as they arrive: reference rows in a
:class:`._layout._RefTable`, layouts and digests interned, coordinates CF-decoded in one
batch per encoding), the order of sources, and scanning the first source again for its
whole tree. Does not touch the session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..importers import FORMATS
from ..sources import container_of
from ._coords import _has_missing, _lt, decode_raw_coordinates, decoding_key
from ._layout import _Layout, _layout_of, _pack, _Packed, _RefTable, _Rows, _same_pack
from ._scan import ScanJob, ScanResult, _check_steps, scan_source


@dataclass(slots=True)
class _Source:
    url: str
    options: dict[str, Any] | None
    layout: _Layout
    digests: tuple[tuple[str, str | None], ...]
    table: _RefTable
    rows: _Rows
    #: the concat coordinate's decoded values (empty until :meth:`_Collector.decode`)
    values: np.ndarray
    #: its stored numbers, until decoded; and what decides how they decode
    raw: np.ndarray | None = None
    decoding: str = ""
    #: decoded attributes and CF encoding of the coordinate (shared by a decoding group)
    coord: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    #: the whole scan result: only the first source in order gets one (scanned again)
    result: ScanResult | None = None

    @property
    def extent(self) -> int:
        return len(self.values)

    @property
    def first(self) -> Any:
        return self.values[0]

    @property
    def units(self) -> Any:
        return self.coord[1].get("units")

    @property
    def refs(self) -> _Packed:
        return self.table.packed(self.rows)


def _is_store(fmt: str) -> bool:
    """A store's objects share its prefix as their container (``fmt`` is "" when unknown)."""
    spec = FORMATS.get(fmt)
    return spec is not None and spec.store


class _Collector:
    """Packs scan results as they arrive: per source only its reference columns and its
    coordinate values are kept (no trees), so memory grows by bytes per source."""

    def __init__(self, dim: str) -> None:
        self.dim = dim
        self.sources: list[_Source] = []
        self.skipped: list[str] = []
        #: URL prefixes of the skipped sources (a file's folder, a store itself)
        self.skipped_prefixes: list[str] = []
        self._interned: dict[Any, Any] = {}
        self.table = _RefTable()
        #: decoding key -> the coordinate's zarr.json of the first source with it
        self._decoding_meta: dict[str, dict[str, Any]] = {}

    def _intern(self, value: Any) -> Any:
        return self._interned.setdefault(value, value)

    def add(self, res: ScanResult, options: dict[str, Any] | None) -> None:
        if res.skipped:
            self.skipped.append(res.url)
            self.skipped_prefixes.append(
                res.url.rstrip("/") + "/" if _is_store(res.format) else container_of(res.url)
            )
            return
        if res.tree is not None:
            metas = {p: a.meta for p, a in res.tree.arrays.items()}
            layout = _layout_of(res.tree.groups, metas, self.dim, res.url)
            steps = res.values if res.values is not None else res.raw
            _check_steps(res.url, layout, metas, self.dim, len(steps))  # type: ignore[arg-type]
            packed, coord_meta = _pack(res.tree, layout), res.tree.arrays[self.dim].meta
        else:
            assert res.layout is not None and res.packed is not None
            assert res.coord_meta is not None
            layout, packed, coord_meta = res.layout, res.packed, res.coord_meta
        src = _Source(
            res.url,
            options,
            self._intern(layout),
            self._intern(tuple(sorted(res.digests.items()))),
            self.table,
            self.table.add(packed),
            _NO_VALUES,
        )
        if res.values is None:
            src.raw = res.raw
            src.decoding = self._intern(decoding_key(coord_meta))
            self._decoding_meta.setdefault(src.decoding, coord_meta)
        else:
            self._set_values(src, res.values, (res.coord_attrs, res.coord_encoding))
        self.sources.append(src)

    def decode(self) -> None:
        """CF-decode every source's coordinate, one batch per decoding key (blocking)."""
        groups: dict[str, list[_Source]] = {}
        for src in self.sources:
            if src.raw is not None:
                groups.setdefault(src.decoding, []).append(src)
        for key, members in groups.items():
            meta = self._decoding_meta[key]
            raws = [s.raw for s in members]
            try:
                decoded = decode_raw_coordinates(self.dim, meta, raws)  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - one by one, to name the source that fails
                decoded = []
                for src in members:
                    try:
                        decoded += decode_raw_coordinates(self.dim, meta, [src.raw])  # type: ignore[list-item]
                    except Exception as exc:
                        raise InvalidInputError(
                            f"{src.url}: its {self.dim!r} coordinate cannot be decoded: "
                            f"{type(exc).__name__}: {exc}"
                        ) from exc
            for src, (values, attrs, enc) in zip(members, decoded, strict=True):
                self._set_values(src, values, (attrs, enc))
                src.raw = None

    def _set_values(self, src: _Source, values: np.ndarray, coord: tuple[Any, Any]) -> None:
        if values.ndim != 1 or len(values) == 0:
            raise InvalidInputError(f"{src.url}: it has no steps along {self.dim!r}")
        if _has_missing(values):
            raise InvalidInputError(f"{src.url}: its {self.dim!r} coordinate has missing values")
        src.values = values
        src.coord = coord


_NO_VALUES = np.zeros(0)


async def _rescan(src: _Source, dim: str) -> ScanResult:
    """The whole scan result of ``src``, scanned again in this process.

    Only the first source in order is needed whole (its groups, static arrays and coordinate
    attributes become the dataset's); keeping every source's tree until the order is known
    would make memory grow with the catalog. The source must not have changed meanwhile.
    """
    res = await asyncio.to_thread(scan_source, ScanJob(src.url, src.options, dim))
    tree = res.tree
    same = tree is not None and res.values is None and res.raw is not None
    if same:
        assert tree is not None and res.raw is not None
        metas = {p: a.meta for p, a in tree.arrays.items()}
        layout = _layout_of(tree.groups, metas, dim, src.url)
        same = (
            layout == src.layout
            and _same_pack(_pack(tree, layout), src.refs)
            and tuple(sorted(res.digests.items())) == src.digests
            and decoding_key(tree.arrays[dim].meta) == src.decoding
            and len(res.raw) == src.extent
        )
    elif tree is not None and res.values is not None:
        same = bool(np.array_equal(res.values, src.values))
    if not same:
        raise InvalidInputError(
            f"{src.url} changed while the catalog was being imported; run the import again"
        )
    res.values = src.values
    res.coord_attrs, res.coord_encoding = src.coord
    return res


class _SortKey:
    """Orders sources by their first coordinate value (comparison errors are reported)."""

    __slots__ = ("v",)

    def __init__(self, src: _Source) -> None:
        self.v = src.first

    def __lt__(self, other: _SortKey) -> bool:
        return _lt(self.v, other.v)
