"""rtmp.Server with our own client as publisher and players, plus ffmpeg/ffprobe for files.

* the OBS-style publish sequence (releaseStream, FCPublish, createStream, publish,
  @setDataFrame) and what a late player receives first;
* a publisher that leaves and comes back (UnpublishNotify / PublishNotify);
* record to FLV, then VOD play with ffmpeg and with our client (seek, pause, end);
* ten players on one stream, one of them a raw socket that never reads.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from rtmp import Client, ClientConfig, Message, MessageType, Server, ServerConfig, StreamEnded, StreamType
from rtmp import TimeoutError as RTMPTimeoutError
from rtmp import amf0, commands, flv
from rtmp.flvio import publish_flv
from rtmp.streams import FrameKind, classify
from rtmp.transport import Transport
from tests.interop.test_server_ffmpeg import (
    codecs,
    ffmpeg_copy,
    packet_times,
    player_count,
    url_of,
    wait_until,
)
from tests.conftest import require_peer
from tests.media import sample_flv
from tests.peers import ffprobe_json, run

pytestmark = pytest.mark.interop


def status_code(msg: Message) -> Optional[str]:
    """The onStatus code of a command message, else None."""
    if msg.type not in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
        return None
    cmd = commands.decode_command(msg)
    return cmd.code if cmd.name == commands.ON_STATUS else None


def data_name(msg: Message) -> Optional[str]:
    if msg.type != MessageType.DATA_AMF0:
        return None
    values = amf0.decode_all(msg.data)
    return values[0] if values and isinstance(values[0], str) else None


def read_until(client: Client, predicate: Any, timeout: float) -> List[Message]:
    """Read messages until ``predicate(msg)``; return them all (the last one matched)."""
    deadline = time.monotonic() + timeout
    got: List[Message] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching message within {timeout}s; got {len(got)}")
        msg = client.read_message(timeout=remaining)
        got.append(msg)
        if predicate(msg):
            return got


def publish_tags(client: Client, path: Path, limit: Optional[int] = None) -> int:
    """Send an FLV's audio/video tags as fast as possible; returns how many."""
    sent = 0
    with flv.Reader(path) as reader:
        for tag in reader:
            if tag.type == MessageType.AUDIO:
                client.send_audio(bytes(tag.data), tag.timestamp)
            elif tag.type == MessageType.VIDEO:
                client.send_video(bytes(tag.data), tag.timestamp)
            else:
                continue
            sent += 1
            if limit is not None and sent >= limit:
                break
    return sent


def messages_in(server: Server, app: str = "live", name: str = "key") -> int:
    stream = server.hub.get(app, name)
    return stream.messages_in if stream is not None else 0


@pytest.fixture
def source() -> Path:
    return sample_flv()


