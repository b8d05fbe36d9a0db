"""import_catalog / append_catalog: many daily files -> one dataset along time, one commit."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import zarrchive
from zarrchive import InvalidInputError, NotFoundError, catalog
from zarrchive.catalog import CatalogReport

N_IMPORT = 40
N_APPEND = 10
START = "2001-01-01"


# ---------------------------------------------------------------------------------- data
def _day(i: int, *, shape: tuple[int, int] = (20, 30), dtype: str = "f4") -> xr.Dataset:
    rng = np.random.default_rng(i)
    t2m = rng.normal(280, 5, size=(1, *shape)).astype(dtype)
    t2m[0, 0, i % shape[1]] = np.nan
    return xr.Dataset(
        {
            "t2m": (("time", "lat", "lon"), t2m, {"units": "K", "long_name": "temperature"}),
            "tp": (("time", "lat", "lon"), rng.random((1, *shape)).astype("f4"), {"units": "m"}),
        },
        coords={
            "time": pd.date_range(START, periods=N_IMPORT + N_APPEND)[i : i + 1],
            "lat": ("lat", np.linspace(-45, 45, shape[0]), {"units": "degrees_north"}),
            "lon": ("lon", np.linspace(0, 290, shape[1]), {"units": "degrees_east"}),
        },
        attrs={"title": "daily sample", "day": i},
    )


def _write(ds: xr.Dataset, path: Path, fmt: str, *, units: str | None = None) -> Path:
    """Write ``ds`` in ``fmt``; odd and even days get different time units."""
    enc: dict[str, Any] = {"time": {"units": units}} if units else {}
    if fmt == "zarr_v2":
        path = path.with_suffix(".zarr")
        ds.to_zarr(path, zarr_format=2, mode="w", encoding=enc)
    elif fmt == "netcdf3":
        path = path.with_suffix(".nc")
        ds.to_netcdf(path, engine="scipy", encoding=enc)
    else:
        path = path.with_suffix(".nc")
        for name in ds.data_vars:
            enc[name] = {"zlib": True, "chunksizes": (1, 10, ds.sizes["lon"])}
        ds.to_netcdf(path, engine="netcdf4", encoding=enc)
    return path


def _units(i: int) -> str:
    return "hours since 2000-01-01" if i % 2 else "days since 1990-01-01"


def _open(path: Path | str, fmt: str) -> xr.Dataset:
    if fmt == "zarr_v2":
        return xr.open_zarr(path).load()
    return xr.open_dataset(path, engine="scipy" if fmt == "netcdf3" else "netcdf4").load()


def _reference(files: list[Path], fmt: str) -> xr.Dataset:
    """What xarray makes of the files (open_mfdataset(combine="by_coords"), without dask)."""
    return xr.combine_by_coords(
        [_open(f, fmt) for f in files],
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="exact",
        combine_attrs="override",
    )


@pytest.fixture(scope="session", params=["zarr_v2", "netcdf3", "netcdf4"])
def daily(request: pytest.FixtureRequest, tmp_path_factory: Any) -> tuple[str, list[Path]]:
    """(format, 50 daily files): the first 40 to import, the last 10 to append."""
    fmt = request.param
    if fmt == "zarr_v2":
        return fmt, request.getfixturevalue("zdaily")
    out = tmp_path_factory.mktemp(f"daily-{fmt}")
    files = [_write(_day(i), out / f"day{i:03d}", fmt, units=_units(i)) for i in range(50)]
    return fmt, files


@pytest.fixture(scope="session")
def zdaily(tmp_path_factory: Any) -> list[Path]:
    """50 daily Zarr v2 stores (always available) for the format-independent tests."""
    out = tmp_path_factory.mktemp("zdaily")
    return [_write(_day(i), out / f"day{i:03d}", "zarr_v2", units=_units(i)) for i in range(50)]


@pytest.fixture(scope="session")
def zreference(zdaily: list[Path]) -> xr.Dataset:
    return _reference(zdaily[:N_IMPORT], "zarr_v2")


def _shuffled(files: list[Path], seed: int = 7) -> list[str]:
    out = [str(f) for f in files]
    random.Random(seed).shuffle(out)
    return out


def _state(repo: zarrchive.Repo) -> tuple[Any, ...]:
    s = repo.status()
    return repo.branches["main"], s.modified, s.deleted, len(repo.list_active_sessions())


def _container(files: list[Path]) -> str:
    return "file://" + str(files[0].parent) + "/"


# ---------------------------------------------------------------------------------- imports
def test_import_equals_open_mfdataset(daily: tuple[str, list[Path]], tmp_path: Path) -> None:
    fmt, files = daily
    repo = zarrchive.Repo.create(tmp_path / "repo")
    before = len(repo.commit_log)
    report = repo.import_catalog(_shuffled(files[:N_IMPORT]), "era5", workers=1, batch_size=8)
    assert isinstance(report, CatalogReport)
    assert (report.sources, report.skipped, report.path) == (N_IMPORT, 0, "era5")
    assert report.references >= 2 * N_IMPORT and report.bytes_referenced > 0
    assert report.commit == repo.branches["main"] and len(repo.commit_log) == before + 1
    assert "40 sources added" in str(report) and report.commit in str(report)
    expected = _reference(files[:N_IMPORT], fmt)
    xr.testing.assert_identical(repo.to_xarray("era5").load(), expected)
    assert list(repo.root_group["era5/t2m"].shape) == [N_IMPORT, 20, 30]

    # opening the dataset reads no source file: the coordinates are native chunks
    fresh = zarrchive.Repo.open(tmp_path / "repo")
    ds = fresh.to_xarray("era5")
    np.testing.assert_array_equal(ds.time.values, expected.time.values)
    np.testing.assert_array_equal(ds.lat.values, expected.lat.values)
    with pytest.raises(zarrchive.UnauthorizedSourceError):
        ds.t2m.values  # noqa: B018
    reader = zarrchive.Repo.open(tmp_path / "repo", authorize_virtual=[_container(files)])
    xr.testing.assert_identical(reader.to_xarray("era5").load(), expected)

    # a rerun adds nothing and makes no commit
    again = repo.import_catalog(_shuffled(files[:N_IMPORT], seed=3), "era5", workers=1)
    assert again.commit is None and (again.sources, again.skipped) == (0, N_IMPORT)
    assert "nothing to add" in str(again) and "no commit" in str(again)
    assert len(repo.commit_log) == before + 1 and not repo.status().modified


def test_append_lands_as_one_commit(daily: tuple[str, list[Path]], tmp_path: Path) -> None:
    fmt, files = daily
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    repo.import_catalog(_shuffled(files[:30]), "era5", workers=1, batch_size=16)
    tip = repo.branches["main"]
    # importing more into an existing dataset is refused (append_catalog does that)
    with pytest.raises(InvalidInputError, match="append_catalog"):
        repo.import_catalog([str(f) for f in files[:32]], "era5", workers=1)
    assert repo.branches["main"] == tip
    # appending new sources (and some already there, which are skipped) is one commit
    report = repo.append_catalog(_shuffled(files[25:N_IMPORT]), "era5", workers=1, batch_size=3)
    assert (report.sources, report.skipped) == (10, 5)
    log = repo.commit_log
    assert log[0].id == report.commit and log[1].id == tip
    xr.testing.assert_identical(repo.to_xarray("era5").load(), _reference(files[:N_IMPORT], fmt))


def test_append_errors(zdaily: list[Path], tmp_path: Path) -> None:
    repo = zarrchive.Repo.create(tmp_path / "repo")
    with pytest.raises(NotFoundError, match="import_catalog"):
        repo.append_catalog([str(zdaily[0])], "era5", workers=1)
    repo.import_catalog([str(f) for f in zdaily[10:20]], "era5", workers=1)
    state = _state(repo)
    # a new source dated before the end of the dataset
    with pytest.raises(InvalidInputError, match=r"day005.*not after the last"):
        repo.append_catalog([str(zdaily[5]), str(zdaily[25])], "era5", workers=1)
    assert _state(repo) == state
    report = repo.append_catalog([str(f) for f in zdaily[20:23]], "era5", workers=1)
    assert report.sources == 3
    ds = repo.to_xarray("era5")
    np.testing.assert_array_equal(ds.time.values, pd.date_range(START, periods=23)[10:23])


# ---------------------------------------------------------------------------------- crashes
def test_interrupted_run_resumes(
    zdaily: list[Path], zreference: xr.Dataset, tmp_path: Path, monkeypatch: Any
) -> None:
    repo = zarrchive.Repo.create(tmp_path / "repo")
    tip = repo.branches["main"]
    written = []
    real = catalog._write._write_batch

    async def crash_after_two(plan: Any, batch: Any) -> None:
        if len(written) == 2:
            raise RuntimeError("injected crash")
        await real(plan, batch)
        written.append(len(batch))

    monkeypatch.setattr(catalog._write, "_write_batch", crash_after_two)
    sources = _shuffled(zdaily[:N_IMPORT])
    with pytest.raises(RuntimeError, match="injected"):
        repo.import_catalog(sources, "era5", workers=1, batch_size=6)
    # the branch and the current session are as they were; the work done is in a session
    assert repo.branches["main"] == tip and not repo.status().modified
    active = repo.list_active_sessions()
    assert [s.message for s in active] == ["import_catalog /era5"]
    monkeypatch.setattr(catalog._write, "_write_batch", real)

    report = repo.import_catalog(sources, "era5", workers=1, batch_size=6)
    assert (report.sources, report.skipped) == (N_IMPORT, 0)
    assert repo.list_active_sessions() == []
    assert len(repo.commit_log) == 2
    ds = repo.to_xarray("era5").load()
    assert len(np.unique(ds.time.values)) == N_IMPORT  # every day exactly once
    xr.testing.assert_identical(ds, zreference)


def test_killed_run_resumes(zdaily: list[Path], zreference: xr.Dataset, tmp_path: Path) -> None:
    location = str(tmp_path / "repo")
    zarrchive.Repo.create(location)
    sources = _shuffled(zdaily[:N_IMPORT], seed=11)
    code = textwrap.dedent(
        f"""
        import os, signal
        import zarrchive
        from zarrchive.session import Session

        real, n = Session.flush, [0]

        async def flush(self):
            had = bool(self.changes is not None and self.changes.pending_ops)
            await real(self)
            n[0] += had
            if n[0] == 3:
                os.kill(os.getpid(), signal.SIGKILL)

        Session.flush = flush
        repo = zarrchive.Repo.open({location!r})
        repo.import_catalog({sources!r}, "era5", workers=1, batch_size=5)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    repo = zarrchive.Repo.open(location)
    assert len(repo.commit_log) == 1
    [info] = repo.list_active_sessions()
    assert info.message == "import_catalog /era5"
    report = repo.import_catalog(sources, "era5", workers=1, batch_size=5)
    assert (report.sources, report.skipped) == (N_IMPORT, 0)
    ds = repo.to_xarray("era5").load()
    assert len(np.unique(ds.time.values)) == N_IMPORT
    xr.testing.assert_identical(ds, zreference)


