"""RTMP 5.4: protocol control messages, built and parsed."""

from __future__ import annotations

import struct

import pytest

from rtmp import MessageType, ProtocolError
from rtmp import control
from rtmp.control import LimitType


class TestCommonRules:
    @pytest.mark.spec("RTMP 5.4")
    @pytest.mark.parametrize(
        "message",
        [
            control.set_chunk_size(4096),
            control.abort(5),
            control.acknowledgement(10),
            control.window_ack_size(2_500_000),
            control.set_peer_bandwidth(2_500_000, LimitType.HARD),
        ],
    )
    def test_control_stream_and_chunk_stream(self, message: object) -> None:
        """Protocol control messages use msid 0 and csid 2."""
        assert message.message_stream_id == 0  # type: ignore[attr-defined]
        assert message.csid == 2  # type: ignore[attr-defined]


class TestSetChunkSize:
    @pytest.mark.spec("RTMP 5.4.1")
    def test_payload(self) -> None:
        msg = control.set_chunk_size(0x7FFFFFFF)
        assert msg.type == MessageType.SET_CHUNK_SIZE
        assert msg.data == b"\x7f\xff\xff\xff"
        assert control.parse_set_chunk_size(msg.data) == 0x7FFFFFFF

    @pytest.mark.spec("RTMP 5.4.1")
    @pytest.mark.parametrize("size", [0, -1, 0x80000000])
    def test_invalid_sizes_not_sent(self, size: int) -> None:
        with pytest.raises(ValueError):
            control.set_chunk_size(size)


class TestAbort:
    @pytest.mark.spec("RTMP 5.4.2")
    def test_round_trip(self) -> None:
        msg = control.abort(65599)
        assert msg.type == MessageType.ABORT and msg.data == struct.pack(">I", 65599)
        assert control.parse_abort(msg.data) == 65599

    @pytest.mark.spec("RTMP 5.4.2")
    def test_short_payload(self) -> None:
        with pytest.raises(ProtocolError, match="RTMP 5.4.2"):
            control.parse_abort(b"\x00\x01")

    @pytest.mark.spec("RTMP 5.4.2")
    def test_out_of_range_refused(self) -> None:
        with pytest.raises(ValueError):
            control.abort(1 << 32)


class TestAcknowledgement:
    @pytest.mark.spec("RTMP 5.4.3")
    def test_sequence_number_wraps(self) -> None:
        msg = control.acknowledgement((1 << 32) + 5)
        assert msg.type == MessageType.ACKNOWLEDGEMENT
        assert control.parse_acknowledgement(msg.data) == 5


class TestWindowAckSize:
    @pytest.mark.spec("RTMP 5.4.4")
    def test_round_trip(self) -> None:
        msg = control.window_ack_size(5_000_000)
        assert msg.type == MessageType.WINDOW_ACK_SIZE and msg.data == b"\x00\x4c\x4b\x40"
        assert control.parse_window_ack_size(msg.data) == 5_000_000

    @pytest.mark.spec("RTMP 5.4.4")
    def test_zero_window_is_an_error(self) -> None:
        with pytest.raises(ProtocolError):
            control.parse_window_ack_size(b"\x00\x00\x00\x00")


class TestSetPeerBandwidth:
    @pytest.mark.spec("RTMP 5.4.5")
    @pytest.mark.parametrize("limit", [0, 1, 2])
    def test_round_trip(self, limit: int) -> None:
        msg = control.set_peer_bandwidth(2_500_000, limit)
        assert msg.type == MessageType.SET_PEER_BANDWIDTH
        assert msg.data == struct.pack(">IB", 2_500_000, limit)
        parsed = control.parse_set_peer_bandwidth(msg.data)
        assert (parsed.window_size, parsed.limit_type) == (2_500_000, limit)

    @pytest.mark.spec("RTMP 5.4.5")
    def test_bad_limit_type(self) -> None:
        with pytest.raises(ValueError):
            control.set_peer_bandwidth(1, 3)
        with pytest.raises(ProtocolError):
            control.parse_set_peer_bandwidth(b"\x00\x00\x00\x01\x03")
        with pytest.raises(ProtocolError):
            control.parse_set_peer_bandwidth(b"\x00\x00\x00\x01")
