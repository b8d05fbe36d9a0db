"""Quick-look reads: decimated to the image size, only the chunks a slice needs, within the
size and time bounds (and saying when they cut), never touching unauthorised sources."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

import zarrchive
from zarrchive._sync import sync
from zarrchive.errors import UnsupportedFeatureError
from zarrchive.web import create_app
from zarrchive.web._arrays import ArrayInfo, Selection, parse_selection
from zarrchive.web._quicklook import plan, read
from zarrchive.web._view import Limits, RepoView, ensure_array


def info(shape: tuple[int, ...], chunks: tuple[int, ...], dtype: str = "float64") -> ArrayInfo:
    return ArrayInfo(
        path="a",
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        grid=tuple(-(-s // c) for s, c in zip(shape, chunks, strict=True)),
        dims=tuple(f"d{i}" for i in range(len(shape))),
        named_dims=True,
        codecs=(),
        fill_value="0",
        attributes={},
        stored_chunks=0,
    )


def test_plan_decimates_to_the_image_size() -> None:
    a = info((10_000, 50), (100, 50))
    p = plan(a, parse_selection(a, {}), Limits(max_samples=800))
    assert int(p.samples[0][1] - p.samples[0][0]) == 13  # ceil(10000 / 800)
    assert len(p.samples[0]) <= 800 and len(p.samples[1]) == 50
    assert p.chunks == 100 and p.notes == ()


def test_plan_reads_only_the_chunks_of_the_slice() -> None:
    a = info((6, 40, 40), (1, 10, 10))
    p = plan(a, parse_selection(a, {"i0": "4"}), Limits())
    assert p.index[0] == 4 and p.chunks == 16  # one time step: 4 x 4 chunks, not 6 x 16


def test_plan_samples_coarser_beyond_the_chunk_bound() -> None:
    a = info((1000, 1000), (10, 10))
    p = plan(a, parse_selection(a, {}), Limits(max_samples=1000, max_chunks=100))
    assert p.chunks <= 100
    assert p.notes and "sampled coarser" in p.notes[0] and "at most 100 chunks" in p.notes[0]
    assert len(p.samples[0]) * len(p.samples[1]) >= 50  # most of the bound is used
    # still the whole extent, sampled
    assert p.samples[0][-1] > 900 and p.samples[1][-1] > 900


def test_plan_cuts_the_extent_beyond_the_size_bound() -> None:
    a = info((1000, 100), (100, 100))  # 80 kB chunks
    p = plan(a, parse_selection(a, {}), Limits(max_bytes=250_000))
    assert p.chunks == 3 and p.nbytes == 240_000
    assert p.samples[0][-1] == 298  # every 2nd row (1000 rows, 800 samples at most)
    assert "cut by the size bound" in p.notes[0] and "d0 0..299 of 1000" in p.notes[0]


def test_plan_refuses_a_chunk_larger_than_the_bound() -> None:
    a = info((4000, 4000), (4000, 4000))
    p = plan(a, parse_selection(a, {}), Limits(max_bytes=1 << 20))
    assert p.refused is not None and "decodes to 122 MiB" in p.refused


def test_plan_refuses_what_is_not_numbers() -> None:
    a = info((4,), (4,), dtype="null_terminated_bytes")
    with pytest.raises(UnsupportedFeatureError, match="numbers only"):
        plan(a, Selection(None, 0, (0,)), Limits())


def _repo_with(tmp_path, values, chunks, **attrs):  # type: ignore[no-untyped-def]
    repo = zarrchive.Repo.create(tmp_path / "repo", author="tester")
    arr = repo.root_group.create_array(
        "a", shape=values.shape, chunks=chunks, dtype=values.dtype, attributes=attrs
    )
    arr[:] = values
    repo.commit("data")
    return repo


def _read(repo, limits, params=None):  # type: ignore[no-untyped-def]
    from zarrchive.web._arrays import array_info

    async def go():  # type: ignore[no-untyped-def]
        view = RepoView(repo, limits=limits)
        at = await view.at("main")
        node = ensure_array(at, "a")
        a = array_info(node)
        p = plan(a, parse_selection(a, params or {}), limits)
        return await read(at, node, a, p, limits)

    return sync(go())


def test_read_gives_the_strided_values(tmp_path) -> None:  # type: ignore[no-untyped-def]
    values = np.random.default_rng(0).normal(size=(300, 2000)).astype("f4")
    repo = _repo_with(tmp_path, values, (50, 100))
    ql = _read(repo, Limits(max_samples=100))
    np.testing.assert_array_equal(ql.values, values[::3, ::20].astype("f8"))
    assert ql.notes == []


def test_read_applies_cf_packing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    raw = np.array([0, 2, -1, 4], dtype="i2")
    repo = _repo_with(tmp_path, raw, (2,), scale_factor=0.5, add_offset=10, _FillValue=-1)
    ql = _read(repo, Limits())
    np.testing.assert_array_equal(ql.values, [10.0, 11.0, np.nan, 12.0])


def test_time_bound_cuts_and_says_so(tmp_path) -> None:  # type: ignore[no-untyped-def]
    values = np.arange(64, dtype="f8").reshape(8, 8)
    repo = _repo_with(tmp_path, values, (2, 8))
    ql = _read(repo, Limits(max_seconds=0))
    assert np.isnan(ql.values).all()
    assert "cut by the time bound (0 s)" in ql.notes[0]
    with TestClient(create_app(repo, limits=Limits(max_seconds=0))) as c:
        r = c.get("/ref/main/quicklook/a")
    assert r.status_code == 200 and "time bound" in r.headers["x-zarrchive-cut"]


def test_size_bound_shows_on_the_page_and_the_image(tmp_path) -> None:  # type: ignore[no-untyped-def]
    values = np.random.default_rng(1).normal(size=(400, 40))
    repo = _repo_with(tmp_path, values, (100, 40))
    with TestClient(create_app(repo, limits=Limits(max_bytes=70_000))) as c:
        page = c.get("/ref/main/array/a").text
        image = c.get("/ref/main/quicklook/a")
    assert "cut by the size bound" in page and "dim_0 0..199 of 400" in page
    assert "size bound" in image.headers["x-zarrchive-cut"]


def test_unauthorised_chunks_are_never_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A virtual source that was deleted: reading it would fail with 409 (source gone);
    the unauthorised reader is refused (403) before any read."""
    source = tmp_path / "src" / "raw.bin"
    source.parent.mkdir()
    source.write_bytes(np.arange(40, dtype="<f4").tobytes())
    repo = zarrchive.Repo.create(tmp_path / "repo", author="tester")
    arr = repo.root_group.create_array(
        "v", shape=(4, 10), chunks=(1, 10), dtype="<f4", compressors=None
    )
    coords = np.array([[t, 0] for t in range(4)])
    repo.set_virtual_refs(arr.path, coords, source.as_uri(), np.arange(4) * 40, np.full(4, 40))
    repo.commit("virtual")
    source.unlink()
    container = source.parent.as_uri() + "/"
    reader = zarrchive.Repo.open(tmp_path / "repo")
    with TestClient(create_app(reader)) as c:
        r = c.get("/ref/main/quicklook/v")
        assert r.status_code == 403 and f"--authorize {container}" in r.text
        assert "not authorised" in c.get("/ref/main/array/v").text
    with TestClient(create_app(reader, authorize=[container])) as c:
        r = c.get("/ref/main/quicklook/v")
        assert r.status_code == 409 and "no longer exists" in r.text
        report = c.get("/ref/main/array/v?verify=1").text
        assert "missing: <code>" + source.as_uri() in report
