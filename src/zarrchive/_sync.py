"""The one bridge from synchronous code to zarrchive's async core.

zarr-python runs its store calls on a private event loop in a background thread. zarrchive's
storage backends (s3fs sessions in particular) are bound to the loop they were first used on,
so the synchronous :class:`~zarrchive.Repo` runs its coroutines on that same loop: every
coroutine in the package, whether started by zarr or by ``Repo``, sees one loop. Nothing else in
the package may call ``asyncio.run`` or start loops of its own.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from zarr.core.sync import sync as _zarr_sync

T = TypeVar("T")

__all__ = ["sync"]


def sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on zarr's I/O loop and return its result.

    Called from inside that loop, zarr raises ``SyncError``: a coroutine there must ``await``
    (use :class:`~zarrchive.AsyncRepo`) instead of blocking the loop it runs on.
    """
    return _zarr_sync(coro)
