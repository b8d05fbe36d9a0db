"""Write the TIFF / GeoTIFF / COG sample files with tifffile (and imagecodecs for compression).

Each file exercises one layout of the TIFF importer (``zarrchive.importers.tiff``):

- ``tiff_deflate_pred2_geo.tif``: 200 x 250 uint16, 64 x 64 tiles (edge tiles partly outside
  the image), deflate with the horizontal predictor, GeoTIFF tags (pixel scale, tie point,
  GeoKeys for EPSG:32633, GDAL_METADATA) and GDAL_NODATA 65535 (some pixels are nodata).
- ``tiff_lzw_fpred_strips.tif``: 100 x 90 float32, strips of 24 rows (the last strip holds 4),
  LZW with the floating-point predictor, GDAL_NODATA nan, big-endian byte order.
- ``tiff_jpeg_rgb.tif``: 128 x 160 RGB uint8, 3 contiguous bands, 64 x 64 JPEG tiles (stored
  as YCbCr without subsampling, as tifffile writes RGB JPEG).
- ``tiff_jpeg_ycbcr_tables.tif``: 128 x 128 RGB uint8 stored as YCbCr 2x2-subsampled JPEG
  tiles whose quantisation and Huffman tables live in the JPEGTables tag (as GDAL writes).
- ``tiff_zstd_int32.tif``: 96 x 80 int32, 32 x 32 zstd tiles with the horizontal predictor.
- ``tiff_separate_packbits.tif``: 4 bands x 60 x 70 uint8, planar configuration separate,
  PackBits strips of 16 rows (band-major segments, last strip of each band partial).
- ``tiff_cog.tif``: a COG as GDAL lays it out: 256 x 256 RGB uint8 WebP (lossless) tiles of
  128 x 128, then two reduced-resolution pages (NewSubfileType 1, 128 x 128 and 64 x 64).
- ``tiff_subifds_float.tif``: 160 x 192 float64 deflate tiles with two overview levels as
  SubIFDs of the first page (as tifffile and OME-TIFF write pyramids), nodata -9999.

Run ``python sample_data/_make_tiff.py`` to (re)write them next to this file.
"""

from __future__ import annotations

from pathlib import Path

import imagecodecs
import numpy as np
import tifffile

HERE = Path(__file__).parent

#: GeoKeyDirectory: version 1.1.0, 4 keys: GTModelType=projected, GTRasterType=PixelIsArea,
#: ProjectedCSType=EPSG:32633, ProjLinearUnits=metre
GEOKEYS = (1, 1, 0, 4, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633, 3076, 0, 1, 9001)
GDAL_METADATA = (
    "<GDALMetadata>\n"
    '  <Item name="AREA_OR_POINT">Area</Item>\n'
    '  <Item name="DESCRIPTION" sample="0" role="description">elevation</Item>\n'
    "</GDALMetadata>\n"
)


def _geo_tags(nodata: str, scale: tuple[float, float], origin: tuple[float, float]) -> list:
    return [
        (33550, "d", 3, (scale[0], scale[1], 0.0), True),  # ModelPixelScale
        (33922, "d", 6, (0.0, 0.0, 0.0, origin[0], origin[1], 0.0), True),  # ModelTiepoint
        (34735, "H", len(GEOKEYS), GEOKEYS, True),  # GeoKeyDirectory
        (42112, "s", 0, GDAL_METADATA, True),  # GDAL_METADATA
        (42113, "s", 0, nodata, True),  # GDAL_NODATA
    ]


def deflate_pred2_geo() -> np.ndarray:
    y, x = np.mgrid[0:200, 0:250]
    data = (y * 250 + x).astype("u2")
    data[::17, ::13] = 65535
    return data


def lzw_fpred_strips() -> np.ndarray:
    y, x = np.mgrid[0:100, 0:90]
    data = (np.sin(y / 7.0) * np.cos(x / 5.0) * 100).astype("f4")
    data[5:9, 10:20] = np.nan
    return data


