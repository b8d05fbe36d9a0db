"""add_virtual_zarr: Zarr v2 stores as whole-object virtual references."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import numcodecs
import numpy as np
import pytest
import xarray as xr
import zarr

import zarrchive
from zarrchive import InvalidInputError, NotFoundError

from .conftest import repo_state


def _dataset() -> xr.Dataset:
    rng = np.random.default_rng(1)
    t = rng.normal(280, 5, size=(4, 6, 8)).astype("f4")
    t[0, 0, 0] = np.nan
    return xr.Dataset(
        {
            "t": (("time", "y", "x"), t, {"units": "K", "long_name": "temperature"}),
            "count": (("y", "x"), rng.integers(0, 100, size=(6, 8)).astype("i2")),
            "scalar": ((), np.float64(3.5)),
        },
        coords={"time": np.arange(4), "y": np.arange(6.0), "x": np.arange(8.0)},
        attrs={"title": "zarr v2 sample", "version": 2},
    )


def _write(path, *, consolidated: bool, separator: str = ".") -> xr.Dataset:
    ds = _dataset()
    encoding = {
        "t": {"chunks": (1, 3, 4), "compressors": [numcodecs.Blosc("zstd", 3)]},
        "count": {"chunks": (3, 8), "_FillValue": -1},
    }
    ds.to_zarr(path, zarr_format=2, encoding=encoding, consolidated=consolidated)
    if separator == "/":
        # rewrite with nested chunk keys, as zarr v2 stores from other writers have them
        src = zarr.open_group(path, mode="r", zarr_format=2)
        out = f"{path}-nested"
        dst = zarr.open_group(out, mode="w", zarr_format=2)
        dst.attrs.update(src.attrs.asdict())
        for name, arr in src.arrays():
            new = dst.create_array(
                name,
                shape=arr.shape,
                chunks=arr.chunks,
                dtype=arr.dtype,
                fill_value=arr.fill_value,
                compressor=arr.compressors[0] if arr.compressors else None,
                chunk_key_encoding={"name": "v2", "separator": "/"},
                attributes=arr.attrs.asdict(),
            )
            new[...] = arr[...]
        return ds
    return ds


@pytest.mark.parametrize("consolidated", [True, False])
def test_local_store_reads_identically(tmp_path, consolidated: bool) -> None:
    store = tmp_path / "s.zarr"
    _write(store, consolidated=consolidated)
    repo = zarrchive.Repo.create(tmp_path / "r")
    summary = repo.add_virtual_zarr(store, "z")
    assert summary.arrays == 6 and summary.references > 0
    repo.commit("zarr v2")
    expected = xr.open_zarr(store, consolidated=consolidated).load()
    xr.testing.assert_identical(repo.to_xarray("z").load(), expected)
    for name in ("t", "count"):
        np.testing.assert_array_equal(
            repo.root_group[f"z/{name}"][...], zarr.open_array(store / name, mode="r")[...]
        )
    # a fresh interpreter with only the source folder authorised reads the same values
    code = textwrap.dedent(
        f"""
        import numpy as np, zarr, zarrchive
        repo = zarrchive.Repo.open({str(tmp_path / "r")!r},
                                   authorize_virtual=[{f"file://{tmp_path}/s.zarr/"!r}])
        got = repo.root_group["z/t"][...]
        want = zarr.open_array({str(store / "t")!r}, mode="r")[...]
        np.testing.assert_array_equal(got, want)
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_nested_chunk_keys(tmp_path) -> None:
    base = tmp_path / "s.zarr"
    ds = _write(base, consolidated=False, separator="/")
    repo = zarrchive.Repo.create(tmp_path / "r")
    repo.add_virtual_zarr(f"{base}-nested", "z")
    np.testing.assert_array_equal(repo.root_group["z/t"][...], ds["t"].values)


def test_errors_leave_repository_unchanged(tmp_path) -> None:
    repo = zarrchive.Repo.create(tmp_path / "r")
    before = repo_state(repo, tmp_path / "r")
    with pytest.raises(NotFoundError):
        repo.add_virtual_zarr(tmp_path / "missing.zarr", "z")
    v3 = tmp_path / "v3.zarr"
    zarr.create_array(v3, shape=(2,), dtype="i4")
    with pytest.raises(InvalidInputError, match="Zarr v3 store"):
        repo.add_virtual_zarr(v3, "z")
    not_zarr = tmp_path / "plain"
    not_zarr.mkdir()
    (not_zarr / "file.txt").write_text("hello")
    with pytest.raises(InvalidInputError, match="not a Zarr v2 store"):
        repo.add_virtual_zarr(not_zarr, "z")
    unconsolidated = tmp_path / "u.zarr"
    _write(unconsolidated, consolidated=False)
    with pytest.raises(NotFoundError, match="consolidated"):
        repo.add_virtual_zarr(unconsolidated, "z", consolidated=True)
    assert repo_state(repo, tmp_path / "r") == before


