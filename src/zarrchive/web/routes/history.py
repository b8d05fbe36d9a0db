"""The history page: the commit graph of every branch and tag, newest first, paged."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...errors import InvalidInputError
from .._history import ROW_HEIGHT, history
from . import Links, render, view_of

_MAX_PER_PAGE = 200


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInputError(f"{name}={raw!r} must be an integer") from None
    if not low <= value <= high:
        raise InvalidInputError(f"{name}={value} must be between {low} and {high}")
    return value


async def history_page(request: Request) -> Response:
    page = _int(request, "page", 0, 0, 1_000_000)
    per_page = _int(request, "per_page", 50, 1, _MAX_PER_PAGE)
    link = Links(request.scope.get("root_path", ""))
    hist = await history(view_of(request), page, per_page, href=link.commit)
    return render(
        request, "history.html", hist=hist, row_height=ROW_HEIGHT, title="History", link=link
    )


routes = [Route("/history", history_page, name="history")]
