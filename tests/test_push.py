"""Push (issue 19): a server republishes its live streams to other servers (rtmp.push,
rtmp.relay), with two or three of our own servers on loopback.

The far side's players must get what the publisher sent, byte for byte, from a keyframe
on (the sequence headers first); a lost target is reconnected and resumes at a keyframe;
a refusing target is retried without touching the publisher; a loop is refused and
stops, never amplified; malformed targets are refused at start with the reason.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

import rtmp
from rtmp import stats
from rtmp.message import Message, MessageType
from rtmp.push import Push, PushRule, parse_push_rule, remote_name
from rtmp.relay import RELAY_PROPERTY, Backoff, check_relay_url, loop_reason, relay_chain
from tests.peers import free_port

VIDEO_HEADER = b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f\xff\xe1\x00\x04gd\x00\x1f\x01\x00\x02h\xee"
AUDIO_HEADER = b"\xaf\x00\x12\x10"


def video_frame(i: int, key_every: int = 10, size: int = 200) -> bytes:
    """An AVC NALU message (FLV E.4.3.1): a keyframe every ``key_every`` frames."""
    head = b"\x17\x01" if i % key_every == 0 else b"\x27\x01"
    return head + b"\x00\x00\x00" + i.to_bytes(4, "big") * (size // 4)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


def serve(**config: Any) -> rtmp.Server:
    server = rtmp.Server(rtmp.ServerConfig(addr=config.pop("addr", "127.0.0.1:0"), **config))
    server.start()
    return server


def url(server: rtmp.Server, path: str) -> str:
    return f"rtmp://127.0.0.1:{server.address[1]}/{path}"


class Publisher:
    """Our client publishing synthetic AVC/AAC to ``target``; ``sent`` keeps every payload."""

    def __init__(self, target: str) -> None:
        self.client = rtmp.Client()
        self.client.connect(target)
        self.client.publish()
        self.sent: List[Tuple[int, bytes]] = []
        self.index = 0

    def message(self, kind: int, data: bytes, timestamp: int) -> None:
        stream_id = self.client.stream_id
        assert stream_id is not None
        self.client.write_message(Message(type=kind, data=data, timestamp=timestamp,
                                          message_stream_id=stream_id))
        self.sent.append((kind, data))

    def headers(self) -> None:
        self.client.send_metadata({"width": 320.0, "height": 240.0, "encoder": "tests"})
        self.message(MessageType.VIDEO, VIDEO_HEADER, 0)
        self.message(MessageType.AUDIO, AUDIO_HEADER, 0)

    def frames(self, count: int, pace: float = 0.0, size: int = 200) -> None:
        for _ in range(count):
            i = self.index
            self.message(MessageType.VIDEO, video_frame(i, size=size), i * 40)
            self.message(MessageType.AUDIO, b"\xaf\x01" + bytes([i & 0xFF]) * 20, i * 40)
            self.index += 1
            if pace:
                time.sleep(pace)

    def close(self) -> None:
        self.client.close()


class Collector:
    """A player of ``source`` on a thread: every audio/video payload, and how play ended."""

    def __init__(self, source: str) -> None:
        self.client = rtmp.Client()
        self.client.connect(source)
        self.client.play()
        self.media: List[Tuple[int, bytes]] = []
        self.metadata: List[Message] = []
        self.ended: Optional[BaseException] = None
        self.done = False  # play ended (messages() returned or raised)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for message in self.client.messages(timeout=15):
                if message.type in (MessageType.AUDIO, MessageType.VIDEO):
                    self.media.append((message.type, message.data))
                elif message.type == MessageType.DATA_AMF0:
                    self.metadata.append(message)
        except rtmp.RTMPError as exc:
            self.ended = exc
        finally:
            self.done = True

    def video(self) -> List[bytes]:
        return [data for kind, data in self.media if kind == MessageType.VIDEO]

    def close(self) -> None:
        self.client.close()
        self.thread.join(5)


def assert_tail_of(received: List[Tuple[int, bytes]], sent: List[Tuple[int, bytes]]) -> None:
    """``received`` is the sequence headers, then ``sent`` from a keyframe on, byte for byte."""
    assert received[:2] == [(MessageType.VIDEO, VIDEO_HEADER), (MessageType.AUDIO, AUDIO_HEADER)]
    rest = received[2:]
    assert rest, "no media after the headers"
    assert rest[0][0] == MessageType.VIDEO and rest[0][1][:1] == b"\x17", "must start at a keyframe"
    start = sent.index(rest[0])
    assert rest == sent[start:start + len(rest)]


def looped_pair(servers: List[rtmp.Server], kind: str,
                back_app: str) -> Tuple[rtmp.Server, rtmp.Server]:
    """Two servers relaying to each other (``kind``: "push" or "pull"): ``a`` relays to
    ``b``'s "live" application and ``b`` back to ``a``'s ``back_app``; returns (a, b)."""
    port_a = free_port()
    b = serve(**{kind: [f"rtmp://127.0.0.1:{port_a}/{back_app}"]})
    servers.append(b)
    a = serve(addr=f"127.0.0.1:{port_a}", **{kind: [url(b, "live")]})
    servers.append(a)
    return a, b


def assert_looped_for_good(b: rtmp.Server) -> None:
    """``b``'s only relay was refused as a loop and stopped: no retry, no amplification."""
    assert wait_for(lambda: [r.state for r in b.relays] == ["looped"])
    time.sleep(1.5)
    assert [r.state for r in b.relays] == ["looped"] and b.relays[0].reconnects == 0
    assert "relay loop" in (b.relays[0].last_error or "")


