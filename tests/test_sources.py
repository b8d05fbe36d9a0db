"""Virtual-chunk sources: file, S3 (moto) and HTTP (a local Range server); authorisation,
credentials kept out of the repository, and stale or missing sources.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
import uuid
import warnings
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zstandard

import zarrchive
from conftest import BUCKET
from zarrchive import SourceModifiedError, UnauthorizedSourceError

pytestmark = pytest.mark.filterwarnings(
    "ignore:Numcodecs codecs are not in the Zarr version 3",
    "ignore::RuntimeWarning",
)


# ---------------------------------------------------------------------- helpers
def write_nc4(path: Path) -> Path:
    precip = np.arange(60.0).reshape(3, 4, 5)
    precip[0, 0, 0] = np.nan
    ds = xr.Dataset(
        {
            "temp": (("time", "lat", "lon"), np.arange(60, dtype="f4").reshape(3, 4, 5) + 270),
            "precip": (("time", "lat", "lon"), precip),
            "count": (("time",), np.array([1, -1, 3], dtype="i4")),
        },
        coords={
            "time": pd.date_range("2020-01-01", periods=3),
            "lat": np.arange(4.0),
            "lon": np.arange(5.0),
        },
        attrs={"title": "sources"},
    )
    ds["temp"].attrs["units"] = "K"
    ds.to_netcdf(
        path,
        engine="netcdf4",
        encoding={
            "temp": {"zlib": True, "shuffle": True, "chunksizes": (1, 4, 5)},
            "precip": {"contiguous": True},
            "count": {"_FillValue": np.int32(-1)},
        },
    )
    return path


def hdf5_refs(url: str, **kw: Any) -> dict[str, Any]:
    kerchunk_hdf = pytest.importorskip("kerchunk.hdf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kerchunk_hdf.SingleHdf5ToZarr(url, inline_threshold=0, **kw).translate()


def load(repo: zarrchive.Repo, group: str = "nc") -> xr.Dataset:
    return repo.to_xarray(group).load()


def native(path: Path) -> xr.Dataset:
    return xr.open_dataset(path, engine="netcdf4").load()


def rewrite_same_size(path: Path) -> None:
    """Different bytes, same size, a later mtime."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    st = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert path.stat().st_size == st.st_size


