"""Importer for TIFF, BigTIFF, GeoTIFF and Cloud-Optimised GeoTIFF files.

tifffile parses the file (``TiffFile``: IFDs, SubIFDs, tags, segment offsets and byte
counts, GeoTIFF keys, GDAL nodata); only metadata is read, never a strip or tile, except the
4 bytes at the start of the first JPEG segment of an RGB image (the JFIF marker, which decides
the JPEG colour space exactly as tifffile decides it). Every strip or tile becomes one virtual
chunk, decoded by the ``zarrchive.tiff`` codec (``zarrchive.codecs.tiff``: compression,
predictor, byte order, JPEG tables and short last strips in one codec, because no registered
Zarr v3 codec does that; see there).

Layout of the imported group (the import point):

- arrays ``0``, ``1``, ``2``, ...: the full-resolution image (``0``) and its overviews in file
  order: reduced-resolution SubIFDs of the first page (tifffile / OME-TIFF pyramids) or, when
  it has none, the following reduced-resolution pages (NewSubfileType bit 1; the GDAL / COG
  layout). Overviews must have the image's bands, data type and planar configuration.
- dimensions: ``Y``, ``X`` and, for more than one sample per pixel, ``band``: last for
  contiguous samples (``(Y, X, band)``, chunks ``(rows, columns, bands)``), first for planar
  configuration *separate* (``(band, Y, X)``, chunks ``(1, rows, columns)``), so that a chunk
  is always exactly one segment. Overview ``k`` names its dimensions ``Y_k`` / ``X_k``: their
  sizes differ from the image's, and one xarray Dataset cannot hold two sizes of ``Y``. A
  multi-page file whose full-resolution pages all share one layout (an image stack) gets a
  leading ``page`` dimension.
- chunks: one per strip or tile. Strips are ``RowsPerStrip`` x width; the last strip is
  shorter in the file and the codec pads it. Segments with offset 0 or byte count 0 (sparse
  files) have no reference and read as the fill value, as GDAL reads them.
- nodata (``GDAL_NODATA`` of the IFD, else of the image): the arrays' Zarr ``fill_value``
  and xarray's ``_FillValue`` attribute, so xarray masks nodata pixels to NaN (CF decoding,
  like rioxarray's ``masked=True``) while zarr returns the stored values unchanged. Without
  nodata the fill value is 0 and there is no ``_FillValue``.
- attributes of each array: ``GeoTransform`` (GDAL's six numbers as a string, scaled for each
  overview; PixelIsPoint rasters shifted half a pixel as GDAL does), ``tiff_compression``,
  ``tiff_photometric``. Attributes of the group: the decoded GeoKeys and ``ModelPixelScale`` /
  ``ModelTiepoint`` / ``ModelTransformation`` (as tifffile decodes them, enumerations as their
  numbers), ``crs`` (``EPSG:n`` when the keys name an EPSG code), ``GDAL_METADATA`` (the XML)
  and ``GDAL_NODATA``, and the TIFF text tags (ImageDescription, Software, DateTime, ...).
- not imported, with a warning naming each: transparency masks (NewSubfileType bit 4),
  further pages with another layout, overviews that do not match the image.

Unsupported (``UnsupportedFeatureError`` naming the IFD and the feature): compressions other
than none, LZW, deflate, PackBits, LZMA, zstd, JPEG, WebP, PNG, JPEG 2000 and JPEG XL;
predictors other than horizontal (2) and floating point (3); samples of more than 16 bits
that are not whole bytes (24-bit floats, 20-bit integers), mixed or complex-integer sample
formats; volumetric (tile depth) images; chroma subsampling without JPEG; old-style JPEG.
Packed samples of 1 to 16 bits (bilevel, 2-, 4-, 12-bit images) and FillOrder 2 are decoded
by the codec as tifffile decodes them (bilevel images as bool arrays). Option:
``overviews=False`` imports the full-resolution image only.
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from .._sync import offload
from ..codecs.tiff import (
    BYTE_COMPRESSIONS,
    IMAGE_COMPRESSIONS,
    TiffCodec,
    compression_name,
)
from ..errors import InvalidInputError, NotFoundError, UnsupportedFeatureError, ZarrchiveError
from ..format import Manifest
from ..sources import local_path
from ._base import ImportedArray, ImportedTree, StatFn
from ._v2meta import _check_json_attrs, xarray_fill_value

__all__ = ["scan"]

_TEXT_TAGS = (
    "ImageDescription",
    "DocumentName",
    "PageName",
    "Software",
    "DateTime",
    "Artist",
    "HostComputer",
    "Copyright",
    "Make",
    "Model",
)
_MAX_SEGMENT_VALUES = 1 << 31  # one chunk of more than 2 G values is not a useful chunk


async def scan(
    url: str,
    *,
    stat: StatFn,
    storage_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> ImportedTree:
    """Scan one TIFF file into an :class:`ImportedTree` (see the module docstring)."""
    overviews = options.pop("overviews", True)
    if options:
        raise InvalidInputError(
            f"unknown option(s) for a TIFF import: {', '.join(sorted(options))} "
            "(the TIFF importer takes overviews=)"
        )
    try:
        source = await stat(url)
    except FileNotFoundError:
        raise NotFoundError(f"source {url!r} does not exist") from None
    parsed = await offload(_parse, url, storage_options, bool(overviews))
    for message in parsed.warnings:
        warnings.warn(message, UserWarning, stacklevel=2)
    tree = ImportedTree()
    tree.groups[""] = {"zarr_format": 3, "node_type": "group", "attributes": parsed.group_attrs}
    for name, level in parsed.levels.items():
        refs = level.manifest(url, source.checksum, source.size)
        tree.arrays[name] = ImportedArray(level.meta, refs)
    return tree


# ---------------------------------------------------------------------- parsing
@dataclass
class _Level:
    where: str
    meta: dict[str, Any]
    coords: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray

    def manifest(self, url: str, checksum: str, size: int) -> Manifest:
        ends = self.offsets + self.lengths
        if len(ends) and int(ends.max()) > size:
            i = int(np.argmax(ends > size))
            raise InvalidInputError(
                f"{url}: {self.where}: a segment spans bytes {int(self.offsets[i])}-"
                f"{int(ends[i])} but the file has only {size} bytes (truncated file?)"
            )
        return Manifest.virtual(
            self.coords,
            np.zeros(len(self.coords), dtype=np.int64),
            self.offsets,
            self.lengths,
            urls=[url],
            checksums=[checksum],
        )


@dataclass
class _Parsed:
    group_attrs: dict[str, Any]
    levels: dict[str, _Level]
    warnings: list[str]


def _parse(url: str, storage_options: Mapping[str, Any] | None, overviews: bool) -> _Parsed:
    import tifffile

    path = local_path(url)
    try:
        if path is not None:
            fh: Any = open(path, "rb")  # noqa: SIM115 - closed below
        else:
            fh = _open_remote(url, storage_options)
    except FileNotFoundError:
        raise NotFoundError(f"source {url!r} does not exist") from None
    except OSError as exc:
        raise InvalidInputError(f"{url}: cannot open the file: {exc}") from exc
    log = _TifffileLog()
    logger = logging.getLogger("tifffile")
    logger.addHandler(log)
    try:
        with fh, tifffile.TiffFile(fh) as tif:
            parsed = _Scanner(url, tif, overviews).run()
        # tifffile reads around damage (bad tags, unreachable IFDs) and logs what it skipped:
        # say so, since the import may then miss part of the file
        seen = dict.fromkeys(log.messages)
        parsed.warnings += [f"{url}: tifffile: {m}" for m in list(seen)[:20]]
        return parsed
    except ZarrchiveError:
        raise
    except MemoryError as exc:
        raise InvalidInputError(f"{url}: corrupt TIFF structure (absurd sizes)") from exc
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error, ...
        raise InvalidInputError(f"{url}: not a valid TIFF file: {exc}") from exc
    finally:
        logger.removeHandler(log)


class _TifffileLog(logging.Handler):
    """Collects what tifffile logs while this thread parses one file."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        # GDAL_NODATA is parsed here, not with tifffile's integer-only rule
        if record.thread == self.thread and "GDAL_NODATA" not in message:
            self.messages.append(message[:300])


