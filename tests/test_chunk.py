"""RTMP 5.3: the chunk stream encoder and decoder."""

from __future__ import annotations

import struct
from typing import List

import pytest
from hypothesis import given, strategies as st

from rtmp import LimitExceededError, Message, MessageType, ProtocolError
from rtmp.chunk import (
    ChunkDecoder,
    ChunkEncoder,
    ChunkType,
    encode_basic_header,
    encode_type0,
    parse_set_chunk_size,
)
from rtmp.control import abort, set_chunk_size


def decode_all(data: bytes, **kwargs: int) -> List[Message]:
    decoder = ChunkDecoder(**kwargs)
    decoder.receive_data(data)
    return list(decoder.messages())


def audio(ts: int, size: int = 32, msid: int = 12345, csid: int = 3) -> Message:
    return Message(type=MessageType.AUDIO, data=bytes([ts & 0xFF]) * size,
                   timestamp=ts, message_stream_id=msid, chunk_stream_id=csid)


# RTMP 5.3.2.1, Example 1: audio, msid 12345, type 8, 32-byte messages every 20 ms, csid 3.
EXAMPLE_1_HEADERS = [
    # fmt=0 | csid=3; timestamp 1000; length 32; type 8; msid 12345 little-endian
    bytes.fromhex("03" "0003e8" "000020" "08" "39300000"),
    # fmt=2 | csid=3; timestamp delta 20
    bytes.fromhex("83" "000014"),
    # fmt=3 | csid=3 (new message, everything repeated)
    bytes.fromhex("c3"),
    bytes.fromhex("c3"),
]


class TestExample1_5_3_2_1:
    @pytest.mark.spec("RTMP 5.3.2", "RTMP 5.3.2.1")
    def test_headers_byte_for_byte(self) -> None:
        """Chunk types 0, 2, 3, 3 and sizes 44, 36, 33, 33, exactly as the example."""
        encoder = ChunkEncoder(128)
        messages = [audio(1000 + 20 * i) for i in range(4)]
        wire = [encoder.encode(m) for m in messages]
        assert [len(w) for w in wire] == [44, 36, 33, 33]
        for chunk, header, msg in zip(wire, EXAMPLE_1_HEADERS, messages):
            assert chunk == header + msg.data
        assert decode_all(b"".join(wire)) == messages


class TestExample2_5_3_2_2:
    @pytest.mark.spec("RTMP 5.3.2", "RTMP 5.3.2.2")
    def test_one_message_three_chunks(self) -> None:
        """Video of 307 bytes at chunk size 128: 140, 129 and 52 bytes; type 0 then type 3."""
        payload = bytes(i % 251 for i in range(307))
        msg = Message(type=MessageType.VIDEO, data=payload, timestamp=1000,
                      message_stream_id=12346, chunk_stream_id=4)
        wire = ChunkEncoder(128).encode(msg)
        assert len(wire) == 140 + 129 + 52
        # fmt=0 | csid=4; timestamp 1000; length 307; type 9; msid 12346 LE
        assert wire[:12] == bytes.fromhex("04" "0003e8" "000133" "09" "3a300000")
        assert wire[12:140] == payload[:128]
        assert wire[140:141] == b"\xc4"  # fmt=3 | csid=4: continuation
        assert wire[141:269] == payload[128:256]
        assert wire[269:270] == b"\xc4"
        assert wire[270:] == payload[256:]
        assert decode_all(wire) == [msg]