# ---------------------------------------------------------------------- an HTTP server
class RangeHandler(BaseHTTPRequestHandler):
    """Serves files below ``root`` with HEAD, GET and single byte-range GETs.

    ``SimpleHTTPRequestHandler`` ignores ``Range``; fsspec's HTTP filesystem needs it, and an
    ``ETag`` and ``Content-Length`` to identify and size objects. HTTP/1.0: one request per
    connection, so no handler thread outlives its response.
    """

    protocol_version = "HTTP/1.0"
    timeout = 10
    root: Path
    log: list[tuple[str, str, str | None]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        rng = self.headers.get("Range")
        self.log.append((self.command, self.path, rng))
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        st = path.stat()
        size = len(data)
        status, start, end = 200, 0, size - 1
        if rng is not None:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if m is None or not (m[1] or m[2]):
                self.send_error(416)
                return
            if m[1]:
                start = int(m[1])
                end = min(int(m[2]), size - 1) if m[2] else size - 1
            else:
                start, end = max(0, size - int(m[2])), size - 1
            if start >= size or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        payload = data[start : end + 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{st.st_mtime_ns:x}-{size:x}"')
        self.send_header("Last-Modified", formatdate(st.st_mtime, usegmt=True))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if body:
            self.wfile.write(payload)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[tuple[str, str, str | None]]]]:
    """(base URL, served directory, request log) of a Range-capable server on 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()
    log: list[tuple[str, str, str | None]] = []
    handler = type("Handler", (RangeHandler,), {"root": root, "log": log})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root, log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


# ---------------------------------------------------------------------- file://
@pytest.mark.parametrize("form", ["path", "file-url"])
def test_file_sources(tmp_path: Path, form: str) -> None:
    src = write_nc4(tmp_path / "data.nc")
    refs = hdf5_refs(str(src) if form == "path" else src.as_uri())
    repo = zarrchive.Repo.create(tmp_path / "repo")
    repo.add_kerchunk_references(refs, "nc")
    repo.commit("file sources")
    xr.testing.assert_identical(load(repo), native(src))
    report = repo.verify()
    assert report.ok and report.sources == 1
    # every form of local reference is recorded as one absolute file:// URL
    fresh = zarrchive.Repo.open(tmp_path / "repo", authorize_virtual=[str(tmp_path)])
    xr.testing.assert_identical(load(fresh), native(src))


# ---------------------------------------------------------------------- stale sources
@pytest.fixture
def imported(tmp_path: Path) -> tuple[zarrchive.Repo, Path, xr.Dataset]:
    (tmp_path / "src").mkdir()
    src = write_nc4(tmp_path / "src" / "data.nc")
    repo = zarrchive.Repo.create(tmp_path / "repo")
    repo.add_kerchunk_references(hdf5_refs(str(src)), "nc")
    repo.commit("import")
    expected = native(src)
    xr.testing.assert_identical(load(repo), expected)
    return repo, src, expected


def _fresh(repo: zarrchive.Repo, src: Path) -> zarrchive.Repo:
    return zarrchive.Repo.open(repo.repository.location, authorize_virtual=[src.parent.as_uri()])


@pytest.mark.parametrize("change", ["same-size", "larger", "smaller"])
def test_rewritten_local_source_is_detected(
    imported: tuple[zarrchive.Repo, Path, xr.Dataset], change: str
) -> None:
    repo, src, _ = imported
    if change == "same-size":
        rewrite_same_size(src)
    elif change == "larger":
        with open(src, "ab") as f:
            f.write(b"\0" * 100)
    else:
        os.truncate(src, src.stat().st_size - 100)
    for r in (repo, _fresh(repo, src)):
        with pytest.raises(SourceModifiedError, match="changed since it was imported"):
            r.root_group["nc/temp"][:]
        with pytest.raises(SourceModifiedError):
            load(r)
        report = r.verify()
        assert not report.ok and list(report.stale) == [src.as_uri()]
        assert report.missing == () and "stale" in str(report)


def test_deleted_local_source_is_an_error_not_fill_values(
    imported: tuple[zarrchive.Repo, Path, xr.Dataset],
) -> None:
    repo, src, _ = imported
    src.unlink()
    for r in (repo, _fresh(repo, src)):
        with pytest.raises(SourceModifiedError, match="no longer exists"):
            r.root_group["nc/precip"][0, 0, :]
        with pytest.raises(SourceModifiedError):
            load(r)
        report = r.verify()
        assert report.missing == (src.as_uri(),) and not report.stale and not report.ok
    # verify of a named commit, from the importing session
    assert repo.verify("main").missing == (src.as_uri(),)


def test_restored_source_reads_again(imported: tuple[zarrchive.Repo, Path, xr.Dataset]) -> None:
    repo, src, expected = imported
    saved = src.read_bytes()
    st = src.stat()
    src.unlink()
    assert repo.verify().missing
    src.write_bytes(saved)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert repo.verify().ok
    xr.testing.assert_identical(load(_fresh(repo, src)), expected)


def test_verify_checks_every_recorded_version_of_a_source(
    imported: tuple[zarrchive.Repo, Path, xr.Dataset],
) -> None:
    """Arrays imported before and after a source changed: the older ones are stale, whatever
    the order of the nodes (a move puts the older import last)."""
    repo, src, _ = imported
    rewrite_same_size(src)
    repo.add_kerchunk_references(hdf5_refs(str(src)), "again")
    repo.commit("re-import the new version")
    repo.move("nc", "renamed")
    repo.commit("rename the old import")
    with pytest.raises(SourceModifiedError):
        repo.root_group["renamed/temp"][:]
    assert repo.root_group["again/temp"][:].shape == (3, 4, 5)
    report = repo.verify()
    assert list(report.stale) == [src.as_uri()] and not report.ok


# ---------------------------------------------------------------------- s3://
def _s3fs(options: dict[str, Any]) -> Any:
    import s3fs

    return s3fs.S3FileSystem(**options)


@pytest.fixture
def s3_source(s3_server: dict[str, Any], tmp_path: Path) -> tuple[str, Path, dict[str, Any]]:
    src = write_nc4(tmp_path / "data.nc")
    url = f"s3://{BUCKET}/{uuid.uuid4().hex}/data.nc"
    _s3fs(s3_server).put(str(src), url)
    return url, src, s3_server


def test_s3_sources(s3_source: tuple[str, Path, dict[str, Any]], tmp_path: Path) -> None:
    url, src, options = s3_source
    refs = hdf5_refs(url, storage_options=options)
    assert refs["refs"]["temp/0.0.0"][0] == url
    location = tmp_path / "repo"
    repo = zarrchive.Repo.create(location)
    summary = repo.add_kerchunk_references(refs, "nc", storage_options=options)
    assert summary.sources == 1
    repo.commit("s3 sources")
    expected = native(src)
    xr.testing.assert_identical(load(repo), expected)
    assert repo.verify().ok

    # a fresh reader names the bucket; the endpoint was recorded with the commit (it is a
    # public option), the credentials come from this process (the test's AWS_* variables)
    fresh = zarrchive.Repo.open(location, authorize_virtual=[f"s3://{BUCKET}/"])
    xr.testing.assert_identical(load(fresh), expected)
    # ... or from options given for the container
    fresh = zarrchive.Repo.open(location, authorize_virtual={f"s3://{BUCKET}/": options})
    xr.testing.assert_identical(load(fresh), expected)
    with pytest.raises(UnauthorizedSourceError, match=f"s3://{BUCKET}/"):
        load(zarrchive.Repo.open(location))

    # the reference set itself on S3, compressed; storage_options serve it too
    refs_url = url.replace("data.nc", "refs.json.gz")
    _s3fs(options).pipe_file(refs_url, gzip.compress(json.dumps(refs).encode()))
    repo.add_kerchunk_references(refs_url, "from_s3", storage_options=options)
    xr.testing.assert_identical(load(repo, "from_s3"), expected)


def test_s3_bare_paths_with_remote_protocol(
    s3_source: tuple[str, Path, dict[str, Any]],
) -> None:
    url, src, options = s3_source
    refs = hdf5_refs(url, storage_options=options)
    bare = json.loads(json.dumps(refs).replace(url, url.removeprefix("s3://")))
    assert bare["refs"]["temp/0.0.0"][0] == url.removeprefix("s3://")
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    repo.add_kerchunk_references(bare, "nc", storage_options=options, remote_protocol="s3")
    xr.testing.assert_identical(load(repo), native(src))


@pytest.mark.parametrize("change", ["overwrite", "delete"])
def test_stale_s3_source_is_detected(
    s3_source: tuple[str, Path, dict[str, Any]], tmp_path: Path, change: str
) -> None:
    url, src, options = s3_source
    location = tmp_path / "repo"
    repo = zarrchive.Repo.create(location)
    repo.add_kerchunk_references(
        hdf5_refs(url, storage_options=options), "nc", storage_options=options
    )
    repo.commit("import")
    xr.testing.assert_identical(load(repo), native(src))
    fs = _s3fs(options)
    etag = fs.info(url)["ETag"]
    if change == "overwrite":
        data = bytearray(src.read_bytes())
        data[-1] ^= 0xFF
        fs.pipe_file(url, bytes(data))
        assert fs.info(url)["ETag"] != etag and fs.info(url)["size"] == len(data)
    else:
        fs.rm(url)

    fresh = zarrchive.Repo.open(location, authorize_virtual={f"s3://{BUCKET}/": options})
    with pytest.raises(SourceModifiedError) as info:
        fresh.root_group["nc/temp"][:]
    assert url in str(info.value)
    with pytest.raises(SourceModifiedError):
        load(fresh)
    for r in (fresh, repo):  # verify stats every time, also in the importing session
        report = r.verify()
        if change == "overwrite":
            assert list(report.stale) == [url] and "etag=" in report.stale[url]
        else:
            assert report.missing == (url,) and not report.stale


# ---------------------------------------------------------------------- http://
def test_http_sources(
    http_server: tuple[str, Path, list[tuple[str, str, str | None]]], tmp_path: Path
) -> None:
    base, root, log = http_server
    src = write_nc4(root / "data.nc")
    url = f"{base}/data.nc"
    refs = hdf5_refs(url)
    location = tmp_path / "repo"
    repo = zarrchive.Repo.create(location)
    repo.add_kerchunk_references(refs, "nc")
    repo.commit("http sources")
    expected = native(src)

    del log[:]
    fresh = zarrchive.Repo.open(location, authorize_virtual=[f"{base}/"])
    xr.testing.assert_identical(load(fresh), expected)
    # chunks are fetched as byte ranges, never as the whole file
    gets = [entry for entry in log if entry[0] == "GET"]
    assert gets and all(rng is not None for _, _, rng in gets)
    assert repo.verify().ok

    # a changed file has a new ETag
    rewrite_same_size(src)
    with pytest.raises(SourceModifiedError, match="changed since it was imported"):
        load(zarrchive.Repo.open(location, authorize_virtual=[f"{base}/"]))
    report = repo.verify()
    assert list(report.stale) == [url] and "etag=" in report.stale[url]
    src.unlink()
    with pytest.raises(SourceModifiedError, match="no longer exists"):
        load(zarrchive.Repo.open(location, authorize_virtual=[f"{base}/"]))
    assert repo.verify().missing == (url,)


def test_range_server_contract(
    http_server: tuple[str, Path, list[tuple[str, str, str | None]]],
) -> None:
    import http.client
    import urllib.error
    import urllib.request

    base, root, _ = http_server
    (root / "f.bin").write_bytes(bytes(range(100)))

    def get(headers: dict[str, str], method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(f"{base}/f.bin", headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()

    status, headers, body = get({"Range": "bytes=10-19"})
    assert (status, body) == (206, bytes(range(10, 20)))
    assert headers["Content-Range"] == "bytes 10-19/100" and headers["Content-Length"] == "10"
    assert get({"Range": "bytes=95-"})[2] == bytes(range(95, 100))
    assert get({"Range": "bytes=-3"})[2] == bytes(range(97, 100))
    status, headers, body = get({}, "HEAD")
    assert status == 200 and headers["Content-Length"] == "100" and headers["ETag"] and not body
    with pytest.raises(urllib.error.HTTPError) as info:
        get({"Range": "bytes=200-300"})
    assert info.value.code == 416
    # nothing outside the served directory
    conn = http.client.HTTPConnection(urlsplit(base).netloc, timeout=10)
    try:
        conn.request("GET", "/../../../../etc/passwd")
        assert conn.getresponse().status == 404
    finally:
        conn.close()


# ---------------------------------------------------------------------- security
PASSWD_REFS = {
    ".zgroup": json.dumps({"zarr_format": 2}),
    "x/.zarray": json.dumps(
        {
            "shape": [10],
            "chunks": [10],
            "dtype": "|u1",
            "fill_value": 0,
            "order": "C",
            "filters": None,
            "compressor": None,
            "zarr_format": 2,
        }
    ),
    "x/0": ["file:///etc/passwd", 0, 10],
}


@pytest.mark.skipif(not os.path.isfile("/etc/passwd"), reason="needs /etc/passwd")
def test_unauthorised_reader_cannot_read_foreign_sources(tmp_path: Path) -> None:
    location = tmp_path / "repo"
    expected = np.frombuffer(Path("/etc/passwd").read_bytes()[:10], dtype="u1")
    repo = zarrchive.Repo.create(location)
    repo.add_kerchunk_references(PASSWD_REFS, "p")
    # the importing session authorised what it imported
    np.testing.assert_array_equal(repo.root_group["p/x"][:], expected)
    repo.commit("points outside")
    np.testing.assert_array_equal(repo.root_group["p/x"][:], expected)

    for authorize in (None, [], ["file:///tmp/"], [str(tmp_path)], ["file:///et"]):
        reader = zarrchive.Repo.open(location, authorize_virtual=authorize)
        with pytest.raises(UnauthorizedSourceError) as info:
            reader.root_group["p/x"][:]
        message = str(info.value)
        assert "file:///etc/passwd" in message
        assert "authorize_virtual" in message and "'file:///etc/'" in message
        # verify lists the source without touching it
        report = reader.verify()
        assert report.unauthorized == ("file:///etc/passwd",) and not report.ok

    reader = zarrchive.Repo.open(location, authorize_virtual=["file:///etc/"])
    np.testing.assert_array_equal(reader.root_group["p/x"][:], expected)
    assert reader.verify().ok


def _zstd_frames(data: bytes) -> Iterator[bytes]:
    """``data`` and every zstd frame inside it, decompressed (recursively)."""
    yield data
    start = 0
    while (i := data.find(b"\x28\xb5\x2f\xfd", start)) >= 0:
        start = i + 1
        try:
            inner = zstandard.ZstdDecompressor().decompressobj().decompress(data[i:])
        except zstandard.ZstdError:
            continue
        if inner:
            yield from _zstd_frames(inner)


def test_credentials_never_reach_the_repository(s3_server: dict[str, Any], tmp_path: Path) -> None:
    import boto3

    key = "AKIAZARRCHIVE7TESTKEY"
    secret = "zarrchive-Secret/Value+42-never-stored"
    options = {
        "endpoint_url": s3_server["endpoint_url"],
        "key": key,
        "secret": secret,
        "client_kwargs": {"region_name": "us-east-1"},
    }
    prefix = uuid.uuid4().hex
    src = write_nc4(tmp_path / "data.nc")
    url = f"s3://{BUCKET}/{prefix}-sources/data.nc"
    _s3fs({**options, "skip_instance_cache": True}).put(str(src), url)
    (tmp_path / "refs.json").write_text(json.dumps(hdf5_refs(url, storage_options=options)))

    location = f"s3://{BUCKET}/{prefix}/repo"
    repo = zarrchive.Repo.create(location, storage_options=options, author="sec")
    repo.add_kerchunk_references(str(tmp_path / "refs.json"), "nc", storage_options=options)
    repo.root_group.attrs["note"] = "no secrets here"
    repo.commit("import with credentials", metadata={"by": "test"})
    repo.new_branch("dev")
    repo.tag("v1")
    xr.testing.assert_identical(load(repo), native(src))

    client = boto3.client(
        "s3",
        endpoint_url=s3_server["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )
    keys = [
        obj["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=f"{prefix}/repo/"
        )
        for obj in page.get("Contents", [])
    ]
    assert any("/snapshots/" in k for k in keys) and any("/manifests/" in k for k in keys)
    endpoint_seen = False
    for k in keys:
        raw = client.get_object(Bucket=BUCKET, Key=k)["Body"].read()
        for blob in _zstd_frames(raw):
            for needle in (key, secret):
                assert needle.encode() not in blob, f"{needle!r} found in {k}"
            endpoint_seen |= s3_server["endpoint_url"].encode() in blob
    # the search does look inside the objects: the (public) endpoint is recorded
    assert endpoint_seen


@pytest.mark.parametrize("scheme", ["file", "http"])
def test_dot_segments_do_not_escape_an_authorised_container(
    scheme: str,
    tmp_path: Path,
    http_server: tuple[str, Path, list[tuple[str, str, str | None]]],
) -> None:
    """A repository is data: a hostile writer can record any URL, bypassing the importers'
    normalisation. Authorising ``.../allowed/`` must not allow reading outside it."""
    from zarrchive.format import Manifest

    base, root, _ = http_server
    (root / "allowed").mkdir()
    (root / "secret.bin").write_bytes(b"top secret bytes")
    if scheme == "file":
        allowed = (root / "allowed").as_uri() + "/"
    else:
        allowed = f"{base}/allowed/"
    location = tmp_path / "repo"
    writer = zarrchive.Repo.create(location)
    writer.root_group.create_array(
        "x", shape=(10,), chunks=(10,), dtype="u1", fill_value=0, compressors=None
    )
    hostile = Manifest.virtual(
        np.zeros((1, 1), dtype=np.int64),
        np.zeros(1, dtype=np.int64),
        np.array([0]),
        np.array([10]),
        [allowed + "../secret.bin"],
        [None],
    )
    assert writer.session.changes is not None
    writer.session.changes.add_refs("x", hostile)
    writer.commit("escapes its container")

    reader = zarrchive.Repo.open(location, authorize_virtual=[allowed])
    with pytest.raises(UnauthorizedSourceError):
        reader.root_group["x"][:]


def test_readers_of_one_process_share_remote_clients(s3_server: dict[str, Any]) -> None:
    """A new repository does not pay for a new S3 client (about 0.1 s of CPU each)."""
    import asyncio

    from zarrchive.sources import SourceReader

    async def clients() -> tuple[Any, Any, Any]:
        a = SourceReader({"s3://b/": s3_server})._fs("s3://b/x", s3_server)
        b = SourceReader({"s3://b/": s3_server})._fs("s3://b/y", s3_server)
        other = SourceReader()._fs("s3://b/x", {**s3_server, "anon": True})
        return a, b, other

    a, b, other = asyncio.run(clients())
    assert a is b and other is not a
    a2, _, _ = asyncio.run(clients())  # another event loop: its own client
    assert a2 is not a


@pytest.mark.parametrize("client", ["obstore", "fsspec"])
def test_s3_clients_agree(
    s3_server: dict[str, Any], client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """obstore (the default for s3:// where options map) and s3fs record the same versions,
    and both report a missing object as missing; unmappable options keep s3fs."""
    import asyncio

    import s3fs

    from zarrchive._obstore import ObstoreS3
    from zarrchive.sources import SourceReader

    monkeypatch.setenv("ZARRCHIVE_S3_CLIENT", client)
    key = f"{BUCKET}/{uuid.uuid4().hex}/obj.bin"
    s3fs.S3FileSystem(**s3_server).pipe(key, b"0123456789" * 100)
    url = f"s3://{key}"

    async def run() -> tuple[Any, Any, bytes]:
        reader = SourceReader({"s3://": s3_server})
        fs = reader._fs(url, s3_server)
        stat = await reader.stat(url, s3_server)
        data = await reader.read(url, 10, 20, stat.checksum)
        with pytest.raises(zarrchive.SourceModifiedError, match="no longer exists"):
            await reader.read(url + ".missing", 0, 1)
        return fs, stat, data

    fs, stat, data = asyncio.run(run())
    assert isinstance(fs, ObstoreS3) == (client == "obstore")
    other_choice = "fsspec" if client == "obstore" else "obstore"

    async def before_and_after_switch() -> tuple[Any, Any]:  # one loop: shared clients
        before = SourceReader()._fs(url, s3_server)
        monkeypatch.setenv("ZARRCHIVE_S3_CLIENT", other_choice)
        return before, SourceReader()._fs(url, s3_server)

    monkeypatch.setenv("ZARRCHIVE_S3_CLIENT", client)
    before, after = asyncio.run(before_and_after_switch())
    assert isinstance(before, ObstoreS3) == (client == "obstore")
    assert isinstance(after, ObstoreS3) == (other_choice == "obstore")
    etag = s3fs.S3FileSystem(**s3_server).info(key)["ETag"].strip('"')
    assert stat.checksum == f"size=1000;etag={etag}"
    assert data == b"0123456789" * 2
    if client == "fsspec":
        assert fs.dircache.use_listings_cache is False  # versions never from a listing
    # an option obstore has no equivalent for: s3fs, whatever the switch says
    odd = {**s3_server, "config_kwargs": {"max_pool_connections": 16}}
    other = asyncio.run(_fs_of(SourceReader(), url, odd))
    assert not isinstance(other, ObstoreS3)


async def _fs_of(reader: Any, url: str, options: dict[str, Any]) -> Any:
    return reader._fs(url, options)
