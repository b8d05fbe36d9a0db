"""Kerchunk reference sets imported as virtual chunks: round trips, reference-set forms, errors.

Every round trip compares three readings of the same file: zarrchive (the committed
repository through xarray's zarr v3 backend), the file itself through xarray's own engine
(netCDF4, h5netcdf, scipy) and the same reference set through fsspec's ReferenceFileSystem
(xarray's zarr v2 backend). Where the readings differ for a reason outside zarrchive (kerchunk's
metadata, xarray's handling of JSON attributes), the test says so with an explicit assertion.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import warnings
import zlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zstandard

import zarrchive
from zarrchive import InvalidInputError, NotFoundError, UnsupportedFeatureError

from .conftest import memory_repo, native, ours, read_fresh, repo_state, run_fresh_reader

pytestmark = pytest.mark.filterwarnings(
    # zarr: fixed-width bytes (netCDF char variables) have no Zarr v3 spec yet
    "ignore:The data type .* does not have a Zarr V3 specification:UserWarning",
    "ignore::zarr.errors.UnstableSpecificationWarning",
    "ignore:.*Consolidated metadata.*:UserWarning",
    "ignore::RuntimeWarning",
    "ignore:Numcodecs codecs are not in the Zarr version 3",
    # kerchunk.df writes parquet through fsspec with pandas' fastparquet engine
    "ignore:The 'fastparquet' engine is deprecated",
    "ignore:The 'future.infer_string' option is deprecated",
)


# ---------------------------------------------------------------------- helpers
def open_refs(refs: Any, group: str | None = None, **fs_options: Any) -> xr.Dataset:
    """The reference set read by fsspec's ReferenceFileSystem and xarray's zarr v2 backend.

    A group is opened as ``reference://GROUP`` rather than ``group=GROUP``: zarr's FsspecStore
    at root path "" lists ``/GROUP``, which ReferenceFileSystem does not know, and so returns
    an empty group.
    """
    url = f"reference://{group}" if group else "reference://"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_dataset(
            url,
            engine="zarr",
            backend_kwargs={
                "consolidated": False,
                "storage_options": {"fo": refs, **fs_options},
            },
        ).load()


def hdf5_refs(path: Path | str, **kw: Any) -> dict[str, Any]:
    kerchunk_hdf = pytest.importorskip("kerchunk.hdf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kerchunk_hdf.SingleHdf5ToZarr(str(path), inline_threshold=0, **kw).translate()


# ---------------------------------------------------------------------- source files
def write_netcdf4(path: Path) -> Path:
    """A NetCDF4 file with every feature the round trip checks."""
    rng = np.random.default_rng(0)
    precip = np.arange(120.0).reshape(6, 4, 5)
    precip[precip % 7 == 0] = np.nan
    ds = xr.Dataset(
        {
            "temp": (("time", "lat", "lon"), rng.normal(280, 5, (6, 4, 5)).astype("f4")),
            "precip": (("time", "lat", "lon"), precip),
            "fill": (("station",), np.array([1.0, np.nan, 3.0])),
            "count": (("time",), np.array([1, 2, -1, 4, 5, 6], dtype="i4")),
            "packed": (("lat", "lon"), np.linspace(0, 10, 20).reshape(4, 5)),
            "packed32": (("station",), np.array([1.5, 2.25, 3.0])),
            "scalar": ((), np.float64(3.5)),
            "label": (("lat",), np.array([b"a", b"bb", b"ccc", b"dddd"], dtype="S4")),
            "name": (("station",), np.array(["alpha", "beta", "gamma"], dtype=object)),
            "chk": (("station",), np.array([1.0, 2.0, 3.0], dtype="f4")),
        },
        coords={
            "time": pd.date_range("2000-01-01", periods=6, freq="D"),
            "lat": np.arange(4.0),
            "lon": np.arange(5.0) * 10,
        },
        attrs={"title": "round trip", "version": 3, "levels": [1, 2, 3]},
    )
    ds["temp"].attrs.update(units="K", long_name="air temperature")
    ds["count"].attrs["_FillValue"] = np.int32(-1)
    encoding = {
        "temp": {"zlib": True, "shuffle": True, "complevel": 4, "chunksizes": (2, 4, 5)},
        "precip": {"_FillValue": np.nan, "contiguous": True},
        "fill": {"_FillValue": -999.0},
        "count": {"dtype": "i4"},
        "packed": {"dtype": "i2", "scale_factor": 0.01, "add_offset": 5.0, "_FillValue": -9999},
        "packed32": {
            "dtype": "i2",
            "scale_factor": np.float32(0.25),
            "add_offset": np.float32(1.0),
            "_FillValue": np.int16(-1),
        },
        "chk": {"fletcher32": True, "zlib": True, "chunksizes": (3,)},
        "time": {"units": "days since 1999-12-31", "calendar": "noleap"},
    }
    ds.to_netcdf(path, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return path


def write_hdf5(path: Path) -> Path:
    """A plain HDF5 file written with h5py: groups, attributes, compressed datasets."""
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "plain hdf5"
        f.attrs["int_attr"] = np.int32(7)
        f.attrs["arr_attr"] = np.array([1.5, 2.5])
        x = f.create_dataset("x", data=np.arange(5.0) + 0.5, fillvalue=np.nan)
        x.make_scale("x")
        y = f.create_dataset("y", data=np.array([10, 20, 30], dtype="i8"), fillvalue=-1)
        y.make_scale("y")
        top = f.create_dataset(
            "top",
            data=np.arange(1, 25, dtype="i4").reshape(4, 6),
            chunks=(2, 3),
            compression="gzip",
            shuffle=True,
            fillvalue=-1,
        )
        top.attrs["units"] = "counts"
        # h5py's default fill value is 0, and this dataset holds a 0: see the test
        f.create_dataset("zeros", data=np.array([0, 1, 2, 3], dtype="i2"))
        g = f.create_group("grp")
        g.attrs["description"] = "a group"
        data = g.create_dataset(
            "data",
            data=np.linspace(0, 1, 15).reshape(5, 3),
            chunks=(5, 1),
            compression="gzip",
            compression_opts=6,
            fillvalue=np.nan,
        )
        data.attrs["units"] = "m"
        data.dims[0].attach_scale(x)
        data.dims[1].attach_scale(y)
        contig = g.create_dataset("contig", data=np.arange(1, 6, dtype="f4"), fillvalue=np.nan)
        contig.dims[0].attach_scale(x)
        sub = g.create_group("sub")
        sub.attrs["level"] = 2
        sub.create_dataset(
            "fl", data=np.array([1.0, 2.0, 3.0]), chunks=(3,), fletcher32=True, fillvalue=np.nan
        )
        sub.create_dataset("scalar", data=np.float32(2.5), fillvalue=np.nan)
    return path


def write_netcdf3(path: Path) -> Path:
    ds = xr.Dataset(
        {
            "tas": (("time", "y", "x"), np.arange(24, dtype="f4").reshape(4, 2, 3)),
            "pr": (("time",), np.array([0.5, np.nan, 1.5, 2.0])),
            "flag": (("y", "x"), np.array([[1, -99, 3], [4, 5, 6]], dtype="i2")),
            "packed": (("time",), np.array([10.0, 20.0, 30.0, 40.0])),
            "scalar": ((), np.int32(42)),
            "label": (("y",), np.array([b"ab", b"c"], dtype="S2")),
        },
        coords={
            "time": pd.date_range("2001-01-01", periods=4, freq="6h"),
            "y": [0.5, 1.5],
            "x": np.array([1, 2, 3], dtype="i4"),
        },
        attrs={"Conventions": "CF-1.8", "history": "written by a test"},
    )
    ds["tas"].attrs["units"] = "K"
    encoding = {
        "flag": {"_FillValue": np.int16(-99)},
        "packed": {"dtype": "i2", "scale_factor": 0.5, "add_offset": 10.0},
        "time": {"units": "hours since 2001-01-01", "calendar": "gregorian"},
    }
    ds.to_netcdf(path, engine="scipy", format="NETCDF3_64BIT", encoding=encoding)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("sources")
    return {
        "nc4": write_netcdf4(d / "data.nc"),
        "h5": write_hdf5(d / "plain.h5"),
        "nc3": write_netcdf3(d / "classic.nc"),
    }


@pytest.fixture(scope="module")
def nc4_refs(files: dict[str, Path]) -> dict[str, Any]:
    # fletcher32 is not a filter kerchunk can express: it inlines such datasets when they are
    # smaller than unsupported_inline_threshold (and drops them otherwise)
    return hdf5_refs(files["nc4"], unsupported_inline_threshold=10_000)


# ---------------------------------------------------------------------- round trips
def test_netcdf4_round_trip(
    location: tuple[str, dict[str, Any] | None],
    files: dict[str, Path],
    nc4_refs: dict[str, Any],
) -> None:
    url, options = location
    repo = zarrchive.Repo.create(url, storage_options=options, author="tester")
    summary = repo.add_kerchunk_references(nc4_refs, "nc")
    assert summary.arrays == 13 and summary.sources == 1
    repo.commit("import netcdf4")

    got = ours(repo, "nc")
    file = native(files["nc4"], "netcdf4")
    via_refs = open_refs(nc4_refs)

    xr.testing.assert_identical(got, via_refs)
    xr.testing.assert_identical(got, file)

    # assert_identical does not compare dtypes: do it here
    for name in got.variables:
        if name in ("label", "name", "packed32"):
            continue
        assert got[name].dtype == file[name].dtype == via_refs[name].dtype, name
    # packed with float32 scale_factor/add_offset: netCDF4 unpacks to float32, but in the
    # reference set (JSON) the attributes are plain floats, so xarray unpacks to float64 -
    # through zarrchive exactly as through fsspec
    assert file["packed32"].dtype == np.float32
    assert got["packed32"].dtype == via_refs["packed32"].dtype == np.float64
    np.testing.assert_array_equal(got["packed32"].values, file["packed32"].values)
    # char variable: kerchunk records fill_value b" "; xarray's zarr v2 backend masks with it
    # (object dtype), its v3 backend cannot decode a bytes _FillValue at all, so zarrchive
    # leaves it out and gets netCDF4's |S4
    assert got["label"].dtype == file["label"].dtype == np.dtype("S4")
    assert via_refs["label"].dtype == object
    # variable-length strings: numpy StringDType from zarr (v2 and v3), <U from netCDF4
    assert got["name"].dtype == via_refs["name"].dtype
    assert got["name"].values.tolist() == ["alpha", "beta", "gamma"]

    # the decoding facts that make those equalities meaningful
    assert np.isnan(got["precip"].values).sum() == np.isnan(file["precip"].values).sum() > 0
    assert np.isnan(got["count"].values[2]) and np.isnan(got["fill"].values[1])
    assert got["time"].encoding["calendar"] == "noleap"
    assert got["time"].encoding["units"] == "days since 1999-12-31"
    assert got["packed"].encoding["scale_factor"] == 0.01
    assert got["scalar"].shape == () and float(got["scalar"]) == 3.5
    assert got.attrs == {"title": "round trip", "version": 3, "levels": [1, 2, 3]}
    # zlib + shuffle chunks are virtual, with the file's own codecs
    temp = repo.root_group["nc/temp"]
    assert temp.chunks == (2, 4, 5)
    codecs = json.loads(json.dumps(temp.metadata.to_dict()["codecs"]))
    assert [c["name"] for c in codecs] == ["bytes", "numcodecs.shuffle", "numcodecs.zlib"]


def test_plain_hdf5_round_trip(files: dict[str, Path]) -> None:
    refs = hdf5_refs(files["h5"], unsupported_inline_threshold=10_000)
    repo = memory_repo()
    repo.add_kerchunk_references(refs, "h5")
    repo.commit("import hdf5")

    for group in (None, "grp", "grp/sub"):
        got = ours(repo, f"h5/{group}" if group else "h5")
        file = native(files["h5"], "h5netcdf", group, phony_dims="sort")
        via_refs = open_refs(refs, group)
        xr.testing.assert_identical(got, via_refs)
        if group is None:
            # h5py's default fill value 0 becomes kerchunk's zarr fill_value 0, which xarray
            # masks (through zarrchive as through fsspec); h5netcdf does not mask it
            assert got["zeros"].values.tolist()[1:] == [1.0, 2.0, 3.0]
            assert np.isnan(got["zeros"].values[0]) and np.isnan(via_refs["zeros"].values[0])
            assert file["zeros"].values.tolist() == [0, 1, 2, 3]
            got, file = got.drop_vars("zeros"), file.drop_vars("zeros")
        # datasets without dimension scales get "phony" dimensions: h5netcdf numbers them
        # across the file, kerchunk per dataset axis; the names aside, all else must agree
        phony = {
            theirs: mine
            for name, var in file.variables.items()
            for mine, theirs in zip(got[name].dims, var.dims, strict=True)
            if theirs.startswith("phony_dim_")
        }
        xr.testing.assert_identical(got, file.rename_dims(phony))
        for name in got.variables:
            assert got[name].dtype == via_refs[name].dtype, name

    root = ours(repo, "h5")
    # an integer dataset with an HDF5 fill value is masked, hence float64 (as with fsspec)
    assert root["top"].dtype == np.float64 and root["top"].attrs == {"units": "counts"}
    assert root.attrs["arr_attr"] == [1.5, 2.5] and root.attrs["int_attr"] == 7
    sub = ours(repo, "h5/grp/sub")
    assert sub["scalar"].shape == () and float(sub["scalar"]) == 2.5
    np.testing.assert_array_equal(sub["fl"].values, [1.0, 2.0, 3.0])  # fletcher32, inlined
    grp = ours(repo, "h5/grp")
    assert grp["data"].dims == ("x", "y") and grp["contig"].dims == ("x",)


def test_netcdf3_round_trip(files: dict[str, Path]) -> None:
    kerchunk_nc3 = pytest.importorskip("kerchunk.netCDF3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refs = kerchunk_nc3.NetCDF3ToZarr(str(files["nc3"]), inline_threshold=0).translate()
    repo = memory_repo()
    repo.add_kerchunk_references(refs, "classic")
    repo.commit("import netcdf3")
    got = ours(repo, "classic")
    file = native(files["nc3"], "scipy")
    via_refs = open_refs(refs)
    xr.testing.assert_identical(got, file)
    xr.testing.assert_identical(got, via_refs)
    for name in got.variables:
        assert got[name].dtype == file[name].dtype == via_refs[name].dtype, name
    # big-endian NetCDF3 data, char variable, 0-d scalar, int with fill value, time
    codecs = list(repo.root_group["classic/tas"].metadata.to_dict()["codecs"])
    assert codecs == [{"name": "bytes", "configuration": {"endian": "big"}}]
    assert got["label"].values.tolist() == [b"ab", b"c"]
    assert int(got["scalar"]) == 42 and np.isnan(got["flag"].values[0, 1])
    assert got["time"].encoding["units"] == "hours since 2001-01-01"


def test_fresh_reader_in_a_subprocess(
    tmp_path: Path, files: dict[str, Path], nc4_refs: dict[str, Any]
) -> None:
    location = tmp_path / "repo"
    repo = zarrchive.Repo.create(location, author="tester")
    repo.add_kerchunk_references(nc4_refs, "nc")
    repo.commit("import")
    out = tmp_path / "ds.pickle"
    container = files["nc4"].parent.as_uri() + "/"
    ds = read_fresh(location, container, ["nc"], out)["nc"]
    xr.testing.assert_identical(ds, native(files["nc4"], "netcdf4"))
    xr.testing.assert_identical(ds, ours(repo, "nc"))

    # the same reader without authorisation gets a clear error, not data or fill values
    denied = run_fresh_reader(location, container, ["nc"], out, authorize=False)
    assert denied.returncode != 0
    assert "UnauthorizedSourceError" in denied.stderr and "authorize_virtual" in denied.stderr


# ---------------------------------------------------------------------- reference-set forms
def _v0(refs: dict[str, Any]) -> dict[str, Any]:
    assert refs["version"] == 1 and not refs.get("templates") and not refs.get("gen")
    return dict(refs["refs"])


def _consolidated(refs: dict[str, Any]) -> dict[str, Any]:
    """The same set with every metadata document only in ``.zmetadata``."""
    flat = _v0(refs)
    meta = {
        k: json.loads(v)
        for k, v in flat.items()
        if k.rpartition("/")[2] in (".zarray", ".zattrs", ".zgroup")
    }
    out = {k: v for k, v in flat.items() if k not in meta}
    out[".zmetadata"] = json.dumps({"zarr_consolidated_format": 1, "metadata": meta})
    return out


@pytest.mark.parametrize(
    "form",
    [
        "dict",
        "dict-v0",
        "json-str",
        "json-path",
        "json.gz",
        "json.zst",
        "parquet",
        "zmetadata",
        "zmetadata-file",
    ],
)
def test_reference_set_forms(
    form: str, tmp_path: Path, files: dict[str, Path], nc4_refs: dict[str, Any]
) -> None:
    refs: Any
    if form == "dict":
        refs = nc4_refs
    elif form == "dict-v0":
        refs = _v0(nc4_refs)
    elif form in ("json-str", "json-path"):
        p = tmp_path / "refs.json"
        p.write_text(json.dumps(nc4_refs))
        refs = str(p) if form == "json-str" else p
    elif form == "json.gz":
        refs = tmp_path / "refs.json.gz"
        refs.write_bytes(gzip.compress(json.dumps(nc4_refs).encode()))
        with pytest.raises(UnicodeDecodeError):
            refs.read_text()  # really compressed
    elif form == "json.zst":
        refs = str(tmp_path / "refs.json.zst")
        Path(refs).write_bytes(zstandard.ZstdCompressor().compress(json.dumps(nc4_refs).encode()))
    elif form == "parquet":
        refs = str(tmp_path / "refs.parq")
        # small records: several files per array, the last one padded
        pytest.importorskip("kerchunk.df").refs_to_dataframe(nc4_refs, refs, record_size=2)
        assert len(os.listdir(Path(refs) / "temp")) == 2
    elif form == "zmetadata":
        refs = _consolidated(nc4_refs)
    else:
        refs = tmp_path / "consolidated.json"
        refs.write_text(json.dumps(_consolidated(nc4_refs)))

    repo = memory_repo()
    summary = repo.add_kerchunk_references(refs, "nc")
    assert summary.arrays == 13 and summary.references > 0
    repo.commit(f"import {form}")
    got = ours(repo, "nc")
    xr.testing.assert_identical(got, native(files["nc4"], "netcdf4"))
    xr.testing.assert_identical(got, open_refs(nc4_refs))
    reference = memory_repo()
    reference.add_kerchunk_references(nc4_refs, "nc")
    for name in got.variables:
        assert got[name].dtype == ours(reference, "nc")[name].dtype, name


@pytest.fixture
def handmade(tmp_path: Path) -> dict[str, Any]:
    """Raw source files and the values a hand-written reference set must give."""
    a = np.arange(12, dtype="<f8")
    (tmp_path / "raw.bin").write_bytes(b"HEADER--" + a.tobytes())
    b0, b1 = np.array([1, 2, 3], "<i4"), np.array([4, 5, 6], "<i4")
    (tmp_path / "b0.bin").write_bytes(zlib.compress(b0.tobytes()))
    (tmp_path / "b1.bin").write_bytes(zlib.compress(b1.tobytes()))
    return {
        "dir": tmp_path,
        "a": a,
        "b": np.concatenate([b0, b1]),
        "c": np.array([*b"text", 0, 1, 255, 128], dtype="u1"),
    }


def _zarray(shape: list[int], chunks: list[int], dtype: str, compressor: Any = None) -> str:
    return json.dumps(
        {
            "shape": shape,
            "chunks": chunks,
            "dtype": dtype,
            "fill_value": None,
            "order": "C",
            "filters": None,
            "compressor": compressor,
            "zarr_format": 2,
        }
    )


def test_templates_gen_inline_and_whole_object_refs(handmade: dict[str, Any]) -> None:
    d: Path = handmade["dir"]
    refs = {
        "version": 1,
        "templates": {"raw": (d / "raw.bin").as_uri(), "dir": d.as_uri()},
        "gen": [
            {
                "key": "a/{{i}}",
                "url": "{{raw}}",
                "offset": "{{8 + i * 32}}",
                "length": "32",
                "dimensions": {"i": {"stop": 2}},
            }
        ],
        "refs": {
            ".zgroup": json.dumps({"zarr_format": 2}),
            ".zattrs": json.dumps({"source": "handmade"}),
            "a/.zarray": _zarray([12], [4], "<f8"),
            "a/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["i"]}),
            # the gen entry covers chunks 0-1; a template ref gives the last one
            "a/2": ["{{raw}}", 8 + 2 * 32, 32],
            "b/.zarray": _zarray([6], [3], "<i4", {"id": "zlib", "level": 6}),
            "b/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["j"]}),
            "b/0": ["{{dir}}/b0.bin"],  # whole objects
            "b/1": [str(d / "b1.bin")],
            "c/.zarray": _zarray([8], [4], "|u1"),
            "c/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["k"]}),
            "c/0": "text",  # inline text
            "c/1": "base64:" + base64.b64encode(bytes([0, 1, 255, 128])).decode(),
        },
    }
    repo = memory_repo()
    summary = repo.add_kerchunk_references(refs, "hand")
    assert summary.arrays == 3 and summary.sources == 3
    # whole-object sizes come from the stat at import
    assert (
        summary.bytes_referenced
        == 3 * 32 + sum((d / f).stat().st_size for f in ("b0.bin", "b1.bin")) + 8
    )
    repo.commit("handmade")
    got = ours(repo, "hand")
    for name in ("a", "b", "c"):
        np.testing.assert_array_equal(got[name].values, handmade[name])
    assert got.attrs == {"source": "handmade"}
    # fsspec ignores "gen" unless told not to use simple templates
    via_refs = open_refs(refs, simple_templates=False)
    xr.testing.assert_identical(got, via_refs)
    g = repo.root_group
    np.testing.assert_array_equal(g["hand/c"][:], handmade["c"])
    np.testing.assert_array_equal(g["hand/b"][2:5], handmade["b"][2:5])


def test_relative_urls_resolve_against_the_reference_file(handmade: dict[str, Any]) -> None:
    d: Path = handmade["dir"]
    refs = {
        ".zgroup": json.dumps({"zarr_format": 2}),
        "a/.zarray": _zarray([12], [12], "<f8"),
        "a/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["i"]}),
        "a/0": ["raw.bin", 8, 96],
    }
    (d / "refs.json").write_text(json.dumps(refs))
    pytest.importorskip("kerchunk.df").refs_to_dataframe(refs, str(d / "refs.parq"))
    for form in ("refs.json", "refs.parq"):
        repo = memory_repo()
        cwd = os.getcwd()
        os.chdir("/")  # relative to the reference set, not to the working directory
        try:
            repo.add_kerchunk_references(str(d / form), "x")
        finally:
            os.chdir(cwd)
        np.testing.assert_array_equal(repo.root_group["x/a"][:], handmade["a"])


# ---------------------------------------------------------------------- errors
@pytest.fixture
def busy_repo(tmp_path: Path, handmade: dict[str, Any]) -> tuple[zarrchive.Repo, Path]:
    """A local repository with one commit and uncommitted virtual data."""
    location = tmp_path / "repo"
    repo = zarrchive.Repo.create(location, author="tester")
    repo.root_group.attrs["v"] = 1
    repo.commit("first")
    refs = {
        ".zgroup": json.dumps({"zarr_format": 2}),
        "a/.zarray": _zarray([12], [12], "<f8"),
        "a/0": [str(handmade["dir"] / "raw.bin"), 8, 96],
    }
    repo.add_kerchunk_references(refs, "pending")
    assert repo.status().has_changes
    return repo, location


def _error_cases(d: Path) -> list[tuple[str, Any, type[Exception], list[str]]]:
    good = [str(d / "raw.bin"), 8, 96]
    group = {".zgroup": json.dumps({"zarr_format": 2})}
    (d / "bad.json").write_text('{".zgroup": "{\\"zarr_format\\": 2}", ')
    (d / "list.json").write_text("[1, 2, 3]")
    return [
        (
            "unknown compressor",
            {
                **group,
                "x/.zarray": _zarray([12], [12], "<f8", {"id": "no-such-codec"}),
                "x/0": good,
            },
            UnsupportedFeatureError,
            ["/x", "no-such-codec"],
        ),
        (
            "unknown filter",
            {
                **group,
                "deep/y/.zarray": json.dumps(
                    {
                        **json.loads(_zarray([12], [12], "<f8")),
                        "filters": [{"id": "frobnicate", "level": 1}],
                    }
                ),
                "deep/y/0": good,
            },
            UnsupportedFeatureError,
            ["/deep/y", "frobnicate"],
        ),
        (
            "key that is neither metadata nor a chunk",
            {**group, "x/.zarray": _zarray([12], [12], "<f8"), "x/0": good, "x/extra": "data"},
            UnsupportedFeatureError,
            ["x/extra"],
        ),
        (
            "chunk key outside any array",
            {**group, "x/.zarray": _zarray([12], [12], "<f8"), "x/0": good, "y/0": good},
            UnsupportedFeatureError,
            ["y/0"],
        ),
        (
            "chunk outside the grid",
            {**group, "x/.zarray": _zarray([12], [12], "<f8"), "x/0": good, "x/1": good},
            InvalidInputError,
            ["x/1"],
        ),
        (
            "range past the end of the file",
            {**group, "x/.zarray": _zarray([12], [12], "<f8"), "x/0": [good[0], 8, 97]},
            InvalidInputError,
            ["raw.bin", "8-105", "104 bytes"],
        ),
        (
            "missing source",
            {
                **group,
                "x/.zarray": _zarray([12], [12], "<f8"),
                "x/0": good,
                "z/.zarray": _zarray([4], [4], "<f8"),
                "z/0": [str(d / "gone.bin"), 0, 32],
            },
            NotFoundError,
            ["gone.bin"],
        ),
        ("invalid JSON file", str(d / "bad.json"), InvalidInputError, ["bad.json", "JSON"]),
        ("JSON that is not an object", d / "list.json", InvalidInputError, ["list.json"]),
        ("missing reference file", str(d / "nope.json"), NotFoundError, ["nope.json"]),
        (
            "unsupported spec version",
            {"version": 2, "refs": {}},
            UnsupportedFeatureError,
            ["version 2"],
        ),
    ]


def test_errors_leave_the_repository_unchanged(busy_repo: tuple[zarrchive.Repo, Path]) -> None:
    repo, location = busy_repo
    d = location.parent
    before = repo_state(repo, location)
    pending = repo.root_group["pending/a"][:]
    for label, refs, error, words in _error_cases(d):
        with pytest.raises(error) as info:
            repo.add_kerchunk_references(refs, "new")
        for w in words:
            assert w in str(info.value), (label, str(info.value))
        assert repo_state(repo, location) == before, label
        # importing over an existing path with overwrite fails the same way
        with pytest.raises(error):
            repo.add_kerchunk_references(refs, "pending", overwrite=True)
        assert repo_state(repo, location) == before, label
    np.testing.assert_array_equal(repo.root_group["pending/a"][:], pending)
    # and the session still commits what it had
    repo.commit("pending")
    assert sorted(k for k, _ in repo.root_group.members(max_depth=None)) == [
        "pending",
        "pending/a",
    ]


def test_import_over_an_existing_path_needs_overwrite(
    busy_repo: tuple[zarrchive.Repo, Path], handmade: dict[str, Any]
) -> None:
    repo, location = busy_repo
    before = repo_state(repo, location)
    refs = {
        ".zgroup": json.dumps({"zarr_format": 2}),
        "b/.zarray": _zarray([12], [12], "<f8"),
        "b/0": [str(handmade["dir"] / "raw.bin"), 8, 96],
    }
    with pytest.raises(InvalidInputError, match="already exists"):
        repo.add_kerchunk_references(refs, "pending")
    assert repo_state(repo, location) == before
    repo.add_kerchunk_references(refs, "pending", overwrite=True)
    assert sorted(k for k, _ in repo.root_group.members(max_depth=None)) == [
        "pending",
        "pending/b",
    ]


def test_import_at_root_over_existing_arrays_needs_overwrite(handmade: dict[str, Any]) -> None:
    raw = str(handmade["dir"] / "raw.bin")
    first = {
        ".zgroup": json.dumps({"zarr_format": 2}),
        "a/.zarray": _zarray([12], [4], "<f8"),
        **{f"a/{i}": [raw, 8 + 32 * i, 32] for i in range(3)},
    }
    second = {
        ".zgroup": json.dumps({"zarr_format": 2}),
        "a/.zarray": _zarray([12], [4], "<f8"),
        "a/0": [raw, 8 + 64, 32],
    }
    repo = memory_repo()
    repo.add_kerchunk_references(first, "")
    repo.commit("first")
    before = repo_state(repo)
    with pytest.raises(InvalidInputError, match="already exists"):
        repo.add_kerchunk_references(second, "")
    assert repo_state(repo) == before
    np.testing.assert_array_equal(repo.root_group["a"][:], handmade["a"])
