"""Importer for GRIB files (edition 2, and edition 1 messages): one virtual chunk per message.

Messages are parsed by ecCodes (keys only: no message's values are ever decoded here). What is
hand-written, and why:

- the framing: each message's byte range (``GRIB`` ... ``7777``, the length in section 0,
  ECMWF's coding of edition 1 messages over 8 MiB), so that a remote file is read through
  fsspec, not downloaded, and, for edition 2, only sections 0 to 5 of each message are read:
  ecCodes gets a copy of those closed by empty bitmap and data sections, which yields every
  key but the values (edition 1 messages are read whole);
- a check that a message's sections add up before ecCodes sees it: ecCodes trusts section
  lengths and can read past its buffer (and crash) on corrupt ones;
- a cache of the keys that name a message's variable (``paramId``, ``shortName``... cost
  ecCodes milliseconds each), keyed by the header bytes they depend on (``_identity``).

Layout (mirrors cfgrib, whose ``xr.open_dataset(path, engine="cfgrib",
backend_kwargs={"filter_by_keys": {"shortName": ..., "typeOfLevel": ...}})`` is the reference):

- one group per (shortName, typeOfLevel), named ``<shortName>_<typeOfLevel>``, holding one data
  array named by cfgrib's rule (``cfVarName``, e.g. ``t2m`` for ``2t``) with dimensions
  ``number, time, step, <typeOfLevel>`` (those with more than one value; the others become
  scalar coordinates) followed by the grid: ``latitude, longitude`` for regular lat/lon and
  Gaussian grids, ``y, x`` for projected grids (2-D ``latitude``/``longitude`` coordinates),
  ``values`` otherwise (reduced, spectral and unstructured grids);
- each message's byte range is one chunk (chunk shape 1 along the non-grid dimensions, the
  whole grid otherwise), decoded by the ``zarrchive.grib`` codec
  (:mod:`zarrchive.codecs.grib`); cells of the hypercube without a message read as NaN.
  A multi-field GRIB2 message (NCEP's u/v pairs: sections 2, 3 or 4 onwards repeated after
  section 7) is one chunk of each of its fields' arrays, the whole message each time; the
  codec's ``field`` setting says which field an array decodes, so the fields of one array
  all sit at the same place in their messages (others go to a ``_<n>`` group);
- coordinates (``time`` and ``valid_time`` as seconds since 1970, ``step`` in hours decoded
  to timedeltas, the level coordinate named by its typeOfLevel, ``number``, ``latitude``,
  ``longitude``) and cfgrib's attributes (``GRIB_paramId``, ``GRIB_shortName``, ``units``,
  ``long_name``, ``standard_name``, ``GRIB_gridType`` and the grid keys...) are written
  inline; the geometry comes from ecCodes (``distinctLatitudes``/``distinctLongitudes``,
  or ``latitudes``/``longitudes``) for the first message of each grid.

Messages that do not fit their variable's hypercube are kept, not dropped: duplicates of a
(number, time, step, level) cell (the first one is in the hypercube, as in cfgrib), and
messages with another grid, dataType, stepType, edition, centre or paramId go to groups
``<shortName>_<typeOfLevel>_<n>`` (n = 1, 2, ...) whose ``comment`` says why. The main group
is the largest consistent set (the earliest on ties).

Deliberate differences from cfgrib: ``history`` names zarrchive, not a timestamp; longitudes
of grids scanned east to west (``iScansNegatively=1``) are listed in the data's order (cfgrib
sorts them, mismatching the data); column-major grids (``jPointsAreConsecutive=1``) are
transposed by the codec.

Options: ``dtype`` ("float32", cfgrib's default, or "float64", ecCodes' own precision);
``on_unsupported`` ("raise" or "skip": skip, with one warning naming each of them, the
messages that cannot be virtual: steps in units without a fixed length). Messages of GRIB
editions other than 1 and 2 always raise :class:`UnsupportedFeatureError` (their length
cannot be trusted to skip them); bytes between messages that are not GRIB are skipped with
a warning giving their offsets.
"""

from __future__ import annotations

import datetime
import re
import struct
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from .._sync import offload
from ..codecs.grib import check_structure
from ..errors import (
    FormatError,
    InvalidInputError,
    NotFoundError,
    StorageError,
    UnsupportedFeatureError,
    ZarrchiveError,
)
from ..format import INLINE, Manifest
from ..sources import local_path
from ._base import ImportedArray, ImportedTree, StatFn
from ._v2meta import convert_array, convert_group

__all__ = ["scan"]

