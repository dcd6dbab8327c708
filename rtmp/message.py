"""RTMP 6.1 and 7.1: the message model, message type ids and Aggregate splitting."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import List, Optional

from ._bytes import U32, unpack_u24
from .errors import ProtocolError

__all__ = [
    "timestamp_delta",
    "MessageType",
    "Message",
    "StreamType",
    "PROTOCOL_CONTROL_TYPES",
    "MEDIA_TYPES",
    "DATA_TYPES",
    "COMMAND_TYPES",
    "SHARED_OBJECT_TYPES",
    "RELAYED_TYPES",
    "SET_DATA_FRAME",
    "CLEAR_DATA_FRAME",
    "SET_DATA_FRAME_AMF0",
    "strip_set_data_frame_bytes",
    "CONTROL_CHUNK_STREAM_ID",
    "COMMAND_CHUNK_STREAM_ID",
    "default_chunk_stream_id",
    "split_aggregate",
    "build_aggregate",
]


class MessageType(enum.IntEnum):
    """RTMP 5.4, 6.2 and 7.1: message type ids (Appendix A of our notes)."""

    SET_CHUNK_SIZE = 1  # RTMP 5.4.1
    ABORT = 2  # RTMP 5.4.2
    ACKNOWLEDGEMENT = 3  # RTMP 5.4.3
    USER_CONTROL = 4  # RTMP 6.2
    WINDOW_ACK_SIZE = 5  # RTMP 5.4.4
    SET_PEER_BANDWIDTH = 6  # RTMP 5.4.5
    AUDIO = 8  # RTMP 7.1.4
    VIDEO = 9  # RTMP 7.1.5
    DATA_AMF3 = 15  # RTMP 7.1.2
    SHARED_OBJECT_AMF3 = 16  # RTMP 7.1.3
    COMMAND_AMF3 = 17  # RTMP 7.1.1
    DATA_AMF0 = 18  # RTMP 7.1.2
    SHARED_OBJECT_AMF0 = 19  # RTMP 7.1.3
    COMMAND_AMF0 = 20  # RTMP 7.1.1
    AGGREGATE = 22  # RTMP 7.1.6


#: RTMP 5.4: protocol control messages (types 1, 2, 3, 5, 6) travel on msid 0, csid 2.
PROTOCOL_CONTROL_TYPES = frozenset({1, 2, 3, 5, 6})

#: RTMP 7.1.4 / 7.1.5: the media message types.
MEDIA_TYPES = frozenset({MessageType.AUDIO, MessageType.VIDEO})
#: RTMP 7.1.2: the two data message types.
DATA_TYPES = frozenset({MessageType.DATA_AMF0, MessageType.DATA_AMF3})
#: RTMP 7.1.1: the two command message types.
COMMAND_TYPES = frozenset({MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3})
#: RTMP 7.1.3: the two shared-object message types.
SHARED_OBJECT_TYPES = frozenset({MessageType.SHARED_OBJECT_AMF0, MessageType.SHARED_OBJECT_AMF3})
#: RTMP 7.1.2 / 7.1.4 / 7.1.5: what a publisher's message may be relayed as (FLV E.4.1
#: tag types 8, 9, 18, and AMF3 data 15).
RELAYED_TYPES = MEDIA_TYPES | DATA_TYPES

#: RTMP 7.1.2 [impl]: publishers prefix metadata with this data-message name; servers
#: strip it before relaying or recording (``@clearDataFrame`` clears the metadata).
SET_DATA_FRAME = "@setDataFrame"
CLEAR_DATA_FRAME = "@clearDataFrame"
#: ``@setDataFrame`` as the first AMF0 value of a payload (AMF0 2.4: marker 0x02, U16
#: length 13, the bytes), so it is found and stripped without decoding AMF.
SET_DATA_FRAME_AMF0 = b"\x02\x00\x0d" + SET_DATA_FRAME.encode()


def strip_set_data_frame_bytes(data: bytes) -> bytes:
    """RTMP 7.1.2 [impl]: drop a leading AMF0 ``"@setDataFrame"`` from a data payload.

    Publishers send ``@setDataFrame, onMetaData, {...}``; a file (and players) want
    ``onMetaData, {...}``.  Works on the bytes, so no AMF decoding is needed.
    """
    if data.startswith(SET_DATA_FRAME_AMF0):
        return data[len(SET_DATA_FRAME_AMF0) :]
    return data

#: RTMP 5.3.1.1: chunk stream id 2 is reserved for low-level protocol control.
CONTROL_CHUNK_STREAM_ID = 2
#: Commands on the NetConnection (ffmpeg's "system" channel, nginx's AMF_INI).
COMMAND_CHUNK_STREAM_ID = 3
#: Conventional chunk streams for media and data, as ffmpeg and librtmp use them.
AUDIO_CHUNK_STREAM_ID = 4
VIDEO_CHUNK_STREAM_ID = 6
DATA_CHUNK_STREAM_ID = 5
STREAM_COMMAND_CHUNK_STREAM_ID = 8

_DEFAULT_CSID: "dict[int, int]" = {
    MessageType.USER_CONTROL: CONTROL_CHUNK_STREAM_ID,
    MessageType.AUDIO: AUDIO_CHUNK_STREAM_ID,
    MessageType.VIDEO: VIDEO_CHUNK_STREAM_ID,
    MessageType.DATA_AMF0: DATA_CHUNK_STREAM_ID,
    MessageType.DATA_AMF3: DATA_CHUNK_STREAM_ID,
    MessageType.AGGREGATE: VIDEO_CHUNK_STREAM_ID,
}


def default_chunk_stream_id(message_type: int, message_stream_id: int = 0) -> int:
    """The conventional chunk stream for a message type (refs/api.md ``chunk_stream_id=None``).

    Protocol and user control use csid 2 (RTMP 5.4, 6.2); commands use 3 on the
    NetConnection and 8 on a NetStream; audio 4, video 6, data 5.
    """
    if message_type in PROTOCOL_CONTROL_TYPES:
        return CONTROL_CHUNK_STREAM_ID
    csid = _DEFAULT_CSID.get(message_type)
    if csid is not None:
        return csid
    if message_stream_id:
        return STREAM_COMMAND_CHUNK_STREAM_ID
    return COMMAND_CHUNK_STREAM_ID


@dataclass(frozen=True)
class Message:
    """RTMP 6.1: one message: type, payload, timestamp (ms, 32-bit) and stream ids.

    ``chunk_stream_id=None`` means "the conventional one for this type"; use
    :attr:`csid` for the resolved value.
    """

    type: int
    data: bytes = b""
    timestamp: int = 0
    message_stream_id: int = 0
    chunk_stream_id: Optional[int] = None
    _csid: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))
        if not 0 <= self.type <= 0xFF:
            raise ValueError(f"message type {self.type} does not fit one byte (RTMP 5.3.1.2.1)")
        if len(self.data) > 0xFFFFFF:
            raise ValueError(
                f"message of {len(self.data)} bytes exceeds the 3-byte length field (RTMP 5.3.1.2.1)"
            )
        if not 0 <= self.message_stream_id <= 0xFFFFFFFF:
            raise ValueError("message stream id must fit 32 bits (RTMP 5.3.1.2.1)")
        object.__setattr__(self, "timestamp", self.timestamp & 0xFFFFFFFF)  # RTMP 4: wraps
        if self.type in MessageType._value2member_map_:
            object.__setattr__(self, "type", MessageType(self.type))
        csid = self.chunk_stream_id
        if csid is None:
            csid = default_chunk_stream_id(self.type, self.message_stream_id)
        elif not 2 <= csid <= 65599:
            raise ValueError(f"chunk stream id {csid} outside 2..65599 (RTMP 5.3.1.1)")
        object.__setattr__(self, "_csid", csid)

    @classmethod
    def trusted(
        cls, type: int, data: bytes, timestamp: int, message_stream_id: int, chunk_stream_id: int
    ) -> "Message":
        """Build a message from already-validated wire fields (the decoder's fast path)."""
        message = object.__new__(cls)
        message.__dict__.update(
            type=_TYPES.get(type, type),
            data=data,
            timestamp=timestamp,
            message_stream_id=message_stream_id,
            chunk_stream_id=chunk_stream_id,
            _csid=chunk_stream_id,
        )
        return message

    @property
    def length(self) -> int:
        """The payload length in bytes (RTMP 5.1)."""
        return len(self.data)

    @property
    def csid(self) -> int:
        """The chunk stream id this message travels on, with the default resolved."""
        return self._csid

    def with_data(self, data: bytes) -> "Message":
        """A copy with another payload, every other field as it is (no re-validation of
        those; the payload must fit the 3-byte length field, RTMP 5.3.1.2.1)."""
        if len(data) > 0xFFFFFF:
            raise ValueError(
                f"message of {len(data)} bytes exceeds the 3-byte length field (RTMP 5.3.1.2.1)"
            )
        message = object.__new__(Message)
        message.__dict__.update(self.__dict__)
        message.__dict__["data"] = bytes(data)
        return message

    def replace(self, **changes: object) -> "Message":
        """A copy with some fields changed (like :func:`dataclasses.replace`)."""
        values = {
            "type": self.type,
            "data": self.data,
            "timestamp": self.timestamp,
            "message_stream_id": self.message_stream_id,
            "chunk_stream_id": self.chunk_stream_id,
        }
        values.update(changes)
        return Message(**values)  # type: ignore[arg-type]


_TYPES = {int(t): t for t in MessageType}


class StreamType(str, enum.Enum):
    """RTMP 7.2.2.6: the publishing type strings."""

    LIVE = "live"
    RECORD = "record"
    APPEND = "append"


_SUB_HEADER_SIZE = 11


def split_aggregate(message: Message) -> List[Message]:
    """RTMP 7.1.6: split an Aggregate message into its sub-messages.

    Each sub-message header has the FLV tag layout (type, 24-bit length,
    24-bit timestamp plus an 8-bit high byte, 24-bit stream id), followed by
    the data and a 4-byte back pointer.  The aggregate's message stream id
    replaces the sub-messages' ids, and every timestamp is shifted by
    (aggregate timestamp - first sub-message timestamp).
    """
    data = message.data
    view = memoryview(data)
    out: List[Message] = []
    offset = 0
    shift: Optional[int] = None
    total = len(data)
    while offset < total:
        if total - offset < _SUB_HEADER_SIZE:
            raise ProtocolError(
                f"aggregate sub-message header truncated at offset {offset}", "RTMP 7.1.6"
            )
        sub_type = data[offset]
        length = unpack_u24(data, offset + 1)
        # RTMP 6.1.1 [spec-bug]: sub-headers follow FLV E.4.1: 24-bit low part + high byte.
        ts = unpack_u24(data, offset + 4) | (data[offset + 7] << 24)
        start = offset + _SUB_HEADER_SIZE
        end = start + length
        if end > total:
            raise ProtocolError(
                f"aggregate sub-message at offset {offset} declares {length} bytes, "
                f"only {total - start} remain",
                "RTMP 7.1.6",
            )
        if shift is None:
            shift = (message.timestamp - ts) & 0xFFFFFFFF
        out.append(
            Message(
                type=sub_type,
                data=bytes(view[start:end]),
                timestamp=(ts + shift) & 0xFFFFFFFF,
                message_stream_id=message.message_stream_id,
            )
        )
        offset = end
        if total - offset >= 4:
            offset += 4  # back pointer (previous tag size)
        elif offset != total:
            raise ProtocolError("aggregate back pointer truncated", "RTMP 7.1.6")
    return out


def build_aggregate(
    messages: List[Message], message_stream_id: int = 1
) -> Message:
    """RTMP 7.1.6: pack messages into one Aggregate (the inverse of :func:`split_aggregate`)."""
    if not messages:
        raise ValueError("an aggregate needs at least one sub-message")
    parts: List[bytes] = []
    for msg in messages:
        ts = msg.timestamp
        header = bytes([msg.type]) + len(msg.data).to_bytes(3, "big")
        header += (ts & 0xFFFFFF).to_bytes(3, "big") + bytes([(ts >> 24) & 0xFF]) + b"\x00\x00\x00"
        parts.append(header)
        parts.append(msg.data)
        parts.append(U32.pack(_SUB_HEADER_SIZE + len(msg.data)))
    return Message(
        type=MessageType.AGGREGATE,
        data=b"".join(parts),
        timestamp=messages[0].timestamp,
        message_stream_id=message_stream_id,
    )


def timestamp_delta(later: int, earlier: int) -> int:
    """RTMP 3 / 5.3.1 (serial arithmetic): ``later - earlier`` on 32-bit timestamps that
    wrap about every 49.7 days; positive when ``later`` is within 2**31 ms after ``earlier``."""
    return ((later - earlier + 0x80000000) & 0xFFFFFFFF) - 0x80000000