def test_store_on_s3(s3_server, tmp_path) -> None:
    import s3fs

    from conftest import BUCKET

    local = tmp_path / "s.zarr"
    ds = _write(local, consolidated=True)
    fs = s3fs.S3FileSystem(**s3_server)
    url = f"s3://{BUCKET}/{uuid.uuid4().hex}/s.zarr"
    fs.put(str(local), url, recursive=True)
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    repo.add_virtual_zarr(url, "z", storage_options=s3_server)
    repo.commit("from s3")
    xr.testing.assert_identical(repo.to_xarray("z").load(), xr.open_zarr(local).load())
    np.testing.assert_array_equal(repo.root_group["z/t"][...], ds["t"].values)
    assert repo.verify().ok


def test_nan_attributes_stay_floats(tmp_path) -> None:
    """A NaN attribute of a Zarr v2 array (the JSON token NaN in .zattrs) reads back as a
    float, as xarray reads it from the v2 store (it used to become the string "NaN")."""
    path = tmp_path / "nan.zarr"
    ds = xr.Dataset({"v": ("x", np.arange(3.0), {"missing": np.nan, "top": np.inf})})
    ds.to_zarr(path, zarr_format=2, consolidated=False)
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    repo.add_virtual_zarr(path, "z")
    got = repo.to_xarray("z").load()
    ref = xr.open_zarr(path, zarr_format=2, consolidated=False).load()
    assert np.isnan(ref["v"].attrs["missing"]) and ref["v"].attrs["top"] == np.inf
    assert isinstance(got["v"].attrs["missing"], float) and np.isnan(got["v"].attrs["missing"])
    assert got["v"].attrs["top"] == np.inf
    assert repo.root_group["z/v"].attrs["top"] == np.inf


@pytest.mark.filterwarnings("ignore::zarr.errors.UnstableSpecificationWarning")
def test_number_fill_value_of_text_arrays_as_zarr_2_read_it(tmp_path) -> None:
    """zarr-python 2 wrote ``"fill_value": 0`` for fixed-width bytes and text arrays (zarr's
    own v2 fixture has 14 such arrays) and reads it as b"0" / "0"; zarr-python 3 refuses
    the metadata, which failed the whole store's import."""
    import json

    path = tmp_path / "legacy.zarr"
    root = zarr.open_group(path, mode="w", zarr_format=2)
    data = {"b": np.array([b"x", b"y", b"z", b"w"], dtype="S1"), "u": np.array(["ab", "c"] * 2)}
    for name, values in data.items():
        arr = root.create_array(name, shape=values.shape, chunks=(2,), dtype=values.dtype)
        arr[...] = values
        meta_path = path / name / ".zarray"
        meta = json.loads(meta_path.read_text())
        meta["fill_value"] = 0
        meta_path.write_text(json.dumps(meta))
    (path / "b" / "1").unlink()  # a missing chunk reads as the fill value
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    repo.add_virtual_zarr(path, "z")
    assert repo.root_group["z/b"][...].tolist() == [b"x", b"y", b"0", b"0"]
    assert repo.root_group["z/u"][...].tolist() == ["ab", "c", "ab", "c"]
    assert repo.root_group["z/u"].fill_value == "0"


def test_nested_chunk_keys_without_a_dimension_separator(tmp_path) -> None:
    """zarr 2's NestedDirectoryStore wrote "0/1" chunk keys before .zarray could name the
    separator (zarr's own v2 fixture, 'nested_legacy'): those keys are chunks, not unknown
    objects that failed the whole store's import."""
    import json

    path = tmp_path / "nested.zarr"
    values = np.arange(30, dtype="i8").reshape(5, 6)
    root = zarr.open_group(path, mode="w", zarr_format=2)
    arr = root.create_array(
        "a",
        shape=values.shape,
        chunks=(2, 4),
        dtype=values.dtype,
        chunk_key_encoding={"name": "v2", "separator": "/"},
    )
    arr[...] = values
    meta_path = path / "a" / ".zarray"
    meta = json.loads(meta_path.read_text())
    assert meta.pop("dimension_separator") == "/"
    meta_path.write_text(json.dumps(meta))
    repo = zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}")
    repo.add_virtual_zarr(path, "z")
    np.testing.assert_array_equal(repo.root_group["z/a"][...], values)

    (path / "a" / "0.0").write_bytes((path / "a" / "0" / "0").read_bytes())
    with pytest.raises(InvalidInputError, match="both by '.' and by '/'"):
        repo.add_virtual_zarr(path, "y")
