"""The web tests' repository and browser walk, also the README screenshot's source.

``build`` makes a small repository from ``sample_data/``: native and virtual arrays, a TIFF
and a GRIB file imported as virtual datasets, a tag, and a branch with its own commit, so
history has two lanes. ``walk`` drives headless Chromium through the pages the way a user
would and saves a screenshot of each. Run as a script, it serves a fresh sample repository
and writes the array page's screenshot for the README:

    python3 tests/web/web_sample.py docs/array-page.png
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"
TIFF = "tiff_deflate_pred2_geo.tif"
GRIB = "grib2_hypercube.grib2"
RAW = "raw_grid_f4le.bin"
#: the array the browser opens, and how many virtual chunks its chunk map shows (4 x 4 tiles)
BROWSED_ARRAY = "samples/dem/srtm/0"
BROWSED_VIRTUAL = 16
#: the flags a root process needs to run Debian's Chromium headless on a closed network
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHROMIUM = os.environ.get("ZARRCHIVE_CHROMIUM", "/usr/bin/chromium")


@dataclass(frozen=True)
class Sample:
    location: str
    first: str  # "Repository initialized"
    imported: str  # main: the imports (tagged v1)
    fix: str  # branch fix-units: t2m in degC, one chunk rewritten
    main_tip: str  # main: a later commit (root attribute)
    container: str  # the sample_data container prefix


def build(location: str | os.PathLike[str], sample_dir: Path = SAMPLE_DIR) -> Sample:
    from zarrchive import Repo

    repo = Repo.create(location, author="web tests")
    first = repo.commit_log[0].id
    root = repo.root_group
    root.attrs["title"] = "zarrchive web sample"
    surface = root.create_group("surface")
    t2m = surface.create_array(
        "t2m",
        shape=(4, 20, 30),
        chunks=(1, 20, 30),
        dtype="f4",
        fill_value=np.nan,
        dimension_names=("time", "y", "x"),
        attributes={"units": "K", "long_name": "2 metre temperature"},
    )
    # random values: chunks too large to be kept inline (they are native chunks)
    rng = np.random.default_rng(16)
    t2m[:] = 273.15 + rng.normal(size=(4, 20, 30)).astype("f4")
    raw = surface.create_array(
        "raw_virtual",
        shape=(4, 10, 10),
        chunks=(1, 10, 10),
        dtype="<f4",
        fill_value=np.nan,
        dimension_names=("time", "y", "x"),
        compressors=None,
        attributes={"source": RAW},
    )
    coords = np.array([[t, 0, 0] for t in range(4)])
    raw_url = (sample_dir / RAW).as_uri()
    repo.set_virtual_refs(raw.path, coords, raw_url, np.arange(4) * 400, np.full(4, 400))
    repo.add_virtual_tiff(sample_dir / TIFF, "samples/dem", "srtm")
    repo.add_virtual_grib(sample_dir / GRIB, "samples/grib")
    imported = repo.commit("import the samples", metadata={"source": "sample_data"})
    repo.tag("v1", imported, message="first import")

    repo.new_branch("fix-units")
    t2m = repo.root_group["surface/t2m"]
    t2m.attrs["units"] = "degC"
    t2m[0] = rng.normal(size=(20, 30)).astype("f4")
    fix = repo.commit("t2m in degC", metadata={"ticket": 16})

    repo.checkout("main")
    repo.root_group.attrs["title"] = "zarrchive web sample (main)"
    main_tip = repo.commit("retitle")
    return Sample(str(location), first, imported, fix, main_tip, "file://" + str(sample_dir) + "/")


def open_repo(location: str, **kwargs: Any) -> Any:
    """``Repo.open`` without the warning that a tag or commit is read-only."""
    import warnings

    from zarrchive import Repo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Repo.open(location, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """uvicorn serving ``create_app(repo)`` in a background thread, on 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        for _ in range(400):
            if self.server.started:
                return self
            self.thread.join(0.025)
        raise RuntimeError("uvicorn did not start within 10 s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def walk(base_url: str, sample: Sample, out_dir: Path) -> dict[str, Any]:
    """Overview -> branch -> its commit -> diff -> array; screenshots in ``out_dir``.

    Returns what the pages showed: the commit reached, the quick-look's natural width, the
    virtual chunks the chunk map's legend counts, and the screenshot paths.
    """
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base_url + "/")
            page.screenshot(path=out_dir / "overview.png", full_page=True)
            page.click("#branches a.ref.branch:text-is('fix-units')")
            page.wait_for_selector("h1.commit-title")
            seen["commit_title"] = page.inner_text("h1.commit-title")
            seen["commit_url"] = page.url
            page.screenshot(path=out_dir / "commit.png", full_page=True)
            page.click("#diff-link")
            page.wait_for_selector("form.diff-form")
            seen["diff_url"] = page.url
            seen["diff_text"] = page.inner_text("main")
            page.screenshot(path=out_dir / "diff.png", full_page=True)
            page.goto(base_url + "/history")
            page.screenshot(path=out_dir / "history.png", full_page=True)
            page.goto(base_url + "/ref/v1/tree")
            page.click(f"a[href$='/array/{BROWSED_ARRAY}']")
            page.wait_for_selector("#chunk-legend")
            page.wait_for_load_state("networkidle")
            seen["quicklook_width"] = page.eval_on_selector(
                "#quicklook", "img => img.complete ? img.naturalWidth : 0"
            )
            seen["chunkmap_width"] = page.eval_on_selector(
                "#chunkmap", "img => img.complete ? img.naturalWidth : 0"
            )
            seen["virtual_chunks"] = page.inner_text("#chunk-legend [data-kind='virtual']")
            seen["array_url"] = page.url
            page.screenshot(path=out_dir / "array.png", full_page=True)
            seen["screenshots"] = sorted(str(p) for p in out_dir.glob("*.png"))
        finally:
            browser.close()
    return seen


def main(argv: list[str]) -> int:
    """Write the README's screenshot of the array page to ``argv[0]``."""
    from zarrchive import Repo
    from zarrchive.web import create_app

    target = Path(argv[0] if argv else "docs/array-page.png")
    with tempfile.TemporaryDirectory() as tmp:
        sample = build(Path(tmp) / "repo")
        app = create_app(Repo.open(sample.location), authorize=[sample.container])
        out = Path(tmp) / "shots"
        out.mkdir()
        with Server(app) as server:
            seen = walk(server.url, sample, out)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "array.png", target)
    print(f"wrote {target} ({seen['array_url']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
