"""The immutable repository objects and their encodings. Pure: no I/O, no storage imports."""

from ._envelope import FORMAT_VERSION, ObjectType, decode, encode
from .config import RepositoryConfig
from .ids import is_id, new_id
from .manifest import DELETED, INLINE, NATIVE, VIRTUAL, Manifest, region_of, split_shape
from .snapshot import ManifestRef, Node, Snapshot, parent_path
from .transaction import TransactionLog

__all__ = [
    "DELETED",
    "FORMAT_VERSION",
    "INLINE",
    "NATIVE",
    "VIRTUAL",
    "Manifest",
    "ManifestRef",
    "Node",
    "ObjectType",
    "RepositoryConfig",
    "Snapshot",
    "TransactionLog",
    "decode",
    "encode",
    "is_id",
    "new_id",
    "parent_path",
    "region_of",
    "split_shape",
]