# ---------------------------------------------------------------------- cfgrib's key sets
GLOBAL_KEYS = ("edition", "centre", "centreDescription", "subCentre")
DATA_KEYS = (
    "paramId",
    "dataType",
    "numberOfPoints",
    "typeOfLevel",
    "stepUnits",
    "stepType",
    "gridType",
    "uvRelativeToGrid",
)
EXTRA_KEYS = (
    "shortName",
    "units",
    "name",
    "cfName",
    "cfVarName",
    "missingValue",
    "totalNumber",
    "numberOfDirections",
    "numberOfFrequencies",
    "NV",
    "gridDefinitionDescription",
)
_LL = (
    "Nx",
    "iDirectionIncrementInDegrees",
    "iScansNegatively",
    "longitudeOfFirstGridPointInDegrees",
    "longitudeOfLastGridPointInDegrees",
    "Ny",
    "jDirectionIncrementInDegrees",
    "jPointsAreConsecutive",
    "jScansPositively",
    "latitudeOfFirstGridPointInDegrees",
    "latitudeOfLastGridPointInDegrees",
)
_ROTATED = (
    "Nx",
    "Ny",
    "angleOfRotationInDegrees",
    "iDirectionIncrementInDegrees",
    "iScansNegatively",
    "jDirectionIncrementInDegrees",
    "jPointsAreConsecutive",
    "jScansPositively",
    "latitudeOfFirstGridPointInDegrees",
    "latitudeOfLastGridPointInDegrees",
    "latitudeOfSouthernPoleInDegrees",
    "longitudeOfFirstGridPointInDegrees",
    "longitudeOfLastGridPointInDegrees",
    "longitudeOfSouthernPoleInDegrees",
)
GRID_TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "regular_ll": _LL,
    "rotated_ll": _ROTATED,
    "reduced_ll": (
        "Ny",
        "jDirectionIncrementInDegrees",
        "jPointsAreConsecutive",
        "jScansPositively",
        "latitudeOfFirstGridPointInDegrees",
        "latitudeOfLastGridPointInDegrees",
    ),
    "regular_gg": (
        "N",
        "Ni",
        "Nj",
        "iDirectionIncrementInDegrees",
        "iScansNegatively",
        "jScansPositively",
        "jPointsAreConsecutive",
        "longitudeOfFirstGridPointInDegrees",
        "longitudeOfLastGridPointInDegrees",
        "latitudeOfFirstGridPointInDegrees",
        "latitudeOfLastGridPointInDegrees",
    ),
    "rotated_gg": (*_ROTATED, "N"),
    "lambert": (
        "LaDInDegrees",
        "LoVInDegrees",
        "iScansNegatively",
        "jPointsAreConsecutive",
        "jScansPositively",
        "latitudeOfFirstGridPointInDegrees",
        "latitudeOfSouthernPoleInDegrees",
        "longitudeOfFirstGridPointInDegrees",
        "longitudeOfSouthernPoleInDegrees",
        "DyInMetres",
        "DxInMetres",
        "Latin2InDegrees",
        "Latin1InDegrees",
        "Ny",
        "Nx",
    ),
    "reduced_gg": ("N", "pl"),
    "sh": ("M", "K", "J"),
}
_DIMENSION_GRIDS = {"regular_ll", "regular_gg"}
_2D_GRIDS = {
    "rotated_ll",
    "rotated_gg",
    "lambert",
    "lambert_azimuthal_equal_area",
    "albers",
    "polar_stereographic",
}
_EPOCH_UNITS = "seconds since 1970-01-01T00:00:00"
COORD_ATTRS: dict[str, dict[str, Any]] = {
    "latitude": {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude"},
    "longitude": {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"},
    "depthBelowLand": {
        "units": "m",
        "positive": "down",
        "long_name": "soil depth",
        "standard_name": "depth",
    },
    "depthBelowLandLayer": {
        "units": "m",
        "positive": "down",
        "long_name": "soil depth",
        "standard_name": "depth",
    },
    "hybrid": {
        "units": "1",
        "positive": "down",
        "long_name": "hybrid level",
        "standard_name": "atmosphere_hybrid_sigma_pressure_coordinate",
    },
    "heightAboveGround": {
        "units": "m",
        "positive": "up",
        "long_name": "height above the surface",
        "standard_name": "height",
    },
    "isobaricInhPa": {
        "units": "hPa",
        "positive": "down",
        "stored_direction": "decreasing",
        "standard_name": "air_pressure",
        "long_name": "pressure",
    },
    "isobaricInPa": {
        "units": "Pa",
        "positive": "down",
        "stored_direction": "decreasing",
        "standard_name": "air_pressure",
        "long_name": "pressure",
    },
    "isobaricLayer": {
        "units": "Pa",
        "positive": "down",
        "standard_name": "air_pressure",
        "long_name": "pressure",
    },
    "number": {
        "units": "1",
        "standard_name": "realization",
        "long_name": "ensemble member numerical id",
    },
    "step": {
        "units": "hours",
        "standard_name": "forecast_period",
        "long_name": "time since forecast_reference_time",
        "dtype": "timedelta64[ns]",
    },
    "time": {
        "units": _EPOCH_UNITS,
        "calendar": "proleptic_gregorian",
        "standard_name": "forecast_reference_time",
        "long_name": "initial time of forecast",
    },
    "valid_time": {
        "units": _EPOCH_UNITS,
        "calendar": "proleptic_gregorian",
        "standard_name": "time",
        "long_name": "time",
    },
}
#: seconds per ecCodes step unit (stepUnits code table); None: months and longer
STEP_UNIT_SECONDS: tuple[int | None, ...] = (
    60,
    3600,
    86400,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    10800,
    21600,
    43200,
    1,
    900,
    1800,
)
#: header dimensions in cfgrib's order: (key, coordinate name; None: the typeOfLevel)
HEADER_DIMS: tuple[tuple[str, str | None], ...] = (
    ("number", "number"),
    ("time", "time"),
    ("step", "step"),
    ("level", None),
    ("directionNumber", "directionNumber"),
    ("frequencyNumber", "frequencyNumber"),
)
_SIGNATURE_KEYS = (*GLOBAL_KEYS, *DATA_KEYS, "md5GridSection", "Nx", "Ny")
_MD5 = _SIGNATURE_KEYS.index("md5GridSection")
_SIG_NAMES = (*_SIGNATURE_KEYS, "defined keys", "field of a multi-field message")
#: compute variable-naming keys once per distinct header (see ``_identity``)
_CACHE_IDENTITY = True
_READ_BLOCK = 64 * 1024
_COMPRESS_ABOVE = 64 * 1024
_HISTORY = "GRIB to CDM+CF via zarrchive (virtual chunks, decoded by ecCodes-{version})"


def _ec() -> Any:
    try:
        import eccodes
    except ImportError as exc:  # pragma: no cover
        raise UnsupportedFeatureError(
            "importing GRIB files needs ecCodes: pip install eccodes"
        ) from exc
    return eccodes


# ---------------------------------------------------------------------- framing
@dataclass(slots=True)
class _Frame:
    offset: int
    length: int
    edition: int
    header: bytes  # a message ecCodes can read every key (but the values) from
    field: int = 0  # which field of a multi-field GRIB2 message (0: the first or only one)


class _Source:
    """Positioned reads of the source file with a small block cache."""

    def __init__(self, f: BinaryIO, size: int, url: str) -> None:
        self.f = f
        self.size = size
        self.url = url
        self._block_start = 0
        self._block = b""

    def read(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        end = offset + n
        b0, b1 = self._block_start, self._block_start + len(self._block)
        if b0 <= offset and end <= b1:
            return self._block[offset - b0 : end - b0]
        if n >= _READ_BLOCK:
            self.f.seek(offset)
            return self.f.read(n)
        self.f.seek(offset)
        self._block_start = offset
        self._block = self.f.read(min(_READ_BLOCK, self.size - offset))
        return self._block[:n]

    def find_magic(self, start: int) -> int | None:
        """Offset of the next ``GRIB`` at or after ``start`` (None: none before the end)."""
        pos = start
        while pos < self.size:
            chunk = self.read(pos, _READ_BLOCK)
            i = chunk.find(b"GRIB")
            if i >= 0:
                return pos + i
            if len(chunk) < 4:
                return None
            pos += len(chunk) - 3
        return None


def _frames(src: _Source, junk: list[tuple[int, int]]) -> Iterator[_Frame]:
    """Every field of every GRIB message of the source (one frame per field of a multi-field
    GRIB2 message, all with the message's byte range); byte ranges between messages go to
    ``junk``."""
    pos = 0
    while pos < src.size:
        head = src.read(pos, 16)
        if head[:4] != b"GRIB" or (len(head) >= 8 and head[7] not in (0, 1, 2, 3)):
            nxt = src.find_magic(pos + 1 if head[:4] == b"GRIB" else pos)
            end = src.size if nxt is None else nxt
            junk.append((pos, end - pos))
            pos = end
            continue
        if len(head) < 8:
            raise FormatError(f"{src.url}: truncated GRIB message at byte {pos}")
        edition = head[7]
        if edition == 2:
            if len(head) < 16:
                raise FormatError(f"{src.url}: truncated GRIB2 message at byte {pos}")
            length = int.from_bytes(head[8:16], "big")
            _check_span(src, pos, length, 16 + 21 + 4)
            for k, header in enumerate(_grib2_fields(src, pos, length)):
                yield _Frame(pos, length, 2, header, k)
        elif edition == 1:
            length = _grib1_length(src, pos, head)
            data = src.read(pos, length)
            if data[-4:] != b"7777":
                raise FormatError(
                    f"{src.url}: the GRIB1 message at byte {pos} does not end with '7777' "
                    f"where its length ({length} bytes) says; the file is corrupt or truncated"
                )
            check_structure(data, f"{src.url}: the GRIB1 message at byte {pos}")
            yield _Frame(pos, length, 1, data)
        else:
            raise UnsupportedFeatureError(
                f"{src.url}: the message at byte {pos} is GRIB edition {edition}; only "
                "editions 1 and 2 are supported"
            )
        pos += length


def _check_span(src: _Source, pos: int, length: int, minimum: int) -> None:
    if length < minimum:
        raise FormatError(
            f"{src.url}: the GRIB message at byte {pos} declares an impossible length {length}"
        )
    if pos + length > src.size:
        raise FormatError(
            f"{src.url}: the GRIB message at byte {pos} declares {length} bytes but the file "
            f"ends {src.size - pos} bytes after its start; the file is truncated"
        )


def _grib1_length(src: _Source, pos: int, head: bytes) -> int:
    length = int.from_bytes(head[4:7], "big")
    if length & 0x800000:
        # ECMWF's coding of messages over 8 MiB: the length counts 120-byte units, less the
        # section 4 length (below 120 in such messages) plus 4 (as read by ecCodes)
        sec1 = src.read(pos + 8, 8)
        if len(sec1) < 8:
            raise FormatError(f"{src.url}: truncated GRIB1 message at byte {pos}")
        sec1_len = int.from_bytes(sec1[:3], "big")
        flags = sec1[7]
        p = pos + 8 + sec1_len
        for present in (flags & 0x80, flags & 0x40):
            if present:
                p += int.from_bytes(src.read(p, 3), "big")
        sec4_len = int.from_bytes(src.read(p, 3), "big")
        if sec4_len < 120:
            length = (length & 0x7FFFFF) * 120 - sec4_len + 4
    _check_span(src, pos, length, 8 + 28 + 11 + 4)
    return length


def _grib2_fields(src: _Source, pos: int, length: int) -> list[bytes]:
    """One header per field of a GRIB2 message: sections 0-5 of the field (a field repeats
    sections 2, 3 or 4 onwards after the previous field's section 7 and inherits the
    sections it does not repeat), closed by empty sections 6 and 7 and ``7777``."""
    where = f"{src.url}: the GRIB2 message at byte {pos}"
    p = 16
    expected = 1
    latest: dict[int, tuple[int, int]] = {}  # section number -> (start, length)
    stubs: list[bytes] = []
    while True:
        if p + 5 > length - 4:
            raise FormatError(f"{where} has sections running past its end (corrupt)")
        sec_len, num = struct.unpack(">IB", src.read(pos + p, 5))
        if sec_len < 5 or p + sec_len > length - 4:
            raise FormatError(f"{where}: section {num} has an impossible length {sec_len}")
        if num == 2 and expected == 1:
            raise FormatError(f"{where} has no section 1")
        if num < expected or num > 7 or (num > expected and not (expected == 2 and num == 3)):
            raise FormatError(f"{where}: section {num} where section {expected} was expected")
        latest[num] = (p, sec_len)
        p += sec_len
        if num == 6:
            sections = [latest[n] for n in (1, 2, 3, 4, 5) if n in latest]
            stubs.append(_stub(src, pos, sections))
        if num != 7:
            expected = num + 1
            continue
        if p == length - 4:
            break
        nxt = src.read(pos + p, 5)
        if not (len(nxt) == 5 and nxt[4] in (2, 3, 4) and int.from_bytes(nxt[:4], "big") >= 5):
            raise FormatError(f"{where}: its data section does not end where '7777' should start")
        expected = nxt[4]  # another field: its sections repeat from 2, 3 or 4
    if src.read(pos + length - 4, 4) != b"7777":
        raise FormatError(f"{where} does not end with '7777' (corrupt or truncated)")
    return stubs


def _stub(src: _Source, pos: int, sections: list[tuple[int, int]]) -> bytes:
    """Section 0 and the given sections (1 to 5) of the message at ``pos``, closed by an
    empty bitmap section, an empty data section and 7777."""
    body = src.read(pos, 16) + b"".join(src.read(pos + start, n) for start, n in sections)
    stub = body + struct.pack(">IBB", 6, 6, 255) + struct.pack(">IB", 5, 7) + b"7777"
    return stub[:8] + struct.pack(">Q", len(stub)) + stub[16:]


# ---------------------------------------------------------------------- keys
@dataclass(slots=True)
class _Msg:
    offset: int
    length: int
    header: bytes
    sig: tuple[Any, ...]
    coords: dict[str, Any]  # header dimension key -> value (None: not defined)
    name: str  # group name stem: <shortName>_<typeOfLevel>
    var: str  # data variable name (cfgrib's)
    type_of_level: str
    field: int = 0  # which field of its (multi-field) message


def _get(ec: Any, h: Any, key: str, ktype: type | None = None) -> Any:
    """A key's value like cfgrib reads it (arrays as lists), None when not defined."""
    try:
        if ec.codes_get_size(h, key) > 1:
            values = ec.codes_get_array(h, key, ktype)
            return np.asarray(values).tolist()
        value = ec.codes_get(h, key, ktype)
    except ec.KeyValueNotFoundError:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _new_handle(ec: Any, data: bytes, where: str) -> Any:
    try:
        h = ec.codes_new_from_message(data)
    except ec.GribInternalError as exc:
        raise FormatError(f"{where}: ecCodes cannot parse the message: {exc}") from exc
    if h is None:
        raise FormatError(f"{where}: ecCodes cannot parse the message")
    return h


def _seconds(date: Any, time: Any, where: str) -> int:
    try:
        d, t = int(date), int(time)
        when = datetime.datetime(d // 10000, d // 100 % 100, d % 100, t // 100, t % 100)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{where}: invalid reference date/time {date!r} {time!r}") from exc
    return int((when - datetime.datetime(1970, 1, 1)).total_seconds())


def _safe(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.+-]", "_", name).lstrip(".") or "unnamed"
    return "_" + name if name.startswith("__") else name


def _identity(frame: _Frame) -> bytes | None:
    """The header bytes that every cached key is a function of (None: do not cache).

    Looking up a parameter (``paramId``, ``shortName``...) costs ecCodes milliseconds per
    message, so the keys that name a message's variable, level type and grid are computed
    once per distinct value of these bytes: the message's sections up to the product
    definition, less the reference time, the forecast time, the end of a statistical
    processing interval and the ensemble member's number (in the product definition
    templates where their places are fixed: 4.0, 4.1, 4.8, 4.11; other templates are kept
    whole). Levels stay in: they take part in parameter definitions (``2t``).
    """
    h = frame.header
    try:
        if frame.edition == 2:
            parts = [h[6:8]]  # discipline, edition
            p = 16
            while h[p : p + 4] != b"7777":
                n, num = struct.unpack(">IB", h[p : p + 5])
                sec = bytearray(h[p : p + n])
                p += n
                if num == 1:
                    sec[12:19] = bytes(7)  # reference time
                elif num == 4:
                    pdt = int.from_bytes(sec[7:9], "big")
                    if pdt in (0, 1, 8, 11):
                        sec[18:22] = bytes(4)  # forecastTime
                    if pdt in (1, 11):
                        sec[35] = 0  # perturbationNumber
                    if pdt == 8:
                        sec[34:41] = bytes(7)  # end of the overall time interval
                    if pdt == 11:
                        sec[37:44] = bytes(7)
                elif num >= 5:
                    break
                parts.append(bytes(sec))
            return b"".join(parts)
        if frame.edition == 1:
            n = int.from_bytes(h[8:11], "big")
            pds = bytearray(h[8 : 8 + n])
            pds[12:17] = bytes(5)  # year of century, month, day, hour, minute
            pds[18:20] = bytes(2)  # P1, P2
            pds[24] = 0  # century
            gds = b""
            if pds[7] & 0x80:
                m = int.from_bytes(h[8 + n : 11 + n], "big")
                gds = h[8 + n : 8 + n + m]
            return b"\x01" + bytes(pds) + gds
    except (IndexError, struct.error):
        return None
    return None


_IDENTITY_KEYS = (*(k for k in _SIGNATURE_KEYS if k != "stepUnits"), "shortName", "cfVarName")


def _long(ec: Any, h: Any, key: str) -> int | None:
    try:
        return int(ec.codes_get_long(h, key))
    except ec.KeyValueNotFoundError:
        return None


def _read_message(ec: Any, frame: _Frame, url: str, cache: dict[bytes, dict[str, Any]]) -> _Msg:
    where = f"{url}: message at byte {frame.offset}"
    if frame.field:
        where += f" (field {frame.field})"
    h = _new_handle(ec, frame.header, where)
    try:
        ident = _identity(frame) if _CACHE_IDENTITY else None
        values = cache.get(ident) if ident is not None else None
        if values is None:
            values = {k: _get(ec, h, k) for k in _IDENTITY_KEYS}
            if ident is not None:
                cache[ident] = values
        values = {**values, "stepUnits": 1}  # cfgrib: steps are always given in hours
        date, time = _long(ec, h, "dataDate"), _long(ec, h, "dataTime")
        end_step, step_units = _long(ec, h, "endStep"), _long(ec, h, "stepUnits")
        try:
            level: float | None = float(ec.codes_get_double(h, "level"))
        except ec.KeyValueNotFoundError:
            level = None
        coords: dict[str, Any] = {
            "number": _long(ec, h, "number"),
            "level": level,
            "directionNumber": _long(ec, h, "directionNumber"),
            "frequencyNumber": _long(ec, h, "frequencyNumber"),
        }
        short_name, var_name = values["shortName"], values["cfVarName"]
    except ec.GribInternalError as exc:
        raise FormatError(f"{where}: ecCodes cannot read its keys: {exc}") from exc
    finally:
        ec.codes_release(h)
    coords["time"] = None if date is None or time is None else _seconds(date, time, where)
    if end_step is None or step_units is None:
        coords["step"] = None
    else:
        unit = STEP_UNIT_SECONDS[step_units] if 0 <= step_units < len(STEP_UNIT_SECONDS) else None
        if unit is None:
            raise UnsupportedFeatureError(
                f"{where} ({short_name}): its step unit (stepUnits={step_units}) is a month or "
                "longer, which has no fixed length in hours"
            )
        coords["step"] = int(end_step) * unit / 3600.0
    param = values.get("paramId")
    if not isinstance(var_name, str) or var_name in ("", "undef", "unknown", "~"):
        # cfgrib's rule: the shortName as ecCodes gives it, "unknown" included (only the
        # group name, ours, avoids it)
        var_name = short_name if isinstance(short_name, str) and short_name else None
    if not isinstance(short_name, str) or short_name in ("", "undef", "unknown", "~"):
        short_name = f"paramId_{param}"
    var_name = var_name or short_name
    level_type = values.get("typeOfLevel")
    level_type = level_type if isinstance(level_type, str) and level_type else "level"
    if frame.edition != values.get("edition"):
        raise FormatError(f"{where}: section 0 says edition {frame.edition}, ecCodes disagrees")
    for key, value in coords.items():
        if value is not None and (
            not isinstance(value, int | float) or isinstance(value, bool) or not np.isfinite(value)
        ):
            raise FormatError(f"{where}: invalid {key} {value!r}")
    defined = tuple(sorted(k for k, v in coords.items() if v is not None))
    # one array's chunks all decode the same field of their messages (the codec's setting)
    sig = (*(values.get(k) for k in _SIGNATURE_KEYS), defined, frame.field)
    return _Msg(
        frame.offset,
        frame.length,
        frame.header,
        sig,
        coords,
        f"{_safe(short_name)}_{_safe(level_type)}",
        var_name,
        level_type,
        frame.field,
    )


# ---------------------------------------------------------------------- grouping
@dataclass(slots=True)
class _Cube:
    name: str
    msgs: list[_Msg]
    comment: str | None = None
    arrays: dict[str, tuple[dict[str, Any], Manifest]] = field(default_factory=dict)


def _cubes(msgs: list[_Msg]) -> list[_Cube]:
    """Hypercubes: per (shortName, typeOfLevel), per consistent signature, per duplicate rank."""
    by_name: dict[str, list[_Msg]] = {}
    for m in msgs:
        by_name.setdefault(m.name, []).append(m)
    out: list[_Cube] = []
    for name, group in by_name.items():
        by_sig: dict[tuple[Any, ...], list[_Msg]] = {}
        for m in group:
            by_sig.setdefault(m.sig, []).append(m)
        sigs = sorted(by_sig.values(), key=lambda ms: -len(ms))  # stable: earliest on ties
        n = 0
        for si, members in enumerate(sigs):
            layers: list[list[_Msg]] = []
            seen: dict[tuple[Any, ...], int] = {}
            for m in members:
                cell = tuple(m.coords[k] for k, _ in HEADER_DIMS)
                rank = seen.get(cell, 0)
                seen[cell] = rank + 1
                if rank == len(layers):
                    layers.append([])
                layers[rank].append(m)
            for li, layer in enumerate(layers):
                comment = None
                if si or li:
                    comment = _why(name, sigs[0][0], layer[0], duplicate=li > 0)
                out.append(_Cube(name if n == 0 else f"{name}_{n}", layer, comment))
                n += 1
    return out


def _why(name: str, main: _Msg, other: _Msg, *, duplicate: bool) -> str:
    if duplicate and main.sig == other.sig:
        return (
            f"GRIB messages of the same variable as group {name!r} that repeat one of its "
            "(number, time, step, level) cells; the group holds the first of each"
        )
    diffs = [
        f"{k}={b!r} (not {a!r})"
        for k, a, b in zip(_SIG_NAMES, main.sig, other.sig, strict=True)
        if a != b
    ]
    return (
        f"GRIB messages of the same shortName and typeOfLevel as group {name!r} that do not "
        f"fit its hypercube: {', '.join(diffs)}"
        + ("; duplicates of cells of another such group" if duplicate else "")
    )


# ---------------------------------------------------------------------- arrays
def _coord_array(
    data: np.ndarray, dims: tuple[str, ...], attrs: Mapping[str, Any], where: str
) -> tuple[dict[str, Any], Manifest]:
    data = np.array(data, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    le = data.dtype.newbyteorder("<")
    payload = data.astype(le, copy=False).tobytes()
    compressor = None
    if len(payload) > _COMPRESS_ABOVE:  # 2-D latitudes/longitudes of large projected grids
        import zstandard

        compressor = {"id": "zstd", "level": 3}
        payload = zstandard.ZstdCompressor(level=3).compress(payload)
    zarray = {
        "zarr_format": 2,
        "shape": list(data.shape),
        "chunks": list(data.shape) if data.ndim else [],
        "dtype": le.str,
        "compressor": compressor,
        "filters": None,
        "fill_value": None,
        "order": "C",
    }
    meta = convert_array(zarray, {**attrs, "_ARRAY_DIMENSIONS": list(dims)}, where)
    refs = Manifest(
        np.zeros((1, data.ndim), dtype=np.int64),
        np.array([INLINE], dtype=np.uint8),
        np.zeros(1, dtype=np.int64),
        np.zeros(1, dtype=np.int64),
        np.array([len(payload)], dtype=np.int64),
        inline=[payload],
    )
    return meta, refs


_Geometry = tuple[
    tuple[str, ...], tuple[int, ...], dict[str, tuple[np.ndarray, tuple[str, ...]]], list[str]
]


def _grid_coords(ec: Any, first: _Msg, url: str) -> _Geometry:
    """Grid dimensions, sizes, latitude/longitude coordinates (cfgrib's rules) and notes."""
    where = f"{url}: message at byte {first.offset}"
    notes: list[str] = []
    h = _new_handle(ec, first.header, where)
    try:
        grid_type = _get(ec, h, "gridType")
        nx, ny = _get(ec, h, "Nx"), _get(ec, h, "Ny")
        npoints = _get(ec, h, "numberOfPoints")
        if not isinstance(npoints, int) or npoints <= 0:
            raise UnsupportedFeatureError(
                f"{where} ({first.name}): grid type {grid_type!r} without a number of points"
            )
        two_d = isinstance(nx, int) and isinstance(ny, int) and nx > 0 and ny > 0
        two_d = two_d and grid_type in _DIMENSION_GRIDS | _2D_GRIDS
        if two_d and nx * ny != npoints:
            raise FormatError(
                f"{where}: {grid_type} grid of {ny} x {nx} points but numberOfPoints={npoints}"
            )
        coords: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
        if two_d and grid_type in _DIMENSION_GRIDS:
            dims: tuple[str, ...] = ("latitude", "longitude")
            shape: tuple[int, ...] = (ny, nx)
            try:
                lat = np.asarray(ec.codes_get_array(h, "distinctLatitudes"), dtype=np.float64)
                lon = np.asarray(ec.codes_get_array(h, "distinctLongitudes"), dtype=np.float64)
                if _get(ec, h, "iScansNegatively") == 1:
                    lon = lon[::-1].copy()  # the data's order (cfgrib keeps it sorted)
                if lat.shape == (ny,) and lon.shape == (nx,):
                    coords["latitude"] = (lat, ("latitude",))
                    coords["longitude"] = (lon, ("longitude",))
                else:
                    notes.append(f"{first.name}: ecCodes' latitudes/longitudes do not match Ny/Nx")
            except ec.GribInternalError as exc:
                notes.append(f"{first.name}: no latitudes/longitudes ({exc})")
        elif two_d:
            dims, shape = ("y", "x"), (ny, nx)
            try:
                lat = np.asarray(ec.codes_get_array(h, "latitudes"), dtype=np.float64)
                lon = np.asarray(ec.codes_get_array(h, "longitudes"), dtype=np.float64)
                if lat.size == lon.size == nx * ny:
                    columns = _get(ec, h, "jPointsAreConsecutive") == 1
                    lat = lat.reshape(nx, ny).T.copy() if columns else lat.reshape(ny, nx)
                    lon = lon.reshape(nx, ny).T.copy() if columns else lon.reshape(ny, nx)
                    coords["latitude"] = (lat, ("y", "x"))
                    coords["longitude"] = (lon, ("y", "x"))
                else:
                    notes.append(f"{first.name}: ecCodes' latitudes/longitudes do not match Ny/Nx")
            except ec.GribInternalError as exc:
                notes.append(f"{first.name}: no latitudes/longitudes ({exc})")
        else:
            dims, shape = ("values",), (npoints,)
            try:
                lat = np.asarray(ec.codes_get_array(h, "latitudes"), dtype=np.float64)
                lon = np.asarray(ec.codes_get_array(h, "longitudes"), dtype=np.float64)
                if lat.shape == lon.shape == (npoints,):
                    coords["latitude"] = (lat, ("values",))
                    coords["longitude"] = (lon, ("values",))
            except ec.GribInternalError:
                pass  # spectral and some other grids have no point coordinates (as in cfgrib)
    except ec.GribInternalError as exc:
        raise FormatError(f"{where}: ecCodes cannot read its grid: {exc}") from exc
    finally:
        ec.codes_release(h)
    return dims, shape, coords, notes


def _attributes(ec: Any, first: _Msg, url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(dataset attributes, data variable attributes) read from the cube's first message."""
    h = _new_handle(ec, first.header, f"{url}: message at byte {first.offset}")
    try:
        try:
            ec.codes_set(h, "missingValue", float(np.finfo(np.float32).max))
        except ec.GribInternalError:
            pass
        ds_attrs: dict[str, Any] = {}
        for key in GLOBAL_KEYS:
            value = _safe_get(ec, h, key)
            if value is not None and value not in ("undef", "unknown"):
                ds_attrs["GRIB_" + key] = value
        attrs: dict[str, Any] = {}
        for key in DATA_KEYS:
            value = 1 if key == "stepUnits" else _safe_get(ec, h, key)
            if value is not None and value not in ("undef", "unknown"):
                attrs["GRIB_" + key] = value
        grid_type = attrs.get("GRIB_gridType")
        for key in sorted({*EXTRA_KEYS, *GRID_TYPE_KEYS.get(str(grid_type), ())}):
            value = _safe_get(ec, h, key)
            if value is not None:
                attrs["GRIB_" + key] = value
    finally:
        ec.codes_release(h)
    ds_attrs["Conventions"] = "CF-1.7"
    if "GRIB_centreDescription" in ds_attrs:
        ds_attrs["institution"] = ds_attrs["GRIB_centreDescription"]
    ds_attrs["history"] = _HISTORY.format(version=ec.codes_get_api_version())
    attrs["long_name"] = f"original GRIB paramId: {attrs.get('GRIB_paramId', 'undef')}"
    attrs["units"] = "1"
    if "GRIB_cfName" in attrs:
        attrs["standard_name"] = attrs["GRIB_cfName"]
    if "GRIB_name" in attrs:
        attrs["long_name"] = attrs["GRIB_name"]
    if "GRIB_units" in attrs:
        attrs["units"] = attrs["GRIB_units"]
    return ds_attrs, attrs


def _safe_get(ec: Any, h: Any, key: str) -> Any:
    try:
        return _get(ec, h, key)
    except ec.GribInternalError:
        return None  # as cfgrib: a key ecCodes cannot compute is left out


def _build_cube(
    ec: Any,
    cube: _Cube,
    url: str,
    checksum: str,
    dtype: np.dtype[Any],
    notes: list[str],
    geometry: dict[Any, _Geometry],
) -> tuple[dict[str, Any], dict[str, ImportedArray]]:
    first = cube.msgs[0]
    group = cube.name
    ds_attrs, var_attrs = _attributes(ec, first, url)
    if cube.comment:
        ds_attrs["comment"] = cube.comment
    coord_vars: dict[str, tuple[np.ndarray, tuple[str, ...], dict[str, Any]]] = {}
    header_dims: list[tuple[str, str, list[Any]]] = []  # (key, name, sorted values)
    for key, cname in HEADER_DIMS:
        present = [m.coords[key] for m in cube.msgs]
        if all(v is None for v in present):
            continue
        name = cname or first.type_of_level
        attrs = {
            "long_name": f"original GRIB coordinate for key: {key}({name})",
            "units": "1",
            **COORD_ATTRS.get(name, {}),
        }
        values = sorted(set(present), reverse=attrs.get("stored_direction") == "decreasing")
        np_dtype = np.float64 if key in ("step", "level") else np.int64
        data = np.array(values, dtype=np_dtype)
        if len(values) == 1:
            coord_vars[name] = (data.reshape(()), (), attrs)
        else:
            coord_vars[name] = (data, (name,), attrs)
            header_dims.append((key, name, values))
    grid_key = (first.sig, first.name) if first.sig[_MD5] is None else first.sig[_MD5]
    if grid_key not in geometry:
        geometry[grid_key] = _grid_coords(ec, first, url)
        notes.extend(geometry[grid_key][3])
    geo_dims, geo_shape, geo_coords, _ = geometry[grid_key]
    for cname, (cdata, cdims) in geo_coords.items():
        coord_vars[cname] = (cdata, cdims, dict(COORD_ATTRS[cname]))
    if "latitude" in coord_vars and geo_dims == ("latitude", "longitude"):
        lat = coord_vars["latitude"][0]
        if lat.size > 1 and lat[0] > lat[-1]:
            coord_vars["latitude"][2]["stored_direction"] = "decreasing"
    if "time" in coord_vars and "step" in coord_vars:
        t, t_dims, _ = coord_vars["time"]
        s, s_dims, _ = coord_vars["step"]
        seconds = s * 3600
        if t_dims and s_dims:
            vt, vt_dims = t[:, None] + seconds[None, :], ("time", "step")
        else:
            vt, vt_dims = t + seconds, (*t_dims, *s_dims)
        coord_vars["valid_time"] = (
            np.asarray(vt, dtype=np.float64),
            vt_dims,
            dict(COORD_ATTRS["valid_time"]),
        )
    var_attrs["coordinates"] = " ".join(coord_vars)

    arrays: dict[str, ImportedArray] = {}
    for cname, (cdata, cdims, cattrs) in coord_vars.items():
        meta, refs = _coord_array(cdata, cdims, cattrs, f"{url}: {group}/{cname}")
        arrays[f"{group}/{cname}"] = ImportedArray(meta, refs)

    dims = tuple(name for _, name, _ in header_dims) + geo_dims
    shape = tuple(len(v) for _, _, v in header_dims) + geo_shape
    chunks = (1,) * len(header_dims) + geo_shape
    index = [{v: i for i, v in enumerate(values)} for _, _, values in header_dims]
    coords = np.zeros((len(cube.msgs), len(dims)), dtype=np.int64)
    for row, m in enumerate(cube.msgs):
        for j, (key, _, _) in enumerate(header_dims):
            coords[row, j] = index[j][m.coords[key]]
    var = first.var
    if var in coord_vars:
        var = f"{var}_"
    zarray = {
        "zarr_format": 2,
        "shape": list(shape),
        "chunks": list(chunks),
        "dtype": dtype.newbyteorder("<").str,
        "compressor": None,
        "filters": None,
        "fill_value": "NaN",
        "order": "C",
    }
    where = f"{url}: {group}/{var}"
    meta = convert_array(zarray, {**var_attrs, "_ARRAY_DIMENSIONS": list(dims)}, where)
    from ..codecs.grib import GribCodec

    meta["codecs"] = [GribCodec(field=first.field).to_dict()]
    refs = Manifest.virtual(
        coords,
        np.zeros(len(cube.msgs), dtype=np.int64),
        np.array([m.offset for m in cube.msgs], dtype=np.int64),
        np.array([m.length for m in cube.msgs], dtype=np.int64),
        [url],
        [checksum],
    )
    arrays[f"{group}/{var}"] = ImportedArray(meta, refs)
    return convert_group(ds_attrs), arrays


# ---------------------------------------------------------------------- scan
def _scan_sync(
    f: BinaryIO,
    size: int,
    url: str,
    checksum: str,
    dtype: np.dtype[Any],
    on_unsupported: str,
) -> tuple[ImportedTree, list[str]]:
    ec = _ec()
    import zarrchive.codecs.grib  # noqa: F401  (registers the codec in this process)

    src = _Source(f, size, url)
    junk: list[tuple[int, int]] = []
    msgs: list[_Msg] = []
    skipped: list[str] = []
    cache: dict[bytes, dict[str, Any]] = {}
    # frame every message first: a truncated or corrupt file fails before any key is read
    frames = list(_frames(src, junk))
    for frame in frames:
        try:
            msgs.append(_read_message(ec, frame, url, cache))
        except UnsupportedFeatureError as exc:
            if on_unsupported != "skip":
                raise
            skipped.append(str(exc))
    if not msgs and not skipped:
        raise FormatError(f"{url}: no GRIB message found")
    issued: list[str] = []
    if junk:
        spans = ", ".join(f"{n} bytes at {o}" for o, n in junk[:5])
        more = f" and {len(junk) - 5} more" if len(junk) > 5 else ""
        issued.append(f"{url}: skipped data that is not a GRIB message ({spans}{more})")
    if skipped:
        issued.append(
            f"{url}: skipped {len(skipped)} GRIB messages that cannot be virtual:\n  "
            + "\n  ".join(skipped)
        )
    tree = ImportedTree()
    notes: list[str] = []
    geometry: dict[Any, _Geometry] = {}
    group_attrs: list[dict[str, Any]] = []
    for cube in _cubes(msgs):
        gmeta, arrays = _build_cube(ec, cube, url, checksum, dtype, notes, geometry)
        tree.groups[cube.name] = gmeta
        tree.arrays.update(arrays)
        group_attrs.append(gmeta["attributes"])
    if notes:
        issued.append(f"{url}: GRIB geometry without coordinates: " + "; ".join(notes))
    common = (
        {
            k: v
            for k, v in group_attrs[0].items()
            if k != "comment" and all(a.get(k) == v for a in group_attrs[1:])
        }
        if group_attrs
        else {"Conventions": "CF-1.7"}
    )
    tree.groups[""] = convert_group(common)
    return tree, issued


async def scan(
    url: str,
    *,
    stat: StatFn,
    storage_options: Mapping[str, Any] | None = None,
    dtype: str | np.dtype[Any] = "float32",
    on_unsupported: str = "raise",
) -> ImportedTree:
    """Scan a GRIB file's messages (keys only) into an :class:`ImportedTree`."""
    try:
        np_dtype = np.dtype(dtype)
    except TypeError as exc:
        raise InvalidInputError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if np_dtype not in (np.dtype("float32"), np.dtype("float64")):
        raise InvalidInputError(f"dtype must be float32 or float64, got {dtype!r}")
    if on_unsupported not in ("raise", "skip"):
        raise InvalidInputError(f"on_unsupported must be 'raise' or 'skip', got {on_unsupported!r}")
    try:
        st = await stat(url)
    except FileNotFoundError:
        raise NotFoundError(f"GRIB source {url!r} does not exist") from None
    path = local_path(url)
    ec = _ec()

    def run() -> tuple[ImportedTree, list[str]]:
        try:
            if path is not None:
                with open(path, "rb") as f:
                    return _scan_sync(f, st.size, url, st.checksum, np_dtype, on_unsupported)
            import fsspec

            fs, fpath = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
            with fs.open(fpath, "rb", block_size=256 * 1024, cache_type="readahead") as f:
                return _scan_sync(f, st.size, url, st.checksum, np_dtype, on_unsupported)
        except ZarrchiveError:
            raise
        except FileNotFoundError:
            raise NotFoundError(f"GRIB source {url!r} does not exist") from None
        except OSError as exc:
            raise StorageError(f"{url}: reading the GRIB file failed: {exc}") from exc
        except (
            ec.GribInternalError,
            ValueError,
            TypeError,
            KeyError,
            IndexError,
            OverflowError,
            struct.error,
            MemoryError,
        ) as exc:
            raise FormatError(
                f"{url}: cannot be read as GRIB ({type(exc).__name__}: {exc})"
            ) from exc

    tree, issued = await offload(run)
    for message in issued:
        warnings.warn(message, UserWarning, stacklevel=2)
    return tree
