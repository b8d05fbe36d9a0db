"""Repo API: refs, history, diff, errors and reprs."""

from __future__ import annotations

import uuid
import warnings
from typing import Any

import numpy as np
import pytest

import zarrchive
import zarrchive._sync
from zarrchive import InvalidInputError, NotFoundError, ReadOnlyError


@pytest.fixture
def repo() -> zarrchive.Repo:
    return zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}", author="tester")


def test_create_open_and_errors(tmp_path) -> None:
    path = tmp_path / "r"
    with pytest.raises(NotFoundError, match="no zarrchive repository"):
        zarrchive.Repo.open(path)
    r = zarrchive.Repo.create(path)
    with pytest.raises(InvalidInputError, match="already exists"):
        zarrchive.Repo.create(path)
    again = zarrchive.Repo.open_or_create(path)
    assert again.commit_log[0].id == r.commit_log[0].id
    assert "branch 'main'" in repr(r) and str(path) in repr(r)
    with pytest.raises(InvalidInputError):
        zarrchive.Repo.open("")


def test_branches_tags_and_reset(repo: zarrchive.Repo) -> None:
    repo.root_group.attrs["v"] = 1
    c1 = repo.commit("one")
    repo.new_branch("dev")
    assert repo.session.branch == "dev"
    repo.root_group.attrs["v"] = 2
    c2 = repo.commit("two on dev")
    assert repo.branches == {"main": c1, "dev": c2}

    repo.tag("v1", c1, message="first")
    assert repo.tags == {"v1": c1}
    with pytest.raises(InvalidInputError, match="already exists"):
        repo.tag("v1", c2)
    with pytest.warns(UserWarning):
        repo.checkout("v1")
    assert repo.root_group.attrs["v"] == 1
    with pytest.raises(ReadOnlyError):
        repo.root_group.attrs["v"] = 3
    repo.delete_tag("v1")
    assert repo.tags == {}
    with pytest.raises(InvalidInputError, match="cannot be created again"):
        repo.tag("v1", c1)
    with pytest.raises(NotFoundError):
        repo.delete_tag("nope")

    repo.checkout("dev")
    with pytest.raises(InvalidInputError, match="checked out"):
        repo.delete_branch("dev")
    with pytest.raises(InvalidInputError, match="already exists"):
        repo.new_branch("main")
    repo.checkout("main")
    repo.delete_branch("dev")
    assert set(repo.branches) == {"main"}
    with pytest.raises(NotFoundError, match="'dev'"):
        repo.checkout("dev")
    # the commit is still there, and the name can be reused
    repo.reset_branch("main", c2)
    repo.checkout("main")
    assert repo.root_group.attrs["v"] == 2
    repo.new_branch("dev", c1)
    assert repo.branches["dev"] == c1

    with pytest.raises(NotFoundError, match="no branch, tag or commit"):
        repo.checkout("no-such-ref")
    with pytest.raises(InvalidInputError, match="invalid branch name"):
        repo.new_branch("bad/name")


def test_status_diff_and_commit_metadata(repo: zarrchive.Repo) -> None:
    root = repo.root_group
    a = root.create_array("a", shape=(20,), chunks=(5,), dtype="i4")
    a[:] = np.arange(20)
    root.create_group("g").attrs["x"] = 1
    c1 = repo.commit("data", metadata={"source": "test"})
    assert repo.commit_log[0].metadata == {"source": "test"}
    with pytest.raises(InvalidInputError, match="nothing to commit"):
        repo.commit("empty")
    with pytest.raises(InvalidInputError, match="non-empty message"):
        repo.root_group.attrs["y"] = 1
        repo.commit("  ")
    repo.discard_changes()

    repo.root_group["a"][5:10] = 0
    del repo.root_group["g"]
    repo.move("a", "b")
    st = repo.status()
    assert st.modified == ("b",) and st.deleted == ("g",)
    assert "modified: /b" in str(st) and "deleted:  /g" in str(st)
    c2 = repo.commit("change")
    d = repo.diff(c1, c2)
    assert d.deleted_groups == ("g",)
    assert d.moved == (("a", "b"),)
    assert d.updated_chunks == {"b": 1}
    assert "moved: /a -> /b" in str(d)
    assert repo.diff(c2, c2).is_empty


