"""The ``zarrchive.tiff`` Zarr v3 codec: one TIFF strip or tile, as stored in the file.

A virtual TIFF chunk is the exact byte range of one strip or tile (a *segment*). Decoding it
takes more than a generic compressor: the horizontal or floating-point predictor runs across
the decompressed samples in the file's byte order; JPEG segments may need the image's shared
JPEGTables and its colour-space rules; the last strip of an image is usually shorter than
RowsPerStrip, while Zarr expects every chunk at full size. zarr-python 3 wraps only numcodecs'
built-in codecs, and imagecodecs' numcodecs codecs cover neither predictors in the file's byte
order nor short strips, so this ArrayBytesCodec does the whole segment, with the same
imagecodecs functions and in the same order as tifffile's ``TiffPage.decode`` (so both give
identical values, JPEG included). Short segments are padded with the array's fill value
(the padding lies outside the image, where Zarr crops it).

Configuration (JSON): ``compression`` and ``predictor`` (TIFF tag values), ``byteorder``
(``"<"``/``">"``), ``segment`` ``[rows, columns, samples]`` (the full decoded segment; the
chunk is that many values in C order, whatever its dimensions), and for JPEG
``bitspersample``, ``jpegtables`` (base64), ``colorspace`` / ``outcolorspace`` (as tifffile's
``jpeg_decode_colorspace`` gives them). For the byte compressions, ``bitspersample`` that is
not a whole number of bytes (bilevel, 2-, 4-, 12-bit images) means packed samples: each row
of the segment is a most-significant-bit-first bit stream padded to a whole byte, unpacked
with ``imagecodecs.packints_decode`` after decompression; ``fillorder`` 2 means the
segment's bits are reversed within each byte (undone before decompression), as tifffile
does. Encoding (writing into an imported array) is supported
for the lossless byte compressions; image codecs (JPEG, WebP, PNG, JPEG 2000, JPEG XL) refuse
it. Decoding failures raise :class:`zarrchive.FormatError`.

Importing this module registers the codec with zarr (``zarr.registry.register_codec``);
installed packages also find it through the ``zarr.codecs`` entry point ``zarrchive.tiff``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.buffer import Buffer, NDBuffer
from zarr.abc.codec import ArrayBytesCodec

from ..errors import FormatError, UnsupportedFeatureError

if TYPE_CHECKING:
    from typing import Self

    from .._zarr import ArraySpec, ChunkGrid

__all__ = [
    "BYTE_COMPRESSIONS",
    "CODEC_NAME",
    "IMAGE_COMPRESSIONS",
    "PREDICTORS",
    "TiffCodec",
    "compression_name",
]

CODEC_NAME = "zarrchive.tiff"

#: compressions whose decoder returns bytes: tag value -> imagecodecs name (1 = none)
BYTE_COMPRESSIONS: dict[int, str] = {
    1: "none",
    5: "lzw",
    8: "zlib",
    32946: "zlib",
    50013: "zlib",
    32773: "packbits",
    34925: "lzma",
    50000: "zstd",
    34926: "zstd",
}
#: compressions whose decoder returns an image: tag value -> imagecodecs name
IMAGE_COMPRESSIONS: dict[int, str] = {
    7: "jpeg",
    50001: "webp",
    34927: "webp",
    34933: "png",
    33003: "jpeg2k",
    33004: "jpeg2k",
    33005: "jpeg2k",
    34712: "jpeg2k",
    50002: "jpegxl",
    52546: "jpegxl",
}
#: 1 none, 2 horizontal differencing, 3 floating point
PREDICTORS = (1, 2, 3)


def compression_name(value: int) -> str:
    """The TIFF name of a compression tag value (``ADOBE_DEFLATE``), or its number."""
    try:
        from tifffile import COMPRESSION

        return COMPRESSION(value).name
    except (ImportError, ValueError):
        return str(value)


def _codec_function(name: str, encode: bool) -> Callable[..., Any]:
    import imagecodecs

    func = getattr(imagecodecs, f"{name}_{'encode' if encode else 'decode'}", None)
    codec = getattr(imagecodecs, name.upper(), None)
    if func is None or (codec is not None and not getattr(codec, "available", True)):
        raise UnsupportedFeatureError(
            f"this imagecodecs build cannot {'encode' if encode else 'decode'} {name}"
        )
    return func


def _fill_scalar(fill_value: Any, dtype: np.dtype[Any]) -> Any:
    try:
        return np.asarray(fill_value).astype(dtype)
    except (TypeError, ValueError):
        return np.zeros((), dtype)


@dataclass(frozen=True)
class TiffCodec(ArrayBytesCodec):
    """Decodes one TIFF strip or tile into a full-size chunk (see the module docstring)."""

    is_fixed_size = False

    compression: int
    predictor: int
    byteorder: str
    segment: tuple[int, int, int]
    bitspersample: int | None
    jpegtables: str | None
    colorspace: int | str | None
    outcolorspace: int | str | None
    fillorder: int

    def __init__(
        self,
        *,
        compression: int,
        segment: tuple[int, int, int] | list[int],
        predictor: int = 1,
        byteorder: str = "<",
        bitspersample: int | None = None,
        jpegtables: str | bytes | None = None,
        colorspace: int | str | None = None,
        outcolorspace: int | str | None = None,
        fillorder: int = 1,
    ) -> None:
        compression = int(compression)
        if compression not in BYTE_COMPRESSIONS and compression not in IMAGE_COMPRESSIONS:
            raise ValueError(f"TIFF compression {compression_name(compression)} is not supported")
        if int(predictor) not in PREDICTORS:
            raise ValueError(f"TIFF predictor {predictor} is not supported (1, 2 and 3 are)")
        if byteorder not in ("<", ">"):
            raise ValueError(f"byteorder must be '<' or '>', got {byteorder!r}")
        seg = tuple(int(v) for v in segment)
        if len(seg) != 3 or min(seg) < 1:
            raise ValueError(f"segment must be [rows, columns, samples] >= 1, got {segment!r}")
        if int(fillorder) not in (1, 2):
            raise ValueError(f"TIFF FillOrder {fillorder} is not 1 or 2")
        if bitspersample is not None and not 1 <= int(bitspersample) <= 64:
            raise ValueError(f"bitspersample must be 1 to 64, got {bitspersample!r}")
        if isinstance(jpegtables, bytes):
            jpegtables = base64.b64encode(jpegtables).decode()
        object.__setattr__(self, "compression", compression)
        object.__setattr__(self, "predictor", int(predictor))
        object.__setattr__(self, "byteorder", byteorder)
        object.__setattr__(self, "segment", seg)
        object.__setattr__(self, "bitspersample", bitspersample)
        object.__setattr__(self, "jpegtables", jpegtables)
        object.__setattr__(self, "colorspace", colorspace)
        object.__setattr__(self, "outcolorspace", outcolorspace)
        object.__setattr__(self, "fillorder", int(fillorder))

    # ------------------------------------------------------------------ metadata
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:  # type: ignore[override]
        if data.get("name") != CODEC_NAME:
            raise ValueError(f"expected codec {CODEC_NAME!r}, got {data.get('name')!r}")
        config = data.get("configuration")
        if not isinstance(config, Mapping):
            raise ValueError(f"codec {CODEC_NAME!r} needs a configuration object")
        return cls(**dict(config))

    def to_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "compression": self.compression,
            "predictor": self.predictor,
            "byteorder": self.byteorder,
            "segment": list(self.segment),
        }
        for key in ("bitspersample", "jpegtables", "colorspace", "outcolorspace"):
            value = getattr(self, key)
            if value is not None:
                config[key] = value
        if self.fillorder != 1:
            config["fillorder"] = self.fillorder
        return {"name": CODEC_NAME, "configuration": config}

    def evolve_from_array_spec(self, array_spec: ArraySpec) -> Self:
        return self

    def validate(self, *, shape: tuple[int, ...], dtype: Any, chunk_grid: ChunkGrid) -> None:
        chunk_shape = getattr(chunk_grid, "chunk_shape", None)
        if chunk_shape is not None and int(np.prod(chunk_shape)) != int(np.prod(self.segment)):
            raise ValueError(
                f"codec {CODEC_NAME!r}: chunk shape {tuple(chunk_shape)} does not hold one "
                f"segment of {list(self.segment)} values"
            )

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError

    # ------------------------------------------------------------------ decoding
    @cached_property
    def _tables(self) -> bytes | None:
        return base64.b64decode(self.jpegtables) if self.jpegtables else None

    @property
    def _label(self) -> str:
        return f"TIFF segment ({compression_name(self.compression)}, predictor {self.predictor})"

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        dtype = chunk_spec.dtype.to_native_dtype()
        data = chunk_bytes.to_bytes()
        try:
            if self.compression in IMAGE_COMPRESSIONS:
                image = self._decode_image(data)
            else:
                image = self._decode_bytes(data, dtype)
            image = self._pad(image.astype(dtype, copy=False), chunk_spec.fill_value)
        except (FormatError, UnsupportedFeatureError):
            raise
        except MemoryError as exc:
            raise FormatError(f"{self._label}: decoding needs too much memory") from exc
        except Exception as exc:  # imagecodecs raises its own error class per codec
            raise FormatError(f"{self._label} cannot be decoded: {exc}") from exc
        out = np.ascontiguousarray(image).reshape(chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_ndarray_like(out)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)

    def _decode_image(self, data: bytes) -> np.ndarray:
        rows, cols, samples = self.segment
        name = IMAGE_COMPRESSIONS[self.compression]
        if name == "jpeg":
            self._check_jpeg_size(data)
            import imagecodecs

            return imagecodecs.jpeg_decode(
                data,
                bitspersample=self.bitspersample,
                tables=self._tables,
                colorspace=self.colorspace,
                outcolorspace=self.outcolorspace,
                shape=(rows, cols),
            )
        if name == "webp" and samples == 4:
            import imagecodecs

            # WebP segments may lack an all-opaque alpha channel (as in tifffile)
            return imagecodecs.webp_decode(data, hasalpha=True)
        return _codec_function(name, encode=False)(data)

    def _check_jpeg_size(self, data: bytes) -> None:
        """Refuse a JPEG whose frame is larger than the segment before allocating it."""
        try:
            from tifffile.tifffile import jpeg_shape
        except ImportError:  # a reader without tifffile: the decoder alone checks the data
            return
        try:
            _, height, width, _ = jpeg_shape(data)
        except Exception:  # no frame header found: the decoder reports it
            return
        rows, cols, _ = self.segment
        if height > rows or width > cols:
            raise FormatError(
                f"{self._label}: the JPEG frame is {height} x {width}, larger than the "
                f"{rows} x {cols} segment"
            )

    @property
    def _packed(self) -> bool:
        bits = self.bitspersample
        return self.compression in BYTE_COMPRESSIONS and bits is not None and bits % 8 != 0

    def _decode_bytes(self, data: bytes, dtype: np.dtype[Any]) -> np.ndarray:
        rows, cols, samples = self.segment
        size = rows * cols * samples
        name = BYTE_COMPRESSIONS[self.compression]
        if self.fillorder == 2:
            data = _codec_function("bitorder", encode=False)(data)
        if name != "none":
            data = _codec_function(name, encode=False)(data, out=size * dtype.itemsize)
        if self._packed:
            per_row = cols * samples
            flat = np.asarray(
                _codec_function("packints", encode=False)(
                    data, dtype, self.bitspersample, runlen=per_row
                )
            ).reshape(-1)[:size]
            flat = flat[: flat.size // per_row * per_row]
            image = flat.reshape(-1, cols, samples).astype(dtype.newbyteorder("="), copy=False)
            if self.predictor == 2:
                image = _codec_function("delta", encode=False)(image, axis=-2)
            return image
        if self.predictor == 3:
            # the floating-point predictor's byte planes are independent of the byte order
            file_dtype = dtype.newbyteorder("=")
        else:
            file_dtype = dtype.newbyteorder(self.byteorder)
        whole = len(data) // file_dtype.itemsize * file_dtype.itemsize
        flat = np.frombuffer(data, file_dtype, count=whole // file_dtype.itemsize)[:size]
        per_row = cols * samples
        if flat.size % per_row:
            raise FormatError(
                f"{self._label}: {flat.size} values do not fill whole rows of {cols} x "
                f"{samples}; expected up to {size}"
            )
        image = flat.reshape(-1, cols, samples).astype(dtype.newbyteorder("="), copy=False)
        if self.predictor == 2:
            image = _codec_function("delta", encode=False)(image, axis=-2)
        elif self.predictor == 3:
            image = _codec_function("floatpred", encode=False)(image, axis=-2)
        return image

    def _pad(self, image: np.ndarray, fill_value: Any) -> np.ndarray:
        """``image`` (rows, columns[, samples]) padded to the full segment."""
        rows, cols, samples = self.segment
        if image.ndim == 2:
            image = image[..., np.newaxis]
        if image.ndim != 3 or image.shape[2] != samples:
            raise FormatError(
                f"{self._label}: decoded shape {image.shape} does not match the segment's "
                f"{samples} samples"
            )
        h, w = image.shape[0], image.shape[1]
        if h > rows or w > cols:
            image = image[:rows, :cols]
            h, w = image.shape[0], image.shape[1]
        if (h, w) == (rows, cols):
            return image
        out = np.full((rows, cols, samples), _fill_scalar(fill_value, image.dtype), image.dtype)
        out[:h, :w] = image
        return out

    # ------------------------------------------------------------------ encoding
    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        if self._packed or self.fillorder != 1:
            raise UnsupportedFeatureError(
                f"cannot write to an array imported from TIFF segments of packed "
                f"{self.bitspersample}-bit samples or reversed bit order (read-only); copy it "
                "to a new array first"
            )
        if self.compression in IMAGE_COMPRESSIONS:
            raise UnsupportedFeatureError(
                f"cannot write to an array imported from {compression_name(self.compression)}"
                "-compressed TIFF segments (lossy or image codecs are read-only); copy it to a "
                "new array first"
            )
        rows, cols, samples = self.segment
        image = np.asarray(chunk_array.as_ndarray_like()).reshape(rows, cols, samples)
        native = image.dtype.newbyteorder("=")
        image = np.ascontiguousarray(image, dtype=native)
        if self.predictor == 2:
            image = _codec_function("delta", encode=True)(image, axis=-2)
        if self.predictor == 3:
            raw = np.ascontiguousarray(
                _codec_function("floatpred", encode=True)(image, axis=-2)
            ).tobytes()
        else:
            raw = image.astype(native.newbyteorder(self.byteorder), copy=False).tobytes()
        name = BYTE_COMPRESSIONS[self.compression]
        if name != "none":
            raw = bytes(_codec_function(name, encode=True)(raw))
        return chunk_spec.prototype.buffer.from_bytes(raw)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return await asyncio.to_thread(self._encode_sync, chunk_array, chunk_spec)


def _register() -> None:
    from zarr.registry import register_codec

    register_codec(CODEC_NAME, TiffCodec)


_register()