class TestBasicHeader:
    @pytest.mark.spec("RTMP 5.3.1.1")
    @pytest.mark.parametrize(
        "csid, expected",
        [
            (2, "02"), (3, "03"), (63, "3f"),
            (64, "0000"), (319, "00ff"),
            (320, "010001"), (365, "01" "2d01"), (65599, "01ffff"),
        ],
    )
    def test_smallest_form(self, csid: int, expected: str) -> None:
        """1 byte for 2-63, 2 bytes for 64-319, 3 bytes (16-bit LE + 64) above."""
        assert encode_basic_header(0, csid) == bytes.fromhex(expected)

    @pytest.mark.spec("RTMP 5.3.1.1")
    def test_spec_example_csid_365(self) -> None:
        """The spec's example: csid 365 is field 1 then the 16-bit value 301."""
        header = encode_basic_header(0, 365)
        assert header[0] & 0x3F == 1
        assert header[1] + (header[2] << 8) == 301

    @pytest.mark.spec("RTMP 5.3.1.1")
    @pytest.mark.parametrize("csid", [2, 3, 63, 64, 65, 319, 320, 1000, 65599])
    def test_round_trip(self, csid: int) -> None:
        msg = Message(type=MessageType.AUDIO, data=b"abc", timestamp=7, message_stream_id=1,
                      chunk_stream_id=csid)
        assert decode_all(ChunkEncoder().encode(msg)) == [msg]

    @pytest.mark.spec("RTMP 5.3.1.1")
    def test_decoder_accepts_three_byte_form_for_small_ids(self) -> None:
        """IDs 64-319 may arrive in the 3-byte form too."""
        header = bytes([1, 100 - 64, 0]) + bytes.fromhex("000000" "000001" "08" "01000000")
        (msg,) = decode_all(header + b"x")
        assert msg.chunk_stream_id == 100 and msg.data == b"x"

    @pytest.mark.spec("RTMP 5.3.1.1")
    @pytest.mark.parametrize("csid", [0, 1, 65600, -1])
    def test_unrepresentable_ids_refused(self, csid: int) -> None:
        with pytest.raises(ValueError):
            encode_basic_header(0, csid)


class TestType0:
    @pytest.mark.spec("RTMP 5.3.1.2.1", "RTMP 5.3.1.2.5")
    def test_layout_and_little_endian_stream_id(self) -> None:
        msg = Message(type=20, data=b"hello", timestamp=0x010203, message_stream_id=0x04030201,
                      chunk_stream_id=3)
        wire = ChunkEncoder().encode(msg)
        assert wire[0] == 0x03
        assert wire[1:4] == b"\x01\x02\x03"
        assert wire[4:7] == b"\x00\x00\x05"
        assert wire[7] == 20
        assert wire[8:12] == b"\x01\x02\x03\x04"  # little-endian
        assert wire[12:] == b"hello"

    @pytest.mark.spec("RTMP 5.3.1.2.1")
    def test_first_message_on_a_chunk_stream_is_type_0(self) -> None:
        encoder = ChunkEncoder()
        for csid in (3, 4, 70):
            wire = encoder.encode(audio(500, csid=csid))
            assert wire[0] >> 6 == ChunkType.TYPE_0

    @pytest.mark.spec("RTMP 5.3.1.2.1")
    def test_timestamp_going_backwards_uses_type_0(self) -> None:
        encoder = ChunkEncoder()
        encoder.encode(audio(5000))
        wire = encoder.encode(audio(1000))
        assert wire[0] >> 6 == ChunkType.TYPE_0
        assert decode_all(ChunkEncoder().encode(audio(5000)) + wire)[1].timestamp == 1000

    @pytest.mark.spec("RTMP 5.3.1.2.1", "RTMP 5.3.1.2.5")
    def test_new_message_stream_id_uses_type_0(self) -> None:
        encoder = ChunkEncoder()
        encoder.encode(audio(0, msid=1))
        wire = encoder.encode(audio(20, msid=2))
        assert wire[0] >> 6 == ChunkType.TYPE_0

    @pytest.mark.spec("RTMP 5.3.1.2.1")
    def test_decoder_rejects_other_types_first(self) -> None:
        for fmt in (1, 2, 3):
            with pytest.raises(ProtocolError, match="before any type 0"):
                decode_all(bytes([(fmt << 6) | 5]) + bytes(11))


class TestType1:
    @pytest.mark.spec("RTMP 5.3.1.2.2")
    def test_length_change_uses_type_1_without_stream_id(self) -> None:
        encoder = ChunkEncoder()
        first, second = audio(0, size=10), audio(40, size=12)
        encoder.encode(first)
        wire = encoder.encode(second)
        assert wire[0] >> 6 == ChunkType.TYPE_1
        assert wire[1:4] == b"\x00\x00\x28"  # delta 40
        assert wire[4:7] == b"\x00\x00\x0c"
        assert wire[7] == MessageType.AUDIO
        assert len(wire) == 1 + 7 + 12
        assert decode_all(ChunkEncoder().encode(first) + wire) == [first, second]

    @pytest.mark.spec("RTMP 5.3.1.2.2")
    def test_type_change_uses_type_1(self) -> None:
        encoder = ChunkEncoder()
        a = Message(type=8, data=b"aa", timestamp=0, message_stream_id=1, chunk_stream_id=9)
        b = Message(type=9, data=b"bb", timestamp=0, message_stream_id=1, chunk_stream_id=9)
        encoder.encode(a)
        wire = encoder.encode(b)
        assert wire[0] >> 6 == ChunkType.TYPE_1
        assert decode_all(ChunkEncoder().encode(a) + wire) == [a, b]


