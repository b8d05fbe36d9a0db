"""Export of commits as kerchunk reference sets, read back with plain fsspec + zarr / xarray."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import xarray as xr
import zarr
import zarr.codecs.numcodecs as nz3
from zarr.codecs import (
    BloscCodec,
    BytesCodec,
    Crc32cCodec,
    GzipCodec,
    TransposeCodec,
    ZstdCodec,
)

import zarrchive
from zarrchive import InvalidInputError, UnsupportedFeatureError
from zarrchive.export import node_metadata_v2
from zarrchive.format import Node

pytestmark = pytest.mark.filterwarnings(
    "ignore:Numcodecs codecs are not in the Zarr version 3 specification",
    "ignore:The data type .* does not have a Zarr V3 specification",
    # fsspec reads and writes parquet references with pandas' fastparquet engine
    "ignore:The 'fastparquet' engine is deprecated",
)

NT, NY = 40, 30  # root dimensions: time, lat
RNG = np.random.default_rng(42)
TEMP = RNG.normal(280, 5, (NT, NY)).astype("f4")
RAW = np.arange(NT * NY, dtype="<i4").reshape(NT, NY) * 3 - 100
HEADER = b"RAWFILE\x00" * 4


def _open(fo: Any, group: str | None = None, **options: Any) -> xr.Dataset:
    """Open a reference set the way a user without zarrchive would.

    A nested group is opened by its URL (``reference://a/b``): with ``group=`` zarr lists the
    group through fsspec as "/a/b", which the reference filesystem does not know, so without
    consolidated metadata the group looks empty (a zarr / fsspec interplay, not the export).
    """
    return xr.open_dataset(
        f"reference://{group or ''}",
        engine="zarr",
        backend_kwargs={"consolidated": False, "storage_options": {"fo": fo, **options}},
    ).load()


def _same(repo: zarrchive.Repo, fo: Any, *, consolidated: bool = True, **options: Any) -> None:
    """Every group of the export reads back identical to the repository's own view."""
    for group in (None, "nested", "nested/inner"):
        ours = repo.to_xarray(group).load()
        xr.testing.assert_identical(_open(fo, group, **options), ours)
        if consolidated:  # JSON exports carry .zmetadata, so group= works as usual too
            theirs = xr.open_dataset(
                "reference://",
                engine="zarr",
                group=group,
                backend_kwargs={"storage_options": {"fo": fo}},
            ).load()
            xr.testing.assert_identical(theirs, ours)


@pytest.fixture
def repo(tmp_path: Path) -> zarrchive.Repo:
    """A local repository with native, inline and virtual chunks in nested groups."""
    src = tmp_path / "source.bin"
    src.write_bytes(HEADER + RAW.tobytes())
    repo = zarrchive.Repo.create(tmp_path / "repo", author="tester")
    root = repo.root_group
    root.attrs.update({"title": "export test", "version": 3, "tags": ["a", "b"]})

    temp = root.create_array(
        "temp",
        shape=(NT, NY),
        chunks=(20, 15),
        dtype="f4",
        compressors=ZstdCodec(level=3),
        fill_value=np.nan,
        dimension_names=["time", "lat"],
        attributes={"units": "K", "long_name": "temperature"},
    )
    temp[:20, :] = TEMP[:20]  # native chunks (~1.2 kB each); rows 20.. stay missing (NaN)
    time = root.create_array(
        "time", shape=(NT,), chunks=(NT,), dtype="i8", compressors=GzipCodec(level=6),
        dimension_names=["time"], attributes={"units": "days since 2000-01-01"},
    )  # fmt: skip
    time[:] = np.arange(NT)  # inline (gzip makes it tiny)
    lat = root.create_array(
        "lat", shape=(NY,), chunks=(NY,), dtype="f8", compressors=None,
        dimension_names=["lat"], fill_value=np.nan,
    )  # fmt: skip
    lat[:] = np.linspace(-45, 45, NY)  # inline (240 bytes)
    raw = root.create_array(
        "raw", shape=(NT, NY), chunks=(20, NY), dtype="<i4", compressors=None,
        dimension_names=["time", "lat"],
    )  # fmt: skip
    nbytes = 20 * NY * 4
    repo.set_virtual_refs(
        raw.path,
        np.array([[0, 0], [1, 0]]),
        src.as_uri(),
        len(HEADER) + np.arange(2) * nbytes,
        np.full(2, nbytes),
    )

    nested = root.create_group("nested", attributes={"description": "a nested group"})
    nested.create_array("empty", shape=(5,), chunks=(5,), dtype="i2", dimension_names=["e"])
    inner = nested.create_group("inner", attributes={"level": 2})
    n = 64
    x = inner.create_array(
        "x", shape=(n,), chunks=(n,), dtype="i4", compressors=None, dimension_names=["x"]
    )
    x[:] = np.arange(n)
    blosc = inner.create_array(
        "blosc", shape=(n,), chunks=(32,), dtype="u2", dimension_names=["x"],
        compressors=BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),
    )  # fmt: skip
    blosc[:] = np.arange(n) * 7
    shuffled = inner.create_array(
        "shuffled", shape=(n,), chunks=(16,), dtype="i4", dimension_names=["x"],
        compressors=[nz3.Shuffle(elementsize=4), nz3.Zlib(level=1)],
    )  # fmt: skip
    shuffled[:] = np.arange(n) ** 2
    delta = inner.create_array(
        "delta", shape=(n,), chunks=(n,), dtype="i8", dimension_names=["x"],
        filters=[nz3.Delta(dtype="<i8")], compressors=[ZstdCodec(), Crc32cCodec()],
    )  # fmt: skip
    delta[:] = np.cumsum(np.arange(n))
    big = inner.create_array(
        "big", shape=(n,), chunks=(n,), dtype=">f8", dimension_names=["x"],
        serializer=BytesCodec(endian="big"), compressors=GzipCodec(), fill_value=-9999.5,
    )  # fmt: skip
    big[:] = RNG.normal(size=n)  # ~500 bytes gzipped random doubles: native or inline
    fortran = inner.create_array(
        "fortran", shape=(n, 3), chunks=(32, 3), dtype="f4", dimension_names=["x", "c"],
        filters=[TransposeCodec(order=(1, 0))], compressors=None,
    )  # fmt: skip
    fortran[:] = RNG.normal(size=(n, 3)).astype("f4")  # 384 bytes: inline
    scalar = inner.create_array("scalar", shape=(), dtype="f8", fill_value=np.nan)
    scalar[()] = 3.25
    words = inner.create_array("words", shape=(4,), chunks=(2,), dtype=str, dimension_names=["w"])
    words[:] = np.array(["alpha", "b", "", "delta"])
    repo.commit("everything")
    return repo


