"""Push topologies with real servers (issue 19), packets compared with the source FLV.

* nginx-rtmp ``push`` -> our server -> our player;
* our server pushing to nginx-rtmp and node-media-server at once while a local player
  watches;
* two of ours chained (``rtmp serve --push`` in a subprocess -> our server);
* faults: nginx killed and restarted mid-stream (the push resumes within 5 s, from a
  keyframe with the headers again); nginx refusing an unknown application (a clear log
  line, the retry policy, the publisher and the local player unaffected).

Every player's audio and video must be the source's sequence headers, then the source's
messages from a keyframe on, byte for byte (``assert_relayed``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import pytest

import rtmp
from rtmp import flv
from rtmp.flvio import publish_flv
from rtmp.message import MessageType
from rtmp.streams import FrameKind, classify
from tests.conftest import require_peer
from tests.media import sample_flv
from tests.peers import NginxRtmp, NodeMediaServer, free_port, stop_process, wait_port
from tests.test_push import wait_for as _wait_for

pytestmark = pytest.mark.interop

TIMEOUT = 20.0
Media = List[Tuple[int, bytes]]


def wait_for(condition: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """tests/test_push.py's wait, with the longer default wait of real peers."""
    return _wait_for(condition, timeout, 0.05)


def source_media(path: Path) -> Media:
    """The audio and video tags of the source FLV, as ``(type, payload)``."""
    return [(tag.type, tag.data) for tag in flv.read_all(path) if tag.type in (8, 9)]


def _kind(item: Tuple[int, bytes]) -> FrameKind:
    return classify(rtmp.Message(type=item[0], data=item[1], timestamp=0, message_stream_id=1))


def assert_relayed(received: Media, source: Media, minimum: int) -> None:
    """FLV E.4.3.1 / E.4.2.2: each type's sequence header (the source's, byte for byte)
    before that type's first frame, and the source's frames from a video keyframe on,
    byte for byte, at least ``minimum`` of them.  (nginx-rtmp sends each header just
    before the first frame of its type; we send both first.)"""
    headers = {m[0]: m for m in source if _kind(m) == FrameKind.CONFIG}
    for kind, header in headers.items():
        first_frame = next(i for i, m in enumerate(received) if m[0] == kind)
        assert received[first_frame] == header, f"type {kind}: the sequence header first"
    assert all(m in headers.values() for m in received if _kind(m) == FrameKind.CONFIG)
    rest = [m for m in received if _kind(m) != FrameKind.CONFIG]
    # A player may get audio frames before the first picture; the pictures start at a key.
    first_video = next(i for i, m in enumerate(rest) if m[0] == MessageType.VIDEO)
    assert _kind(rest[first_video]) == FrameKind.KEYFRAME, "video must start at a keyframe"
    rest = rest[first_video:]
    frames = [m for m in source if _kind(m) != FrameKind.CONFIG]
    start = frames.index(rest[0])
    assert rest == frames[start:start + len(rest)], "the relayed media differ from the source"
    assert len(rest) >= minimum, f"only {len(rest)} of {len(frames)} frames relayed, from {start}"


