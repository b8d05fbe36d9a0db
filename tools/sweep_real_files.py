"""Sweep real-world files through the importers and compare with each format's own reader.

An optional tool (not run by CI). Point it at directories holding other projects' test
files (for example unpacked source distributions); it finds every NetCDF3, HDF5 / NetCDF4,
GRIB, TIFF file and Zarr v2 store by its first bytes (or ``.zgroup`` / ``.zarray``), imports
each one into a fresh ``memory://`` repository with the matching ``repo.add_virtual_*`` and
compares what zarr and xarray read back through the repository with the reference reader:

- NetCDF3: xarray's ``netCDF4`` and ``scipy`` engines (decoded datasets), and the raw values
  of every variable through netCDF4 with masking and scaling off;
- HDF5 / NetCDF4: every dataset's values through h5py, and every group through xarray's
  ``h5netcdf`` engine (``phony_dims="sort"``), when h5netcdf can open the file;
- GRIB: cfgrib, one (shortName, typeOfLevel, dataType, numberOfPoints) selection per group;
- TIFF: tifffile, every level of the first series;
- Zarr v2: zarr-python (every array) and xarray's zarr engine.

Each file runs in its own subprocess with a timeout, so a crash or a hang of a C library is
reported instead of ending the sweep. Outcomes:

- ``OK``: every comparison agrees (``OK*``: only attribute value types differ, e.g. a
  float32 attribute read back as a Python float);
- ``TYPED``: a ``zarrchive.errors`` exception (acceptable when the feature is really
  unsupported and the message names the dataset and the feature: read the message);
- ``WRONG``: some values, dims, shapes, dtypes, coordinates or attributes differ;
- ``UNTYPED``: any other exception from zarrchive (import or read back);
- ``CRASH`` / ``HANG``: the subprocess died or ran out of time;
- ``NOREF``: zarrchive imported the file but no reference reader could read it.

Usage::

    python tools/sweep_real_files.py /tmp/realworld/src [more dirs] [--timeout 180]
        [--jobs 2] [--json results.json] [--only SUBSTRING] [-v]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

MAX_DETAILS = 12


# ---------------------------------------------------------------------- discovery
def discover(roots: list[Path]) -> Iterator[tuple[Path, str]]:
    """(path, format) of every recognised file or Zarr v2 store under ``roots``."""
    from zarrchive.importers import detect_format

    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            if ".zgroup" in filenames or ".zarray" in filenames:
                yield Path(dirpath), "zarr_v2"
                dirnames.clear()  # the store's members are not separate inputs
                continue
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath, name)
                if path.is_symlink() or not path.is_file():
                    continue
                try:
                    with open(path, "rb") as f:
                        head = f.read(4096)
                except OSError:
                    continue
                if len(head) < 8:
                    continue
                try:
                    fmt = detect_format(head)
                except Exception:  # noqa: BLE001, S112 - not a format we import
                    continue
                if fmt == "grib" and not _grib_start(head):
                    continue  # the word "GRIB" in some text or other binary file
                yield path, fmt


def _grib_start(head: bytes) -> bool:
    """Whether ``head`` holds the start of a GRIB message (edition 1 or 2 after "GRIB")."""
    at = head.find(b"GRIB")
    while at >= 0:
        if len(head) > at + 7 and head[at + 7] in (1, 2):
            return True
        at = head.find(b"GRIB", at + 1)
    return False


# ---------------------------------------------------------------------- comparisons
class Report:
    """Differences found for one file, by severity."""

    def __init__(self) -> None:
        self.wrong: list[str] = []
        self.minor: list[str] = []
        self.notes: list[str] = []
        #: the default import raised a typed error; the rest was checked with on_unsupported
        self.typed = False

    def bad(self, msg: str) -> None:
        self.wrong.append(msg)

    def soft(self, msg: str) -> None:
        self.minor.append(msg)


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        try:
            return bool(np.array_equal(a, b, equal_nan=True))
        except TypeError:
            return bool(np.array_equal(a, b))
    if a.dtype.kind in "mM" or b.dtype.kind in "mM":
        return bool(np.array_equal(a.astype("int64"), b.astype("int64")))
    if a.dtype.kind == "O" or b.dtype.kind == "O":
        return [_norm(x) for x in a.ravel().tolist()] == [_norm(x) for x in b.ravel().tolist()]
    return bool(np.array_equal(a, b))


def _norm(x: Any) -> Any:
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    return x


def _attr_norm(v: Any) -> Any:
    """An attribute value in a form where the same value compares equal across readers."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        if v.size == 1 and v.ndim <= 1:
            return _attr_norm(v.reshape(-1)[0])
        return [_attr_norm(x) for x in v.tolist()]
    if isinstance(v, list | tuple):
        if len(v) == 1:
            return _attr_norm(v[0])
        return [_attr_norm(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, bool):
        return int(v)
    return v


def _kind(v: Any) -> str:
    """The kind of an attribute value: number types of any width compare equal (JSON has
    one number type), but a number against a string, or a scalar against a list, do not."""
    if isinstance(v, np.ndarray | list | tuple):
        items = list(np.asarray(v, dtype=object).ravel()) if isinstance(v, np.ndarray) else v
        if len(items) == 1:
            return _kind(items[0])
        return f"list[{_kind(items[0]) if items else ''}]"
    if isinstance(v, bool | np.bool_):
        return "bool"
    if isinstance(v, int | np.integer):
        return "int"
    if isinstance(v, float | np.floating):
        return "float"
    if isinstance(v, str | bytes):
        return "str"
    return type(v).__name__


def compare_attrs(got: dict[str, Any], ref: dict[str, Any], where: str, rep: Report) -> None:
    for key in sorted(set(got) | set(ref)):
        if key not in got:
            rep.bad(f"{where}: attribute {key!r} missing (reference: {ref[key]!r:.80})")
            continue
        if key not in ref:
            rep.bad(f"{where}: extra attribute {key!r} = {got[key]!r:.80}")
            continue
        g, r = _attr_norm(got[key]), _attr_norm(ref[key])
        if g != r:
            rep.bad(f"{where}: attribute {key!r} = {got[key]!r:.80}, reference {ref[key]!r:.80}")
        elif _kind(got[key]) != _kind(ref[key]):
            rep.soft(
                f"{where}: attribute {key!r} is {_kind(got[key])} {got[key]!r:.60}, reference "
                f"{_kind(ref[key])} {ref[key]!r:.60}"
            )


def compare_datasets(got: Any, ref: Any, where: str, rep: Report) -> None:
    """Two xarray Datasets: variables, coordinates, dims, dtypes, values, attributes."""
    gnames, rnames = set(got.variables), set(ref.variables)
    for name in sorted(rnames - gnames):
        rep.bad(f"{where}: variable {name!r} missing")
    for name in sorted(gnames - rnames):
        rep.bad(f"{where}: extra variable {name!r}")
    if set(got.coords) != set(ref.coords):
        rep.bad(f"{where}: coords {sorted(got.coords)} vs reference {sorted(ref.coords)}")
    hidden = {k for k in ref.attrs if k.lower().startswith("_nc") and k not in got.attrs}
    if hidden:
        # xarray's zarr backend hides group attributes named _nc* (NetCDF's internal ones)
        rep.notes.append(f"{where}: xarray's zarr backend hides {sorted(hidden)}")
    ref_attrs = {k: v for k, v in ref.attrs.items() if k not in hidden}
    compare_attrs(dict(got.attrs), ref_attrs, f"{where} (group)", rep)
    for name in sorted(gnames & rnames):
        g, r = got[name].variable, ref[name].variable
        w = f"{where}/{name}"
        if g.dims != r.dims:
            rep.bad(f"{w}: dims {g.dims} vs reference {r.dims}")
            continue
        if g.shape != r.shape:
            rep.bad(f"{w}: shape {g.shape} vs reference {r.shape}")
            continue
        try:
            gv, rv = np.asarray(g.values), np.asarray(r.values)
        except Exception as exc:  # noqa: BLE001
            rep.bad(f"{w}: cannot read values: {type(exc).__name__}: {exc}"[:300])
            continue
        packed = "scale_factor" in r.encoding or "add_offset" in r.encoding
        if g.dtype == np.float64 and r.dtype == np.float32 and packed:
            # JSON has no float32: xarray unpacks with the attribute's Python float type, in
            # float64, where the reference rounds each float32 step (x * scale, + offset):
            # agreement to float32 precision of the largest value is all one can ask
            finite = np.abs(rv[np.isfinite(rv)])
            top = np.float32(finite.max()) if finite.size else np.float32(1)
            close = np.abs(gv - rv.astype("f8")) <= 4 * float(np.spacing(top))
            if (close | (np.isnan(gv) & np.isnan(rv))).all():
                rep.soft(f"{w}: unpacked to float64, reference float32 (values agree)")
                compare_attrs(dict(g.attrs), dict(r.attrs), w, rep)
                continue
        if g.dtype != r.dtype:
            rep.bad(f"{w}: dtype {g.dtype} vs reference {r.dtype}")
        if gv.dtype != rv.dtype and gv.dtype.kind in "fiu" and rv.dtype.kind in "fiu":
            common = np.result_type(gv.dtype, rv.dtype)
            same = _same_values(gv.astype(common), rv.astype(common))
        else:
            same = _same_values(gv, rv)
        if not same:
            rep.bad(f"{w}: values differ ({_value_diff(gv, rv)})")
        compare_attrs(dict(g.attrs), dict(r.attrs), w, rep)


def _value_diff(a: np.ndarray, b: np.ndarray) -> str:
    try:
        if a.shape == b.shape and a.dtype.kind in "fiu" and b.dtype.kind in "fiu":
            a64, b64 = a.astype("f8"), b.astype("f8")
            neq = ~((a64 == b64) | (np.isnan(a64) & np.isnan(b64)))
            i = np.unravel_index(int(np.argmax(neq)), a.shape) if a.ndim else ()
            return (
                f"{int(neq.sum())} of {a.size} elements, e.g. at {tuple(map(int, i))}: "
                f"{a[i]!r} vs {b[i]!r}"
            )
        return f"{a.ravel()[:4]!r} vs {b.ravel()[:4]!r}"[:200]
    except Exception as exc:  # noqa: BLE001
        return f"({exc})"


def compare_arrays(got: np.ndarray, ref: np.ndarray, where: str, rep: Report) -> None:
    if got.shape != ref.shape:
        rep.bad(f"{where}: shape {got.shape} vs reference {ref.shape}")
        return
    if ref.dtype.kind != "O" and got.dtype != ref.dtype.newbyteorder("="):
        if got.dtype.str[1:] != ref.dtype.str[1:]:
            rep.bad(f"{where}: dtype {got.dtype} vs reference {ref.dtype}")
    if not _same_values(got, ref):
        rep.bad(f"{where}: values differ ({_value_diff(got, ref)})")


# ---------------------------------------------------------------------- one file
def _quiet() -> Any:
    ctx = warnings.catch_warnings(record=True)
    return ctx


def _new_repo() -> Any:
    import zarrchive

    return zarrchive.Repo.create(f"memory://{uuid.uuid4().hex}", author="sweep")


def _groups(repo: Any, prefix: str) -> list[str]:
    """The import point and every group below it (relative paths, "" for the top)."""
    root = repo.root_group[prefix]
    out = [""]
    for name, node in root.members(max_depth=None):
        if hasattr(node, "group_keys"):
            out.append(name)
    return out


#: set when xarray cannot decode a file's times, through the repository or the reference:
#: both sides are then compared with decode_times=False
DECODE: dict[str, Any] = {}


def _ours(repo: Any, group: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return repo.to_xarray(group, **DECODE).load()
        except (ValueError, OverflowError) as exc:
            if DECODE or "decode" not in str(exc) and "time" not in str(exc):
                raise
            DECODE["decode_times"] = False
            return repo.to_xarray(group, **DECODE).load()


def _xr_ref(path: Path, engine: str, group: str | None = None, **kw: Any) -> Any:
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with xr.open_dataset(path, engine=engine, group=group or None, **DECODE, **kw) as ds:
                return ds.load()
        except (ValueError, OverflowError) as exc:
            if DECODE or "decode" not in str(exc) and "time" not in str(exc):
                raise
        DECODE["decode_times"] = False
        with xr.open_dataset(path, engine=engine, group=group or None, **DECODE, **kw) as ds:
            return ds.load()


def _pair(ours: Any, ref: Any) -> tuple[Any, Any]:
    """(ours(), ref()) read with the same decoding (re-read when one side had to turn time
    decoding off)."""
    before = dict(DECODE)
    r = ref()
    g = ours()
    if DECODE != before:
        r, g = ref(), ours()
    return g, r


def check_netcdf3(path: Path, rep: Report) -> None:
    import netCDF4

    repo = _new_repo()
    repo.add_virtual_netcdf(path, "f")
    repo.commit("sweep")
    refs = 0
    for engine in ("netcdf4", "scipy"):
        try:
            got, ref = _pair(lambda: _ours(repo, "f"), lambda e=engine: _xr_ref(path, e))
        except Exception as exc:  # noqa: BLE001
            rep.notes.append(f"{engine} engine cannot read it: {type(exc).__name__}: {exc}"[:200])
            continue
        refs += 1
        compare_datasets(got, ref, f"[{engine}]", rep)
    try:
        with netCDF4.Dataset(path) as nc:
            nc.set_auto_maskandscale(False)
            nc.set_auto_chartostring(False)
            refs += 1
            for name, var in nc.variables.items():
                want = np.asarray(var[...])
                have = np.asarray(repo.root_group[f"f/{name}"][...])
                compare_arrays(have, want, f"[raw]/{name}", rep)
    except OSError as exc:
        rep.notes.append(f"netCDF4 cannot read it: {exc}"[:200])
    if not refs:
        raise _NoReference


def _h5_names(f: Any) -> list[str]:
    import h5py

    names: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            names.append(name)

    f.visititems(visit)
    return names


def check_hdf5(path: Path, rep: Report) -> None:
    import h5py

    try:
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass
    from zarrchive.errors import UnsupportedFeatureError

    repo = _new_repo()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            repo.add_virtual_netcdf(path, "f")
        except UnsupportedFeatureError as exc:
            # the file has datasets that cannot be virtual: record that, then check the rest
            rep.notes.insert(0, f"{type(exc).__name__}: {exc}"[:1500])
            rep.typed = True
            repo.add_virtual_netcdf(path, "f", on_unsupported="skip")
    for w in caught:
        msg = str(w.message)
        if "Zarr V3 specification" in msg or "Numcodecs codecs" in msg:
            continue
        rep.notes.append(f"warning: {msg}"[:600])
    repo.commit("sweep")
    root = repo.root_group["f"]
    imported = {name for name, node in root.members(max_depth=None) if hasattr(node, "dtype")}
    with h5py.File(path, "r") as f:
        for name in _h5_names(f):
            ds = f[name]
            nm = name.split("/")[-1]
            key = "/".join([*name.split("/")[:-1], nm.removeprefix("_nc4_non_coord_")])
            na = ds.attrs.get("NAME", b"")
            if isinstance(na, bytes) and na.startswith(b"This is a netCDF dimension but not"):
                continue
            if key not in imported:
                if not (rep.typed or any("left out" in n for n in rep.notes)):
                    rep.bad(f"[h5py]/{name}: dataset not imported and no warning says why")
                continue
            try:
                info = h5py.check_string_dtype(ds.dtype)
                if info is not None and info.length is None:
                    want = np.asarray(ds.asstr(errors="replace")[()], dtype=object)
                else:
                    want = np.asarray(ds[()])
            except Exception as exc:  # noqa: BLE001
                rep.notes.append(f"h5py cannot read /{name}: {type(exc).__name__}: {exc}"[:200])
                continue
            have = np.asarray(root[key][...])
            inside = tuple(slice(0, s) for s in want.shape)
            if have.shape != want.shape and have.ndim == want.ndim:
                if all(h >= w for h, w in zip(have.shape, want.shape, strict=True)):
                    have = have[inside]  # a dataset shorter than its NetCDF dimension
            compare_arrays(have, want, f"[h5py]/{name}", rep)
    # xarray through h5netcdf, group by group
    groups = _groups(repo, "f")
    opened = 0
    for group in groups:
        try:
            ref = _xr_ref(path, "h5netcdf", group, phony_dims="sort")
        except Exception as exc:  # noqa: BLE001
            rep.notes.append(
                f"h5netcdf cannot read group /{group}: {type(exc).__name__}: {exc}"[:200]
            )
            continue
        opened += 1
        try:
            got, ref = _pair(
                lambda g=group: _ours(repo, f"f/{g}" if g else "f"),
                lambda g=group: _xr_ref(path, "h5netcdf", g, phony_dims="sort"),
            )
        except Exception as exc:  # noqa: BLE001
            rep.bad(f"[xarray]/{group}: to_xarray fails: {type(exc).__name__}: {exc}"[:400])
            continue
        if rep.typed or any("left out" in n for n in rep.notes):
            # variables left out on purpose are not in ours: compare what is there
            ref = ref.drop_vars([v for v in ref.variables if v not in got.variables])
        compare_datasets(got, ref, f"[h5netcdf]/{group}", rep)


def check_grib(path: Path, rep: Report) -> None:
    import xarray as xr

    repo = _new_repo()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        repo.add_virtual_grib(path, "g")
    for w in caught:
        rep.notes.append(f"warning: {w.message}"[:400])
    repo.commit("sweep")
    names = sorted(repo.root_group["g"].group_keys())
    # cfgrib indexes the whole file on every open: keep its index in a temporary directory
    # so that one group after another does not re-read every message
    index = os.path.join(tempfile.mkdtemp(prefix="sweep-cfgrib-"), "{short_hash}.idx")
    for group in names:
        got = _ours(repo, f"g/{group}")
        (var,) = got.data_vars
        attrs = got[var].attrs
        comment = str(got.attrs.get("comment", ""))
        if "repeat one of its" in comment:
            rep.notes.append(f"{group}: duplicates of another group's cells (not compared)")
            continue
        keys = {
            key: attrs[f"GRIB_{key}"]
            for key in ("shortName", "typeOfLevel", "dataType", "numberOfPoints")
            if f"GRIB_{key}" in attrs
        }
        for extra in ("stepType", "paramId", "gridType"):
            if comment and f"GRIB_{extra}" in attrs:
                keys[extra] = attrs[f"GRIB_{extra}"]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = xr.open_dataset(
                    path,
                    engine="cfgrib",
                    backend_kwargs={"filter_by_keys": keys, "indexpath": index},
                ).load()
        except Exception as exc:  # noqa: BLE001
            rep.notes.append(
                f"cfgrib cannot read {group} ({keys}): {type(exc).__name__}: {exc}"[:300]
            )
            continue
        got.attrs = {k: v for k, v in got.attrs.items() if k not in ("history", "comment")}
        ref.attrs.pop("history", None)
        sub = Report()
        compare_datasets(got, ref, f"[cfgrib]/{group}", sub)
        flags = (
            attrs.get("GRIB_jPointsAreConsecutive") == 1 or attrs.get("GRIB_iScansNegatively") == 1
        )
        if sub.wrong and flags:
            # cfgrib ignores these scanning modes (zarrchive follows the data on purpose):
            # judge the values by ecCodes' own coordinates of every point instead
            verdict = _grib_points_agree(path, got[var], attrs)
            if verdict is True:
                rep.notes.append(f"{group}: cfgrib differs ({sub.wrong[0]}); ecCodes agrees")
                sub.wrong = [w for w in sub.wrong if "values differ" not in w]
            elif verdict is not None:
                sub.wrong.append(f"{group}: ecCodes' coordinates disagree too: {verdict}")
        rep.wrong += sub.wrong
        rep.minor += sub.minor
        rep.notes += sub.notes


def _grib_points_agree(path: Path, var: Any, attrs: dict[str, Any]) -> bool | str | None:
    """Whether the one message of this variable has, at each (latitude, longitude) that
    ecCodes gives its points, the value ecCodes decodes there (None: not one message or
    not a regular grid)."""
    import eccodes

    if "latitude" not in var.coords or var.coords["latitude"].ndim != 1:
        return None
    found = []
    with open(path, "rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            try:
                if eccodes.codes_get(h, "shortName") == attrs.get(
                    "GRIB_shortName"
                ) and eccodes.codes_get(h, "typeOfLevel") == attrs.get("GRIB_typeOfLevel"):
                    eccodes.codes_set(h, "missingValue", 9.999e20)
                    values = eccodes.codes_get_values(h)
                    values[values == 9.999e20] = np.nan
                    found.append(
                        (
                            eccodes.codes_get_array(h, "latitudes"),
                            eccodes.codes_get_array(h, "longitudes"),
                            values,
                        )
                    )
            finally:
                eccodes.codes_release(h)
    if len(found) != 1 or var.squeeze().ndim != 2:
        return None
    lats, lons, values = found[0]
    grid = var.squeeze()
    got = grid.sel(
        latitude=xr_points(lats), longitude=xr_points(lons), method="nearest"
    ).values.astype("f8")
    ok = (got == values.astype("f4").astype("f8")) | (np.isnan(got) & np.isnan(values))
    return True if ok.all() else f"{int((~ok).sum())} of {ok.size} points"


def xr_points(values: np.ndarray) -> Any:
    import xarray as xr

    return xr.DataArray(values, dims="point")


def check_tiff(path: Path, rep: Report) -> None:
    import tifffile

    repo = _new_repo()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        repo.add_virtual_tiff(path, "t")
    for w in caught:
        msg = str(w.message)
        if "Zarr V3 specification" not in msg:
            rep.notes.append(f"warning: {msg}"[:400])
    repo.commit("sweep")
    node = repo.root_group["t"]
    try:
        with tifffile.TiffFile(path) as tif:
            levels = [level.asarray() for level in tif.series[0].levels]
    except Exception as exc:  # noqa: BLE001
        rep.notes.append(f"tifffile cannot read it: {type(exc).__name__}: {exc}"[:200])
        raise _NoReference from exc
    arrays = sorted((k for k, _ in node.arrays()), key=int)
    if len(arrays) != len(levels):
        rep.soft(f"{len(arrays)} arrays, tifffile has {len(levels)} levels")
    for k, values in enumerate(levels):
        if str(k) not in arrays:
            continue
        got = np.asarray(node[str(k)][...])
        if got.shape != values.shape and got.squeeze().shape == values.squeeze().shape:
            rep.soft(f"level {k}: shape {got.shape}, tifffile {values.shape}")
            got = got.reshape(values.shape)
        compare_arrays(got, values, f"[tifffile]/level {k}", rep)
    _ours(repo, "t")  # xarray opens it too


def check_zarr_v2(path: Path, rep: Report) -> None:
    import xarray as xr
    import zarr

    repo = _new_repo()
    repo.add_virtual_zarr(path, "z")
    repo.commit("sweep")
    root = repo.root_group["z"]
    pairs: list[tuple[str, Any]] = []
    # array by array: zarr-python 3 refuses some metadata that zarr 2 wrote (and zarrchive
    # reads as zarr 2 did); those arrays have no reference here
    for dirpath, _, files in os.walk(path):
        if ".zarray" in files:
            name = os.path.relpath(dirpath, path).replace(os.sep, "/")
            name = "" if name == "." else name
            try:
                pairs.append((name, zarr.open_array(dirpath, mode="r", zarr_format=2)))
            except Exception as exc:  # noqa: BLE001
                rep.notes.append(f"zarr cannot open /{name}: {type(exc).__name__}: {exc}"[:200])
    if not pairs:
        raise _NoReference
    is_group = (Path(path) / ".zgroup").exists()
    for name, arr in pairs:
        want = np.asarray(arr[...])
        have = np.asarray(root[name][...] if name else root[...])
        compare_arrays(have, want, f"[zarr]/{name}", rep)
        # v3 holds _ARRAY_DIMENSIONS as dimension_names; a v2 fill value is also carried as
        # xarray's _FillValue attribute (xarray masks with it in v2, not with a v3 fill_value)
        want_attrs = {k: v for k, v in arr.attrs.items() if k != "_ARRAY_DIMENSIONS"}
        node = root[name] if name else root
        got_attrs = dict(node.attrs)
        if "_FillValue" not in want_attrs and arr.fill_value is not None:
            got_attrs.pop("_FillValue", None)
        compare_attrs(got_attrs, want_attrs, f"[zarr]/{name}", rep)
        dims = arr.attrs.get("_ARRAY_DIMENSIONS")
        if dims is not None and list(node.metadata.dimension_names or ()) != list(dims):
            rep.bad(f"[zarr]/{name}: dimension names {node.metadata.dimension_names} vs {dims}")
    if is_group and not any("zarr cannot open" in n for n in rep.notes):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = xr.open_zarr(str(path), zarr_format=2, consolidated=False).load()
        except Exception as exc:  # noqa: BLE001
            rep.notes.append(f"xarray cannot read it: {type(exc).__name__}: {exc}"[:200])
            return
        compare_datasets(_ours(repo, "z"), ref, "[xarray]", rep)


class _NoReference(Exception):
    pass


CHECKS = {
    "netcdf3": check_netcdf3,
    "hdf5": check_hdf5,
    "grib": check_grib,
    "tiff": check_tiff,
    "zarr_v2": check_zarr_v2,
}


def run_one(path: Path, fmt: str) -> dict[str, Any]:
    """Import and compare one file (in this process); a JSON-able result."""
    from zarrchive.errors import ZarrchiveError

    rep = Report()
    t0 = time.perf_counter()
    try:
        CHECKS[fmt](path, rep)
    except _NoReference:
        status = "NOREF"
    except ZarrchiveError as exc:
        status = "TYPED"
        rep.notes.insert(0, f"{type(exc).__name__}: {exc}"[:2000])
    except Exception as exc:  # noqa: BLE001
        status = "UNTYPED"
        tb = traceback.format_exc(limit=-4)
        rep.notes.insert(0, f"{type(exc).__name__}: {exc}"[:800] + "\n" + tb[-1500:])
    else:
        status = "WRONG" if rep.wrong else ("TYPED" if rep.typed else "OK*" if rep.minor else "OK")
    if status == "NOREF" and rep.wrong:
        status = "WRONG"
    return {
        "path": str(path),
        "format": fmt,
        "status": status,
        "wrong": rep.wrong,
        "minor": rep.minor,
        "notes": rep.notes,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def run_subprocess(path: Path, fmt: str, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", str(path), "--format", fmt]
    base = {"path": str(path), "format": fmt, "wrong": [], "minor": []}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)  # noqa: S603
    except subprocess.TimeoutExpired:
        return {**base, "status": "HANG", "notes": [f"no result after {timeout} s"]}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    tail = (proc.stderr or "")[-800:]
    return {**base, "status": "CRASH", "notes": [f"exit code {proc.returncode}: {tail}"]}


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("roots", nargs="*", type=Path)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write every result to this file")
    parser.add_argument("--only", help="only paths containing this text")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every detail")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        warnings.simplefilter("ignore")
        print(json.dumps(run_one(args.one, args.format)), flush=True)
        return 0

    found = [(p, f) for p, f in discover(args.roots) if not args.only or args.only in str(p)]
    print(f"{len(found)} files: {dict(Counter(f for _, f in found))}", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda pf: run_subprocess(*pf, args.timeout), found))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    _print_table(results, args.roots, verbose=args.verbose)
    return 0


def _short(path: str, roots: list[Path]) -> str:
    for root in roots:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            continue
    return path


def _print_table(results: list[dict[str, Any]], roots: list[Path], *, verbose: bool) -> None:
    width = max((len(_short(r["path"], roots)) for r in results), default=10)
    width = min(width, 90)
    print()
    print(f"{'file':<{width}}  {'format':<8} {'outcome':<8} detail")
    for r in results:
        detail = ""
        if r["wrong"]:
            detail = r["wrong"][0]
        elif r["status"] in ("TYPED", "UNTYPED", "CRASH", "HANG", "NOREF") and r["notes"]:
            detail = r["notes"][0].splitlines()[0]
        elif r["minor"]:
            detail = r["minor"][0]
        print(
            f"{_short(r['path'], roots)[-width:]:<{width}}  {r['format']:<8} {r['status']:<8} "
            f"{detail[:160]}"
        )
        if verbose:
            for line in r["wrong"][1:MAX_DETAILS] + r["minor"][:MAX_DETAILS] + r["notes"]:
                print(f"{'':<{width}}    {line[:600]}")
    print()
    counts = Counter((r["format"], r["status"]) for r in results)
    formats = sorted({f for f, _ in counts})
    statuses = ["OK", "OK*", "TYPED", "WRONG", "UNTYPED", "CRASH", "HANG", "NOREF"]
    print(f"{'format':<8} " + " ".join(f"{s:>7}" for s in statuses) + "   total")
    for fmt in formats:
        row = [counts[(fmt, s)] for s in statuses]
        print(f"{fmt:<8} " + " ".join(f"{n:>7}" for n in row) + f"   {sum(row):>5}")
    tot = [sum(counts[(f, s)] for f in formats) for s in statuses]
    print(f"{'all':<8} " + " ".join(f"{n:>7}" for n in tot) + f"   {sum(tot):>5}")


if __name__ == "__main__":
    sys.exit(main())
