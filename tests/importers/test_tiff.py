"""TIFF / GeoTIFF / COG files imported as virtual chunks, compared with tifffile's own reading.

The reference reader is tifffile (``TiffFile.series[0].levels[k].asarray()``): it decodes the
same segments with the same imagecodecs functions, so every array, JPEG and WebP included,
must be equal to it exactly. Every test reads through the repository both with zarr (stored
values) and with xarray (``repo.to_xarray``: nodata masked through ``_FillValue``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import warnings
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import xarray as xr

import zarrchive
from conftest import BUCKET
from zarrchive import InvalidInputError, UnsupportedFeatureError

from .conftest import memory_repo, ours, read_fresh, repo_state

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
sys.path.insert(0, str(SAMPLES))
import _make_tiff  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.UnstableSpecificationWarning")

SAMPLE_NAMES = [
    "tiff_deflate_pred2_geo",
    "tiff_lzw_fpred_strips",
    "tiff_jpeg_rgb",
    "tiff_jpeg_ycbcr_tables",
    "tiff_zstd_int32",
    "tiff_separate_packbits",
    "tiff_cog",
    "tiff_subifds_float",
]


# ---------------------------------------------------------------------- helpers
def sample(name: str) -> Path:
    return SAMPLES / f"{name}.tif"


def reference_levels(path: Path) -> list[tuple[np.ndarray, Any]]:
    """(values, first page) of each level of the file's first series, read by tifffile."""
    with tifffile.TiffFile(path) as tif:
        out = []
        for level in tif.series[0].levels:
            out.append((level.asarray(), level.pages[0]))
        return out


def expected_dims(values: np.ndarray, page: Any, k: int, stacked: bool) -> tuple[str, ...]:
    sfx = f"_{k}" if k else ""
    if page.samplesperpixel == 1:
        dims: tuple[str, ...] = (f"Y{sfx}", f"X{sfx}")
    elif page.planarconfig == 2:
        dims = ("band", f"Y{sfx}", f"X{sfx}")
    else:
        dims = (f"Y{sfx}", f"X{sfx}", "band")
    return (("page",) + dims) if stacked else dims


def expected_dataset(
    path: Path, nodata: float | None, attrs: dict[str, dict[str, Any]] | None = None
) -> xr.Dataset:
    """What ``repo.to_xarray`` must give: tifffile's values, nodata masked as CF does."""
    variables = {}
    for k, (values, page) in enumerate(reference_levels(path)):
        dims = expected_dims(values, page, k, values.ndim > len(page.shape))
        var_attrs: dict[str, Any] = {
            "tiff_compression": page.compression.name,
            "tiff_photometric": page.photometric.name,
            **((attrs or {}).get(str(k), {})),
        }
        if nodata is not None:
            var_attrs["_FillValue"] = nodata
        var = xr.Variable(dims, values, attrs=var_attrs)
        variables[str(k)] = xr.conventions.decode_cf_variable(str(k), var)
    return xr.Dataset(variables)


def assert_same_as_tifffile(repo: zarrchive.Repo, group: str, path: Path) -> None:
    """zarr reads of every level equal tifffile's, dimension names included."""
    levels = reference_levels(path)
    node = repo.root_group[group]
    assert sorted(k for k, _ in node.arrays()) == [str(k) for k in range(len(levels))]
    for k, (values, page) in enumerate(levels):
        arr = node[str(k)]
        got = arr[...]
        assert got.dtype == values.dtype and got.shape == values.shape, (k, got.shape)
        np.testing.assert_array_equal(got, values, err_msg=f"{path.name} level {k}")
        stacked = values.ndim > len(page.shape)
        assert arr.metadata.dimension_names == expected_dims(values, page, k, stacked)


