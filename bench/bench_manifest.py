#!/usr/bin/env python3
"""Manifest benchmark: one array with N virtual chunk references, zarrchive vs icechunk 1.1.

Usage::

    python bench/bench_manifest.py              # N = 1,000,000 (icechunk listing takes minutes)
    python bench/bench_manifest.py --quick      # N = 100,000 smoke run
    python bench/bench_manifest.py --skip-icechunk
    python bench/bench_manifest.py --memory-check   # also: commit 10M refs, report peak RSS
    python bench/bench_manifest.py --profile DIR    # cProfile every zarrchive worker into DIR

What happens (see bench/README.md for the meaning of each figure):

1. The parent writes a few real source files under a temporary directory: zstd-compressed
   4x4 float32 chunks laid out back to back from a 4 KiB "header", with an occasional gap
   (as HDF5/NetCDF files interleave metadata blocks), so offsets increase within each file
   and lengths vary (about 15..80 bytes). The reference columns (chunk coordinates, file
   index, offset, length) are saved as .npy files.
2. For each system, a fresh subprocess loads those columns, creates a repository and the
   array ``data`` (shape (4*rows, 4*cols) float32, chunks (4, 4), zstd), then times
   set-virtual-references + commit.
3. Fresh subprocesses open the committed repository and read one random chunk through zarr
   (timed from before opening the repository to after the chunk's values are in hand; the
   values are then checked against the source file's bytes), and list every key through the
   zarr store's ``list()``, counting them (must be N + 2: two zarr.json documents).
4. Bytes per reference: apparent size of all files in the repository directory (the source
   files live elsewhere) divided by N.

Every worker reports its peak RSS (VmHWM of /proc/self/status; see ``peak_rss``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = (4, 4)
DTYPE = "<f4"
ARRAY = "data"
HEADER_BYTES = 4096
POOL = 4096  # distinct encoded chunk payloads (encoding 1M chunks one by one takes ~15 s)

# Targets from the issue (for N = 1,000,000) and icechunk 1.1 figures quoted there.
TARGETS = {
    "commit_s": 2.0,
    "open_read_s": 0.100,
    "list_s": 3.0,
    "bytes_per_ref": 7.0,
}
ISSUE_ICECHUNK = {
    "commit_s": 15.9,
    "open_read_s": 0.280,
    "list_s": 138.0,
    "bytes_per_ref": 13.3,
}
MEMORY_TARGET = 2 * 1024**3


# ====================================================================== helpers
def grid_for(n: int) -> tuple[int, int]:
    cols = math.isqrt(n)
    if cols * cols < n:
        cols += 1
    rows = -(-n // cols)
    return rows, cols


def peak_rss() -> int:
    """Peak RSS of this process, in bytes.

    On Linux this is ``VmHWM`` from /proc/self/status: ``getrusage(RUSAGE_SELF).ru_maxrss``
    is not reset by exec, and Python starts subprocesses with vfork + exec, so a worker's
    ru_maxrss would start at the *parent's* peak RSS (the parent holds the reference columns).
    Elsewhere, ru_maxrss.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def current_rss() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:  # pragma: no cover
        return 0


def dir_size(path: str | Path) -> tuple[int, dict[str, int]]:
    """Apparent size of every file below ``path``, in total and per top-level entry."""
    total = 0
    parts: dict[str, int] = {}
    root = Path(path)
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            size = p.stat().st_size
            total += size
            top = p.relative_to(root).parts[0]
            parts[top] = parts.get(top, 0) + size
    return total, dict(sorted(parts.items()))


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 1:
        return f"{x * 1000:.1f} ms"
    return f"{x:.2f} s"


def fmt_b(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1024**3:
        return f"{x / 1024**3:.2f} GiB"
    return f"{x / 1024**2:.0f} MiB"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.1f}x"


