"""NetCDF classic files (CDF-1, CDF-2, CDF-5) imported as virtual chunks by ``importers.netcdf3``.

Every sample file (``sample_data/_make_netcdf3.py``, regenerated here into a temporary
directory) is read three ways and compared: through the repository (xarray's zarr v3 backend
and zarr itself), through xarray's own engines (scipy and netCDF4, where each can read the
file) and raw through ``scipy.io.netcdf_file`` (or netCDF4 with all decoding off, for the files
scipy cannot read: CDF-5, and a single record variable whose records are not 4-byte multiples).
Hand-encoded headers build what the writers cannot: STREAMING record counts, offsets past
4 GiB in a sparse file, and malformed files. A seeded fuzz compares successful imports of
corrupt copies with netCDF-C (in a subprocess, as the C library may crash on them).
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import pickle
import struct
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import zarrchive
from conftest import BUCKET
from zarrchive import InvalidInputError, NotFoundError, UnsupportedFeatureError, ZarrchiveError
from zarrchive.importers import netcdf3
from zarrchive.sources import SourceStat

from .conftest import memory_repo, native, ours, read_fresh, repo_state, scan_local

pytestmark = pytest.mark.filterwarnings(
    # zarr: fixed-width bytes (netCDF char variables) have no Zarr v3 spec yet
    "ignore:The data type .* does not have a Zarr V3 specification:UserWarning",
    "ignore::zarr.errors.UnstableSpecificationWarning",
    "ignore:.*Consolidated metadata.*:UserWarning",
    # xarray, for an int variable whose _FillValue is NaN (the reference engines too)
    "ignore:variable 'int_nan_fill' has non-conforming '_FillValue':xarray.SerializationWarning",
)

ROOT = Path(__file__).resolve().parents[2]
GB = 2**30

# files xarray's scipy engine cannot read: CDF-5, and scipy's own bug with a single record
# variable whose records are not a multiple of 4 bytes (it sizes records from the padded vsize)
NOT_SCIPY = {"netcdf3_cdf5_netcdf4.nc", "netcdf3_classic_netcdf4.nc"}
# float32 scale_factor/add_offset: netCDF engines unpack to float32, but attributes in zarr.json
# are JSON numbers, which xarray treats as float64 (values still equal here: 0.5 and 100)
FLOAT64_UNPACKED = {("netcdf3_64bit_offset_netcdf4.nc", "packed32")}


# ---------------------------------------------------------------------- helpers
def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "_make_netcdf3", ROOT / "sample_data" / "_make_netcdf3.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("netcdf3")
    paths = _load_generator().make(d)
    return {p.name: p for p in paths}


SAMPLE_NAMES = [
    "netcdf3_classic_scipy.nc",
    "netcdf3_64bit_offset_netcdf4.nc",
    "netcdf3_classic_netcdf4.nc",
    "netcdf3_single_record_scipy.nc",
    "netcdf3_cdf5_netcdf4.nc",
    "netcdf3_nan_fill_scipy.nc",
]


def imported(path: Path, **options: Any) -> zarrchive.Repo:
    repo = memory_repo()
    repo.add_virtual_netcdf(path, "nc", **options)
    repo.commit(f"import {path.name}")
    return repo


def engines(name: str) -> list[str]:
    return ["netcdf4"] if name in NOT_SCIPY else ["scipy", "netcdf4"]


def assert_same_attrs(got: dict[str, Any], ref: dict[str, Any], where: Any) -> None:
    """Equal attributes of the same kind (int, unsigned, float, text), arrays as lists."""
    assert sorted(got) == sorted(ref), where
    for key, value in ref.items():
        a, b = np.asarray(got[key]), np.asarray(value)
        assert a.dtype.kind == b.dtype.kind, (where, key, a.dtype, b.dtype)
        np.testing.assert_array_equal(a, b, err_msg=f"{where}: {key}")


def raw_values(path: Path) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Every variable's dimensions and undecoded values, from scipy (or netCDF4)."""
    if path.name not in NOT_SCIPY:
        from scipy.io import netcdf_file

        with netcdf_file(path, mmap=False, maskandscale=False) as f:
            return {
                k: (tuple(v.dimensions), np.array(v.data, copy=True))
                for k, v in f.variables.items()
            }
    import netCDF4

    out = {}
    with netCDF4.Dataset(path) as ds:
        for k, v in ds.variables.items():
            v.set_auto_maskandscale(False)
            v.set_auto_chartostring(False)
            v.set_always_mask(False)
            out[k] = (tuple(v.dimensions), np.array(v[...]))
    return out


