"""HDF5 and NetCDF4 files imported as virtual chunks (``zarrchive.importers.hdf5``).

Every round trip compares zarrchive (the repository through xarray's zarr v3 backend, and
through zarr) with the file's own readers: xarray's ``netcdf4`` and ``h5netcdf`` engines
(``xr.testing.assert_identical`` after ``.load()``: values, dims, coordinates, decoded
attributes; dtypes separately) and h5py (the values of every dataset). Where the readings
differ for a reason outside zarrchive (JSON has no float32), the test says so explicitly.
The HDF5 C library may crash on corrupt files, so the fuzz runs in subprocesses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401 - h5py reads the samples' blosc / zstd / lz4 datasets
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import zarrchive
from conftest import BUCKET
from zarrchive import InvalidInputError, NotFoundError, UnsupportedFeatureError
from zarrchive._sync import sync
from zarrchive.format import INLINE, VIRTUAL
from zarrchive.importers import hdf5

from .conftest import memory_repo, native, ours, read_fresh, repo_state, scan_local

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
NC4 = SAMPLES / "netcdf4_sample.nc"
H5 = SAMPLES / "hdf5_sample.h5"
UNSUPPORTED = SAMPLES / "hdf5_unsupported.h5"

pytestmark = pytest.mark.filterwarnings(
    "ignore:The data type .* does not have a Zarr V3 specification:UserWarning",
    "ignore::zarr.errors.UnstableSpecificationWarning",
    "ignore:.*Consolidated metadata.*:UserWarning",
    "ignore::RuntimeWarning",
    "ignore:Numcodecs codecs are not in the Zarr version 3",
)


# ---------------------------------------------------------------------- helpers
def h5_reference(ds: h5py.Dataset) -> np.ndarray:
    """What h5py reads (variable-length strings as str)."""
    info = h5py.check_string_dtype(ds.dtype)
    if info is not None and info.length is None:
        return np.asarray(ds.asstr()[()], dtype=object)
    return np.asarray(ds[()])


def is_variable(ds: h5py.Dataset) -> bool:
    name = ds.attrs.get("NAME", b"")
    return not (isinstance(name, bytes) and name.startswith(b"This is a netCDF dimension"))


def assert_every_dataset(repo: zarrchive.Repo, prefix: str, path: Path) -> int:
    """zarr reads of every imported dataset equal h5py's (and the fill value beyond a
    dataset shorter than its NetCDF dimension). Returns how many were compared."""
    group = repo.root_group
    compared = 0
    with h5py.File(path) as f:
        names: list[str] = []
        f.visititems(
            lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and is_variable(o) else None
        )
        for link in ("link_to_grid",):
            if link in f:
                names.append(link)
        for name in names:
            ds = f[name]
            got = np.asarray(group[f"{prefix}/{name}"][...])
            want = h5_reference(ds)
            inside = tuple(slice(0, s) for s in want.shape)
            np.testing.assert_array_equal(got[inside], want, err_msg=name)
            if got.shape != want.shape:
                rest = np.ones(got.shape, dtype=bool)
                rest[inside] = False
                assert (got[rest] == ds.fillvalue).all(), name
            if want.dtype.kind != "O":
                assert got.dtype == want.dtype.newbyteorder("="), name
            compared += 1
    return compared


# ---------------------------------------------------------------------- round trips
NC4_GROUPS = ("", "forecast", "forecast/member")


def test_netcdf4_round_trip(location: tuple[str, dict[str, Any] | None]) -> None:
    url, options = location
    repo = zarrchive.Repo.create(url, storage_options=options, author="tester")
    summary = repo.add_virtual_netcdf(NC4, "nc")
    assert summary.arrays == 17 and summary.groups == 3 and summary.sources == 1
    repo.commit("import netcdf4")

    for group in NC4_GROUPS:
        got = ours(repo, f"nc/{group}" if group else "nc")
        for engine in ("netcdf4", "h5netcdf"):
            file = native(NC4, engine, group)
            if group == "":
                # float32 scale_factor / add_offset: the file's readers unpack to float32;
                # in JSON the attributes are plain numbers, so xarray unpacks to float64
                assert file["packed32"].dtype == np.float32
                assert got["packed32"].dtype == np.float64
                np.testing.assert_allclose(
                    got["packed32"].values, file["packed32"].values, rtol=1e-6
                )
                assert np.isnan(got["packed32"].values[1])
                assert got["packed32"].attrs == file["packed32"].attrs
                assert got["packed32"].encoding["scale_factor"] == float(np.float32(0.1))
                cmp_got, file = got.drop_vars("packed32"), file.drop_vars("packed32")
            else:
                cmp_got = got
            xr.testing.assert_identical(cmp_got, file)
            for name in cmp_got.variables:
                assert cmp_got[name].dtype == file[name].dtype, (group, engine, name)

    got = ours(repo, "nc")
    # the decoding facts that make those equalities meaningful
    assert got["time"].encoding["calendar"] == "noleap"
    assert got["time"].encoding["units"] == "days since 2000-01-01"
    assert got["packed"].encoding["scale_factor"] == 0.01
    assert np.isnan(got["packed"].values[1, 2]) and np.isnan(got["count"].values[2])
    assert np.isnan(got["precip"].values).sum() == 3
    assert got["scalar"].shape == () and float(got["scalar"]) == 3.5
    assert got["label"].values.tolist() == [b"alpha", b"beta", b"gamma"]
    # an unlimited dimension longer than the dataset: the rest reads as (masked) fill
    unwritten = got["unwritten"].values
    assert unwritten.shape == (6, 4) and np.isnan(unwritten[1:]).all()
    np.testing.assert_array_equal(unwritten[0], np.arange(4))
    assert np.isnan(got.attrs["nan_attr"])
    assert got.attrs["levels"] == [1, 2, 3] and got.attrs["version"] == 3
    assert "nv" not in got.variables and got["lat_bnds"].dims == ("lat", "nv")
    assert "_NCProperties" not in got.attrs and "DIMENSION_LIST" not in got["temp"].attrs
    member = ours(repo, "nc/forecast/member")
    assert member["ens"].dims == ("number", "step") and np.isnan(member["ens"].values[0, 1])

    def codecs(path: str) -> list[str]:
        meta = json.loads(json.dumps(repo.root_group[path].metadata.to_dict()))
        return [c["name"] for c in meta["codecs"]]

    assert repo.root_group["nc/temp"].chunks == (2, 4, 5)
    assert codecs("nc/temp") == ["bytes", "numcodecs.shuffle", "numcodecs.zlib"]
    # netCDF-C puts fletcher32 first in the pipeline: the checksum is of the raw bytes
    assert codecs("nc/chk") == [
        "bytes",
        "numcodecs.fletcher32",
        "numcodecs.shuffle",
        "numcodecs.zlib",
    ]
    t2m = repo.root_group["nc/forecast/t2m"].metadata.to_dict()["codecs"][0]
    assert t2m["configuration"]["endian"] == "big"
    assert assert_every_dataset(repo, "nc", NC4) == 17


H5_GROUPS = ("", "a", "a/b", "a/b/c", "a/empty_group")


def test_plain_hdf5_round_trip() -> None:
    repo = memory_repo()
    summary = repo.add_virtual_hdf(H5, "h5")
    assert summary.sources == 1 and summary.groups == 5
    repo.commit("import hdf5")
    for group in H5_GROUPS:
        got = ours(repo, f"h5/{group}" if group else "h5")
        file = native(H5, "h5netcdf", group)
        # dimension names, phony ones included, are h5netcdf's (phony_dims="sort")
        xr.testing.assert_identical(got, file)
        for name in got.variables:
            assert got[name].dtype == file[name].dtype.newbyteorder("="), (group, name)
    assert assert_every_dataset(repo, "h5", H5) == 25

    root = ours(repo, "h5")
    # h5py's default fill value is 0 and "zeros" holds zeros: never masked (no _FillValue)
    assert root["zeros"].values.tolist() == [0, 1, 2, 0]
    # partly written: unallocated chunks read as the HDF5 fill value
    sparse = root["sparse"].values
    assert (sparse[4:] == -5).all() and sparse[0, 4] == 0 and sparse[3, 7] == 15
    assert root["compact"].values.tolist() == [11, 22, 33, 44]
    assert root["grid"].dims == ("y", "x") and np.isnan(root["grid"].encoding["_FillValue"])
    assert root["blosc"].values[9, 99] == 999 and root["zstd"].values[2, 99] == 299 % 17
    assert root["flags"].dtype == bool and root["cplx"].dtype == np.complex64
    attrs = root.attrs
    assert attrs["fixed_bytes"] == "fixed length" and attrs["names"] == ["a", "bb", "ccc"]
    assert attrs["one_elem"] == 42 and attrs["matrix"] == [[0, 1, 2], [3, 4, 5]]
    assert attrs["flag"] is True and attrs["big"] == 2**63 + 5 and attrs["empty"] == []
    assert np.isnan(attrs["nan_attr"]) and attrs["inf_attr"] == -np.inf
    assert attrs["f32_attr"] == 0.25 and isinstance(attrs["int_attr"], int)
    assert ours(repo, "h5/a/b")["data"].dims == ("x", "pair")
    meta = repo.root_group["h5/compact"].metadata.to_dict()
    assert [c["name"] for c in json.loads(json.dumps(meta))["codecs"]] == ["bytes"]


@pytest.mark.parametrize("writer", ["netcdf4", "h5netcdf"])
def test_files_written_by_xarray(writer: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {
            "t": (("time", "y", "x"), rng.normal(size=(5, 3, 4)).astype("f4")),
            "p": (("time",), np.array([1.0, np.nan, 3, 4, 5])),
            "i": (("y",), np.array([1, 2, 3], dtype="i8")),
            "b": (("x",), np.array([True, False, True, True])),  # int8 + dtype attribute
            "u": (("y", "x"), np.arange(12, dtype="u2").reshape(3, 4)),
        },
        coords={
            "time": pd.date_range("2020-01-01", periods=5, freq="h"),
            "y": [10.0, 20, 30],
            "x": np.arange(4),
        },
        attrs={"history": "written by xarray", "n": 3},
    )
    compression = {"zlib": True} if writer == "netcdf4" else {"compression": "gzip"}
    path = tmp_path / f"{writer}.nc"
    ds.to_netcdf(path, engine=writer, encoding={"t": {**compression, "chunksizes": (2, 3, 4)}})
    repo = memory_repo()
    repo.add_virtual_netcdf(path, "x")
    got = ours(repo, "x")
    xr.testing.assert_identical(got, ds)
    for engine in ("netcdf4", "h5netcdf"):
        file = native(path, engine)
        xr.testing.assert_identical(got, file)
        assert all(got[n].dtype == file[n].dtype for n in got.variables)


def test_attribute_order_is_the_files(tmp_path: Path) -> None:
    """Attributes keep the order the readers give: creation order where the file tracks it
    (NetCDF4 files do: root group, subgroups and variables), by name where it does not."""
    netCDF4 = pytest.importorskip("netCDF4")
    path = tmp_path / "ordered.nc"
    names = ["title", "Conventions", "zeta", "alpha", "history"]
    with netCDF4.Dataset(path, "w") as nc:
        for i, name in enumerate(names):
            nc.setncattr(name, f"root {i}")
        nc.createDimension("x", 3)
        v = nc.createVariable("v", "f4", ("x",))
        v[:] = [1, 2, 3]
        for i, name in enumerate(reversed(names)):
            v.setncattr(name, i)
        g = nc.createGroup("sub")
        for name in ("z", "b", "m"):
            g.setncattr(name, name)
    repo = memory_repo()
    repo.add_virtual_netcdf(path, "nc")
    got = ours(repo, "nc")
    for engine in ("netcdf4", "h5netcdf"):
        file = native(path, engine)
        assert list(got.attrs) == list(file.attrs) == names
        assert list(got.v.attrs) == list(file.v.attrs) == names[::-1]
        assert list(ours(repo, "nc/sub").attrs) == list(native(path, engine, "sub").attrs)
    assert list(ours(repo, "nc/sub").attrs) == ["z", "b", "m"]

    plain = tmp_path / "plain.h5"  # h5py does not track creation order by default
    with h5py.File(plain, "w") as f:
        for name in names:
            f.attrs[name] = 1
        f["d"] = np.arange(3)
        for name in names:
            f["d"].attrs[name] = 2
    repo.add_virtual_hdf(plain, "h5")
    with h5py.File(plain) as f:
        assert list(repo.root_group["h5"].attrs) == list(f.attrs) == sorted(names)
        assert list(repo.root_group["h5/d"].attrs) == list(f["d"].attrs) == sorted(names)


def test_compact_datasets_never_read_as_zeros(tmp_path: Path) -> None:
    path = tmp_path / "compact.h5"
    values = {
        "i4": np.array([7, -8, 9], dtype="<i4"),
        "f8_be": np.arange(1, 7, dtype=">f8").reshape(2, 3),
        "scalar": np.array(3.25, dtype="<f4"),
        "text": np.array([b"ab", b"cde"], dtype="S3"),
        "empty": np.zeros((0,), dtype="<i2"),
    }
    with h5py.File(path, "w") as f:
        for name, data in values.items():
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_layout(h5py.h5d.COMPACT)
            space = (
                h5py.h5s.create_simple(data.shape)
                if data.ndim
                else h5py.h5s.create(h5py.h5s.SCALAR)
            )
            h5py.h5d.create(f.id, name.encode(), h5py.h5t.py_create(data.dtype), space, dcpl=dcpl)
            if data.size:
                f[name][...] = data
        for name in values:
            assert f[name].id.get_create_plist().get_layout() == h5py.h5d.COMPACT
    tree = scan_local(hdf5, path)
    for name, data in values.items():
        refs = tree.arrays[name].refs
        assert len(refs) == (1 if data.size else 0)
        assert (refs.kind == INLINE).all()  # inline: the bytes live in the object header
    repo = memory_repo()
    repo.add_virtual_hdf(path, "c")
    for name, data in values.items():
        got = repo.root_group[f"c/{name}"][...]
        np.testing.assert_array_equal(got, data)
        if data.size and data.dtype.kind in "if":
            assert (got != 0).all(), name


def test_options_inline_threshold_and_contiguous_split() -> None:
    tree = scan_local(hdf5, H5, inline_threshold=100, contiguous_chunk_size=4096)
    contig = tree.arrays["contig"]
    assert contig.meta["chunk_grid"]["configuration"]["chunk_shape"] == [64, 8]
    assert len(contig.refs) == 8 and (contig.refs.kind == VIRTUAL).all()
    assert (tree.arrays["zstd"].refs.kind == INLINE).all()  # compressed chunks < 100 bytes
    assert (tree.arrays["blosc"].refs.kind == VIRTUAL).any()
    default = scan_local(hdf5, H5)
    assert len(default.arrays["contig"].refs) == 1
    assert not (default.arrays["zstd"].refs.kind == INLINE).any()

    repo = memory_repo()
    repo.add_virtual_hdf(H5, "h5", inline_threshold=100, contiguous_chunk_size=4096)
    assert assert_every_dataset(repo, "h5", H5) == 25
    xr.testing.assert_identical(ours(repo, "h5"), native(H5, "h5netcdf"))


def test_fresh_reader_in_a_subprocess(tmp_path: Path) -> None:
    location = tmp_path / "repo"
    repo = zarrchive.Repo.create(location, author="tester")
    repo.add_virtual_netcdf(NC4, "nc")
    repo.add_virtual_hdf(H5, "h5")
    repo.commit("import")
    groups = ["nc", "nc/forecast", "h5", "h5/a/b"]
    dss = read_fresh(location, SAMPLES.as_uri() + "/", groups, tmp_path / "ds.pickle")
    for group, ds in dss.items():
        xr.testing.assert_identical(ds, ours(repo, group))
    xr.testing.assert_identical(dss["nc/forecast"], native(NC4, "netcdf4", "forecast"))
    xr.testing.assert_identical(dss["h5/a/b"], native(H5, "h5netcdf", "a/b"))


def test_import_from_s3(s3_server: dict[str, Any]) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server)
    prefix = f"{BUCKET}/{uuid.uuid4().hex}"
    fs.put(str(NC4), f"{prefix}/sample.nc")
    fs.put(str(H5), f"{prefix}/sample.h5")
    repo = memory_repo()
    s = repo.add_virtual_netcdf(f"s3://{prefix}/sample.nc", "nc", storage_options=s3_server)
    assert s.arrays == 17 and s.sources == 1
    repo.add_virtual_hdf(f"s3://{prefix}/sample.h5", "h5", storage_options=s3_server)
    repo.commit("from s3")
    root = ours(repo, "nc").drop_vars("packed32")  # float32 unpacking: see the round trip
    xr.testing.assert_identical(root, native(NC4, "netcdf4").drop_vars("packed32"))
    xr.testing.assert_identical(ours(repo, "nc/forecast"), native(NC4, "netcdf4", "forecast"))
    xr.testing.assert_identical(ours(repo, "h5"), native(H5, "h5netcdf"))
    # the source's checksum is its S3 identity: size and ETag
    sources = repo.repository.sources
    tree = sync(
        hdf5.scan(
            f"s3://{prefix}/sample.nc",
            stat=lambda u: sources.stat(u, s3_server),
            storage_options=s3_server,
        )
    )
    checksum = tree.arrays["temp"].refs.checksums[0]
    assert checksum is not None and checksum.startswith(f"size={NC4.stat().st_size};etag=")


# ---------------------------------------------------------------------- unsupported
UNSUPPORTED_CASES = {
    # dataset: words its error names
    "table": ["compound"],
    "names": ["variable-length strings"],
    "cloud": ["enum"],
    "lz4": ["lz4", "32004"],
    "bitshuffle": ["bitshuffle", "32008"],
    "scaleoffset": ["scaleoffset"],
    "scaleoffset_big": ["scaleoffset"],
    "nbit": ["nbit"],
    "refs": ["reference"],
    "opaque": ["opaque"],
    "masked": ["filter(s) skipped", "deflate"],
    "external": ["external link"],
}
INLINABLE = {"names", "cloud", "lz4", "bitshuffle", "scaleoffset", "nbit", "masked"}


@pytest.fixture(scope="module")
def one_case_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per unsupported dataset (a copy of the sample with the others unlinked)."""
    d = tmp_path_factory.mktemp("cases")
    out = {}
    for name in UNSUPPORTED_CASES:
        path = d / f"{name}.h5"
        shutil.copy(UNSUPPORTED, path)
        with h5py.File(path, "r+") as f:
            for other in list(f):
                if other not in (name, "ok"):
                    del f[other]
        out[name] = path
    shutil.copy(H5, d / "hdf5_sample.h5")  # the external link's target
    return out