@pytest.fixture
def servers() -> Iterator[List[rtmp.Server]]:
    made: List[rtmp.Server] = []
    yield made
    for server in made:
        server.stop(5)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry, reason", [
    ("http://host/live", "unsupported URL scheme"),
    ("rtmp:///live", "no host"),
    ("rtmp://host:70000/live", "bad port"),
    ("rtmp://host", "names no application"),
    ("rtmp://host/", "names no application"),
    ("", "empty"),
    ("=rtmp://host/live", "bad application name"),
    ("a/b=rtmp://host/live", "bad application name"),
])
def test_malformed_push_urls_are_refused_at_start_with_the_reason(entry: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        rtmp.ServerConfig(push=[entry])


def test_push_rules_targets_and_templates() -> None:
    assert parse_push_rule("rtmp://h/live") == PushRule("rtmp://h/live", None)
    assert parse_push_rule("tv=rtmps://h:443/in") == PushRule("rtmps://h:443/in", "tv")
    assert parse_push_rule("rtmp://h/live?key=a=b").app is None  # '=' in the URL is not APP=
    assert PushRule("rtmp://h/live").template == "{name}"
    assert PushRule("rtmp://h/live/{app}-{name}").template == "{app}-{name}"
    assert remote_name("{app}-{name}", "tv", "cam") == "tv-cam"
    assert check_relay_url("rtmps://u:p@h/live").tls
    with pytest.raises(ValueError, match="not one string"):
        rtmp.ServerConfig(push="rtmp://h/live")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="push_reconnect"):
        rtmp.ServerConfig(push_reconnect=0)
    with pytest.raises(ValueError, match="list of URLs"):
        Push(targets="rtmp://h/live")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no host"):
        Push(targets=["rtmp:///x"])


