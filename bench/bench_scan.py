#!/usr/bin/env python3
"""Scan benchmark: time to turn one source file into chunk references, zarrchive vs kerchunk.

Usage::

    python bench/bench_scan.py                  # sample files + generated files, local and S3
    python bench/bench_scan.py --quick          # smaller generated files only (smoke run)
    python bench/bench_scan.py --no-s3 --only grib,tiff
    python bench/bench_scan.py --json out.json --profile prof/

For every file, on local disk and again on S3 (a moto server on 127.0.0.1), it times:

- ``scan``: zarrchive's importer scan into its ``ImportedTree`` (``importers.<fmt>.scan``,
  called as ``Repo.add_virtual_*`` calls it, with a ``SourceReader`` for ``stat``: one per
  worker, or a new one per call with ``--fresh-clients``);
- ``add``: ``Repo.add_virtual_*`` into a fresh ``memory://`` repository (format detection +
  scan + ingest into the session), and then ``commit`` as a separate figure;
- ``kerchunk``: the kerchunk 0.2.10 scanner of the same format on the same file
  (``NetCDF3ToZarr(...).translate()``, ``SingleHdf5ToZarr(...).translate()``,
  ``scan_grib``, ``tiff_to_zarr``, ``kerchunk.zarr.single_zarr``).

Every location runs in one worker subprocess (imports are done before any timing). For each
file and system there is one untimed warm-up call, whose output is used for the chunk-count
cross-check, then timed calls in rounds (the systems take turns, starting one later each
round) until ``--reps`` calls or, after ``--min-reps``, ``--budget`` seconds per system. A
warm-up slower than ``--budget`` on a format already scanned in the worker also counts as a
timed call. A call that gives no answer within ``--timeout`` seconds, or uses no CPU for
``--idle`` seconds (a deadlock), is killed with its worker and reported as hung; the worker
restarts with the remaining files. On S3 the moto server counts the HTTP requests and bytes
of every timed call. See bench/scan.md for the figures and results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import platform
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"
SYSTEMS = ("scan", "add", "kerchunk")
FORMATS = ("netcdf3", "hdf5", "grib", "tiff", "zarr_v2")
BUCKET = "scan-bench"
COUNT_PATH = "/__scan_bench_counts__"
#: zarrchive importer module per format (``zarrchive.importers.<module>``: the format's name)
IMPORTER = {fmt: fmt for fmt in FORMATS}
#: options for single sample files that zarrchive refuses by default
SAMPLE_OPTIONS = {"hdf5_unsupported.h5": {"on_unsupported": "skip"}}


# ====================================================================== helpers
def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    if ms >= 10_000:
        return f"{seconds:.1f} s"
    if ms >= 100:
        return f"{ms:.0f}"
    return f"{ms:.1f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "-"
    r = a / b
    return f"{r:.1f}x" if r < 100 else f"{r:.0f}x"


def geomean(values: list[float]) -> float | None:
    values = [v for v in values if v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    dists = ("zarr", "kerchunk", "h5py", "netCDF4", "eccodes", "cfgrib", "tifffile", "numpy")
    for dist in (*dists, "fsspec", "s3fs", "moto"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[dist] = md.version(dist)
    return out


def zarrchive_state() -> str:
    """Which zarrchive is measured: a digest of its package's ``.py`` files and, when the
    package is a git checkout, the commit and the files under ``src/`` that differ from it."""
    import hashlib

    import zarrchive

    pkg = Path(zarrchive.__file__).resolve().parent
    digest = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        digest.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes())
    state = f"{pkg} (sources {digest.hexdigest()[:12]})"

    def git(*cmd: str) -> str:
        return subprocess.run(
            ["git", "-C", str(pkg), *cmd], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--", ".").splitlines()
    except (OSError, subprocess.CalledProcessError):
        return state
    state += f", commit {commit}"
    if changed:
        names = ", ".join(line[3:].rpartition("/")[2] for line in changed)
        state += f" + uncommitted changes to {len(changed)} files ({names})"
    return state


# ====================================================================== generated files
def _smooth(rng: np.random.Generator, shape: tuple[int, ...], base: float, spread: float):
    """Weather-like float32 values: a zonal profile, a travelling wave in time, some noise."""
    nt, ny, nx = shape
    t = np.arange(nt, dtype="f4")[:, None, None]
    y = np.linspace(-1, 1, ny, dtype="f4")[None, :, None]
    x = np.linspace(0, 2 * np.pi, nx, dtype="f4")[None, None, :]
    values = base + spread * np.cos(np.pi / 2 * y) * np.sin(x + t / 20)
    return (values + rng.normal(0, spread / 50, shape)).astype("f4")


def make_netcdf4(path: Path, *, steps: int) -> None:
    """NetCDF4 (netCDF4 writer): 7 variables (time, lat, lon) in the root group, ``atmosphere``
    and ``ocean/surface``, zlib level 1 + shuffle, chunks (1, 18, 36) of a 36 x 72 grid: 4 chunks
    per time step, 10,220 chunks for 365 steps; plus time/lat/lon coordinates."""
    import netCDF4

    rng = np.random.default_rng(1)
    ny, nx = 36, 72
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "zarrchive scan benchmark"
        ds.createDimension("time", None)
        ds.createDimension("lat", ny)
        ds.createDimension("lon", nx)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "days since 2000-01-01"
        t.calendar = "standard"
        t[:] = np.arange(steps)
        ds.createVariable("lat", "f4", ("lat",))[:] = np.linspace(-87.5, 87.5, ny)
        ds.createVariable("lon", "f4", ("lon",))[:] = np.linspace(0, 355, nx)
        layout = {
            "": ("t2m", "sp"),
            "atmosphere": ("t850", "u850", "v850"),
            "ocean/surface": ("sst", "ssh"),
        }
        for group_path, names in layout.items():
            group = ds
            for part in filter(None, group_path.split("/")):
                group = group.groups.get(part) or group.createGroup(part)
            for name in names:
                v = group.createVariable(
                    name,
                    "f4",
                    ("time", "lat", "lon"),
                    zlib=True,
                    complevel=1,
                    shuffle=True,
                    chunksizes=(1, ny // 2, nx // 2),
                    fill_value=np.float32(1e20),
                )
                v.units = "K"
                v.long_name = f"{name} (synthetic)"
                v[:] = _smooth(rng, (steps, ny, nx), 280, 10)


def make_hdf5_tree(path: Path, *, fanout: tuple[int, int, int]) -> None:
    """HDF5 (h5py writer): a hierarchy 3 groups deep (``fanout`` groups per level), each leaf
    group with 3 gzip + shuffle datasets of 16 chunks and a few attributes per node."""
    import h5py

    rng = np.random.default_rng(5)
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "zarrchive scan benchmark: deep hierarchy"
        for i in range(fanout[0]):
            g1 = f.create_group(f"site{i:02d}")
            g1.attrs["site_id"] = i
            for j in range(fanout[1]):
                g2 = g1.create_group(f"instrument{j:02d}")
                g2.attrs["serial"] = f"SN-{i:02d}{j:02d}"
                for k in range(fanout[2]):
                    g3 = g2.create_group(f"run{k:02d}")
                    g3.attrs["started"] = "2024-01-01T00:00:00"
                    g3.attrs["gain"] = np.float32(1.5)
                    for name in ("counts", "temperature", "pressure"):
                        d = g3.create_dataset(
                            name,
                            data=rng.normal(0, 1, (16, 256)).astype("f4"),
                            chunks=(1, 256),
                            compression="gzip",
                            compression_opts=1,
                            shuffle=True,
                        )
                        d.attrs["units"] = "1"


def make_netcdf3(path: Path, *, variables: int, steps: int) -> None:
    """NetCDF3 64-bit offset (netCDF4 writer): ``variables`` record variables (float32, every
    4th int16) of (time, 18, 36), so ``variables x steps`` chunks, plus coordinates."""
    import netCDF4

    rng = np.random.default_rng(2)
    ny, nx = 18, 36
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as ds:
        ds.title = "zarrchive scan benchmark"
        ds.createDimension("time", None)
        ds.createDimension("lat", ny)
        ds.createDimension("lon", nx)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "days since 2000-01-01"
        ds.createVariable("lat", "f4", ("lat",))[:] = np.linspace(-85, 85, ny)
        ds.createVariable("lon", "f4", ("lon",))[:] = np.linspace(0, 350, nx)
        created = []
        for i in range(variables):
            dtype = "i2" if i % 4 == 0 else "f4"
            v = ds.createVariable(f"var{i:02d}", dtype, ("time", "lat", "lon"))
            v.units = "1"
            v.long_name = f"synthetic variable {i}"
            created.append(v)
        t[:] = np.arange(steps)
        for v in created:
            v[:] = _smooth(rng, (steps, ny, nx), 100, 50).astype(v.dtype)


def make_grib2(path: Path, *, steps: int) -> None:
    """GRIB2 (ecCodes writer): per step, t/u/v/z on 6 isobaric levels plus 2t and sp, on a
    2.5-degree global grid (144 x 73), 16-bit simple packing: 26 messages per step."""
    import eccodes as ec

    rng = np.random.default_rng(3)
    ni, nj, step_deg = 144, 73, 2.5
    n = ni * nj
    grid = {
        "Ni": ni,
        "Nj": nj,
        "latitudeOfFirstGridPointInDegrees": 90.0,
        "latitudeOfLastGridPointInDegrees": -90.0,
        "longitudeOfFirstGridPointInDegrees": 0.0,
        "longitudeOfLastGridPointInDegrees": 360.0 - step_deg,
        "iDirectionIncrementInDegrees": step_deg,
        "jDirectionIncrementInDegrees": step_deg,
    }
    wave = np.sin(np.linspace(0, 8 * np.pi, n))

    def message(template: str, keys: dict[str, Any], base: float, spread: float) -> bytes:
        h = ec.codes_grib_new_from_samples(template)
        try:
            for key, value in {**grid, **keys}.items():
                ec.codes_set(h, key, value)
            ec.codes_set(h, "bitsPerValue", 16)
            ec.codes_set_values(h, base + spread * wave + rng.normal(0, spread / 20, n))
            return bytes(ec.codes_get_message(h))
        finally:
            ec.codes_release(h)

    levels = (1000, 925, 850, 700, 500, 300)
    upper = (("t", 260, 30), ("u", 0, 20), ("v", 0, 20), ("z", 50000, 20000))
    with open(path, "wb") as f:
        for s in range(steps):
            common = {"dataDate": 20240101, "dataTime": 0, "stepUnits": 1, "endStep": 6 * s}
            for name, base, spread in upper:
                for level in levels:
                    keys = {"shortName": name, "level": level, **common}
                    f.write(message("regular_ll_pl_grib2", keys, base, spread))
            f.write(message("regular_ll_sfc_grib2", {"shortName": "2t", **common}, 285, 20))
            f.write(message("regular_ll_sfc_grib2", {"shortName": "sp", **common}, 1e5, 3000))


def make_cog(path: Path, *, size: int, tile: int = 256) -> None:
    """COG layout (tifffile writer): ``size`` x ``size`` uint16, 256 x 256 deflate tiles with the
    horizontal predictor, then reduced-resolution pages (NewSubfileType 1) halving down to one
    tile: 341 tiles in 5 levels for 4096."""
    import tifffile

    y, x = np.mgrid[0:size, 0:size].astype("f4")
    full = (1000 + 500 * np.sin(x / 300) * np.cos(y / 200) + (x + y) / 10).astype("u2")
    levels = [full]
    while levels[-1].shape[0] > tile:
        levels.append(np.ascontiguousarray(levels[-1][::2, ::2]))
    with tifffile.TiffWriter(path) as tif:
        for i, level in enumerate(levels):
            tif.write(
                level,
                tile=(tile, tile),
                compression="zlib",
                compressionargs={"level": 1},
                predictor=2,
                photometric="minisblack",
                subfiletype=1 if i else 0,
                metadata=None,
            )


def make_zarr_v2(path: Path, *, steps: int, consolidated: bool) -> None:
    """Zarr v2 store (zarr-python writer): 2 arrays at the root and 3 in group ``model``, each
    (steps, 100, 100) float32 in (1, 50, 50) chunks (4 per step), default compressor, xarray's
    ``_ARRAY_DIMENSIONS``; consolidated metadata on request."""
    import zarr

    group = zarr.open_group(path, mode="w", zarr_format=2)
    group.attrs["title"] = "zarrchive scan benchmark"
    model = group.create_group("model")
    t = np.arange(steps, dtype="f4")[:, None, None]
    y = np.arange(100, dtype="f4")[None, :, None]
    x = np.arange(100, dtype="f4")[None, None, :]
    for i in range(5):
        parent = group if i < 2 else model
        arr = parent.create_array(f"v{i}", shape=(steps, 100, 100), chunks=(1, 50, 50), dtype="f4")
        arr[:] = (np.sin(x / 10 + t / 7 + i) * np.cos(y / 13) * 100).astype("f4")
        arr.attrs["_ARRAY_DIMENSIONS"] = ["time", "y", "x"]
        arr.attrs["units"] = "1"
    if consolidated:
        zarr.consolidate_metadata(path)


def generate(out: Path, quick: bool) -> list[Path]:
    """Write the generated sources into ``out`` (sizes per ``quick``); returns their paths."""
    jobs: list[tuple[str, Callable[[Path], None]]] = [
        ("gen_netcdf4_groups.nc", lambda p: make_netcdf4(p, steps=60 if quick else 365)),
        ("gen_hdf5_tree.h5", lambda p: make_hdf5_tree(p, fanout=(2, 2, 2) if quick else (4, 5, 5))),
        (
            "gen_netcdf3_records.nc",
            lambda p: make_netcdf3(p, variables=10 if quick else 40, steps=60 if quick else 365),
        ),
        ("gen_grib2_levels.grib2", lambda p: make_grib2(p, steps=1 if quick else 8)),
        ("gen_cog_overviews.tif", lambda p: make_cog(p, size=1024 if quick else 4096)),
        (
            "gen_zarr2_consolidated.zarr",
            lambda p: make_zarr_v2(p, steps=25 if quick else 100, consolidated=True),
        ),
        ("gen_zarr2_plain.zarr", lambda p: make_zarr_v2(p, steps=10, consolidated=False)),
    ]
    paths = []
    for name, make in jobs:
        t0 = time.perf_counter()
        path = out / name
        make(path)
        paths.append(path)
        log(f"wrote {name} in {time.perf_counter() - t0:.1f} s")
    return paths


# ====================================================================== sources
@dataclass
class Source:
    """One file (or Zarr store) to scan, and how each system is pointed at it."""

    name: str
    fmt: str
    origin: str  # "sample" or "generated"
    path: str  # local path
    nbytes: int
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.fmt == "hdf5":
            return "netcdf4" if self.name.endswith(".nc") else "hdf5"
        return self.fmt

    @property
    def method(self) -> str:
        if self.fmt == "hdf5":
            return "add_virtual_netcdf" if self.name.endswith(".nc") else "add_virtual_hdf"
        return {
            "netcdf3": "add_virtual_netcdf",
            "grib": "add_virtual_grib",
            "tiff": "add_virtual_tiff",
            "zarr_v2": "add_virtual_zarr",
        }[self.fmt]


def describe(path: Path, origin: str) -> Source | None:
    """A Source for ``path``, its format recognised by zarrchive's magic-byte detection."""
    from zarrchive.errors import UnsupportedFeatureError
    from zarrchive.importers import detect_format

    if path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return Source(path.name, "zarr_v2", origin, str(path), size)
    with open(path, "rb") as f:
        head = f.read(4096)
    try:
        fmt = detect_format(head, where=str(path))
    except UnsupportedFeatureError:
        return None
    options = dict(SAMPLE_OPTIONS.get(path.name, {})) if origin == "sample" else {}
    return Source(path.name, fmt, origin, str(path), path.stat().st_size, options)