def test_checkout_with_uncommitted_changes_refuses(repo: zarrchive.Repo) -> None:
    repo.root_group.attrs["x"] = 1
    with pytest.raises(InvalidInputError, match="uncommitted"):
        repo.checkout("main")


def test_fresh_reader_sees_commits_of_other_writer(tmp_path) -> None:
    w = zarrchive.Repo.create(tmp_path / "r")
    r = zarrchive.Repo.open(tmp_path / "r")
    w.root_group.attrs["a"] = 1
    c = w.commit("a")
    assert "a" not in r.root_group.attrs  # the reader's session is pinned to its commit
    r.checkout("main")
    assert r.root_group.attrs["a"] == 1 and r.commit_log[0].id == c


def test_set_virtual_refs_reads_source_bytes(tmp_path) -> None:
    src = tmp_path / "src.bin"
    values = np.arange(64, dtype="<i4")
    src.write_bytes(b"HEADER--" + values.tobytes())
    repo = zarrchive.Repo.create(tmp_path / "r")
    arr = repo.root_group.create_array(
        "v", shape=(8, 8), chunks=(2, 8), dtype="<i4", compressors=None, fill_value=-1
    )
    coords = np.array([[i, 0] for i in range(4)])
    n = repo.set_virtual_refs(
        arr.path, coords, [src.as_uri()] * 4, 8 + np.arange(4) * 64, np.full(4, 64)
    )
    assert n == 4
    np.testing.assert_array_equal(repo.root_group["v"][:], values.reshape(8, 8))
    repo.commit("virtual")
    with pytest.raises(zarrchive.UnauthorizedSourceError, match="authorize_virtual="):
        zarrchive.Repo.open(tmp_path / "r").root_group["v"][:]
    allowed = [f"file://{tmp_path}/"]
    fresh = zarrchive.Repo.open(tmp_path / "r", authorize_virtual=allowed)
    np.testing.assert_array_equal(fresh.root_group["v"][:], values.reshape(8, 8))

    src.unlink()
    fresh = zarrchive.Repo.open(tmp_path / "r", authorize_virtual=allowed)
    with pytest.raises(zarrchive.SourceModifiedError, match="no longer exists"):
        fresh.root_group["v"][:]
    src.write_bytes(b"short")
    with pytest.raises(zarrchive.SourceModifiedError, match="shorter"):
        fresh.root_group["v"][:]


def test_set_virtual_refs_validation(repo: zarrchive.Repo) -> None:
    repo.root_group.create_array("v", shape=(4, 4), chunks=(2, 2), dtype="i4")
    ok = dict(urls="file:///x", offsets=np.zeros(1), lengths=np.ones(1))
    with pytest.raises(InvalidInputError, match="outside the chunk grid"):
        repo.set_virtual_refs("v", np.array([[2, 0]]), **ok)
    with pytest.raises(InvalidInputError, match=r"shape \(n, 2\)"):
        repo.set_virtual_refs("v", np.array([[0, 0, 0]]), **ok)
    with pytest.raises(InvalidInputError, match="group, not an array"):
        repo.set_virtual_refs("", np.array([[0, 0]]), **ok)
    with pytest.raises(NotFoundError):
        repo.set_virtual_refs("missing", np.array([[0, 0]]), **ok)
    with pytest.raises(InvalidInputError, match="offsets and lengths"):
        repo.set_virtual_refs("v", np.array([[0, 0]]), "file:///x", np.zeros(2), np.ones(1))
    assert not repo.status().modified or repo.status().modified == ("v",)