class TestType2:
    @pytest.mark.spec("RTMP 5.3.1.2.3")
    def test_delta_change_only_uses_type_2(self) -> None:
        encoder = ChunkEncoder()
        msgs = [audio(0), audio(20), audio(50)]
        wires = [encoder.encode(m) for m in msgs]
        assert [w[0] >> 6 for w in wires] == [0, 2, 2]
        assert wires[2][1:4] == b"\x00\x00\x1e"
        assert decode_all(b"".join(wires)) == msgs


class TestType3:
    @pytest.mark.spec("RTMP 5.3.1.2.4")
    def test_continuation_chunks_are_type_3(self) -> None:
        msg = audio(0, size=300)
        wire = ChunkEncoder(100).encode(msg)
        assert len(wire) == 12 + 100 + 1 + 100 + 1 + 100
        assert wire[112] == wire[213] == 0xC3

    @pytest.mark.spec("RTMP 5.3.1.2.4")
    def test_type_3_after_type_0_adds_the_stored_timestamp(self) -> None:
        """A type 3 right after a type 0 starts a message whose delta is the type 0 timestamp."""
        first = bytes.fromhex("03" "000064" "000001" "08" "01000000") + b"a"
        (m1, m2) = decode_all(first + b"\xc3" + b"b")
        assert (m1.timestamp, m2.timestamp) == (100, 200)
        assert m2.data == b"b" and m2.message_stream_id == 1 and m2.type == 8

    @pytest.mark.spec("RTMP 5.3.1.2.4")
    def test_encoder_never_uses_type_3_straight_after_type_0(self) -> None:
        encoder = ChunkEncoder()
        encoder.encode(audio(100))
        assert encoder.encode(audio(200))[0] >> 6 == ChunkType.TYPE_2

    @pytest.mark.spec("RTMP 5.3.1.2.4")
    def test_new_header_while_message_incomplete_is_an_error(self) -> None:
        encoder = ChunkEncoder(10)
        wire = encoder.encode(audio(0, size=30))
        broken = wire[:1 + 11 + 10] + ChunkEncoder().encode(audio(0, size=3, csid=3))
        with pytest.raises(ProtocolError, match="incomplete"):
            decode_all(broken, chunk_size=10, strict=True)
        # Lenient (ffmpeg's behaviour): the partial message is dropped, the new one kept.
        (msg,) = decode_all(broken, chunk_size=10)
        assert msg.data == bytes(3)


