"""GRIB files imported as virtual chunks: one chunk per message, read back like cfgrib reads them.

Every group of every sample is compared with cfgrib (``xr.open_dataset(engine="cfgrib")``
filtered to the group's variable), and every chunk with ecCodes' own decoding of the message it
points at. Where zarrchive differs from cfgrib on purpose (``history``, the ``comment`` of the
groups that hold messages outside a hypercube, longitudes of east-to-west grids) the test says
so with an explicit assertion.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import zarrchive
from conftest import BUCKET
from zarrchive import (
    FormatError,
    InvalidInputError,
    NotFoundError,
    UnsupportedFeatureError,
    ZarrchiveError,
)

eccodes = pytest.importorskip("eccodes")
pytest.importorskip("cfgrib")

from zarrchive.codecs.grib import CODEC_NAME, GribCodec, decode_message  # noqa: E402
from zarrchive.importers import grib  # noqa: E402

from .conftest import memory_repo, ours, repo_state, scan_local  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore::zarr.errors.UnstableSpecificationWarning",
    "ignore:Numcodecs codecs are not in the Zarr version 3",
)

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
FILES = [
    "grib2_hypercube.grib2",
    "grib2_ensemble.grib2",
    "grib2_edition1.grib1",
    "grib2_irregular.grib2",
]
GROUPS = {
    "grib2_hypercube.grib2": ["2t_heightAboveGround", "sp_surface", "t_isobaricInhPa"],
    "grib2_ensemble.grib2": ["msl_meanSea", "t_isobaricInhPa", "t_isobaricInhPa_1"],
    "grib2_edition1.grib1": ["2t_surface", "sp_surface"],
    "grib2_irregular.grib2": [
        "t_isobaricInhPa",
        "t_isobaricInhPa_1",
        "t_isobaricInhPa_2",
        "t_isobaricInhPa_3",
    ],
}


# ---------------------------------------------------------------------- helpers
def cfgrib(path: Path, **filter_by_keys: Any) -> xr.Dataset:
    """The reference: cfgrib, with no index file written next to the source."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_dataset(
            path,
            engine="cfgrib",
            backend_kwargs={"filter_by_keys": filter_by_keys, "indexpath": ""},
        ).load()


def data_var(ds: xr.Dataset) -> str:
    (name,) = ds.data_vars
    return str(name)


def assert_like_cfgrib(got: xr.Dataset, path: Path) -> xr.Dataset:
    """``got`` is what cfgrib reads for the same variable, but for two attributes."""
    attrs = got[data_var(got)].attrs
    ref = cfgrib(
        path,
        shortName=attrs["GRIB_shortName"],
        typeOfLevel=attrs["GRIB_typeOfLevel"],
        dataType=attrs["GRIB_dataType"],
        numberOfPoints=attrs["GRIB_numberOfPoints"],
    )
    # on purpose: our history names zarrchive (no timestamp), cfgrib's is dated
    assert "zarrchive" in got.attrs["history"] and "cfgrib" in ref.attrs["history"]
    mine = got.copy()
    mine.attrs = {k: v for k, v in got.attrs.items() if k not in ("history", "comment")}
    ref.attrs.pop("history")
    xr.testing.assert_identical(mine, ref)
    return ref


def messages(path: Path) -> list[dict[str, Any]]:
    """Every message of a file as ecCodes reads it: byte range, keys and values."""
    out = []
    with open(path, "rb") as f:
        while True:
            h = eccodes.codes_grib_new_from_file(f)
            if h is None:
                return out
            try:
                values = eccodes.codes_get_values(h).astype(np.float64)
                if eccodes.codes_get(h, "bitmapPresent"):
                    values[eccodes.codes_get_array(h, "bitmap") == 0] = np.nan
                out.append(
                    {
                        "offset": int(eccodes.codes_get(h, "offset")),
                        "length": int(eccodes.codes_get(h, "totalLength")),
                        "shortName": eccodes.codes_get(h, "shortName"),
                        "values": values,
                    }
                )
            finally:
                eccodes.codes_release(h)