def test_each_unsupported_case_raises_and_leaves_the_repository_unchanged(
    tmp_path: Path, one_case_files: dict[str, Path]
) -> None:
    location = tmp_path / "repo"
    repo = zarrchive.Repo.create(location, author="tester")
    repo.root_group.attrs["v"] = 1
    repo.commit("first")
    repo.add_virtual_hdf(H5, "pending")
    assert repo.status().has_changes
    before = repo_state(repo, location)
    for name, words in UNSUPPORTED_CASES.items():
        for target, overwrite in (("new", False), ("pending", True)):
            with pytest.raises(UnsupportedFeatureError) as info:
                repo.add_virtual_hdf(one_case_files[name], target, overwrite=overwrite)
            message = str(info.value)
            assert f"/{name}:" in message and "on_unsupported" in message, message
            for w in words:
                assert w in message, (name, message)
            assert repo_state(repo, location) == before, name
    # everything at once: one error naming them all
    with pytest.raises(UnsupportedFeatureError) as info:
        repo.add_virtual_hdf(UNSUPPORTED, "new")
    assert all(f"/{name}:" in str(info.value) for name in UNSUPPORTED_CASES)
    assert repo_state(repo, location) == before
    repo.commit("pending")
    assert assert_every_dataset(repo, "pending", H5) == 25


