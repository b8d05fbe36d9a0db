"""The ASGI app and the server: :func:`create_app`, :func:`serve_async`, :func:`serve`.

The app is read-only by construction: every route is GET (HEAD) only, any other method gets
405, and the pages read through :class:`~zarrchive.web._view.RepoView`, which opens only
read-only sessions. zarrchive errors become pages with the matching status: unknown refs and
paths 404, bad query values 400, unauthorised sources 403, changed sources 409, what cannot
be drawn 422.

:func:`serve` runs uvicorn's server coroutine on zarrchive's one event loop (the ``_sync``
bridge), so the server and the repository share it as everywhere else in zarrchive, and the
calling thread only waits (Ctrl-C stops the server). It listens on 127.0.0.1 unless told
otherwise and prints where on start.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import webbrowser
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from ..errors import (
    FormatError,
    InvalidInputError,
    NotFoundError,
    SourceModifiedError,
    StorageError,
    UnauthorizedSourceError,
    UnsupportedFeatureError,
)
from ._view import Limits, RepoView
from .routes import arrays, commits, history, overview, render, templates, tree

if TYPE_CHECKING:
    from ..repo import AsyncRepo, Repo

__all__ = ["create_app", "serve", "serve_async"]

_HERE = Path(__file__).parent
_STATUS = {
    NotFoundError: (404, "Not found"),
    InvalidInputError: (400, "Bad request"),
    UnauthorizedSourceError: (403, "Not authorised"),
    SourceModifiedError: (409, "Source changed"),
    UnsupportedFeatureError: (422, "Cannot show this"),
    StorageError: (502, "Storage error"),
    FormatError: (500, "Damaged repository object"),
}
#: names a browser uses for a server on the loopback interface
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _error_page(request: Request, status: int, heading: str, message: str) -> Response:
    return render(
        request,
        "error.html",
        status_code=status,
        status=status,
        heading=heading,
        message=message,
        title=heading,
    )


async def _zarrchive_error(request: Request, exc: Exception) -> Response:
    for cls, (status, heading) in _STATUS.items():
        if isinstance(exc, cls):
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return _error_page(request, status, heading, str(message))
    raise exc


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        message = (
            f"{request.method} is not allowed: this server is a read-only view of the "
            "repository, every page is GET only"
        )
    elif exc.status_code == 404:
        message = f"no page at {request.url.path}"
    else:
        message = str(exc.detail)
    response = _error_page(request, exc.status_code, str(exc.detail), message)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


def create_app(
    repo: AsyncRepo | Repo,
    *,
    authorize: Iterable[str] | None = None,
    limits: Limits | None = None,
    allowed_hosts: Iterable[str] | None = None,
) -> Starlette:
    """A read-only ASGI app over ``repo``.

    ``authorize``: container prefixes whose virtual chunks the app may read, beyond those
    ``repo`` is authorised for. ``limits``: bounds of one image request. ``allowed_hosts``:
    the only ``Host`` headers answered (others get 400), so that a web page elsewhere cannot
    reach a server on 127.0.0.1 through a DNS name it controls; default: any. The app opens
    its own repository over the same storage on first use, on the loop that serves it.
    """
    view = RepoView(repo, authorize=authorize, limits=limits)
    handlers: dict[Any, Any] = {cls: _zarrchive_error for cls in _STATUS}
    handlers[HTTPException] = _http_error
    app = Starlette(
        routes=[
            *overview.routes,
            *history.routes,
            *commits.routes,
            *tree.routes,
            *arrays.routes,
            Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
        ],
        exception_handlers=handlers,
        middleware=(
            [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))]
            if allowed_hosts is not None
            else []
        ),
    )
    app.state.view = view
    app.state.templates = templates(str(_HERE / "templates"))
    return app


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidInputError(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port"
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve_async(
    repo: AsyncRepo | Repo,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_browser: bool = False,
    authorize: Iterable[str] | None = None,
    limits: Limits | None = None,
    started: threading.Event | None = None,
    log_level: str = "warning",
) -> None:
    """Serve ``repo`` read-only on the running loop until the task is cancelled."""
    import uvicorn

    loopback = host in _LOOPBACK
    app = create_app(
        repo, authorize=authorize, limits=limits, allowed_hosts=_LOOPBACK if loopback else None
    )
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/"
    view: RepoView = app.state.view
    scope = (
        "this machine only (pass --host 0.0.0.0 to listen on every interface)"
        if loopback
        else f"every client that can reach {host}: the pages show the whole repository"
    )
    print(
        f"zarrchive serve: read-only view of {view.location} at {url}\n"
        f"listening on {shown}:{bound}, reachable from {scope}; Ctrl-C stops it",
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(app, log_level=log_level, lifespan="off", access_log=False)
    )
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if started is not None:
            started.set()
        if open_browser and server.started:
            await asyncio.to_thread(webbrowser.open, url)
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        await task
        raise
    finally:
        sock.close()


def serve(
    repo: AsyncRepo | Repo,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_browser: bool = False,
    authorize: Iterable[str] | None = None,
    limits: Limits | None = None,
) -> None:
    """Serve ``repo`` read-only until Ctrl-C (blocking); see :func:`serve_async`."""
    from .._sync import sync

    stop = threading.Event()
    state: dict[str, Any] = {}

    async def run() -> None:
        state["task"] = asyncio.current_task()
        state["loop"] = asyncio.get_running_loop()
        try:
            await serve_async(
                repo,
                host=host,
                port=port,
                open_browser=open_browser,
                authorize=authorize,
                limits=limits,
            )
        finally:
            stop.set()

    try:
        sync(run())
    except KeyboardInterrupt:
        loop, task = state.get("loop"), state.get("task")
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
            stop.wait(10)
        print("zarrchive serve: stopped", file=sys.stderr)
