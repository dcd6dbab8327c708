"""RTMP 5.1, 6.1 and 7.1: the message model and Aggregate messages."""

from __future__ import annotations

import pytest

from rtmp import Message, MessageType, ProtocolError, StreamType
from rtmp.message import build_aggregate, default_chunk_stream_id, split_aggregate, timestamp_delta


class TestMessage:
    @pytest.mark.spec("RTMP 5.1", "RTMP 6.1")
    def test_fields_and_length(self) -> None:
        msg = Message(type=MessageType.AUDIO, data=b"abc", timestamp=5, message_stream_id=1)
        assert msg.length == 3 and msg.type is MessageType.AUDIO
        assert Message(type=99, data=b"").type == 99  # unknown types kept as int

    @pytest.mark.spec("RTMP 4")
    def test_timestamp_wraps(self) -> None:
        assert Message(type=8, timestamp=(1 << 32) + 7).timestamp == 7

    @pytest.mark.spec("RTMP 5.3.1.2.1")
    @pytest.mark.parametrize("kwargs", [
        {"type": 256}, {"type": 8, "data": bytes(0x1000000)},
        {"type": 8, "message_stream_id": -1}, {"type": 8, "chunk_stream_id": 1},
        {"type": 8, "chunk_stream_id": 65600},
    ])
    def test_invalid_fields(self, kwargs: dict) -> None:  # type: ignore[type-arg]
        with pytest.raises(ValueError):
            Message(**kwargs)

    @pytest.mark.spec("RTMP 5.4", "RTMP 6.2")
    def test_conventional_chunk_streams(self) -> None:
        assert default_chunk_stream_id(MessageType.SET_CHUNK_SIZE) == 2
        assert default_chunk_stream_id(MessageType.USER_CONTROL) == 2
        assert default_chunk_stream_id(MessageType.COMMAND_AMF0) == 3
        assert default_chunk_stream_id(MessageType.COMMAND_AMF0, 1) == 8
        assert default_chunk_stream_id(MessageType.AUDIO) == 4
        assert default_chunk_stream_id(MessageType.VIDEO) == 6
        assert default_chunk_stream_id(MessageType.DATA_AMF0) == 5
        assert Message(type=8, chunk_stream_id=None).csid == 4
        assert Message(type=8, chunk_stream_id=10).csid == 10

    @pytest.mark.spec("RTMP 7.1", "RTMP 5.4", "RTMP 6.2")
    def test_message_type_ids(self) -> None:
        """The wire ids of every message type (RTMP 5.4, 6.2, 7.1.1-7.1.6)."""
        assert {t.name: int(t) for t in MessageType} == {
            "SET_CHUNK_SIZE": 1, "ABORT": 2, "ACKNOWLEDGEMENT": 3, "USER_CONTROL": 4,
            "WINDOW_ACK_SIZE": 5, "SET_PEER_BANDWIDTH": 6, "AUDIO": 8, "VIDEO": 9,
            "DATA_AMF3": 15, "SHARED_OBJECT_AMF3": 16, "COMMAND_AMF3": 17, "DATA_AMF0": 18,
            "SHARED_OBJECT_AMF0": 19, "COMMAND_AMF0": 20, "AGGREGATE": 22,
        }

    @pytest.mark.spec("RTMP 6.1.2")
    def test_payload_is_opaque(self) -> None:
        """Any payload crosses the chunk layer unchanged, whatever its type."""
        from rtmp.chunk import ChunkDecoder, ChunkEncoder

        payload = bytes(range(256)) * 3
        messages = [Message(type=t, data=payload, timestamp=1, message_stream_id=1)
                    for t in (8, 9, 15, 16, 17, 18, 19, 20, 22, 99)]
        encoder = ChunkEncoder(100)
        decoder = ChunkDecoder(100)
        decoder.receive_data(b"".join(encoder.encode(m) for m in messages))
        assert [m.data for m in decoder.messages()] == [payload] * len(messages)

    def test_replace_and_bytes_like_data(self) -> None:
        msg = Message(type=8, data=bytearray(b"xy"))
        assert isinstance(msg.data, bytes)
        assert msg.replace(timestamp=9).timestamp == 9

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_stream_type_wire_strings(self) -> None:
        assert [t.value for t in StreamType] == ["live", "record", "append"]
        assert StreamType("record") is StreamType.RECORD