SAMPLE_EXPECTATIONS: dict[str, dict[str, Any]] = {
    "tiff_deflate_pred2_geo": {
        "nodata": 65535,
        "attrs": {"0": {"GeoTransform": "500000.0 30.0 0.0 4650000.0 0.0 -30.0"}},
        "group": {
            "Software": "zarrchive sample",
            "KeyDirectoryVersion": 1,
            "KeyRevision": 1,
            "KeyRevisionMinor": 0,
            "GTModelTypeGeoKey": 1,
            "GTRasterTypeGeoKey": 1,
            "ProjectedCSTypeGeoKey": 32633,
            "ProjLinearUnitsGeoKey": 9001,
            "ModelPixelScale": [30.0, 30.0, 0.0],
            "ModelTiepoint": [0.0, 0.0, 0.0, 500000.0, 4650000.0, 0.0],
            "crs": "EPSG:32633",
            "GDAL_METADATA": _make_tiff.GDAL_METADATA.strip(),
            "GDAL_NODATA": "65535",
        },
    },
    "tiff_lzw_fpred_strips": {
        "nodata": np.nan,
        "group": {"Software": "tifffile.py", "GDAL_NODATA": "nan"},
    },
    "tiff_subifds_float": {
        "nodata": -9999.0,
        "group": {"Software": "tifffile.py", "GDAL_NODATA": "-9999"},
    },
}


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_round_trip(name: str, tmp_path: Path) -> None:
    path = sample(name)
    repo = zarrchive.Repo.create(tmp_path / "repo", author="tester")
    summary = repo.add_virtual_tiff(path, "tiffs", name)
    levels = reference_levels(path)
    assert summary.arrays == len(levels) and summary.sources == 1
    repo.commit(f"import {name}")
    group = f"tiffs/{name}"
    assert_same_as_tifffile(repo, group, path)
    exp = SAMPLE_EXPECTATIONS.get(name, {})
    expected = expected_dataset(path, exp.get("nodata"), exp.get("attrs"))
    expected.attrs.update(exp.get("group", {"Software": "tifffile.py"}))
    got = ours(repo, group)
    xr.testing.assert_identical(got, expected)
    # every segment is one chunk: the import references exactly tifffile's segments
    with tifffile.TiffFile(path) as tif:
        segments = sum(
            sum(1 for n in p.databytecounts if n) for lvl in tif.series[0].levels for p in lvl.pages
        )
    assert summary.references == segments


def test_geotiff_nodata_masking_and_fill_value() -> None:
    path = sample("tiff_deflate_pred2_geo")
    repo = memory_repo()
    repo.add_virtual_tiff(path, "geo")
    arr = repo.root_group["geo/0"]
    assert arr.metadata.fill_value == 65535
    assert arr.attrs["_FillValue"] == 65535
    raw = arr[:]
    ds = ours(repo, "geo")
    assert ds["0"].dtype == np.float32
    assert np.isnan(ds["0"].values[raw == 65535]).all() and (raw == 65535).sum() > 100
    np.testing.assert_array_equal(ds["0"].values[raw != 65535], raw[raw != 65535])
    assert ds["0"].encoding["_FillValue"] == 65535


def test_codec_configuration_in_metadata() -> None:
    repo = memory_repo()
    repo.add_virtual_tiff(sample("tiff_jpeg_ycbcr_tables"), "j")
    repo.add_virtual_tiff(sample("tiff_lzw_fpred_strips"), "s")
    repo.add_virtual_tiff(sample("tiff_separate_packbits"), "p")
    jpeg = repo.root_group["j/0"].metadata.to_dict()
    (codec,) = jpeg["codecs"]
    assert codec["name"] == "zarrchive.tiff"
    cfg = codec["configuration"]
    assert cfg["compression"] == 7 and cfg["segment"] == [64, 64, 3]
    assert cfg["outcolorspace"] == 2  # YCbCr segments decode to RGB
    assert cfg["jpegtables"]  # shared tables travel in the metadata
    _, tables, _ = _make_tiff.jpeg_ycbcr_tables()
    import base64

    assert base64.b64decode(cfg["jpegtables"]) == tables
    strips = repo.root_group["s/0"].metadata.to_dict()
    assert list(strips["chunk_grid"]["configuration"]["chunk_shape"]) == [24, 90]
    assert strips["codecs"][0]["configuration"] == {
        "compression": 5,
        "predictor": 3,
        "byteorder": ">",
        "segment": [24, 90, 1],
    }
    sep = repo.root_group["p/0"].metadata.to_dict()
    assert list(sep["chunk_grid"]["configuration"]["chunk_shape"]) == [1, 16, 70]
    assert list(sep["dimension_names"]) == ["band", "Y", "X"]