def _open_remote(url: str, storage_options: Mapping[str, Any] | None) -> Any:
    """A file object for tifffile's many small reads: 256 KiB blocks, several kept (s3fs
    would otherwise read 50 MiB ahead of the header of a large COG)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    try:
        return fs.open(path, "rb", block_size=1 << 18, cache_type="blockcache")
    except TypeError:  # a filesystem whose files take no cache options
        return fs.open(path, "rb")


def _ifd_name(page: Any) -> str:
    index = page.index
    if isinstance(index, tuple):
        return "IFD " + " SubIFD ".join(str(i) for i in index)
    return f"IFD {index}"


def _json_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return int(value.value) if isinstance(value.value, int) else str(value.value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").rstrip("\x00")
    if isinstance(value, str):
        return value.rstrip("\x00")
    return value


class _Scanner:
    def __init__(self, url: str, tif: Any, overviews: bool) -> None:
        self.url = url
        self.tif = tif
        self.overviews = overviews
        self.warnings: list[str] = []

    # ------------------------------------------------------------------ structure
    def run(self) -> _Parsed:
        tif = self.tif
        pages = list(tif.pages)
        if not pages:
            raise InvalidInputError(f"{self.url}: the TIFF file has no image")
        masks = [p for p in pages if self._is_mask(p)]
        images = [p for p in pages if not self._is_mask(p)]
        if not images:
            raise UnsupportedFeatureError(
                f"{self.url}: the TIFF file holds only transparency masks, no image"
            )
        full = [p for p in images if not self._is_reduced(p)] or images[:1]
        reduced = [p for p in images if p not in full]
        main = full[0]
        stack = [p for p in full if self._same_layout(p, main)]
        for p in full:
            if p not in stack:
                self._skip(p, f"a page of another layout than {_ifd_name(main)}")
        for p in masks:
            self._skip(p, "a transparency mask")

        levels: list[list[Any]] = [stack]
        if main.subifds:
            per_page = [self._subifd_pages(p) for p in stack]
            for k, sub in enumerate(per_page[0]):
                if self._is_mask(sub):
                    self._skip(sub, "a transparency mask")
                    continue
                group = [pp[k] if k < len(pp) else None for pp in per_page]
                if not self.overviews:
                    self._skip(sub, "an overview (overviews=False)")
                elif all(g is not None and self._is_overview(g, main) for g in group) and all(
                    self._same_layout(g, group[0]) for g in group
                ):
                    levels.append(group)
                else:
                    self._skip(sub, "a SubIFD that is not an overview of the image")
            for pp in per_page[1:]:
                for sub in pp[len(per_page[0]) :]:
                    self._skip(sub, "a SubIFD without a match in the first page")
        for p in reduced:
            if not self.overviews:
                self._skip(p, "an overview (overviews=False)")
            elif main.subifds or len(stack) > 1 or not self._is_overview(p, main):
                self._skip(p, f"reduced resolution but not an overview of {_ifd_name(main)}")
            else:
                levels.append([p])

        out: dict[str, _Level] = {}
        for k, group in enumerate(levels):
            out[str(k)] = self._level(k, group, main)
        return _Parsed(self._group_attrs(main), out, self.warnings)

    def _subifd_pages(self, page: Any) -> list[Any]:
        try:
            return list(page.pages)
        except Exception as exc:
            raise InvalidInputError(
                f"{self.url}: {_ifd_name(page)}: cannot read its SubIFDs: {exc}"
            ) from exc

    def _skip(self, page: Any, why: str) -> None:
        self.warnings.append(
            f"{self.url}: {_ifd_name(page)} ({'x'.join(map(str, page.shape))} "
            f"{page.dtype}) is not imported: {why}"
        )

    @staticmethod
    def _is_mask(page: Any) -> bool:
        return bool(int(page.subfiletype) & 4)

    @staticmethod
    def _is_reduced(page: Any) -> bool:
        return bool(int(page.subfiletype) & 1)

    @staticmethod
    def _base_layout(page: Any) -> tuple[Any, ...]:
        return (
            page.samplesperpixel,
            str(page.dtype),
            page.planarconfig if page.samplesperpixel > 1 else 1,
        )

    def _same_layout(self, a: Any, b: Any) -> bool:
        """Pages that can share one array: same shape and the same codec and chunks."""
        return (
            a.shape == b.shape
            and self._base_layout(a) == self._base_layout(b)
            and self._codec_key(a) == self._codec_key(b)
        )

    def _is_overview(self, page: Any, main: Any) -> bool:
        return (
            self._base_layout(page) == self._base_layout(main)
            and page.imagelength <= main.imagelength
            and page.imagewidth <= main.imagewidth
            and page.imagedepth == 1
        )

    def _codec_key(self, page: Any) -> tuple[Any, ...]:
        return (
            page.compression,
            page.predictor,
            page.is_tiled,
            page.tilelength,
            page.tilewidth,
            page.rowsperstrip,
            page.jpegtables,
            page.photometric,
            page.bitspersample,
            str(page.tags.valueof(42113)),
        )

    # ------------------------------------------------------------------ one level
    def _unsupported(self, page: Any, feature: str) -> UnsupportedFeatureError:
        return UnsupportedFeatureError(
            f"{self.url}: {_ifd_name(page)}: {feature} cannot be imported as virtual chunks"
        )

    def _check_page(self, page: Any) -> None:
        compression = int(page.compression)
        if compression == 6:
            raise self._unsupported(page, "old-style JPEG compression (6)")
        if compression not in BYTE_COMPRESSIONS and compression not in IMAGE_COMPRESSIONS:
            raise self._unsupported(
                page, f"compression {compression_name(compression)} ({compression})"
            )
        if 0 in page.shaped:
            raise self._unsupported(page, "an empty image")
        if page.imagedepth > 1 or page.tiledepth > 1:
            raise self._unsupported(page, "a volumetric image (ImageDepth / TileDepth)")
        sf = page.tags.get(339)
        if sf is not None and isinstance(sf.value, tuple) and len(set(sf.value)) > 1:
            raise self._unsupported(page, f"mixed sample formats {sf.value}")
        if page.dtype is None or int(page.sampleformat) == 5:
            raise self._unsupported(
                page, f"sample format {int(page.sampleformat)} with {page.bitspersample} bits"
            )
        bits = page.bitspersample
        if not isinstance(bits, int):
            raise self._unsupported(page, f"{bits}-bit samples")
        if compression not in IMAGE_COMPRESSIONS and bits % 8:
            # packed samples (bilevel, 2-, 4-, 12-bit...): unpacked into bool / uint8 / uint16
            if page.dtype.kind not in "bu" or bits > 8 * page.dtype.itemsize or bits > 16:
                raise self._unsupported(page, f"{bits}-bit {page.dtype} samples (not whole bytes)")
        elif compression not in IMAGE_COMPRESSIONS and bits != 8 * page.dtype.itemsize:
            raise self._unsupported(page, f"{bits}-bit samples stored as {page.dtype}")
        if page.is_subsampled and compression != 7:
            raise self._unsupported(page, "chroma subsampling without JPEG compression")
        predictor = int(page.predictor)
        if compression not in IMAGE_COMPRESSIONS:
            if predictor not in (1, 2, 3):
                raise self._unsupported(page, f"predictor {predictor}")
            if predictor == 3 and page.dtype.kind != "f":
                raise self._unsupported(page, "the floating-point predictor on non-float samples")

    def _level(self, k: int, pages: Sequence[Any], main: Any) -> _Level:
        page = pages[0]
        where = f"{_ifd_name(page)} (array {k})"
        self._check_page(page)
        height, width = int(page.imagelength), int(page.imagewidth)
        samples = int(page.samplesperpixel)
        separate = samples > 1 and int(page.planarconfig) == 2
        if page.is_tiled:
            rows, cols = int(page.tilelength), int(page.tilewidth)
        else:
            rows, cols = max(1, min(int(page.rowsperstrip or height), height)), width
        seg_samples = 1 if separate else samples
        if rows * cols * seg_samples > _MAX_SEGMENT_VALUES or rows < 1 or cols < 1:
            raise self._unsupported(page, f"segments of {rows} x {cols} x {seg_samples} values")
        ny, nx = math.ceil(height / rows), math.ceil(width / cols)
        planes = samples if separate else 1
        per_page = ny * nx * planes

        coords_list, offsets_list, lengths_list = [], [], []
        for n, p in enumerate(pages):
            offsets = np.asarray(p.dataoffsets, dtype=np.int64).reshape(-1)
            counts = np.asarray(p.databytecounts, dtype=np.int64).reshape(-1)
            if len(offsets) != per_page or len(counts) != per_page:
                raise InvalidInputError(
                    f"{self.url}: {_ifd_name(p)}: {len(offsets)} segment offsets and "
                    f"{len(counts)} byte counts for {per_page} segments"
                )
            i = np.arange(per_page, dtype=np.int64)
            band, row, col = i // (ny * nx), (i // nx) % ny, i % nx
            if separate:
                c = np.stack([band, row, col], axis=1)
            elif samples > 1:
                c = np.stack([row, col, np.zeros_like(i)], axis=1)
            else:
                c = np.stack([row, col], axis=1)
            if len(pages) > 1:
                c = np.concatenate([np.full((per_page, 1), n, dtype=np.int64), c], axis=1)
            present = (offsets > 0) & (counts > 0)
            coords_list.append(c[present])
            offsets_list.append(offsets[present])
            lengths_list.append(counts[present])

        sfx = f"_{k}" if k else ""
        if separate:
            shape, chunks, dims = [samples, height, width], [1, rows, cols], ["band"]
            dims += [f"Y{sfx}", f"X{sfx}"]
        elif samples > 1:
            shape, chunks = [height, width, samples], [rows, cols, samples]
            dims = [f"Y{sfx}", f"X{sfx}", "band"]
        else:
            shape, chunks, dims = [height, width], [rows, cols], [f"Y{sfx}", f"X{sfx}"]
        if len(pages) > 1:
            shape, chunks, dims = [len(pages), *shape], [1, *chunks], ["page", *dims]

        codec = self._codec(page, rows, cols, seg_samples)
        # through its type string: tifffile gives 64-bit integers as numpy's ``longlong``
        # type ("q"), which zarr's data type registry does not recognise (only "l")
        dtype = np.dtype(np.dtype(page.dtype).newbyteorder("=").str)
        # GDAL writes GDAL_NODATA on every IFD; an overview without it has the image's
        nodata = self._nodata(page if 42113 in page.tags else main, dtype)
        attrs: dict[str, Any] = {}
        if nodata is not None:
            attrs["_FillValue"] = xarray_fill_value(nodata, dtype)
        transform = self._geotransform(main, page)
        if transform is not None:
            attrs["GeoTransform"] = " ".join(repr(float(v)) for v in transform)
        attrs["tiff_compression"] = compression_name(int(page.compression))
        attrs["tiff_photometric"] = _enum_name(page.photometric)
        _check_json_attrs(attrs, where)
        meta = _array_meta(shape, chunks, dims, dtype, nodata, codec, attrs, where)
        return _Level(
            where,
            meta,
            np.concatenate(coords_list).astype(np.int64).reshape(-1, len(shape)),
            np.concatenate(offsets_list),
            np.concatenate(lengths_list),
        )

    def _codec(self, page: Any, rows: int, cols: int, samples: int) -> TiffCodec:
        compression = int(page.compression)
        kwargs: dict[str, Any] = {}
        if compression == 7:
            from tifffile.tifffile import jpeg_decode_colorspace

            photometric = int(page.photometric)
            colorspace, outcolorspace = jpeg_decode_colorspace(
                photometric,
                int(page.planarconfig),
                tuple(page.extrasamples or ()),
                page.is_jfif if photometric == 2 and not page.extrasamples else True,
            )
            tables = page.jpegtables
            kwargs = {
                "bitspersample": int(page.bitspersample),
                "jpegtables": bytes(tables) if tables else None,
                "colorspace": _json_value(colorspace),
                "outcolorspace": _json_value(outcolorspace),
            }
        predictor = 1 if compression in IMAGE_COMPRESSIONS else int(page.predictor)
        if compression not in IMAGE_COMPRESSIONS:
            if int(page.bitspersample) % 8:
                kwargs["bitspersample"] = int(page.bitspersample)  # packed samples
            if int(page.fillorder) == 2:
                kwargs["fillorder"] = 2
        return TiffCodec(
            compression=compression,
            predictor=predictor,
            byteorder=self.tif.byteorder,
            segment=(rows, cols, samples),
            **kwargs,
        )

    def _nodata(self, page: Any, dtype: np.dtype[Any]) -> Any:
        """GDAL_NODATA as a value of ``dtype`` (parsed here: tifffile falls back to 0)."""
        tag = page.tags.get(42113)
        if tag is None:
            return None
        text = _json_value(tag.value)
        try:
            value = float(str(text).strip())
        except ValueError:
            value = None
        if value is not None and dtype.kind == "f":
            return np.asarray(value).astype(dtype).item()
        if value is not None and dtype.kind in "iu" and value.is_integer():
            info = np.iinfo(dtype)
            if info.min <= value <= info.max:
                return int(value)
        self.warnings.append(
            f"{self.url}: {_ifd_name(page)}: GDAL_NODATA {text!r} is not a {dtype} value; "
            "no fill value is set"
        )
        return None

    # ------------------------------------------------------------------ georeferencing
    def _geotransform(self, main: Any, page: Any) -> list[float] | None:
        tags = main.tags
        transform: list[float] | None = None
        if 34264 in tags:  # ModelTransformation
            m = [float(v) for v in tags[34264].value]
            if len(m) >= 8:
                transform = [m[3], m[0], m[1], m[7], m[4], m[5]]
        elif 33550 in tags and 33922 in tags:
            scale = [float(v) for v in tags[33550].value]
            tie = [float(v) for v in tags[33922].value]
            if len(tie) == 6 and len(scale) >= 2:  # one tie point; more are GCPs
                i, j, _, x, y, _ = tie
                transform = [x - i * scale[0], scale[0], 0.0, y + j * scale[1], 0.0, -scale[1]]
        if transform is None:
            return None
        if self._raster_type(main) == 2:  # PixelIsPoint: GDAL moves the origin to a corner
            transform[0] -= 0.5 * transform[1] + 0.5 * transform[2]
            transform[3] -= 0.5 * transform[4] + 0.5 * transform[5]
        fx = main.imagewidth / page.imagewidth
        fy = main.imagelength / page.imagelength
        if (fx, fy) != (1, 1):
            transform = [
                transform[0],
                transform[1] * fx,
                transform[2] * fy,
                transform[3],
                transform[4] * fx,
                transform[5] * fy,
            ]
        return transform

    def _geokeys(self) -> dict[str, Any]:
        if not self.tif.is_geotiff:
            return {}
        try:
            meta = self.tif.geotiff_metadata or {}
        except Exception as exc:
            self.warnings.append(f"{self.url}: GeoTIFF keys not imported: {exc}")
            return {}
        return {str(k): _json_value(v) for k, v in meta.items()}

    def _raster_type(self, main: Any) -> int:
        keys = main.tags.get(34735)
        if keys is None:
            return 1
        v = list(keys.value)
        for n in range(4, len(v) - 3, 4):
            if v[n] == 1025 and v[n + 1] == 0:
                return int(v[n + 3])
        return 1

    def _group_attrs(self, main: Any) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        for name in _TEXT_TAGS:
            tag = main.tags.get(name)
            if tag is not None and isinstance(tag.value, str | bytes):
                attrs[name] = _json_value(tag.value)
        geo = self._geokeys()
        attrs.update(geo)
        for code in ("ProjectedCSTypeGeoKey", "GeographicTypeGeoKey"):
            epsg = geo.get(code)
            if isinstance(epsg, int) and 1024 <= epsg < 32767:
                attrs["crs"] = f"EPSG:{epsg}"
                break
        for code, name in ((42112, "GDAL_METADATA"), (42113, "GDAL_NODATA")):
            tag = main.tags.get(code)
            if tag is not None:
                attrs[name] = _json_value(tag.value)
        _check_json_attrs(attrs, f"{self.url}: file attributes")
        return attrs


def _enum_name(value: Any) -> str:
    return value.name if isinstance(value, Enum) else str(value)


def _array_meta(
    shape: list[int],
    chunks: list[int],
    dims: list[str],
    dtype: np.dtype[Any],
    nodata: Any,
    codec: TiffCodec,
    attrs: dict[str, Any],
    where: str,
) -> dict[str, Any]:
    from zarr.dtype import parse_dtype

    from .._zarr import ArrayV3Metadata, array_document

    try:
        zdtype = parse_dtype(dtype, zarr_format=3)
        fill = nodata if nodata is not None else zdtype.default_scalar()
        v3 = ArrayV3Metadata(
            shape=tuple(shape),
            data_type=zdtype,
            chunk_grid={"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
            chunk_key_encoding={"name": "default", "configuration": {"separator": "/"}},
            fill_value=fill,
            codecs=[codec],
            attributes=attrs,
            dimension_names=dims,
            storage_transformers=(),
        )
        document = array_document(v3)
    except (ValueError, TypeError) as exc:
        raise UnsupportedFeatureError(f"{where}: cannot express it in Zarr v3: {exc}") from exc
    return document
