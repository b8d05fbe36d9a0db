"""NetCDF4 and HDF5 sample files, written with netCDF4-python and h5py (plus hdf5plugin).

- ``netcdf4_sample.nc``: NetCDF4 with groups, an unlimited ``time`` (units + noleap
  calendar), zlib + shuffle, fletcher32, a contiguous variable, a 0-d scalar, a char
  variable, packed variables (float64 and float32 ``scale_factor`` / ``add_offset``,
  ``_FillValue``), NaN data, a NaN attribute, a big-endian variable, unwritten chunks and
  dimension-only dimensions (``nv``, ``step``).
- ``hdf5_sample.h5``: plain HDF5 (512-byte user block) with nested groups, attributes of many
  types, a compact dataset, contiguous and chunked datasets, gzip + shuffle, fletcher32,
  blosc and zstd (hdf5plugin), big-endian, fixed-length strings, bool, complex, 0-d,
  partially written chunks, empty and resizable datasets, dimension scales, datasets without
  scales (phony dimensions) and a soft link.
- ``hdf5_unsupported.h5``: what cannot be virtual: compound, variable-length strings, enum,
  object references, opaque, LZ4 and bitshuffle (hdf5plugin framings with no Zarr v3
  codec), scale-offset, n-bit, a chunk stored with its filter skipped, an external link,
  and one scale-offset dataset too large to inline.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def make(out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plain, unsupported = out_dir / "hdf5_sample.h5", out_dir / "hdf5_unsupported.h5"
    if "netCDF4" in sys.modules or "HDF5_PLUGIN_PATH" in os.environ:
        # importing netCDF4 points HDF5_PLUGIN_PATH at its own filter plugins, built against
        # its own HDF5 library: h5py's HDF5 then fails to create blosc / zstd datasets ("error
        # during user callback"). Write these files in a process without that variable.
        env = {k: v for k, v in os.environ.items() if k != "HDF5_PLUGIN_PATH"}
        subprocess.run(
            [sys.executable, __file__, "--plain", str(plain), str(unsupported)],
            check=True,
            env=env,
        )
    else:
        make_hdf5(plain)
        make_unsupported(unsupported)
    return [make_netcdf4(out_dir / "netcdf4_sample.nc"), plain, unsupported]


def make_netcdf4(path: Path) -> Path:
    import netCDF4

    rng = np.random.default_rng(42)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.title = "zarrchive NetCDF4 sample"
        nc.version = np.int32(3)
        nc.levels = np.array([1, 2, 3], dtype="i4")
        nc.nan_attr = np.nan
        nc.createDimension("time", None)
        nc.createDimension("lat", 4)
        nc.createDimension("lon", 5)
        nc.createDimension("station", 3)
        nc.createDimension("nchar", 6)
        nc.createDimension("nv", 2)  # a dimension without a coordinate variable

        time = nc.createVariable("time", "f8", ("time",))
        time.units = "days since 2000-01-01"
        time.calendar = "noleap"
        time.standard_name = "time"
        time[:] = np.arange(6.0)
        lat = nc.createVariable("lat", "f4", ("lat",))
        lat.units = "degrees_north"
        lat[:] = np.linspace(-45, 45, 4)
        lon = nc.createVariable("lon", "f4", ("lon",))
        lon.units = "degrees_east"
        lon[:] = np.arange(5) * 10.0

        temp = nc.createVariable(
            "temp",
            "f4",
            ("time", "lat", "lon"),
            zlib=True,
            shuffle=True,
            complevel=4,
            chunksizes=(2, 4, 5),
        )
        temp.units = "K"
        temp.long_name = "air temperature"
        temp.valid_range = np.array([150.0, 350.0], dtype="f4")
        temp[:] = rng.normal(280, 5, (6, 4, 5)).astype("f4")

        precip = nc.createVariable("precip", "f8", ("lat", "lon"), contiguous=True)
        values = np.arange(20.0).reshape(4, 5)
        values[values % 7 == 0] = np.nan
        precip[:] = values
        precip.units = "mm"

        chk = nc.createVariable(
            "chk", "f4", ("station",), fletcher32=True, zlib=True, chunksizes=(3,)
        )
        chk[:] = [1.0, 2.0, 3.0]

        scalar = nc.createVariable("scalar", "f8", ())
        scalar[...] = 3.5
        scalar.comment = "a 0-d variable"

        label = nc.createVariable("label", "S1", ("station", "nchar"))
        label[:] = netCDF4.stringtochar(np.array(["alpha", "beta", "gamma"], dtype="S6"))

        packed = nc.createVariable("packed", "i2", ("lat", "lon"), fill_value=np.int16(-9999))
        packed.scale_factor = 0.01
        packed.add_offset = 5.0
        packed.set_auto_maskandscale(False)
        raw = np.arange(20, dtype="i2").reshape(4, 5) * 37 - 300
        raw[1, 2] = -9999  # masked
        packed[:] = raw

        packed32 = nc.createVariable("packed32", "i2", ("station",), fill_value=np.int16(-1))
        packed32.scale_factor = np.float32(0.1)
        packed32.add_offset = np.float32(1.5)
        packed32.set_auto_maskandscale(False)
        packed32[:] = np.array([7, -1, 123], dtype="i2")

        count = nc.createVariable("count", "i4", ("time",), fill_value=np.int32(-1))
        count[:] = np.array([1, 2, -1, 4, 5, 6], dtype="i4")

        bounds = nc.createVariable("lat_bnds", "f4", ("lat", "nv"))
        bounds[:] = np.stack([np.linspace(-50, 40, 4), np.linspace(-40, 50, 4)], axis=1)

        flags = nc.createVariable("flags", "u1", ("station",))
        flags.flag_values = np.array([0, 1, 2], dtype="u1")
        flags.flag_meanings = "none low high"
        flags[:] = np.array([0, 2, 1], dtype="u1")

        # chunks never written: read as the fill value (masked: _FillValue is set)
        unwritten = nc.createVariable(
            "unwritten", "f4", ("time", "lat"), chunksizes=(1, 4), fill_value=np.float32(-1)
        )
        unwritten[0, :] = np.arange(4, dtype="f4")

        fc = nc.createGroup("forecast")
        fc.description = "a NetCDF4 group"
        fc.createDimension("step", 3)
        step = fc.createVariable("step", "i4", ("step",))
        step.units = "hours"
        step[:] = [0, 6, 12]
        t2m = fc.createVariable(
            "t2m", ">f8", ("step", "lat", "lon"), endian="big", zlib=True, chunksizes=(1, 4, 5)
        )
        t2m.units = "K"
        t2m[:] = 270 + np.arange(60.0).reshape(3, 4, 5) / 10
        member = fc.createGroup("member")
        member.createDimension("number", 2)
        ens = member.createVariable("ens", "f4", ("number", "step"), fill_value=np.float32(np.nan))
        ens[:] = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]], dtype="f4")
    return path


def _compact(group, name: str, data: np.ndarray) -> None:  # noqa: ANN001
    import h5py

    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    space = h5py.h5s.create_simple(data.shape)
    h5py.h5d.create(group.id, name.encode(), h5py.h5t.py_create(data.dtype), space, dcpl=dcpl)
    group[name][...] = data


def make_hdf5(path: Path) -> Path:
    import h5py
    import hdf5plugin

    with h5py.File(path, "w", userblock_size=512) as f:
        f.attrs["title"] = "zarrchive plain HDF5 sample"
        f.attrs["fixed_bytes"] = np.bytes_(b"fixed length")
        f.attrs["int_attr"] = np.int32(7)
        f.attrs["f32_attr"] = np.float32(0.25)
        f.attrs["arr_attr"] = np.array([1.5, 2.5])
        f.attrs["one_elem"] = np.array([42], dtype="i8")
        f.attrs["matrix"] = np.arange(6, dtype="i2").reshape(2, 3)
        f.attrs["flag"] = np.bool_(True)
        f.attrs["nan_attr"] = np.float64(np.nan)
        f.attrs["inf_attr"] = np.float32(-np.inf)
        f.attrs["big"] = np.uint64(2**63 + 5)
        f.attrs["names"] = np.array(["a", "bb", "ccc"], dtype=h5py.string_dtype())
        f.attrs["empty"] = h5py.Empty("f4")

        x = f.create_dataset("x", data=np.arange(6.0) * 0.5, fillvalue=np.nan)
        x.make_scale("x")
        x.attrs["units"] = "m"
        y = f.create_dataset("y", data=np.array([10, 20, 30, 40], dtype="i8"))
        y.make_scale("y")

        grid = f.create_dataset(
            "grid",
            data=np.arange(24, dtype="f4").reshape(4, 6) / 3,
            chunks=(2, 3),
            compression="gzip",
            shuffle=True,
            fillvalue=np.nan,
        )
        grid.dims[0].attach_scale(y)
        grid.dims[1].attach_scale(x)
        grid.attrs["units"] = "K"
        grid.attrs["_FillValue"] = np.float32(np.nan)
        _compact(f, "compact", np.array([11, 22, 33, 44], dtype="<i4"))
        _compact(f, "compact2d", np.arange(6, dtype=">f8").reshape(2, 3) + 0.5)
        f.create_dataset("contig", data=np.arange(4096, dtype="<f8").reshape(512, 8))
        f.create_dataset(
            "blosc",
            data=np.arange(1000, dtype="f4").reshape(10, 100),
            chunks=(5, 50),
            **hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE),
        )
        f.create_dataset(
            "zstd",
            data=(np.arange(300, dtype="i2") % 17).reshape(3, 100),
            chunks=(1, 100),
            **hdf5plugin.Zstd(clevel=3),
        )
        f.create_dataset(
            "fletcher",
            data=np.linspace(0, 1, 9),
            chunks=(4,),
            fletcher32=True,
            compression="gzip",
            shuffle=True,
        )
        f.create_dataset(
            "big_endian", data=np.arange(-5, 5, dtype=">i4"), chunks=(4,), compression="gzip"
        )
        f.create_dataset("strings", data=np.array([b"one", b"two", b"three"], dtype="S8"))
        f.create_dataset("flags", data=np.array([True, False, True]))
        f.create_dataset("cplx", data=np.array([1 + 2j, -3.5j], dtype="c8"))
        f.create_dataset("scalar", data=np.float32(2.5))
        f.create_dataset("scalar_str", data=np.bytes_(b"hello"))
        sparse = f.create_dataset("sparse", shape=(8, 8), dtype="i2", chunks=(4, 4), fillvalue=-5)
        sparse[0:4, 4:8] = np.arange(16, dtype="i2").reshape(4, 4)
        f.create_dataset("zeros", data=np.array([0, 1, 2, 0], dtype="i2"))  # fill value 0
        f.create_dataset("empty", shape=(0,), dtype="f8", chunks=(10,), maxshape=(None,))
        grow = f.create_dataset("grow", shape=(3,), dtype="u2", chunks=(2,), maxshape=(None,))
        grow[:] = [1, 2, 3]
        grow.resize((5,))
        grow[3:] = [4, 5]
        f.create_dataset("nodims2d", data=np.arange(12, dtype="u1").reshape(3, 4))
        f.create_dataset("nodims1d", data=np.arange(3, dtype="i8") * -1)
        f["link_to_grid"] = h5py.SoftLink("/grid")

        a = f.create_group("a")
        a.attrs["level"] = np.int16(1)
        b = a.create_group("b")
        b.attrs["description"] = "nested group"
        c = b.create_group("c")
        c.create_dataset("deep", data=np.arange(5, dtype="f4"), chunks=(2,), compression="gzip")
        d = b.create_dataset("data", data=np.linspace(0, 1, 12).reshape(6, 2), chunks=(3, 2))
        pair = b.create_dataset("pair", data=np.array([0, 1], dtype="i4"))
        pair.make_scale("pair")
        d.dims[0].attach_scale(x)  # a dimension scale of the root group
        d.dims[1].attach_scale(pair)
        d.attrs["long_name"] = "data in a nested group"
        a.create_group("empty_group")
    return path


def make_unsupported(path: Path) -> Path:
    import h5py
    import hdf5plugin

    with h5py.File(path, "w") as f:
        f.attrs["title"] = "datasets that cannot be virtual"
        f.create_dataset("ok", data=np.arange(4, dtype="f4"))
        table = np.array([(1, 2.5), (2, 3.5)], dtype=[("id", "<i4"), ("value", "<f8")])
        f.create_dataset("table", data=table)
        f.create_dataset("names", data=["alpha", "beta", "gamma"], dtype=h5py.string_dtype())
        cloud = h5py.enum_dtype({"clear": 0, "cloudy": 1, "rain": 2}, basetype="u1")
        f.create_dataset("cloud", data=np.array([0, 2, 1, 1], dtype="u1"), dtype=cloud)
        data = np.arange(200, dtype="f4").reshape(2, 100)
        f.create_dataset("lz4", data=data, chunks=(1, 100), **hdf5plugin.LZ4())
        f.create_dataset("bitshuffle", data=data, chunks=(1, 100), **hdf5plugin.Bitshuffle())
        f.create_dataset("scaleoffset", data=np.arange(50, dtype="i4"), scaleoffset=0)
        nbit_type = h5py.h5t.STD_I32LE.copy()  # HDF5 2 refuses reduced-precision types
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((8,))
        dcpl.set_filter(h5py.h5z.FILTER_NBIT)
        space = h5py.h5s.create_simple((16,))
        h5py.h5d.create(f.id, b"nbit", nbit_type, space, dcpl=dcpl)
        f["nbit"][...] = np.arange(16, dtype="i4") - 8
        refs = f.create_dataset("refs", shape=(2,), dtype=h5py.ref_dtype)
        refs[0] = f["ok"].ref
        refs[1] = f["table"].ref
        f.create_dataset("opaque", data=np.array([b"\x01\x02", b"\x03\x04"], dtype="V2"))
        masked = f.create_dataset(
            "masked", shape=(8,), dtype="<i4", chunks=(4,), compression="gzip"
        )
        masked[:4] = [1, 2, 3, 4]
        # the second chunk stored raw, its deflate filter skipped (filter_mask bit 0)
        masked.id.write_direct_chunk((4,), np.array([5, 6, 7, 8], "<i4").tobytes(), 1)
        f["external"] = h5py.ExternalLink("hdf5_sample.h5", "/grid")
        f.create_dataset("scaleoffset_big", data=np.arange(10_000, dtype="f8"), scaleoffset=0)
    return path


if __name__ == "__main__":
    if sys.argv[1:2] == ["--plain"]:
        make_hdf5(Path(sys.argv[2]))
        make_unsupported(Path(sys.argv[3]))
    else:
        for p in make(HERE):
            print(p, p.stat().st_size)
