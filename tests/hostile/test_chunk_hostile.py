"""RTMP 5.3 / 5.4: hostile chunk streams against a live server.

Chunks are built by hand (:func:`chunk`) after a valid handshake and ``connect``, so that
each case reaches exactly the rule it attacks.  A rule broken is answered by a prompt
hang-up with an error naming the clause; a peer that only stalls is cut by
``read_timeout``; what the spec allows (Abort of anything, huge chunk sizes) keeps working.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from typing import List

import pytest

from rtmp import commands, control
from rtmp.chunk import ChunkDecoder, encode_basic_header
from rtmp.message import Message, MessageType
from tests.hostile.harness import HEALTHY_STREAM, HOSTILE_CONFIG, HostileEnv, RawPeer, running_server

logger = logging.getLogger(__name__)

READ_TIMEOUT = float(HOSTILE_CONFIG["read_timeout"])
PROMPT = 1.0

pytestmark = pytest.mark.timeout(60)


def chunk(fmt: int, csid: int, *, timestamp: int = 0, length: int = 0, type_id: int = 8,
          msid: int = 0, data: bytes = b"") -> bytes:
    """RTMP 5.3.1: one chunk with a type ``fmt`` message header, built field by field."""
    header = encode_basic_header(fmt, csid)
    ts = min(timestamp, 0xFFFFFF)
    if fmt <= 2:
        header += ts.to_bytes(3, "big")  # RTMP 5.3.1.2.1-3: timestamp (delta)
    if fmt <= 1:
        header += length.to_bytes(3, "big") + bytes([type_id])  # length, type id
    if fmt == 0:
        header += struct.pack("<I", msid)  # RTMP 5.3.1.2.1: little-endian stream id
    if fmt <= 2 and ts == 0xFFFFFF:
        header += struct.pack(">I", timestamp)  # RTMP 5.3.1.3
    return header + data


def connected(hostile: HostileEnv) -> RawPeer:
    """A raw peer past the handshake and ``connect``."""
    peer = hostile.peer()
    peer.connect()
    return peer


def assert_still_serving(peer: RawPeer, transaction_id: float = 7) -> None:
    """The session survived: ``createStream`` still gets its ``_result`` (RTMP 7.2.1.3)."""
    peer.send_message(commands.create_stream(transaction_id))
    reply = peer.expect_command("_result")
    assert reply.transaction_id == transaction_id


class TestSetChunkSize:
    """RTMP 5.4.1: 31-bit chunk sizes from 1 to 0x7FFFFFFF."""

    @pytest.mark.spec("RTMP 5.4.1")
    @pytest.mark.parametrize(
        ("value", "complaint"),
        [(0, "Set Chunk Size 0"), (0x80000001, "bit 31 set"), (0xFFFFFFFF, "bit 31 set")],
        ids=["zero", "top-bit", "all-ones"],
    )
    def test_invalid_size_closes_at_once(
        self, hostile: HostileEnv, value: int, complaint: str
    ) -> None:
        mark = hostile.log.mark()
        with connected(hostile) as peer:
            peer.send(chunk(0, 2, length=4, type_id=1, data=struct.pack(">I", value)))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, complaint, "RTMP 5.4.1")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.4.1")
    def test_chunk_size_one_flood(self, hostile: HostileEnv) -> None:
        """Chunk size 1 (legal) makes every payload byte a chunk: the costliest input per
        byte.  1 MB of it must not starve the healthy pair (which shares the GIL)."""
        with connected(hostile) as peer:
            peer.send(chunk(0, 2, length=4, type_id=1, data=struct.pack(">I", 1)))
            peer.encoder.set_chunk_size(1)
            start = time.monotonic()
            for index in range(4):
                peer.send_message(Message(type=MessageType.AUDIO, data=bytes(256 * 1024),
                                          timestamp=index, message_stream_id=1))
            assert_still_serving(peer)
            elapsed = time.monotonic() - start
            logger.info("1 MB at chunk size 1 (2 MB on the wire) processed in %.1f s", elapsed)
            assert elapsed < 10
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.4.1", "RTMP 5.3.1.2.4")
    def test_chunk_size_one_costs_linear_time(self) -> None:
        """An 8 MiB message at chunk size 1 (16 MiB of wire, 64 recv batches of 256 KiB):
        the decoder's contiguous-message scan must not redo per-chunk Python work at every
        batch (it took about 3 s per MiB, growing with the message, before the fix)."""
        size = 8 * 1024 * 1024
        data = bytes(range(256)) * (size // 256)
        # Built with strided slices (our encoder would take seconds at chunk size 1):
        # a type 0 chunk with the first byte, then (0xC6 = type 3, csid 6, one byte) * n.
        continuation = bytearray(2 * (size - 1))
        continuation[0::2] = encode_basic_header(3, 6) * (size - 1)
        continuation[1::2] = data[1:]
        wire = chunk(0, 6, length=size, type_id=9, msid=1, data=data[:1]) + bytes(continuation)
        decoder = ChunkDecoder(1, max_message_size=size)
        start = time.perf_counter()
        got: List[Message] = []
        for offset in range(0, len(wire), 256 * 1024):
            decoder.receive_data(wire[offset:offset + 256 * 1024])
            got.extend(decoder.messages())
        elapsed = time.perf_counter() - start
        assert [m.data == data for m in got] == [True]
        assert elapsed < 3.0, f"{elapsed:.1f} s for 8 MiB at chunk size 1"

    @pytest.mark.spec("RTMP 5.4.1")
    def test_short_payload(self, hostile: HostileEnv) -> None:
        mark = hostile.log.mark()
        with connected(hostile) as peer:
            peer.send(chunk(0, 2, length=2, type_id=1, data=b"\x00\x10"))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, "shorter than 4 bytes", "RTMP 5.4.1")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.4.1", "RTMP 5.3.1.2.1")
    def test_largest_size_then_a_16_mib_message(self, hostile: HostileEnv) -> None:
        """0x7FFFFFFF is legal; a whole 16 MiB - 1 message in one chunk then follows."""
        with connected(hostile) as peer:
            peer.send(chunk(0, 2, length=4, type_id=1, data=struct.pack(">I", 0x7FFFFFFF)))
            assert_still_serving(peer, 3)
            body = os.urandom(0xFFFFFF)
            # Audio on a stream nobody publishes: read whole, then dropped by the server.
            assert peer.send(chunk(0, 6, length=len(body), type_id=8, msid=1, data=body))
            assert_still_serving(peer, 4)
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.4.1", "RTMP 5.3.1.2.1")
    def test_largest_size_then_a_16_mib_header_and_nothing(self, hostile: HostileEnv) -> None:
        """The header announces 16 MiB - 1 and no byte follows: cut by read_timeout."""
        with connected(hostile) as peer:
            peer.send(chunk(0, 2, length=4, type_id=1, data=struct.pack(">I", 0x7FFFFFFF)))
            peer.send(chunk(0, 6, length=0xFFFFFF, type_id=9, msid=1, data=b"\x17\x01"))
            elapsed = peer.wait_closed(READ_TIMEOUT + 3)
            assert READ_TIMEOUT - 0.5 <= elapsed <= READ_TIMEOUT + 2
        hostile.assert_healthy()


class TestMessageHeader:
    """RTMP 5.3.1.2: headers that lie about length, or compress against nothing."""

    @pytest.mark.spec("RTMP 5.3.1.2.1")
    def test_16_mib_announced_nothing_sent(self, hostile: HostileEnv) -> None:
        """Default chunk size 128: the first chunk never completes; read_timeout ends it."""
        mark = hostile.log.mark()
        with connected(hostile) as peer:
            peer.send(chunk(0, 6, length=0xFFFFFF, type_id=9, msid=1))
            elapsed = peer.wait_closed(READ_TIMEOUT + 3)
            assert READ_TIMEOUT - 0.5 <= elapsed <= READ_TIMEOUT + 2
        hostile.log.wait_for(mark, "timed out")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.3.1.2.1")
    def test_message_larger_than_max_message_size(self) -> None:
        """max_message_size: the announcing header is refused before any body arrives."""
        with running_server(max_message_size=64 * 1024) as server:
            with RawPeer(server.address) as peer:
                peer.connect()
                peer.send(chunk(0, 6, length=64 * 1024 + 1, type_id=9, msid=1))
                assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
            with RawPeer(server.address) as peer:  # exactly the limit is fine
                peer.connect()
                body = b"\x27\x01" + bytes(64 * 1024 - 2)
                peer.send_message(Message(type=MessageType.VIDEO, data=body,
                                          message_stream_id=1))
                assert_still_serving(peer)
            assert server.stats.errors == 0

    @pytest.mark.spec("RTMP 5.3.1.2.1")
    @pytest.mark.parametrize("fmt", [1, 2, 3])
    def test_compressed_header_on_a_chunk_stream_never_started(
        self, hostile: HostileEnv, fmt: int
    ) -> None:
        mark = hostile.log.mark()
        with connected(hostile) as peer:
            peer.send(chunk(fmt, 9, length=10, type_id=8, data=bytes(10)))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, f"type {fmt} chunk before any type 0", "RTMP 5.3.1.2.1")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.3.1.1")
    def test_thousands_of_partial_chunk_streams(self, hostile: HostileEnv) -> None:
        """Partial messages on 5,000 chunk stream ids: cut at max_chunk_streams."""
        limit = hostile.server.config.max_chunk_streams
        mark = hostile.log.mark()
        with connected(hostile) as peer:
            burst = b"".join(
                chunk(0, csid, length=1000, type_id=8, msid=1, data=bytes(128))
                for csid in range(64, 64 + 5000)
            )
            peer.send(burst)  # may fail half way: the server hangs up at the limit
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT + 1
        hostile.log.wait_for(mark, f"max_chunk_streams exceeded: {limit + 1} > {limit}")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.3.1")
    def test_stops_mid_message(self, hostile: HostileEnv) -> None:
        """Half of a 300-byte command, then silence: read_timeout ends the session."""
        with connected(hostile) as peer:
            payload = commands.encode_command("createStream", 5, None, "x" * 280).data
            peer.send(chunk(0, 3, length=len(payload), type_id=20, data=payload[:128]))
            elapsed = peer.wait_closed(READ_TIMEOUT + 3)
            assert READ_TIMEOUT - 0.5 <= elapsed <= READ_TIMEOUT + 2
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.3.1")
    def test_message_dripped_one_byte_at_a_time(self, hostile: HostileEnv) -> None:
        """A slowloris inside a message: bytes keep coming, the message never completes.
        read_timeout is a deadline per message, so the drip does not extend it."""
        with connected(hostile) as peer:
            peer.send(chunk(0, 6, length=100, type_id=8, msid=1, data=b"\xaf"))
            start = time.monotonic()
            sent = 0
            while peer.is_open(0.4) and sent < 99:
                if not peer.send(b"\x00"):
                    break
                sent += 1
            elapsed = time.monotonic() - start
            assert sent < 99, "the drip was never cut"
            assert READ_TIMEOUT - 0.5 <= elapsed <= READ_TIMEOUT + 2, elapsed
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.3.1", "RTMP 7.2.2.1")
    def test_player_dripping_a_message(self, hostile: HostileEnv) -> None:
        """The same drip from a *playing* peer.  Players may be silent up to idle_timeout,
        but a message that stays incomplete for read_timeout is not silence: without this
        cut a player could hold max_pending_bytes (64 MiB) for as long as it drips."""
        with connected(hostile) as peer:
            msid = peer.create_stream()
            peer.send_message(commands.play(HEALTHY_STREAM, message_stream_id=msid))
            peer.expect_command("onStatus")
            peer.send(chunk(0, 6, length=100, type_id=8, msid=msid, data=b"\xaf"))
            start = time.monotonic()
            sent = 0
            limit = READ_TIMEOUT + 4
            while peer.is_open(0.4) and time.monotonic() - start < limit and sent < 99:
                if not peer.send(b"\x00"):
                    break
                sent += 1
            elapsed = time.monotonic() - start
            assert elapsed <= READ_TIMEOUT + 2, (
                f"a playing peer kept an incomplete message open for {elapsed:.1f} s")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.3.1")
    def test_tcp_reset_mid_chunk(self, hostile: HostileEnv) -> None:
        """SO_LINGER 0, then close: the server sees ECONNRESET in the middle of a chunk."""
        mark = hostile.log.mark()
        peer = connected(hostile)
        peer.send(chunk(0, 6, length=500, type_id=9, msid=1, data=b"\x17\x01" + bytes(60)))
        time.sleep(0.1)
        peer.reset()
        hostile.log.wait_for(mark, "session ended")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.3.1.2.4")
    def test_type0_interrupting_a_partial_message(self, hostile: HostileEnv) -> None:
        """Deviation (ffmpeg): the partial message is dropped and the new one is read."""
        with connected(hostile) as peer:
            peer.send(chunk(0, 3, length=300, type_id=20, data=bytes(128)))
            payload = commands.create_stream(9).data
            peer.send(chunk(0, 3, length=len(payload), type_id=20, data=payload))
            assert peer.expect_command("_result").transaction_id == 9
        hostile.assert_healthy()


class TestAbort:
    """RTMP 5.4.2: Abort Message names a chunk stream; an unknown one changes nothing."""

    @pytest.mark.spec("RTMP 5.4.2")
    @pytest.mark.parametrize("target", [5, 65599, 0xFFFFFFFF])
    def test_abort_unknown_chunk_stream(self, hostile: HostileEnv, target: int) -> None:
        with connected(hostile) as peer:
            peer.send_message(control.abort(target) if target <= 65599 else Message(
                type=MessageType.ABORT, data=struct.pack(">I", target)))
            assert_still_serving(peer)
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.4.2")
    def test_abort_drops_the_partial_message(self, hostile: HostileEnv) -> None:
        with connected(hostile) as peer:
            peer.send(chunk(0, 3, length=300, type_id=20, data=bytes(128)))  # never finished
            peer.send(chunk(0, 2, length=4, type_id=2, data=struct.pack(">I", 3)))
            payload = commands.create_stream(11).data
            peer.send(chunk(0, 3, length=len(payload), type_id=20, data=payload))
            assert peer.expect_command("_result").transaction_id == 11
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.4.2")
    def test_short_abort(self, hostile: HostileEnv) -> None:
        mark = hostile.log.mark()
        with connected(hostile) as peer:
            peer.send(chunk(0, 2, length=1, type_id=2, data=b"\x03"))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, "Abort Message shorter than 4 bytes", "RTMP 5.4.2")
        hostile.assert_healthy()


class TestControlPayloads:
    """RTMP 5.4 / 6.2: protocol and user control messages with short payloads."""

    @pytest.mark.spec("RTMP 5.4")
    @pytest.mark.parametrize("type_id", [3, 5, 6])
    def test_short_protocol_control(self, hostile: HostileEnv, type_id: int) -> None:
        mark = hostile.log.mark()
        with connected(hostile) as peer:
            peer.send(chunk(0, 2, length=1, type_id=type_id, data=b"\x01"))
            assert peer.wait_closed(READ_TIMEOUT + 3) < PROMPT
        text = hostile.log.wait_for(mark, "RTMP 5.4")
        assert "crashed" not in text
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 6.2")
    @pytest.mark.parametrize("payload", [b"", b"\x00", b"\x00\x03\x00", b"\xff\xff" + bytes(8)],
                             ids=["empty", "1-byte", "short-set-buffer", "unknown-event"])
    def test_odd_user_control(self, hostile: HostileEnv, payload: bytes) -> None:
        """A clear ProtocolError or a logged no-op; never a crashed session."""
        mark = hostile.log.mark()
        with connected(hostile) as peer:
            peer.send(chunk(0, 2, length=len(payload), type_id=4, data=payload))
            if peer.is_open(0.5):
                assert_still_serving(peer)
            else:
                assert "RTMP 6.2" in hostile.log.since(mark) or "RTMP 7.1.7" in hostile.log.since(mark)
        assert "crashed" not in hostile.log.since(mark)
        hostile.assert_healthy()