class TestAggregate:
    @pytest.mark.spec("RTMP 7.1.6", "RTMP 6.1.1")
    def test_split_with_offset_and_stream_override(self) -> None:
        subs = [
            Message(type=9, data=b"v1", timestamp=1000, message_stream_id=7),
            Message(type=8, data=b"a11", timestamp=1020, message_stream_id=7),
            Message(type=9, data=b"v2", timestamp=0x1000040, message_stream_id=7),
        ]
        agg = build_aggregate(subs, message_stream_id=3)
        # Sub-header: type, 24-bit length, 24-bit timestamp + high byte, 24-bit stream id.
        assert agg.data[:11] == bytes.fromhex("09" "000002" "0003e8" "00" "000000")
        assert agg.data[13:17] == (11 + 2).to_bytes(4, "big")  # back pointer
        moved = agg.replace(timestamp=5000)  # aggregate timestamp 5000: offset +4000
        out = split_aggregate(moved)
        assert [m.timestamp for m in out] == [5000, 5020, 0x1000040 + 4000]
        assert [m.data for m in out] == [b"v1", b"a11", b"v2"]
        assert {m.message_stream_id for m in out} == {3}
        assert out[0].type == MessageType.VIDEO and out[1].type == MessageType.AUDIO

    @pytest.mark.spec("RTMP 7.1.6")
    def test_without_final_back_pointer(self) -> None:
        data = build_aggregate([Message(type=8, data=b"x", timestamp=0)]).data[:-4]
        assert split_aggregate(Message(type=22, data=data))[0].data == b"x"

    @pytest.mark.spec("RTMP 7.1.6")
    @pytest.mark.parametrize("cut", [5, 12, 13])
    def test_truncated(self, cut: int) -> None:
        data = build_aggregate([Message(type=8, data=b"xyz", timestamp=0)]).data
        with pytest.raises(ProtocolError, match="RTMP 7.1.6"):
            split_aggregate(Message(type=22, data=data[:cut] if cut != 13 else data[:-2]))

    def test_empty_aggregate_refused_locally(self) -> None:
        with pytest.raises(ValueError):
            build_aggregate([])


@pytest.mark.spec("RTMP 3", "RTMP 5.3.1")
@pytest.mark.parametrize("later, earlier, delta", [
    (1000, 400, 600),
    (400, 1000, -600),
    (5, 0xFFFFFFFB, 10),          # across the 32-bit wrap (about 49.7 days)
    (0xFFFFFFFB, 5, -10),
    (0x7FFFFFFF, 0, 0x7FFFFFFF),  # the farthest "after"
    (0x80000000, 0, -0x80000000),  # half the circle away counts as before
])
def test_timestamp_delta_is_serial_arithmetic(later: int, earlier: int, delta: int) -> None:
    assert timestamp_delta(later, earlier) == delta


@pytest.mark.spec("ERTMP Reconnect Request", "RTMP 3")
def test_a_player_switch_at_the_timestamp_wrap_keeps_new_media() -> None:
    """After a reconnect, media newer than the last delivered goes on even when its
    timestamp wrapped past 2**32 (it was dropped as a duplicate before)."""
    from rtmp.reconnect import _PlayFilter

    played = _PlayFilter()
    played.delivered(Message(type=MessageType.AUDIO, data=b"\xaf\x01x", timestamp=0xFFFFFFF0))
    played.switched()
    again = Message(type=MessageType.AUDIO, data=b"\xaf\x01x", timestamp=0xFFFFFFF0)
    wrapped = Message(type=MessageType.AUDIO, data=b"\xaf\x01y", timestamp=0x10)
    assert played.duplicate(again)
    assert not played.duplicate(wrapped)
