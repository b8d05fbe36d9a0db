"""Catalog imports: many source files become one dataset along a dimension, in one commit.

``Repo.import_catalog(sources, path, concat_dim="time")`` takes a list of URLs, a glob, a
text file with one URL per line, or a JSON/YAML catalog, and builds one virtual dataset at
``path`` the way ``xarray.open_mfdataset(combine="by_coords")`` would combine the files;
``append_catalog`` adds later sources to such a dataset. The pipeline:

1. *Scan* every source with its format's importer (format recognised by magic bytes; Zarr v2
   stores are directories). This process scans, and so do ``workers - 1`` worker processes
   (spawned, see :mod:`._workers`) or the workers of a Dask ``client``. A
   scan returns what the catalog keeps of a source: its layout (what must agree between
   sources), the reference columns of its arrays along the concat dimension, digests of its
   small arrays without that dimension (decoded by zarr), and the stored numbers of its
   concat coordinate. Those are CF-decoded in this process, all sources with the same
   encoding at once (:func:`._coords.decode_raw_coordinates`: what xarray's open path gives, so
   files whose time units differ compare correctly). Sources already in the dataset (same
   URL and checksum in its manifests) are recognised by one ``stat`` and skipped without
   being read.
2. *Validate* before anything is written: same variables, dtypes, codecs, chunking and
   decoding attributes everywhere; the coordinate strictly increasing across sources ordered
   by their first value; every source but the last a whole number of chunks long along the
   dimension; variables without the dimension equal in every source (metadata, and decoded
   values when their chunks hold at most 1 MiB). Errors are :class:`InvalidInputError` naming
   the file and the reason.
3. *Write* in batches of ``batch_size`` sources: each variable's chunk coordinates are shifted
   by the chunks before it and added as one columnar manifest per variable (numpy only, no
   object per reference); the concat coordinate is re-encoded with the first source's units
   and calendar (xarray's CF encoding) and written as native chunks, as are the other
   dimension coordinates, so opening the dataset reads no source file. Each batch is one
   journal entry of a durable session (message ``import_catalog /PATH``), so a crashed run
   is continued by running it again: the active session for the same target is joined and
   the sources in it are skipped. The commit comes last; a failure leaves the branch as it
   was.

Until the order is known, scanned sources are held as rows of a few large column blocks
(:class:`._layout._RefTable`), their layouts and digests interned: a few hundred bytes per source
beyond its references. The first source in order, whose groups, static arrays and
attributes the dataset takes, is scanned once more for its whole tree.

Modules, in the order they depend on each other: :mod:`._layout` (what must agree between
sources; reference columns), :mod:`._coords` (the concat coordinate, decoded and encoded as
xarray does), :mod:`._resolve` (which sources a catalog names), :mod:`._scan` (one source,
in a worker), :mod:`._collect` (scanned sources in the importing process), :mod:`._target`
(the dataset already there), :mod:`._workers` (where scans run), :mod:`._write` (batches
into the session), :mod:`._run` (the whole run).
"""

from ._coords import decode_coordinate, decode_raw_coordinates, encode_coordinate
from ._resolve import Catalog, SourceSpec, resolve_catalog
from ._run import CatalogReport, import_catalog
from ._scan import ScanJob, ScanResult, scan_source, scan_sources

__all__ = [
    "Catalog",
    "CatalogReport",
    "ScanJob",
    "ScanResult",
    "SourceSpec",
    "decode_coordinate",
    "decode_raw_coordinates",
    "encode_coordinate",
    "import_catalog",
    "resolve_catalog",
    "scan_source",
    "scan_sources",
]