# ---------------------------------------------------------------------- more layouts
def _write(path: Path, data: Any, **kw: Any) -> Path:
    kw.setdefault("metadata", None)
    tifffile.imwrite(path, data, **kw)
    return path


def _rgba(h: int, w: int) -> np.ndarray:
    rgb = _make_tiff.rgb(h, w, 5)
    alpha = np.full((h, w, 1), 255, "u1")
    alpha[: h // 3] = 0
    return np.concatenate([rgb, alpha], axis=-1)


def _grid(h: int, w: int, dtype: str) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return ((y * 31 + x * 7) % 251).astype(dtype)


LAYOUTS: dict[str, tuple[Any, dict[str, Any]]] = {
    "uncompressed-strips": (_grid(50, 33, "u2"), {"rowsperstrip": 7}),
    "uncompressed-tiles-bigendian": (_grid(50, 40, "i2"), {"tile": (16, 16), "byteorder": ">"}),
    "deflate8-pred2-bigendian": (
        _grid(40, 50, "u4"),
        {"compression": ("zlib", 6), "predictor": 2, "byteorder": ">", "tile": (16, 32)},
    ),
    "bigtiff-lzw": (_grid(70, 20, "f8"), {"compression": "lzw", "bigtiff": True}),
    "lzma-strips": (_grid(45, 30, "i1"), {"compression": "lzma", "rowsperstrip": 10}),
    "zstd-float-pred3-tiles": (
        _grid(48, 48, "f4") / 7,
        {"compression": "zstd", "predictor": 3, "tile": (32, 32)},
    ),
    "float16-deflate": (_grid(20, 24, "f2"), {"compression": "zlib", "predictor": 3}),
    "png-rgb": (_make_tiff.rgb(40, 56, 3), {"compression": "png", "tile": (16, 16)}),
    "webp-rgba": (
        _rgba(64, 64),
        {"compression": "webp", "tile": (32, 32), "extrasamples": ["unassalpha"]},
    ),
    "jpeg2000-gray": (_grid(64, 48, "u1"), {"compression": "jpeg2000", "tile": (32, 32)}),
    "jpegxl-gray": (_grid(32, 48, "u1"), {"compression": "jpegxl", "tile": (16, 16)}),
    "jpeg-strips-partial": (
        _make_tiff.rgb(40, 48, 4),
        {"compression": "jpeg", "rowsperstrip": 16, "photometric": "rgb"},
    ),
    "jpeg-gray-tiles": (_grid(48, 40, "u1"), {"compression": "jpeg", "tile": (16, 16)}),
    "separate-deflate-tiles-rgb": (
        np.moveaxis(_make_tiff.rgb(48, 48, 6), -1, 0).copy(),
        {"compression": "zlib", "tile": (32, 16), "planarconfig": "separate", "photometric": "rgb"},
    ),
    "complex64": (_grid(16, 12, "f4") + 1j, {"compression": "zlib"}),
    # tifffile gives 64-bit integer pages numpy's "q"/"Q" types, which zarr did not accept
    "int64-strips": (_grid(30, 20, "i8") * -(2**40), {"rowsperstrip": 8}),
    "uint64-bigendian-deflate-tiles": (
        _grid(32, 32, "u8") << 50,
        {"compression": "zlib", "tile": (16, 16), "byteorder": ">"},
    ),
    "stack-of-pages": (
        np.stack([_grid(24, 20, "u2") + i for i in range(3)]),
        {"compression": "zlib", "tile": (16, 16), "photometric": "minisblack"},
    ),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layouts(layout: str, tmp_path: Path) -> None:
    data, kw = LAYOUTS[layout]
    compression = kw.get("compression")
    name = compression[0] if isinstance(compression, tuple) else compression
    if name in ("jpeg2000", "jpegxl", "png", "webp", "lzma"):
        import imagecodecs

        codec = {"jpeg2000": "JPEG2K"}.get(name, name.upper())
        if not getattr(imagecodecs, codec).available:
            pytest.skip(f"imagecodecs without {name}")
    if isinstance(compression, tuple):
        kw = {**kw, "compression": compression[0], "compressionargs": {"level": compression[1]}}
    path = _write(tmp_path / f"{layout}.tif", data, **kw)
    repo = memory_repo()
    repo.add_virtual_tiff(path, "t")
    assert_same_as_tifffile(repo, "t", path)
    if not np.iscomplexobj(data) and name not in ("jpeg", "webp", "jpeg2000", "jpegxl"):
        np.testing.assert_array_equal(repo.root_group["t/0"][:], data)
    xr.testing.assert_identical(
        ours(repo, "t"), expected_dataset(path, None).assign_attrs(Software="tifffile.py")
    )


PACKED: dict[str, tuple[np.ndarray, dict[str, Any]]] = {
    "bilevel-deflate-strips": (
        np.arange(30 * 20).reshape(30, 20) % 3 == 0,
        {"rowsperstrip": 7, "compression": "zlib"},
    ),
    "4bit-strips": (
        (np.arange(30 * 21).reshape(30, 21) % 16).astype("u1"),
        {"bitspersample": 4, "rowsperstrip": 8},
    ),
    "12bit-tiles": (
        (np.arange(25 * 13).reshape(25, 13) * 37 % 4096).astype("u2"),
        {"bitspersample": 12, "tile": (16, 16)},
    ),
}


@pytest.mark.parametrize("name", list(PACKED))
def test_packed_samples(name: str, tmp_path: Path) -> None:
    """Samples that are not whole bytes (fax-style bilevel images, 2-, 4-, 12-bit scans, as
    in Pillow's and imagecodecs' test files): each row a bit stream, unpacked by the codec
    exactly as tifffile unpacks it."""
    data, kw = PACKED[name]
    path = _write(tmp_path / f"{name}.tif", data, **kw)
    repo = memory_repo()
    repo.add_virtual_tiff(path, "t")
    assert_same_as_tifffile(repo, "t", path)
    np.testing.assert_array_equal(repo.root_group["t/0"][:], data)
    assert repo.root_group["t/0"].dtype == data.dtype
    xr.testing.assert_identical(
        ours(repo, "t"), expected_dataset(path, None).assign_attrs(Software="tifffile.py")
    )
    with pytest.raises(UnsupportedFeatureError, match="read-only"):
        repo.root_group["t/0"][0, 0] = data[0, 0]


def test_fill_order_2(tmp_path: Path) -> None:
    """FillOrder 2 (bits reversed within each byte, before decompression), as in Pillow's
    16bit.r.tif: read as tifffile reads it."""
    import imagecodecs

    data = _grid(20, 16, "u2") * 97
    # tifffile writes no FillOrder tag: write a placeholder tag and retag it, then reverse
    # the bits of every strip
    path = _write(
        tmp_path / "fillorder2.tif",
        data,
        rowsperstrip=6,
        compression="zlib",
        extratags=[(65000, "H", 1, 2, 1)],
    )
    _retag(path, 65000, code=266)
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        segments = list(zip(page.dataoffsets, page.databytecounts, strict=True))
    for offset, count in segments:
        raw[offset : offset + count] = imagecodecs.bitorder_decode(
            bytes(raw[offset : offset + count])
        )
    path.write_bytes(bytes(raw))
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].fillorder == 2
        np.testing.assert_array_equal(tif.asarray(), data)
    repo = memory_repo()
    repo.add_virtual_tiff(path, "t")
    assert_same_as_tifffile(repo, "t", path)
    np.testing.assert_array_equal(repo.root_group["t/0"][:], data)


def test_sparse_tiles_read_as_nodata(tmp_path: Path) -> None:
    def tiles() -> Any:
        for i in range(6):
            yield None if i in (1, 4) else np.full((32, 32), i + 1, "u2")

    path = tmp_path / "sparse.tif"
    tifffile.imwrite(
        path,
        tiles(),
        shape=(64, 90),
        dtype="u2",
        tile=(32, 32),
        compression="zlib",
        metadata=None,
        extratags=[(42113, "s", 0, "9", True)],
    )
    repo = memory_repo()
    summary = repo.add_virtual_tiff(path, "s")
    assert summary.references == 4
    got = repo.root_group["s/0"][:]
    np.testing.assert_array_equal(got, tifffile.imread(path))
    assert (got[:32, 32:64] == 9).all()


def test_gdal_cog_with_masks_and_overviews_option(tmp_path: Path) -> None:
    """GDAL's layout: image, its mask, overview, the overview's mask; masks are skipped."""
    levels = _make_tiff.cog_levels()
    path = tmp_path / "masked.tif"
    with tifffile.TiffWriter(path) as tif:
        for i, level in enumerate(levels[:2]):
            kw = {"tile": (64, 64), "compression": "zlib", "metadata": None}
            tif.write(level, photometric="rgb", subfiletype=1 if i else 0, **kw)
            mask = np.ones(level.shape[:2], bool)
            tif.write(mask, subfiletype=5 if i else 4, **kw)
    repo = memory_repo()
    with pytest.warns(UserWarning) as record:
        repo.add_virtual_tiff(path, "m")
    messages = [str(w.message) for w in record]
    assert any("IFD 1 " in m and "transparency mask" in m for m in messages), messages
    assert any("IFD 3 " in m and "transparency mask" in m for m in messages), messages
    assert sorted(k for k, _ in repo.root_group["m"].arrays()) == ["0", "1"]
    np.testing.assert_array_equal(repo.root_group["m/0"][:], levels[0])
    np.testing.assert_array_equal(repo.root_group["m/1"][:], levels[1])
    # overviews=False keeps the full resolution only, and says what it left out
    with pytest.warns(UserWarning) as record:
        repo.add_virtual_tiff(sample("tiff_cog"), "full", overviews=False)
    skipped = sorted(str(w.message).split(": ")[1].split(" (")[0] for w in record)
    assert skipped == ["IFD 1", "IFD 2"] and all(
        "overviews=False" in str(w.message) for w in record
    )
    assert [k for k, _ in repo.root_group["full"].arrays()] == ["0"]


def test_pages_of_another_layout_are_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(_grid(30, 40, "u2"), metadata=None)
        tif.write(_grid(10, 10, "u1"), metadata=None)
        tif.write(_grid(30, 40, "u2") + 1, metadata=None)
    repo = memory_repo()
    with pytest.warns(UserWarning, match=r"IFD 1 \(10x10 uint8\) is not imported"):
        repo.add_virtual_tiff(path, "x")
    got = repo.root_group["x/0"][:]
    assert repo.root_group["x/0"].metadata.dimension_names == ("page", "Y", "X")
    np.testing.assert_array_equal(got, np.stack([_grid(30, 40, "u2"), _grid(30, 40, "u2") + 1]))


def test_damage_that_tifffile_reads_around_is_reported(tmp_path: Path) -> None:
    raw = bytearray(sample("tiff_cog").read_bytes())
    with tifffile.TiffFile(sample("tiff_cog")) as tif:
        ifd = tif.pages[1].offset
    n = int.from_bytes(raw[ifd : ifd + 2], "little")
    raw[ifd + 2 + 12 * n : ifd + 6 + 12 * n] = (len(raw) + 1000).to_bytes(4, "little")
    path = tmp_path / "broken_chain.tif"
    path.write_bytes(bytes(raw))
    repo = memory_repo()
    with pytest.warns(UserWarning, match="tifffile: .*invalid page offset"):
        repo.add_virtual_tiff(path, "d")
    assert sorted(k for k, _ in repo.root_group["d"].arrays()) == ["0", "1"]
    np.testing.assert_array_equal(repo.root_group["d/1"][:], _make_tiff.cog_levels()[1])


@pytest.mark.parametrize(
    ("dtype", "nodata", "fill"),
    [("u1", "-1", None), ("i2", "nan", None), ("u2", "1e3", 1000), ("f4", "-inf", -np.inf)],
)
def test_nodata_values(dtype: str, nodata: str, fill: Any, tmp_path: Path) -> None:
    path = _write(tmp_path / "n.tif", _grid(8, 8, dtype), extratags=[(42113, "s", 0, nodata, 1)])
    repo = memory_repo()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        repo.add_virtual_tiff(path, "n")
    arr = repo.root_group["n/0"]
    assert repo.root_group["n"].attrs["GDAL_NODATA"] == nodata
    if fill is None:
        assert "_FillValue" not in arr.attrs and arr.metadata.fill_value == 0
        assert any("GDAL_NODATA" in str(w.message) for w in record)
    else:
        assert arr.metadata.fill_value == fill
        assert "_FillValue" in arr.attrs and not record
    np.testing.assert_array_equal(arr[:], _grid(8, 8, dtype))


def test_pixel_is_point_and_overview_transforms(tmp_path: Path) -> None:
    keys = list(_make_tiff.GEOKEYS)
    keys[keys.index(1025) + 3] = 2  # GTRasterTypeGeoKey = PixelIsPoint
    path = tmp_path / "point.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(
            _grid(64, 64, "u1"),
            tile=(32, 32),
            metadata=None,
            subifds=1,
            extratags=[
                (33550, "d", 3, (10.0, 20.0, 0.0), True),
                (33922, "d", 6, (0.0, 0.0, 0.0, 1000.0, 2000.0, 0.0), True),
                (34735, "H", len(keys), tuple(keys), True),
            ],
        )
        tif.write(_grid(32, 32, "u1"), tile=(32, 32), metadata=None, subfiletype=1)
    repo = memory_repo()
    repo.add_virtual_tiff(path, "p")
    assert repo.root_group["p/0"].attrs["GeoTransform"] == "995.0 10.0 0.0 2010.0 0.0 -20.0"
    assert repo.root_group["p/1"].attrs["GeoTransform"] == "995.0 20.0 0.0 2010.0 0.0 -40.0"
    assert repo.root_group["p"].attrs["GTRasterTypeGeoKey"] == 2


