"""Fixtures of the web tests: one sample repository per test process (pages never write to
it, and a test checks that), and test clients over it with and without authorisation for
``sample_data/``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from zarrchive.web import create_app

from .web_sample import Sample, build, open_repo


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return build(tmp_path_factory.mktemp("web") / "repo")


@pytest.fixture(scope="session")
def client(sample: Sample) -> Iterator[TestClient]:
    """Pages over the sample, authorised for sample_data/ (as ``--authorize`` would)."""
    app = create_app(open_repo(sample.location), authorize=[sample.container])
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def unauthorised(sample: Sample) -> Iterator[TestClient]:
    """Pages over the sample by a reader authorised for nothing."""
    with TestClient(create_app(open_repo(sample.location))) as c:
        yield c