def virtual_refs(tree: Any) -> dict[str, list[tuple[tuple[int, ...], int, int]]]:
    """Per data array: (chunk coordinates, offset, length) of each virtual reference."""
    out = {}
    for path, arr in tree.arrays.items():
        refs = arr.refs
        if refs.urls:
            out[path] = [
                (tuple(int(c) for c in refs.coords[i]), int(refs.offset[i]), int(refs.length[i]))
                for i in range(len(refs))
            ]
    return out


def grib2_sections(message: bytes) -> list[bytes]:
    pos, out = 16, []
    while message[pos : pos + 4] != b"7777":
        (n,) = struct.unpack(">I", message[pos : pos + 4])
        out.append(message[pos : pos + n])
        pos += n
    return out


def with_length(message: bytes) -> bytes:
    return message[:8] + struct.pack(">Q", len(message)) + message[16:]


def tiny_message(**keys: Any) -> bytes:
    h = eccodes.codes_grib_new_from_samples("regular_ll_pl_grib2")
    try:
        grid = {
            "Ni": 4,
            "Nj": 3,
            "iDirectionIncrementInDegrees": 10.0,
            "jDirectionIncrementInDegrees": 10.0,
            "latitudeOfFirstGridPointInDegrees": 10.0,
            "latitudeOfLastGridPointInDegrees": -10.0,
            "longitudeOfFirstGridPointInDegrees": 0.0,
            "longitudeOfLastGridPointInDegrees": 30.0,
        }
        for key, value in {**grid, **keys}.items():
            eccodes.codes_set(h, key, value)
        eccodes.codes_set(h, "bitsPerValue", 16)
        eccodes.codes_set_values(h, np.arange(12.0) * 1.5 + 200)
        return bytes(eccodes.codes_get_message(h))
    finally:
        eccodes.codes_release(h)


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", FILES)
def test_every_group_matches_cfgrib(name: str) -> None:
    path = SAMPLES / name
    repo = memory_repo()
    summary = repo.add_virtual_grib(path, "g")
    repo.commit(f"import {name}")
    assert sorted(repo.root_group["g"].group_keys()) == GROUPS[name]
    assert summary.sources == 1 and summary.references >= len(messages(path))
    for group in GROUPS[name]:
        got = ours(repo, f"g/{group}")
        var = data_var(got)
        comment = got.attrs.get("comment")
        if comment and "repeat one of its" in comment:
            # duplicates: cfgrib keeps the first message of a cell; the group holds the rest
            assert group == "t_isobaricInhPa_1" and name == "grib2_irregular.grib2"
            dup = [m for m in messages(path) if m["shortName"] == "t"][5]
            np.testing.assert_array_equal(got[var].values.ravel(), dup["values"].astype(np.float32))
            continue
        assert (comment is None) == (not group.endswith(("_1", "_2", "_3")))
        ref = assert_like_cfgrib(got, path)
        # zarr-python alone, through the repository store, reads the same values
        arr = repo.root_group[f"g/{group}/{var}"]
        np.testing.assert_array_equal(arr[...], ref[var].values)
        meta = arr.metadata.to_dict()
        assert list(meta["codecs"]) == [{"name": CODEC_NAME}]
        assert meta["data_type"] == "float32" and np.isnan(arr.fill_value)
        grid = ref[var].shape[-2:] if "values" not in ref[var].dims else ref[var].shape[-1:]
        nongrid = ref[var].ndim - len(grid)
        assert arr.chunks == (1,) * nongrid + tuple(grid)
    root = repo.root_group["g"].attrs
    assert root["Conventions"] == "CF-1.7"