# ====================================================================== source data
def make_refs(n: int, n_files: int, seed: int) -> dict[str, np.ndarray]:
    """Reference columns for N chunks spread over ``n_files`` files (row-major chunk order)."""
    import numcodecs

    rng = np.random.default_rng(seed)
    rows, cols = grid_for(n)
    flat = np.arange(n, dtype=np.int64)
    coords = np.stack([flat // cols, flat % cols], axis=1)  # int64 (n, 2), as users build them

    # A pool of distinct encoded chunks: temperature-like values quantised to a varying
    # number of distinct levels, so compressed lengths vary.
    codec = numcodecs.Zstd(level=1)
    pool_vals = np.empty((POOL, 16), dtype=DTYPE)
    payloads = []
    for i in range(POOL):
        levels = int(rng.integers(1, 17))
        choices = (280 + 10 * rng.standard_normal(levels)).astype(DTYPE)
        pool_vals[i] = rng.choice(choices, 16)
        payloads.append(codec.encode(pool_vals[i].tobytes()))
    pool_len = np.array([len(p) for p in payloads], dtype=np.int64)
    which = rng.integers(0, POOL, n)
    lengths = pool_len[which]

    # Chunks of file k are a contiguous range of the chunk order; inside a file they follow a
    # header back to back, with a gap of up to 4 KiB after about one chunk in 64.
    file_idx = (flat * n_files // max(n, 1)).astype(np.int64)
    gaps = np.where(rng.random(n) < 1 / 64, rng.integers(0, 4096, n), 0).astype(np.int64)
    offsets = np.empty(n, dtype=np.int64)
    for k in range(n_files):
        sel = np.flatnonzero(file_idx == k)
        if not len(sel):
            continue
        step = lengths[sel] + gaps[sel]
        offsets[sel] = HEADER_BYTES + np.concatenate([[0], np.cumsum(step[:-1])])
    return {
        "coords": coords,
        "file_idx": file_idx,
        "offsets": offsets,
        "lengths": lengths,
        "which": which,
        "gaps": gaps,
        "payloads": np.array(payloads, dtype=object),
    }


def write_sources(refs: dict[str, np.ndarray], src_dir: Path, n_files: int) -> list[str]:
    """Write the source files; return their file:// URLs."""
    src_dir.mkdir(parents=True, exist_ok=True)
    payloads = refs["payloads"]
    urls = []
    for k in range(n_files):
        path = src_dir / f"source_{k:02d}.bin"
        sel = np.flatnonzero(refs["file_idx"] == k)
        with open(path, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n".ljust(HEADER_BYTES, b"\0"))
            pieces = []
            for w, g in zip(refs["which"][sel].tolist(), refs["gaps"][sel].tolist(), strict=True):
                pieces.append(payloads[w])
                if g:
                    pieces.append(b"\0" * g)
            f.write(b"".join(pieces))
        urls.append("file://" + str(path))
    # sanity: the recorded ranges match what was written
    k = int(refs["file_idx"][-1])
    last = np.flatnonzero(refs["file_idx"] == k)[-1]
    size = os.path.getsize(src_dir / f"source_{k:02d}.bin")
    assert size >= refs["offsets"][last] + refs["lengths"][last] + refs["gaps"][last]
    return urls


# ====================================================================== workers (subprocesses)
def _load_inputs(data_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    meta = json.loads((data_dir / "meta.json").read_text())
    cols = {k: np.load(data_dir / f"{k}.npy") for k in ("coords", "file_idx", "offsets", "lengths")}
    return meta, cols


def _zarrchive_create(repo_dir: str, meta: dict[str, Any]) -> Any:
    import zarr.codecs

    import zarrchive

    repo = zarrchive.Repo.create(repo_dir)
    rows, cols = meta["grid"]
    repo.root_group.create_array(
        ARRAY,
        shape=(rows * CHUNK[0], cols * CHUNK[1]),
        chunks=CHUNK,
        dtype=DTYPE,
        compressors=zarr.codecs.ZstdCodec(level=1),
        dimension_names=("y", "x"),
    )
    return repo


def _icechunk_create(repo_dir: str, meta: dict[str, Any]) -> tuple[Any, Any]:
    import icechunk as ic
    import zarr
    import zarr.codecs

    prefix = meta["src_prefix"]
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(meta["src_dir"] + "/"))
    )
    repo = ic.Repository.create(
        ic.local_filesystem_storage(repo_dir),
        config=config,
        authorize_virtual_chunk_access={prefix: None},
    )
    session = repo.writable_session("main")
    root = zarr.open_group(store=session.store, mode="a", zarr_format=3)
    rows, cols = meta["grid"]
    root.create_array(
        ARRAY,
        shape=(rows * CHUNK[0], cols * CHUNK[1]),
        chunks=CHUNK,
        dtype=DTYPE,
        compressors=zarr.codecs.ZstdCodec(level=1),
        dimension_names=("y", "x"),
    )
    return repo, session


def _icechunk_open(repo_dir: str, prefix: str) -> Any:
    import icechunk as ic

    repo = ic.Repository.open(
        ic.local_filesystem_storage(repo_dir), authorize_virtual_chunk_access={prefix: None}
    )
    return repo.readonly_session(branch="main")


def worker_commit(system: str, repo_dir: str, data_dir: Path) -> dict[str, Any]:
    meta, cols = _load_inputs(data_dir)
    urls_table = np.array(meta["urls"], dtype=object)
    urls = urls_table[cols["file_idx"]]  # one URL per reference (shared str objects)
    n = len(cols["offsets"])
    out: dict[str, Any] = {"n": n}
    if system == "zarrchive":
        from zarrchive._sync import sync

        repo = _zarrchive_create(repo_dir, meta)
        out["rss_inputs"] = current_rss()
        t0 = time.perf_counter()
        repo.set_virtual_refs(ARRAY, cols["coords"], urls, cols["offsets"], cols["lengths"])
        t1 = time.perf_counter()
        repo.commit(f"{n} virtual references")
        t2 = time.perf_counter()
        out.update(build_s=0.0, set_s=t1 - t0, commit_s=t2 - t1, total_s=t2 - t0)
        out["peak_rss"] = peak_rss()
        out["stored_refs"] = len(sync(repo.session.chunk_coords(ARRAY)))
    else:
        from icechunk import VirtualChunkSpec

        repo, session = _icechunk_create(repo_dir, meta)
        out["rss_inputs"] = current_rss()
        t0 = time.perf_counter()
        specs = [
            VirtualChunkSpec(c, u, o, ln)
            for c, u, o, ln in zip(
                cols["coords"].tolist(),
                urls.tolist(),
                cols["offsets"].tolist(),
                cols["lengths"].tolist(),
                strict=True,
            )
        ]
        tb = time.perf_counter()
        failed = session.store.set_virtual_refs("/" + ARRAY, specs, validate_containers=True)
        t1 = time.perf_counter()
        if failed:
            raise RuntimeError(f"icechunk refused {len(failed)} references, e.g. {failed[:3]}")
        del specs
        session.commit(f"{n} virtual references")
        t2 = time.perf_counter()
        out.update(build_s=tb - t0, set_s=t1 - t0, commit_s=t2 - t1, total_s=t2 - t0)
        out["peak_rss"] = peak_rss()

        async def count() -> int:
            s = repo.readonly_session(branch="main")
            k = 0
            async for _ in s.chunk_coordinates("/" + ARRAY, batch_size=100_000):
                k += 1
            return k

        from zarr.core.sync import sync

        out["stored_refs"] = sync(count())
    if out["stored_refs"] != n:
        raise RuntimeError(f"{system}: {out['stored_refs']} references stored, expected {n}")
    return out


def worker_read(system: str, repo_dir: str, data_dir: Path, index: int) -> dict[str, Any]:
    import numcodecs
    import zarr

    meta = json.loads((data_dir / "meta.json").read_text())
    rows, cols = meta["grid"]
    r, c = divmod(index, cols)
    if system == "zarrchive":
        import zarrchive

        t0 = time.perf_counter()
        repo = zarrchive.Repo.open(repo_dir)
        arr = zarr.open_array(store=repo.store, path=ARRAY, mode="r")
    else:
        import icechunk  # noqa: F401

        t0 = time.perf_counter()
        session = _icechunk_open(repo_dir, meta["src_prefix"])
        arr = zarr.open_array(store=session.store, path=ARRAY, mode="r")
    t1 = time.perf_counter()
    values = arr[r * CHUNK[0] : (r + 1) * CHUNK[0], c * CHUNK[1] : (c + 1) * CHUNK[1]]
    t2 = time.perf_counter()
    # check against the source file's bytes
    offsets = np.load(data_dir / "offsets.npy", mmap_mode="r")
    lengths = np.load(data_dir / "lengths.npy", mmap_mode="r")
    file_idx = np.load(data_dir / "file_idx.npy", mmap_mode="r")
    path = meta["urls"][int(file_idx[index])][len("file://") :]
    with open(path, "rb") as f:
        f.seek(int(offsets[index]))
        raw = f.read(int(lengths[index]))
    expected = np.frombuffer(numcodecs.Zstd().decode(raw), dtype=DTYPE).reshape(CHUNK)
    if not np.array_equal(values, expected):
        raise RuntimeError(f"{system}: chunk ({r}, {c}) differs from its source bytes")
    return {
        "open_s": t1 - t0,
        "read_s": t2 - t1,
        "total_s": t2 - t0,
        "chunk": [r, c],
        "peak_rss": peak_rss(),
    }


def worker_list(system: str, repo_dir: str, data_dir: Path) -> dict[str, Any]:
    from zarr.core.sync import sync

    meta = json.loads((data_dir / "meta.json").read_text())
    t0 = time.perf_counter()
    if system == "zarrchive":
        import zarrchive

        store = zarrchive.Repo.open(repo_dir).store
    else:
        store = _icechunk_open(repo_dir, meta["src_prefix"]).store
    t1 = time.perf_counter()

    async def count() -> tuple[int, int]:
        k = chunks = 0
        async for key in store.list():
            k += 1
            if "/c/" in key:
                chunks += 1
        return k, chunks

    keys, chunk_keys = sync(count())
    t2 = time.perf_counter()
    return {
        "open_s": t1 - t0,
        "list_s": t2 - t1,
        "keys": keys,
        "chunk_keys": chunk_keys,
        "peak_rss": peak_rss(),
    }


def worker_memory(repo_dir: str, n: int, n_files: int, seed: int) -> dict[str, Any]:
    """Commit ``n`` references to zarrchive; inputs built here, source files not written."""
    rng = np.random.default_rng(seed)
    rows, cols = grid_for(n)
    flat = np.arange(n, dtype=np.int64)
    coords = np.stack([flat // cols, flat % cols], axis=1)
    lengths = rng.integers(15, 80, n)
    gaps = np.where(rng.random(n) < 1 / 64, rng.integers(0, 4096, n), 0)
    file_idx = flat * n_files // n
    offsets = np.empty(n, dtype=np.int64)
    for k in range(n_files):
        sel = file_idx == k
        step = (lengths + gaps)[sel]
        offsets[sel] = HEADER_BYTES + np.concatenate([[0], np.cumsum(step[:-1])])
    del flat, gaps
    src = Path(repo_dir).parent / "memsrc"
    urls_table = np.array(
        [f"file://{src}/source_{k:02d}.bin" for k in range(n_files)], dtype=object
    )
    urls = urls_table[file_idx]
    del file_idx
    meta = {"grid": [rows, cols]}
    repo = _zarrchive_create(repo_dir, meta)
    rss_inputs = current_rss()
    t0 = time.perf_counter()
    repo.set_virtual_refs(ARRAY, coords, urls, offsets, lengths)
    t1 = time.perf_counter()
    repo.commit(f"{n} virtual references")
    t2 = time.perf_counter()
    return {
        "n": n,
        "set_s": t1 - t0,
        "commit_s": t2 - t1,
        "total_s": t2 - t0,
        "rss_inputs": rss_inputs,
        "peak_rss": peak_rss(),
    }


def worker_main(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    kind = spec.pop("kind")
    profile = spec.pop("profile", None)
    fn = {
        "commit": worker_commit,
        "read": worker_read,
        "list": worker_list,
        "memory": worker_memory,
    }[kind]
    if "data_dir" in spec:
        spec["data_dir"] = Path(spec["data_dir"])
    if profile:
        # zarrchive runs its coroutines on zarr's I/O loop thread and cProfile only sees the
        # thread that enabled it: profile the main thread and the loop thread separately.
        import cProfile

        from zarr.core.sync import sync

        main_prof, loop_prof = cProfile.Profile(), cProfile.Profile()

        async def switch(on: bool) -> None:
            loop_prof.enable() if on else loop_prof.disable()

        sync(switch(True))
        result = main_prof.runcall(fn, **spec)
        sync(switch(False))
        main_prof.dump_stats(profile + ".main")
        loop_prof.dump_stats(profile + ".loop")
    else:
        result = fn(**spec)
    print("RESULT " + json.dumps(result), flush=True)


# ====================================================================== parent
class Runner:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.data_dir = workdir / "inputs"
        self.profiles = 0

    def run(self, kind: str, system: str | None = None, **spec: Any) -> dict[str, Any]:
        spec = {"kind": kind, **spec}
        if system is not None:
            spec["system"] = system
        if "data_dir" not in spec and kind != "memory":
            spec["data_dir"] = str(self.data_dir)
        if self.args.profile and system in ("zarrchive", None):
            Path(self.args.profile).mkdir(parents=True, exist_ok=True)
            self.profiles += 1
            spec["profile"] = str(Path(self.args.profile) / f"{kind}-{self.profiles}.prof")
        env = dict(os.environ, ZARRCHIVE_AUTHOR="bench", PYTHONWARNINGS="ignore")
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            env=env,
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"worker {kind}/{system} failed (exit {proc.returncode})")
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
                if spec.get("profile"):
                    result["profile"] = spec["profile"]
                return result
        raise SystemExit(f"worker {kind}/{system} printed no result:\n{proc.stdout}{proc.stderr}")

    def repeat(self, reps: int, budget_s: float, key: str, fn: Any) -> list[dict[str, Any]]:
        """Run ``fn(i)`` up to ``reps`` times, stopping early when it is expensive."""
        runs = [fn(0)]
        while len(runs) < reps and sum(r[key] for r in runs) + runs[-1][key] <= budget_s:
            runs.append(fn(len(runs)))
        return runs


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_system(r: Runner, system: str, n: int, picks: list[int]) -> dict[str, Any]:
    a = r.args
    repos = r.workdir / "repos"
    res: dict[str, Any] = {"system": system}

    log(f"[{system}] set + commit of {n:,} references ...")

    def commit(i: int) -> dict[str, Any]:
        d = repos / f"{system}-{i}"
        out = r.run("commit", system, repo_dir=str(d))
        out["repo_dir"] = str(d)
        log(
            f"  commit run {i + 1}: set {fmt_s(out['set_s'])}"
            + (f" (building specs {fmt_s(out['build_s'])})" if out["build_s"] else "")
            + f", commit {fmt_s(out['commit_s'])}, total {fmt_s(out['total_s'])}, "
            f"peak RSS {fmt_b(out['peak_rss'])}"
        )
        return out

    res["commit"] = r.repeat(a.reps, a.budget, "total_s", commit)
    repo_dir = res["commit"][0]["repo_dir"]
    for extra in res["commit"][1:]:
        shutil.rmtree(extra["repo_dir"], ignore_errors=True)
    size, parts = dir_size(repo_dir)
    res["size"] = size
    res["size_parts"] = parts
    res["bytes_per_ref"] = size / n
    log(f"  repository: {size:,} bytes = {size / n:.2f} B/ref; {parts}")

    log(f"[{system}] open + first chunk, {len(picks)} fresh processes ...")
    res["read"] = []
    for i in picks:
        out = r.run("read", system, repo_dir=repo_dir, index=i)
        log(
            f"  chunk {tuple(out['chunk'])}: open {fmt_s(out['open_s'])} + read "
            f"{fmt_s(out['read_s'])} = {fmt_s(out['total_s'])} (values OK), "
            f"peak RSS {fmt_b(out['peak_rss'])}"
        )
        res["read"].append(out)

    log(f"[{system}] list all keys ...")

    def listing(i: int) -> dict[str, Any]:
        out = r.run("list", system, repo_dir=repo_dir)
        log(
            f"  list run {i + 1}: {out['keys']:,} keys in {fmt_s(out['list_s'])} "
            f"(open {fmt_s(out['open_s'])}), peak RSS {fmt_b(out['peak_rss'])}"
        )
        if out["keys"] != n + 2 or out["chunk_keys"] != n:
            raise SystemExit(f"{system}: listed {out['keys']} keys, expected {n + 2}")
        return out

    res["list"] = r.repeat(a.reps, a.budget, "list_s", listing)

    med = statistics.median
    res["summary"] = {
        "commit_s": med(x["total_s"] for x in res["commit"]),
        "open_read_s": med(x["total_s"] for x in res["read"]),
        "list_s": med(x["list_s"] for x in res["list"]),
        "bytes_per_ref": res["bytes_per_ref"],
        "rss_commit": max(x["peak_rss"] for x in res["commit"]),
        "rss_read": med(x["peak_rss"] for x in res["read"]),
        "rss_list": max(x["peak_rss"] for x in res["list"]),
        "commit_runs": len(res["commit"]),
        "read_runs": len(res["read"]),
        "list_runs": len(res["list"]),
    }
    return res


def print_table(n: int, results: dict[str, dict[str, Any]]) -> None:
    z = results["zarrchive"]["summary"]
    ic = results.get("icechunk", {}).get("summary")
    scale = "" if n == 1_000_000 else f"  (targets are for 1,000,000 refs; this run has {n:,})"
    print()
    print(
        f"Virtual-reference manifest benchmark, N = {n:,} references, one array, "
        f"one commit{scale}"
    )
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    )
    hdr = (
        f"{'figure':<26} {'target':>9} {'zarrchive':>11} {'icechunk':>11} "
        f"{'ice/zarr':>9} {'issue: icechunk':>16}"
    )
    print(hdr)
    print("-" * len(hdr))

    def row(label: str, key: str, fmt: Any, target: str, issue: str = "") -> None:
        zv = z[key]
        iv = ic[key] if ic else None
        ok = ""
        if key in TARGETS:
            ok = " ok" if zv <= TARGETS[key] else " MISS"
        print(
            f"{label:<26} {target:>9} {fmt(zv) + ok:>11} {fmt(iv):>11} "
            f"{fmt_ratio(iv, zv):>9} {issue:>16}"
        )

    def fb(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f} B"

    row("set + commit", "commit_s", fmt_s, "<= 2 s", "15.9 s")
    row("open + first chunk", "open_read_s", fmt_s, "<= 100 ms", "280 ms")
    row("list all keys", "list_s", fmt_s, "<= 3 s", "138 s")
    row("bytes per reference", "bytes_per_ref", fb, "<= 7 B", "13.3 B")
    row("peak RSS, commit", "rss_commit", fmt_b, "")
    row("peak RSS, open+read", "rss_read", fmt_b, "")
    row("peak RSS, list", "rss_list", fmt_b, "")

    def runs(s: dict[str, Any]) -> str:
        return f"{s['commit_runs']}/{s['read_runs']}/{s['list_runs']}"

    print(
        "medians over fresh processes (commit/open+read/list runs): zarrchive "
        + runs(z)
        + (", icechunk " + runs(ic) if ic else "")
    )
    for name, res in results.items():
        c = res["commit"][0]
        parts = ", ".join(f"{k} {v:,}" for k, v in res["size_parts"].items())
        print(
            f"{name}: set {fmt_s(statistics.median(x['set_s'] for x in res['commit']))}"
            + (
                f" (of which building VirtualChunkSpec objects "
                f"{fmt_s(statistics.median(x['build_s'] for x in res['commit']))})"
                if c["build_s"]
                else ""
            )
            + f", commit {fmt_s(statistics.median(x['commit_s'] for x in res['commit']))}; "
            f"open {fmt_s(statistics.median(x['open_s'] for x in res['read']))} + first chunk "
            f"{fmt_s(statistics.median(x['read_s'] for x in res['read']))}; "
            f"RSS with inputs loaded {fmt_b(c['rss_inputs'])}; "
            f"repository {res['size']:,} bytes ({parts})"
        )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--refs", type=int, default=1_000_000, help="number of references (1M)")
    p.add_argument("--quick", action="store_true", help="smoke run: 100,000 references")
    p.add_argument("--skip-icechunk", action="store_true", help="benchmark zarrchive only")
    p.add_argument(
        "--memory-check",
        action="store_true",
        help="also commit 10,000,000 references to zarrchive in a subprocess; report peak RSS",
    )
    p.add_argument("--memory-refs", type=int, default=10_000_000, help=argparse.SUPPRESS)
    p.add_argument("--files", type=int, default=4, help="number of source files (4)")
    p.add_argument("--reads", type=int, default=5, help="open+first-chunk processes (5)")
    p.add_argument("--reps", type=int, default=3, help="max commit / list repetitions (3)")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="repeat a commit or listing only while the repetitions' total stays under "
        "this many seconds (30; 10 with --quick)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", help="where to put sources and repositories (a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--json", help="write all raw measurements to this file")
    p.add_argument(
        "--profile",
        help="cProfile every zarrchive worker into this directory (main and I/O loop threads)",
    )
    args = p.parse_args()
    n = 100_000 if args.quick and args.refs == 1_000_000 else args.refs
    if args.budget is None:
        args.budget = 10.0 if args.quick else 30.0

    if args.workdir:
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        if any(workdir.iterdir()):
            raise SystemExit(f"{workdir} is not empty")
    else:
        workdir = Path(tempfile.mkdtemp(prefix="zarrchive-bench-"))
    r = Runner(args, workdir)
    try:
        log(f"work directory {workdir}")
        t = time.perf_counter()
        refs = make_refs(n, args.files, args.seed)
        src_dir = workdir / "sources"
        urls = write_sources(refs, src_dir, args.files)
        r.data_dir.mkdir()
        for k in ("coords", "file_idx", "offsets", "lengths"):
            np.save(r.data_dir / f"{k}.npy", refs[k])
        meta = {
            "grid": list(grid_for(n)),
            "urls": urls,
            "src_dir": str(src_dir),
            "src_prefix": "file://" + str(src_dir) + "/",
        }
        (r.data_dir / "meta.json").write_text(json.dumps(meta))
        src_bytes = sum(f.stat().st_size for f in src_dir.iterdir())
        log(
            f"{n:,} references into {args.files} source files ({src_bytes / 1e6:.1f} MB), "
            f"chunk lengths {refs['lengths'].min()}..{refs['lengths'].max()} B, "
            f"grid {meta['grid']}; prepared in {time.perf_counter() - t:.1f} s"
        )
        rng = np.random.default_rng(args.seed + 1)
        picks = [int(i) for i in rng.integers(0, n, args.reads)]

        results = {"zarrchive": bench_system(r, "zarrchive", n, picks)}
        if not args.skip_icechunk:
            results["icechunk"] = bench_system(r, "icechunk", n, picks)
        print_table(n, results)

        memory = None
        if args.memory_check:
            m = args.memory_refs
            log(f"[zarrchive] memory check: committing {m:,} references ...")
            memory = r.run(
                "memory",
                None,
                repo_dir=str(workdir / "repos" / "zarrchive-memory"),
                n=m,
                n_files=args.files,
                seed=args.seed,
            )
            size, _ = dir_size(workdir / "repos" / "zarrchive-memory")
            memory["bytes_per_ref"] = size / m
            ok = "ok" if memory["peak_rss"] < MEMORY_TARGET else "MISS"
            print(
                f"\nmemory check, zarrchive, {m:,} references: peak RSS "
                f"{fmt_b(memory['peak_rss'])} (target < 2 GiB: {ok}); RSS with inputs built "
                f"{fmt_b(memory['rss_inputs'])}; set {fmt_s(memory['set_s'])} + commit "
                f"{fmt_s(memory['commit_s'])}; {memory['bytes_per_ref']:.2f} B/ref"
            )
        if args.json:
            Path(args.json).write_text(
                json.dumps({"n": n, "results": results, "memory": memory}, indent=1)
            )
        if args.profile:
            print(
                f"\ncProfile output of the zarrchive workers: {args.profile}/*.prof.main "
                "(main thread) and *.prof.loop (zarr's I/O loop thread, where zarrchive works)"
            )
    finally:
        if args.keep or args.workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
