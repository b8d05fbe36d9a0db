"""The overview page: location, branches and tags with their tips, active sessions, object
sizes by kind and the virtual-chunk containers (public options only, never credentials)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import render, view_of


async def overview(request: Request) -> Response:
    facts = await view_of(request).overview()
    return render(request, "overview.html", facts=facts, title="Overview")


routes = [Route("/", overview, name="overview")]
