"""zarrchive: versioned, virtual Zarr repositories of NetCDF, HDF5, GRIB2, TIFF and Zarr data.

The public names live here; everything else is implementation.
"""

import warnings as _warnings

from .catalog import CatalogReport
from .errors import (
    ConflictError,
    FormatError,
    InvalidInputError,
    NotFoundError,
    ReadOnlyError,
    SourceModifiedError,
    StorageError,
    UnauthorizedSourceError,
    UnsupportedFeatureError,
    ZarrchiveError,
)
from .format import RepositoryConfig
from .history import CommitInfo, CommitLog, Diff, Status
from .importers import ImportSummary
from .journal import SessionInfo
from .maintenance import GCReport
from .pipeline import install as _install_pipeline
from .repo import AsyncRepo, Repo
from .store import ZarrchiveStore
from .verify import VerifyReport

# Imported NetCDF/HDF5 data is decoded with numcodecs codecs (zlib, shuffle, fletcher32) by
# design; zarr warns about every such codec on every array it opens. Say it once, here.
_warnings.filterwarnings(
    "ignore",
    message="Numcodecs codecs are not in the Zarr version 3 specification",
)

# Whole-variable reads from zarrchive stores are batched (see pipeline.py); other stores
# read exactly as before. Skipped when zarr is configured with a non-default pipeline.
_install_pipeline()

__version__ = "0.1.0"

__all__ = [
    "AsyncRepo",
    "CatalogReport",
    "CommitInfo",
    "CommitLog",
    "ConflictError",
    "Diff",
    "FormatError",
    "GCReport",
    "ImportSummary",
    "InvalidInputError",
    "NotFoundError",
    "ReadOnlyError",
    "Repo",
    "RepositoryConfig",
    "SessionInfo",
    "SourceModifiedError",
    "Status",
    "StorageError",
    "UnauthorizedSourceError",
    "UnsupportedFeatureError",
    "VerifyReport",
    "ZarrchiveError",
    "ZarrchiveStore",
    "__version__",
]
