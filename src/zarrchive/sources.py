"""Virtual-chunk sources: containers, authorisation, checksums and byte-range reads.

A *container* is a URL prefix holding source objects (``s3://bucket/``, ``https://host/``,
``file:///data/dir/``). Reading a virtual chunk is allowed only when its URL lies under a
container the reader authorised (``Repo.open(..., authorize_virtual=[...])``) or that the
same process imported; everything else raises :class:`UnauthorizedSourceError`, so opening
somebody else's repository cannot make it read your local files or private buckets.

Each source object's *checksum* (its size plus mtime, ETag or Last-Modified, taken once per
object at import) travels with the references. Reads verify it: local files with an
``fstat`` of the open descriptor on every read (about a microsecond), remote objects with one
``info`` call per object per reader, cached for ``verify_ttl`` seconds. A changed, missing or
truncated source raises :class:`SourceModifiedError`; a virtual chunk never turns silently
into other bytes or the fill value.

Local files are read with ``os.pread`` in worker threads; every other URL through an fsspec
async filesystem (one per protocol and option set), with concurrency bounded per reader.
Remote ranges requested in the same event-loop turn (zarr asks for all chunks of a read at
once) are grouped per object and coalesced when they lie within ``coalesce_gap`` bytes of
each other, so a whole-variable read of one file costs a few requests instead of one per
chunk.
Credentials never enter repository objects: :func:`public_options` keeps only the options
that describe where a container is (endpoint, region, anonymous access). Those recorded
options are applied under the reader's own: authorising a container means trusting the
repository's description of it, so a reader who does not trust a recorded ``endpoint_url``
passes its own in the options it authorises the container with. URLs with '.' or '..'
segments are refused outright, so no reference can climb out of its container.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.asyn import AsyncFileSystem

from ._sync import offload
from .errors import InvalidInputError, SourceModifiedError, StorageError, UnauthorizedSourceError

__all__ = [
    "SourceReader",
    "plan_requests",
    "SourceStat",
    "canonical_url",
    "container_of",
    "local_path",
    "normalize_url",
    "public_options",
    "read_local_ranges",
]

_PUBLIC_KEYS = {"endpoint_url", "region", "region_name", "anon", "requester_pays", "use_ssl"}


def local_path(url: str) -> str | None:
    """The filesystem path of a local source URL, or None for remote URLs."""
    if url.startswith("file://"):
        return url[len("file://") :]
    if "://" not in url:
        return url
    return None


def normalize_url(url: str, base_dir: str | None = None) -> str:
    """Absolute URL: local paths become ``file:///abs/path``; remote URLs are unchanged."""
    if not isinstance(url, str) or not url:
        raise InvalidInputError(f"a source URL must be a non-empty string, got {url!r}")
    path = local_path(url)
    if path is None:
        return url
    if not os.path.isabs(path):
        path = os.path.join(base_dir or os.getcwd(), path)
    return "file://" + os.path.normpath(path)


def canonical_url(url: str) -> str:
    """``url`` with '.' and '..' segments and repeated slashes resolved (for checks only)."""
    path = local_path(url)
    if path is not None:
        canon = posixpath.normpath(path) if path else path
        if path.endswith("/") and not canon.endswith("/"):
            canon += "/"
        return ("file://" if url.startswith("file://") else "") + canon
    parts = urlsplit(url)
    if not parts.path:
        return url
    canon = posixpath.normpath(parts.path)
    if canon.startswith("//"):
        canon = "/" + canon.lstrip("/")
    if parts.path.endswith("/") and not canon.endswith("/"):
        canon += "/"
    return parts._replace(path=canon).geturl()