def test_hypercube_layout_and_missing_cells() -> None:
    repo = memory_repo()
    repo.add_virtual_grib(SAMPLES / "grib2_hypercube.grib2", "h")
    repo.add_virtual_grib(SAMPLES / "grib2_irregular.grib2", "i")
    t = ours(repo, "h/t_isobaricInhPa")
    assert t["t"].dims == ("time", "step", "isobaricInhPa", "latitude", "longitude")
    assert t["t"].shape == (2, 3, 3, 19, 36)
    assert t["step"].dtype == "timedelta64[ns]" and t["valid_time"].dims == ("time", "step")
    assert t["isobaricInhPa"].values.tolist() == [1000.0, 850.0, 500.0]
    assert t["t"].attrs["GRIB_paramId"] == 130 and t["t"].attrs["units"] == "K"
    sp = ours(repo, "h/sp_surface")
    assert sp["surface"].ndim == 0 and np.isnan(sp["sp"].values).any()  # bitmap points
    t2m = ours(repo, "h/2t_heightAboveGround")
    assert list(t2m.data_vars) == ["t2m"]  # cfgrib's cfVarName, not the shortName 2t
    # the missing (500 hPa, step 6) cell of the irregular file reads as NaN, the rest not
    irr = ours(repo, "i/t_isobaricInhPa")["t"]
    missing = np.isnan(irr.values).all(axis=(-2, -1))
    assert missing.tolist() == [[False, False, False], [False, False, True]]
    assert not np.isnan(irr.values[~missing]).any()
    notes = {
        g: ours(repo, f"i/{g}").attrs.get("comment", "") for g in GROUPS["grib2_irregular.grib2"]
    }
    assert notes["t_isobaricInhPa"] == ""
    assert "repeat one of its" in notes["t_isobaricInhPa_1"]
    assert "numberOfPoints=180" in notes["t_isobaricInhPa_2"]
    assert "dataType='an'" in notes["t_isobaricInhPa_3"]


@pytest.mark.parametrize("name", FILES)
def test_every_message_is_exactly_one_chunk(name: str) -> None:
    path = SAMPLES / name
    tree = scan_local(grib, path)
    refs = virtual_refs(tree)
    found = sorted((off, n) for rows in refs.values() for _, off, n in rows)
    file_messages = messages(path)
    assert found == [(m["offset"], m["length"]) for m in file_messages]
    by_offset = {m["offset"]: m for m in file_messages}
    repo = memory_repo()
    repo.add_virtual_grib(path, "g")
    for array_path, rows in refs.items():
        arr = repo.root_group[f"g/{array_path}"]
        for coords, offset, _ in rows:
            ngrid = sum(1 for c, s in zip(arr.chunks, arr.shape, strict=True) if c == s and c > 1)
            index = tuple(coords[: arr.ndim - ngrid]) + (slice(None),) * ngrid
            got = arr[index]
            want = by_offset[offset]["values"].astype(np.float32).reshape(got.shape)
            np.testing.assert_array_equal(got, want, err_msg=f"{array_path} {coords}")
    # the codec alone decodes one message the way ecCodes does
    first = file_messages[0]
    raw = path.read_bytes()[first["offset"] : first["offset"] + first["length"]]
    n = first["values"].size
    np.testing.assert_array_equal(decode_message(raw, (1, n), np.float64)[0], first["values"])


def test_float64_keeps_eccodes_precision() -> None:
    path = SAMPLES / "grib2_hypercube.grib2"
    repo = memory_repo()
    repo.add_virtual_grib(path, "g", dtype="float64")
    got = ours(repo, "g/2t_heightAboveGround")["t2m"]
    assert got.dtype == np.float64
    want = [m["values"] for m in messages(path) if m["shortName"] == "2t"]
    np.testing.assert_array_equal(got.values.reshape(6, -1), np.stack(want))
    ref = cfgrib(path, shortName="2t")["t2m"]  # cfgrib: float32 by default
    np.testing.assert_array_equal(got.values.astype(np.float32), ref.values)


