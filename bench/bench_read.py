#!/usr/bin/env python3
"""Read benchmark: one whole variable through xarray, zarrchive vs icechunk 1.1 vs kerchunk,
against a floor (pread + numcodecs decode of the same byte ranges).

Usage::

    python bench/bench_read.py                  # 365 daily files + the 8,760-chunk file
    python bench/bench_read.py --quick          # 30 daily files, fewer repetitions
    python bench/bench_read.py --files 100
    python bench/bench_read.py --skip-decode    # no zarr decode-path comparison
    python bench/bench_read.py --profile DIR    # also cProfile zarrchive reads into DIR

What happens (see bench/README.md for the meaning of each figure):

1. Source files are generated once into ``bench/.data/read/`` (git-ignored) and reused:
   ``daily/`` holds N NetCDF4 files (netCDF4 writer), each with ``t2m`` (1, 721, 1440)
   float32, chunks (1, 361, 720), zlib level 4 + shuffle, smooth temperature-like values
   (latitude profile, season, large-scale waves, a fixed land pattern and 0.2 K noise),
   and ``time``/``latitude``/``longitude`` coordinates; ``hourly/`` holds one file with
   ``t2m`` (8760, 32, 32) float32 in 8,760 chunks (1, 32, 32), zlib + shuffle. A CRC32 of
   every time step's values is kept to check every system's result.
2. References are built once per dataset and kept there too: kerchunk JSON
   (``SingleHdf5ToZarr`` per file in 2 processes + ``MultiZarrToZarr`` along time) and an
   icechunk 1.1 repository written by virtualizarr 2.5 (``open_virtual_mfdataset`` in 2
   processes, ``vds.vz.to_icechunk``). The zarrchive repository is built in every run, in a
   temporary directory, from the kerchunk references (``Repo.add_kerchunk_references``).
3. Every measurement runs in a fresh subprocess: open the system's store (untimed), one
   warm-up read (untimed; its values are checked against the CRCs), then ``--reads`` timed
   reads of ``ds["t2m"].values``, each on a freshly opened xarray Dataset (xarray caches
   loaded values inside a Dataset). Processes of the different systems take turns, round
   after round, so slow drifts of the machine hit every system alike; each figure is the
   median of all its timed reads, and ratios are to the floor's median of the same run.
   Systems: ``floor``; ``zarrchive``; ``kerchunk`` (``refs_as_store``); ``icechunk``;
   ``zarr-mem``, zarr-python + xarray reading the zarrchive group's own chunk bytes copied
   into a ``MemoryStore``: what zarr costs when the store costs nothing.
4. The floor reads the same byte ranges as everybody (from the kerchunk references) with
   ``os.pread`` and decodes them with numcodecs (zlib, then shuffle) in a thread pool of
   2 workers, into a preallocated array.
5. Decode paths (zarrchive only, one process per setting): zarr's default pipeline, the
   zarrs pipeline, ``async.concurrency`` and ``threading.max_workers`` variants, and, for
   reference, both pipelines on a zarr ``LocalStore`` copy of the same chunks. The daily
   dataset is read for its first ``--decode-steps`` time steps here (same chunks, less time).
6. ``--profile DIR``: one more zarrchive process per dataset under cProfile, with one
   profile per thread (main, zarr's I/O loop, each of zarr's pool threads).

Every worker reports its CPU time per read and how much CPU other processes of the machine
used meanwhile (``/proc/stat``), and its peak RSS (``VmHWM``).
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
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / ".data" / "read"
GEN_VERSION = 1  # bump when the generated files change

VAR = "t2m"
DAILY = {"shape": (1, 721, 1440), "chunks": (1, 361, 720)}
HOURLY = {"shape": (8760, 32, 32), "chunks": (1, 32, 32)}
COMPLEVEL = 4
FIRST_DAY = dt.date(2023, 1, 1)
GROUPS = {"daily": "t2m_daily", "hourly": "t2m_hourly"}  # zarrchive group names
FLOOR_THREADS = 2

# Aims from the issue (ratio to the floor) and the issue's icechunk / kerchunk figures.
TARGETS = {"daily": 1.3, "hourly": 2.5}
ISSUE = {
    "icechunk": {"daily": 3.2, "hourly": 6.8},
    "kerchunk": {"daily": 1.9, "hourly": 5.5},
}
SYSTEMS = ("floor", "zarrchive", "kerchunk", "icechunk", "zarr-mem")


# ====================================================================== helpers
def peak_rss() -> int:
    """Peak RSS of this process in bytes (VmHWM; see bench_manifest.peak_rss for why)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def machine_busy() -> float:
    """CPU seconds all processes of the machine have used so far (user + system + ...)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in fields[:8]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 1:
        return f"{x * 1000:.0f} ms"
    return f"{x:.2f} s"


def fmt_b(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1024**3:
        return f"{x / 1024**3:.2f} GiB"
    return f"{x / 1024**2:.0f} MiB"


def write_json_atomic(path: Path, doc: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


# ====================================================================== source data
def _smooth_field(rng: np.random.Generator, ny: int, nx: int, cutoff: int) -> np.ndarray:
    """Random field keeping only wavenumbers below ``cutoff`` (unit variance)."""
    spec = rng.standard_normal((ny, nx // 2 + 1)) + 1j * rng.standard_normal((ny, nx // 2 + 1))
    ky = np.abs(np.fft.fftfreq(ny) * ny)[:, None]
    kx = np.arange(nx // 2 + 1)[None, :]
    spec *= np.exp(-((ky / cutoff) ** 2 + (kx / (2 * cutoff)) ** 2))
    f = np.fft.irfft2(spec, s=(ny, nx))
    return f / f.std()


def daily_field(day: int, lat: np.ndarray, lon: np.ndarray, land: np.ndarray) -> np.ndarray:
    """A smooth t2m-like field (K) for day ``day`` (float32, (721, 1440))."""
    rng = np.random.default_rng(1000 + day)
    phi = np.deg2rad(lat)[:, None]
    lam = np.deg2rad(lon)[None, :]
    season = np.cos(2 * np.pi * (day - 15) / 365.25)
    t = 300.0 - 45.0 * np.sin(phi) ** 2 - 12.0 * np.sin(phi) * season + 6.0 * land
    for k in range(1, 7):  # travelling planetary waves
        amp = 3.0 / k**0.5 * np.cos(phi) ** 2
        phase = 2 * np.pi * rng.random() + 0.3 * day * k
        t = t + amp * np.sin(k * lam + phase) * np.cos((k + 1) * phi + rng.random())
    t = t + 0.2 * rng.standard_normal(t.shape)
    return t.astype(np.float32)


def _gen_daily_file(args: tuple[str, int]) -> tuple[str, list[int]]:
    import netCDF4

    path, day = args
    ny, nx = DAILY["shape"][1:]
    lat = np.linspace(90.0, -90.0, ny)
    lon = np.arange(nx) * 0.25
    land = _smooth_field(np.random.default_rng(7), ny, nx, 12)
    land = np.clip(land, 0.0, None)
    values = daily_field(day, lat, lon, land)[None]
    tmp = path + ".tmp"
    with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.createDimension("time", None)
        nc.createDimension("latitude", ny)
        nc.createDimension("longitude", nx)
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
        v = nc.createVariable(
            VAR,
            "f4",
            ("time", "latitude", "longitude"),
            zlib=True,
            complevel=COMPLEVEL,
            shuffle=True,
            chunksizes=DAILY["chunks"],
        )
        v.units = "K"
        v.long_name = "2 metre temperature"
        v.standard_name = "air_temperature"
        la[:] = lat
        lo[:] = lon
        t[0] = float(day)
        v[0:1] = values
        nc.title = "zarrchive read benchmark: synthetic daily 2 m temperature"
    os.replace(tmp, path)
    return path, [zlib.crc32(values[0].tobytes())]


def _gen_hourly_file(path: str) -> list[int]:
    import netCDF4

    nt, ny, nx = HOURLY["shape"]
    rng = np.random.default_rng(3)
    lat = np.linspace(50.0, 42.25, ny)
    lon = np.linspace(5.0, 12.75, nx)
    hours = np.arange(nt, dtype=np.float64)
    space = 2.0 * _smooth_field(rng, ny, nx, 3) - 0.5 * (lat[:, None] - 46)
    season = -10.0 * np.cos(2 * np.pi * (hours / 24 - 15) / 365.25)
    diurnal = 5.0 * np.sin(2 * np.pi * (hours - 9) / 24)
    weather = np.cumsum(rng.standard_normal(nt)) * 0.05
    weather -= np.linspace(weather[0], weather[-1], nt)
    values = (
        285.0
        + (season + diurnal + weather)[:, None, None]
        + space[None]
        + 0.2 * rng.standard_normal((nt, ny, nx))
    ).astype(np.float32)
    tmp = path + ".tmp"
    with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.createDimension("time", None)
        nc.createDimension("latitude", ny)
        nc.createDimension("longitude", nx)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = f"hours since {FIRST_DAY.isoformat()} 00:00:00"
        t.calendar = "proleptic_gregorian"
        t.standard_name = "time"
        la = nc.createVariable("latitude", "f4", ("latitude",))
        la.units = "degrees_north"
        lo = nc.createVariable("longitude", "f4", ("longitude",))
        lo.units = "degrees_east"
        v = nc.createVariable(
            VAR,
            "f4",
            ("time", "latitude", "longitude"),
            zlib=True,
            complevel=COMPLEVEL,
            shuffle=True,
            chunksizes=HOURLY["chunks"],
        )
        v.units = "K"
        v.long_name = "2 metre temperature"
        la[:] = lat
        lo[:] = lon
        t[:] = hours
        v[:] = values
        nc.title = "zarrchive read benchmark: synthetic hourly 2 m temperature, small chunks"
    os.replace(tmp, path)
    return [zlib.crc32(values[i].tobytes()) for i in range(nt)]


def daily_name(day: int) -> str:
    return f"t2m_{(FIRST_DAY + dt.timedelta(days=day)).isoformat()}.nc"


def ensure_daily(data: Path, n: int) -> tuple[list[str], list[int]]:
    """The first ``n`` daily files (generated as needed) and the CRC of each time step."""
    from concurrent.futures import ProcessPoolExecutor

    d = data / "daily"
    d.mkdir(parents=True, exist_ok=True)
    meta_path = d / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if meta.get("version") != GEN_VERSION:
        meta = {"version": GEN_VERSION, "crc": {}}
    crc: dict[str, list[int]] = meta["crc"]
    todo = [
        (str(d / daily_name(k)), k)
        for k in range(n)
        if daily_name(k) not in crc or not (d / daily_name(k)).exists()
    ]
    if todo:
        log(f"generating {len(todo)} daily NetCDF4 files in {d} ...")
        t0 = time.perf_counter()
        with ProcessPoolExecutor(2) as pool:
            for i, (path, c) in enumerate(pool.map(_gen_daily_file, todo, chunksize=4)):
                crc[Path(path).name] = c
                if (i + 1) % 50 == 0:
                    write_json_atomic(meta_path, meta)
                    log(f"  {i + 1}/{len(todo)}")
        write_json_atomic(meta_path, meta)
        log(f"  done in {time.perf_counter() - t0:.1f} s")
    files = [str(d / daily_name(k)) for k in range(n)]
    return files, [c for k in range(n) for c in crc[daily_name(k)]]


def ensure_hourly(data: Path) -> tuple[list[str], list[int]]:
    d = data / "hourly"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "t2m_hourly.nc"
    meta_path = d / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if meta.get("version") != GEN_VERSION or not path.exists():
        log(f"generating {path} ...")
        t0 = time.perf_counter()
        meta = {"version": GEN_VERSION, "crc": _gen_hourly_file(str(path))}
        write_json_atomic(meta_path, meta)
        log(f"  done in {time.perf_counter() - t0:.1f} s")
    return [str(path)], meta["crc"]


# ====================================================================== references
def _kerchunk_one(path: str) -> dict[str, Any]:
    from kerchunk.hdf import SingleHdf5ToZarr

    url = "file://" + path
    with open(path, "rb") as f:
        return SingleHdf5ToZarr(f, url, inline_threshold=300).translate()


def build_kerchunk(files: list[str]) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor

    from kerchunk.combine import MultiZarrToZarr

    if len(files) == 1:
        singles = [_kerchunk_one(files[0])]
    else:
        with ProcessPoolExecutor(2) as pool:
            singles = list(pool.map(_kerchunk_one, files, chunksize=8))
    return MultiZarrToZarr(
        singles,
        concat_dims=["time"],
        identical_dims=["latitude", "longitude"],
        remote_protocol="file",
    ).translate()


def chunk_ranges(refs: dict[str, Any]) -> dict[str, np.ndarray | list[str]]:
    """Every chunk of ``t2m`` in the kerchunk references: coords, file, offset, length."""
    zarray = json.loads(refs["refs"][f"{VAR}/.zarray"])
    ndim = len(zarray["shape"])
    sep = zarray.get("dimension_separator", ".")
    urls: dict[str, int] = {}
    coords, fidx, offs, lens = [], [], [], []
    for key, val in refs["refs"].items():
        if not key.startswith(VAR + "/") or key.rsplit("/", 1)[1].startswith("."):
            continue
        if not (isinstance(val, list) and len(val) == 3):
            raise SystemExit(f"{key}: expected a [url, offset, length] reference, got {val!r}")
        c = tuple(int(x) for x in key.rsplit("/", 1)[1].split(sep))
        assert len(c) == ndim
        url, off, ln = val
        coords.append(c)
        fidx.append(urls.setdefault(url, len(urls)))
        offs.append(off)
        lens.append(ln)
    order = np.lexsort(np.array(coords).T[::-1])
    return {
        "coords": np.array(coords, dtype=np.int64)[order],
        "file_idx": np.array(fidx, dtype=np.int64)[order],
        "offsets": np.array(offs, dtype=np.int64)[order],
        "lengths": np.array(lens, dtype=np.int64)[order],
        "urls": list(urls),
    }


def _virtual_one(path: str, prefix: str, root: str) -> Any:
    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import LocalStore
    from virtualizarr import open_virtual_dataset
    from virtualizarr.parsers import HDFParser

    registry = ObjectStoreRegistry({prefix: LocalStore(prefix=root)})
    return open_virtual_dataset("file://" + path, registry=registry, parser=HDFParser())


def build_icechunk(files: list[str], repo_dir: Path) -> float:
    """virtualizarr 2.5 scan (2 processes) + to_icechunk; returns the seconds it took."""
    import icechunk as ic
    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import LocalStore
    from virtualizarr import open_virtual_mfdataset
    from virtualizarr.parsers import HDFParser

    ic.set_logs_filter("error")  # not the warning about local storage and concurrent commits
    root = str(Path(files[0]).parent) + "/"
    prefix = "file://" + root
    t0 = time.perf_counter()
    registry = ObjectStoreRegistry({prefix: LocalStore(prefix=root)})
    from concurrent.futures import ProcessPoolExecutor

    class Pool2(ProcessPoolExecutor):
        def __init__(self) -> None:
            super().__init__(2)

    vds = open_virtual_mfdataset(
        ["file://" + f for f in files],
        registry=registry,
        parser=HDFParser(),
        combine="nested",
        concat_dim="time",
        coords="minimal",
        compat="override",
        data_vars="minimal",
        parallel=Pool2 if len(files) > 1 else False,
    )
    if repo_dir.exists():
        shutil.rmtree(repo_dir)
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(root))
    )
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(repo_dir)),
        config=config,
        authorize_virtual_chunk_access={prefix: None},
    )
    session = repo.writable_session("main")
    vds.vz.to_icechunk(session.store)
    session.commit(f"{len(files)} files")
    return time.perf_counter() - t0


# ====================================================================== workers (subprocesses)
def _xr_open(store: Any, group: str | None = None, zarr_format: int = 3) -> Any:
    import xarray as xr

    return xr.open_zarr(
        store, group=group, consolidated=False, zarr_format=zarr_format, chunks=None
    )


class FloorReader:
    """pread + numcodecs (zlib, then shuffle) of every chunk, 2 threads, preallocated output."""

    def __init__(self, refs_path: str, threads: int = FLOOR_THREADS) -> None:
        import threading
        from concurrent.futures import ThreadPoolExecutor

        import numcodecs

        refs = json.loads(Path(refs_path).read_text())
        zarray = json.loads(refs["refs"][f"{VAR}/.zarray"])
        codecs = [numcodecs.get_codec(c) for c in (zarray.get("filters") or [])]
        if zarray.get("compressor"):
            codecs.append(numcodecs.get_codec(zarray["compressor"]))
        ids = [c.codec_id for c in codecs]
        if ids != ["shuffle", "zlib"]:
            raise SystemExit(f"floor: expected shuffle + zlib, got {ids}")
        self.shuffle, self.zlib = codecs
        self.shape = tuple(zarray["shape"])
        self.chunks = tuple(zarray["chunks"])
        self.dtype = np.dtype(zarray["dtype"])
        r = chunk_ranges(refs)
        self.paths = [u[len("file://") :] for u in r["urls"]]
        nbytes = int(np.prod(self.chunks)) * self.dtype.itemsize
        tasks = []
        for c, f, o, ln in zip(
            r["coords"].tolist(),
            r["file_idx"].tolist(),
            r["offsets"].tolist(),
            r["lengths"].tolist(),
            strict=True,
        ):
            sel = tuple(
                slice(ci * ch, min((ci + 1) * ch, n))
                for ci, ch, n in zip(c, self.chunks, self.shape, strict=True)
            )
            sub = tuple(slice(0, s.stop - s.start) for s in sel)
            tasks.append((f, o, ln, sel, sub))
        # batches of consecutive chunks keep the pool's per-task overhead out of the floor
        per = max(1, min(64, len(tasks) // (8 * threads)))
        self.batches = [tasks[i : i + per] for i in range(0, len(tasks), per)]
        self.n_chunks = len(tasks)
        self.nbytes_chunk = nbytes
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="floor")
        self.local = threading.local()

    def read(self) -> np.ndarray:
        out = np.empty(self.shape, dtype=self.dtype)
        fds = [os.open(p, os.O_RDONLY) for p in self.paths]
        shuffle, zlib_codec, chunks, dtype = self.shuffle, self.zlib, self.chunks, self.dtype
        local, nbytes = self.local, self.nbytes_chunk

        def run(batch: list[tuple[Any, ...]]) -> None:
            scratch = getattr(local, "scratch", None)
            if scratch is None:
                scratch = local.scratch = np.empty(nbytes, dtype=np.uint8)
            chunk = scratch.view(dtype).reshape(chunks)
            for f, o, ln, sel, sub in batch:
                raw = os.pread(fds[f], ln, o)
                shuffle.decode(zlib_codec.decode(raw), out=scratch)
                out[sel] = chunk[sub]

        try:
            for _ in self.pool.map(run, self.batches):
                pass
        finally:
            for fd in fds:
                os.close(fd)
        return out


def _zarr_array_info(store: Any, path: str) -> dict[str, Any]:
    """Which codec pipeline zarr picked for the variable, and whether zarrs' Rust side runs."""
    import zarr

    arr = zarr.open_array(store=store, path=path, mode="r")
    pipe = arr._async_array.codec_pipeline
    info: dict[str, Any] = {"pipeline": type(pipe).__module__ + "." + type(pipe).__name__}
    if hasattr(pipe, "impl"):
        info["zarrs_rust"] = pipe.impl is not None
    requested = zarr.config.get("codec_pipeline.path")
    if requested.startswith("zarrs") and not type(pipe).__module__.startswith("zarrs"):
        # zarr builds the pipeline with from_array_metadata_and_store and, on
        # NotImplementedError, silently falls back to from_codecs: find out why
        from zarrs._internal import CodecPipelineImpl

        try:
            CodecPipelineImpl(json.dumps(arr.metadata.to_dict()), store_config=store)
            info["zarrs_fallback"] = "unknown"
        except Exception as exc:  # noqa: BLE001
            info["zarrs_fallback"] = f"{type(exc).__name__}: {exc}"
    info["codecs"] = (
        [type(c).__name__ for c in arr.metadata.codecs] if arr.metadata.zarr_format == 3 else None
    )
    return info