def test_backoff_doubles_up_to_its_maximum_and_resets() -> None:
    backoff = Backoff(initial=0.5, maximum=3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5
    with pytest.raises(ValueError):
        Backoff(initial=0)


@pytest.mark.spec("RTMP 7.2.1.1")
def test_relay_marker_and_loop_reason() -> None:
    assert relay_chain({RELAY_PROPERTY: "a1,b2"}) == ["a1", "b2"]
    assert relay_chain({RELAY_PROPERTY: 5}) == [] == relay_chain({})
    assert loop_reason({RELAY_PROPERTY: "a1,b2"}, "c3") is None
    assert loop_reason({RELAY_PROPERTY: "a1,b2"}, "a1").startswith("relay loop")
    assert loop_reason({RELAY_PROPERTY: ",".join("x" * i for i in range(1, 9))}, "z")


# -- two of ours -----------------------------------------------------------------------------


@pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.1", "FLV E.4.3.1")
def test_push_to_another_server_byte_for_byte(servers: List[rtmp.Server]) -> None:
    far = serve()
    servers.append(far)
    near = serve(push=[url(far, "edge")])
    servers.append(near)
    local_player = Collector(url(near, "live/cam"))
    pub = Publisher(url(near, "live/cam"))
    pub.headers()
    pub.frames(25)  # the push session attaches mid-GOP: headers and the current GOP first
    assert wait_for(lambda: far.hub.is_live("edge", "cam"))
    far_player = Collector(url(far, "edge/cam"))
    pub.frames(40, pace=0.002)
    assert wait_for(lambda: len(far_player.video()) >= 40 and len(local_player.media) >= 130)
    info = near.relays[0]
    assert (info.direction, info.app, info.stream, info.state) == ("push", "live", "cam", "live")
    assert info.url == f"rtmp://127.0.0.1:{far.address[1]}/edge/cam"
    assert info.bytes_sent > 65 * 200 and info.reconnects == 0 and info.dropped == 0
    assert info.messages >= 2 * 40
    stream = near.hub.get("live", "cam")
    assert stream is not None and len(stream.players) == 1 and len(stream.relays) == 1
    pub.close()
    # End of stream forwarded: FCUnpublish/deleteStream reach the far side.
    assert wait_for(lambda: not far.hub.is_live("edge", "cam"))
    assert wait_for(lambda: far_player.done) and far_player.ended is None  # a clean end
    assert_tail_of(far_player.media, pub.sent)
    assert local_player.media == [m for m in pub.sent]  # the local player lost nothing
    assert wait_for(lambda: near.relays == [])
    local_player.close()
    far_player.close()


@pytest.mark.spec("RTMP 7.2.2.6")
def test_on_publish_chooses_targets_and_name_template(servers: List[rtmp.Server]) -> None:
    far = serve()
    other = serve()
    servers.extend([far, other])

    def on_publish(conn: Any, name: str, kind: Any) -> Optional[Push]:
        if name == "quiet":
            return Push(targets=[])
        if name == "special":
            return Push(targets=[url(other, "in")], name="{app}-{name}-hd")
        return None  # the configured rules

    near = serve(push=[url(far, "all"), "tv=" + url(far, "tvonly"), url(far, "t/x-{name}")],
                 on_publish=on_publish)
    servers.append(near)
    pubs = [Publisher(url(near, path)) for path in ("live/cam", "live/quiet", "live/special",
                                                    "tv/news")]
    for pub in pubs:
        pub.headers()
        pub.frames(3)
    assert wait_for(lambda: len([r for r in near.relays if r.state == "live"]) == 6)
    live = {(s.app, s.name) for s in far.hub.streams() if s.live}
    assert live == {("all", "cam"), ("t", "x-cam"), ("all", "news"), ("tvonly", "news"),
                    ("t", "x-news")}
    assert [(s.app, s.name) for s in other.hub.streams() if s.live] == [("in", "live-special-hd")]
    for pub in pubs:
        pub.close()


@pytest.mark.spec("RTMP 7.2.2.6")
def test_on_publish_returning_a_bad_push_refuses_the_publish(servers: List[rtmp.Server]) -> None:
    def on_publish(conn: Any, name: str, kind: Any) -> Push:
        return Push(targets=["rtmp://nohost-here"])  # ValueError: names no application

    near = serve(on_publish=on_publish)
    servers.append(near)
    client = rtmp.Client()
    client.connect(url(near, "live/cam"))
    with pytest.raises(rtmp.CommandError, match="names no application") as refused:
        client.publish()
    assert refused.value.code == "NetStream.Publish.BadName"
    assert near.relays == [] and not near.hub.is_live("live", "cam")
    client.close()


@pytest.mark.spec("RTMP 7.2.1.1", "RTMP 7.2.2.6")
def test_a_push_loop_is_refused_and_stops(servers: List[rtmp.Server],
                                          caplog: pytest.LogCaptureFixture) -> None:
    a, b = looped_pair(servers, "push", "back")
    with caplog.at_level(logging.INFO):
        pub = Publisher(url(a, "live/cam"))
        pub.headers()
        pub.frames(5)
        # a -> b (live/cam) -> a (back/cam): refused by a as a loop; b's push stops.
        assert_looped_for_good(b)
        assert not a.hub.is_live("back", "cam")
        assert [r.state for r in a.relays] == ["live"]
        assert len(a.connections) == 1  # the publisher only: b's push was turned away
    assert any("relay loop" in r.getMessage() and "refused" in r.getMessage()
               for r in caplog.records)
    pub.close()
    assert wait_for(lambda: b.relays == [] and a.relays == [])  # gone with the stream


@pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.1")
def test_three_chained_servers_pass_the_marker_on(servers: List[rtmp.Server]) -> None:
    c = serve()
    b = serve(push=[url(c, "live")])
    a = serve(push=[url(b, "live")])
    servers.extend([a, b, c])
    pub = Publisher(url(a, "live/cam"))
    pub.headers()
    pub.frames(10)
    assert wait_for(lambda: c.hub.is_live("live", "cam"))
    player = Collector(url(c, "live/cam"))
    pub.frames(30, pace=0.002)
    assert wait_for(lambda: len(player.video()) >= 30)
    via = [conn.connect_params.get(RELAY_PROPERTY) for conn in c.connections
           if conn.connect_params.get(RELAY_PROPERTY)]
    assert via == [f"{a.relay_id},{b.relay_id}"]
    pub.close()
    assert wait_for(lambda: player.done)
    assert_tail_of(player.media, pub.sent)
    player.close()


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.1", "FLV E.4.3.1")
def test_target_killed_and_restarted_resumes_within_5s_from_a_keyframe(
        servers: List[rtmp.Server]) -> None:
    port = free_port()
    far = serve(addr=f"127.0.0.1:{port}")
    near = serve(push=[f"rtmp://127.0.0.1:{port}/live"])
    servers.append(near)
    pub = Publisher(url(near, "live/cam"))
    pub.headers()
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set() and pub.index < 2000:
            pub.frames(1, pace=0.01)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    assert wait_for(lambda: far.hub.is_live("live", "cam"))
    far.stop(5)
    assert wait_for(lambda: near.relays and near.relays[0].state == "retrying")
    time.sleep(1.0)  # down for a while: the backoff grows
    far = serve(addr=f"127.0.0.1:{port}")
    servers.append(far)
    restarted = time.monotonic()
    assert wait_for(lambda: far.hub.is_live("live", "cam"), timeout=5.0)
    assert time.monotonic() - restarted < 5.0
    player = Collector(url(far, "live/cam"))
    assert wait_for(lambda: len(player.video()) >= 20)
    stop.set()
    thread.join(5)
    info = near.relays[0]
    assert info.state == "live" and info.reconnects >= 1
    pub.close()
    assert wait_for(lambda: player.done)
    assert_tail_of(player.media, pub.sent)
    player.close()


@pytest.mark.spec("RTMP 7.2.1.1", "RTMP 7.2.2.6")
def test_a_refusing_target_is_retried_and_the_publisher_is_unaffected(
        servers: List[rtmp.Server], caplog: pytest.LogCaptureFixture) -> None:
    def on_connect(conn: Any) -> None:
        if conn.app != "known":
            raise ValueError(f"unknown application {conn.app!r}")

    far = serve(on_connect=on_connect)
    auth = serve(require_auth=True, username="u", password="right")
    servers.extend([far, auth])
    near = serve(push=[url(far, "nope"), f"rtmp://u:wrong@127.0.0.1:{auth.address[1]}/live"],
                 push_reconnect=0.5)
    servers.append(near)
    with caplog.at_level(logging.WARNING, logger="rtmp.relay"):
        local = Collector(url(near, "live/cam"))
        pub = Publisher(url(near, "live/cam"))
        pub.headers()
        started = time.monotonic()
        pub.frames(100, pace=0.01)
        elapsed = time.monotonic() - started
        assert wait_for(lambda: all(r.reconnects >= 2 for r in near.relays))
    assert elapsed < 3.0  # 100 frames at 10 ms: the failing pushes never held it up
    states = sorted((r.url.split("/")[3], r.state) for r in near.relays)
    assert [s[0] for s in states] == ["live", "nope"]
    assert all(s[1] in ("retrying", "connecting") for s in states)
    lines = [r.getMessage() for r in caplog.records]
    assert any("push to rtmp://127.0.0.1" in m and "unknown application 'nope'" in m
               and "retry" in m for m in lines)
    assert any("/live/cam failed" in m and "retry" in m for m in lines)
    assert wait_for(lambda: len(local.media) == len(pub.sent))
    assert local.media == pub.sent
    pub.close()
    local.close()


@pytest.mark.spec("RTMP 7.2.2.6")
def test_a_stalled_target_never_slows_the_publisher(servers: List[rtmp.Server]) -> None:
    release = threading.Event()

    def on_connect(conn: Any) -> None:
        # A small receive buffer (no autotuning): the stall is felt at once.
        conn.transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)

    def on_message(conn: Any, msg: Message) -> None:
        release.wait(30)  # the far side stops reading: TCP pushes back on the pusher

    far = serve(on_connect=on_connect, on_message=on_message)
    near = serve(push=[url(far, "live")], max_queue_bytes=1024 * 1024)
    servers.extend([near, far])
    local = Collector(url(near, "live/cam"))
    pub = Publisher(url(near, "live/cam"))
    pub.headers()
    assert wait_for(lambda: near.relays and near.relays[0].state == "live")
    client = near.pusher.sessions[0].client
    assert client is not None and client.transport is not None
    # A small send buffer on the pushing side too (no autotuning up to 4 MB).
    client.transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
    try:
        started = time.monotonic()
        # 2.4 MB in 2 s: more than the two socket buffers and the 1 MB queue together,
        # slow enough for the local player to keep up on a busy machine.
        pub.frames(200, pace=0.01, size=12 * 1024)
        elapsed = time.monotonic() - started
        assert wait_for(lambda: len(local.media) == len(pub.sent), timeout=20)
        assert local.media == pub.sent  # the local player lost nothing
        assert near.relays[0].dropped > 0  # the stalled target lost whole frames
        assert near.relays[0].bytes_sent < 2 * 1024 * 1024
        assert elapsed < 8.0
    finally:
        release.set()
    pub.close()
    local.close()


