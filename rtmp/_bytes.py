"""Byte helpers shared by the wire modules: precompiled structs and a receive buffer.

RTMP 4: every integer is big-endian unless a clause says otherwise (the message
stream id in a type 0 chunk header is little-endian, RTMP 5.3.1.2.1).
"""

from __future__ import annotations

import struct

U8 = struct.Struct(">B")
U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
U32LE = struct.Struct("<I")
U16LE = struct.Struct("<H")
F64 = struct.Struct(">d")
U32_U8 = struct.Struct(">IB")
U16_U32 = struct.Struct(">HI")

#: The largest value a 24-bit field holds.
U24_MAX = 0xFFFFFF


def pack_u24(value: int) -> bytes:
    """Encode ``value`` (0..0xFFFFFF) as three big-endian bytes."""
    return value.to_bytes(3, "big")


def unpack_u24(data: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """Decode three big-endian bytes at ``offset``."""
    return (data[offset] << 16) | (data[offset + 1] << 8) | data[offset + 2]


class ReceiveBuffer:
    """A growable input buffer with a read offset, compacted once per batch.

    Bytes are appended with :meth:`feed`; a parser reads from :attr:`data`
    starting at :attr:`offset` and calls :meth:`consume`.  :meth:`compact`
    drops the consumed prefix in one slice operation (h11's ReceiveBuffer idea).
    """

    __slots__ = ("data", "offset")

    def __init__(self) -> None:
        self.data = bytearray()
        self.offset = 0

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        self.data += chunk

    def __len__(self) -> int:
        return len(self.data) - self.offset

    def consume(self, count: int) -> None:
        self.offset += count

    def take(self, count: int) -> bytes:
        start = self.offset
        self.offset = start + count
        return bytes(self.data[start : start + count])

    def compact(self) -> None:
        if self.offset:
            del self.data[: self.offset]
            self.offset = 0
