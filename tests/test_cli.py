"""Every CLI command, run through the installed ``zarrchive`` entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

EXE = shutil.which("zarrchive")


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [EXE, *args] if EXE else [sys.executable, "-m", "zarrchive", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


@pytest.fixture
def sources(tmp_path):
    """A raw binary source, a kerchunk reference set over it, and a Zarr v2 store."""
    values = np.arange(40, dtype="<f4").reshape(4, 10)
    raw = tmp_path / "raw.bin"
    raw.write_bytes(values.tobytes())
    refs = {
        "version": 1,
        "refs": {
            ".zgroup": json.dumps({"zarr_format": 2}),
            ".zattrs": json.dumps({"title": "cli"}),
            "v/.zarray": json.dumps(
                {
                    "zarr_format": 2,
                    "shape": [4, 10],
                    "chunks": [1, 10],
                    "dtype": "<f4",
                    "compressor": None,
                    "filters": None,
                    "fill_value": None,
                    "order": "C",
                }
            ),
            "v/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["t", "x"], "units": "K"}),
            **{f"v/{i}.0": [str(raw), i * 40, 40] for i in range(4)},
        },
    }
    ref_file = tmp_path / "refs.json"
    ref_file.write_text(json.dumps(refs))
    store = tmp_path / "v2.zarr"
    xr.Dataset({"w": (("x",), np.arange(5.0))}).to_zarr(store, zarr_format=2)
    return values, ref_file, store


def test_cli_round_trip(tmp_path, sources) -> None:
    values, ref_file, store = sources
    repo = str(tmp_path / "repo")
    base = ["--repo", repo, "--authorize", f"file://{tmp_path}/"]
    assert "created repository" in run("--repo", repo, "init").stdout
    out = json.loads(run(*base, "--json", "import", "kerchunk", str(ref_file), "data").stdout)
    assert out["references"] == 4 and out["arrays"] == 1
    first = out["commit"]
    run(*base, "import", "zarr", str(store), "store", "-m", "zarr store")
    log = json.loads(run(*base, "--json", "log").stdout)
    assert [c["message"] for c in log][:2] == ["zarr store", f"import {ref_file} at /data"]
    tree = run(*base, "tree").stdout
    assert "data" in tree and "store" in tree and "v (t, x) float32" in tree
    assert json.loads(run(*base, "--json", "tree", "--filter", "units == 'K'").stdout) == ["data/v"]
    run(*base, "branch", "dev", "--from", first)
    assert json.loads(run(*base, "--json", "branch").stdout) == {"dev": first, "main": log[0]["id"]}
    run(*base, "tag", "v1", "--commit", first, "-m", "first import")
    assert json.loads(run(*base, "--json", "tag").stdout) == {"v1": first}
    co = json.loads(run(*base, "--json", "checkout", "v1").stdout)
    assert co["commit"] == first and co["writable"] is False
    d = json.loads(run(*base, "--json", "diff", "v1", "main").stdout)
    assert d["new_groups"] == ["store"]
    assert "all sources unchanged" in run(*base, "verify").stdout
    status = run(*base, "status").stdout
    assert "branch main" in status and "no active sessions" in status
    target = tmp_path / "export.json"
    run(*base, "export-kerchunk", str(target), "--ref", "v1")
    ds = xr.open_dataset(
        "reference://",
        engine="zarr",
        backend_kwargs={"consolidated": True, "storage_options": {"fo": str(target)}},
        group="data",
    )
    np.testing.assert_array_equal(ds["v"].values, values)
    gc = run(*base, "gc", "--dry-run").stdout
    assert "dry run" in gc.lower() or "would" in gc.lower() or "deleted" in gc.lower()
    run(*base, "tag", "v1", "--delete")
    run(*base, "branch", "dev", "--delete")
    assert json.loads(run(*base, "--json", "branch").stdout).keys() == {"main"}

    # a stale source makes verify fail with a non-zero exit code
    raw = tmp_path / "raw.bin"
    raw.write_bytes(raw.read_bytes()[:-4] + b"\x00\x00\x00\x00")
    bad = run(*base, "verify", ok=False)
    assert bad.returncode == 1 and "stale" in bad.stdout


def test_cli_errors_are_one_line(tmp_path) -> None:
    missing = run("--repo", str(tmp_path / "nothing"), "log", ok=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0
    assert missing.stderr.startswith("error: NotFoundError: no zarrchive repository")
    repo = str(tmp_path / "r")
    run("--repo", repo, "init")
    again = run("--repo", repo, "init", ok=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    bad_ref = run("--repo", repo, "checkout", "nope", ok=False)
    assert bad_ref.returncode == 1 and "no branch, tag or commit" in bad_ref.stderr
    usage = run("--repo", repo, "import", "nope", "a", "b", ok=False)
    assert usage.returncode == 2


def _daily(folder, days: range) -> list[str]:
    """One small NetCDF4 file per day (written by xarray's netCDF4 engine)."""
    import pandas as pd

    folder.mkdir(exist_ok=True)
    out = []
    for i in days:
        ds = xr.Dataset(
            {"t2m": (("time", "x"), np.full((1, 6), 270.0 + i, dtype="f4"), {"units": "K"})},
            coords={"time": pd.date_range("2024-01-01", periods=20)[i : i + 1], "x": np.arange(6)},
        )
        path = folder / f"t2m_{i:02d}.nc"
        ds.to_netcdf(path, engine="netcdf4")
        out.append(str(path))
    return out


def test_cli_import_and_append_catalog(tmp_path) -> None:
    files = _daily(tmp_path / "daily", range(8))
    repo = str(tmp_path / "repo")
    base = ["--repo", repo, "--authorize", f"file://{tmp_path}/daily/"]
    run("--repo", repo, "init")
    glob = str(tmp_path / "daily" / "t2m_0[0-5].nc")
    report = json.loads(run(*base, "--json", "import-catalog", glob, "--path", "era5").stdout)
    assert (report["sources"], report["skipped"], report["path"]) == (6, 0, "era5")
    # one t2m chunk per day, x once, time as one native chunk
    assert report["references"] == 6 + 1 + 1 and report["commit"]

    # a rerun adds nothing and makes no commit; the text report says so
    again = run(*base, "import-catalog", glob, "--path", "era5").stdout
    assert "nothing to add" in again and "no commit" in again

    # tomorrow's files (a list file) land as one commit
    listing = tmp_path / "new.txt"
    listing.write_text("\n".join(files[6:]) + "\n")
    appended = json.loads(
        run(*base, "--json", "append-catalog", str(listing), "-p", "era5", "-m", "two days").stdout
    )
    assert appended["sources"] == 2
    log = json.loads(run(*base, "--json", "log").stdout)
    assert [c["message"] for c in log][:2] == ["two days", "import_catalog /era5: 6 sources"]
    assert log[0]["id"] == appended["commit"]

    import zarrchive

    got = zarrchive.Repo.open(repo, authorize_virtual=[f"file://{tmp_path}/daily/"])
    expected = xr.combine_by_coords([xr.open_dataset(f, engine="netcdf4") for f in files])
    xr.testing.assert_equal(got.to_xarray("era5").load(), expected.load())

    # a bad source: a one-line error, exit status 1, and the branch as it was
    (tmp_path / "daily" / "t2m_99.nc").write_bytes(b"not a netCDF file")
    junk = str(tmp_path / "daily" / "t2m_99.nc")
    bad = run(*base, "append-catalog", junk, "-p", "era5", ok=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "t2m_99.nc" in bad.stderr
    assert json.loads(run(*base, "--json", "log").stdout)[0]["id"] == appended["commit"]


def test_cli_catalog_progress_on_a_terminal(tmp_path) -> None:
    """A progress bar when stderr is a terminal (through a pseudo-terminal here)."""
    import os
    import pty

    _daily(tmp_path / "daily", range(3))
    repo = str(tmp_path / "repo")
    run("--repo", repo, "init")
    glob = str(tmp_path / "daily" / "*.nc")
    leader, follower = pty.openpty()
    cmd = [EXE] if EXE else [sys.executable, "-m", "zarrchive"]
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    proc = subprocess.run(
        [*cmd, "--repo", repo, "import-catalog", glob, "-p", "era5"],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
        timeout=120,
        text=True,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the other side is closed and drained
            break
        if not data:
            break
        shown += data
    os.close(leader)
    assert proc.returncode == 0
    assert "3 sources added" in proc.stdout
    text = shown.decode("utf-8", "replace")
    assert "scanning 3 sources" in text and "writing 3 sources" in text


@pytest.mark.parametrize(
    "command",
    [
        "init",
        "import",
        "import-catalog",
        "append-catalog",
        "status",
        "log",
        "branch",
        "tag",
        "checkout",
        "tree",
        "diff",
        "verify",
        "export-kerchunk",
        "gc",
        "demo",
    ],
)
def test_help_for_every_command(command: str) -> None:
    out = run(command, "--help")
    assert "Usage:" in out.stdout