def test_write_into_imported_arrays(tmp_path: Path) -> None:
    repo = zarrchive.Repo.create(tmp_path / "repo", author="tester")
    for name in ("tiff_deflate_pred2_geo", "tiff_lzw_fpred_strips", "tiff_zstd_int32"):
        repo.add_virtual_tiff(sample(name), "w", name)
    repo.add_virtual_tiff(sample("tiff_jpeg_rgb"), "w", "jpeg")
    repo.commit("import")
    for name in ("tiff_deflate_pred2_geo", "tiff_lzw_fpred_strips", "tiff_zstd_int32"):
        arr = repo.root_group[f"w/{name}/0"]
        before = arr[:]
        patch = (np.arange(30 * 20).reshape(30, 20) % 97).astype(arr.dtype)
        arr[50:80, 10:30] = patch
        expected = before.copy()
        expected[50:80, 10:30] = patch
        np.testing.assert_array_equal(arr[:], expected)
    repo.commit("edit")
    for name in ("tiff_deflate_pred2_geo", "tiff_lzw_fpred_strips"):
        reopened = zarrchive.Repo.open(tmp_path / "repo")
        assert reopened.root_group[f"w/{name}/0"][55, 15] == ((5 * 20 + 5) % 97)
    with pytest.raises(UnsupportedFeatureError, match="JPEG"):
        repo.root_group["w/jpeg/0"][0:10, 0:10] = 0