# ---------------------------------------------------------------------------------- errors
def _bad_set(kind: str, out: Path) -> tuple[list[str], str, str]:
    """Good daily stores plus one bad one: (sources, bad name, message pattern)."""
    out.mkdir()
    srcs = (
        []
        if kind == "partial-chunk"
        else [_write(_day(i), out / f"d{i}", "zarr_v2") for i in range(8)]
    )
    bad: Path
    if kind == "duplicate":
        bad = _write(_day(3), out / "again003", "zarr_v2")
        pattern = "both have time"
    elif kind == "overlap":
        # 2001-01-03T06 and 2001-01-04T06: after day 2 starts, past the start of day 3
        pair = xr.concat([_day(20), _day(21)], dim="time", data_vars="all")
        times = [np.datetime64("2001-01-03T06"), np.datetime64("2001-01-04T06")]
        bad = _write(pair.assign_coords(time=times), out / "overlapping", "zarr_v2")
        pattern = "overlaps"
    elif kind == "dtype":
        bad = _write(_day(20, dtype="f8"), out / "float64", "zarr_v2")
        pattern = "dtype 'float64'.*'float32'|dtype 'float32'.*'float64'"
    elif kind == "missing":
        bad = _write(_day(20).drop_vars("tp"), out / "notp", "zarr_v2")
        pattern = "variable 'tp' is missing"
    elif kind == "extra":
        ds = _day(20)
        bad = _write(ds.assign(sp=ds.tp * 2), out / "extra", "zarr_v2")
        pattern = "extra variable 'sp'"
    elif kind == "partial-chunk":
        # chunks of 2 days; the 1-day store in the middle would shift every later chunk

        srcs = _paired(out, [(0, 1), (2, 3), (5, 6)])
        bad = _paired(out, [(4,)])[0]
        pattern = "not a whole number of chunks"
    elif kind == "static":
        ds = _day(20)
        bad = _write(ds.assign_coords(lat=ds.lat + 0.5), out / "shifted", "zarr_v2")
        pattern = "variable 'lat'.*other values"
    elif kind == "unordered":
        pair = xr.concat([_day(21), _day(20)], dim="time", data_vars="all")
        bad = _write(pair, out / "backwards", "zarr_v2")
        pattern = "not strictly increasing"
    else:
        raise AssertionError(kind)
    sources = [str(p) for p in [*srcs, bad]]
    random.Random(1).shuffle(sources)
    return sources, bad.name, pattern


