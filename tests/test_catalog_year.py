"""A year of daily NetCDF4 files -> one dataset along time: locally, from S3 (moto), after a
SIGKILL, appended to, and scanned on a Dask LocalCluster.

The 375 files are small (a few KB: two (1, 10, 20) float32 variables in four zlib + shuffle
chunks each) but real NetCDF4 files written by netCDF4. Months alternate between two time
encodings ("hours since 2000-01-01" and "days since 1990-01-01"), and ``tp`` has a
``_FillValue`` that occurs in the data, so the combined coordinate must be decoded and
re-encoded and the fill value masked exactly as xarray does. The reference is what
``xarray.open_mfdataset`` makes of the same files.
"""

from __future__ import annotations

import datetime as dt
import faulthandler
import random
import signal
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import zarrchive

netCDF4 = pytest.importorskip("netCDF4")

YEAR = 365
EXTRA = 10
START = dt.datetime(2001, 1, 1)
SHAPE = (10, 20)
CHUNKS = (1, 5, 10)
FILL = -9999.0
GROUP = "year"


@dataclass(frozen=True)
class Year:
    """``files[:365]`` are the year, ``files[365:]`` the ten days appended after it."""

    files: list[str]
    folder: Path


def _units(day: dt.datetime) -> str:
    return "hours since 2000-01-01 00:00:00" if day.month % 2 else "days since 1990-01-01"


def _write_day(path: Path, k: int) -> None:
    day = START + dt.timedelta(days=k)
    rng = np.random.default_rng(k)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", SHAPE[0])
        nc.createDimension("lon", SHAPE[1])
        t = nc.createVariable("time", "f8", ("time",))
        t.units = _units(day)
        t.calendar = "standard"
        lat = nc.createVariable("lat", "f4", ("lat",))
        lat.units = "degrees_north"
        lat[:] = np.linspace(-45, 45, SHAPE[0])
        lon = nc.createVariable("lon", "f4", ("lon",))
        lon.units = "degrees_east"
        lon[:] = np.linspace(0, 285, SHAPE[1])
        t2m = nc.createVariable(
            "t2m", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True, chunksizes=CHUNKS
        )
        t2m.units = "K"
        t2m.long_name = "2 metre temperature"
        t2m[0] = rng.normal(280, 5, SHAPE).astype("f4")
        tp = nc.createVariable(
            "tp",
            "f4",
            ("time", "lat", "lon"),
            zlib=True,
            shuffle=True,
            chunksizes=CHUNKS,
            fill_value=FILL,
        )
        tp.units = "m"
        values = rng.random(SHAPE).astype("f4")
        values[k % SHAPE[0], k % SHAPE[1]] = FILL  # masked by xarray, here and in the repo
        tp[0] = values
        t[0] = netCDF4.date2num(day, t.units, calendar="standard")
        nc.title = "a year of daily samples"


@pytest.fixture(scope="session")
def year(tmp_path_factory: Any) -> Year:
    folder = tmp_path_factory.mktemp("year")
    files = []
    for k in range(YEAR + EXTRA):
        path = folder / f"day-{(START + dt.timedelta(days=k)).date().isoformat()}.nc"
        _write_day(path, k)
        files.append(str(path))
    return Year(files, folder)


_COMBINE = {
    "data_vars": "minimal",
    "coords": "minimal",
    "compat": "override",
    "join": "exact",
    "combine_attrs": "override",
}


def _open_mf(files: list[str]) -> xr.Dataset:
    """What ``xarray.open_mfdataset`` makes of the files (combined by their coordinates)."""
    with xr.open_mfdataset(files, engine="netcdf4", combine="by_coords", **_COMBINE) as ds:
        return ds.load()


def _combine(files: list[str]) -> xr.Dataset:
    """The same without dask (``open_mfdataset`` is ``open_dataset`` per file and
    ``combine_by_coords``; its dask graph makes it several times slower on 365 files)."""
    datasets = []
    for f in files:
        with xr.open_dataset(f, engine="netcdf4") as ds:
            datasets.append(ds.load())
    return xr.combine_by_coords(datasets, **_COMBINE)


@pytest.fixture(scope="session")
def year_reference(year: Year) -> xr.Dataset:
    return _combine(year.files[:YEAR])


def _shuffled(files: list[str], seed: int = 5) -> list[str]:
    out = list(files)
    random.Random(seed).shuffle(out)
    return out