def test_on_unsupported_skip(recwarn: pytest.WarningsRecorder) -> None:
    repo = memory_repo()
    repo.add_virtual_hdf(UNSUPPORTED, "u", on_unsupported="skip")
    ours_warnings = [w for w in recwarn.list if "hdf5_unsupported.h5" in str(w.message)]
    assert len(ours_warnings) == 1 and ours_warnings[0].category is UserWarning
    message = str(ours_warnings[0].message)
    for name in UNSUPPORTED_CASES:
        assert f"/{name} (" in message, name
    assert sorted(repo.root_group["u"].array_keys()) == ["ok"]
    np.testing.assert_array_equal(repo.root_group["u/ok"][...], np.arange(4))


def test_on_unsupported_inline(recwarn: pytest.WarningsRecorder) -> None:
    repo = memory_repo()
    repo.add_virtual_hdf(UNSUPPORTED, "u", on_unsupported="inline")
    ours_warnings = [w for w in recwarn.list if "hdf5_unsupported.h5" in str(w.message)]
    assert len(ours_warnings) == 1
    message = str(ours_warnings[0].message)
    copied, _, left_out = message.partition("left out")
    for name in UNSUPPORTED_CASES:
        assert f"/{name} (" in (copied if name in INLINABLE else left_out), name
    assert "80,000 bytes, more than 64 KiB" in left_out  # scaleoffset_big
    group = repo.root_group["u"]
    assert sorted(group.array_keys()) == sorted(INLINABLE | {"ok"})
    with h5py.File(UNSUPPORTED) as f:
        for name in INLINABLE:
            want = h5_reference(f[name])
            got = group[name][...]
            if want.dtype.kind == "O":
                assert got.tolist() == want.tolist()
            else:
                np.testing.assert_array_equal(got, want, err_msg=name)
    ds = ours(repo, "u")
    assert ds["names"].values.tolist() == ["alpha", "beta", "gamma"]
    assert ds["cloud"].values.tolist() == [0, 2, 1, 1]  # an enum's integer codes
    # a committed repository reads the inline copies without the source file
    tree = scan_local(hdf5, UNSUPPORTED, on_unsupported="inline")
    assert (tree.arrays["lz4"].refs.kind == INLINE).all()