def _copy_group(store: Any, group: str, dest: Any) -> Any:
    """Every key of ``group`` (and the root zarr.json) copied into the zarr store ``dest``."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    async def copy() -> None:
        proto = default_buffer_prototype()
        keys = ["zarr.json"] + [k async for k in store.list_prefix(group + "/")]
        for key in keys:
            value = await store.get(key, proto)
            if value is not None:
                await dest.set(key, value)

    sync(copy())
    return dest


def open_system(system: str, spec: dict[str, Any]) -> tuple[Callable[[], Any], dict[str, Any]]:
    """Open the system's store (untimed); return a function that opens a fresh Dataset."""
    info: dict[str, Any] = {}
    if system == "kerchunk":
        from kerchunk.utils import refs_as_store

        refs = json.loads(Path(spec["kerchunk_refs"]).read_text())
        store = refs_as_store(refs, read_only=True, remote_protocol="file")
        return (lambda: _xr_open(store, zarr_format=2)), info
    if system == "icechunk":
        import icechunk as ic

        prefix = spec["prefix"]
        repo = ic.Repository.open(
            ic.local_filesystem_storage(spec["icechunk_repo"]),
            authorize_virtual_chunk_access={prefix: None},
        )
        session = repo.readonly_session(branch="main")
        store = session.store
        info.update(_zarr_array_info(store, VAR))
        return (lambda: _xr_open(store)), info
    if system in ("zarrchive", "zarr-mem", "zarr-local"):
        import inspect

        from zarr.storage import LocalStore, MemoryStore

        import zarrchive

        kw = {}
        if "authorize_virtual" in inspect.signature(zarrchive.Repo.open).parameters:
            kw["authorize_virtual"] = [spec["prefix"]]
        repo = zarrchive.Repo.open(spec["zarrchive_repo"], **kw)
        group = spec["group"]
        if system != "zarrchive":
            if system == "zarr-mem":
                other = _copy_group(repo.store, group, MemoryStore())
            else:
                done = Path(spec["local_dir"]) / ".complete"
                if not done.exists():
                    _copy_group(repo.store, group, LocalStore(spec["local_dir"]))
                    done.touch()
                other = LocalStore(spec["local_dir"], read_only=True)
            info.update(_zarr_array_info(other, f"{group}/{VAR}"))
            return (lambda: _xr_open(other, group=group)), info
        info.update(_zarr_array_info(repo.store, f"{group}/{VAR}"))
        return (lambda: repo.to_xarray(group, chunks=None)), info
    raise ValueError(system)


