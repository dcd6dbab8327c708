"""AUTH-ADOBE against ffmpeg: ``ffmpeg -f flv rtmp://user:pass@host/app/stream`` through the
three-connection challenge of rtmp.auth.AdobeAuthenticator (served by rtmp.Server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import rtmp
from tests.conftest import require_peer
from tests.media import sample_flv
from tests.peers import run

pytestmark = pytest.mark.interop


class Recorder:
    """Connections and publishes the server saw (callbacks run on connection threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connects = 0
        self.published: list[str] = []

    def on_connect(self, conn: Any) -> None:
        with self.lock:
            self.connects += 1

    def on_publish(self, conn: Any, name: str, stream_type: Any) -> None:
        with self.lock:
            self.published.append(name)


@pytest.fixture
def auth_server() -> Iterator[tuple[rtmp.Server, Recorder]]:
    recorder = Recorder()
    config = rtmp.ServerConfig(
        addr="127.0.0.1:0", require_auth=True, username="bob", password="s3cret",
        on_connect=recorder.on_connect, on_publish=recorder.on_publish,
    )  # fmt: skip
    server = rtmp.Server(config)
    server.start()
    try:
        yield server, recorder
    finally:
        server.stop()


def publish(port: int, userinfo: str) -> tuple[int, str]:
    ffmpeg = require_peer("ffmpeg")
    url = f"rtmp://{userinfo}127.0.0.1:{port}/live/cam"
    completed = run(
        [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "info", "-re", "-t", "1",
         "-i", sample_flv(), "-c", "copy", "-f", "flv", url],
        timeout=60,
    )  # fmt: skip
    return completed.returncode, completed.stderr.decode("utf-8", "replace")


@pytest.mark.spec("AUTH-ADOBE", "AUTH-ADOBE hash")
def test_ffmpeg_authenticates_and_publishes(auth_server: tuple[rtmp.Server, Recorder]) -> None:
    server, recorder = auth_server
    code, log = publish(server.address[1], "bob:s3cret@")
    assert code == 0, log[-3000:]
    assert recorder.published == ["cam"]
    # Stage 0 and stage 1 are refused before connect completes: one accepted connect.
    assert recorder.connects == 1


@pytest.mark.spec("AUTH-ADOBE")
def test_ffmpeg_wrong_password_is_told_authfailed(auth_server: tuple[rtmp.Server, Recorder]) -> None:
    server, recorder = auth_server
    code, log = publish(server.address[1], "bob:guess@")
    assert code != 0
    assert "Incorrect username/password" in log  # ffmpeg's reading of ?reason=authfailed
    assert recorder.published == [] and recorder.connects == 0


@pytest.mark.spec("AUTH-ADOBE")
def test_ffmpeg_without_credentials_is_refused(auth_server: tuple[rtmp.Server, Recorder]) -> None:
    server, recorder = auth_server
    code, log = publish(server.address[1], "")
    assert code != 0
    assert "authmod=adobe" in log  # ffmpeg prints the stage-0 description it could not answer
    assert recorder.published == []