def header_of(path: Path) -> netcdf3.Header:
    with open(path, "rb") as f:
        return netcdf3.parse_header(f, path.stat().st_size, str(path))


# hand-encoded files ----------------------------------------------------------
def _nn(n: int, version: int) -> bytes:
    return struct.pack(">q" if version == 5 else ">i", n)


def _name(name: str, version: int) -> bytes:
    b = name.encode()
    return _nn(len(b), version) + b + b"\0" * (-len(b) % 4)


def _atts(atts: list[tuple[str, int, Any]], version: int) -> bytes:
    if not atts:
        return b"\0" * 4 + _nn(0, version)
    out = struct.pack(">i", 12) + _nn(len(atts), version)
    for name, nc_type, value in atts:
        raw = value if isinstance(value, bytes) else np.asarray(value).tobytes()
        n = len(value) if isinstance(value, bytes) else np.asarray(value).size
        out += _name(name, version) + struct.pack(">i", nc_type) + _nn(n, version)
        out += raw + b"\0" * (-len(raw) % 4)
    return out


def write_cdf(
    path: Path,
    *,
    version: int = 1,
    dims: list[tuple[str, int]],
    variables: list[tuple[str, list[int], int]],
    numrecs: int = 0,
    data: dict[str, np.ndarray] | None = None,
    pieces: list[tuple[str, int, bytes]] = (),  # type: ignore[assignment]
    atts: dict[str, list[tuple[str, int, Any]]] | None = None,
    begins: dict[str, int] | None = None,
) -> dict[str, int]:
    """A NetCDF classic file laid out as netCDF-C does; returns each variable's begin.

    ``data``: whole variables (record variables: all records); ``pieces``: (variable, byte
    offset in the variable, bytes) for sparse files; ``begins`` overrides offsets (for
    malformed files).
    """
    atts = atts or {}
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}
    rec = [i for i, (_, n) in enumerate(dims) if n == 0]

    def is_rec(dimids: list[int]) -> bool:
        return bool(dimids) and bool(rec) and dimids[0] == rec[0]

    def slab(dimids: list[int], nc_type: int) -> int:
        fixed = dimids[1:] if is_rec(dimids) else dimids
        return math.prod(dims[d][1] if d < len(dims) else 1 for d in fixed) * sizes[nc_type]

    def encode(begin_of: dict[str, int]) -> bytes:
        out = b"CDF" + bytes([version])
        out += struct.pack(">Q" if version == 5 else ">I", numrecs)
        out += struct.pack(">i", 10) + _nn(len(dims), version) if dims else b"\0" * 4
        out += b"" if dims else _nn(0, version)
        for name, n in dims:
            out += _name(name, version) + _nn(n, version)
        out += _atts(atts.get("", []), version)
        out += struct.pack(">i", 11) + _nn(len(variables), version)
        for name, dimids, nc_type in variables:
            out += _name(name, version) + _nn(len(dimids), version)
            out += b"".join(_nn(d, version) for d in dimids)
            out += _atts(atts.get(name, []), version) + struct.pack(">i", nc_type)
            vsize = slab(dimids, nc_type)
            vsize += -vsize % 4
            if version == 5:
                out += struct.pack(">Q", vsize)
            else:
                out += struct.pack(">I", vsize if vsize <= 2**32 - 4 else 2**32 - 1)
            out += struct.pack(">i" if version == 1 else ">q", begin_of.get(name, 0))
        return out

    header_len = len(encode({}))
    begin_of: dict[str, int] = {}
    pos = header_len + (-header_len % 4)
    for name, dimids, nc_type in variables:
        if not is_rec(dimids):
            begin_of[name] = pos
            n = slab(dimids, nc_type)
            pos += n + (-n % 4)
    recs = [(name, dimids, nc_type) for name, dimids, nc_type in variables if is_rec(dimids)]
    recsize = 0
    for name, dimids, nc_type in recs:
        begin_of[name] = pos + recsize
        n = slab(dimids, nc_type)
        recsize += n if len(recs) == 1 else n + (-n % 4)
    begin_of.update(begins or {})
    header = encode(begin_of)
    end = pos + numrecs * recsize if numrecs not in (2**32 - 1, 2**64 - 1) else pos
    with open(path, "wb") as f:
        f.write(header)
        for name, dimids, _ in variables:
            if name not in (data or {}):
                continue
            raw = np.ascontiguousarray((data or {})[name])
            if is_rec(dimids):
                for i in range(raw.shape[0]):
                    f.seek(begin_of[name] + i * recsize)
                    f.write(raw[i].tobytes())
                end = max(end, begin_of[name] + (raw.shape[0] - 1) * recsize + raw[0].nbytes)
            else:
                f.seek(begin_of[name])
                f.write(raw.tobytes())
                end = max(end, begin_of[name] + raw.nbytes)
        for name, offset, raw_bytes in pieces:
            f.seek(begin_of[name] + offset)
            f.write(raw_bytes)
        for name, dimids, nc_type in variables:
            if not is_rec(dimids):
                end = max(end, begin_of[name] + slab(dimids, nc_type))
        f.truncate(max(end, len(header)))
    return begin_of


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_round_trip(samples: dict[str, Path], name: str) -> None:
    path = samples[name]
    repo = imported(path)
    got = ours(repo, "nc")
    for engine in engines(name):
        ref = native(path, engine)
        xr.testing.assert_identical(got, ref)
        # assert_identical does not compare dtypes
        for var in ref.variables:
            if (name, var) in FLOAT64_UNPACKED:
                assert ref[var].dtype == np.float32 and got[var].dtype == np.float64
            else:
                assert got[var].dtype == ref[var].dtype, (engine, var)
        for var in [None, *ref.variables]:
            assert_same_attrs(
                got.attrs if var is None else got[var].attrs,
                ref.attrs if var is None else ref[var].attrs,
                var,
            )

    # raw values, dimension names, chunks and codecs of every variable, through zarr
    header = header_of(path)
    record_vars = {v.name for v in header.record_vars}
    group = repo.root_group["nc"]
    raw = raw_values(path)
    assert sorted(group.array_keys()) == sorted(raw)
    for var, (dims, values) in raw.items():
        arr = group[var]
        data = arr[...]
        assert data.dtype.kind == values.dtype.kind and data.itemsize == values.itemsize, var
        np.testing.assert_array_equal(data, values, err_msg=var)
        assert tuple(arr.metadata.dimension_names or ()) == dims, var
        if var in record_vars:
            assert arr.chunks == (1, *values.shape[1:]), var
        else:
            assert arr.chunks == values.shape, var
        codecs = [c if isinstance(c, dict) else c.to_dict() for c in arr.metadata.codecs]
        if values.itemsize > 1:
            assert codecs == [{"name": "bytes", "configuration": {"endian": "big"}}], var
        else:
            assert [c["name"] for c in codecs] == ["bytes"], var


