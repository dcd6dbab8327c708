"""RTMP 5.3 / 5.4.1 / 5.4.2: fuzz target for :class:`rtmp.chunk.ChunkDecoder`.

Contract checked on every input:

* the only exception is :class:`rtmp.ProtocolError` (``LimitExceededError`` included);
* the limits hold: no message longer than ``max_message_size``, never more chunk streams
  than ``max_chunk_streams``, ``pending_bytes`` never negative;
* the outcome (messages, then the error class if any) is the same whether the bytes
  arrive at once or cut at arbitrary points (TCP segmentation must not matter), and
  whether the whole-message fast path is on or off (it must only be faster).

The first input byte picks the limits and the cut pattern; the rest is the chunk stream.
"""

from __future__ import annotations

import logging
from typing import List, Optional, Tuple

from rtmp.chunk import ChunkDecoder
from rtmp.errors import ProtocolError
from rtmp.message import Message
from tests.fuzz._common import atheris_main, split_points

logger = logging.getLogger(__name__)

#: Small limits, so that the fuzzer reaches them with short inputs.
MAX_MESSAGE_SIZE = 4096
MAX_CHUNK_STREAMS = 8
MAX_PENDING_BYTES = 16384

Outcome = Tuple[List[Tuple[int, int, int, int, bytes]], Optional[str]]


def _decode(pieces: List[bytes], strict: bool, chunk_by_chunk: bool = False) -> Outcome:
    decoder = ChunkDecoder(
        max_message_size=MAX_MESSAGE_SIZE,
        max_chunk_streams=MAX_CHUNK_STREAMS,
        max_pending_bytes=MAX_PENDING_BYTES,
        max_chunk_size=65536,
        strict=strict,
        # A chunk hook turns off the whole-message fast path: the reference behaviour.
        on_chunk=(lambda info: None) if chunk_by_chunk else None,
    )
    out: List[Tuple[int, int, int, int, bytes]] = []
    error: Optional[str] = None
    try:
        for piece in pieces + [b""]:  # b"": EOF at the end (RTMP 5.3.1: no half chunk left)
            decoder.receive_data(piece)
            while True:
                message: Optional[Message] = decoder.next_message()
                if message is None:
                    break
                assert len(message.data) <= MAX_MESSAGE_SIZE, "max_message_size not enforced"
                out.append((int(message.type), message.timestamp, message.message_stream_id,
                            message.csid, bytes(message.data)))
            assert decoder.chunk_stream_count <= MAX_CHUNK_STREAMS, "max_chunk_streams not enforced"
            assert 0 <= decoder.pending_bytes <= MAX_PENDING_BYTES, decoder.pending_bytes
    except ProtocolError as exc:
        error = type(exc).__name__
    return out, error


def fuzz_one(data: bytes) -> None:
    """One fuzz input: decode whole and in pieces; both must agree and only ProtocolError."""
    if not data:
        return
    control, stream = data[0], bytes(data[1:])
    strict = bool(control & 0x80)
    whole = _decode([stream], strict)
    for other in (_decode(split_points(stream, control), strict),
                  _decode([stream], strict, chunk_by_chunk=True)):
        if whole[1] == other[1] == "ProtocolError" or whole[1] is None:
            assert whole == other, f"segmentation or fast path changed: {whole!r} != {other!r}"
        else:
            # A limit error may surface one chunk earlier or later depending on buffering,
            # but never a different class of error, and the messages before it agree.
            assert whole[1] == other[1], (whole[1], other[1])
            shorter = min(len(whole[0]), len(other[0]))
            assert whole[0][:shorter] == other[0][:shorter]


if __name__ == "__main__":
    atheris_main(fuzz_one)
