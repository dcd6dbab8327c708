"""``rtmp publish`` of an E-FLV file (HEVC written by FFmpeg 8's muxer, via PyAV) to our server,
and ``rtmp play -o`` writing a valid E-FLV that FFmpeg 8 reads back; across a reconnect request
to both of them (ERTMP Reconnect Request) the file still holds every frame once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

import rtmp
from tests.interop.test_ertmp_pyav import FRAMES, _encoder, _make
from tests.test_streams import wait_for

av = pytest.importorskip("av", reason="PyAV (pip install av) bundles FFmpeg 8 with E-RTMP")

pytestmark = pytest.mark.interop


def _cli(*args: str) -> "subprocess.Popen[str]":
    return subprocess.Popen([sys.executable, "-m", "rtmp", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _count(path: Path) -> Dict[str, List[int]]:
    """FFmpeg 8's demuxer: per codec, the pts of every packet that carries data."""
    found: Dict[str, List[int]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size:
                found.setdefault(packet.stream.codec_context.name, []).append(int(packet.pts))
    return found


@pytest.mark.spec("ERTMP Enhanced Video")
@pytest.mark.spec("ERTMP Reconnect Request")
@pytest.mark.parametrize("reconnect", [False, True], ids=["plain", "reconnect-request"])
def test_cli_publishes_and_plays_eflv(tmp_path: Path, reconnect: bool) -> None:
    if not (_encoder("libx265") and _encoder("aac")):
        pytest.skip("this PyAV build has no libx265 or aac encoder")
    source, copy = tmp_path / "hevc.flv", tmp_path / "copy.flv"
    _make(source, "libx265", "aac")
    expected = _count(source)
    assert len(expected["hevc"]) == FRAMES
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0"))
    server.start()
    host, port = server.address
    url = f"rtmp://{host}:{port}/live/hevc"
    player = publisher = None
    try:
        verbose = ("--log-level", "info") if reconnect else ()
        player = _cli("play", url, "-o", str(copy), "--timeout", "20", *verbose)
        assert wait_for(lambda: any(c.state == rtmp.ConnectionState.PLAYING
                                    for c in server.connections), 20)
        publisher = _cli("publish", str(source), url, "--timeout", "20", *verbose)
        if reconnect:
            assert wait_for(lambda: (server.hub.get("live", "hevc") or rtmp.streams.LiveStream(
                "", "")).video_frames_in >= 2, 20)
            assert len(server.request_reconnect_all(description="planned restart")) == 2
        _, published = publisher.communicate(timeout=60)
        assert publisher.returncode == 0, published
        _, played = player.communicate(timeout=60)
        assert player.returncode == 0, played
        if reconnect:  # both moved to a new connection, by themselves
            assert "moved to" in published and "publishing 'hevc'" in published, published
            assert "moved to" in played and "playing 'hevc'" in played, played
    finally:
        for proc in (player, publisher):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
        server.stop()
    got = _count(copy)
    assert sorted(got) == sorted(expected)  # hevc and aac, read back by FFmpeg 8
    assert len(got["hevc"]) == FRAMES  # every frame once: none lost, none repeated
    assert len(got["aac"]) == len(expected["aac"])
    with av.open(str(copy)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.name, video.codec_context.width) == ("hevc", 64)
        decoded = sum(1 for _ in container.decode(video))
    assert decoded == FRAMES