@pytest.mark.spec("RTMP 7.2.2.6")
def test_push_to_an_rtmps_target(servers: List[rtmp.Server], tmp_path: Path) -> None:
    from tests.test_graceful_close import make_cert

    cert, key = make_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    far = serve(ssl_context=context)
    near = serve(push=[f"rtmps://127.0.0.1:{far.address[1]}/live"],
                 push_client=rtmp.ClientConfig(ca_file=str(cert)))
    servers.extend([near, far])
    pub = Publisher(url(near, "live/cam"))
    pub.headers()
    pub.frames(20)
    assert wait_for(lambda: far.hub.is_live("live", "cam"))
    assert wait_for(lambda: near.relays[0].state == "live")
    assert near.relays[0].url.startswith("rtmps://")
    pub.frames(20)
    # The headers, the GOP (frames 10-19) and the 20 frames after: 2 + 2 * 30 messages.
    assert wait_for(lambda: far.hub.get("live", "cam").messages_in >= 62)  # type: ignore[union-attr]
    assert "push_client" not in stats.public_config(near.config)
    pub.close()


def run_growing_snippet(naming: str) -> Dict[str, Any]:
    """Run the README's "Growing past one machine" example that names ``naming``; its
    names."""
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Growing past one machine", 1)[1].split("\n## ", 1)[0]
    (code,) = [c for c in re.findall(r"```py\n(.*?)```", section, re.S) if naming in c]
    scope: Dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    return scope