# ---------------------------------------------------------------------- other readers
def test_fresh_reader_in_a_subprocess(tmp_path: Path) -> None:
    location = tmp_path / "repo"
    repo = zarrchive.Repo.create(location, author="tester")
    for name in ("tiff_cog", "tiff_deflate_pred2_geo", "tiff_jpeg_ycbcr_tables"):
        repo.add_virtual_tiff(sample(name), "t", name)
    repo.commit("import")
    # until zarrchive's package metadata carries the ``zarr.codecs`` entry point, a fresh
    # process must import the codec module itself
    registered = any(e.name == "zarrchive.tiff" for e in entry_points(group="zarr.codecs"))
    setup = "" if registered else "import zarrchive.codecs.tiff\n"
    names = ["tiff_cog", "tiff_deflate_pred2_geo", "tiff_jpeg_ycbcr_tables"]
    groups = [f"t/{name}" for name in names]
    read = read_fresh(location, SAMPLES.as_uri() + "/", groups, tmp_path / "ds.pickle", setup=setup)
    got = {name: read[f"t/{name}"] for name in names}
    for name in names:
        xr.testing.assert_identical(got[name], ours(repo, f"t/{name}"))
        exp = SAMPLE_EXPECTATIONS.get(name, {})
        np.testing.assert_array_equal(
            got[name]["0"].values, expected_dataset(sample(name), exp.get("nodata"))["0"].values
        )