def container_of(url: str) -> str:
    """The natural container prefix of ``url``: its bucket, host or local directory."""
    path = local_path(url)
    if path is not None:
        return "file://" + os.path.dirname(os.path.abspath(path)).rstrip("/") + "/"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def public_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The credential-free options of a container (what may be written to a repository)."""
    out: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if key in _PUBLIC_KEYS:
            out[key] = value
        elif key == "client_kwargs" and isinstance(value, Mapping):
            inner = {k: v for k, v in value.items() if k in _PUBLIC_KEYS}
            if inner:
                out[key] = inner
    return out


@dataclass(frozen=True, slots=True)
class SourceStat:
    """Identity of a source object at one moment: its size and version marker."""

    size: int
    version: str  # "mtime_ns=...", "etag=..." or "modified=..." ("" when unknown)

    @property
    def checksum(self) -> str:
        return f"size={self.size};{self.version}" if self.version else f"size={self.size}"

    @staticmethod
    def parse_size(checksum: str) -> int | None:
        for part in checksum.split(";"):
            if part.startswith("size="):
                return int(part[5:])
        return None


def _local_stat(st: os.stat_result) -> SourceStat:
    return SourceStat(st.st_size, f"mtime_ns={st.st_mtime_ns}")


def _remote_stat(info: Mapping[str, Any]) -> SourceStat:
    size = int(info.get("size") or info.get("Size") or 0)
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return SourceStat(size, f"etag={str(etag).strip(chr(34))}")
    modified = info.get("LastModified") or info.get("last_modified") or info.get("mtime")
    return SourceStat(size, f"modified={modified}" if modified else "")


def _modified(url: str, checksum: str, now: str) -> SourceModifiedError:
    return SourceModifiedError(
        f"virtual chunk source {url} changed since it was imported (recorded {checksum}, "
        f"now {now}); re-import it to refresh the references"
    )


def _gone(url: str) -> SourceModifiedError:
    return SourceModifiedError(
        f"virtual chunk source {url!r} no longer exists; restore it, or re-import the "
        "dataset from where the file lives now"
    )


def _short(url: str, offset: int, length: int, got: int) -> SourceModifiedError:
    return SourceModifiedError(
        f"virtual chunk source {url!r} is shorter than recorded: wanted bytes "
        f"{offset}-{offset + length}, got {got}; the file changed since import"
    )


def read_local_ranges(
    path: str,
    ranges: Sequence[tuple[int, int]],
    checksum: str | None,
    *,
    gap: int = 64 * 1024,
    max_span: int = 8 * 1024 * 1024,
) -> list[bytes]:
    """Byte ranges ``(offset, length)`` of one local file, checked against ``checksum``.

    Blocking (run it in a worker thread). The file is opened once and its checksum verified
    with one ``fstat`` of the open descriptor, so a file replaced or rewritten since import
    is refused. Ranges closer than ``gap`` bytes are read with one ``pread``.
    """
    url = "file://" + path
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise _gone(url) from exc
    except OSError as exc:
        raise StorageError(f"reading virtual chunk source {url!r} failed: {exc}") from exc
    try:
        if checksum is not None:
            now = _local_stat(os.fstat(fd)).checksum
            if now != checksum:
                raise _modified(url, checksum, now)
        out: list[bytes] = [b""] * len(ranges)
        plan = plan_requests([r[0] for r in ranges], [r[1] for r in ranges], gap, max_span)
        for start, end, members in plan:
            data = os.pread(fd, end - start, start)
            for i in members:
                offset, length = ranges[i]
                piece = data[offset - start : offset - start + length]
                if len(piece) != length:
                    raise _short(url, offset, length, len(piece))
                out[i] = piece if len(members) > 1 else data
        return out
    except OSError as exc:
        raise StorageError(f"reading virtual chunk source {url!r} failed: {exc}") from exc
    finally:
        os.close(fd)


def plan_requests(
    offsets: list[int], lengths: list[int], gap: int, max_size: int
) -> list[tuple[int, int, list[int]]]:
    """Group byte ranges of one object into requests ``(start, end, member indices)``.

    Ranges are taken in offset order; a range joins the current request when it starts at
    most ``gap`` bytes after the request's end and the request stays within ``max_size``.
    Overlapping and duplicate ranges share a request.
    """
    order = sorted(range(len(offsets)), key=lambda i: offsets[i])
    plan: list[tuple[int, int, list[int]]] = []
    for i in order:
        start, end = offsets[i], offsets[i] + lengths[i]
        if plan:
            p_start, p_end, members = plan[-1]
            if start - p_end <= gap and max(end, p_end) - p_start <= max_size:
                plan[-1] = (p_start, max(end, p_end), [*members, i])
                continue
        plan.append((start, end, [i]))
    return plan


class SourceReader:
    """Reads byte ranges of authorised source objects.

    ``authorized`` maps container prefixes to the reader's own options for them (credentials
    included: they stay in this process). ``container_options`` holds the public options
    recorded in the repository, merged under the reader's.
    """

    def __init__(
        self,
        authorized: Mapping[str, Mapping[str, Any] | None] | Iterable[str] | None = None,
        *,
        max_concurrency: int = 64,
        verify_ttl: float = 60.0,
        coalesce_gap: int = 256 * 1024,
        max_request_size: int = 16 * 1024 * 1024,
    ) -> None:
        self.authorized: dict[str, dict[str, Any]] = {}
        self.authorize(authorized or {})
        self.container_options: dict[str, dict[str, Any]] = {}
        self.max_concurrency = max_concurrency
        self.verify_ttl = verify_ttl
        self._filesystems: dict[tuple[str, str], AsyncFileSystem] = {}
        self._verified: dict[tuple[str, str], float] = {}
        self._verifying: dict[tuple[str, str], asyncio.Future[None]] = {}
        #: remote objects whose version was checked (one ``info`` request each)
        self.verifications_made = 0
        self._semaphore: asyncio.Semaphore | None = None
        #: ranges of one remote object closer than this many bytes share one request
        self.coalesce_gap = coalesce_gap
        #: coalesced requests stop growing at this size
        self.max_request_size = max_request_size
        #: remote requests sent (after coalescing), for diagnostics and tests
        self.requests_made = 0
        self._pending: dict[str, list[tuple[int, int, asyncio.Future[bytes]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __getstate__(self) -> dict[str, Any]:
        return {
            "authorized": self.authorized,
            "container_options": self.container_options,
            "max_concurrency": self.max_concurrency,
            "verify_ttl": self.verify_ttl,
            "coalesce_gap": self.coalesce_gap,
            "max_request_size": self.max_request_size,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["authorized"],
            max_concurrency=state["max_concurrency"],
            verify_ttl=state["verify_ttl"],
            coalesce_gap=state["coalesce_gap"],
            max_request_size=state["max_request_size"],
        )
        self.container_options = state["container_options"]

    # ------------------------------------------------------------------ authorisation
    def authorize(self, containers: Mapping[str, Mapping[str, Any] | None] | Iterable[str]) -> None:
        """Allow reads below each prefix (optionally with options for that container)."""
        items = (
            containers.items()
            if isinstance(containers, Mapping)
            else ((c, None) for c in containers)
        )
        for prefix, options in items:
            if not isinstance(prefix, str) or not prefix:
                raise InvalidInputError(
                    f"authorize_virtual takes URL prefixes such as 's3://bucket/' or "
                    f"'file:///data/', got {prefix!r}"
                )
            if local_path(prefix) is not None:
                prefix = normalize_url(prefix)
                if not prefix.endswith("/"):
                    prefix += "/"
            elif not urlsplit(prefix).path and not prefix.endswith("/"):
                prefix += "/"  # "s3://bucket" must not also authorise "s3://bucket-2/"
            merged = dict(self.authorized.get(prefix, {}))
            merged.update(options or {})
            self.authorized[prefix] = merged

    def _container(self, url: str) -> str:
        if canonical_url(url) != url:
            raise UnauthorizedSourceError(
                f"virtual chunk source {url!r} is not a canonical URL (it has '.' or '..' "
                "segments or repeated slashes); zarrchive refuses to read it because it could "
                "escape the container it appears to be in"
            )
        best = ""
        for prefix in self.authorized:
            if url.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        if not best:
            raise UnauthorizedSourceError(
                f"virtual chunk source {url!r} is not under an authorised container; pass "
                f"authorize_virtual=[{container_of(url)!r}] (or a longer prefix) to Repo.open "
                "to allow reading it"
            )
        return best

    def _options(self, url: str, prefix: str) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        for cprefix, copts in self.container_options.items():
            if url.startswith(cprefix):
                opts.update(copts)
        opts.update(self.authorized.get(prefix, {}))
        return opts

    def _fs(self, url: str, options: Mapping[str, Any]) -> AsyncFileSystem:
        protocol = fsspec.utils.get_protocol(url)
        key = (protocol, repr(sorted(options.items())))
        fs = self._filesystems.get(key)
        if fs is None:
            fs = filesystem_for(protocol, options)
            self._filesystems[key] = fs
        return fs

    # ------------------------------------------------------------------ reading
    async def read(self, url: str, offset: int, length: int, checksum: str | None = None) -> bytes:
        """``length`` bytes of ``url`` from ``offset``, checked against ``checksum``."""
        prefix = self._container(url)
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        path = local_path(url)
        if path is not None:
            async with self._semaphore:
                (data,) = await asyncio.to_thread(
                    read_local_ranges, path, [(offset, length)], checksum
                )
            return data
        try:
            fs = self._fs(url, self._options(url, prefix))
            if checksum is not None:
                await self._verify_remote(fs, url, checksum)
            data = await self._coalesced(fs, url, offset, length)
        except FileNotFoundError as exc:
            raise _gone(url) from exc
        except (SourceModifiedError, UnauthorizedSourceError):
            raise
        except OSError as exc:
            raise StorageError(f"reading virtual chunk source {url!r} failed: {exc}") from exc
        if len(data) != length:
            raise _short(url, offset, length, len(data))
        return data

    def local_file(self, url: str) -> str | None:
        """The path of an authorised local source (None for remote URLs).

        Raises :class:`UnauthorizedSourceError` like :meth:`read` when ``url`` is not under
        an authorised container. Callers read the path with :func:`read_local_ranges`.
        """
        self._container(url)
        return local_path(url)

    async def _coalesced(self, fs: AsyncFileSystem, url: str, offset: int, length: int) -> bytes:
        """Queue one range; ranges queued for ``url`` in the same loop turn share requests."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        batch = self._pending.get(url)
        if batch is None:
            batch = self._pending[url] = []
            loop.call_soon(lambda: self._tasks.add(loop.create_task(self._flush(fs, url))))
        batch.append((offset, length, future))
        return await future

    async def _flush(self, fs: AsyncFileSystem, url: str) -> None:
        batch = self._pending.pop(url)
        plan = plan_requests(
            [b[0] for b in batch], [b[1] for b in batch], self.coalesce_gap, self.max_request_size
        )
        assert self._semaphore is not None

        async def fetch(start: int, end: int, members: list[int]) -> None:
            try:
                async with self._semaphore:  # type: ignore[union-attr]
                    data = bytes(await fs._cat_file(url, start=start, end=end))
            except BaseException as exc:
                for i in members:
                    if not batch[i][2].done():
                        batch[i][2].set_exception(exc)
                return
            for i in members:
                off, length, fut = batch[i]
                if not fut.done():
                    fut.set_result(data[off - start : off - start + length])

        try:
            await asyncio.gather(*(fetch(*req) for req in plan))
        finally:
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]
        self.requests_made += len(plan)

    async def stat(self, url: str, options: Mapping[str, Any] | None = None) -> SourceStat:
        """Size and version of one source object (one stat; used at import and by verify).

        Raises ``FileNotFoundError`` when the object does not exist.
        """
        path = local_path(url)
        if path is not None:
            return _local_stat(await offload(os.stat, path))
        return _remote_stat(await self._fs(url, dict(options or {}))._info(url))

    async def _verify_remote(self, fs: AsyncFileSystem, url: str, checksum: str) -> None:
        """One ``info`` per object per ``verify_ttl``, shared by every chunk read meanwhile."""
        key = (url, checksum)
        seen = self._verified.get(key)
        if seen is not None and time.monotonic() - seen < self.verify_ttl:
            return
        pending = self._verifying.get(key)
        if pending is None:
            pending = self._verifying[key] = asyncio.ensure_future(
                self._stat_and_compare(fs, url, checksum)
            )
            pending.add_done_callback(lambda _: self._verifying.pop(key, None))
        await asyncio.shield(pending)

    async def _stat_and_compare(self, fs: AsyncFileSystem, url: str, checksum: str) -> None:
        self.verifications_made += 1
        current = _remote_stat(await fs._info(url)).checksum
        if current != checksum:
            raise _modified(repr(url), checksum, current)
        self._verified[(url, checksum)] = time.monotonic()


