"""The README's main job: a versioned local repository, written, committed and read back.

Creates (or reopens) a repository in a local directory, writes a native array through
zarr-python, adds a virtual array whose chunks are byte ranges of a sample file, imports
sample NetCDF, GRIB and TIFF files as virtual datasets, commits, reads everything back
through xarray, and prints the tree, a source check, the commit log and status. Run it with
``python -m zarrchive demo [PATH]``.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"


def run(path: str = "demo-repo", sample_dir: Path = SAMPLE_DIR) -> None:

    from .repo import Repo

    repo = Repo.open_or_create(path, author="zarrchive demo")
    print(f"repository: {repo}")
    print(repo.status())

    root = repo.root_group
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    root.attrs["title"] = "zarrchive demo"
    root.attrs["last_run"] = stamp
    surface = root.require_group("surface")
    t2m = surface.require_array(
        "t2m",
        shape=(4, 10, 10),
        chunks=(1, 10, 10),
        dtype="f4",
        fill_value=np.nan,
        dimension_names=("time", "y", "x"),
        attributes={"units": "K", "long_name": "2 metre temperature"},
    )
    rng = np.random.default_rng()
    t2m[:] = 273.15 + rng.normal(size=(4, 10, 10)).astype("f4")
    time = surface.require_array(
        "time", shape=(4,), chunks=(4,), dtype="i8", dimension_names=("time",)
    )
    time[:] = np.arange(4)
    time.attrs["units"] = "days since 2024-01-01"

    sample = sample_dir / "raw_grid_f4le.bin"
    if sample.exists():
        raw = surface.require_array(
            "raw_virtual",
            shape=(4, 10, 10),
            chunks=(1, 10, 10),
            dtype="<f4",
            fill_value=np.nan,
            dimension_names=("time", "y", "x"),
            compressors=None,
            attributes={"source": sample.name},
        )
        coords = np.array([[t, 0, 0] for t in range(4)])
        repo.set_virtual_refs(
            raw.path, coords, sample.as_uri(), np.arange(4) * 400, np.full(4, 400)
        )
    imports: list[tuple[str, str, str, dict[str, Any]]] = [
        ("add_virtual_netcdf", "netcdf3_classic_scipy.nc", "samples/netcdf3", {}),
        ("add_virtual_netcdf", "netcdf4_sample.nc", "samples/netcdf4", {}),
        ("add_virtual_grib", "grib2_hypercube.grib2", "samples/grib", {}),
        ("add_virtual_tiff", "tiff_deflate_pred2_geo.tif", "samples/tiff", {}),
    ]
    for method, name, target, options in imports:
        source = sample_dir / name
        if not source.exists():
            continue
        summary = getattr(repo, method)(source, target, overwrite=True, **options)
        print(summary)
    print(repo.status())
    commit = repo.commit(f"demo run at {stamp}")
    print(f"committed {commit}")

    ds = repo.to_xarray("surface")
    print(ds)
    print("t2m mean:", float(ds["t2m"].mean()))
    if "raw_virtual" in ds:
        expected = np.fromfile(sample, dtype="<f4").reshape(4, 10, 10)
        assert np.array_equal(ds["raw_virtual"].values, expected), "virtual read mismatch"
        print("raw_virtual read from", sample.name, "matches the file")

    for group in ("samples/netcdf3", "samples/netcdf4"):
        if group in repo.session.nodes:
            read = repo.to_xarray(group)
            print(f"\n/{group} read back through xarray:")
            print(read)
    print("\nfilter_metadata(\"units == 'K'\"):", repo.filter_metadata("units == 'K'"))
    from rich.console import Console

    Console().print(repo.tree(depth=2))
    print(repo.verify())
    print("\ncommit log:")
    print(repo.commit_log)
    print("\nbranches:", repo.branches)
    print(repo.status())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    run(args[0] if args else "demo-repo")
    return 0
