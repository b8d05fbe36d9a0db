"""Distributed writes: forks of one session write disjoint regions, merged into one commit."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pytest
import zarr

import zarrchive
from zarrchive import ConflictError, InvalidInputError, ZarrchiveStore


def _worker(fork_bytes: bytes, i: int) -> bytes:
    fork = pickle.loads(fork_bytes)
    arr = zarr.open_array(ZarrchiveStore(fork), path="x", mode="r+")
    arr[i * 10 : (i + 1) * 10] = np.arange(10) + 100 * i
    return pickle.dumps(fork)


def test_forks_in_processes_merge_into_one_commit(tmp_path) -> None:
    repo = zarrchive.Repo.create(tmp_path / "r")
    repo.root_group.create_array("x", shape=(40,), chunks=(5,), dtype="i8", fill_value=-1)
    repo.commit("array")
    forks = [pickle.dumps(repo.fork_session()) for _ in range(4)]
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        done = [pickle.loads(b) for b in pool.map(_worker, forks, range(4))]
    repo.merge_sessions(*done)
    assert repo.status().modified == ("x",)
    commit = repo.commit("distributed write")
    expected = np.concatenate([np.arange(10) + 100 * i for i in range(4)])
    reader = zarrchive.Repo.open(tmp_path / "r", ref=commit)
    np.testing.assert_array_equal(reader.root_group["x"][:], expected)
    assert len(reader.commit_log) == 3


def test_merge_refuses_overlaps_and_metadata_changes(tmp_path) -> None:
    repo = zarrchive.Repo.create(tmp_path / "r")
    repo.root_group.create_array("x", shape=(20,), chunks=(5,), dtype="i8", fill_value=-1)
    repo.commit("array")
    a, b, c = repo.fork_session(), repo.fork_session(), repo.fork_session()
    zarr.open_array(ZarrchiveStore(a), path="x", mode="r+")[0:5] = 1
    zarr.open_array(ZarrchiveStore(b), path="x", mode="r+")[3:8] = 2  # overlaps chunk 0
    zarr.open_array(ZarrchiveStore(c), path="x", mode="r+").attrs["k"] = 1
    before = repo.status()
    with pytest.raises(ConflictError, match="same chunks"):
        repo.merge_sessions(a, b)
    with pytest.raises(InvalidInputError, match="metadata"):
        repo.merge_sessions(c)
    assert repo.status() == before
    repo.merge_sessions(a)
    repo.commit("one fork")
    np.testing.assert_array_equal(repo.root_group["x"][0:5], [1] * 5)
