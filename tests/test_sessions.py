"""Durable sessions: persisted as they go, joinable elsewhere, safe under SIGKILL."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import numpy as np
import pytest

import zarrchive
from zarrchive import ReadOnlyError


def _repo(tmp_path) -> zarrchive.Repo:
    repo = zarrchive.Repo.create(tmp_path / "r")
    repo.root_group.create_array("x", shape=(200,), chunks=(1,), dtype="i8", fill_value=-1)
    repo.commit("base")
    return repo


def test_join_session_in_another_process(tmp_path) -> None:
    repo = _repo(tmp_path)
    info = repo.create_session(message="long import", expires_in=3600)
    repo.root_group["x"][:10] = np.arange(10)
    repo.move("x", "y")
    assert [s.id for s in repo.list_active_sessions()] == [info.id]
    code = textwrap.dedent(
        f"""
        import numpy as np, zarrchive
        repo = zarrchive.Repo.open({str(tmp_path / "r")!r})
        repo.join_session({info.id!r})
        assert repo.status().modified == ("y",), repo.status()
        np.testing.assert_array_equal(repo.root_group["y"][:10], np.arange(10))
        repo.root_group["y"][10] = 10
        print(repo.commit("finished elsewhere"))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    commit = out.stdout.strip()
    reader = zarrchive.Repo.open(tmp_path / "r")
    assert reader.commit_log[0].id == commit
    np.testing.assert_array_equal(reader.root_group["y"][:11], np.arange(11))
    assert repo.list_active_sessions() == []
    with pytest.raises(ReadOnlyError, match="committed"):
        repo.commit("the same session cannot commit twice")


def test_abandon_expire_and_update(tmp_path) -> None:
    repo = _repo(tmp_path)
    info = repo.create_session(expires_in=60)
    repo.root_group.attrs["a"] = 1
    assert info.expires - info.created == dt.timedelta(seconds=60)
    new = repo.update_expiration(dt.timedelta(days=2))
    assert repo.list_active_sessions()[0].expires == new
    with pytest.raises(zarrchive.InvalidInputError, match="7 days"):
        repo.update_expiration(dt.timedelta(days=8))
    repo.abandon()
    assert repo.list_active_sessions() == []
    with pytest.raises(ReadOnlyError):
        repo.commit("abandoned")
    with pytest.raises(ReadOnlyError, match="abandoned"):
        repo.join_session(info.id)

    repo.create_session(expires_in=0.5)
    repo.root_group.attrs["b"] = 1
    time.sleep(0.6)
    with pytest.raises(ReadOnlyError, match="expired"):
        repo.commit("too late")
    with pytest.raises(ReadOnlyError, match="expired"):
        repo.root_group.attrs["c"] = 1


def test_session_that_never_wrote_is_not_stored(tmp_path) -> None:
    repo = _repo(tmp_path)
    repo.create_session()
    assert repo.list_active_sessions() == []
    with pytest.raises(zarrchive.NotFoundError):
        repo.join_session("a" * 20)


def test_rebase_is_replayed_on_join(tmp_path) -> None:
    repo = _repo(tmp_path)
    other = zarrchive.Repo.open(tmp_path / "r")
    info = repo.create_session()
    repo.root_group["x"][0] = 100
    other.root_group["x"][1] = 200
    moved_to = other.commit("other")
    assert repo.fast_forward() == moved_to
    repo.root_group["x"][2] = 300
    joined = zarrchive.Repo.open(tmp_path / "r")
    joined.join_session(info.id)
    assert joined.session.snapshot_id == moved_to
    np.testing.assert_array_equal(joined.root_group["x"][:3], [100, 200, 300])


def _writer(path: str, conn) -> None:
    """Write chunks one by one, reporting each acknowledged write; commit every 40."""
    repo = zarrchive.Repo.open(path)
    info = repo.create_session()
    conn.send(("session", info.id))
    arr = repo.root_group["x"]
    for i in range(200):
        arr[i] = i * 7
        conn.send(("ack", i))
        if i % 40 == 39:
            repo.commit(f"upto {i}")
            conn.send(("committed", i))
            # commit continues the same session object under a new session id
            conn.send(("session", repo.session.id))


@pytest.mark.parametrize("seed", [0])
def test_sigkill_at_random_points_loses_nothing_acknowledged(tmp_path, seed: int) -> None:
    """Kill a writer with SIGKILL at random points of writes and commits, 100 times."""
    import multiprocessing as mp

    rng = random.Random(seed)
    path = str(tmp_path / "r")
    _repo(tmp_path)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["zarrchive", "numpy"])
    for _trial in range(100):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_writer, args=(path, child))
        proc.start()
        child.close()
        assert parent.poll(60), "writer did not start"
        lines = [parent.recv()]
        assert lines[0][0] == "session"
        time.sleep(rng.uniform(0.0, 0.4))
        with contextlib.suppress(ProcessLookupError):  # it may have finished all writes
            os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        while True:
            try:
                lines.append(parent.recv())
            except EOFError:
                break
        acked = [v for k, v in lines if k == "ack"]
        committed = [v for k, v in lines if k == "committed"]
        sessions = [v for k, v in lines if k == "session"]
        repo = zarrchive.Repo.open(path)  # opens: the branch points at a complete commit
        values = repo.root_group["x"][:]
        upto = max(committed, default=-1)
        for i in range(upto + 1):
            assert values[i] == i * 7
        pending = [i for i in acked if i > upto]
        if pending:
            try:
                repo.join_session(sessions[-1])
            except ReadOnlyError as exc:
                # killed after its commit landed but before it said so: the commit has it all
                assert "committed" in str(exc)
                for i in pending:
                    assert values[i] == i * 7, (i, lines)
            else:
                joined = repo.root_group["x"][:]
                for i in pending:
                    assert joined[i] == i * 7, (i, lines)
                repo.abandon()
        # reset the array for the next trial
        repo.checkout("main")
        repo.root_group["x"][:] = -1
        if repo.status().has_changes:
            repo.commit(f"reset {uuid.uuid4().hex[:6]}")