def check_values(values: np.ndarray, spec: dict[str, Any]) -> None:
    crc = json.loads(Path(spec["crc"]).read_text())[: spec.get("time_steps")]
    if values.shape[0] != len(crc) or values.dtype != np.float32:
        raise RuntimeError(f"got {values.shape} {values.dtype}, expected {len(crc)} time steps")
    bad = [i for i in range(len(crc)) if zlib.crc32(np.ascontiguousarray(values[i])) != crc[i]]
    if bad:
        raise RuntimeError(
            f"values of {len(bad)} time steps differ from the sources, e.g. {bad[:5]}"
        )


def worker_read(system: str, spec: dict[str, Any], reads: int) -> dict[str, Any]:
    import warnings

    import zarr

    if spec.get("zarr_config"):
        if "codec_pipeline.path" in spec["zarr_config"]:
            # an explicit pipeline: zarrchive must not install its batched one over it
            os.environ["ZARRCHIVE_BATCHED_READS"] = "0"
        zarr.config.set(spec["zarr_config"])
    steps = spec.get("time_steps")
    out: dict[str, Any] = {"system": system}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        # fresh(): untimed preparation (a freshly opened Dataset), returning the timed read
        if system == "floor":
            floor = FloorReader(spec["kerchunk_refs"])

            def fresh() -> Callable[[], np.ndarray]:
                return floor.read
        else:
            open_ds, info = open_system(system, spec)
            out.update(info)

            def fresh() -> Callable[[], np.ndarray]:
                var = open_ds()[VAR]
                if steps is not None:
                    var = var[:steps]
                return lambda: var.values

        t1 = time.perf_counter()
        values = fresh()()  # warm-up (untimed): page cache, manifests, imports
        t2 = time.perf_counter()
        check_values(values, spec)
        out.update(open_s=t1 - t0, warm_s=t2 - t1, nbytes=values.nbytes, shape=values.shape)
        del values
        if system != "floor":
            out["fill_value_mask"] = "_FillValue" in open_ds()[VAR].encoding
        read_s, reopen_s, cpu_s, other_s = [], [], [], []
        prof = spec.get("profiler")
        for _ in range(reads):
            ta = time.perf_counter()
            read = fresh()
            if prof:
                prof.start()
            c0, m0 = os.times(), machine_busy()
            tb = time.perf_counter()
            values = read()
            tc = time.perf_counter()
            c1, m1 = os.times(), machine_busy()
            if prof:
                prof.stop()
            del values, read
            read_s.append(tc - tb)
            reopen_s.append(tb - ta)
            own = (c1.user - c0.user) + (c1.system - c0.system)
            cpu_s.append(own)
            other_s.append(max(0.0, (m1 - m0) - own))
    out["read_s"] = read_s
    out["reopen_s"] = reopen_s
    out["cpu_s"] = cpu_s
    out["other_cpu_s"] = other_s
    out["warnings"] = sorted({f"{w.category.__name__}: {w.message}"[:300] for w in caught})
    out["peak_rss"] = peak_rss()
    return out