def test_scanning_modes_follow_the_data(tmp_path: Path) -> None:
    """East-to-west, south-to-north and column-major grids: coordinates match the values."""
    path = tmp_path / "scan.grib2"
    path.write_bytes(
        tiny_message(
            iScansNegatively=1,
            jScansPositively=1,
            latitudeOfFirstGridPointInDegrees=-10.0,
            latitudeOfLastGridPointInDegrees=10.0,
            longitudeOfFirstGridPointInDegrees=30.0,
            longitudeOfLastGridPointInDegrees=0.0,
        )
        + tiny_message(jPointsAreConsecutive=1, level=500)
    )
    repo = memory_repo()
    repo.add_virtual_grib(path, "g")
    with open(path, "rb") as f:
        for group in ("t_isobaricInhPa", "t_isobaricInhPa_1"):  # two grids: two groups
            h = eccodes.codes_grib_new_from_file(f)
            lat = eccodes.codes_get_array(h, "latitudes")
            lon = eccodes.codes_get_array(h, "longitudes")
            val = eccodes.codes_get_values(h)
            eccodes.codes_release(h)
            cell = ours(repo, f"g/{group}")["t"]
            for la, lo, v in zip(lat, lon, val, strict=True):
                assert float(cell.sel(latitude=la, longitude=lo)) == np.float32(v)
    ds = ours(repo, "g/t_isobaricInhPa")
    # on purpose: cfgrib lists the longitudes of east-to-west grids sorted, not in data order
    ref = cfgrib(path, shortName="t")
    assert ds["longitude"].values.tolist() == [30.0, 20.0, 10.0, 0.0]
    assert ref["longitude"].values.tolist() == [0.0, 10.0, 20.0, 30.0]


