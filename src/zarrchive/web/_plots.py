"""PNG images drawn with matplotlib's Agg backend: quick-looks and chunk maps.

Pure functions from values to PNG bytes, thread-safe (each builds its own ``Figure`` and
canvas; pyplot's global state is never touched), so pages render them in worker threads.
The colour scale of a quick-look spans the 2nd to 98th percentile of its finite values.
Must not import starlette or anything that reads a repository.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import MaxNLocator

__all__ = ["KIND_COLOURS", "chunk_map_png", "line_png", "quicklook_png"]

#: colours of the chunk-map kinds (missing, native, virtual, inline, not authorised)
KIND_COLOURS = ("#e4e6ea", "#3b6fb6", "#2e9d62", "#e09b2d", "#c8423b")
_DPI = 100


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def _notes(fig: Figure, notes: Sequence[str], line: float) -> None:
    """Write ``notes`` under the plot, making room (``line``: figure height per note)."""
    if not notes:
        return
    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):
        engine.set(rect=(0, line * len(notes), 1, 1 - line * len(notes)))
    fig.text(0.01, 0.01, "\n".join(notes), fontsize=8, color="#a33", va="bottom")


def _size(rows: int, cols: int, width: float = 7.6) -> tuple[float, float]:
    aspect = min(max(rows / max(cols, 1), 0.35), 1.4)
    return width, 1.3 + (width - 1.8) * aspect


def quicklook_png(
    values: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    title: str,
    y_label: str,
    x_label: str,
    value_label: str,
    notes: Sequence[str] = (),
) -> bytes:
    """A 2-D slice as an image; ``rows`` and ``cols`` are the array indices sampled."""
    finite = values[np.isfinite(values)]
    vmin = vmax = None
    if finite.size:
        vmin, vmax = (float(v) for v in np.percentile(finite, [2, 98]))
        if vmin == vmax:
            vmin, vmax = vmin - 0.5, vmax + 0.5
    fig = Figure(figsize=_size(len(rows), len(cols)), layout="constrained")
    ax = fig.add_subplot()
    dy = (rows[1] - rows[0]) / 2 if len(rows) > 1 else 0.5
    dx = (cols[1] - cols[0]) / 2 if len(cols) > 1 else 0.5
    image = ax.imshow(
        np.ma.masked_invalid(values),
        cmap=colormaps["viridis"].with_extremes(bad="#d9d9d9"),
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
        aspect="auto",
        extent=(cols[0] - dx, cols[-1] + dx, rows[-1] + dy, rows[0] - dy),
    )
    fig.colorbar(image, ax=ax, label=value_label, shrink=0.9)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(integer=True))
    if not finite.size:
        ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center")
    _notes(fig, notes, 0.06)
    return _png(fig)


def line_png(
    values: np.ndarray,
    index: np.ndarray,
    *,
    title: str,
    x_label: str,
    value_label: str,
    notes: Sequence[str] = (),
) -> bytes:
    """A 1-D array as a line (markers when there are few points)."""
    fig = Figure(figsize=(7.6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(index, values, color="#2f6fbf", lw=1.2, marker="o" if len(index) <= 60 else None)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(x_label)
    ax.set_ylabel(value_label)
    ax.grid(True, color="#e5e5e5")
    if not np.isfinite(values).any():
        ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center")
    _notes(fig, notes, 0.08)
    return _png(fig)


def chunk_map_png(
    grid: np.ndarray,
    step: tuple[int, int],
    *,
    y_label: str,
    x_label: str,
) -> bytes:
    """The chunk grid of a slice, one cell per chunk, coloured by kind code."""
    rows, cols = grid.shape
    cell = min(48.0, max(2.0, 440.0 / max(rows, cols)))
    width = max(cols * cell / _DPI + 1.2, 2.6)
    height = max(rows * cell / _DPI + 0.9, 1.6)
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    cmap = ListedColormap(list(KIND_COLOURS))
    norm = BoundaryNorm(np.arange(-0.5, len(KIND_COLOURS) + 0.5), cmap.N)
    ax.imshow(
        grid,
        cmap=cmap,
        norm=norm,
        interpolation="nearest",
        aspect="equal",
        extent=(-0.5 * step[1], (cols - 0.5) * step[1], (rows - 0.5) * step[0], -0.5 * step[0]),
    )
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=8, integer=True, min_n_ticks=1))
    if cell >= 6:
        ax.set_xticks(np.arange(-0.5, cols) * step[1], minor=True)
        ax.set_yticks(np.arange(-0.5, rows) * step[0], minor=True)
        ax.grid(which="minor", color="white", linewidth=1 if cell < 14 else 2)
        ax.tick_params(which="minor", length=0)
    ax.set_xlabel(f"{x_label} chunk" if x_label else "")
    ax.set_ylabel(f"{y_label} chunk" if y_label else "")
    if not y_label:
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _png(fig)
