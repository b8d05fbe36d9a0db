"""Maintenance: expire_snapshots and garbage_collect remove exactly what nothing reaches."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zarrchive
from zarrchive import NotFoundError
from zarrchive._sync import sync
from zarrchive.format import NATIVE, Manifest, Snapshot
from zarrchive.journal import decode_ops
from zarrchive.maintenance import ExpiredCommitError, GCReport
from zarrchive.storage import LocalStorage, Storage

CHUNK = 128  # float64 random values: 1 KiB per chunk, far above the inline threshold


def _values(seed: int, n: int = CHUNK) -> np.ndarray:
    return np.random.default_rng(seed).random(n)


def _create(location: tuple[str, dict[str, Any] | None], **kw: Any) -> zarrchive.Repo:
    url, options = location
    return zarrchive.Repo.create(url, storage_options=options, **kw)


def _open(location: tuple[str, dict[str, Any] | None]) -> zarrchive.Repo:
    url, options = location
    return zarrchive.Repo.open(url, storage_options=options)


async def _list(storage: Storage, prefix: str) -> set[str]:
    return {k async for k in storage.list(prefix)}


def _keys(repo: zarrchive.Repo) -> set[str]:
    r = repo.repository
    keys = sync(_list(r.storage, ""))
    if r.chunk_storage is not r.storage:
        keys |= sync(_list(r.chunk_storage, "chunks/"))
    return keys


def _read(location: Any, ref: str, path: str = "a") -> np.ndarray:
    reader = _open(location)
    reader.checkout(ref, for_writing=False)
    return reader.root_group[path][:]


def _natives(m: Manifest) -> set[str]:
    return {m.chunk_ids[int(i)] for i, k in zip(m.loc, m.kind, strict=True) if k == NATIVE}


def _expected_garbage(repo: zarrchive.Repo, kept: set[str], live_sessions: set[str]) -> set[str]:
    """Keys nothing reaches, computed from the commits the test knows are kept."""
    storage = repo.repository.storage
    get = lambda key: sync(storage.get(key))  # noqa: E731
    manifests: set[str] = set()
    for sid in kept:
        snap = Snapshot.from_bytes(get(f"snapshots/{sid}"))
        manifests |= {m.id for n in snap.nodes.values() for m in n.manifests}
    chunks: set[str] = set()
    for mid in manifests:
        chunks |= _natives(Manifest.from_bytes(get(f"manifests/{mid}")))
    for sid in live_sessions:
        for key in sync(_list(storage, f"sessions/{sid}/journal/")):
            for op in decode_ops(get(key), key):
                if op[0] == "chunk" and op[3] == NATIVE:
                    chunks.add(op[4])
                elif op[0] == "refs":
                    chunks |= _natives(op[2])
    keys = _keys(repo)
    garbage = {k for k in keys if k.startswith(("snapshots/", "transactions/"))}
    garbage -= {f"{kind}/{sid}" for sid in kept for kind in ("snapshots", "transactions")}
    garbage |= {k for k in keys if k.startswith("manifests/")} - {
        f"manifests/{m}" for m in manifests
    }
    garbage |= {k for k in keys if k.startswith("chunks/")} - {f"chunks/{c}" for c in chunks}
    garbage |= {
        k for k in keys if k.startswith("sessions/") and k.split("/")[1] not in live_sessions
    }
    return garbage


def test_expire_and_gc_remove_exactly_the_unreachable(location: Any) -> None:
    repo = _create(location)
    g = repo.root_group
    a = g.create_array("a", shape=(4 * CHUNK,), chunks=(CHUNK,), dtype="f8", fill_value=0.0)
    b = g.create_array("b", shape=(2 * CHUNK,), chunks=(CHUNK,), dtype="f8", fill_value=0.0)
    c0 = repo.commit_log[-1].id
    a[:] = _values(1, 4 * CHUNK)
    b[:] = _values(2, 2 * CHUNK)
    c1 = repo.commit("c1: everything")
    repo.tag("v1", c1)
    repo.root_group["a"][:CHUNK] = _values(3)
    c2 = repo.commit("c2: rewrite a[0]")
    repo.new_branch("dev")
    repo.root_group["b"][:] = _values(4, 2 * CHUNK)
    d1 = repo.commit("d1: rewrite b on dev")
    repo.checkout("main")
    repo.root_group["a"][:] = _values(5, 4 * CHUNK)
    c3 = repo.commit("c3: rewrite a")

    # a long-lived session on main at c3 (another writer), joined after the collection
    writer = _open(location)
    live = writer.create_session("main", message="long import")
    writer.root_group["a"][CHUNK : 2 * CHUNK] = _values(6)
    live_a = writer.root_group["a"][:]

    repo.root_group["b"][:CHUNK] = _values(7)
    c4 = repo.commit("c4: rewrite b[0]")
    repo.new_branch("tmp")
    repo.root_group.create_array("x", shape=(CHUNK,), chunks=(CHUNK,), dtype="f8")[:] = _values(8)
    repo.commit("t1: on a branch that will be deleted")
    repo.checkout("main")
    repo.delete_branch("tmp")

    # an abandoned and an expired session: their journals and chunks are garbage
    other = _open(location)
    other.create_session("main")
    other.root_group["a"][:CHUNK] = _values(9)
    other.abandon()
    other.create_session("main", expires_in=0.5)
    other.root_group["b"][:CHUNK] = _values(10)

    repo.root_group["b"][CHUNK:] = _values(11)
    c5 = repo.commit("c5: rewrite b[1]")
    time.sleep(0.6)  # let the expired session expire

    before = {ref: _read(location, ref) for ref in ("main", "dev", "v1")}
    before_b = {ref: _read(location, ref, "b") for ref in ("main", "dev", "v1")}

    # tips (c5, d1), tag (c1), the live session's base c3 and the path c3 -> c5 are kept
    expired = repo.expire_snapshots(dt.datetime.now(dt.UTC))
    assert expired == {c0, c2}
    assert repo.expire_snapshots(dt.datetime.now(dt.UTC)) == set()
    assert [c.id for c in repo.get_commit_log("main")] == [c5, c4, c3]
    assert [c.id for c in _open(location).commit_log] == [c5, c4, c3]
    assert [c.id for c in repo.get_commit_log("v1")] == [c1]
    assert [c.id for c in repo.get_commit_log("dev")] == [d1]
    with pytest.raises(NotFoundError, match="expired"):
        repo.checkout(c2)
    with pytest.raises(ExpiredCommitError):
        sync(_open(location).repository.get_snapshot(c0))

    kept = {c5, c4, c3, c1, d1}
    expected = _expected_garbage(repo, kept, {live.id})
    assert any(k.startswith("chunks/") for k in expected)
    keys_before = _keys(repo)

    dry = repo.garbage_collect(dry_run=True, grace=0)
    assert isinstance(dry, GCReport) and dry.dry_run
    assert dry.keys == expected
    assert _keys(repo) == keys_before
    assert "dry run" in str(dry) and "chunks" in str(dry)

    report = repo.garbage_collect(grace=0)
    assert not report.dry_run
    assert report.keys == expected
    assert (report.snapshots, report.chunks) == (dry.snapshots, dry.chunks)
    assert report.bytes_freed == dry.bytes_freed > 0
    assert _keys(repo) == keys_before - expected
    assert "config" in _keys(repo) and any(k.startswith("refs/") for k in _keys(repo))
    assert repo.garbage_collect(grace=0).keys == frozenset()

    # every ref reads exactly as before; history still ends cleanly
    for ref in ("main", "dev", "v1"):
        np.testing.assert_array_equal(_read(location, ref), before[ref])
        np.testing.assert_array_equal(_read(location, ref, "b"), before_b[ref])
    assert [c.id for c in _open(location).get_commit_log("main")] == [c5, c4, c3]
    with pytest.raises(NotFoundError):
        _read(location, c2)

    # the live session's chunks survived: join it elsewhere and commit it
    joiner = _open(location)
    joiner.join_session(live.id)
    np.testing.assert_array_equal(joiner.root_group["a"][:], live_a)
    final = joiner.commit("the long import lands")
    np.testing.assert_array_equal(_read(location, final), live_a)
    np.testing.assert_array_equal(_read(location, final, "b"), before_b["main"])
    assert [c.id for c in _open(location).commit_log] == [final, c5, c4, c3]


def test_grace_period_keeps_young_unreferenced_objects(location: Any) -> None:
    repo = _create(location)
    repo.root_group.create_array("a", shape=(CHUNK,), chunks=(CHUNK,), dtype="f8")[:] = _values(1)
    repo.commit("data")
    stray = "chunks/" + sync(repo.repository.write_native_chunk(b"x" * 2000))

    report = repo.garbage_collect()  # default grace: one hour
    assert stray in report.kept_young and stray not in report.chunks
    assert stray in _keys(repo)
    np.testing.assert_array_equal(_read(location, "main"), _values(1))

    storage = repo.repository.chunk_storage
    if isinstance(storage, LocalStorage):  # age it: then the default grace lets it go
        old = time.time() - 2 * 3600
        os.utime(storage.root / stray, (old, old))
        assert stray in repo.garbage_collect(dry_run=True).chunks
    assert stray in repo.garbage_collect(grace=dt.timedelta(0)).chunks
    assert stray not in _keys(repo)
    np.testing.assert_array_equal(_read(location, "main"), _values(1))


def test_young_session_objects_and_recently_expired_sessions_survive(location: Any) -> None:
    repo = _create(location)
    repo.root_group.create_array("a", shape=(2 * CHUNK,), chunks=(CHUNK,), dtype="f8")
    repo.commit("empty array")
    writer = _open(location)
    info = writer.create_session(expires_in=0.5)
    writer.root_group["a"][:CHUNK] = _values(1)
    time.sleep(0.6)
    # expired less than the grace period ago: its objects are kept a while longer ...
    report = repo.garbage_collect(grace=dt.timedelta(minutes=5))
    assert not any(k.startswith(f"sessions/{info.id}/") for k in report.sessions)
    assert not report.chunks
    # ... but an expired session can no longer be extended, written or committed
    with pytest.raises(zarrchive.ReadOnlyError, match="expired"):
        writer.update_expiration(60)
    with pytest.raises(zarrchive.ReadOnlyError, match="expired"):
        writer.commit("too late")
    # past the grace period, collection removes it
    report = repo.garbage_collect(grace=dt.timedelta(0))
    assert any(k.startswith(f"sessions/{info.id}/") for k in report.sessions)


def test_separate_chunkstore(tmp_path: Any) -> None:
    location = (f"memory://{uuid.uuid4().hex}", None)
    repo = _create(location, chunkstore=str(tmp_path / "chunks"))
    a = repo.root_group.create_array("a", shape=(2 * CHUNK,), chunks=(CHUNK,), dtype="f8")
    a[:] = _values(1, 2 * CHUNK)
    repo.commit("one")
    old_chunks = sync(_list(repo.repository.chunk_storage, "chunks/"))
    assert len(old_chunks) == 2 and not sync(_list(repo.repository.storage, "chunks/"))
    repo.root_group["a"][:] = _values(2, 2 * CHUNK)
    repo.commit("two")
    repo.expire_snapshots(dt.datetime.now(dt.UTC))
    report = repo.garbage_collect(grace=0)
    assert report.chunks == old_chunks
    np.testing.assert_array_equal(_read(location, "main"), _values(2, 2 * CHUNK))


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("commit"), st.integers(0, 3), st.integers(0, 1)),
        st.tuples(st.just("branch"), st.integers(0, 3), st.just(0)),
        st.tuples(st.just("delete"), st.integers(0, 3), st.just(0)),
        st.tuples(st.just("tag"), st.integers(0, 3), st.just(0)),
        st.tuples(st.just("expire"), st.just(0), st.just(0)),
        st.tuples(st.just("gc"), st.just(0), st.just(0)),
    ),
    max_size=10,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=_OPS)
def test_random_histories_never_lose_reachable_data(ops: list[tuple[str, int, int]]) -> None:
    location = (f"memory://{uuid.uuid4().hex}", None)
    repo = _create(location)
    repo.root_group.create_array("a", shape=(2 * CHUNK,), chunks=(CHUNK,), dtype="f8")
    repo.root_group.create_array("w", shape=(CHUNK,), chunks=(CHUNK,), dtype="f8")
    repo.root_group["a"][:] = _values(0, 2 * CHUNK)
    repo.commit("start")
    writer = _open(location)  # an active session that only ever touches "w"
    live = writer.create_session("main")
    writer.root_group["w"][:] = _values(999)
    repo.root_group["a"][:CHUNK] = _values(998)  # the session's base is no longer main's tip
    repo.commit("after the writer started")

    model: dict[str, np.ndarray] = {"main": _values(0, 2 * CHUNK)}
    model["main"][:CHUNK] = _values(998)
    tags: dict[str, np.ndarray] = {}
    counter = 0
    for op, i, j in ops:
        counter += 1
        names = sorted(model)
        name = names[i % len(names)]
        if op == "commit":
            repo.checkout(name)
            values = _values(counter)
            repo.root_group["a"][j * CHUNK : (j + 1) * CHUNK] = values
            repo.commit(f"write {j} on {name}")
            model[name][j * CHUNK : (j + 1) * CHUNK] = values
        elif op == "branch":
            new = f"b{counter}"
            repo.new_branch(new, repo.branches[name])
            model[new] = model[name].copy()
        elif op == "delete" and name != "main":
            repo.checkout("main")
            repo.delete_branch(name)
            del model[name]
        elif op == "tag":
            repo.tag(f"t{counter}", repo.branches[name])
            tags[f"t{counter}"] = model[name].copy()
        elif op == "expire":
            repo.expire_snapshots(dt.datetime.now(dt.UTC))
        elif op == "gc":
            repo.garbage_collect(grace=0)

    repo.checkout("main")
    repo.root_group["a"][CHUNK:] = _values(997)
    repo.commit("last")
    model["main"][CHUNK:] = _values(997)
    repo.expire_snapshots(dt.datetime.now(dt.UTC))
    repo.garbage_collect(grace=0)
    assert repo.garbage_collect(grace=0).keys == frozenset()
    reader = _open(location)
    assert set(reader.branches) == set(model)
    for ref, expected in [*model.items(), *tags.items()]:
        np.testing.assert_array_equal(_read(location, ref), expected)
        for commit in reader.get_commit_log(ref):  # every commit still listed is readable
            _read(location, commit.id)
    joiner = _open(location)
    joiner.join_session(live.id)
    np.testing.assert_array_equal(joiner.root_group["w"][:], _values(999))
    joiner.commit("the writer lands")
    np.testing.assert_array_equal(_read(location, "main", "w"), _values(999))
    np.testing.assert_array_equal(_read(location, "main"), model["main"])