def test_import_from_s3(s3_server: dict[str, Any]) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server)
    prefix = f"{BUCKET}/{uuid.uuid4().hex}"
    for name in ("tiff_cog", "tiff_lzw_fpred_strips"):
        fs.put_file(str(sample(name)), f"{prefix}/{name}.tif")
    repo = memory_repo()
    for name in ("tiff_cog", "tiff_lzw_fpred_strips"):
        repo.add_virtual_tiff(f"s3://{prefix}/{name}.tif", "s3", name, storage_options=s3_server)
    repo.commit("from s3")
    for name in ("tiff_cog", "tiff_lzw_fpred_strips"):
        assert_same_as_tifffile(repo, f"s3/{name}", sample(name))


# ---------------------------------------------------------------------- errors
def _retag(path: Path, tag: int, *, code: int | None = None, value: int | None = None) -> Path:
    """Patch one SHORT tag of a classic little-endian TIFF in place (tifffile refuses to
    write FillOrder or a predictor that does not fit the data)."""
    with tifffile.TiffFile(path) as tif:
        entry = tif.pages[0].tags[tag].offset
    raw = bytearray(path.read_bytes())
    if code is not None:
        raw[entry : entry + 2] = code.to_bytes(2, "little")
    if value is not None:
        raw[entry + 8 : entry + 10] = value.to_bytes(2, "little")
    path.write_bytes(bytes(raw))
    return path