class Player:
    """Our client playing ``url`` on a thread, keeping every audio/video payload."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.media: Media = []
        self.done = threading.Event()
        self.error: Optional[BaseException] = None
        self.client = rtmp.Client(rtmp.ClientConfig(read_timeout=TIMEOUT))
        self.client.connect(url)
        self.client.play()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for message in self.client.messages(timeout=6):
                # nginx-rtmp with wait_video sends a zero-length audio message while it
                # holds audio back for the first keyframe (seen with this nginx): no frame.
                if message.type in (MessageType.AUDIO, MessageType.VIDEO) and message.data:
                    self.media.append((message.type, message.data))
        except rtmp.RTMPError as exc:  # the far side's end, or 6 s of silence
            self.error = exc
        finally:
            self.done.set()

    def close(self) -> None:
        try:
            self.client.close()
        except rtmp.RTMPError:
            pass
        self.thread.join(5)


def our_url(server: rtmp.Server, path: str) -> str:
    return f"rtmp://127.0.0.1:{server.address[1]}/{path}"


@pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.1", "FLV E.4.3.1")
def test_nginx_push_to_our_server() -> None:
    source = sample_flv(seconds=4)
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0"))
    server.start()
    try:
        push = f"push rtmp://127.0.0.1:{server.address[1]}/live;"
        with NginxRtmp(app_config=push) as nginx:
            player = Player(our_url(server, "live/key"))  # waits for nginx's push
            publish_flv(nginx.url("live", "key"), source, realtime=True)
            assert player.done.wait(TIMEOUT), "nginx's end of stream never reached us"
        media = source_media(source)
        # nginx relays from wherever it is once its push session is up (here the first
        # GOP is gone); ours waits for a keyframe from there: at most a GOP or two lost.
        assert_relayed(player.media, media, minimum=len(media) // 2)
        player.close()
    finally:
        server.stop(5)


@pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.1", "FLV E.4.3.1")
def test_our_push_to_nginx_and_node_media_server_with_a_local_player() -> None:
    require_peer("node")
    source = sample_flv(seconds=6)
    media = source_media(source)
    with NginxRtmp() as nginx, NodeMediaServer() as nms:
        server = rtmp.Server(rtmp.ServerConfig(
            addr="127.0.0.1:0", push=[f"rtmp://127.0.0.1:{nginx.port}/live",
                                      f"rtmp://127.0.0.1:{nms.port}/live"]))
        server.start()
        try:
            local = Player(our_url(server, "live/cam"))
            far_nginx = Player(nginx.url("live", "cam"))  # nginx lets a player wait
            publisher = threading.Thread(
                target=publish_flv, args=(our_url(server, "live/cam"), source), daemon=True)
            publisher.start()
            assert wait_for(lambda: len([r for r in server.relays if r.state == "live"]) == 2)
            far_nms = Player(nms.url("live", "cam"))  # joins live: its GOP cache first
            publisher.join(TIMEOUT)
            for player in (local, far_nginx, far_nms):
                assert player.done.wait(TIMEOUT), f"{player.url} never ended"
            assert local.media == media  # the local player got everything
            assert_relayed(far_nginx.media, media, minimum=len(media) - 12)
            assert_relayed(far_nms.media, media, minimum=len(media) // 2)
            for player in (local, far_nginx, far_nms):
                player.close()
        finally:
            server.stop(5)


@pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.1.1", "FLV E.4.3.1")
def test_two_of_ours_chained_through_the_command_line() -> None:
    source = sample_flv(seconds=4)
    media = source_media(source)
    far = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0"))
    far.start()
    port = free_port()
    env = dict(os.environ)
    near = subprocess.Popen(
        [sys.executable, "-m", "rtmp", "serve", "--addr", f"127.0.0.1:{port}",
         "--push", f"live={our_url(far, 'edge')}", "--log-level", "warning"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        wait_port(port, 15, process=near)
        player = Player(our_url(far, "edge/cam"))  # waits for the push
        publish_flv(f"rtmp://127.0.0.1:{port}/live/cam", source, realtime=True)
        assert player.done.wait(TIMEOUT), "the end of stream was not forwarded"
        assert_relayed(player.media, media, minimum=len(media) - 12)
        relayed = [c for c in far.connections if c.connect_params.get("rtmpRelayVia")]
        assert relayed == []  # the push session ended with the stream
        player.close()
    finally:
        stop_process(near)
        far.stop(5)


@pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.1", "FLV E.4.3.1")
def test_nginx_killed_and_restarted_mid_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    source = sample_flv(seconds=12)
    media = source_media(source)
    wait_key = "wait_key on; wait_video on;"  # its players start at a keyframe
    nginx = NginxRtmp(app_config=wait_key).start()
    port = nginx.port
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0",
                                           push=[f"rtmp://127.0.0.1:{port}/live"]))
    server.start()
    restarted: Optional[NginxRtmp] = None
    try:
        publisher = threading.Thread(
            target=publish_flv, args=(our_url(server, "live/cam"), source), daemon=True)
        publisher.start()
        assert wait_for(lambda: [r.state for r in server.relays] == ["live"])
        time.sleep(2.0)
        nginx.stop()  # killed mid-stream
        assert wait_for(lambda: [r.state for r in server.relays] == ["retrying"], timeout=10)
        time.sleep(1.0)
        import tests.peers

        monkeypatch.setattr(tests.peers, "free_port", lambda: port)
        restarted = NginxRtmp(app_config=wait_key).start()
        back = time.monotonic()
        player = Player(restarted.url("live", "cam"))
        assert wait_for(lambda: [r.state for r in server.relays] == ["live"], timeout=5.0)
        assert time.monotonic() - back < 5.0, "the push did not resume within 5 s"
        assert server.relays[0].reconnects >= 1
        publisher.join(TIMEOUT)
        assert player.done.wait(TIMEOUT)
        assert_relayed(player.media, media, minimum=len(media) // 4)
        player.close()
    finally:
        server.stop(5)
        nginx.stop()
        if restarted is not None:
            restarted.stop()


@pytest.mark.spec("RTMP 7.2.1.1", "RTMP 7.2.2.6")
def test_nginx_refusing_an_unknown_application(caplog: pytest.LogCaptureFixture) -> None:
    source = sample_flv(seconds=4)
    media = source_media(source)
    with NginxRtmp() as nginx:
        server = rtmp.Server(rtmp.ServerConfig(
            addr="127.0.0.1:0", push=[f"rtmp://127.0.0.1:{nginx.port}/nosuchapp"],
            push_reconnect=1.0))
        server.start()
        try:
            with caplog.at_level(logging.WARNING, logger="rtmp.relay"):
                local = Player(our_url(server, "live/cam"))
                started = time.monotonic()
                publish_flv(our_url(server, "live/cam"), source, realtime=True)
                elapsed = time.monotonic() - started
                assert local.done.wait(TIMEOUT)
            assert elapsed < 4 + 1.5  # paced by the media only
            assert local.media == media
            lines = [r.getMessage() for r in caplog.records]
            failures = [m for m in lines if "nosuchapp/cam failed" in m and "retry" in m]
            assert len(failures) >= 2, lines  # retried, with the backoff
            local.close()
        finally:
            server.stop(5)