class TestExtendedTimestamp:
    @pytest.mark.spec("RTMP 5.3.1.3", "RTMP 5.3.1.2.1")
    def test_type_0_extended(self) -> None:
        msg = audio(0x01000000, size=5)
        wire = ChunkEncoder().encode(msg)
        assert wire[1:4] == b"\xff\xff\xff"
        assert wire[12:16] == b"\x01\x00\x00\x00"
        assert wire[16:] == msg.data
        assert decode_all(wire) == [msg]

    @pytest.mark.spec("RTMP 5.3.1.3")
    def test_exactly_0xffffff_is_extended(self) -> None:
        msg = audio(0xFFFFFF, size=5)
        wire = ChunkEncoder().encode(msg)
        assert wire[1:4] == b"\xff\xff\xff" and wire[12:16] == b"\x00\xff\xff\xff"
        assert decode_all(wire) == [msg]

    @pytest.mark.spec("RTMP 5.3.1.3")
    def test_type_3_continuations_repeat_the_field(self) -> None:
        msg = audio(0x12345678, size=250)
        wire = ChunkEncoder(100).encode(msg)
        # fmt=0 | csid 3, 11-byte header, extended, 100 bytes; then fmt=3 + extended, ...
        assert wire[12:16] == b"\x12\x34\x56\x78"
        assert wire[116:121] == b"\xc3\x12\x34\x56\x78"
        assert wire[221:226] == b"\xc3\x12\x34\x56\x78"
        assert len(wire) == 1 + 11 + 4 + 100 + (1 + 4 + 100) + (1 + 4 + 50)
        assert decode_all(wire, chunk_size=100) == [msg]
        assert decode_all(wire, chunk_size=100, strict=True) == [msg]

    @pytest.mark.spec("RTMP 5.3.1.3", "RTMP 5.3.1.2.2")
    def test_extended_delta_in_type_1_and_2(self) -> None:
        encoder = ChunkEncoder()
        msgs = [audio(0, size=4), audio(0x1000000, size=5), audio(0x2000000, size=5),
                audio(0x2000010, size=5)]
        wire = b"".join(encoder.encode(m) for m in msgs)
        assert decode_all(wire) == msgs

    @pytest.mark.spec("RTMP 5.3.1.3", "RTMP 5.3.1.2.4")
    def test_type_3_new_message_with_extended_delta(self) -> None:
        encoder = ChunkEncoder(100)
        msgs = [audio(0), audio(0x1000000), audio(0x2000000), audio(0x3000000)]
        wires = [encoder.encode(m) for m in msgs]
        assert [w[0] >> 6 for w in wires] == [0, 2, 3, 3]
        assert wires[2] == b"\xc3\x01\x00\x00\x00" + msgs[2].data
        assert decode_all(b"".join(wires), chunk_size=100) == msgs

    @pytest.mark.spec("RTMP 5.3.1.3 [impl: nginx-rtmp publish_time_fix]")
    def test_missing_repetition_tolerated_unless_strict(self) -> None:
        """Old librtmp leaves the field out of continuation chunks: accepted, unless strict."""
        payload = bytes(range(150))
        header = bytes.fromhex("03" "ffffff" "000096" "08" "01000000") + b"\x01\x00\x00\x00"
        wire = header + payload[:128] + b"\xc3" + payload[128:]
        (msg,) = decode_all(wire)
        assert msg.data == payload and msg.timestamp == 0x01000000
        strict = ChunkDecoder(strict=True)
        strict.receive_data(wire)
        strict.receive_data(b"")
        with pytest.raises(ProtocolError):
            list(strict.messages())

    @pytest.mark.spec("RTMP 4", "RTMP 5.3.1.2.1")
    def test_timestamp_wraps_at_32_bits(self) -> None:
        encoder = ChunkEncoder()
        msgs = [audio(0xFFFFFFF0), audio(0x00000005)]
        wire = b"".join(encoder.encode(m) for m in msgs)
        assert decode_all(wire) == msgs
        # A delta that carries past 2**32 wraps on the decoder side too.
        wire = bytes.fromhex("03" "ffffff" "000001" "08" "01000000" "fffffff0") + b"a"
        wire += bytes.fromhex("43" "000020" "000001" "08") + b"b"
        assert [m.timestamp for m in decode_all(wire)] == [0xFFFFFFF0, 0x10]


class TestInterleaving:
    @pytest.mark.spec("RTMP 5.3", "RTMP 5.3.1")
    def test_chunks_of_two_streams_interleave(self) -> None:
        enc = ChunkEncoder(64)
        video = Message(type=9, data=bytes(200), timestamp=10, message_stream_id=1,
                        chunk_stream_id=6)
        sound = Message(type=8, data=bytes([7]) * 100, timestamp=12, message_stream_id=1,
                        chunk_stream_id=4)
        v, a = enc.encode(video), enc.encode(sound)
        # Split both into their chunks and interleave them by hand.
        v_chunks = [v[:76], v[76:141], v[141:206], v[206:]]
        a_chunks = [a[:76], a[76:]]
        mixed = v_chunks[0] + a_chunks[0] + v_chunks[1] + a_chunks[1] + v_chunks[2] + v_chunks[3]
        assert decode_all(mixed, chunk_size=64) == [sound, video]


