"""Two writers on one branch: rebasing, conflicts, fast_forward, on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import zarrchive
from zarrchive import ConflictError


@pytest.fixture
def pair(location: tuple[str, dict[str, Any] | None]) -> tuple[zarrchive.Repo, zarrchive.Repo]:
    url, options = location
    a = zarrchive.Repo.create(url, storage_options=options, author="a")
    arr = a.root_group.create_array("x", shape=(10, 10), chunks=(5, 5), dtype="i4", fill_value=0)
    arr[:] = 1
    a.root_group.create_group("g")
    a.commit("base")
    b = zarrchive.Repo.open(url, storage_options=options, author="b")
    return a, b


def test_disjoint_changes_rebase_automatically(pair) -> None:
    a, b = pair
    a.root_group["x"][:5, :5] = 2
    a.root_group.attrs["from_a"] = True
    ca = a.commit("a writes chunk (0,0)")
    b.root_group["x"][5:, 5:] = 3
    b.root_group["g"].attrs["from_b"] = True
    cb = b.commit("b writes chunk (1,1)")
    log = b.commit_log
    assert [c.id for c in log[:2]] == [cb, ca]
    a.checkout("main")
    x = a.root_group["x"][:]
    assert (x[:5, :5] == 2).all() and (x[5:, 5:] == 3).all() and (x[:5, 5:] == 1).all()
    assert a.root_group.attrs["from_a"] and a.root_group["g"].attrs["from_b"]


def test_same_chunk_conflicts_and_leaves_branch_alone(pair) -> None:
    a, b = pair
    a.root_group["x"][0, 0] = 9
    ca = a.commit("a")
    b.root_group["x"][1, 1] = 8
    with pytest.raises(ConflictError) as info:
        b.commit("b")
    assert any("chunks of 'x'" in c and "(0, 0)" in c for c in info.value.conflicts)
    assert b.branches["main"] == ca


def test_metadata_and_delete_conflicts(pair) -> None:
    a, b = pair
    a.root_group["g"].attrs["k"] = 1
    a.commit("a attrs")
    b.root_group["g"].attrs["k"] = 2
    with pytest.raises(ConflictError, match="metadata of 'g' changed on both sides"):
        b.commit("b attrs")
    b.discard_changes()
    b.checkout("main")
    a.checkout("main")

    del a.root_group["x"]
    a.commit("a deletes x")
    b.root_group["x"][9, 9] = 5
    with pytest.raises(ConflictError, match="'x' was deleted on the branch but changed here"):
        b.commit("b writes x")


def test_auto_ff_false_and_fast_forward(pair) -> None:
    a, b = pair
    a.root_group.attrs["a"] = 1
    ca = a.commit("a")
    b.root_group["g"].attrs["b"] = 1
    with pytest.raises(ConflictError, match="fast_forward"):
        b.commit("b", auto_ff=False)
    assert b.fast_forward() == ca
    assert b.root_group.attrs["a"] == 1 and b.root_group["g"].attrs["b"] == 1
    assert b.status().modified == ("g",)
    cb = b.commit("b", auto_ff=False)
    assert b.commit_log[1].id == ca and b.commit_log[0].id == cb


def test_created_on_both_sides_conflicts(pair) -> None:
    a, b = pair
    a.root_group.create_group("new")
    a.commit("a")
    b.root_group.create_group("new")
    with pytest.raises(ConflictError, match="'new' was created on both sides"):
        b.commit("b")


def test_reset_branch_under_a_session(pair) -> None:
    a, b = pair
    first = a.commit_log[-1].id
    a.reset_branch("main", first)
    b.root_group.attrs["z"] = 1
    with pytest.raises(ConflictError, match="no longer descends"):
        b.commit("b")


def _commit_worker(url: str, i: int, n: int) -> int:
    repo = zarrchive.Repo.open(url, author=f"w{i}")
    for j in range(n):
        repo.root_group["x"][i, j] = i * 100 + j
        repo.commit(f"w{i} #{j}")
    return n


def test_processes_committing_concurrently(tmp_path) -> None:
    """Each process writes its own chunks; every commit lands exactly once."""
    import multiprocessing as mp

    url = str(tmp_path / "r")
    repo = zarrchive.Repo.create(url)
    repo.root_group.create_array("x", shape=(4, 5), chunks=(1, 1), dtype="i4", fill_value=-1)
    repo.commit("base")
    with mp.get_context("spawn").Pool(4) as pool:
        assert sum(pool.starmap(_commit_worker, [(url, i, 5) for i in range(4)])) == 20
    repo.checkout("main")
    log = repo.commit_log
    assert len(log) == 22
    assert len({c.message for c in log}) == 22
    expected = np.array([[i * 100 + j for j in range(5)] for i in range(4)])
    np.testing.assert_array_equal(repo.root_group["x"][:], expected)