def test_decoding_facts(samples: dict[str, Path]) -> None:
    """What the equalities above rest on: masks, char decoding, times, packing."""
    classic = ours(imported(samples["netcdf3_classic_scipy.nc"]), "nc")
    assert classic["station_name"].dims == ("station",)
    assert classic["station_name"].values.tolist() == [b"alpha", b"be"]
    assert classic["flag"].values.tolist() == [b"y", b"n"]
    assert classic["rec_char"].values.tolist() == [b"one", b"two", b"three", b"four", b""]
    assert np.isnan(classic["code"].values[0, 2]) and classic["code"].values[2, 3] == -32767
    assert classic["count"].values.tolist() == [7, -2147483647]  # default fill: no mask
    assert classic["count"].dtype == np.int32
    assert np.isnan(classic["precip"].values[3, 0])  # _FillValue 1e20
    assert np.isnan(classic["packed"].values[0, 1])
    assert classic["packed"].values[0, 0] == pytest.approx(274.15)
    assert classic["time"].dtype.kind == "M"
    assert classic["time"].encoding["units"] == "hours since 2000-01-01 00:00:00"
    assert classic.attrs["double_array"] == [1.5, -2.25, 1e300]
    assert classic.attrs["float_attr"] == float(np.float32(0.1))

    offset = ours(imported(samples["netcdf3_64bit_offset_netcdf4.nc"]), "nc")
    assert np.isnan(offset["scalar_int"].values) and float(offset["scalar_double"]) == 3.25
    assert offset["default_fill_values"].values[0] == np.float32(9.969209968386869e36)
    assert offset["sparse"].values[1] == np.float32(9.969209968386869e36)
    assert offset["ubyte"].values.tolist() == [1, 255, 128]
    ubyte_fill = offset["ubyte_fill"].values  # _Unsigned with a _FillValue of -2, i.e. 254
    assert ubyte_fill[0] == 1 and np.isnan(ubyte_fill[1]) and ubyte_fill[2] == 128
    assert offset["time"].encoding["calendar"] == "noleap"
    assert offset.attrs["unicode"] == "température ° ✓"
    assert np.isnan(offset["i_fill"].values[1, 0]) and offset["i_fill"].dtype == np.float64

    nan_fill = ours(imported(samples["netcdf3_nan_fill_scipy.nc"]), "nc")
    # a NaN _FillValue on an int variable masks nothing and is dropped, as xarray does
    assert nan_fill["int_nan_fill"].dtype == np.int32
    assert nan_fill["int_nan_fill"].values.tolist() == [1, 2, 1234, 4]
    assert "_FillValue" not in nan_fill["int_nan_fill"].encoding
    assert np.isnan(nan_fill["int_double_fill"].values[0])

    cdf5 = ours(imported(samples["netcdf3_cdf5_netcdf4.nc"]), "nc")
    assert cdf5["u64"].dtype == np.float64 and np.isnan(cdf5["u64"].values[1])
    assert cdf5["u32"].dtype == np.uint32 and cdf5["u32"].values[1] == 2**32 - 1
    assert cdf5.attrs["u64_attr"] == 2**63 + 5