class TestObsStyleSequence:
    """[impl] OBS/ffmpeg: releaseStream, FCPublish, createStream, publish, @setDataFrame."""

    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.1.2", "RTMP 7.2.2.1")
    def test_publish_sequence_and_late_player(self, source: Path) -> None:
        published: List[Any] = []
        config = ServerConfig(addr="127.0.0.1:0",
                              on_publish=lambda c, n, t: published.append((c.app, n, t)))
        with Server(config) as server:
            url = url_of(server)
            with Client(ClientConfig(publish_preamble=True)) as publisher:
                publisher.connect(url)
                publisher.publish("key")
                assert publisher.stream_id == 1  # RTMP 7.2.1.3: the first stream id
                publisher.send_metadata({"width": 320.0, "height": 240.0, "encoder": "test"})
                sent = publish_tags(publisher, source, limit=60)
                wait_until(lambda: messages_in(server) >= sent, 10, "the server to take every tag")
                assert published == [("live", "key", StreamType.LIVE)]
                stream = server.hub.get("live", "key")
                assert stream is not None and stream.metadata is not None
                with Client() as player:
                    player.connect(url)
                    player.play("key")
                    first = read_until(player, lambda m: classify(m) == FrameKind.KEYFRAME, 10)
        # RTMP 7.1.2: the player gets onMetaData (not @setDataFrame), then the sequence
        # headers, then the GOP from its keyframe.
        media = [m for m in first if m.type != MessageType.COMMAND_AMF0]
        names = [data_name(m) for m in media if m.type == MessageType.DATA_AMF0]
        assert "onMetaData" in names and "@setDataFrame" not in names
        meta = next(m for m in media if data_name(m) == "onMetaData")
        assert amf0.decode_all(meta.data)[1]["width"] == 320.0
        kinds = [classify(m) for m in media if m.type in (MessageType.AUDIO, MessageType.VIDEO)]
        assert kinds[:2] == [FrameKind.CONFIG, FrameKind.CONFIG]
        assert kinds[-1] == FrameKind.KEYFRAME

    @pytest.mark.spec("RTMP 7.2.2.1 [impl: nginx-rtmp play_restart]")
    def test_players_are_told_when_the_publisher_leaves_and_returns(self, source: Path) -> None:
        with Server(ServerConfig(addr="127.0.0.1:0")) as server:
            url = url_of(server)
            with Client() as player:
                player.connect(url)
                player.play("key")  # nobody publishes yet: the player waits
                for round_ in range(2):
                    with Client() as publisher:
                        publisher.connect(url)
                        publisher.publish("key")
                        publish_tags(publisher, source, limit=20)
                        got = read_until(player, lambda m: m.type == MessageType.VIDEO, 10)
                        if round_ == 1:
                            codes = [status_code(m) for m in got]
                            assert commands.NETSTREAM_PLAY_PUBLISH_NOTIFY in codes
                    got = read_until(player, lambda m: status_code(m) ==
                                     commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY, 10)
                    # The end (UnpublishNotify + Stream EOF) is raised once; the next read
                    # waits for the next publisher (issue 22).
                    with pytest.raises(StreamEnded) as ended:
                        player.read_message(timeout=10)
                    assert ended.value.status is not None
                    assert ended.value.status.code == commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY
                assert player_count(server) == 1  # still subscribed, waiting