def test_key_cache_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys cached per header (``_identity``) give the trees of a key-by-key scan."""
    for name in FILES:
        cached = scan_local(grib, SAMPLES / name)
        monkeypatch.setattr(grib, "_CACHE_IDENTITY", False)
        plain = scan_local(grib, SAMPLES / name)
        monkeypatch.setattr(grib, "_CACHE_IDENTITY", True)
        assert cached.groups == plain.groups
        assert cached.arrays.keys() == plain.arrays.keys()
        for path, arr in cached.arrays.items():
            other = plain.arrays[path]
            assert arr.meta == other.meta, path
            np.testing.assert_array_equal(arr.refs.coords, other.refs.coords)
            np.testing.assert_array_equal(arr.refs.offset, other.refs.offset)
            assert arr.refs.inline == other.refs.inline


# ---------------------------------------------------------------------- readers
def _fake_entry_point(root: Path) -> Path:
    """A distribution on PYTHONPATH declaring the codec entry point zarrchive will declare."""
    dist = root / "zarrchive_grib_entry_point-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: zarrchive-grib-entry-point\nVersion: 0\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[zarr.codecs]\n{CODEC_NAME} = zarrchive.codecs.grib:GribCodec\n"
    )
    return root


def _installed_entry_point() -> bool:
    from importlib.metadata import entry_points

    return any(e.name == CODEC_NAME for e in entry_points(group="zarr.codecs"))


_READER = textwrap.dedent(
    """
    import pickle, sys, traceback, warnings
    warnings.simplefilter("ignore")
    import xarray, zarr, zarrchive
    preloaded = "zarrchive.codecs.grib" in sys.modules
    location, container, group, out, how = sys.argv[1:6]
    plain = "read"
    if how == "plain":
        # nothing but the package metadata can tell zarr where the codec is
        try:
            zarrchive.Repo.open(location, authorize_virtual=[container]).to_xarray(group).load()
        except Exception:
            plain = traceback.format_exc()
        import zarrchive.codecs
    try:
        zarrchive.Repo.open(location).to_xarray(group).load()
        denied = "read without authorisation"
    except zarrchive.UnauthorizedSourceError as exc:
        denied = "UnauthorizedSourceError" if "authorize_virtual" in str(exc) else str(exc)
    repo = zarrchive.Repo.open(location, authorize_virtual=[container])
    ds = repo.to_xarray(group).load()
    loaded = "zarrchive.codecs.grib" in sys.modules
    open(out, "wb").write(pickle.dumps((ds, denied, plain, loaded, preloaded)))
    """
)


@pytest.mark.parametrize("how", ["entry_point", "plain"])
def test_fresh_process_reader(tmp_path: Path, how: str) -> None:
    """A new process reads the repository: through the ``zarr.codecs`` entry point, or after
    ``import zarrchive.codecs`` (which is all a process can do until the entry point exists)."""
    path = SAMPLES / "grib2_ensemble.grib2"
    location = tmp_path / "repo"
    repo = zarrchive.Repo.create(location, author="tester")
    repo.add_virtual_grib(path, "g")
    repo.commit("import")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if how == "entry_point":
        env["PYTHONPATH"] = str(_fake_entry_point(tmp_path / "site"))
    out = tmp_path / "ds.pickle"
    args = [str(location), path.parent.as_uri() + "/", "g/t_isobaricInhPa", str(out), how]
    done = subprocess.run(
        [sys.executable, "-c", _READER, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    ds, denied, plain, loaded, preloaded = pickle.loads(out.read_bytes())
    assert denied == "UnauthorizedSourceError" and loaded
    if how == "plain" and not preloaded and not _installed_entry_point():
        assert CODEC_NAME in plain and "read" != plain
    else:
        assert plain == "read"
    xr.testing.assert_identical(ds, ours(repo, "g/t_isobaricInhPa"))
    assert_like_cfgrib(ds, path)


def test_import_from_s3(s3_server: dict[str, Any]) -> None:
    import s3fs

    path = SAMPLES / "grib2_hypercube.grib2"
    key = f"{BUCKET}/{uuid.uuid4().hex}/{path.name}"
    fs = s3fs.S3FileSystem(**s3_server)
    fs.put_file(str(path), key)
    repo = memory_repo()
    summary = repo.add_virtual_grib(f"s3://{key}", "g", storage_options=s3_server)
    repo.commit("from s3")
    assert summary.sources == 1
    assert sorted(repo.root_group["g"].group_keys()) == GROUPS[path.name]
    for group in GROUPS[path.name]:
        assert_like_cfgrib(ours(repo, f"g/{group}"), path)


# ---------------------------------------------------------------------- odd files
def test_junk_between_and_after_messages(tmp_path: Path) -> None:
    src = (SAMPLES / "grib2_edition1.grib1").read_bytes()
    first = messages(SAMPLES / "grib2_edition1.grib1")[1]["offset"]
    path = tmp_path / "junk.grib"
    path.write_bytes(src[:first] + b"\0" * 100 + src[first:] + b"padding\n")
    repo = memory_repo()
    with pytest.warns(UserWarning, match=rf"not a GRIB message \(100 bytes at {first}, 8 bytes"):
        repo.add_virtual_grib(path, "g")
    for group in GROUPS["grib2_edition1.grib1"]:
        assert_like_cfgrib(ours(repo, f"g/{group}"), path)
    # junk before the first message: the repository's format detection wants "GRIB" first,
    # the importer itself skips it
    lead = tmp_path / "lead.grib"
    lead.write_bytes(b"HEADER " * 3 + src)
    with pytest.warns(UserWarning, match=r"not a GRIB message \(21 bytes at 0\)"):
        tree = scan_local(grib, lead)
    assert sorted(g for g in tree.groups if g) == GROUPS["grib2_edition1.grib1"]


def test_large_grib1_message(tmp_path: Path) -> None:
    """Edition 1 messages over 8 MiB use ECMWF's length coding; the next message still parses."""
    h = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib1")
    ni, nj = 2880, 1000
    for key, value in {
        "Ni": ni,
        "Nj": nj,
        "latitudeOfFirstGridPointInDegrees": 90.0,
        "latitudeOfLastGridPointInDegrees": 90 - (nj - 1) * 0.125,
        "longitudeOfFirstGridPointInDegrees": 0.0,
        "longitudeOfLastGridPointInDegrees": (ni - 1) * 0.125,
        "iDirectionIncrementInDegrees": 0.125,
        "jDirectionIncrementInDegrees": 0.125,
        "shortName": "skt",
        "bitsPerValue": 24,
    }.items():
        eccodes.codes_set(h, key, value)
    eccodes.codes_set_values(h, np.linspace(250, 300, ni * nj))
    big = bytes(eccodes.codes_get_message(h))
    eccodes.codes_release(h)
    assert len(big) > 0x7FFFFF and big[4] & 0x80  # the large-message coding is in use
    path = tmp_path / "large.grib1"
    path.write_bytes(big + (SAMPLES / "grib2_edition1.grib1").read_bytes())
    repo = memory_repo()
    repo.add_virtual_grib(path, "g")
    assert sorted(repo.root_group["g"].group_keys()) == ["2t_surface", "skt_surface", "sp_surface"]
    skt = repo.root_group["g/skt_surface/skt"][...]
    np.testing.assert_array_equal(skt.ravel(), messages(path)[0]["values"].astype(np.float32))
    assert_like_cfgrib(ours(repo, "g/2t_surface"), path)


