"""Reading the data of a quick-look plot: only the chunks a slice needs, within bounds.

:func:`plan` decides, from metadata alone, which samples of a 2-D (or 1-D) slice to read: a
strided selection decimated to the image size, coarser when it would touch more than
``Limits.max_chunks`` chunks, and cut to a leading part of the slice when its chunks would
decode to more than ``Limits.max_bytes``. :func:`read` then looks up the chunks the plan
touches in bulk, refuses (``UnauthorizedSourceError``, before any read) when one of them is a
virtual chunk outside the server's authorised containers, and reads band by band through
zarr's async API until ``Limits.max_seconds`` have passed. Every cut is described in the
result's ``notes``. CF packing (``_FillValue``, ``missing_value``, ``scale_factor``,
``add_offset``) is applied so values match their ``units``. Must not import starlette.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import UnauthorizedSourceError, UnsupportedFeatureError
from ..format import VIRTUAL, Node
from ..sources import container_of
from ..store import ZarrchiveStore
from ._arrays import ArrayInfo, Selection
from ._view import At, Limits, authorised

__all__ = ["PLOTTABLE", "Plan", "QuickLook", "plan", "read"]

_ITEMSIZE = {
    "bool": 1,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "float16": 2,
    "int32": 4,
    "uint32": 4,
    "float32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "complex64": 8,
    "complex128": 16,
}
#: zarr v3 data types a quick-look can draw (complex values are drawn as magnitudes)
PLOTTABLE = frozenset(_ITEMSIZE)
_BANDS = 8  # reads per quick-look, at most: the time bound is checked between them


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{n / 1024:.0f} KiB"


@dataclass(frozen=True, slots=True)
class Plan:
    axes: tuple[int, ...]  # plotted axes in array order (one or two)
    samples: dict[int, np.ndarray]  # indices read along each plotted axis
    index: tuple[int, ...]  # position along the other axes
    chunks: int
    nbytes: int
    notes: tuple[str, ...] = ()
    refused: str | None = None  # why nothing can be read within the bounds


def _touched(samples: np.ndarray, chunk: int) -> np.ndarray:
    return np.unique(samples // max(chunk, 1))


def plan(info: ArrayInfo, sel: Selection, limits: Limits) -> Plan:
    if info.dtype not in PLOTTABLE:
        raise UnsupportedFeatureError(
            f"/{info.path} holds {info.dtype} values: quick-looks draw numbers only "
            f"({', '.join(sorted(PLOTTABLE))})"
        )
    axes = tuple(sorted(a for a in (sel.y, sel.x) if a is not None))
    notes: list[str] = []
    step = {a: max(1, math.ceil(info.shape[a] / limits.max_samples)) for a in axes}
    stop = {a: info.shape[a] for a in axes}

    def samples(a: int) -> np.ndarray:
        return np.arange(0, stop[a], step[a], dtype=np.int64)

    def count() -> dict[int, int]:
        return {a: len(_touched(samples(a), info.chunks[a])) for a in axes}

    touched = count()
    coarsened = False
    while math.prod(touched.values()) > limits.max_chunks:
        widest = max(axes, key=lambda a: touched[a])
        step[widest] = max(step[widest] + 1, math.ceil(step[widest] * 1.25))
        touched = count()
        coarsened = True
    if coarsened:
        every = ", ".join(f"every {step[a]}th {info.dims[a]}" for a in axes if step[a] > 1)
        notes.append(f"sampled coarser ({every}) to read at most {limits.max_chunks} chunks")
    chunk_bytes = math.prod(info.chunks) * _ITEMSIZE[info.dtype]
    allowed = limits.max_bytes // max(chunk_bytes, 1)
    if allowed < 1:
        return Plan(
            axes,
            {},
            sel.index,
            0,
            0,
            tuple(notes),
            refused=f"one chunk of /{info.path} decodes to {_mib(chunk_bytes)}, more than the "
            f"{_mib(limits.max_bytes)} a quick-look may read",
        )
    if math.prod(touched.values()) > allowed:
        # keep the leading chunks of the first plotted axis (rows), then of the second
        for i, a in enumerate(axes):
            others = math.prod(touched[b] for b in axes[i + 1 :])
            keep = max(1, allowed // max(others, 1))
            if touched[a] > keep:
                last_chunk = int(_touched(samples(a), info.chunks[a])[keep - 1])
                stop[a] = min(info.shape[a], (last_chunk + 1) * info.chunks[a])
                notes.append(
                    f"cut by the size bound ({_mib(limits.max_bytes)} per quick-look): "
                    f"showing {info.dims[a]} 0..{stop[a] - 1} of {info.shape[a]}"
                )
            allowed = max(1, allowed // max(len(_touched(samples(a), info.chunks[a])), 1))
        touched = count()
    n = math.prod(touched.values())
    return Plan(axes, {a: samples(a) for a in axes}, sel.index, n, n * chunk_bytes, tuple(notes))


def _chunk_coords(info: ArrayInfo, p: Plan) -> np.ndarray:
    per_axis = []
    for a in range(info.ndim):
        if a in p.samples:
            per_axis.append(_touched(p.samples[a], info.chunks[a]).tolist())
        else:
            per_axis.append([p.index[a] // max(info.chunks[a], 1)])
    coords = list(itertools.product(*per_axis))
    return np.asarray(coords, dtype=np.int64).reshape(len(coords), info.ndim)


@dataclass(slots=True)
class QuickLook:
    values: np.ndarray  # float64, (rows, columns) or (n,); NaN where masked or not read
    samples: dict[int, np.ndarray]
    notes: list[str] = field(default_factory=list)


async def check_authorised(at: At, node: Node, info: ArrayInfo, p: Plan) -> None:
    """Refuse before reading when a chunk the plan needs is an unauthorised virtual one."""
    reader = at.session.repository.sources
    refs = await at.session.chunk_refs(node.path, _chunk_coords(info, p))
    denied = sorted(
        {
            container_of(r.url)
            for r in refs
            if r is not None and r.kind == VIRTUAL and not authorised(reader, r.url)
        }
    )
    if denied:
        raise UnauthorizedSourceError(
            f"/{node.path}: chunks of this slice are virtual chunks under "
            f"{', '.join(denied)}, which this server is not authorised to read; restart it "
            f"with {' '.join('--authorize ' + d for d in denied)}"
        )


def _cf(raw: np.ndarray, attrs: dict[str, object]) -> np.ndarray:
    if raw.dtype.kind == "c":
        raw = np.abs(raw)
    values = raw.astype(np.float64)
    for key in ("_FillValue", "missing_value"):
        fill = attrs.get(key)
        if isinstance(fill, int | float) and not isinstance(fill, bool):
            values[raw == fill] = np.nan
    scale, offset = attrs.get("scale_factor"), attrs.get("add_offset")
    if isinstance(scale, int | float):
        values *= scale
    if isinstance(offset, int | float):
        values += offset
    return values


async def read(at: At, node: Node, info: ArrayInfo, p: Plan, limits: Limits) -> QuickLook:
    """The plotted values of plan ``p``, read within ``limits.max_seconds``."""
    import zarr.api.asynchronous as za

    await check_authorised(at, node, info, p)
    deadline = time.monotonic() + limits.max_seconds
    arr = await za.open_array(
        store=ZarrchiveStore(at.session, read_only=True), path=node.path, mode="r", zarr_format=3
    )
    first = p.axes[0]
    rows = p.samples[first]
    out = np.full(tuple(len(p.samples[a]) for a in p.axes), np.nan)
    notes = list(p.notes)
    # bands of whole chunk rows along the first plotted axis
    row_chunks = rows // max(info.chunks[first], 1)
    starts = np.flatnonzero(np.diff(row_chunks, prepend=-1))
    per_band = max(1, math.ceil(len(starts) / _BANDS))
    edges = [*starts[::per_band].tolist(), len(rows)]
    attrs = dict(info.attributes)
    for lo, hi in itertools.pairwise(edges):
        remaining = deadline - time.monotonic()
        sel: list[int | slice] = list(p.index)
        for a in p.axes:
            s = p.samples[a]
            step = int(s[1] - s[0]) if len(s) > 1 else 1
            sel[a] = slice(int(s[0]), int(s[-1]) + 1, step)
        step0 = int(rows[1] - rows[0]) if len(rows) > 1 else 1
        sel[first] = slice(int(rows[lo]), int(rows[hi - 1]) + 1, step0)
        try:
            if remaining <= 0:
                raise TimeoutError
            raw = await asyncio.wait_for(arr.getitem(tuple(sel)), remaining)
        except TimeoutError:
            notes.append(
                f"cut by the time bound ({limits.max_seconds:g} s): read {lo} of the "
                f"{len(rows)} sampled {info.dims[first]} positions; the rest is blank"
            )
            break
        out[lo:hi] = _cf(np.asarray(raw), attrs)
    return QuickLook(out, dict(p.samples), notes)
