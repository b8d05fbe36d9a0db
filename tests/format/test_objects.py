"""Snapshots, transaction logs and config: round trips and version checks."""

from __future__ import annotations

import numpy as np
import pytest

from zarrchive.errors import FormatError, InvalidInputError
from zarrchive.format import (
    ManifestRef,
    Node,
    RepositoryConfig,
    Snapshot,
    TransactionLog,
    is_id,
    new_id,
)


def test_ids_are_unique_and_well_formed() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(is_id(i) for i in ids)
    assert not is_id("main") and not is_id("1" * 20) and not is_id("a" * 19)


def test_snapshot_round_trip() -> None:
    nodes = {
        "": Node(new_id(), "", "group", {"zarr_format": 3, "node_type": "group"}),
        "a": Node(new_id(), "a", "array", {"shape": [3]}, (ManifestRef("m1", (0,), 3),), (8,)),
    }
    s = Snapshot(new_id(), None, "msg", "me", metadata={"k": [1, 2]}, nodes=nodes)
    back = Snapshot.from_bytes(s.to_bytes())
    assert back == s
    assert [n.path for n in back.children("")] == ["a"]


def test_transaction_log_round_trip() -> None:
    log = TransactionLog(
        new_groups=("g",),
        new_arrays=("g/a",),
        deleted={"old": "id1"},
        updated_meta={"id2": "x"},
        moved=(("p", "q"),),
        chunks={
            "id3": np.array([[1, 2], [3, 4]], dtype=np.uint32),
            "id4": np.zeros((1, 0), dtype=np.uint32),
        },
    )
    back = TransactionLog.from_bytes(log.to_bytes())
    assert back.deleted == log.deleted and back.moved == log.moved
    assert back.chunks["id3"].tolist() == [[1, 2], [3, 4]]
    assert back.chunks["id4"].shape == (1, 0)
    assert not back.is_empty() and TransactionLog().is_empty()


def test_config_round_trip_and_validation() -> None:
    c = RepositoryConfig(inline_threshold=64, chunkstore="s3://b/chunks")
    assert RepositoryConfig.from_bytes(c.to_bytes()) == c
    with pytest.raises(InvalidInputError):
        RepositoryConfig(inline_threshold=-1)
    with pytest.raises(FormatError):
        Snapshot.from_bytes(c.to_bytes())
