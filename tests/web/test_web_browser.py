"""The pages in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright's Python package. Skipped, saying what to install, where either is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zarrchive.web import create_app

from .web_sample import BROWSED_ARRAY, BROWSED_VIRTUAL, CHROMIUM, Sample, Server, open_repo, walk

playwright = pytest.importorskip(
    "playwright.sync_api",
    reason="the browser test needs Playwright's Python package: python3 -m pip install playwright",
)
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(
        f"the browser test needs headless Chromium at {CHROMIUM} (Debian: apt-get install "
        "chromium; or set ZARRCHIVE_CHROMIUM to its path)",
        allow_module_level=True,
    )


def test_browse_overview_commit_diff_array(sample: Sample, tmp_path: Path) -> None:
    app = create_app(open_repo(sample.location), authorize=[sample.container])
    with Server(app) as server:
        seen = walk(server.url, sample, tmp_path)
    assert seen["commit_title"] == "t2m in degC"
    assert seen["commit_url"].endswith("/commit/fix-units")
    assert f"from={sample.imported}" in seen["diff_url"] and f"to={sample.fix}" in seen["diff_url"]
    assert "attributes.units" in seen["diff_text"] and "degC" in seen["diff_text"]
    assert seen["array_url"].endswith(f"/ref/v1/array/{BROWSED_ARRAY}")
    assert seen["quicklook_width"] > 0
    assert seen["chunkmap_width"] > 0
    assert int(seen["virtual_chunks"]) == BROWSED_VIRTUAL
    names = {Path(p).name for p in seen["screenshots"]}
    assert names == {"overview.png", "commit.png", "diff.png", "history.png", "array.png"}
    assert all(Path(p).stat().st_size > 10_000 for p in seen["screenshots"])
