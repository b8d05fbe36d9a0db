"""Where the scans run: this process, worker processes, or a Dask cluster.

Owns scheduling :func:`._scan.scan_source` over the sources: serially here, here and in
spawned worker processes at once (fed a few sources at a time, started without re-running
the caller's main script), or with ``client.map`` on a Dask cluster, handing every result
to the caller on zarr's I/O loop as it arrives.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..errors import ZarrchiveError
from ..sources import local_path
from ._scan import ScanJob, ScanResult, scan_source, scan_sources, scanning_process

#: without an explicit ``workers``, one more scanning process per this many sources (the
#: calling process is the first; at most one per CPU and 8 in all)
_SOURCES_PER_WORKER = 64
#: the same for sources in object stores or on HTTP servers (at least 2 processes)
_REMOTE_SOURCES_PER_WORKER = 32


def default_workers(jobs: Sequence[ScanJob]) -> int:
    """How many processes scan ``jobs`` when the caller does not say.

    A spawned process costs about half a second of CPU before it scans, so small catalogs
    are scanned here only, and there is at most one process per CPU: scanning a local file
    keeps a CPU busy (h5py's parse). A remote source's scan is mostly two round trips (its
    version, then its first 512 KiB), which each process overlaps for 8 sources at a time
    (:func:`._scan.scan_sources`); what is left is CPU again, so remote catalogs get a
    process sooner (one per 32 sources) and two even on one CPU, but no more per CPU.
    """
    cpus = _cpu_count()
    if _mostly_remote(jobs):
        return min(max(2, cpus), 8, 1 + len(jobs) // _REMOTE_SOURCES_PER_WORKER)
    return min(cpus, 8, 1 + len(jobs) // _SOURCES_PER_WORKER)


def _mostly_remote(jobs: Sequence[ScanJob]) -> bool:
    """Whether most sources are remote (the catalog is scheduled as a remote one)."""
    return sum(local_path(j.url) is None for j in jobs) * 2 > len(jobs)


async def _scan_all(
    jobs: Sequence[ScanJob],
    workers: int,
    client: Any,
    on_result: Callable[[ScanResult], None],
    warm_up: Callable[[], Awaitable[None]] | None = None,
    cleanup: contextlib.AsyncExitStack | None = None,
) -> None:
    """Scan ``jobs`` (see :func:`_scan_here_and_in_pool`). ``warm_up`` is run meanwhile when
    worker processes or a cluster do the scanning; scanning only in this process, it is
    left to whoever needs its imports later (running it alongside would just slow both).
    Worker processes are told to exit as soon as the scan is done, and waited for when
    ``cleanup`` closes (meanwhile the caller goes on with the results)."""
    processes = min(workers, len(jobs)) - 1
    if client is not None:
        warming = asyncio.ensure_future(warm_up()) if warm_up is not None else None
        try:
            if jobs:
                await _scan_on_client(client, jobs, on_result)
        finally:
            if warming is not None:
                await warming
        return
    queue = collections.deque(jobs)
    batch = _REMOTE_BATCH if _mostly_remote(jobs) else 1
    if processes < 1:
        await _scan_here(queue, batch, on_result)
        return
    await _scan_here_and_in_pool(queue, processes, on_result, warm_up, cleanup, batch)


#: remote sources handed to a process at once: their round trips overlap (see
#: :func:`._scan.scan_sources`); local ones go one by one
_REMOTE_BATCH = 8


async def _scan_here(
    queue: collections.deque[ScanJob], batch: int, on_result: Callable[[ScanResult], None]
) -> None:
    """Scan from the front of ``queue`` in this process, ``batch`` sources at a time, until
    it is empty (worker processes may be taking from it too)."""
    while queue:
        for res in await asyncio.to_thread(scan_sources, _take(queue, batch)):
            on_result(res)


def _take(queue: collections.deque[ScanJob], n: int) -> list[ScanJob]:
    return [queue.popleft() for _ in range(min(n, len(queue)))]


async def _scan_here_and_in_pool(
    queue: collections.deque[ScanJob],
    processes: int,
    on_result: Callable[[ScanResult], None],
    warm_up: Callable[[], Awaitable[None]] | None = None,
    cleanup: contextlib.AsyncExitStack | None = None,
    batch: int = 1,
) -> None:
    """Scan the queue in this process and in ``processes`` worker processes at once,
    ``batch`` sources per task.

    A worker is spawned (see :func:`_spawn_context`) and spends about a second importing
    zarr, h5py and zarrchive before it can scan; meanwhile this process runs ``warm_up``
    (its own slow imports), then scans too. Running both at once here would not help: the
    imports hold the GIL, and scanning, which hops between threads several times per
    source, would crawl. A worker is given sources only once it answered a first task
    (:func:`_worker_ready`), a few at a time so that it never waits for the next one.
    Sources are taken from the front of the queue by whoever is free; results are handed to
    ``on_result`` on this loop as they come. Workers that never answered (a small catalog is
    scanned before they are up) are stopped at the end, not waited for.
    """
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(
        max_workers=processes, mp_context=_spawn_context(), initializer=scanning_process
    )
    starting: set[asyncio.Future[Any]] = {
        asyncio.wrap_future(pool.submit(_worker_ready)) for _ in range(processes)
    }
    warming = asyncio.ensure_future(warm_up()) if warm_up is not None else None
    scanning: set[asyncio.Future[list[ScanResult]]] = set()
    ready: set[int] = set()
    in_flight = max(2, _IN_FLIGHT // batch)

    def feed() -> None:
        while queue and len(scanning) < in_flight * len(ready):
            task = pool.submit(scan_sources, _take(queue, batch))
            scanning.add(asyncio.wrap_future(task))

    async def here() -> None:
        if warming is not None:
            await warming
        await _scan_here(queue, batch, on_result)

    local: asyncio.Future[None] | None = asyncio.ensure_future(here())
    try:
        while local is not None or scanning:
            waiting = scanning | starting | ({local} if local is not None else set())
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                if fut is local:
                    local = None
                    fut.result()
                elif fut in starting:
                    starting.discard(fut)
                    try:
                        ready.add(fut.result())
                    except BrokenProcessPool as exc:
                        raise _broken_pool() from exc
                else:
                    scanning.discard(fut)
                    try:
                        results = fut.result()
                    except BrokenProcessPool as exc:
                        raise _broken_pool() from exc
                    for res in results:
                        on_result(res)
            feed()
    except BaseException:
        if local is not None:
            local.cancel()
        for f in scanning | starting:
            f.cancel()
        _stop_pool(pool, ready)
        raise
    for f in starting:
        f.cancel()
    if starting:
        _stop_pool(pool, ready)
    elif cleanup is None:
        await asyncio.to_thread(pool.shutdown)
    else:  # a worker takes ~0.1 s to exit: let it, while the caller writes
        exiting = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False)
        cleanup.push_async_callback(asyncio.to_thread, _join, exiting)


def _join(processes: Sequence[Any]) -> None:
    for proc in processes:
        proc.join()


#: sources handed to each worker process ahead of time
_IN_FLIGHT = 4


def _stop_pool(pool: Any, ready: set[int]) -> None:
    """Shut ``pool`` down without waiting; its workers that never answered (still importing,
    or stuck) are killed rather than left behind."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # gone after shutdown
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.pid not in ready and proc.is_alive():
            proc.kill()


def _worker_ready() -> int:
    """A worker's first task: proves that it is up and that zarr's loop runs in it; answers
    with its pid."""
    from .._sync import sync

    sync(asyncio.sleep(0))
    return os.getpid()


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _broken_pool() -> ZarrchiveError:
    return ZarrchiveError(
        "a scanning worker process died (a parsing library crashed?); rerun with workers=1 "
        "to find the source"
    )


async def _scan_on_client(
    client: Any, jobs: Sequence[ScanJob], on_result: Callable[[ScanResult], None]
) -> None:
    """Scan on a Dask cluster: ``client.map`` over the jobs; results are taken in order by a
    thread and handed to this loop one by one (only scan results travel back)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[ScanResult | None, BaseException | None]] = asyncio.Queue()
    stop = threading.Event()

    def run() -> None:
        futures = client.map(scan_source, list(jobs), pure=False)
        try:
            for fut in futures:
                if stop.is_set():
                    client.cancel(futures)
                    return
                loop.call_soon_threadsafe(queue.put_nowait, (fut.result(), None))
        except BaseException as exc:
            client.cancel(futures)
            loop.call_soon_threadsafe(queue.put_nowait, (None, exc))

    thread = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        for _ in range(len(jobs)):
            res, exc = await queue.get()
            if exc is not None:
                raise exc
            assert res is not None
            on_result(res)
    except BaseException:
        stop.set()  # the thread cancels what is left and ends; nobody waits for it
        raise
    await thread


_SPAWN_LOCK = threading.Lock()


try:
    from multiprocessing import context as _mp_context
    from multiprocessing import popen_spawn_posix as _popen_spawn
    from multiprocessing import spawn as _mp_spawn
except ImportError:  # pragma: no cover - Windows: plain spawn
    _popen_spawn = None
else:

    class _NoMainPopen(_popen_spawn.Popen):  # type: ignore[misc,name-defined]
        def _launch(self, process_obj: Any) -> None:
            original = _mp_spawn.get_preparation_data

            def preparation(name: str) -> dict[str, Any]:
                data = original(name)
                data.pop("init_main_from_path", None)
                data.pop("init_main_from_name", None)
                return data

            with _SPAWN_LOCK:
                _mp_spawn.get_preparation_data = preparation
                try:
                    super()._launch(process_obj)
                finally:
                    _mp_spawn.get_preparation_data = original

    class _NoMainProcess(_mp_context.SpawnProcess):  # type: ignore[misc,name-defined]
        @staticmethod
        def _Popen(process_obj: Any) -> Any:
            return _NoMainPopen(process_obj)

    class _NoMainContext(_mp_context.SpawnContext):  # type: ignore[misc,name-defined]
        Process = _NoMainProcess


def _spawn_context() -> Any:
    """A ``spawn`` multiprocessing context whose workers do not re-run the main script.

    Plain ``spawn`` imports the parent's ``__main__`` module in every worker (so that objects
    defined there unpickle), which re-executes a script's top-level code unless it is guarded
    by ``if __name__ == "__main__"``. The workers only run :func:`scan_source`, so the main
    module is left out of their preparation data (POSIX; elsewhere plain ``spawn``).

    ``fork`` would spare each worker a second of imports, but it is not safe here: the
    forked child has none of the parent's threads, and libraries that run their own (the
    tokio runtime of obstore, through which remote sources may have been read) then hang in
    it; zarr's and fsspec's loops can be restarted after a fork, theirs cannot.
    """
    if _popen_spawn is None:  # pragma: no cover
        import multiprocessing

        return multiprocessing.get_context("spawn")
    return _NoMainContext()