def _bitmapped(values: np.ndarray, **keys: Any) -> bytes:
    """A tiny message whose NaN values are left out through a bitmap."""
    h = eccodes.codes_new_from_message(tiny_message(**keys))
    try:
        eccodes.codes_set(h, "bitmapPresent", 1)
        eccodes.codes_set(h, "missingValue", 9999.0)
        eccodes.codes_set_values(h, np.where(np.isnan(values), 9999.0, values))
        return bytes(eccodes.codes_get_message(h))
    finally:
        eccodes.codes_release(h)


def _as_one_message(first: bytes, *others: bytes, share_bitmap: bool = False) -> bytes:
    """``first`` with the fields of ``others`` appended (their sections 4 to 7), as NCEP
    writes u/v pairs; ``share_bitmap``: their bitmaps become 'the one defined before'."""
    parts = grib2_sections(first)
    for other in others:
        for sec in grib2_sections(other):
            if sec[4] == 6 and share_bitmap:
                sec = struct.pack(">IBB", 6, 6, 254)
            if sec[4] in (4, 5, 6, 7):
                parts.append(sec)
    return with_length(first[:16] + b"".join(parts) + b"7777")


def test_multi_field_messages(tmp_path: Path) -> None:
    """Multi-field GRIB2 messages (as in NCEP's GFS and NAM files): each field is a chunk
    of its own array, decoding the whole message's bytes; values equal ecCodes' reading of
    each field on its own, and cfgrib's reading of the file."""
    u1 = tiny_message(shortName="u", level=500)
    v1 = tiny_message(shortName="v", level=500)
    vals = np.arange(12.0) * 2
    vals[[1, 5]] = np.nan
    u2 = _bitmapped(vals, shortName="u", level=850)
    v2 = _bitmapped(vals + 100, shortName="v", level=850)
    t = tiny_message(shortName="t", level=850)
    path = tmp_path / "uv.grib2"
    path.write_bytes(_as_one_message(u1, v1) + _as_one_message(u2, v2, share_bitmap=True) + t)
    assert len(messages(path)) == 3  # ecCodes without multi-field support sees 3 messages

    repo = memory_repo()
    repo.add_virtual_grib(path, "g")
    repo.commit("multi-field")
    assert sorted(repo.root_group["g"].group_keys()) == [
        "t_isobaricInhPa",
        "u_isobaricInhPa",
        "v_isobaricInhPa",
    ]
    u = repo.root_group["g/u_isobaricInhPa/u"]
    v = repo.root_group["g/v_isobaricInhPa/v"]
    assert u.shape == v.shape == (2, 3, 4)
    assert list(u.metadata.to_dict()["codecs"]) == [{"name": CODEC_NAME}]
    assert list(v.metadata.to_dict()["codecs"]) == [
        {"name": CODEC_NAME, "configuration": {"field": 1}}
    ]
    levels = list(ours(repo, "g/u_isobaricInhPa")["isobaricInhPa"].values)
    for arr, singles in ((u, (u1, u2)), (v, (v1, v2))):
        for level, single in zip((500, 850), singles, strict=True):
            want = decode_message(single, (3, 4))
            np.testing.assert_array_equal(arr[levels.index(level)], want)
    v850 = v[levels.index(850)]
    assert np.isnan(v850).sum() == 2 and v850.ravel()[0] == 100
    for group in ("u_isobaricInhPa", "v_isobaricInhPa", "t_isobaricInhPa"):
        assert_like_cfgrib(ours(repo, f"g/{group}"), path)

    whole = _as_one_message(u2, v2, share_bitmap=True)
    np.testing.assert_array_equal(
        decode_message(whole, (3, 4), field=1), decode_message(v2, (3, 4))
    )
    with pytest.raises(FormatError, match="no field 2"):
        decode_message(whole, (3, 4), field=2)
    orphan = _as_one_message(u1, v2, share_bitmap=True)  # 254, but nothing defined before
    with pytest.raises(FormatError, match="no earlier field defined"):
        decode_message(orphan, (3, 4), field=1)