def sample_sources() -> list[Source]:
    """The data files of sample_data/ (its README and generator scripts left out: zarrchive's
    detection takes any text that mentions "GRIB" in its first 4 KiB for a GRIB file)."""
    paths = sorted(SAMPLES.iterdir())
    keep = (p for p in paths if p.name[0] not in "_." and p.suffix not in (".md", ".py"))
    found = (describe(p, "sample") for p in keep)
    return [s for s in found if s is not None]


# ====================================================================== S3 (moto)
class CountingApp:
    """WSGI middleware in front of moto: counts requests per method and response bytes of GETs.

    ``GET COUNT_PATH`` answers the counts so far (and is itself not counted).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {"requests": 0, "GET": 0, "HEAD": 0, "bytes": 0}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == COUNT_PATH:
            with self.lock:
                body = json.dumps(self.counts).encode()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        method = environ.get("REQUEST_METHOD", "?")
        with self.lock:
            self.counts["requests"] += 1
            self.counts[method] = self.counts.get(method, 0) + 1

        def counting_start_response(status: str, headers: list[tuple[str, str]], *exc: Any):
            if method == "GET":
                for key, value in headers:
                    if key.lower() == "content-length":
                        with self.lock:
                            self.counts["bytes"] += int(value)
            return start_response(status, headers, *exc)

        return self.app(environ, counting_start_response)


class MotoS3:
    """A moto S3 server on a free 127.0.0.1 port in a thread of this process, one bucket."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        self.endpoint = f"http://127.0.0.1:{port}"
        self.app = CountingApp(DomainDispatcherApplication(create_backend_app))
        self.server = make_server("127.0.0.1", port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.options = {
            "endpoint_url": self.endpoint,
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"region_name": "us-east-1"},
        }
        import boto3
        import s3fs

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1").create_bucket(
            Bucket=BUCKET
        )
        self.fs = s3fs.S3FileSystem(**self.options)

    def upload(self, sources: list[Source]) -> None:
        t0 = time.perf_counter()
        for src in sources:
            self.fs.put(src.path, f"{BUCKET}/{src.name}", recursive=os.path.isdir(src.path))
        log(f"uploaded {len(sources)} sources to moto S3 in {time.perf_counter() - t0:.1f} s")

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()


