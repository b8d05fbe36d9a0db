#!/usr/bin/env python3
"""Import benchmark: N daily NetCDF4 files become one dataset along time, zarrchive vs
virtualizarr 2.5 + icechunk 1.1 vs kerchunk, each in a fresh process.

Usage::

    python bench/bench_import.py                 # 365 files, 3 rounds, memory 100/365/1000
    python bench/bench_import.py --quick         # 100 files, 1 round, no memory curve
    python bench/bench_import.py --files 365 --rounds 5
    python bench/bench_import.py --memory-files 100,365,1000,2000
    python bench/bench_import.py --profile DIR   # also cProfile one zarrchive import

What happens (bench/import.md explains every figure):

1. Source files are generated once into ``bench/.data/import/`` (git-ignored) and reused:
   day ``k`` is ``t2m_YYYY-MM-DD.nc``, written with netCDF4: ``t2m`` and ``tp``, each
   (1, 721, 1440) float32 in chunks (1, 361, 720) with zlib level 4 + shuffle, a
   ``time`` coordinate (float64 days since 2023-01-01, unlimited dimension) and
   ``latitude`` / ``longitude``. Values are cheap to make (a fixed field shifted and offset
   per day, on a 1/64 grid) but differ from day to day; a CRC32 of each day's values is kept.
2. Systems, each timed in a fresh process after its imports (the timer covers scanning,
   combining and committing / writing; worker processes the system starts are inside it):
   - ``zarrchive``: ``Repo.create(dir)`` and ``repo.import_catalog(files, "daily")`` with the
     default ``workers`` (what a user gets: scanning processes by catalog size and CPUs).
   - ``virtualizarr``: ``open_virtual_mfdataset(urls, registry, HDFParser(), combine="nested",
     concat_dim="time", coords="minimal", compat="override", data_vars="minimal")`` with the
     default ``parallel=False``, then an icechunk repository with a
     ``VirtualChunkContainer`` for the folder, ``vds.vz.to_icechunk(session.store)`` and
     ``session.commit``.
   - ``kerchunk``: ``SingleHdf5ToZarr(f, url).translate()`` per file in a loop, then
     ``MultiZarrToZarr(refs, concat_dims=["time"], identical_dims=["latitude",
     "longitude"]).translate()`` and the JSON written to a file.
   - ``virtualizarr-2p`` / ``kerchunk-2p``: the same, scanning in 2 processes
     (``parallel=ProcessPoolExecutor``; a ``ProcessPoolExecutor(2).map`` of
     ``SingleHdf5ToZarr``): what a user who parallelises by hand gets.
   Systems take turns within each round, starting one later each round.
3. Every process reports its wall time, its CPU time (with its children's) and its peak
   RSS (``VmHWM``); the parent samples the summed PSS of the process and its children every
   50 ms (psutil; PSS does not count pages that forked processes share twice).
4. Memory curve: zarrchive alone for each of ``--memory-files`` (default 100, 365, 1000).
5. Checks: in one more process, each system's result is opened with xarray; the time
   coordinates, latitude and longitude must be equal, and ``t2m`` / ``tp`` on a few sample
   days must equal each other and the generator's CRCs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / ".data" / "import"
GEN_VERSION = 1  # bump when the generated files change

VARS = ("t2m", "tp")
SHAPE = (1, 721, 1440)
CHUNKS = (1, 361, 720)
COMPLEVEL = 4
FIRST_DAY = dt.date(2023, 1, 1)
GROUP = "daily"
SYSTEMS = ("zarrchive", "virtualizarr", "kerchunk", "virtualizarr-2p", "kerchunk-2p")
#: the issue's figures on this machine, and its aim
ISSUE = {"virtualizarr": "7-11 s", "kerchunk": "6-9 s"}
AIM = 2.0  # zarrchive at least this many times faster than the faster peer


# ====================================================================== helpers
def peak_rss() -> int:
    """Peak RSS of this process in bytes (VmHWM; ru_maxrss carries the parent's peak across
    the vfork + exec that starts this process, see bench_manifest.py)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def fmt_b(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1024**3:.2f} GiB" if x >= 1024**3 else f"{x / 1024**2:.0f} MiB"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


