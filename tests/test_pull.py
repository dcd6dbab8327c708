"""Pull (issue 19): an edge plays the streams it does not have from an origin (rtmp.pull,
rtmp.relay), with two or three of our own servers on loopback.

The edge's players must get what the origin's publisher sent, byte for byte, from a
keyframe on (the sequence headers first); every player of a stream shares one upstream
session, which closes after the last player left; a lost origin makes the players wait
(UnpublishNotify) while the pull retries, and they go on from a keyframe when it is back;
a pull loop is refused and stops; malformed origins are refused at start with the reason.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any, List, Optional, Tuple

import pytest

import rtmp
from rtmp import commands
from rtmp.message import MessageType
from rtmp.pull import parse_pull_rule
from rtmp.push import PushRule
from rtmp.relay import RELAY_PROPERTY
from tests.peers import free_port
from tests.test_push import (Publisher, assert_looped_for_good, assert_tail_of, looped_pair,
                             run_growing_snippet, serve, servers, url, wait_for)

__all__ = ["servers"]  # the fixture, shared with tests/test_push.py


class Watcher:
    """A player of ``source`` on a thread that stays through the stream's ends: every
    audio/video payload, and every onStatus code, in order."""

    def __init__(self, source: str) -> None:
        self.client = rtmp.Client(rtmp.ClientConfig(read_timeout=20))
        self.client.connect(source)
        self.client.play()
        self.media: List[Tuple[int, bytes]] = []
        self.events: List[Tuple[str, int]] = []  # (status code or "end", len(media) then)
        self.error: Optional[BaseException] = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for _ in range(1_000_000):
            if self._stop.is_set():
                return
            try:
                message = self.client.read_message(0.2)
            except rtmp.StreamEnded:
                self.events.append(("end", len(self.media)))
                continue
            except rtmp.TimeoutError:
                continue
            except rtmp.RTMPError as exc:
                self.error = exc
                return
            if message.type in (MessageType.AUDIO, MessageType.VIDEO):
                self.media.append((message.type, message.data))
            elif message.type == MessageType.COMMAND_AMF0:
                status = self.client.last_status
                if status is not None:
                    self.events.append((status.code, len(self.media)))

    def video(self) -> List[bytes]:
        return [data for kind, data in self.media if kind == MessageType.VIDEO]

    def codes(self) -> List[str]:
        return [code for code, _ in self.events]

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        try:
            self.client.close()
        except rtmp.RTMPError:
            pass


def origin_and_edge(servers: List[rtmp.Server], frames: int,
                    **edge_config: Any) -> Tuple[rtmp.Server, rtmp.Server, Publisher]:
    """Our origin, an edge pulling its ``live`` application, and a publisher of
    ``live/cam`` on the origin that sent the headers and ``frames`` frames."""
    origin = serve()
    servers.append(origin)
    edge = serve(pull=[url(origin, "live")], **edge_config)
    servers.append(edge)
    pub = Publisher(url(origin, "live/cam"))
    pub.headers()
    pub.frames(frames)
    return origin, edge, pub


def players_of(server: rtmp.Server, app: str, name: str) -> int:
    live = server.hub.get(app, name)
    return len(live.snapshot_players()) if live is not None else 0


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry, reason", [
    ("http://origin/live", "unsupported URL scheme"),
    ("rtmp:///live", "no host"),
    ("rtmp://origin:70000/live", "bad port"),
    ("rtmp://origin", "names no application"),
    ("", "empty"),
    ("=rtmp://origin/live", "bad application name"),
])
def test_malformed_pull_urls_are_refused_at_start_with_the_reason(entry: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        rtmp.ServerConfig(pull=[entry])
    assert "pull" in str(caught.value)


def test_pull_rules_and_settings() -> None:
    assert parse_pull_rule("rtmp://o/live") == PushRule("rtmp://o/live", None)
    assert parse_pull_rule("tv=rtmps://o:443/in/{app}-{name}") == PushRule(
        "rtmps://o:443/in/{app}-{name}", "tv")
    with pytest.raises(ValueError, match="not one string"):
        rtmp.ServerConfig(pull="rtmp://o/live")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pull_idle"):
        rtmp.ServerConfig(pull_idle=-1)
    with pytest.raises(ValueError, match="pull_reconnect"):
        rtmp.ServerConfig(pull_reconnect=0)


@pytest.mark.parametrize("flag, reason", [
    ("rtmp://origin", "names no application"),
    ("ftp://origin/live", "unsupported URL scheme"),
])
def test_rtmp_serve_refuses_a_malformed_pull_url_at_start(flag: str, reason: str) -> None:
    done = subprocess.run([sys.executable, "-m", "rtmp", "serve", "--addr", "127.0.0.1:0",
                           "--pull", flag], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--pull" in done.stderr and reason in done.stderr


# -- two of ours -----------------------------------------------------------------------------


@pytest.mark.spec("RTMP 7.2.2.1", "FLV E.4.3.1")
def test_edge_pulls_from_origin_byte_for_byte_and_players_share_one_session(
        servers: List[rtmp.Server]) -> None:
    # The pull joins mid-GOP: headers and the current GOP first.
    origin, edge, pub = origin_and_edge(servers, 25, pull_idle=1.0)
    first = Watcher(url(edge, "live/cam"))
    assert wait_for(lambda: edge.hub.is_live("live", "cam"))
    second = Watcher(url(edge, "live/cam"))
    pub.frames(40, pace=0.002)
    assert wait_for(lambda: len(first.video()) >= 40 and len(second.video()) >= 40)
    # One upstream session for both: the origin sees the publisher and one player.
    assert players_of(origin, "live", "cam") == 1
    assert len(edge.puller.sessions) == 1
    via = [c.connect_params.get(RELAY_PROPERTY) for c in origin.connections]
    assert via.count(edge.relay_id) == 1
    [info] = edge.relays
    assert (info.direction, info.app, info.stream, info.state) == ("pull", "live", "cam", "live")
    assert info.url == f"rtmp://127.0.0.1:{origin.address[1]}/live/cam"
    assert info.bytes_received > 40 * 200 and info.reconnects == 0
    assert info.messages >= 2 * 40
    assert_tail_of(first.media, pub.sent)
    assert_tail_of(second.media, pub.sent)
    # The last player leaves: the pull closes after pull_idle, the origin's player goes.
    first.close()
    second.close()
    assert wait_for(lambda: players_of(origin, "live", "cam") == 0, timeout=6)
    assert wait_for(lambda: edge.relays == [] and not edge.hub.is_live("live", "cam"))
    pub.close()


@pytest.mark.spec("RTMP 7.2.2.1")
def test_the_pull_stays_while_a_player_remains_and_a_new_player_reopens_it(
        servers: List[rtmp.Server]) -> None:
    _, edge, pub = origin_and_edge(servers, 10, pull_idle=0.5)
    stays, leaves = Watcher(url(edge, "live/cam")), Watcher(url(edge, "live/cam"))
    assert wait_for(lambda: len(stays.video()) >= 1 and len(leaves.video()) >= 1)
    leaves.close()
    time.sleep(1.5)  # past pull_idle: one player is still there
    assert [r.state for r in edge.relays] == ["live"]
    stays.close()
    assert wait_for(lambda: edge.relays == [], timeout=6)
    again = Watcher(url(edge, "live/cam"))
    pub.frames(20, pace=0.002)
    assert wait_for(lambda: len(again.video()) >= 10)
    assert_tail_of(again.media, pub.sent)
    assert edge.relays[0].reconnects == 0  # a new session, not a retry
    again.close()
    pub.close()


@pytest.mark.spec("RTMP 7.2.2.1")
def test_on_pull_picks_the_origin_per_stream(servers: List[rtmp.Server]) -> None:
    origin = serve()
    servers.append(origin)
    asked: List[Tuple[str, str]] = []

    def on_pull(conn: Any, app: str, name: str) -> Optional[str]:
        asked.append((app, name))
        if name == "refused":
            raise PermissionError("not from here")
        return url(origin, f"studio/{name}-hd") if name.startswith("cam") else None

    edge = serve(on_pull=on_pull)
    servers.append(edge)
    pub = Publisher(url(origin, "studio/cam1-hd"))
    pub.headers()
    pub.frames(10)
    player = Watcher(url(edge, "tv/cam1"))
    pub.frames(20, pace=0.002)
    assert wait_for(lambda: len(player.video()) >= 10)
    assert_tail_of(player.media, pub.sent)
    assert edge.relays[0].url.endswith("/studio/cam1-hd")
    # None: no pull, the player waits for a local publisher as usual.
    local = Watcher(url(edge, "tv/other"))
    time.sleep(0.3)
    assert len(edge.relays) == 1 and players_of(edge, "tv", "other") == 1
    # Raising refuses the play with NetStream.Play.Failed.
    client = rtmp.Client()
    client.connect(url(edge, "tv/refused"))
    with pytest.raises(rtmp.CommandError) as refused:
        client.play()
    assert refused.value.code == commands.NETSTREAM_PLAY_FAILED
    assert "not from here" in refused.value.description
    client.close()
    assert asked[:3] == [("tv", "cam1"), ("tv", "other"), ("tv", "refused")]
    for each in (player, local):
        each.close()
    pub.close()


@pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.1")
def test_a_local_publisher_wins_over_a_waiting_pull(servers: List[rtmp.Server]) -> None:
    origin = serve()
    servers.append(origin)
    edge = serve(pull=[url(origin, "live")])
    servers.append(edge)
    player = Watcher(url(edge, "live/cam"))  # the origin has no cam yet: the pull waits
    assert wait_for(lambda: players_of(origin, "live", "cam") == 1)
    local = Publisher(url(edge, "live/cam"))
    local.headers()
    local.frames(10)
    far = Publisher(url(origin, "live/cam"))
    far.headers()
    far.frames(10)
    assert wait_for(lambda: edge.relays == [])  # the pull gave way, no retry
    assert wait_for(lambda: players_of(origin, "live", "cam") == 0)
    local.frames(20, pace=0.002)
    assert wait_for(lambda: len(player.video()) >= 20)
    assert_tail_of(player.media, local.sent)
    for each in (player, local, far):
        each.close()


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.spec("RTMP 7.2.2.1", "FLV E.4.3.1")
def test_origin_killed_and_restarted_players_wait_then_go_on_from_a_keyframe(
        servers: List[rtmp.Server]) -> None:
    port = free_port()
    origin = serve(addr=f"127.0.0.1:{port}")
    edge = serve(pull=[f"rtmp://127.0.0.1:{port}/live"], pull_reconnect=1.0)
    servers.append(edge)
    pub = Publisher(f"rtmp://127.0.0.1:{port}/live/cam")
    pub.headers()
    pub.frames(10)
    player = Watcher(url(edge, "live/cam"))
    pub.frames(20, pace=0.002)
    assert wait_for(lambda: len(player.video()) >= 15)
    before = len(player.media)
    origin.stop(5)
    try:
        pub.close()
    except rtmp.RTMPError:
        pass  # the origin went away under the publisher
    # The players are told, and wait; the pull retries with backoff.
    assert wait_for(lambda: commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY in player.codes())
    assert wait_for(lambda: edge.relays and edge.relays[0].state == "retrying")
    time.sleep(1.5)
    assert edge.relays[0].reconnects >= 1 and players_of(edge, "live", "cam") == 1
    origin = serve(addr=f"127.0.0.1:{port}")
    servers.append(origin)
    pub = Publisher(f"rtmp://127.0.0.1:{port}/live/cam")
    pub.headers()
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set() and pub.index < 2000:
            pub.frames(1, pace=0.01)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    assert wait_for(lambda: len(player.media) >= before + 40)
    stop.set()
    thread.join(5)
    assert player.error is None
    codes = player.codes()
    assert codes.index(commands.NETSTREAM_PLAY_PUBLISH_NOTIFY,
                       codes.index(commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY))
    assert edge.relays[0].state == "live"
    # After the restart: the headers again, then the new publisher's media from a keyframe.
    assert_tail_of(player.media[before:], pub.sent)
    player.close()
    pub.close()


@pytest.mark.spec("RTMP 7.2.1.1", "RTMP 7.2.2.1")
def test_a_pull_loop_is_refused_and_stops(servers: List[rtmp.Server],
                                          caplog: pytest.LogCaptureFixture) -> None:
    a, b = looped_pair(servers, "pull", "live")
    with caplog.at_level(logging.INFO):
        player = Watcher(url(a, "live/none"))
        # a pulls from b, b pulls from a: a refuses b's play as a loop; b's pull stops.
        assert_looped_for_good(b)
        assert len(a.relays) == 1 and len(a.connections) == 1  # the player: b gave up
    assert any("relay loop" in r.getMessage() for r in caplog.records)
    player.close()


@pytest.mark.spec("RTMP 7.2.1.1", "RTMP 7.2.2.1")
def test_a_looped_pull_is_not_shared_with_later_players(servers: List[rtmp.Server]) -> None:
    """A pull refused as a loop has stopped for good: a player that comes later must not
    be attached to it (it would wait for ever, the name unpullable while the server runs)
    but start a pull of its own -- here on_pull names a real origin by then."""
    origin = serve()
    servers.append(origin)
    port_a = free_port()
    picks = [f"rtmp://127.0.0.1:{port_a}/live", url(origin, "live")]
    b = serve(on_pull=lambda conn, app, name: picks.pop(0) if len(picks) > 1 else picks[0])
    servers.append(b)
    a = serve(addr=f"127.0.0.1:{port_a}", pull=[url(b, "live")])
    servers.append(a)
    first = Watcher(url(a, "live/cam"))  # a pulls from b, b from a: a refuses, b's loops
    assert wait_for(lambda: [r.state for r in b.relays] == ["looped"])
    pub = Publisher(url(origin, "live/cam"))
    pub.headers()
    pub.frames(5)
    later = Watcher(url(b, "live/cam"))
    assert wait_for(lambda: "live" in [r.state for r in b.relays])
    pub.frames(30)
    assert wait_for(lambda: len(later.video()) >= 20)
    later.close()
    first.close()
    pub.close()


@pytest.mark.spec("RTMP 7.2.2.1")
def test_three_chained_servers_pull_with_the_marker(servers: List[rtmp.Server]) -> None:
    origin = serve(http_addr="127.0.0.1:0")
    middle = serve(pull=[url(origin, "live")])
    edge = serve(pull=[url(middle, "live")], http_addr="127.0.0.1:0")
    servers.extend([origin, middle, edge])
    pub = Publisher(url(origin, "live/cam"))
    pub.headers()
    pub.frames(10)
    player = Watcher(url(edge, "live/cam"))
    pub.frames(30, pace=0.002)
    assert wait_for(lambda: len(player.video()) >= 20)
    via = [c.connect_params.get(RELAY_PROPERTY) for c in origin.connections
           if c.connect_params.get(RELAY_PROPERTY)]
    assert via == [f"{edge.relay_id},{middle.relay_id}"]
    assert_tail_of(player.media, pub.sent)
    # /api/streams shows the pull with the stream; /metrics counts it.
    assert edge.http is not None
    base = f"http://127.0.0.1:{edge.http.address[1]}"
    with urllib.request.urlopen(f"{base}/api/streams", timeout=10) as reply:
        report = json.load(reply)
    [stream] = report["applications"]["live"]["streams"]
    [relay] = stream["relays"]
    assert relay["direction"] == "pull" and relay["state"] == "live"
    assert relay["bytes_received"] > 0 and relay["reconnects"] == 0
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as reply:
        metrics = reply.read().decode()
    assert 'rtmp_relays{direction="pull",state="live"} 1' in metrics
    player.close()
    pub.close()


def test_the_readme_pull_snippet_picks_the_origin_per_stream() -> None:
    """README "Growing past one machine": the ``on_pull`` example does what it says."""
    puller = rtmp.Server(run_growing_snippet("on_pull")["config"]).puller
    assert puller.origin_for(None, "live", "eu-cam") == (
        "rtmp://eu-origin.example/live/eu-cam", "eu-cam")
    assert puller.origin_for(None, "live", "cam") is None
    assert rtmp.Server(rtmp.ServerConfig(pull=["tv=rtmp://o.example/studio/{app}-{name}"])
                       ).puller.origin_for(None, "tv", "cam") == (
        "rtmp://o.example/studio/{app}-{name}", "tv-cam")


@pytest.mark.spec("RTMP 7.1.6", "RTMP 7.1.2")
def test_feed_live_takes_what_a_pull_receives_as_a_publisher_would() -> None:
    """What the origin sends a pull goes into the local stream: an aggregate's tags one by
    one, onMetaData as the metadata late joiners get, other types not at all."""
    from rtmp.message import Message, build_aggregate
    from rtmp.netstream import feed_live
    from rtmp.streams import StreamHub
    from tests.test_push import AUDIO_HEADER, VIDEO_HEADER, video_frame

    hub = StreamHub()
    live = hub.publish("live", "cam", object())
    log = logging.getLogger("test")
    meta = commands.encode_data("onMetaData", {"width": 320.0}, message_stream_id=1)
    assert feed_live(live, meta, log)
    tags = [Message(MessageType.VIDEO, VIDEO_HEADER, 0, 1),
            Message(MessageType.AUDIO, AUDIO_HEADER, 0, 1),
            Message(MessageType.VIDEO, video_frame(0), 40, 1)]
    assert feed_live(live, build_aggregate(tags), log)
    assert live.metadata is not None and live.metadata.data == meta.data
    assert live.video_config is not None and live.video_config.data == VIDEO_HEADER
    assert live.audio_config is not None and live.audio_config.data == AUDIO_HEADER
    assert live.gop_length == 1 and live.messages_in == 3
    assert not feed_live(live, Message(MessageType.SET_CHUNK_SIZE, b"\x00\x00\x10\x00", 0, 0),
                         log)
    assert live.messages_in == 3


@pytest.mark.spec("RTMP 7.1.6")
def test_feed_live_does_not_recurse_into_nested_aggregates() -> None:
    """An aggregate carries tags (audio, video, data), never another aggregate: an origin
    sending aggregates nested 2,000 deep (40 KB) gets none of them relayed, and no
    RecursionError ends the pull with a crash."""
    from rtmp.message import Message, build_aggregate
    from rtmp.netstream import feed_live
    from rtmp.streams import StreamHub
    from tests.test_push import VIDEO_HEADER

    hub = StreamHub()
    live = hub.publish("live", "cam", object())
    nested = build_aggregate([Message(MessageType.VIDEO, VIDEO_HEADER, 0, 1)])
    for _ in range(2000):
        nested = build_aggregate([nested])
    assert feed_live(live, nested, logging.getLogger("test"))
    assert live.messages_in == 0 and live.video_config is None