def test_zarr_metadata(samples: dict[str, Path]) -> None:
    repo = imported(samples["netcdf3_classic_scipy.nc"])
    group = repo.root_group["nc"]
    temp = group["temp"].metadata.to_dict()
    assert temp["attributes"]["_FillValue"] == "AAAAAAAA+H8="  # NaN, as xarray encodes it
    assert temp["attributes"]["units"] == "K"
    assert np.isnan(group["temp"].metadata.fill_value)
    count = group["count"].metadata.to_dict()
    assert "_FillValue" not in count["attributes"]  # the default fill value is no mask
    assert count["fill_value"] == -2147483647
    assert group["level"].metadata.to_dict()["fill_value"] == -127
    assert group["code"].metadata.to_dict()["attributes"]["_FillValue"] == -99
    assert group["packed"].attrs["scale_factor"] == 0.01
    assert dict(group.attrs)["int_array"] == [1, 2, 3]


def test_record_layout(samples: dict[str, Path]) -> None:
    """Records are padded to 4 bytes per variable, except with one record variable."""
    classic = header_of(samples["netcdf3_classic_scipy.nc"])
    # time f8, temp 12 f4, precip 2 f8, packed 2 i2, rec_char 5 S1, rec_byte 3 i1, rec_short 3 i2
    assert classic.recsize == 8 + 48 + 16 + 4 + 8 + 4 + 8 and classic.numrecs == 5
    single = header_of(samples["netcdf3_classic_netcdf4.nc"])
    assert [v.name for v in single.record_vars] == ["obs"] and single.recsize == 6
    scipy_single = header_of(samples["netcdf3_single_record_scipy.nc"])
    assert scipy_single.recsize == 3 and scipy_single.numrecs == 6
    tree = scan_local(netcdf3, samples["netcdf3_classic_netcdf4.nc"])
    refs = tree.arrays["obs"].refs
    assert refs.length.tolist() == [6] * 7
    assert np.diff(refs.offset.astype(np.int64)).tolist() == [6] * 6
    assert tree.arrays["x"].refs.length.tolist() == [12]


# ---------------------------------------------------------------------- STREAMING numrecs
@pytest.mark.parametrize(
    "name",
    ["netcdf3_classic_scipy.nc", "netcdf3_64bit_offset_netcdf4.nc", "netcdf3_cdf5_netcdf4.nc"],
)
def test_streaming_numrecs(samples: dict[str, Path], name: str, tmp_path: Path) -> None:
    src = samples[name]
    raw = bytearray(src.read_bytes())
    width = 8 if raw[3] == 5 else 4
    header = header_of(src)
    assert header.numrecs > 1
    raw[4 : 4 + width] = b"\xff" * width
    streaming = tmp_path / name
    streaming.write_bytes(bytes(raw))
    assert header_of(streaming).streaming
    ref = native(src, "netcdf4")
    xr.testing.assert_identical(ours(imported(streaming), "nc"), ref)

    # a record cut short is not counted; trailing padding of the last record may be missing
    last_end = max(v.begin + v.slab for v in header.record_vars)
    last_end += (header.numrecs - 1) * header.recsize
    record_dim = header.dims[header.record_dim][0]
    for size, records in [(last_end, header.numrecs), (last_end - 1, header.numrecs - 1)]:
        cut = tmp_path / f"cut-{size}-{name}"
        cut.write_bytes(bytes(raw[:size]))
        got = ours(imported(cut), "nc")
        assert got.sizes[record_dim] == records
        xr.testing.assert_identical(got, ref.isel({record_dim: slice(0, records)}))