def _kinds(repo: zarrchive.Repo, refs: dict[str, Any]) -> dict[str, int]:
    counts = {"native": 0, "inline": 0, "virtual": 0}
    chunks = repo.repository.chunk_storage.root / "chunks"  # type: ignore[attr-defined]
    for key, value in refs["refs"].items():
        if ".z" in key:
            continue
        if isinstance(value, str):
            assert value.startswith("base64:")
            counts["inline"] += 1
        elif value[0].startswith(f"file://{chunks}/"):
            assert value[1] == 0 and value[2] == Path(value[0][7:]).stat().st_size
            counts["native"] += 1
        else:
            counts["virtual"] += 1
    return counts


def test_export_dict_reads_back_identically(repo: zarrchive.Repo) -> None:
    refs = repo.export_kerchunk()
    assert refs["version"] == 1
    r = refs["refs"]
    counts = _kinds(repo, refs)
    assert counts["native"] >= 2 and counts["inline"] >= 5 and counts["virtual"] == 2

    # v2 metadata
    zarray = json.loads(r["temp/.zarray"])
    assert zarray == {
        "zarr_format": 2,
        "shape": [NT, NY],
        "chunks": [20, 15],
        "dtype": "<f4",
        "compressor": {"id": "zstd", "level": 3},
        "fill_value": "NaN",
        "order": "C",
        "filters": None,
        "dimension_separator": ".",
    }
    assert json.loads(r["temp/.zattrs"]) == {
        "units": "K",
        "long_name": "temperature",
        "_ARRAY_DIMENSIONS": ["time", "lat"],
    }
    assert json.loads(r[".zattrs"])["title"] == "export test"
    assert json.loads(r["nested/inner/.zgroup"]) == {"zarr_format": 2}
    assert json.loads(r["nested/inner/.zattrs"]) == {"level": 2}
    blosc = json.loads(r["nested/inner/blosc/.zarray"])
    assert blosc["compressor"] == {
        "id": "blosc",
        "cname": "lz4",
        "clevel": 5,
        "shuffle": 2,
        "blocksize": 0,
    }
    shuffled = json.loads(r["nested/inner/shuffled/.zarray"])
    assert shuffled["filters"] == [{"id": "shuffle", "elementsize": 4}]
    assert shuffled["compressor"] == {"id": "zlib", "level": 1}
    delta = json.loads(r["nested/inner/delta/.zarray"])
    assert delta["filters"] == [{"id": "delta", "dtype": "<i8"}, {"id": "zstd", "level": 0}]
    assert delta["compressor"] == {"id": "crc32c"}
    big = json.loads(r["nested/inner/big/.zarray"])
    assert big["dtype"] == ">f8" and big["fill_value"] == -9999.5
    assert big["compressor"]["id"] == "gzip"
    assert json.loads(r["nested/inner/fortran/.zarray"])["order"] == "F"
    assert json.loads(r["nested/inner/scalar/.zarray"])["chunks"] == []
    assert json.loads(r["nested/inner/scalar/.zattrs"]) == {"_ARRAY_DIMENSIONS": []}
    words = json.loads(r["nested/inner/words/.zarray"])
    assert words["dtype"] == "|O" and words["filters"][0] == {"id": "vlen-utf8"}
    assert json.loads(r["time/.zarray"])["fill_value"] is None  # zero fill -> null

    # chunk keys: v2 "i.j" keys, "0" for 0-d arrays, missing chunks absent
    assert {"temp/0.0", "temp/0.1", "raw/0.0", "raw/1.0", "nested/inner/scalar/0"} <= set(r)
    assert "temp/1.0" not in r
    assert [k for k in r if k.startswith("nested/empty/")] == ["nested/empty/.zarray"] + [
        "nested/empty/.zattrs"
    ]
    assert r["raw/1.0"][1:] == [len(HEADER) + 20 * NY * 4, 20 * NY * 4]

    _same(repo, refs)
    ds = _open(refs)
    np.testing.assert_array_equal(ds.raw.values, RAW)
    np.testing.assert_array_equal(ds.temp.values[:20], TEMP[:20])
    assert np.isnan(ds.temp.values[20:]).all()
    # consolidated metadata works too
    xr.testing.assert_identical(
        xr.open_dataset(
            "reference://", engine="zarr", backend_kwargs={"storage_options": {"fo": refs}}
        ).load(),
        ds,
    )


