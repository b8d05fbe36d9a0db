"""The importer registry: recognising a source's format (by its first bytes, or a store's
listing) and finding the importer that scans it."""

from __future__ import annotations

import inspect
import uuid
from pathlib import Path
from typing import Any

import pytest
import zarr

import zarrchive
from zarrchive.errors import InvalidInputError, NotFoundError, UnsupportedFeatureError
from zarrchive.importers import FORMATS, detect_format, formats_for, scanner, sniff

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"

_GRIB2 = b"GRIB\x00\x00\x00\x02" + (1234).to_bytes(8, "big")
_GRIB1 = b"GRIB" + (1234).to_bytes(3, "big") + b"\x01"


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"CDF\x01" + bytes(100), "netcdf3"),
        (b"CDF\x02" + bytes(100), "netcdf3"),
        (b"\x89HDF\r\n\x1a\n" + bytes(100), "hdf5"),
        (bytes(512) + b"\x89HDF\r\n\x1a\n" + bytes(100), "hdf5"),  # a 512-byte user block
        (_GRIB2 + bytes(100), "grib"),
        (_GRIB1 + bytes(100), "grib"),
        (b"II*\x00" + bytes(100), "tiff"),
        (b"MM\x00+" + bytes(100), "tiff"),
        (b"****\r\r\nHRPA50 ECMF 010000\r\r\n" + _GRIB2 + bytes(100), "grib"),  # WMO heading
    ],
)
def test_formats(head: bytes, fmt: str) -> None:
    assert detect_format(head) == fmt


@pytest.mark.parametrize(
    "head",
    [
        b"# GRIB files\n/data/GRIB/gfs.t00z.pgrb2.0p25.f000\n/data/GRIB/gfs.t00z.pgrb2.0p25.f003\n",
        b"GRIB/2024/01/01.grib2\nGRIB/2024/01/02.grib2\n",  # a list starting with GRIB
        b"this README mentions GRIB2 and GRIB1 files",
        b"not a netCDF file",
        b"",
    ],
)
def test_text_is_not_a_format(head: bytes) -> None:
    with pytest.raises(UnsupportedFeatureError, match="unrecognised format"):
        detect_format(head, where="x")


#: the format of every file in sample_data/, by its name (None: not a data file)
def _expected(name: str) -> str | None:
    if name.startswith("netcdf3_"):
        return "netcdf3"
    if name.startswith(("netcdf4_", "hdf5_")):
        return "hdf5"
    if name.startswith("grib2_") and not name.endswith(".py"):
        return "grib"
    if name.startswith("tiff_"):
        return "tiff"
    if name.endswith((".py", ".md", ".bin")):
        return None
    raise AssertionError(f"sample_data/{name}: say here which format it is")


SAMPLE_FILES = sorted(p.name for p in SAMPLES.iterdir() if p.is_file())


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_sniff_samples(name: str) -> None:
    path = SAMPLES / name
    fmt = _expected(name)
    for url in (str(path), path.as_uri()):
        if fmt is None:
            with pytest.raises(UnsupportedFeatureError, match="unrecognised format") as info:
                sniff(url)
            # the message says what zarrchive does import, from the registry
            assert all(f.label in str(info.value) for f in FORMATS.values())
        else:
            assert sniff(url) == fmt


def test_every_sample_format_is_covered() -> None:
    found = {_expected(n) for n in SAMPLE_FILES} - {None}
    assert found == {f.name for f in FORMATS.values() if not f.store}
    assert None in {_expected(n) for n in SAMPLE_FILES}  # and some files that are no data