def _libhdf5_set_chunk_opts() -> Any:
    import ctypes

    with open("/proc/self/maps") as maps:
        libs = sorted({ln.split()[-1] for ln in maps if "h5py" in ln and "libhdf5-" in ln})
    if not libs:
        pytest.skip("h5py's HDF5 library not found to call H5Pset_chunk_opts")
    fn = ctypes.CDLL(libs[0]).H5Pset_chunk_opts
    fn.argtypes = [ctypes.c_int64, ctypes.c_uint]
    return fn


def test_chunks_that_cannot_be_decoded_as_stored(tmp_path: Path) -> None:
    """Partial edge chunks stored unfiltered; a dataset shorter than its unlimited dimension
    whose last chunk is partly written with no fill value."""
    set_chunk_opts = _libhdf5_set_chunk_opts()
    edge = tmp_path / "edge.h5"
    with h5py.File(edge, "w", libver="latest") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((4,))
        dcpl.set_deflate(4)
        assert set_chunk_opts(dcpl.id, 0x0002) == 0  # H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS
        h5py.h5d.create(f.id, b"x", h5py.h5t.NATIVE_DOUBLE, h5py.h5s.create_simple((10,)), dcpl)
        f["x"][...] = np.arange(10.0)
        f.create_dataset("even", data=np.arange(8.0), chunks=(4,), compression="gzip")
    with pytest.raises(UnsupportedFeatureError, match="/x: partial edge chunks"):
        scan_local(hdf5, edge)
    repo = memory_repo()
    with pytest.warns(UserWarning, match="/x"):
        repo.add_virtual_hdf(edge, "e", on_unsupported="inline")
    np.testing.assert_array_equal(repo.root_group["e/x"][...], np.arange(10.0))
    np.testing.assert_array_equal(repo.root_group["e/even"][...], np.arange(8.0))

    import netCDF4

    nofill = tmp_path / "nofill.nc"
    with netCDF4.Dataset(nofill, "w") as nc:
        nc.set_fill_off()
        nc.createDimension("t", None)
        short = nc.createVariable("short", "f4", ("t",), chunksizes=(2,))
        long = nc.createVariable("long", "f4", ("t",), chunksizes=(2,))
        long[:] = np.arange(5.0)
        short[:3] = [1.0, 2.0, 3.0]
        filled = nc.createVariable("filled", "i2", ("t",), chunksizes=(5,), fill_value=-1)
        filled[:1] = [9]
    with pytest.raises(UnsupportedFeatureError, match="/short: .*fill time NEVER"):
        scan_local(hdf5, nofill)
    repo = memory_repo()
    with pytest.warns(UserWarning, match="/short"):
        repo.add_virtual_netcdf(nofill, "n", on_unsupported="inline")
    got = ours(repo, "n")
    # past a dataset's end, h5netcdf (and h5py) read the HDF5 fill value, which NOFILL mode
    # leaves undefined (0); netCDF-C reads its default fill value there instead
    xr.testing.assert_identical(got, native(nofill, "h5netcdf"))
    assert got["short"].values.tolist() == [1, 2, 3, 0, 0]
    netcdf_c = native(nofill, "netcdf4")
    assert netcdf_c["short"].values[3] == netCDF4.default_fillvals["f4"]
    xr.testing.assert_identical(got[["long"]], netcdf_c[["long"]])