def test_nonzero_integer_fill_value(tmp_path: Path) -> None:
    # the export keeps a fill value that is not the type's zero: Zarr reads the same values,
    # while xarray, as for any Zarr v2 array, takes it as the missing-value marker
    repo = zarrchive.Repo.create(tmp_path / "r")
    a = repo.root_group.create_array(
        "a", shape=(6,), chunks=(2,), dtype="i2", fill_value=-1, dimension_names=["x"]
    )
    a[:4] = [0, -1, 2, 3]
    repo.commit("fill")
    refs = repo.export_kerchunk()
    assert json.loads(refs["refs"]["a/.zarray"])["fill_value"] == -1
    np.testing.assert_array_equal(repo.to_xarray().a.values, [0, -1, 2, 3, -1, -1])
    fs = fsspec.filesystem("reference", fo=refs)
    v2 = zarr.open_array(fs.get_mapper("a"), mode="r", zarr_format=2)
    np.testing.assert_array_equal(v2[:], [0, -1, 2, 3, -1, -1])
    np.testing.assert_array_equal(_open(refs).a.values, [0, np.nan, 2, 3, np.nan, np.nan])


def test_export_reads_with_fsspec_and_zarr_v2(repo: zarrchive.Repo) -> None:
    refs = repo.export_kerchunk()
    fs = fsspec.filesystem("reference", fo=refs)
    group = zarr.open_group(fs.get_mapper(""), mode="r", zarr_format=2)
    ours = repo.root_group
    for path in ("temp", "time", "lat", "raw", "nested/empty", "nested/inner/x"):
        np.testing.assert_array_equal(group[path][...], ours[path][...])
    inner, ours_inner = group["nested/inner"], ours["nested/inner"]
    for name in ("blosc", "shuffled", "delta", "big", "fortran", "scalar", "words"):
        np.testing.assert_array_equal(inner[name][...], ours_inner[name][...])
        if name != "words":  # Zarr v2 strings are objects
            assert inner[name].dtype.newbyteorder("=") == ours_inner[name].dtype
    assert inner["big"].dtype == np.dtype(">f8")
    assert dict(group.attrs) == dict(ours.attrs)