class TestChunkSizeChange:
    @pytest.mark.spec("RTMP 5.4.1", "RTMP 5.3")
    def test_change_mid_stream_applies_to_following_chunks(self) -> None:
        enc = ChunkEncoder(128)
        first = audio(0, size=300)
        wire = enc.encode(first) + enc.encode(set_chunk_size(1000))
        enc.set_chunk_size(1000)
        second = audio(20, size=900)
        wire += enc.encode(second)
        out = decode_all(wire)
        assert [m.type for m in out] == [8, 1, 8]
        assert out[0] == first and out[2] == second

    @pytest.mark.spec("RTMP 5.4.1")
    def test_split_points_do_not_matter(self) -> None:
        enc = ChunkEncoder(128)
        wire = enc.encode(set_chunk_size(50))
        enc.set_chunk_size(50)
        msgs = [audio(i * 20, size=120) for i in range(3)]
        wire += b"".join(enc.encode(m) for m in msgs)
        decoder = ChunkDecoder()
        out: List[Message] = []
        for i in range(len(wire)):
            decoder.receive_data(wire[i : i + 1])
            out.extend(decoder.messages())
        assert out[1:] == msgs and decoder.chunk_size == 50

    @pytest.mark.spec("RTMP 5.4.1")
    @pytest.mark.parametrize("value, error", [(0, "at least 1"), (0x80000000, "bit 31"),
                                              (0xFFFFFFFF, "bit 31")])
    def test_invalid_sizes(self, value: int, error: str) -> None:
        with pytest.raises(ProtocolError, match=error):
            parse_set_chunk_size(struct.pack(">I", value))
        msg = Message(type=1, data=struct.pack(">I", value), chunk_stream_id=2)
        with pytest.raises(ProtocolError):
            decode_all(encode_type0(msg, 128))

    @pytest.mark.spec("RTMP 5.4.1")
    def test_largest_size_accepted(self) -> None:
        assert parse_set_chunk_size(struct.pack(">I", 0x7FFFFFFF)) == 0x7FFFFFFF
        with pytest.raises(LimitExceededError, match="max_chunk_size"):
            parse_set_chunk_size(struct.pack(">I", 0x7FFFFFFF), max_chunk_size=1 << 20)
        with pytest.raises(ProtocolError):
            parse_set_chunk_size(b"\x00\x01")

    @pytest.mark.spec("RTMP 5.4.1")
    def test_encoder_refuses_invalid_sizes(self) -> None:
        with pytest.raises(ValueError):
            ChunkEncoder(0)
        with pytest.raises(ValueError):
            ChunkEncoder().set_chunk_size(0x80000000)

    @pytest.mark.spec("RTMP 5.4.1 [impl: ffmpeg listen mode sends it on csid 3]", "RTMP 5.4")
    def test_set_chunk_size_on_any_chunk_stream(self) -> None:
        msg = Message(type=1, data=struct.pack(">I", 4096), chunk_stream_id=3)
        decoder = ChunkDecoder()
        decoder.receive_data(encode_type0(msg, 128))
        assert list(decoder.messages()) == [msg] and decoder.chunk_size == 4096
        strict = ChunkDecoder(strict=True)
        strict.receive_data(encode_type0(msg, 128))
        with pytest.raises(ProtocolError, match="must be 0 and 2"):
            strict.next_message()


class TestAbort:
    @pytest.mark.spec("RTMP 5.4.2")
    def test_abort_drops_the_partial_message(self) -> None:
        enc = ChunkEncoder(100)
        big = audio(0, size=250, csid=6)
        wire = enc.encode(big)
        partial = wire[: 12 + 100]
        after = ChunkEncoder().encode(abort(6))
        fresh = ChunkEncoder().encode(audio(40, size=10, csid=6))
        decoder = ChunkDecoder(chunk_size=100)
        decoder.receive_data(partial + after)
        assert [m.type for m in decoder.messages()] == [MessageType.ABORT]
        assert decoder.pending_bytes == 0
        decoder.receive_data(fresh)
        (msg,) = list(decoder.messages())
        assert msg.data == bytes([40]) * 10

    @pytest.mark.spec("RTMP 5.4.2")
    def test_abort_of_unknown_or_idle_stream_is_harmless(self) -> None:
        wire = ChunkEncoder().encode(abort(77)) + ChunkEncoder().encode(audio(1))
        assert [m.type for m in decode_all(wire)] == [2, 8]

    @pytest.mark.spec("RTMP 5.4.2")
    def test_short_abort_payload(self) -> None:
        msg = Message(type=2, data=b"\x00", chunk_stream_id=2)
        with pytest.raises(ProtocolError, match="Abort"):
            decode_all(encode_type0(msg, 128))


