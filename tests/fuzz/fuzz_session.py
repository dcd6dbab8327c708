"""RTMP 5.4 / 6.2 / 7.1.7: fuzz target for :class:`rtmp.session.Session`.

The chunk decoder plus protocol control: Set Chunk Size, Abort, Acknowledgement, Window
Acknowledgement Size, Set Peer Bandwidth and Ping Request are handled inside and may queue
replies.  Contract: the only exception is :class:`rtmp.ProtocolError`; the replies queued
for any input stay small (acknowledgements are per received batch, never per byte, and one
Ping Response per Ping Request), and they always chunk-decode cleanly on the other side.
"""

from __future__ import annotations

import logging

from rtmp.chunk import ChunkDecoder
from rtmp.errors import ProtocolError
from rtmp.session import Session
from tests.fuzz._common import atheris_main, split_points

logger = logging.getLogger(__name__)


def fuzz_one(data: bytes) -> None:
    """One fuzz input: byte 0 picks strictness and the cut pattern; the rest is the peer."""
    if not data:
        return
    control, stream = data[0], bytes(data[1:])
    session = Session(max_message_size=4096, max_chunk_streams=8, max_pending_bytes=16384,
                      strict=bool(control & 0x80))
    replies = bytearray()
    try:
        for piece in split_points(stream, control):
            session.receive_data(piece)
            while session.next_message() is not None:
                pass
            replies += session.pending_replies()
    except ProtocolError:
        pass
    replies += session.pending_replies()
    # Replies are bounded by the input: at most one small message per input chunk.
    assert len(replies) <= 64 + 32 * len(stream), (len(replies), len(stream))
    peer = ChunkDecoder(max_chunk_streams=64)
    peer.receive_data(bytes(replies))
    list(peer.messages())


if __name__ == "__main__":
    atheris_main(fuzz_one)