def test_large_array_gets_split_manifests(tmp_path) -> None:
    config = zarrchive.RepositoryConfig(manifest_split_size=100)
    repo = zarrchive.Repo.create(tmp_path / "r", config=config)
    arr = repo.root_group.create_array(
        "v", shape=(40, 40), chunks=(1, 1), dtype="u1", compressors=None
    )
    coords = np.stack(np.unravel_index(np.arange(1600), (40, 40)), axis=1)
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 7)
    repo.set_virtual_refs(arr.path, coords, src.as_uri(), np.arange(1600), np.ones(1600))
    repo.commit("many")
    node = repo.session.node("v")
    assert len(node.manifests) == 20 and node.split == (2, 40)
    fresh = zarrchive.Repo.open(tmp_path / "r", authorize_virtual=[f"file://{tmp_path}/"])
    np.testing.assert_array_equal(
        fresh.root_group["v"][:].ravel(), (np.arange(1600) % 256).astype("u1")
    )
    # one chunk's change rewrites one region's manifest only
    fresh.root_group["v"][39, 39] = 0
    fresh.commit("one chunk")
    after = fresh.session.node("v").manifests
    changed = {m.region for m in after} ^ {m.region for m in node.manifests}
    assert changed == set()
    assert sum(a.id != b.id for a, b in zip(after, node.manifests, strict=True)) == 1


def test_exception_tree() -> None:
    assert issubclass(zarrchive.NotFoundError, KeyError)
    assert issubclass(zarrchive.InvalidInputError, ValueError)
    assert issubclass(zarrchive.UnsupportedFeatureError, NotImplementedError)
    for name in (
        "NotFoundError",
        "ConflictError",
        "ReadOnlyError",
        "SourceModifiedError",
        "UnauthorizedSourceError",
        "UnsupportedFeatureError",
        "InvalidInputError",
        "FormatError",
        "StorageError",
    ):
        assert issubclass(getattr(zarrchive, name), zarrchive.ZarrchiveError)
    e = zarrchive.ConflictError("boom", ["a", "b"])
    assert e.conflicts == ["a", "b"] and "a" in str(e)


def test_exported_members() -> None:
    assert sorted(zarrchive.__all__) == sorted(
        [
            "AsyncRepo",
            "CatalogReport",
            "CommitInfo",
            "CommitLog",
            "ConflictError",
            "Diff",
            "FormatError",
            "GCReport",
            "ImportSummary",
            "InvalidInputError",
            "NotFoundError",
            "ReadOnlyError",
            "Repo",
            "RepositoryConfig",
            "SessionInfo",
            "SourceModifiedError",
            "Status",
            "StorageError",
            "UnauthorizedSourceError",
            "UnsupportedFeatureError",
            "VerifyReport",
            "ZarrchiveError",
            "ZarrchiveStore",
            "__version__",
        ]
    )
    for name in zarrchive.__all__:
        assert hasattr(zarrchive, name)


def test_sync_repo_mirrors_async_repo() -> None:
    import inspect

    coros = {
        n
        for n, f in inspect.getmembers(zarrchive.AsyncRepo, inspect.iscoroutinefunction)
        if not n.startswith("_")
    }
    for name in coros - {"open_root_group"}:
        assert callable(getattr(zarrchive.Repo, name)), name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert zarrchive.Repo.commit.__doc__ == zarrchive.AsyncRepo.commit.__doc__


#: public coroutines of AsyncRepo that Repo offers otherwise (``Repo.root_group``)
_NOT_MIRRORED = {"open_root_group"}
_CONSTRUCTORS = {"create", "open", "open_or_create"}


def _public_coroutines() -> dict[str, Any]:
    import inspect

    return {
        n: f
        for n, f in inspect.getmembers(zarrchive.AsyncRepo, inspect.iscoroutinefunction)
        if not n.startswith("_") and n not in _NOT_MIRRORED
    }


def test_sync_repo_signatures_match_async_repo() -> None:
    """Each public coroutine of AsyncRepo is a blocking Repo method with the same parameters
    (names, kinds, defaults, annotations), return annotation (a Repo for the constructors)
    and docstring. Add the Repo method when this fails for a new coroutine."""
    import inspect

    coros = _public_coroutines()
    assert {"commit", "add_virtual_grib", "import_catalog", "garbage_collect"} <= set(coros)
    for name, coro in coros.items():
        assert name in vars(zarrchive.Repo), f"Repo lacks {name}(), which AsyncRepo has"
        method = getattr(zarrchive.Repo, name)
        assert not inspect.iscoroutinefunction(method), name
        want, got = inspect.signature(coro), inspect.signature(method)
        assert list(got.parameters.values()) == list(want.parameters.values()), name
        expected_return = "Repo" if name in _CONSTRUCTORS else want.return_annotation
        assert got.return_annotation == expected_return, name
        assert isinstance(inspect.getattr_static(zarrchive.Repo, name), classmethod) == (
            name in _CONSTRUCTORS
        ), name
        assert coro.__doc__ and method.__doc__ == coro.__doc__, name


