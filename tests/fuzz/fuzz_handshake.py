"""RTMP 5.2 / HS-FP9: fuzz target for the sans-IO handshakes (server and client side).

The input is what the peer sends (C0+C1+C2 to our server, S0+S1+S2 to our client), fed in
pieces.  Contract: the only exception is :class:`rtmp.HandshakeError`; once complete, the
bytes past the three blocks come back as ``trailing_data``, unchanged.
"""

from __future__ import annotations

import logging

from rtmp.errors import HandshakeError
from rtmp.handshake import ClientHandshake, ServerHandshake
from tests.fuzz._common import atheris_main, split_points

logger = logging.getLogger(__name__)

#: RTMP 5.2: C0/S0 is 1 byte, C1/S1 and C2/S2 1536 bytes each.
BLOCKS = 1 + 1536 + 1536


def fuzz_one(data: bytes) -> None:
    """One fuzz input: byte 0 picks the side, strictness and the cuts; the rest is the peer."""
    if not data:
        return
    control, stream = data[0], bytes(data[1:])
    strict = bool(control & 0x40)
    if control & 0x80:
        shaker: ServerHandshake | ClientHandshake = ServerHandshake(
            digest=bool(control & 0x20), strict=strict, now_ms=1000, random=bytes)
    else:
        shaker = ClientHandshake(digest=bool(control & 0x20), strict=strict, now_ms=1000,
                                 random=bytes)
    shaker.data_to_send()
    try:
        for piece in split_points(stream, control):
            shaker.receive_data(piece)
            shaker.data_to_send()
    except HandshakeError:
        return
    if shaker.complete:
        assert bytes(shaker.trailing_data) == stream[BLOCKS:], "trailing data altered"
    else:
        assert len(stream) < BLOCKS


if __name__ == "__main__":
    atheris_main(fuzz_one)