class ThreadsProfiler:
    """cProfile on the main thread, zarr's I/O loop thread and every zarr pool thread.

    cProfile only sees the thread that enabled it. zarrchive's store coroutines run on zarr's
    loop thread, and zarr decodes chunks (and zarrchive preads files) with ``asyncio.to_thread``
    on zarr's thread pool, which is the loop's default executor: each of those threads gets a
    profile of its own, switched on and off from inside the thread.
    """

    def __init__(self) -> None:
        import cProfile

        from zarr.core.sync import _get_executor

        self._cp = cProfile
        self.executor = _get_executor()
        self.n_pool = self.executor._max_workers
        self.main = cProfile.Profile()
        self.loop = cProfile.Profile()
        self.pool: dict[int, Any] = {}

    def _on_pool(self, enable: bool) -> None:
        import threading

        barrier = threading.Barrier(self.n_pool)

        def switch() -> None:
            ident = threading.get_ident()
            p = self.pool.get(ident)
            if p is None:
                p = self.pool[ident] = self._cp.Profile()
            p.enable() if enable else p.disable()
            barrier.wait(timeout=30)

        for f in [self.executor.submit(switch) for _ in range(self.n_pool)]:
            f.result()

    def _on_loop(self, enable: bool) -> None:
        from zarr.core.sync import sync

        async def switch() -> None:
            self.loop.enable() if enable else self.loop.disable()

        sync(switch())

    def start(self) -> None:
        self._on_pool(True)
        self._on_loop(True)
        self.main.enable()

    def stop(self) -> None:
        self.main.disable()
        self._on_loop(False)
        self._on_pool(False)

    def dump(self, prefix: str) -> list[str]:
        paths = [prefix + ".main", prefix + ".loop"]
        self.main.dump_stats(paths[0])
        self.loop.dump_stats(paths[1])
        for k, p in enumerate(self.pool.values()):
            paths.append(f"{prefix}.pool{k}")
            p.dump_stats(paths[-1])
        return paths


