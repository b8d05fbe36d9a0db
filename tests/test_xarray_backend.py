"""The xarray backend entry point: xr.open_dataset(location, engine="zarrchive", ...)."""

from __future__ import annotations

import numpy as np
import xarray as xr

import zarrchive


def test_open_dataset_by_engine_and_by_guess(tmp_path) -> None:
    location = tmp_path / "r"
    repo = zarrchive.Repo.create(location)
    g = repo.root_group.create_group("g")
    a = g.create_array("v", shape=(4,), chunks=(2,), dtype="f4", dimension_names=("x",))
    a[:] = [1, 2, 3, 4]
    a.attrs["units"] = "K"
    first = repo.commit("first")
    repo.root_group["g/v"][:] = [5, 6, 7, 8]
    repo.commit("second")
    repo.tag("v1", first)

    ds = xr.open_dataset(location, engine="zarrchive", group="g")
    np.testing.assert_array_equal(ds["v"].values, [5, 6, 7, 8])
    assert ds["v"].attrs["units"] == "K"
    for ref in (first, "v1"):
        old = xr.open_dataset(str(location), engine="zarrchive", group="/g", ref=ref)
        np.testing.assert_array_equal(old["v"].values, [1, 2, 3, 4])
    # without engine=, xarray recognises the repository by its config object
    guessed = xr.open_dataset(str(location), group="g")
    np.testing.assert_array_equal(guessed["v"].values, [5, 6, 7, 8])
    xr.testing.assert_identical(repo.to_xarray("g", ref="v1").load(), old.load())
