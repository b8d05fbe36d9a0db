"""The array page and its images: metadata, slice selectors, the chunk map (PNG), the
sources it references with a verify button (``?verify=1``) and the quick-look plot (PNG).

The page decides, from metadata and chunk references alone, whether a quick-look can be
drawn (numeric data, every chunk it needs authorised, within the size bound) and says why
not otherwise; the images are rendered in worker threads so the event loop stays free.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...errors import UnauthorizedSourceError, UnsupportedFeatureError
from .._arrays import KINDS, array_info, chunk_map, chunk_summary, parse_selection, verify_array
from .._plots import KIND_COLOURS, chunk_map_png, line_png, quicklook_png
from .._quicklook import PLOTTABLE, check_authorised, plan, read
from .._view import ensure_array
from . import render, view_of

_MAX_SOURCES = 200


def _params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items()}


async def _target(request: Request) -> tuple[Any, Any, Any, Any]:
    view = view_of(request)
    at = await view.at(request.path_params["ref"])
    node = ensure_array(at, request.path_params["path"].strip("/"))
    info = array_info(node)
    return view, at, node, info


async def array_page(request: Request) -> Response:
    view, at, node, info = await _target(request)
    params = _params(request)
    sel = parse_selection(info, params)
    summary = await chunk_summary(view, at, node)
    cmap = await chunk_map(view, at, node, sel)
    quicklook: dict[str, Any] = {"ok": False, "why": None, "notes": ()}
    if info.ndim == 0:
        quicklook["why"] = "a 0-dimensional array has nothing to plot"
    elif info.dtype not in PLOTTABLE:
        quicklook["why"] = f"no quick-look for {info.dtype} values (numbers only)"
    else:
        p = plan(info, sel, view.limits)
        if p.refused:
            quicklook["why"] = p.refused
        else:
            try:
                await check_authorised(at, node, info, p)
                quicklook.update(ok=True, notes=p.notes, chunks=p.chunks)
            except UnauthorizedSourceError as exc:
                quicklook.update(why=str(exc), unauthorised=True)
    report = await verify_array(at, node) if params.get("verify") else None
    query = sel.query()
    return render(
        request,
        "array.html",
        at=at,
        info=info,
        sel=sel,
        query=query,
        summary=summary,
        sources=summary.sources[:_MAX_SOURCES],
        more_sources=max(len(summary.sources) - _MAX_SOURCES, 0),
        cmap=cmap,
        kinds=list(zip(KINDS, KIND_COLOURS, strict=True)),
        quicklook=quicklook,
        report=report,
        title=f"/{info.path} at {at.ref}",
    )


def _png(data: bytes, notes: list[str] | tuple[str, ...] = ()) -> Response:
    headers = {"Cache-Control": "no-store"}
    if notes:
        headers["X-Zarrchive-Cut"] = "; ".join(notes).encode("ascii", "replace").decode()
    return Response(data, media_type="image/png", headers=headers)


async def quicklook_image(request: Request) -> Response:
    view, at, node, info = await _target(request)
    sel = parse_selection(info, _params(request))
    if info.ndim == 0:
        raise UnsupportedFeatureError(f"/{info.path} is 0-dimensional: nothing to plot")
    p = plan(info, sel, view.limits)
    if p.refused:
        raise UnsupportedFeatureError(p.refused)
    ql = await read(at, node, info, p, view.limits)
    where = ", ".join(f"{info.dims[a]}={sel.index[a]}" for a in sel.fixed())
    title = f"/{info.path} at {at.ref}" + (f"  ({where})" if where else "")
    if len(p.axes) == 1:
        (axis,) = p.axes
        png = await asyncio.to_thread(
            line_png,
            ql.values,
            ql.samples[axis],
            title=title,
            x_label=info.dims[axis],
            value_label=info.label,
            notes=ql.notes,
        )
    else:
        assert sel.y is not None and sel.x is not None
        values = ql.values if sel.y < sel.x else ql.values.T
        png = await asyncio.to_thread(
            quicklook_png,
            values,
            ql.samples[sel.y],
            ql.samples[sel.x],
            title=title,
            y_label=info.dims[sel.y],
            x_label=info.dims[sel.x],
            value_label=info.label,
            notes=ql.notes,
        )
    return _png(png, ql.notes)


async def chunkmap_image(request: Request) -> Response:
    view, at, node, info = await _target(request)
    sel = parse_selection(info, _params(request))
    cmap = await chunk_map(view, at, node, sel)
    png = await asyncio.to_thread(
        chunk_map_png, cmap.grid, cmap.step, y_label=cmap.y_label, x_label=cmap.x_label
    )
    return _png(png)


routes = [
    Route("/ref/{ref}/array/{path:path}", array_page, name="array"),
    Route("/ref/{ref}/quicklook/{path:path}", quicklook_image, name="quicklook"),
    Route("/ref/{ref}/chunkmap/{path:path}", chunkmap_image, name="chunkmap"),
]