class TestRecordAndVod:
    """RTMP 7.2.2.6 record/append; RTMP 7.2.2.1 recorded play, 7.2.2.7 seek, 7.2.2.8 pause."""

    @pytest.mark.spec("RTMP 7.2.2.6", "FLV E.3")
    def test_record_then_play_back(self, source: Path, tmp_path: Path) -> None:
        config = ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path / "rec")
        want = packet_times(ffprobe_json(source))
        with Server(config) as server:
            url = url_of(server)
            publish_flv(url, source, realtime=False, stream_type=StreamType.RECORD)
            recorded = tmp_path / "rec" / "live" / "key.flv"
            wait_until(lambda: recorded.exists() and not server.hub.is_live("live", "key"),
                       10, "the recording to close")
            info = ffprobe_json(recorded)
            assert codecs(info) == {"video": "h264", "audio": "aac"}
            got = packet_times(info)
            assert len(got["video"]) == len(want["video"])
            assert len(got["audio"]) == len(want["audio"])
            # APPEND continues the file after its last tag.
            publish_flv(url, source, realtime=False, stream_type=StreamType.APPEND)
            wait_until(lambda: not server.hub.is_live("live", "key"), 10, "append to end")
            appended = packet_times(ffprobe_json(recorded))
            assert len(appended["video"]) == 2 * len(want["video"])
            assert appended["video"] == sorted(appended["video"])
            # VOD: ffmpeg plays the recording (no live publisher) to the end.
            out = tmp_path / "vod.flv"
            played = run(ffmpeg_copy(url, out), timeout=60)
            assert played.returncode == 0, played.stderr.decode(errors="replace")
            vod = packet_times(ffprobe_json(out))
            assert len(vod["video"]) == len(appended["video"])
            assert len(vod["audio"]) == len(appended["audio"])

    @pytest.mark.spec("RTMP 7.2.2.1", "RTMP 7.1.7")
    def test_vod_with_rtmpdump_gstreamer_ffprobe(self, source: Path, tmp_path: Path) -> None:
        want = packet_times(ffprobe_json(source))
        config = ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path / "rec")
        with Server(config) as server:
            url = url_of(server)
            publish_flv(url, source, realtime=False, stream_type=StreamType.RECORD)
            wait_until(lambda: not server.hub.is_live("live", "key"), 10, "the recording")
            dumped, gst_out = tmp_path / "rtmpdump.flv", tmp_path / "gst.flv"
            # Not --live: rtmpdump plays a recording (StreamIsRecorded, Play.Stop at the end).
            rtmpdump = run([require_peer("rtmpdump"), "-q", "-r", url, "-m", "20",
                            "-o", str(dumped)], timeout=60)
            gst = run([require_peer("gst-launch-1.0"), "-q", "rtmp2src", f"location={url}",
                       "timeout=20", "!", "filesink", f"location={gst_out}"], timeout=60)
            probe = ffprobe_json(url, "-rw_timeout", "20000000", timeout=60)
        assert rtmpdump.returncode == 0, rtmpdump.stderr.decode(errors="replace")
        assert gst.returncode == 0, gst.stderr.decode(errors="replace")
        for name, info in (("rtmpdump", ffprobe_json(dumped)), ("gst", ffprobe_json(gst_out)),
                           ("ffprobe", probe)):
            got = packet_times(info)
            assert codecs(info) == {"video": "h264", "audio": "aac"}, name
            assert len(got["video"]) == len(want["video"]), name
            # rtmp2src drops the last audio buffer at the end of a stream (see the live test).
            slack = 1 if name == "gst" else 0
            assert len(want["audio"]) - slack <= len(got["audio"]) <= len(want["audio"]), name

    @pytest.mark.spec("RTMP 7.2.2.7", "RTMP 7.2.2.8", "RTMP 7.1.7")
    def test_vod_seek_pause_and_end(self, source: Path, tmp_path: Path) -> None:
        config = ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path)
        with Server(config) as server:
            url = url_of(server)
            publish_flv(url, source, realtime=False, stream_type=StreamType.RECORD)
            wait_until(lambda: not server.hub.is_live("live", "key"), 10, "the recording")
            with Client() as player:
                player.connect(url)
                length = player.call("getStreamLength", "key")
                assert 3.5 < float(length) < 4.5  # seconds (FLV E.5 duration)
                player.play("key")
                read_until(player, lambda m: m.type == MessageType.VIDEO and m.timestamp >= 2500,
                           10)
                # Seek backwards: a keyframe between 1000 and 1200 ms (one per second in
                # the source) can only come from the seek: we were past 2500 ms already.
                player.seek(1200)
                read_until(player, lambda m: m.type == MessageType.VIDEO
                           and 1000 <= m.timestamp <= 1200 and classify(m) == FrameKind.KEYFRAME,
                           10)
                # Pause: once the notify is in, the stream goes quiet.
                player.pause(True)
                with pytest.raises(RTMPTimeoutError):
                    while True:
                        player.read_message(timeout=0.5)
                with pytest.raises(RTMPTimeoutError):
                    player.read_message(timeout=1.5)
                player.pause(False)
                # ... and resumes, then ends with Play.Stop (RTMP 7.1.7 Stream EOF before it).
                got = read_until(player, lambda m: status_code(m) == commands.NETSTREAM_PLAY_STOP,
                                 15)
                assert any(m.type == MessageType.VIDEO for m in got)
                assert player.stream_eof


def publish_paced(url: str, path: Path, loops: int, speed: float) -> int:
    """Publish an FLV ``loops`` times at ``speed`` times real time; returns media messages sent."""
    sent = 0
    offset = 0
    with Client() as client:
        client.connect(url)
        client.publish()
        started = time.monotonic()
        for _ in range(loops):
            last = 0
            with flv.Reader(path) as reader:
                for tag in reader:
                    if tag.type not in (MessageType.AUDIO, MessageType.VIDEO):
                        continue
                    timestamp = tag.timestamp + offset
                    last = max(last, timestamp)
                    ahead = started + timestamp / 1000.0 / speed - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                    if tag.type == MessageType.AUDIO:
                        client.send_audio(bytes(tag.data), timestamp)
                    else:
                        client.send_video(bytes(tag.data), timestamp)
                    sent += 1
            offset = last + 40
    return sent