class TreeSampler:
    """Samples, from the outside, the summed PSS of a process and all its descendants every
    ``period`` s (PSS splits pages shared between forked processes among them, so a fork's
    copy-on-write memory is not counted twice). It runs in the parent bench process: a
    sampler inside the measured process would compete with it for the GIL."""

    def __init__(self, pid: int, period: float = 0.05) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.period = period
        self.peak = 0
        self.max_children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        self.max_children = max(self.max_children, len(procs) - 1)
        total = 0
        for proc in procs:
            try:
                total += proc.memory_full_info().pss
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._sample()

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (user + system)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# ====================================================================== source files
def day_name(day: int) -> str:
    return f"t2m_{(FIRST_DAY + dt.timedelta(days=day)).isoformat()}.nc"


_BASE: dict[str, np.ndarray] = {}


def _base_fields() -> dict[str, np.ndarray]:
    """Fixed fields (per process) that every day shifts and offsets: cheap to compute."""
    if not _BASE:
        ny, nx = SHAPE[1:]
        lat = np.linspace(90.0, -90.0, ny)
        lon = np.arange(nx) * 0.25
        phi = np.deg2rad(lat)[:, None]
        lam = np.deg2rad(lon)[None, :]
        t = 300.0 - 45.0 * np.sin(phi) ** 2
        for k in range(1, 6):
            t = t + 3.0 / k * np.cos(phi) ** 2 * np.sin(k * lam + k) * np.cos((k + 1) * phi)
        rain = np.sin(3 * lam) * np.cos(5 * phi) + 0.5 * np.sin(7 * lam + 2 * phi)
        _BASE.update(lat=lat, lon=lon, t2m=t, tp=rain)
    return _BASE


def day_values(day: int) -> dict[str, np.ndarray]:
    """The (1, 721, 1440) float32 values of every variable on ``day``."""
    b = _base_fields()
    shift = (day * 7) % SHAPE[2]
    season = -10.0 * np.cos(2 * np.pi * (day - 15) / 365.25)
    t2m = np.roll(b["t2m"], shift, axis=1) + season
    tp = np.clip(np.roll(b["tp"], -shift, axis=1) - 0.6, 0.0, None) * 0.01
    return {
        "t2m": (np.round(t2m * 64) / 64).astype(np.float32)[None],
        "tp": (np.round(tp * 65536) / 65536).astype(np.float32)[None],
    }


def _crc(values: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(values).tobytes())


def _gen_file(args: tuple[str, int]) -> tuple[str, dict[str, int]]:
    import netCDF4

    path, day = args
    b = _base_fields()
    values = day_values(day)
    tmp = path + ".tmp"
    with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.createDimension("time", None)
        nc.createDimension("latitude", SHAPE[1])
        nc.createDimension("longitude", SHAPE[2])
        t = nc.createVariable("time", "f8", ("time",))
        t.units = f"days since {FIRST_DAY.isoformat()} 00:00:00"
        t.calendar = "proleptic_gregorian"
        t.standard_name = "time"
        la = nc.createVariable("latitude", "f4", ("latitude",))
        la.units = "degrees_north"
        la.standard_name = "latitude"
        lo = nc.createVariable("longitude", "f4", ("longitude",))
        lo.units = "degrees_east"
        lo.standard_name = "longitude"
        for name, units, long_name in (
            ("t2m", "K", "2 metre temperature"),
            ("tp", "m", "total precipitation"),
        ):
            v = nc.createVariable(
                name,
                "f4",
                ("time", "latitude", "longitude"),
                zlib=True,
                complevel=COMPLEVEL,
                shuffle=True,
                chunksizes=CHUNKS,
            )
            v.units = units
            v.long_name = long_name
            v[0:1] = values[name]
        la[:] = b["lat"]
        lo[:] = b["lon"]
        t[0] = float(day)
        nc.title = "zarrchive import benchmark: synthetic daily fields"
        nc.day = day
    os.replace(tmp, path)
    return path, {name: _crc(v) for name, v in values.items()}


