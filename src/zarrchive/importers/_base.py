"""The intermediate every importer returns: a tree of groups and arrays with references.

Importers parse one source (a file, a store, a reference set) and return an
:class:`ImportedTree`: Zarr v3 ``zarr.json`` documents for groups and arrays, keyed by path
relative to the import point, and for each array its chunk references as one columnar
:class:`~zarrchive.format.Manifest` (virtual and inline entries). They never touch a session
or storage; the session ingests the tree all at once. Importers never import each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..format import Manifest
from ..sources import SourceStat

__all__ = ["ImportSummary", "ImportedArray", "ImportedTree", "Scanner", "StatFn"]

#: stats one source object: ``await stat(url)`` -> size and version (raises FileNotFoundError)
StatFn = Callable[[str], Awaitable[SourceStat]]


class Scanner(Protocol):
    """What every format module exposes as ``scan`` (:func:`~._registry.scanner` hands it out).

    ``url`` is normalised (``file:///abs/path`` for local files); ``storage_options`` open it
    with fsspec; ``stat`` gives the source's checksum (call it once per source object and
    put ``stat.checksum`` in the manifests' ``checksums``). Keyword options are the format's
    own (documented in its module). Only metadata is read, never chunk payloads.
    """

    async def __call__(
        self,
        url: str,
        *,
        stat: StatFn,
        storage_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> ImportedTree: ...


@dataclass(slots=True)
class ImportedArray:
    meta: dict[str, Any]
    refs: Manifest


@dataclass(slots=True)
class ImportedTree:
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrays: dict[str, ImportedArray] = field(default_factory=dict)
    #: storage options per container prefix, set by the caller that was given them (never by
    #: an importer; may hold credentials: only their public part is written to the repository)
    source_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def urls(self) -> set[str]:
        out: set[str] = set()
        for arr in self.arrays.values():
            out.update(arr.refs.urls)
        return out

    def summary(self, path: str) -> ImportSummary:
        refs = sum(len(a.refs) for a in self.arrays.values())
        nbytes = sum(int(a.refs.length.sum()) for a in self.arrays.values())
        return ImportSummary(
            path, len(self.groups), len(self.arrays), refs, len(self.urls()), nbytes
        )


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What one import added."""

    path: str
    groups: int
    arrays: int
    references: int
    sources: int
    bytes_referenced: int

    def __str__(self) -> str:
        return (
            f"imported /{self.path}: {self.arrays} arrays, {self.groups} groups, "
            f"{self.references} chunk references into {self.sources} sources "
            f"({self.bytes_referenced:,} bytes)"
        )