def test_sniff_stores_and_directories(tmp_path: Path) -> None:
    store = tmp_path / "v2.zarr"
    zarr.create_array(store, shape=(4,), chunks=(2,), dtype="i4", zarr_format=2)
    assert sniff(str(store)) == "zarr_v2"
    assert sniff(store.as_uri()) == "zarr_v2"
    group = tmp_path / "group.zarr"
    zarr.open_group(group, mode="w", zarr_format=2)
    assert sniff(str(group)) == "zarr_v2"
    v3 = tmp_path / "v3.zarr"
    zarr.create_array(v3, shape=(4,), dtype="i4", zarr_format=3)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.nc").write_bytes((SAMPLES / "netcdf3_classic_scipy.nc").read_bytes())
    for directory in (v3, plain):
        with pytest.raises(InvalidInputError, match="is a directory but not a Zarr v2 store"):
            sniff(str(directory))
    with pytest.raises(NotFoundError, match="does not exist"):
        sniff(str(tmp_path / "missing.nc"))
    with pytest.raises(NotFoundError, match="does not exist"):
        sniff((tmp_path / "missing.nc").as_uri())


def test_sniff_unreadable_path(tmp_path: Path) -> None:
    path = tmp_path / "file.nc"
    path.write_bytes((SAMPLES / "netcdf3_classic_scipy.nc").read_bytes())
    with pytest.raises(InvalidInputError, match="cannot be read"):
        sniff(str(path / "inner.nc"))  # a file where a directory should be


def test_sniff_on_s3(s3_server: dict[str, Any], tmp_path: Path) -> None:
    import s3fs

    from conftest import BUCKET

    fs = s3fs.S3FileSystem(**s3_server)
    prefix = f"{BUCKET}/{uuid.uuid4().hex}"
    for name in ("netcdf4_sample.nc", "grib2_hypercube.grib2", "tiff_cog.tif", "README.md"):
        fs.put_file(str(SAMPLES / name), f"{prefix}/{name}")
    store = tmp_path / "v2.zarr"
    zarr.create_array(store, shape=(4,), chunks=(2,), dtype="i4", zarr_format=2)
    fs.put(str(store), f"{prefix}/v2.zarr", recursive=True)
    fs.put_file(str(SAMPLES / "README.md"), f"{prefix}/plain/README.md")
    url = f"s3://{prefix}"
    assert sniff(f"{url}/netcdf4_sample.nc", s3_server) == "hdf5"
    assert sniff(f"{url}/grib2_hypercube.grib2", s3_server) == "grib"
    assert sniff(f"{url}/tiff_cog.tif", s3_server) == "tiff"
    assert sniff(f"{url}/v2.zarr", s3_server) == "zarr_v2"
    with pytest.raises(UnsupportedFeatureError, match="unrecognised format"):
        sniff(f"{url}/README.md", s3_server)
    with pytest.raises(InvalidInputError, match="not a Zarr v2 store"):
        sniff(f"{url}/plain", s3_server)
    with pytest.raises(NotFoundError, match="does not exist"):
        sniff(f"{url}/missing.nc", s3_server)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_has_a_scanner(name: str) -> None:
    """A registry line without its module (or whose ``scan`` does not take what the
    ``Scanner`` protocol passes) fails here, not on a user's first file."""
    scan = scanner(name)
    assert inspect.iscoroutinefunction(scan)
    params = inspect.signature(scan).parameters
    assert list(params)[0] == "url"
    for keyword in ("stat", "storage_options"):
        assert params[keyword].kind is inspect.Parameter.KEYWORD_ONLY
    if FORMATS[name].prefetched:
        assert "prefetched" in params
    spec = FORMATS[name]
    assert (spec.magic is None) != (spec.listing is None)  # a file format or a store format


def test_unknown_format() -> None:
    with pytest.raises(InvalidInputError, match="unknown format 'grib2'"):
        scanner("grib2")


def test_formats_and_repo_methods_agree() -> None:
    assert formats_for("add_virtual_netcdf") == ("netcdf3", "hdf5")
    assert formats_for("add_virtual_hdf") == ("hdf5",)
    assert formats_for("add_virtual_grib") == ("grib",)
    assert formats_for("add_virtual_zarr") == ("zarr_v2",)
    assert formats_for("add_kerchunk_references") == ()
    named = {m for f in FORMATS.values() for m in f.methods}
    api = {n for n in dir(zarrchive.AsyncRepo) if n.startswith("add_virtual_")}
    assert named == api
    for method in named:
        assert callable(getattr(zarrchive.Repo, method))
