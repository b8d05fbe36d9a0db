"""Every route of ``zarrchive serve`` through Starlette's test client: status codes, the
content each page must show, 404 for unknown refs and paths, 405 for every write method,
and that serving leaves the repository exactly as it was."""

from __future__ import annotations

import io
import re
from html import unescape

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

import zarrchive
from zarrchive._sync import sync
from zarrchive.web import create_app
from zarrchive.web._plots import KIND_COLOURS

from .web_sample import BROWSED_ARRAY, BROWSED_VIRTUAL, TIFF, Sample, open_repo

GRIB_T2M = "samples/grib/2t_heightAboveGround/t2m"


def routes(sample: Sample) -> list[str]:
    return [
        "/",
        "/history",
        f"/commit/{sample.fix}",
        "/diff",
        f"/diff?from=v1&to={sample.fix}",
        "/ref/main/tree",
        "/ref/v1/tree/samples",
        f"/ref/v1/array/{BROWSED_ARRAY}",
        f"/ref/v1/quicklook/{BROWSED_ARRAY}",
        f"/ref/v1/chunkmap/{BROWSED_ARRAY}",
        "/static/style.css",
    ]


def legend(html: str) -> dict[str, int]:
    found = re.findall(r'data-kind="([a-z ]+)">([\d,]+)<', html)
    return {k: int(v.replace(",", "")) for k, v in found}


def png(response) -> Image.Image:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content)).convert("RGB")


def pixels_of(image: Image.Image, colour: str) -> int:
    rgb = np.asarray(image).astype(int)
    want = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb - want).sum(axis=2) < 12).sum())


# ---------------------------------------------------------------------- every route
def test_every_route_answers_get_and_head(client: TestClient, sample: Sample) -> None:
    for url in routes(sample):
        assert client.get(url).status_code == 200, url
        head = client.head(url)
        assert head.status_code == 200, url
        assert head.content == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_no_route_accepts_a_write_method(client: TestClient, sample: Sample, method: str) -> None:
    for url in routes(sample):
        r = client.request(method, url)
        assert r.status_code == 405, (method, url)
        assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
    r = client.request(method, "/")
    assert "read-only" in r.text


def test_serving_writes_nothing(sample: Sample) -> None:
    repo = open_repo(sample.location)
    storage = repo.repository.storage

    def objects() -> set[str]:
        async def keys() -> set[str]:
            return {k async for k in storage.list("")}

        return sync(keys())

    before = objects()
    app = create_app(repo, authorize=[sample.container])
    with TestClient(app) as c:
        for url in routes(sample):
            c.get(url)
        c.get(f"/ref/v1/array/{BROWSED_ARRAY}?verify=1")
    assert objects() == before
    sessions = list(app.state.view._sessions.values())
    assert sessions and not any(s.writable for s in sessions)
    assert not app.state.view._repo.session.writable


def test_unknown_paths_refs_and_arrays_are_404(client: TestClient, sample: Sample) -> None:
    for url in [
        "/nothing/here",
        "/commit/no-such-ref",
        "/commit/aaaaaaaaaaaaaaaaaaaa",
        "/ref/no-such-ref/tree",
        "/ref/main/tree/no/such/group",
        "/ref/main/array/no/such/array",
        "/ref/main/array/surface",  # a group
        "/ref/no-such-ref/array/surface/t2m",
        "/ref/main/quicklook/no/such/array",
        "/ref/main/chunkmap/no/such/array",
        "/diff?from=main&to=no-such-ref",
        "/static/no-such-file.css",
    ]:
        r = client.get(url)
        assert r.status_code == 404, url
    r = client.get("/ref/no-such-ref/tree")
    assert "no branch, tag or commit named 'no-such-ref'" in unescape(r.text)
    assert "<h1>" in r.text  # a page, not a bare traceback


# ---------------------------------------------------------------------- pages
def test_overview(client: TestClient, sample: Sample) -> None:
    html = client.get("/").text
    assert sample.location in html
    for name, commit in [
        ("main", sample.main_tip),
        ("fix-units", sample.fix),
        ("v1", sample.imported),
    ]:
        assert f">{name}</a>" in html
        assert f'href="/commit/{commit}"' in html
    assert "t2m in degC" in html and "retitle" in html
    assert sample.container in html and "authorised" in html
    sizes = dict(re.findall(r"<tr><td>(\w+)</td><td>([\d,]+)</td>", html))
    assert sizes["snapshots"] == "4"
    assert sizes["config"] == "1"
    assert int(sizes["manifests"]) > 0