def _unsupported_files(d: Path) -> list[tuple[str, Path, type[Exception], list[str]]]:
    cases: list[tuple[str, Path, type[Exception], list[str]]] = []
    cases.append(
        (
            "20-bit",
            _write(d / "b20.tif", np.zeros((16, 16), "u4"), bitspersample=20),
            UnsupportedFeatureError,
            ["IFD 0", "20-bit uint32 samples (not whole bytes)"],
        )
    )
    cases.append(
        (
            "lerc",
            _write(d / "lerc.tif", np.zeros((16, 16), "f4"), compression="lerc"),
            UnsupportedFeatureError,
            ["IFD 0", "LERC"],
        )
    )
    cases.append(
        (
            "volumetric",
            _write(
                d / "vol.tif",
                np.zeros((32, 16, 16), "u1"),
                volumetric=True,
                tile=(16, 16, 16),
                photometric="minisblack",
            ),
            UnsupportedFeatureError,
            ["volumetric"],
        )
    )
    cases.append(
        (
            "float predictor on ints",
            _retag(
                _write(d / "fpi.tif", np.zeros((16, 16), "u2"), compression="zlib", predictor=2),
                317,
                value=3,
            ),
            UnsupportedFeatureError,
            ["floating-point predictor"],
        )
    )
    good = sample("tiff_zstd_int32").read_bytes()
    (d / "truncated.tif").write_bytes(good[: len(good) - 100])
    cases.append(("truncated", d / "truncated.tif", InvalidInputError, ["truncated"]))
    (d / "garbage.tif").write_bytes(good[:8] + b"\xff" * 64)
    cases.append(("garbage IFD", d / "garbage.tif", InvalidInputError, ["garbage.tif"]))
    (d / "notiff.tif").write_bytes(b"GIF89a" + bytes(100))
    cases.append(("not a TIFF", d / "notiff.tif", UnsupportedFeatureError, ["unrecognised"]))
    return cases


