"""The user-facing ``Repo`` (sync) and ``AsyncRepo``, after Arraylake's repo API.

``AsyncRepo`` holds a :class:`Repository` and the current :class:`Session` and implements
every operation as a coroutine. ``Repo`` offers each public coroutine as a blocking method of
the same signature and docstring, one line over the single bridge in ``_sync`` (written out,
so that type checkers and editors see them; ``tests/test_repo.py`` fails when the two drift
apart), and the few read-only facts (``commit_log``, ``branches``, ``tags``, ``store``,
``root_group``) as properties, as in Arraylake. Formats are recognised and scanned through
the importer registry (:mod:`zarrchive.importers`); batch imports are the catalog's, given
this repository, session and author.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from . import refs
from ._sync import offload, sync
from .errors import InvalidInputError
from .format import RepositoryConfig, Snapshot
from .history import CommitInfo, CommitLog, Diff, Status, changed_chunks
from .importers import FORMATS, ImportedTree, ImportSummary, formats_for, scanner, sniff
from .journal import SessionInfo, list_sessions
from .repository import Repository
from .session import Session
from .storage import Storage
from .store import ZarrchiveStore
from .verify import VerifyReport, verify_sources
from .zarr_keys import normalize_path

if TYPE_CHECKING:
    import xarray as xr
    import zarr
    from rich.tree import Tree as RichTree

    from .catalog import CatalogReport
    from .maintenance import GCReport

__all__ = ["AsyncRepo", "Repo"]


def _default_author() -> str:
    name = os.environ.get("ZARRCHIVE_AUTHOR")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class AsyncRepo:
    """A zarrchive repository and the current session, with async methods."""

    def __init__(self, repository: Repository, session: Session, *, author: str) -> None:
        self.repository = repository
        self.session = session
        self.author = author
        self._store: ZarrchiveStore | None = None

    def __repr__(self) -> str:
        s = self.session
        where = f"branch {s.branch!r}" if s.branch else "detached (read-only)"
        return f"<{type(self).__name__} {self.repository.location} on {where} at {s.snapshot_id}>"

    # ------------------------------------------------------------------ opening
    @classmethod
    async def create(
        cls,
        location: str | os.PathLike[str] | Storage,
        *,
        storage_options: dict[str, Any] | None = None,
        author: str | None = None,
        config: RepositoryConfig | None = None,
        chunkstore: str | None = None,
    ) -> AsyncRepo:
        """Create a repository at ``location`` (fails if one is there) and check out main."""
        if chunkstore is not None:
            base = config or RepositoryConfig()
            config = RepositoryConfig(
                inline_threshold=base.inline_threshold,
                manifest_split_size=base.manifest_split_size,
                virtual_containers=base.virtual_containers,
                chunkstore=chunkstore,
            )
        author = author or _default_author()
        repository = await Repository.create(
            location, storage_options=storage_options, config=config, author=author
        )
        return cls(repository, await repository.session("main", author=author), author=author)

    @classmethod
    async def open(
        cls,
        location: str | os.PathLike[str] | Storage,
        *,
        storage_options: dict[str, Any] | None = None,
        author: str | None = None,
        ref: str = "main",
        authorize_virtual: Mapping[str, Mapping[str, Any] | None] | Sequence[str] | None = None,
    ) -> AsyncRepo:
        """Open the repository at ``location`` and check out ``ref``.

        ``authorize_virtual``: URL prefixes (containers) whose virtual chunks this reader may
        fetch, as a list, or a dict mapping each prefix to storage options (credentials,
        endpoint) for it. Reads outside them raise :class:`UnauthorizedSourceError`.
        """
        repository = await Repository.open(
            location, storage_options=storage_options, authorize_virtual=authorize_virtual
        )
        author = author or _default_author()
        return cls(repository, await repository.session(ref, author=author), author=author)

    @classmethod
    async def open_or_create(
        cls,
        location: str | os.PathLike[str] | Storage,
        *,
        storage_options: dict[str, Any] | None = None,
        author: str | None = None,
        config: RepositoryConfig | None = None,
        chunkstore: str | None = None,
        authorize_virtual: Mapping[str, Mapping[str, Any] | None] | Sequence[str] | None = None,
    ) -> AsyncRepo:
        """Open the repository at ``location``, creating it first if there is none."""
        if await Repository.exists(location, storage_options):
            return await cls.open(
                location,
                storage_options=storage_options,
                author=author,
                authorize_virtual=authorize_virtual,
            )
        return await cls.create(
            location,
            storage_options=storage_options,
            author=author,
            config=config,
            chunkstore=chunkstore,
        )

    # ------------------------------------------------------------------ sessions
    def _set_session(self, session: Session) -> None:
        self.session = session
        self._store = None

    async def checkout(self, ref: str = "main", *, for_writing: bool = True) -> str:
        """Start a session on a branch, tag or commit; return its commit id.

        A tag or a commit that is not a branch tip gives a read-only session (with a warning).
        """
        if self.session.has_changes:
            raise InvalidInputError(
                "the current session has uncommitted changes; commit them, or call "
                "discard_changes(), before checking out another ref"
            )
        self._set_session(
            await self.repository.session(ref, for_writing=for_writing, author=self.author)
        )
        return self.session.snapshot_id

    async def commit(
        self,
        message: str,
        *,
        auto_ff: bool = True,
        metadata: Mapping[str, Any] | None = None,
        allow_empty: bool = False,
    ) -> str:
        """Commit the session's changes to its branch; return the new commit id.

        With ``auto_ff`` (the default), a branch that moved meanwhile is rebased onto when
        nothing conflicts; otherwise :class:`ConflictError` is raised.
        """
        commit_id = await self.session.commit(
            message,
            author=self.author,
            metadata=metadata,
            auto_ff=auto_ff,
            allow_empty=allow_empty,
        )
        return commit_id

    async def fast_forward(self) -> str:
        """Rebase the session's changes onto its branch tip; return the new base commit."""
        return await self.session.fast_forward()

    async def discard_changes(self) -> None:
        """Drop every uncommitted change of the session."""
        await self.session.discard_changes()

    async def create_session(
        self,
        ref: str = "main",
        *,
        for_writing: bool = True,
        expires_in: dt.timedelta | float | None = None,
        message: str | None = None,
    ) -> SessionInfo:
        """Start a new session on ``ref`` and make it the current one.

        Writable sessions persist their changes as they go, so ``join_session(id)`` can
        continue them in another process. ``expires_in``: default 24 hours, at most 7 days.
        """
        if self.session.has_changes:
            raise InvalidInputError(
                "the current session has uncommitted changes; commit or discard them first"
            )
        self._set_session(
            await self.repository.session(
                ref,
                for_writing=for_writing,
                expires_in=expires_in,
                message=message,
                author=self.author,
            )
        )
        return self.session.info()

    async def join_session(self, session_id: str) -> SessionInfo:
        """Continue a persisted session (every write it acknowledged is there)."""
        self._set_session(await self.repository.join_session(session_id))
        return self.session.info()

    async def list_active_sessions(self) -> list[SessionInfo]:
        """Persisted sessions that can still be joined and committed."""
        return [s for s in await list_sessions(self.repository.storage) if s.state == "active"]

    async def fork_session(self) -> Session:
        """A picklable fork of the current session for one worker of a distributed write.

        Workers write disjoint chunks through ``ZarrchiveStore(fork)``; give the forks back
        to ``merge_sessions`` and commit once.
        """
        return self.session.fork()

    async def merge_sessions(self, *forks: Session) -> None:
        """Fold the forks' chunk writes into the current session (all or nothing)."""
        self.session.merge(*forks)
        await self.session.flush()

    async def update_expiration(self, expires_in: dt.timedelta | float) -> dt.datetime:
        """Extend (or shorten) the current session's life, from now; at most 7 days."""
        return await self.session.update_expiration(expires_in)

    async def abandon(self) -> None:
        """Abandon the current session: its changes are dropped, it cannot commit."""
        await self.session.abandon()

    async def status(self, limit: int = 1000) -> Status:
        """Modified and deleted paths of the current session."""
        modified, deleted = self.session.status()
        s = self.session
        return Status(
            s.id,
            s.branch,
            s.snapshot_id,
            s.writable,
            tuple(modified[:limit]),
            tuple(deleted[:limit]),
        )

    # ------------------------------------------------------------------ history and refs
    async def get_commit_log(
        self, ref: str | None = None, *, limit: int | None = None
    ) -> CommitLog:
        """Commits reachable from ``ref`` (default: the session's base), newest first."""
        start = (await self.repository.resolve(ref)).snapshot if ref else self.session.snapshot_id
        log = CommitLog()
        async for snap in self.repository.ancestry(start):
            log.append(CommitInfo.of(snap))
            if limit is not None and len(log) >= limit:
                break
        return log

    async def get_branches(self) -> dict[str, str]:
        """Branch names and the commit each points at."""
        return await refs.list_branches(self.repository.storage)

    async def get_tags(self) -> dict[str, str]:
        """Tag names and the commit each points at."""
        return await refs.list_tags(self.repository.storage)

    async def _commit_id(self, commit_id: str | None) -> str:
        if commit_id is None:
            return self.session.snapshot_id
        return (await self.repository.resolve(commit_id)).snapshot

    async def new_branch(self, name: str, commit_id: str | None = None) -> str:
        """Create branch ``name`` at ``commit_id`` (default: the session's base) and switch
        the session to it, keeping uncommitted changes when it starts at the session's base."""
        target = await self._commit_id(commit_id)
        await refs.create_branch(self.repository.storage, name, target)
        s = self.session
        if s.writable and target == s.snapshot_id:
            await s.switch_branch(name)
        else:
            self._set_session(await self.repository.session(name))
        return target

    async def delete_branch(self, name: str) -> None:
        """Delete branch ``name`` (its commits stay reachable from other refs)."""
        if name == self.session.branch:
            raise InvalidInputError(
                f"cannot delete branch {name!r}: it is checked out; checkout another first"
            )
        await refs.delete_branch(self.repository.storage, name)

    async def reset_branch(self, name: str, commit_id: str) -> None:
        """Point branch ``name`` at ``commit_id``."""
        target = (await self.repository.resolve(commit_id)).snapshot
        tip = await refs.branch_tip(self.repository.storage, name)
        if not await refs.move_branch(self.repository.storage, name, tip.seq, target):
            from .errors import ConflictError

            raise ConflictError(f"branch {name!r} moved while it was being reset; try again")

    async def tag(
        self, name: str, commit_id: str | None = None, *, message: str | None = None
    ) -> str:
        """Create tag ``name`` at ``commit_id`` (default: the session's base commit)."""
        target = await self._commit_id(commit_id)
        await refs.create_tag(self.repository.storage, name, target, message)
        return target

    async def delete_tag(self, name: str) -> None:
        """Delete tag ``name`` (its commit stays reachable from other refs)."""
        await refs.delete_tag(self.repository.storage, name)

    async def expire_snapshots(self, older_than: dt.datetime) -> set[str]:
        """Expire commits made before ``older_than`` that no branch tip, tag or active session
        needs; history walks stop before them. Returns the commits expired. See maintenance.py.
        """
        from .maintenance import expire_snapshots

        return await expire_snapshots(self.repository, older_than)

    async def garbage_collect(
        self, *, dry_run: bool = False, grace: dt.timedelta | float = dt.timedelta(hours=1)
    ) -> GCReport:
        """Delete the objects no branch, tag or live session reaches (none younger than
        ``grace``); return a :class:`zarrchive.GCReport`. See maintenance.py.
        """
        from .maintenance import garbage_collect

        return await garbage_collect(self.repository, dry_run=dry_run, grace=grace)

    async def diff(self, from_ref: str, to_ref: str) -> Diff:
        """What changed between two commits (branches, tags or commit ids)."""
        a = await self.repository.get_snapshot((await self.repository.resolve(from_ref)).snapshot)
        b = await self.repository.get_snapshot((await self.repository.resolve(to_ref)).snapshot)
        return await _diff(self.repository, a, b)

    # ------------------------------------------------------------------ data
    @property
    def store(self) -> ZarrchiveStore:
        """The Zarr v3 store of the current session."""
        if self._store is None or self._store.session is not self.session:
            self._store = ZarrchiveStore(self.session)
        return self._store

    async def move(self, source: str, dest: str) -> None:
        """Rename a group or array; no chunk is read, copied or rewritten."""
        self.session.move(normalize_path(source), normalize_path(dest))
        await self.session.flush()

    async def set_virtual_refs(
        self,
        array_path: str,
        chunk_coords: np.ndarray,
        urls: str | Sequence[str] | np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        *,
        checksums: Mapping[str, str | None] | None = None,
    ) -> int:
        """Point chunks of ``array_path`` at byte ranges of source files (numpy arrays in).

        ``chunk_coords`` is (n, ndim); ``urls`` one URL for all or one per chunk; returns n.
        """
        n = self.session.set_virtual_refs(
            normalize_path(array_path), chunk_coords, urls, offsets, lengths, checksums=checksums
        )
        await self.session.flush()
        return n

    async def _add_virtual(
        self,
        method: str,
        uri: str | os.PathLike[str],
        path: str,
        storage_options: Mapping[str, Any] | None,
        overwrite: bool,
        options: Mapping[str, Any],
    ) -> ImportSummary:
        """The body of every ``add_virtual_*``: recognise the source (stores are left to their
        importer), refuse a format that ``method`` does not import, scan and ingest it."""
        from .sources import normalize_url

        target = normalize_path(path)
        url = normalize_url(os.fspath(uri))
        formats = formats_for(method)
        if all(FORMATS[f].store for f in formats):
            fmt = formats[0]
        else:
            fmt = await offload(sniff, url, storage_options)
            if fmt not in formats:
                raise InvalidInputError(
                    f"{url} is a {fmt} source, not {' or '.join(formats)}; use "
                    f"{FORMATS[fmt].methods[0]} for it"
                )
        reader = self.repository.sources
        tree = await scanner(fmt)(
            url,
            stat=lambda u: reader.stat(u, storage_options),
            storage_options=storage_options,
            **options,
        )
        return await self._ingest(tree, target, storage_options, overwrite)

    async def _ingest(
        self,
        tree: ImportedTree,
        target: str,
        storage_options: Mapping[str, Any] | None,
        overwrite: bool,
    ) -> ImportSummary:
        """Put an importer's tree at ``target`` with the options its sources were read with
        (recorded for reading them back; only their public part is stored)."""
        from .sources import container_of

        if storage_options:
            tree.source_options = {container_of(u): dict(storage_options) for u in tree.urls()}
        self.session.ingest(tree, target, overwrite=overwrite)
        await self.session.flush()
        return tree.summary(target)

    async def add_virtual_netcdf(
        self,
        uri: str | os.PathLike[str],
        path: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> ImportSummary:
        """Import a NetCDF file (classic, 64-bit offset, or NetCDF4/HDF5) as virtual chunks.

        The variant is recognised from the file's first bytes. ``options`` go to the format's
        importer (see ``zarrchive.importers.netcdf3`` / ``hdf5``).
        """
        return await self._add_virtual(
            "add_virtual_netcdf", uri, path, storage_options, overwrite, options
        )

    async def add_virtual_hdf(
        self,
        uri: str | os.PathLike[str],
        path: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> ImportSummary:
        """Import an HDF5 file's hierarchy as virtual chunks (``on_unsupported=`` etc.)."""
        return await self._add_virtual(
            "add_virtual_hdf", uri, path, storage_options, overwrite, options
        )

    async def add_virtual_grib(
        self,
        uri: str | os.PathLike[str],
        path: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> ImportSummary:
        """Import every message of a GRIB file as virtual chunks (one per message)."""
        return await self._add_virtual(
            "add_virtual_grib", uri, path, storage_options, overwrite, options
        )

    async def add_virtual_tiff(
        self,
        uri: str | os.PathLike[str],
        path: str,
        name: str | None = None,
        *,
        storage_options: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> ImportSummary:
        """Import a TIFF / GeoTIFF / COG as virtual chunks; ``name``: the group it becomes
        under ``path`` (default: ``path`` itself)."""
        target = f"{normalize_path(path)}/{name}" if name else path
        return await self._add_virtual(
            "add_virtual_tiff", uri, target, storage_options, overwrite, options
        )

    async def add_virtual_zarr(
        self,
        uri: str | os.PathLike[str],
        path: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> ImportSummary:
        """Import a Zarr v2 store (directory or object storage); every chunk becomes a
        whole-object virtual reference."""
        return await self._add_virtual(
            "add_virtual_zarr", uri, path, storage_options, overwrite, options
        )

    async def add_kerchunk_references(
        self,
        refs: Mapping[str, Any] | str | os.PathLike[str],
        path: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        refs_storage_options: Mapping[str, Any] | None = None,
        remote_protocol: str | None = None,
        overwrite: bool = False,
    ) -> ImportSummary:
        """Import a kerchunk reference set as virtual (and inline) chunks at ``path``.

        ``refs``: a dict, a JSON file path or URL (plain, ``.gz``, ``.zst``), or a kerchunk
        parquet reference directory; spec version 0 or 1. ``storage_options`` are for the
        source objects (credentials are used, never stored); ``refs_storage_options`` for
        reading ``refs`` itself (default: the same). The reference set's Zarr v2 metadata
        becomes Zarr v3. Every source object is stat-ed once to record its checksum. On any
        error the session is left exactly as it was.
        """
        from .importers.kerchunk import load_references, scan_references

        target = normalize_path(path)
        flat, base_dir = load_references(
            refs, refs_storage_options if refs_storage_options is not None else storage_options
        )
        reader = self.repository.sources
        tree = await scan_references(
            flat,
            stat=lambda u: reader.stat(u, storage_options),
            base_dir=base_dir,
            remote_protocol=remote_protocol,
            storage_options=storage_options,
        )
        return await self._ingest(tree, target, storage_options, overwrite)

    async def verify(self, ref: str | None = None) -> VerifyReport:
        """Stale and missing virtual-chunk sources of a commit, without reading chunk data.

        One stat per source object of every manifest of the commit (``ref``: branch, tag or
        commit id; default the session, including its uncommitted references).
        """
        if ref is None:
            session = self.session
        else:
            session = await self.repository.session(ref, for_writing=False)
        return await verify_sources(session)

    async def export_kerchunk(
        self,
        target: str | os.PathLike[str] | None = None,
        *,
        ref: str | None = None,
        format: str = "json",
        storage_options: dict[str, Any] | None = None,
    ) -> Any:
        """Export a commit as a kerchunk reference set (spec version 1, Zarr v2 metadata).

        ``ref`` is a branch, tag or commit id (default: the session's base commit; uncommitted
        changes are not exported). With no ``target`` the references are returned as a dict;
        otherwise they are written to ``target`` (a path or fsspec URL, with
        ``storage_options``) as JSON or, with ``format="parquet"``, as a kerchunk parquet
        reference directory, and ``target`` is returned. Open the result with fsspec's
        ``reference://`` filesystem and zarr (``zarr_format=2``) or xarray. Raises
        :class:`UnsupportedFeatureError` for what Zarr v2 cannot express (sharding, ...) and
        for native chunks of an in-memory repository.
        """
        from .export import export_kerchunk

        snapshot_id = await self._commit_id(ref)
        return await export_kerchunk(
            self.repository,
            snapshot_id,
            target,
            format=format,
            storage_options=storage_options,
        )

    async def import_catalog(
        self,
        sources: Any,
        path: str | None = None,
        *,
        concat_dim: str = "time",
        workers: int | None = None,
        client: Any = None,
        message: str | None = None,
        batch_size: int | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> CatalogReport:
        """Combine many sources along ``concat_dim`` into one virtual dataset at ``path``,
        in one commit; return a :class:`zarrchive.catalog.CatalogReport`.

        ``sources``: a list of URLs/paths, a glob (local or fsspec), a text file with one URL
        per line, or a JSON/YAML catalog (``sources``, ``path``, ``concat_dim``,
        ``storage_options``). Sources are scanned in ``workers`` processes (default
        ``min(cpu_count, 8)``, one per 16 sources; 1: in this process) or on a Dask
        ``client`` (``distributed.Client``), checked to fit together, ordered by their first
        coordinate value and written ``batch_size`` at a time into a durable session:
        rerunning after a crash continues it, and sources already in the dataset are skipped.
        Raises if ``path`` already holds a dataset that lacks some of the sources (see
        ``append_catalog``). See ``zarrchive.catalog``.
        """
        return await self._catalog(
            sources,
            path,
            mode="import",
            concat_dim=concat_dim,
            workers=workers,
            client=client,
            message=message,
            batch_size=batch_size,
            storage_options=storage_options,
        )

    async def append_catalog(
        self,
        sources: Any,
        path: str | None = None,
        *,
        concat_dim: str = "time",
        workers: int | None = None,
        client: Any = None,
        message: str | None = None,
        batch_size: int | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> CatalogReport:
        """Add sources after the end of the dataset at ``path`` (built by ``import_catalog``)
        in one commit; their coordinate values must all be greater than the existing ones.
        Arguments and report as for ``import_catalog``.
        """
        return await self._catalog(
            sources,
            path,
            mode="append",
            concat_dim=concat_dim,
            workers=workers,
            client=client,
            message=message,
            batch_size=batch_size,
            storage_options=storage_options,
        )

    async def _catalog(self, sources: Any, path: str | None, **kwargs: Any) -> CatalogReport:
        """Run a catalog import on the current session; a commit starts a new session."""
        from .catalog import import_catalog

        report, session = await import_catalog(
            self.repository, self.session, self.author, sources, path, **kwargs
        )
        if session is not None:
            self._set_session(session)
        return report

    async def tree(
        self, prefix: str = "", *, depth: int = 10, filter: str | None = None
    ) -> RichTree:
        """A rich tree of the hierarchy (print it); ``filter``: JMESPath on attributes."""
        from .display import render_tree

        return render_tree(self.session.nodes, normalize_path(prefix), depth=depth, filter=filter)

    async def filter_metadata(self, expression: str) -> list[str]:
        """Paths of groups and arrays whose attributes match a JMESPath expression."""
        from .display import filter_paths

        return filter_paths(self.session.nodes, expression)

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        open_browser: bool = False,
        authorize: Sequence[str] | None = None,
    ) -> None:
        """Serve a read-only web view of this repository on the running loop until
        cancelled (history, diffs, tree, chunk maps, quick-look plots); needs the ``web``
        extra. ``authorize``: more container prefixes the pages may read. See
        ``zarrchive.web``."""
        from .web import serve_async

        await serve_async(
            self, host=host, port=port, open_browser=open_browser, authorize=authorize
        )

    async def open_root_group(self) -> zarr.AsyncGroup:
        """The root group of the current session (``Repo.root_group``, opened read-only off
        a branch tip)."""
        import zarr.api.asynchronous as za

        mode = "r" if self.store.read_only else "r+"
        return await za.open_group(store=self.store, mode=mode, zarr_format=3)


async def _diff(repository: Repository, a: Snapshot, b: Snapshot) -> Diff:
    a_ids = {n.id: n for n in a.nodes.values()}
    b_ids = {n.id: n for n in b.nodes.values()}
    new = [n for nid, n in b_ids.items() if nid not in a_ids]
    gone = [n for nid, n in a_ids.items() if nid not in b_ids]
    meta, moved = [], []
    chunks: dict[str, int] = {}
    for nid, nb in b_ids.items():
        na = a_ids.get(nid)
        if na is None:
            continue
        if na.path != nb.path:
            moved.append((na.path, nb.path))
        if na.meta != nb.meta:
            meta.append(nb.path)
        if nb.kind == "array" and na.manifests != nb.manifests:
            ndim = len(nb.meta["shape"])
            from .format import Manifest

            ma = Manifest.merge([await repository.get_manifest(m.id) for m in na.manifests], ndim)
            mb = Manifest.merge([await repository.get_manifest(m.id) for m in nb.manifests], ndim)
            n = changed_chunks(ma, mb)
            if n:
                chunks[nb.path] = n
    return Diff(
        a.id,
        b.id,
        new_groups=tuple(sorted(n.path for n in new if n.kind == "group")),
        new_arrays=tuple(sorted(n.path for n in new if n.kind == "array")),
        deleted_groups=tuple(sorted(n.path for n in gone if n.kind == "group")),
        deleted_arrays=tuple(sorted(n.path for n in gone if n.kind == "array")),
        updated_metadata=tuple(sorted(meta)),
        moved=tuple(sorted(moved)),
        updated_chunks=dict(sorted(chunks.items())),
    )


F = TypeVar("F", bound=Callable[..., Any])


def _same_doc(coro_fn: Callable[..., Any]) -> Callable[[F], F]:
    """Give a blocking ``Repo`` method the docstring of the coroutine it runs."""

    def decorate(fn: F) -> F:
        fn.__doc__ = coro_fn.__doc__
        return fn

    return decorate


class Repo:
    """A zarrchive repository and the current session (blocking API).

    Every public coroutine of :class:`AsyncRepo` is here as a blocking method with the same
    signature and docstring.
    """

    def __init__(self, async_repo: AsyncRepo) -> None:
        self._async = async_repo

    def __repr__(self) -> str:
        return repr(self._async).replace("<AsyncRepo", "<Repo", 1)

    @property
    def async_repo(self) -> AsyncRepo:
        return self._async

    @property
    def session(self) -> Session:
        return self._async.session

    @property
    def repository(self) -> Repository:
        return self._async.repository

    @property
    def commit_log(self) -> CommitLog:
        """Commits from the session's base back to the first, newest first."""
        return sync(self._async.get_commit_log())

    @property
    def branches(self) -> dict[str, str]:
        return sync(self._async.get_branches())

    @property
    def tags(self) -> dict[str, str]:
        return sync(self._async.get_tags())

    @property
    def store(self) -> ZarrchiveStore:
        """The Zarr v3 store of the current session."""
        return self._async.store

    @property
    def root_group(self) -> zarr.Group:
        """The root group of the current session (read-only off a branch tip)."""
        import zarr

        return zarr.Group(sync(self._async.open_root_group()))

    @classmethod
    @_same_doc(AsyncRepo.create)
    def create(
        cls,
        location: str | os.PathLike[str] | Storage,
        *,
        storage_options: dict[str, Any] | None = None,
        author: str | None = None,
        config: RepositoryConfig | None = None,
        chunkstore: str | None = None,
    ) -> Repo:
        return cls(
            sync(
                AsyncRepo.create(
                    location,
                    storage_options=storage_options,
                    author=author,
                    config=config,
                    chunkstore=chunkstore,
                )
            )
        )

    @classmethod
    @_same_doc(AsyncRepo.open)
    def open(
        cls,
        location: str | os.PathLike[str] | Storage,
        *,
        storage_options: dict[str, Any] | None = None,
        author: str | None = None,
        ref: str = "main",
        authorize_virtual: Mapping[str, Mapping[str, Any] | None] | Sequence[str] | None = None,
    ) -> Repo:
        return cls(
            sync(
                AsyncRepo.open(
                    location,
                    storage_options=storage_options,
                    author=author,
                    ref=ref,
                    authorize_virtual=authorize_virtual,
                )
            )
        )

    @classmethod
    @_same_doc(AsyncRepo.open_or_create)
    def open_or_create(
        cls,
        location: str | os.PathLike[str] | Storage,
        *,
        storage_options: dict[str, Any] | None = None,
        author: str | None = None,
        config: RepositoryConfig | None = None,
        chunkstore: str | None = None,
        authorize_virtual: Mapping[str, Mapping[str, Any] | None] | Sequence[str] | None = None,
    ) -> Repo:
        return cls(
            sync(
                AsyncRepo.open_or_create(
                    location,
                    storage_options=storage_options,
                    author=author,
                    config=config,
                    chunkstore=chunkstore,
                    authorize_virtual=authorize_virtual,
                )
            )
        )

    @_same_doc(AsyncRepo.checkout)
    def checkout(self, ref: str = "main", *, for_writing: bool = True) -> str:
        return sync(self._async.checkout(ref, for_writing=for_writing))

    @_same_doc(AsyncRepo.commit)
    def commit(
        self,
        message: str,
        *,
        auto_ff: bool = True,
        metadata: Mapping[str, Any] | None = None,
        allow_empty: bool = False,
    ) -> str:
        return sync(
            self._async.commit(message, auto_ff=auto_ff, metadata=metadata, allow_empty=allow_empty)
        )

    @_same_doc(AsyncRepo.fast_forward)
    def fast_forward(self) -> str:
        return sync(self._async.fast_forward())

    @_same_doc(AsyncRepo.discard_changes)
    def discard_changes(self) -> None:
        sync(self._async.discard_changes())

    @_same_doc(AsyncRepo.create_session)
    def create_session(
        self,
        ref: str = "main",
        *,
        for_writing: bool = True,
        expires_in: dt.timedelta | float | None = None,
        message: str | None = None,
    ) -> SessionInfo:
        return sync(
            self._async.create_session(
                ref, for_writing=for_writing, expires_in=expires_in, message=message
            )
        )

    @_same_doc(AsyncRepo.join_session)
    def join_session(self, session_id: str) -> SessionInfo:
        return sync(self._async.join_session(session_id))

    @_same_doc(AsyncRepo.list_active_sessions)
    def list_active_sessions(self) -> list[SessionInfo]:
        return sync(self._async.list_active_sessions())

    @_same_doc(AsyncRepo.fork_session)
    def fork_session(self) -> Session:
        return sync(self._async.fork_session())

    @_same_doc(AsyncRepo.merge_sessions)
    def merge_sessions(self, *forks: Session) -> None:
        sync(self._async.merge_sessions(*forks))

    @_same_doc(AsyncRepo.update_expiration)
    def update_expiration(self, expires_in: dt.timedelta | float) -> dt.datetime:
        return sync(self._async.update_expiration(expires_in))

    @_same_doc(AsyncRepo.abandon)
    def abandon(self) -> None:
        sync(self._async.abandon())

    @_same_doc(AsyncRepo.status)
    def status(self, limit: int = 1000) -> Status:
        return sync(self._async.status(limit))

    @_same_doc(AsyncRepo.get_commit_log)
    def get_commit_log(self, ref: str | None = None, *, limit: int | None = None) -> CommitLog:
        return sync(self._async.get_commit_log(ref, limit=limit))

    @_same_doc(AsyncRepo.get_branches)
    def get_branches(self) -> dict[str, str]:
        return sync(self._async.get_branches())

    @_same_doc(AsyncRepo.get_tags)
    def get_tags(self) -> dict[str, str]:
        return sync(self._async.get_tags())

    @_same_doc(AsyncRepo.new_branch)
    def new_branch(self, name: str, commit_id: str | None = None) -> str:
        return sync(self._async.new_branch(name, commit_id))

    @_same_doc(AsyncRepo.delete_branch)
    def delete_branch(self, name: str) -> None:
        sync(self._async.delete_branch(name))

    @_same_doc(AsyncRepo.reset_branch)
    def reset_branch(self, name: str, commit_id: str) -> None:
        sync(self._async.reset_branch(name, commit_id))

    @_same_doc(AsyncRepo.tag)
    def tag(self, name: str, commit_id: str | None = None, *, message: str | None = None) -> str:
        return sync(self._async.tag(name, commit_id, message=message))

    @_same_doc(AsyncRepo.delete_tag)
    def delete_tag(self, name: str) -> None:
        sync(self._async.delete_tag(name))

    @_same_doc(AsyncRepo.expire_snapshots)
    def expire_snapshots(self, older_than: dt.datetime) -> set[str]:
        return sync(self._async.expire_snapshots(older_than))

    @_same_doc(AsyncRepo.garbage_collect)
    def garbage_collect(
        self, *, dry_run: bool = False, grace: dt.timedelta | float = dt.timedelta(hours=1)
    ) -> GCReport:
        return sync(self._async.garbage_collect(dry_run=dry_run, grace=grace))

    @_same_doc(AsyncRepo.diff)
    def diff(self, from_ref: str, to_ref: str) -> Diff:
        return sync(self._async.diff(from_ref, to_ref))

    @_same_doc(AsyncRepo.move)
    def move(self, source: str, dest: str) -> None:
        sync(self._async.move(source, dest))

    @_same_doc(AsyncRepo.set_virtual_refs)
    def set_virtual_refs(
        self,
        array_path: str,
        chunk_coords: np.ndarray,
        urls: str | Sequence[str] | np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        *,
        checksums: Mapping[str, str | None] | None = None,
    ) -> int:
        return sync(
            self._async.set_virtual_refs(
                array_path, chunk_coords, urls, offsets, lengths, checksums=checksums
            )
        )

    @_same_doc(AsyncRepo.add_virtual_netcdf)
    def add_virtual_netcdf(
        self,
        uri: str | os.PathLike[str],
        path: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> ImportSummary:
        return sync(
            self._async.add_virtual_netcdf(
                uri, path, storage_options=storage_options, overwrite=overwrite, **options
            )
        )

    @_same_doc(AsyncRepo.add_virtual_hdf)
    def add_virtual_hdf(
        self,
        uri: str | os.PathLike[str],
        path: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> ImportSummary:
        return sync(
            self._async.add_virtual_hdf(
                uri, path, storage_options=storage_options, overwrite=overwrite, **options
            )
        )

    @_same_doc(AsyncRepo.add_virtual_grib)
    def add_virtual_grib(
        self,
        uri: str | os.PathLike[str],
        path: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> ImportSummary:
        return sync(
            self._async.add_virtual_grib(
                uri, path, storage_options=storage_options, overwrite=overwrite, **options
            )
        )

    @_same_doc(AsyncRepo.add_virtual_tiff)
    def add_virtual_tiff(
        self,
        uri: str | os.PathLike[str],
        path: str,
        name: str | None = None,
        *,
        storage_options: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> ImportSummary:
        return sync(
            self._async.add_virtual_tiff(
                uri, path, name, storage_options=storage_options, overwrite=overwrite, **options
            )
        )

    @_same_doc(AsyncRepo.add_virtual_zarr)
    def add_virtual_zarr(
        self,
        uri: str | os.PathLike[str],
        path: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> ImportSummary:
        return sync(
            self._async.add_virtual_zarr(
                uri, path, storage_options=storage_options, overwrite=overwrite, **options
            )
        )

    @_same_doc(AsyncRepo.add_kerchunk_references)
    def add_kerchunk_references(
        self,
        refs: Mapping[str, Any] | str | os.PathLike[str],
        path: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        refs_storage_options: Mapping[str, Any] | None = None,
        remote_protocol: str | None = None,
        overwrite: bool = False,
    ) -> ImportSummary:
        return sync(
            self._async.add_kerchunk_references(
                refs,
                path,
                storage_options=storage_options,
                refs_storage_options=refs_storage_options,
                remote_protocol=remote_protocol,
                overwrite=overwrite,
            )
        )

    @_same_doc(AsyncRepo.verify)
    def verify(self, ref: str | None = None) -> VerifyReport:
        return sync(self._async.verify(ref))

    @_same_doc(AsyncRepo.export_kerchunk)
    def export_kerchunk(
        self,
        target: str | os.PathLike[str] | None = None,
        *,
        ref: str | None = None,
        format: str = "json",
        storage_options: dict[str, Any] | None = None,
    ) -> Any:
        return sync(
            self._async.export_kerchunk(
                target, ref=ref, format=format, storage_options=storage_options
            )
        )

    @_same_doc(AsyncRepo.import_catalog)
    def import_catalog(
        self,
        sources: Any,
        path: str | None = None,
        *,
        concat_dim: str = "time",
        workers: int | None = None,
        client: Any = None,
        message: str | None = None,
        batch_size: int | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> CatalogReport:
        return sync(
            self._async.import_catalog(
                sources,
                path,
                concat_dim=concat_dim,
                workers=workers,
                client=client,
                message=message,
                batch_size=batch_size,
                storage_options=storage_options,
            )
        )

    @_same_doc(AsyncRepo.append_catalog)
    def append_catalog(
        self,
        sources: Any,
        path: str | None = None,
        *,
        concat_dim: str = "time",
        workers: int | None = None,
        client: Any = None,
        message: str | None = None,
        batch_size: int | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> CatalogReport:
        return sync(
            self._async.append_catalog(
                sources,
                path,
                concat_dim=concat_dim,
                workers=workers,
                client=client,
                message=message,
                batch_size=batch_size,
                storage_options=storage_options,
            )
        )

    @_same_doc(AsyncRepo.tree)
    def tree(self, prefix: str = "", *, depth: int = 10, filter: str | None = None) -> RichTree:
        return sync(self._async.tree(prefix, depth=depth, filter=filter))

    @_same_doc(AsyncRepo.filter_metadata)
    def filter_metadata(self, expression: str) -> list[str]:
        return sync(self._async.filter_metadata(expression))

    def to_xarray(
        self, group: str | None = None, *, ref: str | None = None, **kwargs: Any
    ) -> xr.Dataset:
        """The group (default: root) as a lazy xarray Dataset.

        ``ref``: read a branch, tag or commit instead of the current session (which stays
        as it is). Other keyword arguments go to ``xarray.open_zarr``.
        """
        import xarray as xr

        store = self.store
        if ref is not None:
            session = sync(self._async.repository.session(ref, for_writing=False))
            store = ZarrchiveStore(session)
        kwargs.setdefault("consolidated", False)
        kwargs.setdefault("zarr_format", 3)
        return xr.open_zarr(store, group=normalize_path(group) if group else None, **kwargs)

    @_same_doc(AsyncRepo.serve)
    def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        open_browser: bool = False,
        authorize: Sequence[str] | None = None,
    ) -> None:
        # blocks until Ctrl-C, which it handles itself (not through the sync bridge)
        from .web import serve

        serve(self._async, host=host, port=port, open_browser=open_browser, authorize=authorize)
