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


@pytest.mark.parametrize(
    "command",
    [
        "init",
        "import",
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