def test_unknown_parameter_named_like_cfgrib(tmp_path: Path) -> None:
    """A parameter ecCodes cannot name: cfgrib calls the variable by its shortName,
    'unknown' (the group, ours, is named after the paramId)."""
    path = tmp_path / "unknown.grib2"
    path.write_bytes(tiny_message(discipline=0, parameterCategory=191, parameterNumber=77))
    repo = memory_repo()
    repo.add_virtual_grib(path, "g")
    assert list(repo.root_group["g"].group_keys()) == ["paramId_0_isobaricInhPa"]
    got = ours(repo, "g/paramId_0_isobaricInhPa")
    assert list(got.data_vars) == ["unknown"]
    assert_like_cfgrib(got, path)


def test_unsupported_and_invalid_inputs(tmp_path: Path) -> None:
    hyper = SAMPLES / "grib2_hypercube.grib2"
    repo = memory_repo()
    repo.add_virtual_grib(SAMPLES / "grib2_edition1.grib1", "kept")
    before = repo_state(repo)

    edition3 = bytearray(tiny_message())
    edition3[7] = 3
    (tmp_path / "ed3.grib").write_bytes(bytes(edition3))
    with pytest.raises(UnsupportedFeatureError, match="GRIB edition 3"):
        repo.add_virtual_grib(tmp_path / "ed3.grib", "e")

    truncated = tmp_path / "truncated.grib2"
    truncated.write_bytes(hyper.read_bytes()[:-500])
    with pytest.raises(FormatError, match="truncated"):
        repo.add_virtual_grib(truncated, "t")

    bad_date = bytearray(tiny_message())
    bad_date[16 + 12 + 2] = 13  # month 13 in section 1 (year at 12-13, month at 14)
    (tmp_path / "date.grib2").write_bytes(bytes(bad_date))
    with pytest.raises(FormatError):
        repo.add_virtual_grib(tmp_path / "date.grib2", "d")

    with pytest.raises(InvalidInputError, match="float32 or float64"):
        repo.add_virtual_grib(hyper, "x", dtype="int16")
    with pytest.raises(InvalidInputError, match="on_unsupported"):
        repo.add_virtual_grib(hyper, "x", on_unsupported="ignore")
    with pytest.raises(NotFoundError):
        repo.add_virtual_grib(tmp_path / "nothing.grib2", "x")
    assert repo_state(repo) == before

    (tmp_path / "junk.bin").write_bytes(b"no grib here at all" * 10)
    with pytest.raises(FormatError, match="no GRIB message"):
        scan_local(grib, tmp_path / "junk.bin")


def test_codec_is_read_only_and_strict() -> None:
    assert GribCodec.from_dict({"name": CODEC_NAME}) == GribCodec()
    assert GribCodec().to_dict() == {"name": CODEC_NAME}
    with pytest.raises(ValueError, match="only a 'field' setting"):
        GribCodec.from_dict({"name": CODEC_NAME, "configuration": {"x": 1}})
    with pytest.raises(ValueError, match="field must be an integer"):
        GribCodec.from_dict({"name": CODEC_NAME, "configuration": {"field": -1}})
    assert GribCodec.from_dict({"name": CODEC_NAME, "configuration": {"field": 2}}).field == 2
    assert GribCodec(field=1).to_dict() == {"name": CODEC_NAME, "configuration": {"field": 1}}
    with pytest.raises(FormatError):
        decode_message(b"GRIB not really", (2, 2))
    msg = tiny_message()
    with pytest.raises(FormatError, match="12 values but its chunk has 6"):
        decode_message(msg, (2, 3))
    np.testing.assert_array_equal(
        decode_message(msg, (1, 3, 4), np.float64).ravel(), np.arange(12.0) * 1.5 + 200
    )
    repo = memory_repo()
    repo.add_virtual_grib(SAMPLES / "grib2_edition1.grib1", "g")
    arr = repo.root_group["g/2t_surface/t2m"]
    with pytest.raises(UnsupportedFeatureError, match="read-only"):
        arr[0] = 1.0


