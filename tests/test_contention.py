"""Eight processes committing to ``main`` of one repository at once, on local disk and on S3.

Every worker (a fresh process, see ``START_METHOD``) makes ``N_COMMITS`` commits. Each commit
writes the worker's own chunk ``x[i]`` and, for about a third of them (chosen by a per-worker
seed), the chunk ``x[SHARED]`` that every worker writes. The commit message records what was
written. Commits run with ``auto_ff=True``: a commit that only wrote its own chunk must always land
(rebased past the other writers); one that wrote the shared chunk lands unless another commit
wrote it since its base, and then raises ``ConflictError`` (the worker counts it, discards and
checks out ``main`` again).

Checked: every commit that returned an id is in the log of ``main`` exactly once under that
id, nothing else is; no commit without a shared write conflicted; landed + conflicted is
everything; the array at the tip (and at sampled commits along the log) equals a sequential
replay of the landed commits' messages in log order.

Printed (run with ``-s -p no:xdist`` to see it): commits/s, total retries (commit attempts
beyond the first), conflicts and commit latency for each backend.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import random
import re
import time
import traceback
import uuid
from collections import Counter
from typing import Any

import numpy as np
import pytest

import zarrchive
from zarrchive import ConflictError

N_WORKERS = 8
#: commits per worker; S3 here is moto, one Python process serving every request (~20 per
#: commit), ~10x slower than local disk on a 2-core machine: 8 x 50 took 5-9 minutes, so S3
#: runs 8 x 10
N_COMMITS = {"local": 50, "s3": 10}
#: fresh interpreters, never a fork of this (threaded) process: "forkserver" forks them from a
#: clean server process that has imported zarrchive once, which saves ~25 s of start-up for 8
#: processes on 2 cores; "spawn" works the same, only slower to start
START_METHOD = "forkserver"
SHARED = N_WORKERS  # index of the chunk every worker may write
SHARED_FRACTION = 1 / 3
MESSAGE = re.compile(r"^w(\d+) c(\d+) own=(-?\d+) shared=(-?\d+)$")


def _worker(
    url: str,
    options: dict[str, Any] | None,
    i: int,
    n: int,
    barrier: Any,
    results: Any,
) -> None:
    try:
        repo = zarrchive.Repo.open(url, storage_options=options, author=f"w{i}")
        rng = random.Random(i)
        records = []
        barrier.wait(120)
        start = time.perf_counter()
        for j in range(n):
            value = i * 1000 + j
            shared = value if rng.random() < SHARED_FRACTION else -1
            arr = repo.root_group["x"]
            arr[i] = value
            if shared >= 0:
                arr[SHARED] = shared
            message = f"w{i} c{j} own={value} shared={shared}"
            t = time.perf_counter()
            try:
                commit_id: str | None = repo.commit(message)
                status = "landed"
            except ConflictError as exc:
                commit_id = None
                status = "gave-up" if "gave up" in str(exc) else "conflict"
            attempts = repo.session.commit_attempts
            elapsed = time.perf_counter() - t
            if commit_id is None:
                repo.discard_changes()
                repo.checkout("main")
            records.append((message, status, attempts, elapsed, commit_id))
        results.put((i, records, time.perf_counter() - start, None))
    except BaseException:
        results.put((i, [], 0.0, traceback.format_exc()))


def _replay(messages: list[str]) -> np.ndarray:
    x = np.full(N_WORKERS + 1, -1, dtype="i8")
    for message in messages:
        m = MESSAGE.match(message)
        assert m, message
        w, _, own, shared = (int(g) for g in m.groups())
        x[w] = own
        if shared >= 0:
            x[SHARED] = shared
    return x


@pytest.fixture(params=["local", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[str, str, dict | None]:
    if request.param == "local":
        return "local", str(tmp_path / "repo"), None
    options = request.getfixturevalue("s3_server")
    from conftest import BUCKET

    return "s3", f"s3://{BUCKET}/contention-{uuid.uuid4().hex}", options


@pytest.fixture
def quiet_moto() -> Any:
    """moto's request log (werkzeug, INFO) costs time in the server thread; mute it."""
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