def test_structure_edge_cases(tmp_path: Path) -> None:
    path = tmp_path / "edges.h5"
    with h5py.File(path, "w") as f:
        loop = f.create_group("loop")
        loop["back"] = f  # a hard link to the root: a cycle
        f["alias"] = loop  # a second name for a group
        loop.create_dataset("v", data=np.arange(3))
        f["dtype"] = np.dtype("<f8")  # a committed datatype is not data
        x = f.create_dataset("x", data=np.arange(4.0))
        x.make_scale("x")
        mixed = f.create_dataset("mixed", data=np.arange(12).reshape(4, 3))
        mixed.dims[0].attach_scale(x)
        f.create_dataset("nothing", shape=(0, 3), maxshape=(None, 3), dtype="f4", chunks=(2, 3))
        f.create_dataset("unwritten", shape=(4,), dtype="f4", chunks=(2,), fillvalue=7)
        f.attrs["ref"] = x.ref  # an attribute JSON cannot hold
        f.create_dataset("null", data=h5py.Empty("f4"))  # a null dataspace: no data at all
        f.create_dataset(b"bad\xffname", data=np.arange(2))  # not UTF-8
        f.attrs[b"\xfeattr"] = 5
    with pytest.warns(UserWarning) as record:
        tree = scan_local(hdf5, path)
    message = " ".join(str(w.message) for w in record)
    # links are followed in name order: /alias comes first, /loop and /alias/back are the
    # same group again (the latter a cycle)
    assert "/loop is another link" in message and "/alias/back is another link" in message
    assert "/@ref (object reference)" in message and "/null has a null dataspace" in message
    assert sorted(tree.arrays) == [
        "alias/v",
        "bad\ufffdname",
        "mixed",
        "nothing",
        "unwritten",
        "x",
    ]
    assert tree.groups[""]["attributes"] == {"\ufffdattr": 5}
    # an axis without a scale is named like h5netcdf names such axes (which refuses to open
    # datasets that mix axes with and without scales): the group's phony dimension of its size
    nothing = tree.arrays["nothing"].meta["dimension_names"]
    assert nothing == ["phony_dim_2", "phony_dim_3"]  # after the one of "bad\ufffdname"
    assert tree.arrays["mixed"].meta["dimension_names"] == ["x", "phony_dim_3"]
    repo = memory_repo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        repo.add_virtual_hdf(path, "e")
    g = repo.root_group
    np.testing.assert_array_equal(g["e/unwritten"][...], np.full(4, 7, dtype="f4"))
    assert g["e/nothing"].shape == (0, 3)
    np.testing.assert_array_equal(g["e/alias/v"][...], np.arange(3))

    dangling = tmp_path / "dangling.h5"
    with h5py.File(dangling, "w") as f:
        f.create_dataset("ok", data=[1, 2])
        f["gone"] = h5py.SoftLink("/nowhere")
    with pytest.raises(UnsupportedFeatureError, match="/gone: dangling soft link"):
        scan_local(hdf5, dangling)
    with pytest.warns(UserWarning, match="/gone"):
        assert sorted(scan_local(hdf5, dangling, on_unsupported="skip").arrays) == ["ok"]


