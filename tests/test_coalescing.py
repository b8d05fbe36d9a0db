"""Remote byte ranges requested together are coalesced into few requests."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import zarr

import zarrchive
from zarrchive._sync import sync
from zarrchive.sources import SourceReader, plan_requests


def test_plan_requests_groups_near_ranges() -> None:
    plan = plan_requests([0, 100, 1000, 5000, 100], [100, 100, 10, 10, 50], 500, 10**6)
    assert plan == [(0, 200, [0, 1, 4]), (1000, 1010, [2]), (5000, 5010, [3])]
    assert plan_requests([0, 10], [10, 10], 0, 15) == [(0, 10, [0]), (10, 20, [1])]
    assert plan_requests([], [], 10, 10) == []


@pytest.mark.parametrize("gap, max_requests", [(1 << 20, 1), (0, 64)])
def test_whole_variable_read_from_s3_is_coalesced(s3_server, gap, max_requests) -> None:
    import s3fs

    from conftest import BUCKET

    fs = s3fs.S3FileSystem(**s3_server)
    key = f"{BUCKET}/{uuid.uuid4().hex}/raw.bin"
    values = np.arange(64 * 100, dtype="<f8").reshape(64, 100)
    fs.pipe(key, b"pad" + values.tobytes())
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    arr = repo.root_group.create_array(
        "v", shape=(64, 100), chunks=(1, 100), dtype="<f8", compressors=None
    )
    coords = np.stack([np.arange(64), np.zeros(64, int)], axis=1)
    repo.set_virtual_refs(
        arr.path, coords, f"s3://{key}", 3 + np.arange(64) * 800, np.full(64, 800)
    )
    repo.commit("refs")
    reader = zarrchive.Repo.open(
        repo.repository.storage, authorize_virtual={"s3://": dict(s3_server)}
    )
    reader.repository.sources.coalesce_gap = gap
    # zarr keeps at most async.concurrency chunk reads in flight; let it ask for all at once
    with zarr.config.set({"async.concurrency": 128}):
        np.testing.assert_array_equal(reader.root_group["v"][:], values)
    made = reader.repository.sources.requests_made
    assert 1 <= made <= max_requests


def test_one_version_check_per_object_not_per_chunk(s3_server) -> None:
    """Chunks of one object read together share one ``info`` request (and one coalesced GET)."""
    import s3fs

    from conftest import BUCKET

    fs = s3fs.S3FileSystem(**s3_server)
    key = f"{BUCKET}/{uuid.uuid4().hex}/raw.bin"
    values = np.arange(32 * 10, dtype="<f8").reshape(32, 10)
    fs.pipe(key, values.tobytes())
    url = f"s3://{key}"
    checksum = sync(SourceReader().stat(url, s3_server)).checksum  # what importers record
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    arr = repo.root_group.create_array(
        "v", shape=(32, 10), chunks=(1, 10), dtype="<f8", compressors=None
    )
    coords = np.stack([np.arange(32), np.zeros(32, int)], axis=1)
    repo.set_virtual_refs(
        arr.path, coords, url, np.arange(32) * 80, np.full(32, 80), checksums={url: checksum}
    )
    repo.commit("refs")
    reader = zarrchive.Repo.open(
        repo.repository.storage, authorize_virtual={"s3://": dict(s3_server)}
    )
    with zarr.config.set({"async.concurrency": 64}):
        np.testing.assert_array_equal(reader.root_group["v"][:], values)
    sources = reader.repository.sources
    assert sources.verifications_made == 1
    assert sources.requests_made == 1
    fs.pipe(key, values[::-1].tobytes())  # same size, new ETag: refused once the TTL is over
    sources._verified.clear()
    with pytest.raises(zarrchive.SourceModifiedError, match="changed since it was imported"):
        reader.root_group["v"][:]