def test_eight_processes_commit_to_main(
    target: tuple[str, str, dict | None], quiet_moto: None
) -> None:
    backend, url, options = target
    n_commits = N_COMMITS[backend]
    repo = zarrchive.Repo.create(url, storage_options=options, author="setup")
    repo.root_group.create_array(
        "x", shape=(N_WORKERS + 1,), chunks=(1,), dtype="i8", fill_value=-1
    )
    base = repo.commit("base")

    ctx = mp.get_context(START_METHOD)
    if START_METHOD == "forkserver":  # no effect if this process's fork server already runs
        ctx.set_forkserver_preload(["zarrchive", "numpy", "s3fs"])
    barrier = ctx.Barrier(N_WORKERS + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, options, i, n_commits, barrier, results))
        for i in range(N_WORKERS)
    ]
    spawned = time.perf_counter()
    for p in procs:
        p.start()
    try:
        barrier.wait(120)  # every worker has imported zarrchive and opened the repository
        start = time.perf_counter()
        reports = [results.get(timeout=600) for _ in procs]
        wall = time.perf_counter() - start
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.terminate()
                p.join()
    errors = [err for _, _, _, err in reports if err]
    assert not errors, "\n".join(errors)

    records = [r for _, recs, _, _ in reports for r in recs]
    assert len(records) == N_WORKERS * n_commits
    landed = {message: cid for message, s, _, _, cid in records if s == "landed"}
    conflicted = [message for message, s, *_ in records if s == "conflict"]
    # a commit that lost the race to move the branch 50 times in a row raises
    # ConflictError("gave up ..."): it must not land either; counted and reported
    gave_up = [message for message, s, *_ in records if s == "gave-up"]
    attempts = np.array([r[2] for r in records])
    latency = np.array([r[3] for r in records])
    print(
        f"\n[contention {backend}] {N_WORKERS} processes x {n_commits} commits to main: "
        f"{len(landed)} landed, {len(conflicted)} conflicts (of "
        f"{sum(not m.endswith('shared=-1') for m, *_ in records)} touching the shared chunk), "
        f"{len(gave_up)} gave up, in {wall:.1f} s = {len(landed) / wall:.1f} commits/s; "
        f"retries {int((attempts - 1).sum())} (attempts per commit: mean "
        f"{attempts.mean():.2f}, max {attempts.max()}); commit latency p50 "
        f"{np.median(latency) * 1000:.0f} ms, p95 {np.percentile(latency, 95) * 1000:.0f} ms, "
        f"max {latency.max():.1f} s; process start-up {start - spawned:.1f} s",
        flush=True,
    )
    assert len(landed) + len(conflicted) + len(gave_up) == N_WORKERS * n_commits
    # only a commit that wrote the shared chunk can conflict
    for message in conflicted:
        assert not message.endswith("shared=-1"), message

    checked = time.perf_counter()
    repo.checkout("main")
    log = list(repo.commit_log)
    assert log[-1].message == "Repository initialized" and log[-2].id == base
    commits = log[:-2][::-1]  # the workers' commits, oldest first
    assert Counter(c.message for c in commits) == Counter(set(landed))  # each exactly once
    assert {c.message: c.id for c in commits} == landed

    expected = _replay([c.message for c in commits])
    np.testing.assert_array_equal(repo.root_group["x"][:], expected)
    step = 1 if backend == "local" else 8  # the log has cached every snapshot
    for k in [*range(0, len(commits), step), len(commits) - 1]:
        repo.checkout(commits[k].id, for_writing=False)
        np.testing.assert_array_equal(
            repo.root_group["x"][:], _replay([c.message for c in commits[: k + 1]])
        )
    print(f"[contention {backend}] verified in {time.perf_counter() - checked:.1f} s", flush=True)