def test_overview_never_shows_credentials(sample: Sample) -> None:
    repo = open_repo(sample.location, authorize_virtual={sample.container: {"secret": "TOPSECRET"}})
    with TestClient(create_app(repo)) as c:
        html = c.get("/").text
    assert "TOPSECRET" not in html
    assert "authorised" in html


def test_overview_lists_active_sessions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = zarrchive.Repo.create(tmp_path / "repo", author="tester")
    info = repo.create_session(message="long import")
    repo.root_group.attrs["x"] = 1  # a persisted change makes the session joinable
    with TestClient(create_app(zarrchive.Repo.open(tmp_path / "repo"))) as c:
        html = c.get("/").text
    assert info.id in html and "long import" in html


def test_history_draws_every_branch_and_tag(client: TestClient, sample: Sample) -> None:
    html = client.get("/history").text
    for commit in (sample.first, sample.imported, sample.fix, sample.main_tip):
        assert f'href="/commit/{commit}"' in html
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert svg.count("<circle") == 4
    for name in ("main", "fix-units", "v1"):
        assert f">{name}</text>" in svg
    # fix-units has a lane of its own: two distinct dot columns
    assert len(set(re.findall(r'<circle class="dot[^"]*" cx="([\d.]+)"', svg))) == 2
    assert "ticket=16" in html


def test_history_pages(client: TestClient, sample: Sample) -> None:
    first = client.get("/history?per_page=3").text
    second = client.get("/history?per_page=3&page=1").text
    assert first.count("<circle") == 3 and second.count("<circle") == 1
    assert 'href="/history?page=1"' in first and "older" in first
    assert "newer" in second and "older" not in second
    assert sample.first in second and f'href="/commit/{sample.first}"' not in first
    assert client.get("/history?page=-1").status_code == 400
    assert client.get("/history?per_page=abc").status_code == 400


def test_commit_page_shows_its_diff(client: TestClient, sample: Sample) -> None:
    for ref in (sample.fix, "fix-units"):
        html = client.get(f"/commit/{ref}").text
        assert "t2m in degC" in html and sample.fix in html
        assert "ticket" in html and "16" in html
        assert f'href="/commit/{sample.imported}"' in html  # parent
        assert "attributes.units" in html
        assert "&#34;K&#34;" in html and "&#34;degC&#34;" in html
        assert f'href="/diff?from={sample.imported}&amp;to={sample.fix}"' in html
    chunks = client.get(f"/commit/{sample.fix}").text
    row = re.search(r"/surface/t2m</a></td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", chunks)
    assert row is not None and row.groups() == ("1", "4", "4")
    assert "first commit" in client.get(f"/commit/{sample.first}").text


def test_diff_of_any_two_refs(client: TestClient, sample: Sample) -> None:
    html = client.get(f"/diff?from={sample.first}&to=v1").text
    assert f'href="/ref/v1/array/{BROWSED_ARRAY}">/{BROWSED_ARRAY}</a>' in html
    assert f"({BROWSED_VIRTUAL:,} chunks)" in html
    assert 'href="/ref/v1/tree/samples/grib"' in html  # a new group
    back = client.get(f"/diff?from=v1&to={sample.first}").text
    assert "Deleted" in back and f"/{BROWSED_ARRAY}" in back
    assert "no changes" in client.get("/diff?from=v1&to=v1").text
    r = client.get("/diff?from=v1")
    assert r.status_code == 400 and "needs two refs" in r.text
    assert 'option value="fix-units"' in client.get("/diff").text


def test_diff_shows_moves_and_attribute_changes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = zarrchive.Repo.create(tmp_path / "repo", author="tester")
    a = repo.root_group.create_array("a", shape=(4,), chunks=(2,), dtype="i4")
    a[:] = np.arange(4)
    a.attrs.update({"units": "m", "gone": 1})
    before = repo.commit("a")
    repo.move("a", "b")
    b = repo.root_group["b"]
    b.attrs.update({"units": "km", "new": [1, 2]})
    del b.attrs["gone"]
    after = repo.commit("move and edit")
    with TestClient(create_app(repo)) as c:
        html = c.get(f"/diff?from={before}&to={after}").text
    assert "/a &rarr;" in html and 'href="/ref/' + after + '/tree/b"' in html
    for field in ("attributes.units", "attributes.gone", "attributes.new"):
        assert field in html
    assert "(was /a)" in html
    assert html.count("absent") == 2  # gone: absent after; new: absent before


