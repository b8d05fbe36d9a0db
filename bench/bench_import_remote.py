"""Import benchmark over the network: daily NetCDF4 files on an HTTP server with latency.

The same files as ``bench_import.py`` (it writes them on its first run), served by a local
HTTP server that supports single byte ranges and answers every request after a fixed delay,
standing in for the round trip to an object store. In one run, each in a fresh process:

- ``zarrchive``: ``Repo.create(dir).import_catalog(urls, "daily")`` with its default
  ``workers``, and with each count given by ``--workers``;
- ``kerchunk-Np``: ``SingleHdf5ToZarr`` over ``fsspec.open(url)`` in a
  ``ProcessPoolExecutor(N)`` (the peer parallelised by hand, as in ``bench_import.py``),
  then ``MultiZarrToZarr``, for each N in ``--kerchunk-processes``. Chunks up to 8 KiB
  (the coordinates) are inlined by ``SingleHdf5ToZarr``: ``MultiZarrToZarr`` cannot fetch
  them over HTTP itself with zarr 3 ("Timeout context manager should be used inside a
  task": fsspec's HTTP session is bound to another event loop).

Reported: wall time per system (median of ``--rounds`` rounds, systems taking turns), the
requests the server received per file, and each peer's time divided by zarrchive's default.

    python bench/bench_import_remote.py                      # 365 files, 30 ms, 2 rounds
    python bench/bench_import_remote.py --files 100 --delay-ms 60 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "import" / "daily"


# ---------------------------------------------------------------------- the server
def serve(port: int, root: str, delay: float) -> None:
    """Child process: the Range server of ``bench_remote.py``, each answer ``delay`` late."""
    sys.path.insert(0, str(HERE))
    from bench_remote import RangeHandler, serve_http

    class Slow(RangeHandler):
        def _serve(self, body: bool) -> None:
            time.sleep(delay)
            super()._serve(body)

    serve_http(port, root, Slow)


def _counts(base: str) -> dict[str, int]:
    import urllib.request

    sys.path.insert(0, str(HERE))
    from bench_remote import COUNT_PATH

    with urllib.request.urlopen(base + COUNT_PATH) as r:  # noqa: S310 - our own server
        return json.loads(r.read())


# ---------------------------------------------------------------------- the systems
def _kerchunk_one(url: str) -> dict[str, Any]:
    import fsspec
    from kerchunk.hdf import SingleHdf5ToZarr

    # coordinate chunks (4 KiB here) inline: MultiZarrToZarr then reads them from the
    # references (it cannot fetch them over HTTP from zarr 3's event loop)
    with fsspec.open(url, "rb") as f:
        return SingleHdf5ToZarr(f, url, inline_threshold=8192).translate()


def run_system(system: str, urls: list[str], workers: int | None) -> float:
    """Child process: one import, timed after the imports of the system's libraries."""
    if system == "zarrchive":
        import zarrchive

        repo = zarrchive.Repo.create(tempfile.mkdtemp())
        t0 = time.perf_counter()
        repo.import_catalog(urls, "daily", workers=workers)
        return time.perf_counter() - t0
    from concurrent.futures import ProcessPoolExecutor

    import fsspec  # noqa: F401
    from kerchunk.combine import MultiZarrToZarr
    from kerchunk.hdf import SingleHdf5ToZarr  # noqa: F401

    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        singles = list(pool.map(_kerchunk_one, urls, chunksize=4))
    refs = MultiZarrToZarr(
        singles,
        concat_dims=["time"],
        identical_dims=["latitude", "longitude"],
        remote_protocol="http",
    ).translate()
    with open(os.path.join(tempfile.mkdtemp(), "refs.json"), "w") as f:
        json.dump(refs, f)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------- the run
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=365)
    ap.add_argument("--delay-ms", type=float, default=30.0, help="added to every request")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", default="2,4", help="zarrchive worker counts besides default")
    ap.add_argument("--kerchunk-processes", default="2,4")
    ap.add_argument("--serve", nargs=3, metavar=("PORT", "ROOT", "DELAY"), help=argparse.SUPPRESS)
    ap.add_argument("--run", nargs=3, metavar=("SYSTEM", "URLS", "W"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], float(args.serve[2]))
        return
    if args.run:
        urls = json.loads(Path(args.run[1]).read_text())
        w = None if args.run[2] == "default" else int(args.run[2])
        print(json.dumps({"seconds": run_system(args.run[0], urls, w)}))
        return

    files = sorted(DATA.glob("t2m_*.nc"))[: args.files]
    if len(files) < args.files:
        sys.exit(f"{len(files)} files in {DATA}: run bench/bench_import.py once to write them")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), str(DATA), str(args.delay_ms / 1000)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    base = f"http://127.0.0.1:{port}"
    urls_file = Path(tempfile.mkdtemp()) / "urls.json"
    urls_file.write_text(json.dumps([f"{base}/{f.name}" for f in files]))
    systems = [("zarrchive", "default")]
    systems += [("zarrchive", w) for w in args.workers.split(",") if w]
    systems += [("kerchunk", p) for p in args.kerchunk_processes.split(",") if p]
    times: dict[tuple[str, str], list[float]] = {s: [] for s in systems}
    requests: dict[tuple[str, str], float] = {}
    load = [os.getloadavg()]
    try:
        for r in range(args.rounds):
            order = systems[r % len(systems) :] + systems[: r % len(systems)]
            for system, w in order:
                before = _counts(base)
                out = subprocess.run(
                    [sys.executable, __file__, "--run", system, str(urls_file), w],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if out.returncode:
                    sys.exit(f"{system} ({w}) failed:\n{out.stderr[-3000:]}")
                times[(system, w)].append(json.loads(out.stdout.splitlines()[-1])["seconds"])
                after = _counts(base)
                requests[(system, w)] = sum(after.values()) - sum(before.values())
                took = times[(system, w)][-1]
                print(f"round {r + 1}: {system} {w}: {took:.2f} s", file=sys.stderr)
            load.append(os.getloadavg())
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait()
    print(
        f"Import of {len(files)} daily NetCDF4 files over HTTP, {args.delay_ms:.0f} ms added "
        f"to every request; {args.rounds} round(s), {os.cpu_count()} CPUs"
    )
    loads = " | ".join(" ".join(f"{x:.2f}" for x in la) for la in load)
    print(f"load average before, after each round: {loads}")
    ref = statistics.median(times[("zarrchive", "default")])
    print(f"\n{'system':<26}{'median':>9}{'requests/file':>15}{'vs zarrchive':>14}")
    print("-" * 64)
    for system, w in systems:
        name = f"{system} (workers={w})" if system == "zarrchive" else f"kerchunk-{w}p"
        med = statistics.median(times[(system, w)])
        print(
            f"{name:<26}{med:>8.2f}s{requests[(system, w)] / len(files):>15.1f}{med / ref:>13.2f}x"
        )


if __name__ == "__main__":
    main()