@pytest.mark.parametrize("version", [1, 2, 5])
def test_edge_layouts(tmp_path: Path, version: int) -> None:
    """No records yet; STREAMING without record variables; 0-d and empty attribute lists."""
    dims = [("t", 0), ("x", 2)]
    variables = [("s", [], 6), ("x", [1], 5), ("r", [0, 1], 3)]
    data = {"s": np.array(2.5, ">f8"), "x": np.array([1.5, 2.5], ">f4")}
    empty = tmp_path / "empty.nc"
    write_cdf(empty, version=version, dims=dims, variables=variables, data=data)
    got = ours(imported(empty), "nc")
    assert got["r"].shape == (0, 2) and float(got["s"]) == 2.5
    xr.testing.assert_identical(got, native(empty, "netcdf4"))

    streaming = tmp_path / "streaming.nc"
    write_cdf(
        streaming,
        version=version,
        dims=dims,
        variables=variables[:2],
        numrecs=2**64 - 1 if version == 5 else 2**32 - 1,
        data=data,
    )
    got = ours(imported(streaming), "nc")
    assert got["x"].values.tolist() == [1.5, 2.5] and got.sizes == {"x": 2}

    records = tmp_path / "records.nc"
    rec = np.arange(6, dtype=">i2").reshape(3, 2)
    write_cdf(
        records,
        version=version,
        dims=dims,
        variables=variables,
        numrecs=3,
        data={**data, "r": rec},
        atts={"r": [("_FillValue", 3, np.array([3], ">i2")), ("units", 2, b"m")]},
    )
    got = ours(imported(records), "nc")
    xr.testing.assert_identical(got, native(records, "netcdf4"))
    assert np.isnan(got["r"].values[1, 1]) and got["r"].attrs == {"units": "m"}


def test_nan_and_infinite_attributes_stay_floats(tmp_path: Path) -> None:
    """NaN / inf attribute values read back as floats, as xarray's NetCDF engines show them
    (they used to become the strings "NaN" / "Infinity")."""
    import netCDF4

    path = tmp_path / "nan_attrs.nc"
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as nc:
        nc.createDimension("x", 3)
        nc.setncattr("missing", np.nan)
        var = nc.createVariable("v", "f4", ("x",))
        var[:] = [1.0, 2.0, 3.0]
        var.setncattr("valid_range", np.array([-np.inf, np.inf], "f4"))
        var.setncattr("nan_double", np.float64(np.nan))
    got = ours(imported(path), "nc")
    for engine in ("scipy", "netcdf4"):
        ref = native(path, engine)
        assert_same_attrs(dict(got.attrs), dict(ref.attrs), engine)
        assert_same_attrs(dict(got["v"].attrs), dict(ref["v"].attrs), engine)
    assert isinstance(got.attrs["missing"], float) and np.isnan(got.attrs["missing"])
    assert got["v"].attrs["valid_range"] == [-np.inf, np.inf]


