"""The pages, one module per page, and what they share: links, rendering, the view.

Every route is GET-only (Starlette answers HEAD too, and 405 to any other method). Every URL
that shows repository content names its ref (branch, tag or commit id), so a link to an
array at a tag keeps meaning the same data. Route modules import from ``.._view`` and the
other read models, never from ``..app``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from .._view import RepoView

__all__ = ["Links", "render", "view_of"]


class Links:
    """URLs of the pages (relative to the app's root path)."""

    def __init__(self, root: str = "") -> None:
        self.root = root.rstrip("/")

    @staticmethod
    def _q(query: dict[str, Any] | None) -> str:
        items = {k: v for k, v in (query or {}).items() if v is not None and v != ""}
        return "?" + urlencode(items) if items else ""

    def overview(self) -> str:
        return f"{self.root}/"

    def history(self, page: int = 0) -> str:
        return f"{self.root}/history" + self._q({"page": page or None})

    def commit(self, ref: str) -> str:
        return f"{self.root}/commit/{quote(ref, safe='')}"

    def diff(self, a: str | None = None, b: str | None = None) -> str:
        return f"{self.root}/diff" + self._q({"from": a, "to": b})

    def tree(self, ref: str, path: str = "", query: dict[str, Any] | None = None) -> str:
        tail = f"/{quote(path)}" if path else ""
        return f"{self.root}/ref/{quote(ref, safe='')}/tree{tail}" + self._q(query)

    def node(self, ref: str, path: str, kind: str) -> str:
        return self.array(ref, path) if kind == "array" else self.tree(ref, path)

    def array(self, ref: str, path: str, query: dict[str, Any] | None = None) -> str:
        return f"{self.root}/ref/{quote(ref, safe='')}/array/{quote(path)}" + self._q(query)

    def quicklook(self, ref: str, path: str, query: dict[str, Any] | None = None) -> str:
        return f"{self.root}/ref/{quote(ref, safe='')}/quicklook/{quote(path)}" + self._q(query)

    def chunkmap(self, ref: str, path: str, query: dict[str, Any] | None = None) -> str:
        return f"{self.root}/ref/{quote(ref, safe='')}/chunkmap/{quote(path)}" + self._q(query)

    def static(self, name: str) -> str:
        return f"{self.root}/static/{name}"


def view_of(request: Request) -> RepoView:
    return request.app.state.view  # type: ignore[no-any-return]


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(n: int | None) -> str:
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, indent=None)


def templates(directory: str) -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    t = Jinja2Templates(env=env)
    t.env.filters["when"] = _when
    t.env.filters["size"] = _size
    t.env.filters["json"] = _json
    t.env.filters["short"] = lambda commit: str(commit)[:10]
    return t


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    t: Jinja2Templates = request.app.state.templates
    context.setdefault("link", Links(request.scope.get("root_path", "")))
    context.setdefault("location", view_of(request).location)
    return t.TemplateResponse(request, name, context, status_code=status_code)