def test_types_whose_bytes_h5py_converts(tmp_path: Path) -> None:
    """Stored bytes that h5py (HDF5's type conversion) does not return as they are."""
    path = tmp_path / "converted.h5"
    with h5py.File(path, "w") as f:
        spaced = h5py.h5t.C_S1.copy()
        spaced.set_size(4)
        spaced.set_strpad(h5py.h5t.STR_SPACEPAD)  # Fortran style: read back NUL-padded
        h5py.h5d.create(f.id, b"spaced", spaced, h5py.h5s.create_simple((2,)))
        f["spaced"][...] = np.array([b"ab", b"cdef"], dtype="S4")
        padded = h5py.h5t.create(h5py.h5t.COMPOUND, 16)  # two float32 in 16 bytes
        padded.insert(b"r", 0, h5py.h5t.IEEE_F32LE)
        padded.insert(b"i", 8, h5py.h5t.IEEE_F32LE)
        h5py.h5d.create(f.id, b"padded", padded, h5py.h5s.create_simple((2,)))
        f["padded"][...] = np.array([1 + 2j, 3 - 4j], dtype="c8")
        assert f["padded"].dtype == np.complex64  # h5py maps it to complex, converting
    with pytest.raises(UnsupportedFeatureError) as info:
        scan_local(hdf5, path)
    assert "/spaced: space-padded" in str(info.value)
    assert "/padded: compound type not laid out as a complex number" in str(info.value)
    repo = memory_repo()
    with pytest.warns(UserWarning, match="/spaced"):
        repo.add_virtual_hdf(path, "c", on_unsupported="inline")
    assert repo.root_group["c/spaced"][...].tolist() == [b"ab", b"cdef"]
    np.testing.assert_array_equal(repo.root_group["c/padded"][...], [1 + 2j, 3 - 4j])