def test_export_json_file(repo: zarrchive.Repo, tmp_path: Path) -> None:
    target = tmp_path / "out" / "refs.json"
    assert repo.export_kerchunk(target) == target
    refs = json.loads(target.read_text())
    assert refs == json.loads(json.dumps(repo.export_kerchunk()))
    _same(repo, str(target))


def _missing(value: Any) -> bool:
    # fsspec's parquet reader gives a missing chunk's null path as None, or as NaN when
    # pandas >= 3 reads it
    return isinstance(value, list) and not isinstance(value[0], str)


def test_export_parquet(repo: zarrchive.Repo, tmp_path: Path) -> None:
    pytest.importorskip("kerchunk")
    pytest.importorskip("fastparquet")
    from fsspec.implementations.reference import LazyReferenceMapper

    target = str(tmp_path / "refs.parq")
    assert repo.export_kerchunk(target, format="parquet") == target
    assert (tmp_path / "refs.parq" / "temp" / "refs.0.parq").is_file()
    assert (tmp_path / "refs.parq" / "nested" / "inner" / "x" / "refs.0.parq").is_file()

    # the parquet set holds exactly the references of the JSON export
    expected = repo.export_kerchunk()["refs"]
    lazy = LazyReferenceMapper(target)
    for key, value in expected.items():
        if key == ".zmetadata":
            continue
        got = lazy[key]
        if ".z" in key:
            assert json.loads(got) == json.loads(value), key
        elif isinstance(value, str):
            assert got == base64.b64decode(value[len("base64:") :]), key
        else:
            assert got == value, key
    for key in ("temp/1.0", "temp/1.1"):  # not written: null references
        try:
            assert _missing(lazy[key])
        except KeyError:
            pass

    # with every chunk of the arrays present (missing ones trip fsspec under pandas 3, see
    # _missing), it reads back identically; as kerchunk documents for parquet references,
    # name the chunks' protocol, which fsspec otherwise looks for by scanning the references
    repo.root_group["temp"][20:, :] = TEMP[20:]
    repo.commit("fill the rest")
    assert repo.export_kerchunk(target, format="parquet") == target  # replaces the old set
    _same(repo, target, consolidated=False, remote_protocol="file")
    np.testing.assert_array_equal(_open(target, remote_protocol="file").temp.values, TEMP)