def _paired(out: Path, groups: list[tuple[int, ...]]) -> list[Path]:
    """Stores of one or two days each, chunked by two days along time."""
    enc = {v: {"chunks": (2, 20, 30)} for v in ("t2m", "tp")}
    paths = []
    for idx in groups:
        ds = xr.concat([_day(i) for i in idx], dim="time", data_vars="all")
        path = out / ("days" + "-".join(map(str, idx)) + ".zarr")
        ds.to_zarr(path, zarr_format=2, encoding=enc)
        paths.append(path)
    return paths


def test_last_source_may_end_in_a_partial_chunk(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    files = _paired(tmp_path / "src", [(4,), (0, 1), (2, 3)])
    repo = zarrchive.Repo.create(tmp_path / "repo")
    repo.import_catalog([str(f) for f in files], "era5", workers=1, batch_size=1)
    assert repo.root_group["era5/t2m"].shape == (5, 20, 30)
    xr.testing.assert_identical(repo.to_xarray("era5").load(), _reference(files, "zarr_v2"))
    with pytest.raises(InvalidInputError, match="ends in a partial chunk"):
        repo.append_catalog(_paired(tmp_path / "src", [(5, 6)]), "era5", workers=1)


@pytest.mark.parametrize(
    "kind",
    ["duplicate", "overlap", "dtype", "missing", "extra", "partial-chunk", "static", "unordered"],
)
def test_invalid_catalogs_write_nothing(kind: str, tmp_path: Path) -> None:
    sources, bad, pattern = _bad_set(kind, tmp_path / "src")
    repo = zarrchive.Repo.create(tmp_path / "repo")
    state = _state(repo)
    with pytest.raises(InvalidInputError, match=pattern) as info:
        repo.import_catalog(sources, "era5", workers=1, batch_size=2)
    assert bad in str(info.value)
    assert _state(repo) == state
    assert "era5" not in repo.session.nodes


def test_no_concat_coordinate(zdaily: list[Path], tmp_path: Path) -> None:
    repo = zarrchive.Repo.create(tmp_path / "repo")
    with pytest.raises(InvalidInputError, match="no coordinate variable 'step'"):
        repo.import_catalog([str(f) for f in zdaily[:3]], "x", concat_dim="step", workers=1)
    with pytest.raises(NotFoundError, match="matches no source"):
        repo.import_catalog(str(tmp_path / "nothing-*.nc"), "x")
    with pytest.raises(InvalidInputError, match="more than once"):
        repo.import_catalog([str(zdaily[0]), str(zdaily[0])], "x")


# ---------------------------------------------------------------------------------- inputs
def test_glob_text_file_and_catalogs(zdaily: list[Path], tmp_path: Path, capsys: Any) -> None:
    files = zdaily[:6]
    expected = _reference(files, "zarr_v2")
    repo = zarrchive.Repo.create(tmp_path / "repo")
    folder = files[0].parent

    report = repo.import_catalog(str(folder / "day00[0-5].zarr"), "by_glob", workers=1)
    assert report.sources == 6

    listing = tmp_path / "sources.txt"
    rel = [os.path.relpath(f, tmp_path) for f in reversed(files)]
    listing.write_text("# six days\n" + "\n".join(rel) + "\n\n")
    repo.import_catalog(str(listing), "by_text", workers=1)
    # a list that mentions GRIB (in a comment, in folder names) is still a list
    grib = tmp_path / "GRIB"
    grib.mkdir()
    for f in files:
        (grib / f.name).symlink_to(f, target_is_directory=True)
    listing.write_text("# GRIB\n" + "\n".join(f"GRIB/{f.name}" for f in files) + "\n")
    repo.import_catalog(str(listing), "by_grib_named_text", workers=1)

    doc = {"path": "by_json", "concat_dim": "time", "sources": [{"url": str(f)} for f in files]}
    (tmp_path / "catalog.json").write_text(json.dumps(doc))
    assert repo.import_catalog(tmp_path / "catalog.json", workers=1).path == "by_json"
    with pytest.raises(InvalidInputError, match="names path"):
        repo.import_catalog(tmp_path / "catalog.json", "elsewhere", workers=1)

    names = ["by_glob", "by_text", "by_grib_named_text", "by_json"]
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        (tmp_path / "catalog.yaml").write_text(
            yaml.safe_dump({"path": "by_yaml", "sources": [str(f) for f in files]})
        )
        repo.import_catalog(str(tmp_path / "catalog.yaml"), workers=1)
        names.append("by_yaml")
    for name in names:
        xr.testing.assert_identical(repo.to_xarray(name).load(), expected)
    assert capsys.readouterr().err == ""  # no progress bar when stderr is not a terminal


def test_default_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """One process per CPU at most (remote catalogs: two even on one CPU), one per 64
    sources (remote: 32); small catalogs are scanned in the calling process."""
    from zarrchive.catalog import _workers

    def jobs(n: int, url: str) -> list[Any]:
        return [catalog.ScanJob(url.format(i), None, "time") for i in range(n)]

    for cpus, n, local, remote in [
        (2, 10, 1, 1),
        (2, 40, 1, 2),
        (2, 365, 2, 2),
        (8, 365, 6, 8),
        (8, 100, 2, 4),
        (1, 365, 1, 2),
        (2, 0, 1, 1),
    ]:
        monkeypatch.setattr(_workers, "_cpu_count", lambda cpus=cpus: cpus)
        assert _workers.default_workers(jobs(n, "file:///data/{}.nc")) == local, (cpus, n)
        assert _workers.default_workers(jobs(n, "s3://bucket/{}.nc")) == remote, (cpus, n)
    # decided by most of the sources
    monkeypatch.setattr(_workers, "_cpu_count", lambda: 2)
    mixed = jobs(200, "s3://bucket/{}.nc") + jobs(165, "file:///data/{}.nc")
    monkeypatch.setattr(_workers, "_cpu_count", lambda: 8)
    assert _workers.default_workers(mixed) == 8
    assert _workers.default_workers(mixed[::-1][:300]) == 5


def test_process_pool(zdaily: list[Path], tmp_path: Path) -> None:
    files = zdaily[:30]
    repo = zarrchive.Repo.create(tmp_path / "repo")
    report = repo.import_catalog(_shuffled(files), "era5", workers=3)
    assert report.sources == 30
    xr.testing.assert_identical(repo.to_xarray("era5").load(), _reference(files, "zarr_v2"))
    assert not multiprocessing.active_children()  # no worker left behind


def test_client_failure_cancels_the_rest(zdaily: list[Path], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    repo = zarrchive.Repo.create(tmp_path / "repo")
    repo.import_catalog([str(f) for f in zdaily[:3]], "era5", workers=1)
    state = _state(repo)
    with (
        distributed.Client(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
        ) as client,
        distributed.get_task_stream(client) as stream,
    ):
        # a source that fails on the cluster fails the run; nothing is written
        with pytest.raises(NotFoundError, match="missing.nc"):
            repo.import_catalog(
                [str(tmp_path / "missing.nc"), *map(str, zdaily[3:])], "other", client=client
            )
        assert _state(repo) == state and "other" not in repo.session.nodes
        time.sleep(1)  # let anything that was not cancelled run
    # the run stopped at the failure: the scans still waiting were cancelled, not all run
    ran = [t for t in stream.data if "scan_source" in str(t["key"])]
    assert [t["status"] for t in ran].count("error") == 1
    assert len(ran) < 1 + len(zdaily[3:])


def test_changed_source_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "src"
    out.mkdir()
    files = [_write(_day(i), out / f"day{i:03d}", "zarr_v2") for i in range(4)]
    repo = zarrchive.Repo.create(tmp_path / "repo")
    repo.import_catalog([str(f) for f in files], "era5", workers=1)
    chunk = files[2] / "t2m" / "0.0.0"
    chunk.write_bytes(chunk.read_bytes())  # same bytes, new mtime: a changed object
    state = _state(repo)
    with pytest.raises(InvalidInputError, match="changed since it was imported"):
        repo.import_catalog([str(f) for f in files], "era5", workers=1)
    assert _state(repo) == state


def test_dask_client(zdaily: list[Path], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    files = zdaily[:4]
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2) as client:
        repo = zarrchive.Repo.create(tmp_path / "repo")
        assert repo.import_catalog(_shuffled(files), "era5", client=client).sources == 4
    xr.testing.assert_identical(repo.to_xarray("era5").load(), _reference(files, "zarr_v2"))


def test_small_remote_netcdf4_costs_two_requests(
    s3_server: dict[str, Any], s3_requests: Any, tmp_path: Path
) -> None:
    """A small remote NetCDF4 file is recognised, parsed and its coordinates read from one
    GET of its first bytes; its version comes from one HEAD, made first."""
    import s3fs

    from conftest import BUCKET

    # 150-200 KB each: more than a 64 KiB head, less than the 512 KiB first read
    days = [_day(i, shape=(120, 200)) for i in range(3)]
    files = [_write(ds, tmp_path / f"day{i:03d}", "netcdf4") for i, ds in enumerate(days)]
    assert all(64 * 1024 < f.stat().st_size < 512 * 1024 for f in files)
    prefix = f"{BUCKET}/{uuid.uuid4().hex}"
    fs = s3fs.S3FileSystem(**s3_server)
    for f in files:
        fs.put_file(str(f), f"{prefix}/{f.name}")
    repo = zarrchive.Repo.create(tmp_path / "repo")
    with s3_requests:
        report = repo.import_catalog(
            [f"s3://{prefix}/{f.name}" for f in files],
            "era5",
            workers=1,
            storage_options=s3_server,
        )
    assert report.sources == 3
    # the earliest file is scanned once more, for its whole tree (groups, static arrays)
    for k, f in enumerate(files):
        assert s3_requests.count("GET", f"/{f.name}") == (2 if k == 0 else 1), s3_requests.made
        assert s3_requests.count("HEAD", f"/{f.name}") == (2 if k == 0 else 1), s3_requests.made
        # the version is taken before the bytes are read: if the object is replaced in
        # between, its references record the old version and reading them fails, rather
        # than recording the new version with offsets parsed from the old bytes
        mine = [m for m, p in s3_requests.made if p.endswith(f"/{f.name}")]
        assert mine[:2] == ["HEAD", "GET"], mine
    ds = zarrchive.Repo.open(tmp_path / "repo", authorize_virtual={"s3://": s3_server})
    xr.testing.assert_identical(ds.to_xarray("era5").load(), _reference(files, "netcdf4"))


def test_remote_sources_are_fetched_together(
    s3_server: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scan_sources stats and reads the first bytes of a batch of remote sources at once,
    then parses them from those bytes: no source waits for another's round trips."""
    import asyncio

    import s3fs

    from conftest import BUCKET
    from zarrchive.catalog import _scan

    files = [_write(_day(i), tmp_path / f"day{i:03d}", "netcdf4") for i in range(8)]
    prefix = f"{BUCKET}/{uuid.uuid4().hex}"
    fs = s3fs.S3FileSystem(**s3_server)
    for f in files:
        fs.put_file(str(f), f"{prefix}/{f.name}")
    jobs = [catalog.ScanJob(f"s3://{prefix}/{f.name}", s3_server, "time") for f in files]
    alone = [catalog.scan_source(j) for j in jobs]

    reader = _scan._process_reader()
    real_stat = reader.stat
    waiting = [0, 0, 0]  # now, most at once, in all

    async def stat(url: str, options: Any = None) -> Any:
        waiting[0] += 1
        waiting[1] = max(waiting[:2])
        waiting[2] += 1
        try:
            await asyncio.sleep(0.05)  # a round trip long enough for all to start
            return await real_stat(url, options)
        finally:
            waiting[0] -= 1

    def no_sniff(url: str, options: Any) -> Any:
        raise AssertionError(f"{url} was read again to recognise it")

    monkeypatch.setattr(reader, "stat", stat)
    monkeypatch.setattr(_scan, "sniff", no_sniff)
    together = catalog.scan_sources(jobs)
    assert waiting[1] == len(jobs)
    assert waiting[2] == len(jobs)  # one stat each: scan_source used the prefetched bytes
    for a, b in zip(alone, together, strict=True):
        assert (a.url, a.format, a.digests) == (b.url, b.format, b.digests)
        np.testing.assert_array_equal(a.raw, b.raw)
        assert a.tree is not None and b.tree is not None
        assert {p: x.meta for p, x in a.tree.arrays.items()} == {
            p: x.meta for p, x in b.tree.arrays.items()
        }


def test_s3_sources(s3_server: dict[str, Any], tmp_path: Path) -> None:
    import s3fs

    from conftest import BUCKET

    out = tmp_path / "src"
    out.mkdir()
    files = [_write(_day(i), out / f"day{i:03d}", "netcdf3", units=_units(i)) for i in range(5)]
    prefix = f"{BUCKET}/{uuid.uuid4().hex}"
    fs = s3fs.S3FileSystem(**s3_server)
    for f in files:
        fs.put_file(str(f), f"{prefix}/{f.name}")
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    report = repo.import_catalog(
        f"s3://{prefix}/day*.nc", "era5", workers=1, storage_options=s3_server
    )
    assert report.sources == 5
    expected = _reference(files, "netcdf3")
    xr.testing.assert_identical(repo.to_xarray("era5").load(), expected)
    again = repo.import_catalog(
        [f"s3://{prefix}/{f.name}" for f in files], "era5", storage_options=s3_server
    )
    assert again.commit is None and again.skipped == 5