def ensure_files(data: Path, n: int) -> tuple[list[str], dict[str, dict[str, int]]]:
    """The first ``n`` daily files (generated as needed, in 2 processes) and their CRCs."""
    from concurrent.futures import ProcessPoolExecutor

    d = data / "daily"
    d.mkdir(parents=True, exist_ok=True)
    meta_path = d / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if meta.get("version") != GEN_VERSION:
        meta = {"version": GEN_VERSION, "crc": {}}
    crc: dict[str, dict[str, int]] = meta["crc"]
    todo = [
        (str(d / day_name(k)), k)
        for k in range(n)
        if day_name(k) not in crc or not (d / day_name(k)).exists()
    ]
    if todo:
        log(f"generating {len(todo)} daily NetCDF4 files in {d} ...")
        t0 = time.perf_counter()
        with ProcessPoolExecutor(2) as pool:
            for i, (path, c) in enumerate(pool.map(_gen_file, todo, chunksize=4)):
                crc[Path(path).name] = c
                if (i + 1) % 50 == 0:
                    tmp = meta_path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(meta))
                    os.replace(tmp, meta_path)
                    log(f"  {i + 1}/{len(todo)}")
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, meta_path)
        log(f"  done in {time.perf_counter() - t0:.1f} s")
    return [str(d / day_name(k)) for k in range(n)], {
        day_name(k): crc[day_name(k)] for k in range(n)
    }


# ====================================================================== systems (worker side)
def _prefix(files: list[str]) -> tuple[str, str]:
    root = str(Path(files[0]).parent) + "/"
    return root, "file://" + root


def import_zarrchive(files: list[str], out: Path, workers: int | None) -> dict[str, Any]:
    import zarrchive

    repo = zarrchive.Repo.create(str(out))
    report = repo.import_catalog(files, GROUP, concat_dim="time", workers=workers)
    if report.sources != len(files) or report.commit is None:
        raise SystemExit(f"zarrchive imported {report.sources} of {len(files)} sources")
    return {"references": report.references}


def import_virtualizarr(files: list[str], out: Path, processes: int) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor

    import icechunk as ic
    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import LocalStore
    from virtualizarr import open_virtual_mfdataset
    from virtualizarr.parsers import HDFParser

    root, prefix = _prefix(files)
    t0 = time.perf_counter()
    vds = open_virtual_mfdataset(
        ["file://" + f for f in files],
        registry=ObjectStoreRegistry({prefix: LocalStore(prefix=root)}),
        parser=HDFParser(),
        combine="nested",
        concat_dim="time",
        coords="minimal",
        compat="override",
        data_vars="minimal",
        parallel=ProcessPoolExecutor if processes else False,  # it starts os.cpu_count()
    )
    t1 = time.perf_counter()
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(root))
    )
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(out)),
        config=config,
        authorize_virtual_chunk_access={prefix: None},
    )
    session = repo.writable_session("main")
    vds.vz.to_icechunk(session.store)
    session.commit(f"{len(files)} daily files")
    return {"scan_s": t1 - t0, "write_s": time.perf_counter() - t1}


def _kerchunk_one(path: str) -> dict[str, Any]:
    from kerchunk.hdf import SingleHdf5ToZarr

    with open(path, "rb") as f:
        return SingleHdf5ToZarr(f, "file://" + path).translate()


def import_kerchunk(files: list[str], out: Path, processes: int) -> dict[str, Any]:
    from kerchunk.combine import MultiZarrToZarr

    t0 = time.perf_counter()
    if processes:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(processes) as pool:
            singles = list(pool.map(_kerchunk_one, files, chunksize=8))
    else:
        singles = [_kerchunk_one(f) for f in files]
    t1 = time.perf_counter()
    refs = MultiZarrToZarr(
        singles,
        concat_dims=["time"],
        identical_dims=["latitude", "longitude"],
        remote_protocol="file",
    ).translate()
    out.mkdir(parents=True)
    with open(out / "refs.json", "w") as f:
        json.dump(refs, f)
    return {"scan_s": t1 - t0, "write_s": time.perf_counter() - t1}