# (protocol, options) -> [(event loop, filesystem)]: async clients are bound to the loop
# they first ran on, so one client per loop. Shared by every reader of this process: a new
# s3fs/aiohttp client costs ~0.1 s of CPU, which a script opening many repositories (or the
# CLI importing one file per call) would otherwise pay every time.
_SHARED: dict[tuple[str, str], list[tuple[weakref.ref[Any], AsyncFileSystem]]] = {}


def filesystem_for(protocol: str, options: Mapping[str, Any]) -> AsyncFileSystem:
    """An async fsspec filesystem for ``protocol`` (sync ones wrapped), shared per loop.

    Listing caches are off: an object's size and version must come from the object
    itself, never from a listing taken earlier, or a changed source could go unnoticed.
    """
    try:
        loop: Any = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    s3 = protocol in ("s3", "s3a")
    # which S3 client is wanted can change in a process (ZARRCHIVE_S3_CLIENT)
    choice = os.environ.get("ZARRCHIVE_S3_CLIENT", "obstore") if s3 else ""
    key = (protocol, repr(sorted(options.items())) + choice)
    entries = _SHARED.setdefault(key, [])
    entries[:] = [(ref, fs) for ref, fs in entries if ref() is not None]
    for ref, fs in entries:
        if loop is not None and ref() is loop:
            return fs
    cls = fsspec.get_filesystem_class(protocol)
    opts = {"skip_instance_cache": True, **options}
    fast = None
    if s3:
        from ._obstore import s3_client

        fast = s3_client(options)  # measured faster than s3fs (bench/remote.md)
    if fast is not None:
        fs = fast
    elif issubclass(cls, AsyncFileSystem):
        fs = cls(asynchronous=True, **{"use_listings_cache": False, **opts})
    else:
        from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

        fs = AsyncFileSystemWrapper(cls(**opts), asynchronous=True)
    if loop is not None:
        entries.append((weakref.ref(loop), fs))
    return fs