def rgb(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(y * 2) % 256, (x * 3) % 256, (x + y) % 256], axis=-1).astype("u1")
    return (img // 2 + rng.integers(0, 32, img.shape)).astype("u1")


def zstd_int32() -> np.ndarray:
    y, x = np.mgrid[0:96, 0:80]
    return ((y - 40) * 100000 + x * 37 - 5).astype("i4")


def separate_packbits() -> np.ndarray:
    b, y, x = np.mgrid[0:4, 0:60, 0:70]
    data = ((b * 50 + y // 4 + x // 8) % 256).astype("u1")
    data[:, 20:30] = 7  # runs that PackBits compresses
    return data


def cog_levels() -> list[np.ndarray]:
    full = rgb(256, 256, 1)
    return [full, full[::2, ::2].copy(), full[::4, ::4].copy()]


def subifds_levels() -> list[np.ndarray]:
    y, x = np.mgrid[0:160, 0:192]
    full = np.hypot(y - 80.0, x - 96.0) * 1.5
    full[:10, :10] = -9999.0
    return [full, full[::2, ::2].copy(), full[::4, ::4].copy()]


def _split_jpeg(stream: bytes) -> tuple[bytes, bytes]:
    """(tables-only stream, abbreviated image stream) of one JPEG: DQT and DHT move out."""
    tables, image = bytearray(b"\xff\xd8"), bytearray(b"\xff\xd8")
    i = 2
    while i < len(stream):
        marker = stream[i + 1]
        if marker == 0xDA:  # start of scan: the rest is entropy-coded data
            image += stream[i:]
            break
        size = int.from_bytes(stream[i + 2 : i + 4], "big")
        segment = stream[i : i + 2 + size]
        if marker in (0xDB, 0xC4):  # DQT, DHT
            tables += segment
        elif marker != 0xE0:  # drop JFIF APP0: TIFF's YCbCr JPEG has none
            image += segment
        i += 2 + size
    return bytes(tables + b"\xff\xd9"), bytes(image)


def jpeg_ycbcr_tables() -> tuple[np.ndarray, bytes, list[bytes]]:
    img = rgb(128, 128, 2)
    tables, tiles = b"", []
    for ty in range(0, 128, 64):
        for tx in range(0, 128, 64):
            full = imagecodecs.jpeg8_encode(
                img[ty : ty + 64, tx : tx + 64], level=85, subsampling=(2, 2), optimize=False
            )
            t, tile = _split_jpeg(full)
            assert not tables or t == tables, "tiles must share their tables"
            tables = t
            tiles.append(tile)
    return img, tables, tiles


def make(out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out: list[Path] = []

    p = out_dir / "tiff_deflate_pred2_geo.tif"
    tifffile.imwrite(
        p,
        deflate_pred2_geo(),
        tile=(64, 64),
        compression="adobe_deflate",
        predictor=2,
        photometric="minisblack",
        metadata=None,
        software="zarrchive sample",
        extratags=_geo_tags("65535", (30.0, 30.0), (500000.0, 4650000.0)),
    )
    out.append(p)

    p = out_dir / "tiff_lzw_fpred_strips.tif"
    tifffile.imwrite(
        p,
        lzw_fpred_strips(),
        rowsperstrip=24,
        compression="lzw",
        predictor=3,
        photometric="minisblack",
        byteorder=">",
        metadata=None,
        extratags=[(42113, "s", 0, "nan", True)],
    )
    out.append(p)

    p = out_dir / "tiff_jpeg_rgb.tif"
    tifffile.imwrite(
        p,
        rgb(128, 160, 0),
        tile=(64, 64),
        compression="jpeg",
        compressionargs={"level": 90},
        photometric="rgb",
        subsampling=(1, 1),
        metadata=None,
    )
    out.append(p)

    p = out_dir / "tiff_jpeg_ycbcr_tables.tif"
    _img, tables, tiles = jpeg_ycbcr_tables()
    tifffile.imwrite(
        p,
        iter(tiles),
        shape=(128, 128, 3),
        dtype="u1",
        tile=(64, 64),
        compression="jpeg",
        photometric="ycbcr",
        subsampling=(2, 2),
        jpegtables=tables,
        metadata=None,
    )
    out.append(p)

    p = out_dir / "tiff_zstd_int32.tif"
    tifffile.imwrite(
        p,
        zstd_int32(),
        tile=(32, 32),
        compression="zstd",
        predictor=2,
        photometric="minisblack",
        metadata=None,
    )
    out.append(p)

    p = out_dir / "tiff_separate_packbits.tif"
    tifffile.imwrite(
        p,
        separate_packbits(),
        planarconfig="separate",
        rowsperstrip=16,
        compression="packbits",
        photometric="minisblack",
        metadata=None,
    )
    out.append(p)

    p = out_dir / "tiff_cog.tif"
    with tifffile.TiffWriter(p) as tif:
        for i, level in enumerate(cog_levels()):
            tif.write(
                level,
                tile=(128, 128) if i == 0 else (64, 64),
                compression="webp",
                compressionargs={"lossless": True},
                photometric="rgb",
                subfiletype=1 if i else 0,
                metadata=None,
            )
    out.append(p)

    p = out_dir / "tiff_subifds_float.tif"
    with tifffile.TiffWriter(p) as tif:
        for i, level in enumerate(subifds_levels()):
            tif.write(
                level,
                tile=(32, 32),
                compression="zlib",
                photometric="minisblack",
                subifds=2 if i == 0 else None,
                subfiletype=1 if i else 0,
                metadata=None,
                extratags=[(42113, "s", 0, "-9999", True)] if i == 0 else None,
            )
    out.append(p)
    return out


if __name__ == "__main__":
    for path in make(HERE):
        print(f"{path.name}: {path.stat().st_size:,} bytes")
