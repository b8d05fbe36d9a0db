"""``zarrchive.grib``: a Zarr v3 array-to-bytes codec whose encoded chunk is one GRIB message.

The GRIB importer (``zarrchive.importers.grib``) points each chunk of a variable at one whole
GRIB message (edition 1 or 2) inside the source file; this codec turns those bytes back into
the chunk's array with ecCodes, the reference GRIB decoder (every packing ecCodes knows:
simple, complex, spatial differencing, JPEG 2000, PNG, CCSDS, IEEE...). The result follows
cfgrib: missing points (bitmap or missing-value management) become NaN, alternative row
scanning is undone; ours in addition, points stored column by column
(``jPointsAreConsecutive=1``) are transposed into (y, x) rows, which cfgrib leaves as is.

A chunk may also be a multi-field GRIB2 message (sections 2, 3 or 4 onwards repeated after
section 7, as NCEP packs u/v wind pairs); the codec's ``field`` setting (default 0, the
first) says which field the array decodes: the codec rebuilds that field as a message of
its own (section 0, section 1 and the sections in force for the field; a bitmap section
that refers to the previously defined bitmap gets that bitmap) and hands it to ecCodes.

The chunk shape is ``(1, ..., 1, *grid)``: any number of leading length-1 dimensions (time,
step, level, member) and the message's grid, either (Ny, Nx) or the number of points. The
output dtype is the array's (float32 or float64). Encoding is not supported: these arrays
are read-only views of GRIB files.

The codec is registered with zarr when this module is imported and through the
``zarr.codecs`` entry point ``zarrchive.grib``, so fresh processes find it by name.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.codec import ArrayBytesCodec

from .._zarr import JSON, parse_named_configuration
from ..errors import FormatError, UnsupportedFeatureError

if TYPE_CHECKING:
    from typing import Self

    from zarr.abc.buffer import Buffer, NDBuffer
    from zarr.dtype import ZDType

    from .._zarr import ArraySpec, ChunkGrid, TBaseDType, TBaseScalar

__all__ = [
    "CODEC_NAME",
    "MISSING_VALUE",
    "GribCodec",
    "check_structure",
    "decode_message",
    "extract_field",
]

CODEC_NAME = "zarrchive.grib"
#: what ecCodes is told to put at missing points before they become NaN (cfgrib's choice)
MISSING_VALUE = float(np.finfo(np.float32).max)
#: messages larger than this are decoded in a worker thread (ecCodes is built thread-safe)
_THREAD_THRESHOLD = 256 * 1024


def _eccodes() -> Any:
    try:
        import eccodes
    except ImportError as exc:  # pragma: no cover - eccodes is a dependency of the GRIB path
        raise UnsupportedFeatureError(
            "decoding GRIB chunks needs ecCodes: pip install eccodes"
        ) from exc
    return eccodes


def _long(ec: Any, h: Any, key: str) -> int | None:
    try:
        if not ec.codes_is_defined(h, key):
            return None
        return int(ec.codes_get_long(h, key))
    except ec.GribInternalError:
        return None


def check_structure(message: bytes, where: str = "GRIB message") -> int:
    """The edition of a message whose sections add up to its length (else FormatError).

    ecCodes trusts section lengths inside a message it is given and can read past the
    buffer when they are corrupt, so messages are checked before ecCodes sees them.
    """
    if len(message) < 16 or message[:4] != b"GRIB" or message[-4:] != b"7777":
        raise FormatError(f"{where} does not start with 'GRIB' and end with '7777'")
    edition = message[7]
    end = len(message) - 4
    if edition == 2:
        if int.from_bytes(message[8:16], "big") != len(message):
            raise FormatError(f"{where}: section 0 length does not match the message")
        p = 16
        while p < end:
            if p + 5 > end:
                raise FormatError(f"{where}: truncated section header at byte {p}")
            n, num = int.from_bytes(message[p : p + 4], "big"), message[p + 4]
            if n < 5 or p + n > end or not 1 <= num <= 7:
                raise FormatError(f"{where}: corrupt section {num} at byte {p} (length {n})")
            p += n
        return edition
    if edition == 1:
        p = 8
        sizes = {"product definition": 28, "grid description": 32, "bitmap": 6, "data": 11}
        if end - p < 28:
            raise FormatError(f"{where}: too short for GRIB1 sections")
        flags = message[p + 7]
        present = [
            "product definition",
            *(["grid description"] if flags & 0x80 else []),
            *(["bitmap"] if flags & 0x40 else []),
            "data",
        ]
        for name in present:
            if p + 3 > end:
                raise FormatError(f"{where}: no GRIB1 {name} section")
            n = int.from_bytes(message[p : p + 3], "big")
            if name == "data" and n < 120 and message[4] & 0x80:
                n = end - p  # ECMWF's coding of messages over 8 MiB
            if n < sizes[name] or p + n > end:
                raise FormatError(f"{where}: corrupt GRIB1 {name} section (length {n})")
            p += n
        if p != end:
            raise FormatError(f"{where}: GRIB1 sections do not add up to the message length")
        return edition
    raise FormatError(f"{where}: GRIB edition {edition} is not supported")


def extract_field(message: bytes, field: int) -> bytes:
    """Field ``field`` (0-based) of a GRIB2 message as a single-field message.

    A field is ended by section 7; the next one repeats sections from 2, 3 or 4 onwards and
    inherits the others. A bitmap section with indicator 254 ("the bitmap defined before")
    is replaced by the last section 6 that defined one. The message must have passed
    :func:`check_structure`.
    """
    if message[7] != 2:
        raise FormatError(f"GRIB edition {message[7]} messages have one field, not {field + 1}")
    end = len(message) - 4
    current: dict[int, bytes] = {}
    bitmap: bytes | None = None
    p, k = 16, 0
    while p < end:
        n, num = int.from_bytes(message[p : p + 4], "big"), message[p + 4]
        sec = message[p : p + n]
        p += n
        if num == 6 and n >= 6:
            if sec[5] == 0:
                bitmap = sec
            elif sec[5] == 254:
                if bitmap is None:
                    raise FormatError("a GRIB2 field refers to a bitmap no earlier field defined")
                sec = bitmap
        current[num] = sec
        if num != 7:
            continue
        if k == field:
            missing = [s for s in (1, 3, 4, 5, 6) if s not in current]
            if missing:
                raise FormatError(f"GRIB2 field {field} lacks section(s) {missing}")
            body = b"".join(current[s] for s in (1, 2, 3, 4, 5, 6, 7) if s in current)
            total = 16 + len(body) + 4
            return message[:8] + total.to_bytes(8, "big") + body + b"7777"
        k += 1
    raise FormatError(f"the GRIB2 message has {k} field(s), no field {field}")


def decode_message(
    message: bytes,
    shape: tuple[int, ...],
    dtype: np.dtype[Any] | type = np.float32,
    *,
    field: int = 0,
) -> np.ndarray:
    """The values of one GRIB message (its field ``field``) as an array of ``shape`` (NaN
    where missing).

    ``shape`` ends with the grid: (Ny, Nx) or (number of points,), and may start with any
    number of length-1 dimensions. Raises :class:`FormatError` when ecCodes cannot decode the
    message or its number of points does not match ``shape``.
    """
    ec = _eccodes()
    size = math.prod(shape)
    check_structure(message, "chunk's GRIB message")
    if field:
        message = extract_field(bytes(message), field)
    try:
        h = ec.codes_new_from_message(bytes(message))
    except ec.GribInternalError as exc:
        raise FormatError(f"chunk is not a decodable GRIB message: {exc}") from exc
    if h is None:
        raise FormatError("chunk is not a GRIB message")
    try:
        try:
            ec.codes_set(h, "missingValue", MISSING_VALUE)
        except ec.GribInternalError:
            pass  # read-only missingValue: no point is missing through it
        values = np.asarray(ec.codes_get_values(h), dtype=np.float64)
        nx, ny = _long(ec, h, "Nx"), _long(ec, h, "Ny")
        columns = _long(ec, h, "jPointsAreConsecutive") == 1
        alternate = _long(ec, h, "alternativeRowScanning") == 1
    except ec.GribInternalError as exc:
        raise FormatError(f"cannot decode the GRIB message of a chunk: {exc}") from exc
    finally:
        ec.codes_release(h)
    if values.size != size:
        raise FormatError(
            f"GRIB message holds {values.size} values but its chunk has {size} points "
            f"(shape {tuple(shape)}); the source file does not match the imported metadata"
        )
    values[values == MISSING_VALUE] = np.nan
    if len(shape) >= 2 and nx is not None and ny is not None and tuple(shape[-2:]) == (ny, nx):
        if columns:
            values = values.reshape(nx, ny).T
        if alternate:
            grid = values.reshape(ny, nx).copy()
            grid[1::2, :] = grid[1::2, ::-1]
            values = grid
    return np.ascontiguousarray(values.reshape(shape).astype(dtype, copy=False))


@dataclass(frozen=True)
class GribCodec(ArrayBytesCodec):
    """Decodes a chunk that is one whole GRIB message (read-only).

    ``field``: which field of a multi-field GRIB2 message to decode (0, the default, is
    written as no configuration at all).
    """

    is_fixed_size = False
    field: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.field, bool) or not isinstance(self.field, int) or self.field < 0:
            raise ValueError(f"codec {CODEC_NAME!r}: field must be an integer >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> Self:
        _, config = parse_named_configuration(data, CODEC_NAME, require_configuration=False)
        config = dict(config or {})
        field = config.pop("field", 0)
        if config:
            raise ValueError(
                f"codec {CODEC_NAME!r} takes only a 'field' setting, got {sorted(config)}"
            )
        return cls(field=field)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, JSON]:
        if self.field:
            return {"name": CODEC_NAME, "configuration": {"field": self.field}}
        return {"name": CODEC_NAME}

    def validate(
        self,
        *,
        shape: tuple[int, ...],
        dtype: ZDType[TBaseDType, TBaseScalar],
        chunk_grid: ChunkGrid,
    ) -> None:
        native = np.dtype(dtype.to_native_dtype())
        if native.kind != "f":
            raise ValueError(f"codec {CODEC_NAME!r} decodes to float32 or float64, not {native}")

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError("GRIB messages have no fixed size")

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        raw = chunk_bytes.to_bytes()
        dtype = np.dtype(chunk_spec.dtype.to_native_dtype())
        shape = tuple(chunk_spec.shape)
        if len(raw) > _THREAD_THRESHOLD:
            out = await asyncio.to_thread(decode_message, raw, shape, dtype, field=self.field)
        else:
            out = decode_message(raw, shape, dtype, field=self.field)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(out)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        raise UnsupportedFeatureError(
            f"arrays with codec {CODEC_NAME!r} are read-only views of GRIB messages; write to "
            "a new array (or re-import the GRIB file) instead"
        )


def _register() -> None:
    from zarr.registry import register_codec

    register_codec(CODEC_NAME, GribCodec)


_register()