# ---------------------------------------------------------------------- 64-bit offsets
def test_cdf2_offsets_past_4gib_in_a_sparse_file(tmp_path: Path) -> None:
    """Variables beyond 4 GiB, and one whose vsize overflows (2^32 - 1 in the header)."""
    path = tmp_path / "big.nc"
    row = 2**20  # float32 values per row: 4 MiB
    big1 = np.array([1, 2, 3, 4], ">f4").tobytes()
    begin = write_cdf(
        path,
        version=2,
        dims=[("x", 3), ("a", 975), ("b", 1280), ("r", row)],
        variables=[
            ("small", [0], 3),
            ("big1", [1, 3], 5),
            ("big2", [1, 3], 5),
            ("last", [2, 3], 5),
        ],
        data={"small": np.array([1, 2, 3], ">i2")},
        pieces=[
            ("big1", 0, big1),
            ("big2", 975 * row * 4 - 16, np.array([5, 6, 7, 8], ">f4").tobytes()),
            ("last", 0, np.array([9, 10, 11], ">f4").tobytes()),
            ("last", 1280 * row * 4 - 12, np.array([12, 13, 14], ">f4").tobytes()),
        ],
    )
    st = path.stat()
    if st.st_blocks * 512 > 64 * 2**20:
        pytest.skip("the temporary file system does not keep sparse files sparse")
    assert begin["last"] > 2**32 and st.st_size > 12 * GB
    assert header_of(path).variables[3].vsize == 2**32 - 1

    tree = scan_local(netcdf3, path)
    last = tree.arrays["last"].refs
    assert int(last.offset.max()) > 12 * GB
    assert tree.arrays["last"].meta["chunk_grid"]["configuration"]["chunk_shape"] == [4, row]
    assert len(last) == 320 and set(last.length.tolist()) == {16 * 2**20}

    repo = imported(path)
    group = repo.root_group["nc"]
    import netCDF4

    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        np.testing.assert_array_equal(group["small"][:], ds["small"][:])
        np.testing.assert_array_equal(group["big1"][0, :6], ds["big1"][0, :6])
        np.testing.assert_array_equal(group["big2"][-1, -6:], ds["big2"][-1, -6:])
        np.testing.assert_array_equal(group["last"][0, :4], ds["last"][0, :4])
        np.testing.assert_array_equal(group["last"][-1, -4:], ds["last"][-1, -4:])
    assert group["last"][-1, -3:].tolist() == [12, 13, 14]
    lazy = repo.to_xarray("nc")
    assert lazy["big2"][-1, -4:].values.tolist() == [5, 6, 7, 8]


# ---------------------------------------------------------------------- splitting
@pytest.mark.parametrize(
    ("rows", "after", "max_bytes", "chunk_rows"),
    [
        (100, True, 4096, 10),  # 10 rows of 400 bytes per chunk
        (103, True, 4096, 10),  # the last chunk runs into the record data after it
        (104, False, 4096, 8),  # ... or would run past the end: a divisor of 104
        (103, False, 4096, 1),  # 103 is prime, and chunks of one row are still >= 1/16 target
        (103, False, 40_000, 103),  # ... but not here: one chunk
        (100, True, None, 100),  # never split
        (100, True, 40_000, 100),  # small enough
    ],
)
def test_large_fixed_variables_are_split(
    tmp_path: Path, rows: int, after: bool, max_bytes: int | None, chunk_rows: int
) -> None:
    import netCDF4

    path = tmp_path / "split.nc"
    values = np.arange(rows * 50, dtype="f8").reshape(rows, 50)
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as ds:
        ds.createDimension("t", None)
        ds.createDimension("y", rows)
        ds.createDimension("x", 50)
        ds.createVariable("grid", "f8", ("y", "x"))[:] = values
        if after:  # 8 records of 400 bytes after the variable
            ds.createVariable("rec", "f8", ("t", "x"))[:] = np.ones((8, 50))
    repo = imported(path, max_chunk_bytes=max_bytes)
    arr = repo.root_group["nc/grid"]
    assert arr.chunks == (chunk_rows, 50)
    np.testing.assert_array_equal(arr[:], values)
    np.testing.assert_array_equal(arr[rows - 3 :, 7], values[rows - 3 :, 7])
    xr.testing.assert_identical(ours(repo, "nc"), native(path, "netcdf4"))


# ---------------------------------------------------------------------- where things live
def test_repository_locations(
    location: tuple[str, dict[str, Any] | None], samples: dict[str, Path]
) -> None:
    url, options = location
    repo = zarrchive.Repo.create(url, storage_options=options, author="tester")
    path = samples["netcdf3_classic_netcdf4.nc"]
    summary = repo.add_virtual_netcdf(path, "a/b")
    assert (summary.arrays, summary.groups, summary.references) == (3, 1, 9)
    assert summary.sources == 1 and summary.bytes_referenced == 12 + 6 * 7 + 6
    repo.commit("import")
    again = zarrchive.Repo.open(
        url, storage_options=options, authorize_virtual=[path.parent.as_uri() + "/"]
    )
    xr.testing.assert_identical(ours(again, "a/b"), native(path, "netcdf4"))