IDLE = {
    "main": ("acquire' of '_thread.lock",),  # waiting for zarr's sync() result
    "loop": ("poll' of 'select.epoll",),  # the event loop waiting for work
    "pool": ("get' of '_queue.SimpleQueue",),  # pool threads waiting for work
}
# Functions whose inclusive time on the loop thread is reported (cProfile counts a coroutine
# only while it runs, not while it awaits, so cum time is CPU time spent in and below it).
LOOP_CUM = [
    ("zarrchive ZarrchiveStore.get (all of the store)", "store.py", "get"),
    ("  zarrchive ZarrchiveStore._chunk (key -> coords)", "store.py", "_chunk"),
    ("  zarrchive Session.chunk_ref (manifest lookup)", "session.py", "chunk_ref"),
    ("  zarrchive Repository.read_ref", "repository.py", "read_ref"),
    ("  zarrchive SourceReader.read (to_thread pread)", "sources.py", "read"),
    ("zarr BatchedCodecPipeline.read_batch", "codec_pipeline.py", "read_batch"),
    ("  zarr BatchedCodecPipeline.decode_batch", "codec_pipeline.py", "decode_batch"),
    ("zarr concurrent_map (task per chunk)", "common.py", "concurrent_map"),
    ("asyncio to_thread (any caller)", "threads.py", "to_thread"),
    ("xarray / zarr indexing setup (_get_selection)", "array.py", "_get_selection"),
]


def _fname(key: tuple[str, int, str]) -> str:
    file, line, name = key
    if file == "~":
        return name
    return f"{Path(file).parent.name}/{Path(file).name}:{line}({name})"


def profile_summary(paths: list[str], wall_s: float, top: int = 18) -> dict[str, Any]:
    """Busy time per thread and where it goes (own time and selected inclusive times)."""
    import pstats

    out: dict[str, Any] = {
        "wall_s": wall_s,
        "threads": {},
        "loop_cum": [],
        "loop_top": [],
        "pool_top": [],
    }
    pool_rows: dict[str, list[float]] = {}
    for p in paths:
        kind = p.rsplit(".", 1)[1]
        role = "pool" if kind.startswith("pool") else kind
        st = pstats.Stats(p).stats
        total = sum(v[2] for v in st.values())
        idle = sum(v[2] for k, v in st.items() if any(m in k[2] for m in IDLE[role]))
        out["threads"][kind] = {"own_s": total, "busy_s": total - idle}
        rows = sorted(
            (
                (v[2], v[1], _fname(k))
                for k, v in st.items()
                if not any(m in k[2] for m in IDLE[role])
            ),
            reverse=True,
        )
        if role == "loop":
            out["loop_busy_s"] = total - idle
            out["loop_top"] = [{"own_s": t, "calls": n, "func": f} for t, n, f in rows[:top]]
            for label, file, name in LOOP_CUM:
                cum = sum(v[3] for k, v in st.items() if k[0].endswith("/" + file) and k[2] == name)
                out["loop_cum"].append({"what": label, "cum_s": cum})
        elif role == "pool":
            for t, n, f in rows:
                acc = pool_rows.setdefault(f, [0.0, 0])
                acc[0] += t
                acc[1] += n
    out["pool_busy_s"] = sum(v["busy_s"] for k, v in out["threads"].items() if k.startswith("pool"))
    out["pool_top"] = [
        {"own_s": t, "calls": n, "func": f}
        for f, (t, n) in sorted(pool_rows.items(), key=lambda kv: -kv[1][0])[:top]
    ]
    return out


def print_profile(
    ds: dict[str, Any], prof: dict[str, Any], base_s: float | None, reads: int
) -> None:
    wall = prof["wall_s"]
    loop = prof.get("loop_busy_s", 0.0)
    steps = prof.get("steps")
    n_chunks = ds["n_chunks"] * steps // ds["n_time"] if steps else ds["n_chunks"]
    n = n_chunks * reads
    what = f'ds["t2m"][:{steps}]' if steps else 'ds["t2m"]'
    print()
    print(
        f"zarrchive cProfile, {ds['name']}, {what}: {reads} reads, {fmt_s(wall / reads)} per read "
        f"under the profiler"
        + (f" ({fmt_s(base_s)} without, decode-path default)" if base_s else "")
        + f". zarr's I/O loop thread was busy {loop:.2f} s of {wall:.2f} s ({loop / wall:.0%}; "
        f"{loop / n * 1e6:.0f} us per chunk); zarr's "
        f"{sum(k.startswith('pool') for k in prof['threads'])} pool threads "
        f"{prof['pool_busy_s']:.2f} s in all; main thread "
        f"{prof['threads']['main']['busy_s']:.2f} s."
    )
    print("  loop thread, inclusive (share of its busy time):")
    for row in prof["loop_cum"]:
        print(f"    {row['cum_s']:>7.2f} s {row['cum_s'] / loop:>6.1%}  {row['what']}")
    print("  loop thread, own time:")
    for row in prof["loop_top"][:12]:
        print(
            f"    {row['own_s']:>7.2f} s {row['own_s'] / loop:>6.1%} {row['calls']:>9}  "
            + row["func"]
        )
    print("  pool threads, own time (wall time: GIL waits after I/O or zlib count here):")
    for row in prof["pool_top"][:10]:
        print(
            f"    {row['own_s']:>7.2f} s {row['own_s'] / prof['pool_busy_s']:>6.1%} "
            f"{row['calls']:>9}  {row['func']}"
        )


