"""The ``zarrchive`` command-line tool: the Repo verbs for scripts and shells.

Every command opens the repository given by ``--repo`` (or ``$ZARRCHIVE_REPO``, default the
current directory) and does one thing; commands that change data commit in the same call
(there is no hidden session state between invocations). Errors print one line to stderr and
exit with 1; ``--json`` makes output machine-readable. Built on click.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from .errors import ZarrchiveError
from .importers import FORMATS

if TYPE_CHECKING:
    from .repo import Repo

__all__ = ["main"]


def _kv(values: tuple[str, ...], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{what} must look like KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


class Context:
    def __init__(
        self,
        repo: str,
        options: dict[str, Any],
        authorize: tuple[str, ...],
        as_json: bool,
        author: str | None,
    ) -> None:
        self.location = repo
        self.options = options or None
        self.authorize = list(authorize) or None
        self.as_json = as_json
        self.author = author

    def open(self, ref: str = "main") -> Repo:
        from .repo import Repo

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not the tip of a branch.*")
            return Repo.open(
                self.location,
                storage_options=self.options,
                author=self.author,
                ref=ref,
                authorize_virtual=self.authorize,
            )

    def emit(self, data: Any, text: Callable[[], str] | str) -> None:
        if self.as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            click.echo(text() if callable(text) else text)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--repo",
    "-r",
    envvar="ZARRCHIVE_REPO",
    default=".",
    show_default=True,
    help="Repository location: a local path, memory://NAME or an fsspec URL.",
)
@click.option(
    "--storage-option",
    "-o",
    multiple=True,
    metavar="KEY=VALUE",
    help="Storage option for the repository location (repeatable).",
)
@click.option(
    "--authorize",
    "-a",
    multiple=True,
    metavar="PREFIX",
    help="Container prefix whose virtual chunks may be read (repeatable).",
)
@click.option("--author", envvar="ZARRCHIVE_AUTHOR", default=None, help="Commit author.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.pass_context
def cli(
    ctx: click.Context,
    repo: str,
    storage_option: tuple[str, ...],
    authorize: tuple[str, ...],
    author: str | None,
    as_json: bool,
) -> None:
    """Versioned, virtual Zarr repositories."""
    ctx.obj = Context(repo, _kv(storage_option, "--storage-option"), authorize, as_json, author)


@cli.command()
@pass_ctx
def init(c: Context) -> None:
    """Create a new repository at --repo."""
    from .repo import Repo

    repo = Repo.create(c.location, storage_options=c.options, author=c.author)
    commit = repo.commit_log[0].id
    c.emit(
        {"location": c.location, "commit": commit},
        f"created repository at {c.location} (main at {commit})",
    )


#: ``import KIND`` runs ``Repo.add_virtual_KIND`` (the registry says which formats each
#: takes), or ``Repo.add_kerchunk_references`` for ``kerchunk``
_IMPORTERS = (
    *dict.fromkeys(
        m.removeprefix("add_virtual_") for spec in FORMATS.values() for m in spec.methods
    ),
    "kerchunk",
)


@cli.command("import")
@click.argument("kind", type=click.Choice(_IMPORTERS))
@click.argument("source")
@click.argument("path")
@click.option("--branch", "-b", default="main", show_default=True)
@click.option("--message", "-m", default=None, help="Commit message.")
@click.option(
    "--source-option",
    "-s",
    multiple=True,
    metavar="KEY=VALUE",
    help="Storage option for the source (repeatable).",
)
@click.option("--name", default=None, help="TIFF only: group name under PATH.")
@click.option("--overwrite", is_flag=True, help="Replace what is at PATH.")
@pass_ctx
def import_(
    c: Context,
    kind: str,
    source: str,
    path: str,
    branch: str,
    message: str | None,
    source_option: tuple[str, ...],
    name: str | None,
    overwrite: bool,
) -> None:
    """Import SOURCE (a file, store or reference set) as virtual chunks at PATH and commit."""
    repo = c.open(branch)
    opts = _kv(source_option, "--source-option") or None
    if kind == "kerchunk":
        summary = repo.add_kerchunk_references(
            source, path, storage_options=opts, overwrite=overwrite
        )
    elif kind == "tiff":
        summary = repo.add_virtual_tiff(
            source, path, name, storage_options=opts, overwrite=overwrite
        )
    else:
        method = getattr(repo, f"add_virtual_{kind}")
        summary = method(source, path, storage_options=opts, overwrite=overwrite)
    commit = repo.commit(message or f"import {source} at /{path.strip('/')}")
    c.emit({"commit": commit, **_asdict(summary)}, f"{summary}\ncommitted {commit}")


def _asdict(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(obj)


def _catalog(
    c: Context,
    append: bool,
    sources: tuple[str, ...],
    path: str | None,
    concat_dim: str,
    workers: int | None,
    branch: str,
    message: str | None,
    batch_size: int | None,
    source_option: tuple[str, ...],
) -> None:
    repo = c.open(branch)
    method = repo.append_catalog if append else repo.import_catalog
    srcs: Any = sources[0] if len(sources) == 1 else list(sources)
    report = method(
        srcs,
        path,
        concat_dim=concat_dim,
        workers=workers,
        message=message,
        batch_size=batch_size,
        storage_options=_kv(source_option, "--source-option") or None,
    )
    c.emit(_asdict(report), lambda: str(report))


def _catalog_command(name: str, append: bool) -> None:
    @cli.command(name)
    @click.argument("sources", nargs=-1, required=True)
    @click.option("--path", "-p", default=None, help="Dataset path (default: the catalog's).")
    @click.option("--concat-dim", default="time", show_default=True)
    @click.option("--workers", "-w", type=int, default=None)
    @click.option("--branch", "-b", default="main", show_default=True)
    @click.option("--message", "-m", default=None)
    @click.option("--batch-size", type=int, default=None)
    @click.option("--source-option", "-s", multiple=True, metavar="KEY=VALUE")
    @pass_ctx
    def command(
        c: Context,
        sources: tuple[str, ...],
        path: str | None,
        concat_dim: str,
        workers: int | None,
        branch: str,
        message: str | None,
        batch_size: int | None,
        source_option: tuple[str, ...],
    ) -> None:
        _catalog(
            c,
            append,
            sources,
            path,
            concat_dim,
            workers,
            branch,
            message,
            batch_size,
            source_option,
        )

    command.__doc__ = (
        "Add SOURCES (files, a glob, a list file or a catalog) after the end of a dataset."
        if append
        else "Combine SOURCES (files, a glob, a list file or a catalog) into one dataset."
    )


_catalog_command("import-catalog", False)
_catalog_command("append-catalog", True)


@cli.command()
@click.option("--branch", "-b", default="main", show_default=True)
@pass_ctx
def status(c: Context, branch: str) -> None:
    """Branch tip and the persisted sessions that can still be joined."""
    repo = c.open(branch)
    sessions = repo.list_active_sessions()
    data = {
        "branch": branch,
        "commit": repo.session.snapshot_id,
        "active_sessions": [_asdict(s) for s in sessions],
    }

    def text() -> str:
        lines = [f"branch {branch} at {repo.session.snapshot_id}"]
        lines += [f"active session {s}" for s in sessions] or ["no active sessions"]
        return "\n".join(lines)

    c.emit(data, text)


@cli.command()
@click.option("--ref", default="main", show_default=True)
@click.option("--limit", "-n", type=int, default=None)
@pass_ctx
def log(c: Context, ref: str, limit: int | None) -> None:
    """Commits reachable from REF, newest first."""
    repo = c.open(ref)
    commits = repo.get_commit_log(limit=limit)
    c.emit([_asdict(x) for x in commits], lambda: str(commits))


@cli.command()
@click.argument("name", required=False)
@click.option("--from", "start", default=None, help="Commit, branch or tag to branch from.")
@click.option("--delete", "-d", is_flag=True)
@pass_ctx
def branch(c: Context, name: str | None, start: str | None, delete: bool) -> None:
    """List branches, create NAME, or delete it (-d)."""
    repo = c.open()
    if name is None:
        branches = repo.branches
        c.emit(branches, lambda: "\n".join(f"{k}  {v}" for k, v in branches.items()))
    elif delete:
        if name == "main":
            repo.checkout(repo.commit_log[0].id, for_writing=False)
        repo.delete_branch(name)
        c.emit({"deleted": name}, f"deleted branch {name}")
    else:
        commit = repo.new_branch(name, start)
        c.emit({"branch": name, "commit": commit}, f"created branch {name} at {commit}")


@cli.command()
@click.argument("name", required=False)
@click.option("--commit", "commit_id", default=None, help="Commit, branch or tag (default main).")
@click.option("--message", "-m", default=None)
@click.option("--delete", "-d", is_flag=True)
@pass_ctx
def tag(
    c: Context, name: str | None, commit_id: str | None, message: str | None, delete: bool
) -> None:
    """List tags, create NAME, or delete it (-d)."""
    repo = c.open()
    if name is None:
        tags = repo.tags
        c.emit(tags, lambda: "\n".join(f"{k}  {v}" for k, v in tags.items()) or "(no tags)")
    elif delete:
        repo.delete_tag(name)
        c.emit({"deleted": name}, f"deleted tag {name}")
    else:
        commit = repo.tag(name, commit_id, message=message)
        c.emit({"tag": name, "commit": commit}, f"tagged {commit} as {name}")


@cli.command()
@click.argument("ref")
@pass_ctx
def checkout(c: Context, ref: str) -> None:
    """Resolve REF (branch, tag or commit) and show what it holds."""
    repo = c.open(ref)
    s = repo.session
    data = {"ref": ref, "commit": s.snapshot_id, "writable": s.writable, "branch": s.branch}
    c.emit(
        data,
        lambda: (
            f"{ref} is commit {s.snapshot_id}"
            + (f" (tip of branch {s.branch})" if s.branch else " (read-only: not a branch tip)")
        ),
    )


@cli.command()
@click.argument("prefix", default="")
@click.option("--ref", default="main", show_default=True)
@click.option("--depth", default=10, show_default=True)
@click.option("--filter", "filter_", default=None, help="JMESPath expression on attributes.")
@pass_ctx
def tree(c: Context, prefix: str, ref: str, depth: int, filter_: str | None) -> None:
    """The hierarchy at REF as a tree."""
    repo = c.open(ref)
    if c.as_json:
        paths = repo.filter_metadata(filter_) if filter_ else sorted(repo.session.nodes)
        c.emit([p for p in paths if p.startswith(prefix.strip("/"))], "")
        return
    from rich.console import Console

    Console().print(repo.tree(prefix, depth=depth, filter=filter_))


@cli.command()
@click.argument("from_ref")
@click.argument("to_ref")
@pass_ctx
def diff(c: Context, from_ref: str, to_ref: str) -> None:
    """What changed between two commits, branches or tags."""
    d = c.open().diff(from_ref, to_ref)
    c.emit(_asdict(d), lambda: str(d))


@cli.command()
@click.option("--ref", default="main", show_default=True)
@pass_ctx
def verify(c: Context, ref: str) -> None:
    """Stale or missing virtual-chunk sources (exit 1 if any)."""
    report = c.open(ref).verify()
    c.emit(_asdict(report), lambda: str(report))
    if not report.ok:
        sys.exit(1)


@cli.command("export-kerchunk")
@click.argument("target")
@click.option("--ref", default="main", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["json", "parquet"]), default="json")
@pass_ctx
def export_kerchunk(c: Context, target: str, ref: str, fmt: str) -> None:
    """Write a kerchunk reference set of REF to TARGET."""
    repo = c.open(ref)
    repo.export_kerchunk(target, ref=ref, format=fmt)
    c.emit({"target": target, "ref": ref, "format": fmt}, f"wrote {fmt} references to {target}")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Report what would be deleted.")
@click.option(
    "--expire-older-than",
    type=float,
    default=None,
    metavar="DAYS",
    help="First expire commits older than DAYS (not branch tips or tags).",
)
@pass_ctx
def gc(c: Context, dry_run: bool, expire_older_than: float | None) -> None:
    """Delete objects no branch, tag or live session reaches."""
    repo = c.open()
    expired: set[str] = set()
    if expire_older_than is not None:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=expire_older_than)
        expired = repo.expire_snapshots(cutoff) if not dry_run else set()
    report = repo.garbage_collect(dry_run=dry_run)
    data = {"expired": sorted(expired), "report": _asdict(report)}
    c.emit(data, lambda: (f"expired {len(expired)} commits\n" if expired else "") + str(report))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", "-p", default=8000, show_default=True, help="Port (0: any free one).")
@click.option("--open", "open_browser", is_flag=True, help="Open the overview in a browser.")
@click.option(
    "--authorize",
    "-a",
    "serve_authorize",
    multiple=True,
    metavar="PREFIX",
    help="Container prefix whose virtual chunks the pages may read (repeatable).",
)
@pass_ctx
def serve(
    c: Context, host: str, port: int, open_browser: bool, serve_authorize: tuple[str, ...]
) -> None:
    """Serve a read-only web view of the repository (needs the 'web' extra)."""
    from .web import require
    from .web import serve as run

    try:
        require()
    except ImportError as exc:
        raise click.ClickException(str(exc)) from exc
    run(
        c.open(),
        host=host,
        port=port,
        open_browser=open_browser,
        authorize=[*(c.authorize or []), *serve_authorize],
    )


@cli.command()
@click.argument("path", default="demo-repo")
def demo(path: str) -> None:
    """Run the README's main job on a local repository at PATH."""
    from .demo import run

    run(path)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="zarrchive", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except ZarrchiveError as exc:
        click.echo(f"error: {type(exc).__name__}: {str(exc).splitlines()[0]}", err=True)
        return 1
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