def test_export_parquet_refuses_to_clobber(repo: zarrchive.Repo, tmp_path: Path) -> None:
    pytest.importorskip("kerchunk")
    pytest.importorskip("fastparquet")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("...")
    with pytest.raises(InvalidInputError, match="refusing"):
        repo.export_kerchunk(precious, format="parquet")
    assert (precious / "thesis.tex").exists()
    with pytest.raises(InvalidInputError, match="needs a target"):
        repo.export_kerchunk(format="parquet")
    with pytest.raises(InvalidInputError, match="format"):
        repo.export_kerchunk(tmp_path / "x", format="netcdf")


def test_export_older_commit_and_tag(repo: zarrchive.Repo) -> None:
    first = repo.session.snapshot_id
    repo.root_group["temp"][20:, :] = TEMP[20:]
    repo.root_group.attrs["title"] = "second"
    del repo.root_group["nested/inner/words"]
    second = repo.commit("fill the rest")
    repo.tag("v2", second)
    repo.root_group.attrs["title"] = "uncommitted"  # never exported

    old = repo.export_kerchunk(ref=first)
    assert "temp/1.0" not in old["refs"] and "nested/inner/words/.zarray" in old["refs"]
    new = repo.export_kerchunk()
    assert json.loads(new["refs"][".zattrs"])["title"] == "second"
    assert repo.export_kerchunk(ref="v2") == new
    assert repo.export_kerchunk(ref="main") == new
    np.testing.assert_array_equal(_open(new).temp.values, TEMP)

    repo.discard_changes()
    with pytest.warns(UserWarning):
        repo.checkout(first)
    _same(repo, old)
    assert repo.export_kerchunk() == old


def test_memory_repository(tmp_path: Path) -> None:
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    small = repo.root_group.create_array(
        "small", shape=(4,), chunks=(4,), dtype="i4", dimension_names=["x"]
    )
    small[:] = [1, 2, 3, 4]
    repo.commit("inline only")
    refs = repo.export_kerchunk()
    np.testing.assert_array_equal(_open(refs).small.values, [1, 2, 3, 4])

    large = repo.root_group.create_array(
        "large", shape=(1000,), chunks=(1000,), dtype="f8", compressors=None
    )
    large[:] = np.arange(1000.0)
    repo.commit("native")
    with pytest.raises(UnsupportedFeatureError, match="'large'.*in-memory"):
        repo.export_kerchunk()


def test_unsupported_features(tmp_path: Path) -> None:
    repo = zarrchive.Repo.create(tmp_path / "r")
    repo.root_group.create_array("sharded", shape=(8,), chunks=(2,), shards=(4,), dtype="i4")
    repo.commit("sharded")
    with pytest.raises(UnsupportedFeatureError, match="'sharded'.*sharding_indexed"):
        repo.export_kerchunk()


def _node(**meta: Any) -> Node:
    base = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [4],
        "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0.0,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "attributes": {},
    }
    base.update(meta)
    return Node("n", "g/a", "array", base)