def test_sample_generator(tmp_path: Path) -> None:
    sys.path.insert(0, str(SAMPLES))
    try:
        import _make_grib2
    finally:
        sys.path.remove(str(SAMPLES))
    paths = _make_grib2.make(tmp_path)
    assert [p.name for p in paths] == FILES
    assert sum(p.stat().st_size for p in paths) < 3_000_000
    for p in paths:
        assert len(messages(p)) == len(messages(SAMPLES / p.name))


# ---------------------------------------------------------------------- fuzz
_FUZZ = textwrap.dedent(
    """
    import json, os, sys, uuid, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    import zarrchive
    from zarrchive.importers import grib
    from zarrchive.codecs.grib import decode_message

    src, work, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = open(src, "rb").read()
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(30):  # byte flips in message headers (sections 0-5)
        b = bytearray(data)
        starts = [j for j in range(len(b) - 3) if b[j : j + 4] == b"GRIB"]
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.choice(starts)) + int(rng.integers(0, 120))
            b[min(at, len(b) - 1)] ^= 1 << int(rng.integers(0, 8))
        cases.append(("flip", bytes(b)))
    for i in range(30):
        cases.append(("cut", data[: int(rng.integers(1, len(data)))]))

    captured = []  # the tree the repository ingests, with its references
    scan = grib.scan

    async def spy(*args, **kwargs):
        tree = await scan(*args, **kwargs)
        captured.append(tree)
        return tree

    grib.scan = spy

    outcomes = []
    for i, (kind, blob) in enumerate(cases):
        path = os.path.join(work, f"case{i}.grib")
        open(path, "wb").write(blob)
        repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
        captured.clear()
        try:
            repo.add_virtual_grib(path, "g")
        except zarrchive.ZarrchiveError as exc:
            outcomes.append([kind, "refused", type(exc).__name__])
            continue
        except Exception as exc:
            outcomes.append([kind, "BAD", f"import: {type(exc).__name__}: {exc}"])
            continue
        tree = captured.pop()
        result = "read"
        for apath, arr in tree.arrays.items():
            z = repo.root_group[f"g/{apath}"]
            for row in range(len(arr.refs)):
                if not arr.refs.urls:
                    break
                coords = tuple(int(c) for c in arr.refs.coords[row])
                ngrid = sum(1 for c, s in zip(z.chunks, z.shape) if c == s and c > 1)
                index = coords[: z.ndim - ngrid] + (slice(None),) * ngrid
                try:
                    got = z[index]
                except zarrchive.ZarrchiveError:
                    result = "read errors"
                    continue
                except Exception as exc:
                    result = f"BAD read: {type(exc).__name__}: {exc}"
                    break
                off, n = int(arr.refs.offset[row]), int(arr.refs.length[row])
                want = decode_message(blob[off : off + n], got.shape, got.dtype)
                if not np.array_equal(got, want, equal_nan=True):
                    again = decode_message(blob[off : off + n], got.shape, got.dtype)
                    if np.array_equal(want, again, equal_nan=True):
                        result = f"BAD mismatch {apath} {coords}"
                    else:  # ecCodes decodes this corrupt message differently each time
                        result = "read undefined values"
        outcomes.append([kind, result, ""])
    print(json.dumps(outcomes))
    """
)


@pytest.mark.parametrize("name", FILES)
def test_fuzz_corrupt_and_truncated_copies(tmp_path: Path, name: str) -> None:
    """Corrupt headers and truncations give ZarrchiveErrors, never other errors or crashes."""
    seed = FILES.index(name) + 11
    done = subprocess.run(
        [sys.executable, "-c", _FUZZ, str(SAMPLES / name), str(tmp_path), str(seed)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    bad = [o for o in outcomes if "BAD" in o[1]]
    assert not bad, bad
    assert len(outcomes) == 60
    assert any(o[1] == "refused" for o in outcomes)
    assert any(o[1].startswith("read") for o in outcomes)
    assert issubclass(FormatError, ZarrchiveError)