def test_import_from_s3(s3_server: dict[str, Any], samples: dict[str, Path]) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server)
    key = f"{BUCKET}/{uuid.uuid4().hex}/classic.nc"
    path = samples["netcdf3_single_record_scipy.nc"]
    fs.put(str(path), key)
    repo = memory_repo()
    summary = repo.add_virtual_netcdf(f"s3://{key}", "nc", storage_options=s3_server)
    assert summary.sources == 1
    repo.commit("from s3")
    xr.testing.assert_identical(ours(repo, "nc"), native(path, "scipy"))
    # the repository keeps the options it read the source with (for reading it back)
    assert repo.repository.sources.authorized[f"s3://{BUCKET}/"] == s3_server
    # scanned directly: the header is one ranged read; the checksum is the stat's, and the
    # options are the caller's to record, not the importer's
    info = fs.info(key)
    seen: list[str] = []

    async def stat(url: str) -> SourceStat:
        seen.append(url)
        return SourceStat(info["size"], f"etag={info['ETag']}")

    tree = asyncio.run(netcdf3.scan(f"s3://{key}", stat=stat, storage_options=s3_server))
    assert seen == [f"s3://{key}"]
    assert tree.arrays["bytes"].refs.checksums == [f"size={info['size']};etag={info['ETag']}"]
    assert tree.source_options == {}


def test_fresh_reader_in_a_subprocess(tmp_path: Path, samples: dict[str, Path]) -> None:
    location = tmp_path / "repo"
    path = samples["netcdf3_classic_scipy.nc"]
    repo = zarrchive.Repo.create(location, author="tester")
    repo.add_virtual_netcdf(path, "nc")
    repo.commit("import")
    ds = read_fresh(location, path.parent.as_uri() + "/", ["nc"], tmp_path / "ds.pickle")["nc"]
    xr.testing.assert_identical(ds, native(path, "scipy"))
    xr.testing.assert_identical(ds, native(path, "netcdf4"))


# ---------------------------------------------------------------------- errors
def _error_files(d: Path, samples: dict[str, Path]) -> list[tuple[str, Path, Any, list[str]]]:
    classic = samples["netcdf3_classic_scipy.nc"].read_bytes()
    header = header_of(samples["netcdf3_classic_scipy.nc"])
    cases: list[tuple[str, Path, Any, list[str]]] = []

    def case(label: str, name: str, error: Any, words: list[str]) -> Path:
        p = d / name
        cases.append((label, p, error, [*words]))
        return p

    case("header cut short", "short.nc", InvalidInputError, ["header", "truncated"]).write_bytes(
        classic[: header.size - 10]
    )
    temp = next(v for v in header.variables if v.name == "temp")
    case("data cut short", "cut.nc", InvalidInputError, ["'rec_short'", "truncated"]).write_bytes(
        classic[: temp.begin + 3 * header.recsize]
    )
    write_cdf(
        case("unlimited not first", "unlim.nc", InvalidInputError, ["'v'", "unlimited"]),
        dims=[("x", 2), ("t", 0)],
        variables=[("v", [0, 1], 5)],
    )
    write_cdf(
        case("CDF-5 type in CDF-1", "type.nc", InvalidInputError, ["'v'", "type 10"]),
        dims=[("x", 2)],
        variables=[("v", [0], 10)],
    )
    write_cdf(
        case("data inside the header", "begin.nc", InvalidInputError, ["'v'", "header"]),
        dims=[("x", 2)],
        variables=[("v", [0], 5)],
        begins={"v": 8},
    )
    write_cdf(
        case("duplicate variables", "dup.nc", InvalidInputError, ["'v'"]),
        dims=[("x", 2)],
        variables=[("v", [0], 5), ("v", [0], 6)],
    )
    write_cdf(
        case("dimension id out of range", "dimid.nc", InvalidInputError, ["'v'", "id 3"]),
        dims=[("x", 2)],
        variables=[("v", [3], 5)],
    )
    write_cdf(
        case("two unlimited dimensions", "unlim2.nc", InvalidInputError, ["unlimited"]),
        dims=[("t", 0), ("u", 0)],
        variables=[],
    )
    write_cdf(
        case("reserved Zarr name", "dunder.nc", UnsupportedFeatureError, ["'__hidden'"]),
        dims=[("x", 2)],
        variables=[("ok", [0], 5), ("__hidden", [0], 5)],
    )
    write_cdf(
        case("zarr.json as a name", "zjson.nc", UnsupportedFeatureError, ["'zarr.json'"]),
        dims=[("x", 2)],
        variables=[("zarr.json", [0], 5)],
    )
    raw = bytearray(classic)
    raw[8:12] = struct.pack(">i", 11)  # the dimension list's tag replaced by the variables'
    case("bad list tag", "tag.nc", InvalidInputError, ["tag"]).write_bytes(bytes(raw))
    return cases