def test_import_while_xarray_holds_the_file_open(tmp_path: Path) -> None:
    """A file that xarray (h5netcdf, so h5py with HDF5's default file locking) has open in
    this process imports: HDF5 refused the importer's lock-free second open ("file locking
    flag values don't match") and the import failed as if the file were not HDF5."""
    path = tmp_path / "open.nc"
    xr.Dataset({"v": ("x", np.arange(5.0))}).to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as held:
        repo = memory_repo()
        repo.add_virtual_netcdf(path, "nc")
        xr.testing.assert_identical(ours(repo, "nc"), held.load())


def test_float_types_zarr_cannot_hold_are_unsupported_not_invalid(tmp_path: Path) -> None:
    """Long double and a float format h5py has no numpy type for (both in PyTables' test
    files) are unsupported features of those datasets, not a corrupt file: the rest of the
    file imports with on_unsupported='skip'."""
    path = tmp_path / "floats.h5"
    with h5py.File(path, "w") as f:
        f["ok"] = np.arange(4, dtype="f8")
        f["longdouble"] = np.arange(3, dtype=np.longdouble)
        quad = h5py.h5t.IEEE_F64LE.copy()  # IEEE binary128: 15-bit exponent, 112-bit mantissa
        quad.set_size(16)
        quad.set_precision(128)
        quad.set_fields(127, 112, 15, 0, 112)
        quad.set_ebias(16383)
        h5py.h5d.create(f.id, b"quad", quad, h5py.h5s.create_simple((2,)))
    with pytest.raises(UnsupportedFeatureError) as info:
        scan_local(hdf5, path)
    message = str(info.value)
    assert "/longdouble: 128-bit float" in message and "Zarr v3 has no such data type" in message
    assert "/quad: float type that h5py cannot map to a NumPy type" in message
    repo = memory_repo()
    with pytest.warns(UserWarning, match="(?s)left out 2 object.*/longdouble.*/quad"):
        repo.add_virtual_hdf(path, "f", on_unsupported="skip")
    assert list(repo.root_group["f"].array_keys()) == ["ok"]
    np.testing.assert_array_equal(repo.root_group["f/ok"][...], np.arange(4, dtype="f8"))


def test_deep_hierarchy_scans_quickly(tmp_path: Path) -> None:
    path = tmp_path / "deep.h5"
    with h5py.File(path, "w") as f:
        for branch in range(20):
            g = f
            for level in range(10):  # 200 groups, 10 deep
                g = g.create_group(f"g{branch}_{level}")
                g.attrs["level"] = level
                g.attrs["units"] = "m"
                d = g.create_dataset("v", data=np.arange(8.0) + level, chunks=(2,))
                d.attrs["long_name"] = f"branch {branch} level {level}"
    start = time.perf_counter()
    tree = scan_local(hdf5, path)
    elapsed = time.perf_counter() - start
    print(f"\nscanned 200 groups / 200 datasets / 800 chunks in {elapsed:.3f} s")
    assert len(tree.groups) == 201 and len(tree.arrays) == 200
    deepest = "/".join(f"g19_{level}" for level in range(10)) + "/v"
    repo = memory_repo()
    repo.add_virtual_hdf(path, "deep")
    np.testing.assert_array_equal(repo.root_group[f"deep/{deepest}"][...], np.arange(8.0) + 9)


def test_invalid_options_and_inputs(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="on_unsupported"):
        scan_local(hdf5, H5, on_unsupported="ignore")
    with pytest.raises(InvalidInputError, match="inline_threshold"):
        scan_local(hdf5, H5, inline_threshold=-1)
    with pytest.raises(InvalidInputError, match="unknown option"):
        scan_local(hdf5, H5, inline_treshold=10)
    with pytest.raises(NotFoundError):
        scan_local(hdf5, tmp_path / "missing.h5")
    fake = tmp_path / "fake.h5"
    fake.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    with pytest.raises(InvalidInputError, match="HDF5"):
        scan_local(hdf5, fake)
    repo = memory_repo()
    with pytest.raises(InvalidInputError):
        repo.add_virtual_hdf(fake, "x")
    assert not repo.status().has_changes


