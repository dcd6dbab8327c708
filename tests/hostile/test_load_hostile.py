"""RTMP 7.2.2 / 7.3: faults and load against a live server.

A publisher that vanishes mid-GOP, a player that never reads, 200 connect/disconnect
cycles, a TCP reset while recording, ``stop()`` with 100 live sessions, and the connection
limits.  Each case checks the healthy pair and the server's baseline afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import List, Set

import pytest

import rtmp
from rtmp import commands, flv
from rtmp.message import Message, MessageType
from tests.conftest import require_peer
from tests.hostile.harness import (
    HEALTHY_STREAM,
    HOSTILE_CONFIG,
    HostileEnv,
    RawPeer,
    fd_count,
    load_media,
    running_server,
    wait_until,
)
from tests.media import sample_flv
from tests.peers import ffprobe_json

logger = logging.getLogger(__name__)

IDLE_TIMEOUT = float(HOSTILE_CONFIG["idle_timeout"])
READ_TIMEOUT = float(HOSTILE_CONFIG["read_timeout"])
WRITE_TIMEOUT = float(HOSTILE_CONFIG["write_timeout"])

# FLV E.4.3.1 / E.4.2.1: AVC sequence header, keyframe, inter-frames; AAC header.
AVC_HEADER = bytes([0x17, 0x00, 0, 0, 0]) + b"\x01\x64\x00\x1f\xff\xe1"
AVC_KEY = bytes([0x17, 0x01, 0, 0, 0]) + b"K" * 3000
AAC_HEADER = bytes([0xAF, 0x00, 0x12, 0x10])


def avc_inter(index: int) -> bytes:
    return bytes([0x27, 0x01, 0, 0, 0]) + bytes([index & 0xFF]) * 800


def raw_publisher(address: "tuple[str, int]", name: str, kind: str = "live") -> "tuple[RawPeer, int]":
    """A raw peer that has published ``name`` (RTMP 7.2.2.6) and its message stream id."""
    peer = RawPeer(address)
    peer.connect()
    msid = peer.create_stream()
    peer.send_message(commands.publish(name, kind, message_stream_id=msid))
    status = peer.expect_command("onStatus")
    assert status.arguments[0]["code"] == commands.NETSTREAM_PUBLISH_START, status
    return peer, msid


def new_threads(before: Set[threading.Thread]) -> List[str]:
    return sorted(t.name for t in threading.enumerate() if t not in before)


class TestPublisherFaults:
    """RTMP 7.2.2.6: a publisher that disappears frees its stream; players keep what was whole."""

    @pytest.mark.timeout(60)
    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 5.3.1")
    @pytest.mark.parametrize("ending", ["fin", "reset"])
    def test_publisher_disconnects_mid_gop(self, hostile: HostileEnv, ending: str) -> None:
        name = f"midgop-{ending}"
        player = rtmp.Client(rtmp.ClientConfig(connect_timeout=5, read_timeout=5))
        player.connect(hostile.url)
        player.play(name)
        try:
            peer, msid = raw_publisher(hostile.address, name)
            sent = [Message(type=MessageType.VIDEO, data=AVC_HEADER, message_stream_id=msid),
                    Message(type=MessageType.AUDIO, data=AAC_HEADER, message_stream_id=msid),
                    Message(type=MessageType.VIDEO, data=AVC_KEY, timestamp=0,
                            message_stream_id=msid)]
            sent += [Message(type=MessageType.VIDEO, data=avc_inter(i), timestamp=40 * i,
                             message_stream_id=msid) for i in range(1, 4)]
            for message in sent:
                peer.send_message(message)
            # Half of the next inter-frame (chunk size 128: only its first chunk).
            partial = peer.encoder.encode(Message(type=MessageType.VIDEO, data=avc_inter(9),
                                                  timestamp=160, message_stream_id=msid))
            peer.send(partial[:100])
            time.sleep(0.2)
            peer.reset() if ending == "reset" else peer.close()
            received: List[Message] = []
            while len(received) < len(sent):
                message = player.read_message(timeout=5)
                if message.type in (MessageType.AUDIO, MessageType.VIDEO):
                    received.append(message)
            assert [(m.type, m.data) for m in received] == [(m.type, m.data) for m in sent]
            ends = 0
            with pytest.raises(rtmp.TimeoutError):  # the partial frame is never delivered
                while True:
                    try:
                        extra = player.read_message(timeout=1.0)
                    except rtmp.StreamEnded:  # UnpublishNotify + Stream EOF: one end (issue 22)
                        ends += 1
                        continue
                    assert extra.type not in (MessageType.AUDIO, MessageType.VIDEO), extra
            assert ends == 1
            assert wait_until(lambda: not hostile.server.hub.is_live("live", name), 5)
            # The name is free again: a new publisher gets NetStream.Publish.Start.
            again, _ = raw_publisher(hostile.address, name)
            again.close()
        finally:
            player.close()
        hostile.assert_healthy()


class TestPlayers:
    """RTMP 7.2.2.1: players that misbehave cost only their own session."""

    @pytest.mark.timeout(60)
    @pytest.mark.spec("RTMP 7.2.2.1", "RTMP 7.1.7")
    def test_player_that_never_reads(self, hostile: HostileEnv) -> None:
        """A small receive window and no reads: queue bounded, session cut, pair unaffected."""
        stream = hostile.server.hub.get("live", HEALTHY_STREAM)
        assert stream is not None
        before = {id(p) for p in stream.snapshot_players()}
        peer = RawPeer(hostile.address, rcvbuf=4096)
        try:
            peer.connect()
            msid = peer.create_stream()
            peer.send_message(commands.play(HEALTHY_STREAM, message_stream_id=msid))
            assert wait_until(lambda: len(stream.snapshot_players()) > len(before), 5)
            stalled = [p for p in stream.snapshot_players() if id(p) not in before][0]
            start = time.monotonic()
            # No read from here on: the server gives up on its own.
            assert wait_until(
                lambda: hostile.server.connection_count <= hostile.baseline_connections,
                IDLE_TIMEOUT + READ_TIMEOUT + WRITE_TIMEOUT + 3,
                interval=0.2,
            ), "the server kept a player that never reads"
            elapsed = time.monotonic() - start
            budget = stalled.max_queue_bytes * 4  # streams._HARD_LIMIT_FACTOR
            assert stalled.stats.max_queued_bytes <= budget + 256 * 1024
            logger.info("never-reading player cut after %.1f s; queue peaked at %d bytes",
                        elapsed, stalled.stats.max_queued_bytes)
        finally:
            peer.close()
        hostile.assert_healthy()

    @pytest.mark.timeout(60)
    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_max_queue_bytes_bounds_a_stalled_player(self) -> None:
        """6 MB pushed at 2 MB/s: the stalled player's queue stays within its budget (whole
        frames dropped), while a player that reads, on the same stream, gets every frame."""
        budget = 256 * 1024
        count, size = 300, 20_000
        with running_server(max_queue_bytes=budget, read_timeout=30.0, write_timeout=30.0,
                            idle_timeout=60.0) as server:
            reader = rtmp.Client(rtmp.ClientConfig(connect_timeout=5, read_timeout=5))
            reader.connect(f"rtmp://{server.address[0]}:{server.address[1]}/live")
            reader.play("fast")
            got: List[bytes] = []

            def read() -> None:
                with contextlib.suppress(rtmp.RTMPError):
                    while len(got) < count:
                        message = reader.read_message(timeout=5)
                        if message.type == MessageType.VIDEO:
                            got.append(message.data)

            reading = threading.Thread(target=read, name="hostile-reader", daemon=True)
            stalled = RawPeer(server.address, rcvbuf=4096)
            try:
                stalled.connect()
                msid = stalled.create_stream()
                stalled.send_message(commands.play("fast", message_stream_id=msid))
                publisher, pub_msid = raw_publisher(server.address, "fast")
                live = server.hub.get("live", "fast")
                assert live is not None and wait_until(lambda: len(live.snapshot_players()) == 2, 5)
                reading.start()
                sent = []
                for index in range(count):
                    data = (AVC_KEY if index % 25 == 0 else avc_inter(index)) + bytes(size)
                    publisher.send_message(Message(type=MessageType.VIDEO, data=data,
                                                   timestamp=index * 10,
                                                   message_stream_id=pub_msid))
                    sent.append(data)
                    time.sleep(0.01)
                reading.join(15)
                assert len(got) == count, f"the reading player got {len(got)} of {count}"
                assert got == sent, "the reading player received altered frames"
                stats = [p.stats for p in live.snapshot_players()]
                worst = max(stats, key=lambda s: s.max_queued_bytes)
                assert worst.dropped_messages > 0, f"the stalled player dropped nothing: {stats}"
                assert worst.max_queued_bytes <= 4 * budget + size + 3000, stats
                logger.info("stalled player: queue peaked at %d bytes (budget %d), %d dropped",
                            worst.max_queued_bytes, budget, worst.dropped_messages)
                publisher.close()
            finally:
                stalled.close()
                reader.close()
            assert server.stats.errors == 0

    @pytest.mark.timeout(60)
    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_player_reset_mid_stream(self, hostile: HostileEnv) -> None:
        with hostile.peer() as peer:
            peer.connect()
            msid = peer.create_stream()
            peer.send_message(commands.play(HEALTHY_STREAM, message_stream_id=msid))
            peer.expect_command("onStatus")
            peer.read_until(lambda m: m.type == MessageType.VIDEO)
            peer.reset()
        hostile.assert_healthy()


class TestChurn:
    """RTMP 7.2.1.1: many short sessions leave no thread or descriptor behind."""

    @pytest.mark.timeout(120)
    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_200_connect_disconnect_cycles(self, hostile: HostileEnv) -> None:
        start = time.monotonic()
        for index in range(200):
            peer = RawPeer(hostile.address)
            peer.connect()
            if index % 4 == 0:
                peer.create_stream()
            if index % 2:
                peer.reset()
            else:
                peer.close()
        elapsed = time.monotonic() - start
        logger.info("200 connect/disconnect cycles in %.1f s", elapsed)
        assert hostile.server.stats.errors == 0
        hostile.assert_healthy(settle=15.0)


class TestStop:
    """RTMP 7.3: ``Server.stop()`` ends every session and joins every thread, promptly."""

    @pytest.mark.timeout(90)
    @pytest.mark.spec("RTMP 7.2.1.1", "RTMP 7.2.2.1")
    def test_stop_with_100_live_sessions(self) -> None:
        threads_before = set(threading.enumerate())
        fds_before = fd_count()
        peers: List[RawPeer] = []
        # Long timeouts: 100 sessions take seconds to open, and idle ones must still be there.
        with running_server(read_timeout=60.0, idle_timeout=60.0) as server:
            publisher, msid = raw_publisher(server.address, "busy")
            peers.append(publisher)
            for index in range(99):
                peer = RawPeer(server.address)
                peer.connect()
                if index % 2 == 0:  # half of them play the busy stream, half are idle
                    peer.send_message(commands.play("busy", message_stream_id=peer.create_stream()))
                peers.append(peer)
            for ts in range(0, 400, 40):
                publisher.send_message(Message(type=MessageType.VIDEO, data=avc_inter(ts),
                                               timestamp=ts, message_stream_id=msid))
            assert wait_until(lambda: server.connection_count == 100, 10), (
                server.connection_count, [c.state for c in server.connections][:5])
            start = time.monotonic()
            server.stop(timeout=10.0)
            elapsed = time.monotonic() - start
        assert elapsed < 5.0, f"stop() took {elapsed:.1f} s with 100 sessions"
        assert server.connection_count == 0
        assert wait_until(lambda: not new_threads(threads_before), 5), new_threads(threads_before)
        for peer in peers:
            assert peer.wait_closed(5.0) < 5.0
            peer.close()
        assert wait_until(lambda: fd_count() <= fds_before, 5)
        assert server.stats.errors == 0
        logger.info("stop() with 100 live sessions took %.2f s", elapsed)


class TestConnectionLimits:
    """ServerConfig.max_connections / max_connections_per_ip: refused politely, then freed."""

    @pytest.mark.timeout(60)
    @pytest.mark.spec("RTMP 7.2.1.1")
    @pytest.mark.parametrize("option", ["max_connections", "max_connections_per_ip"])
    def test_limit_refuses_then_frees(self, option: str) -> None:
        with running_server(**{option: 3}) as server:
            held = [RawPeer(server.address) for _ in range(3)]
            for peer in held:
                peer.connect()
            with RawPeer(server.address) as extra:
                extra.handshake()
                extra.send_message(commands.connect(commands.connect_command_object(
                    "live", "rtmp://127.0.0.1/live")))
                refusal = extra.expect_command("_error")
                assert refusal.arguments[0]["code"] == commands.NETCONNECTION_CONNECT_REJECTED
                assert option in refusal.arguments[0]["description"]
                assert extra.wait_closed(5.0) < 5.0
            assert server.stats.rejected_max_connections >= 1
            held.pop().close()
            assert wait_until(lambda: server.connection_count == 2, 5)
            with RawPeer(server.address) as again:
                again.connect()  # a freed slot is usable
            for peer in held:
                peer.close()
            assert server.stats.errors == 0

    @pytest.mark.timeout(60)
    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_connection_flood_beyond_the_limit(self) -> None:
        """200 sockets at a server limited to 10: refused or dropped, none kept, none crash."""
        with running_server(max_connections=10) as server:
            socks = [RawPeer(server.address) for _ in range(200)]
            assert wait_until(lambda: server.stats.accepted >= 200, 10)
            assert server.connection_count <= 10
            for peer in socks:
                peer.close()
            assert wait_until(lambda: server.connection_count == 0, 10)
            with RawPeer(server.address) as fresh:
                fresh.connect()
            assert server.stats.errors == 0


class TestRecordingFaults:
    """RTMP 7.2.2.6 ``record``: the FLV survives a publisher reset mid-chunk (FLV E.3)."""

    @pytest.mark.timeout(90)
    @pytest.mark.interop
    @pytest.mark.spec("RTMP 7.2.2.6", "FLV E.3")
    def test_reset_mid_chunk_while_recording(self, tmp_path: Path) -> None:
        require_peer("ffprobe")
        media = load_media(sample_flv(seconds=2, width=160, height=120))
        with running_server(record_dir=str(tmp_path)) as server:
            peer, msid = raw_publisher(server.address, "crash", "record")
            complete = media[: len(media) * 2 // 3]
            for kind, timestamp, data in complete:
                peer.send_message(Message(type=MessageType(kind), data=data,
                                          timestamp=timestamp, message_stream_id=msid))
            kind, timestamp, data = media[len(complete)]
            wire = peer.encoder.encode(Message(type=MessageType(kind), data=data,
                                               timestamp=timestamp, message_stream_id=msid))
            peer.send(wire[: len(wire) // 2])
            time.sleep(0.3)
            peer.reset()
            assert wait_until(lambda: server.connection_count == 0, 10)
            assert server.stats.errors == 0
        files = list(tmp_path.rglob("*.flv"))
        assert len(files) == 1, files
        with flv.Reader(files[0]) as reader:
            tags = [(t.type, t.timestamp, bytes(t.data)) for t in reader
                    if t.type in (MessageType.AUDIO, MessageType.VIDEO)]
        assert tags == [(int(k), ts, d) for k, ts, d in complete]
        probe = ffprobe_json(files[0])
        counts = probe["packet_counts"]
        # ffprobe reads the sequence headers (FLV E.4.2.2 / E.4.3.2) as extradata, not packets.
        headers = sum(1 for k, ts, data in complete
                      if flv.is_sequence_header(flv.Tag(int(k), ts, data)))
        assert counts.get("video", 0) + counts.get("audio", 0) == len(complete) - headers, counts