def worker_main(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    kind = spec.pop("kind")
    if kind == "read":
        profile = spec.pop("profile", None)
        if profile:
            import zarr  # noqa: F401

            if spec.get("zarr_config"):
                if "codec_pipeline.path" in spec["zarr_config"]:
                    os.environ["ZARRCHIVE_BATCHED_READS"] = "0"
                zarr.config.set(spec["zarr_config"])
            spec["profiler"] = ThreadsProfiler()
        result = worker_read(spec.pop("system"), spec, spec.pop("reads"))
        if profile:
            paths = spec["profiler"].dump(profile)
            result["profile"] = profile_summary(paths, sum(result["read_s"]))
    elif kind == "import":
        result = worker_import(**spec)
    else:
        raise SystemExit(f"unknown worker kind {kind}")
    print("RESULT " + json.dumps(result), flush=True)


def worker_import(repo_dir: str, datasets: list[dict[str, Any]]) -> dict[str, Any]:
    """Create the zarrchive repository and import every dataset's kerchunk references."""
    import zarrchive

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    repo = zarrchive.Repo.create(repo_dir)
    for d in datasets:
        refs = json.loads(Path(d["kerchunk_refs"]).read_text())
        t = time.perf_counter()
        summary = repo.add_kerchunk_references(refs, d["group"])
        t1 = time.perf_counter()
        repo.commit(f"import {d['group']} from kerchunk references")
        t2 = time.perf_counter()
        out[d["group"]] = {"add_s": t1 - t, "commit_s": t2 - t1, "summary": repr(summary)[:300]}
    out["total_s"] = time.perf_counter() - t0
    out["peak_rss"] = peak_rss()
    return out


# ====================================================================== parent
class Runner:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.profiles = 0

    def run(self, kind: str, **spec: Any) -> dict[str, Any]:
        spec = {"kind": kind, **spec}
        env = dict(
            os.environ, ZARRCHIVE_AUTHOR="bench", PYTHONWARNINGS="ignore", ICECHUNK_LOG="error"
        )
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            env=env,
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
            raise SystemExit(
                f"worker {kind}/{spec.get('system', '')} failed (exit {proc.returncode})"
            )
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT ") :])
        raise SystemExit(f"worker {kind} printed no result:\n{proc.stdout}{proc.stderr}")


def prepare_dataset(
    name: str, args: argparse.Namespace, data: Path, workdir: Path
) -> dict[str, Any]:
    """Sources, CRCs, kerchunk references and the icechunk repository (cached in ``data``)."""
    import icechunk
    import kerchunk
    import virtualizarr

    if name == "daily":
        files, crc = ensure_daily(data, args.files)
        tag = f"daily-{args.files}"
        label = f"daily: {args.files} files x t2m (1, 721, 1440), chunks (1, 361, 720)"
    else:
        files, crc = ensure_hourly(data)
        tag = "hourly"
        label = "hourly: 1 file, t2m (8760, 32, 32), 8,760 chunks (1, 32, 32)"
    crc_path = workdir / f"crc-{tag}.json"
    crc_path.write_text(json.dumps(crc))
    root = str(Path(files[0]).parent) + "/"
    stamp = {
        "gen": GEN_VERSION,
        "files": [Path(f).name for f in files],
        "mtimes": [os.stat(f).st_mtime_ns for f in files],
        "root": root,
    }

    refs_dir = data / "refs"
    refs_dir.mkdir(exist_ok=True)
    refs_path = refs_dir / f"{tag}.json"
    refs_stamp = refs_dir / f"{tag}.stamp"
    want = dict(stamp, kerchunk=kerchunk.__version__)
    if args.rebuild or not refs_path.exists() or _read_json(refs_stamp) != want:
        log(f"[{name}] kerchunk: scanning {len(files)} files (SingleHdf5ToZarr, 2 processes) ...")
        t0 = time.perf_counter()
        write_json_atomic(refs_path, build_kerchunk(files))
        write_json_atomic(refs_stamp, want)
        log(f"  {time.perf_counter() - t0:.1f} s")

    ic_dir = data / "icechunk" / tag
    ic_stamp = data / "icechunk" / f"{tag}.stamp"
    want = dict(stamp, icechunk=icechunk.__version__, virtualizarr=virtualizarr.__version__)
    if not args.skip_icechunk and (
        args.rebuild or not ic_dir.exists() or _read_json(ic_stamp) != want
    ):
        log(f"[{name}] icechunk: virtualizarr scan of {len(files)} files + to_icechunk ...")
        ic_dir.parent.mkdir(parents=True, exist_ok=True)
        t = build_icechunk(files, ic_dir)
        write_json_atomic(ic_stamp, want)
        log(f"  {t:.1f} s")

    refs = json.loads(refs_path.read_text())
    r = chunk_ranges(refs)
    return {
        "name": name,
        "label": label,
        "n_files": len(files),
        "n_time": len(crc),
        "n_chunks": len(r["offsets"]),
        "stored_bytes": int(r["lengths"].sum()),
        "crc": str(crc_path),
        "kerchunk_refs": str(refs_path),
        "icechunk_repo": str(ic_dir),
        "prefix": "file://" + root,
        "group": GROUPS[name],
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_spec(ds: dict[str, Any], zarrchive_repo: str, **extra: Any) -> dict[str, Any]:
    keys = ("crc", "kerchunk_refs", "icechunk_repo", "prefix", "group")
    return {"zarrchive_repo": zarrchive_repo, **{k: ds[k] for k in keys}, **extra}


def bench_systems(
    r: Runner, ds: dict[str, Any], systems: list[str], repo: str, rounds: int, reads: int
) -> dict[str, Any]:
    """Rounds of fresh processes, one per system, in rotating order."""
    res: dict[str, Any] = {s: [] for s in systems}
    for k in range(rounds):
        order = systems[k % len(systems) :] + systems[: k % len(systems)]
        for system in order:
            out = r.run("read", system=system, reads=reads, **read_spec(ds, repo))
            res[system].append(out)
            log(
                f"  round {k + 1} {system:<10} open {fmt_s(out['open_s'])}, warm-up "
                f"{fmt_s(out['warm_s'])} (values OK), reads "
                + " ".join(fmt_s(x) for x in out["read_s"])
                + f"; CPU {' '.join(fmt_s(x) for x in out['cpu_s'])}, other processes "
                f"{other_load(out):.0%} of the machine; peak RSS {fmt_b(out['peak_rss'])}"
            )
    return res


def other_load(*runs: dict[str, Any]) -> float:
    """Share of the machine's CPUs that other processes used during these timed reads."""
    other = sum(x for run in runs for x in run["other_cpu_s"])
    wall = sum(x for run in runs for x in run["read_s"])
    return other / wall / (os.cpu_count() or 1) if wall else 0.0


ZARRS = {"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}
STOCK = {"codec_pipeline.path": "zarr.core.codec_pipeline.BatchedCodecPipeline"}
DECODE_CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "default: zarrchive batched reads (async.concurrency=10, threading.max_workers=None)",
        "zarrchive",
        {},
    ),
    ("codec_pipeline.path=zarr BatchedCodecPipeline (zarr's per-chunk path)", "zarrchive", STOCK),
    ("codec_pipeline.path=zarrs.ZarrsCodecPipeline", "zarrchive", ZARRS),
    ("async.concurrency=4", "zarrchive", {"async.concurrency": 4}),
    ("async.concurrency=32", "zarrchive", {"async.concurrency": 32}),
    ("async.concurrency=128", "zarrchive", {"async.concurrency": 128}),
    ("threading.max_workers=2", "zarrchive", {"threading.max_workers": 2}),
    ("threading.max_workers=16", "zarrchive", {"threading.max_workers": 16}),
    ("reference: zarr LocalStore copy, default pipeline", "zarr-local", {}),
    ("reference: zarr LocalStore copy, zarrs pipeline", "zarr-local", ZARRS),
]


def bench_decode(
    r: Runner, ds: dict[str, Any], repo: str, rounds: int, reads: int, steps: int | None
) -> dict[str, list[dict[str, Any]]]:
    res: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in DECODE_CONFIGS}
    local_dir = str(r.workdir / f"local-{ds['name']}.zarr")
    for k in range(rounds):
        cfgs = DECODE_CONFIGS[k % len(DECODE_CONFIGS) :] + DECODE_CONFIGS[: k % len(DECODE_CONFIGS)]
        for name, system, cfg in cfgs:
            out = r.run(
                "read",
                system=system,
                reads=reads,
                **read_spec(ds, repo, zarr_config=cfg, local_dir=local_dir, time_steps=steps),
            )
            res[name].append(out)
            how = out["pipeline"].rsplit(".", 1)[1]
            if "zarrs_rust" in out:
                how += ", Rust " + ("on" if out["zarrs_rust"] else "off")
            if "zarrs_fallback" in out:
                how += ", fell back"
            log(
                f"  round {k + 1} {name:<58} reads "
                + " ".join(fmt_s(x) for x in out["read_s"])
                + f" [{how}]"
            )
    shutil.rmtree(local_dir, ignore_errors=True)
    return res


