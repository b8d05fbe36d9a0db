"""Storage backends: the same contract on memory, local directory and S3 (moto)."""

from __future__ import annotations

import asyncio
import os

import pytest

from zarrchive.errors import InvalidInputError, NotFoundError
from zarrchive.storage import LocalStorage, Storage, storage_for


@pytest.fixture
def storage(location: tuple[str, dict | None]) -> Storage:
    return storage_for(location[0], location[1])


def run(coro):
    from zarrchive._sync import sync

    return sync(coro)


async def _collect(storage: Storage, prefix: str) -> list[str]:
    return sorted([k async for k in storage.list(prefix)])


def test_get_put_range_list_delete(storage: Storage) -> None:
    run(storage.put("a/b/one", b"0123456789"))
    run(storage.put("a/two", b"xy"))
    assert run(storage.get("a/b/one")) == b"0123456789"
    assert run(storage.get_range("a/b/one", 2, 3)) == b"234"
    assert run(_collect(storage, "a/")) == ["a/b/one", "a/two"]
    assert run(_collect(storage, "a/b/")) == ["a/b/one"]
    assert run(_collect(storage, "zzz/")) == []
    assert run(storage.exists("a/two"))
    run(storage.delete("a/two"))
    assert not run(storage.exists("a/two"))
    run(storage.delete("a/two"))  # deleting an absent key is not an error
    with pytest.raises(NotFoundError):
        run(storage.get("a/two"))
    with pytest.raises(NotFoundError):
        run(storage.get_range("missing", 0, 1))


def test_put_if_absent_is_create_once(storage: Storage) -> None:
    assert run(storage.put_if_absent("refs/x", b"first"))
    assert not run(storage.put_if_absent("refs/x", b"second"))
    assert run(storage.get("refs/x")) == b"first"


def test_put_if_absent_race_has_one_winner(storage: Storage) -> None:
    async def race() -> list[bool]:
        return list(
            await asyncio.gather(
                *(storage.put_if_absent("race", str(i).encode()) for i in range(8))
            )
        )

    results = run(race())
    assert results.count(True) == 1
    winner = results.index(True)
    assert run(storage.get("race")) == str(winner).encode()


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/abs", "a//b", "", "a/./b"])
def test_bad_keys_refused(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidInputError):
        run(storage.put(key, b"x"))


def test_local_storage_refuses_symlink_escape(tmp_path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    os.symlink(outside, root / "link")
    st = LocalStorage(root)
    with pytest.raises(InvalidInputError, match="escapes"):
        run(st.get("link/secret"))


def test_local_put_if_absent_across_processes(tmp_path) -> None:
    """os.link publishing: of many processes creating the same key, exactly one wins."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_create_in_process, [(str(tmp_path), i) for i in range(8)])
    assert sum(results) == 1
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def _create_in_process(root: str, i: int) -> bool:
    from zarrchive._sync import sync

    return sync(LocalStorage(root).put_if_absent("k", str(i).encode()))