def worker_import(spec: dict[str, Any]) -> dict[str, Any]:
    """One timed import in this fresh process (imports happen before the timer)."""
    import warnings

    warnings.simplefilter("ignore")
    system, files, out = spec["system"], spec["files"], Path(spec["out"])
    if system == "zarrchive":
        import xarray  # noqa: F401

        import zarrchive.catalog  # noqa: F401
        import zarrchive.importers.hdf5  # noqa: F401

        run = lambda: import_zarrchive(files, out, spec.get("workers"))  # noqa: E731
    elif system.startswith("virtualizarr"):
        import icechunk as ic
        import virtualizarr  # noqa: F401
        import virtualizarr.parsers  # noqa: F401

        ic.set_logs_filter("error")  # not its warning about local storage and concurrent commits
        run = lambda: import_virtualizarr(files, out, 2 if system.endswith("-2p") else 0)  # noqa: E731
    elif system.startswith("kerchunk"):
        import kerchunk.combine  # noqa: F401
        import kerchunk.hdf  # noqa: F401

        run = lambda: import_kerchunk(files, out, 2 if system.endswith("-2p") else 0)  # noqa: E731
    else:
        raise SystemExit(f"unknown system {system}")
    profiler = ThreadsProfiler() if spec.get("profile") else None
    rss_before = peak_rss()
    if profiler is not None:
        profiler.start()
    c0, t0 = cpu_seconds(), time.perf_counter()
    extra = run()
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    if profiler is not None:
        profiler.stop()
    result = {
        "system": system,
        "files": len(files),
        "seconds": seconds,
        "cpu": cpu,
        "vmhwm": peak_rss(),
        "vmhwm_before": rss_before,
        **extra,
    }
    if profiler is not None:
        result["profile"] = profiler.dump(spec["profile"])
    return result


class ThreadsProfiler:
    """cProfile on the main thread, zarr's I/O loop thread (where zarrchive's coroutines run)
    and the loop's worker threads (``asyncio.to_thread``: scanning in this process). cProfile
    sees only the thread that enabled it, so each thread switches on a profile of its own."""

    def __init__(self) -> None:
        import cProfile

        from zarr.core.sync import _get_executor

        self._cp = cProfile
        self.executor = _get_executor()
        self.n_pool = self.executor._max_workers
        self.profiles: dict[str, Any] = {"main": cProfile.Profile(), "loop": cProfile.Profile()}

    def _pool(self, enable: bool) -> None:
        barrier = threading.Barrier(self.n_pool)

        def switch() -> None:
            name = f"pool-{threading.get_ident()}"
            p = self.profiles.setdefault(name, self._cp.Profile())
            p.enable() if enable else p.disable()
            barrier.wait(timeout=30)

        for f in [self.executor.submit(switch) for _ in range(self.n_pool)]:
            f.result()

    def _loop(self, enable: bool) -> None:
        from zarr.core.sync import sync

        async def switch() -> None:
            p = self.profiles["loop"]
            p.enable() if enable else p.disable()

        sync(switch())

    def start(self) -> None:
        self._pool(True)
        self._loop(True)
        self.profiles["main"].enable()

    def stop(self) -> None:
        self.profiles["main"].disable()
        self._loop(False)
        self._pool(False)

    def dump(self, prefix: str) -> list[str]:
        paths = []
        for name, p in self.profiles.items():
            paths.append(f"{prefix}.{name}")
            p.dump_stats(paths[-1])
        return paths


