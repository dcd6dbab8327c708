"""ERTMP Reconnect Request on both sides, and the client's reconnection after a lost connection
(rtmp.reconnect, ServerConnection.request_reconnect, Server.request_reconnect_all)."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator, List, Optional, Tuple

import pytest

import rtmp
from rtmp import commands
from rtmp.message import Message, MessageType, StreamType
from rtmp.reconnect import (
    SWITCH_WITHIN,
    PublishMemory,
    backoff_delays,
    reconnect_url,
    resolve_tc_url,
)
from rtmp.requests import CAPS_EX_RECONNECT, FOURCC_CAN_DECODE, FOURCC_CAN_FORWARD
from rtmp.streams import FrameKind
from rtmp.url import parse_url
from tests.test_streams import (
    AAC_FRAME,
    AAC_HEADER,
    AVC_HEADER,
    AVC_INTER,
    AVC_KEY,
    HEVC_EX_HEADER,
    HEVC_EX_INTER,
    HEVC_EX_KEY,
    wait_for,
)

RECONNECT = commands.NETCONNECTION_CONNECT_RECONNECT_REQUEST


# -- sans-IO ------------------------------------------------------------------------------------


@pytest.mark.spec("ERTMP Reconnect Request")
@pytest.mark.parametrize("reference, expected", [
    (None, "rtmp://127.0.0.1:1935/live"),
    ("", "rtmp://127.0.0.1:1935/live"),
    ("rtmp://foo.mydomain.com:1935/realtimeapp", "rtmp://foo.mydomain.com:1935/realtimeapp"),
    ("rtmp://127.0.0.1/realtimeapp", "rtmp://127.0.0.1/realtimeapp"),
    ("//192.0.2.0/realtimeapp", "rtmp://192.0.2.0/realtimeapp"),
    ("/realtimeapp", "rtmp://127.0.0.1:1935/realtimeapp"),
    ("other", "rtmp://127.0.0.1:1935/other"),
    ("rtmps://secure.example/app/inst", "rtmps://secure.example/app/inst"),
])
def test_tc_url_is_resolved_as_the_v2_table_says(reference: Optional[str], expected: str) -> None:
    assert resolve_tc_url("rtmp://127.0.0.1:1935/live", reference) == expected


def test_relative_tc_url_keeps_a_tls_scheme() -> None:
    assert resolve_tc_url("rtmps://h:443/live", "//other:8443/app") == "rtmps://other:8443/app"


@pytest.mark.spec("ERTMP Reconnect Request")
def test_reconnect_url_takes_the_whole_path_as_app_and_keeps_the_stream() -> None:
    current = parse_url("rtmp://user:pw@h:1935/live/key?token=1")
    moved = reconnect_url(current, "rtmp://h:1935/app/inst")
    assert (moved.host, moved.port, moved.app, moved.stream) == ("h", 1935, "app/inst",
                                                                 "key?token=1")
    assert (moved.username, moved.password) == ("user", "pw")  # the same server
    elsewhere = reconnect_url(current, "rtmp://other/live")
    assert (elsewhere.host, elsewhere.port, elsewhere.username) == ("other", 1935, None)
    for bad in ("http://h/app", "rtmp:///app", "rtmp://h/"):
        with pytest.raises(ValueError):
            reconnect_url(current, bad)


def test_backoff_is_bounded_and_doubles() -> None:
    assert backoff_delays(6, 0.5, 3.0) == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_delays(1, 0.5, 3.0) == [0.0]
    with pytest.raises(ValueError):
        rtmp.ClientConfig(reconnect_attempts=0)
    with pytest.raises(ValueError):
        rtmp.ClientConfig(reconnect_backoff=5, reconnect_backoff_max=1)


def _msg(kind: int, data: bytes, ts: int, msid: int = 1) -> Message:
    return Message(type=kind, data=data, timestamp=ts, message_stream_id=msid)


@pytest.mark.spec("ERTMP Reconnect Request")
def test_publish_memory_keeps_metadata_and_every_tracks_configuration() -> None:
    memory = PublishMemory()
    meta = commands.metadata({"width": 16.0}, 1)
    assert memory.note(meta) == FrameKind.DATA
    assert memory.note(_msg(9, AVC_HEADER, 0)) == FrameKind.CONFIG
    assert memory.note(_msg(8, AAC_HEADER, 0)) == FrameKind.CONFIG
    assert not memory.has_media
    # No media yet: any message is a boundary; then audio only: any audio frame.
    assert memory.is_boundary(FrameKind.AUDIO, _msg(8, AAC_FRAME, 0), 0)
    memory.note(_msg(8, AAC_FRAME, 10))
    assert memory.is_boundary(FrameKind.AUDIO, _msg(8, AAC_FRAME, 20), 0)
    memory.note(_msg(9, AVC_INTER, 20))
    assert memory.has_video
    assert not memory.is_boundary(FrameKind.AUDIO, _msg(8, AAC_FRAME, 30), 0)
    assert not memory.is_boundary(FrameKind.INTERFRAME, _msg(9, AVC_INTER, 30), 0)
    assert memory.is_boundary(FrameKind.INTERFRAME, _msg(9, AVC_INTER, 30), SWITCH_WITHIN)
    assert memory.is_boundary(FrameKind.KEYFRAME, _msg(9, AVC_KEY, 40), 0)
    new_header = AVC_HEADER[:-1] + b"\x00"
    memory.note(_msg(9, new_header, 50))  # a later sequence header replaces the first
    replay = memory.replay(7, 1234)
    assert [(m.type, m.data) for m in replay] == [(MessageType.DATA_AMF0, meta.data),
                                                 (9, new_header), (8, AAC_HEADER)]
    assert [(m.message_stream_id, m.timestamp) for m in replay] == [(7, 0), (7, 1234), (7, 1234)]
    memory.note(commands.encode_data(commands.CLEAR_DATA_FRAME, message_stream_id=1))
    assert memory.metadata is None


def test_publish_memory_reads_enhanced_headers() -> None:
    memory = PublishMemory()
    assert memory.note(_msg(9, HEVC_EX_HEADER, 0)) == FrameKind.CONFIG
    assert memory.note(_msg(9, HEVC_EX_INTER, 40)) == FrameKind.INTERFRAME
    assert memory.is_boundary(FrameKind.KEYFRAME, _msg(9, HEVC_EX_KEY, 80), 0)
    assert [m.data for m in memory.replay(1, 0)] == [HEVC_EX_HEADER]


# -- with our server ------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[rtmp.Server]:
    srv = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _url(srv: rtmp.Server, stream: str = "cam", app: str = "live") -> str:
    host, port = srv.address
    return f"rtmp://{host}:{port}/{app}/{stream}"


def _config(**extra: Any) -> rtmp.ClientConfig:
    options: dict[str, Any] = dict(connect_timeout=10, read_timeout=10, service_interval=0.01)
    options.update(extra)
    return rtmp.ClientConfig(**options)


def _conn_of(srv: rtmp.Server, state: Any, exclude: Tuple[str, ...] = ()) -> Any:
    found: List[Any] = []

    def look() -> bool:
        found[:] = [c for c in srv.connections if c.state == state and c.id not in exclude]
        return bool(found)

    assert wait_for(look, 10)
    return found[0]


class Publisher:
    """A publisher writing a 25 fps AVC+AAC stream (keyframe every 10 frames) from a thread."""

    def __init__(self, url: str, config: rtmp.ClientConfig, gop: int = 10) -> None:
        self.client = rtmp.Client(config)
        self.client.connect(url)
        self.client.publish()
        self.gop = gop
        self.frames = 0
        self.error: Optional[BaseException] = None
        self._stop = threading.Event()
        msid = self.client.stream_id
        assert msid is not None
        self.client.write_messages([commands.metadata({"width": 16.0}, msid),
                                    _msg(9, AVC_HEADER, 0, msid), _msg(8, AAC_HEADER, 0, msid)])
        self.msid = msid
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for n in range(3000):  # bounded: 120 s at most
                if self._stop.is_set():
                    return
                ts = n * 40
                video = AVC_KEY if n % self.gop == 0 else AVC_INTER
                # The message stream id of the first connection on purpose: the client
                # moves what is meant for its stream to the new connection's stream.
                self.client.write_messages([_msg(9, video, ts, self.msid),
                                            _msg(8, AAC_FRAME, ts, self.msid)])
                self.frames = n + 1
                time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def wait_frames(self, count: int) -> None:
        target = self.frames + count
        assert wait_for(lambda: self.frames >= target or self.error is not None, 20)
        assert self.error is None, self.error

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)
        self.client.close()
        assert self.error is None, self.error


def _read_media(player: rtmp.Client, until: float, seen: List[Message]) -> None:
    while time.monotonic() < until:
        message = player.read_message(timeout=5)
        if message.type in (MessageType.AUDIO, MessageType.VIDEO):
            seen.append(message)


def _check_continuous(seen: List[Message]) -> None:
    """Media of each type goes forward in time (no repeats, no restart)."""
    for kind in (MessageType.AUDIO, MessageType.VIDEO):
        stamps = [m.timestamp for m in seen if m.type == kind and m.data not in (AVC_HEADER, AAC_HEADER)]
        assert stamps, kind
        assert all(b > a for a, b in zip(stamps, stamps[1:])), stamps


@pytest.mark.spec("ERTMP Reconnect Request")
@pytest.mark.spec("ERTMP Enhancing NetConnection connect Command")
def test_request_reconnect_sends_the_v2_onstatus(server: rtmp.Server) -> None:
    seen: List[rtmp.StatusEvent] = []
    legacy = rtmp.Client(_config(follow_reconnect_request=False, on_status=seen.append))
    legacy.connect(_url(server))
    conn = _conn_of(server, rtmp.ConnectionState.CONNECTED)
    assert conn.request_reconnect("rtmp://other.example/live", "maintenance") is False
    message = legacy.read_message(timeout=5)  # not followed: handed to the application
    command = commands.decode_command(message)
    assert (command.name, command.transaction_id, command.command_object) == (
        "onStatus", 0, None)
    assert message.message_stream_id == 0
    assert command.info == {"level": "status", "code": RECONNECT,
                            "description": "maintenance", "tcUrl": "rtmp://other.example/live"}
    assert conn.reconnect_requested is not None
    conn.request_reconnect()  # no tcUrl: the client keeps its own
    info = commands.decode_command(legacy.read_message(timeout=5)).info
    assert "tcUrl" not in info and info["code"] == RECONNECT and info["description"]
    assert [e.code for e in seen] == [RECONNECT, RECONNECT]
    legacy.close()
    # A client that follows them states capsEx Reconnect in connect.
    following = rtmp.Client(_config())
    following.connect(_url(server))
    conn = _conn_of(server, rtmp.ConnectionState.CONNECTED, exclude=(conn.id,))
    assert conn.client_caps.has(CAPS_EX_RECONNECT)
    assert server.request_reconnect_all() == [conn.id]
    following.close()


def test_request_reconnect_needs_a_connected_session(server: rtmp.Server) -> None:
    client = rtmp.Client(_config())
    client.connect(_url(server))
    conn = _conn_of(server, rtmp.ConnectionState.CONNECTED)
    with pytest.raises(TypeError):
        conn.request_reconnect(5)
    client.close()
    assert wait_for(lambda: conn.state == rtmp.ConnectionState.CLOSED)
    with pytest.raises(rtmp.ConnectionClosedError):
        conn.request_reconnect()
    assert server.request_reconnect_all() == []


@pytest.mark.spec("ERTMP Enhancing NetConnection connect Command")
def test_client_config_advertises_fourccs_info_maps_and_caps(server: rtmp.Server) -> None:
    client = rtmp.Client(_config(
        fourcc_list=("hvc1", "av01", "Opus"),
        video_fourcc_info_map={"hvc1": FOURCC_CAN_DECODE, "*": FOURCC_CAN_FORWARD},
        audio_fourcc_info_map={"Opus": FOURCC_CAN_DECODE}, caps_ex=0x02))
    client.connect(_url(server))
    conn = _conn_of(server, rtmp.ConnectionState.CONNECTED)
    caps = conn.client_caps
    assert caps.fourcc_list == ("hvc1", "av01", "Opus")
    assert dict(caps.video_fourcc_info_map) == {"hvc1": 1, "*": 4}
    assert dict(caps.audio_fourcc_info_map) == {"Opus": 1}
    assert caps.caps_ex == 0x03  # Multitrack as asked, Reconnect because it follows
    client.close()  # returns at the server's end of file: its teardown may still run
    plain = rtmp.Client(_config(follow_reconnect_request=False))
    plain.connect(_url(server))
    conn = _conn_of(server, rtmp.ConnectionState.CONNECTED, exclude=(conn.id,))
    assert "capsEx" not in conn.connect_params and not conn.client_caps.enhanced
    plain.close()


@pytest.mark.spec("ERTMP Reconnect Request")
def test_publisher_follows_the_request_at_a_keyframe_and_players_see_one_stream(
        server: rtmp.Server) -> None:
    pub = Publisher(_url(server), _config())
    statuses: List[rtmp.StatusEvent] = []
    player = rtmp.Client(_config(on_status=statuses.append))
    player.connect(_url(server))
    player.play()
    seen: List[Message] = []
    try:
        pub.wait_frames(5)
        old = _conn_of(server, rtmp.ConnectionState.PUBLISHING)
        assert old.request_reconnect(description="restart") is True
        assert wait_for(lambda: pub.client.reconnections == 1, 15)
        new = _conn_of(server, rtmp.ConnectionState.PUBLISHING, exclude=(old.id,))
        assert wait_for(lambda: old.state == rtmp.ConnectionState.CLOSED, 10)
        pub.wait_frames(15)
        _read_media(player, time.monotonic() + 1.0, seen)
        assert list(new.stream_names.values()) == ["cam"]  # the same name, on the new one
    finally:
        pub.stop()
        player.close()
    # The player got no end of stream and media that goes on across the switch.
    assert not {e.code for e in statuses} & {commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY,
                                             commands.NETSTREAM_PLAY_PUBLISH_NOTIFY}
    assert not player.stream_eof
    _check_continuous(seen)
    assert seen[-1].timestamp > 15 * 40


@pytest.mark.spec("ERTMP Reconnect Request")
def test_publisher_moves_to_the_tc_url_of_another_server(server: rtmp.Server) -> None:
    other = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0"))
    other.start()
    pub = Publisher(_url(server), _config())
    try:
        pub.wait_frames(3)
        host, port = other.address
        conn = _conn_of(server, rtmp.ConnectionState.PUBLISHING)
        conn.request_reconnect(f"rtmp://{host}:{port}/moved", "go there")
        assert wait_for(lambda: other.hub.is_live("moved", "cam"), 15)
        assert wait_for(lambda: not server.hub.is_live("live", "cam"), 10)
        stream = other.hub.get("moved", "cam")
        assert stream is not None
        # The new server got the metadata and both sequence headers before any frame.
        assert stream.metadata is not None
        assert stream.video_config is not None and stream.video_config.data == AVC_HEADER
        assert stream.audio_config is not None and stream.audio_config.data == AAC_HEADER
        assert pub.client.url is not None and pub.client.url.app == "moved"
        pub.wait_frames(5)
        assert stream.video_frames_in >= 5
    finally:
        pub.stop()
        other.stop()


@pytest.mark.spec("ERTMP Reconnect Request")
def test_player_follows_the_request_and_continues(server: rtmp.Server) -> None:
    pub = Publisher(_url(server), _config())
    player = rtmp.Client(_config())
    player.connect(_url(server))
    player.play()
    seen: List[Message] = []
    try:
        pub.wait_frames(12)
        _read_media(player, time.monotonic() + 0.3, seen)
        conn = _conn_of(server, rtmp.ConnectionState.PLAYING)
        conn.request_reconnect("/live")  # relative: the same server, same app
        _read_media(player, time.monotonic() + 1.5, seen)
        assert player.reconnections == 1
        assert wait_for(lambda: conn.state == rtmp.ConnectionState.CLOSED, 10)
        assert player.state is rtmp.ClientState.SUBSCRIBING
    finally:
        pub.stop()
        player.close()
    _check_continuous(seen)  # the GOP the new connection starts with is not handed out twice


@pytest.mark.spec("ERTMP Reconnect Request")
def test_publisher_reconnects_after_a_lost_connection(server: rtmp.Server) -> None:
    pub = Publisher(_url(server), _config(reconnect=True, reconnect_backoff=0.05))
    try:
        pub.wait_frames(3)
        conn = _conn_of(server, rtmp.ConnectionState.PUBLISHING)
        conn.close()  # as the HTTP API's drop does
        assert wait_for(lambda: pub.client.reconnections == 1 or pub.error is not None, 15)
        assert pub.error is None, pub.error
        new = _conn_of(server, rtmp.ConnectionState.PUBLISHING, exclude=(conn.id,))
        pub.wait_frames(5)
        stream = server.hub.get("live", "cam")
        assert stream is not None and stream.video_config is not None
        assert list(new.stream_names.values()) == ["cam"]
    finally:
        pub.stop()


def test_without_reconnect_a_lost_connection_reaches_the_caller(server: rtmp.Server) -> None:
    pub = Publisher(_url(server), _config())
    pub.wait_frames(2)
    _conn_of(server, rtmp.ConnectionState.PUBLISHING).close()
    assert wait_for(lambda: pub.error is not None, 15)
    assert isinstance(pub.error, rtmp.RTMPError)
    pub._stop.set()
    pub.thread.join(5)
    pub.client.close()


def test_player_reconnects_after_a_lost_connection(server: rtmp.Server) -> None:
    pub = Publisher(_url(server), _config())
    player = rtmp.Client(_config(reconnect=True, reconnect_backoff=0.05))
    player.connect(_url(server))
    player.play()
    seen: List[Message] = []
    try:
        pub.wait_frames(5)
        _read_media(player, time.monotonic() + 0.3, seen)
        _conn_of(server, rtmp.ConnectionState.PLAYING).close()
        _read_media(player, time.monotonic() + 1.5, seen)
        assert player.reconnections == 1
    finally:
        pub.stop()
        player.close()
    _check_continuous(seen)


def test_reconnection_gives_up_after_the_attempts(server: rtmp.Server) -> None:
    player = rtmp.Client(_config(reconnect=True, reconnect_attempts=2, reconnect_backoff=0.05,
                                 connect_timeout=2))
    player.connect(_url(server, "nobody"))
    player.play()
    server.stop()
    started = time.monotonic()
    with pytest.raises(rtmp.ConnectionClosedError, match="2 reconnections failed"):
        for _ in range(20):  # bounded: the statuses the server sent before it stopped
            player.read_message(timeout=5)
    assert time.monotonic() - started < 10
    player.close()


def test_record_goes_on_as_append_after_a_switch(server: rtmp.Server, tmp_path: Any) -> None:
    srv = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", record_dir=str(tmp_path)))
    srv.start()
    types: List[StreamType] = []
    srv.config.on_publish = lambda conn, name, kind: types.append(kind)
    client = rtmp.Client(_config())
    try:
        client.connect(_url(srv, "rec"))
        client.publish(stream_type="record")
        msid = client.stream_id
        assert msid is not None
        client.write_messages([_msg(9, AVC_HEADER, 0, msid), _msg(9, AVC_KEY, 0, msid)])
        _conn_of(srv, rtmp.ConnectionState.PUBLISHING).request_reconnect()
        for n in range(1, 200):  # bounded
            client.write_message(_msg(9, AVC_KEY if n % 5 == 0 else AVC_INTER, n * 40, msid))
            if client.reconnections:
                break
            time.sleep(0.01)
        assert client.reconnections == 1
        assert types == [StreamType.RECORD, StreamType.APPEND]
    finally:
        client.close()
        srv.stop()


class _Sink:
    out_chunk_size = 128

    def __init__(self) -> None:
        self.items: List[Message] = []

    def write_fanout(self, items: Any) -> None:
        self.items.extend(message for _, message, _ in items)


@pytest.mark.spec("ERTMP Reconnect Request")
def test_hub_hands_a_stream_over_only_after_a_request_and_within_the_window(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rtmp.streams import LivePlayer, StreamBusyError, StreamHub

    hub = StreamHub()
    old, new, thief = object(), object(), object()
    told: List[str] = []
    sink = _Sink()
    player = LivePlayer(sink, 1, name="p")
    hub.subscribe("live", "cam", player)
    stream = hub.publish("live", "cam", old, on_start=lambda p: told.append("start"))
    stream.publish_message(_msg(9, AVC_HEADER, 0))
    with pytest.raises(StreamBusyError):
        hub.publish("live", "cam", new)
    stream.allow_handover(thief)  # only the publisher itself opens a handover
    with pytest.raises(StreamBusyError):
        hub.publish("live", "cam", new)
    stream.allow_handover(old, seconds=0)  # a window that has passed
    with pytest.raises(StreamBusyError):
        hub.publish("live", "cam", new)
    stream.allow_handover(old)
    assert hub.publish("live", "cam", new, on_start=lambda p: told.append("start")) is stream
    assert stream.publisher is new and stream.players == [player]
    assert told == ["start"]  # no PublishNotify for the handover
    hub.unpublish(stream, old, on_stop=lambda p: told.append("stop"))  # the old one leaves
    assert stream.publisher is new and told == ["start"]
    with pytest.raises(StreamBusyError):  # the window closed with the handover
        hub.publish("live", "cam", thief)
    player.close()


def test_a_publisher_that_cannot_follow_keeps_its_stream(server: rtmp.Server) -> None:
    legacy = rtmp.Client(_config(follow_reconnect_request=False))
    legacy.connect(_url(server))
    legacy.publish()
    conn = _conn_of(server, rtmp.ConnectionState.PUBLISHING)
    assert conn.request_reconnect() is False
    other = rtmp.Client(_config())
    other.connect(_url(server))
    with pytest.raises(rtmp.CommandError, match="BadName"):
        other.publish()
    other.close()
    legacy.close()


def test_cli_flags_reach_the_client_config() -> None:
    from rtmp import cli

    parser = cli.build_parser()
    args = parser.parse_args(["publish", "f.flv", "rtmp://h/a/s", "--reconnect",
                              "--reconnect-attempts", "3", "--no-follow-reconnect"])
    config = cli._client_config(args)
    assert (config.reconnect, config.reconnect_attempts, config.follow_reconnect_request) == (
        True, 3, False)
    config = cli._client_config(parser.parse_args(["play", "rtmp://h/a/s"]))
    assert (config.reconnect, config.follow_reconnect_request) == (False, True)


@pytest.mark.spec("ERTMP Reconnect Request")
@pytest.mark.parametrize("tc_url", ["http://elsewhere/app", "rtmp:///noname", "rtmp://h:1/"])
def test_a_request_to_no_rtmp_server_is_not_followed(server: rtmp.Server, tc_url: str) -> None:
    pub = Publisher(_url(server), _config())
    try:
        pub.wait_frames(2)
        conn = _conn_of(server, rtmp.ConnectionState.PUBLISHING)
        conn.write_message(commands.reconnect_request(tc_url))  # as a hostile server would
        pub.wait_frames(12)  # a keyframe passed: the request was looked at and refused
        assert pub.client.reconnections == 0
        assert conn.state == rtmp.ConnectionState.PUBLISHING
        assert pub.client.connection.inbox.reconnect_request is None
    finally:
        pub.stop()


def test_a_move_that_fails_keeps_the_old_connection(server: rtmp.Server) -> None:
    host, port = server.address
    pub = Publisher(_url(server), _config(reconnect_attempts=2, connect_timeout=2))
    try:
        pub.wait_frames(2)
        conn = _conn_of(server, rtmp.ConnectionState.PUBLISHING)
        with socket_closed_port() as dead:
            conn.request_reconnect(f"rtmp://127.0.0.1:{dead}/live")
            pub.wait_frames(25)  # two keyframes: two failed attempts, then given up
        assert pub.client.reconnections == 0
        assert pub.client.connection.inbox.reconnect_request is None
        stream = server.hub.get("live", "cam")
        assert stream is not None and stream.live and conn.state == rtmp.ConnectionState.PUBLISHING
    finally:
        pub.stop()


class socket_closed_port:
    """A local port nobody listens on (bound, never listening) for the duration."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
