"""``rtmp play`` ends when the stream ends, with real peers (issue 22).

* nginx-rtmp ends a live stream with User Control Stream EOF only (RTMP 7.1.7, no
  UnpublishNotify): the player stops within seconds of the publisher's end, says it
  waited for a publisher, and rewrites the written file's onMetaData duration (FLV E.5);
* ``ffmpeg -output_ts_offset``: sequence headers at 0, frames at 16,772,000 ms, and
  ``--duration 3`` plays 3 s of frames;
* a stream nobody publishes on our server: ``waiting for a publisher`` at once, then a
  timeout with that reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List

import pytest

import rtmp
from rtmp import flv
from rtmp.message import MessageType
from tests.conftest import require_peer
from tests.media import sample_flv
from tests.peers import NginxRtmp, ffprobe_json, stop_process

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


def rtmp_play(*args: str) -> "subprocess.Popen[bytes]":
    return subprocess.Popen([sys.executable, "-m", "rtmp", "play", *args], env=ENV, cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def ffmpeg_publish(source: Path, url: str, *options: str) -> "subprocess.Popen[bytes]":
    ffmpeg = require_peer("ffmpeg")
    return subprocess.Popen(
        [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", str(source),
         "-c", "copy", *options, "-f", "flv", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_for(predicate: "object", timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


@pytest.fixture
def our_server() -> Iterator[rtmp.Server]:
    with rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0")) as server:
        yield server


@pytest.mark.spec("RTMP 7.1.7", "RTMP 6.2", "FLV E.5")
def test_rtmp_play_from_nginx_ends_on_stream_eof(tmp_path: Path) -> None:
    source = sample_flv(seconds=4)
    out = tmp_path / "out.flv"
    with NginxRtmp() as nginx:
        url = nginx.url("live", "eof")
        player = rtmp_play(url, "-o", str(out), "--timeout", "30")
        try:
            time.sleep(2.5)  # the player waits (nginx says nothing), then ffmpeg publishes
            publisher = ffmpeg_publish(source, url)
            try:
                _, ffmpeg_err = publisher.communicate(timeout=60)
            finally:
                stop_process(publisher)
            assert publisher.returncode == 0, ffmpeg_err.decode()[-2000:]
            ended = time.monotonic()
            _, err = player.communicate(timeout=40)
            waited = time.monotonic() - ended
        finally:
            stop_process(player)
    text = err.decode()
    assert player.returncode == 0, text
    # Before: 36.5 s (read_timeout after the last frame). nginx-rtmp sends Stream EOF.
    assert waited < 5.0, (waited, text)
    assert "rtmp: waiting for a publisher of live/eof" in text
    assert "play ended: end of stream (User Control Stream EOF)" in text
    metadata = flv.read_metadata(out)
    assert metadata is not None
    assert 3.5 < metadata["duration"] < 4.5, metadata
    assert metadata.get("filesize", out.stat().st_size) == out.stat().st_size
    assert float(ffprobe_json(out)["format"]["duration"]) > 3.5


@pytest.mark.spec("RTMP 7.1.5", "FLV E.4.3.1")
def test_duration_counts_media_timestamps_after_an_offset(
    our_server: rtmp.Server, tmp_path: Path
) -> None:
    source = sample_flv(seconds=8)
    out = tmp_path / "out.flv"
    host, port = our_server.address[:2]
    url = f"rtmp://{host}:{port}/live/offset"
    player = rtmp_play(url, "-o", str(out), "--duration", "3", "--timeout", "30")
    try:
        wait_for(lambda: our_server.hub.get("live", "offset") is not None, 15,
                 "the player subscribed")
        # ffmpeg keeps the sequence headers at 0 and shifts the frames by 16,772 s.
        publisher = ffmpeg_publish(source, url, "-output_ts_offset", "16772")
        try:
            _, err = player.communicate(timeout=60)
        finally:
            stop_process(publisher)
    finally:
        stop_process(player)
    assert player.returncode == 0, err.decode()
    assert "play ended: played the requested 3 s" in err.decode()
    tags = flv.read_all(out)
    frames = [t for t in tags if t.type == MessageType.VIDEO and not flv.is_sequence_header(t)]
    stamps = [t.timestamp for t in frames]
    assert stamps[0] >= 16_772_000
    assert 2900 <= stamps[-1] - stamps[0] <= 3100  # 3 s of frames (audio ends it), not one
    assert 70 <= len(frames) <= 80  # 25 fps


@pytest.mark.spec("RTMP 7.2.2.1")
def test_rtmp_play_of_a_stream_nobody_publishes(our_server: rtmp.Server) -> None:
    host, port = our_server.address[:2]
    started = time.monotonic()
    player = rtmp_play(f"rtmp://{host}:{port}/live/nobody", "--timeout", "3")
    lines: List[str] = []
    try:
        assert player.stderr is not None
        first = player.stderr.readline().decode()
        said = time.monotonic() - started
        rest = player.communicate(timeout=30)[1].decode()
        lines = (first + rest).strip().splitlines()
    finally:
        stop_process(player)
    assert lines[0] == "rtmp: waiting for a publisher of live/nobody", lines
    assert said < 2.5  # at once (the interpreter's start-up included), not after a timeout
    assert player.returncode == 1
    assert "waiting for a publisher of live/nobody: nobody published within" in lines[-1], lines
