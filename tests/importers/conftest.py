"""What the importer tests share: a fresh repository, readings of an imported group and of the
source file with the format's own xarray engine, the repository's state (to show that a
refused import changed nothing), an importer's ``scan`` called on its own, and a reader in a
new Python process.

This directory is a package, so this module is ``importers.conftest``: the test modules
import it as ``from .conftest import ...``, and it never shadows ``tests/conftest.py`` (the
module ``conftest``, where ``BUCKET`` and the S3 fixtures live).
"""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
import sys
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import xarray as xr

import zarrchive
from zarrchive.importers import ImportedTree
from zarrchive.sources import SourceStat, local_path, normalize_url


def memory_repo() -> zarrchive.Repo:
    """A new, empty repository in memory."""
    return zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}", author="tester")


def ours(repo: zarrchive.Repo, group: str) -> xr.Dataset:
    """``group`` read back through the repository (xarray's zarr v3 backend), loaded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return repo.to_xarray(group).load()


def native(path: Path, engine: str, group: str | None = None, **kw: Any) -> xr.Dataset:
    """The source file read by xarray's own ``engine`` (h5netcdf: ``phony_dims="sort"``),
    loaded."""
    if engine == "h5netcdf":
        kw.setdefault("phony_dims", "sort")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_dataset(path, engine=engine, group=group or None, **kw) as ds:
            return ds.load()


def repo_state(repo: zarrchive.Repo, location: Path | None = None) -> tuple[Any, ...]:
    """What a refused import must leave as it was: status, branches, tags, the members of
    the session's tree, the authorised sources and (for a local repository) its files."""
    files = sorted(str(p.relative_to(location)) for p in location.rglob("*")) if location else []
    members = sorted(k for k, _ in repo.root_group.members(max_depth=None))
    authorized = {k: dict(v) for k, v in repo.repository.sources.authorized.items()}
    return repo.status(), repo.branches, repo.tags, files, members, authorized


async def local_stat(url: str) -> SourceStat:
    """A local source's size and version, as the repository takes them."""
    st = os.stat(local_path(url) or url)
    return SourceStat(st.st_size, f"mtime_ns={st.st_mtime_ns}")


def scan_local(importer: ModuleType, path: Path, **options: Any) -> ImportedTree:
    """``importer.scan`` called on its own on a local file, as the repository calls it."""
    return asyncio.run(importer.scan(normalize_url(str(path)), stat=local_stat, **options))


_READER = """\
import pickle, sys, warnings, zarrchive
{setup}warnings.simplefilter("ignore")
location, container, out, *groups = sys.argv[1:]
repo = zarrchive.Repo.open(location{authorize})
datasets = {{group: repo.to_xarray(group).load() for group in groups}}
open(out, "wb").write(pickle.dumps(datasets))
"""


def run_fresh_reader(
    location: Path,
    container: str,
    groups: Sequence[str],
    out: Path,
    *,
    authorize: bool = True,
    setup: str = "",
) -> subprocess.CompletedProcess[str]:
    """A new Python process opens the repository at ``location`` with only ``container``
    authorised (``authorize=False``: nothing) and pickles ``{group: to_xarray(group).load()}``
    into ``out``. ``setup``: lines the process runs first."""
    script = _READER.format(
        setup=setup, authorize=", authorize_virtual=[container]" if authorize else ""
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(location), container, str(out), *groups],
        capture_output=True,
        text=True,
        timeout=180,
    )


def read_fresh(
    location: Path, container: str, groups: Sequence[str], out: Path, *, setup: str = ""
) -> dict[str, xr.Dataset]:
    """The groups as :func:`run_fresh_reader`'s process read them (which must succeed)."""
    done = run_fresh_reader(location, container, groups, out, setup=setup)
    assert done.returncode == 0, done.stderr
    datasets: dict[str, xr.Dataset] = pickle.loads(out.read_bytes())
    return datasets