class TestLimits:
    @pytest.mark.spec("RTMP 5.3.1.2.5")
    def test_max_message_size(self) -> None:
        header = bytes.fromhex("03" "000000" "ffffff" "09" "01000000")
        with pytest.raises(LimitExceededError, match="max_message_size"):
            decode_all(header, max_message_size=1 << 20)

    @pytest.mark.spec("RTMP 5.3.1.1")
    def test_max_chunk_streams(self) -> None:
        wire = b"".join(
            encode_basic_header(0, csid) + bytes.fromhex("000000" "000064" "08" "01000000")
            + bytes(10)
            for csid in range(3, 300)
        )
        with pytest.raises(LimitExceededError, match="max_chunk_streams"):
            decode_all(wire, chunk_size=10, max_chunk_streams=100)

    @pytest.mark.spec("RTMP 5.3.1")
    def test_max_pending_bytes(self) -> None:
        wire = b"".join(
            encode_basic_header(0, csid) + bytes.fromhex("000000" "010000" "08" "01000000")
            + bytes(128)
            for csid in range(3, 40)
        )
        with pytest.raises(LimitExceededError, match="max_pending_bytes"):
            decode_all(wire, max_pending_bytes=1 << 20)

    @pytest.mark.spec("RTMP 5.3.1")
    def test_eof_inside_a_message(self) -> None:
        decoder = ChunkDecoder()
        decoder.receive_data(ChunkEncoder().encode(audio(0, size=300))[:200])
        assert decoder.next_message() is None
        decoder.receive_data(b"")
        with pytest.raises(ProtocolError, match="closed in the middle"):
            decoder.next_message()

    @pytest.mark.spec("RTMP 5.3.1")
    def test_clean_eof(self) -> None:
        decoder = ChunkDecoder()
        decoder.receive_data(ChunkEncoder().encode(audio(0)))
        decoder.receive_data(b"")
        assert len(list(decoder.messages())) == 1
        assert decoder.next_message() is None
        assert decoder.buffered == 0 and decoder.chunk_stream_count == 1


class TestFanOut:
    @pytest.mark.spec("RTMP 5.3.1.2.1")
    def test_prechunked_bytes_keep_the_encoder_in_step(self) -> None:
        enc = ChunkEncoder(128)
        first = audio(0, size=200, csid=4)
        shared = encode_type0(first, 128)
        enc.note_sent(first)
        follow = audio(20, size=200, csid=4)
        wire = shared + enc.encode(follow)
        assert decode_all(wire) == [first, follow]
        enc.reset(4)
        assert enc.encode(follow)[0] >> 6 == 0
        enc.reset()


# -- property tests ------------------------------------------------------------------------

messages_strategy = st.lists(
    st.builds(
        Message,
        type=st.sampled_from([8, 9, 18, 20, 15, 17, 22]),
        data=st.binary(max_size=700),
        timestamp=st.one_of(st.integers(0, 5000), st.integers(0, 0xFFFFFFFF)),
        message_stream_id=st.sampled_from([0, 1, 2, 0xFFFFFFFF]),
        chunk_stream_id=st.sampled_from([3, 4, 5, 63, 64, 319, 320, 65599]),
    ),
    max_size=25,
)


@pytest.mark.spec("RTMP 5.3", "RTMP 5.3.1.2", "RTMP 5.3.1.3", "RTMP 5.4.1")
@given(
    messages=messages_strategy,
    sizes=st.lists(st.integers(1, 1000), max_size=4),
    cuts=st.lists(st.integers(1, 400), max_size=40),
)
def test_any_messages_any_chunk_sizes_any_splits_round_trip(
    messages: List[Message], sizes: List[int], cuts: List[int]
) -> None:
    """Whatever we encode, with chunk size changes in between, decodes back identically
    however the bytes are split."""
    enc = ChunkEncoder(128)
    wire = bytearray()
    expected: List[Message] = []
    sizes_iter = iter(sizes)
    for i, message in enumerate(messages):
        if i % 5 == 4:
            size = next(sizes_iter, None)
            if size is not None:
                change = set_chunk_size(size)
                wire += enc.encode(change)
                enc.set_chunk_size(size)
                expected.append(change)
        wire += enc.encode(message)
        expected.append(message)
    decoder = ChunkDecoder()
    out: List[Message] = []
    pos = 0
    for cut in cuts:
        decoder.receive_data(bytes(wire[pos : pos + cut]))
        pos += cut
        out.extend(decoder.messages())
    decoder.receive_data(bytes(wire[pos:]))
    out.extend(decoder.messages())
    assert out == expected