def test_errors_leave_the_repository_unchanged(tmp_path: Path) -> None:
    location = tmp_path / "repo"
    repo = zarrchive.Repo.create(location, author="tester")
    repo.add_virtual_tiff(sample("tiff_zstd_int32"), "done")
    repo.commit("first")
    repo.add_virtual_tiff(sample("tiff_cog"), "pending")
    files_dir = tmp_path / "files"
    files_dir.mkdir()

    before = repo_state(repo, location)
    for label, path, error, words in _unsupported_files(files_dir):
        with pytest.raises(error) as info:
            repo.add_virtual_tiff(path, "new")
        assert isinstance(info.value, zarrchive.ZarrchiveError), label
        for w in words:
            assert w in str(info.value), (label, str(info.value))
        assert repo_state(repo, location) == before, label
    with pytest.raises(InvalidInputError, match="overviews="):
        repo.add_virtual_tiff(sample("tiff_cog"), "new", levels=2)
    with pytest.raises(zarrchive.NotFoundError):
        repo.add_virtual_tiff(tmp_path / "missing.tif", "new")
    assert repo_state(repo, location) == before
    repo.commit("pending")
    assert_same_as_tifffile(repo, "pending", sample("tiff_cog"))


# ---------------------------------------------------------------------- fuzz
FUZZ_SCRIPT = r"""
import json, random, sys, uuid, warnings
import numpy as np, tifffile, zarrchive
warnings.simplefilter("ignore")
src, workdir, seed, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
good = open(src, "rb").read()
with tifffile.TiffFile(src) as tif:
    first_data = min(o for p in tif.pages for o in p.dataoffsets if o)
rng = random.Random(seed)
results = []
for i in range(n):
    data = bytearray(good)
    if i % 3 == 2:
        data = data[: rng.randrange(8, len(data))]
        kind = f"cut at {len(data)}"
    else:
        region = max(16, min(len(data), first_data + 64))
        flips = [rng.randrange(4, region) for _ in range(rng.randint(1, 6))]
        for f in flips:
            data[f] = rng.randrange(256)
        kind = f"flips at {flips}"
    path = f"{workdir}/case{i}.tif"
    open(path, "wb").write(bytes(data))
    outcome = "ok"
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    try:
        repo.add_virtual_tiff(path, "f")
    except zarrchive.ZarrchiveError as exc:
        outcome = "import refused: " + type(exc).__name__
    except BaseException as exc:
        results.append({"case": kind, "bad": f"import raised {type(exc).__name__}: {exc}"})
        continue
    if outcome == "ok":
        try:
            with tifffile.TiffFile(path) as tif:
                ref = [l.asarray() for l in tif.series[0].levels]
        except Exception:
            ref = None
        for name, arr in repo.root_group["f"].arrays():
            try:
                got = arr[...]
            except zarrchive.ZarrchiveError as exc:
                outcome = "read refused: " + type(exc).__name__
                continue
            except BaseException as exc:
                results.append({"case": kind, "bad": f"read raised {type(exc).__name__}: {exc}"})
                continue
            k = int(name)
            if ref is not None and k < len(ref) and ref[k].shape == got.shape:
                if not np.array_equal(got, ref[k], equal_nan=got.dtype.kind == "f"):
                    results.append({"case": kind, "bad": f"array {name} differs from tifffile"})
    results.append({"case": kind, "outcome": outcome})
print(json.dumps(results))
"""


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_fuzz_corrupt_and_truncated_copies(name: str, tmp_path: Path) -> None:
    seed = SAMPLE_NAMES.index(name) + 1
    done = subprocess.run(
        [sys.executable, "-c", FUZZ_SCRIPT, str(sample(name)), str(tmp_path), str(seed), "30"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"fuzz process died ({done.returncode}): {done.stderr[-3000:]}"
    results = json.loads(done.stdout.strip().splitlines()[-1])
    bad = [r for r in results if "bad" in r]
    assert not bad, bad
    assert len(results) == 30


def test_sample_generator_is_reproducible(tmp_path: Path) -> None:
    """The committed samples are what ``_make_tiff.make`` writes (same decoded values)."""
    written = _make_tiff.make(tmp_path)
    assert sorted(p.stem for p in written) == sorted(SAMPLE_NAMES)
    total = 0
    for p in written:
        total += os.path.getsize(sample(p.stem))
        for (a, _), (b, _) in zip(
            reference_levels(p), reference_levels(sample(p.stem)), strict=True
        ):
            np.testing.assert_array_equal(a, b)
    assert total < 3_000_000
