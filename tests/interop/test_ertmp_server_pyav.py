"""Our server with a real Enhanced RTMP peer: FFmpeg 8 through PyAV (issue 18, item 6).

FFmpeg 8 (the PyAV wheel's libavformat) publishes HEVC+AAC, AV1+Opus and VP9+Opus to
:class:`rtmp.Server`, in a child process (:mod:`tests.interop.pyav_peer`); FFmpeg 8 players
join while it publishes (the second a second and a half late) and must decode from their
first packet, a keyframe, without an error; the server recorded the stream (``record_all``),
and the recording plays back as VOD: FFmpeg 8 seeks in it over RTMP, and our client's seek
gets every configuration again before the keyframe.  The FFmpeg player sends ``fourCcList``
at connect (``rtmp_enhanced_codecs``), which ``ServerConnection.client_caps`` must show.
(PyAV opens an output URL without protocol options, so the publisher sends none.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from rtmp import Client, Server, ServerConfig, ServerConnection, flv
from rtmp.message import MessageType
from rtmp.record_path import list_parts
from rtmp.requests import EnhancedCaps
from rtmp.streams import FrameKind, classify
from tests.conftest import require_module

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 3.0  # of publishing: 75 frames at 25/s, a keyframe every 10
FOURCC_LIST = "hvc1,av01,vp09,Opus,mp4a"

CODECS = [
    pytest.param("libx265", "aac", "hevc", "aac", "hvc1", id="hevc-aac"),
    pytest.param("libsvtav1", "libopus", "av1", "opus", "av01", id="av1-opus"),
    pytest.param("libvpx-vp9", "libopus", "vp9", "opus", "vp09", id="vp9-opus"),
]


def peer(*args: str) -> "subprocess.Popen[bytes]":
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "tests.interop.pyav_peer", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)


def report(process: "subprocess.Popen[bytes]", timeout: float = 60) -> Dict[str, Any]:
    """The peer's JSON line (it must exit 0)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    assert lines, f"no report: {out!r} {err.decode(errors='replace')[-2000:]}"
    result: Dict[str, Any] = json.loads(lines[-1])
    return result


def wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


@pytest.fixture(autouse=True)
def _pyav() -> None:
    require_module("av", "PyAV (pip install av): FFmpeg 8 with Enhanced RTMP")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    caps: List[EnhancedCaps] = []

    def on_connect(conn: ServerConnection) -> None:
        caps.append(conn.client_caps)

    config = ServerConfig(addr="127.0.0.1:0", record_dir=str(tmp_path / "rec"), record_all=True,
                          on_connect=on_connect)
    with Server(config) as srv:
        srv.seen_caps = caps  # type: ignore[attr-defined]
        yield srv


def url(server: Server, name: str) -> str:
    host, port = server.address
    return f"rtmp://{host}:{port}/live/{name}"


@pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio", "RTMP 7.2.2.1", "RTMP 7.2.2.6",
                  "ERTMP Enhancing NetConnection connect Command")
@pytest.mark.parametrize("video, audio, vname, aname, fourcc", CODECS)
def test_ffmpeg8_publishes_and_plays_live_and_late(server: Server, video: str, audio: str,
                                                   vname: str, aname: str, fourcc: str) -> None:
    name = f"e-{fourcc}"
    publisher = peer("encode", url(server, name), "--video", video, "--audio", audio,
                     "--seconds", str(SECONDS), "--paced")
    try:
        assert wait_until(lambda: (s := server.hub.get("live", name)) is not None
                          and s.live and s.gop_length > 0, 20), "the publisher never began"
        early = peer("decode", url(server, name), "--fourcc-list", FOURCC_LIST, "--seconds", "15")
        time.sleep(1.5)
        late = peer("decode", url(server, name), "--seconds", "15")
        stream = server.hub.get("live", name)
        assert stream is not None
        configs = stream.config_messages()  # what the server keeps for late joiners
        published = report(publisher)
        early_got, late_got = report(early), report(late)
    finally:
        publisher.kill()
    # The server read FFmpeg's sequence starts per codec (the Opus one with its
    # MultichannelConfig), and the player's fourCcList at connect.
    kinds = sorted({(m.type, m.data[:1].hex()) for m in configs})
    assert (int(MessageType.VIDEO), "90") in kinds  # ExVideoTagHeader, key, SequenceStart
    if aname == "opus":
        assert {(int(MessageType.AUDIO), "90"), (int(MessageType.AUDIO), "94")} <= set(kinds)
    stated = [c for c in server.seen_caps if c.enhanced]  # type: ignore[attr-defined]
    assert [c.fourcc_list for c in stated] == [tuple(FOURCC_LIST.split(","))]
    for got, least in ((early_got, 25), (late_got, 12)):
        assert got["video_codec"] in (vname, "libdav1d") and got["audio_codec"] == aname, got
        assert got["errors"] == 0 and got["first_video_key"] is True, got
        assert got["video_frames"] >= least and got["audio_frames"] > 0, got
        assert (got["width"], got["height"]) == (160, 120)
    assert late_got["first_video_ms"] > early_got["first_video_ms"] + 500
    assert published["frames"] == int(SECONDS * 25)


@pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.7", "ERTMP Enhanced Video", "ERTMP Enhanced Audio")
@pytest.mark.parametrize("video, audio, vname, aname, fourcc", CODECS)
def test_recorded_e_flv_plays_back_with_seek(server: Server, tmp_path: Path, video: str,
                                             audio: str, vname: str, aname: str,
                                             fourcc: str) -> None:
    name = f"r-{fourcc}"
    report(peer("encode", url(server, name), "--video", video, "--audio", audio,
                "--seconds", str(SECONDS)))
    record_dir = Path(server.config.record_dir or "")
    assert wait_until(lambda: not server.hub.is_live("live", name), 10)
    parts = list_parts(record_dir, "live", name)
    assert len(parts) == 1
    recording = parts[0][1]
    # The recording is a valid E-FLV: FFmpeg 8 decodes every frame.
    whole = report(peer("decode", str(recording)))
    assert whole["video_codec"] in (vname, "libdav1d") and whole["audio_codec"] == aname
    assert whole["errors"] == 0 and whole["video_frames"] >= int(SECONDS * 25) - 8, whole
    # FFmpeg 8 plays it over RTMP and seeks (RTMP 7.2.2.7): it decodes from a keyframe.
    sought = report(peer("decode", url(server, name), "--seek", "1.5", "--frames", "20",
                         "--seconds", "15"))
    assert sought["errors"] == 0 and sought["first_video_key"] is True, sought
    assert 1000 <= sought["first_video_ms"] <= 1600 and sought["video_frames"] == 20, sought
    # Our client's seek: every configuration again, then a keyframe at or before 2000 ms.
    out = tmp_path / "seek.flv"
    with Client() as client:
        client.connect(url(server, ""))
        client.play(name, start=0)
        client.seek(2000)
        with flv.Writer(out) as writer:
            first_video: Optional[FrameKind] = None
            configs = 0
            for message in client.messages(timeout=10):
                if message.type not in (MessageType.AUDIO, MessageType.VIDEO):
                    continue
                kind = classify(message)
                configs += kind == FrameKind.CONFIG
                if message.type == MessageType.VIDEO and kind != FrameKind.CONFIG and \
                        first_video is None:
                    first_video = kind
                    assert 1500 <= message.timestamp <= 2000
                writer.write(message)
    assert first_video == FrameKind.KEYFRAME and configs >= 2
    after = report(peer("decode", str(out)))
    assert after["errors"] == 0 and after["first_video_key"] is True, after
    assert after["video_frames"] >= 20, after


@pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio", "RTMP 7.2.2.6", "RTMP 7.2.2.1")
def test_rtmp_publish_and_play_carry_ffmpeg8_e_flv(server: Server, tmp_path: Path) -> None:
    """``rtmp publish`` of an E-FLV FFmpeg 8 wrote, through our server, to ``rtmp play -o``:
    the saved file is a valid E-FLV that FFmpeg 8 decodes, with the same video tags."""
    source, saved = tmp_path / "hevc-opus.flv", tmp_path / "saved.flv"
    report(peer("encode", str(source), "--video", "libx265", "--audio", "libopus",
                "--seconds", "2"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    player = subprocess.Popen([sys.executable, "-m", "rtmp", "play", url(server, "cli"), "-o",
                               str(saved), "--timeout", "20"], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: any(len(s.players) for s in server.hub.streams()), 20)
        published = subprocess.run([sys.executable, "-m", "rtmp", "publish", "--fast",
                                    str(source), url(server, "cli")], env=env, cwd=ROOT,
                                   capture_output=True, timeout=60)
        assert published.returncode == 0, published.stderr.decode(errors="replace")[-2000:]
        _, err = player.communicate(timeout=30)
        assert player.returncode == 0, err.decode(errors="replace")[-2000:]
    finally:
        if player.poll() is None:
            player.kill()
            player.communicate()
    got = report(peer("decode", str(saved)))
    assert (got["video_codec"], got["audio_codec"]) == ("hevc", "opus"), got
    assert got["errors"] == 0 and got["first_video_key"] is True and got["video_frames"] >= 45, got

    def video_tags(path: Path) -> List[bytes]:
        with flv.Reader(path) as reader:
            return [t.data for t in reader if t.type == flv.TAG_VIDEO]

    assert video_tags(saved) == video_tags(source)  # colorInfo and command frames included