# ====================================================================== chunk counts
def _norm_hdf5(path: str) -> str:
    return "/".join(p.removeprefix("_nc4_non_coord_") for p in path.split("/"))


def zarrchive_counts(tree: Any, fmt: str) -> dict[str, int]:
    """References per array of an ImportedTree (GRIB: virtual ones per variable name)."""
    from zarrchive.format import INLINE, VIRTUAL

    out: dict[str, int] = {}
    for path, arr in tree.arrays.items():
        kinds = np.asarray(arr.refs.kind)
        if fmt == "grib":
            n = int((kinds == VIRTUAL).sum())
            if n:
                leaf = path.rpartition("/")[2]
                out[leaf] = out.get(leaf, 0) + n
        else:
            out[path] = int(np.isin(kinds, (VIRTUAL, INLINE)).sum())
    return out


def _ref_arrays(refs: dict[str, Any]) -> Iterator[tuple[str, bool | None]]:
    """(array path, is a byte-range reference) of every chunk key of a kerchunk reference set,
    and (array path, None) for every ``.zarray`` (arrays without chunks count 0)."""
    for key, value in refs.items():
        parent, _, leaf = key.rpartition("/")
        if leaf == ".zarray":
            yield parent, None
        elif not leaf.startswith(".z"):
            yield parent, isinstance(value, list)


