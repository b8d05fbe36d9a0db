"""The "Manage Zarr Data" walk-through, end to end, on memory, local and S3 storage."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import zarr

import zarrchive
from zarrchive.storage import Storage, storage_for


class CountingStorage(Storage):
    """Wraps a real backend and records which keys were read and written."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.location = inner.location
        self.reads: list[str] = []
        self.writes: list[str] = []

    async def get(self, key: str) -> bytes:
        self.reads.append(key)
        return await self.inner.get(key)

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        self.reads.append(key)
        return await self.inner.get_range(key, start, length)

    async def put(self, key: str, data: bytes) -> None:
        self.writes.append(key)
        await self.inner.put(key, data)

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        self.writes.append(key)
        return await self.inner.put_if_absent(key, data)

    async def list(self, prefix: str) -> AsyncIterator[str]:
        async for k in self.inner.list(prefix):
            yield k

    async def delete(self, key: str) -> None:
        self.writes.append(key)
        await self.inner.delete(key)

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)


def test_manage_zarr_data_walkthrough(location: tuple[str, dict[str, Any] | None]) -> None:
    url, options = location
    storage = CountingStorage(storage_for(url, options))
    repo = zarrchive.Repo.create(storage, author="walker")
    assert not repo.status().has_changes

    repo.root_group.attrs["foo"] = "bar"
    assert repo.status().modified == ("",)
    first = repo.commit("first commit")
    log = repo.commit_log
    assert [c.message for c in log] == ["first commit", "Repository initialized"]
    assert log[0].id == first and log[0].author == "walker" and log[0].parent_id == log[1].id

    repo.root_group.attrs["spam"] = "ham"
    second = repo.commit("second commit")
    assert repo.commit_log[0].parent_id == first

    with pytest.warns(UserWarning, match="not the tip of a branch"):
        repo.checkout(first)
    assert dict(repo.root_group.attrs) == {"foo": "bar"}
    with pytest.raises(zarrchive.ReadOnlyError):
        repo.root_group.attrs["nope"] = 1
    with pytest.raises(zarrchive.ReadOnlyError):
        repo.commit("cannot")

    repo.checkout("main")
    assert dict(repo.root_group.attrs) == {"foo": "bar", "spam": "ham"}

    group = repo.root_group.create_group("group")
    arr = group.create_array(
        "array",
        shape=(100,),
        chunks=(10,),
        dtype="f4",
        fill_value=np.nan,
        dimension_names=("x",),
    )
    arr[:50] = np.arange(50, dtype="f4")
    status = repo.status()
    assert set(status.modified) == {"group", "group/array"}
    third = repo.commit("add array")

    arr = repo.root_group["group/array"]
    arr.resize((200,))
    arr[100:] = 7.0
    fourth = repo.commit("resize and append")
    expected_fourth = np.concatenate(
        [np.arange(50, dtype="f4"), np.full(50, np.nan, "f4"), np.full(100, 7.0, "f4")]
    )
    np.testing.assert_array_equal(repo.root_group["group/array"][:], expected_fourth)

    storage.reads.clear()
    storage.writes.clear()
    repo.move("group/array", "group/renamed")
    repo.move("group", "moved")
    assert not [
        k for k in storage.reads + storage.writes if k.startswith(("chunks/", "manifests/"))
    ]
    fifth = repo.commit("moves")
    assert not [k for k in storage.writes if k.startswith(("chunks/", "manifests/"))]
    np.testing.assert_array_equal(repo.root_group["moved/renamed"][:], expected_fourth)
    assert "group" not in repo.root_group

    root = repo.root_group
    del root["moved/renamed"]
    del root["moved"]
    assert set(repo.status().deleted) == {"moved", "moved/renamed"}
    sixth = repo.commit("delete")
    assert list(repo.root_group.keys()) == []

    # every earlier commit reads exactly what it held
    expected_third = np.concatenate([np.arange(50, dtype="f4"), np.full(50, np.nan, "f4")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for commit, path, values in (
            (third, "group/array", expected_third),
            (fourth, "group/array", expected_fourth),
            (fifth, "moved/renamed", expected_fourth),
        ):
            repo.checkout(commit)
            np.testing.assert_array_equal(repo.root_group[path][:], values)
        repo.checkout(second)
        assert list(repo.root_group.keys()) == []
        repo.checkout(sixth)
        assert dict(repo.root_group.attrs) == {"foo": "bar", "spam": "ham"}

    # the same history is visible to a fresh reader through plain zarr and xarray
    reader = zarrchive.Repo.open(url, storage_options=options, ref=fourth)
    g = zarr.open_group(store=reader.store, mode="r")
    np.testing.assert_array_equal(g["group/array"][:], expected_fourth)
    ds = reader.to_xarray("group")
    np.testing.assert_array_equal(ds["array"].values, expected_fourth)
    assert [c.id for c in reader.commit_log][:1] == [fourth]


def test_chunks_land_in_storage_and_small_ones_inline(tmp_path) -> None:
    repo = zarrchive.Repo.create(tmp_path / "r")
    a = repo.root_group.create_array(
        "a", shape=(4, 1000), chunks=(1, 1000), dtype="f8", compressors=None
    )
    a[0] = np.arange(1000.0)  # 8000 bytes -> native chunk object
    b = repo.root_group.create_array("b", shape=(4,), chunks=(2,), dtype="i1", compressors=None)
    b[:] = [1, 2, 3, 4]  # 2-byte chunks -> inline in the manifest
    repo.commit("data")
    chunk_files = list((tmp_path / "r" / "chunks").iterdir())
    assert len(chunk_files) == 1 and chunk_files[0].stat().st_size == 8000
    fresh = zarrchive.Repo.open(tmp_path / "r")
    np.testing.assert_array_equal(fresh.root_group["a"][0], np.arange(1000.0))
    np.testing.assert_array_equal(fresh.root_group["b"][:], [1, 2, 3, 4])
