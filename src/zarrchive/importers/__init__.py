"""Importers: one module per source format, each returning an :class:`ImportedTree`."""

from ._base import ImportedArray, ImportedTree, ImportSummary

__all__ = ["ImportSummary", "ImportedArray", "ImportedTree"]