def test_the_readme_push_snippet_chooses_per_stream() -> None:
    """README "Growing past one machine": the ``on_publish`` example does what it says."""
    config = run_growing_snippet("on_publish")["config"]
    pusher = rtmp.Server(config).pusher

    class Conn:
        app = "tv"

    plan = config.on_publish(Conn(), "news", rtmp.StreamType.LIVE)
    assert pusher.targets_for("tv", "news", plan) == [("rtmp://c.example/in", "tv-news")]
    assert pusher.targets_for("live", "test-1", config.on_publish(Conn(), "test-1", "live")) == []
    Conn.app = "live"
    assert pusher.targets_for("live", "cam", config.on_publish(Conn(), "cam", "live")) == [
        ("rtmp://a.example/live", "cam")]


@pytest.mark.parametrize("flag, reason", [
    ("http://h/live", "unsupported URL scheme 'http'"),
    ("rtmp://h", "names no application"),
    ("rtmp://h:0/live", "port 0"),
])
def test_rtmp_serve_refuses_a_malformed_push_url_at_start(flag: str, reason: str) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "rtmp", "serve", "--addr", "127.0.0.1:0",
                             "--push", flag], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--push" in result.stderr and reason in result.stderr


@pytest.mark.spec("RTMP 7.2.2.6")
def test_push_with_credentials_and_a_key_shows_neither(servers: List[rtmp.Server]) -> None:
    far = serve(require_auth=True, username="u", password="right")
    near = serve(push=[f"rtmp://u:right@127.0.0.1:{far.address[1]}/live/{{name}}?key=secret"])
    servers.extend([near, far])
    pub = Publisher(url(near, "live/cam"))
    pub.headers()
    pub.frames(3)
    assert wait_for(lambda: far.hub.is_live("live", "cam"))  # AUTH-ADOBE answered
    assert wait_for(lambda: near.relays[0].state == "live")
    shown = near.relays[0].url
    assert shown == f"rtmp://127.0.0.1:{far.address[1]}/live/cam"
    assert "secret" not in str(stats.public_config(near.config)) and "right" not in shown
    pub.close()


@pytest.mark.spec("RTMP 5.2")
def test_a_silent_target_does_not_hold_up_the_server_stop(servers: List[rtmp.Server]) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts TCP, never answers S0/S1
    try:
        near = serve(push=[f"rtmp://127.0.0.1:{silent.getsockname()[1]}/live"])
        servers.append(near)  # stopped below; the fixture's second stop does nothing
        pub = Publisher(url(near, "live/cam"))
        pub.headers()
        assert wait_for(lambda: near.relays and near.relays[0].state == "connecting")
        time.sleep(0.3)  # in the handshake now (connect_timeout is 10 s)
        pub.close()
        assert wait_for(lambda: near.relays == [], timeout=3)
        started = time.monotonic()
        near.stop(5)
        assert time.monotonic() - started < 2.0
    finally:
        silent.close()
