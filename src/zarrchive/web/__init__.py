"""``zarrchive serve``: a read-only local web view of a repository.

Server-rendered pages (Starlette, Jinja2) over the public :class:`~zarrchive.AsyncRepo`
surface and the modules below it: an overview of refs, sessions, sizes and containers; the
commit graph of every branch; commits and diffs; the hierarchy at any ref with a JMESPath
search box; arrays with their metadata, a chunk map, their sources (and a verify button)
and a quick-look plot rendered by matplotlib. No route accepts a write method and the app
only ever opens read-only sessions, so serving a repository cannot change it.

This package sits at the top (layer 8, beside ``cli``): it may import anything of zarrchive
below ``repo``, never ``cli``; nothing else in zarrchive imports it except ``repo.serve`` and
the ``serve`` command, lazily. Its third-party dependencies are the optional extra ``web``;
:func:`require` raises ``ImportError`` naming it when one is missing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..repo import AsyncRepo, Repo
    from ._view import Limits

__all__ = ["create_app", "require", "serve", "serve_async"]

_MODULES = ("starlette", "jinja2", "uvicorn", "matplotlib")


def require() -> None:
    """Raise ``ImportError`` naming the ``web`` extra when one of its packages is missing."""
    missing = []
    for name in _MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(
            f"zarrchive serve needs the optional 'web' dependencies (missing: "
            f"{', '.join(missing)}); install them with: python3 -m pip install 'zarrchive[web]'"
        )


def create_app(
    repo: AsyncRepo | Repo,
    *,
    authorize: list[str] | None = None,
    limits: Limits | None = None,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The ASGI app serving ``repo`` read-only; see :func:`zarrchive.web.app.create_app`."""
    require()
    from .app import create_app as create

    return create(repo, authorize=authorize, limits=limits, allowed_hosts=allowed_hosts)


def serve(repo: AsyncRepo | Repo, **options: Any) -> None:
    """Serve ``repo`` until interrupted; see :func:`zarrchive.web.app.serve`."""
    require()
    from .app import serve as run

    run(repo, **options)


async def serve_async(repo: AsyncRepo | Repo, **options: Any) -> None:
    """Serve ``repo`` on the running event loop; see :func:`zarrchive.web.app.serve_async`."""
    require()
    from .app import serve_async as run

    await run(repo, **options)