def _check_year(ds: xr.Dataset, reference: xr.Dataset, days: int = YEAR) -> None:
    _check_coords(ds, reference, days)
    xr.testing.assert_identical(ds, reference)
    assert int(ds.tp.isnull().sum()) == days  # one fill value per day, masked


def _check_coords(ds: xr.Dataset, reference: xr.Dataset, days: int = YEAR) -> None:
    assert ds.sizes["time"] == days
    assert len(np.unique(ds.time.values)) == days  # every day exactly once
    xr.testing.assert_identical(ds.coords.to_dataset(), reference.coords.to_dataset())


def _hdf5_chunks(path: str, day: int) -> list[tuple[str, int, int]]:
    """(key, offset, size) of every chunk of the file's variables, as h5py reports them."""
    import h5py

    out = []
    with h5py.File(path, "r") as f:
        for name in ("t2m", "tp"):
            ds = f[name]
            for i in range(ds.id.get_num_chunks()):
                info = ds.id.get_chunk_info(i)
                _, y, x = (o // c for o, c in zip(info.chunk_offset, CHUNKS, strict=True))
                out.append((f"{GROUP}/{name}/{day}.{y}.{x}", info.byte_offset, info.size))
    return out


# ---------------------------------------------------------------------------------- local
def test_year_import_rerun_and_append(
    year: Year, year_reference: xr.Dataset, tmp_path: Path
) -> None:
    repo = zarrchive.Repo.create(tmp_path / "repo")
    report = repo.import_catalog(_shuffled(year.files[:YEAR]), GROUP)
    assert (report.sources, report.skipped) == (YEAR, 0)
    assert report.references >= YEAR * 8  # two variables, four chunks a day
    assert len(repo.commit_log) == 2 and report.commit == repo.branches["main"]
    ds = repo.to_xarray(GROUP).load()
    _check_year(ds, year_reference)
    xr.testing.assert_identical(ds, _open_mf(year.files[:YEAR]))  # the issue's own words

    # a rerun finds every source in the dataset and makes no commit
    again = repo.import_catalog(_shuffled(year.files[:YEAR], seed=9), GROUP)
    assert (again.sources, again.skipped, again.commit) == (0, YEAR, None)
    assert len(repo.commit_log) == 2

    # ten more days (and the year again, skipped) land as one commit
    tip, before = repo.branches["main"], _references(repo)
    appended = repo.append_catalog(_shuffled(year.files), GROUP)
    assert (appended.sources, appended.skipped) == (EXTRA, YEAR)
    log = repo.commit_log
    assert len(log) == 3 and log[0].id == appended.commit and log[1].id == tip
    expected = xr.concat([year_reference, _combine(year.files[YEAR:])], dim="time", **_COMBINE)
    reader = zarrchive.Repo.open(tmp_path / "repo", authorize_virtual=[f"file://{year.folder}/"])
    ds = reader.to_xarray(GROUP)
    assert ds.sizes["time"] == YEAR + EXTRA
    xr.testing.assert_identical(ds.time, expected.time)  # every day once, re-encoded
    # the year's chunks are untouched, the ten days read as the files do
    after = _references(reader)
    assert {k: v for k, v in after.items() if k in before and isinstance(v, list)} == {
        k: v for k, v in before.items() if isinstance(v, list)
    }
    tail = slice(YEAR, None)
    xr.testing.assert_identical(ds.isel(time=tail).load(), expected.isel(time=tail))


# ---------------------------------------------------------------------------------- S3
def test_year_from_s3(
    year: Year, year_reference: xr.Dataset, s3_server: dict[str, Any], tmp_path: Path
) -> None:
    import s3fs

    from conftest import BUCKET

    prefix = f"{BUCKET}/{uuid.uuid4().hex}"
    fs = s3fs.S3FileSystem(**s3_server)
    # as users pass them: without skip_instance_cache, which would make each file's scan
    # start its own S3 client (the HDF5 importer opens each file through fsspec)
    s3_server = {k: v for k, v in s3_server.items() if k != "skip_instance_cache"}
    names = [Path(f).name for f in year.files[:YEAR]]
    fs.put(year.files[:YEAR], [f"{prefix}/{n}" for n in names])
    repo = zarrchive.Repo.create(tmp_path / "repo")
    report = repo.import_catalog(f"s3://{prefix}/day-*.nc", GROUP, storage_options=s3_server)
    assert (report.sources, report.skipped) == (YEAR, 0)
    # every chunk is the byte range HDF5 itself gives for it, in the bucket's copy of its day
    refs = _references(repo)
    assert {k: v for k, v in refs.items() if isinstance(v, list)} == {
        key: [f"s3://{prefix}/{Path(f).name}", offset, size]
        for k, f in enumerate(year.files[:YEAR])
        for key, offset, size in _hdf5_chunks(f, k)
    }
    # coordinates decoded as xarray decodes the files; values read from the bucket on days
    # around the changes of time encoding (month ends) and at both ends of the year
    ds = repo.to_xarray(GROUP)
    _check_coords(ds, year_reference)
    days = [0, 30, 31, 58, 59, 180, 363, 364]
    xr.testing.assert_identical(ds.isel(time=days).load(), year_reference.isel(time=days))
    # the references point into the bucket, not at the local copies
    fresh = zarrchive.Repo.open(tmp_path / "repo").to_xarray(GROUP)
    with pytest.raises(zarrchive.UnauthorizedSourceError, match="s3://"):
        fresh.t2m.values  # noqa: B018

    again = repo.import_catalog(
        [f"s3://{prefix}/{n}" for n in reversed(names)], GROUP, storage_options=s3_server
    )
    assert (again.sources, again.skipped, again.commit) == (0, YEAR, None)


# ---------------------------------------------------------------------------------- SIGKILL
def test_year_killed_halfway_resumes(
    year: Year, year_reference: xr.Dataset, tmp_path: Path
) -> None:
    location = str(tmp_path / "repo")
    zarrchive.Repo.create(location)
    sources = _shuffled(year.files[:YEAR], seed=11)
    batch = 40  # ten batches; the process dies once five are durable
    code = textwrap.dedent(
        f"""
        import os, signal
        import zarrchive
        from zarrchive.session import Session

        real, written = Session.flush, [0]

        async def flush(self):
            had = bool(self.changes is not None and self.changes.pending_ops)
            await real(self)
            written[0] += had
            if written[0] == 5:
                os.kill(os.getpid(), signal.SIGKILL)

        Session.flush = flush
        repo = zarrchive.Repo.open({location!r})
        repo.import_catalog({sources!r}, {GROUP!r}, batch_size={batch})
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]
    repo = zarrchive.Repo.open(location)
    assert len(repo.commit_log) == 1  # nothing committed
    [info] = repo.list_active_sessions()
    assert info.message == f"import_catalog /{GROUP}"

    report = repo.import_catalog(sources, GROUP, batch_size=batch)
    assert (report.sources, report.skipped) == (YEAR, 0)
    assert repo.list_active_sessions() == [] and len(repo.commit_log) == 2
    _check_year(repo.to_xarray(GROUP).load(), year_reference)


# ---------------------------------------------------------------------------------- Dask
def test_year_on_a_local_cluster(year: Year, year_reference: xr.Dataset, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    plain = zarrchive.Repo.create(tmp_path / "plain")
    expected = plain.import_catalog(year.files[:YEAR], GROUP)
    on_cluster = zarrchive.Repo.create(tmp_path / "cluster")
    # a hang must fail the run rather than stall it: dump every stack and exit after 5 min
    faulthandler.dump_traceback_later(300, exit=True)
    try:
        with (
            distributed.LocalCluster(
                n_workers=2,
                processes=True,
                threads_per_worker=1,
                dashboard_address=None,
                worker_dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster) as client,
            distributed.get_task_stream(client) as stream,
        ):
            report = on_cluster.import_catalog(_shuffled(year.files[:YEAR]), GROUP, client=client)
    finally:
        faulthandler.cancel_dump_traceback_later()
    scans = [t for t in stream.data if "scan_source" in str(t["key"])]
    workers = {t["worker"] for t in scans}
    assert (report.sources, report.skipped) == (YEAR, 0)
    assert len(scans) == YEAR and len(workers) == 2  # scanned on both worker processes
    # the same references (and native coordinate chunks) as the import without Dask
    refs = _references(on_cluster)
    assert sum(isinstance(v, list) for v in refs.values()) == YEAR * 8  # [url, offset, size]
    assert refs == _references(plain)
    assert (report.references, report.bytes_referenced) == (
        expected.references,
        expected.bytes_referenced,
    )
    _check_year(on_cluster.to_xarray(GROUP).load(), year_reference)


def _references(repo: zarrchive.Repo) -> dict[str, Any]:
    """The committed dataset as kerchunk references: byte ranges of the virtual chunks,
    bytes of the native ones."""
    refs = repo.export_kerchunk()["refs"]
    return {k: v for k, v in refs.items() if k.startswith(f"{GROUP}/")}
