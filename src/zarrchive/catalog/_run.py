"""``import_catalog`` / ``append_catalog``: the pipeline from sources to one commit.

Owns the run: resolve the catalog, join a crashed run's session or start one, read the
target, scan (see :mod:`._workers`), decode, order and validate every source before
anything is written, write in batches, commit, and report (:class:`CatalogReport`), with a
progress display on a terminal. Works on the repository, session and author it is given and
hands back the session that committed; it never imports the API (``repo.py``), which sets
that session as its current one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import (
    InvalidInputError,
    NotFoundError,
    ReadOnlyError,
)
from ..format import DELETED, VIRTUAL
from ..journal import list_sessions
from ..sources import (
    SourceReader,
    container_of,
)
from ..zarr_keys import normalize_path
from . import _write
from ._collect import _Collector, _rescan, _SortKey, _Source
from ._coords import _lt, _warm_up_cf
from ._layout import _Layout, _layout_error
from ._resolve import Catalog, resolve_catalog
from ._scan import ScanJob, ScanResult
from ._target import _Existing, _existing, _existing_digest, _in, _known_for, _under
from ._workers import _scan_all, default_workers
from ._write import _batches, _make_plan

if TYPE_CHECKING:
    from ..repository import Repository
    from ..session import Session


DEFAULT_BATCH = 100


@dataclass(frozen=True, slots=True)
class CatalogReport:
    """What one ``import_catalog`` / ``append_catalog`` run did."""

    path: str
    #: sources added by the commit (including those a crashed earlier run had written)
    sources: int
    #: sources that were already in the dataset
    skipped: int
    #: chunk references the commit added or changed
    references: int
    #: bytes of source data those references point at
    bytes_referenced: int
    seconds: float
    #: the new commit, or None when there was nothing to add
    commit: str | None

    def __str__(self) -> str:
        where = f"/{self.path}"
        if self.commit is None:
            return (
                f"nothing to add to {where}: all {self.skipped} sources are already in it; "
                f"no commit made ({self.seconds:.1f} s)"
            )
        skipped = f", {self.skipped} already there" if self.skipped else ""
        return (
            f"{where}: {self.sources} sources added{skipped}; {self.references:,} chunk "
            f"references ({self.bytes_referenced:,} bytes) in {self.seconds:.1f} s; "
            f"commit {self.commit}"
        )


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self._p: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._p = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )

    def __enter__(self) -> _Progress:
        if self._p is not None:
            self._p.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.stop()

    def task(self, description: str, total: int) -> Callable[[int], None]:
        if self._p is None:
            return lambda n: None
        tid = self._p.add_task(description, total=total)
        return lambda n: self._p.advance(tid, n)


def _stderr_is_tty() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def _check_order(ordered: Sequence[_Source], ex: _Existing, dim: str) -> None:
    for src in ordered:
        v = src.values
        if len(v) > 1 and not bool(np.all(v[1:] > v[:-1])):
            bad = int(np.argmin(v[1:] > v[:-1]))
            raise InvalidInputError(
                f"{src.url}: its {dim!r} values are not strictly increasing ({v[bad]} is "
                f"followed by {v[bad + 1]})"
            )
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        if not _lt(prev.values[-1], cur.values[0]):
            dup = np.intersect1d(prev.values, cur.values)
            if len(dup):
                raise InvalidInputError(
                    f"{cur.url} and {prev.url} both have {dim} = {dup[0]}; a catalog must "
                    f"not repeat {dim!r} values"
                )
            raise InvalidInputError(
                f"{cur.url} overlaps {prev.url} along {dim!r}: it starts at {cur.values[0]}, "
                f"before {prev.url} ends at {prev.values[-1]}"
            )
    if ex.layout is not None and ordered and not _lt(ex.last, ordered[0].values[0]):
        first = ordered[0]
        raise InvalidInputError(
            f"{first.url} starts at {dim} = {first.values[0]}, which is not after the last "
            f"{dim!r} value already in /{ex.target} ({ex.last}); only sources later than the "
            "existing data can be added"
        )


async def _validate(
    ordered: list[_Source],
    ex: _Existing,
    dim: str,
    session: Session,
    reader: SourceReader,
) -> tuple[_Layout, str]:
    _check_order(ordered, ex, dim)
    if ex.layout is not None:
        ref_layout, ref_name = ex.layout, f"the dataset at /{ex.target}"
    else:
        ref_layout, ref_name = ordered[0].layout, ordered[0].url
    for src in ordered:
        if src.layout is not ref_layout and src.layout != ref_layout:
            raise _layout_error(src.url, src.layout, ref_name, ref_layout)
    # variables without the concat dimension: equal values everywhere
    ref_digests: dict[str, str | None] = {} if ex.layout is not None else dict(ordered[0].digests)
    for src in ordered:
        for path, digest in src.digests:
            if digest is None:
                continue
            if ex.layout is not None and path not in ref_digests:
                ref_digests[path] = await _existing_digest(session, ex, path, reader)
            want = ref_digests.get(path)
            if want is not None and want != digest:
                raise InvalidInputError(
                    f"{src.url}: variable {path!r} (which does not vary along {dim!r}) has "
                    f"other values than in {ref_name}; it must be the same in every source"
                )
    # whole chunks along the dimension
    for v in ref_layout.varying:
        if ex.layout is not None and ex.length % v.chunk:
            raise InvalidInputError(
                f"the dataset at /{ex.target} ends in a partial chunk of {v.path!r} along "
                f"{dim!r} ({ex.length} steps, chunks of {v.chunk}); nothing can be added "
                "after it"
            )
        for src in ordered[:-1]:
            if src.extent % v.chunk:
                raise InvalidInputError(
                    f"{src.url}: its {src.extent} steps along {dim!r} are not a whole number "
                    f"of chunks of {v.path!r} (chunks of {v.chunk}); only the last source in "
                    f"{dim!r} order may end in a partial chunk"
                )
    # differing time units are decoded for the coordinate, but not inside bounds variables
    units = {s.units for s in ordered} | ({ex.units} if ex.layout is not None else set())
    if len(units) > 1:
        first = ordered[0].result  # the earliest source keeps its whole scan
        bounds = None
        if first is not None and first.tree is not None:
            bounds = (first.tree.arrays[dim].meta.get("attributes") or {}).get("bounds")
        for v in ref_layout.varying:
            sig_units = (json.loads(v.sig).get("attributes") or {}).get("units")
            if v.path == bounds and sig_units is None:
                raise InvalidInputError(
                    f"the sources store {dim!r} in different units ({sorted(map(str, units))}), "
                    f"and its bounds variable {v.path!r} has no units of its own, so its "
                    "values cannot be combined without rewriting them"
                )
    return ref_layout, ref_name


def _count(session: Session, target: str) -> tuple[int, int]:
    changes = session.changes
    refs = nbytes = 0
    if changes is None:
        return 0, 0
    for node in _under(changes.nodes, target).values():
        ch = changes.chunk_changes(node.id) if node.kind == "array" else None
        if ch is None:
            continue
        m = ch.manifest()
        live = m.kind != DELETED
        refs += int(live.sum())
        nbytes += int(m.length[m.kind == VIRTUAL].sum())
    return refs, nbytes


@dataclass(frozen=True, slots=True)
class _Run:
    """What a run was asked to do, checked (:func:`_check_arguments`)."""

    mode: str
    target: str
    dim: str
    branch: str
    batch_size: int
    workers: int | None
    message: str | None


async def import_catalog(
    repository: Repository,
    current: Session,
    author: str,
    sources: Any,
    path: str | None,
    *,
    mode: str = "import",
    concat_dim: str = "time",
    workers: int | None = None,
    client: Any = None,
    message: str | None = None,
    batch_size: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[CatalogReport, Session | None]:
    """``AsyncRepo.import_catalog`` (``mode="import"``) and ``append_catalog``, on the branch
    of ``current`` (the caller's session, which must be writable and unchanged), committed
    as ``author``.

    Returns the report and the session that made the commit, for the caller to continue
    with; None when nothing was committed (then ``current`` is still the one to use).
    """
    t0 = time.monotonic()
    cat = await asyncio.to_thread(resolve_catalog, sources, storage_options)
    run = _check_arguments(cat, current, mode, path, concat_dim, batch_size, workers, message)
    session = await _resume_or_start(repository, run, author)
    resumed = session.has_changes
    reader = _reader(repository, cat)
    ex = await _existing(session, run.target, run.dim, reader)
    if mode == "append" and ex.layout is None:
        raise NotFoundError(
            f"there is no dataset at /{run.target} to append to; use import_catalog to create it"
        )
    options_of = {s.url: s.options for s in cat.sources}
    async with contextlib.AsyncExitStack() as cleanup:
        progress = cleanup.enter_context(_Progress(_stderr_is_tty()))
        collector = await _scan(run, cat, ex, client, progress, cleanup)
        new = collector.sources
        base_sorted = sorted(ex.base_known)
        in_base = [u for u in collector.skipped if _in(u, ex.base_known, base_sorted)]
        if new and mode == "import" and ex.base_has_data:
            raise InvalidInputError(
                f"/{run.target} already holds a dataset and {len(new)} of the given sources "
                f"are not in it (e.g. {new[0].url}); use append_catalog to add sources to an "
                "existing dataset"
            )
        added = len(new) + len(collector.skipped) - len(in_base)
        if not new and not resumed:
            _authorize_skipped(repository, collector, options_of)
            report = CatalogReport(run.target, 0, len(in_base), 0, 0, time.monotonic() - t0, None)
            return report, None
        commit_id, refs, nbytes = await _write_and_commit(
            run, session, author, ex, new, reader, progress, added
        )
    _authorize_skipped(repository, collector, options_of)
    report = CatalogReport(
        run.target, added, len(in_base), refs, nbytes, time.monotonic() - t0, commit_id
    )
    return report, session


def _reader(repository: Repository, cat: Catalog) -> SourceReader:
    """A reader of the dataset's and the catalog's sources, with the options given for them."""
    reader = SourceReader(
        {
            **repository.sources.authorized,
            **{container_of(s.url): s.options for s in cat.sources},
        }
    )
    reader.container_options = dict(repository.sources.container_options)
    return reader


def _check_arguments(
    cat: Catalog,
    current: Session,
    mode: str,
    path: str | None,
    concat_dim: str,
    batch_size: int | None,
    workers: int | None,
    message: str | None,
) -> _Run:
    """The run's target, dimension and sizes, from the arguments and the catalog's own
    ``path`` and ``concat_dim``; refuses what is inconsistent or cannot be imported into."""
    if path is None:
        path = cat.path
    elif cat.path is not None and normalize_path(cat.path) != normalize_path(path):
        raise InvalidInputError(
            f"the catalog names path {cat.path!r} but {path!r} was given; give one of them"
        )
    if path is None:
        raise InvalidInputError("import_catalog needs a path (the group to build the dataset in)")
    target = normalize_path(path)
    dim = concat_dim
    if cat.concat_dim is not None and cat.concat_dim != concat_dim:
        if concat_dim != "time":
            raise InvalidInputError(
                f"the catalog names concat_dim {cat.concat_dim!r} but {concat_dim!r} was given"
            )
        dim = cat.concat_dim
    if not isinstance(dim, str) or not dim or "/" in dim:
        raise InvalidInputError(f"concat_dim must be a dimension name, got {dim!r}")
    if batch_size is None:
        batch_size = DEFAULT_BATCH
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise InvalidInputError(f"workers must be a positive integer, got {workers!r}")
    if not current.writable or current.branch is None:
        raise ReadOnlyError(
            "the current session is read-only (not on a branch tip); checkout a branch to "
            "import a catalog"
        )
    if current.has_changes:
        raise InvalidInputError(
            "the current session has uncommitted changes; commit or discard them before "
            "importing a catalog (it is committed on its own)"
        )
    return _Run(mode, target, dim, current.branch, batch_size, workers, message)


async def _scan(
    run: _Run,
    cat: Catalog,
    ex: _Existing,
    client: Any,
    progress: _Progress,
    cleanup: contextlib.AsyncExitStack,
) -> _Collector:
    """Every source of ``cat`` scanned (in workers, see :mod:`._workers`) and collected,
    their concat coordinates decoded; those already in the dataset are only stat-ed."""
    known_sorted = sorted(ex.known)
    jobs = [
        ScanJob(s.url, s.options, run.dim, _known_for(s.url, ex.known, known_sorted), compact=True)
        for s in cat.sources
    ]
    options_of = {s.url: s.options for s in cat.sources}
    workers = default_workers(jobs) if run.workers is None else run.workers
    collector = _Collector(run.dim)
    advance = progress.task(f"scanning {len(jobs)} sources", len(jobs))

    def on_result(res: ScanResult) -> None:
        collector.add(res, options_of.get(res.url))
        advance(1)

    # xarray's CF coding imports a second's worth of modules on first use (dask among
    # them, when installed): let that happen while workers start and scan
    await _scan_all(
        jobs,
        workers,
        client,
        on_result,
        lambda: asyncio.to_thread(_warm_up_cf, run.dim),
        cleanup,
    )
    await asyncio.to_thread(collector.decode)
    return collector


async def _write_and_commit(
    run: _Run,
    session: Session,
    author: str,
    ex: _Existing,
    new: list[_Source],
    reader: SourceReader,
    progress: _Progress,
    added: int,
) -> tuple[str, int, int]:
    """Order and validate the new sources, write them in batches into ``session`` and commit
    it; return the commit, and the references and bytes it holds under the target."""
    if new:
        ordered = sorted(new, key=_SortKey)
        ordered[0].result = await _rescan(ordered[0], run.dim)
        layout, _ = await _validate(ordered, ex, run.dim, session, reader)
        plan = await _make_plan(session, run.target, run.dim, ordered, layout, ex)
        write = progress.task(f"writing {len(ordered)} sources", len(ordered))
        for batch in _batches(ordered, run.batch_size):
            await _keep_alive(session)
            await _write._write_batch(plan, batch)  # looked up here: tests replace it
            write(len(batch))
    refs, nbytes = _count(session, run.target)
    verb = "append_catalog" if run.mode == "append" else "import_catalog"
    commit_id = await session.commit(
        run.message or f"{verb} /{run.target}: {added} sources",
        author=author,
        metadata={"catalog": {"path": run.target, "concat_dim": run.dim, "sources": added}},
    )
    return commit_id, refs, nbytes


async def _keep_alive(session: Session) -> None:
    """Extend the session's life while a long import runs (it expires after a day)."""
    import datetime as dt

    from ..journal import now_utc

    if session.expires - now_utc() < dt.timedelta(hours=12):
        await session.update_expiration(dt.timedelta(hours=24))


def _authorize_skipped(
    repository: Repository, collector: _Collector, options_of: Mapping[str, Any]
) -> None:
    """Let this process read the skipped sources too, as it reads the ones just written:
    the caller named them all (they were imported by an earlier run, maybe elsewhere)."""
    repository.sources.authorize(
        {
            prefix: options_of.get(url)
            for url, prefix in zip(collector.skipped, collector.skipped_prefixes, strict=True)
        }
    )


async def _resume_or_start(repository: Repository, run: _Run, author: str) -> Session:
    """The active catalog session for the run's target on its branch (left by a run that did
    not finish), or a new one."""
    names = {f"import_catalog /{run.target}", f"append_catalog /{run.target}"}
    candidates = [
        s
        for s in await list_sessions(repository.storage)
        if s.state == "active" and s.branch == run.branch and s.message in names
    ]
    for info in sorted(candidates, key=lambda s: s.created, reverse=True):
        with contextlib.suppress(ReadOnlyError, NotFoundError):
            return await repository.join_session(info.id)
    return await repository.session(
        run.branch, message=f"{run.mode}_catalog /{run.target}", author=author
    )