def test_tree_shows_the_hierarchy(client: TestClient, sample: Sample) -> None:
    html = client.get("/ref/v1/tree").text
    assert 'href="/ref/v1/array/surface/t2m"' in html
    assert "float32" in html and "4 × 20 × 30" in html and "chunks 1 × 20 × 30" in html
    assert "(time, y, x)" in html and "2 metre temperature" in html
    assert "zarrchive.tiff" in html  # codecs
    sub = client.get("/ref/v1/tree/samples/grib").text
    assert "t_isobaricInhPa" in sub and "surface/t2m" not in sub
    r = client.get("/ref/v1/tree/surface/t2m", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"].endswith("/array/surface/t2m")


def test_tree_filter_is_filter_metadata(client: TestClient, sample: Sample) -> None:
    expr = "units == 'K'"
    for ref, expected in (("v1", True), ("fix-units", False)):
        html = client.get(f"/ref/{ref}/tree", params={"filter": expr}).text
        repo = open_repo(sample.location, ref=ref)
        paths = repo.filter_metadata(expr)
        assert f"{len(paths)} node" in html
        assert ("surface/t2m" in paths) is expected
        assert ('class="array matched"' in html) is bool(paths)
        for p in paths:
            assert f'/array/{p}"' in html
        if not expected:
            assert 'href="/ref/fix-units/array/surface/t2m"' not in html
    r = client.get("/ref/v1/tree", params={"filter": "units =="})
    assert r.status_code == 400 and "invalid JMESPath expression" in r.text


def test_attributes_are_escaped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = zarrchive.Repo.create(tmp_path / "repo", author="tester")
    repo.root_group.create_group("g", attributes={"note": "<script>alert(1)</script>"})
    repo.commit("<b>bold</b>")
    with TestClient(create_app(repo)) as c:
        tree = c.get("/ref/main/tree/g").text
        hist = c.get("/history").text
    assert "<script>alert" not in tree and "&lt;script&gt;" in tree
    assert "<b>bold</b>" not in hist


# ---------------------------------------------------------------------- arrays
def test_array_page(client: TestClient, sample: Sample) -> None:
    html = client.get(f"/ref/v1/array/{BROWSED_ARRAY}").text
    assert legend(html) == {
        "missing": 0,
        "native": 0,
        "virtual": BROWSED_VIRTUAL,
        "inline": 0,
        "not authorised": 0,
    }
    assert f'src="/ref/v1/quicklook/{BROWSED_ARRAY}?y=0&amp;x=1"' in html
    assert f'src="/ref/v1/chunkmap/{BROWSED_ARRAY}?y=0&amp;x=1"' in html
    assert TIFF in html and "size=" in html  # the source with its recorded version
    assert "uint16" in html and "64 × 64" in html and "zarrchive.tiff" in html
    assert "Verify sources" in html and "verify-report" not in html
    report = client.get(f"/ref/v1/array/{BROWSED_ARRAY}?verify=1").text
    assert "1</strong> source checked: all unchanged" in report


def test_array_page_of_a_slice(client: TestClient, sample: Sample) -> None:
    html = client.get("/ref/main/array/surface/t2m?i0=2").text
    assert legend(html)["native"] == 1 and legend(html)["virtual"] == 0
    assert 'name="i0"' in html and 'value="2"' in html
    assert "no virtual chunks" in html
    assert "4 native" in html  # stored chunks of the whole array
    grib = client.get(f"/ref/v1/array/{GRIB_T2M}?i0=1&i1=2").text
    assert legend(grib)["virtual"] == 1
    assert "2 metre temperature [K]" in grib
    lat = client.get("/ref/v1/array/samples/grib/2t_heightAboveGround/latitude").text
    assert legend(lat)["inline"] == 1
    for bad in ("i0=4", "i0=x", "y=1&x=1", "y=nope"):
        r = client.get(f"/ref/main/array/surface/t2m?{bad}")
        assert r.status_code == 400, bad
    assert "choose 0..3" in client.get("/ref/main/array/surface/t2m?i0=4").text
    by_name = client.get("/ref/main/array/surface/t2m?y=time&x=x&i1=3")
    assert by_name.status_code == 200 and 'name="i1"' in by_name.text


def test_quicklook_images(client: TestClient, sample: Sample) -> None:
    image = png(client.get(f"/ref/v1/quicklook/{BROWSED_ARRAY}"))
    assert image.width > 300 and image.height > 200
    png(client.get(f"/ref/v1/quicklook/{GRIB_T2M}?i0=1&i1=2"))
    png(client.get("/ref/v1/quicklook/samples/grib/2t_heightAboveGround/latitude"))  # a line
    png(client.get("/ref/main/quicklook/surface/raw_virtual?y=time&x=y&i2=3"))
    r = client.get("/ref/v1/quicklook/samples/grib/2t_heightAboveGround/heightAboveGround")
    assert r.status_code == 422  # 0-dimensional


def test_chunk_map_is_coloured_by_kind(client: TestClient, sample: Sample) -> None:
    native, virtual, inline = KIND_COLOURS[1], KIND_COLOURS[2], KIND_COLOURS[3]
    tiles = png(client.get(f"/ref/v1/chunkmap/{BROWSED_ARRAY}"))
    assert pixels_of(tiles, virtual) > 1000 and pixels_of(tiles, native) == 0
    t2m = png(client.get("/ref/main/chunkmap/surface/t2m"))
    assert pixels_of(t2m, native) > 100 and pixels_of(t2m, virtual) == 0
    lat = png(client.get("/ref/v1/chunkmap/samples/grib/2t_heightAboveGround/latitude"))
    assert pixels_of(lat, inline) > 100


def test_unauthorised_virtual_chunks(unauthorised: TestClient, sample: Sample) -> None:
    html = unauthorised.get(f"/ref/v1/array/{BROWSED_ARRAY}").text
    counts = legend(html)
    assert counts["not authorised"] == BROWSED_VIRTUAL and counts["virtual"] == 0
    assert "--authorize " + sample.container in html
    assert 'id="quicklook"' not in html
    r = unauthorised.get(f"/ref/v1/quicklook/{BROWSED_ARRAY}")
    assert r.status_code == 403 and "not authorised" in r.text
    unauth = KIND_COLOURS[4]
    assert pixels_of(png(unauthorised.get(f"/ref/v1/chunkmap/{BROWSED_ARRAY}")), unauth) > 1000
    report = unauthorised.get(f"/ref/v1/array/{BROWSED_ARRAY}?verify=1").text
    assert "1 not authorised (not checked)" in report
    # native chunks need no authorisation
    assert unauthorised.get("/ref/main/quicklook/surface/t2m").status_code == 200
    overview = unauthorised.get("/").text
    assert "not authorised" in overview and "--authorize " + sample.container in overview


def test_history_of_a_tag_off_every_branch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = zarrchive.Repo.create(tmp_path / "repo", author="tester")
    repo.new_branch("side")
    repo.root_group.attrs["side"] = True
    side = repo.commit("on the side")
    repo.tag("kept", side)
    repo.checkout("main")
    repo.delete_branch("side")
    with TestClient(create_app(repo)) as c:
        html = c.get("/history").text
        assert c.get("/commit/kept").status_code == 200
        assert c.get("/commit/side").status_code == 404
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert svg.count("<circle") == 2 and ">kept</text>" in svg and ">side<" not in svg
    assert len(set(re.findall(r'<circle class="dot[^"]*" cx="([\d.]+)"', svg))) == 2


def test_a_damaged_object_is_a_500_page(tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = zarrchive.Repo.create(tmp_path / "repo", author="tester")
    first = repo.commit_log[0].id
    repo.root_group.attrs["x"] = 1
    repo.commit("second")
    (tmp_path / "repo" / "snapshots" / first).write_bytes(b"not a snapshot")
    with TestClient(create_app(zarrchive.Repo.open(tmp_path / "repo"))) as c:
        r = c.get(f"/commit/{first}")
    assert r.status_code == 500 and "Damaged repository object" in r.text
