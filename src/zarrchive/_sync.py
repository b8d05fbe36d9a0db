"""The one bridge from synchronous code to zarrchive's async core.

zarr-python runs its store calls on a private event loop in a background thread. zarrchive's
storage backends (s3fs sessions in particular) are bound to the loop they were first used on,
so the synchronous :class:`~zarrchive.Repo` runs its coroutines on that same loop: every
coroutine in the package, whether started by zarr or by ``Repo``, sees one loop. Nothing else in
the package may call ``asyncio.run`` or start loops of its own.

Blocking work (parsing a file with h5py, a ``stat``) goes through :func:`offload`, which moves it
to a thread so that the loop stays free. A process whose loop has nothing else to do (a catalog's
scanning worker) may say so with :func:`blocking_allowed`; then ``offload`` runs the work inline,
sparing the switches to a thread and back (about 0.5 ms of CPU per call, measured scanning
small NetCDF4 files: a tenth of each scan).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from ._zarr import sync as _zarr_sync

T = TypeVar("T")

__all__ = ["blocking_allowed", "offload", "sync"]

_INLINE: contextvars.ContextVar[bool] = contextvars.ContextVar("zarrchive_inline", default=False)


def sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on zarr's I/O loop and return its result.

    Called from inside that loop, zarr raises ``SyncError``: a coroutine there must ``await``
    (use :class:`~zarrchive.AsyncRepo`) instead of blocking the loop it runs on.
    """
    return _zarr_sync(coro)


async def offload(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a thread (``asyncio.to_thread``), or inline within
    :func:`blocking_allowed`."""
    if _INLINE.get():
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


@contextlib.contextmanager
def blocking_allowed(allowed: bool = True) -> Iterator[None]:
    """Within this block, coroutines that this thread runs through :func:`sync` do their
    :func:`offload` work inline, blocking the loop.

    Only for a process whose loop serves nobody else, and only for work that does not itself
    wait for the loop (a synchronous fsspec file over an async filesystem on this loop
    would: remote sources are not parsed inline). The flag travels to the loop with the
    coroutine's context (``run_coroutine_threadsafe`` copies the caller's context).
    """
    token = _INLINE.set(allowed)
    try:
        yield
    finally:
        _INLINE.reset(token)