# ---------------------------------------------------------------------- fuzz
_FUZZ = r"""
import hdf5plugin
import json, os, random, sys, uuid, warnings
import numpy as np, h5py, zarr, zarrchive

warnings.simplefilter("ignore")
src, workdir, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = open(src, "rb").read()
# bytes of raw data (chunks, contiguous data) are never flipped: a corrupt payload is the
# codecs' business; metadata (superblock, object headers, B-trees, heaps) is fuzzed
payload = np.zeros(len(data), dtype=bool)
with h5py.File(src) as f:
    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        off = obj.id.get_offset()
        if off is not None:
            payload[off : off + obj.id.get_storage_size()] = True
        elif obj.chunks:
            def mark(i):
                payload[i.byte_offset : i.byte_offset + i.size] = True

            obj.id.chunk_iter(mark)
    f.visititems(visit)
meta = np.flatnonzero(~payload)
rng = random.Random(seed)

def reference(path, name):
    with h5py.File(path) as f:
        ds = f[name.replace("_nc4_non_coord_", "")]
        info = h5py.check_string_dtype(ds.dtype)
        if info is not None and info.length is None:
            return np.asarray(ds.asstr()[()], dtype=object)
        return np.asarray(ds[()])

def lookup_misses(path, name):
    with h5py.File(path) as f:
        ds = f[name]
        if ds.chunks is None:
            return False
        listed = []
        ds.id.chunk_iter(listed.append)
        for info in listed:
            try:
                ds.id.read_direct_chunk(info.chunk_offset)
            except Exception:
                return True
    return False

results = []
for case in range(count):
    buf = bytearray(data)
    if case % 3 == 2:
        cut = rng.randrange(0, len(data))
        buf = buf[:cut]
        what = f"cut at {cut}"
    else:
        at = [int(meta[rng.randrange(len(meta))]) for _ in range(rng.randint(1, 4))]
        for p in at:
            buf[p] = rng.randrange(256) if case % 2 else buf[p] ^ (1 << rng.randrange(8))
        what = f"bytes {at} changed"
    path = os.path.join(workdir, f"case{case:02d}.h5")
    with open(path, "wb") as out:
        out.write(bytes(buf))
    mode = ("raise", "skip", "inline")[case % 3]
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    entry = {"case": what, "mode": mode, "reads": {}}
    results.append(entry)
    try:
        repo.add_virtual_hdf(path, "x", on_unsupported=mode)
    except zarrchive.ZarrchiveError as exc:
        entry["scan"] = type(exc).__name__
        entry["unchanged"] = not repo.status().has_changes
        continue
    except BaseException as exc:
        entry["scan"] = f"BAD {type(exc).__name__}: {str(exc)[:300]}"
        continue
    entry["scan"] = "ok"
    try:
        members = list(repo.root_group["x"].members(max_depth=None))
    except Exception as exc:
        entry["reads"]["/"] = f"BAD listing {type(exc).__name__}: {str(exc)[:200]}"
        continue
    for name, arr in members:
        if not isinstance(arr, zarr.Array):
            continue
        try:
            got, error = np.asarray(arr[...]), None
        except zarrchive.ZarrchiveError as exc:
            entry["reads"][name] = "zarrchive error " + type(exc).__name__
            continue
        except Exception as exc:
            got, error = None, exc
        try:
            want = reference(path, name)
        except Exception as exc:
            # h5py cannot read it either: the data itself is broken
            entry["reads"][name] = "both fail" if error else "h5py fails"
            continue
        if error is not None:
            entry["reads"][name] = f"BAD read {type(error).__name__}: {str(error)[:200]}"
            continue
        inside = tuple(slice(0, s) for s in want.shape)
        same = got.ndim == want.ndim and got[inside].shape == want.shape and (
            got[inside].tolist() == want.tolist()
            or np.array_equal(got[inside], want, equal_nan=want.dtype.kind in "fc")
        )
        if same:
            entry["reads"][name] = "match"
        elif lookup_misses(path, name):
            # HDF5's chunk lookup misses a chunk that its own iteration of the (corrupt)
            # chunk index lists: h5py reads the fill value, zarrchive the stored chunk
            entry["reads"][name] = "h5py misses a listed chunk"
        else:
            entry["reads"][name] = f"MISMATCH {got.tolist()} {want.tolist()}"
print(json.dumps(results))
"""


@pytest.mark.parametrize("sample", [NC4, H5, UNSUPPORTED], ids=lambda p: p.name)
def test_fuzz_corrupt_and_truncated(sample: Path, tmp_path: Path) -> None:
    shutil.copy(H5, tmp_path / "hdf5_sample.h5")  # the external link's target
    done = subprocess.run(
        [sys.executable, "-c", _FUZZ, str(sample), str(tmp_path), str(len(sample.name)), "30"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # a negative return code is a crash (a signal) of the interpreter
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    assert len(results) == 30
    bad = [r for r in results if r["scan"].startswith("BAD")]
    bad += [
        r for r in results if any(v.startswith(("BAD", "MISMATCH")) for v in r["reads"].values())
    ]
    assert not bad, json.dumps(bad, indent=1)
    assert all(r.get("unchanged", True) for r in results)
    imported = sum(r["scan"] == "ok" for r in results)
    matched = sum(v == "match" for r in results for v in r["reads"].values())
    failed = sum(r["scan"] != "ok" for r in results)
    print(f"\n{sample.name}: {imported} imported ({matched} reads match h5py), {failed} refused")
    assert failed > 0 and imported > 0