# ====================================================================== checks (worker side)
def worker_verify(spec: dict[str, Any]) -> dict[str, Any]:
    """Open every system's result with xarray and compare the samples (see module doc)."""
    import warnings

    import xarray as xr

    warnings.simplefilter("ignore")
    files, crcs = spec["files"], spec["crcs"]
    root, prefix = _prefix(files)
    n = len(files)
    days = sorted({0, 1, n // 3, n // 2, n - 2, n - 1})
    opened: dict[str, Any] = {}
    for system, out in spec["results"].items():
        if system == "zarrchive":
            import zarrchive

            repo = zarrchive.Repo.open(out, authorize_virtual=[prefix])
            opened[system] = repo.to_xarray(GROUP, chunks=None)
        elif system.startswith("virtualizarr"):
            import icechunk as ic

            repo = ic.Repository.open(
                ic.local_filesystem_storage(out), authorize_virtual_chunk_access={prefix: None}
            )
            store = repo.readonly_session(branch="main").store
            opened[system] = xr.open_zarr(store, consolidated=False, zarr_format=3, chunks=None)
        else:
            from kerchunk.utils import refs_as_store

            refs = json.loads((Path(out) / "refs.json").read_text())
            store = refs_as_store(refs, read_only=True, remote_protocol="file")
            opened[system] = xr.open_zarr(store, consolidated=False, zarr_format=2, chunks=None)
    problems: list[str] = []
    ref_name = "zarrchive" if "zarrchive" in opened else next(iter(opened))
    ref = opened[ref_name]
    expected_time = np.array(
        [np.datetime64(FIRST_DAY.isoformat()) + np.timedelta64(k, "D") for k in range(n)]
    ).astype("datetime64[ns]")
    for system, ds in opened.items():
        for var in VARS:
            if ds[var].shape != (n, *SHAPE[1:]):
                problems.append(f"{system}: {var} has shape {ds[var].shape}")
        if not np.array_equal(ds["time"].values.astype("datetime64[ns]"), expected_time):
            problems.append(f"{system}: the time coordinate differs from the files' days")
        for coord in ("latitude", "longitude"):
            if not np.array_equal(ds[coord].values, ref[coord].values):
                problems.append(f"{system}: {coord} differs from {ref_name}'s")
        for k in days:
            for var in VARS:
                values = ds[var].isel(time=slice(k, k + 1)).values
                if _crc(values.astype(np.float32)) != crcs[day_name(k)][var]:
                    problems.append(f"{system}: {var} on day {k} does not match the file")
                elif system != ref_name and not np.array_equal(
                    values, ref[var].isel(time=slice(k, k + 1)).values
                ):
                    problems.append(f"{system}: {var} on day {k} differs from {ref_name}'s")
    return {"systems": sorted(opened), "days": days, "problems": problems}


def worker_main(spec: dict[str, Any]) -> None:
    kind = spec.pop("kind")
    result = worker_import(spec) if kind == "import" else worker_verify(spec)
    print("RESULT " + json.dumps(result), flush=True)


# ====================================================================== parent
def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ, ZARRCHIVE_AUTHOR="bench", PYTHONWARNINGS="ignore", ICECHUNK_LOG="error")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            stdout=out,
            stderr=err,
            text=True,
            env=env,
        )
        with TreeSampler(proc.pid) as tree:
            code = proc.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code != 0:
        sys.stderr.write(stdout[-5000:] + stderr[-5000:])
        raise SystemExit(f"worker {spec['kind']} {spec.get('system', '')} failed (exit {code})")
    for line in reversed(stdout.splitlines()):
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            result.update(tree_peak=tree.peak, children=tree.max_children)
            return result
    raise SystemExit(f"worker printed no result:\n{stdout}{stderr}")