@pytest.mark.spec("RTMP 5.3.1")
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes) -> None:
    decoder = ChunkDecoder(max_message_size=1 << 16, max_chunk_streams=16,
                           max_pending_bytes=1 << 18)
    decoder.receive_data(data)
    try:
        for _ in decoder.messages():
            pass
        decoder.receive_data(b"")
        list(decoder.messages())
    except ProtocolError:
        pass


def _decode_outcome(wire: bytes, cuts: List[int], general: bool) -> List[object]:
    """Messages as (type, data, timestamp, msid, csid) and how decoding ended, the bytes
    fed in ``cuts``; ``general`` turns the small-message fast path off (``on_chunk``)."""
    decoder = ChunkDecoder(max_message_size=1 << 16, max_chunk_streams=8,
                           max_pending_bytes=1 << 18,
                           on_chunk=(lambda info: None) if general else None)
    out: List[object] = []
    pos = 0
    try:
        for cut in [*cuts, len(wire)]:
            decoder.receive_data(wire[pos : pos + cut])
            pos += cut
            out.extend((int(m.type), m.data, m.timestamp, m.message_stream_id, m.csid)
                       for m in decoder.messages())
        decoder.receive_data(b"")
        list(decoder.messages())
    except ProtocolError as exc:
        out.append(type(exc).__name__)
    out.append(decoder.chunk_size)
    return out


@pytest.mark.spec("RTMP 5.3.1.2.1", "RTMP 5.3.1.3", "RTMP 5.4.1")
@given(messages=messages_strategy, sizes=st.lists(st.integers(1, 1000), max_size=4),
       cuts=st.lists(st.integers(1, 400), max_size=40))
def test_small_message_fast_path_equals_the_general_path(
    messages: List[Message], sizes: List[int], cuts: List[int]
) -> None:
    """A whole type 0 chunk in the buffer takes a fast path: the same messages (extended
    timestamps, chunk size changes, any split) as chunk-by-chunk parsing gives."""
    enc = ChunkEncoder(128)
    wire = bytearray()
    sizes_iter = iter(sizes)
    for i, message in enumerate(messages):
        if i % 3 == 2:
            size = next(sizes_iter, None)
            if size is not None:
                wire += enc.encode(set_chunk_size(size))
                enc.set_chunk_size(size)
        wire += enc.encode(message)
    assert _decode_outcome(bytes(wire), cuts, False) == _decode_outcome(bytes(wire), cuts, True)


@pytest.mark.spec("RTMP 5.3.1")
@given(st.binary(max_size=2000), st.lists(st.integers(1, 300), max_size=10))
def test_fast_path_equals_the_general_path_on_any_bytes(data: bytes, cuts: List[int]) -> None:
    # Hostile input: type 0 headers mid-message, limits hit, partial chunks.
    assert _decode_outcome(data, cuts, False) == _decode_outcome(data, cuts, True)


@pytest.mark.spec("RTMP 5.3.1.2.1", "RTMP 5.3.1.3")
def test_fast_path_keeps_the_state_later_chunks_use() -> None:
    # A type 0 chunk taken by the fast path, then type 1/2/3 headers relying on it.
    enc = ChunkEncoder(128)
    first = Message(type=20, data=b"x" * 40, timestamp=1000, message_stream_id=1,
                    chunk_stream_id=3)
    wire = enc.encode(first)
    assert wire[0] >> 6 == 0
    follow = [Message(type=20, data=b"y" * 40, timestamp=1020, message_stream_id=1,
                      chunk_stream_id=3),
              Message(type=20, data=b"z" * 300, timestamp=1040, message_stream_id=1,
                      chunk_stream_id=3)]
    for message in follow:
        wire += enc.encode(message)
    assert decode_all(wire) == [first, *follow]


@pytest.mark.spec("RTMP 5.3.1.2.1")
def test_fast_path_leaves_the_chunk_stream_limit_to_the_general_path() -> None:
    enc = ChunkEncoder(128)
    wire = enc.encode(audio(0, csid=3)) + enc.encode(audio(0, csid=4))
    with pytest.raises(LimitExceededError, match="max_chunk_streams"):
        decode_all(wire, max_chunk_streams=1)