def kerchunk_counts(out: Any, fmt: str) -> dict[str, int]:
    """References per array of kerchunk's output, named as zarrchive names them."""
    counts: dict[str, int] = {}
    if fmt == "grib":
        for message in out:
            for parent, is_range in _ref_arrays(message.get("refs", message)):
                if is_range:
                    counts[parent] = counts.get(parent, 0) + 1
        return counts
    for parent, is_range in _ref_arrays(out.get("refs", out)):
        if fmt == "hdf5":
            parent = _norm_hdf5(parent)
        elif fmt == "tiff" and parent == "":
            parent = "0"  # a single-level TIFF is kerchunk's root array, zarrchive's "0"
        counts[parent] = counts.get(parent, 0) + (is_range is not None)
    return counts


def compare_counts(zc: dict[str, int] | None, kc: dict[str, int] | None) -> list[str]:
    """The arrays whose reference counts differ (``name: zarrchive N, kerchunk M``)."""
    if zc is None or kc is None:
        return []
    diffs = []
    for name in sorted(set(zc) | set(kc)):
        a, b = zc.get(name), kc.get(name)
        if a != b:
            fa = "absent" if a is None else str(a)
            fb = "absent" if b is None else str(b)
            diffs.append(f"{name or '/'}: zarrchive {fa}, kerchunk {fb}")
    return diffs


# ====================================================================== worker
class Clock:
    """Wall time, CPU time of the process and S3 requests of one timed region."""

    def __init__(self, counter_url: str | None) -> None:
        self.counter_url = counter_url

    def counts(self) -> dict[str, int] | None:
        if self.counter_url is None:
            return None
        with urllib.request.urlopen(self.counter_url, timeout=30) as r:
            return json.loads(r.read())

    @contextlib.contextmanager
    def time(self) -> Iterator[dict[str, Any]]:
        out: dict[str, Any] = {}
        gc.collect()
        before = self.counts()
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            yield out
        finally:
            out["wall"] = time.perf_counter() - t0
            out["cpu"] = time.process_time() - c0
            after = self.counts()
            if before is not None and after is not None:
                out["requests"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}


