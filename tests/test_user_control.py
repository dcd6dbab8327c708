"""RTMP 6.2 and 7.1.7: User Control messages and events."""

from __future__ import annotations

import pytest

from rtmp import MessageType, ProtocolError
from rtmp import user_control as uc
from rtmp.user_control import UserControlEvent


class TestMessageFormat:
    @pytest.mark.spec("RTMP 6.2")
    def test_type_stream_and_event_header(self) -> None:
        msg = uc.stream_begin(1)
        assert msg.type == MessageType.USER_CONTROL == 4
        assert msg.message_stream_id == 0 and msg.csid == 2
        assert msg.data == b"\x00\x00" + b"\x00\x00\x00\x01"

    @pytest.mark.spec("RTMP 6.2")
    def test_too_short(self) -> None:
        with pytest.raises(ProtocolError, match="RTMP 6.2"):
            uc.decode(b"\x00")


class TestEvents:
    @pytest.mark.spec("RTMP 7.1.7")
    @pytest.mark.parametrize(
        "builder, event",
        [
            (uc.stream_begin, UserControlEvent.STREAM_BEGIN),
            (uc.stream_eof, UserControlEvent.STREAM_EOF),
            (uc.stream_dry, UserControlEvent.STREAM_DRY),
            (uc.stream_is_recorded, UserControlEvent.STREAM_IS_RECORDED),
        ],
    )
    def test_stream_events(self, builder: object, event: int) -> None:
        msg = builder(0x01020304)  # type: ignore[operator]
        assert msg.data[:2] == event.to_bytes(2, "big")
        decoded = uc.decode(msg.data)
        assert decoded.event == event and decoded.stream_id == 0x01020304
        assert decoded.name == UserControlEvent(event).name

    @pytest.mark.spec("RTMP 7.1.7")
    def test_set_buffer_length(self) -> None:
        msg = uc.set_buffer_length(1, 3000)
        assert msg.data == bytes.fromhex("0003" "00000001" "00000bb8")
        decoded = uc.decode(msg.data)
        assert (decoded.stream_id, decoded.buffer_length) == (1, 3000)

    @pytest.mark.spec("RTMP 7.1.7")
    def test_ping_request_and_response(self) -> None:
        assert uc.ping_request(123456).data == bytes.fromhex("0006" "0001e240")
        assert uc.ping_response(123456).data == bytes.fromhex("0007" "0001e240")
        assert uc.decode(uc.ping_request(7).data).timestamp == 7

    @pytest.mark.spec("RTMP 7.1.7")
    def test_non_spec_buffer_empty_and_ready_are_decoded(self) -> None:
        empty = uc.decode(bytes.fromhex("001f" "00000001"))
        ready = uc.decode(bytes.fromhex("0020" "00000001"))
        assert (empty.name, empty.stream_id) == ("BUFFER_EMPTY", 1)
        assert (ready.name, ready.stream_id) == ("BUFFER_READY", 1)

    @pytest.mark.spec("RTMP 7.1.7")
    def test_unknown_event_kept_raw(self) -> None:
        decoded = uc.decode(bytes.fromhex("0063" "abcd"))
        assert decoded.event == 99 and decoded.data == b"\xab\xcd"
        assert decoded.name == "EVENT_99"
        swf = uc.decode(bytes.fromhex("001a"))
        assert swf.name == "SWF_VERIFY_REQUEST"

    @pytest.mark.spec("RTMP 7.1.7")
    @pytest.mark.parametrize("data", ["0000", "00030000000100", "0006ab"])
    def test_truncated_event_data(self, data: str) -> None:
        with pytest.raises(ProtocolError):
            uc.decode(bytes.fromhex(data))