def med(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


#: functions in which a thread waits (for a lock, the selector or a queue), left out
IDLE = ("acquire' of '_thread.lock", "poll' of 'select.epoll", "get' of '_queue.SimpleQueue")


def print_profile(paths: list[str], top: int = 30) -> None:
    """All threads' profiles merged, by own time, waits left out; then the cumulative time
    of zarrchive's and its importer's main steps."""
    import pstats

    stats = pstats.Stats(*paths)
    rows = []
    for (file, line, name), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        label = (
            name if file == "~" else f"{Path(file).parent.name}/{Path(file).name}:{line}({name})"
        )
        if not any(idle in label for idle in IDLE):
            rows.append((tt, ct, nc, label))
    busy = sum(r[0] for r in rows)
    print(f"\nprofile of one zarrchive import with workers=1: {busy:.2f} s busy in all threads")
    print(f"{'own':>7s} {'cum':>7s} {'calls':>7s}  function")
    for tt, ct, nc, label in sorted(rows, reverse=True)[:top]:
        print(f"{tt:7.3f} {ct:7.3f} {nc:7d}  {label[:110]}")
    steps = ("catalog/", "hdf5.py", "manifest.py", "sources.py", "xarray/conventions.py")
    print("\nmain steps (cumulative; a coroutine counts only while it runs)")
    for _tt, ct, nc, label in sorted(rows, key=lambda r: -r[1]):
        if any(step in label for step in steps) and ct >= 0.05:
            print(f"{ct:7.3f} {nc:7d}  {label[:110]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=365, help="daily files to import (365)")
    ap.add_argument("--rounds", type=int, default=3, help="timed processes per system (3)")
    ap.add_argument(
        "--memory-files", default="100,365,1000", help="zarrchive memory curve ('' for none)"
    )
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    ap.add_argument(
        "--workers", type=int, default=None, help="zarrchive workers (default: its own)"
    )
    ap.add_argument("--quick", action="store_true", help="100 files, 1 round, no memory curve")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the repositories and references")
    ap.add_argument("--json", type=Path, default=None, help="write all measurements here")
    ap.add_argument("--profile", type=Path, default=None, help="cProfile one zarrchive import")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--generate", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        worker_main(json.loads(args.worker))
        return
    if args.generate is not None:
        ensure_files(args.data, args.generate)
        return
    if args.quick:
        args.files, args.rounds, args.memory_files = 100, 1, ""
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"unknown systems {sorted(unknown)}; choose from {SYSTEMS}")
    curve = [int(x) for x in args.memory_files.split(",") if x]
    files, crcs = ensure_files(args.data, max([args.files, *curve]))
    workdir = Path(tempfile.mkdtemp(prefix="bench-import-", dir=args.workdir))
    counter = iter(range(1_000_000))
    started = time.time()
    loads = [load_average()]

    def run(system: str, n: int, **extra: Any) -> dict[str, Any]:
        out = workdir / f"{system}-{n}-{next(counter)}"
        res = run_worker(
            {"kind": "import", "system": system, "files": files[:n], "out": str(out), **extra}
        )
        res["out"] = str(out)
        log(
            f"  {system:16s} {n:5d} files  {fmt_s(res['seconds']):>8s}  cpu {res['cpu']:.2f} s  "
            f"VmHWM {fmt_b(res['vmhwm'])}  all {fmt_b(res['tree_peak'])}  "
            f"load {load_average()}"
        )
        return res

    try:
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
        for r in range(args.rounds):
            log(f"round {r + 1}/{args.rounds} ({args.files} files)")
            for k in range(len(systems)):
                system = systems[(k + r) % len(systems)]
                extra = {"workers": args.workers} if system == "zarrchive" else {}
                runs[system].append(run(system, args.files, **extra))
                if r < args.rounds - 1 or not args.keep:
                    last = runs[system][-1]
                    if r < args.rounds - 1:
                        shutil.rmtree(last["out"], ignore_errors=True)
            loads.append(load_average())
        log("checking the results ...")
        check = run_worker(
            {
                "kind": "verify",
                "files": files[: args.files],
                "crcs": crcs,
                "results": {s: runs[s][-1]["out"] for s in systems},
            }
        )
        curve_runs = []
        if curve and "zarrchive" in systems:
            log("zarrchive memory curve")
            for n in curve:
                res = run("zarrchive", n, workers=args.workers)
                shutil.rmtree(res["out"], ignore_errors=True)
                curve_runs.append(res)
            loads.append(load_average())
        profile = None
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            log("profiling one zarrchive import (workers=1: the scan runs in the profiled process)")
            prof = run("zarrchive", args.files, workers=1, profile=str(args.profile / "zarrchive"))
            profile = prof["profile"]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report(args, systems, runs, check, curve_runs, loads, started)
    if profile:
        print_profile(profile)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"runs": runs, "check": check, "curve": curve_runs, "loads": loads}, indent=1
            )
        )