def test_repo_methods_are_written_out() -> None:
    """Type checkers and editors read Repo's class body: its methods must be defined there,
    not attached at import."""
    import ast
    import inspect

    import zarrchive.repo

    tree = ast.parse(inspect.getsource(zarrchive.repo))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Repo"]
    defined = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    assert set(_public_coroutines()) <= defined


def test_package_is_typed() -> None:
    from pathlib import Path

    assert (Path(zarrchive.__file__).parent / "py.typed").is_file()


def test_each_import_method_takes_its_formats(tmp_path) -> None:
    from pathlib import Path

    import zarr

    samples = Path(__file__).resolve().parents[1] / "sample_data"
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    nc3, grib = samples / "netcdf3_classic_scipy.nc", samples / "grib2_hypercube.grib2"
    with pytest.raises(InvalidInputError, match="is a netcdf3 source.*use add_virtual_netcdf"):
        repo.add_virtual_grib(nc3, "g")
    with pytest.raises(InvalidInputError, match="is a grib source.*use add_virtual_grib"):
        repo.add_virtual_netcdf(grib, "g")
    with pytest.raises(InvalidInputError, match="is a netcdf3 source, not hdf5"):
        repo.add_virtual_hdf(nc3, "g")
    store = tmp_path / "v2.zarr"
    zarr.create_array(store, shape=(4,), chunks=(2,), dtype="i4", zarr_format=2)
    with pytest.raises(InvalidInputError, match="is a zarr_v2 source.*use add_virtual_zarr"):
        repo.add_virtual_tiff(store, "g")
    with pytest.raises(zarrchive.UnsupportedFeatureError, match="unrecognised format"):
        repo.add_virtual_netcdf(samples / "raw_grid_f4le.bin", "g")
    with pytest.raises(NotFoundError, match="does not exist"):
        repo.add_virtual_netcdf(tmp_path / "missing.nc", "g")
    assert not repo.status().modified
    assert repo.add_virtual_netcdf(nc3, "nc").arrays > 0
    assert repo.add_virtual_zarr(store, "z").arrays == 1


async def test_async_repo_in_a_loop() -> None:
    repo = await zarrchive.AsyncRepo.create(f"memory://{uuid.uuid4().hex}")
    group = await repo.open_root_group()
    await group.update_attributes({"x": 1})
    cid = await repo.commit("async")
    log = await repo.get_commit_log()
    assert log[0].id == cid


def test_sharded_arrays_read_by_range(tmp_path) -> None:
    repo = zarrchive.Repo.create(tmp_path / "r")
    a = repo.root_group.create_array(
        "s", shape=(64, 64), chunks=(8, 8), shards=(32, 32), dtype="f4"
    )
    values = np.arange(64 * 64, dtype="f4").reshape(64, 64)
    a[:] = values
    repo.commit("sharded")
    fresh = zarrchive.Repo.open(tmp_path / "r")
    np.testing.assert_array_equal(fresh.root_group["s"][:], values)
    np.testing.assert_array_equal(fresh.root_group["s"][3:11, 40:45], values[3:11, 40:45])
    store = fresh.store
    from zarr.abc.store import RangeByteRequest, SuffixByteRequest
    from zarr.core.buffer import default_buffer_prototype

    full = zarrchive._sync.sync(store.get("s/c/0/0", default_buffer_prototype())).to_bytes()
    part = zarrchive._sync.sync(
        store.get("s/c/0/0", default_buffer_prototype(), RangeByteRequest(10, 30))
    ).to_bytes()
    tail = zarrchive._sync.sync(
        store.get("s/c/0/0", default_buffer_prototype(), SuffixByteRequest(16))
    ).to_bytes()
    assert part == full[10:30] and tail == full[-16:]
    assert zarrchive._sync.sync(store.getsize("s/c/0/0")) == len(full)
