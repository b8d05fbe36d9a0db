"""zarrchive._sync: offloading blocking work from zarr's loop, and running it inline where
the caller allows it."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from zarrchive import _sync, catalog
from zarrchive._sync import blocking_allowed, offload, sync
from zarrchive.catalog import _scan
from zarrchive.sources import normalize_url


async def _threads() -> tuple[int, int]:
    """(the loop's thread, the thread that ``offload`` ran its function on)."""
    return threading.get_ident(), await offload(threading.get_ident)


def test_offload_uses_a_thread_by_default() -> None:
    loop_thread, worker = sync(_threads())
    assert worker != loop_thread
    assert loop_thread != threading.get_ident()  # zarr's loop runs in its own thread


def test_blocking_allowed_runs_inline_on_the_loop() -> None:
    with blocking_allowed():
        loop_thread, worker = sync(_threads())
    assert worker == loop_thread
    # the flag is scoped: afterwards, and with allowed=False, a thread again
    loop_thread, worker = sync(_threads())
    assert worker != loop_thread
    with blocking_allowed(False):
        loop_thread, worker = sync(_threads())
    assert worker != loop_thread


def test_offload_passes_arguments_and_errors() -> None:
    async def run() -> tuple[int, str]:
        total = await offload(sum, [1, 2, 3], start=4)
        try:
            await offload(int, "not a number")
        except ValueError as exc:
            return total, str(exc)
        return total, ""

    for inline in (False, True):
        with blocking_allowed(inline):
            total, err = sync(run())
        assert total == 10 and "not a number" in err


def _netcdf4(path: Path) -> Path:
    xr.Dataset(
        {"t2m": (("time", "x"), np.arange(6.0).reshape(1, 6))},
        coords={"time": [0.0], "x": np.arange(6)},
    ).to_netcdf(path, engine="h5netcdf")
    return path


def _watch_offload(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each ``offload`` of the HDF5 importer ran inline (appended per call)."""
    seen: list[bool] = []

    async def watching(fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(_sync._INLINE.get())
        return await offload(fn, *args, **kwargs)

    monkeypatch.setattr("zarrchive.importers.hdf5.offload", watching)
    return seen


def test_scanning_process_parses_local_files_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a catalog's own worker process a local source is parsed on the loop, with the
    same result as in a thread."""
    job = catalog.ScanJob(normalize_url(str(_netcdf4(tmp_path / "day.nc"))), None, "time")
    job.compact = True
    threaded = catalog.scan_source(job)
    seen = _watch_offload(monkeypatch)
    monkeypatch.setattr(_scan, "_OWN_PROCESS", [True])
    inline = catalog.scan_source(job)
    assert seen == [True]
    assert inline.layout == threaded.layout and inline.digests == threaded.digests
    np.testing.assert_array_equal(inline.raw, threaded.raw)


def test_scanning_process_parses_remote_files_in_a_thread(
    s3_server: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3fs

    from conftest import BUCKET

    key = f"{BUCKET}/{uuid.uuid4().hex}/day.nc"
    s3fs.S3FileSystem(**s3_server).put_file(str(_netcdf4(tmp_path / "day.nc")), key)
    seen = _watch_offload(monkeypatch)
    monkeypatch.setattr(_scan, "_OWN_PROCESS", [True])
    res = catalog.scan_source(catalog.ScanJob(f"s3://{key}", s3_server, "time"))
    assert seen == [False]
    np.testing.assert_array_equal(res.raw, [0.0])
