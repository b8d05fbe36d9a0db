"""Starting the server: ``zarrchive serve``, ``Repo.serve`` and ``AsyncRepo.serve`` listen on
127.0.0.1 by default, say where on start, answer pages, refuse writes and stop cleanly;
missing web dependencies are named with their extra."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

import zarrchive

from .web_sample import Sample, free_port

EXE = shutil.which("zarrchive")


def fetch(url: str, method: str = "GET", host: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _serve_and_stop(cmd: list[str]) -> tuple[str, str, int]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", first)
        assert match, (first, proc.stderr.read() if proc.poll() is not None else "")
        url = match.group(1)
        status, html = fetch(url)
        assert status == 200 and "Branches" in html
        assert fetch(url, "POST")[0] == 405
        # a page elsewhere cannot reach it through a DNS name of its own (rebinding)
        assert fetch(url, host="attacker.example")[0] == 400
        assert fetch(url, host="localhost:" + url.rsplit(":", 1)[1].strip("/"))[0] == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return first + second + out, err, proc.returncode


def test_cli_serve(sample: Sample) -> None:
    cmd = [EXE] if EXE else [sys.executable, "-m", "zarrchive"]
    out, err, code = _serve_and_stop(
        [*cmd, "--repo", sample.location, "serve", "--port", "0", "-a", sample.container]
    )
    assert "read-only view of " + sample.location in out
    assert "listening on 127.0.0.1:" in out and "this machine only" in out
    assert code == 0, err
    assert "stopped" in err


def test_repo_serve(sample: Sample) -> None:
    code = f"import zarrchive; zarrchive.Repo.open({sample.location!r}).serve(port=0)"
    out, err, rc = _serve_and_stop([sys.executable, "-c", code])
    assert "listening on 127.0.0.1:" in out
    assert rc == 0, err


def test_async_repo_serve(sample: Sample) -> None:
    port = free_port()

    async def main() -> tuple[int, str]:
        repo = await zarrchive.AsyncRepo.open(sample.location)
        task = asyncio.create_task(repo.serve(port=port))
        try:
            for _ in range(400):
                try:
                    return await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/history")
                except urllib.error.URLError:
                    await asyncio.sleep(0.05)
            raise AssertionError("the server did not answer")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    status, html = asyncio.run(main())
    assert status == 200 and sample.fix in html


def test_port_in_use_is_a_clear_error(sample: Sample, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from zarrchive.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert main(["--repo", sample.location, "serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "choose another --port" in err


def test_missing_web_dependencies_name_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sample: Sample
) -> None:
    from zarrchive.cli import main
    from zarrchive.web import create_app, require

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(ImportError, match=r"missing: uvicorn.*zarrchive\[web\]"):
        require()
    with pytest.raises(ImportError, match="'web'"):
        create_app(zarrchive.Repo.open(sample.location))
    assert main(["--repo", sample.location, "serve"]) == 1
    assert "pip install 'zarrchive[web]'" in capsys.readouterr().err
