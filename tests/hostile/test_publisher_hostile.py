"""RTMP 5.4 / 7.1.6 / 7.1.7 / 7.2.2.6: hostile publishers and protocol-control abuse.

A client that tries to take over the healthy stream, sends broken aggregates or media
before its metadata, escapes ``record_dir`` with its stream name, asks for an
acknowledgement after every byte, or floods Ping Requests without reading the answers.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest

from rtmp import commands, control, user_control
from rtmp.message import Message, MessageType
from tests.hostile.harness import HEALTHY_STREAM, HostileEnv, RawPeer, running_server, wait_until
from tests.hostile.test_chunk_hostile import assert_still_serving, chunk

logger = logging.getLogger(__name__)

pytestmark = pytest.mark.timeout(60)


def publish(peer: RawPeer, name: str, kind: str = "live") -> "tuple[int, commands.Command]":
    msid = peer.create_stream()
    peer.send_message(commands.publish(name, kind, message_stream_id=msid))
    return msid, peer.expect_command("onStatus")


def aggregate_sub(type_id: int, timestamp: int, data: bytes, back: int | None = None) -> bytes:
    """RTMP 7.1.6: one sub-message (FLV tag header layout, data, back pointer)."""
    header = (bytes([type_id]) + len(data).to_bytes(3, "big")
              + (timestamp & 0xFFFFFF).to_bytes(3, "big") + bytes([timestamp >> 24 & 0xFF])
              + b"\x00\x00\x00")
    return header + data + struct.pack(">I", 11 + len(data) if back is None else back)


class TestHijack:
    """RTMP 7.2.2.6: one publisher per stream name."""

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_second_publisher_of_the_healthy_stream_is_refused(self, hostile: HostileEnv) -> None:
        with hostile.peer() as peer:
            peer.connect()
            _, status = publish(peer, HEALTHY_STREAM)
            assert status.arguments[0]["code"] == commands.NETSTREAM_PUBLISH_BAD_NAME
            # Its media, on the refused stream id, must reach nobody.
            peer.send_message(Message(type=MessageType.VIDEO, data=b"\x17\x01evil",
                                      message_stream_id=1))
        hostile.assert_healthy()  # the healthy player saw only the healthy publisher's bytes


class TestAggregates:
    """RTMP 7.1.6: Aggregate messages whose sub-messages lie about their sizes."""

    @pytest.mark.spec("RTMP 7.1.6")
    @pytest.mark.parametrize(
        "payload",
        [
            aggregate_sub(9, 0, b"\x27\x01" + bytes(20))[:-10],  # cut inside
            bytes([9]) + (0xFFFFFF).to_bytes(3, "big") + bytes(7) + b"\x27\x01",  # huge length
            b"\x09\x00",  # shorter than one sub-header
            aggregate_sub(9, 0, b"\x27\x01" + bytes(20), back=999_999),  # wrong back pointer
            aggregate_sub(20, 0, commands.create_stream(3).data),  # a command inside
        ],
        ids=["cut", "huge-length", "short-header", "bad-back-pointer", "command-inside"],
    )
    def test_broken_aggregate_from_a_publisher(
        self, hostile: HostileEnv, payload: bytes
    ) -> None:
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.connect()
            msid, status = publish(peer, "aggregates")
            assert status.arguments[0]["code"] == commands.NETSTREAM_PUBLISH_START
            peer.send_message(Message(type=MessageType.AGGREGATE, data=payload,
                                      message_stream_id=msid))
            if peer.is_open(0.5):
                assert_still_serving(peer, 9)
        assert "crashed" not in hostile.log.since(mark)
        hostile.assert_healthy()


    @pytest.mark.spec("RTMP 7.1.6", "FLV E.4.1")
    def test_command_inside_reaches_no_player(self, hostile: HostileEnv) -> None:
        """Only media and data sub-messages (FLV E.4.1 tag types 8, 9, 18) are relayed: a
        Set Chunk Size or a command hidden in an aggregate must not reach the players."""
        key = b"\x17\x01" + bytes(3) + b"K" * 5000  # longer than a chunk: tests the decoder
        inter = b"\x27\x01" + bytes(3) + b"P" * 300
        payload = (aggregate_sub(1, 0, struct.pack(">I", 1))  # Set Chunk Size 1
                   + aggregate_sub(20, 0, commands.create_stream(3).data)
                   + aggregate_sub(4, 0, user_control.stream_eof(1).data)
                   + aggregate_sub(9, 0, key)
                   + aggregate_sub(8, 10, b"\xaf\x01" + b"A" * 20))
        with hostile.peer() as publisher, hostile.peer() as player:
            publisher.connect()
            msid, status = publish(publisher, "injected")
            assert status.arguments[0]["code"] == commands.NETSTREAM_PUBLISH_START
            player.connect()
            play_msid = player.create_stream()
            player.send_message(commands.play("injected", play_msid))
            player.read_until(lambda m: m.type == MessageType.COMMAND_AMF0 and commands
                              .decode_command(m).arguments[0].get("code")
                              == commands.NETSTREAM_PLAY_START)
            player.received.clear()
            publisher.send_message(Message(type=MessageType.AGGREGATE, data=payload,
                                           message_stream_id=msid))
            publisher.send_message(Message(type=MessageType.VIDEO, data=inter, timestamp=40,
                                           message_stream_id=msid))
            last = player.read_until(lambda m: m.type == MessageType.VIDEO and m.data == inter)
            assert last.message_stream_id == play_msid
            assert player.decoder.chunk_size != 1
            relayed = player.counts.copy()
            assert relayed[MessageType.VIDEO] == 2 and relayed[MessageType.AUDIO] == 1
            assert relayed[MessageType.SET_CHUNK_SIZE] <= 1  # the server's own, at connect
            assert_still_serving(player, 9)
            assert_still_serving(publisher, 9)
        hostile.assert_healthy()


class TestRecordPaths:
    """RTMP 7.2.2.6 ``record``: a stream name never leaves ``record_dir``."""

    @pytest.mark.spec("RTMP 7.2.2.6")
    @pytest.mark.parametrize("name", ["../escape", "../../tmp/escape", "/abs/escape",
                                      "a/../../escape", "..", "x\x00y", "con" * 200])
    def test_hostile_record_names(self, tmp_path: Path, name: str) -> None:
        record_dir = tmp_path / "records"
        record_dir.mkdir()
        with running_server(record_dir=str(record_dir)) as server:
            with RawPeer(server.address) as peer:
                peer.connect()
                msid, status = publish(peer, name, "record")
                code = status.arguments[0]["code"]
                if code == commands.NETSTREAM_PUBLISH_START:
                    peer.send_message(Message(type=MessageType.VIDEO, data=b"\x17\x00\x00\x00\x00",
                                              message_stream_id=msid))
                    assert_still_serving(peer)
            assert server.stats.errors == 0
        outside = [p for p in tmp_path.rglob("*") if record_dir not in p.parents and p != record_dir]
        assert outside == [], f"{name!r} wrote outside record_dir: {outside}"


class TestControlAbuse:
    """RTMP 5.4.4 / 7.1.7: acknowledgement windows and pings used as amplifiers."""

    @pytest.mark.spec("RTMP 5.4.4", "RTMP 5.4.3")
    def test_window_ack_size_of_one_byte(self, hostile: HostileEnv) -> None:
        """The server acknowledges per read, not per byte: 1 MB in, a bounded number of acks."""
        with hostile.peer() as peer:
            peer.connect()
            peer.send_message(control.window_ack_size(1))
            peer.send_message(control.set_chunk_size(65536))
            peer.encoder.set_chunk_size(65536)
            body = bytes(60_000)
            for _ in range(16):
                peer.send_message(Message(type=MessageType.VIDEO, data=b"\x27\x01" + body,
                                          message_stream_id=1))
            assert_still_serving(peer)
            peer.is_open(0.3)  # collect what else arrives
            acks = peer.counts[MessageType.ACKNOWLEDGEMENT]
            assert 0 < acks < 2000, f"{acks} acknowledgements for 1 MB"
            logger.info("window ack size 1: %d acknowledgements for ~1 MB", acks)
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 7.1.7")
    def test_ping_flood_without_reading(self, hostile: HostileEnv) -> None:
        """20,000 Ping Requests and no reads: the answers back up, and the session is cut at
        write_timeout rather than growing a queue."""
        mark = hostile.log.mark()
        peer = RawPeer(hostile.address, rcvbuf=4096)
        try:
            peer.connect()
            ping = peer.encoder.encode(user_control.ping_request(1))
            flood = ping * 20_000
            peer.sock.settimeout(15.0)
            try:
                peer.sock.sendall(flood)
            except OSError:
                pass  # the server hung up under the flood
            assert wait_until(
                lambda: hostile.server.connection_count <= hostile.baseline_connections, 15)
        finally:
            peer.close()
        assert "crashed" not in hostile.log.since(mark)
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.4.5")
    @pytest.mark.parametrize("payload", [struct.pack(">IB", 0, 0), struct.pack(">IB", 1, 2),
                                         struct.pack(">IB", 2_500_000, 9)],
                             ids=["zero-hard", "one-dynamic", "bad-limit-type"])
    def test_odd_peer_bandwidth(self, hostile: HostileEnv, payload: bytes) -> None:
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.connect()
            peer.send(chunk(0, 2, length=len(payload), type_id=6, data=payload))
            if peer.is_open(0.5):
                assert_still_serving(peer)
        assert "crashed" not in hostile.log.since(mark)
        hostile.assert_healthy()