def med_read(runs: list[dict[str, Any]]) -> float:
    return statistics.median(x for run in runs for x in run["read_s"])


def spread(runs: list[dict[str, Any]]) -> tuple[float, float]:
    xs = [x for run in runs for x in run["read_s"]]
    return min(xs), max(xs)


def print_results(
    datasets: list[dict[str, Any]], results: dict[str, dict[str, Any]], args: argparse.Namespace
) -> None:
    print()
    print(
        'Read benchmark: ds["t2m"].values through xarray (warm page cache), median of '
        f"{args.rounds} fresh processes x {args.reads} reads per system"
    )
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    )
    hdr = (
        f"{'dataset':<8} {'system':<10} {'median':>9} {'min..max':>17} {'x floor':>8} "
        f"{'aim':>11} {'issue':>6} {'CPU':>8} {'others':>6} {'peak RSS':>9}"
    )
    print(hdr)
    print("-" * len(hdr))
    for ds in datasets:
        res = results[ds["name"]]["systems"]
        floor = med_read(res["floor"])
        for system, runs in res.items():
            m = med_read(runs)
            lo, hi = spread(runs)
            ratio = m / floor
            aim = ""
            if system == "zarrchive":
                t = TARGETS[ds["name"]]
                aim = f"<={t}x " + ("ok" if ratio <= t else "MISS")
            issue = ISSUE.get(system, {}).get(ds["name"])
            rss = statistics.median(x["peak_rss"] for x in runs)
            cpu = statistics.median(x for run in runs for x in run["cpu_s"])
            print(
                f"{ds['name']:<8} {system:<10} {fmt_s(m):>9} {fmt_s(lo) + '..' + fmt_s(hi):>17} "
                f"{ratio:>7.2f}x {aim:>11} {(f'{issue}x' if issue else ''):>6} {fmt_s(cpu):>8} "
                f"{other_load(*runs):>6.0%} {fmt_b(rss):>9}"
            )
    for ds in datasets:
        print(
            f"{ds['name']}: {ds['label']}; {ds['n_chunks']:,} chunks, "
            f"{ds['stored_bytes'] / 1e6:,.1f} MB stored, "
            f"{results[ds['name']]['systems']['floor'][0]['nbytes'] / 1e6:,.1f} MB decoded"
        )
    imp = results.get("import")
    if imp:
        print(
            "zarrchive import (add_kerchunk_references + commit): "
            + ", ".join(
                f"{k} {fmt_s(v['add_s'])} + {fmt_s(v['commit_s'])}"
                for k, v in imp.items()
                if isinstance(v, dict)
            )
        )
    for ds in datasets:
        dec = results[ds["name"]].get("decode")
        if not dec:
            continue
        print()
        steps = results[ds["name"]].get("decode_steps")
        what = f'ds["t2m"][:{steps}].values' if steps else 'ds["t2m"].values'
        print(
            f"zarrchive decode path, {ds['name']}: {what}, median of "
            f"{len(next(iter(dec.values())))} "
            f"process(es) x {args.decode_reads} reads; ratio to zarr's default setting"
        )
        base = med_read(dec[DECODE_CONFIGS[0][0]])
        best = min(dec, key=lambda n: med_read(dec[n]))
        for name, runs in dec.items():
            m = med_read(runs)
            lo, hi = spread(runs)
            first = runs[0]
            how = first["pipeline"].rsplit(".", 1)[1]
            if "zarrs_rust" in first:
                how += ", Rust " + ("used" if first["zarrs_rust"] else "not used")
            if "zarrs_fallback" in first:
                how += ": zarrs fell back, same pipeline as the default"
            mark = "  <- fastest" if name == best else ""
            print(
                f"  {name:<58} {fmt_s(m):>9} {fmt_s(lo) + '..' + fmt_s(hi):>17} "
                f"{m / base:>5.2f}x  [{how}]{mark}"
            )
        why = sorted(
            {
                run["zarrs_fallback"]
                for runs in dec.values()
                for run in runs
                if "zarrs_fallback" in run
            }
        )
        for w in why:
            print(f"    zarrs fell back to zarr's BatchedCodecPipeline: {w}")
        fb = sorted(
            {
                w
                for runs in dec.values()
                for run in runs
                for w in run["warnings"]
                if "zarrs" in w.lower()
            }
        )
        for w in fb[:3]:
            print(f"    warning: {w}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=None, help="daily files (365; 30 with --quick)")
    p.add_argument(
        "--quick", action="store_true", help="30 daily files, 2 rounds, fewer hourly reads"
    )
    p.add_argument(
        "--rounds", type=int, default=None, help="fresh processes per system (3; 2 quick)"
    )
    p.add_argument("--reads", type=int, default=2, help="timed reads per process (2)")
    p.add_argument(
        "--hourly-reads",
        type=int,
        default=None,
        help="timed reads per process, hourly (3; 2 quick)",
    )
    p.add_argument("--datasets", default="daily,hourly", help="daily,hourly")
    p.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help="systems to compare, floor and zarrchive first (%(default)s)",
    )
    p.add_argument("--skip-icechunk", action="store_true")
    p.add_argument("--skip-kerchunk", action="store_true")
    p.add_argument("--skip-decode", action="store_true", help="no decode-path comparison")
    p.add_argument("--decode-rounds", type=int, default=1, help="processes per setting (1)")
    p.add_argument("--decode-reads", type=int, default=None, help="timed reads per process (2)")
    p.add_argument(
        "--decode-steps",
        type=int,
        default=73,
        help="decode paths read the first K daily time steps (73): same chunks, less time",
    )
    p.add_argument("--profile", help="cProfile one zarrchive read process per dataset into DIR")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA), help="source/reference cache")
    p.add_argument("--rebuild", action="store_true", help="rebuild cached references")
    p.add_argument("--workdir", help="where to put the zarrchive repository (a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--json", help="write all raw measurements to this file")
    args = p.parse_args()
    if args.files is None:
        args.files = 30 if args.quick else 365
    if args.rounds is None:
        args.rounds = 2 if args.quick else 3
    if args.hourly_reads is None:
        args.hourly_reads = 2 if args.quick else 3
    if args.decode_reads is None:
        args.decode_reads = 2
    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    if args.workdir:
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        if any(workdir.iterdir()):
            raise SystemExit(f"{workdir} is not empty")
    else:
        workdir = Path(tempfile.mkdtemp(prefix="zarrchive-bench-read-"))
    r = Runner(args, workdir)
    t_start = time.perf_counter()
    import signal

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_term)  # so that the temporary directory is removed
    try:
        log(f"data {data}, work directory {workdir}")
        datasets = [prepare_dataset(n, args, data, workdir) for n in args.datasets.split(",")]

        import zarrchive

        if not hasattr(zarrchive.Repo, "add_kerchunk_references"):
            raise SystemExit("zarrchive.Repo.add_kerchunk_references is missing")
        repo_dir = str(workdir / "zarrchive-repo")
        log("[zarrchive] importing the kerchunk references ...")
        imp = r.run(
            "import",
            repo_dir=repo_dir,
            datasets=[{"kerchunk_refs": d["kerchunk_refs"], "group": d["group"]} for d in datasets],
        )
        log(f"  {fmt_s(imp['total_s'])}, peak RSS {fmt_b(imp['peak_rss'])}")
        results: dict[str, Any] = {"import": {k: v for k, v in imp.items() if isinstance(v, dict)}}

        systems = [x for x in args.systems.split(",") if x]
        if args.skip_kerchunk and "kerchunk" in systems:
            systems.remove("kerchunk")
        if args.skip_icechunk and "icechunk" in systems:
            systems.remove("icechunk")
        if systems[:2] != ["floor", "zarrchive"] or not set(systems) <= set(SYSTEMS):
            raise SystemExit(f"--systems must start with floor,zarrchive and name only {SYSTEMS}")
        for ds in datasets:
            reads = args.reads if ds["name"] == "daily" else args.hourly_reads
            log(
                f"[{ds['name']}] {ds['label']}: {args.rounds} rounds x {len(systems)} systems, "
                f"{reads} timed reads each ..."
            )
            results[ds["name"]] = {
                "systems": bench_systems(r, ds, systems, repo_dir, args.rounds, reads)
            }
        if not args.skip_decode:
            for ds in datasets:
                steps = min(args.decode_steps, args.files) if ds["name"] == "daily" else None
                what = f"first {steps} time steps" if steps else "whole variable"
                log(
                    f"[{ds['name']}] zarrchive decode paths ({what}), "
                    f"{args.decode_rounds} rounds ..."
                )
                results[ds["name"]]["decode"] = bench_decode(
                    r, ds, repo_dir, args.decode_rounds, args.decode_reads, steps
                )
                results[ds["name"]]["decode_steps"] = steps
        if args.profile:
            pdir = Path(args.profile).resolve()
            pdir.mkdir(parents=True, exist_ok=True)
            for ds in datasets:
                steps = min(args.decode_steps, args.files) if ds["name"] == "daily" else None
                what = f"first {steps} time steps" if steps else "whole variable"
                preads = args.decode_reads if steps else 1
                log(f"[{ds['name']}] profiling zarrchive ({what}, {preads} reads) ...")
                out = r.run(
                    "read",
                    system="zarrchive",
                    reads=preads,
                    profile=str(pdir / f"{ds['name']}.prof"),
                    **read_spec(ds, repo_dir, time_steps=steps),
                )
                out["profile"]["steps"] = steps
                out["profile"]["unprofiled_s"] = statistics.median(out["read_s"])
                results[ds["name"]]["profile"] = out["profile"]
        print_results(datasets, results, args)
        for ds in datasets:
            prof = results[ds["name"]].get("profile")
            if prof:
                dec = results[ds["name"]].get("decode")
                base = med_read(dec[DECODE_CONFIGS[0][0]]) if dec else None
                print_profile(ds, prof, base, args.decode_reads if prof["steps"] else 1)
        if args.profile:
            print(
                f"\ncProfile files: {args.profile}/<dataset>.prof.main / .loop / .poolN "
                "(main thread, zarr's I/O loop thread, zarr's pool threads)"
            )
        print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")
        if args.json:
            Path(args.json).write_text(
                json.dumps({"datasets": datasets, "results": results}, indent=1)
            )
    finally:
        if args.keep or args.workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