@pytest.fixture
def busy_repo(tmp_path: Path) -> tuple[zarrchive.Repo, Path]:
    """A local repository with one commit and an uncommitted array."""
    location = tmp_path / "repo"
    repo = zarrchive.Repo.create(location, author="tester")
    repo.root_group.attrs["v"] = 1
    repo.commit("first")
    repo.root_group.create_array("pending", shape=(3,), dtype="i4")[:] = [1, 2, 3]
    assert repo.status().has_changes
    return repo, location


def test_errors_leave_the_repository_unchanged(
    busy_repo: tuple[zarrchive.Repo, Path], samples: dict[str, Path], tmp_path: Path
) -> None:
    repo, location = busy_repo
    d = tmp_path / "bad"
    d.mkdir()
    before = repo_state(repo, location)
    for label, path, error, words in _error_files(d, samples):
        with pytest.raises(error) as info:
            repo.add_virtual_netcdf(path, "new")
        for w in words:
            assert w in str(info.value), (label, str(info.value))
        assert str(path) in str(info.value), label
        assert repo_state(repo, location) == before, label
        with pytest.raises(error):
            repo.add_virtual_netcdf(path, "pending", overwrite=True)
        assert repo_state(repo, location) == before, label
    good = samples["netcdf3_classic_scipy.nc"]
    with pytest.raises(InvalidInputError, match="frobnicate"):
        repo.add_virtual_netcdf(good, "new", frobnicate=1)
    with pytest.raises(InvalidInputError, match="max_chunk_bytes"):
        repo.add_virtual_netcdf(good, "new", max_chunk_bytes=0)
    with pytest.raises(NotFoundError):
        repo.add_virtual_netcdf(d / "missing.nc", "new")
    with pytest.raises(InvalidInputError, match="already exists"):
        repo.add_virtual_netcdf(good, "pending")
    assert repo_state(repo, location) == before
    np.testing.assert_array_equal(repo.root_group["pending"][:], [1, 2, 3])
    repo.commit("pending")


def test_not_a_classic_file(tmp_path: Path) -> None:
    path = tmp_path / "x.nc"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(InvalidInputError, match="not a NetCDF classic file"):
        scan_local(netcdf3, path)


# ---------------------------------------------------------------------- fuzz
_NETCDF_C = """
import pickle, sys
import numpy as np
import netCDF4
for path in sys.argv[1:]:
    try:
        out = {}
        with netCDF4.Dataset(path) as ds:
            for name, v in ds.variables.items():
                if v.size * v.dtype.itemsize > 2**20:
                    out[name] = None  # claimed far larger than any sample: not read
                    continue
                v.set_auto_maskandscale(False)
                v.set_auto_chartostring(False)
                v.set_always_mask(False)
                out[name] = np.array(v[...])
    except Exception as exc:
        out = repr(exc)
    with open(path + ".ref", "wb") as f:
        pickle.dump(out, f)
"""


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_fuzz_corrupt_and_truncated(samples: dict[str, Path], name: str, tmp_path: Path) -> None:
    src = samples[name]
    data = src.read_bytes()
    header_size = header_of(src).size
    rng = np.random.default_rng(sum(name.encode()))
    paths = []
    for i in range(30):
        raw = bytearray(data)
        if i % 2:
            raw = raw[: int(rng.integers(0, len(raw)))]
        else:
            for _ in range(int(rng.integers(1, 3))):
                at = int(rng.integers(0, header_size))
                raw[at] = (raw[at] + int(rng.integers(1, 256))) % 256
        p = tmp_path / f"case{i:02d}.nc"
        p.write_bytes(bytes(raw))
        paths.append(p)
    # netCDF-C, the reference reader, may crash on corrupt files: a separate process
    subprocess.run(
        [sys.executable, "-c", _NETCDF_C, *map(str, paths)], capture_output=True, timeout=120
    )
    imported_ok = compared = 0
    for p in paths:
        repo = memory_repo()
        try:
            repo.add_virtual_netcdf(p, "nc")
        except ZarrchiveError:
            assert not repo.status().has_changes
            continue
        imported_ok += 1
        ref_file = Path(str(p) + ".ref")
        ref = pickle.loads(ref_file.read_bytes()) if ref_file.exists() else "crashed"
        group = repo.root_group["nc"]
        for var in group.array_keys():
            try:
                values = group[var][...]
            except ZarrchiveError:
                continue
            if isinstance(ref, dict) and ref.get(var) is not None:
                expected = ref[var]
                assert values.shape == expected.shape, (p.name, var)
                np.testing.assert_array_equal(values, expected, err_msg=f"{p.name}: {var}")
                compared += 1
    assert imported_ok > 0 and compared > 0