class StalledPlayer:
    """A player that subscribes and then never reads a byte (its socket buffer is tiny)."""

    def __init__(self, host: str, port: int, app: str, name: str) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, port))
        self.transport = Transport(sock, role="client", conn_id="stalled")
        self.transport.handshake(10)
        tc_url = f"rtmp://{host}:{port}/{app}"
        self.transport.write_messages([
            commands.connect(commands.connect_command_object(app, tc_url)),
            commands.create_stream(2),
            commands.play(name, 1, -2000, -1),  # the server hands out stream id 1 first
        ])

    def close(self) -> None:
        self.transport.close()


class TestSlowPlayer:
    """A stalled player loses frames; the publisher and the other players keep full rate."""

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_ten_players_one_stalled(self) -> None:
        source = sample_flv(seconds=10)
        config = ServerConfig(addr="127.0.0.1:0", max_queue_bytes=256 * 1024, write_timeout=60)
        counts: Dict[int, int] = {}
        errors: List[BaseException] = []
        with Server(config) as server:
            url = url_of(server)
            host, port = server.address
            ready = threading.Barrier(10)

            def play(index: int) -> None:
                try:
                    with Client() as player:
                        player.connect(url)
                        player.play("key")
                        ready.wait(20)
                        n = 0
                        deadline = time.monotonic() + 120
                        while time.monotonic() < deadline:
                            msg = player.read_message(timeout=30)
                            if msg.type in (MessageType.AUDIO, MessageType.VIDEO):
                                n += 1
                            elif status_code(msg) == commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY:
                                break
                        counts[index] = n
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=play, args=(i,), name=f"test-player-{i}")
                       for i in range(9)]
            for thread in threads:
                thread.start()
            stalled = StalledPlayer(host, port, "live", "key")
            try:
                wait_until(lambda: player_count(server) == 10, 20, "ten players")
                ready.wait(20)
                # 3 loops of a 10 s file (~3 MB) at 5x real time: far more than the stalled
                # player's socket buffers and queue budget, well within what a player reads.
                media = publish_paced(url, source, loops=3, speed=5.0)
                for thread in threads:
                    thread.join(150)
                stalled_conn = [c for c in server.connections if c.remote_addr and
                                c.remote_addr[1] == stalled.transport.sock.getsockname()[1]]
                players = (server.hub.get("live", "key") or None)
                assert players is not None
                slow = [p for p in players.snapshot_players()
                        if p.stats.dropped_messages > 0]
            finally:
                stalled.close()
        assert not errors, errors
        assert media > 0
        # Every healthy player got every frame the publisher sent.
        assert sorted(counts) == list(range(9))
        assert set(counts.values()) == {media}, counts
        # The stalled one dropped frames instead of holding anybody up.
        assert stalled_conn and len(slow) == 1
        assert slow[0].stats.sent_messages < media


class TestPublisherDies:
    """A publisher killed mid-stream: players hear UnpublishNotify and can wait for the next."""

    @pytest.mark.spec("RTMP 7.2.2.1 [impl: nginx-rtmp play_restart]")
    def test_killed_ffmpeg_publisher(self, tmp_path: Path) -> None:
        from tests.interop.test_server_ffmpeg import Proc, ffmpeg_publish

        with Server(ServerConfig(addr="127.0.0.1:0")) as server:
            url = url_of(server)
            with Client() as player:
                player.connect(url)
                player.play("key")
                publisher = Proc(ffmpeg_publish(url, sample_flv(seconds=10)), tmp_path / "p.log")
                try:
                    read_until(player, lambda m: m.type == MessageType.VIDEO, 15)
                finally:
                    publisher.process.kill()  # no FCUnpublish, no deleteStream: just gone
                    publisher.wait(10)
                read_until(player, lambda m: status_code(m) ==
                           commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY, 15)
                with pytest.raises(StreamEnded):  # once, then the player waits again
                    player.read_message(timeout=10)
                assert not server.hub.is_live("live", "key")
                # The same name can be published again at once.
                with Client() as again:
                    again.connect(url)
                    again.publish("key")
                    got = read_until(player, lambda m: status_code(m) ==
                                     commands.NETSTREAM_PLAY_PUBLISH_NOTIFY, 10)
                    assert got