def report(
    args: argparse.Namespace,
    systems: list[str],
    runs: dict[str, list[dict[str, Any]]],
    check: dict[str, Any],
    curve: list[dict[str, Any]],
    loads: list[str],
    started: float,
) -> None:
    import importlib.metadata as md

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "-"

    print(
        f"Import of {args.files} daily NetCDF4 files ({len(VARS)} variables of {SHAPE} float32 "
        f"in chunks {CHUNKS}, zlib + shuffle); {args.rounds} fresh process(es) per system"
    )
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"zarrchive {version('zarrchive')}, zarr {version('zarr')}, "
        f"virtualizarr {version('virtualizarr')}, icechunk {version('icechunk')}, "
        f"kerchunk {version('kerchunk')}, h5py {version('h5py')}"
    )
    print(f"load average (1/5/15 min) before, after each round: {' | '.join(loads)}")
    print(f"wall time of the whole run: {time.time() - started:.0f} s\n")
    zc = med(runs["zarrchive"], "seconds") if runs.get("zarrchive") else None
    head = (
        f"{'system':17s} {'median':>8s} {'min..max':>17s} {'CPU':>8s} {'VmHWM':>9s} "
        f"{'all procs':>9s} {'peer/zarrchive':>14s} {'issue':>8s}"
    )
    print(head)
    print("-" * len(head))
    for system in systems:
        rs = runs[system]
        m = med(rs, "seconds")
        lo, hi = min(r["seconds"] for r in rs), max(r["seconds"] for r in rs)
        ratio = f"{m / zc:.2f}x" if zc and system != "zarrchive" else ""
        print(
            f"{system:17s} {fmt_s(m):>8s} {fmt_s(lo) + '..' + fmt_s(hi):>17s} "
            f"{med(rs, 'cpu'):>6.2f} s {fmt_b(med(rs, 'vmhwm')):>9s} "
            f"{fmt_b(med(rs, 'tree_peak')):>9s} {ratio:>14s} "
            f"{ISSUE.get(system.removesuffix('-2p'), ''):>8s}"
        )
    peers = [s for s in systems if s != "zarrchive"]
    if zc and peers:
        best = min(peers, key=lambda s: med(runs[s], "seconds"))
        ratio = med(runs[best], "seconds") / zc
        verdict = "ok" if ratio >= AIM else "MISS"
        print(
            f"\naim: zarrchive at least {AIM:.0f}x faster than the faster peer. Fastest peer: "
            f"{best} ({fmt_s(med(runs[best], 'seconds'))}); ratio {ratio:.2f}x -> {verdict}"
        )
    for system in systems:
        parts = {k: med(runs[system], k) for k in ("scan_s", "write_s") if k in runs[system][0]}
        if parts:
            print(
                f"  {system}: scan {fmt_s(parts['scan_s'])}, combine + write "
                f"{fmt_s(parts['write_s'])} (medians)"
            )
    if curve:
        print("\nzarrchive memory curve (one process per size)")
        head = (
            f"{'files':>6s} {'wall':>8s} {'per file':>9s} {'VmHWM':>9s} {'before':>9s} "
            f"{'all procs':>10s}"
        )
        print(head)
        print("-" * len(head))
        for r in curve:
            print(
                f"{r['files']:>6d} {fmt_s(r['seconds']):>8s} "
                f"{r['seconds'] / r['files'] * 1000:>6.1f} ms {fmt_b(r['vmhwm']):>9s} "
                f"{fmt_b(r['vmhwm_before']):>9s} {fmt_b(r['tree_peak']):>10s}"
            )
    print(
        f"\nchecks ({', '.join(check['systems'])}; days {check['days']}): "
        + ("all equal" if not check["problems"] else "; ".join(check["problems"]))
    )
    if check["problems"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
