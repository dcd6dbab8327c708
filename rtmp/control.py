"""RTMP 5.4: protocol control messages (types 1, 2, 3, 5 and 6), built and parsed.

All of them travel on message stream 0 and chunk stream 2 (RTMP 5.4) and take
effect on receipt; their timestamps are ignored.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._bytes import U32, U32_U8
from .chunk import MAX_CHUNK_SIZE, parse_set_chunk_size
from .errors import ProtocolError
from .message import CONTROL_CHUNK_STREAM_ID, Message, MessageType

__all__ = [
    "LimitType",
    "PeerBandwidth",
    "set_chunk_size",
    "abort",
    "acknowledgement",
    "window_ack_size",
    "set_peer_bandwidth",
    "parse_set_chunk_size",
    "parse_abort",
    "parse_acknowledgement",
    "parse_window_ack_size",
    "parse_set_peer_bandwidth",
]


class LimitType(enum.IntEnum):
    """RTMP 5.4.5: the limit type of Set Peer Bandwidth."""

    HARD = 0
    SOFT = 1
    DYNAMIC = 2


@dataclass(frozen=True)
class PeerBandwidth:
    """RTMP 5.4.5: a Set Peer Bandwidth payload."""

    window_size: int
    limit_type: int


def _control(message_type: MessageType, payload: bytes) -> Message:
    # RTMP 5.4: protocol control messages use msid 0 and csid 2.
    return Message(
        type=message_type,
        data=payload,
        timestamp=0,
        message_stream_id=0,
        chunk_stream_id=CONTROL_CHUNK_STREAM_ID,
    )


def _u32(value: int, name: str) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} {value} does not fit 32 bits")
    return U32.pack(value)


def set_chunk_size(size: int) -> Message:
    """RTMP 5.4.1: Set Chunk Size (1..0x7FFFFFFF; bit 31 is zero)."""
    if not 1 <= size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size {size} outside 1..0x7FFFFFFF (RTMP 5.4.1)")
    return _control(MessageType.SET_CHUNK_SIZE, U32.pack(size))


def abort(chunk_stream_id: int) -> Message:
    """RTMP 5.4.2: Abort Message for a chunk stream."""
    return _control(MessageType.ABORT, _u32(chunk_stream_id, "chunk stream id"))


def acknowledgement(sequence_number: int) -> Message:
    """RTMP 5.4.3: Acknowledgement; the byte count wraps at 2**32."""
    return _control(MessageType.ACKNOWLEDGEMENT, U32.pack(sequence_number & 0xFFFFFFFF))


def window_ack_size(size: int) -> Message:
    """RTMP 5.4.4: Window Acknowledgement Size."""
    return _control(MessageType.WINDOW_ACK_SIZE, _u32(size, "window size"))


def set_peer_bandwidth(size: int, limit_type: int = LimitType.DYNAMIC) -> Message:
    """RTMP 5.4.5: Set Peer Bandwidth (window size + limit type 0, 1 or 2)."""
    if limit_type not in (0, 1, 2):
        raise ValueError(f"limit type {limit_type} is not 0, 1 or 2 (RTMP 5.4.5)")
    return _control(MessageType.SET_PEER_BANDWIDTH, U32_U8.pack(size, limit_type))


def _parse_u32(data: bytes, clause: str, name: str) -> int:
    if len(data) < 4:
        raise ProtocolError(f"{name} payload of {len(data)} bytes, expected 4", clause)
    return int(U32.unpack_from(data)[0])


def parse_abort(data: bytes) -> int:
    """RTMP 5.4.2: the chunk stream id an Abort Message names."""
    return _parse_u32(data, "RTMP 5.4.2", "Abort Message")


def parse_acknowledgement(data: bytes) -> int:
    """RTMP 5.4.3: the sequence number (bytes received so far, modulo 2**32)."""
    return _parse_u32(data, "RTMP 5.4.3", "Acknowledgement")


def parse_window_ack_size(data: bytes) -> int:
    """RTMP 5.4.4: the acknowledgement window the receiver must use."""
    value = _parse_u32(data, "RTMP 5.4.4", "Window Acknowledgement Size")
    if value == 0:
        raise ProtocolError("Window Acknowledgement Size of 0", "RTMP 5.4.4")
    return value


def parse_set_peer_bandwidth(data: bytes) -> PeerBandwidth:
    """RTMP 5.4.5: window size and limit type."""
    if len(data) < 5:
        raise ProtocolError(
            f"Set Peer Bandwidth payload of {len(data)} bytes, expected 5", "RTMP 5.4.5"
        )
    size, limit = U32_U8.unpack_from(data)
    if limit > 2:
        raise ProtocolError(f"Set Peer Bandwidth limit type {limit}", "RTMP 5.4.5")
    return PeerBandwidth(size, limit)