@pytest.mark.parametrize(
    ("data_type", "fill", "endian", "dtype", "v2_fill"),
    [
        ("float32", "0x7fc00000", "little", "<f4", "NaN"),
        ("float32", "0x3f800000", "little", "<f4", 1.0),
        ("float64", "-Infinity", "big", ">f8", "-Infinity"),
        ("float16", 2.5, "little", "<f2", 2.5),
        ("complex64", ["NaN", 1.0], "little", "<c8", ["NaN", 1.0]),
        ("int16", -5, "big", ">i2", -5),
        ("uint8", 7, None, "|u1", 7),
        ("bool", True, None, "|b1", True),
        ("bool", False, None, "|b1", None),
        ("r16", [1, 2], None, "|V2", "AQI="),
        (
            {"name": "numpy.datetime64", "configuration": {"unit": "s", "scale_factor": 10}},
            -9223372036854775808,  # NaT, what Zarr reads a null fill as
            "little",
            "<M8[10s]",
            None,
        ),
        (
            {"name": "numpy.timedelta64", "configuration": {"unit": "ms", "scale_factor": 1}},
            5,
            "little",
            "<m8[ms]",
            5,
        ),
        ({"name": "fixed_length_utf32", "configuration": {"length_bytes": 12}}, "ab", "big",
         ">U3", "ab"),
        ({"name": "null_terminated_bytes", "configuration": {"length_bytes": 3}}, "YWI=", None,
         "|S3", "YWI="),
    ],
)  # fmt: skip
def test_dtype_and_fill_conversion(
    data_type: Any, fill: Any, endian: str | None, dtype: str, v2_fill: Any
) -> None:
    codec: dict[str, Any] = {"name": "bytes"}
    if endian:
        codec["configuration"] = {"endian": endian}
    docs = node_metadata_v2(_node(data_type=data_type, fill_value=fill, codecs=[codec]))
    zarray = docs["g/a/.zarray"]
    assert zarray["dtype"] == dtype
    assert zarray["fill_value"] == v2_fill
    np.dtype(dtype)  # a valid numpy / Zarr v2 dtype


def test_xarray_fill_value_attribute() -> None:
    # xarray writes _FillValue into Zarr v3 attributes (floats base64-encoded); Zarr v2 keeps
    # it in fill_value, so xarray masks the same values in both views
    import struct

    enc = base64.standard_b64encode(struct.pack("<d", -999.0)).decode()
    attrs = {"_FillValue": enc, "units": "m"}
    docs = node_metadata_v2(_node(attributes=attrs, fill_value="NaN"))
    assert docs["g/a/.zarray"]["fill_value"] == -999.0
    assert docs["g/a/.zattrs"] == {"units": "m"}  # as xarray writes Zarr v2
    docs = node_metadata_v2(_node(data_type="int32", attributes={"_FillValue": -1}))
    assert docs["g/a/.zarray"]["fill_value"] == -1
    # not xarray's encoding: the attribute stays, the fill value is converted as usual
    docs = node_metadata_v2(_node(attributes={"_FillValue": -5.0}, fill_value="NaN"))
    assert docs["g/a/.zarray"]["fill_value"] == "NaN"
    assert docs["g/a/.zattrs"] == {"_FillValue": -5.0}


@pytest.mark.parametrize(
    ("codecs", "match"),
    [
        ([{"name": "bytes"}, {"name": "mystery"}], "'mystery'"),
        ([{"name": "numcodecs.zfpy", "configuration": {}}], "array-to-bytes codec"),
        (
            [{"name": "transpose", "configuration": {"order": [0]}}, {"name": "bytes"},
             {"name": "transpose", "configuration": {"order": [0]}}],
            "after the array-to-bytes",
        ),
    ],
)  # fmt: skip
def test_unsupported_codecs(codecs: list[dict[str, Any]], match: str) -> None:
    with pytest.raises(UnsupportedFeatureError, match=f"'g/a'.*{match}"):
        node_metadata_v2(_node(codecs=codecs))


def test_unsupported_transpose_and_dtype() -> None:
    perm = [{"name": "transpose", "configuration": {"order": [1, 2, 0]}}, {"name": "bytes"}]
    grid = {"name": "regular", "configuration": {"chunk_shape": [1, 1, 1]}}
    with pytest.raises(UnsupportedFeatureError, match="transpose"):
        node_metadata_v2(_node(shape=[2, 2, 2], chunk_grid=grid, codecs=perm))
    with pytest.raises(UnsupportedFeatureError, match="'structured'"):
        node_metadata_v2(_node(data_type={"name": "structured", "configuration": {}}))


