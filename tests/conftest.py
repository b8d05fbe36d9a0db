"""Shared fixtures: storage locations for memory, local directory and S3 (moto on 127.0.0.1).

The S3 server is moto's own ``ThreadedMotoServer``, started once per test session on a free
loopback port; every test gets a fresh bucket prefix, so tests never see each other's objects.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

# keep botocore away from any real credentials or endpoints of the machine
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)
# moto's request recorder (see s3_requests) writes here, one file per test process
os.environ.setdefault(
    "MOTO_RECORDER_FILEPATH",
    os.path.join(tempfile.gettempdir(), f"zarrchive-moto-recording-{os.getpid()}"),
)

BUCKET = "zarrchive-tests"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, Any]]:
    """A moto S3 server on 127.0.0.1 with one bucket; yields s3fs storage options."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    options = {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
        "skip_instance_cache": True,
    }
    try:
        yield options
    finally:
        server.stop()


@pytest.fixture(params=["memory", "local", "s3"])
def location(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[str, dict[str, Any] | None]:
    """(location, storage_options) of a fresh, empty repository location on each backend."""
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex}", None
    if request.param == "local":
        return str(tmp_path / "repo"), None
    options = request.getfixturevalue("s3_server")
    return f"s3://{BUCKET}/{uuid.uuid4().hex}", options


class S3Requests:
    """The requests the moto server received while recording (``with s3_requests:``)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.made: list[tuple[str, str]] = []  # (method, path)

    def __enter__(self) -> S3Requests:
        import requests

        requests.post(f"{self.endpoint}/moto-api/recorder/reset-recording", timeout=10)
        requests.post(f"{self.endpoint}/moto-api/recorder/start-recording", timeout=10)
        return self

    def __exit__(self, *exc: Any) -> None:
        import json
        from urllib.parse import urlsplit

        import requests

        requests.post(f"{self.endpoint}/moto-api/recorder/stop-recording", timeout=10)
        text = requests.get(f"{self.endpoint}/moto-api/recorder/download-recording", timeout=10)
        for line in text.text.splitlines():
            if line.strip():
                entry = json.loads(line)
                self.made.append((entry["method"], urlsplit(entry["url"]).path))

    def count(self, method: str, path_end: str) -> int:
        return sum(m == method and p.endswith(path_end) for m, p in self.made)


@pytest.fixture
def s3_requests(s3_server: dict[str, Any]) -> S3Requests:
    """Records the S3 requests made inside ``with s3_requests:`` (moto's recorder)."""
    return S3Requests(s3_server["endpoint_url"])
