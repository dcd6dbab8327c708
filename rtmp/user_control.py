"""RTMP 6.2 and 7.1.7: User Control messages (type 4) and their events.

Payload: a 2-byte event type and event data (RTMP 6.2).  Besides the events the
specification lists, the widely used non-spec events 26/27 (SWF verification)
and 31/32 (Buffer Empty / Buffer Ready, librtmp and nginx-rtmp) are decoded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

from ._bytes import U16, U32
from .errors import ProtocolError
from .message import CONTROL_CHUNK_STREAM_ID, Message, MessageType

__all__ = [
    "UserControlEvent",
    "UserControl",
    "encode",
    "decode",
    "stream_begin",
    "stream_eof",
    "stream_dry",
    "set_buffer_length",
    "stream_is_recorded",
    "ping_request",
    "ping_response",
]


class UserControlEvent(enum.IntEnum):
    """RTMP 7.1.7: user control event types (and well-known non-spec ones)."""

    STREAM_BEGIN = 0
    STREAM_EOF = 1
    STREAM_DRY = 2
    SET_BUFFER_LENGTH = 3
    STREAM_IS_RECORDED = 4
    PING_REQUEST = 6
    PING_RESPONSE = 7
    SWF_VERIFY_REQUEST = 26  # non-spec (librtmp, ffmpeg)
    SWF_VERIFY_RESPONSE = 27  # non-spec
    BUFFER_EMPTY = 31  # non-spec (librtmp, nginx-rtmp)
    BUFFER_READY = 32  # non-spec (librtmp)


_STREAM_EVENTS = frozenset({0, 1, 2, 4, 31, 32})


@dataclass(frozen=True)
class UserControl:
    """One decoded user control event.

    ``stream_id`` for stream events, ``buffer_length`` (ms) for Set Buffer
    Length, ``timestamp`` for pings; ``data`` is the raw event data.
    """

    event: int
    stream_id: Optional[int] = None
    buffer_length: Optional[int] = None
    timestamp: Optional[int] = None
    data: bytes = b""

    @property
    def name(self) -> str:
        try:
            return UserControlEvent(self.event).name
        except ValueError:
            return f"EVENT_{self.event}"


def encode(event: int, data: bytes) -> Message:
    """RTMP 6.2: a User Control message (msid 0, csid 2) carrying one event."""
    return Message(
        type=MessageType.USER_CONTROL,
        data=U16.pack(event) + data,
        message_stream_id=0,
        chunk_stream_id=CONTROL_CHUNK_STREAM_ID,
    )


def decode(data: bytes) -> UserControl:
    """RTMP 6.2 / 7.1.7: parse a User Control payload.

    Unknown event types are returned with their raw data, not rejected.
    """
    if len(data) < 2:
        raise ProtocolError("User Control message shorter than 2 bytes", "RTMP 6.2")
    event = U16.unpack_from(data)[0]
    body = bytes(data[2:])
    if event in _STREAM_EVENTS:
        if len(body) < 4:
            raise ProtocolError(f"User Control event {event} needs 4 bytes", "RTMP 7.1.7")
        return UserControl(event, stream_id=U32.unpack_from(body)[0], data=body)
    if event == UserControlEvent.SET_BUFFER_LENGTH:
        if len(body) < 8:
            raise ProtocolError("Set Buffer Length needs 8 bytes", "RTMP 7.1.7")
        stream_id, length = U32.unpack_from(body)[0], U32.unpack_from(body, 4)[0]
        return UserControl(event, stream_id=stream_id, buffer_length=length, data=body)
    if event in (UserControlEvent.PING_REQUEST, UserControlEvent.PING_RESPONSE):
        if len(body) < 4:
            raise ProtocolError(f"ping event {event} needs 4 bytes", "RTMP 7.1.7")
        return UserControl(event, timestamp=U32.unpack_from(body)[0], data=body)
    return UserControl(event, data=body)


def stream_begin(message_stream_id: int) -> Message:
    """RTMP 7.1.7: Stream Begin (0): the stream became functional."""
    return encode(UserControlEvent.STREAM_BEGIN, U32.pack(message_stream_id))


def stream_eof(message_stream_id: int) -> Message:
    """RTMP 7.1.7: Stream EOF (1): playback of the stream ended."""
    return encode(UserControlEvent.STREAM_EOF, U32.pack(message_stream_id))


def stream_dry(message_stream_id: int) -> Message:
    """RTMP 7.1.7: Stream Dry (2): no more data for now."""
    return encode(UserControlEvent.STREAM_DRY, U32.pack(message_stream_id))


def set_buffer_length(message_stream_id: int, milliseconds: int) -> Message:
    """RTMP 7.1.7: Set Buffer Length (3), sent by the client."""
    payload = U32.pack(message_stream_id) + U32.pack(milliseconds & 0xFFFFFFFF)
    return encode(UserControlEvent.SET_BUFFER_LENGTH, payload)


def stream_is_recorded(message_stream_id: int) -> Message:
    """RTMP 7.1.7: Stream Is Recorded (4)."""
    return encode(UserControlEvent.STREAM_IS_RECORDED, U32.pack(message_stream_id))


def ping_request(timestamp: int) -> Message:
    """RTMP 7.1.7: Ping Request (6) with the sender's local time."""
    return encode(UserControlEvent.PING_REQUEST, U32.pack(timestamp & 0xFFFFFFFF))


def ping_response(timestamp: int) -> Message:
    """RTMP 7.1.7: Ping Response (7) echoing the request's timestamp."""
    return encode(UserControlEvent.PING_RESPONSE, U32.pack(timestamp & 0xFFFFFFFF))