@pytest.mark.parametrize(
    ("data_type", "fill", "v2_fill"),
    [
        ("float64", -0.0, -0.0),
        ("float64", 0, None),
        ("int8", False, None),
        ("bool", 0, None),
        ({"name": "numpy.datetime64", "configuration": {"unit": "s", "scale_factor": 1}}, 0, 0),
        (
            {"name": "numpy.datetime64", "configuration": {"unit": "s", "scale_factor": 1}},
            -9223372036854775808,
            None,
        ),
        ("string", "", None),
        ("string", "AAAA", "AAAA"),
        ({"name": "raw_bytes", "configuration": {"length_bytes": 3}}, "AAAA", None),
        ({"name": "raw_bytes", "configuration": {"length_bytes": 3}}, "AAEA", "AAEA"),
        ("complex128", [0.0, 0.0], None),
        ("complex128", [0.0, "NaN"], [0.0, "NaN"]),
    ],
)
def test_default_fill_value_becomes_null(data_type: Any, fill: Any, v2_fill: Any) -> None:
    # Zarr reads a null v2 fill value as the type's default, which xarray does not take for a
    # missing-value marker; any other fill value is kept
    codecs = [{"name": "vlen-utf8" if data_type == "string" else "bytes"}]
    zarray = node_metadata_v2(_node(data_type=data_type, fill_value=fill, codecs=codecs))
    assert json.dumps(zarray["g/a/.zarray"]["fill_value"]) == json.dumps(v2_fill)


def test_export_s3_native_chunks(s3_server: dict[str, Any]) -> None:
    pytest.importorskip("s3fs")
    from conftest import BUCKET

    location = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    repo = zarrchive.Repo.create(location, storage_options=s3_server)
    v = repo.root_group.create_array(
        "v", shape=(2, 300), chunks=(1, 300), dtype="f8", compressors=None,
        dimension_names=["y", "x"], fill_value=np.nan,
    )  # fmt: skip
    v[:] = np.arange(600.0).reshape(2, 300)
    repo.commit("native on s3")
    refs = repo.export_kerchunk()
    url, offset, length = refs["refs"]["v/1.0"]
    assert url.startswith(f"{location}/chunks/") and (offset, length) == (0, 2400)

    target = f"{location}-export/refs.json"
    assert repo.export_kerchunk(target, storage_options=s3_server) == target
    remote = {**s3_server, "asynchronous": True}
    ds = xr.open_dataset(
        "reference://",
        engine="zarr",
        backend_kwargs={
            "consolidated": False,
            "storage_options": {
                "fo": target,
                "target_options": s3_server,
                "remote_protocol": "s3",
                "remote_options": remote,
            },
        },
    ).load()
    xr.testing.assert_identical(ds, repo.to_xarray().load())


def test_xarray_written_dataset_round_trips(tmp_path: Path) -> None:
    # xarray keeps _FillValue in Zarr v3 attributes; the export moves it to the v2 fill_value
    ds = xr.Dataset(
        {
            "count": ("t", np.array([1, -9, 3, 4], dtype="i4"), {"units": "1"}),
            "level": ("t", np.array([0.5, np.nan, 2.5, 0.0]), {"long_name": "level"}),
            "when": ("t", np.array(["2000-01-01", "NaT", "2000-01-03", "2000-01-04"], "M8[ns]")),
        },
        coords={"t": np.arange(4)},
        attrs={"source": "xarray"},
    )
    ds["count"].encoding["_FillValue"] = -9
    repo = zarrchive.Repo.create(tmp_path / "r")
    ds.to_zarr(repo.store, mode="a", zarr_format=3, consolidated=False)
    repo.commit("from xarray")
    refs = repo.export_kerchunk()
    assert json.loads(refs["refs"]["count/.zarray"])["fill_value"] == -9
    assert "_FillValue" not in json.loads(refs["refs"]["count/.zattrs"])
    ours = repo.to_xarray().load()
    xr.testing.assert_identical(_open(refs), ours)
    assert np.isnan(ours["count"].values[1])  # masked in both views
