"""NetCDF classic sample files (CDF-1, CDF-2, CDF-5), written with scipy and netCDF4.

``make(out_dir)`` writes the files below and returns their paths; the lead's
``make_samples.py`` calls it. Every file is small (a few KiB) and deterministic.

- ``netcdf3_classic_scipy.nc``: CDF-1 from ``scipy.io.netcdf_file``: 5 records, record and
  non-record variables of every classic type, char variables (2-D names and a 1-D flag), record
  variables whose slabs need padding (byte, short, char), ``_FillValue`` on short, int and float
  variables (NaN and 1e20), packed shorts (``scale_factor``/``add_offset``), time with units
  and calendar, global attributes of every type (including arrays).
- ``netcdf3_64bit_offset_netcdf4.nc``: CDF-2 from netCDF4 (``NETCDF3_64BIT_OFFSET``): 0-d
  variables, ``_FillValue`` on every numeric type, a variable holding the *default* fill value
  without ``_FillValue`` (must not be masked), a record variable written only in some records
  (the library fills the rest), ``missing_value``, ``valid_range``, ``_Unsigned`` bytes (with
  and without ``_FillValue``), float32 ``scale_factor``, a ``noleap`` time axis, a UTF-8
  attribute.
- ``netcdf3_classic_netcdf4.nc``: CDF-1 from netCDF4 (``NETCDF3_CLASSIC``) with a single record
  variable of 3 shorts per record: the one case where records are not padded to 4 bytes.
- ``netcdf3_single_record_scipy.nc``: CDF-1 from scipy, a single record variable of 3 bytes per
  record (no padding between records) and a fixed variable after it in the header.
- ``netcdf3_cdf5_netcdf4.nc``: CDF-5 from netCDF4 (``NETCDF3_64BIT_DATA``): unsigned and 64-bit
  types, record and non-record, with and without ``_FillValue``, attributes of those types.
- ``netcdf3_nan_fill_scipy.nc``: CDF-2 from scipy, then one attribute value patched in place:
  an int variable whose ``_FillValue`` is a double NaN (xarray drops it, kerchunk fails on it);
  also an int variable with an integral double ``_FillValue`` (-999.0) and a float NaN fill.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

__all__ = ["make"]


def _chars(strings: list[str], width: int) -> np.ndarray:
    out = np.zeros((len(strings), width), dtype="S1")
    for i, s in enumerate(strings):
        for j, c in enumerate(s.encode()[:width]):
            out[i, j] = bytes([c])
    return out


def classic_scipy(path: Path) -> Path:
    from scipy.io import netcdf_file

    rng = np.random.default_rng(1)
    with netcdf_file(path, "w", version=1) as f:
        f.title = "NetCDF3 classic sample (scipy)"
        f.Conventions = "CF-1.8"
        f.history = "written by sample_data/_make_netcdf3.py"
        f.int_attr = np.int32(42)
        f.short_attr = np.int16(-7)
        f.byte_attr = np.int8(3)
        f.float_attr = np.float32(0.1)
        f.double_attr = np.float64(2.5)
        f.double_array = np.array([1.5, -2.25, 1e300])
        f.int_array = np.array([1, 2, 3], dtype="i4")
        f.createDimension("time", None)  # scipy: the unlimited dimension must come first
        f.createDimension("lat", 3)
        f.createDimension("lon", 4)
        f.createDimension("station", 2)
        f.createDimension("strlen", 5)
        f.createDimension("nv", 3)

        lat = f.createVariable("lat", "f", ("lat",))
        lat[:] = [-10.0, 0.0, 10.0]
        lat.units = "degrees_north"
        lon = f.createVariable("lon", "d", ("lon",))
        lon[:] = [0.0, 90.0, 180.0, 270.0]
        lon.units = "degrees_east"
        name = f.createVariable("station_name", "c", ("station", "strlen"))
        name[:] = _chars(["alpha", "be"], 5)
        name.long_name = "station name"
        flag = f.createVariable("flag", "c", ("station",))
        flag[:] = np.array([b"y", b"n"], dtype="S1")
        level = f.createVariable("level", "b", ("nv",))
        level[:] = np.array([-1, 0, 127], dtype="i1")
        code = f.createVariable("code", "h", ("lat", "lon"))
        code[:] = np.array([[1, 2, -99, 4], [5, -99, 7, 8], [9, 10, 11, -32767]], dtype="i2")
        code._FillValue = np.int16(-99)
        count = f.createVariable("count", "i", ("station",))
        count[:] = [7, -2147483647]  # the default int fill: not a mask without _FillValue
        count.long_name = "plain int"

        time = f.createVariable("time", "d", ("time",))
        time.units = "hours since 2000-01-01 00:00:00"
        time.calendar = "standard"
        time.standard_name = "time"
        temp = f.createVariable("temp", "f", ("time", "lat", "lon"))
        temp.units = "K"
        temp._FillValue = np.float32(np.nan)
        precip = f.createVariable("precip", "d", ("time", "station"))
        precip._FillValue = np.float64(1e20)
        precip.units = "mm"
        packed = f.createVariable("packed", "h", ("time", "station"))
        packed.scale_factor = np.float64(0.01)  # a Python float would be written as NC_FLOAT
        packed.add_offset = np.float64(273.15)
        packed._FillValue = np.int16(-32767)
        rec_char = f.createVariable("rec_char", "c", ("time", "strlen"))
        rec_byte = f.createVariable("rec_byte", "b", ("time", "nv"))
        rec_short = f.createVariable("rec_short", "h", ("time", "nv"))
        rec_short.valid_min = np.int16(-100)

        nt = 5
        time[:nt] = np.arange(nt) * 6.0
        t = rng.normal(280, 5, (nt, 3, 4)).astype("f4")
        t[1, 2, 3] = np.nan
        temp[:nt] = t
        p = rng.gamma(1.0, 2.0, (nt, 2))
        p[3, 0] = 1e20
        precip[:nt] = p
        packed[:nt] = np.array([[100, -32767], [200, 300], [-5, 0], [1, 2], [3, 4]], dtype="i2")
        rec_char[:nt] = _chars(["one", "two", "three", "four", ""], 5)
        rec_byte[:nt] = np.arange(nt * 3, dtype="i1").reshape(nt, 3) - 7
        rec_short[:nt] = np.arange(nt * 3, dtype="i2").reshape(nt, 3) * 1000 - 7000
    return path


def offset64_netcdf4(path: Path) -> Path:
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as ds:
        ds.title = "NetCDF3 64-bit offset sample (netCDF4)"
        ds.setncattr("unicode", "température ° ✓")
        ds.float_array = np.array([1.0, 2.5], dtype="f4")
        ds.short_array = np.array([-1, 1], dtype="i2")
        ds.byte_array = np.array([1, 2, 3, 4, 5], dtype="i1")
        ds.createDimension("time", None)
        ds.createDimension("y", 2)
        ds.createDimension("x", 3)

        scalar_d = ds.createVariable("scalar_double", "f8", ())
        scalar_d.assignValue(3.25)
        scalar_i = ds.createVariable("scalar_int", "i4", (), fill_value=np.int32(-1))
        scalar_i.assignValue(-1)  # equals its _FillValue: masked
        x = ds.createVariable("x", "i4", ("x",))
        x[:] = [10, 20, 30]
        y = ds.createVariable("y", "f8", ("y",))
        y[:] = [0.5, 1.5]
        y.units = "m"
        for name, dt, fill, data in [
            ("b_fill", "i1", np.int8(-1), [[1, -1, 3], [4, 5, 6]]),
            ("s_fill", "i2", np.int16(-999), [[1, -999, 3], [4, 5, -999]]),
            ("i_fill", "i4", np.int32(2**31 - 1), [[1, 2, 3], [2**31 - 1, 5, 6]]),
            ("f_fill", "f4", np.float32(-1e30), [[1.5, -1e30, 3.5], [4.5, 5.5, 6.5]]),
            ("f_nan", "f4", np.float32(np.nan), [[1.5, np.nan, 3.5], [4.5, 5.5, np.nan]]),
            ("d_fill", "f8", np.float64(-9999.0), [[1.25, 2.25, -9999.0], [4.25, 5.25, 6.25]]),
            ("d_nan", "f8", np.float64(np.nan), [[np.nan, 2.0, 3.0], [4.0, 5.0, 6.0]]),
        ]:
            v = ds.createVariable(name, dt, ("y", "x"), fill_value=fill)
            v[:] = np.array(data, dtype=dt)
            v.long_name = f"{dt} with _FillValue"
        # the netCDF default fill values as data, without a _FillValue attribute: not masked
        no_fill = ds.createVariable("default_fill_values", "f4", ("x",))
        no_fill[:] = np.array([netCDF4.default_fillvals["f4"], 1.0, 2.0], dtype="f4")
        no_fill_i = ds.createVariable("default_fill_ints", "i2", ("x",))
        no_fill_i[:] = np.array([netCDF4.default_fillvals["i2"], 1, 2], dtype="i2")
        ubyte = ds.createVariable("ubyte", "i1", ("x",))
        ubyte._Unsigned = "true"
        ubyte[:] = np.array([1, -1, -128], dtype="i1")
        ubyte_fill = ds.createVariable("ubyte_fill", "i1", ("x",), fill_value=np.int8(-2))
        ubyte_fill._Unsigned = "true"
        ubyte_fill.set_auto_maskandscale(False)
        ubyte_fill[:] = np.array([1, -2, -128], dtype="i1")  # 254 is the (unsigned) fill
        missing = ds.createVariable("with_missing", "f8", ("x",))
        missing.missing_value = np.float64(-1.0)
        missing.valid_range = np.array([0.0, 100.0])
        missing[:] = [1.0, -1.0, 50.0]

        time = ds.createVariable("time", "i4", ("time",))
        time.units = "days since 1900-01-01"
        time.calendar = "noleap"
        time[:] = [0, 365, 730, 1095]
        field = ds.createVariable("field", "f8", ("time", "y", "x"))
        field[:] = np.arange(24.0).reshape(4, 2, 3) / 8
        field.units = "m s-1"
        field.cell_methods = "time: mean"
        packed = ds.createVariable("packed32", "i2", ("time",), fill_value=np.int16(-1))
        packed.scale_factor = np.float32(0.5)
        packed.add_offset = np.float32(100.0)
        packed.set_auto_maskandscale(False)
        packed[:] = np.array([0, 1, -1, 3], dtype="i2")
        label = ds.createVariable("label", "S1", ("time", "x"))
        label.set_auto_chartostring(False)
        label[:] = _chars(["abc", "d", "", "xyz"], 3)
        sparse = ds.createVariable("sparse", "f4", ("time",))
        sparse[0] = 1.0
        sparse[2] = 3.0  # records 1 and 3 keep the library's default fill: not masked
    return path


def single_record_netcdf4(path: Path) -> Path:
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as ds:
        ds.comment = "exactly one record variable: records are not padded"
        ds.createDimension("x", 3)
        ds.createDimension("record", None)
        x = ds.createVariable("x", "f4", ("x",))
        x[:] = [0.5, 1.5, 2.5]
        obs = ds.createVariable("obs", "i2", ("record", "x"), fill_value=np.int16(-5))
        obs[:] = np.arange(21, dtype="i2").reshape(7, 3) - 5
        obs.units = "1"
        tail = ds.createVariable("after", "i2", ("x",))
        tail[:] = [7, 8, 9]
    return path


def single_record_scipy(path: Path) -> Path:
    from scipy.io import netcdf_file

    with netcdf_file(path, "w", version=1) as f:
        f.createDimension("t", None)
        f.createDimension("n", 3)
        b = f.createVariable("bytes", "b", ("t", "n"))
        b[:6] = (np.arange(18).reshape(6, 3) - 9).astype("i1")
        b.note = "3 bytes per record, no padding between records"
        tail = f.createVariable("fixed", "h", ("n",))
        tail[:] = [1, 2, 3]
    return path


def cdf5_netcdf4(path: Path) -> Path:
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_DATA") as ds:
        ds.title = "CDF-5 sample"
        ds.u64_attr = np.uint64(2**63 + 5)
        ds.i64_attr = np.array([-(2**62), 2**62], dtype="i8")
        ds.createDimension("t", None)
        ds.createDimension("n", 3)
        for name, dt, fill in [
            ("u8", "u1", None),
            ("u16", "u2", np.uint16(65000)),
            ("u32", "u4", None),
            ("i64", "i8", np.int64(-(2**40))),
            ("u64", "u8", np.uint64(2**64 - 1)),
        ]:
            v = ds.createVariable(name, dt, ("n",), fill_value=fill)
            info = np.iinfo(dt)
            data = np.array([info.min, info.max, 1], dtype=dt)
            if fill is not None:
                data[2] = fill
            v[:] = data
            v.kind = dt
        rec = ds.createVariable("rec_u16", "u2", ("t", "n"))
        rec[:] = np.arange(12, dtype="u2").reshape(4, 3) * 5000
        rec_i64 = ds.createVariable("rec_i64", "i8", ("t",), fill_value=np.int64(0))
        rec_i64[:] = np.array([0, 1, -(2**50), 2**50], dtype="i8")
    return path


def nan_fill_scipy(path: Path) -> Path:
    """Int variables with double ``_FillValue`` attributes (NaN is patched in afterwards:
    scipy cannot write it, netCDF-C refuses a _FillValue of another type)."""
    from scipy.io import netcdf_file

    marker = 1234.5
    with netcdf_file(path, "w", version=2) as f:
        f.createDimension("n", 4)
        a = f.createVariable("int_nan_fill", "i", ("n",))
        a._FillValue = np.float64(marker)
        a[:] = [1, 2, 1234, 4]
        a.comment = "_FillValue is a double NaN"
        b = f.createVariable("int_double_fill", "i", ("n",))
        b._FillValue = np.float64(-999.0)
        b[:] = [-999, 2, 3, 4]
        c = f.createVariable("float_nan_fill", "f", ("n",))
        c._FillValue = np.float32(np.nan)
        c[:] = [1.0, np.nan, 3.0, 4.0]
    raw = bytearray(path.read_bytes())
    needle = struct.pack(">d", marker)
    at = raw.index(needle)
    raw[at : at + 8] = struct.pack(">d", float("nan"))
    path.write_bytes(bytes(raw))
    return path


def make(out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        classic_scipy(out_dir / "netcdf3_classic_scipy.nc"),
        offset64_netcdf4(out_dir / "netcdf3_64bit_offset_netcdf4.nc"),
        single_record_netcdf4(out_dir / "netcdf3_classic_netcdf4.nc"),
        single_record_scipy(out_dir / "netcdf3_single_record_scipy.nc"),
        cdf5_netcdf4(out_dir / "netcdf3_cdf5_netcdf4.nc"),
        nan_fill_scipy(out_dir / "netcdf3_nan_fill_scipy.nc"),
    ]


if __name__ == "__main__":
    for p in make(Path(__file__).parent):
        print(p, p.stat().st_size)