class Worker:
    """Runs the three systems on every source of one location and reports JSON lines."""

    def __init__(self, spec: dict[str, Any], proto: Any) -> None:
        import zarrchive
        from zarrchive._sync import sync
        from zarrchive.sources import SourceReader, normalize_url

        self.spec = spec
        self.proto = proto
        self.options: dict[str, Any] | None = spec["storage_options"]
        self.clock = Clock(spec["counter_url"])
        self.zarrchive = zarrchive
        self.sync = sync
        self.reader_cls = SourceReader
        self.normalize_url = normalize_url
        self.skip = {tuple(x) for x in spec["skip"]}
        #: the scan's ``stat`` reader: one per worker, as in a long-lived repository or a
        #: catalog worker process; with fresh clients, a new one per call
        self.reader = SourceReader()
        self.fresh = spec["fresh_clients"]
        #: formats already scanned in this process (their one-time costs are paid)
        self.seen: set[str] = set()
        for module in set(IMPORTER.values()):
            __import__(f"zarrchive.importers.{module}")
        import kerchunk.grib2
        import kerchunk.hdf
        import kerchunk.netCDF3
        import kerchunk.tiff
        import kerchunk.zarr  # noqa: F401

    def emit(self, record: dict[str, Any]) -> None:
        self.proto.write(json.dumps(record) + "\n")
        self.proto.flush()

    def url(self, src: dict[str, Any]) -> str:
        if self.spec["location"] == "s3":
            return f"s3://{BUCKET}/{src['name']}"
        return src["path"]

    # ---------------------------------------------------------------- the three systems
    def run_scan(self, src: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        import importlib

        module = importlib.import_module(f"zarrchive.importers.{IMPORTER[src['fmt']]}")
        url = self.normalize_url(self.url(src))
        reader = self.reader_cls() if self.fresh else self.reader
        opts = self.options

        def stat(u: str) -> Any:
            return reader.stat(u, opts)

        with self.clock.time() as t:
            tree = self.sync(module.scan(url, stat=stat, storage_options=opts, **src["options"]))
        return t, tree

    def run_add(self, src: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        name = f"scan-bench-{uuid.uuid4().hex}"
        repo = self.zarrchive.Repo.create(f"memory://{name}")
        add = getattr(repo, src["method"])
        with self.clock.time() as t:
            summary = add(self.url(src), "data", storage_options=self.options, **src["options"])
        with self.clock.time() as c:
            repo.commit("scan benchmark")
        t["commit_wall"], t["commit_cpu"] = c["wall"], c["cpu"]
        if "requests" in c:
            t["commit_requests"] = c["requests"]["requests"]
        with contextlib.suppress(ImportError, AttributeError):
            from zarrchive.storage import _memory  # free the repository's objects

            _memory._REGISTRY.pop(name, None)
        return t, summary

    def run_kerchunk(self, src: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        import kerchunk.grib2
        import kerchunk.hdf
        import kerchunk.netCDF3
        import kerchunk.tiff
        import kerchunk.zarr

        url, opts, fmt = self.url(src), self.options, src["fmt"]
        with self.clock.time() as t:
            if fmt == "netcdf3":
                out = kerchunk.netCDF3.NetCDF3ToZarr(
                    url, storage_options=opts, inline_threshold=0
                ).translate()
            elif fmt == "hdf5":
                out = kerchunk.hdf.SingleHdf5ToZarr(
                    url, storage_options=opts, inline_threshold=0
                ).translate()
            elif fmt == "grib":
                out = kerchunk.grib2.scan_grib(url, storage_options=opts)
            elif fmt == "tiff":
                out = kerchunk.tiff.tiff_to_zarr(url, remote_options=opts)
            else:
                out = kerchunk.zarr.single_zarr(url, storage_options=opts, inline_threshold=0)
        return t, out

    # ---------------------------------------------------------------- measuring
    def source(self, src: dict[str, Any]) -> dict[str, Any]:
        runners = {"scan": self.run_scan, "add": self.run_add, "kerchunk": self.run_kerchunk}
        systems = [s for s in SYSTEMS if (src["name"], s) not in self.skip]
        res: dict[str, dict[str, Any]] = {s: {"runs": []} for s in systems}
        reps, min_reps, budget = self.spec["reps"], self.spec["min_reps"], self.spec["budget"]

        def call(system: str) -> Any:
            self.emit({"call": src["name"], "system": system})
            with warnings_ignored():
                return runners[system](src)

        for system in systems:  # warm-up; its output is cross-checked
            try:
                t, out = call(system)
            except Exception as exc:  # a failing scanner is a result, not a crash
                res[system]["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                continue
            res[system]["warmup"] = t
            if src["fmt"] in self.seen and t["wall"] > budget:
                # a slow call on a format already warmed up: count it, spare one repetition
                res[system]["runs"].append({**t, "was_warmup": True})
            if system == "scan":
                res[system]["counts"] = zarrchive_counts(out, src["fmt"])
                res[system]["refs"] = sum(len(a.refs) for a in out.arrays.values())
            elif system == "add":
                res[system]["refs"] = out.references
            else:
                res[system]["counts"] = kerchunk_counts(out, src["fmt"])
                res[system]["refs"] = sum(res[system]["counts"].values())
            del out
        for rnd in range(reps):
            order = systems[rnd % len(systems) :] + systems[: rnd % len(systems)]
            for system in order:
                r = res[system]
                spent = sum(x["wall"] for x in r["runs"])
                if "error" in r or len(r["runs"]) >= reps:
                    continue
                if len(r["runs"]) >= min_reps and spent >= budget:
                    continue
                try:
                    t, _ = call(system)
                except Exception as exc:
                    r["error"] = f"{type(exc).__name__} on repetition: {str(exc)[:300]}"
                    continue
                r["runs"].append(t)
        self.seen.add(src["fmt"])
        return res

    def run(self) -> None:
        for src in self.spec["sources"]:
            load = loadavg()
            systems = self.source(src)
            self.emit(
                {
                    "result": {
                        "name": src["name"],
                        "location": self.spec["location"],
                        "load": load,
                        "systems": systems,
                    }
                }
            )


@contextlib.contextmanager
def warnings_ignored() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def worker_main(spec_path: str) -> None:
    # protocol lines go to the original stdout; anything libraries print goes to stderr
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    spec = json.loads(Path(spec_path).read_text())
    Worker(spec, proto).run()
    proto.close()


# ====================================================================== profiling
def profile_main(spec_path: str) -> None:
    """cProfile zarrchive's scan (or add_virtual) of one local source, main + executor thread.

    The coroutines run on an event loop in the main thread (``asyncio.run``); the blocking
    parsing they hand to ``asyncio.to_thread`` runs in a one-thread default executor. After an
    unprofiled warm-up call, one profiler is switched on in each of the two threads; their
    statistics are merged.
    """
    import cProfile
    import importlib
    import io
    import pstats
    from concurrent.futures import ThreadPoolExecutor

    import zarrchive
    from zarrchive.sources import SourceReader, normalize_url

    spec = json.loads(Path(spec_path).read_text())
    src = spec["source"]
    module = importlib.import_module(f"zarrchive.importers.{IMPORTER[src['fmt']]}")
    url = normalize_url(src["path"])
    main_prof, pool_prof = cProfile.Profile(), cProfile.Profile()

    async def once() -> None:
        if spec["mode"] == "scan":
            reader = SourceReader()
            await module.scan(url, stat=reader.stat, **src["options"])
        else:
            repo = await zarrchive.AsyncRepo.create(f"memory://profile-{uuid.uuid4().hex}")
            await getattr(repo, src["method"])(url, "data", **src["options"])

    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(1)
        loop.set_default_executor(pool)
        with warnings_ignored():
            await once()  # warm-up: lazy imports, caches
            await loop.run_in_executor(None, pool_prof.enable)
            n, t0 = 0, time.perf_counter()
            main_prof.enable()
            while n < spec["reps"] and (n < 2 or time.perf_counter() - t0 < spec["budget"]):
                await once()
                n += 1
            main_prof.disable()
            elapsed = time.perf_counter() - t0
            await loop.run_in_executor(None, pool_prof.disable)
        pool.shutdown()
        return n, elapsed

    n, elapsed = asyncio.run(main())
    out = spec["out"]
    stats = pstats.Stats(main_prof)
    stats.add(pool_prof)
    stats.dump_stats(f"{out}.prof")
    text = io.StringIO()
    text.write(
        f"{src['name']} ({spec['mode']}): {n} profiled calls in {elapsed:.2f} s, "
        f"{elapsed / n * 1000:.1f} ms per call under cProfile (main and executor thread "
        "merged: the main thread's time includes waiting for the executor)\n"
    )
    for key in ("tottime", "cumulative"):
        s = pstats.Stats(f"{out}.prof", stream=text)
        s.sort_stats(key).print_stats(spec["top"])
    Path(f"{out}.txt").write_text(text.getvalue())


# ====================================================================== parent
@dataclass
class Run:
    """All measurements of one location."""

    location: str
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    load_start: list[float] = field(default_factory=list)
    load_end: list[float] = field(default_factory=list)
    seconds: float = 0.0


class Watchdog:
    """Decides when a worker is hung: no answer for ``timeout`` seconds, or no CPU time used
    for ``idle`` seconds (a deadlock: kerchunk's HDF5 translator can wait forever on a lock)."""

    def __init__(self, pid: int, timeout: float, idle: float) -> None:
        self.timeout, self.idle = timeout, idle
        self.last_answer = self.last_busy = time.monotonic()
        self.cpu = -1.0
        try:
            import psutil

            self.process: Any = psutil.Process(pid)
        except (ImportError, OSError):
            self.process = None

    def answered(self) -> None:
        self.last_answer = time.monotonic()

    def verdict(self) -> str | None:
        now = time.monotonic()
        if now - self.last_answer > self.timeout:
            return f"no answer within {self.timeout:g} s (killed)"
        if self.process is not None:
            try:
                times = self.process.cpu_times()
            except Exception:  # the process is gone: its end of the pipe will say so
                return None
            cpu = times.user + times.system
            if cpu > self.cpu + 0.01:
                self.cpu, self.last_busy = cpu, now
            elif now - max(self.last_busy, self.last_answer) > self.idle:
                return f"hung: no CPU time used for {self.idle:g} s (deadlock; killed)"
        return None


def run_location(
    location: str,
    sources: list[Source],
    args: argparse.Namespace,
    workdir: Path,
    s3: MotoS3 | None,
) -> Run:
    """Run the worker for one location, restarting it after a hang or a crash."""
    run = Run(location, load_start=loadavg())
    t_start = time.perf_counter()
    pending = list(sources)
    failures: dict[tuple[str, str], str] = {}
    while pending:
        spec = {
            "location": location,
            "sources": [{**asdict(s), "method": s.method} for s in pending],
            "storage_options": s3_options(s3, args),
            "fresh_clients": args.fresh_clients,
            "counter_url": f"{s3.endpoint}{COUNT_PATH}" if s3 else None,
            "reps": args.reps,
            "min_reps": args.min_reps,
            "budget": args.budget,
            "skip": [list(k) for k in failures],
        }
        spec_path = workdir / f"spec-{location}.json"
        spec_path.write_text(json.dumps(spec))
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(spec_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(stream: Any = proc.stdout, q: queue.Queue[str | None] = lines) -> None:
            for line in stream:
                q.put(line)
            q.put(None)

        threading.Thread(target=pump, daemon=True).start()
        current: tuple[str, str] | None = None
        watch = Watchdog(proc.pid, args.timeout, args.idle)
        while True:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                why = watch.verdict()
                if why is None:
                    continue
                proc.kill()
                proc.wait()
                break
            watch.answered()
            if line is None:
                proc.wait()
                why = f"worker exited with status {proc.returncode}"
                break
            record = json.loads(line)
            if "call" in record:
                current = (record["call"], record["system"])
            elif "result" in record:
                res = record["result"]
                run.results[res["name"]] = res
                pending = [s for s in pending if s.name != res["name"]]
                current = None
                log(f"[{location}] {res['name']}: {summary_line(res)}")
        if not pending:
            break
        if current is None:
            raise RuntimeError(f"the {location} worker failed outside any measurement: {why}")
        failures[current] = why
        log(f"[{location}] {current[0]} / {current[1]}: {why}; restarting the worker")
    for (name, system), why in failures.items():
        run.results[name]["systems"][system] = {"runs": [], "error": why}
    run.load_end = loadavg()
    run.seconds = time.perf_counter() - t_start
    return run


def s3_options(s3: MotoS3 | None, args: argparse.Namespace) -> dict[str, Any] | None:
    if s3 is None:
        return None
    if args.fresh_clients:
        return {**s3.options, "skip_instance_cache": True}
    return dict(s3.options)


def median_wall(entry: dict[str, Any] | None, key: str = "wall") -> float | None:
    if not entry or not entry.get("runs"):
        return None
    return statistics.median(r[key] for r in entry["runs"])


def requests_cell(entry: dict[str, Any] | None) -> str:
    """Median S3 requests and bytes received of one system's timed calls: ``"N/x.yM"``."""
    if not entry or not entry.get("runs") or "requests" not in entry["runs"][0]:
        return "-"
    n = statistics.median(r["requests"]["requests"] for r in entry["runs"])
    nbytes = statistics.median(r["requests"]["bytes"] for r in entry["runs"])
    return f"{n:.0f}/{nbytes / 1e6:.1f}M"


def summary_line(res: dict[str, Any]) -> str:
    parts = []
    for system in SYSTEMS:
        e = res["systems"].get(system, {})
        m = median_wall(e)
        parts.append(f"{system} {m * 1000:.1f} ms" if m is not None else f"{system} failed")
    return ", ".join(parts)


def check_cell(res: dict[str, Any]) -> tuple[str, list[str]]:
    zc = res["systems"].get("scan", {}).get("counts")
    kc = res["systems"].get("kerchunk", {}).get("counts")
    if zc is None or kc is None:
        return "-", []
    diffs = compare_counts(zc, kc)
    return ("ok" if not diffs else f"{len(diffs)} diff"), diffs


def table(run: Run, sources: list[Source]) -> tuple[str, list[str]]:
    """The figures of one location as text, and the notes that go under it."""
    remote = run.location == "s3"
    head = ["format", "file", "size", "refs", "scan", "add", "commit", "kerchunk"]
    head += ["k/scan", "k/add", "cpu k/scan"]
    if remote:
        head += ["req scan", "req add", "req kc"]
    head += ["check"]
    rows, notes = [], []
    for src in sources:
        res = run.results.get(src.name)
        if res is None:
            continue
        sy = res["systems"]
        scan, add, kc = (median_wall(sy.get(s)) for s in SYSTEMS)
        commit = median_wall(sy.get("add"), "commit_wall")
        check, diffs = check_cell(res)
        size = f"{src.nbytes / 1e6:.1f} MB" if src.nbytes >= 1e5 else f"{src.nbytes / 1e3:.0f} kB"
        row = [src.label, src.name, size, str(sy.get("scan", {}).get("refs", "-"))]
        row += [fmt_ms(scan), fmt_ms(add), fmt_ms(commit), fmt_ms(kc)]
        row += [fmt_ratio(kc, scan), fmt_ratio(kc, add)]
        cpu_scan = median_wall(sy.get("scan"), "cpu")
        cpu_kc = median_wall(sy.get("kerchunk"), "cpu")
        row += [fmt_ratio(cpu_kc, cpu_scan)]
        if remote:
            row += [requests_cell(sy.get(system)) for system in SYSTEMS]
        row += [check]
        rows.append(row)
        for system in SYSTEMS:
            err = sy.get(system, {}).get("error")
            if err:
                notes.append(f"{src.name}: {system} failed: {err}")
        for d in diffs[:6]:
            notes.append(f"{src.name}: refs differ: {d}")
        if len(diffs) > 6:
            notes.append(f"{src.name}: ... and {len(diffs) - 6} more arrays differ")
        if sy.get("add", {}).get("refs") not in (None, sy.get("scan", {}).get("refs")):
            notes.append(
                f"{src.name}: add_virtual reported {sy['add']['refs']} references, the scan "
                f"{sy['scan'].get('refs')}"
            )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    lines = [line(head)]
    lines.append("-" * len(lines[0]))
    lines += [line(r) for r in rows]
    return "\n".join(lines), notes


def format_summary(run: Run, sources: list[Source]) -> list[str]:
    """Per format: geometric mean of kerchunk / zarrchive over files where both succeeded."""
    out = []
    labels = sorted({s.label for s in sources}, key=lambda x: [s.label for s in sources].index(x))
    for label in labels:
        parts = []
        for origin in ("generated", "sample"):
            scan_r, add_r = [], []
            for s in sources:
                res = run.results.get(s.name)
                if s.label != label or s.origin != origin or res is None:
                    continue
                scan, add, kc = (median_wall(res["systems"].get(x)) for x in SYSTEMS)
                if kc and scan:
                    scan_r.append(kc / scan)
                if kc and add:
                    add_r.append(kc / add)
            if scan_r:
                g1, g2 = geomean(scan_r), geomean(add_r)
                parts.append(
                    f"{origin} ({len(scan_r)} files): k/scan {g1:.2f}x"
                    + (f", k/add {g2:.2f}x" if g2 else "")
                )
        out.append(f"  {label:8s} " + ("; ".join(parts) if parts else "no file where both ran"))
    return out


def profile_targets(run: Run, sources: list[Source], every: bool) -> list[tuple[Source, str]]:
    """Local sources where zarrchive's scan or add_virtual was slower than kerchunk (or all)."""
    targets = []
    for src in sources:
        res = run.results.get(src.name)
        if res is None:
            continue
        scan, add, kc = (median_wall(res["systems"].get(s)) for s in SYSTEMS)
        if every or (kc is not None and scan is not None and scan > kc):
            targets.append((src, "scan"))
        if every or (kc is not None and add is not None and add > kc):
            targets.append((src, "add"))
    return targets


def run_profiles(
    targets: list[tuple[Source, str]], outdir: Path, workdir: Path, args: argparse.Namespace
) -> list[str]:
    outdir.mkdir(parents=True, exist_ok=True)
    texts = []
    for src, mode in targets:
        out = outdir / f"{src.name}.{mode}"
        spec = {
            "source": {**asdict(src), "method": src.method},
            "mode": mode,
            "reps": args.reps * 4,
            "budget": max(args.budget, 2.0),
            "top": 25,
            "out": str(out),
        }
        spec_path = workdir / "profile-spec.json"
        spec_path.write_text(json.dumps(spec))
        log(f"profiling {mode} of {src.name}")
        subprocess.run(
            [sys.executable, __file__, "--profile-worker", str(spec_path)],
            check=True,
            timeout=args.timeout * 4,
        )
        texts.append(Path(f"{out}.txt").read_text())
    return texts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller generated files, no samples")
    p.add_argument("--no-s3", action="store_true", help="local files only")
    p.add_argument("--no-local", action="store_true", help="S3 only")
    p.add_argument("--no-samples", action="store_true", help="skip sample_data/ files")
    p.add_argument("--only", help="formats to run, comma-separated (" + ",".join(FORMATS) + ")")
    p.add_argument("--files", help="only files whose name contains one of these (comma-sep.)")
    p.add_argument("--reps", type=int, help="timed calls per file and system (5; quick 2)")
    p.add_argument("--min-reps", type=int, help="timed calls before --budget counts (2; quick 1)")
    p.add_argument("--budget", type=float, help="seconds per file and system (4; quick 0.3)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds before a call is hung")
    p.add_argument(
        "--idle", type=float, default=10.0, help="seconds without CPU use before a call is hung"
    )
    p.add_argument(
        "--fresh-clients",
        action="store_true",
        help="S3: skip_instance_cache=True (a new S3 client per filesystem, as the tests do)",
    )
    p.add_argument("--json", help="write all raw measurements to this file")
    p.add_argument("--profile", help="cProfile zarrchive where it was slower; output directory")
    p.add_argument(
        "--profile-every", action="store_true", help="with --profile: profile every file"
    )
    p.add_argument("--workdir", help="where to write generated files (a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--profile-worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker_main(args.worker)
        return
    if args.profile_worker:
        profile_main(args.profile_worker)
        return
    args.reps = args.reps or (2 if args.quick else 5)
    args.min_reps = args.min_reps or (1 if args.quick else 2)
    args.budget = args.budget if args.budget is not None else (0.3 if args.quick else 4.0)
    # keep botocore away from any real credentials or endpoints of the machine
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_PROFILE", None)

    t_all = time.perf_counter()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="zarrchive-scan-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    load0 = loadavg()
    state0 = zarrchive_state()
    log(f"work directory {workdir}; load average {load0}; zarrchive {state0}")
    try:
        gen_dir = workdir / "files"
        gen_dir.mkdir(exist_ok=True)
        generated = (describe(x, "generated") for x in generate(gen_dir, args.quick))
        sources = [s for s in generated if s is not None]
        if not (args.quick or args.no_samples):
            sources = sample_sources() + sources
        if args.only:
            wanted = {f.strip() for f in args.only.split(",")}
            sources = [s for s in sources if s.fmt in wanted or s.label in wanted]
        if args.files:
            names = [f.strip() for f in args.files.split(",")]
            sources = [s for s in sources if any(n in s.name for n in names)]
        order = {f: i for i, f in enumerate(FORMATS)}
        # sample files first: a format's one-time costs are paid on small files
        sources.sort(key=lambda s: (order[s.fmt], s.origin == "generated", s.name))
        runs = [] if args.no_local else [run_location("local", sources, args, workdir, None)]
        if not args.no_s3:
            s3 = MotoS3()
            try:
                s3.upload(sources)
                runs.append(run_location("s3", sources, args, workdir, s3))
            finally:
                s3.stop()
        profiles = []
        if args.profile and not args.no_local:
            targets = profile_targets(runs[0], sources, args.profile_every)
            profiles = run_profiles(targets, Path(args.profile), workdir, args)
        states = (state0, zarrchive_state())
        report(runs, sources, args, load0, time.perf_counter() - t_all, profiles, states)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def report(
    runs: list[Run],
    sources: list[Source],
    args: argparse.Namespace,
    load0: list[float],
    seconds: float,
    profiles: list[str],
    states: tuple[str, str],
) -> None:
    info = versions()
    print(
        f"scan benchmark: {platform.machine()}, {os.cpu_count()} CPUs, "
        + ", ".join(f"{k} {v}" for k, v in info.items())
    )
    print(f"zarrchive: {states[0]}")
    if states[1] != states[0]:
        print(f"WARNING: zarrchive's sources changed during the run; at the end: {states[1]}")
    print(
        f"reps <= {args.reps} (>= {args.min_reps}, budget {args.budget:g} s per file and "
        f"system), medians in ms; k/scan = kerchunk / zarrchive scan (> 1: zarrchive faster)"
    )
    for run in runs:
        text, notes = table(run, sources)
        print(
            f"\n== {run.location} ({run.seconds:.0f} s; load average 1/5/15 min: "
            f"{run.load_start} at start, {run.load_end} at end)"
        )
        print(text)
        print("\ngeometric mean of the ratios per format:")
        print("\n".join(format_summary(run, sources)))
        if notes:
            print("\nnotes:")
            print("\n".join(f"  {n}" for n in notes))
    for text in profiles:
        print("\n== profile: " + text)
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"\ntotal {seconds:.0f} s wall; CPU time: workers {kids.ru_utime + kids.ru_stime:.0f} s, "
        f"this process (file generation, upload, moto) {own.ru_utime + own.ru_stime:.0f} s; "
        f"load average at the end {loadavg()}"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "versions": info,
                    "zarrchive": {"start": states[0], "end": states[1]},
                    "machine": {"arch": platform.machine(), "cpus": os.cpu_count()},
                    "args": vars(args),
                    "load_start": load0,
                    "load_end": loadavg(),
                    "sources": [asdict(s) | {"label": s.label} for s in sources],
                    "runs": [asdict(r) for r in runs],
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
